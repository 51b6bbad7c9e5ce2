//! Reports for content editors: what customers asked that the knowledge base did not answer, and
//! the questions that needed a choice ("Which of these is it?") with what customers picked.
//!
//! The store keeps every such question ([`GapRow`]); editors want to know which to write for first,
//! so the report groups the same question asked again (compared case-, punctuation- and
//! spacing-blind) with how often and when it was last asked. Titles come from the knowledge base as
//! it is now, so a renamed article shows its new title.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::kb::KnowledgeBase;
use crate::store::{ChoiceRow, GapRow, Store, StoreError};

/// How many stored questions one report reads at most (the newest); older ones are left out and
/// the report says so.
pub const SCAN_LIMIT: i64 = 20_000;

/// The gaps report.
#[derive(Debug, Clone, Serialize)]
pub struct GapReport {
    /// Questions asked from this time on (Unix ms; 0 for all time).
    pub since: i64,
    /// How many times a question went unanswered in that period.
    pub asked: usize,
    /// More than [`SCAN_LIMIT`] were asked: only the newest were grouped.
    pub truncated: bool,
    /// The same questions grouped, most recently asked first.
    pub questions: Vec<GapQuestion>,
    /// Each time on its own, newest first.
    pub gaps: Vec<GapRow>,
    /// Questions that needed a choice, grouped like `questions`, most recently asked first: the
    /// articles offered and which ones customers picked. A question customers keep answering
    /// with the same pick wants that article's title (or its text) to say what they asked.
    pub choices: Vec<ChoiceQuestion>,
}

/// One question that was answered with choices, however often it was asked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChoiceQuestion {
    /// The question as it was last asked.
    pub question: String,
    /// How many times choices were offered for it.
    pub count: usize,
    /// The options offered (over every time), most picked first.
    pub options: Vec<ChoiceOption>,
    /// How many times the customer pressed "None of these".
    pub none: usize,
    /// How many times no button was pressed.
    pub unanswered: usize,
    /// When it was last asked (Unix ms).
    pub last_at: i64,
    /// The conversation it was last asked in.
    pub conversation_id: String,
    /// What the bot learned from the picks: it now answers this question with that passage at
    /// once (filled by the caller, who has the bot: [`crate::bot::Bot::lessons_for`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learned: Option<Lesson>,
}

/// A lesson the picks taught the bot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Lesson {
    /// The passage it answers with (`path#anchor`).
    pub passage: String,
    /// How many conversations picked it for questions like this one.
    pub conversations: usize,
}

/// One option offered for a question, and how often customers picked it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChoiceOption {
    /// The passage (`path#anchor`).
    pub passage: String,
    /// The article's path.
    pub article: String,
    /// What its button said (the last time it was offered).
    pub label: String,
    /// The article's title now, if it is still in the knowledge base.
    pub article_title: Option<String>,
    /// How many times it was offered.
    pub offered: usize,
    /// How many times it was picked.
    pub picked: usize,
}

/// One question, however often it was asked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GapQuestion {
    /// The question as it was last asked.
    pub question: String,
    /// What happened the last time (`dont_know`, `clarify`, `unhelpful`, `handed_off`).
    pub outcome: String,
    /// How often each outcome happened.
    pub outcomes: BTreeMap<String, usize>,
    /// How many times it was asked.
    pub count: usize,
    /// In how many conversations.
    pub conversations: usize,
    /// The article answered from the last time one was, if any.
    pub article: Option<String>,
    /// That article's title, if it is still in the knowledge base.
    pub article_title: Option<String>,
    /// Confidence of the best passage the last time.
    pub confidence: f64,
    /// When it was first asked in the period (Unix ms).
    pub first_at: i64,
    /// When it was last asked (Unix ms).
    pub last_at: i64,
    /// The conversation it was last asked in.
    pub conversation_id: String,
}

