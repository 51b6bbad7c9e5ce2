//! The customer protocol on `/ws/chat`: what the widget sends ([`ClientFrame`]) and receives
//! ([`ServerFrame`]). See `docs/PROTOCOL.md`.

use serde::{Deserialize, Serialize};

use super::{ErrorCode, Refusal, StoredFrame};
use crate::bot::{QuickReply, Source};
use crate::ids::ConversationId;

/// What a customer's widget may send.
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
        /// The operator's id of a logged-in customer (signed by `user_hash`).
        #[serde(default)]
        user_id: Option<String>,
        /// HMAC-SHA256 (hex) of `user_id` (or, without one, of `visitor.email`) with the
        /// server's `identity.secret`, computed by the operator's backend: proves who the
        /// customer is. A wrong one is refused (`identity_refused`).
        #[serde(default)]
        user_hash: Option<String>,
        /// When `user_hash` expires (whole Unix seconds, a number or digits; anything else is
        /// `identity_refused`), if it was signed with an expiry: the backend
        /// then signs `"{user_id}\n{expires}"` with `"{secret}:expiring"` as the key. An expired signature is refused
        /// (`identity_refused`) unless it resumes a conversation of that customer's this
        /// browser already holds.
        #[serde(default)]
        user_hash_expires: Option<serde_json::Value>,
        /// Protocol version the widget speaks.
        #[serde(default)]
        protocol: Option<u32>,
    },
    /// A customer message; `client_id` makes re-sending safe.
    Message {
        /// Unique per message, chosen by the widget.
        client_id: String,
        /// The last `seq` the widget had seen in this conversation when it first sent this
        /// message, sent again unchanged with every re-send. The message cannot have been stored
        /// at or below it, so a re-send is looked for only among the frames after it (and among
        /// the conversation's last 1,000 at most, the store's `RESEND_WINDOW`): a re-send of a
        /// message stored before those is stored again.
        #[serde(default)]
        seen: Option<i64>,
        /// What the customer wrote; for a `choice`, the button's label (the option's label as
        /// offered is what is stored and shown).
        text: String,
        /// The customer pressed a choice button of a "Which of these is it?" message: the bot
        /// answers with exactly that passage.
        #[serde(default)]
        choice: Option<Choice>,
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
    /// Answered with `pong` once everything sent before it on this connection has been handled;
    /// with `probe`, at once (a client asking whether the connection is alive).
    Ping {
        /// Echoed in the `pong`.
        #[serde(default)]
        id: Option<serde_json::Value>,
        /// Answer at once, without waiting for the turn in progress.
        #[serde(default)]
        probe: bool,
    },
}

/// A choice among the passages a bot message offered (its `choice` quick replies); the
/// customer's stored message carries it too, so agents see it was a button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    /// Sequence number of the bot message that offered the choices.
    pub seq: i64,
    /// The passage chosen, as its button named it; `null` (or absent) for "None of these".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passage: Option<String>,
}

/// Longest `client_id` accepted.
pub const MAX_CLIENT_ID: usize = 128;

/// Checks a message's `client_id` (a customer's or an agent's): 1 to [`MAX_CLIENT_ID`]
/// characters.
pub fn check_client_id(client_id: &str) -> Result<(), Refusal> {
    if client_id.is_empty() || client_id.chars().count() > MAX_CLIENT_ID {
        return Err(Refusal::new(
            ErrorCode::BadFrame,
            format!("client_id must be 1 to {MAX_CLIENT_ID} characters"),
        ));
    }
    Ok(())
}

/// Checks a customer message before it is stored: a `client_id` as [`check_client_id`] wants,
/// and text of 1 to `max_chars` characters once trimmed. Returns the trimmed text.
pub fn check_message<'a>(
    client_id: &str,
    text: &'a str,
    max_chars: usize,
) -> Result<&'a str, Refusal> {
    check_client_id(client_id)?;
    let text = text.trim();
    if text.chars().all(invisible) {
        return Err(Refusal::new(
            ErrorCode::EmptyMessage,
            "the message is empty",
        ));
    }
    let chars = text.chars().count();
    if chars > max_chars {
        return Err(Refusal::new(
            ErrorCode::MessageTooLong,
            format!("messages are limited to {max_chars} characters; this one has {chars}. Split it up and send again"),
        ));
    }
    Ok(text)
}

/// A character that shows nothing: white space, and the zero-width and formatting characters a
/// paste or a phone keyboard leaves ("\u{200b}", a byte-order mark, a word joiner). A message of
/// nothing else is empty.
fn invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{2064}' | '\u{feff}' | '\u{00ad}' | '\u{034f}'
        )
}

/// What the widget knows of the customer (each field cut to a sane length on arrival).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    /// The operator's id of the customer, when signed (verified) only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Whether the operator's backend signed who this is (`user_hash`); set by the server only.
    /// An unverified email is what the page claims, and links no other conversation.
    #[serde(default)]
    pub verified: bool,
}

impl Visitor {
    /// Longest name kept, in characters.
    pub const MAX_NAME: usize = 100;
    /// Longest email kept (RFC 5321's limit).
    pub const MAX_EMAIL: usize = 254;
    /// Longest page URL kept.
    pub const MAX_PAGE: usize = 500;
    /// Longest locale kept.
    pub const MAX_LOCALE: usize = 35;

