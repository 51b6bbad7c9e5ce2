//! The chaos run's verdict: each conversation's ledger against its stored transcript.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::ledger::{Ledger, Outbox};

/// What was checked and what failed, over every conversation.
#[derive(Debug, Default, Serialize)]
pub struct Verdict {
    /// Conversations checked.
    pub conversations: usize,
    /// Frames in the stored transcripts.
    pub stored_frames: usize,
    /// Customer messages acknowledged / written.
    pub customer_acked: usize,
    /// Customer messages written.
    pub customer_written: usize,
    /// Agent messages acknowledged.
    pub agent_acked: usize,
    /// Agent messages written.
    pub agent_written: usize,
    /// Messages never acknowledged (customer + agent); not required to arrive.
    pub unacknowledged: usize,
    /// Messages sent again after a reconnect.
    pub resent: usize,
    /// Frames the agents had to read back (missed live while away).
    pub agent_read_back: usize,
    /// Messages never acknowledged to their sender and stored at the very end, after the last
    /// frame a side received (the server was still working through a backlog of re-sent messages
    /// when the clients stopped): not required to arrive, like every unacknowledged message.
    pub stored_after_the_end: usize,
    /// Each failure, in words.
    pub failures: Vec<String>,
    /// Failures by kind.
    pub failure_counts: BTreeMap<&'static str, usize>,
}

impl Verdict {
    fn fail(&mut self, kind: &'static str, detail: String) {
        *self.failure_counts.entry(kind).or_default() += 1;
        if self.failures.len() < 50 {
            self.failures.push(format!("{kind}: {detail}"));
        }
    }

    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.failure_counts.is_empty()
    }

    /// Checks one conversation against its stored `transcript` (frames with `seq`).
    pub fn check(&mut self, ledger: &Ledger, transcript: &[Value]) {
        self.conversations += 1;
        self.stored_frames += transcript.len();
        let id = &ledger.id;
        let seqs: Vec<i64> = transcript
            .iter()
            .filter_map(|f| f["seq"].as_i64())
            .collect();
        let mut by_client_id: BTreeMap<(String, String), Vec<i64>> = BTreeMap::new();
        for f in transcript {
            if let (Some(from), Some(cid), Some(seq)) = (
                f["from"].as_str(),
                f["client_id"].as_str(),
                f["seq"].as_i64(),
            ) {
                by_client_id
                    .entry((from.to_owned(), cid.to_owned()))
                    .or_default()
                    .push(seq);
            }
        }
        for ((from, cid), stored) in &by_client_id {
            if stored.len() > 1 {
                self.fail(
                    "stored_twice",
                    format!("{id}: {from} message {cid} stored as seqs {stored:?}"),
                );
            }
        }
        for (who, outbox) in [("customer", &ledger.customer), ("agent", &ledger.agent)] {
            self.outbox(id, who, outbox, &by_client_id);
        }
        let expected = seqs.iter().copied();
        for (who, view) in [
            ("customer", &ledger.customer_view),
            ("agent", &ledger.agent_view),
        ] {
            let mut missing = view.missing(expected.clone());
            let late = late_unacknowledged(ledger, transcript, &missing, view.high);
            self.stored_after_the_end += late.len();
            missing.retain(|s| !late.contains(s));
            if !missing.is_empty() {
                let senders: BTreeMap<&str, usize> = transcript
                    .iter()
                    .filter(|f| f["seq"].as_i64().is_some_and(|s| missing.contains(&s)))
                    .fold(BTreeMap::new(), |mut m, f| {
                        *m.entry(f["from"].as_str().unwrap_or("status")).or_default() += 1;
                        m
                    });
                let got_after = view.delivered.range(missing[0]..).next().map(|(s, _)| *s);
                let trail = match who {
                    "customer" => format!(
                        "; {}; its latest connection events: {:?}",
                        acknowledged_when(ledger, transcript, &missing),
                        ledger.customer_trail
                    ),
                    _ => String::new(),
                };
                self.fail(
                    "not_delivered",
                    format!("{id}: the {who} never got seqs {missing:?} (from {senders:?}; the first seq it got after them: {got_after:?}; highest {}){trail}", view.high),
                );
            }
            let twice = view.duplicates();
            if !twice.is_empty() {
                self.fail(
                    "delivered_twice",
                    format!("{id}: the {who} got seqs {twice:?} more than once"),
                );
            }
            for (seq, after) in &view.out_of_order {
                self.fail(
                    "out_of_order",
                    format!("{id}: the {who} got seq {seq} after seq {after}"),
                );
            }
        }
        if let Some(stuck) = &ledger.customer_stuck {
            self.fail("stuck_socket", stuck.clone());
        }
        self.agent_read_back += ledger.agent_view.recovered.len();
        if let Some(max) = seqs.iter().max() {
            let extra: Vec<i64> = ledger
                .customer_view
                .delivered
                .keys()
                .filter(|s| *s > max)
                .copied()
                .collect();
            if !extra.is_empty() {
                self.fail(
                    "not_stored",
                    format!("{id}: the customer got seqs {extra:?} the store does not have"),
                );
            }
        }
    }

    fn outbox(
        &mut self,
        id: &str,
        who: &str,
        outbox: &Outbox,
        stored: &BTreeMap<(String, String), Vec<i64>>,
    ) {
        let written = outbox.written;
        match who {
            "customer" => {
                self.customer_written += written;
                self.customer_acked += outbox.acked.len();
            }
            _ => {
                self.agent_written += written;
                self.agent_acked += outbox.acked.len();
            }
        }
        self.unacknowledged += outbox.pending.len();
        self.resent += outbox.resent;
        for (cid, seq) in &outbox.acked {
            match stored.get(&(who.to_owned(), cid.clone())) {
                Some(seqs) if seqs.first() == Some(seq) => {}
                Some(seqs) => self.fail(
                    "ack_mismatch",
                    format!(
                        "{id}: {who} message {cid} acknowledged as seq {seq}, stored as {seqs:?}"
                    ),
                ),
                None => self.fail(
                    "acked_not_stored",
                    format!(
                        "{id}: {who} message {cid} acknowledged as seq {seq} but not in the store"
                    ),
                ),
            }
        }
        let acked_in_order: Vec<i64> = outbox
            .order
            .iter()
            .filter_map(|cid| outbox.acked.get(cid).copied())
            .collect();
        if let Some(w) = acked_in_order.windows(2).find(|w| w[0] >= w[1]) {
            self.fail(
                "sender_order",
                format!(
                    "{id}: {who} messages stored out of the order written (seq {} then {})",
                    w[0], w[1]
                ),
            );
        }
    }
}

