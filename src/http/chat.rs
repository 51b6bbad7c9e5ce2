//! The customer WebSocket at `/ws/chat`. A slot is taken before the upgrade (`503`/`429` with
//! `Retry-After` when there is none); then each frame is checked (size, rate, shape, text) and
//! handed to the conversation. Bad frames get an `error` frame; the connection lives on.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use tokio::task::JoinHandle;

use super::socket::{self, Handler, Timing};
use super::AppState;
use crate::accounts::identity::{
    expiry_seconds, IdentityError, IdentityVerifier, EXPIRED_GRACE_SECONDS,
};
use crate::admission::{Action, Admission, Slot};
use crate::conversation::{Asked, Chosen, ConversationError, Conversations, Hello, Session};
use crate::fanout::{outbox, Outbox};
use crate::protocol::customer::{check_message, Choice, ClientFrame, ServerFrame};
use crate::protocol::{decode, encode, ErrorCode, Refusal};
use crate::settings::LimitSettings;

/// Frames above this size are cut off by the WebSocket layer itself (connection closed, 1009);
/// between `max_frame_bytes` and this, the client gets a `frame_too_large` error frame.
const HARD_FRAME_LIMIT: usize = 1 << 20;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/ws/chat", get(upgrade))
}

async fn upgrade(
    ws: super::upgrade::Upgrade,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let address = super::client_address(&state, peer, &headers);
    let slot = match state.admission.admit_customer(address).await {
        Ok(slot) => slot,
        Err(refusal) => return super::refused(refusal, address),
    };
    let hard = HARD_FRAME_LIMIT.max(state.limits.max_frame_bytes * 2);
    let gate = state.limits.max_frame_bytes_before_greeting;
    ws.on_upgrade(super::sized(hard, 0), gate, move |socket| {
        let (outbox, inbox) = outbox(state.limits.customer_outbox);
        let timing = Timing::from(&state.limits);
        let connection = Connection::new(state, outbox, slot);
        socket::run(socket, inbox, connection, timing)
    })
}

/// One customer socket's state: kept small, as it lives as long as the socket.
struct Connection {
    conversations: Conversations,
    identity: IdentityVerifier,
    limits: Arc<LimitSettings>,
    outbox: Outbox,
    session: Option<Session>,
    /// Counts the conversation's messages (across its sockets: reconnecting does not reset it).
    admission: Admission,
    frames: TokenBucket,
    slot: Slot,
    /// The last customer turn handed off (the next one starts when it is done, so turns keep
    /// the order of the messages).
    turn: Option<JoinHandle<()>>,
}

impl Handler for Connection {
    fn on_text(mut self, text: String) -> Pin<Box<dyn Future<Output = Self> + Send>> {
        Box::pin(async move {
            self.handle(&text).await;
            self
        })
    }

    fn on_binary(&mut self) {
        self.send(ServerFrame::error(
            ErrorCode::BadFrame,
            "send JSON text frames, not binary",
        ));
    }

    fn greeted(&self) -> bool {
        self.session.is_some()
    }
}

impl Connection {
    fn new(state: AppState, outbox: Outbox, slot: Slot) -> Self {
        let limits = state.limits;
        let frames = TokenBucket::new(
            limits.messages_per_second * 20.0,
            limits.message_burst * 20.0,
        );
        Self {
            conversations: state.conversations,
            identity: state.identity,
            limits,
            outbox,
            session: None,
            admission: state.admission,
            frames,
            slot,
            turn: None,
        }
    }

    fn send(&self, frame: ServerFrame) {
        self.outbox.push(encode(&frame));
    }

    fn refuse(&self, refusal: Refusal, client_id: Option<&str>) {
        self.send(ServerFrame::Error {
            code: refusal.code,
            message: refusal.message,
            client_id: client_id.map(String::from),
        });
    }

    fn origin(&self) -> IpAddr {
        self.slot.address()
    }

