//! The desk's timers: conversations nobody picked up, holders who stopped replying or stayed
//! away, customers who left the queue without a word; and business hours.

use super::Queue;
use crate::ids::ConversationId;
use crate::settings::TeamHours;

/// Timers that came due.
#[derive(Debug, Default, PartialEq)]
pub struct Due {
    /// Waiting longer than the pickup timeout, with the seconds waited: priority raised already.
    pub unpicked: Vec<(ConversationId, i64)>,
    /// Held by an agent who has not answered the customer within the reply timeout.
    pub unanswered: Vec<ConversationId>,
    /// Held by an agent who has been disconnected longer than the grace period.
    pub deserted: Vec<ConversationId>,
    /// Queued, and no customer socket has been connected for the abandon timeout.
    pub abandoned: Vec<ConversationId>,
}

impl Due {
    /// Nothing came due.
    pub fn is_empty(&self) -> bool {
        self.unpicked.is_empty()
            && self.unanswered.is_empty()
            && self.deserted.is_empty()
            && self.abandoned.is_empty()
    }
}

impl Queue {
    /// Timers that came due at `now`; pickup alerts raise the entry's priority at once.
    /// `customer_connected` says whether a conversation's customer has a socket open on this node
    /// now (it is called under the desk's lock and must not wait); with several nodes, a customer
    /// or an agent connected to another node counts as connected (as the others last told), so
    /// the one node that runs the timers times every entry.
    pub fn due(&self, now: i64, customer_connected: impl Fn(&ConversationId) -> bool) -> Due {
        let settings = &self.inner.settings;
        let ms = |seconds: f64| (seconds * 1000.0) as i64;
        let (pickup, reply) = (
            ms(settings.pickup_timeout_seconds),
            ms(settings.reply_timeout_seconds),
        );
        let (grace, abandon) = (
            ms(settings.disconnect_grace_seconds),
            ms(settings.abandon_after_seconds),
        );
        let mut state = self.inner.lock();
        let mut due = Due::default();
        let mut raised = Vec::new();
        // What other nodes told is as fresh as their last news: a customer on a node that has
        // not told since the entry was queued may be connected there.
        let told_since = state
            .elsewhere
            .values()
            .filter_map(|e| e.told_at(now))
            .min();
        let elsewhere: std::collections::HashSet<ConversationId> = state
            .queue
            .keys()
            .filter(|c| super::replica::customer_elsewhere(&state, c, now))
            .cloned()
            .collect();
        for w in state.queue.values_mut() {
            let waited = now - w.escalated_at;
            if pickup > 0 && waited >= pickup * (w.alerts as i64 + 1) {
                w.alerts += 1;
                w.priority += 1;
                raised.push(w.conversation_id.clone());
                due.unpicked
                    .push((w.conversation_id.clone(), waited / 1000));
            }
            if customer_connected(&w.conversation_id) || elsewhere.contains(&w.conversation_id) {
                w.customer_away_since = None;
            } else if told_since.is_some_and(|told| told < w.escalated_at) {
                // Not known yet.
            } else {
                let since = *w.customer_away_since.get_or_insert(now);
                if abandon > 0 && now - since >= abandon {
                    due.abandoned.push(w.conversation_id.clone());
                }
            }
        }
        for id in &raised {
            state.touch(id);
        }
        // Agents holding conversations and connected to no node: since when.
        let mut absent = std::mem::take(&mut state.absent);
        absent.retain(|agent, _| state.holders.values().any(|h| h.agent.id == *agent));
        for (c, h) in state.holders.iter() {
            let agent = &h.agent.id;
            let left_at = match state.staff.get(agent) {
                Some(s) if s.sockets > 0 => None,
                _ if super::replica::agent_elsewhere(&state, agent, now) => None,
                Some(s) => s.left_at,
                None => Some(*absent.entry(agent.clone()).or_insert(now)),
            };
            if left_at.is_none() {
                absent.remove(agent);
            }
            if left_at.is_some_and(|left| grace > 0 && now - left >= grace) {
                due.deserted.push(c.clone());
            } else if let Some(since) = h.awaiting_reply_since {
                if reply > 0 && now - since >= reply {
                    due.unanswered.push(c.clone());
                }
            }
        }
        state.absent = absent;
        due
    }
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
