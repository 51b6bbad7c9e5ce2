//! What customers picked under "Which of these is it?", remembered: when customers in different
//! conversations asked the same thing and picked the same article, the next customer who asks it
//! gets that article straight away instead of the question back (issue 14 item 3: the bot learns
//! from the click).
//!
//! A pick counts for a new question only when
//! - the two questions mean the same: their embeddings' cosine reaches `bot.learned_similarity`
//!   (0.80: on StackFAQ's dev paraphrases, fewer than 1 % of questions have a paraphrase of
//!   another entry that close, and about half have one of their own);
//! - customers in at least `bot.learned_min_conversations` conversations picked that passage for
//!   such a question, more than picked anything else or "None of these" for it;
//! - the new question's own search found that article among its candidates, so a pick never
//!   brings in an article retrieval finds unrelated; and the passage is still in the knowledge
//!   base.
//!
//! A "not helpful" on an answer counts as "None of these" for its question: it weighs against any
//! lesson for questions like it (two of them undo a lesson two picks taught).
//!
//! The picks live in memory, loaded from the store at start-up and added to as customers click;
//! with several nodes, each press and verdict is also told to the others
//! ([`crate::cluster::Signal::Pick`]), which learn it as it happens.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::kb::Passage;
use crate::nlu::{cosine, Embedding};

/// Most picks kept (the oldest are forgotten first): a bound on memory and on the scan an unsure
/// question costs (10,000 × 384 multiply-adds, under a millisecond).
pub const MAX_PICKS: usize = 10_000;

/// One press of a choice button.
#[derive(Debug, Clone)]
pub struct Press {
    /// The conversation it was pressed in.
    pub conversation: String,
    /// The bot message that offered the options (a second press there replaces the first).
    pub offer_seq: i64,
    /// What the customer had asked.
    pub question: String,
    /// The passage picked ([`super::passage_id`]); `None`: "None of these".
    pub passage: Option<String>,
    /// Where the offered line was quoted from in the passage.
    pub quote_from: usize,
}

/// A press with its question embedded as the bot embeds a customer's message.
#[derive(Debug, Clone)]
pub struct Pick {
    /// The press.
    pub press: Press,
    /// The question's embedding.
    pub embedding: Embedding,
}

/// An answer learned from picks: what to answer with and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Learned {
    /// The passage customers picked.
    pub passage: String,
    /// Where to quote it from.
    pub quote_from: usize,
    /// How many conversations picked it for a question like this one.
    pub conversations: usize,
    /// One of those questions, the closest.
    pub example: String,
    /// Its cosine to the new question.
    pub similarity: f32,
}

/// The picks remembered. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct Picks {
    inner: Arc<RwLock<State>>,
    tickets: Arc<AtomicU64>,
}

#[derive(Debug, Default)]
struct State {
    picks: Vec<Pick>,
    /// For each offer pressed or forgotten since the start, the ticket of the latest event: a
    /// press encoded in the background that finishes after a later event under the same offer
    /// (a verdict taken back at once) is dropped, and start-up's read-back never undoes one.
    latest: HashMap<(String, i64), u64>,
}

/// Offers whose latest event is remembered, at most (past it, the record starts again).
const MAX_LATEST: usize = 5 * MAX_PICKS;

impl State {
    /// Whether an event with `ticket` under `key` is the latest; if so it becomes it.
    fn admit(&mut self, key: (String, i64), ticket: u64) -> bool {
        if self.latest.get(&key).is_some_and(|&t| t > ticket) {
            return false;
        }
        if self.latest.len() >= MAX_LATEST {
            self.latest.clear();
        }
        self.latest.insert(key, ticket);
        true
    }
}

impl Picks {
    /// No picks yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A ticket for an event (a press, a verdict taken back), taken when it happens: events
    /// under one offer count in the order of their tickets, whenever they are applied.
    pub fn ticket(&self) -> u64 {
        self.tickets.fetch_add(1, Ordering::Relaxed)
    }

    /// Remembers a press with the ticket taken when it happened; it replaces an earlier press
    /// under the same offer, and is dropped if a later event under that offer came first.
    pub fn remember(&self, pick: Pick, ticket: u64) {
        let mut state = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let key = (pick.press.conversation.clone(), pick.press.offer_seq);
        if !state.admit(key, ticket) {
            return;
        }
        let same = |p: &Pick| {
            p.press.conversation == pick.press.conversation
                && p.press.offer_seq == pick.press.offer_seq
        };
        state.picks.retain(|p| !same(p));
        state.picks.push(pick);
        if state.picks.len() > MAX_PICKS {
            let extra = state.picks.len() - MAX_PICKS;
            state.picks.drain(..extra);
        }
    }

    /// Remembers presses made before this start (read back from the store while customers went
    /// on pressing): they go first, never undo an event under the same offer since the start,
    /// and past the bound the oldest of them are the ones dropped.
    pub fn remember_earlier(&self, earlier: Vec<Pick>) {
        let mut state = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let state = &mut *state;
        let mut all: Vec<Pick> = earlier
            .into_iter()
            .filter(|p| {
                !state
                    .latest
                    .contains_key(&(p.press.conversation.clone(), p.press.offer_seq))
            })
            .collect();
        all.append(&mut state.picks);
        if all.len() > MAX_PICKS {
            let extra = all.len() - MAX_PICKS;
            all.drain(..extra);
        }
        state.picks = all;
    }

