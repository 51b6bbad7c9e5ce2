//! Conversations: the state machine between the bot, the queue and the agents, and the sequenced
//! log every customer frame goes through.
//!
//! Ownership: `bot` → `queued` → `agent` → `resolved` → `bot` (on the customer's next message).
//! Every transition happens under the conversation's lock and checks the state it starts from.
//! Every frame a customer must not miss is appended to the conversation's log in the store with the
//! next sequence number *before* it is sent, so a reconnecting widget that says the last number it
//! saw gets exactly what it missed. Sending never waits on a socket ([`crate::fanout`]).
//!
//! Two handles share one [`Core`]: [`Conversations`] (what customers do: `session`, `customer`,
//! `turn`, `choice`) and [`Desk`] (what agents do: `desk`); `handover` moves conversations between the bot,
//! the queue and agents, `timers` runs what comes due, `context` builds the context packet.

mod choice;
mod context;
mod customer;
mod desk;
mod handover;
mod session;
mod timers;
mod turn;

use std::sync::Arc;

use crate::accounts::Account;
use crate::admission::Admission;
use crate::bot::Bot;
use crate::cluster::{Bus, Signal};
use crate::escalation::{Policy, Understand};
use crate::fanout::Fanout;
use crate::ids::{AgentId, ConversationId};
use crate::kb::KbError;
use crate::metrics::Metrics;
use crate::nlu::NluError;
use crate::protocol::agent::AgentServerFrame;
use crate::protocol::customer::{MessageFrame, Sender, ServerFrame, State, StatusFrame};
use crate::protocol::{encode, to_json, ErrorCode, Outbound, StoredFrame};
use crate::queue::{ClaimError, Queue, QueueFull, Waiting};
use crate::store::{Appended, NewEvent, Store, StoreError};

pub use choice::Chosen;
pub use context::summarise;
pub use customer::Stored;
pub use desk::{Attendance, Desk};
pub use session::{opens_unstored, Hello, Session};
pub use turn::{Asked, UNANSWERED_WITHIN_MS};

/// Customer turns at work on the models and the bot at once. A bot turn waits for a place (each
/// customer's own rate limit bounds how many wait); a message to a person is not understood when
/// none is free (the upset signal in the agent's view is best effort, the relay never waits).
pub const TURNS_IN_FLIGHT: usize = 256;

/// What can go wrong handling a customer's or an agent's frame.
#[derive(Debug, thiserror::Error)]
pub enum ConversationError {
    /// Storing or loading failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The knowledge base failed while the bot was answering.
    #[error(transparent)]
    Kb(#[from] KbError),
    /// The language models failed.
    #[error(transparent)]
    Nlu(#[from] NluError),
    /// Feedback named a message that is not a bot answer in this conversation.
    #[error("there is no bot answer with sequence number {0} in this conversation")]
    UnknownMessage(i64),
    /// A choice named a message that offered no choices in this conversation.
    #[error("there is no bot message offering choices with sequence number {0} in this conversation; write your question instead")]
    NoChoices(i64),
    /// A choice of a passage the message did not offer.
    #[error("the message {seq} did not offer \"{passage}\"; press one of its buttons, or write your question")]
    NotOffered {
        /// The message.
        seq: i64,
        /// The passage named (cut to 200 characters).
        passage: String,
    },
    /// A claim lost or was refused.
    #[error("{}", .0.message())]
    Claim(ClaimError),
    /// An agent acted on a conversation someone else holds.
    #[error("you do not hold this conversation; claim it first")]
    NotOwner,
    /// No such conversation.
    #[error("there is no such conversation")]
    NotFound,
    /// A transfer named an agent who is not online or has no room.
    #[error(
        "that agent is not online or has no room for another chat; transfer to their team instead"
    )]
    UnknownAgent,
    /// A rating outside 1–5.
    #[error("rate from 1 to 5")]
    BadRating,
    /// A rating before any person resolved the conversation.
    #[error("there is nothing to rate yet: a person has not resolved this conversation")]
    NotResolved,
    /// This resolution was rated already.
    #[error("you rated this conversation already; thank you")]
    AlreadyRated,
    /// Not an email address.
    #[error("that does not look like an email address; check it and send again")]
    BadEmail,
    /// The queue cannot take the conversation now.
    #[error("{}", queue_full_message(*.0))]
    QueueFull(QueueFull),
    /// Too many new conversations from this client address.
    #[error("too many new conversations from your network; try again in {retry_after} seconds")]
    TooManyConversations {
        /// Seconds to wait.
        retry_after: u32,
    },
    /// Too many of one action from this client address, counted on every node together.
    #[error("too many {what} from your network; try again in {retry_after} s")]
    TooManyFromNetwork {
        /// The action, in words.
        what: &'static str,
        /// Seconds to wait.
        retry_after: u32,
    },
}

