//! Persistence: conversations and their sequenced frames, bot turns and feedback; the human side
//! (`agents`: accounts, tokens, hand-offs, notes); what a conversation was (`history`: turn
//! signals, bot turns, summaries, search, tickets); what editors read (`reports`, `choices`: the
//! choices the bot offered and what customers picked).
//!
//! Two engines behind the same methods: SQLite (through sqlx, WAL mode) is the embedded default,
//! Postgres is chosen by a `postgres://` URL (several nodes share it). Every statement is written
//! once, with `$N` placeholders and SQL both engines run; [`on!`] compiles it for each engine's
//! pool or transaction. Only the schema differs (`migrations/` for SQLite, `migrations/postgres/`
//! with the same versions), and how a connection is opened (`connect.rs`).

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{PgPool, Row, SqlitePool};

/// One of each engine's handles (a pool, a transaction); `on!` runs the same code on either.
#[derive(Clone)]
enum Engine<S, P> {
    Sqlite(S),
    Postgres(P),
}

/// `on!(handle, h => body)`: `body` with `h` bound to the SQLite or the Postgres handle inside
/// an `Engine`. The body is written once and compiled for each engine, so a statement cannot
/// differ between them by accident.
macro_rules! on {
    ($engine:expr, $h:ident => $body:expr) => {
        match $engine {
            $crate::store::Engine::Sqlite($h) => $body,
            $crate::store::Engine::Postgres($h) => $body,
        }
    };
}

mod agents;
mod checkpoint;
mod choices;
mod connect;
mod copy;
mod history;
mod identity;
mod lease;
mod reports;
mod tokens;
mod writer;
pub use agents::{AgentRow, HandoffRow, NoteRow, TokenLookup};
pub use choices::{ChoiceRow, OfferedOption};
pub use copy::Copied;
pub use history::{BotTurnRow, ConversationSummaryRow, TicketRow};
pub use reports::GapRow;
pub use writer::GroupCommits;

/// How hard a commit tries to reach the disk (`store.durability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Every commit is on disk before it is acknowledged (SQLite `synchronous=FULL`; Postgres
    /// as the server is configured, `synchronous_commit=on` by default).
    #[default]
    Full,
    /// Safe against kill -9 of frontdesk, not against power loss (SQLite `synchronous=NORMAL`;
    /// Postgres `synchronous_commit=off` for frontdesk's connections: a crash of Postgres itself
    /// may lose the last fraction of a second of commits).
    Normal,
}

/// What can go wrong storing or loading.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is not one frontdesk can use.
    #[error(
        "unsupported database URL `{0}`: use sqlite://path/to/file.db or postgres://user:password@host:port/database"
    )]
    UnsupportedUrl(String),
    /// The Postgres server could not be reached or refused frontdesk.
    #[error("cannot open the Postgres store at {url}: {source}; check store.url and that the server is running and accepts this user")]
    Unreachable {
        /// The URL without its password.
        url: String,
        /// Why.
        source: sqlx::Error,
    },
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// The schema could not be brought up to date.
    #[error("database migration failed: {0}; is the database from a newer frontdesk?")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// `store migrate` was pointed at a store that holds data already.
    #[error("the target store holds {0} conversations and accounts already; migrate into an empty database (create a new one, or drop frontdesk's tables there)")]
    TargetNotEmpty(i64),
    /// The folder for the database file could not be created.
    #[error("cannot create the folder for the database ({0}); check store.url")]
    Folder(std::io::Error),
    /// The store's writer task has stopped: the server is shutting down.
    #[error(
        "the store is closing and did not take the message; send it again once the server is back"
    )]
    WriterStopped,
    /// Another sender of the conversation used the client id already.
    #[error(
        "the client id `{0}` is used by another message of this conversation; choose a new one"
    )]
    ClientIdTaken(String),
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

/// A customer message no turn answered ([`Store::unanswered_messages`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnansweredRow {
    /// Its conversation.
    pub conversation_id: String,
    /// Who owned the conversation: `bot` or `resolved`.
    pub state: String,
    /// The visitor as the widget described them (JSON).
    pub visitor: String,
    /// The message's sequence number.
    pub seq: i64,
    /// What the customer wrote.
    pub text: String,
    /// The frame as stored (JSON): a pressed choice button is in it.
    pub body: String,
}

