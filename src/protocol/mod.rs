//! The wire: every frame the customer widget and the agent console send and receive, as typed
//! serde values (JSON text frames tagged by `type`), the context packet agents get, the error
//! codes both sockets use, and the close codes. `docs/PROTOCOL.md` documents the same.
//!
//! Nothing here does I/O: the conversation builds frames, the fan-out carries them, the HTTP layer
//! decodes what clients send.

pub mod agent;
pub mod context;
pub mod customer;

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Serialize, Serializer};

/// Version of the protocol this server speaks, sent in `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;

/// A frame on its way to sockets, already encoded as JSON; shared by every socket it goes to.
pub type Outbound = Arc<str>;

/// Why the server closed a WebSocket (the close frame's code and reason). Clients reconnect after
/// any of them; a widget resumes from its `last_seq`, so nothing is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// 4000: no `hello` (customers) or `auth` (agents) within `limits.hello_timeout_seconds`.
    HelloTimeout,
    /// 4001: the client did not read its frames fast enough (its outbox filled up).
    TooSlow,
    /// 4002: nothing heard from the client (not even a pong) for `limits.idle_timeout_seconds`.
    IdleTimeout,
    /// 4003: the agent's login token expired or was revoked (logout, an admin, a new
    /// password); log in again.
    LoggedOut,
    /// 4004: the server lost its link to the other nodes (several nodes, `cluster.redis_url`) and
    /// may have missed frames; reconnect and resume from `last_seq`.
    Reconnect,
    /// 1011: the server failed handling a frame; reconnect.
    InternalError,
}

impl CloseCode {
    /// The numeric close code.
    pub fn code(self) -> u16 {
        match self {
            CloseCode::HelloTimeout => 4000,
            CloseCode::TooSlow => 4001,
            CloseCode::IdleTimeout => 4002,
            CloseCode::LoggedOut => 4003,
            CloseCode::Reconnect => 4004,
            CloseCode::InternalError => 1011,
        }
    }

    /// The close frame's reason (at most 123 bytes, as the protocol allows).
    pub fn reason(self) -> &'static str {
        match self {
            CloseCode::HelloTimeout => "hello_timeout: send hello (or auth) first, within seconds",
            CloseCode::TooSlow => {
                "too_slow: frames were not read in time; reconnect and resume from last_seq"
            }
            CloseCode::IdleTimeout => "idle_timeout: nothing heard from the client; reconnect",
            CloseCode::LoggedOut => {
                "logged_out: the login token expired or was revoked; log in again"
            }
            CloseCode::Reconnect => {
                "reconnect: resume from last_seq (a backlog sent in pages, or a node that lost its link to the others)"
            }
            CloseCode::InternalError => "internal_error: reconnect",
        }
    }
}

/// Stable codes of `error` (and `claim_failed`) frames, on both sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not a frame of this protocol (bad JSON, unknown type, missing field, bad value).
    BadFrame,
    /// Larger than the frame limit.
    FrameTooLarge,
    /// A message longer than `limits.max_message_chars`.
    MessageTooLong,
    /// A message with no text.
    EmptyMessage,
    /// Too many frames or messages; send the message again later.
    RateLimited,
    /// A customer frame before `hello`.
    HelloFirst,
    /// Feedback on a message that is not a bot answer of this conversation.
    UnknownMessage,
    /// The server could not do it now (storage, models); try again.
    Unavailable,
    /// A rating before any person resolved the conversation.
    NotResolved,
    /// Not an email address.
    BadEmail,
    /// The queue (overall, or for this address) is full: no hand-off now.
    QueueFull,
    /// Too many new conversations from this address; try again later.
    TooManyConversations,
    /// An agent frame before a successful `auth`, or a bad token.
    Unauthorized,
    /// An editor's token on the agent socket: it takes no conversations.
    NotAnAgent,
    /// The agent does not hold the conversation.
    NotOwner,
    /// No such conversation.
    NotFound,
    /// A transfer to an agent who is not online or has no room.
    UnknownAgent,
    /// A claim lost: another agent has it.
    AlreadyClaimed,
    /// A claim of a conversation that is not waiting in the queue.
    NotQueued,
    /// A claim by an agent who holds as many chats as they may.
    AtCapacity,
    /// The server failed; it has been logged.
    Internal,
    /// A `rate` for a resolution that was rated already (one rating per resolution).
    AlreadyRated,
    /// A choice of a passage the bot message did not offer.
    NotOffered,
    /// `hello`'s `user_hash` does not sign its `user_id` (or email): the identity is refused.
    IdentityRefused,
}