/// Of the `missing` seqs, how many were agent messages acknowledged to the agent, and when
/// relative to the moment the customer's client stopped reading: what tells a frame the server
/// never sent from one stored while (or after) the run stopped its clients.
fn acknowledged_when(ledger: &Ledger, transcript: &[Value], missing: &[i64]) -> String {
    let mut offsets_ms = Vec::new();
    let mut unacknowledged = 0;
    for f in transcript {
        if !f["seq"].as_i64().is_some_and(|s| missing.contains(&s)) || f["from"] != "agent" {
            continue;
        }
        let cid = f["client_id"].as_str().unwrap_or_default();
        match (ledger.agent.acked_at.get(cid), ledger.customer_stopped) {
            (Some(at), Some(stopped)) => {
                let ms = if *at >= stopped {
                    at.duration_since(stopped).as_secs_f64() * 1000.0
                } else {
                    -(stopped.duration_since(*at).as_secs_f64() * 1000.0)
                };
                offsets_ms.push(ms.round() as i64);
            }
            _ => unacknowledged += 1,
        }
    }
    offsets_ms.sort_unstable();
    match (offsets_ms.first(), offsets_ms.last()) {
        (Some(first), Some(last)) => format!(
            "{} of them acknowledged to the agent, {first} ms to {last} ms after the customer's client stopped (negative: before); {unacknowledged} never acknowledged",
            offsets_ms.len()
        ),
        _ => format!("none of them acknowledged to the agent; {unacknowledged} agent messages never acknowledged"),
    }
}