/// Builds the report of questions asked since `since`: at most `limit` grouped questions and
/// `limit` single ones.
pub async fn gaps(
    store: &Store,
    kb: &KnowledgeBase,
    since: i64,
    limit: usize,
) -> Result<GapReport, StoreError> {
    let rows = store.gaps(since, SCAN_LIMIT).await?;
    let mut questions = group(&rows);
    questions.truncate(limit);
    for q in &mut questions {
        q.article_title = q.article.as_deref().and_then(|path| kb.title(path));
    }
    let mut choices = group_choices(&store.choices_since(since, SCAN_LIMIT).await?);
    choices.truncate(limit);
    for option in choices.iter_mut().flat_map(|c| c.options.iter_mut()) {
        option.article_title = kb.title(&option.article);
    }
    Ok(GapReport {
        since,
        asked: rows.len(),
        truncated: rows.len() as i64 >= SCAN_LIMIT,
        questions,
        gaps: rows.into_iter().take(limit).collect(),
        choices,
    })
}

/// Groups the choices offered for questions that read the same once normalised; `rows` and the
/// result newest first, each question's options most picked first (then in the order offered).
pub fn group_choices(rows: &[ChoiceRow]) -> Vec<ChoiceQuestion> {
    let mut groups: Vec<ChoiceQuestion> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for row in rows {
        let i = *index.entry(normalise(&row.question)).or_insert_with(|| {
            groups.push(ChoiceQuestion {
                question: row.question.clone(),
                count: 0,
                options: Vec::new(),
                none: 0,
                unanswered: 0,
                last_at: row.at,
                conversation_id: row.conversation_id.clone(),
                learned: None,
            });
            groups.len() - 1
        });
        let g = &mut groups[i];
        g.count += 1;
        match (&row.picked, row.answered) {
            (_, false) => g.unanswered += 1,
            (None, true) => g.none += 1,
            (Some(_), true) => {}
        }
        for offered in &row.options {
            let at = match g.options.iter().position(|o| o.passage == offered.passage) {
                Some(at) => at,
                None => {
                    let article = offered.passage.split('#').next().unwrap_or_default();
                    g.options.push(ChoiceOption {
                        passage: offered.passage.clone(),
                        article: article.to_owned(),
                        label: offered.label.clone(),
                        article_title: None,
                        offered: 0,
                        picked: 0,
                    });
                    g.options.len() - 1
                }
            };
            let option = &mut g.options[at];
            option.offered += 1;
            if row.answered && row.picked.as_deref() == Some(offered.passage.as_str()) {
                option.picked += 1;
            }
        }
    }
    for g in &mut groups {
        // Stable: equal counts keep the order offered.
        g.options.sort_by_key(|o| std::cmp::Reverse(o.picked));
    }
    groups
}

/// Groups questions that read the same once normalised; `rows` and the result newest first.
pub fn group(rows: &[GapRow]) -> Vec<GapQuestion> {
    let mut groups: Vec<GapQuestion> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut seen: Vec<HashSet<&str>> = Vec::new();
    for row in rows {
        let key = normalise(&row.question);
        let i = *index.entry(key).or_insert_with(|| {
            groups.push(GapQuestion {
                question: row.question.clone(),
                outcome: row.outcome.clone(),
                outcomes: BTreeMap::new(),
                count: 0,
                conversations: 0,
                article: None,
                article_title: None,
                confidence: row.confidence,
                first_at: row.at,
                last_at: row.at,
                conversation_id: row.conversation_id.clone(),
            });
            seen.push(HashSet::new());
            groups.len() - 1
        });
        let g = &mut groups[i];
        g.count += 1;
        *g.outcomes.entry(row.outcome.clone()).or_default() += 1;
        g.first_at = g.first_at.min(row.at);
        if g.article.is_none() {
            g.article = row.article.clone();
        }
        if seen[i].insert(&row.conversation_id) {
            g.conversations += 1;
        }
    }
    groups
}