    async fn handle(&mut self, text: &str) {
        if !self.frames.take() {
            let slow_down = Refusal::new(ErrorCode::RateLimited, "too many frames; slow down");
            return self.refuse(slow_down, None);
        }
        let frame = match decode::<ClientFrame>(text, self.limits.max_frame_bytes) {
            Ok(frame) => frame,
            Err(refusal) => return self.refuse(refusal, None),
        };
        let hello = match frame {
            ClientFrame::Hello {
                session,
                last_seq,
                visitor,
                user_id,
                user_hash,
                user_hash_expires,
                ..
            } => {
                if self.session.is_some() {
                    let again = Refusal::new(
                        ErrorCode::BadFrame,
                        "hello was already sent on this connection",
                    );
                    return self.refuse(again, None);
                }
                let now_secs = crate::clock::now_ms() / 1000;
                // An expiry counts only with a signature (an anonymous hello's is ignored).
                let expires = user_hash_expires.as_ref().filter(|_| user_hash.is_some());
                let verified = expiry_seconds(expires).and_then(|expires| {
                    self.identity.verify(
                        user_id.as_deref(),
                        visitor.email.as_deref(),
                        user_hash.as_deref(),
                        expires,
                        now_secs,
                    )
                });
                let mut lapsed = None;
                let customer = match verified {
                    Ok(customer) => customer,
                    // A page left open past its signature's expiry (not by more than
                    // EXPIRED_GRACE_SECONDS), reconnecting to the open conversation it holds:
                    // that customer's still, for that conversation only. A copied signature has
                    // no session of theirs.
                    Err(IdentityError::Expired { key, at })
                        if now_secs.saturating_sub(at) <= EXPIRED_GRACE_SECONDS =>
                    {
                        let held = self
                            .conversations
                            .open_conversation_of_session(session.as_deref(), &key)
                            .await;
                        match held {
                            Ok(Some(id)) => {
                                lapsed = Some(id);
                                Some(key)
                            }
                            Ok(None) => {
                                let expired = IdentityError::Expired { key, at }.to_string();
                                let refused = Refusal::new(ErrorCode::IdentityRefused, expired);
                                return self.refuse(refused, None);
                            }
                            Err(e) => return self.failed(e, None),
                        }
                    }
                    Err(e) => {
                        let refused = Refusal::new(ErrorCode::IdentityRefused, e.to_string());
                        return self.refuse(refused, None);
                    }
                };
                Hello {
                    session,
                    last_seq,
                    visitor,
                    user_id: customer.as_ref().and(user_id),
                    customer,
                    lapsed,
                }
            }
            ClientFrame::Ping { id, probe: true } => return self.send(ServerFrame::Pong { id }),
            ClientFrame::Ping { id, .. } => return self.pong(id),
            other => return self.in_session(other).await,
        };
        let origin = self.origin();
        match self.conversations.open(hello, origin, &self.outbox).await {
            Ok(session) => self.session = Some(session),
            Err(e) => self.failed(e, None),
        }
    }

    /// A frame that needs the session `hello` opened.
    async fn in_session(&mut self, frame: ClientFrame) {
        if self.session.is_none() {
            let first = Refusal::new(ErrorCode::HelloFirst, "send a hello frame first");
            return self.refuse(first, None);
        }
        if let ClientFrame::Message {
            client_id,
            seen,
            text,
            choice,
        } = frame
        {
            return self.message(&client_id, seen, &text, choice).await;
        }
        match self.act(frame).await {
            Ok(Some(answer)) => self.send(answer),
            Ok(None) => {}
            Err(Fail::Refused(refusal)) => self.refuse(refusal, None),
            Err(Fail::Conversation(e)) => self.failed(e, None),
        }
    }

    /// Does what a frame other than `hello` and `message` asks; returns the answer to send.
    async fn act(&mut self, frame: ClientFrame) -> Result<Option<ServerFrame>, Fail> {
        let conversations = self.conversations.clone();
        let Some(session) = self.session.as_mut() else {
            return Err(Refusal::new(ErrorCode::HelloFirst, "send a hello frame first").into());
        };
        Ok(match frame {
            ClientFrame::Typing { on } => {
                conversations.typing(session, on);
                None
            }
            ClientFrame::Feedback { seq, helpful } => {
                conversations.feedback(session, seq, helpful).await?;
                Some(ServerFrame::FeedbackAck { seq })
            }
            ClientFrame::Rate { score, comment } => {
                conversations
                    .rate(session, score, comment.as_deref())
                    .await?;
                Some(ServerFrame::RateAck { score })
            }
            ClientFrame::LeaveEmail { email, message } => {
                let message = message.unwrap_or_default();
                let max = self.limits.max_message_chars;
                if message.chars().count() > max {
                    let long = format!("the message is limited to {max} characters");
                    return Err(Refusal::new(ErrorCode::MessageTooLong, long).into());
                }
                per_address(&self.slot, Action::LeaveEmail)?;
                conversations
                    .within_shared_limit(Action::LeaveEmail, self.slot.address())
                    .await?;
                let ticket_id = conversations.leave_email(session, &email, &message).await?;
                Some(ServerFrame::EmailAck { ticket_id })
            }
            ClientFrame::RequestHuman {} => {
                if !self
                    .admission
                    .message(session.conversation(), crate::clock::now_ms())
                {
                    let wait = "wait a moment and ask again";
                    return Err(Refusal::new(ErrorCode::RateLimited, wait).into());
                }
                per_address(&self.slot, Action::RequestHuman)?;
                conversations
                    .within_shared_limit(Action::RequestHuman, self.slot.address())
                    .await?;
                conversations.request_human(session).await?;
                None
            }
            ClientFrame::Hello { .. } | ClientFrame::Ping { .. } | ClientFrame::Message { .. } => {
                None
            }
        })
    }

