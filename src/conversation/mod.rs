//! Conversations: sessions, ownership, sequence numbers, idempotent customer messages, resume, and
//! fan-out of frames to every socket a conversation has open.
//!
//! Every frame a customer must not miss is appended to the conversation's log in the store with the
//! next sequence number *before* it is sent, so a reconnecting widget that says the last number it
//! saw gets exactly what it missed. Appends are serialised per conversation by an in-process lock;
//! with several nodes this becomes the store's row lock.

mod context;
mod handoff;
pub mod protocol;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::bot::{Bot, Outcome};
use crate::escalation::{BotView, Decision, History, Neutral, Policy, Reason, Understand};
use crate::handoff::{ClaimError, Handoff};
use crate::kb::KbError;
use crate::store::{NewBotTurn, NewEvent, Store, StoreError};
use protocol::{From, MessageFrame, ServerFrame, State, Visitor, PROTOCOL_VERSION};

/// A frame on its way to one socket, already encoded as JSON.
pub type Outbound = Arc<str>;

/// What can go wrong handling a customer's frame.
#[derive(Debug, thiserror::Error)]
pub enum ConversationError {
    /// Storing or loading failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The knowledge base failed while the bot was answering.
    #[error(transparent)]
    Kb(#[from] KbError),
    /// Feedback named a message that is not a bot answer in this conversation.
    #[error("there is no bot message with sequence number {0} in this conversation")]
    UnknownMessage(i64),
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
    /// Not an email address.
    #[error("that does not look like an email address; check it and send again")]
    BadEmail,
}

/// The outcome of `hello`.
#[derive(Debug)]
pub struct Session {
    /// The conversation's id.
    pub conversation_id: String,
    /// Token the widget resumes with.
    pub token: String,
    /// Whether an existing conversation was resumed.
    pub resumed: bool,
    /// Who owns it.
    pub state: State,
    /// Highest sequence number so far.
    pub last_seq: i64,
    /// Frames after the widget's `last_seq`.
    pub missed: Vec<serde_json::Value>,
}

impl Session {
    /// The `welcome` frame for this session.
    pub fn welcome(self) -> ServerFrame {
        ServerFrame::Welcome {
            protocol: PROTOCOL_VERSION,
            session: self.token,
            conversation_id: self.conversation_id,
            resumed: self.resumed,
            state: self.state,
            last_seq: self.last_seq,
            missed: self.missed,
        }
    }
}

/// The outcome of storing a customer message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// Its sequence number.
    pub seq: i64,
    /// Whether it had been stored before (a re-send): nothing else happens then.
    pub duplicate: bool,
}

/// Handle to all conversations; clone it freely.
#[derive(Clone)]
pub struct Conversations {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    bot: Bot,
    handoff: Handoff,
    policy: Policy,
    /// The language-understanding seam: one call per customer message.
    understand: Arc<dyn Understand>,
    sockets: DashMap<String, Vec<(u64, mpsc::Sender<Outbound>)>>,
    locks: DashMap<String, Arc<tokio::sync::Mutex<()>>>,
    next_socket: AtomicU64,
}

/// Keeps a socket subscribed to its conversation; unsubscribes when dropped.
pub struct Subscription {
    inner: Arc<Inner>,
    conversation: String,
    id: u64,
}

impl Subscription {
    /// This socket's id (to skip it when echoing its own messages).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The conversation this socket belongs to.
    pub fn conversation(&self) -> &str {
        &self.conversation
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let now_empty = match self.inner.sockets.get_mut(&self.conversation) {
            Some(mut subs) => {
                subs.retain(|(id, _)| *id != self.id);
                subs.is_empty()
            }
            None => false,
        };
        if now_empty {
            self.inner
                .sockets
                .remove_if(&self.conversation, |_, subs| subs.is_empty());
            self.inner
                .locks
                .remove_if(&self.conversation, |_, lock| Arc::strong_count(lock) == 1);
        }
    }
}

impl Conversations {
    /// Conversations stored in `store`, answered by `bot`, with default escalation settings and
    /// no language understanding.
    pub fn new(store: Store, bot: Bot) -> Self {
        Self::with_handoff(
            store,
            bot,
            Handoff::new(Default::default()),
            Policy::default(),
            Arc::new(Neutral),
        )
    }

