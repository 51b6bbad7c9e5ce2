//! Logging in without helping an attacker: throttles per account and per client address (GCRA
//! buckets from `governor`: a burst, then one attempt per back-off period, the wait told as
//! `Retry-After`), the same argon2 work whether or not the email belongs to an account (a dummy
//! hash stands in), and a bounded pool for password hashing, so a flood of logins cannot take the
//! CPU and memory every conversation needs (argon2 uses ~19 MiB per hash). With several nodes
//! the throttles are also counted in Redis for all of them ([`SharedThrottles`]), falling back to
//! the node's own count (logged) when Redis does not answer.

use std::future::Future;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::Semaphore;

use super::{hash_password, verify_password, AuthError};
use crate::settings::AgentSettings;

/// Wrong passwords after which a device token stops counting (OWASP: a device cookie is locked
/// out after a few failures): someone holding a browser an agent signed in on gets a few guesses
/// of its own, not a budget that refills.
pub const DEVICE_FAILURES: u32 = 3;

/// How long a device's wrong passwords are remembered (ms).
const DEVICE_FAILURES_KEPT_MS: i64 = 24 * 3600 * 1000;

/// Longest a login waits for a free hashing thread before it is told to come back.
const HASHING_WAIT: Duration = Duration::from_secs(2);

/// Login throttles and the hashing pool; cheap to clone.
#[derive(Clone)]
pub struct Gate(Arc<Inner>);

struct Inner {
    per_account: DefaultKeyedRateLimiter<String>,
    /// Per known device of an account, the account's quota each.
    per_device: DefaultKeyedRateLimiter<String>,
    /// Wrong passwords per device id, and when the last was (ms): a device with
    /// [`DEVICE_FAILURES`] of them is no longer trusted (its sign-ins count against the account).
    device_failures: DashMap<String, (u32, i64)>,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    /// With several nodes: the same throttles counted in Redis for all of them.
    shared: Option<Shared>,
    hashing: Semaphore,
    clock: DefaultClock,
    verifications: AtomicU64,
}

/// What [`SharedThrottles::throttle`] answers: `Some(Ok(()))` allowed, `Some(Err(seconds))`
/// refused with the wait, `None` not counted.
pub type Throttled<'a> = Pin<Box<dyn Future<Output = Option<Result<(), u64>>> + Send + 'a>>;

/// Throttles counted for several nodes together (the cluster's Redis link, `cluster::Bus`,
/// counts them).
pub trait SharedThrottles: Send + Sync {
    /// Counts one attempt against the throttle `key`: a burst of `burst`, then one per
    /// `period_seconds`. `Some(Ok(()))` when allowed, `Some(Err(seconds))` when refused with the
    /// wait, `None` when it could not be counted (then only the node's own throttle applies).
    fn throttle<'a>(&'a self, key: &'a str, burst: u32, period_seconds: f64) -> Throttled<'a>;
}

