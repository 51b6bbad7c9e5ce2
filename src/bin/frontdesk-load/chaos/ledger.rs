//! What each side of one conversation sent, had acknowledged and received, kept by the chaos
//! clients as frames arrive; checked against the stored transcript at the end (`verify`).
//!
//! Customer side: a frame with a `seq` counts as delivered when it arrives live or in
//! `welcome.missed`; an `ack` delivers the customer's own message's `seq`. Each `seq` must be
//! delivered exactly once, and each new one must come after every `seq` delivered before it.
//! Agent side: frames arrive live as `event`; what an agent missed while away it reads back, as
//! the console does (the context packet of `assigned`, the transcript after reconnecting): those
//! fill gaps but never count as a second delivery. A `seq` arriving live twice is a duplicate.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use std::time::Instant;

use serde_json::Value;

/// A message written and not yet acknowledged.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Its idempotency key.
    pub client_id: String,
    /// Its text.
    pub text: String,
    /// The highest `seq` its side had seen when it was written, sent with it every time (as the
    /// widget and the console send `seen`).
    pub seen: i64,
}

/// One side's messages: written, pending, acknowledged.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Messages written so far (the next gets this number).
    pub written: usize,
    /// Written, not acknowledged, in the order written.
    pub pending: Vec<Pending>,
    /// Acknowledged: client id → seq.
    pub acked: BTreeMap<String, i64>,
    /// When each acknowledged message was acknowledged.
    pub acked_at: BTreeMap<String, Instant>,
    /// Client ids in the order written.
    pub order: Vec<String>,
    /// Times a pending message was sent again after a reconnect.
    pub resent: usize,
}

impl Outbox {
    /// Writes the next message, its side having seen up to `seen`; returns it (to send now if
    /// connected).
    pub fn write(&mut self, prefix: &str, seen: i64) -> Pending {
        self.write_padded(prefix, 0, seen)
    }

    /// Writes the next message, padded to at least `chars` characters.
    pub fn write_padded(&mut self, prefix: &str, chars: usize, seen: i64) -> Pending {
        let client_id = format!("{prefix}-{}", self.written);
        self.written += 1;
        let mut text = format!("chaos message {client_id}: is everything still here in order?");
        while text.len() < chars {
            text.push_str(" and still in order?");
        }
        let p = Pending {
            client_id: client_id.clone(),
            text,
            seen,
        };
        self.order.push(client_id);
        self.pending.push(p.clone());
        p
    }

    /// `client_id` was acknowledged as `seq` (an ack, an echo, or found in a transcript).
    pub fn acknowledge(&mut self, client_id: &str, seq: i64) {
        if let Some(i) = self.pending.iter().position(|p| p.client_id == client_id) {
            self.pending.remove(i);
            self.acked.insert(client_id.to_owned(), seq);
            self.acked_at.insert(client_id.to_owned(), Instant::now());
        }
    }
}

/// What one side received, by `seq`.
#[derive(Debug, Default)]
pub struct View {
    /// Deliveries of each seq (live frames, `missed`, and for customers their own acks).
    pub delivered: BTreeMap<i64, u32>,
    /// Seqs filled in from a read-back (agents only), never delivered live.
    pub recovered: BTreeSet<i64>,
    /// Highest seq delivered.
    pub high: i64,
    /// Deliveries that came after a higher seq had been delivered.
    pub out_of_order: Vec<(i64, i64)>,
}

impl View {
    /// A delivery of `seq`.
    pub fn deliver(&mut self, seq: i64) {
        let count = self.delivered.entry(seq).or_default();
        *count += 1;
        if *count == 1 && seq < self.high && !self.recovered.contains(&seq) {
            self.out_of_order.push((seq, self.high));
        }
        self.high = self.high.max(seq);
    }

    /// A frame read back (not delivered): fills a gap only.
    pub fn recover(&mut self, seq: i64) {
        if !self.delivered.contains_key(&seq) {
            self.recovered.insert(seq);
        }
    }

    /// Seq delivered more than once.
    pub fn duplicates(&self) -> Vec<i64> {
        self.delivered
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(s, _)| *s)
            .collect()
    }

    /// Seqs of `expected` neither delivered nor recovered.
    pub fn missing(&self, expected: impl IntoIterator<Item = i64>) -> Vec<i64> {
        expected
            .into_iter()
            .filter(|s| !self.delivered.contains_key(s) && !self.recovered.contains(s))
            .collect()
    }
}