/// What a customer is told when the queue cannot take their conversation, by why.
fn queue_full_message(why: QueueFull) -> &'static str {
    match why {
        QueueFull::Overall => "our team has too many conversations waiting right now; leave your email and we'll answer you there, or ask again in a few minutes",
        QueueFull::Address => "several conversations from your network are already waiting for our team; leave your email and we'll answer you there, or ask again once one is answered",
    }
}

impl ConversationError {
    /// The wire code: the one place errors become codes, for both sockets and the REST API.
    pub fn code(&self) -> ErrorCode {
        use ConversationError as E;
        match self {
            E::Store(StoreError::ClientIdTaken(_)) => ErrorCode::BadFrame,
            E::Store(_) | E::Kb(_) | E::Nlu(_) => ErrorCode::Unavailable,
            E::UnknownMessage(_) | E::NoChoices(_) => ErrorCode::UnknownMessage,
            E::NotOffered { .. } => ErrorCode::NotOffered,
            E::Claim(ClaimError::AlreadyClaimed) => ErrorCode::AlreadyClaimed,
            E::Claim(ClaimError::NotQueued) => ErrorCode::NotQueued,
            E::Claim(ClaimError::AtCapacity) => ErrorCode::AtCapacity,
            E::NotOwner => ErrorCode::NotOwner,
            E::NotFound => ErrorCode::NotFound,
            E::UnknownAgent => ErrorCode::UnknownAgent,
            E::BadRating => ErrorCode::BadFrame,
            E::NotResolved => ErrorCode::NotResolved,
            E::AlreadyRated => ErrorCode::AlreadyRated,
            E::BadEmail => ErrorCode::BadEmail,
            E::QueueFull(_) => ErrorCode::QueueFull,
            E::TooManyConversations { .. } => ErrorCode::TooManyConversations,
            E::TooManyFromNetwork { .. } => ErrorCode::RateLimited,
        }
    }

    /// Whether the server failed (rather than the client asking for something wrong): logged,
    /// and shown to the client only as "try again".
    pub fn is_internal(&self) -> bool {
        self.code() == ErrorCode::Unavailable
    }

    /// What the client is told: the error in words, or for internal failures what to do.
    pub fn public_message(&self) -> String {
        if self.is_internal() {
            "the server could not do this just now; send it again (it will not be duplicated)"
                .into()
        } else {
            self.to_string()
        }
    }
}

/// Appends to one conversation are serialised by one of these locks (chosen by the
/// conversation's id): no allocation per conversation, nothing to clean up.
const LOCK_STRIPES: usize = 4096;

/// What both handles share: the store, the bot and the policy, the desk, the fan-out.
pub(crate) struct Core {
    store: Store,
    bot: Bot,
    policy: Policy,
    /// The language-understanding seam: one call per customer message.
    understand: Arc<dyn Understand>,
    queue: Queue,
    fanout: Fanout,
    admission: Admission,
    locks: Box<[tokio::sync::Mutex<()>]>,
    queue_snapshot_entries: usize,
    metrics: Metrics,
    /// Customer turns at work on the models and the bot ([`TURNS_IN_FLIGHT`]).
    turns: tokio::sync::Semaphore,
    /// Slow turns, so that their log lines stay few under an overload.
    slow_turns: turn::SlowTurns,
    /// The other nodes, when there are any: queue changes go to them, and the store decides
    /// claims.
    cluster: Option<Bus>,
    /// With several nodes, how long the timer lease holds without a renewal (ms).
    timer_lease_ms: i64,
    /// Whether this node held the timer lease at its last tick.
    runs_timers: std::sync::atomic::AtomicBool,
}

/// The parts a [`Core`] is built from.
pub struct Parts {
    /// Where conversations are stored.
    pub store: Store,
    /// The bot that answers while it owns a conversation.
    pub bot: Bot,
    /// When a conversation goes to a person.
    pub policy: Policy,
    /// What makes sense of each customer message.
    pub understand: Arc<dyn Understand>,
    /// The agents' desk.
    pub queue: Queue,
    /// Who receives which frames.
    pub fanout: Fanout,
    /// Per-address budgets for new conversations.
    pub admission: Admission,
    /// Queue entries sent to a console when it connects.
    pub queue_snapshot_entries: usize,
    /// What operators scrape.
    pub metrics: Metrics,
    /// The other nodes (`cluster.redis_url`), or `None` for a node on its own.
    pub cluster: Option<Bus>,
    /// With several nodes, how long the timer lease holds without a renewal (ms).
    pub timer_lease_ms: i64,
}

