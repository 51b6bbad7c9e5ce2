//! The context packet an agent receives with a conversation (see [`ContextPacket`]), and a short
//! extractive summary of what the customer wants.

use std::collections::HashMap;

use super::{ConversationError, Core};
use crate::clock::now_ms;
use crate::escalation::Reason;
use crate::ids::ConversationId;
use crate::nlu::Understanding;
use crate::protocol::context::{
    ArticleShown, ContextPacket, Note, PreviousConversation, TimedFrame, Turn,
};
use crate::protocol::customer::{State, Visitor};

type Frame = serde_json::Map<String, serde_json::Value>;

impl Core {
    /// The context packet of a conversation (see `docs/PROTOCOL.md`).
    pub(super) async fn context(
        &self,
        id: &ConversationId,
    ) -> Result<ContextPacket, ConversationError> {
        let store = &self.store;
        let Some(row) = store.conversation_summary(id).await? else {
            return Err(ConversationError::NotFound);
        };
        let transcript: Vec<TimedFrame> = store
            .timed_events(id)
            .await?
            .into_iter()
            .filter_map(|(body, at)| {
                let frame: Frame = serde_json::from_str(&body).ok()?;
                Some(TimedFrame { frame, at })
            })
            .collect();
        let latest = store.handoffs_of(id).await?.pop();
        let mut signals: HashMap<i64, Understanding> = store
            .turn_signals_of(id)
            .await?
            .into_iter()
            .filter_map(|(seq, u)| Some((seq, serde_json::from_value(u).ok()?)))
            .collect();
        let texts = store.customer_texts(id).await?;
        let intents: Vec<String> = texts
            .iter()
            .filter_map(|(seq, _)| signals.get(seq)?.intent.as_ref().map(|i| i.name.clone()))
            .collect();
        let turns = texts
            .iter()
            .map(|(seq, text)| {
                let mut turn = Turn::new(*seq, text.clone(), signals.remove(seq));
                turn.upset_bar = turn
                    .understanding
                    .as_ref()
                    .map(|u| self.policy.reading_bar(u));
                turn
            })
            .collect();
        let articles = self.articles_shown(id, &transcript).await?;
        let customer: Visitor = serde_json::from_value(row.visitor.clone()).unwrap_or_default();
        let previous = if customer.verified {
            self.previous_conversations(id).await?
        } else {
            // What an unverified page claims (an email) links nothing: anyone can type anyone's.
            Vec::new()
        };
        let notes = store
            .notes_of(id)
            .await?
            .into_iter()
            .map(|n| Note {
                agent_id: n.agent_id,
                agent: n.agent,
                text: n.text,
                at: n.at,
            })
            .collect();
        Ok(ContextPacket {
            conversation_id: id.clone(),
            state: State::parse(&row.state),
            customer,
            summary: summarise(&texts, &intents),
            reasons: latest
                .as_ref()
                .and_then(|h| serde_json::from_value::<Vec<Reason>>(h.reasons.clone()).ok())
                .unwrap_or_default(),
            team: latest.as_ref().and_then(|h| h.team.clone()),
            priority: latest.as_ref().map(|h| h.priority),
            waiting_seconds: latest
                .as_ref()
                .map(|h| (h.claimed_at.unwrap_or_else(now_ms) - h.escalated_at) / 1000),
            turns,
            // The policy's: a turn at or above it is what hands a chat to a person.
            upset_threshold: self.policy.settings().upset_threshold,
            upset_threshold_without_cue: self
                .policy
                .settings()
                .upset_threshold_without_cue
                .max(self.policy.settings().upset_threshold),
            articles,
            transcript,
            notes,
            previous_conversations: previous,
        })
    }

