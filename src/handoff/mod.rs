//! The human side of a hand-off: agents who are connected (presence, capacity, sockets), the queue
//! of conversations waiting for them (priority, team, waiting time), who owns which conversation,
//! automatic assignment, and the timers.
//!
//! Everything here is in memory under one short-lived lock (never held across an `.await`), which
//! makes a claim atomic: of two agents claiming at once exactly one takes the conversation out of
//! the queue. What must survive a restart (hand-off records, times, notes) is written to the store
//! by [`crate::conversation`], which drives the transitions. With several nodes this state moves to
//! the database (`FOR UPDATE SKIP LOCKED`) and a message bus.

pub mod accounts;
pub mod protocol;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::conversation::Outbound;
use crate::escalation::Reason;
use crate::settings::{HandoffSettings, TeamHours};
use crate::store::AgentRow;
use protocol::{AgentPresence, AgentServerFrame, Presence, QueueEntry};

/// Recent pickup times kept for the expected wait.
pub const PICKUPS_KEPT: usize = 20;

/// A conversation waiting for (or held by) an agent.
#[derive(Debug, Clone)]
pub struct Waiting {
    /// The conversation.
    pub conversation_id: String,
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
    /// The customer's latest message.
    pub preview: String,
    /// Agents who let it time out (not assigned to them again automatically).
    pub declined: HashSet<String>,
    /// Pickup alerts sent so far.
    pub alerts: u32,
    /// The queue position the customer was last told (0: none yet).
    pub shown_position: u32,
}

/// Who holds a conversation.
#[derive(Debug, Clone)]
pub struct Owner {
    /// The agent.
    pub agent: AgentRow,
    /// Since when (Unix ms).
    pub assigned_at: i64,
    /// Whether the agent has written to the customer since.
    pub replied: bool,
    /// The queue entry it came from.
    pub entry: Waiting,
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
    /// Stable code for the `claim_failed` frame.
    pub fn code(self) -> &'static str {
        match self {
            ClaimError::AlreadyClaimed => "already_claimed",
            ClaimError::NotQueued => "not_queued",
            ClaimError::AtCapacity => "at_capacity",
        }
    }

    /// In words, with what to do.
    pub fn message(self) -> &'static str {
        match self {
            ClaimError::AlreadyClaimed => {
                "another agent has just taken this conversation; pick another from the queue"
            }
            ClaimError::NotQueued => "this conversation is not waiting in the queue",
            ClaimError::AtCapacity => {
                "you already have as many chats as you can take; resolve or transfer one first"
            }
        }
    }
}

/// Timers that came due.
#[derive(Debug, Default)]
pub struct Due {
    /// Waiting longer than the pickup timeout: priority raised, alert sent.
    pub unpicked: Vec<(String, i64)>,
    /// Assigned agents who did not reply in time.
    pub unanswered: Vec<String>,
}

/// Handle to agents and the queue; clone it freely.
#[derive(Clone)]
pub struct Handoff {
    inner: Arc<Inner>,
}

struct Inner {
    settings: HandoffSettings,
    state: Mutex<State>,
    next_socket: AtomicU64,
}

#[derive(Default)]
struct State {
    agents: HashMap<String, Live>,
    queue: HashMap<String, Waiting>,
    owners: HashMap<String, Owner>,
    pickups_ms: VecDeque<i64>,
}

struct Live {
    info: AgentRow,
    status: Presence,
    sockets: Vec<(u64, mpsc::Sender<Outbound>)>,
    chats: HashSet<String>,
}

/// Keeps an agent's socket registered; when the agent's last socket closes they are offline.
pub struct AgentSocket {
    inner: Arc<Inner>,
    agent: String,
    id: u64,
}

impl Drop for AgentSocket {
    fn drop(&mut self) {
        let mut state = self.inner.lock();
        if let Some(live) = state.agents.get_mut(&self.agent) {
            live.sockets.retain(|(id, _)| *id != self.id);
            if live.sockets.is_empty() {
                state.agents.remove(&self.agent);
            }
        }
    }
}