/// Both sides of one conversation.
#[derive(Debug, Default)]
pub struct Ledger {
    /// The conversation's id.
    pub id: String,
    /// Its number in the run (used in client ids).
    pub number: usize,
    /// The customer's session token.
    pub session: String,
    /// The agent holding it, by index, as far as the agents have been told.
    pub holder: Option<usize>,
    /// The customer's messages.
    pub customer: Outbox,
    /// The agents' messages.
    pub agent: Outbox,
    /// What the customer received.
    pub customer_view: View,
    /// What the agents received.
    pub agent_view: View,
    /// The customer's latest connection events (resumes, closes, failures), for a failure's
    /// report: what happened to the socket that missed frames.
    pub customer_trail: VecDeque<String>,
    /// When the customer's client was stopped (it reads nothing after).
    pub customer_stopped: Option<Instant>,
    /// Whether the customer's client has a socket open now (as far as it knows).
    pub customer_live: bool,
    /// Set when the server, quiet for seconds, had not sent frames it stored to the customer's
    /// open socket (the end-of-run catch-up found it behind without the socket being closed):
    /// a widget cannot know it is behind, so this fails the run even though a resume heals it.
    pub customer_stuck: Option<String>,
}

/// Connection events kept per customer.
const TRAIL: usize = 12;

impl Ledger {
    /// Notes a customer connection event (the latest [`TRAIL`] are kept).
    pub fn customer_event(&mut self, event: String) {
        if self.customer_trail.len() == TRAIL {
            self.customer_trail.pop_front();
        }
        self.customer_trail.push_back(event);
    }

    /// A frame the customer received live or in `missed`.
    pub fn customer_frame(&mut self, frame: &Value) {
        let Some(seq) = frame["seq"].as_i64() else {
            return;
        };
        self.customer_view.deliver(seq);
        if frame["from"] == "customer" {
            if let Some(id) = frame["client_id"].as_str() {
                self.customer.acknowledge(id, seq);
            }
        }
    }

    /// An `ack` of one of the customer's messages.
    pub fn customer_ack(&mut self, client_id: &str, seq: i64, duplicate: bool) {
        if !duplicate || !self.customer.acked.contains_key(client_id) {
            self.customer_view.deliver(seq);
        }
        self.customer.acknowledge(client_id, seq);
    }

    /// A frame an agent received live (an `event`'s frame).
    pub fn agent_frame(&mut self, frame: &Value) {
        let Some(seq) = frame["seq"].as_i64() else {
            return;
        };
        self.agent_view.deliver(seq);
        self.agent_echo(frame, seq);
    }

    /// A frame an agent read back (context packet or transcript).
    pub fn agent_readback(&mut self, frame: &Value) {
        let Some(seq) = frame["seq"].as_i64() else {
            return;
        };
        self.agent_view.recover(seq);
        self.agent_echo(frame, seq);
    }

    fn agent_echo(&mut self, frame: &Value, seq: i64) {
        if frame["from"] == "agent" {
            if let Some(id) = frame["client_id"].as_str() {
                self.agent.acknowledge(id, seq);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_lost_ack_is_recovered_from_missed_and_not_sent_again() {
        let mut l = Ledger::default();
        let m = l.customer.write("c0", 0);
        l.customer_frame(&json!({"seq": 1, "type": "status"}));
        // The ack never came; the resumed socket's `missed` holds the stored message.
        l.customer_frame(
            &json!({"seq": 2, "type": "message", "from": "customer", "client_id": m.client_id}),
        );
        assert!(l.customer.pending.is_empty());
        assert_eq!(l.customer.acked[&m.client_id], 2);
        assert!(l.customer_view.duplicates().is_empty());
        assert!(l.customer_view.missing(1..=2).is_empty());
    }

    #[test]
    fn a_frame_dropped_behind_a_later_ack_is_a_gap() {
        let mut l = Ledger::default();
        let m = l.customer.write("c0", 0);
        l.customer_frame(&json!({"seq": 1}));
        // seq 2 (an agent message) never arrives; the ack of seq 3 does.
        l.customer_ack(&m.client_id, 3, false);
        assert_eq!(l.customer_view.missing(1..=3), vec![2]);
    }

    #[test]
    fn a_frame_twice_is_a_duplicate_and_late_frames_are_out_of_order() {
        let mut v = View::default();
        v.deliver(1);
        v.deliver(3);
        v.deliver(2);
        v.deliver(3);
        assert_eq!(v.duplicates(), vec![3]);
        assert_eq!(v.out_of_order, vec![(2, 3)]);
    }

    #[test]
    fn read_back_fills_agent_gaps_without_counting_twice() {
        let mut l = Ledger::default();
        let m = l.agent.write("a0", 0);
        l.agent_frame(&json!({"seq": 1}));
        l.agent_readback(&json!({"seq": 1}));
        l.agent_readback(&json!({"seq": 2, "from": "agent", "client_id": m.client_id}));
        assert!(l.agent_view.duplicates().is_empty());
        assert!(l.agent_view.missing(1..=2).is_empty());
        assert_eq!(l.agent.acked[&m.client_id], 2);
        // Live after being read back is not out of order.
        l.agent_frame(&json!({"seq": 2}));
        assert!(l.agent_view.out_of_order.is_empty());
    }
}
