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
//! - the memory is bounded in bytes (64 MiB, about 700,000 ids of 36 characters): checked before
//!   each batch, past [`Limits::most_bytes`] the conversations used least recently are forgotten
//!   until three quarters of it are left; a conversation with more ids than a quarter of it is
//!   not remembered at all, only marked, and each batch reads just the ids it asks about (one
//!   pass over that conversation's events).
//!
//! What it costs: a conversation read again (the first time, after it was forgotten, or after
//! someone else stored a frame in it) is one pass over its events by their primary key, under
//! the write lock, where the index found an id in one lookup. If the conversations active
//! together hold more ids than the memory, those forgotten are read again each time they come
//! back (docs/BENCHMARKS.md measures a relay past the limit).

use std::collections::HashMap;

/// How much the memory may hold.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// Bytes of client ids and senders remembered in all, counted with a fixed overhead per id.
    pub most_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            most_bytes: 64 << 20,
        }
    }
}

/// What remembering one id costs beyond its text: the map's entry, the number, two boxes.
const OVERHEAD: usize = 64;

fn cost(client_id: &str, sender: &str) -> usize {
    client_id.len() + sender.len() + OVERHEAD
}

/// What one conversation has stored: each client id's number and sender, complete as of
/// `last_seq`.
#[derive(Debug)]
pub(super) struct Known {
    last_seq: i64,
    ids: HashMap<Box<str>, (i64, Box<str>)>,
    bytes: usize,
    used: u64,
}

impl Known {
    /// A conversation whose ids were read at `last_seq`: `(client id, seq, sender)` each.
    pub(super) fn read_at(last_seq: i64, rows: Vec<(String, i64, String)>) -> Self {
        let bytes = rows.iter().map(|(id, _, sender)| cost(id, sender)).sum();
        let ids = rows
            .into_iter()
            .map(|(id, seq, sender)| (id.into_boxed_str(), (seq, sender.into_boxed_str())))
            .collect();
        Self {
            last_seq,
            ids,
            bytes,
            used: 0,
        }
    }

    /// The number and sender stored with `client_id`.
    pub(super) fn get(&self, client_id: &str) -> Option<(i64, &str)> {
        self.ids
            .get(client_id)
            .map(|(seq, sender)| (*seq, sender.as_ref()))
    }
}

/// What the writer knows of a conversation.
#[derive(Debug)]
enum Entry {
    Known(Known),
    /// Too many ids to remember: a batch reads the ones it asks about.
    TooMany,
}

/// The writer's memory: conversation id → what it has stored.
#[derive(Debug, Default)]
pub(super) struct ClientIds {
    conversations: HashMap<Box<str>, Entry>,
    limits: Limits,
    /// Bytes remembered, all conversations together (see [`cost`]).
    bytes: usize,
    /// Stamps the conversations' use, for forgetting the least recently used first.
    clock: u64,
}

/// How a batch finds the client ids a conversation stored before it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Lookup {
    /// Read them all with the numbers, then remember them.
    ReadAll,
    /// Remembered: trusted if the conversation's `last_seq` is unchanged.
    Remembered,
    /// Too many to remember: read the ones the batch asks about.
    ReadAsked,
}

