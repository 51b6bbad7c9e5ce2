//! The desk as a copy, with several nodes: what another node did to the queue, applied here.
//! The store decided it already (a claim through `Store::claim_handoff`); these only keep this
//! node's view — its consoles' queue, who holds what, places in the queue, when the customer or
//! the holder last wrote — the same as the others'. Every node's copy is complete, so whichever
//! node holds the timer lease can run every timer: what it cannot see for itself (the agents and
//! the waiting customers connected to other nodes) each node tells the others ([`Elsewhere`]).

use std::collections::HashSet;

use super::{Holding, Presence, Queue, State, Waiting};
use crate::accounts::Account;
use crate::ids::{AgentId, ConversationId};

/// What another node last told about itself.
#[derive(Debug, Clone)]
pub(super) struct Elsewhere {
    /// Its agents, with their presence.
    agents: Vec<(Account, Presence)>,
    /// The queued conversations with a customer socket on it.
    customers: HashSet<ConversationId>,
    /// Until when this holds (Unix ms).
    until: i64,
}

/// How long a node's list of agents holds without news from it (it is sent every
/// [`STAFF_EVERY_MS`] and at every change): a node that dies drops out of "who is online".
pub const STAFF_HOLDS_MS: i64 = 15_000;

/// How often a node tells the others which agents it has, with nothing changing.
pub const STAFF_EVERY_MS: u64 = 5_000;

impl Elsewhere {
    /// When the node last told (Unix ms), if that still holds at `now`.
    pub(super) fn told_at(&self, now: i64) -> Option<i64> {
        (self.until > now).then_some(self.until - STAFF_HOLDS_MS)
    }
}

/// The agents connected to other nodes, as last told and still holding at `now`.
pub(super) fn online_elsewhere(
    state: &State,
    now: i64,
) -> impl Iterator<Item = (&Account, Presence)> {
    state
        .elsewhere
        .values()
        .filter(move |e| e.until > now)
        .flat_map(|e| e.agents.iter().map(|(a, p)| (a, *p)))
}

/// Whether `agent` has a console open on another node, as last told and still holding at `now`.
pub(super) fn agent_elsewhere(state: &State, agent: &AgentId, now: i64) -> bool {
    online_elsewhere(state, now).any(|(a, _)| a.id == *agent)
}

/// Whether a customer socket of `conversation` is open on another node, as last told.
pub(super) fn customer_elsewhere(state: &State, conversation: &ConversationId, now: i64) -> bool {
    state
        .elsewhere
        .values()
        .any(|e| e.until > now && e.customers.contains(conversation))
}

impl Queue {
    /// Another node put the conversation in the queue (from the bot, or back from an agent).
    pub fn queued_elsewhere(&self, entry: Waiting) {
        let mut state = self.inner.lock();
        let id = entry.conversation_id.clone();
        state.untake(&id);
        state.queue.insert(id.clone(), entry);
        state.touch(&id);
    }

    /// An agent took the conversation on another node.
    pub fn taken_elsewhere(&self, entry: Waiting, agent: Account, now: i64) {
        let mut state = self.inner.lock();
        let id = entry.conversation_id.clone();
        if state.queue.remove(&id).is_some() {
            state.touch(&id);
        }
        state.untake(&id);
        state.take(entry, agent, now);
    }

    /// The conversation left the queue and its holder on another node (resolved, abandoned).
    pub fn left_elsewhere(&self, conversation: &ConversationId) {
        let mut state = self.inner.lock();
        if state.queue.remove(conversation).is_some() {
            state.touch(conversation);
        }
        state.untake(conversation);
    }

    /// The conversation's queue entry, while it waits.
    pub fn waiting(&self, conversation: &ConversationId) -> Option<Waiting> {
        self.inner.lock().queue.get(conversation).cloned()
    }

    /// Forgets a claim this node made that the store refused (another node's agent won): the
    /// winner's node says who holds it.
    pub fn claim_lost(&self, conversation: &ConversationId) {
        let mut state = self.inner.lock();
        state.untake(conversation);
        state.touch(conversation);
    }
}

