//! Several nodes: the Redis link that carries what crosses between them.
//!
//! Postgres is the single truth (conversations, every frame with its sequence number, hand-offs
//! and who holds them: `Store::claim_handoff` decides a claim). What lives in a node's memory is
//! its sockets and its copy of the queue; Redis tells every node what the others did, on one
//! pub/sub channel (`cluster.channel`):
//!
//! - a frame for a conversation, one agent, every agent, or a conversation's customers: each node
//!   delivers it to its own sockets of that audience ([`crate::fanout`]);
//! - who holds a conversation (so the node of the customer's socket sends the agent events);
//! - queue changes: a conversation joined the queue, was taken by an agent, or left it; each node
//!   updates its copy and tells its own consoles;
//! - the agents each node has (presence);
//! - what customers picked under "Which of these is it?" and their verdicts on answers, which
//!   every node's bot learns from.
//!
//! Besides the channel, Redis counts the budgets all nodes share ([`Bus::within`]: new
//! conversations, requests for a person and messages left per client address) and the login
//! throttles per account and per address ([`Bus::gcra`]) and the customer sockets per address
//! ([`Bus::count_socket`], counted while their node says it is alive), so N nodes do not allow N
//! times as much.
//!
//! A node delivers to its own sockets at once and publishes once; it ignores its own signals when
//! they come back. Publishes leave in the order they were made (one connection, one task), so
//! the frames of one conversation from one node arrive in order. Nothing is stored in Redis: when
//! the link drops, every socket of the node is closed with 4004 `reconnect`, and clients resume
//! from the store with their `last_seq`; a missed publish costs latency, never a message.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::accounts::Account;
use crate::ids::{AgentId, ConversationId};
use crate::queue::{Presence, Waiting};
use crate::settings::redact_url;

/// Signals waiting to be published; past this the link counts as lost (sockets resume).
const PUBLISH_BACKLOG: usize = 65_536;

/// Signals received and not yet handled by the node.
const RECEIVE_BACKLOG: usize = 65_536;

/// A budget's count in its window: KEYS[1] starts at 0 for ARGV[1] seconds; returns the count
/// with this use.
const BUDGET: &str = r"
redis.call('SET', KEYS[1], 0, 'EX', ARGV[1], 'NX')
return redis.call('INCR', KEYS[1])
";

impl crate::accounts::SharedThrottles for Bus {
    fn throttle<'a>(
        &'a self,
        key: &'a str,
        burst: u32,
        period_seconds: f64,
    ) -> crate::accounts::Throttled<'a> {
        Box::pin(self.gcra(key, burst, period_seconds))
    }
}

impl crate::admission::SharedSockets for Bus {
    fn open_socket(
        &self,
        address: IpAddr,
        limit: usize,
    ) -> Pin<Box<dyn Future<Output = Option<bool>> + Send + '_>> {
        Box::pin(self.count_socket(address, limit))
    }

    fn close_socket(&self, address: IpAddr) {
        self.uncount_socket(address);
    }
}

/// GCRA in one step on Redis: KEYS[1] holds the theoretical arrival time (ms, Redis's clock);
/// ARGV[1] is the period in ms, ARGV[2] the burst. Returns 0 when the attempt is allowed (and
/// counted), else the milliseconds until one would be.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local period = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local next_tat = tat + period
local wait = next_tat - now - burst * period
if wait > 0 then return wait end
redis.call('SET', KEYS[1], next_tat, 'PX', next_tat - now)
return 0
";

/// Sockets per address: KEYS[1] is the address's hash of counts by node; ARGV[1] this node,
/// ARGV[2] the limit, ARGV[3] the prefix of the nodes' `alive` keys. Returns 1 when the socket
/// is counted, 0 when the live nodes hold `limit` already (nothing counted). It reads keys it was
/// not given (the nodes' `alive` keys): one Redis server, not a Redis Cluster.
const OPEN_SOCKET: &str = r"
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
local all = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #all, 2 do
  if all[i] == ARGV[1] or redis.call('EXISTS', ARGV[3] .. all[i]) == 1 then
    total = total + tonumber(all[i + 1])
  else
    redis.call('HDEL', KEYS[1], all[i])
  end
end
if total > tonumber(ARGV[2]) then
  if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
  return 0
end
redis.call('EXPIRE', KEYS[1], 86400)
return 1
";

/// Takes one socket off this node's count (ARGV[1]) in the address's hash (KEYS[1]).
const CLOSE_SOCKET: &str = r"
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
";