/// The customers' side of conversations; clone it freely.
#[derive(Clone)]
pub struct Conversations {
    core: Arc<Core>,
}

impl Conversations {
    /// The customers' and the agents' handles over the same conversations.
    pub fn new(parts: Parts) -> (Conversations, Desk) {
        let core = Arc::new(Core {
            store: parts.store,
            bot: parts.bot,
            policy: parts.policy,
            understand: parts.understand,
            queue: parts.queue,
            fanout: parts.fanout,
            admission: parts.admission,
            locks: (0..LOCK_STRIPES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            queue_snapshot_entries: parts.queue_snapshot_entries,
            metrics: parts.metrics,
            turns: tokio::sync::Semaphore::new(TURNS_IN_FLIGHT),
            slow_turns: turn::SlowTurns::default(),
            cluster: parts.cluster,
            timer_lease_ms: parts.timer_lease_ms,
            runs_timers: Default::default(),
        });
        (Conversations { core: core.clone() }, Desk::from_core(core))
    }

    /// The escalation policy.
    pub fn policy(&self) -> &Policy {
        &self.core.policy
    }

    /// With several nodes, counts `action` from `origin` against the budget all nodes share
    /// (its per-address limit in a minute's window), so a client cannot multiply the limit by
    /// spreading over the nodes; each node's own limit is counted first. A node on its own has
    /// nothing more to count.
    pub async fn within_shared_limit(
        &self,
        action: crate::admission::Action,
        origin: std::net::IpAddr,
    ) -> Result<(), ConversationError> {
        let Some(bus) = &self.core.cluster else {
            return Ok(());
        };
        let per_minute = self.core.admission.action_per_minute(action);
        if per_minute <= 0.0 {
            return Ok(());
        }
        let now = crate::clock::now_ms();
        let key = action.shared_key(origin, now / 60_000);
        if bus.within(&key, per_minute.ceil() as u32, 60).await {
            Ok(())
        } else {
            let left = 60 - (now / 1000) % 60;
            Err(ConversationError::TooManyFromNetwork {
                what: action.what(),
                retry_after: left.max(1) as u32,
            })
        }
    }
}

impl Core {
    /// Tells the other nodes (if any) what changed in the queue.
    fn tell_nodes(&self, signal: impl FnOnce() -> Signal) {
        if let Some(bus) = &self.cluster {
            bus.publish(signal());
        }
    }

    /// With several nodes, asks the store whether `agent` may take the hand-off of `entry`: of
    /// any number of claims, on any nodes, exactly one is told yes. A node on its own decides in
    /// its queue alone (always yes here).
    async fn store_claim(
        &self,
        entry: &Waiting,
        agent: &Account,
    ) -> Result<bool, ConversationError> {
        if self.cluster.is_none() {
            return Ok(true);
        }
        let won = self
            .store
            .claim_handoff(entry.handoff_id, &agent.id, crate::clock::now_ms())
            .await?;
        if won {
            self.tell_nodes(|| Signal::Taken {
                entry: entry.clone(),
                agent: agent.clone(),
            });
        } else {
            self.queue.claim_lost(&entry.conversation_id);
        }
        Ok(won)
    }

    /// With several nodes, counts a new conversation from `origin` against the budget all nodes
    /// share (`limits.new_conversations_per_address_per_minute` in a minute's window), so a
    /// client cannot multiply it by spreading over the nodes.
    async fn within_shared_budget(
        &self,
        origin: std::net::IpAddr,
    ) -> Result<(), ConversationError> {
        let Some(bus) = &self.cluster else {
            return Ok(());
        };
        let per_minute = self.admission.conversations_per_minute();
        if per_minute <= 0.0 {
            return Ok(());
        }
        let window = crate::clock::now_ms() / 60_000;
        let key = format!("conversations:{origin}:{window}");
        if bus.within(&key, per_minute.ceil() as u32, 60).await {
            Ok(())
        } else {
            let left = 60 - (crate::clock::now_ms() / 1000) % 60;
            Err(ConversationError::TooManyConversations {
                retry_after: left.max(1) as u32,
            })
        }
    }

    /// The lock that serialises what happens to `conversation`.
    async fn lock(&self, conversation: &ConversationId) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::BuildHasher;
        static SEED: std::sync::OnceLock<std::collections::hash_map::RandomState> =
            std::sync::OnceLock::new();
        let hash = SEED
            .get_or_init(Default::default)
            .hash_one(conversation.as_str());
        self.locks[hash as usize % self.locks.len()].lock().await
    }

    async fn state(&self, conversation: &ConversationId) -> Result<State, ConversationError> {
        Ok(self
            .store
            .conversation_state(conversation)
            .await?
            .map_or(State::Bot, |s| State::parse(&s)))
    }