/// A frame to append to a conversation's log. It owns what it holds: on SQLite the append is
/// made by the store's writer task, in a batch with others (see `writer.rs`).
pub struct NewEvent {
    /// `customer`, `bot`, `agent` or `system`.
    pub sender: &'static str,
    /// The client's idempotency key, for customers' and agents' messages.
    pub client_id: Option<String>,
    /// The last sequence number the client had seen in the conversation when it first sent this
    /// message (sent again unchanged with every re-send): the message cannot have been stored at
    /// or below it, so on SQLite a re-send is looked for only after it (see [`RESEND_WINDOW`]).
    pub seen: Option<i64>,
    /// The message text, for messages (searchable; the frame itself is in `body`).
    pub text: Option<String>,
    /// Who owns the conversation from this frame on (a status frame announces it): set in the
    /// same statement that numbers the frame, so the change and its announcement are one commit.
    pub state: Option<&'static str>,
    /// The hand-off this agent message is the first reply of: its `first_response_at` is set in
    /// the same commit as the message (a reply already recorded keeps its first time). One
    /// commit, not a second one after it: with group commit the message shares its fsync with
    /// others, and a separate update would cost a fsync of its own while the agent waits.
    pub responds_to: Option<i64>,
    /// Builds the frame's JSON given its sequence number.
    pub body: FrameBody,
    /// Rows written in the same commit as the frame, if it is new, given its sequence number
    /// (beside the bot's reply: what was understood of the question, the bot's turn, the
    /// choices it offered): one commit where there were four, and no reply shown without them.
    /// If one of them fails, the frame is not stored either.
    pub beside: Vec<Beside>,
}

/// Builds a row to store beside a new frame, given the frame's sequence number.
pub type Beside = Box<dyn Fn(i64) -> RowWrite + Send + Sync>;

/// A row written beside the message path ([`Store::write_alone`], or [`NewEvent::beside`] a
/// frame): one statement and its arguments, kept as data so that a batch the SQLite writer has to
/// run again can write it again. Made by the store (`Store::turn_signals_row`, …).
#[derive(Debug, Clone)]
pub struct RowWrite {
    sql: &'static str,
    args: Vec<Arg>,
    /// The statement ends in `RETURNING id` (one integer), which the caller wants.
    returns_id: bool,
}

/// What a [`RowWrite`]'s statement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Written {
    /// The id it returned (`returns_id`).
    id: Option<i64>,
    /// Rows it inserted or changed.
    changed: u64,
}

/// One argument of a [`RowWrite`]'s statement.
#[derive(Debug, Clone)]
enum Arg {
    Int(i64),
    Real(f64),
    Text(String),
    MaybeText(Option<String>),
    Bool(bool),
}

/// `bind_args!(sqlx::query(sql), &args)`: the query with each [`Arg`] bound, for either engine.
macro_rules! bind_args {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                $crate::store::Arg::Int(v) => query.bind(*v),
                $crate::store::Arg::Real(v) => query.bind(*v),
                $crate::store::Arg::Text(v) => query.bind(v.as_str()),
                $crate::store::Arg::MaybeText(v) => query.bind(v.as_deref()),
                $crate::store::Arg::Bool(v) => query.bind(*v),
            };
        }
        query
    }};
}
use bind_args;

/// Records an agent's first reply to a hand-off (kept if there was one already).
const MARK_RESPONDED: &str =
    "UPDATE handoffs SET first_response_at = COALESCE(first_response_at, $2) WHERE id = $1";

