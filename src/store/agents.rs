//! Persistence for the human side: agent accounts and tokens, hand-offs (with CSAT), private
//! notes. Same rules as the rest of the store: `$N` placeholders, portable SQL.

use sqlx::Row;

use super::{nul_free, Arg, Columns, RowWrite, Store, StoreError};

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
    /// Valid: this agent, until this time (Unix ms).
    Valid(AgentRow, i64),
    /// It was valid until it expired.
    Expired,
    /// Never issued, revoked, or its account is disabled.
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

fn agent_row(r: &impl Columns) -> AgentRow {
    AgentRow {
        id: r.text("id"),
        name: r.text("name"),
        email: r.text("email"),
        role: r.text("role"),
        teams: serde_json::from_str(&r.text("teams")).unwrap_or_default(),
        max_chats: r.int("max_chats"),
    }
}

fn handoff_row(r: &impl Columns) -> HandoffRow {
    HandoffRow {
        id: r.int("id"),
        conversation_id: r.text("conversation_id"),
        reasons: serde_json::from_str(&r.text("reasons")).unwrap_or_default(),
        team: r.opt_text("team"),
        priority: r.int("priority"),
        agent_id: r.opt_text("agent_id"),
        escalated_at: r.int("escalated_at"),
        claimed_at: r.opt_int("claimed_at"),
        first_response_at: r.opt_int("first_response_at"),
        resolved_at: r.opt_int("resolved_at"),
        csat_score: r.opt_int("csat_score"),
        csat_comment: r.opt_text("csat_comment"),
        abandoned_at: r.opt_int("abandoned_at"),
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
        on!(&self.pool, pool => {
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
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// An enabled agent and their password hash, by login email.
    pub async fn agent_by_email(
        &self,
        email: &str,
    ) -> Result<Option<(AgentRow, String)>, StoreError> {
        on!(&self.pool, pool => {
            let row = sqlx::query("SELECT * FROM agents WHERE email = $1 AND disabled_at IS NULL")
                .bind(nul_free(email))
                .fetch_optional(pool)
                .await?;
            Ok(row.map(|r| (agent_row(&r), r.get("password_hash"))))
        })
    }

    /// An agent by id.
    pub async fn agent(&self, id: &str) -> Result<Option<AgentRow>, StoreError> {
        on!(&self.pool, pool => {
            let row = sqlx::query("SELECT * FROM agents WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?;
            Ok(row.as_ref().map(agent_row))
        })
    }

    /// Stores a login token (by its hash).
    pub async fn insert_agent_token(
        &self,
        token_hash: &str,
        agent_id: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        on!(&self.pool, pool => {
            sqlx::query("INSERT INTO agent_tokens (token_hash, agent_id, expires_at, created_at) VALUES ($1, $2, $3, $4)")
                .bind(token_hash)
                .bind(agent_id)
                .bind(expires_at)
                .bind(now)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// The agent a token (by its hash) belongs to, if it is still valid at `now`.
    pub async fn agent_by_token(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<TokenLookup, StoreError> {
        on!(&self.pool, pool => {
            let row = sqlx::query(
                "SELECT a.*, t.expires_at FROM agent_tokens t JOIN agents a ON a.id = t.agent_id
                 WHERE t.token_hash = $1 AND a.disabled_at IS NULL",
            )
            .bind(token_hash)
            .fetch_optional(pool)
            .await?;
            Ok(match row {
                None => TokenLookup::Unknown,
                Some(r) if r.get::<i64, _>("expires_at") <= now => TokenLookup::Expired,
                Some(r) => TokenLookup::Valid(agent_row(&r), r.get("expires_at")),
            })
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
        let row = RowWrite {
            sql: "INSERT INTO handoffs (conversation_id, reasons, team, priority, escalated_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            args: vec![
                Arg::Text(conversation.to_owned()),
                Arg::Text(reasons.to_string()),
                Arg::MaybeText(team.map(String::from)),
                Arg::Int(priority),
                Arg::Int(now),
            ],
            returns_id: true,
        };
        self.write_row(row)
            .await?
            .id
            .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
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
        on!(&self.pool, pool => {
            sqlx::query(
                "UPDATE handoffs SET agent_id = $2, team = COALESCE($3, team), priority = $4,
                 claimed_at = CASE WHEN $2 IS NOT NULL THEN COALESCE(claimed_at, $5) ELSE claimed_at END WHERE id = $1",
            )
            .bind(id)
            .bind(agent_id)
            .bind(team)
            .bind(priority)
            .bind(now)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// An agent took the hand-off and so the conversation (`agent`): [`Store::handoff_assigned`]
    /// and the state in one transaction (one commit).
    pub async fn handoff_taken(
        &self,
        conversation: &str,
        id: i64,
        agent_id: &str,
        team: Option<&str>,
        priority: i64,
        now: i64,
    ) -> Result<(), StoreError> {
        on!(&self.pool, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "UPDATE handoffs SET agent_id = $2, team = COALESCE($3, team), priority = $4,
                 claimed_at = COALESCE(claimed_at, $5) WHERE id = $1",
            )
            .bind(id)
            .bind(agent_id)
            .bind(team)
            .bind(priority)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE conversations SET state = 'agent', updated_at = $2 WHERE id = $1")
                .bind(conversation)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(())
        })
    }

    /// Claims an open hand-off for `agent_id` in one conditional statement: true for exactly one
    /// of any number of concurrent claims of the same hand-off (from this node or another sharing
    /// the store); false when someone holds it already, or it is resolved or abandoned. The
    /// in-memory queue decides claims on one node; this is the decision where the queue's owner
    /// is the database.
    pub async fn claim_handoff(
        &self,
        id: i64,
        agent_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        on!(&self.pool, pool => {
            let claimed = sqlx::query(
                "UPDATE handoffs SET agent_id = $2, claimed_at = COALESCE(claimed_at, $3)
                 WHERE id = $1 AND agent_id IS NULL AND resolved_at IS NULL AND abandoned_at IS NULL
                 RETURNING id",
            )
            .bind(id)
            .bind(agent_id)
            .bind(now)
            .fetch_optional(pool)
            .await?;
            Ok(claimed.is_some())
        })
    }

    /// The hand-off ended without a person: the customer left the queue and did not come back.
    pub async fn handoff_abandoned(&self, id: i64, now: i64) -> Result<(), StoreError> {
        on!(&self.pool, pool => {
            sqlx::query("UPDATE handoffs SET abandoned_at = $2 WHERE id = $1")
                .bind(id)
                .bind(now)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Stores the customer's rating of the hand-off; false if it was rated already (one rating
    /// per resolution).
    pub async fn handoff_rated(
        &self,
        id: i64,
        score: i64,
        comment: Option<&str>,
    ) -> Result<bool, StoreError> {
        on!(&self.pool, pool => {
            let done = sqlx::query(
                "UPDATE handoffs SET csat_score = $2, csat_comment = $3 WHERE id = $1 AND csat_score IS NULL",
            )
            .bind(id)
            .bind(score)
            .bind(comment)
            .execute(pool)
            .await?;
            Ok(done.rows_affected() == 1)
        })
    }

    /// Every hand-off of a conversation, oldest first.
    pub async fn handoffs_of(&self, conversation: &str) -> Result<Vec<HandoffRow>, StoreError> {
        on!(&self.pool, pool => {
            let rows = sqlx::query("SELECT * FROM handoffs WHERE conversation_id = $1 ORDER BY id")
                .bind(conversation)
                .fetch_all(pool)
                .await?;
            Ok(rows.iter().map(handoff_row).collect())
        })
    }

    /// The open hand-off of every conversation waiting for or held by a person (state `queued`
    /// or `agent`) with that state, oldest first: what a restarted server puts back in its queue.
    pub async fn open_handoffs(&self) -> Result<Vec<(HandoffRow, String)>, StoreError> {
        on!(&self.pool, pool => {
            let rows = sqlx::query(
                "SELECT h.*, c.state AS conversation_state FROM handoffs h JOIN conversations c ON c.id = h.conversation_id
                 WHERE c.state IN ('queued', 'agent') AND h.resolved_at IS NULL
                   AND h.id = (SELECT MAX(l.id) FROM handoffs l WHERE l.conversation_id = h.conversation_id)
                 ORDER BY h.escalated_at, h.id",
            )
            .fetch_all(pool)
            .await?;
            Ok(rows
                .iter()
                .map(|r| (handoff_row(r), r.get("conversation_state")))
                .collect())
        })
    }

    /// Milliseconds from escalation to pickup of the most recent pickups, newest first.
    pub async fn recent_pickup_ms(&self, limit: i64) -> Result<Vec<i64>, StoreError> {
        on!(&self.pool, pool => {
            let rows = sqlx::query(
                "SELECT claimed_at - escalated_at AS wait FROM handoffs WHERE claimed_at IS NOT NULL ORDER BY claimed_at DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?;
            Ok(rows.iter().map(|r| r.get("wait")).collect())
        })
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
        on!(&self.pool, pool => {
            sqlx::query("INSERT INTO notes (conversation_id, agent_id, agent_name, text, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(conversation)
                .bind(agent_id)
                .bind(nul_free(agent_name))
                .bind(nul_free(text))
                .bind(now)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// A conversation's private notes, oldest first.
    pub async fn notes_of(&self, conversation: &str) -> Result<Vec<NoteRow>, StoreError> {
        on!(&self.pool, pool => {
            let rows = sqlx::query("SELECT * FROM notes WHERE conversation_id = $1 ORDER BY id")
                .bind(conversation)
                .fetch_all(pool)
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
        })
    }
}