    /// Stores a frame under the next sequence number (callers hold the conversation's lock);
    /// nothing is sent yet.
    async fn store_frame(
        &self,
        conversation: &ConversationId,
        event: NewEvent,
    ) -> Result<Appended, ConversationError> {
        let started = std::time::Instant::now();
        let appended = self
            .store
            .append(conversation, event, crate::clock::now_ms())
            .await;
        self.metrics
            .store_seconds
            .with_label_values(&["append"])
            .observe(started.elapsed().as_secs_f64());
        Ok(appended?)
    }

    /// Stores a frame and shows it on the conversation's sockets (but `except`) and to its agent.
    async fn append(
        &self,
        conversation: &ConversationId,
        event: NewEvent,
        except: Option<u64>,
    ) -> Result<Appended, ConversationError> {
        let appended = self.store_frame(conversation, event).await?;
        if let Appended::New { frame, seq, .. } = &appended {
            self.publish(conversation, frame, Some(*seq), except);
        }
        Ok(appended)
    }

    /// Shows a frame (stored under `seq`, or not stored) to the conversation's customer sockets
    /// (but `except`) and, as an `event`, to the agent who holds it.
    fn publish(
        &self,
        conversation: &ConversationId,
        frame: &Outbound,
        seq: Option<i64>,
        except: Option<u64>,
    ) {
        self.fanout
            .to_conversation(conversation, frame, seq, except, || {
                encode(&AgentServerFrame::Event {
                    conversation_id: conversation.clone(),
                    frame: StoredFrame(frame.clone()),
                })
            });
    }

    /// Shows a frame that is not stored (typing) to the conversation's sockets and its agent.
    fn publish_ephemeral(
        &self,
        conversation: &ConversationId,
        frame: &ServerFrame,
        except: Option<u64>,
    ) {
        self.publish(conversation, &encode(frame), None, except);
    }

    fn to_agent(&self, agent: &AgentId, frame: &AgentServerFrame) {
        self.fanout.to_agent(agent, encode(frame));
    }

    /// Appends a status frame; the conversation's owner becomes the state it announces, in the
    /// same commit (so a hand-over and its announcement cost one write).
    async fn append_status(
        &self,
        conversation: &ConversationId,
        status: StatusFrame,
    ) -> Result<i64, ConversationError> {
        let state = Some(status.state.as_str());
        let body = move |seq| {
            let frame = StatusFrame {
                seq,
                ..status.clone()
            };
            to_json(&ServerFrame::Status(frame))
        };
        let event = NewEvent {
            sender: Sender::System.as_str(),
            client_id: None,
            seen: None,
            text: None,
            state,
            responds_to: None,
            beside: Vec::new(),
            body: Box::new(body),
        };
        Ok(seq_of(self.append(conversation, event, None).await?))
    }

    /// Appends a message frame (`message.seq` is replaced by the next number); `responds_to`: the
    /// hand-off an agent's message is the first reply of ([`NewEvent::responds_to`]); `seen`: the
    /// last number its sender had seen when it first sent it ([`NewEvent::seen`]).
    async fn append_message(
        &self,
        conversation: &ConversationId,
        message: MessageFrame,
        except: Option<u64>,
        responds_to: Option<i64>,
        seen: Option<i64>,
    ) -> Result<Appended, ConversationError> {
        let from = message.from.as_str();
        let event = NewEvent {
            sender: from,
            client_id: message.client_id.clone(),
            seen,
            text: Some(message.text.clone()),
            state: None,
            responds_to,
            beside: Vec::new(),
            body: Box::new(move |seq| {
                let frame = MessageFrame {
                    seq,
                    ..message.clone()
                };
                to_json(&ServerFrame::Message(frame))
            }),
        };
        let appended = self.append(conversation, event, except).await?;
        if let Appended::New { .. } = appended {
            self.metrics.relayed.with_label_values(&[from]).inc();
        }
        Ok(appended)
    }
}

/// The sequence number an append gave (or had given, for a re-send).
fn seq_of(appended: Appended) -> i64 {
    match appended {
        Appended::New { seq, .. } | Appended::Duplicate { seq } => seq,
    }
}

/// A status frame for `state` (its `seq` is given when it is stored).
fn status(state: State) -> StatusFrame {
    StatusFrame {
        seq: 0,
        state,
        queue_position: None,
        eta_seconds: None,
        agent: None,
        agents_available: None,
    }
}

/// A message frame (its `seq` is given when it is stored).
fn message(from: Sender, text: &str) -> MessageFrame {
    MessageFrame {
        seq: 0,
        from,
        author: None,
        text: text.to_owned(),
        client_id: None,
        sources: Vec::new(),
        quick_replies: Vec::new(),
        choice: None,
    }
}
