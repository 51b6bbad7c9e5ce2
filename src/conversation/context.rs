//! The context packet an agent receives with a conversation: everything needed to pick it up
//! without asking the customer to repeat themselves, and a short extractive summary.

use serde_json::{json, Value};

use super::{now_ms, ConversationError, Conversations};

impl Conversations {
    /// The context packet of a conversation (see `docs/PROTOCOL.md`).
    pub async fn context(&self, conversation: &str) -> Result<Value, ConversationError> {
        let store = &self.inner.store;
        let Some(row) = store.conversation_summary(conversation).await? else {
            return Err(ConversationError::NotFound);
        };
        let mut transcript = store.events_after(conversation, 0).await?;
        // Agents see when each thing happened (customers' frames carry no time).
        let times: std::collections::HashMap<i64, i64> =
            store.event_times(conversation).await?.into_iter().collect();
        for frame in &mut transcript {
            if let Some(at) = frame["seq"].as_i64().and_then(|seq| times.get(&seq)) {
                frame["at"] = json!(at);
            }
        }
        let handoffs = store.handoffs_of(conversation).await?;
        let latest = handoffs.last();
        let signals = store.turn_signals_of(conversation).await?;
        let texts = store.customer_texts(conversation).await?;
        let turns: Vec<Value> = texts
            .iter()
            .map(|(seq, text)| {
                let u = signals
                    .iter()
                    .find(|(s, _)| s == seq)
                    .map(|(_, u)| u.clone())
                    .unwrap_or(Value::Null);
                json!({
                    "seq": seq,
                    "text": text,
                    "intent": u["intent"]["name"],
                    "confidence": u["intent"]["confidence"],
                    "upset": u["upset"],
                    "upset_cues": u["upset_cues"],
                })
            })
            .collect();
        let articles: Vec<Value> = store
            .bot_turns_of(conversation)
            .await?
            .into_iter()
            .filter(|t| t.article.is_some() && !t.handed_off)
            .map(|t| {
                let source = transcript
                    .iter()
                    .find(|f| f["seq"] == t.seq)
                    .map(|f| f["sources"][0].clone())
                    .unwrap_or(Value::Null);
                json!({
                    "seq": t.seq,
                    "question": t.question,
                    "article": t.article,
                    "title": source["title"],
                    "url": source["url"],
                    "confidence": t.confidence,
                    "helpful": t.helpful,
                })
            })
            .collect();
        let intents: Vec<String> = signals
            .iter()
            .filter_map(|(_, u)| u["intent"]["name"].as_str().map(String::from))
            .collect();
        let mut previous = Vec::new();
        if let Some(email) = row.visitor["email"].as_str() {
            for c in store.conversations_of_email(email, conversation, 5).await? {
                let texts = store.customer_texts(&c.id).await?;
                previous.push(json!({
                    "id": c.id,
                    "created_at": c.created_at,
                    "state": c.state,
                    "summary": summarise(&texts, &[]),
                }));
            }
        }
        Ok(json!({
            "conversation_id": conversation,
            "state": row.state,
            "customer": row.visitor,
            "summary": summarise(&texts, &intents),
            "reasons": latest.map(|h| h.reasons.clone()).unwrap_or(json!([])),
            "team": latest.and_then(|h| h.team.clone()),
            "priority": latest.map(|h| h.priority),
            "waiting_seconds": latest.map(|h| (h.claimed_at.unwrap_or_else(now_ms) - h.escalated_at) / 1000),
            "turns": turns,
            // The policy's: a turn at or above it is what hands a chat to a person.
            "upset_threshold": self.inner.policy.settings().upset_threshold,
            "articles": articles,
            "transcript": transcript,
            "notes": store.notes_of(conversation).await?,
            "previous_conversations": previous,
        }))
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