/// The question compared case-, punctuation- and spacing-blind ([`crate::nlu::question_key`]).
pub use crate::nlu::question_key as normalise;

#[cfg(test)]
mod tests {
    use super::*;

    fn row(question: &str, outcome: &str, conversation: &str, at: i64) -> GapRow {
        GapRow {
            conversation_id: conversation.into(),
            question: question.into(),
            outcome: outcome.into(),
            confidence: 0.2,
            article: (outcome == "unhelpful").then(|| "billing/charged-twice.md".into()),
            at,
        }
    }

    #[test]
    fn the_same_question_asked_again_is_one_row_with_its_count_and_last_time() {
        // Newest first, as the store gives them.
        let rows = [
            row("Do you ship to Iceland?", "dont_know", "c3", 500),
            row("Was I charged twice?", "unhelpful", "c2", 400),
            row("do you ship to  ICELAND", "handed_off", "c2", 300),
            row("Do you ship to Iceland", "dont_know", "c1", 100),
        ];
        let groups = group(&rows);
        assert_eq!(groups.len(), 2);
        let iceland = &groups[0];
        assert_eq!(iceland.question, "Do you ship to Iceland?", "as last asked");
        assert_eq!(
            (iceland.count, iceland.conversations),
            (3, 3),
            "{iceland:?}"
        );
        assert_eq!((iceland.first_at, iceland.last_at), (100, 500));
        assert_eq!(iceland.outcome, "dont_know");
        assert_eq!(
            iceland.outcomes,
            BTreeMap::from([("dont_know".into(), 2), ("handed_off".into(), 1)])
        );
        assert_eq!(iceland.article, None);
        assert_eq!(
            groups[1].article.as_deref(),
            Some("billing/charged-twice.md")
        );
    }

    fn offered(question: &str, picked: Option<Option<&str>>, at: i64) -> ChoiceRow {
        let option = |passage: &str| crate::store::OfferedOption {
            passage: passage.into(),
            label: passage.into(),
            quote_from: 0,
        };
        ChoiceRow {
            conversation_id: format!("c{at}"),
            seq: 2,
            question: question.into(),
            options: vec![option("billing.md#cards"), option("plans.md")],
            answered: picked.is_some(),
            picked: picked.flatten().map(String::from),
            at,
        }
    }

    #[test]
    fn choices_for_the_same_question_count_what_customers_picked() {
        let rows = [
            offered("How do I pay?", Some(Some("plans.md")), 4),
            offered("how do i pay", Some(Some("plans.md")), 3),
            offered("How do I pay", Some(None), 2),
            offered("how do I pay?!", None, 1),
        ];
        let groups = group_choices(&rows);
        assert_eq!(groups.len(), 1);
        let g = &groups[0];
        assert_eq!(g.question, "How do I pay?", "as last asked");
        assert_eq!((g.count, g.none, g.unanswered, g.last_at), (4, 1, 1, 4));
        let picks: Vec<_> = g
            .options
            .iter()
            .map(|o| (o.article.as_str(), o.offered, o.picked))
            .collect();
        assert_eq!(picks, [("plans.md", 4, 2), ("billing.md", 4, 0)]);
    }

    #[test]
    fn asking_twice_in_one_conversation_counts_one_conversation() {
        let rows = [
            row("gift cards?", "dont_know", "c1", 2),
            row("Gift cards", "dont_know", "c1", 1),
        ];
        let groups = group(&rows);
        assert_eq!((groups[0].count, groups[0].conversations), (2, 1));
    }

    #[test]
    fn normalising_ignores_case_punctuation_and_spacing_but_not_words() {
        assert_eq!(normalise("  Where's my ORDER?!  "), "where s my order");
        assert_eq!(normalise("Où est ma commande ?"), "où est ma commande");
        assert_ne!(normalise("refund my order"), normalise("refund my orders"));
    }
}
