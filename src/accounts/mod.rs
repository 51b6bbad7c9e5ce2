//! Accounts: the people who sign in (agents, admins, editors), their roles, argon2 password hashes,
//! and login tokens stored hashed with an expiry. Customers have no account: their session token
//! (see [`token`]) proves only which conversation is theirs.
//!
//! The store keeps rows as text; this module is where a row becomes a typed [`Account`].

pub mod device;
pub mod identity;
mod login;
mod sessions;
pub mod token;

pub use login::{Gate, Holder, SharedThrottles, Throttled};
pub use sessions::{Accounts, Revoked, Session};

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Too many login attempts for this account or from this address.
    #[error("too many login attempts; wait {retry_after} seconds and try again")]
    Throttled {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// Every password-hashing thread is busy (a login flood): come back shortly.
    #[error("the server is busy checking passwords; try again in {retry_after} seconds")]
    Busy {
        /// Seconds to wait.
        retry_after: u64,
    },
    /// No account has this email.
    #[error("no account has the email {0}; see `frontdesk agent add`")]
    NoSuchAccount(String),
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
    /// This browser's device token ([`device`]): given back at the next sign-in, it is throttled
    /// on its own, not by the account's throttle that someone else's guesses use up.
    pub device: String,
}

/// Creates an account with an argon2 password hash.
pub async fn create(store: &Store, new: NewAccount) -> Result<Account, AuthError> {
    if new.name.trim().is_empty() || !new.email.contains('@') {
        return Err(AuthError::Invalid(
            "give a name and a valid email (--name Sam --email sam@example.com)".into(),
        ));
    }
    check_password(&new.password, &new.email)?;
    insert(store, new).await
}

/// Creates a demo account (`agents.demo_agent`), whose password may be `demo`: it exists only
/// while the setting is on (see [`disable_demo_accounts`]).
pub async fn create_demo(store: &Store, new: NewAccount) -> Result<Account, AuthError> {
    let account = insert(store, new).await?;
    store.mark_demo(&account.id).await?;
    Ok(account)
}

/// Disables every demo account and revokes its tokens; their ids.
pub async fn disable_demo_accounts(store: &Store) -> Result<Vec<AgentId>, AuthError> {
    let ids = store.disable_demo_agents(now_ms()).await?;
    Ok(ids.into_iter().map(AgentId::from).collect())
}

/// Enables the demo accounts again; how many exist.
pub async fn enable_demo_accounts(store: &Store) -> Result<u64, AuthError> {
    Ok(store.enable_demo_agents().await?)
}

/// Shortest password an account may have.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// The password policy: at least [`MIN_PASSWORD_CHARS`] characters, and not the email (nor its
/// part before the `@`).
pub fn check_password(password: &str, email: &str) -> Result<(), AuthError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AuthError::Invalid(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters; a few unrelated \
             words make a long one that is easy to remember"
        )));
    }
    let email = email.trim().to_lowercase();
    let local = email.split('@').next().unwrap_or_default();
    let lowered = password.to_lowercase();
    if lowered == email || lowered == local {
        return Err(AuthError::Invalid(
            "the password must not be the email address; choose another".into(),
        ));
    }
    Ok(())
}

/// Gives the account with `email` a new password (the policy applies) and revokes its tokens;
/// a running server closes its sockets within seconds.
pub async fn set_password(store: &Store, email: &str, password: &str) -> Result<(), AuthError> {
    let email = email.trim().to_lowercase();
    check_password(password, &email)?;
    let password = password.to_owned();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| AuthError::Invalid(e.to_string()))??;
    match store.set_password(&email, &hash, now_ms()).await? {
        Some(_) => Ok(()),
        None => Err(AuthError::NoSuchAccount(email)),
    }
}

/// Disables the account with `email`: it can no longer log in, its tokens are revoked, and a
/// running server closes its sockets within seconds.
pub async fn disable(store: &Store, email: &str) -> Result<(), AuthError> {
    let email = email.trim().to_lowercase();
    match store.disable_agent(&email, now_ms()).await? {
        Some(_) => Ok(()),
        None => Err(AuthError::NoSuchAccount(email)),
    }
}

async fn insert(store: &Store, new: NewAccount) -> Result<Account, AuthError> {
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

/// The account of a login token, or `None` when the token is no login token (perhaps a customer's
/// session token, or a revoked one).
pub async fn lookup(store: &Store, token: &str) -> Result<Option<Account>, AuthError> {
    match store.agent_by_token(&token::hash(token), now_ms()).await? {
        TokenLookup::Valid(row, _) => Ok(Some(Account::from_row(row)?)),
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
    fn passwords_are_long_and_not_the_email() {
        assert!(check_password("short", "sam@example.com").is_err());
        assert!(check_password("sam@example.com", "Sam@Example.com").is_err());
        assert!(check_password("SamSamSamSam", "samsamsamsam@example.com").is_err());
        assert!(check_password("correct horse battery", "sam@example.com").is_ok());
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
