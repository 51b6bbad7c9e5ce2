//! Persistence for the human side: agent accounts and tokens, hand-offs, private notes, per-turn
//! understanding, CSAT and tickets. Same rules as the rest of the store: `$N` placeholders, portable
//! SQL (except `json_extract` for the customer's email, which Postgres spells `->>`).

use sqlx::Row;

use super::{Store, StoreError};

/// An agent account as stored (without the password hash).
#[derive(Debug, Clone, serde::Serialize)]
pub struct AgentRow {
    /// Id (a UUID).
    pub id: String,
    /// Display name customers see.
    pub name: String,
    /// Login.
    pub email: String,
    /// `agent`, `admin` or `editor` (the accounts module types it).
    pub role: String,
    /// Teams the agent serves; empty serves every team.
    pub teams: Vec<String>,
    /// Chats the agent takes at once.
    pub max_chats: i64,
}

/// What a login token is worth.
#[derive(Debug, Clone)]
pub enum TokenLookup {
    /// Valid: this agent.
    Valid(AgentRow),
    /// It was valid until it expired.
    Expired,
    /// Never issued (or deleted).
    Unknown,
}

/// One escalation of a conversation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HandoffRow {
    /// Id.
    pub id: i64,
    /// The conversation.
    pub conversation_id: String,
    /// Reasons, as JSON.
    pub reasons: serde_json::Value,
    /// Team it went to.
    pub team: Option<String>,
    /// Queue priority.
    pub priority: i64,
    /// The agent who has (or had) it.
    pub agent_id: Option<String>,
    /// When it was escalated (Unix ms).
    pub escalated_at: i64,
    /// When an agent first took it.
    pub claimed_at: Option<i64>,
    /// When an agent first wrote to the customer.
    pub first_response_at: Option<i64>,
    /// When it was resolved.
    pub resolved_at: Option<i64>,
    /// The customer's rating, 1–5.
    pub csat_score: Option<i64>,
    /// The customer's comment.
    pub csat_comment: Option<String>,
    /// When it left the queue because the customer was gone.
    pub abandoned_at: Option<i64>,
}

/// A private note.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NoteRow {
    /// Who wrote it (agent id).
    pub agent_id: String,
    /// Their name.
    pub agent: String,
    /// The note.
    pub text: String,
    /// When (Unix ms).
    pub at: i64,
}

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

fn agent_row(r: &sqlx::sqlite::SqliteRow) -> AgentRow {
    AgentRow {
        id: r.get("id"),
        name: r.get("name"),
        email: r.get("email"),
        role: r.get("role"),
        teams: serde_json::from_str(r.get::<&str, _>("teams")).unwrap_or_default(),
        max_chats: r.get("max_chats"),
    }
}

fn handoff_row(r: &sqlx::sqlite::SqliteRow) -> HandoffRow {
    HandoffRow {
        id: r.get("id"),
        conversation_id: r.get("conversation_id"),
        reasons: serde_json::from_str(r.get::<&str, _>("reasons")).unwrap_or_default(),
        team: r.get("team"),
        priority: r.get("priority"),
        agent_id: r.get("agent_id"),
        escalated_at: r.get("escalated_at"),
        claimed_at: r.get("claimed_at"),
        first_response_at: r.get("first_response_at"),
        resolved_at: r.get("resolved_at"),
        csat_score: r.get("csat_score"),
        csat_comment: r.get("csat_comment"),
        abandoned_at: r.get("abandoned_at"),
    }
}