impl State {
    /// The queue in the order it is served.
    fn ordered(&self) -> Vec<&Waiting> {
        let mut order: Vec<&Waiting> = self.queue.values().collect();
        order.sort_by(|a, b| queue_order(a, b));
        order
    }
}

impl Live {
    /// Online (not away) and serving `team` (an agent with no teams serves every team).
    fn takes_new(&self, team: &str) -> bool {
        self.status == Presence::Online
            && (self.info.teams.is_empty() || self.info.teams.iter().any(|t| t == team))
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Handoff {
    /// An empty queue with these settings.
    pub fn new(settings: HandoffSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                settings,
                state: Mutex::new(State::default()),
                next_socket: AtomicU64::new(1),
            }),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &HandoffSettings {
        &self.inner.settings
    }

    /// Registers an agent's socket; the agent is online until the returned guard drops.
    pub fn connect(&self, agent: AgentRow, tx: mpsc::Sender<Outbound>) -> AgentSocket {
        let id = self.inner.next_socket.fetch_add(1, Ordering::Relaxed);
        let mut state = self.inner.lock();
        let chats: HashSet<String> = state
            .owners
            .iter()
            .filter(|(_, o)| o.agent.id == agent.id)
            .map(|(c, _)| c.clone())
            .collect();
        let live = state.agents.entry(agent.id.clone()).or_insert(Live {
            info: agent.clone(),
            status: Presence::Online,
            sockets: Vec::new(),
            chats,
        });
        live.sockets.push((id, tx));
        AgentSocket {
            inner: self.inner.clone(),
            agent: agent.id,
            id,
        }
    }

    /// Sets an agent's presence (online or away).
    pub fn set_presence(&self, agent: &str, status: Presence) {
        if let Some(live) = self.inner.lock().agents.get_mut(agent) {
            live.status = status;
        }
    }

    /// The agents connected now, by name.
    pub fn connected(&self) -> Vec<AgentPresence> {
        let state = self.inner.lock();
        let mut agents: Vec<AgentPresence> = state
            .agents
            .values()
            .map(|live| AgentPresence {
                id: live.info.id.clone(),
                name: live.info.name.clone(),
                teams: live.info.teams.clone(),
                status: live.status,
                chats: live.chats.len(),
                max_chats: live.info.max_chats,
            })
            .collect();
        agents.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        agents
    }

    /// An agent's presence.
    pub fn presence(&self, agent: &str) -> Presence {
        self.inner
            .lock()
            .agents
            .get(agent)
            .map_or(Presence::Offline, |l| l.status)
    }

    /// Whether a person can take a conversation for `team` now: the team is within its hours and
    /// an agent who serves it is online (perhaps busy: the chat waits for them). `Err` says why
    /// not: `outside_hours` or `no_agent_online`.
    pub fn available(&self, team: &str, now_ms: i64) -> Result<(), &'static str> {
        if let Some(hours) = self.inner.settings.hours.get(team) {
            if !within_hours(hours, now_ms) {
                return Err("outside_hours");
            }
        }
        let state = self.inner.lock();
        if state.agents.values().any(|a| a.takes_new(team)) {
            Ok(())
        } else {
            Err("no_agent_online")
        }
    }

    /// Puts back what was waiting or held when the server last stopped: `queued` return to the
    /// queue (the pickup alerts they would have had count as sent, and raise their priority as
    /// they would have), `held` to their agents, who find them on reconnecting with a fresh reply
    /// window; `pickups_ms` (newest first) feed the wait estimate again.
    pub fn restore(
        &self,
        queued: Vec<Waiting>,
        held: Vec<Owner>,
        pickups_ms: Vec<i64>,
        now_ms: i64,
    ) {
        let pickup = (self.inner.settings.pickup_timeout_seconds * 1000.0) as i64;
        let mut state = self.inner.lock();
        for mut w in queued {
            if pickup > 0 {
                let missed = ((now_ms - w.escalated_at) / pickup).max(0);
                w.alerts = missed as u32;
                w.priority += missed;
            }
            state.queue.insert(w.conversation_id.clone(), w);
        }
        for o in held {
            if let Some(live) = state.agents.get_mut(&o.agent.id) {
                live.chats.insert(o.entry.conversation_id.clone());
            }
            state.owners.insert(o.entry.conversation_id.clone(), o);
        }
        state.pickups_ms = pickups_ms.into_iter().take(PICKUPS_KEPT).collect();
    }

