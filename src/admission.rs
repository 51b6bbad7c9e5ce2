//! Admission: who may open a socket, and start a conversation, right now.
//!
//! Slots are taken before a WebSocket is upgraded, so a full server answers `503` with
//! `Retry-After` instead of accepting a socket it cannot serve. Customers and agents have separate
//! pools: no number of customers (or silent sockets pretending to be customers) can take an
//! agent's slot. Each client address may hold only so many sockets, and start only so many
//! conversations, ask for a person and leave tickets only so often (across all its sockets); an
//! agent socket that has not signed in yet counts against its address too, so sockets that never
//! sign in cannot fill the agents' pool. The client address is the TCP peer's, or, when the peer
//! is a trusted proxy (`server.trusted_proxies`), the last untrusted address of its
//! `X-Forwarded-For`; an IPv6 client is counted by its /64 network ([`limit_key`]).

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::ids::ConversationId;
use crate::settings::{LimitSettings, ServerSettings};

/// Which pool a socket draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    /// The widget's `/ws/chat`.
    Customers,
    /// The console's `/ws/agent`.
    Agents,
}

/// Why a socket or a conversation was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every slot of the pool is taken.
    Full {
        /// Seconds after which trying again makes sense.
        retry_after: u32,
    },
    /// This client address has as many sockets (or new conversations) as it may.
    TooManyFromAddress {
        /// Seconds after which trying again makes sense.
        retry_after: u32,
    },
}

impl Refused {
    /// Seconds after which trying again makes sense.
    pub fn retry_after(self) -> u32 {
        match self {
            Refused::Full { retry_after } | Refused::TooManyFromAddress { retry_after } => {
                retry_after
            }
        }
    }
}

/// A customer action that is limited per client address, across all of its sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `request_human`: `limits.handoff_requests_per_address_per_minute`.
    RequestHuman,
    /// `leave_email` (a ticket): `limits.tickets_per_address_per_minute`.
    LeaveEmail,
}

impl Action {
    /// In words, for the client: "too many {what} from your network".
    pub fn what(self) -> &'static str {
        match self {
            Action::RequestHuman => "requests for a person",
            Action::LeaveEmail => "messages left",
        }
    }

    /// Its name in the budgets the nodes share.
    fn key(self) -> &'static str {
        match self {
            Action::RequestHuman => "request_human",
            Action::LeaveEmail => "leave_email",
        }
    }

    /// The key of `address`'s budget for this action in the minute `window`, shared by every
    /// node.
    pub fn shared_key(self, address: IpAddr, window: i64) -> String {
        format!("{}:{address}:{window}", self.key())
    }
}

/// Customer sockets counted for several nodes together (the cluster's Redis link, `cluster::Bus`,
/// counts them).
pub trait SharedSockets: Send + Sync {
    /// Counts one more socket from `address` and tells whether all nodes together now have at
    /// most `limit` (if not, it is not counted); `None` when it could not be counted (then only
    /// the node's own count applies).
    fn open_socket(
        &self,
        address: IpAddr,
        limit: usize,
    ) -> Pin<Box<dyn Future<Output = Option<bool>> + Send + '_>>;

    /// Takes back a socket `open_socket` counted (in the background).
    fn close_socket(&self, address: IpAddr);
}

/// Handle to admission control; clone it freely.
#[derive(Clone)]
pub struct Admission {
    inner: Arc<Inner>,
}

struct Inner {
    customers: AtomicUsize,
    agents: AtomicUsize,
    max_customers: usize,
    max_agents: usize,
    per_address: usize,
    conversations_per_minute: f64,
    /// `request_human` and `leave_email` per address per minute, as set.
    actions_per_minute: (f64, f64),
    sockets: DashMap<IpAddr, usize>,
    /// Agent sockets per address that have not signed in yet.
    unsigned_agents: DashMap<IpAddr, usize>,
    budgets: DashMap<IpAddr, Bucket>,
    /// Customer messages per conversation (its id), across its sockets and reconnections.
    messages: DashMap<ConversationId, Bucket>,
    /// `limits.messages_per_second` and `limits.message_burst`.
    message_rate: (f64, f64),
    handoffs: DefaultKeyedRateLimiter<IpAddr>,
    tickets: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
    trusted: Vec<Cidr>,
    /// With several nodes: sockets per address are counted across them too.
    cluster: Option<Arc<dyn SharedSockets>>,
}

