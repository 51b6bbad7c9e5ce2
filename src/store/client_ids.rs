//! The SQLite writer's memory of the client ids each conversation has stored, so a re-sent
//! message is found without an index on `events (conversation_id, client_id)`.
//!
//! That index cost more than anything else a relayed message stores: each message's entry lands
//! on a page of its own conversation's part of the index, so each commit wrote one more page to
//! the log (docs/BENCHMARKS.md, "What a stored message's rows cost"). The writer is the only
//! writer of messages with client ids on SQLite, and it holds the write lock while it checks and
//! inserts, so it can know them itself:
//!
//! - a conversation's ids are read once, when a batch first needs them (the conversation's events
//!   are found by their primary key), and remembered with the conversation's `last_seq` they
//!   were read at;
//! - a batch trusts what it remembers only if the conversation's `last_seq`, read in the batch's
//!   own transaction, is still that one: a frame stored by anyone else (a resolution's status
//!   frames, another process) moved it, and the ids are read again;
//! - after a commit the new ids are added only when the batch's new numbers follow the
//!   remembered `last_seq` without a gap; otherwise the conversation is forgotten and read again
//!   next time;
//! - past [`MOST_IDS`] ids in all, everything is forgotten and read again as needed.

use std::collections::HashMap;

/// The most client ids remembered in all (a few MB); past it the memory starts over.
const MOST_IDS: usize = 200_000;

/// What one conversation has stored: each client id's number and sender, complete as of
/// `last_seq`.
#[derive(Debug, Default)]
pub(super) struct Known {
    last_seq: i64,
    ids: HashMap<Box<str>, (i64, Box<str>)>,
}

impl Known {
    /// A conversation whose ids were read at `last_seq`: `(client id, seq, sender)` each.
    pub(super) fn read_at(last_seq: i64, rows: Vec<(String, i64, String)>) -> Self {
        let ids = rows
            .into_iter()
            .map(|(id, seq, sender)| (id.into_boxed_str(), (seq, sender.into_boxed_str())))
            .collect();
        Self { last_seq, ids }
    }

    /// The number and sender stored with `client_id`.
    pub(super) fn get(&self, client_id: &str) -> Option<(i64, &str)> {
        self.ids
            .get(client_id)
            .map(|(seq, sender)| (*seq, sender.as_ref()))
    }
}

/// The writer's memory: conversation id → what it has stored.
#[derive(Debug, Default)]
pub(super) struct ClientIds {
    conversations: HashMap<Box<str>, Known>,
    /// Client ids remembered, all conversations together.
    count: usize,
}

impl ClientIds {
    /// What `conversation` has stored, if remembered as of `last_seq` (the number read in the
    /// current transaction); a conversation remembered as of another number is forgotten.
    pub(super) fn current(&mut self, conversation: &str, last_seq: i64) -> Option<&Known> {
        let fresh = self
            .conversations
            .get(conversation)
            .map(|known| known.last_seq == last_seq);
        match fresh {
            Some(true) => self.conversations.get(conversation),
            Some(false) => {
                self.forget(conversation);
                None
            }
            None => None,
        }
    }

    /// What `conversation` has stored, as remembered: for a batch that has checked it with
    /// [`ClientIds::current`] (or just read it) in its own transaction.
    pub(super) fn remembered(&self, conversation: &str) -> Option<&Known> {
        self.conversations.get(conversation)
    }

    /// Whether `conversation` is remembered at all (as of any number).
    pub(super) fn remembers(&self, conversation: &str) -> bool {
        self.conversations.contains_key(conversation)
    }

    /// Remembers what was just read of `conversation`.
    pub(super) fn insert(&mut self, conversation: &str, known: Known) {
        self.forget(conversation);
        self.count += known.ids.len();
        self.conversations.insert(conversation.into(), known);
    }

    /// Forgets everything when more than [`MOST_IDS`] are remembered; called before a batch
    /// reads, so what a batch reads stays until it is done.
    pub(super) fn make_room(&mut self) {
        if self.count > MOST_IDS {
            self.conversations.clear();
            self.count = 0;
        }
    }

