//! The accounts service the server holds: logins through the [`Gate`], the token behind each
//! request, logout, revoking all of an account's tokens, purging expired ones, and the
//! [`Revoked`] broadcast that closes agent sockets whose token is no longer good.

use std::net::IpAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use tokio::sync::broadcast;

use super::login::{Gate, Holder, SharedThrottles};
use super::{token, Account, AuthError, Login};
use crate::clock::now_ms;
use crate::ids::AgentId;
use crate::settings::AgentSettings;
use crate::store::{Store, TokenLookup};

/// A token that is no longer good, as agent sockets are told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// This one token (by its stored hash): logged out.
    Token(String),
    /// Every token of this account: revoked by an admin, a new password, the account disabled.
    Agent(AgentId),
}

/// The account behind a token, and the token's life.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who.
    pub account: Account,
    /// The token's stored hash (what [`Revoked::Token`] names).
    pub token_hash: String,
    /// When the token expires (Unix ms).
    pub expires_at: i64,
}

impl Session {
    /// How long until the token expires.
    pub fn remaining(&self) -> std::time::Duration {
        std::time::Duration::from_millis(u64::try_from(self.expires_at - now_ms()).unwrap_or(0))
    }

    /// Whether `revoked` ends this session.
    pub fn ended_by(&self, revoked: &Revoked) -> bool {
        match revoked {
            Revoked::Token(hash) => *hash == self.token_hash,
            Revoked::Agent(id) => *id == self.account.id,
        }
    }
}

/// Handle to the accounts service; cheap to clone.
#[derive(Clone)]
pub struct Accounts(Arc<Inner>);

struct Inner {
    store: Store,
    gate: Gate,
    ttl_ms: i64,
    /// How often an open socket checks that its token still holds.
    check_every: std::time::Duration,
    revoked: broadcast::Sender<Revoked>,
    /// Up to when revocations made by other processes (the command line) have been broadcast.
    swept_until: AtomicI64,
}

impl Accounts {
    /// The service on `store`, as `settings` say.
    pub fn new(store: Store, settings: &AgentSettings) -> Self {
        Self::linked(store, settings, None)
    }

    /// As [`Accounts::new`]; with `cluster`, login throttles count every node's attempts.
    pub fn linked(
        store: Store,
        settings: &AgentSettings,
        cluster: Option<Arc<dyn SharedThrottles>>,
    ) -> Self {
        let (revoked, _) = broadcast::channel(256);
        Self(Arc::new(Inner {
            store,
            gate: Gate::linked(settings, cluster),
            ttl_ms: (settings.token_ttl_seconds.max(0.0) * 1000.0) as i64,
            check_every: std::time::Duration::from_secs_f64(
                settings.session_check_seconds.clamp(0.05, 3600.0),
            ),
            revoked,
            swept_until: AtomicI64::new(now_ms()),
        }))
    }

    /// The login throttles and hashing pool.
    pub fn gate(&self) -> &Gate {
        &self.0.gate
    }