/// `per_minute` a minute, all of them at once in a burst.
fn per_minute(per_minute: f64) -> Quota {
    let per_minute = per_minute.clamp(1.0 / 1440.0, 1_000_000.0);
    let burst = std::num::NonZeroU32::new(per_minute.ceil() as u32).expect("at least 1");
    Quota::with_period(std::time::Duration::from_secs_f64(60.0 / per_minute))
        .expect("a positive period")
        .allow_burst(burst)
}

/// A socket's place: released when dropped.
pub struct Slot {
    inner: Arc<Inner>,
    pool: Pool,
    address: IpAddr,
    /// Counted in Redis as well (taken back there when dropped).
    shared: bool,
    /// Counted against its address (a customer's socket, or an agent's not signed in yet).
    counted: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.shared {
            if let Some(shared) = &self.inner.cluster {
                shared.close_socket(self.address);
            }
        }
        self.inner.counter(self.pool).fetch_sub(1, Ordering::AcqRel);
        if self.counted {
            self.inner.uncount(self.pool, self.address);
        }
    }
}

impl Slot {
    /// The client address the slot was given to.
    pub fn address(&self) -> IpAddr {
        self.address
    }

    /// Counts `action` against the budget of the slot's address (see [`Admission::action`]).
    pub fn action(&self, action: Action) -> Result<(), Refused> {
        self.inner.action(action, self.address)
    }

    /// The agent on this socket has signed in: it no longer counts against its address (agents
    /// behind one office address are as many as the office has).
    pub fn signed_in(&mut self) {
        if self.pool == Pool::Agents && self.counted {
            self.inner.uncount(self.pool, self.address);
            self.counted = false;
        }
    }
}

impl Inner {
    fn action(&self, action: Action, address: IpAddr) -> Result<(), Refused> {
        let limiter = match action {
            Action::RequestHuman => &self.handoffs,
            Action::LeaveEmail => &self.tickets,
        };
        limiter.check_key(&address).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            Refused::TooManyFromAddress {
                retry_after: (wait.as_secs_f64().ceil() as u32).clamp(1, 3600),
            }
        })
    }

    /// The sockets counted per address in `pool`.
    fn per_address_counts(&self, pool: Pool) -> &DashMap<IpAddr, usize> {
        match pool {
            Pool::Customers => &self.sockets,
            Pool::Agents => &self.unsigned_agents,
        }
    }

    fn uncount(&self, pool: Pool, address: IpAddr) {
        self.per_address_counts(pool)
            .remove_if_mut(&address, |_, n| {
                *n = n.saturating_sub(1);
                *n == 0
            });
    }

    fn counter(&self, pool: Pool) -> &AtomicUsize {
        match pool {
            Pool::Customers => &self.customers,
            Pool::Agents => &self.agents,
        }
    }
}

impl Admission {
    /// Admission with the server's pool sizes and the per-address limits.
    pub fn new(server: &ServerSettings, limits: &LimitSettings) -> Result<Self, String> {
        Self::linked(server, limits, None)
    }

