//! Persistence of what a conversation was: what was understood of each turn, the bot's turns
//! with the customer's verdicts, the customer's words, summaries, lists and search, and tickets.
//! Same rules as the rest of the store: `$N` placeholders, portable SQL.

use sqlx::Row;

use super::{nul_free, Arg, Columns, RowWrite, Store, StoreError};

/// A bot turn with the customer's verdict on it.
#[derive(Debug, Clone)]
pub struct BotTurnRow {
    /// Sequence number of the bot's message (of the customer's question when `handed_off`).
    pub seq: i64,
    /// The question.
    pub question: String,
    /// `answered`, `clarify` or `dont_know`.
    pub outcome: String,
    /// Confidence of the best passage.
    pub confidence: f64,
    /// Article answered from.
    pub article: Option<String>,
    /// The conversation went to a person instead of getting this reply (no bot message).
    pub handed_off: bool,
    /// The customer's verdict.
    pub helpful: Option<bool>,
}

/// A conversation in a list.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConversationSummaryRow {
    /// Id.
    pub id: String,
    /// Owner: `bot`, `queued`, `agent`, `resolved`.
    pub state: String,
    /// What the widget knew of the customer.
    pub visitor: serde_json::Value,
    /// Created (Unix ms).
    pub created_at: i64,
    /// Last change (Unix ms).
    pub updated_at: i64,
}

/// A follow-up ticket left by a customer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TicketRow {
    /// Id.
    pub id: i64,
    /// The conversation.
    pub conversation_id: String,
    /// Where to answer.
    pub email: String,
    /// What they wrote.
    pub message: String,
    /// Team.
    pub team: Option<String>,
    /// `open` until followed up.
    pub status: String,
    /// When (Unix ms).
    pub created_at: i64,
}

impl Store {
    /// Stores what was understood of the customer message at `seq` (JSON).
    pub async fn record_turn_signals(
        &self,
        conversation: &str,
        seq: i64,
        understanding: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write_alone(Self::turn_signals_row(
            conversation,
            seq,
            understanding,
            now,
        ))
        .await
    }

    /// The row [`Store::record_turn_signals`] writes, to store beside the bot's reply.
    pub fn turn_signals_row(
        conversation: &str,
        seq: i64,
        understanding: &str,
        now: i64,
    ) -> RowWrite {
        RowWrite {
            sql: "INSERT INTO turn_signals (conversation_id, seq, understanding, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (conversation_id, seq) DO NOTHING",
            args: vec![
                Arg::Text(conversation.to_owned()),
                Arg::Int(seq),
                Arg::Text(understanding.to_owned()),
                Arg::Int(now),
            ],
            returns_id: false,
        }
    }

    /// What was understood of each customer message, by `seq`, oldest first.
    pub async fn turn_signals_of(
        &self,
        conversation: &str,
    ) -> Result<Vec<(i64, serde_json::Value)>, StoreError> {
        on!(&self.pool, pool => {
            let rows = sqlx::query(
                "SELECT seq, understanding FROM turn_signals WHERE conversation_id = $1 ORDER BY seq",
            )
            .bind(conversation)
            .fetch_all(pool)
            .await?;
            Ok(rows
                .iter()
                .map(|r| {
                    (
                        r.get("seq"),
                        serde_json::from_str(r.get::<&str, _>("understanding")).unwrap_or_default(),
                    )
                })
                .collect())
        })
    }

    /// Where the conversation's current stretch with the bot began: the sequence number of the
    /// last frame its latest resolution stored (the resolution's frames are stored with the
    /// hand-off's `resolved_at`, in one transaction), 0 if no person has resolved it. What came
    /// before belongs to another stretch, with a person between. (A hand-off its customer left,
    /// or one a full queue refused, ends no stretch: no person dealt with it.) Most chats were
    /// never resolved, and cost one read of their hand-offs.
    pub async fn bot_stretch_start(&self, conversation: &str) -> Result<i64, StoreError> {
        on!(&self.pool, pool => {
            let resolved: Option<i64> = sqlx::query(
                "SELECT MAX(resolved_at) AS resolved FROM handoffs WHERE conversation_id = $1",
            )
            .bind(conversation)
            .fetch_one(pool)
            .await?
            .get("resolved");
            let Some(resolved) = resolved else {
                return Ok(0);
            };
            let row = sqlx::query(
                "SELECT COALESCE(MAX(seq), 0) AS start FROM events
                 WHERE conversation_id = $1 AND sender = 'system' AND created_at = $2",
            )
            .bind(conversation)
            .bind(resolved)
            .fetch_one(pool)
            .await?;
            Ok(row.get::<i64, _>("start"))
        })
    }

    /// The bot's turns in a conversation with the customer's verdicts, oldest first.
    pub async fn bot_turns_of(&self, conversation: &str) -> Result<Vec<BotTurnRow>, StoreError> {
        on!(&self.pool, pool => {
            let rows = sqlx::query(
                "SELECT t.seq, t.question, t.outcome, t.confidence, t.article, t.handed_off, f.helpful FROM bot_turns t
                 LEFT JOIN feedback f ON f.conversation_id = t.conversation_id AND f.seq = t.seq
                 WHERE t.conversation_id = $1 ORDER BY t.seq",
            )
            .bind(conversation)
            .fetch_all(pool)
            .await?;
            Ok(rows
                .iter()
                .map(|r| BotTurnRow {
                    seq: r.get("seq"),
                    question: r.get("question"),
                    outcome: r.get("outcome"),
                    confidence: r.get("confidence"),
                    article: r.get("article"),
                    handed_off: r.get("handed_off"),
                    helpful: r.get("helpful"),
                })
                .collect())
        })
    }