impl Queue {
    /// The agents connected to this node, with their presence (told to the other nodes).
    pub fn staff_here(&self) -> Vec<(Account, Presence)> {
        let state = self.inner.lock();
        state
            .staff
            .values()
            .filter(|s| s.sockets > 0)
            .map(|s| (s.account.clone(), s.status))
            .collect()
    }

    /// Resolves when this node's agents connected, left, or changed presence since the last
    /// time (at once if they did).
    pub async fn staff_changed(&self) {
        self.inner.staff_changed.notified().await
    }

    /// The queued conversations with a customer socket on this node (`connected` says which
    /// have; it is called under the desk's lock and must not wait): told to the other nodes, so
    /// the one that runs the timers does not count these customers as gone.
    pub fn customers_here(
        &self,
        connected: impl Fn(&ConversationId) -> bool,
    ) -> Vec<ConversationId> {
        let state = self.inner.lock();
        state
            .queue
            .keys()
            .filter(|c| connected(c))
            .cloned()
            .collect()
    }

    /// Forgets the nodes whose news no longer holds now (they stopped telling: killed, cut off,
    /// or stopped); their ids.
    pub fn nodes_gone(&self) -> Vec<String> {
        let now = crate::clock::now_ms();
        let mut state = self.inner.lock();
        let gone: Vec<String> = state
            .elsewhere
            .iter()
            .filter(|(_, e)| e.until <= now)
            .map(|(node, _)| node.clone())
            .collect();
        for node in &gone {
            state.elsewhere.remove(node);
        }
        gone
    }

    /// Another node says which agents it has now, and which waiting customers.
    pub fn staff_elsewhere(
        &self,
        node: String,
        agents: Vec<(Account, Presence)>,
        customers: Vec<ConversationId>,
        now: i64,
    ) {
        let mut state = self.inner.lock();
        state.elsewhere.retain(|_, e| e.until > now);
        let told = Elsewhere {
            agents,
            customers: customers.into_iter().collect(),
            until: now + STAFF_HOLDS_MS,
        };
        state.elsewhere.insert(node, told);
    }
}

impl Queue {
    /// Replaces this node's copy of the queue and of who holds what with the store's (after the
    /// link to the other nodes came back). An entry that was here keeps its timers' progress
    /// (pickup alerts, since when its customer is away); agents connected here keep their
    /// sockets and presence.
    pub fn replace(&self, queued: Vec<Waiting>, held: Vec<Holding>, now: i64) {
        let mut state = self.inner.lock();
        let before: Vec<ConversationId> = state
            .queue
            .keys()
            .chain(state.holders.keys())
            .cloned()
            .collect();
        for id in &before {
            state.touch(id);
        }
        let queued_before = std::mem::take(&mut state.queue);
        let held_before = std::mem::take(&mut state.holders);
        state.staff.retain(|_, s| s.sockets > 0);
        for staff in state.staff.values_mut() {
            staff.chats.clear();
        }
        for mut w in queued {
            let id = w.conversation_id.clone();
            if let Some(old) = queued_before.get(&id) {
                w.alerts = old.alerts;
                w.priority = w.priority.max(old.priority);
                w.customer_away_since = old.customer_away_since;
                w.declined = old.declined.clone();
            }
            state.touch(&id);
            state.queue.insert(id, w);
        }
        for mut h in held {
            let id = h.entry.conversation_id.clone();
            // The same agent still holds it: its timers go on from where they were.
            if let Some(old) = held_before.get(&id).filter(|o| o.agent.id == h.agent.id) {
                h.assigned_at = old.assigned_at;
                h.awaiting_reply_since = old.awaiting_reply_since;
                h.responded = old.responded;
            } else {
                h.assigned_at = now;
            }
            if let Some(staff) = state.staff.get_mut(&h.agent.id) {
                staff.chats.insert(id.clone());
            }
            state.holders.insert(id, h);
        }
    }
}