    /// Checks the password (throttled per address, and per account or, for a browser that
    /// brings a valid `device` token of the account, per device; the same argon2 work for an
    /// unknown email) and issues a token and a new device token.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        device: Option<&str>,
        address: IpAddr,
    ) -> Result<Login, AuthError> {
        let email = email.trim().to_lowercase();
        let gate = &self.0.gate;
        gate.attempt_from(address).await?;
        let (row, hash) = match self.0.store.agent_by_email(&email).await? {
            Some((row, hash)) => (Some(row), Some(hash)),
            None => (None, None),
        };
        let now = now_ms();
        let known_device = device
            .zip(row.as_ref().zip(hash.as_deref()))
            .and_then(|(device, (row, hash))| super::device::check(device, &row.id, hash, now))
            .filter(|id| gate.reserve_device(id, now));
        gate.attempt_on(match known_device {
            Some(id) => Holder::Device(id),
            None => Holder::Account(&email),
        })
        .await?;
        let verified = gate.verify(password, hash.clone()).await?;
        let (Some(row), Some(hash)) = (row.filter(|_| verified), hash) else {
            return Err(AuthError::BadCredentials);
        };
        if let Some(id) = known_device {
            gate.device_succeeded(id);
        }
        let device = super::device::issue(&row.id, &hash, now + super::device::DEVICE_TTL_MS);
        let agent = Account::from_row(row)?;
        let token = token::new_token();
        let expires_at = now + self.0.ttl_ms;
        self.0
            .store
            .insert_agent_token(&token::hash(&token), &agent.id, expires_at, now)
            .await?;
        Ok(Login {
            token,
            expires_at,
            agent,
            device,
        })
    }

    /// The session of a login token.
    pub async fn session(&self, token: Option<&str>) -> Result<Session, AuthError> {
        let token = token.map(str::trim).filter(|t| !t.is_empty());
        let Some(token) = token else {
            return Err(AuthError::Missing);
        };
        let token_hash = token::hash(token);
        match self.0.store.agent_by_token(&token_hash, now_ms()).await? {
            TokenLookup::Valid(row, expires_at) => Ok(Session {
                account: Account::from_row(row)?,
                token_hash,
                expires_at,
            }),
            TokenLookup::Expired | TokenLookup::Unknown => Err(AuthError::Expired),
        }
    }

    /// Ends the session of `token` (its sockets close); whether it was a live token.
    pub async fn logout(&self, token: &str) -> Result<bool, AuthError> {
        let token_hash = token::hash(token.trim());
        let existed = self
            .0
            .store
            .delete_agent_token(&token_hash)
            .await?
            .is_some();
        let _ = self.0.revoked.send(Revoked::Token(token_hash));
        Ok(existed)
    }

    /// Revokes every token of `agent` (their sockets close); how many there were.
    pub async fn revoke_all(&self, agent: &AgentId) -> Result<u64, AuthError> {
        let n = self.0.store.revoke_agent_tokens(agent, now_ms()).await?;
        let _ = self.0.revoked.send(Revoked::Agent(agent.clone()));
        Ok(n)
    }

    /// Whether the session's token is still good (not expired, revoked, or its account
    /// disabled); a store failure counts as good (the broadcast still ends it).
    pub async fn is_live(&self, session: &Session) -> bool {
        !matches!(
            self.0
                .store
                .agent_by_token(&session.token_hash, now_ms())
                .await,
            Ok(TokenLookup::Expired | TokenLookup::Unknown)
        )
    }

    /// How often an open agent socket asks the store whether its token still holds
    /// (`agents.session_check_seconds`): what another node revoked reaches it so.
    pub fn check_every(&self) -> std::time::Duration {
        self.0.check_every
    }

    /// Every revocation from now on.
    pub fn revocations(&self) -> broadcast::Receiver<Revoked> {
        self.0.revoked.subscribe()
    }

    /// Housekeeping, run every few seconds: broadcasts the revocations other processes made
    /// (`frontdesk agent passwd` / `disable` on the same store), deletes expired tokens, and
    /// forgets idle throttles. Returns the number of tokens deleted.
    pub async fn sweep(&self) -> Result<u64, AuthError> {
        let now = now_ms();
        let since = self.0.swept_until.swap(now, Ordering::AcqRel);
        // A revocation stamped in the same millisecond as the last sweep is seen twice at worst.
        for id in self.0.store.agents_revoked_since(since - 1).await? {
            let _ = self.0.revoked.send(Revoked::Agent(AgentId::from(id)));
        }
        self.0.gate.forget_idle();
        Ok(self.0.store.purge_expired_tokens(now).await?)
    }

    /// Tells the sockets of accounts disabled at start-up (demo accounts) to close.
    pub fn announce(&self, revoked: Revoked) {
        let _ = self.0.revoked.send(revoked);
    }
}