/// Who a login attempt counts against besides its address ([`Gate::attempt_on`]).
#[derive(Debug, Clone, Copy)]
pub enum Holder<'a> {
    /// The account of this email (lowercased): a browser not known to have signed in to it.
    Account(&'a str),
    /// A device that signed in to the account before (its id from a valid device token,
    /// `accounts::device::check`).
    Device(&'a str),
}

fn refused(retry_after: u64) -> AuthError {
    AuthError::Throttled { retry_after }
}

/// The throttles counted for every node: where, and (burst, period in seconds) per account and
/// per address.
struct Shared {
    bus: Arc<dyn SharedThrottles>,
    account: (u32, f64),
    address: (u32, f64),
}

fn quota(burst: u32, period_seconds: f64) -> Quota {
    let period = Duration::from_secs_f64(period_seconds.clamp(0.001, 86_400.0));
    Quota::with_period(period)
        .expect("a positive period")
        .allow_burst(NonZeroU32::new(burst.max(1)).expect("at least 1"))
}

impl Gate {
    /// Throttles and a hashing pool as `settings` say.
    pub fn new(settings: &AgentSettings) -> Self {
        Self::linked(settings, None)
    }

    /// As [`Gate::new`]; with `cluster`, the throttles also count the attempts made on every
    /// other node (in Redis), so N nodes do not give an attacker N times the attempts.
    pub fn linked(settings: &AgentSettings, cluster: Option<Arc<dyn SharedThrottles>>) -> Self {
        Self(Arc::new(Inner {
            shared: cluster.map(|bus| Shared {
                bus,
                account: (
                    settings.login_attempts_per_account,
                    settings.login_account_backoff_seconds,
                ),
                address: (
                    settings.login_attempts_per_address,
                    settings.login_address_backoff_seconds,
                ),
            }),
            per_account: RateLimiter::keyed(quota(
                settings.login_attempts_per_account,
                settings.login_account_backoff_seconds,
            )),
            per_device: RateLimiter::keyed(quota(
                settings.login_attempts_per_account,
                settings.login_account_backoff_seconds,
            )),
            per_address: RateLimiter::keyed(quota(
                settings.login_attempts_per_address,
                settings.login_address_backoff_seconds,
            )),
            device_failures: DashMap::new(),
            hashing: Semaphore::new(settings.password_hashing_threads.max(1)),
            clock: DefaultClock::default(),
            verifications: AtomicU64::new(0),
        }))
    }

    /// Counts one login attempt from `address`; refused while the address has used up its
    /// attempts, with the seconds to wait. Linked to other nodes, the attempts made on all of them
    /// count (this node's own count still applies, alone when Redis does not answer).
    pub async fn attempt_from(&self, address: IpAddr) -> Result<(), AuthError> {
        let inner = &self.0;
        inner.per_address.check_key(&address).map_err(self.wait())?;
        if let Some(Shared {
            bus,
            address: (burst, period),
            ..
        }) = &inner.shared
        {
            let key = format!("login:address:{address}");
            if let Some(counted) = bus.throttle(&key, *burst, *period).await {
                counted.map_err(refused)?;
            }
        }
        Ok(())
    }

    /// Counts one login attempt against `holder` (after [`Gate::attempt_from`]): the account, or
    /// the known device it comes from (each device of an account has a budget of its own, the
    /// account's size, so guesses from elsewhere do not keep a signed-in browser out). Refused
    /// with the seconds to wait while it has used up its attempts; across nodes as above.
    pub async fn attempt_on(&self, holder: Holder<'_>) -> Result<(), AuthError> {
        let inner = &self.0;
        let (limiter, key) = match holder {
            Holder::Account(email) => (&inner.per_account, email.chars().take(254).collect()),
            Holder::Device(id) => (&inner.per_device, id.chars().take(64).collect::<String>()),
        };
        limiter.check_key(&key).map_err(self.wait())?;
        if let Some(Shared {
            bus,
            account: (burst, period),
            ..
        }) = &inner.shared
        {
            // Hashed: Redis is told no address book.
            let key = match holder {
                Holder::Account(_) => format!("login:account:{}", super::token::hash(&key)),
                Holder::Device(_) => format!("login:device:{}", super::token::hash(&key)),
            };
            if let Some(counted) = bus.throttle(&key, *burst, *period).await {
                counted.map_err(refused)?;
            }
        }
        Ok(())
    }

    /// Whether the device `id` (from a valid device token) is still trusted at `now_ms` (fewer
    /// than [`DEVICE_FAILURES`] wrong passwords from it in the last day, counted by this node);
    /// if so, this attempt is counted as a wrong password until [`Gate::device_succeeded`] takes
    /// it back, so attempts made at the same moment cannot all pass the check.
    pub fn reserve_device(&self, id: &str, now_ms: i64) -> bool {
        let mut entry = self
            .0
            .device_failures
            .entry(id.to_owned())
            .or_insert((0, now_ms));
        if now_ms - entry.1 > DEVICE_FAILURES_KEPT_MS {
            *entry = (0, now_ms);
        }
        if entry.0 >= DEVICE_FAILURES {
            return false;
        }
        *entry = (entry.0 + 1, now_ms);
        true
    }

    /// The password from the device `id` was right: the attempt [`Gate::reserve_device`] counted
    /// is taken back.
    pub fn device_succeeded(&self, id: &str) {
        if let Some(mut entry) = self.0.device_failures.get_mut(id) {
            entry.0 = entry.0.saturating_sub(1);
        }
    }

    /// A refusal with the wait a local throttle gives.
    fn wait(&self) -> impl Fn(governor::NotUntil<<DefaultClock as Clock>::Instant>) -> AuthError {
        let now = self.0.clock.now();
        move |not_until| AuthError::Throttled {
            retry_after: (not_until.wait_time_from(now).as_secs_f64().ceil() as u64).max(1),
        }
    }

    /// Checks `password` against `hash`, or against a dummy hash when there is no account, so
    /// an unknown email costs the same argon2 work as a known one; on a free hashing thread, or
    /// `Busy` when none frees up within two seconds.
    pub async fn verify(&self, password: &str, hash: Option<String>) -> Result<bool, AuthError> {
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| dummy_hash().to_owned());
        self.0.verifications.fetch_add(1, Ordering::Relaxed);
        let ok = self
            .on_hashing_thread({
                let password = password.to_owned();
                move || verify_password(&password, &hash)
            })
            .await?;
        Ok(ok && known)
    }

    /// Hashes a new password on the hashing pool.
    pub async fn hash(&self, password: &str) -> Result<String, AuthError> {
        let password = password.to_owned();
        self.on_hashing_thread(move || hash_password(&password))
            .await?
    }

    async fn on_hashing_thread<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, AuthError> {
        let permit = tokio::time::timeout(HASHING_WAIT, self.0.hashing.acquire())
            .await
            .map_err(|_| AuthError::Busy { retry_after: 2 })?
            .map_err(|_| AuthError::Busy { retry_after: 2 })?;
        let done = tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| AuthError::Invalid(format!("password hashing failed: {e}")));
        drop(permit);
        done
    }

    /// Password verifications run so far (known and unknown emails alike).
    pub fn verifications(&self) -> u64 {
        self.0.verifications.load(Ordering::Relaxed)
    }

    /// Forgets the throttles' state of keys that are back to a full bucket, and devices' wrong
    /// passwords older than a day (bounds memory).
    pub fn forget_idle(&self) {
        let now = crate::clock::now_ms();
        self.0
            .device_failures
            .retain(|_, f| now - f.1 <= DEVICE_FAILURES_KEPT_MS);
        self.0.per_account.retain_recent();
        self.0.per_device.retain_recent();
        self.0.per_address.retain_recent();
        self.0.per_account.shrink_to_fit();
        self.0.per_device.shrink_to_fit();
        self.0.per_address.shrink_to_fit();
    }
}

