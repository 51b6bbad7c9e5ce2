//! A chaos agent, as the console behaves: authenticates with an `auth` frame, and after every
//! `ready` reads back its chats (`GET /api/conversations?state=agent`, then each transcript) to
//! fill what it missed, then sends its unacknowledged messages again under the same `client_id`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::ledger::Pending;
use super::{AgentCmd, Ledgers, Stats};
use crate::ws;

const HANDSHAKE: Duration = Duration::from_secs(5);

/// One agent.
pub struct Agent {
    /// Its number (the ledgers' `holder`).
    pub index: usize,
    /// Its login token.
    pub token: String,
    /// Where the server listens.
    pub server: SocketAddr,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Every conversation of the run.
    pub ledgers: Ledgers,
    /// Shared counters.
    pub stats: Arc<Stats>,
    /// Tells the run this agent is ready (once).
    pub ready: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Agent {
    /// Works until told to stop, reconnecting after every lost connection.
    pub async fn run(mut self, mut commands: mpsc::UnboundedReceiver<AgentCmd>) {
        let http = reqwest::Client::new();
        let mut first = true;
        loop {
            let ws = match self.connect(&http, first).await {
                Ok(ws) => ws,
                Err(e) => {
                    self.stats.note_failure("agent reconnect", &e);
                    tokio::time::sleep(self.stats.backoff()).await;
                    continue;
                }
            };
            first = false;
            if let Some(ready) = self.ready.take() {
                let _ = ready.send(());
            }
            if self.stats.stopping() {
                return;
            }
            let (sink, mut stream) = ws.split();
            let writer = ws::Writer::spawn(sink);
            for (conversation, p) in self.pending() {
                writer.send(&message(&conversation, &p));
                if let Some(l) = self.ledgers.get(&conversation) {
                    l.lock().unwrap_or_else(|e| e.into_inner()).agent.resent += 1;
                }
            }
            loop {
                tokio::select! {
                    cmd = commands.recv() => match cmd {
                        None | Some(AgentCmd::Stop) => return,
                        Some(AgentCmd::Write(conversation)) => {
                            if let Some(frame) = self.write(&conversation) {
                                writer.send(&frame);
                            }
                        }
                        Some(AgentCmd::Flood(conversation, count)) => {
                            for _ in 0..count {
                                if let Some(frame) = self.write_padded(&conversation, 3500) {
                                    writer.send(&frame);
                                }
                            }
                        }
                        Some(AgentCmd::Drop { reset }) => {
                            // A writer stuck on an unread socket cannot give the socket back:
                            // then it closes when both halves are dropped.
                            if let Some(sink) = writer.stop().await {
                                if let Ok(ws) = sink.reunite(stream) {
                                    ws::drop_abruptly(ws, reset);
                                }
                            }
                            self.stats.agent_drops.inc();
                            let pause = rand::thread_rng().gen_range(0..300);
                            tokio::time::sleep(Duration::from_millis(pause)).await;
                            break;
                        }
                    },
                    frame = stream.next() => match frame {
                        Some(Ok(msg)) => if let Some(v) = ws::parse(&msg) { self.on_frame(&v) },
                        _ => {
                            self.stats.closed_by_server.inc();
                            break;
                        }
                    },
                }
            }
        }
    }

    /// Opens the socket, authenticates, and after a reconnect reads back the chats.
    async fn connect(&self, http: &reqwest::Client, first: bool) -> anyhow::Result<ws::Ws> {
        let url = self.base.replacen("http://", "ws://", 1) + "/ws/agent";
        let ws = tokio::time::timeout(HANDSHAKE, ws::connect(self.server, &url, None))
            .await
            .context("connecting took over 5 s")??;
        let (mut sink, mut stream) = ws.split();
        ws::send(&mut sink, &json!({"type": "auth", "token": self.token})).await?;
        let ready = ws::next_where(&mut stream, HANDSHAKE, "ready", |v| {
            v["type"] == "ready" || v["type"] == "error"
        })
        .await?;
        if ready["type"] != "ready" {
            anyhow::bail!("auth refused: {ready}");
        }
        let me = ready["agent"]["id"]
            .as_str()
            .context("ready without agent id")?
            .to_owned();
        if !first {
            self.stats.agent_reconnects.inc();
            self.read_back(http, &me).await?;
        }
        sink.reunite(stream).context("reuniting the socket")
    }

    /// What the console does after `ready`: the chats this agent holds and their transcripts.
    async fn read_back(&self, http: &reqwest::Client, me: &str) -> anyhow::Result<()> {
        let list = ws::get_json(
            http,
            &format!("{}/api/conversations?state=agent&limit=500", self.base),
            &self.token,
        )
        .await?;
        let mut held = std::collections::HashSet::new();
        for c in list["conversations"].as_array().into_iter().flatten() {
            if c["agent_id"] == me {
                if let Some(id) = c["id"].as_str() {
                    held.insert(id.to_owned());
                }
            }
        }
        for entry in self.ledgers.iter() {
            let mut l = entry.value().lock().unwrap_or_else(|e| e.into_inner());
            if l.holder == Some(self.index) && !held.contains(entry.key()) {
                self.stats.ownership_lost.inc();
                l.holder = None;
            }
        }
        for id in held {
            let Some(ledger) = self.ledgers.get(&id).map(|l| l.clone()) else {
                continue;
            };
            let body = ws::get_json(
                http,
                &format!("{}/api/conversations/{id}", self.base),
                &self.token,
            )
            .await?;
            let mut l = ledger.lock().unwrap_or_else(|e| e.into_inner());
            l.holder = Some(self.index);
            for frame in body["transcript"].as_array().into_iter().flatten() {
                l.agent_readback(frame);
            }
        }
        Ok(())
    }

    /// Unacknowledged messages of the chats this agent holds, in the order written (sent again
    /// after every reconnect, before anything new).
    fn pending(&self) -> Vec<(String, Pending)> {
        let mut out = Vec::new();
        for entry in self.ledgers.iter() {
            let l = entry.value().lock().unwrap_or_else(|e| e.into_inner());
            if l.holder == Some(self.index) {
                out.extend(l.agent.pending.iter().map(|p| (l.id.clone(), p.clone())));
            }
        }
        out
    }

    /// Writes the next message in `conversation` (padded to `chars`), if this agent holds it.
    fn write_padded(&self, conversation: &str, chars: usize) -> Option<Value> {
        let ledger = self.ledgers.get(conversation)?.clone();
        let mut l = ledger.lock().unwrap_or_else(|e| e.into_inner());
        if l.holder != Some(self.index) {
            self.stats.no_holder.inc();
            return None;
        }
        let prefix = format!("a{}", l.number);
        let seen = l.agent_view.high;
        let p = l.agent.write_padded(&prefix, chars, seen);
        Some(message(conversation, &p))
    }

    fn write(&self, conversation: &str) -> Option<Value> {
        self.write_padded(conversation, 0)
    }

    fn on_frame(&self, v: &Value) {
        let conversation = v["conversation_id"].as_str().unwrap_or_default();
        let ledger = self.ledgers.get(conversation).map(|l| l.clone());
        match (v["type"].as_str(), ledger) {
            (Some("event"), Some(ledger)) => {
                ledger
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .agent_frame(&v["frame"]);
            }
            (Some("assigned"), Some(ledger)) => {
                let mut l = ledger.lock().unwrap_or_else(|e| e.into_inner());
                l.holder = Some(self.index);
                for frame in v["context"]["transcript"].as_array().into_iter().flatten() {
                    l.agent_readback(frame);
                }
            }
            (Some("unassigned"), Some(ledger)) => {
                let mut l = ledger.lock().unwrap_or_else(|e| e.into_inner());
                if l.holder == Some(self.index) {
                    l.holder = None;
                    self.stats.ownership_lost.inc();
                }
            }
            (Some("error"), _) => self.stats.note_error("agent", v),
            _ => {}
        }
    }
}

fn message(conversation: &str, p: &Pending) -> Value {
    json!({"type": "message", "conversation_id": conversation, "client_id": p.client_id,
           "seen": p.seen, "text": p.text})
}