    /// The customer's messages, `(seq, text)`, oldest first.
    pub async fn customer_texts(
        &self,
        conversation: &str,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        on!(&self.pool, pool => {
            let rows = sqlx::query(
                "SELECT seq, text FROM events WHERE conversation_id = $1 AND sender = 'customer' AND text IS NOT NULL ORDER BY seq",
            )
            .bind(conversation)
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(|r| (r.get("seq"), r.get("text"))).collect())
        })
    }

    /// One conversation, for lists and the context packet.
    pub async fn conversation_summary(
        &self,
        conversation: &str,
    ) -> Result<Option<ConversationSummaryRow>, StoreError> {
        on!(&self.pool, pool => {
            let row = sqlx::query(
                "SELECT id, state, visitor, created_at, updated_at FROM conversations WHERE id = $1",
            )
            .bind(conversation)
            .fetch_optional(pool)
            .await?;
            Ok(row.as_ref().map(summary_row))
        })
    }

    /// Conversations, newest first, optionally only those in `state`.
    pub async fn list_conversations(
        &self,
        state: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ConversationSummaryRow>, StoreError> {
        on!(&self.pool, pool => {
            let rows = sqlx::query(
                "SELECT id, state, visitor, created_at, updated_at FROM conversations
                 WHERE $1 IS NULL OR state = $1 ORDER BY updated_at DESC LIMIT $2",
            )
            .bind(state)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(summary_row).collect())
        })
    }

    /// Messages containing `q` (case-insensitive), newest first: `(conversation, seq, sender, text)`.
    pub async fn search_messages(
        &self,
        q: &str,
        limit: i64,
    ) -> Result<Vec<(String, i64, String, String)>, StoreError> {
        on!(&self.pool, pool => {
            let pattern = format!(
                "%{}%",
                q.to_lowercase()
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            let rows = sqlx::query(
                "SELECT conversation_id, seq, sender, text FROM events
                 WHERE text IS NOT NULL AND LOWER(text) LIKE $1 ESCAPE '\\' ORDER BY created_at DESC LIMIT $2",
            )
            .bind(nul_free(&pattern))
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows
                .iter()
                .map(|r| {
                    (
                        r.get("conversation_id"),
                        r.get("seq"),
                        r.get("sender"),
                        r.get("text"),
                    )
                })
                .collect())
        })
    }

    /// Whether the session token (by its hash) is one of this conversation's.
    pub async fn session_owns(
        &self,
        conversation: &str,
        session_hash: &str,
    ) -> Result<bool, StoreError> {
        let row = self.conversation_by_session(session_hash).await?;
        Ok(row.is_some_and(|row| row.id == conversation))
    }

    /// Stores an open ticket; returns its id.
    pub async fn create_ticket(
        &self,
        conversation: &str,
        email: &str,
        message: &str,
        team: Option<&str>,
        now: i64,
    ) -> Result<i64, StoreError> {
        on!(&self.pool, pool => {
            // One open ticket per conversation: leaving an email again corrects it, and a flood of
            // them from one chat is still one ticket.
            let mut tx = pool.begin().await?;
            let updated = sqlx::query(
                "UPDATE tickets SET email = $2, message = $3, created_at = $4
                 WHERE conversation_id = $1 AND status = 'open' RETURNING id",
            )
            .bind(conversation)
            .bind(nul_free(email))
            .bind(nul_free(message))
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let id = match updated {
                Some(row) => row.get(0),
                None => sqlx::query(
                    "INSERT INTO tickets (conversation_id, email, message, team, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(conversation)
                .bind(nul_free(email))
                .bind(nul_free(message))
                .bind(team)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?
                .get(0),
            };
            tx.commit().await?;
            Ok(id)
        })
    }

    /// A page of tickets, newest first: those with `status` (any if `None`) and an id below
    /// `before` (the last id of the previous page).
    pub async fn tickets_page(
        &self,
        status: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<TicketRow>, StoreError> {
        on!(&self.pool, pool => {
            let rows = sqlx::query(
                "SELECT * FROM tickets WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR id < $2)
                 ORDER BY id DESC LIMIT $3",
            )
            .bind(status)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(ticket_row).collect())
        })
    }

    /// Sets a ticket's status; false if there is no such ticket.
    pub async fn set_ticket_status(&self, id: i64, status: &str) -> Result<bool, StoreError> {
        on!(&self.pool, pool => {
            let done = sqlx::query("UPDATE tickets SET status = $2 WHERE id = $1")
                .bind(id)
                .bind(status)
                .execute(pool)
                .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Tickets, newest first.
    pub async fn tickets(&self, limit: i64) -> Result<Vec<TicketRow>, StoreError> {
        self.tickets_page(None, None, limit).await
    }
}

pub(super) fn summary_row(r: &impl Columns) -> ConversationSummaryRow {
    ConversationSummaryRow {
        id: r.text("id"),
        state: r.text("state"),
        visitor: serde_json::from_str(&r.text("visitor")).unwrap_or_default(),
        created_at: r.int("created_at"),
        updated_at: r.int("updated_at"),
    }
}

fn ticket_row(r: &impl Columns) -> TicketRow {
    TicketRow {
        id: r.int("id"),
        conversation_id: r.text("conversation_id"),
        email: r.text("email"),
        message: r.text("message"),
        team: r.opt_text("team"),
        status: r.text("status"),
        created_at: r.int("created_at"),
    }
}