/// How often a node says it is alive in Redis, and how long that holds: the sockets a node
/// counted stop counting this long after it dies.
const ALIVE_EVERY: Duration = Duration::from_secs(5);
const ALIVE_FOR_SECONDS: u64 = 15;

/// How long to wait for Redis at start-up and between attempts to reconnect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// What one node tells the others.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "signal", rename_all = "snake_case")]
pub enum Signal {
    /// A conversation's frame: for its customer sockets, and as `event` for its holder's.
    Conversation {
        /// The conversation.
        conversation: ConversationId,
        /// The frame customers get.
        frame: String,
        /// The same frame wrapped as the holder's `event`.
        event: String,
        /// Its sequence number, if it is stored (each customer socket gets each once, in order).
        #[serde(default)]
        seq: Option<i64>,
    },
    /// A frame for a conversation's customer sockets only.
    Customers {
        /// The conversation.
        conversation: ConversationId,
        /// The frame.
        frame: String,
    },
    /// A frame for every socket of one agent.
    Agent {
        /// The agent.
        agent: AgentId,
        /// The frame.
        frame: String,
    },
    /// A frame for every agent's sockets.
    AllAgents {
        /// The frame.
        frame: String,
    },
    /// The agent who sees the conversation's frames changed.
    Holder {
        /// The conversation.
        conversation: ConversationId,
        /// The agent, or nobody.
        agent: Option<AgentId>,
    },
    /// A conversation joined (or went back to) the queue.
    Queued {
        /// Its entry.
        entry: Waiting,
    },
    /// An agent took a conversation (a claim, an assignment, a transfer) and the store agreed.
    Taken {
        /// Its entry.
        entry: Waiting,
        /// The agent who holds it now.
        agent: Account,
    },
    /// A conversation left the queue and its holder (resolved, or abandoned).
    Left {
        /// The conversation.
        conversation: ConversationId,
    },
    /// The agents connected to a node now, with their presence, and the queued conversations
    /// whose customer is connected to it (sent at every change of agents and every few seconds;
    /// a node that stops sending drops out).
    Staff {
        /// The node.
        node: String,
        /// Its agents.
        agents: Vec<(Account, Presence)>,
        /// Queued conversations with a customer socket on the node (the node that runs the
        /// timers does not count them as abandoned).
        #[serde(default)]
        customers: Vec<ConversationId>,
    },
    /// A customer picked an option under "Which of these is it?" (`passage`; `None`: "None of
    /// these", or "not helpful" on an answer), for the bot to learn from ([`crate::bot::Picks`]).
    Pick {
        /// The conversation.
        conversation: ConversationId,
        /// The bot message it was about.
        seq: i64,
        /// What the customer had asked.
        question: String,
        /// The passage picked.
        passage: Option<String>,
        /// Where the offered line was quoted from.
        #[serde(default)]
        quote_from: usize,
    },
    /// A pick taken back ("helpful" after "not helpful").
    Unpick {
        /// The conversation.
        conversation: ConversationId,
        /// The bot message it was about.
        seq: i64,
    },
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    /// The node that sent it.
    from: String,
    #[serde(flatten)]
    signal: Signal,
}

/// What the link hands the node: another node's signal, or news of the link itself.
#[derive(Debug)]
pub enum Received {
    /// Another node's signal.
    Signal(Box<Signal>),
    /// The link to Redis was lost (or too many signals wait to be published): what other nodes
    /// do is unknown, so every socket must resume from the store.
    Lost,
    /// The link is back after being lost: sockets opened meanwhile must resume too, and the
    /// copy of the queue be read again from the store.
    Relinked,
}

/// Publishes signals; cheap to clone.
#[derive(Clone)]
pub struct Bus {
    node: Arc<str>,
    channel: Arc<str>,
    tx: mpsc::Sender<String>,
    lost: mpsc::Sender<Received>,
    /// For the budgets every node counts against (a connection of its own).
    counters: Counters,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus").field("node", &self.node).finish()
    }
}

impl Bus {
    /// This node's id on the bus.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Counts one more use of the budget `key` in the current window of `window_seconds`, on
    /// every node together; true while at most `limit` were counted. When Redis does not answer
    /// the use is let through (each node's own limit still holds) and the failure logged.
    pub async fn within(&self, key: &str, limit: u32, window_seconds: u64) -> bool {
        let key = format!("{}:budget:{key}", self.channel);
        let counted: redis::RedisResult<i64> = self
            .counters
            .query(
                redis::cmd("EVAL")
                    .arg(BUDGET)
                    .arg(1)
                    .arg(&key)
                    .arg(window_seconds.max(1)),
            )
            .await;
        match counted {
            Ok(n) => n <= i64::from(limit),
            Err(e) => {
                tracing::warn!("a shared budget could not be counted in Redis ({e}); this node's own limit applies");
                true
            }
        }
    }

