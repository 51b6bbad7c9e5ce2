//! The customer WebSocket at `/ws/chat`: a reader loop that validates and handles frames, and a
//! writer task fed by a bounded channel. Bad frames get an `error` frame; the connection lives on.

use std::time::Instant;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::AppState;
use crate::conversation::protocol::{ClientFrame, ServerFrame};
use crate::conversation::{ConversationError, Outbound, Subscription};

/// Frames above this size are cut off by the WebSocket layer itself (connection closed, 1009);
/// between `max_frame_bytes` and this, the client gets a `frame_too_large` error frame.
const HARD_FRAME_LIMIT: usize = 1 << 20;
/// Longest client id accepted.
const MAX_CLIENT_ID: usize = 128;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/ws/chat", get(upgrade))
}

async fn upgrade(ws: WebSocketUpgrade, State(state): State<AppState>) -> Response {
    let hard = HARD_FRAME_LIMIT.max(state.limits.max_frame_bytes * 2);
    ws.max_message_size(hard)
        .max_frame_size(hard)
        .on_upgrade(move |socket| serve(socket, state))
}

async fn serve(socket: WebSocket, state: AppState) {
    let Ok(_permit) = state.connections.clone().acquire_owned().await else {
        return;
    };
    let (mut stream, tx, writer) = super::socket::split(socket);

    let mut conn = Connection::new(state, tx);
    while let Some(Ok(message)) = stream.next().await {
        match message {
            Message::Text(text) => conn.on_text(text.as_str()).await,
            Message::Binary(_) => {
                conn.send(ServerFrame::error(
                    "bad_frame",
                    "send JSON text frames, not binary",
                ))
                .await
            }
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) => {}
        }
    }
    // Unsubscribe and let the writer flush what is queued, then stop it.
    drop(conn);
    writer.finish().await;
}

struct Connection {
    state: AppState,
    tx: mpsc::Sender<Outbound>,
    session: Option<Subscription>,
    messages: TokenBucket,
    frames: TokenBucket,
}

impl Connection {
    fn new(state: AppState, tx: mpsc::Sender<Outbound>) -> Self {
        let limits = &state.limits;
        let messages = TokenBucket::new(limits.messages_per_second, limits.message_burst);
        let frames = TokenBucket::new(
            limits.messages_per_second * 20.0,
            limits.message_burst * 20.0,
        );
        Self {
            state,
            tx,
            session: None,
            messages,
            frames,
        }
    }

    async fn send(&self, frame: ServerFrame) {
        let _ = self.tx.send(frame.to_json().into()).await;
    }

    async fn on_text(&mut self, text: &str) {
        if text.len() > self.state.limits.max_frame_bytes {
            let max = self.state.limits.max_frame_bytes;
            return self
                .send(ServerFrame::error(
                    "frame_too_large",
                    format!(
                        "frames are limited to {max} bytes; this one was {}",
                        text.len()
                    ),
                ))
                .await;
        }
        if !self.frames.take() {
            return self
                .send(ServerFrame::error(
                    "rate_limited",
                    "too many frames; slow down",
                ))
                .await;
        }
        let frame = match serde_json::from_str::<ClientFrame>(text) {
            Ok(f) => f,
            Err(e) => {
                let mut detail = e.to_string();
                detail.truncate(200);
                return self
                    .send(ServerFrame::error(
                        "bad_frame",
                        format!("not a valid frame: {detail}"),
                    ))
                    .await;
            }
        };
        match frame {
            ClientFrame::Hello {
                session,
                last_seq,
                visitor,
                ..
            } => {
                if self.session.is_some() {
                    return self
                        .send(ServerFrame::error(
                            "bad_frame",
                            "hello was already sent on this connection",
                        ))
                        .await;
                }
                match self
                    .state
                    .conversations
                    .join(session.as_deref(), last_seq, &visitor, self.tx.clone())
                    .await
                {
                    Ok(sub) => self.session = Some(sub),
                    Err(e) => self.failed(e, None).await,
                }
            }
            ClientFrame::Message { client_id, text } => self.on_message(client_id, text).await,
            ClientFrame::Typing { on } => {
                if let Some(sub) = &self.session {
                    self.state
                        .conversations
                        .customer_typing(sub.conversation(), sub.id(), on)
                        .await;
                }
            }
            ClientFrame::Feedback { seq, helpful } => {
                let Some(id) = self.conversation() else {
                    return self.hello_first().await;
                };
                match self.state.conversations.feedback(&id, seq, helpful).await {
                    Ok(()) => self.send(ServerFrame::FeedbackAck { seq }).await,
                    Err(ConversationError::UnknownMessage(seq)) => {
                        self.send(ServerFrame::error(
                            "unknown_message",
                            format!("there is no bot answer with seq {seq}"),
                        ))
                        .await
                    }
                    Err(e) => self.failed(e, None).await,
                }
            }
            ClientFrame::Rate { score, comment } => {
                let Some(id) = self.conversation() else {
                    return self.hello_first().await;
                };
                match self
                    .state
                    .conversations
                    .rate(&id, score, comment.as_deref())
                    .await
                {
                    Ok(()) => self.send(ServerFrame::RateAck { score }).await,
                    Err(e @ ConversationError::BadRating) => {
                        self.send(ServerFrame::error("bad_frame", e.to_string()))
                            .await
                    }
                    Err(e @ ConversationError::NotResolved) => {
                        self.send(ServerFrame::error("not_resolved", e.to_string()))
                            .await
                    }
                    Err(e) => self.failed(e, None).await,
                }
            }
            ClientFrame::LeaveEmail { email, message } => {
                let Some(id) = self.conversation() else {
                    return self.hello_first().await;
                };
                let message = message.unwrap_or_default();
                if message.chars().count() > self.state.limits.max_message_chars {
                    return self
                        .send(ServerFrame::error(
                            "message_too_long",
                            "the message is too long",
                        ))
                        .await;
                }
                match self
                    .state
                    .conversations
                    .leave_email(&id, &email, &message)
                    .await
                {
                    Ok(ticket_id) => self.send(ServerFrame::EmailAck { ticket_id }).await,
                    Err(e @ ConversationError::BadEmail) => {
                        self.send(ServerFrame::error("bad_email", e.to_string()))
                            .await
                    }
                    Err(e) => self.failed(e, None).await,
                }
            }
            ClientFrame::RequestHuman {} => {
                let Some(id) = self.conversation() else {
                    return self.hello_first().await;
                };
                if let Err(e) = self.state.conversations.request_human(&id).await {
                    self.failed(e, None).await;
                }
            }
        }
    }