    /// The visitor with every field trimmed and cut to its limit (an empty field is dropped), so a
    /// widget cannot put kilobytes into every agent's queue.
    pub fn truncated(self) -> Self {
        let cut = |s: Option<String>, max: usize| {
            s.map(|s| {
                let s = s.trim();
                match s.char_indices().nth(max) {
                    Some((i, _)) => s[..i].to_owned(),
                    None => s.to_owned(),
                }
            })
            .filter(|s| !s.is_empty())
        };
        Self {
            name: cut(self.name, Self::MAX_NAME),
            email: cut(self.email, Self::MAX_EMAIL),
            page: cut(self.page, Self::MAX_PAGE),
            locale: cut(self.locale, Self::MAX_LOCALE),
            // Only the server says who is verified (`Conversations::open`).
            user_id: None,
            verified: false,
        }
    }
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
pub enum Sender {
    /// The customer.
    Customer,
    /// The bot.
    Bot,
    /// A human agent.
    Agent,
    /// The system (state changes explained in words).
    System,
}

impl Sender {
    /// The name stored as an event's sender (as on the wire).
    pub fn as_str(self) -> &'static str {
        match self {
            Sender::Customer => "customer",
            Sender::Bot => "bot",
            Sender::Agent => "agent",
            Sender::System => "system",
        }
    }
}

/// A message in a conversation, as sent to customers (and replayed on resume).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageFrame {
    /// Position in the conversation.
    pub seq: i64,
    /// Who wrote it.
    pub from: Sender,
    /// The agent's display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// The text.
    pub text: String,
    /// For the customer's and agents' own messages: the id their client gave it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Articles an answer came from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Source>,
    /// Buttons to show under the message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quick_replies: Vec<QuickReply>,
    /// On a customer's message: the choice button it was (its `text` is the option's label).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub choice: Option<Choice>,
}

/// A change of owner, as sent to customers (sequenced).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusFrame {
    /// Position in the conversation.
    pub seq: i64,
    /// The new owner.
    pub state: State,
    /// Place in the queue, when queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<u32>,
    /// Expected wait in seconds, when queued and known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<u32>,
    /// The agent's display name, when a person joined.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// When queued: whether someone can take the chat now (false: offer to leave an email).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agents_available: Option<bool>,
}

/// What the server sends a customer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The conversation is ready; `missed` holds every sequenced frame after the `last_seq` given.
    Welcome {
        /// Protocol version.
        protocol: u32,
        /// Token to resume with; keep it.
        session: String,
        /// The conversation's id.
        conversation_id: ConversationId,
        /// Whether the session was known (its conversation may have no frames yet).
        resumed: bool,
        /// Who owns the conversation now.
        state: State,
        /// Highest sequence number so far.
        last_seq: i64,
        /// Sequenced frames after the `last_seq` the widget gave, in order.
        missed: Vec<StoredFrame>,
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
    /// Who owns the conversation changed (sequenced).
    Status(StatusFrame),
    /// A person resolved the conversation: ask for a rating (sequenced).
    CsatRequest {
        /// Position in the conversation.
        seq: i64,
        /// What to ask.
        text: String,
    },
    /// The place in the queue changed while waiting (not sequenced).
    Queue {
        /// 1 is next.
        queue_position: u32,
        /// Expected wait in seconds.
        eta_seconds: u32,
    },
    /// Someone is typing (not sequenced).
    Typing {
        /// Who.
        from: Sender,
        /// Typing or stopped.
        on: bool,
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
    /// The answer to `ping`: everything sent before it has been handled.
    Pong {
        /// The ping's `id`.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<serde_json::Value>,
    },
    /// Something the client sent was refused; the connection stays open.
    Error {
        /// Stable code.
        code: ErrorCode,
        /// What happened and what to do.
        message: String,
        /// The message it is about, when there is one.
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
    },
}

impl ServerFrame {
    /// An error frame.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerFrame::Error {
            code,
            message: message.into(),
            client_id: None,
        }
    }

    /// An error frame about the message `client_id`.
    pub fn error_about(code: ErrorCode, message: impl Into<String>, client_id: &str) -> Self {
        ServerFrame::Error {
            code,
            message: message.into(),
            client_id: Some(client_id.to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visitor_fields_are_cut_to_their_limits_on_character_boundaries() {
        let v = Visitor {
            name: Some("é".repeat(16 * 1024)),
            email: Some("  ".into()),
            page: Some("https://shop.example/".into()),
            locale: None,
            user_id: Some("42".into()),
            verified: true,
        }
        .truncated();
        // Only the server says who is verified.
        assert!(!v.verified && v.user_id.is_none());
        assert_eq!(v.name.unwrap().chars().count(), Visitor::MAX_NAME);
        assert_eq!(v.email, None);
        assert_eq!(v.page.as_deref(), Some("https://shop.example/"));
    }

    #[test]
    fn frames_are_tagged_by_type() {
        let status = ServerFrame::Status(StatusFrame {
            seq: 4,
            state: State::Queued,
            queue_position: Some(2),
            eta_seconds: None,
            agent: None,
            agents_available: Some(true),
        });
        let v = serde_json::to_value(&status).unwrap();
        assert_eq!(v["type"], "status");
        assert_eq!(v["state"], "queued");
        assert!(v.get("eta_seconds").is_none());
        let chose: ClientFrame = serde_json::from_str(
            r#"{"type":"message","client_id":"c1","text":"Billing","choice":{"seq":4,"passage":"billing.md#cards"}}"#,
        )
        .unwrap();
        let ClientFrame::Message { choice, .. } = chose else {
            panic!("{chose:?}")
        };
        assert_eq!(
            choice,
            Some(Choice {
                seq: 4,
                passage: Some("billing.md#cards".into())
            })
        );
        let ping: ClientFrame = serde_json::from_str(r#"{"type":"ping","id":7}"#).unwrap();
        assert_eq!(
            ping,
            ClientFrame::Ping {
                id: Some(7.into()),
                probe: false
            }
        );
    }
}