    /// Counts one attempt against the throttle `key` shared by every node: a burst of `burst`,
    /// then one per `period_seconds` (GCRA, the same shape as a node's own `governor` throttles,
    /// timed by Redis's clock so the nodes' clocks do not matter). `Some(Ok(()))` when allowed,
    /// `Some(Err(seconds))` when refused with the wait; `None` when Redis did not answer (logged:
    /// the node's own throttle is all that applies then).
    async fn gcra(&self, key: &str, burst: u32, period_seconds: f64) -> Option<Result<(), u64>> {
        let key = format!("{}:throttle:{key}", self.channel);
        let period_ms = (period_seconds.clamp(0.001, 86_400.0) * 1000.0).ceil() as i64;
        let answer: redis::RedisResult<i64> = self
            .counters
            .query(
                redis::cmd("EVAL")
                    .arg(GCRA)
                    .arg(1)
                    .arg(&key)
                    .arg(period_ms)
                    .arg(i64::from(burst.max(1))),
            )
            .await;
        match answer {
            Ok(0) => Some(Ok(())),
            Ok(wait_ms) => Some(Err((wait_ms.max(0) as u64).div_ceil(1000).max(1))),
            Err(e) => {
                tracing::warn!("a login throttle could not be counted in Redis ({e}); this node's own throttle applies");
                None
            }
        }
    }

    /// Counts one more customer socket from `address` on this node in Redis and tells whether
    /// every live node together now has at most `limit` (if not, the count is taken back).
    /// Counts of nodes that stopped saying they are alive are dropped. `None` when Redis did not
    /// answer (logged: the node's own count is all that applies then).
    async fn count_socket(&self, address: IpAddr, limit: usize) -> Option<bool> {
        let answer: redis::RedisResult<i64> = self
            .counters
            .query(
                redis::cmd("EVAL")
                    .arg(OPEN_SOCKET)
                    .arg(1)
                    .arg(self.sockets_key(address))
                    .arg(&*self.node)
                    .arg(limit)
                    .arg(format!("{}:alive:", self.channel)),
            )
            .await;
        match answer {
            Ok(allowed) => Some(allowed == 1),
            Err(e) => {
                tracing::warn!("sockets per address could not be counted in Redis ({e}); this node's own count applies");
                None
            }
        }
    }

    /// Takes back a socket [`Bus::count_socket`] counted (in the background).
    fn uncount_socket(&self, address: IpAddr) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let counters = self.counters.clone();
        let key = self.sockets_key(address);
        let node = self.node.clone();
        runtime.spawn(async move {
            let done: redis::RedisResult<i64> = counters
                .query(
                    redis::cmd("EVAL")
                        .arg(CLOSE_SOCKET)
                        .arg(1)
                        .arg(key)
                        .arg(&*node),
                )
                .await;
            if let Err(e) = done {
                tracing::warn!("a closed socket could not be taken off the count in Redis ({e})");
            }
        });
    }

    fn sockets_key(&self, address: IpAddr) -> String {
        format!("{}:sockets:{address}", self.channel)
    }

    /// Sends a signal to every other node, after the ones sent before it; never waits.
    pub fn publish(&self, signal: Signal) {
        let envelope = Envelope {
            from: self.node.to_string(),
            signal,
        };
        let text = match serde_json::to_string(&envelope) {
            Ok(text) => text,
            Err(e) => {
                tracing::error!("a cluster signal could not be written: {e}");
                return;
            }
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(text) {
            tracing::error!(
                "{PUBLISH_BACKLOG} cluster signals wait for Redis: the link counts as lost"
            );
            let _ = self.lost.try_send(Received::Lost);
        }
    }
}

/// The connection the shared counts go through. A multiplexed connection does not reconnect by
/// itself: after a failure it is dropped and the next count connects again, so the counts are
/// shared again as soon as Redis is back (the alive key, every 5 s, brings that about).
#[derive(Clone)]
struct Counters {
    client: redis::Client,
    conn: Arc<std::sync::Mutex<Option<redis::aio::MultiplexedConnection>>>,
}