    /// A customer message; with a `choice`, a choice button pressed (checked against what the
    /// message it names offered, stored with the option's label, answered with that passage).
    async fn message(
        &mut self,
        client_id: &str,
        seen: Option<i64>,
        text: &str,
        choice: Option<Choice>,
    ) {
        let text = match check_message(client_id, text, self.limits.max_message_chars) {
            Ok(text) => text,
            Err(refusal) => return self.refuse(refusal, Some(client_id)),
        };
        let within = self.session.as_ref().is_none_or(|session| {
            self.admission
                .message(session.conversation(), crate::clock::now_ms())
        });
        if !within {
            let wait = Refusal::new(
                ErrorCode::RateLimited,
                "you are sending messages too fast; wait a moment and send again",
            );
            return self.refuse(wait, Some(client_id));
        }
        let conversations = self.conversations.clone();
        let chosen = match (&choice, self.session.as_ref()) {
            (Some(choice), Some(session)) => {
                match conversations.check_choice(session, choice).await {
                    Ok(chosen) => Some(chosen),
                    Err(e) => return self.failed(e, Some(client_id)),
                }
            }
            _ => None,
        };
        let text = chosen.as_ref().map_or(text, Chosen::label);
        let Some(session) = self.session.as_mut() else {
            return;
        };
        let choice = chosen.as_ref().and(choice);
        // Stored, shown to the others and acknowledged on this socket.
        let stored = conversations
            .message(session, client_id, seen, text, choice, &self.outbox)
            .await;
        // A copy of a stored message (sent again after a reconnect that lost its ack), or one
        // not stored, does not count against the conversation's budget.
        if stored.as_ref().map_or(true, |s| s.duplicate) {
            self.admission.give_back_message(session.conversation());
        }
        let stored = match stored {
            Ok(stored) => stored,
            Err(e) => return self.failed(e, Some(client_id)),
        };
        if stored.duplicate {
            return;
        }
        let Some(session) = self.session.as_ref() else {
            return;
        };
        // The turn (the models, the bot) runs in a task of its own, so this socket reads its
        // next frame at once: what the customer writes reaches the agent without waiting on it.
        let asked = Asked::new(session, &stored, text);
        let previous = self.turn.take();
        let outbox = self.outbox.clone();
        self.turn = Some(tokio::spawn(async move {
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            let id = asked.conversation().clone();
            let done = match chosen {
                Some(chosen) => conversations.after_choice(asked, chosen).await,
                None => conversations.after_message(asked).await,
            };
            if let Err(e) = done {
                tracing::error!(conversation = %id, "the bot could not answer: {e}");
                let sorry = ServerFrame::error(ErrorCode::Unavailable, "the assistant could not answer just now; your message is saved, please try again or ask for a person");
                outbox.push(encode(&sorry));
            }
        }));
    }

    /// Answers a ping once everything sent before it has been handled, the customer turn running
    /// in its own task included (the protocol's promise: a client that waits for the `pong` has
    /// seen the bot's reply to every message it sent before the ping).
    fn pong(&mut self, id: Option<serde_json::Value>) {
        let Some(previous) = self.turn.take() else {
            return self.send(ServerFrame::Pong { id });
        };
        let outbox = self.outbox.clone();
        self.turn = Some(tokio::spawn(async move {
            let _ = previous.await;
            outbox.push(encode(&ServerFrame::Pong { id }));
        }));
    }

    fn failed(&self, e: ConversationError, client_id: Option<&str>) {
        if e.is_internal() {
            tracing::error!("customer frame failed: {e}");
        }
        self.refuse(Refusal::new(e.code(), e.public_message()), client_id);
    }
}

/// Counts `action` against the budget of the socket's address, across all its sockets.
fn per_address(slot: &Slot, action: Action) -> Result<(), Refusal> {
    slot.action(action).map_err(|refused| {
        let what = action.what();
        let wait = refused.retry_after();
        Refusal::new(
            ErrorCode::RateLimited,
            format!("too many {what} from your network; try again in {wait} s"),
        )
    })
}

/// Why a frame was not done.
enum Fail {
    /// Refused as it came.
    Refused(Refusal),
    /// The conversation refused or failed.
    Conversation(ConversationError),
}

impl From<Refusal> for Fail {
    fn from(r: Refusal) -> Self {
        Fail::Refused(r)
    }
}

impl From<ConversationError> for Fail {
    fn from(e: ConversationError) -> Self {
        Fail::Conversation(e)
    }
}

/// A token bucket: `rate` per second sustained, bursts of `burst`.
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: std::time::Instant,
}

impl TokenBucket {
    fn new(rate: f64, burst: f64) -> Self {
        Self {
            rate,
            burst,
            tokens: burst,
            at: std::time::Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = std::time::Instant::now();
        let elapsed = now.duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
