//! Conversations: sessions, ownership, sequence numbers, idempotent customer messages, resume, and
//! fan-out of frames to every socket a conversation has open.
//!
//! Every frame a customer must not miss is appended to the conversation's log in the store with the
//! next sequence number *before* it is sent, so a reconnecting widget that says the last number it
//! saw gets exactly what it missed. Appends are serialised per conversation by an in-process lock;
//! with several nodes this becomes the store's row lock.

pub mod protocol;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::bot::{Bot, Outcome};
use crate::kb::KbError;
use crate::store::{NewEvent, Store, StoreError};
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
    /// Conversations stored in `store`, answered by `bot`.
    pub fn new(store: Store, bot: Bot) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                bot,
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
            .seq_of_client_id(conversation, client_id)
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
            sender: "customer",
            client_id: Some(client_id),
            text: Some(text),
            body: &body,
        };
        let (seq, frame) = self
            .inner
            .store
            .append(conversation, event, now_ms())
            .await?;
        self.publish(conversation, &frame, Some(from_socket)).await;
        Ok(Stored {
            seq,
            duplicate: false,
        })
    }

    /// Lets whoever owns the conversation respond to the customer message at `seq`: the bot answers
    /// while it owns the conversation; otherwise the message waits for a person.
    pub async fn after_customer_message(
        &self,
        conversation: &str,
        seq: i64,
        text: &str,
    ) -> Result<(), ConversationError> {
        let state = self.state(conversation).await?;
        if state != State::Bot {
            return Ok(());
        }
        self.publish_ephemeral(
            conversation,
            &ServerFrame::Typing {
                from: From::Bot,
                on: true,
            },
            None,
        )
        .await;
        let reply = self.inner.bot.reply(text).await;
        let reply = match reply {
            Ok(r) => r,
            Err(e) => {
                self.publish_ephemeral(
                    conversation,
                    &ServerFrame::Typing {
                        from: From::Bot,
                        on: false,
                    },
                    None,
                )
                .await;
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
            sender: "bot",
            client_id: None,
            text: Some(&reply.text),
            body: &body,
        };
        let now = now_ms();
        let (bot_seq, frame) = self.inner.store.append(conversation, event, now).await?;
        let article =
            (reply.outcome == Outcome::Answered).then(|| reply.candidates[0].path.as_str());
        self.inner
            .store
            .record_bot_turn(
                conversation,
                bot_seq,
                text,
                reply.outcome.as_str(),
                reply.confidence,
                article,
                now,
            )
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
        Ok(())
    }

    /// The customer asked for a person: the conversation leaves the bot and waits in the queue.
    pub async fn request_human(&self, conversation: &str) -> Result<(), ConversationError> {
        let lock = self.lock(conversation);
        let _guard = lock.lock().await;
        if self.state(conversation).await? != State::Bot {
            return Ok(());
        }
        let now = now_ms();
        self.inner
            .store
            .set_state(conversation, State::Queued.as_str(), now)
            .await?;
        let status = |seq| {
            serde_json::to_value(ServerFrame::Status {
                seq,
                state: State::Queued,
                queue_position: None,
                eta_seconds: None,
            })
            .unwrap_or_default()
        };
        let event = NewEvent {
            sender: "system",
            client_id: None,
            text: None,
            body: &status,
        };
        let (_, frame) = self.inner.store.append(conversation, event, now).await?;
        self.publish(conversation, &frame, None).await;
        let text = "I've passed your conversation to our team. A person will reply here; you don't need to repeat anything.";
        let body = |seq| {
            message_json(MessageFrame {
                seq,
                from: From::System,
                author: None,
                text: text.into(),
                client_id: None,
                sources: Vec::new(),
                quick_replies: Vec::new(),
            })
        };
        let event = NewEvent {
            sender: "system",
            client_id: None,
            text: Some(text),
            body: &body,
        };
        let (_, frame) = self.inner.store.append(conversation, event, now).await?;
        self.publish(conversation, &frame, None).await;
        Ok(())
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

    /// Sends a stored frame to the conversation's sockets (all but `except`).
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

    async fn send_to(&self, conversation: &str, text: Outbound, except: Option<u64>) {
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

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Session tokens are stored hashed, so a leaked database does not leak live sessions.
fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
