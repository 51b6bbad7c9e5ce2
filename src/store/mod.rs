//! Persistence: conversations and their sequenced frames, bot turns and feedback; the human side
//! (`agents`); what editors read (`reports`).
//!
//! SQLite (through sqlx, WAL mode) is the embedded default. Statements use `$N` placeholders and
//! portable SQL so a Postgres backend can be added behind the same methods.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

mod agents;
mod reports;
pub use agents::{
    AgentRow, BotTurnRow, ConversationSummaryRow, HandoffRow, NoteRow, TicketRow, TokenLookup,
};
pub use reports::GapRow;

/// What can go wrong storing or loading.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is not one frontdesk can use.
    #[error("unsupported database URL `{0}`: use sqlite://path/to/file.db")]
    UnsupportedUrl(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("database migration failed: {0}; is the database from a newer frontdesk?")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The folder for the database file could not be created.
    #[error("cannot create the folder for the database ({0}); check store.url")]
    Folder(std::io::Error),
}

/// A conversation as stored.
#[derive(Debug, Clone)]
pub struct ConversationRow {
    /// The conversation's id.
    pub id: String,
    /// Who owns it: `bot`, `queued`, `agent` or `resolved`.
    pub state: String,
    /// Highest sequence number given out so far.
    pub last_seq: i64,
}

/// A frame to append to a conversation's log.
pub struct NewEvent<'a> {
    /// `customer`, `bot`, `agent` or `system`.
    pub sender: &'a str,
    /// The customer's idempotency key, for customer messages.
    pub client_id: Option<&'a str>,
    /// The message text, for messages (searchable; the frame itself is in `body`).
    pub text: Option<&'a str>,
    /// Builds the frame's JSON given its sequence number.
    pub body: &'a (dyn Fn(i64) -> serde_json::Value + Sync),
}

/// What the bot did with one question, to store.
#[derive(Debug, Clone, Copy)]
pub struct NewBotTurn<'a> {
    /// The bot's message; the customer's question when `handed_off` (there is no bot message).
    pub seq: i64,
    /// What the customer asked.
    pub question: &'a str,
    /// `answered`, `clarify`, `dont_know` or `small_talk`.
    pub outcome: &'a str,
    /// Confidence of the best passage.
    pub confidence: f32,
    /// The article answered from (or, when handed off, the one it would have answered from).
    pub article: Option<&'a str>,
    /// The escalation policy gave the conversation to a person instead of sending this reply.
    pub handed_off: bool,
}

/// Handle to the database; clone it freely.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Connects to `url` (creating the SQLite file and its folder if needed) and migrates it.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        if let Some(parent) = std::path::Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            if !path.starts_with(':') {
                std::fs::create_dir_all(parent).map_err(StoreError::Folder)?;
            }
        }
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Self { pool })
    }

    /// Creates a conversation.
    pub async fn create_conversation(
        &self,
        id: &str,
        session_hash: &str,
        visitor: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO conversations (id, session_hash, visitor, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(id)
        .bind(session_hash)
        .bind(visitor)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The conversation a session token (by its hash) belongs to.
    pub async fn conversation_by_session(
        &self,
        session_hash: &str,
    ) -> Result<Option<ConversationRow>, StoreError> {
        let row =
            sqlx::query("SELECT id, state, last_seq FROM conversations WHERE session_hash = $1")
                .bind(session_hash)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| ConversationRow {
            id: r.get("id"),
            state: r.get("state"),
            last_seq: r.get("last_seq"),
        }))
    }

    /// Who owns a conversation, if it exists.
    pub async fn conversation_state(
        &self,
        conversation: &str,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT state FROM conversations WHERE id = $1")
            .bind(conversation)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get("state")))
    }

    /// The sequence number already given to a message from `sender` with this client id, if any.
    pub async fn seq_of_client_id(
        &self,
        conversation: &str,
        sender: &str,
        client_id: &str,
    ) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query(
            "SELECT seq FROM events WHERE conversation_id = $1 AND sender = $2 AND client_id = $3",
        )
        .bind(conversation)
        .bind(sender)
        .bind(client_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.get("seq")))
    }

    /// Appends a frame with the conversation's next sequence number; returns the number and the
    /// stored frame. Callers serialise appends per conversation.
    pub async fn append(
        &self,
        conversation: &str,
        event: NewEvent<'_>,
        now: i64,
    ) -> Result<(i64, serde_json::Value), StoreError> {
        let mut tx = self.pool.begin().await?;
        // Writing first takes SQLite's write lock at once, so concurrent appends queue instead of
        // failing with a stale read snapshot.
        let seq: i64 = sqlx::query(
            "UPDATE conversations SET last_seq = last_seq + 1, updated_at = $2 WHERE id = $1 RETURNING last_seq",
        )
        .bind(conversation)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?
        .get(0);
        let body = (event.body)(seq);
        sqlx::query(
            "INSERT INTO events (conversation_id, seq, sender, client_id, text, body, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(conversation)
        .bind(seq)
        .bind(event.sender)
        .bind(event.client_id)
        .bind(event.text)
        .bind(body.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((seq, body))
    }

    /// The frames after `seq`, in order.
    pub async fn events_after(
        &self,
        conversation: &str,
        seq: i64,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        let rows = sqlx::query(
            "SELECT body FROM events WHERE conversation_id = $1 AND seq > $2 ORDER BY seq",
        )
        .bind(conversation)
        .bind(seq)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| serde_json::from_str(r.get::<&str, _>("body")).ok())
            .collect())
    }

    /// When each frame of a conversation was stored (Unix ms), by `seq`, in order.
    pub async fn event_times(&self, conversation: &str) -> Result<Vec<(i64, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, created_at FROM events WHERE conversation_id = $1 ORDER BY seq",
        )
        .bind(conversation)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get::<i64, _>("seq"), r.get::<i64, _>("created_at")))
            .collect())
    }

    /// The sender of the frame at `seq`, if there is one.
    pub async fn sender_of(
        &self,
        conversation: &str,
        seq: i64,
    ) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT sender FROM events WHERE conversation_id = $1 AND seq = $2")
            .bind(conversation)
            .bind(seq)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get("sender")))
    }

    /// Changes who owns a conversation.
    pub async fn set_state(
        &self,
        conversation: &str,
        state: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE conversations SET state = $2, updated_at = $3 WHERE id = $1")
            .bind(conversation)
            .bind(state)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records what the bot did with a question.
    pub async fn record_bot_turn(
        &self,
        conversation: &str,
        turn: NewBotTurn<'_>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO bot_turns (conversation_id, seq, question, outcome, confidence, article, handed_off, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(conversation)
        .bind(turn.seq)
        .bind(turn.question)
        .bind(turn.outcome)
        .bind(turn.confidence)
        .bind(turn.article)
        .bind(turn.handed_off)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Stores (or replaces) the customer's verdict on the answer at `seq`.
    pub async fn record_feedback(
        &self,
        conversation: &str,
        seq: i64,
        helpful: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO feedback (conversation_id, seq, helpful, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (conversation_id, seq) DO UPDATE SET helpful = excluded.helpful, created_at = excluded.created_at",
        )
        .bind(conversation)
        .bind(seq)
        .bind(helpful)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The feedback given on the answer at `seq`, if any.
    pub async fn feedback(&self, conversation: &str, seq: i64) -> Result<Option<bool>, StoreError> {
        let row =
            sqlx::query("SELECT helpful FROM feedback WHERE conversation_id = $1 AND seq = $2")
                .bind(conversation)
                .bind(seq)
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| r.get("helpful")))
    }
}