impl Store {
    /// Creates an agent; false if the email is taken.
    pub async fn create_agent(
        &self,
        agent: &AgentRow,
        password_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO agents (id, name, email, password_hash, role, teams, max_chats, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (email) DO NOTHING",
        )
        .bind(&agent.id)
        .bind(&agent.name)
        .bind(&agent.email)
        .bind(password_hash)
        .bind(&agent.role)
        .bind(serde_json::to_string(&agent.teams).unwrap_or_else(|_| "[]".into()))
        .bind(agent.max_chats)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// An agent and their password hash, by login email.
    pub async fn agent_by_email(
        &self,
        email: &str,
    ) -> Result<Option<(AgentRow, String)>, StoreError> {
        let row = sqlx::query("SELECT * FROM agents WHERE email = $1")
            .bind(email)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| (agent_row(&r), r.get("password_hash"))))
    }

    /// An agent by id.
    pub async fn agent(&self, id: &str) -> Result<Option<AgentRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM agents WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(agent_row))
    }

    /// Stores a login token (by its hash).
    pub async fn insert_agent_token(
        &self,
        token_hash: &str,
        agent_id: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO agent_tokens (token_hash, agent_id, expires_at, created_at) VALUES ($1, $2, $3, $4)")
            .bind(token_hash)
            .bind(agent_id)
            .bind(expires_at)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The agent a token (by its hash) belongs to, if it is still valid at `now`.
    pub async fn agent_by_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<TokenLookup, StoreError> {
        let row = sqlx::query(
            "SELECT a.*, t.expires_at FROM agent_tokens t JOIN agents a ON a.id = t.agent_id WHERE t.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        Ok(match row {
            None => TokenLookup::Unknown,
            Some(r) if r.get::<i64, _>("expires_at") <= now => TokenLookup::Expired,
            Some(r) => TokenLookup::Valid(agent_row(&r)),
        })
    }

    /// Records an escalation; returns its id.
    pub async fn create_handoff(
        &self,
        conversation: &str,
        reasons: &serde_json::Value,
        team: Option<&str>,
        priority: i64,
        now: i64,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "INSERT INTO handoffs (conversation_id, reasons, team, priority, escalated_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(conversation)
        .bind(reasons.to_string())
        .bind(team)
        .bind(priority)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.get(0))
    }

    /// An agent took the hand-off (the first time sets `claimed_at`).
    pub async fn handoff_assigned(
        &self,
        id: i64,
        agent_id: Option<&str>,
        team: Option<&str>,
        priority: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE handoffs SET agent_id = $2, team = COALESCE($3, team), priority = $4,
             claimed_at = CASE WHEN $2 IS NOT NULL THEN COALESCE(claimed_at, $5) ELSE claimed_at END WHERE id = $1",
        )
        .bind(id)
        .bind(agent_id)
        .bind(team)
        .bind(priority)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An agent wrote to the customer (the first time sets `first_response_at`).
    pub async fn handoff_responded(&self, id: i64, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE handoffs SET first_response_at = COALESCE(first_response_at, $2) WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The hand-off ended without a person: the customer left the queue and did not come back.
    pub async fn handoff_abandoned(&self, id: i64, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE handoffs SET abandoned_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The hand-off was resolved.
    pub async fn handoff_resolved(&self, id: i64, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE handoffs SET resolved_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Stores the customer's rating of the hand-off.
    pub async fn handoff_rated(
        &self,
        id: i64,
        score: i64,
        comment: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE handoffs SET csat_score = $2, csat_comment = $3 WHERE id = $1")
            .bind(id)
            .bind(score)
            .bind(comment)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Every hand-off of a conversation, oldest first.
    pub async fn handoffs_of(&self, conversation: &str) -> Result<Vec<HandoffRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM handoffs WHERE conversation_id = $1 ORDER BY id")
            .bind(conversation)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(handoff_row).collect())
    }

    /// The open hand-off of every conversation waiting for or held by a person (state `queued`
    /// or `agent`) with that state, oldest first: what a restarted server puts back in its queue.
    pub async fn open_handoffs(&self) -> Result<Vec<(HandoffRow, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT h.*, c.state AS conversation_state FROM handoffs h JOIN conversations c ON c.id = h.conversation_id
             WHERE c.state IN ('queued', 'agent') AND h.resolved_at IS NULL
               AND h.id = (SELECT MAX(l.id) FROM handoffs l WHERE l.conversation_id = h.conversation_id)
             ORDER BY h.escalated_at, h.id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (handoff_row(r), r.get("conversation_state")))
            .collect())
    }

    /// Milliseconds from escalation to pickup of the most recent pickups, newest first.
    pub async fn recent_pickup_ms(&self, limit: i64) -> Result<Vec<i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT claimed_at - escalated_at AS wait FROM handoffs WHERE claimed_at IS NOT NULL ORDER BY claimed_at DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| r.get("wait")).collect())
    }

    /// Stores a private note.
    pub async fn insert_note(
        &self,
        conversation: &str,
        agent_id: &str,
        agent_name: &str,
        text: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO notes (conversation_id, agent_id, agent_name, text, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(conversation)
            .bind(agent_id)
            .bind(agent_name)
            .bind(text)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// A conversation's private notes, oldest first.
    pub async fn notes_of(&self, conversation: &str) -> Result<Vec<NoteRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM notes WHERE conversation_id = $1 ORDER BY id")
            .bind(conversation)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| NoteRow {
                agent_id: r.get("agent_id"),
                agent: r.get("agent_name"),
                text: r.get("text"),
                at: r.get("created_at"),
            })
            .collect())
    }

    /// Stores what was understood of the customer message at `seq` (JSON).
    pub async fn record_turn_signals(
        &self,
        conversation: &str,
        seq: i64,
        understanding: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO turn_signals (conversation_id, seq, understanding, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (conversation_id, seq) DO NOTHING")
            .bind(conversation)
            .bind(seq)
            .bind(understanding)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// What was understood of each customer message, by `seq`, oldest first.
    pub async fn turn_signals_of(
        &self,
        conversation: &str,
    ) -> Result<Vec<(i64, serde_json::Value)>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, understanding FROM turn_signals WHERE conversation_id = $1 ORDER BY seq",
        )
        .bind(conversation)
        .fetch_all(&self.pool)
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
    }

    /// The bot's turns in a conversation with the customer's verdicts, oldest first.
    pub async fn bot_turns_of(&self, conversation: &str) -> Result<Vec<BotTurnRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.seq, t.question, t.outcome, t.confidence, t.article, t.handed_off, f.helpful FROM bot_turns t
             LEFT JOIN feedback f ON f.conversation_id = t.conversation_id AND f.seq = t.seq
             WHERE t.conversation_id = $1 ORDER BY t.seq",
        )
        .bind(conversation)
        .fetch_all(&self.pool)
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
    }

    /// The customer's messages, `(seq, text)`, oldest first.
    pub async fn customer_texts(
        &self,
        conversation: &str,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, text FROM events WHERE conversation_id = $1 AND sender = 'customer' AND text IS NOT NULL ORDER BY seq",
        )
        .bind(conversation)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get("seq"), r.get("text"))).collect())
    }

    /// One conversation, for lists and the context packet.
    pub async fn conversation_summary(
        &self,
        conversation: &str,
    ) -> Result<Option<ConversationSummaryRow>, StoreError> {
        let row = sqlx::query(
            "SELECT id, state, visitor, created_at, updated_at FROM conversations WHERE id = $1",
        )
        .bind(conversation)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(summary_row))
    }

    /// Conversations, newest first, optionally only those in `state`.
    pub async fn list_conversations(
        &self,
        state: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ConversationSummaryRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, state, visitor, created_at, updated_at FROM conversations
             WHERE $1 IS NULL OR state = $1 ORDER BY updated_at DESC LIMIT $2",
        )
        .bind(state)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(summary_row).collect())
    }

    /// Earlier conversations of the customer with this email, newest first.
    pub async fn conversations_of_email(
        &self,
        email: &str,
        except: &str,
        limit: i64,
    ) -> Result<Vec<ConversationSummaryRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, state, visitor, created_at, updated_at FROM conversations
             WHERE json_extract(visitor, '$.email') = $1 AND id <> $2 ORDER BY created_at DESC LIMIT $3",
        )
        .bind(email)
        .bind(except)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(summary_row).collect())
    }

    /// Messages containing `q` (case-insensitive), newest first: `(conversation, seq, sender, text)`.
    pub async fn search_messages(
        &self,
        q: &str,
        limit: i64,
    ) -> Result<Vec<(String, i64, String, String)>, StoreError> {
        let pattern = format!(
            "%{}%",
            q.to_lowercase().replace('%', "\\%").replace('_', "\\_")
        );
        let rows = sqlx::query(
            "SELECT conversation_id, seq, sender, text FROM events
             WHERE text IS NOT NULL AND LOWER(text) LIKE $1 ESCAPE '\\' ORDER BY created_at DESC LIMIT $2",
        )
        .bind(pattern)
        .bind(limit)
        .fetch_all(&self.pool)
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
    }

    /// Whether the session token (by its hash) is the one of this conversation.
    pub async fn session_owns(
        &self,
        conversation: &str,
        session_hash: &str,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT 1 FROM conversations WHERE id = $1 AND session_hash = $2")
            .bind(conversation)
            .bind(session_hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
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
        let row = sqlx::query(
            "INSERT INTO tickets (conversation_id, email, message, team, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(conversation)
        .bind(email)
        .bind(message)
        .bind(team)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(row.get(0))
    }

    /// Tickets, newest first.
    pub async fn tickets(&self, limit: i64) -> Result<Vec<TicketRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM tickets ORDER BY id DESC LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|r| TicketRow {
                id: r.get("id"),
                conversation_id: r.get("conversation_id"),
                email: r.get("email"),
                message: r.get("message"),
                team: r.get("team"),
                status: r.get("status"),
                created_at: r.get("created_at"),
            })
            .collect())
    }
}

fn summary_row(r: &sqlx::sqlite::SqliteRow) -> ConversationSummaryRow {
    ConversationSummaryRow {
        id: r.get("id"),
        state: r.get("state"),
        visitor: serde_json::from_str(r.get::<&str, _>("visitor")).unwrap_or_default(),
        created_at: r.get("created_at"),
        updated_at: r.get("updated_at"),
    }
}
