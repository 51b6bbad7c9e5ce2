//! The desk's operations: agents connecting and leaving, joining and leaving the queue, claims,
//! automatic assignment, transfers, and what agents and customers are shown of the queue.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use super::{
    Caps, Changes, ClaimError, Holding, Inner, Presence, Queue, QueueFull, Staff, StaffView, State,
    Unavailable, Waiting, PICKUPS_KEPT,
};
use crate::accounts::Account;
use crate::clock::now_ms;
use crate::ids::{AgentId, ConversationId};
use crate::settings::HandoffSettings;

/// Keeps one of an agent's sockets counted; when the last one closes the agent is offline (and
/// the chats they hold wait `handoff.disconnect_grace_seconds` for them to come back).
pub struct StaffGuard {
    inner: Arc<Inner>,
    agent: AgentId,
}

impl Drop for StaffGuard {
    fn drop(&mut self) {
        let mut state = self.inner.lock();
        let Some(staff) = state.staff.get_mut(&self.agent) else {
            return;
        };
        staff.sockets = staff.sockets.saturating_sub(1);
        if staff.sockets == 0 {
            self.inner.staff_changed.notify_one();
            if staff.chats.is_empty() {
                state.staff.remove(&self.agent);
            } else {
                staff.left_at = Some(now_ms());
            }
        }
    }
}

impl Queue {
    /// An empty desk with these settings and bounds.
    pub fn new(settings: HandoffSettings, caps: Caps) -> Self {
        Self {
            inner: Arc::new(Inner {
                settings,
                caps,
                state: Default::default(),
                staff_changed: tokio::sync::Notify::new(),
            }),
        }
    }

    /// The hand-off settings.
    pub fn settings(&self) -> &HandoffSettings {
        &self.inner.settings
    }

    /// Counts a socket of `account`: the agent is connected (online unless they said away) until
    /// every returned guard is dropped.
    pub fn connect(&self, account: Account) -> StaffGuard {
        let mut state = self.inner.lock();
        let id = account.id.clone();
        let chats: HashSet<ConversationId> = state
            .holders
            .iter()
            .filter(|(_, h)| h.agent.id == id)
            .map(|(c, _)| c.clone())
            .collect();
        let staff = state.staff.entry(id.clone()).or_insert_with(|| Staff {
            account: account.clone(),
            status: Presence::Online,
            sockets: 0,
            chats,
            left_at: None,
        });
        staff.account = account;
        staff.sockets += 1;
        staff.left_at = None;
        self.inner.staff_changed.notify_one();
        StaffGuard {
            inner: self.inner.clone(),
            agent: id,
        }
    }

    /// Sets a connected agent's presence (online or away).
    pub fn set_presence(&self, agent: &AgentId, status: Presence) {
        if let Some(staff) = self.inner.lock().staff.get_mut(agent) {
            staff.status = status;
            self.inner.staff_changed.notify_one();
        }
    }

    /// An agent's presence.
    pub fn presence(&self, agent: &AgentId) -> Presence {
        match self.inner.lock().staff.get(agent) {
            Some(s) if s.sockets > 0 => s.status,
            _ => Presence::Offline,
        }
    }

    /// The agents connected now, by name.
    pub fn connected(&self) -> Vec<StaffView> {
        let state = self.inner.lock();
        let mut agents: Vec<StaffView> = state
            .staff
            .values()
            .filter(|s| s.sockets > 0)
            .map(|s| StaffView {
                account: s.account.clone(),
                status: s.status,
                chats: s.chats.len(),
            })
            .collect();
        for (account, status) in super::replica::online_elsewhere(&state, now_ms()) {
            if agents.iter().all(|a| a.account.id != account.id) {
                let chats = state
                    .holders
                    .values()
                    .filter(|h| h.agent.id == account.id)
                    .count();
                agents.push(StaffView {
                    account: account.clone(),
                    status,
                    chats,
                });
            }
        }
        agents.sort_by(|a, b| {
            (&a.account.name, &a.account.id).cmp(&(&b.account.name, &b.account.id))
        });
        agents
    }