impl ErrorCode {
    /// The code as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::MessageTooLong => "message_too_long",
            ErrorCode::EmptyMessage => "empty_message",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::HelloFirst => "hello_first",
            ErrorCode::UnknownMessage => "unknown_message",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::NotResolved => "not_resolved",
            ErrorCode::BadEmail => "bad_email",
            ErrorCode::QueueFull => "queue_full",
            ErrorCode::TooManyConversations => "too_many_conversations",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::NotAnAgent => "not_an_agent",
            ErrorCode::NotOwner => "not_owner",
            ErrorCode::NotFound => "not_found",
            ErrorCode::UnknownAgent => "unknown_agent",
            ErrorCode::AlreadyClaimed => "already_claimed",
            ErrorCode::NotQueued => "not_queued",
            ErrorCode::AtCapacity => "at_capacity",
            ErrorCode::Internal => "internal",
            ErrorCode::IdentityRefused => "identity_refused",
            ErrorCode::AlreadyRated => "already_rated",
            ErrorCode::NotOffered => "not_offered",
        }
    }
}

/// A frame refused before it was handled: the code and what to tell the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Stable code.
    pub code: ErrorCode,
    /// What happened and what to do.
    pub message: String,
}

impl Refusal {
    /// A refusal with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Decodes a client's text frame: at most `max_bytes`, valid JSON of one of the frame types.
/// Never panics, whatever the text.
pub fn decode<T: DeserializeOwned>(text: &str, max_bytes: usize) -> Result<T, Refusal> {
    if text.len() > max_bytes {
        return Err(Refusal::new(
            ErrorCode::FrameTooLarge,
            format!(
                "frames are limited to {max_bytes} bytes; this one was {}",
                text.len()
            ),
        ));
    }
    serde_json::from_str(text).map_err(|e| {
        Refusal::new(
            ErrorCode::BadFrame,
            format!("not a valid frame: {}", cut(&e.to_string(), 200)),
        )
    })
}

/// At most `max` characters of `s` (cut on a character boundary).
pub fn cut(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// A frame as stored in a conversation's log (JSON text), sent on as it is: inside `welcome`'s
/// `missed` or an agent's `event`, without decoding and encoding it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFrame(pub Arc<str>);

impl Serialize for StoredFrame {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw: &serde_json::value::RawValue =
            serde_json::from_str(&self.0).map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

/// Encodes a frame as JSON text, to send to sockets.
pub fn encode<T: Serialize>(frame: &T) -> Outbound {
    to_json(frame).into()
}

/// Encodes a frame as JSON text. Frames are plain data, so this cannot fail in practice; if it
/// ever did, the client gets an `internal` error frame rather than nothing.
pub fn to_json<T: Serialize>(frame: &T) -> String {
    serde_json::to_string(frame).unwrap_or_else(|e| {
        tracing::error!("a frame could not be encoded: {e}");
        r#"{"type":"error","code":"internal","message":"the server could not encode a frame"}"#
            .into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_sent_by_their_snake_case_names() {
        for code in [
            ErrorCode::BadFrame,
            ErrorCode::TooManyConversations,
            ErrorCode::NotAnAgent,
            ErrorCode::AtCapacity,
            ErrorCode::Internal,
        ] {
            assert_eq!(
                serde_json::to_value(code).unwrap(),
                serde_json::Value::from(code.as_str())
            );
        }
    }

    #[test]
    fn a_stored_frame_is_sent_as_the_json_it_is() {
        let frame = StoredFrame(r#"{"type":"message","seq":3}"#.into());
        let wrapped = serde_json::json!({ "frame": serde_json::to_value(&frame).unwrap() });
        assert_eq!(wrapped["frame"]["seq"], 3);
        assert!(CloseCode::TooSlow.reason().len() <= 123);
    }

    #[test]
    fn decoding_refuses_large_and_malformed_frames_and_cuts_messages_on_char_boundaries() {
        let big = decode::<serde_json::Value>(&"x".repeat(20), 10).unwrap_err();
        assert_eq!(big.code, ErrorCode::FrameTooLarge);
        let odd = decode::<customer::ClientFrame>(
            &format!("{{\"type\":\"{}\"}}", "é".repeat(300)),
            10_000,
        )
        .unwrap_err();
        assert_eq!(odd.code, ErrorCode::BadFrame);
        assert_eq!(cut("héllo", 2), "hé");
    }
}
