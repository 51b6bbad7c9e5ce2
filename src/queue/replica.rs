//! The desk as a copy, with several nodes: what another node did to the queue, applied here.
//! The store decided it already (a claim through `Store::claim_handoff`); these only keep this
//! node's view — its consoles' queue, who holds what, places in the queue — the same as the
//! others'. Entries that arrive this way are the other node's to time ([`super::Due`] skips them)
//! until this node queues or takes them itself.

use super::{Queue, Waiting};
use crate::accounts::Account;
use crate::ids::ConversationId;

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