    /// Conversations that escalate by `policy`, on what `understand` makes of each customer
    /// message, into the queue of `handoff`.
    pub fn with_handoff(
        store: Store,
        bot: Bot,
        handoff: Handoff,
        policy: Policy,
        understand: Arc<dyn Understand>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                bot,
                handoff,
                policy,
                understand,
                sockets: DashMap::new(),
                locks: DashMap::new(),
                next_socket: AtomicU64::new(1),
            }),
        }
    }

    /// Joins a socket to the conversation of `session` (or a new one when there is no token or it
    /// is unknown) and sends it `welcome` with every frame after `last_seq`. Subscribing, reading
    /// what was missed and sending `welcome` happen under the conversation's lock, so each frame
    /// reaches the socket exactly once: in `missed`, or live after `welcome`.
    pub async fn join(
        &self,
        session: Option<&str>,
        last_seq: Option<i64>,
        visitor: &Visitor,
        tx: mpsc::Sender<Outbound>,
    ) -> Result<Subscription, ConversationError> {
        let existing = match session.filter(|t| !t.is_empty()) {
            Some(token) => self
                .inner
                .store
                .conversation_by_session(&hash(token))
                .await?
                .map(|row| (token, row)),
            None => None,
        };
        let Some((token, row)) = existing else {
            let id = uuid::Uuid::new_v4().to_string();
            let token = new_token();
            let visitor = serde_json::to_string(visitor).unwrap_or_else(|_| "{}".into());
            self.inner
                .store
                .create_conversation(&id, &hash(&token), &visitor, now_ms())
                .await?;
            let sub = self.subscribe(&id, tx.clone());
            let session = Session {
                conversation_id: id,
                token,
                resumed: false,
                state: State::Bot,
                last_seq: 0,
                missed: Vec::new(),
            };
            let _ = tx.send(session.welcome().to_json().into()).await;
            return Ok(sub);
        };
        let lock = self.lock(&row.id);
        let _guard = lock.lock().await;
        let sub = self.subscribe(&row.id, tx.clone());
        let missed = self
            .inner
            .store
            .events_after(&row.id, last_seq.unwrap_or(0).max(0))
            .await?;
        let current = self
            .inner
            .store
            .conversation_by_session(&hash(token))
            .await?
            .unwrap_or(row);
        let session = Session {
            conversation_id: current.id,
            token: token.to_owned(),
            resumed: true,
            state: State::parse(&current.state),
            last_seq: current.last_seq,
            missed,
        };
        let _ = tx.send(session.welcome().to_json().into()).await;
        Ok(sub)
    }

    fn subscribe(&self, conversation: &str, tx: mpsc::Sender<Outbound>) -> Subscription {
        let id = self.inner.next_socket.fetch_add(1, Ordering::Relaxed);
        self.inner
            .sockets
            .entry(conversation.to_owned())
            .or_default()
            .push((id, tx));
        Subscription {
            inner: self.inner.clone(),
            conversation: conversation.to_owned(),
            id,
        }
    }

    /// Stores a customer message (once per `client_id`) and shows it on the conversation's other
    /// sockets. The caller acknowledges it, then calls [`Conversations::after_customer_message`].
    pub async fn customer_message(
        &self,
        conversation: &str,
        from_socket: u64,
        client_id: &str,
        text: &str,
    ) -> Result<Stored, ConversationError> {
        let lock = self.lock(conversation);
        let _guard = lock.lock().await;
        if let Some(seq) = self
            .inner
            .store
            .seq_of_client_id(conversation, From::Customer.as_str(), client_id)
            .await?
        {
            return Ok(Stored {
                seq,
                duplicate: true,
            });
        }
        let body = |seq| {
            message_json(MessageFrame {
                seq,
                from: From::Customer,
                author: None,
                text: text.to_owned(),
                client_id: Some(client_id.to_owned()),
                sources: Vec::new(),
                quick_replies: Vec::new(),
            })
        };
        let event = NewEvent {
            sender: From::Customer.as_str(),
            client_id: Some(client_id),
            text: Some(text),
            body: &body,
        };
        let seq = self
            .append_and_publish(conversation, event, Some(from_socket))
            .await?;
        Ok(Stored {
            seq,
            duplicate: false,
        })
    }

    /// The agents' queue and presence.
    pub fn handoff(&self) -> &Handoff {
        &self.inner.handoff
    }

    /// The escalation policy.
    pub fn policy(&self) -> &Policy {
        &self.inner.policy
    }

    /// What the language-understanding seam makes of `text`.
    pub async fn understand(&self, text: &str) -> crate::nlu::Understanding {
        self.inner.understand.understand(text).await
    }

    /// Lets whoever owns the conversation respond to the customer message at `seq`: the bot answers
    /// while it owns the conversation, unless the escalation policy hands it to a person first;
    /// otherwise the message waits for a person. A resolved conversation returns to the bot.
    pub async fn after_customer_message(
        &self,
        conversation: &str,
        seq: i64,
        text: &str,
    ) -> Result<(), ConversationError> {
        let mut state = self.state(conversation).await?;
        if state == State::Resolved {
            let lock = self.lock(conversation);
            let _guard = lock.lock().await;
            if self.state(conversation).await? == State::Resolved {
                self.inner
                    .store
                    .set_state(conversation, State::Bot.as_str(), now_ms())
                    .await?;
                self.append_status(conversation, State::Bot, None, None, None, None)
                    .await?;
            }
            state = self.state(conversation).await?;
        }
        // The one place language understanding enters a conversation. Every customer turn is
        // understood and stored, also while a person owns the chat: the agent sees the mood move.
        let understanding = self.inner.understand.understand(text).await;
        self.inner
            .store
            .record_turn_signals(
                conversation,
                seq,
                &serde_json::to_value(&understanding).unwrap_or_default(),
                now_ms(),
            )
            .await?;
        if state != State::Bot {
            self.inner.handoff.set_preview(conversation, text);
            return Ok(());
        }
        let history = self.history(conversation, seq).await?;
        let before = self.inner.policy.before_bot(&understanding, &history);
        if before.escalate {
            return self.escalate(conversation, before).await;
        }
        self.bot_typing(conversation, true).await;
        let reply = self.inner.bot.reply(text).await;
        let reply = match reply {
            Ok(r) => {
                let view = BotView {
                    answered: r.outcome == Outcome::Answered,
                    dont_know: r.outcome == Outcome::DontKnow,
                    confidence: r.confidence,
                    threshold: self.inner.bot.settings().answer_threshold,
                    article: (r.outcome == Outcome::Answered)
                        .then(|| r.candidates.first().map(|c| c.path.as_str()))
                        .flatten(),
                };
                let after = self.inner.policy.after_bot(&understanding, &history, &view);
                if after.escalate {
                    self.bot_typing(conversation, false).await;
                    // The bot looked and a person takes over instead: editors see the question
                    // among the gaps, with the article the bot would have answered from, if any.
                    let turn = NewBotTurn {
                        seq,
                        question: text,
                        outcome: r.outcome.as_str(),
                        confidence: r.confidence,
                        article: view.article,
                        handed_off: true,
                    };
                    self.inner
                        .store
                        .record_bot_turn(conversation, turn, now_ms())
                        .await?;
                    return self.escalate(conversation, before.merge(after)).await;
                }
                r
            }
            Err(e) => {
                self.bot_typing(conversation, false).await;
                return Err(e.into());
            }
        };
        let lock = self.lock(conversation);
        let _guard = lock.lock().await;
        // A person may have taken over while the bot was thinking: then it stays silent.
        if self.state(conversation).await? != State::Bot {
            return Ok(());
        }
        let body = |seq| {
            message_json(MessageFrame {
                seq,
                from: From::Bot,
                author: None,
                text: reply.text.clone(),
                client_id: None,
                sources: reply.sources.clone(),
                quick_replies: reply.quick_replies.clone(),
            })
        };
        let event = NewEvent {
            sender: From::Bot.as_str(),
            client_id: None,
            text: Some(&reply.text),
            body: &body,
        };
        let now = now_ms();
        let (bot_seq, frame) = self.inner.store.append(conversation, event, now).await?;
        let article =
            (reply.outcome == Outcome::Answered).then(|| reply.candidates[0].path.as_str());
        let turn = NewBotTurn {
            seq: bot_seq,
            question: text,
            outcome: reply.outcome.as_str(),
            confidence: reply.confidence,
            article,
            handed_off: false,
        };
        self.inner
            .store
            .record_bot_turn(conversation, turn, now)
            .await?;
        tracing::debug!(conversation, question_seq = seq, outcome = reply.outcome.as_str(), reason = %reply.reason, "bot turn");
        self.publish(conversation, &frame, None).await;
        Ok(())
    }

    /// Stores the customer's verdict on the bot answer at `seq`.
    pub async fn feedback(
        &self,
        conversation: &str,
        seq: i64,
        helpful: bool,
    ) -> Result<(), ConversationError> {
        match self
            .inner
            .store
            .sender_of(conversation, seq)
            .await?
            .as_deref()
        {
            Some("bot") => {}
            _ => return Err(ConversationError::UnknownMessage(seq)),
        }
        self.inner
            .store
            .record_feedback(conversation, seq, helpful, now_ms())
            .await?;
        if !helpful && self.state(conversation).await? == State::Bot {
            let negatives = self
                .inner
                .store
                .bot_turns_of(conversation)
                .await?
                .iter()
                .filter(|t| t.helpful == Some(false))
                .count();
            let decision = self.inner.policy.on_feedback(negatives);
            if decision.escalate {
                self.escalate(conversation, decision).await?;
            }
        }
        Ok(())
    }

    /// The customer asked for a person: the conversation leaves the bot and waits in the queue.
    pub async fn request_human(&self, conversation: &str) -> Result<(), ConversationError> {
        let decision = Decision {
            escalate: true,
            reasons: vec![Reason::button()],
            ..Decision::default()
        };
        self.escalate(conversation, decision).await
    }

    /// What the conversation looked like before the customer message at `seq`.
    async fn history(&self, conversation: &str, seq: i64) -> Result<History, ConversationError> {
        let upsets = self
            .inner
            .store
            .turn_signals_of(conversation)
            .await?
            .into_iter()
            .filter(|(s, _)| *s < seq)
            .filter_map(|(_, u)| u["upset"].as_f64().map(|x| x as f32))
            .collect();
        let turns = self.inner.store.bot_turns_of(conversation).await?;
        let unanswered_streak = turns
            .iter()
            .rev()
            .take_while(|t| t.outcome == Outcome::DontKnow.as_str())
            .count();
        let last = turns.last();
        Ok(History {
            upsets,
            unanswered_streak,
            last_article: last
                .filter(|t| t.outcome == Outcome::Answered.as_str())
                .and_then(|t| t.article.clone()),
            last_helpful: last.and_then(|t| t.helpful),
        })
    }

    /// Shows "customer is typing" to the conversation's other sockets (agents, later).
    pub async fn customer_typing(&self, conversation: &str, from_socket: u64, on: bool) {
        let frame = ServerFrame::Typing {
            from: From::Customer,
            on,
        };
        self.publish_ephemeral(conversation, &frame, Some(from_socket))
            .await;
    }

    async fn state(&self, conversation: &str) -> Result<State, ConversationError> {
        Ok(self
            .inner
            .store
            .conversation_state(conversation)
            .await?
            .map_or(State::Bot, |s| State::parse(&s)))
    }

    fn lock(&self, conversation: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.inner
            .locks
            .entry(conversation.to_owned())
            .or_default()
            .clone()
    }

    /// Shows (or hides) "the bot is typing" on the conversation's sockets.
    async fn bot_typing(&self, conversation: &str, on: bool) {
        let frame = ServerFrame::Typing {
            from: From::Bot,
            on,
        };
        self.publish_ephemeral(conversation, &frame, None).await;
    }

    /// Sends a stored frame to the conversation's sockets (all but `except`).
    /// Stores a frame under the next sequence number and shows it on the conversation's sockets
    /// (but `except`) and to its agent. Callers hold the conversation's lock.
    async fn append_and_publish(
        &self,
        conversation: &str,
        event: NewEvent<'_>,
        except: Option<u64>,
    ) -> Result<i64, ConversationError> {
        let (seq, frame) = self
            .inner
            .store
            .append(conversation, event, now_ms())
            .await?;
        self.publish(conversation, &frame, except).await;
        Ok(seq)
    }

    async fn publish(&self, conversation: &str, frame: &serde_json::Value, except: Option<u64>) {
        self.send_to(conversation, frame.to_string().into(), except)
            .await;
    }

    /// Sends a frame that is not stored (typing indicators).
    async fn publish_ephemeral(
        &self,
        conversation: &str,
        frame: &ServerFrame,
        except: Option<u64>,
    ) {
        self.send_to(conversation, frame.to_json().into(), except)
            .await;
    }

    /// Sends to the customer's sockets and to the agent who holds the conversation.
    async fn send_to(&self, conversation: &str, text: Outbound, except: Option<u64>) {
        self.send_to_customers_except(conversation, text.clone(), except)
            .await;
        self.inner.handoff.forward(conversation, &text).await;
    }

    async fn send_to_customers(&self, conversation: &str, text: Outbound) {
        self.send_to_customers_except(conversation, text, None)
            .await;
    }

    async fn send_to_customers_except(
        &self,
        conversation: &str,
        text: Outbound,
        except: Option<u64>,
    ) {
        // Clone the senders out: never hold a map guard across an await.
        let targets: Vec<mpsc::Sender<Outbound>> = match self.inner.sockets.get(conversation) {
            Some(subs) => subs
                .iter()
                .filter(|(id, _)| Some(*id) != except)
                .map(|(_, tx)| tx.clone())
                .collect(),
            None => return,
        };
        for tx in targets {
            // A socket too slow to take a frame within a second catches up when it resumes.
            let _ = tx.send_timeout(text.clone(), Duration::from_secs(1)).await;
        }
    }
}

fn message_json(frame: MessageFrame) -> serde_json::Value {
    serde_json::to_value(ServerFrame::Message(frame)).unwrap_or_default()
}

/// A random 256-bit token, hex-encoded.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Session tokens are stored hashed, so a leaked database does not leak live sessions.
pub fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
