//! The agents' desk, in memory: who is connected (presence, capacity), the queue of conversations
//! waiting for a person (priority, team, waiting time), who holds which conversation, automatic
//! assignment, and the timers that come due. It knows ids, teams and priorities; it does no I/O
//! and writes no JSON: the conversation module drives it, stores what must survive a restart, and
//! tells customers and agents.
//!
//! Everything sits under one short-lived lock (never held across an `.await`), which makes a
//! claim atomic: of two agents claiming at once exactly one takes the conversation out of the
//! queue. With several nodes each node holds a copy (`replica`): what the other nodes did arrives
//! through [`crate::cluster`], a claim is decided by the store (`Store::claim_handoff`), and the
//! timers run on the one node that holds the store's timer lease, over every entry of its copy
//! (what it cannot see itself, agents and customers connected to other nodes, the others tell it).

mod desk;
mod replica;
mod timers;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::accounts::Account;
use crate::escalation::Reason;
use crate::ids::{AgentId, ConversationId};
use crate::settings::HandoffSettings;

pub use desk::StaffGuard;
pub use replica::{STAFF_EVERY_MS, STAFF_HOLDS_MS};
pub use timers::{within_hours, Due};

/// Recent pickup times kept for the expected wait.
pub const PICKUPS_KEPT: usize = 20;

/// A conversation waiting for (or held by) an agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Waiting {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// Its hand-off record.
    pub handoff_id: i64,
    /// Team it waits for.
    pub team: String,
    /// Higher goes first.
    pub priority: i64,
    /// Why it was escalated.
    pub reasons: Vec<Reason>,
    /// When (Unix ms).
    pub escalated_at: i64,
    /// The customer's name.
    pub customer: Option<String>,
    /// The customer's latest message, cut short.
    pub preview: String,
    /// The client address the customer came from (unknown after a restart).
    pub origin: Option<IpAddr>,
    /// Agents who let it time out (not assigned to them again automatically).
    pub declined: HashSet<AgentId>,
    /// Pickup alerts sent so far.
    pub alerts: u32,
    /// The queue position the customer was last told (0: none yet).
    pub shown_position: u32,
    /// Since when no customer socket of the conversation has been connected (Unix ms).
    pub customer_away_since: Option<i64>,
}

/// Who holds a conversation.
#[derive(Debug, Clone)]
pub struct Holding {
    /// The agent.
    pub agent: Account,
    /// Since when (Unix ms).
    pub assigned_at: i64,
    /// Since when the customer has been waiting for the agent's reply (at assignment, and after
    /// every customer message the agent has not answered yet); `None` while the agent has the
    /// last word.
    pub awaiting_reply_since: Option<i64>,
    /// Whether the agent has written to the customer at all.
    pub responded: bool,
    /// The queue entry it came from.
    pub entry: Waiting,
}

/// An agent's availability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Takes new conversations.
    Online,
    /// Connected, takes no new conversations.
    Away,
    /// Not connected.
    Offline,
}

/// A connected agent, as other agents see them.
#[derive(Debug, Clone, PartialEq)]
pub struct StaffView {
    /// The account.
    pub account: Account,
    /// Online or away.
    pub status: Presence,
    /// Conversations held now.
    pub chats: usize,
}

/// Why a claim failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimError {
    /// Another agent has it.
    AlreadyClaimed,
    /// It is not waiting for anyone.
    NotQueued,
    /// The agent has as many chats as they may.
    AtCapacity,
}

impl ClaimError {
    /// In words, with what to do.
    pub fn message(self) -> &'static str {
        match self {
            ClaimError::AlreadyClaimed => {
                "this conversation is no longer waiting: someone has it (another agent, or you in another tab or by automatic assignment); pick another from the queue"
            }
            ClaimError::NotQueued => "this conversation is not waiting in the queue",
            ClaimError::AtCapacity => {
                "you already have as many chats as you can take; resolve or transfer one first"
            }
        }
    }
}

/// Why a conversation may not join the queue now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueFull {
    /// `limits.max_queued` conversations are waiting.
    Overall,
    /// `limits.queued_per_address` conversations from this client address are waiting.
    Address,
}

/// Why nobody can take a conversation for a team right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// The team is outside its opening hours.
    OutsideHours,
    /// No agent who serves the team is online.
    NoAgentOnline,
}

