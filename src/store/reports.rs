//! What editors read: the questions the bot could not answer. Same rules as the rest of the store:
//! `$N` placeholders, portable SQL.

use sqlx::Row;

use super::{Store, StoreError};

/// One time a customer asked something the bot could not answer well, for editors.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GapRow {
    /// The conversation it was asked in.
    pub conversation_id: String,
    /// What the customer asked.
    pub question: String,
    /// What happened: `dont_know` (no confident passage), `clarify` (asked which of two articles),
    /// `unhelpful` (answered, and the customer said it did not help) or `handed_off` (the bot
    /// looked, and the conversation went to a person instead of getting its reply).
    pub outcome: String,
    /// Confidence of the best passage.
    pub confidence: f64,
    /// The article the bot answered from (or would have, when handed off), if any.
    pub article: Option<String>,
    /// When, in Unix milliseconds.
    pub at: i64,
}

impl Store {
    /// Questions asked at or after `since` (Unix ms) that the bot could not answer, answered
    /// unhelpfully, or looked up before a person took over; newest first, at most `limit`.
    pub async fn gaps(&self, since: i64, limit: i64) -> Result<Vec<GapRow>, StoreError> {
        on!(&self.pool, pool => {
            let rows = sqlx::query(
                "SELECT t.conversation_id, t.question, t.confidence, t.article, t.created_at,
                        CASE WHEN t.handed_off THEN 'handed_off'
                             WHEN f.helpful = FALSE THEN 'unhelpful'
                             ELSE t.outcome END AS outcome
                 FROM bot_turns t
                 LEFT JOIN feedback f ON f.conversation_id = t.conversation_id AND f.seq = t.seq
                 WHERE t.created_at >= $1
                   AND (t.handed_off OR t.outcome IN ('dont_know', 'clarify') OR f.helpful = FALSE)
                 ORDER BY t.created_at DESC, t.seq DESC LIMIT $2",
            )
            .bind(since)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows
                .iter()
                .map(|r| GapRow {
                    conversation_id: r.get("conversation_id"),
                    question: r.get("question"),
                    outcome: r.get("outcome"),
                    confidence: r.get("confidence"),
                    article: r.get("article"),
                    at: r.get("created_at"),
                })
                .collect())
        })
    }
}