    /// Forgets the press under `offer_seq` of `conversation` (a verdict taken back), with the
    /// ticket taken when that happened.
    pub fn forget(&self, conversation: &str, offer_seq: i64, ticket: u64) {
        let mut state = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if !state.admit((conversation.to_owned(), offer_seq), ticket) {
            return;
        }
        state
            .picks
            .retain(|p| !(p.press.conversation == conversation && p.press.offer_seq == offer_seq));
    }

    /// How many presses are remembered.
    pub fn len(&self) -> usize {
        self.inner.read().map_or(0, |s| s.picks.len())
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The passage customers picked for questions like `embedding` (see the module's rules), if
    /// one stands out and its article is among `candidates`.
    /// Passages `exists` rejects (gone from the knowledge base) take no part in the vote.
    pub fn learned(
        &self,
        embedding: &[f32],
        candidates: &[Passage],
        exists: impl Fn(&str) -> bool,
        similarity: f32,
        min_conversations: usize,
    ) -> Option<Learned> {
        let learned = self.vote(embedding, &exists, similarity, min_conversations)?;
        let article = learned
            .passage
            .split_once('#')
            .map_or(learned.passage.as_str(), |(path, _)| path);
        candidates
            .iter()
            .any(|c| c.path == article)
            .then_some(learned)
    }

    /// The lessons the picks teach for questions customers picked for (compared by
    /// [`crate::nlu::question_key`]), each if one stands out: what the editors' report shows.
    /// One pass over the picks finds every question's embedding, then one vote each.
    pub fn lessons_for(
        &self,
        questions: &[String],
        exists: impl Fn(&str) -> bool,
        similarity: f32,
        min_conversations: usize,
    ) -> Vec<Option<Learned>> {
        let embeddings: HashMap<String, Embedding> = match self.inner.read() {
            Ok(state) => state
                .picks
                .iter()
                .map(|p| {
                    (
                        crate::nlu::question_key(&p.press.question),
                        p.embedding.clone(),
                    )
                })
                .collect(),
            Err(_) => Default::default(),
        };
        questions
            .iter()
            .map(|q| {
                let embedding = embeddings.get(&crate::nlu::question_key(q))?;
                self.vote(embedding, &exists, similarity, min_conversations)
            })
            .collect()
    }

    /// The passage that stands out among the picks for questions like `embedding`.
    fn vote(
        &self,
        embedding: &[f32],
        exists: &impl Fn(&str) -> bool,
        similarity: f32,
        min_conversations: usize,
    ) -> Option<Learned> {
        let state = self.inner.read().ok()?;
        // For each option (a passage, or None), the conversations that picked it for a question
        // close enough, and the closest such question.
        let mut votes: BTreeMap<Option<&str>, (BTreeSet<&str>, f32, &Press)> = BTreeMap::new();
        for pick in state.picks.iter() {
            let s = cosine(embedding, &pick.embedding);
            if s < similarity {
                continue;
            }
            let press = &pick.press;
            let entry = votes
                .entry(press.passage.as_deref())
                .or_insert_with(|| (BTreeSet::new(), s, press));
            entry.0.insert(press.conversation.as_str());
            if s > entry.1 {
                (entry.1, entry.2) = (s, press);
            }
        }
        // A passage gone from the knowledge base takes no part (checked once per passage).
        votes.retain(|o, _| o.is_none_or(exists));
        let count = |o: &Option<&str>| votes.get(o).map_or(0, |v| v.0.len());
        let (best, (conversations, s, pick)) = votes
            .iter()
            .filter(|(o, _)| o.is_some())
            .max_by_key(|(_, v)| v.0.len())?;
        let n = conversations.len();
        let others = votes
            .keys()
            .filter(|o| *o != best)
            .map(count)
            .max()
            .unwrap_or(0);
        let passage = (*best)?;
        (n >= min_conversations.max(1) && n > others).then(|| Learned {
            passage: passage.to_owned(),
            quote_from: pick.quote_from,
            conversations: n,
            example: pick.question.clone(),
            similarity: *s,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Pick, Picks, Press, MAX_PICKS};
    use crate::kb::Passage;

    fn unit(angle: f32) -> Vec<f32> {
        vec![angle.cos(), angle.sin(), 0.0]
    }

    fn pick(conversation: &str, seq: i64, angle: f32, passage: Option<&str>) -> Pick {
        Pick {
            press: Press {
                conversation: conversation.into(),
                offer_seq: seq,
                question: format!("question of {conversation}"),
                passage: passage.map(String::from),
                quote_from: 0,
            },
            embedding: unit(angle).into(),
        }
    }

    impl Picks {
        fn remember_now(&self, pick: Pick) {
            self.remember(pick, self.ticket());
        }

        fn learned_in(
            &self,
            embedding: &[f32],
            candidates: &[Passage],
            similarity: f32,
            min: usize,
        ) -> Option<super::Learned> {
            self.learned(embedding, candidates, |_| true, similarity, min)
        }
    }

    fn candidate(path: &str) -> Passage {
        Passage {
            path: path.into(),
            title: path.into(),
            heading_path: Vec::new(),
            anchor: String::new(),
            link: String::new(),
            text: String::new(),
            similarity: 0.5,
            bm25: None,
            bm25_rank: None,
            semantic_rank: 1,
            fused: 0.0,
            heading_similarity: 0.0,
            standing: 0.0,
            quote_from: 0,
        }
    }

    #[test]
    fn two_conversations_that_picked_the_same_passage_teach_it() {
        let picks = Picks::new();
        let found = [candidate("a.md"), candidate("b.md")];
        picks.remember_now(pick("c1", 3, 0.0, Some("b.md#fees")));
        // One conversation is not enough, however often it presses.
        assert_eq!(picks.learned_in(&unit(0.1), &found, 0.8, 2), None);
        picks.remember_now(pick("c1", 5, 0.05, Some("b.md#fees")));
        assert_eq!(picks.learned_in(&unit(0.1), &found, 0.8, 2), None);
        picks.remember_now(pick("c2", 3, 0.02, Some("b.md#fees")));
        let learned = picks.learned_in(&unit(0.1), &found, 0.8, 2).unwrap();
        assert_eq!(learned.passage, "b.md#fees");
        assert_eq!(learned.conversations, 2);
        assert_eq!(learned.example, "question of c1");
        // A question that means something else learns nothing (cosine 0.5 < 0.8).
        assert_eq!(picks.learned_in(&unit(1.05), &found, 0.8, 2), None);
        // Nor does one whose own search did not find the article.
        assert_eq!(picks.learned_in(&unit(0.1), &found[..1], 0.8, 2), None);
    }

    #[test]
    fn picks_that_disagree_or_say_none_of_these_teach_nothing() {
        let picks = Picks::new();
        let found = [candidate("a.md"), candidate("b.md")];
        picks.remember_now(pick("c1", 3, 0.0, Some("a.md")));
        picks.remember_now(pick("c2", 3, 0.0, Some("a.md")));
        picks.remember_now(pick("c3", 3, 0.0, None));
        picks.remember_now(pick("c4", 3, 0.0, None));
        assert_eq!(picks.learned_in(&unit(0.0), &found, 0.8, 2), None);
        // A second press under the same offer replaces the first: c4 changed its mind.
        picks.remember_now(pick("c4", 3, 0.0, Some("a.md")));
        assert_eq!(
            picks
                .learned_in(&unit(0.0), &found, 0.8, 2)
                .unwrap()
                .conversations,
            3
        );
        picks.remember_now(pick("c5", 3, 0.0, Some("b.md")));
        picks.remember_now(pick("c6", 3, 0.0, Some("b.md")));
        picks.remember_now(pick("c7", 3, 0.0, Some("b.md")));
        assert_eq!(picks.learned_in(&unit(0.0), &found, 0.8, 2), None, "a tie");
    }

    #[test]
    fn a_press_encoded_after_a_later_event_under_its_offer_is_dropped() {
        let picks = Picks::new();
        // "Not helpful" (encoded in the background), then "helpful" at once: the verdict taken
        // back wins though its forget is applied first.
        let not_helpful = picks.ticket();
        picks.forget("c1", 4, picks.ticket());
        picks.remember(pick("c1", 4, 0.0, None), not_helpful);
        assert!(picks.is_empty());
        // The read-back at start-up never undoes an event since the start either.
        picks.remember_earlier(vec![pick("c1", 4, 0.0, None), pick("c2", 1, 0.0, None)]);
        assert_eq!(picks.len(), 1);
    }

    #[test]
    fn the_oldest_picks_are_forgotten_past_the_bound() {
        let picks = Picks::new();
        for i in 0..MAX_PICKS + 5 {
            picks.remember_now(pick(&format!("c{i}"), 1, 0.0, Some("a.md")));
        }
        assert_eq!(picks.len(), MAX_PICKS);
        let kept = |c: &str| {
            picks
                .inner
                .read()
                .unwrap()
                .picks
                .iter()
                .any(|p| p.press.conversation == c)
        };
        assert!(!kept("c4") && kept("c5") && kept(&format!("c{}", MAX_PICKS + 4)));
        // Presses read back at start-up go behind those learned since, and do not replace them.
        picks.remember_earlier(vec![
            pick("old", 1, 0.0, None),
            pick(&format!("c{}", MAX_PICKS + 4), 1, 0.0, None),
        ]);
        assert_eq!(picks.len(), MAX_PICKS);
        let newest = picks.inner.read().unwrap().picks.last().cloned().unwrap();
        assert_eq!(newest.press.passage.as_deref(), Some("a.md"));
        assert!(!kept("old"), "the oldest are dropped past the bound");
    }
}