    /// Whether a person can take a conversation for `team` now: the team is within its hours and
    /// an agent who serves it is online (perhaps busy: the chat waits for them).
    pub fn available(&self, team: &str, now_ms: i64) -> Result<(), Unavailable> {
        if let Some(hours) = self.inner.settings.hours.get(team) {
            if !super::within_hours(hours, now_ms) {
                return Err(Unavailable::OutsideHours);
            }
        }
        let state = self.inner.lock();
        let serves = |a: &Account| a.teams.is_empty() || a.teams.iter().any(|t| t == team);
        let elsewhere = super::replica::online_elsewhere(&state, now_ms)
            .any(|(a, p)| p == Presence::Online && serves(a));
        if elsewhere || state.staff.values().any(|s| s.takes_new(team)) {
            Ok(())
        } else {
            Err(Unavailable::NoAgentOnline)
        }
    }

    /// Puts back what was waiting or held when the server last stopped: `queued` return to the
    /// queue (the pickup alerts they would have had count as sent, and raise their priority as
    /// they would have), `held` to their agents, who find them on reconnecting (within the grace
    /// period) with a fresh reply window; `pickups_ms` (newest first) feed the wait estimate.
    pub fn restore(
        &self,
        queued: Vec<Waiting>,
        held: Vec<Holding>,
        pickups_ms: Vec<i64>,
        now: i64,
    ) {
        let pickup = (self.inner.settings.pickup_timeout_seconds * 1000.0) as i64;
        let mut state = self.inner.lock();
        for mut w in queued {
            if pickup > 0 {
                let missed = ((now - w.escalated_at) / pickup).max(0);
                w.alerts = missed as u32;
                w.priority += missed;
            }
            state.queue.insert(w.conversation_id.clone(), w);
        }
        for mut h in held {
            h.assigned_at = now;
            h.awaiting_reply_since = Some(now);
            let conversation = h.entry.conversation_id.clone();
            let staff = state
                .staff
                .entry(h.agent.id.clone())
                .or_insert_with(|| Staff {
                    account: h.agent.clone(),
                    status: Presence::Online,
                    sockets: 0,
                    chats: HashSet::new(),
                    left_at: Some(now),
                });
            staff.chats.insert(conversation.clone());
            state.holders.insert(conversation, h);
        }
        state.pickups_ms = pickups_ms.into_iter().take(PICKUPS_KEPT).collect();
    }

    /// Puts a conversation in the queue, unless the queue is full overall or for its address.
    pub fn enqueue(&self, entry: Waiting) -> Result<(), QueueFull> {
        let mut state = self.inner.lock();
        self.room(&state, entry.origin)?;
        insert(&mut state, entry);
        Ok(())
    }

    /// Whether a conversation from `origin` would be let into the queue now.
    pub fn check_room(&self, origin: Option<IpAddr>) -> Result<(), QueueFull> {
        self.room(&self.inner.lock(), origin)
    }

    fn room(&self, state: &State, origin: Option<IpAddr>) -> Result<(), QueueFull> {
        let Caps {
            max_queued,
            per_address,
        } = self.inner.caps;
        if state.queue.len() >= max_queued {
            return Err(QueueFull::Overall);
        }
        match origin {
            Some(origin) if from_address(state, origin) >= per_address => Err(QueueFull::Address),
            _ => Ok(()),
        }
    }

    /// Puts a conversation back in the queue whatever the bounds (a person had it already).
    pub fn put_back(&self, entry: Waiting) {
        insert(&mut self.inner.lock(), entry);
    }

    /// The customer wrote: a queued conversation shows the new words; for a held one the
    /// holder's reply timer starts (if it is not running).
    pub fn customer_wrote(&self, conversation: &ConversationId, text: &str, now: i64) {
        let mut state = self.inner.lock();
        if let Some(w) = state.queue.get_mut(conversation) {
            w.preview = super::preview(text);
            state.touch(conversation);
        } else if let Some(h) = state.holders.get_mut(conversation) {
            h.awaiting_reply_since.get_or_insert(now);
        }
    }

