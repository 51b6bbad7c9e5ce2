//! The desk as a copy, with several nodes: what another node did to the queue, applied here.
//! The store decided it already (a claim through `Store::claim_handoff`); these only keep this
//! node's view — its consoles' queue, who holds what, places in the queue — the same as the
//! others'. Entries that arrive this way are the other node's to time ([`super::Due`] skips them)
//! until this node queues or takes them itself.

use super::{Holding, Presence, Queue, State, Waiting};
use crate::accounts::Account;
use crate::ids::ConversationId;

/// How long a node's list of agents holds without news from it (it is sent every
/// [`STAFF_EVERY_MS`] and at every change): a node that dies drops out of "who is online".
pub const STAFF_HOLDS_MS: i64 = 15_000;

/// How often a node tells the others which agents it has, with nothing changing.
pub const STAFF_EVERY_MS: u64 = 5_000;

/// The agents connected to other nodes, as last told and still holding at `now`.
pub(super) fn online_elsewhere(
    state: &State,
    now: i64,
) -> impl Iterator<Item = (&Account, Presence)> {
    state
        .elsewhere
        .values()
        .filter(move |(_, until)| *until > now)
        .flat_map(|(agents, _)| agents.iter().map(|(a, p)| (a, *p)))
}

impl Queue {
    /// Another node put the conversation in the queue (from the bot, or back from an agent).
    pub fn queued_elsewhere(&self, entry: Waiting) {
        let mut state = self.inner.lock();
        let id = entry.conversation_id.clone();
        state.untake(&id);
        state.queue.insert(id.clone(), entry);
        state.touch(&id);
        state.remote.insert(id);
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
        state.remote.insert(id);
    }

    /// The conversation left the queue and its holder on another node (resolved, abandoned).
    pub fn left_elsewhere(&self, conversation: &ConversationId) {
        let mut state = self.inner.lock();
        if state.queue.remove(conversation).is_some() {
            state.touch(conversation);
        }
        state.untake(conversation);
        state.remote.remove(conversation);
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
    /// Counts everything in the queue and held as another node's to time: with several nodes, a
    /// node that starts cannot tell which of what it restored from the store another node runs.
    pub fn restored_elsewhere(&self) {
        let mut state = self.inner.lock();
        let all: Vec<ConversationId> = state
            .queue
            .keys()
            .chain(state.holders.keys())
            .cloned()
            .collect();
        state.remote.extend(all);
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

    /// Another node says which agents it has now.
    pub fn staff_elsewhere(&self, node: String, agents: Vec<(Account, Presence)>, now: i64) {
        let mut state = self.inner.lock();
        state.elsewhere.retain(|_, (_, until)| *until > now);
        state.elsewhere.insert(node, (agents, now + STAFF_HOLDS_MS));
    }
}

impl Queue {
    /// Replaces this node's copy of the queue and of who holds what with the store's (after the
    /// link to the other nodes came back). Entries this node was timing stay its own; the others
    /// are another node's to time. Agents connected here keep their sockets and presence.
    pub fn replace(&self, queued: Vec<Waiting>, held: Vec<Holding>, now: i64) {
        let mut state = self.inner.lock();
        let before: Vec<ConversationId> = state
            .queue
            .keys()
            .chain(state.holders.keys())
            .cloned()
            .collect();
        let mine: std::collections::HashSet<ConversationId> = before
            .iter()
            .filter(|c| !state.remote.contains(*c))
            .cloned()
            .collect();
        for id in &before {
            state.touch(id);
        }
        state.queue.clear();
        let held_before = std::mem::take(&mut state.holders);
        state.remote.clear();
        state.staff.retain(|_, s| s.sockets > 0);
        for staff in state.staff.values_mut() {
            staff.chats.clear();
        }
        for w in queued {
            let id = w.conversation_id.clone();
            state.touch(&id);
            if !mine.contains(&id) {
                state.remote.insert(id.clone());
            }
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
            if !mine.contains(&id) {
                state.remote.insert(id.clone());
            }
            state.holders.insert(id, h);
        }
    }
}