    /// Puts a conversation in the queue.
    pub fn enqueue(&self, entry: Waiting) {
        self.inner
            .lock()
            .queue
            .insert(entry.conversation_id.clone(), entry);
    }

    /// Updates the preview of a queued conversation (the customer wrote again).
    pub fn set_preview(&self, conversation: &str, text: &str) {
        if let Some(w) = self.inner.lock().queue.get_mut(conversation) {
            w.preview = preview(text);
        }
    }

    /// Takes a conversation out of the queue for `agent`: atomic, one claimer wins.
    pub fn claim(
        &self,
        conversation: &str,
        agent: &AgentRow,
        now_ms: i64,
    ) -> Result<Waiting, ClaimError> {
        let mut state = self.inner.lock();
        if !state.queue.contains_key(conversation) {
            return Err(if state.owners.contains_key(conversation) {
                ClaimError::AlreadyClaimed
            } else {
                ClaimError::NotQueued
            });
        }
        let load = state.agents.get(&agent.id).map_or(0, |l| l.chats.len());
        if load as i64 >= agent.max_chats {
            return Err(ClaimError::AtCapacity);
        }
        let entry = state.queue.remove(conversation).expect("checked above");
        Self::take(&mut state, entry.clone(), agent.clone(), now_ms);
        Ok(entry)
    }

    fn take(state: &mut State, entry: Waiting, agent: AgentRow, now_ms: i64) {
        if entry.alerts == 0 && entry.declined.is_empty() {
            state.pickups_ms.push_front(now_ms - entry.escalated_at);
            state.pickups_ms.truncate(PICKUPS_KEPT);
        }
        if let Some(live) = state.agents.get_mut(&agent.id) {
            live.chats.insert(entry.conversation_id.clone());
        }
        state.owners.insert(
            entry.conversation_id.clone(),
            Owner {
                agent,
                assigned_at: now_ms,
                replied: false,
                entry,
            },
        );
    }

    /// Assigns queued conversations to the least-loaded online agent of their team with room,
    /// highest priority first. Returns what was assigned, for the caller to announce.
    pub fn dispatch(&self, now_ms: i64) -> Vec<(Waiting, AgentRow)> {
        if !self.inner.settings.auto_assign {
            return Vec::new();
        }
        let mut state = self.inner.lock();
        let order: Vec<Waiting> = state.ordered().into_iter().cloned().collect();
        let mut assigned = Vec::new();
        for entry in order {
            let pick = state
                .agents
                .values()
                .filter(|a| a.takes_new(&entry.team))
                .filter(|a| (a.chats.len() as i64) < a.info.max_chats)
                .filter(|a| !entry.declined.contains(&a.info.id))
                .min_by_key(|a| (a.chats.len(), a.info.id.clone()))
                .map(|a| a.info.clone());
            if let Some(agent) = pick {
                state.queue.remove(&entry.conversation_id);
                Self::take(&mut state, entry.clone(), agent.clone(), now_ms);
                assigned.push((entry, agent));
            }
        }
        assigned
    }

    /// Assigns a conversation held by one agent to another directly (transfer). Fails if the
    /// target is not connected or has no room.
    pub fn hand_over(&self, conversation: &str, to: &str, now_ms: i64) -> Option<AgentRow> {
        let mut state = self.inner.lock();
        let target = state.agents.get(to)?;
        if target.chats.len() as i64 >= target.info.max_chats {
            return None;
        }
        let target = target.info.clone();
        let owner = state.owners.remove(conversation)?;
        if let Some(live) = state.agents.get_mut(&owner.agent.id) {
            live.chats.remove(conversation);
        }
        let mut entry = owner.entry;
        entry.alerts = 1; // not a first pickup: keep it out of the wait estimate
        Self::take(&mut state, entry, target.clone(), now_ms);
        Some(target)
    }