    async fn on_message(&mut self, client_id: String, text: String) {
        let Some((id, socket)) = self
            .session
            .as_ref()
            .map(|sub| (sub.conversation().to_owned(), sub.id()))
        else {
            return self.hello_first().await;
        };
        let refuse = |code, message: String| ServerFrame::Error {
            code,
            message,
            client_id: Some(client_id.clone()),
        };
        if client_id.is_empty() || client_id.len() > MAX_CLIENT_ID {
            return self
                .send(refuse(
                    "bad_frame",
                    format!("client_id must be 1 to {MAX_CLIENT_ID} characters"),
                ))
                .await;
        }
        let text = text.trim();
        if text.is_empty() {
            return self
                .send(refuse("empty_message", "the message is empty".into()))
                .await;
        }
        let max = self.state.limits.max_message_chars;
        let chars = text.chars().count();
        if chars > max {
            return self
                .send(refuse("message_too_long", format!("messages are limited to {max} characters; this one has {chars}. Split it up and send again")))
                .await;
        }
        if !self.messages.take() {
            return self
                .send(refuse(
                    "rate_limited",
                    "you are sending messages too fast; wait a moment and send again".into(),
                ))
                .await;
        }
        match self
            .state
            .conversations
            .customer_message(&id, socket, &client_id, text)
            .await
        {
            Ok(stored) => {
                self.send(ServerFrame::Ack {
                    client_id: client_id.clone(),
                    seq: stored.seq,
                    duplicate: stored.duplicate,
                })
                .await;
                if !stored.duplicate {
                    if let Err(e) = self
                        .state
                        .conversations
                        .after_customer_message(&id, stored.seq, text)
                        .await
                    {
                        tracing::error!(conversation = %id, "the bot could not answer: {e}");
                        self.send(ServerFrame::error("unavailable", "the assistant could not answer just now; your message is saved, please try again or ask for a person")).await;
                    }
                }
            }
            Err(e) => self.failed(e, Some(client_id)).await,
        }
    }

    fn conversation(&self) -> Option<String> {
        self.session
            .as_ref()
            .map(|sub| sub.conversation().to_owned())
    }

    async fn hello_first(&self) {
        self.send(ServerFrame::error(
            "hello_first",
            "send a hello frame first",
        ))
        .await;
    }

    async fn failed(&self, e: ConversationError, client_id: Option<String>) {
        tracing::error!("customer frame failed: {e}");
        let message =
            "the server could not save this just now; send it again (it will not be duplicated)"
                .into();
        self.send(ServerFrame::Error {
            code: "unavailable",
            message,
            client_id,
        })
        .await;
    }
}

/// Allows `rate` events a second on average, and bursts of up to `burst`.
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: f64, burst: f64) -> Self {
        let burst = burst.max(1.0);
        Self {
            rate,
            burst,
            tokens: burst,
            last: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