/// Builds a frame's JSON given its sequence number (known only inside the append).
pub type FrameBody = Box<dyn Fn(i64) -> String + Send + Sync>;

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Appended {
    /// Stored under `seq`; `frame` is the JSON stored; `state` the conversation's owner.
    New {
        /// The sequence number given.
        seq: i64,
        /// The frame as stored.
        frame: std::sync::Arc<str>,
        /// Who owns the conversation (`bot`, `queued`, `agent`, `resolved`).
        state: String,
    },
    /// The same sender had stored a frame with this client id already, under `seq`.
    Duplicate {
        /// Its sequence number.
        seq: i64,
    },
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
    pool: Engine<SqlitePool, PgPool>,
    /// SQLite's appends, and the rows a customer waits for (`write_row`), go through one writer
    /// task that commits them in groups (`writer.rs`); Postgres writes each in a transaction of
    /// its own (the server commits concurrent transactions in groups already).
    writer: Option<writer::Writer>,
}

/// How many of a conversation's newest frames at most are searched for an earlier copy of a
/// message with a client id, on SQLite (which keeps no index of client ids: an index entry per
/// message cost an extra page written per commit, docs/BENCHMARKS.md). The search starts after
/// the [`NewEvent::seen`] the client sent, and never further back than this: a client that sends
/// no `seen`, or an old one, costs at most this many rows per message, and a re-send of a
/// message stored before the conversation's last `RESEND_WINDOW` frames is not recognised. A
/// `seen` above the conversation's last number (no client can have seen it) counts as none.
pub const RESEND_WINDOW: i64 = 1_000;

/// The one statement that stores a frame, for `append_in!` and the SQLite writer (`writer.rs`).
const INSERT_EVENT: &str =
    "INSERT INTO events (conversation_id, seq, sender, client_id, text, body, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// `append_in!(connection, conversation, &NewEvent, now)`, inside a transaction: takes the
/// conversation's next `seq` (the `UPDATE` comes first: it locks the conversation's row in
/// Postgres and takes SQLite's write lock at once, so concurrent appends queue instead of
/// failing with a stale read snapshot), finds a message of the same client id stored before
/// (then the caller must not commit), or stores the event. A macro so the one text serves both
/// engines' connections. Evaluates to an `Appended`; `?` returns the `StoreError`.
macro_rules! append_in {
    ($tx:expr, $conversation:expr, $event:expr, $now:expr) => {{
        let (conversation, event, now): (&str, &NewEvent, i64) = ($conversation, $event, $now);
        let row = sqlx::query(
            "UPDATE conversations SET last_seq = last_seq + 1, updated_at = $2, state = COALESCE($3, state) WHERE id = $1 RETURNING last_seq, state",
        )
        .bind(conversation)
        .bind(now)
        .bind(event.state)
        .fetch_one(&mut *$tx)
        .await?;
        let (seq, state): (i64, String) = (row.get(0), row.get(1));
        // Looked for in the whole conversation, by the index of client ids Postgres has; SQLite's
        // messages with client ids are stored by its writer (`writer.rs`), which has none and
        // looks after the client's `seen`: here on SQLite only frames without one come (`resolve`).
        // A statement of its own, after the lock: in Postgres (read committed) each statement
        // sees what was committed when it began, so a copy of this message that another node
        // committed while this one waited for the row is seen here, and would not be by a
        // subquery of the `UPDATE`.
        let stored = match event.client_id.as_deref() {
            // The first copy, should a store copied from SQLite hold one twice.
            Some(client_id) => sqlx::query(
                "SELECT seq, sender FROM events WHERE conversation_id = $1 AND client_id = $2 \
                 ORDER BY seq LIMIT 1",
            )
            .bind(conversation)
            .bind(nul_free(client_id))
            .fetch_optional(&mut *$tx)
            .await?
            .map(|row| (row.get::<i64, _>("seq"), row.get::<String, _>("sender"), client_id)),
            None => None,
        };
        match stored {
            Some((_, sender, client_id)) if sender != event.sender => {
                return Err(StoreError::ClientIdTaken(client_id.to_owned()));
            }
            Some((seq, _, _)) => Appended::Duplicate { seq },
            None => {
                let body = (event.body)(seq);
                sqlx::query(
                    INSERT_EVENT,
                )
                .bind(conversation)
                .bind(seq)
                .bind(event.sender)
                .bind(event.client_id.as_deref().map(nul_free))
                .bind(event.text.as_deref().map(nul_free))
                .bind(&body)
                .bind(now)
                .execute(&mut *$tx)
                .await?;
                if let Some(handoff) = event.responds_to {
                    sqlx::query(MARK_RESPONDED)
                        .bind(handoff)
                        .bind(now)
                        .execute(&mut *$tx)
                        .await?;
                }
                for beside in &event.beside {
                    let row = beside(seq);
                    bind_args!(sqlx::query(row.sql), &row.args)
                        .execute(&mut *$tx)
                        .await?;
                }
                Appended::New {
                    seq,
                    frame: body.into(),
                    state,
                }
            }
        }
    }};
}