    /// Who holds the conversation.
    pub fn owner(&self, conversation: &str) -> Option<Owner> {
        self.inner.lock().owners.get(conversation).cloned()
    }

    /// The holder wrote to the customer: the reply timer stops.
    pub fn mark_replied(&self, conversation: &str) {
        if let Some(o) = self.inner.lock().owners.get_mut(conversation) {
            o.replied = true;
        }
    }

    /// Takes the conversation from its holder.
    pub fn release(&self, conversation: &str) -> Option<Owner> {
        let mut state = self.inner.lock();
        let owner = state.owners.remove(conversation)?;
        if let Some(live) = state.agents.get_mut(&owner.agent.id) {
            live.chats.remove(conversation);
        }
        Some(owner)
    }

    /// Removes a conversation from the queue (resolved or lost).
    pub fn forget(&self, conversation: &str) {
        let mut state = self.inner.lock();
        state.queue.remove(conversation);
    }

    /// Place in the queue (1 is next) and expected wait in seconds.
    pub fn position(&self, conversation: &str) -> Option<(u32, u32)> {
        let state = self.inner.lock();
        let position = state
            .ordered()
            .iter()
            .position(|w| w.conversation_id == conversation)? as u32
            + 1;
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

    /// The queue as agents see it.
    pub fn snapshot(&self, now_ms: i64) -> Vec<QueueEntry> {
        let state = self.inner.lock();
        state
            .ordered()
            .into_iter()
            .enumerate()
            .map(|(i, w)| QueueEntry {
                conversation_id: w.conversation_id.clone(),
                position: i as u32 + 1,
                priority: w.priority,
                team: w.team.clone(),
                reasons: w.reasons.clone(),
                waiting_seconds: (now_ms - w.escalated_at) / 1000,
                escalated_at: w.escalated_at,
                customer: w.customer.clone(),
                preview: w.preview.clone(),
            })
            .collect()
    }

    /// Records that the customer was told `position`.
    pub fn position_shown(&self, conversation: &str, position: u32) {
        if let Some(w) = self.inner.lock().queue.get_mut(conversation) {
            w.shown_position = position;
        }
    }

    /// Queued conversations whose place changed since the customer was last told:
    /// `(conversation, position, eta_seconds)`; they count as told.
    pub fn position_updates(&self) -> Vec<(String, u32, u32)> {
        let mut state = self.inner.lock();
        let moved: Vec<(String, u32)> = state
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

    /// Conversations waiting, in queue order.
    pub fn queued(&self) -> Vec<String> {
        let state = self.inner.lock();
        state
            .ordered()
            .into_iter()
            .map(|w| w.conversation_id.clone())
            .collect()
    }

    /// Timers that came due at `now_ms`; pickup alerts raise the entry's priority at once.
    pub fn due(&self, now_ms: i64) -> Due {
        let pickup = (self.inner.settings.pickup_timeout_seconds * 1000.0) as i64;
        let reply = (self.inner.settings.reply_timeout_seconds * 1000.0) as i64;
        let mut state = self.inner.lock();
        let mut due = Due::default();
        for w in state.queue.values_mut() {
            let waited = now_ms - w.escalated_at;
            if pickup > 0 && waited >= pickup * (w.alerts as i64 + 1) {
                w.alerts += 1;
                w.priority += 1;
                due.unpicked
                    .push((w.conversation_id.clone(), waited / 1000));
            }
        }
        for (c, o) in &state.owners {
            if reply > 0 && !o.replied && now_ms - o.assigned_at >= reply {
                due.unanswered.push(c.clone());
            }
        }
        due
    }

    /// Sends a frame to one agent's sockets.
    pub async fn send_to_agent(&self, agent: &str, frame: &AgentServerFrame) {
        let targets = self.senders(|id| id == agent);
        send_all(targets, frame.to_json().into()).await;
    }

    /// Sends a frame to every connected agent.
    pub async fn broadcast(&self, frame: &AgentServerFrame) {
        let targets = self.senders(|_| true);
        send_all(targets, frame.to_json().into()).await;
    }

    /// Sends every connected agent the queue as it is now.
    pub async fn publish_queue(&self, now_ms: i64) {
        self.broadcast(&AgentServerFrame::Queue {
            entries: self.snapshot(now_ms),
        })
        .await;
    }

    /// Shows a frame of a conversation (as the customer sees it) to the agent who holds it.
    pub async fn forward(&self, conversation: &str, frame: &str) {
        let agent = match self.inner.lock().owners.get(conversation) {
            Some(o) => o.agent.id.clone(),
            None => return,
        };
        let wrapped = format!(
            r#"{{"type":"event","conversation_id":{},"frame":{frame}}}"#,
            serde_json::Value::from(conversation)
        );
        let targets = self.senders(|id| id == agent);
        send_all(targets, wrapped.into()).await;
    }

    fn senders(&self, which: impl Fn(&str) -> bool) -> Vec<mpsc::Sender<Outbound>> {
        self.inner
            .lock()
            .agents
            .iter()
            .filter(|(id, _)| which(id))
            .flat_map(|(_, l)| l.sockets.iter().map(|(_, tx)| tx.clone()))
            .collect()
    }
}

async fn send_all(targets: Vec<mpsc::Sender<Outbound>>, text: Outbound) {
    for tx in targets {
        let _ = tx.send_timeout(text.clone(), Duration::from_secs(1)).await;
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
    let mut p: String = text.chars().take(140).collect();
    if p.len() < text.len() {
        p.push('…');
    }
    p
}

/// Whether `now_ms` falls within the team's opening hours.
pub fn within_hours(hours: &TeamHours, now_ms: i64) -> bool {
    let local_min = now_ms.div_euclid(60_000) + hours.utc_offset_minutes as i64;
    let days = local_min.div_euclid(24 * 60);
    let minute = local_min.rem_euclid(24 * 60);
    // 1970-01-01 was a Thursday (4).
    let weekday = ((days + 3).rem_euclid(7) + 1) as u8;
    let parse = |s: &str| {
        let (h, m) = s.split_once(':').unwrap_or((s, "0"));
        h.trim().parse::<i64>().unwrap_or(0) * 60 + m.trim().parse::<i64>().unwrap_or(0)
    };
    hours.days.contains(&weekday) && minute >= parse(&hours.open) && minute < parse(&hours.close)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: &str, teams: &[&str], max: i64) -> AgentRow {
        AgentRow {
            id: id.into(),
            name: id.into(),
            email: format!("{id}@example.com"),
            role: "agent".into(),
            teams: teams.iter().map(|t| t.to_string()).collect(),
            max_chats: max,
        }
    }

    fn waiting(id: &str, team: &str, priority: i64, at: i64) -> Waiting {
        Waiting {
            conversation_id: id.into(),
            handoff_id: 1,
            team: team.into(),
            priority,
            reasons: Vec::new(),
            escalated_at: at,
            customer: None,
            preview: String::new(),
            declined: HashSet::new(),
            alerts: 0,
            shown_position: 0,
        }
    }

    #[test]
    fn business_hours_follow_the_team_time_zone_and_days() {
        let hours = TeamHours::default(); // Mon–Fri 09:00–17:00 UTC
                                          // 2024-01-01 was a Monday.
        let monday_10 = 1_704_103_200_000;
        assert!(within_hours(&hours, monday_10));
        assert!(!within_hours(&hours, monday_10 + 8 * 3_600_000)); // 18:00
        assert!(!within_hours(&hours, monday_10 + 5 * 86_400_000)); // Saturday
        let tokyo = TeamHours {
            utc_offset_minutes: 9 * 60,
            ..TeamHours::default()
        };
        assert!(!within_hours(&tokyo, monday_10)); // 19:00 in Tokyo
    }

    #[tokio::test]
    async fn upset_and_sensitive_go_first_then_the_longest_waiting() {
        let h = Handoff::new(HandoffSettings::default());
        h.enqueue(waiting("old", "general", 0, 1));
        h.enqueue(waiting("new", "general", 0, 2));
        h.enqueue(waiting("upset", "general", 2, 3));
        assert_eq!(h.queued(), ["upset", "old", "new"]);
        assert_eq!(h.position("new").unwrap().0, 3);
    }

    #[tokio::test]
    async fn assignment_goes_to_the_least_loaded_agent_of_the_team_within_capacity() {
        let h = Handoff::new(HandoffSettings::default());
        let (tx, _rx) = mpsc::channel(8);
        let _a = h.connect(agent("ann", &["billing"], 2), tx.clone());
        let _b = h.connect(agent("bob", &["billing"], 1), tx.clone());
        let _c = h.connect(agent("cat", &["orders"], 5), tx);
        for (i, id) in ["c1", "c2", "c3", "c4"].iter().enumerate() {
            h.enqueue(waiting(id, "billing", 0, i as i64));
        }
        let assigned: Vec<(String, String)> = h
            .dispatch(10)
            .into_iter()
            .map(|(w, a)| (w.conversation_id, a.id))
            .collect();
        assert_eq!(
            assigned,
            [
                ("c1".to_string(), "ann".to_string()),
                ("c2".into(), "bob".into()),
                ("c3".into(), "ann".into())
            ]
        );
        assert_eq!(h.queued(), ["c4"], "nobody of billing has room left");
        assert_eq!(
            h.claim("c1", &agent("cat", &[], 5), 11).unwrap_err(),
            ClaimError::AlreadyClaimed
        );
    }

    #[tokio::test]
    async fn a_restored_entry_counts_the_alerts_it_missed_and_its_holder_finds_it_on_connecting() {
        let settings = HandoffSettings {
            pickup_timeout_seconds: 10.0,
            ..HandoffSettings::default()
        };
        let h = Handoff::new(settings);
        let held = Owner {
            agent: agent("ann", &[], 1),
            assigned_at: 0,
            replied: true,
            entry: waiting("held", "general", 0, 0),
        };
        let now = 35_000;
        h.restore(
            vec![waiting("old", "general", 1, 0)],
            vec![held],
            vec![4_000, 6_000],
            now,
        );
        assert_eq!(h.position("old"), Some((1, 5)), "the wait estimate is back");
        assert!(
            h.due(now).unpicked.is_empty(),
            "three missed alerts are not sent at once"
        );
        assert_eq!(h.due(40_000).unpicked, [("old".to_string(), 40)]);
        assert_eq!(h.snapshot(now)[0].priority, 1 + 3 + 1);
        let (tx, _rx) = mpsc::channel(8);
        let _ann = h.connect(agent("ann", &[], 1), tx);
        assert_eq!(
            h.claim("old", &agent("ann", &[], 1), now).unwrap_err(),
            ClaimError::AtCapacity,
            "the restored chat counts against Ann's capacity"
        );
    }

    #[tokio::test]
    async fn only_an_online_agent_of_the_team_makes_a_person_available() {
        let h = Handoff::new(HandoffSettings::default());
        let (tx, _rx) = mpsc::channel(8);
        let _orders = h.connect(agent("cat", &["orders"], 5), tx.clone());
        assert_eq!(h.available("billing", 0), Err("no_agent_online"));
        let _ann = h.connect(agent("ann", &["billing"], 1), tx);
        h.set_presence("ann", Presence::Away);
        assert_eq!(h.available("billing", 0), Err("no_agent_online"));
        h.set_presence("ann", Presence::Online);
        assert_eq!(h.available("billing", 0), Ok(()));
    }
}