impl Counters {
    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> redis::RedisResult<T> {
        let current = self.conn.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut conn = match current {
            Some(conn) => conn,
            None => {
                let conn =
                    within_connect_timeout(self.client.get_multiplexed_async_connection()).await?;
                *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = Some(conn.clone());
                conn
            }
        };
        let answer = cmd.query_async(&mut conn).await;
        if answer.is_err() {
            *self.conn.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        answer
    }
}

/// Why the link could not be made at start-up.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// Not a Redis URL.
    #[error("cluster.redis_url `{url}` is not a Redis URL ({reason}); write redis://host:6379")]
    BadUrl {
        /// The URL, its password hidden.
        url: String,
        /// What the client said.
        reason: String,
    },
    /// Redis did not answer.
    #[error("cannot reach Redis at {url}: {reason}; start it, or correct cluster.redis_url (remove it to run one node on its own)")]
    Unreachable {
        /// The URL, its password hidden.
        url: String,
        /// What failed.
        reason: String,
    },
}

/// The link's background tasks; they stop when this is dropped.
pub struct Link {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Link {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Connects to Redis (checking it answers), subscribes, and starts publishing. Returns the
/// publishing handle, what other nodes send (and news of the link), and the tasks' owner.
pub async fn connect(
    url: &str,
    channel: &str,
) -> Result<(Bus, mpsc::Receiver<Received>, Link), ClusterError> {
    let channel: Arc<str> = channel.into();
    let shown = redact_url(url);
    let client = redis::Client::open(url).map_err(|e| ClusterError::BadUrl {
        url: shown.clone(),
        reason: e.to_string(),
    })?;
    let unreachable = |reason: String| ClusterError::Unreachable {
        url: shown.clone(),
        reason,
    };
    let publisher =
        tokio::time::timeout(CONNECT_TIMEOUT, client.get_multiplexed_async_connection())
            .await
            .map_err(|_| unreachable(format!("no answer within {CONNECT_TIMEOUT:?}")))?
            .map_err(|e| unreachable(e.to_string()))?;
    let subscriber = subscribe(&client, &channel)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let node: Arc<str> = uuid::Uuid::new_v4().simple().to_string().into();
    let (tx, rx) = mpsc::channel(PUBLISH_BACKLOG);
    let (received_tx, received) = mpsc::channel(RECEIVE_BACKLOG);
    let counters = Counters {
        conn: Arc::new(std::sync::Mutex::new(Some(
            client
                .get_multiplexed_async_connection()
                .await
                .map_err(|e| unreachable(e.to_string()))?,
        ))),
        client: client.clone(),
    };
    let bus = Bus {
        node: node.clone(),
        channel: channel.clone(),
        tx,
        lost: received_tx.clone(),
        counters,
    };
    let tasks = vec![
        tokio::spawn(alive_loop(bus.clone())),
        tokio::spawn(publish_loop(client.clone(), channel.clone(), publisher, rx)),
        tokio::spawn(receive_loop(
            client,
            channel.clone(),
            subscriber,
            node,
            received_tx,
        )),
    ];
    tracing::info!(redis = %shown, %channel, node = %bus.node(), "linked to the other nodes through Redis");
    Ok((bus, received, Link { tasks }))
}

/// Says every few seconds that this node is alive (a key that expires), so its counts in Redis
/// (sockets per address) count only while it lives.
async fn alive_loop(bus: Bus) {
    let key = format!("{}:alive:{}", bus.channel, bus.node);
    loop {
        let set: redis::RedisResult<()> = bus
            .counters
            .query(
                redis::cmd("SET")
                    .arg(&key)
                    .arg(1)
                    .arg("EX")
                    .arg(ALIVE_FOR_SECONDS),
            )
            .await;
        if let Err(e) = set {
            tracing::warn!("could not tell Redis this node is alive ({e})");
        }
        tokio::time::sleep(ALIVE_EVERY).await;
    }
}

async fn subscribe(
    client: &redis::Client,
    channel: &str,
) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = within_connect_timeout(client.get_async_pubsub()).await?;
    pubsub.subscribe(channel).await?;
    Ok(pubsub)
}

/// A connection attempt to Redis, given up after [`CONNECT_TIMEOUT`] with a timed-out error (a
/// Redis that accepts no connection must not hold a request or a reconnect loop for ever).
async fn within_connect_timeout<T>(
    connecting: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .map_err(|_| {
            redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer from Redis within {CONNECT_TIMEOUT:?}"),
            ))
        })?
}