    /// As [`Admission::new`]; with `cluster`, [`Admission::admit_customer`] counts the sockets
    /// per address of every node.
    pub fn linked(
        server: &ServerSettings,
        limits: &LimitSettings,
        cluster: Option<Arc<dyn SharedSockets>>,
    ) -> Result<Self, String> {
        let trusted = server
            .trusted_proxies
            .iter()
            .map(|s| Cidr::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            inner: Arc::new(Inner {
                customers: AtomicUsize::new(0),
                agents: AtomicUsize::new(0),
                max_customers: server.max_connections.max(1),
                max_agents: server.max_agent_connections.max(1),
                per_address: limits.sockets_per_address.max(1),
                conversations_per_minute: limits.new_conversations_per_address_per_minute,
                actions_per_minute: (
                    limits.handoff_requests_per_address_per_minute,
                    limits.tickets_per_address_per_minute,
                ),
                sockets: DashMap::new(),
                unsigned_agents: DashMap::new(),
                budgets: DashMap::new(),
                messages: DashMap::new(),
                message_rate: (limits.messages_per_second, limits.message_burst.max(1.0)),
                handoffs: RateLimiter::keyed(per_minute(
                    limits.handoff_requests_per_address_per_minute,
                )),
                tickets: RateLimiter::keyed(per_minute(limits.tickets_per_address_per_minute)),
                clock: DefaultClock::default(),
                trusted,
                cluster,
            }),
        })
    }

    /// Sockets open in `pool` now.
    pub fn open(&self, pool: Pool) -> usize {
        self.inner.counter(pool).load(Ordering::Acquire)
    }

    /// Takes a socket slot from `pool` for `address`, or says why not. An agent's slot counts
    /// against its address until [`Slot::signed_in`].
    pub fn admit(&self, pool: Pool, address: IpAddr) -> Result<Slot, Refused> {
        self.admit_counted(pool, address, true)
    }

    /// An agent's slot for a socket whose token was checked before the upgrade: signed in
    /// already, it does not count against its address.
    pub fn admit_signed_in_agent(&self, address: IpAddr) -> Result<Slot, Refused> {
        self.admit_counted(Pool::Agents, address, false)
    }

    fn admit_counted(&self, pool: Pool, address: IpAddr, counted: bool) -> Result<Slot, Refused> {
        let inner = &self.inner;
        let max = match pool {
            Pool::Customers => inner.max_customers,
            Pool::Agents => inner.max_agents,
        };
        let counter = inner.counter(pool);
        if counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_err()
        {
            return Err(Refused::Full { retry_after: 5 });
        }
        // Customers, and agents until they sign in (then they are known by their tokens), are
        // counted per address.
        if counted {
            let mut n = inner.per_address_counts(pool).entry(address).or_insert(0);
            if *n >= inner.per_address {
                drop(n);
                counter.fetch_sub(1, Ordering::AcqRel);
                return Err(Refused::TooManyFromAddress { retry_after: 10 });
            }
            *n += 1;
        }
        Ok(Slot {
            inner: inner.clone(),
            pool,
            address,
            shared: false,
            counted,
        })
    }

    /// A customer socket's slot ([`Admission::admit`]); linked to other nodes, the address's
    /// sockets on all of them count towards `limits.sockets_per_address` (this node's own count
    /// alone when Redis does not answer, which is logged).
    pub async fn admit_customer(&self, address: IpAddr) -> Result<Slot, Refused> {
        let mut slot = self.admit(Pool::Customers, address)?;
        if let Some(shared) = &self.inner.cluster {
            match shared.open_socket(address, self.inner.per_address).await {
                Some(true) => slot.shared = true,
                Some(false) => return Err(Refused::TooManyFromAddress { retry_after: 10 }),
                None => {}
            }
        }
        Ok(slot)
    }

    /// Counts a new conversation from `address` at `now_ms`, or refuses it when the address has
    /// started `limits.new_conversations_per_address_per_minute` lately (`0`: no limit, as across
    /// the nodes).
    pub fn new_conversation(&self, address: IpAddr, now_ms: i64) -> Result<(), Refused> {
        let rate = self.inner.conversations_per_minute;
        if rate <= 0.0 {
            return Ok(());
        }
        let mut bucket = self.inner.budgets.entry(address).or_insert_with(|| Bucket {
            tokens: rate,
            at: now_ms,
        });
        if bucket.take(rate, now_ms) {
            Ok(())
        } else {
            let wait = ((1.0 - bucket.tokens) * 60.0 / rate.max(f64::MIN_POSITIVE)).ceil();
            Err(Refused::TooManyFromAddress {
                retry_after: wait.clamp(1.0, 3600.0) as u32,
            })
        }
    }

    /// Counts a customer message in `conversation` at `now_ms`, or says it comes too fast:
    /// `limits.messages_per_second` sustained, bursts of `limits.message_burst`, counted for the
    /// conversation across all its sockets, so reconnecting does not start the count again.
    pub fn message(&self, conversation: &ConversationId, now_ms: i64) -> bool {
        let (per_second, burst) = self.inner.message_rate;
        let mut bucket = match self.inner.messages.get_mut(conversation) {
            Some(bucket) => bucket,
            None => self
                .inner
                .messages
                .entry(conversation.clone())
                .or_insert(Bucket {
                    tokens: burst,
                    at: now_ms,
                }),
        };
        bucket.take_within(per_second * 60.0, burst, now_ms)
    }

    /// Gives back the message [`Admission::message`] counted for `conversation`: it was a copy of
    /// one stored before (a widget sending again what it had no ack for), or was not stored.
    pub fn give_back_message(&self, conversation: &ConversationId) {
        let (_, burst) = self.inner.message_rate;
        if let Some(mut bucket) = self.inner.messages.get_mut(conversation) {
            bucket.tokens = (bucket.tokens + 1.0).min(burst);
        }
    }

    /// New conversations one address may start per minute (`0`: no limit).
    pub fn conversations_per_minute(&self) -> f64 {
        self.inner.conversations_per_minute
    }

    /// How often one address may do `action` per minute.
    pub fn action_per_minute(&self, action: Action) -> f64 {
        match action {
            Action::RequestHuman => self.inner.actions_per_minute.0,
            Action::LeaveEmail => self.inner.actions_per_minute.1,
        }
    }

    /// Counts `action` from `address`, or refuses it with the seconds to wait when the address
    /// has done it as often as it may lately.
    pub fn action(&self, action: Action, address: IpAddr) -> Result<(), Refused> {
        self.inner.action(action, address)
    }

    /// Forgets the budgets of addresses that are back to full (run now and then).
    pub fn forget_idle(&self, now_ms: i64) {
        let rate = self.inner.conversations_per_minute;
        self.inner.budgets.retain(|_, b| {
            b.refill(rate, now_ms);
            b.tokens < rate
        });
        let (per_second, burst) = self.inner.message_rate;
        self.inner.messages.retain(|_, b| {
            b.refill_within(per_second * 60.0, burst, now_ms);
            b.tokens < burst
        });
        for limiter in [&self.inner.handoffs, &self.inner.tickets] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// The client's address as its limits count it ([`limit_key`]): the TCP peer's, or for a
    /// trusted proxy the last address in `X-Forwarded-For` (all its lines, joined with commas)
    /// that is not itself a trusted proxy.
    pub fn client_address(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        limit_key(self.forwarded_client(peer, forwarded_for))
    }

    fn forwarded_client(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let Some(header) = forwarded_for else {
            return peer;
        };
        let mut client = peer;
        for hop in header.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) if self.trusts(ip) => client = ip,
                Ok(ip) => return ip,
                Err(_) => return client,
            }
        }
        client
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.inner.trusted.iter().any(|c| c.contains(ip))
    }

    /// Sockets open now from `address` (customers).
    pub fn sockets_from(&self, address: IpAddr) -> usize {
        self.inner.sockets.get(&address).map_or(0, |n| *n)
    }
}

