//! Agent accounts: argon2 password hashes, login tokens stored hashed with an expiry.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};

use crate::store::{AgentRow, Store, StoreError, TokenLookup};

/// What can go wrong with accounts and logins.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No token was given.
    #[error(
        "log in first: sign in at /console, or POST {{\"email\", \"password\"}} to /api/agent/login, \
         then send the token as `Authorization: Bearer TOKEN` (or ?token= on /ws/agent)"
    )]
    Missing,
    /// The token expired or was never issued.
    #[error("the token has expired or is not valid; log in again at POST /api/agent/login")]
    Expired,
    /// Wrong email or password.
    #[error("wrong email or password")]
    BadCredentials,
    /// An account with this email exists.
    #[error("an agent with the email {0} already exists")]
    EmailTaken(String),
    /// The account details are not usable.
    #[error("{0}")]
    Invalid(String),
    /// Storing or loading failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new account.
#[derive(Debug, Clone)]
pub struct NewAgent {
    /// Display name customers see.
    pub name: String,
    /// Login.
    pub email: String,
    /// Password in clear (hashed here).
    pub password: String,
    /// `agent` or `admin`.
    pub role: String,
    /// Teams served; empty serves all.
    pub teams: Vec<String>,
    /// Chats at once.
    pub max_chats: i64,
}

/// A successful login.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Login {
    /// The bearer token (only ever shown here).
    pub token: String,
    /// When it expires (Unix ms).
    pub expires_at: i64,
    /// The account.
    pub agent: AgentRow,
}

/// The roles an account may have: agents (and admins) take conversations; editors look after the
/// knowledge base and read its reports, and never join the queue or read customers' chats.
pub const ROLES: [&str; 3] = ["agent", "admin", "editor"];

/// Whether an account of this role takes conversations (and may read them).
pub fn takes_conversations(role: &str) -> bool {
    matches!(role, "agent" | "admin")
}

/// What an editor is told when they try to do an agent's work.
pub const EDITORS_TAKE_NO_CHATS: &str = "editor accounts look after the knowledge base and its reports; they do not take or read customers' conversations. Ask an admin for an agent account (`frontdesk agent add --role agent`)";

/// Creates an account with an argon2 password hash.
pub async fn create_agent(store: &Store, new: NewAgent) -> Result<AgentRow, AuthError> {
    if new.name.trim().is_empty() || !new.email.contains('@') {
        return Err(AuthError::Invalid(
            "give a name and a valid email (--name Sam --email sam@example.com)".into(),
        ));
    }
    if new.password.len() < 4 {
        return Err(AuthError::Invalid(
            "the password must have at least 4 characters".into(),
        ));
    }
    if !ROLES.contains(&new.role.as_str()) {
        return Err(AuthError::Invalid(
            "the role is `agent`, `admin` or `editor`".into(),
        ));
    }
    let password = new.password.clone();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| AuthError::Invalid(e.to_string()))??;
    let agent = AgentRow {
        id: uuid::Uuid::new_v4().to_string(),
        name: new.name.trim().to_owned(),
        email: new.email.trim().to_lowercase(),
        role: new.role,
        teams: new.teams,
        max_chats: new.max_chats.max(1),
    };
    if !store.create_agent(&agent, &hash, now_ms()).await? {
        return Err(AuthError::EmailTaken(agent.email));
    }
    Ok(agent)
}

/// Checks the password and issues a token valid for `ttl_ms`.
pub async fn login(
    store: &Store,
    email: &str,
    password: &str,
    ttl_ms: i64,
) -> Result<Login, AuthError> {
    let Some((agent, hash)) = store.agent_by_email(&email.trim().to_lowercase()).await? else {
        return Err(AuthError::BadCredentials);
    };
    let password = password.to_owned();
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    if !ok {
        return Err(AuthError::BadCredentials);
    }
    let token = crate::conversation::new_token();
    let now = now_ms();
    let expires_at = now + ttl_ms;
    store
        .insert_agent_token(
            &crate::conversation::hash(&token),
            &agent.id,
            expires_at,
            now,
        )
        .await?;
    Ok(Login {
        token,
        expires_at,
        agent,
    })
}

/// The agent a token belongs to.
pub async fn authenticate(store: &Store, token: Option<&str>) -> Result<AgentRow, AuthError> {
    let token = token.map(str::trim).filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(AuthError::Missing);
    };
    match store
        .agent_by_token(&crate::conversation::hash(token), now_ms())
        .await?
    {
        TokenLookup::Valid(agent) => Ok(agent),
        TokenLookup::Expired | TokenLookup::Unknown => Err(AuthError::Expired),
    }
}

fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Invalid(format!("cannot hash the password: {e}")))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

fn now_ms() -> i64 {
    crate::conversation::now_ms()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("wrong horse", &hash));
    }
}