/// Publishes in order. A publish that fails is sent again once Redis answers, before anything
/// newer: the other nodes get every signal, late rather than never (their sockets were closed
/// and resumed meanwhile, and drop what they already have by its sequence number).
async fn publish_loop(
    client: redis::Client,
    channel: Arc<str>,
    mut conn: redis::aio::MultiplexedConnection,
    mut rx: mpsc::Receiver<String>,
) {
    while let Some(text) = rx.recv().await {
        loop {
            let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
                .arg(&*channel)
                .arg(&text)
                .query_async(&mut conn)
                .await;
            let Err(e) = sent else { break };
            tracing::error!("publishing to Redis failed: {e}; trying again every {RETRY_EVERY:?}");
            conn = loop {
                tokio::time::sleep(RETRY_EVERY).await;
                match client.get_multiplexed_async_connection().await {
                    Ok(conn) => break conn,
                    Err(e) => tracing::warn!("Redis still unreachable: {e}"),
                }
            };
            tracing::info!("publishing to Redis again");
        }
    }
}

/// Hands other nodes' signals to the node; when the subscription ends, says the link is lost
/// and subscribes again.
async fn receive_loop(
    client: redis::Client,
    channel: Arc<str>,
    mut pubsub: redis::aio::PubSub,
    node: Arc<str>,
    received: mpsc::Sender<Received>,
) {
    loop {
        {
            let mut messages = pubsub.on_message();
            while let Some(message) = messages.next().await {
                let Ok(text) = message.get_payload::<String>() else {
                    continue;
                };
                match serde_json::from_str::<Envelope>(&text) {
                    Ok(envelope) if *envelope.from == *node => {}
                    Ok(envelope) => {
                        if received
                            .send(Received::Signal(Box::new(envelope.signal)))
                            .await
                            .is_err()
                        {
                            return;
                        }
                    }
                    Err(e) => tracing::warn!("an unreadable cluster signal was ignored: {e}"),
                }
            }
        }
        tracing::error!("the Redis subscription ended; sockets will resume from the store");
        if received.send(Received::Lost).await.is_err() {
            return;
        }
        pubsub = loop {
            tokio::time::sleep(RETRY_EVERY).await;
            match subscribe(&client, &channel).await {
                Ok(pubsub) => break pubsub,
                Err(e) => tracing::warn!("Redis still unreachable: {e}"),
            }
        };
        tracing::info!("listening to the other nodes again");
        // Sockets that connected while the link was down missed other nodes' frames.
        if received.send(Received::Relinked).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::Role;

    fn entry() -> Waiting {
        Waiting {
            conversation_id: "c1".into(),
            handoff_id: 7,
            team: "billing".into(),
            priority: 2,
            reasons: Vec::new(),
            escalated_at: 1_000,
            customer: Some("Ada".into()),
            preview: "where is my refund".into(),
            origin: Some("10.0.0.9".parse().unwrap()),
            declined: ["ann".into()].into_iter().collect(),
            alerts: 1,
            shown_position: 3,
            customer_away_since: None,
        }
    }

    fn account() -> Account {
        Account {
            id: "sam".into(),
            name: "Sam".into(),
            email: "sam@example.com".into(),
            role: Role::Agent,
            teams: vec!["billing".into()],
            max_chats: 3,
        }
    }

    #[test]
    fn every_signal_reads_back_as_it_was_sent() {
        let signals = [
            Signal::Conversation {
                conversation: "c1".into(),
                frame: r#"{"type":"message"}"#.into(),
                event: r#"{"type":"event"}"#.into(),
                seq: Some(4),
            },
            Signal::Customers {
                conversation: "c1".into(),
                frame: "f".into(),
            },
            Signal::Agent {
                agent: "sam".into(),
                frame: "f".into(),
            },
            Signal::AllAgents { frame: "f".into() },
            Signal::Holder {
                conversation: "c1".into(),
                agent: Some("sam".into()),
            },
            Signal::Queued { entry: entry() },
            Signal::Taken {
                entry: entry(),
                agent: account(),
            },
            Signal::Left {
                conversation: "c1".into(),
            },
            Signal::Staff {
                node: "n2".into(),
                agents: vec![(account(), Presence::Away)],
                customers: vec!["c1".into()],
            },
            Signal::Pick {
                conversation: "c1".into(),
                seq: 7,
                question: "q".into(),
                passage: Some("a.md#b".into()),
                quote_from: 3,
            },
            Signal::Unpick {
                conversation: "c1".into(),
                seq: 7,
            },
        ];
        for signal in signals {
            let text = serde_json::to_string(&Envelope {
                from: "n1".into(),
                signal: signal.clone(),
            })
            .unwrap();
            let back: Envelope = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{text} does not read back: {e}"));
            assert_eq!(back.from, "n1");
            assert_eq!(
                format!("{:?}", back.signal),
                format!("{signal:?}"),
                "{text}"
            );
        }
    }
}