impl Store {
    /// Connects to `url` (creating a SQLite file and its folder if needed) and migrates it,
    /// with [`Durability::Normal`] (see [`Store::connect_with`]).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, Durability::Normal).await
    }

    /// Connects with the given durability and brings the schema up to date: `sqlite://path`
    /// (the file and its folder are created if missing) or `postgres://…` (the database must
    /// exist; frontdesk creates its tables). `Full` makes every commit durable before it is
    /// acknowledged, so it survives a power loss or an OS crash; `Normal` survives a crash of the
    /// process (kill -9) but may lose the last commits to a power loss.
    pub async fn connect_with(url: &str, durability: Durability) -> Result<Self, StoreError> {
        let (pool, writer) = connect::open(url, durability).await?;
        Ok(Self { pool, writer })
    }

    /// What the SQLite writer has committed so far (transactions, and the appends in them);
    /// `None` on Postgres, which appends each in a transaction of its own.
    pub fn group_commits(&self) -> Option<GroupCommits> {
        self.writer.as_ref().map(writer::Writer::group_commits)
    }

    /// Metrics the store keeps, for the server's registry: the SQLite writer's appends per
    /// transaction (`frontdesk_store_commit_batch_size`), its batches stored one append at a
    /// time (`frontdesk_store_batches_one_at_a_time_total`), and the log's checkpoints
    /// (`frontdesk_store_checkpoints_total`, `…_checkpoint_catch_ups_total`,
    /// `…_wal_restarts_total`, `…_wal_pages`, `…_checkpoint_seconds`); none on Postgres.
    pub fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        self.writer
            .iter()
            .flat_map(writer::Writer::collectors)
            .collect()
    }

    /// Which engine holds the store: `sqlite` or `postgres`.
    pub fn engine(&self) -> &'static str {
        match self.pool {
            Engine::Sqlite(_) => "sqlite",
            Engine::Postgres(_) => "postgres",
        }
    }

    /// Creates a conversation unless it exists; true if this call created it.
    pub async fn create_conversation(
        &self,
        id: &str,
        session_hash: &str,
        visitor: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let row = RowWrite {
            sql: "INSERT INTO conversations (id, session_hash, visitor, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
                 ON CONFLICT DO NOTHING",
            args: vec![
                Arg::Text(id.to_owned()),
                Arg::Text(session_hash.to_owned()),
                Arg::Text(visitor.to_owned()),
                Arg::Int(now),
            ],
            returns_id: false,
        };
        Ok(self.write_row(row).await?.changed == 1)
    }

    /// Whether a conversation is stored.
    pub async fn conversation_exists(&self, id: &str) -> Result<bool, StoreError> {
        on!(&self.pool, pool => {
            let row = sqlx::query("SELECT 1 FROM conversations WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?;
            Ok(row.is_some())
        })
    }

    /// Customer messages no turn answered: conversations whose newest frame is a customer's
    /// message stored between `since` and `until` (Unix ms), while the bot owned the conversation
    /// (or it was resolved and the customer wrote again), oldest first. After a stop these are the
    /// turns it cut short.
    pub async fn unanswered_messages(
        &self,
        since: i64,
        until: i64,
    ) -> Result<Vec<UnansweredRow>, StoreError> {
        on!(&self.pool, pool => {
            let rows = sqlx::query(
                "SELECT c.id, c.state, c.visitor, e.seq, e.text, e.body FROM conversations c
                 JOIN events e ON e.conversation_id = c.id AND e.seq = c.last_seq
                 WHERE c.state IN ('bot', 'resolved') AND c.updated_at >= $1
                   AND e.sender = 'customer' AND e.text IS NOT NULL
                   AND e.created_at >= $1 AND e.created_at <= $2
                 ORDER BY e.created_at, c.id",
            )
            .bind(since)
            .bind(until)
            .fetch_all(pool)
            .await?;
            Ok(rows
                .iter()
                .map(|r| UnansweredRow {
                    conversation_id: r.get("id"),
                    state: r.get("state"),
                    visitor: r.get("visitor"),
                    seq: r.get("seq"),
                    text: r.get("text"),
                    body: r.get("body"),
                })
                .collect())
        })
    }

    /// The conversation a session token (by its hash) belongs to: the one it started, or the
    /// one a verified customer's device joined with it ([`Store::add_session_token`]).
    pub async fn conversation_by_session(
        &self,
        session_hash: &str,
    ) -> Result<Option<ConversationRow>, StoreError> {
        on!(&self.pool, pool => {
            let row = sqlx::query(
                "SELECT id, state, last_seq FROM conversations WHERE session_hash = $1
                 UNION ALL
                 SELECT c.id, c.state, c.last_seq FROM session_tokens t
                 JOIN conversations c ON c.id = t.conversation_id WHERE t.token_hash = $1
                 LIMIT 1",
            )
            .bind(session_hash)
            .fetch_optional(pool)
            .await?;
            Ok(row.map(|r| ConversationRow {
                id: r.get("id"),
                state: r.get("state"),
                last_seq: r.get("last_seq"),
            }))
        })
    }

    /// Who owns a conversation, if it exists.
    pub async fn conversation_state(
        &self,
        conversation: &str,
    ) -> Result<Option<String>, StoreError> {
        on!(&self.pool, pool => {
            let row = sqlx::query("SELECT state FROM conversations WHERE id = $1")
                .bind(conversation)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(|r| r.get("state")))
        })
    }

    /// The sequence number already given to a message from `sender` with this client id, if any.
    /// On SQLite (no index of client ids, [`RESEND_WINDOW`]) a pass over the conversation's frames.
    pub async fn seq_of_client_id(
        &self,
        conversation: &str,
        sender: &str,
        client_id: &str,
    ) -> Result<Option<i64>, StoreError> {
        on!(&self.pool, pool => {
            let row = sqlx::query(
                "SELECT seq FROM events WHERE conversation_id = $1 AND sender = $2 AND client_id = $3",
            )
            .bind(conversation)
            .bind(sender)
            .bind(nul_free(client_id))
            .fetch_optional(pool)
            .await?;
            Ok(row.map(|r| r.get("seq")))
        })
    }

    /// Appends a frame with the conversation's next sequence number, unless its client id is
    /// stored already (a re-send: then nothing is written; on SQLite looked for after the
    /// client's `seen` and among the last [`RESEND_WINDOW`] frames, see [`NewEvent::seen`]).
    /// Appends to one conversation are serialised by its row (locked by the first statement,
    /// until the commit), so on several nodes sharing a Postgres store, too, each frame gets the
    /// next number once and a re-sent message is found however the two copies race. On SQLite appends arriving together are
    /// committed together (one fsync); each returns only once its commit is on disk.
    pub async fn append(
        &self,
        conversation: &str,
        event: NewEvent,
        now: i64,
    ) -> Result<Appended, StoreError> {
        if let Some(writer) = &self.writer {
            return writer.append(conversation, event, now).await;
        }
        on!(&self.pool, pool => {
            let mut tx = pool.begin().await?;
            let appended = append_in!(&mut *tx, conversation, &event, now);
            // A duplicate rolls back (the dropped transaction): its number was not used.
            if matches!(appended, Appended::New { .. }) {
                tx.commit().await?;
            }
            Ok(appended)
        })
    }

    /// Resolves a conversation in one transaction: the hand-off's `resolved_at`, the state
    /// `resolved`, and `events` (the status and rating request) appended; so a crash at any
    /// point leaves either all of it or none (the chat still held, which a restart restores).
    /// Returns what was appended, in order.
    pub async fn resolve(
        &self,
        conversation: &str,
        handoff: i64,
        events: &[NewEvent],
        now: i64,
    ) -> Result<Vec<Appended>, StoreError> {
        on!(&self.pool, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE conversations SET state = 'resolved', updated_at = $2 WHERE id = $1")
                .bind(conversation)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query("UPDATE handoffs SET resolved_at = $2 WHERE id = $1")
                .bind(handoff)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let mut appended = Vec::with_capacity(events.len());
            for event in events {
                appended.push(append_in!(&mut *tx, conversation, event, now));
            }
            tx.commit().await?;
            Ok(appended)
        })
    }

    /// Conversations a person holds or waits for (`queued`/`agent`) whose latest hand-off is
    /// resolved: what a crash in the middle of an older, non-transactional resolve left.
    pub async fn stranded_resolutions(&self) -> Result<Vec<String>, StoreError> {
        on!(&self.pool, pool => {
            let rows = sqlx::query(
                "SELECT c.id FROM conversations c JOIN handoffs h ON h.conversation_id = c.id
                 WHERE c.state IN ('queued', 'agent') AND h.resolved_at IS NOT NULL
                   AND h.id = (SELECT MAX(l.id) FROM handoffs l WHERE l.conversation_id = c.id)",
            )
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(|r| r.get("id")).collect())
        })
    }

    /// The frames after `seq`, in order, as stored (JSON text).
    pub async fn events_after(
        &self,
        conversation: &str,
        seq: i64,
    ) -> Result<Vec<std::sync::Arc<str>>, StoreError> {
        on!(&self.pool, pool => {
            let rows = sqlx::query(
                "SELECT body FROM events WHERE conversation_id = $1 AND seq > $2 ORDER BY seq",
            )
            .bind(conversation)
            .bind(seq)
            .fetch_all(pool)
            .await?;
            Ok(rows
                .iter()
                .map(|r| std::sync::Arc::from(r.get::<&str, _>("body")))
                .collect())
        })
    }

    /// Every frame of a conversation with when it was stored (Unix ms), in order.
    pub async fn timed_events(&self, conversation: &str) -> Result<Vec<(String, i64)>, StoreError> {
        on!(&self.pool, pool => {
            let rows = sqlx::query(
                "SELECT body, created_at FROM events WHERE conversation_id = $1 ORDER BY seq",
            )
            .bind(conversation)
            .fetch_all(pool)
            .await?;
            Ok(rows
                .iter()
                .map(|r| (r.get::<String, _>("body"), r.get::<i64, _>("created_at")))
                .collect())
        })
    }

    /// The sender of the frame at `seq`, if there is one.
    pub async fn sender_of(
        &self,
        conversation: &str,
        seq: i64,
    ) -> Result<Option<String>, StoreError> {
        on!(&self.pool, pool => {
            let row = sqlx::query("SELECT sender FROM events WHERE conversation_id = $1 AND seq = $2")
                .bind(conversation)
                .bind(seq)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(|r| r.get("sender")))
        })
    }

    /// Changes who owns a conversation.
    pub async fn set_state(
        &self,
        conversation: &str,
        state: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        on!(&self.pool, pool => {
            sqlx::query("UPDATE conversations SET state = $2, updated_at = $3 WHERE id = $1")
                .bind(conversation)
                .bind(state)
                .bind(now)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Records what the bot did with a question.
    pub async fn record_bot_turn(
        &self,
        conversation: &str,
        turn: NewBotTurn<'_>,
        now: i64,
    ) -> Result<(), StoreError> {
        self.write_alone(Self::bot_turn_row(conversation, turn, now))
            .await
    }

    /// The row [`Store::record_bot_turn`] writes, to store beside the bot's reply.
    pub fn bot_turn_row(conversation: &str, turn: NewBotTurn<'_>, now: i64) -> RowWrite {
        RowWrite {
            sql: "INSERT INTO bot_turns (conversation_id, seq, question, outcome, confidence, article, handed_off, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            args: vec![
                Arg::Text(conversation.to_owned()),
                Arg::Int(turn.seq),
                Arg::Text(nul_free(turn.question).into_owned()),
                Arg::Text(turn.outcome.to_owned()),
                Arg::Real(f64::from(turn.confidence)),
                Arg::MaybeText(turn.article.map(String::from)),
                Arg::Bool(turn.handed_off),
                Arg::Int(now),
            ],
            returns_id: false,
        }
    }

    /// Writes `row` (made by the store) on its own, not beside a frame: on SQLite in the writer's
    /// next group commit.
    pub async fn write_alone(&self, row: RowWrite) -> Result<(), StoreError> {
        self.write_row(row).await.map(drop)
    }

    /// Writes one row that a customer waits for but that numbers nothing (a new conversation,
    /// what a turn understood, the bot's turn, a hand-off's record). On SQLite it goes through
    /// the writer, into its next group commit: a statement on the pool would wait for SQLite's
    /// write lock in the busy handler's sleeps (1 ms, then 2, 5, 10 … up to 100 ms) while the
    /// writer commits, and the writer for it; at 200 bot turns a second those waits were most
    /// of a turn's p99 (docs/BENCHMARKS.md). On Postgres, on the pool.
    async fn write_row(&self, row: RowWrite) -> Result<Written, StoreError> {
        if let Some(writer) = &self.writer {
            return writer.write(row).await;
        }
        on!(&self.pool, pool => {
            let query = bind_args!(sqlx::query(row.sql), &row.args);
            Ok(if row.returns_id {
                Written { id: Some(query.fetch_one(pool).await?.try_get(0)?), changed: 1 }
            } else {
                Written { id: None, changed: query.execute(pool).await?.rows_affected() }
            })
        })
    }

    /// Stores (or replaces) the customer's verdict on the answer at `seq`.
    pub async fn record_feedback(
        &self,
        conversation: &str,
        seq: i64,
        helpful: bool,
        now: i64,
    ) -> Result<(), StoreError> {
        on!(&self.pool, pool => {
            sqlx::query(
                "INSERT INTO feedback (conversation_id, seq, helpful, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (conversation_id, seq) DO UPDATE SET helpful = excluded.helpful, created_at = excluded.created_at",
            )
            .bind(conversation)
            .bind(seq)
            .bind(helpful)
            .bind(now)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The feedback given on the answer at `seq`, if any.
    pub async fn feedback(&self, conversation: &str, seq: i64) -> Result<Option<bool>, StoreError> {
        on!(&self.pool, pool => {
            let row =
                sqlx::query("SELECT helpful FROM feedback WHERE conversation_id = $1 AND seq = $2")
                    .bind(conversation)
                    .bind(seq)
                    .fetch_optional(pool)
                    .await?;
            Ok(row.map(|r| r.get("helpful")))
        })
    }
}

/// Free text as stored: U+0000 becomes U+FFFD. Postgres cannot hold the NUL character in text at
/// all (the statement fails), so on both engines the words customers and agents type (messages,
/// client ids, questions, notes, tickets, a login email, a search) are stored and searched without
/// it: a message with a NUL is acknowledged as on SQLite before, not refused with an internal
/// error. Frames keep it: their JSON escapes it (`\u0000`).
fn nul_free(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        text.replace('\0', "\u{FFFD}").into()
    } else {
        text.into()
    }
}

/// Typed reads of a column, the same on either engine's row (for the helpers that turn a row
/// into one of the store's types).
trait Columns {
    fn text(&self, column: &str) -> String;
    fn opt_text(&self, column: &str) -> Option<String>;
    fn int(&self, column: &str) -> i64;
    fn opt_int(&self, column: &str) -> Option<i64>;
}

macro_rules! columns {
    ($($row:ty),*) => {$(
        impl Columns for $row {
            fn text(&self, column: &str) -> String {
                self.get(column)
            }
            fn opt_text(&self, column: &str) -> Option<String> {
                self.get(column)
            }
            fn int(&self, column: &str) -> i64 {
                self.get(column)
            }
            fn opt_int(&self, column: &str) -> Option<i64> {
                self.get(column)
            }
        }
    )*};
}
columns!(SqliteRow, PgRow);