/// The address a client's limits are counted under: an IPv4 address as it is (an IPv4-mapped
/// IPv6 one as its IPv4), an IPv6 address by its /64 network with the rest zero. One home or one
/// server is given a /64, and a client there may use any of its 2^64 addresses: counted one by
/// one, it would have no limit.
pub fn limit_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None if v6.is_loopback() => ip,
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

/// A token bucket refilled at `rate` per minute up to `rate`.
struct Bucket {
    tokens: f64,
    at: i64,
}

impl Bucket {
    fn refill(&mut self, rate: f64, now_ms: i64) {
        self.refill_within(rate, rate, now_ms);
    }

    /// Refilled at `rate` per minute up to `burst`.
    fn refill_within(&mut self, rate: f64, burst: f64, now_ms: i64) {
        let minutes = (now_ms - self.at).max(0) as f64 / 60_000.0;
        self.tokens = (self.tokens + minutes * rate).min(burst);
        self.at = now_ms.max(self.at);
    }

    fn take(&mut self, rate: f64, now_ms: i64) -> bool {
        self.take_within(rate, rate, now_ms)
    }

    fn take_within(&mut self, rate: f64, burst: f64, now_ms: i64) -> bool {
        self.refill_within(rate, burst, now_ms);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// An address or a network (`10.0.0.0/8`, `::1`).
#[derive(Debug, Clone, Copy)]
struct Cidr {
    network: IpAddr,
    bits: u8,
}

impl Cidr {
    fn parse(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("server.trusted_proxies: `{s}` is not an address or a network like 10.0.0.0/8")
        };
        let (address, bits) = match s.trim().split_once('/') {
            Some((a, b)) => (a, Some(b.parse::<u8>().map_err(|_| bad())?)),
            None => (s.trim(), None),
        };
        let network: IpAddr = address.parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(max);
        if bits > max {
            return Err(bad());
        }
        Ok(Self { network, bits })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let prefix = |a: u128, b: u128, len: u32, bits: u8| {
            let shift = len - bits as u32;
            shift >= len || (a >> shift) == (b >> shift)
        };
        match (self.network, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                prefix(u32::from(n) as u128, u32::from(i) as u128, 32, self.bits)
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => prefix(u128::from(n), u128::from(i), 128, self.bits),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(adjust: impl FnOnce(&mut ServerSettings, &mut LimitSettings)) -> Admission {
        let (mut server, mut limits) = (ServerSettings::default(), LimitSettings::default());
        adjust(&mut server, &mut limits);
        Admission::new(&server, &limits).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn customers_can_never_take_the_agents_slots() {
        let a = admission(|s, l| {
            s.max_connections = 2;
            s.max_agent_connections = 1;
            l.sockets_per_address = 10;
        });
        let _c1 = a.admit(Pool::Customers, ip("10.0.0.1")).unwrap();
        let c2 = a.admit(Pool::Customers, ip("10.0.0.1")).unwrap();
        assert!(matches!(
            a.admit(Pool::Customers, ip("10.0.0.2")),
            Err(Refused::Full { .. })
        ));
        let _agent = a
            .admit(Pool::Agents, ip("10.0.0.1"))
            .expect("the agents' pool is apart");
        drop(c2);
        a.admit(Pool::Customers, ip("10.0.0.2"))
            .expect("a freed slot is free");
    }

    #[test]
    fn agent_sockets_count_against_their_address_until_they_sign_in() {
        let a = admission(|s, l| {
            s.max_agent_connections = 10;
            l.sockets_per_address = 2;
        });
        let office = ip("10.0.0.1");
        let mut first = a.admit(Pool::Agents, office).unwrap();
        let _second = a.admit(Pool::Agents, office).unwrap();
        assert!(
            matches!(
                a.admit(Pool::Agents, office),
                Err(Refused::TooManyFromAddress { .. })
            ),
            "sockets that never sign in cannot fill the agents' pool from one address"
        );
        assert_eq!(a.sockets_from(office), 0, "customers' counts apart");
        first.signed_in();
        let third = a
            .admit(Pool::Agents, office)
            .expect("a signed-in agent frees its place");
        drop(first);
        drop(third);
        assert!(a
            .inner
            .unsigned_agents
            .get(&office)
            .is_some_and(|n| *n == 1));
    }

    #[test]
    fn messages_are_counted_per_conversation_however_many_sockets_it_had() {
        let a = admission(|_, l| {
            l.messages_per_second = 1.0;
            l.message_burst = 3.0;
        });
        let (c1, c2) = (ConversationId::from("c1"), ConversationId::from("c2"));
        for _ in 0..3 {
            assert!(a.message(&c1, 0));
        }
        assert!(!a.message(&c1, 0), "a new socket of c1 counts on");
        assert!(a.message(&c2, 0), "another conversation apart");
        assert!(a.message(&c1, 1_000), "a second later: one more");
        assert!(!a.message(&c1, 1_000));
        a.give_back_message(&c1);
        assert!(
            a.message(&c1, 1_000),
            "a copy of a stored message is not counted"
        );
        assert!(!a.message(&c1, 1_000));
        a.forget_idle(60_000);
        assert!(a.inner.messages.is_empty(), "full buckets are forgotten");
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_network() {
        assert_eq!(limit_key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        assert_eq!(limit_key(ip("::ffff:192.0.2.9")), ip("192.0.2.9"));
        assert_eq!(limit_key(ip("192.0.2.9")), ip("192.0.2.9"));
        let a = admission(|_, l| l.sockets_per_address = 1);
        let _one = a
            .admit(Pool::Customers, a.client_address(ip("2001:db8::1"), None))
            .unwrap();
        assert!(a
            .admit(Pool::Customers, a.client_address(ip("2001:db8::2"), None))
            .is_err());
    }

    #[test]
    fn one_address_holds_only_so_many_sockets() {
        let a = admission(|_, l| l.sockets_per_address = 2);
        let first = a.admit(Pool::Customers, ip("10.0.0.1")).unwrap();
        let _second = a.admit(Pool::Customers, ip("10.0.0.1")).unwrap();
        assert!(matches!(
            a.admit(Pool::Customers, ip("10.0.0.1")),
            Err(Refused::TooManyFromAddress { .. })
        ));
        a.admit(Pool::Customers, ip("10.0.0.2"))
            .expect("another address");
        drop(first);
        assert_eq!(a.sockets_from(ip("10.0.0.1")), 1);
        a.admit(Pool::Customers, ip("10.0.0.1"))
            .expect("room again");
    }

    #[test]
    fn new_conversations_per_address_refill_over_a_minute() {
        let a = admission(|_, l| l.new_conversations_per_address_per_minute = 2.0);
        let home = ip("10.0.0.1");
        assert!(a.new_conversation(home, 0).is_ok());
        assert!(a.new_conversation(home, 0).is_ok());
        assert_eq!(
            a.new_conversation(home, 0),
            Err(Refused::TooManyFromAddress { retry_after: 30 })
        );
        assert!(a.new_conversation(ip("10.0.0.2"), 0).is_ok());
        assert!(
            a.new_conversation(home, 30_000).is_ok(),
            "half a minute: one more"
        );
        a.forget_idle(10 * 60_000);
        assert!(a.inner.budgets.is_empty());
    }

    #[test]
    fn hand_off_requests_and_tickets_are_counted_per_address_apart() {
        let a = admission(|_, l| {
            l.tickets_per_address_per_minute = 2.0;
            l.handoff_requests_per_address_per_minute = 1.0;
        });
        let home = ip("10.0.0.1");
        assert!(a.action(Action::LeaveEmail, home).is_ok());
        assert!(a.action(Action::LeaveEmail, home).is_ok());
        let Err(Refused::TooManyFromAddress { retry_after }) = a.action(Action::LeaveEmail, home)
        else {
            panic!("a third ticket within the minute is refused");
        };
        assert!((1..=30).contains(&retry_after), "{retry_after}");
        assert!(a.action(Action::LeaveEmail, ip("10.0.0.2")).is_ok());
        assert!(a.action(Action::RequestHuman, home).is_ok(), "apart");
        assert!(a.action(Action::RequestHuman, home).is_err());
    }

    #[test]
    fn forwarded_for_counts_only_behind_a_trusted_proxy() {
        let a = admission(|s, _| s.trusted_proxies = vec!["10.0.0.0/8".into(), "::1".into()]);
        let header = Some("203.0.113.7, 198.51.100.2, 10.1.2.3");
        assert_eq!(a.client_address(ip("10.9.9.9"), header), ip("198.51.100.2"));
        assert_eq!(a.client_address(ip("192.0.2.1"), header), ip("192.0.2.1"));
        assert_eq!(a.client_address(ip("::1"), Some("bogus")), ip("::1"));
        assert_eq!(a.client_address(ip("10.0.0.1"), None), ip("10.0.0.1"));
        // Behind the proxy, an IPv6 client is counted by its /64.
        assert_eq!(
            a.client_address(ip("::1"), Some("2001:db8:1:2:aaaa::7")),
            ip("2001:db8:1:2::")
        );
        let bad = ServerSettings {
            trusted_proxies: vec!["10.0.0.0/40".into()],
            ..ServerSettings::default()
        };
        assert!(Admission::new(&bad, &LimitSettings::default()).is_err());
    }
}