impl ClientIds {
    /// A memory with other limits (tests).
    #[cfg(test)]
    pub(super) fn with_limits(limits: Limits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// How a batch is to find what `conversation` stored before it.
    pub(super) fn lookup(&self, conversation: &str) -> Lookup {
        match self.conversations.get(conversation) {
            None => Lookup::ReadAll,
            Some(Entry::Known(_)) => Lookup::Remembered,
            Some(Entry::TooMany) => Lookup::ReadAsked,
        }
    }

    /// Whether what is remembered of `conversation` is complete as of `last_seq` (the number
    /// read in the current transaction); one remembered as of another number is forgotten.
    pub(super) fn check(&mut self, conversation: &str, last_seq: i64) -> bool {
        self.clock += 1;
        match self.conversations.get_mut(conversation) {
            Some(Entry::Known(known)) if known.last_seq == last_seq => {
                known.used = self.clock;
                true
            }
            // A mark stays: such a conversation's batches read what they ask about.
            Some(Entry::TooMany) => false,
            _ => {
                self.forget(conversation);
                false
            }
        }
    }

    /// What `conversation` has stored, as remembered: for a batch that has checked it with
    /// [`ClientIds::check`] (or just read it) in its own transaction.
    pub(super) fn remembered(&self, conversation: &str) -> Option<&Known> {
        match self.conversations.get(conversation) {
            Some(Entry::Known(known)) => Some(known),
            _ => None,
        }
    }

    /// Remembers what was just read of `conversation`, or only that it has too many ids.
    pub(super) fn insert(&mut self, conversation: &str, mut known: Known) {
        self.forget(conversation);
        let entry = if known.bytes > self.limits.most_bytes / 4 {
            Entry::TooMany
        } else {
            self.clock += 1;
            known.used = self.clock;
            self.bytes += known.bytes;
            Entry::Known(known)
        };
        self.conversations.insert(conversation.into(), entry);
    }

    /// Called before a batch reads: past the limit, forgets the conversations used least
    /// recently until three quarters of it are left (what the batch reads next stays until it is
    /// done).
    pub(super) fn make_room(&mut self) {
        if self.bytes <= self.limits.most_bytes {
            return;
        }
        let mut by_use: Vec<(u64, Box<str>)> = self
            .conversations
            .iter()
            .filter_map(|(id, entry)| match entry {
                Entry::Known(known) => Some((known.used, id.clone())),
                Entry::TooMany => None,
            })
            .collect();
        by_use.sort_unstable();
        for (_, conversation) in by_use {
            if self.bytes <= self.limits.most_bytes / 4 * 3 {
                break;
            }
            self.forget(&conversation);
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
        let Some(Entry::Known(known)) = self.conversations.get_mut(conversation) else {
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
        let mut added = 0;
        for (seq, id) in stored {
            known.last_seq = seq;
            if let Some((client_id, sender)) = id {
                if known
                    .ids
                    .insert(client_id.into(), (seq, sender.into()))
                    .is_none()
                {
                    added += cost(client_id, sender);
                }
            }
        }
        known.bytes += added;
        self.bytes += added;
        if known.bytes > self.limits.most_bytes / 4 {
            self.forget(conversation);
            self.conversations
                .insert(conversation.into(), Entry::TooMany);
        }
    }

    /// Forgets `conversation`: its ids are read again when next needed.
    pub(super) fn forget(&mut self, conversation: &str) {
        if let Some(Entry::Known(known)) = self.conversations.remove(conversation) {
            self.bytes -= known.bytes;
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

    /// The bytes of `n` ids like `m0`.. sent by a customer, as [`cost`] counts them.
    fn bytes_of(ids: &[&str]) -> usize {
        ids.iter().map(|id| cost(id, "customer")).sum()
    }

    #[test]
    fn a_conversation_is_trusted_only_at_the_number_it_was_read_at() {
        let mut memory = ClientIds::default();
        assert_eq!(memory.lookup("c"), Lookup::ReadAll);
        memory.insert("c", read(2, &[("m1", 1), ("m2", 2)]));
        assert_eq!(memory.lookup("c"), Lookup::Remembered);
        assert!(memory.check("c", 2));
        assert_eq!(
            memory.remembered("c").and_then(|k| k.get("m2")),
            Some((2, "customer"))
        );
        assert!(!memory.check("c", 3), "someone else stored seq 3");
        assert_eq!(
            memory.lookup("c"),
            Lookup::ReadAll,
            "a stale one is forgotten"
        );
        assert_eq!(memory.bytes, 0);
    }

    #[test]
    fn new_frames_are_added_only_when_they_follow_without_a_gap() {
        let mut memory = ClientIds::default();
        memory.insert("c", read(1, &[("m1", 1)]));
        memory.committed(
            "c",
            [(3, Some(("m3", "agent"))), (2, None)], // any order
        );
        assert!(memory.check("c", 3), "remembered as of seq 3");
        let known = memory.remembered("c").expect("remembered");
        assert_eq!(known.get("m3"), Some((3, "agent")));
        assert_eq!(known.get("m1"), Some((1, "customer")));
        assert_eq!(memory.bytes, bytes_of(&["m1"]) + cost("m3", "agent"));

        // Seq 4 was stored by someone else: 5 does not follow what is remembered.
        memory.committed("c", [(5, Some(("m5", "customer")))]);
        assert_eq!(memory.lookup("c"), Lookup::ReadAll);
        assert_eq!(memory.bytes, 0);

        // A conversation not remembered stays so: its ids are read when needed.
        memory.committed("d", [(1, Some(("m1", "customer")))]);
        assert_eq!(memory.lookup("d"), Lookup::ReadAll);
    }

    #[test]
    fn past_the_limit_the_least_recently_used_are_forgotten() {
        let one = bytes_of(&["m1"]);
        let mut memory = ClientIds::with_limits(Limits {
            most_bytes: 4 * one,
        });
        for c in ["a", "b", "c", "d"] {
            memory.insert(c, read(1, &[("m1", 1)]));
        }
        assert!(memory.check("a", 1), "a is used again: the newest");
        memory.make_room();
        assert_eq!(memory.bytes, 4 * one, "at the limit nothing is forgotten");
        memory.insert("e", read(1, &[("m1", 1)]));
        memory.make_room();
        assert_eq!(memory.bytes, 3 * one, "down to three quarters");
        for (c, kept) in [
            ("a", true),
            ("b", false),
            ("c", false),
            ("d", true),
            ("e", true),
        ] {
            assert_eq!(memory.lookup(c) == Lookup::Remembered, kept, "{c}");
        }
    }

    #[test]
    fn a_conversation_with_too_many_ids_is_only_marked() {
        let one = bytes_of(&["m1"]);
        let mut memory = ClientIds::with_limits(Limits {
            most_bytes: 8 * one,
        });
        memory.insert("big", read(3, &[("m1", 1), ("m2", 2), ("m3", 3)]));
        assert_eq!(memory.lookup("big"), Lookup::ReadAsked);
        assert_eq!(memory.bytes, 0, "nothing of it is held");
        // One that grows past a quarter of the limit is marked too.
        memory.insert("c", read(1, &[("m1", 1)]));
        memory.committed("c", [(2, Some(("m2", "customer")))]);
        assert_eq!(memory.lookup("c"), Lookup::Remembered);
        memory.committed("c", [(3, Some(("m3", "customer")))]);
        assert_eq!(memory.lookup("c"), Lookup::ReadAsked);
        assert_eq!(memory.bytes, 0);
    }
}