    /// Takes a conversation out of the queue for `agent`: atomic, one claimer wins.
    pub fn claim(
        &self,
        conversation: &ConversationId,
        agent: &Account,
        now: i64,
    ) -> Result<Waiting, ClaimError> {
        let mut state = self.inner.lock();
        if !state.queue.contains_key(conversation) {
            return Err(if state.holders.contains_key(conversation) {
                ClaimError::AlreadyClaimed
            } else {
                ClaimError::NotQueued
            });
        }
        let load = state.staff.get(&agent.id).map_or(0, |s| s.chats.len());
        if load as i64 >= agent.max_chats {
            return Err(ClaimError::AtCapacity);
        }
        let entry = state
            .queue
            .remove(conversation)
            .ok_or(ClaimError::NotQueued)?;
        state.touch(conversation);
        state.take(entry.clone(), agent.clone(), now);
        Ok(entry)
    }

    /// Assigns queued conversations to the least-loaded online agent of their team with room,
    /// highest priority first. Returns what was assigned, for the caller to announce.
    pub fn dispatch(&self, now: i64) -> Vec<(Waiting, Account)> {
        if !self.inner.settings.auto_assign {
            return Vec::new();
        }
        let mut state = self.inner.lock();
        if !state.staff.values().any(|s| s.sockets > 0) {
            return Vec::new();
        }
        let order: Vec<ConversationId> = state
            .ordered()
            .into_iter()
            .map(|w| w.conversation_id.clone())
            .collect();
        let mut assigned = Vec::new();
        for id in order {
            let Some(entry) = state.queue.get(&id) else {
                continue;
            };
            let pick = state
                .staff
                .values()
                .filter(|s| s.takes_new(&entry.team) && s.has_room())
                .filter(|s| !entry.declined.contains(&s.account.id))
                .min_by(|a, b| (a.chats.len(), &a.account.id).cmp(&(b.chats.len(), &b.account.id)))
                .map(|s| s.account.clone());
            if let Some(agent) = pick {
                if let Some(entry) = state.queue.remove(&id) {
                    state.touch(&id);
                    state.take(entry.clone(), agent.clone(), now);
                    assigned.push((entry, agent));
                }
            }
        }
        assigned
    }

    /// Assigns a conversation held by one agent to another directly (transfer). `None` if the
    /// target is not connected or has no room.
    pub fn hand_over(
        &self,
        conversation: &ConversationId,
        to: &AgentId,
        now: i64,
    ) -> Option<Account> {
        let mut state = self.inner.lock();
        let target = state
            .staff
            .get(to)
            .filter(|s| s.sockets > 0 && s.has_room())?;
        let target = target.account.clone();
        let mut entry = state.untake(conversation)?.entry;
        entry.alerts = entry.alerts.max(1); // not a first pickup: kept out of the wait estimate
        state.take(entry, target.clone(), now);
        Some(target)
    }

    /// The agent holding the conversation (cheap: for checks on every agent frame).
    pub fn holder_id(&self, conversation: &ConversationId) -> Option<AgentId> {
        let state = self.inner.lock();
        state.holders.get(conversation).map(|h| h.agent.id.clone())
    }

    /// Who holds the conversation, and since when.
    pub fn holding(&self, conversation: &ConversationId) -> Option<Holding> {
        self.inner.lock().holders.get(conversation).cloned()
    }

    /// The holder wrote to the customer: the reply timer stops until the customer writes again.
    /// True the first time the holder writes.
    pub fn agent_replied(&self, conversation: &ConversationId) -> bool {
        let mut state = self.inner.lock();
        let Some(h) = state.holders.get_mut(conversation) else {
            return false;
        };
        h.awaiting_reply_since = None;
        !std::mem::replace(&mut h.responded, true)
    }

    /// Takes the conversation from its holder.
    pub fn release(&self, conversation: &ConversationId) -> Option<Holding> {
        self.inner.lock().untake(conversation)
    }

    /// Takes a conversation out of the queue without assigning it (its customer left).
    pub fn abandon(&self, conversation: &ConversationId) -> Option<Waiting> {
        let mut state = self.inner.lock();
        let entry = state.queue.remove(conversation)?;
        state.touch(conversation);
        Some(entry)
    }