/// Bounds on the queue, against floods.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Most conversations waiting at once.
    pub max_queued: usize,
    /// Most conversations waiting at once from one client address.
    pub per_address: usize,
}

/// What agents are told changed in the queue since the last time.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Entries added or changed (priority, preview), with their place in the queue.
    pub upserted: Vec<(u32, Waiting)>,
    /// Conversations that left the queue.
    pub removed: Vec<ConversationId>,
    /// Conversations waiting now.
    pub total: usize,
}

impl Changes {
    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        self.upserted.is_empty() && self.removed.is_empty()
    }
}

/// Handle to the desk; clone it freely.
#[derive(Clone)]
pub struct Queue {
    inner: Arc<Inner>,
}

struct Inner {
    settings: HandoffSettings,
    caps: Caps,
    state: Mutex<State>,
    /// Rings when this node's agents connect, leave or change presence (several nodes: the
    /// others are told at once).
    staff_changed: tokio::sync::Notify,
}

#[derive(Default)]
struct State {
    staff: HashMap<AgentId, Staff>,
    queue: HashMap<ConversationId, Waiting>,
    holders: HashMap<ConversationId, Holding>,
    pickups_ms: VecDeque<i64>,
    /// Conversations whose queue entry changed since agents were last told, in order.
    changed: Vec<ConversationId>,
    /// Since when (Unix ms) an agent who holds conversations has been seen connected to no node.
    absent: HashMap<AgentId, i64>,
    /// What other nodes last told (several nodes), by node.
    elsewhere: HashMap<String, replica::Elsewhere>,
}

/// An agent the desk knows: connected, or gone while holding conversations.
struct Staff {
    account: Account,
    status: Presence,
    sockets: u32,
    chats: HashSet<ConversationId>,
    /// When the last socket closed (Unix ms), while the agent still holds chats.
    left_at: Option<i64>,
}

impl Staff {
    /// Connected, online (not away) and serving `team` (no teams serves every team).
    fn takes_new(&self, team: &str) -> bool {
        self.sockets > 0
            && self.status == Presence::Online
            && (self.account.teams.is_empty() || self.account.teams.iter().any(|t| t == team))
    }

    fn has_room(&self) -> bool {
        (self.chats.len() as i64) < self.account.max_chats
    }
}

impl State {
    /// The queue in the order it is served.
    fn ordered(&self) -> Vec<&Waiting> {
        let mut order: Vec<&Waiting> = self.queue.values().collect();
        order.sort_by(|a, b| queue_order(a, b));
        order
    }

    fn touch(&mut self, conversation: &ConversationId) {
        self.changed.push(conversation.clone());
    }

    fn take(&mut self, entry: Waiting, agent: Account, now_ms: i64) {
        if entry.alerts == 0 && entry.declined.is_empty() {
            self.pickups_ms.push_front(now_ms - entry.escalated_at);
            self.pickups_ms.truncate(PICKUPS_KEPT);
        }
        if let Some(staff) = self.staff.get_mut(&agent.id) {
            staff.chats.insert(entry.conversation_id.clone());
        }
        self.holders.insert(
            entry.conversation_id.clone(),
            Holding {
                agent,
                assigned_at: now_ms,
                awaiting_reply_since: Some(now_ms),
                responded: false,
                entry,
            },
        );
    }

    fn untake(&mut self, conversation: &ConversationId) -> Option<Holding> {
        let holding = self.holders.remove(conversation)?;
        if let Some(staff) = self.staff.get_mut(&holding.agent.id) {
            staff.chats.remove(conversation);
            if staff.sockets == 0 && staff.chats.is_empty() {
                self.staff.remove(&holding.agent.id);
            }
        }
        Some(holding)
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Queue order: higher priority first, then the longest waiting (then by id, so it is stable).
fn queue_order(a: &Waiting, b: &Waiting) -> std::cmp::Ordering {
    b.priority
        .cmp(&a.priority)
        .then(a.escalated_at.cmp(&b.escalated_at))
        .then(a.conversation_id.cmp(&b.conversation_id))
}

/// The first 140 characters of a message, for queue previews.
pub fn preview(text: &str) -> String {
    match text.char_indices().nth(140) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests;
