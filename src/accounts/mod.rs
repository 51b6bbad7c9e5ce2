//! Accounts: the people who sign in (agents, admins, editors), their roles, argon2 password hashes,
//! and login tokens stored hashed with an expiry. Customers have no account: their session token
//! (see [`token`]) proves only which conversation is theirs.
//!
//! The store keeps rows as text; this module is where a row becomes a typed [`Account`].

pub mod token;

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use serde::{Deserialize, Serialize};

use crate::clock::now_ms;
use crate::ids::AgentId;
use crate::store::{AgentRow, Store, StoreError, TokenLookup};

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Takes and reads conversations.
    Agent,
    /// An agent who may also administer (nothing more is gated on it yet).
    Admin,
    /// Looks after the knowledge base and reads its reports; never takes or reads conversations.
    Editor,
}

impl Role {
    /// Every role, as the command line offers them.
    pub const ALL: [Role; 3] = [Role::Agent, Role::Admin, Role::Editor];

    /// Stable name, as stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Admin => "admin",
            Role::Editor => "editor",
        }
    }

    /// Whether accounts of this role take conversations (and may read them).
    pub fn takes_conversations(self) -> bool {
        matches!(self, Role::Agent | Role::Admin)
    }
}

impl std::str::FromStr for Role {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, AuthError> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                AuthError::Invalid(format!(
                    "the role `{s}` is unknown: use `agent`, `admin` or `editor`"
                ))
            })
    }
}

/// An account as the rest of the server sees it (never with its password hash).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Account {
    /// Id.
    pub id: AgentId,
    /// Display name customers see.
    pub name: String,
    /// Login.
    pub email: String,
    /// What the account may do.
    pub role: Role,
    /// Teams served; empty serves every team.
    pub teams: Vec<String>,
    /// Conversations held at once.
    pub max_chats: i64,
}

impl Account {
    /// The typed account of a stored row.
    pub fn from_row(row: AgentRow) -> Result<Self, AuthError> {
        Ok(Self {
            role: row.role.parse()?,
            id: row.id.into(),
            name: row.name,
            email: row.email,
            teams: row.teams,
            max_chats: row.max_chats,
        })
    }

    fn to_row(&self) -> AgentRow {
        AgentRow {
            id: self.id.to_string(),
            name: self.name.clone(),
            email: self.email.clone(),
            role: self.role.as_str().to_owned(),
            teams: self.teams.clone(),
            max_chats: self.max_chats,
        }
    }
}

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

/// What an editor is told when they try to do an agent's work.
pub const EDITORS_TAKE_NO_CHATS: &str = "editor accounts look after the knowledge base and its reports; they do not take or read customers' conversations. Ask an admin for an agent account (`frontdesk agent add --role agent`)";

/// A new account.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Display name customers see.
    pub name: String,
    /// Login.
    pub email: String,
    /// Password in clear (hashed here).
    pub password: String,
    /// What the account may do.
    pub role: Role,
    /// Teams served; empty serves all.
    pub teams: Vec<String>,
    /// Chats at once.
    pub max_chats: i64,
}

/// A successful login.
#[derive(Debug, Clone, Serialize)]
pub struct Login {
    /// The bearer token (only ever shown here).
    pub token: String,
    /// When it expires (Unix ms).
    pub expires_at: i64,
    /// The account.
    pub agent: Account,
}

/// Creates an account with an argon2 password hash.
pub async fn create(store: &Store, new: NewAccount) -> Result<Account, AuthError> {
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
    let password = new.password.clone();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| AuthError::Invalid(e.to_string()))??;
    let account = Account {
        id: AgentId::random(),
        name: new.name.trim().to_owned(),
        email: new.email.trim().to_lowercase(),
        role: new.role,
        teams: new.teams,
        max_chats: new.max_chats.max(1),
    };
    if !store
        .create_agent(&account.to_row(), &hash, now_ms())
        .await?
    {
        return Err(AuthError::EmailTaken(account.email));
    }
    Ok(account)
}

/// Checks the password and issues a token valid for `ttl_ms`.
pub async fn login(
    store: &Store,
    email: &str,
    password: &str,
    ttl_ms: i64,
) -> Result<Login, AuthError> {
    let Some((row, hash)) = store.agent_by_email(&email.trim().to_lowercase()).await? else {
        return Err(AuthError::BadCredentials);
    };
    let password = password.to_owned();
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .unwrap_or(false);
    if !ok {
        return Err(AuthError::BadCredentials);
    }
    let agent = Account::from_row(row)?;
    let token = token::new_token();
    let now = now_ms();
    let expires_at = now + ttl_ms;
    store
        .insert_agent_token(&token::hash(&token), &agent.id, expires_at, now)
        .await?;
    Ok(Login {
        token,
        expires_at,
        agent,
    })
}

/// The account a login token belongs to.
pub async fn authenticate(store: &Store, token: Option<&str>) -> Result<Account, AuthError> {
    let token = token.map(str::trim).filter(|t| !t.is_empty());
    let Some(token) = token else {
        return Err(AuthError::Missing);
    };
    match lookup(store, token).await? {
        Some(account) => Ok(account),
        None => Err(AuthError::Expired),
    }
}

/// The account of a login token, or `None` when the token is no login token (perhaps a customer's
/// session token); an expired login token is an error.
pub async fn lookup(store: &Store, token: &str) -> Result<Option<Account>, AuthError> {
    match store.agent_by_token(&token::hash(token), now_ms()).await? {
        TokenLookup::Valid(row) => Ok(Some(Account::from_row(row)?)),
        TokenLookup::Expired => Err(AuthError::Expired),
        TokenLookup::Unknown => Ok(None),
    }
}

/// An account by id, if it exists.
pub async fn find(store: &Store, id: &AgentId) -> Result<Option<Account>, AuthError> {
    store.agent(id).await?.map(Account::from_row).transpose()
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

    #[test]
    fn roles_parse_from_their_names_and_only_agents_and_admins_take_chats() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
        assert!("owner".parse::<Role>().is_err());
        assert!(Role::Agent.takes_conversations() && Role::Admin.takes_conversations());
        assert!(!Role::Editor.takes_conversations());
    }
}