/// A hash of a random password with the same parameters as every real one.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_password(&super::token::new_token()).expect("hashing a random password works")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> AgentSettings {
        AgentSettings {
            login_attempts_per_account: 3,
            login_account_backoff_seconds: 60.0,
            login_attempts_per_address: 5,
            login_address_backoff_seconds: 60.0,
            ..Default::default()
        }
    }

    /// One attempt on the account of `email` from `from`, as a login without a device token makes.
    async fn attempt(gate: &Gate, email: &str, from: IpAddr) -> Result<(), AuthError> {
        gate.attempt_from(from).await?;
        gate.attempt_on(Holder::Account(email)).await
    }

    #[tokio::test]
    async fn an_account_gets_its_burst_then_waits_whatever_the_address() {
        let gate = Gate::new(&settings());
        for i in 0..3 {
            let from = IpAddr::from([10, 0, 0, i]);
            attempt(&gate, "sam@example.com", from).await.unwrap();
        }
        match attempt(&gate, "sam@example.com", IpAddr::from([10, 0, 0, 9])).await {
            Err(AuthError::Throttled { retry_after }) => assert!((1..=60).contains(&retry_after)),
            other => panic!("expected a throttle, got {other:?}"),
        }
        // Another account is not held up by Sam's.
        attempt(&gate, "kim@example.com", IpAddr::from([10, 0, 0, 9]))
            .await
            .unwrap();
        // Nor is a browser Sam signed in from before: each device has a budget of its own.
        for _ in 0..3 {
            gate.attempt_on(Holder::Device("d-1")).await.unwrap();
        }
        assert!(matches!(
            gate.attempt_on(Holder::Device("d-1")).await,
            Err(AuthError::Throttled { .. })
        ));
        gate.attempt_on(Holder::Device("d-2")).await.unwrap();
    }

    #[test]
    fn a_device_is_untrusted_after_three_wrong_passwords_for_a_day() {
        let gate = Gate::new(&settings());
        assert!(gate.reserve_device("d-1", 0));
        gate.device_succeeded("d-1");
        for i in 0..DEVICE_FAILURES {
            assert!(
                gate.reserve_device("d-1", i64::from(i)),
                "wrong password {i}"
            );
        }
        assert!(!gate.reserve_device("d-1", 10));
        assert!(gate.reserve_device("d-2", 10), "another device");
        assert!(
            gate.reserve_device("d-1", 3 + DEVICE_FAILURES_KEPT_MS),
            "a day later"
        );
    }

    #[tokio::test]
    async fn an_address_gets_its_burst_across_accounts() {
        let gate = Gate::new(&settings());
        let from = IpAddr::from([10, 0, 0, 1]);
        for i in 0..5 {
            attempt(&gate, &format!("a{i}@example.com"), from)
                .await
                .unwrap();
        }
        assert!(matches!(
            attempt(&gate, "new@example.com", from).await,
            Err(AuthError::Throttled { .. })
        ));
    }

    #[tokio::test]
    async fn an_unknown_email_runs_the_same_verification_and_never_succeeds() {
        let gate = Gate::new(&settings());
        let real = gate.hash("correct horse battery").await.unwrap();
        assert!(gate
            .verify("correct horse battery", Some(real.clone()))
            .await
            .unwrap());
        assert!(!gate.verify("wrong", Some(real)).await.unwrap());
        // The dummy hash is a real argon2 hash with the same parameters: the work is the same.
        assert!(dummy_hash().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(!gate.verify("correct horse battery", None).await.unwrap());
    }
}
