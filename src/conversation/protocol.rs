//! The customer wire protocol: JSON text frames tagged by `type`. See `docs/PROTOCOL.md`.

use serde::{Deserialize, Serialize};

use crate::bot::{QuickReply, Source};

/// Version of the protocol this server speaks, sent in `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;

/// What a customer may tell the widget to send.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Starts or resumes a conversation; must come first.
    Hello {
        /// Session token from an earlier `welcome`, to resume.
        #[serde(default)]
        session: Option<String>,
        /// Highest sequence number the widget has seen; everything after it is replayed.
        #[serde(default)]
        last_seq: Option<i64>,
        /// What the widget knows of the customer.
        #[serde(default)]
        visitor: Visitor,
        /// Protocol version the widget speaks.
        #[serde(default)]
        protocol: Option<u32>,
    },
    /// A customer message; `client_id` makes re-sending safe.
    Message {
        /// Unique per message, chosen by the widget.
        client_id: String,
        /// What the customer wrote.
        text: String,
    },
    /// The customer is (or stopped) typing.
    Typing {
        /// Typing or not.
        on: bool,
    },
    /// The customer's verdict on the answer at `seq`.
    Feedback {
        /// Sequence number of the bot message.
        seq: i64,
        /// Whether it helped.
        helpful: bool,
    },
    /// The customer wants a person.
    RequestHuman {},
    /// The customer rates a resolved conversation.
    Rate {
        /// 1 (bad) to 5 (great).
        score: i64,
        /// What they want to add.
        #[serde(default)]
        comment: Option<String>,
    },
    /// Nobody can take the chat now: the customer leaves an email for follow-up.
    LeaveEmail {
        /// Where to answer.
        email: String,
        /// What they need.
        #[serde(default)]
        message: Option<String>,
    },
}

/// What the widget knows of the customer.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Visitor {
    /// Name, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Email, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Page the widget is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    /// Browser language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

/// Who owns a conversation, as the customer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// The bot answers.
    Bot,
    /// Waiting for a person.
    Queued,
    /// A person is in the chat.
    Agent,
    /// A person closed the conversation.
    Resolved,
}

impl State {
    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Bot => "bot",
            State::Queued => "queued",
            State::Agent => "agent",
            State::Resolved => "resolved",
        }
    }

    /// Parses a stored name; unknown names are treated as `bot`.
    pub fn parse(s: &str) -> Self {
        match s {
            "queued" => State::Queued,
            "agent" => State::Agent,
            "resolved" => State::Resolved,
            _ => State::Bot,
        }
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum From {
    /// The customer.
    Customer,
    /// The bot.
    Bot,
    /// A human agent.
    Agent,
    /// The system (state changes explained in words).
    System,
}

impl From {
    /// The name stored as an event's sender (as on the wire).
    pub fn as_str(self) -> &'static str {
        match self {
            From::Customer => "customer",
            From::Bot => "bot",
            From::Agent => "agent",
            From::System => "system",
        }
    }
}

/// A message in a conversation, as sent to customers (and replayed on resume).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessageFrame {
    /// Position in the conversation.
    pub seq: i64,
    /// Who wrote it.
    pub from: From,
    /// The agent's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The text.
    pub text: String,
    /// For the customer's own messages: the id the widget gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Articles an answer came from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Source>,
    /// Buttons to show under the message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quick_replies: Vec<QuickReply>,
}

/// What the server sends a customer.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The conversation is ready; `missed` holds every sequenced frame after the `last_seq` given.
    Welcome {
        /// Protocol version.
        protocol: u32,
        /// Token to resume with; keep it.
        session: String,
        /// The conversation's id.
        conversation_id: String,
        /// Whether an existing conversation was resumed.
        resumed: bool,
        /// Who owns the conversation now.
        state: State,
        /// Highest sequence number so far.
        last_seq: i64,
        /// Sequenced frames after the `last_seq` the widget gave, in order.
        missed: Vec<serde_json::Value>,
    },
    /// A customer message was stored with this sequence number.
    Ack {
        /// The widget's id for the message.
        client_id: String,
        /// Its sequence number.
        seq: i64,
        /// True when the message had already been stored (a re-send).
        duplicate: bool,
    },
    /// A message (sequenced).
    Message(MessageFrame),
    /// Someone is typing.
    Typing {
        /// Who.
        from: From,
        /// Typing or stopped.
        on: bool,
    },
    /// Who owns the conversation changed (sequenced).
    Status {
        /// Position in the conversation.
        seq: i64,
        /// The new owner.
        state: State,
        /// Place in the queue, when queued.
        #[serde(skip_serializing_if = "Option::is_none")]
        queue_position: Option<u32>,
        /// Expected wait in seconds, when queued and known.
        #[serde(skip_serializing_if = "Option::is_none")]
        eta_seconds: Option<u32>,
        /// The agent's display name, when a person joined.
        #[serde(skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
        /// When queued: whether someone can take the chat now (false: offer to leave an email).
        #[serde(skip_serializing_if = "Option::is_none")]
        agents_available: Option<bool>,
    },
    /// The rating was stored.
    RateAck {
        /// The score.
        score: i64,
    },
    /// The email was stored as a ticket.
    EmailAck {
        /// The ticket's id.
        ticket_id: i64,
    },
    /// Feedback was stored.
    FeedbackAck {
        /// The message it was about.
        seq: i64,
    },
    /// Something the client sent was refused; the connection stays open.
    Error {
        /// Stable code: `bad_frame`, `frame_too_large`, `message_too_long`, `empty_message`,
        /// `rate_limited`, `hello_first`, `unknown_message`, `unavailable`, `not_resolved`,
        /// `bad_email`.
        code: &'static str,
        /// What happened and what to do.
        message: String,
        /// The message it is about, when there is one.
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
    },
}

impl ServerFrame {
    /// An error frame.
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        ServerFrame::Error {
            code,
            message: message.into(),
            client_id: None,
        }
    }

    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"internal","message":"unencodable frame"}"#.into()
        })
    }
}