    /// After a commit: `stored` are the batch's new frames of `conversation` (seq, and client id
    /// and sender for a message that has one), in any order. Added if they follow the
    /// remembered `last_seq` without a gap; otherwise the conversation is forgotten.
    pub(super) fn committed<'a>(
        &mut self,
        conversation: &str,
        stored: impl IntoIterator<Item = (i64, Option<(&'a str, &'a str)>)>,
    ) {
        let Some(known) = self.conversations.get_mut(conversation) else {
            return;
        };
        let mut stored: Vec<_> = stored.into_iter().collect();
        stored.sort_unstable_by_key(|(seq, _)| *seq);
        let follows = stored
            .iter()
            .enumerate()
            .all(|(i, (seq, _))| *seq == known.last_seq + 1 + i as i64);
        if !follows {
            self.forget(conversation);
            return;
        }
        for (seq, id) in stored {
            known.last_seq = seq;
            if let Some((client_id, sender)) = id {
                if known
                    .ids
                    .insert(client_id.into(), (seq, sender.into()))
                    .is_none()
                {
                    self.count += 1;
                }
            }
        }
    }

    /// Forgets `conversation`: its ids are read again when next needed.
    pub(super) fn forget(&mut self, conversation: &str) {
        if let Some(known) = self.conversations.remove(conversation) {
            self.count -= known.ids.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(last_seq: i64, ids: &[(&str, i64)]) -> Known {
        Known::read_at(
            last_seq,
            ids.iter()
                .map(|(id, seq)| (id.to_string(), *seq, "customer".to_owned()))
                .collect(),
        )
    }

    #[test]
    fn a_conversation_is_trusted_only_at_the_number_it_was_read_at() {
        let mut memory = ClientIds::default();
        memory.insert("c", read(2, &[("m1", 1), ("m2", 2)]));
        assert_eq!(
            memory.current("c", 2).and_then(|k| k.get("m2")),
            Some((2, "customer"))
        );
        assert!(
            memory.current("c", 3).is_none(),
            "someone else stored seq 3"
        );
        assert!(!memory.remembers("c"), "a stale conversation is forgotten");
        assert_eq!(memory.count, 0);
    }

    #[test]
    fn new_frames_are_added_only_when_they_follow_without_a_gap() {
        let mut memory = ClientIds::default();
        memory.insert("c", read(1, &[("m1", 1)]));
        memory.committed(
            "c",
            [(3, Some(("m3", "agent"))), (2, None)], // any order
        );
        let known = memory.current("c", 3).expect("remembered as of seq 3");
        assert_eq!(known.get("m3"), Some((3, "agent")));
        assert_eq!(known.get("m1"), Some((1, "customer")));
        assert_eq!(memory.count, 2);

        // Seq 4 was stored by someone else: 5 does not follow what is remembered.
        memory.committed("c", [(5, Some(("m5", "customer")))]);
        assert!(!memory.remembers("c"));
        assert_eq!(memory.count, 0);

        // A conversation not remembered stays so: its ids are read when needed.
        memory.committed("d", [(1, Some(("m1", "customer")))]);
        assert!(!memory.remembers("d"));
    }

    #[test]
    fn past_the_limit_everything_is_read_again() {
        let mut memory = ClientIds::default();
        let many: Vec<(String, i64, String)> = (0..=MOST_IDS as i64)
            .map(|i| (format!("m{i}"), i + 1, "customer".to_owned()))
            .collect();
        memory.insert("c", Known::read_at(MOST_IDS as i64 + 1, many));
        memory.insert("d", read(0, &[]));
        memory.make_room();
        assert!(!memory.remembers("c") && !memory.remembers("d"));
        assert_eq!(memory.count, 0);
        memory.insert("e", read(1, &[("m1", 1)]));
        memory.make_room();
        assert!(
            memory.remembers("e"),
            "under the limit nothing is forgotten"
        );
    }
}