    /// The answers the bot gave from articles (not the ones it held back for a person).
    async fn articles_shown(
        &self,
        id: &ConversationId,
        transcript: &[TimedFrame],
    ) -> Result<Vec<ArticleShown>, ConversationError> {
        let source_of = |seq: i64| {
            let frame = transcript
                .iter()
                .find(|f| f.frame.get("seq").and_then(|s| s.as_i64()) == Some(seq))?;
            let source = frame.frame.get("sources")?.get(0)?;
            let text = |k: &str| source.get(k).and_then(|v| v.as_str()).map(String::from);
            Some((text("title"), text("url")))
        };
        Ok(self
            .store
            .bot_turns_of(id)
            .await?
            .into_iter()
            .filter(|t| t.article.is_some() && !t.handed_off)
            .map(|t| {
                let (title, url) = source_of(t.seq).unwrap_or_default();
                ArticleShown {
                    seq: t.seq,
                    question: t.question,
                    article: t.article,
                    title,
                    url,
                    confidence: t.confidence,
                    helpful: t.helpful,
                }
            })
            .collect())
    }

    /// The verified customer's earlier conversations (by the identity the operator signed).
    async fn previous_conversations(
        &self,
        id: &ConversationId,
    ) -> Result<Vec<PreviousConversation>, ConversationError> {
        let Some(key) = self.store.customer_of(id).await? else {
            return Ok(Vec::new());
        };
        let mut previous = Vec::new();
        for c in self.store.conversations_of_customer(&key, id, 5).await? {
            let texts = self.store.customer_texts(&c.id).await?;
            previous.push(PreviousConversation {
                id: c.id.into(),
                created_at: c.created_at,
                state: State::parse(&c.state),
                summary: summarise(&texts, &[]),
            });
        }
        Ok(previous)
    }
}

/// A short extractive summary of what the customer wants: their most informative sentences (a
/// need, a problem, a question, details like numbers), in the order they wrote them, after the
/// intents recognised.
pub fn summarise(texts: &[(i64, String)], intents: &[String]) -> String {
    let mut sentences: Vec<(usize, f32, String)> = Vec::new();
    for (_, text) in texts {
        for raw in text.split_inclusive(['.', '?', '!', '\n']) {
            let sentence = raw.trim();
            let words: Vec<String> = sentence
                .split(|c: char| !c.is_alphanumeric() && c != '\'')
                .filter(|w| !w.is_empty())
                .map(str::to_lowercase)
                .collect();
            if words.len() < 3 {
                continue; // "hi", "thanks", "ok"
            }
            let mut score = (words.len() as f32).min(20.0) / 20.0;
            const NEED: [&str; 16] = [
                "want", "need", "can't", "cannot", "won't", "doesn't", "didn't", "not", "never",
                "refund", "cancel", "charged", "broken", "help", "how", "why",
            ];
            score += words.iter().filter(|w| NEED.contains(&w.as_str())).count() as f32;
            if sentence.ends_with('?') {
                score += 1.0;
            }
            if words.iter().any(|w| w.chars().any(|c| c.is_ascii_digit())) {
                score += 0.5; // order numbers, amounts, dates
            }
            sentences.push((sentences.len(), score, sentence.to_owned()));
        }
    }
    let mut best = sentences.clone();
    best.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    best.truncate(2);
    best.sort_by_key(|s| s.0);
    let mut summary: String = best.into_iter().map(|s| s.2).collect::<Vec<_>>().join(" ");
    if summary.chars().count() > 280 {
        summary = summary.chars().take(279).collect::<String>() + "…";
    }
    let mut intents: Vec<&String> = intents.iter().collect();
    intents.dedup();
    if !intents.is_empty() {
        let names: Vec<&str> = intents.iter().map(|s| s.as_str()).collect();
        summary = format!("[{}] {summary}", names.join(", "));
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_keeps_what_the_customer_needs_and_drops_small_talk() {
        let texts = vec![
            (1, "Hi there".to_string()),
            (
                3,
                "I was charged twice for order 1234. I want a refund!".to_string(),
            ),
            (5, "The weather is nice today.".to_string()),
            (7, "Thanks".to_string()),
        ];
        let s = summarise(&texts, &["refund".into()]);
        assert_eq!(
            s,
            "[refund] I was charged twice for order 1234. I want a refund!"
        );
    }
}