    /// Place in the queue (1 is next) and expected wait in seconds.
    pub fn position(&self, conversation: &ConversationId) -> Option<(u32, u32)> {
        let state = self.inner.lock();
        let index = state
            .ordered()
            .iter()
            .position(|w| &w.conversation_id == conversation)?;
        let position = index as u32 + 1;
        Some((position, self.eta(&state, position)))
    }

    /// Expected wait in seconds at `position`: the mean of recent pickups (or the default) per
    /// place in the queue.
    fn eta(&self, state: &State, position: u32) -> u32 {
        let per = if state.pickups_ms.is_empty() {
            self.inner.settings.default_wait_seconds as f64
        } else {
            state.pickups_ms.iter().sum::<i64>() as f64 / state.pickups_ms.len() as f64 / 1000.0
        };
        (per * position as f64).ceil().max(1.0) as u32
    }

    /// The first `limit` entries in queue order with their positions, and how many wait in all.
    pub fn snapshot(&self, limit: usize) -> (Vec<(u32, Waiting)>, usize) {
        let state = self.inner.lock();
        let entries = state
            .ordered()
            .into_iter()
            .take(limit)
            .enumerate()
            .map(|(i, w)| (i as u32 + 1, w.clone()))
            .collect();
        (entries, state.queue.len())
    }

    /// Records that the customer was told `position`.
    pub fn position_shown(&self, conversation: &ConversationId, position: u32) {
        if let Some(w) = self.inner.lock().queue.get_mut(conversation) {
            w.shown_position = position;
        }
    }

    /// Queued conversations whose place changed since the customer was last told:
    /// `(conversation, position, eta_seconds)`; they count as told.
    pub fn position_updates(&self) -> Vec<(ConversationId, u32, u32)> {
        let mut state = self.inner.lock();
        let moved: Vec<(ConversationId, u32)> = state
            .ordered()
            .iter()
            .enumerate()
            .map(|(i, w)| (w, i as u32 + 1))
            .filter(|(w, position)| w.shown_position != *position)
            .map(|(w, position)| (w.conversation_id.clone(), position))
            .collect();
        let mut updates = Vec::with_capacity(moved.len());
        for (conversation, position) in moved {
            let eta = self.eta(&state, position);
            if let Some(w) = state.queue.get_mut(&conversation) {
                w.shown_position = position;
            }
            updates.push((conversation, position, eta));
        }
        updates
    }

    /// Hands what changed in the queue since the last call to `tell`, under the desk's lock, so
    /// agents receive changes in the order they happened. `tell` must not wait.
    pub fn tell_changes(&self, tell: impl FnOnce(&Changes)) {
        let mut state = self.inner.lock();
        if state.changed.is_empty() {
            return;
        }
        let mut seen = HashSet::new();
        let changed: Vec<ConversationId> = std::mem::take(&mut state.changed)
            .into_iter()
            .rev()
            .filter(|c| seen.insert(c.clone()))
            .collect();
        let order = state.ordered();
        let mut changes = Changes {
            total: order.len(),
            ..Changes::default()
        };
        for id in changed.into_iter().rev() {
            match order.iter().position(|w| w.conversation_id == id) {
                Some(i) => changes.upserted.push((i as u32 + 1, order[i].clone())),
                None => changes.removed.push(id),
            }
        }
        tell(&changes);
    }

    /// Conversations waiting, in queue order.
    pub fn queued(&self) -> Vec<ConversationId> {
        let state = self.inner.lock();
        state
            .ordered()
            .into_iter()
            .map(|w| w.conversation_id.clone())
            .collect()
    }
}

fn insert(state: &mut State, entry: Waiting) {
    let id = entry.conversation_id.clone();
    state.queue.insert(id.clone(), entry);
    state.touch(&id);
}

fn from_address(state: &State, origin: IpAddr) -> usize {
    state
        .queue
        .values()
        .filter(|w| w.origin == Some(origin))
        .count()
}
