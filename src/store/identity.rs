//! Persistence of verified customer identity: which conversations belong to one customer, as
//! the operator's backend signed it (`conversations.customer_key`). Nothing here reads what a
//! page merely claims (`visitor.email`).

use sqlx::Row;

use super::history::summary_row;
use super::{Arg, ConversationRow, ConversationSummaryRow, RowWrite, Store, StoreError};

/// How many devices' tokens a conversation keeps besides the one that started it.
pub const SESSION_TOKENS_KEPT: i64 = 20;

impl Store {
    /// Records the verified customer a conversation belongs to.
    pub async fn set_customer(&self, conversation: &str, key: &str) -> Result<(), StoreError> {
        let row = RowWrite {
            sql: "UPDATE conversations SET customer_key = $2 WHERE id = $1",
            args: vec![
                Arg::Text(conversation.to_owned()),
                Arg::Text(key.to_owned()),
            ],
            returns_id: false,
        };
        self.write_row(row).await.map(drop)
    }

    /// Records another session token (by its hash) for a conversation: a verified customer's
    /// device that joined it, so that the device resumes it with that token next time. A
    /// conversation keeps its newest [`SESSION_TOKENS_KEPT`]: a device whose token was dropped
    /// joins again with the whole conversation, and a script replaying a customer's signature
    /// in a loop adds no more rows than that.
    pub async fn add_session_token(
        &self,
        conversation: &str,
        token_hash: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let row = RowWrite {
            sql: "INSERT INTO session_tokens (token_hash, conversation_id, created_at) VALUES ($1, $2, $3)",
            args: vec![
                Arg::Text(token_hash.to_owned()),
                Arg::Text(conversation.to_owned()),
                Arg::Int(now),
            ],
            returns_id: false,
        };
        self.write_row(row).await?;
        let prune = RowWrite {
            sql: "DELETE FROM session_tokens WHERE conversation_id = $1 AND token_hash NOT IN
                  (SELECT token_hash FROM session_tokens WHERE conversation_id = $1
                   ORDER BY created_at DESC, token_hash LIMIT $2)",
            args: vec![
                Arg::Text(conversation.to_owned()),
                Arg::Int(SESSION_TOKENS_KEPT),
            ],
            returns_id: false,
        };
        self.write_row(prune).await.map(drop)
    }

    /// The verified customer of a conversation, if it has one.
    pub async fn customer_of(&self, conversation: &str) -> Result<Option<String>, StoreError> {
        on!(&self.pool, pool => {
            let row = sqlx::query("SELECT customer_key FROM conversations WHERE id = $1")
                .bind(conversation)
                .fetch_optional(pool)
                .await?;
            Ok(row.and_then(|r| r.get("customer_key")))
        })
    }

    /// The newest conversation of a verified customer that is not resolved.
    pub async fn open_conversation_of(&self, key: &str) -> Result<Option<String>, StoreError> {
        on!(&self.pool, pool => {
            let row = sqlx::query(
                "SELECT id FROM conversations WHERE customer_key = $1 AND state <> 'resolved'
                 ORDER BY created_at DESC, id LIMIT 1",
            )
            .bind(key)
            .fetch_optional(pool)
            .await?;
            Ok(row.map(|r| r.get("id")))
        })
    }

    /// A conversation's owner and last sequence number, by id.
    pub async fn conversation_by_id(
        &self,
        id: &str,
    ) -> Result<Option<ConversationRow>, StoreError> {
        on!(&self.pool, pool => {
            let row = sqlx::query("SELECT id, state, last_seq FROM conversations WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(|r| ConversationRow {
                id: r.get("id"),
                state: r.get("state"),
                last_seq: r.get("last_seq"),
            }))
        })
    }

    /// Earlier conversations of a verified customer, newest first.
    pub async fn conversations_of_customer(
        &self,
        key: &str,
        except: &str,
        limit: i64,
    ) -> Result<Vec<ConversationSummaryRow>, StoreError> {
        on!(&self.pool, pool => {
            let rows = sqlx::query(
                "SELECT id, state, visitor, created_at, updated_at FROM conversations
                 WHERE customer_key = $1 AND id <> $2 ORDER BY created_at DESC LIMIT $3",
            )
            .bind(key)
            .bind(except)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(summary_row).collect())
        })
    }
}
