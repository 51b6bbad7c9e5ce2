//! Reports for content editors: what customers asked that the knowledge base did not answer.
//!
//! The store keeps every such question ([`GapRow`]); editors want to know which to write for first,
//! so the report groups the same question asked again (compared case-, punctuation- and
//! spacing-blind) with how often and when it was last asked. Titles come from the knowledge base as
//! it is now, so a renamed article shows its new title.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;

use crate::kb::KnowledgeBase;
use crate::store::{GapRow, Store, StoreError};

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
    Ok(GapReport {
        since,
        asked: rows.len(),
        truncated: rows.len() as i64 >= SCAN_LIMIT,
        questions,
        gaps: rows.into_iter().take(limit).collect(),
    })
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

/// The question compared case-, punctuation- and spacing-blind: "Where is my order?" and
/// "where is  my order" are the same question.
pub fn normalise(question: &str) -> String {
    question
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

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