/// Of the `missing` seqs, those that are a tail (after `high`, the last seq the side received)
/// made only of messages their sender never had acknowledged; empty if any other frame is among
/// them (then every missing seq counts).
fn late_unacknowledged(
    ledger: &Ledger,
    transcript: &[Value],
    missing: &[i64],
    high: i64,
) -> Vec<i64> {
    let pending = |from: &str, cid: &str| {
        let outbox = match from {
            "customer" => &ledger.customer,
            "agent" => &ledger.agent,
            _ => return false,
        };
        outbox.pending.iter().any(|p| p.client_id == cid)
    };
    let all_late = missing.iter().all(|seq| {
        *seq > high
            && transcript.iter().any(|f| {
                f["seq"].as_i64() == Some(*seq)
                    && pending(
                        f["from"].as_str().unwrap_or_default(),
                        f["client_id"].as_str().unwrap_or_default(),
                    )
            })
    });
    if all_late {
        missing.to_vec()
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn transcript() -> Vec<Value> {
        vec![
            json!({"seq": 1, "type": "status", "state": "queued"}),
            json!({"seq": 2, "type": "message", "from": "customer", "client_id": "c-0"}),
            json!({"seq": 3, "type": "message", "from": "agent", "client_id": "a-0"}),
        ]
    }

    fn complete() -> Ledger {
        let mut l = Ledger {
            id: "x".into(),
            ..Default::default()
        };
        let c = l.customer.write("c", 0);
        let a = l.agent.write("a", 0);
        l.customer_frame(&json!({"seq": 1}));
        l.customer_ack(&c.client_id, 2, false);
        l.customer_frame(&json!({"seq": 3, "from": "agent", "client_id": a.client_id}));
        l.agent_readback(&json!({"seq": 1}));
        l.agent_frame(&json!({"seq": 2, "from": "customer", "client_id": c.client_id}));
        l.agent_frame(&json!({"seq": 3, "from": "agent", "client_id": a.client_id}));
        l
    }

    #[test]
    fn a_complete_conversation_passes() {
        let mut v = Verdict::default();
        v.check(&complete(), &transcript());
        assert!(v.passed(), "{:?}", v.failures);
        assert_eq!(
            (v.customer_acked, v.agent_acked, v.agent_read_back),
            (1, 1, 1)
        );
    }

    #[test]
    fn an_unacknowledged_message_stored_at_the_very_end_need_not_arrive() {
        let mut l = complete();
        let late = l.agent.write("a", 0);
        let mut t = transcript();
        t.push(json!({"seq": 4, "type": "message", "from": "agent", "client_id": late.client_id}));
        let mut v = Verdict::default();
        v.check(&l, &t);
        assert!(v.passed(), "{:?}", v.failures);
        assert_eq!(v.stored_after_the_end, 2, "neither side got it");
        // Before a frame the customer did get, it is a gap: that fails.
        t.push(json!({"seq": 5, "type": "status", "state": "agent"}));
        l.customer_frame(&json!({"seq": 5}));
        l.agent_frame(&json!({"seq": 5}));
        let mut v = Verdict::default();
        v.check(&l, &t);
        assert_eq!(
            v.failure_counts.get("not_delivered"),
            Some(&2),
            "{:?}",
            v.failures
        );
    }

    #[test]
    fn a_message_stored_twice_fails() {
        let mut t = transcript();
        t.push(json!({"seq": 4, "type": "message", "from": "customer", "client_id": "c-0"}));
        let mut l = complete();
        l.customer_frame(&json!({"seq": 4}));
        l.agent_frame(&json!({"seq": 4}));
        let mut v = Verdict::default();
        v.check(&l, &t);
        assert_eq!(v.failure_counts.get("stored_twice"), Some(&1));
    }

    #[test]
    fn a_frame_the_customer_never_got_fails() {
        let mut t = transcript();
        t.push(json!({"seq": 4, "type": "message", "from": "agent", "client_id": "a-9"}));
        let mut l = complete();
        l.agent_frame(&json!({"seq": 4}));
        let mut v = Verdict::default();
        v.check(&l, &t);
        assert_eq!(v.failure_counts.get("not_delivered"), Some(&1));
        assert!(
            v.failures[0].contains("customer never got seqs [4]"),
            "{:?}",
            v.failures
        );
    }

    #[test]
    fn an_open_socket_left_behind_by_a_quiet_server_fails_though_a_resume_healed_it() {
        let mut l = complete();
        l.customer_stuck = Some("x: stored up to seq 3, the open socket had seq 2".into());
        let mut v = Verdict::default();
        v.check(&l, &transcript());
        assert_eq!(v.failure_counts.get("stuck_socket"), Some(&1));
    }

    #[test]
    fn an_acknowledged_message_missing_from_the_store_fails() {
        let mut l = complete();
        let extra = l.agent.write("a", 0);
        l.agent.acknowledge(&extra.client_id, 7);
        let mut v = Verdict::default();
        v.check(&l, &transcript());
        assert_eq!(v.failure_counts.get("acked_not_stored"), Some(&1));
    }
}
