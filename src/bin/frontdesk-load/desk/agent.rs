//! An agent of the desk profile: takes chats (assigned, or claimed from the queue), answers every
//! customer message at once, and resolves a chat after answering two.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use serde_json::{json, Value};

use super::{Desk, Mark};
use crate::ws;

/// Customer messages answered before the agent resolves the chat.
const REPLIES_BEFORE_RESOLVE: usize = 2;

/// One agent's socket and the chats it holds.
pub struct Agent {
    index: usize,
    desk: Arc<Desk>,
    claim: bool,
    max_chats: usize,
    /// Held chats and the replies sent in each.
    held: HashMap<String, usize>,
    /// Claims sent and not yet answered.
    claiming: HashSet<String>,
    replies: u64,
}

impl Agent {
    /// Agent number `index`, reporting to `desk`; with `claim`, it claims from the queue itself.
    pub fn new(index: usize, desk: Arc<Desk>, claim: bool, max_chats: usize) -> Self {
        Self {
            index,
            desk,
            claim,
            max_chats,
            held: HashMap::new(),
            claiming: HashSet::new(),
            replies: 0,
        }
    }

    /// Works until the socket closes.
    pub async fn run(mut self, ws: ws::Ws) {
        let (mut sink, mut stream) = ws.split();
        while let Some(Ok(msg)) = stream.next().await {
            let Some(v) = ws::parse(&msg) else { continue };
            for out in self.on_frame(&v) {
                if ws::send(&mut sink, &out).await.is_err() {
                    return;
                }
            }
        }
    }

    /// What to send in answer to frame `v`.
    fn on_frame(&mut self, v: &Value) -> Vec<Value> {
        let conversation = v["conversation_id"].as_str().unwrap_or_default().to_owned();
        match v["type"].as_str() {
            Some("assigned") => {
                self.claiming.remove(&conversation);
                self.desk
                    .handover(&conversation, Mark::Assigned(Instant::now()));
                self.held.insert(conversation, 0);
                Vec::new()
            }
            Some("claim_failed") => {
                self.claiming.remove(&conversation);
                Vec::new()
            }
            Some("unassigned") => {
                self.held.remove(&conversation);
                Vec::new()
            }
            Some("queue") if self.claim => self.claims(&v["entries"]),
            Some("event")
                if v["frame"]["type"] == "message" && v["frame"]["from"] == "customer" =>
            {
                self.reply(conversation)
            }
            _ => Vec::new(),
        }
    }

    fn claims(&mut self, entries: &Value) -> Vec<Value> {
        let mut out = Vec::new();
        for entry in entries.as_array().into_iter().flatten() {
            if self.held.len() + self.claiming.len() >= self.max_chats {
                break;
            }
            let Some(id) = entry["conversation_id"].as_str() else {
                continue;
            };
            if self.claiming.insert(id.to_owned()) {
                out.push(json!({"type": "claim", "conversation_id": id}));
            }
        }
        out
    }

    fn reply(&mut self, conversation: String) -> Vec<Value> {
        let Some(replies) = self.held.get_mut(&conversation) else {
            return Vec::new();
        };
        *replies += 1;
        self.replies += 1;
        let id = format!("r{}-{}", self.index, self.replies);
        self.desk.replied_at.insert(id.clone(), Instant::now());
        let mut out = vec![json!({"type": "message", "conversation_id": conversation,
                                  "client_id": id, "text": "Let me check that for you."})];
        if *replies >= REPLIES_BEFORE_RESOLVE {
            out.push(json!({"type": "resolve", "conversation_id": conversation}));
            self.held.remove(&conversation);
            self.desk.resolved.fetch_add(1, Ordering::Relaxed);
        }
        out
    }
}
