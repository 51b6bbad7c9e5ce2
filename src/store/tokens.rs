//! Persistence of what makes a login trustworthy: demo accounts found again, passwords replaced,
//! accounts disabled, tokens revoked (one, or all of an account's) and purged once expired.
//! Every change of several rows is one transaction.

use sqlx::Row;

use super::{Store, StoreError};

/// `delete_tokens_and_commit!(tx, id)`: deletes the tokens of the account `id` (if an account
/// was changed) and commits `tx`, evaluating to `Ok(id)`: the last step of every change that must
/// log an account out. A macro so the one text serves both engines' transactions.
macro_rules! delete_tokens_and_commit {
    ($tx:ident, $id:expr) => {{
        let id: Option<String> = $id;
        if let Some(id) = &id {
            sqlx::query("DELETE FROM agent_tokens WHERE agent_id = $1")
                .bind(id)
                .execute(&mut *$tx)
                .await?;
        }
        $tx.commit().await?;
        Ok(id)
    }};
}

impl Store {
    /// Marks a new account as a demo account (created by `agents.demo_agent`).
    pub async fn mark_demo(&self, id: &str) -> Result<(), StoreError> {
        on!(&self.pool, pool => {
            sqlx::query("UPDATE agents SET demo = TRUE WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?;
            Ok(())
        })
    }

    /// Disables every demo account and deletes its tokens, in one transaction; returns their ids.
    pub async fn disable_demo_agents(&self, now: i64) -> Result<Vec<String>, StoreError> {
        on!(&self.pool, pool => {
            let mut tx = pool.begin().await?;
            let rows = sqlx::query(
                "UPDATE agents SET disabled_at = $1, tokens_revoked_at = $1
                 WHERE demo AND disabled_at IS NULL RETURNING id",
            )
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            sqlx::query(
                "DELETE FROM agent_tokens WHERE agent_id IN (SELECT id FROM agents WHERE demo)",
            )
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(rows.iter().map(|r| r.get("id")).collect())
        })
    }

    /// Enables the demo accounts again (`agents.demo_agent` is on); returns how many exist.
    pub async fn enable_demo_agents(&self) -> Result<u64, StoreError> {
        on!(&self.pool, pool => {
            sqlx::query("UPDATE agents SET disabled_at = NULL WHERE demo")
                .execute(pool)
                .await?;
            let row = sqlx::query("SELECT COUNT(*) FROM agents WHERE demo")
                .fetch_one(pool)
                .await?;
            Ok(row.get::<i64, _>(0) as u64)
        })
    }

    /// Replaces an account's password hash and deletes its tokens (in one transaction); the
    /// account's id, or `None` when no account has this email.
    pub async fn set_password(
        &self,
        email: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<Option<String>, StoreError> {
        on!(&self.pool, pool => {
            let mut tx = pool.begin().await?;
            let row = sqlx::query(
                "UPDATE agents SET password_hash = $2, tokens_revoked_at = $3, demo = FALSE
                 WHERE email = $1 RETURNING id",
            )
            .bind(email)
            .bind(password_hash)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let id: Option<String> = row.map(|r| r.get("id"));
            delete_tokens_and_commit!(tx, id)
        })
    }

    /// Disables an account (it can no longer log in) and deletes its tokens, in one
    /// transaction; the account's id, or `None` when no account has this email.
    pub async fn disable_agent(&self, email: &str, now: i64) -> Result<Option<String>, StoreError> {
        on!(&self.pool, pool => {
            let mut tx = pool.begin().await?;
            let row = sqlx::query(
                "UPDATE agents SET disabled_at = COALESCE(disabled_at, $2), tokens_revoked_at = $2
                 WHERE email = $1 RETURNING id",
            )
            .bind(email)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let id: Option<String> = row.map(|r| r.get("id"));
            delete_tokens_and_commit!(tx, id)
        })
    }

    /// Deletes one login token (by its hash); the agent it belonged to, if it existed.
    pub async fn delete_agent_token(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        on!(&self.pool, pool => {
            let row = sqlx::query("DELETE FROM agent_tokens WHERE token_hash = $1 RETURNING agent_id")
                .bind(token_hash)
                .fetch_optional(pool)
                .await?;
            Ok(row.map(|r| r.get("agent_id")))
        })
    }

    /// Deletes every token of an agent and records when; how many there were.
    pub async fn revoke_agent_tokens(&self, agent_id: &str, now: i64) -> Result<u64, StoreError> {
        on!(&self.pool, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE agents SET tokens_revoked_at = $2 WHERE id = $1")
                .bind(agent_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let done = sqlx::query("DELETE FROM agent_tokens WHERE agent_id = $1")
                .bind(agent_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(done.rows_affected())
        })
    }

    /// Agents whose tokens were revoked after `since` (perhaps by another process: the command
    /// line), so a running server closes their sockets.
    pub async fn agents_revoked_since(&self, since: i64) -> Result<Vec<String>, StoreError> {
        on!(&self.pool, pool => {
            let rows = sqlx::query("SELECT id FROM agents WHERE tokens_revoked_at > $1")
                .bind(since)
                .fetch_all(pool)
                .await?;
            Ok(rows.iter().map(|r| r.get("id")).collect())
        })
    }

    /// Deletes the tokens that expired before `now`; how many.
    pub async fn purge_expired_tokens(&self, now: i64) -> Result<u64, StoreError> {
        on!(&self.pool, pool => {
            let done = sqlx::query("DELETE FROM agent_tokens WHERE expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await?;
            Ok(done.rows_affected())
        })
    }

    /// Login tokens stored for an agent (expired or not).
    pub async fn agent_token_count(&self, agent_id: &str) -> Result<i64, StoreError> {
        on!(&self.pool, pool => {
            let row = sqlx::query("SELECT COUNT(*) FROM agent_tokens WHERE agent_id = $1")
                .bind(agent_id)
                .fetch_one(pool)
                .await?;
            Ok(row.get(0))
        })
    }
}
