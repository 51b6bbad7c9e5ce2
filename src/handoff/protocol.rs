//! The agent wire protocol on `/ws/agent`: JSON text frames tagged by `type`. See `docs/PROTOCOL.md`.

use serde::{Deserialize, Serialize};

use crate::escalation::Reason;
use crate::store::AgentRow;

/// What an agent's console may send.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AgentFrame {
    /// Authenticates the socket (when the token was not in the URL).
    Auth {
        /// Login token.
        token: String,
    },
    /// Online (takes assignments) or away (keeps chats, takes no new ones).
    Presence {
        /// `online` or `away`.
        status: Presence,
    },
    /// Takes a queued conversation.
    Claim {
        /// The conversation.
        conversation_id: String,
    },
    /// Writes to the customer.
    Message {
        /// The conversation.
        conversation_id: String,
        /// What to say.
        text: String,
        /// The console's id for the message, echoed in the `event`.
        #[serde(default)]
        client_id: Option<String>,
    },
    /// A private note: agents only.
    Note {
        /// The conversation.
        conversation_id: String,
        /// The note.
        text: String,
    },
    /// Typing indicator for the customer.
    Typing {
        /// The conversation.
        conversation_id: String,
        /// Typing or stopped.
        on: bool,
    },
    /// Hands the conversation to another agent or team.
    Transfer {
        /// The conversation.
        conversation_id: String,
        /// Agent id to hand it to.
        #[serde(default)]
        to_agent: Option<String>,
        /// Team to hand it to (through the queue).
        #[serde(default)]
        to_team: Option<String>,
        /// A note for whoever takes it.
        #[serde(default)]
        note: Option<String>,
    },
    /// Closes the conversation; the customer is asked for a rating.
    Resolve {
        /// The conversation.
        conversation_id: String,
    },
}

/// An agent's availability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// Takes new conversations.
    Online,
    /// Connected, takes no new conversations.
    Away,
    /// Not connected.
    Offline,
}

/// A queued conversation, as agents see it.
#[derive(Debug, Clone, Serialize)]
pub struct QueueEntry {
    /// The conversation.
    pub conversation_id: String,
    /// 1 is next.
    pub position: u32,
    /// Higher goes first.
    pub priority: i64,
    /// Team it waits for.
    pub team: String,
    /// Why it was escalated.
    pub reasons: Vec<Reason>,
    /// Seconds since escalation.
    pub waiting_seconds: i64,
    /// When it was escalated (Unix ms).
    pub escalated_at: i64,
    /// The customer's name, if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer: Option<String>,
    /// The customer's latest message.
    pub preview: String,
}

/// An agent who is connected, as other agents see them (to transfer a conversation to).
#[derive(Debug, Clone, Serialize)]
pub struct AgentPresence {
    /// Id, for `transfer{to_agent}`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Teams served; empty serves every team.
    pub teams: Vec<String>,
    /// `online` or `away`.
    pub status: Presence,
    /// Conversations held now.
    pub chats: usize,
    /// Conversations the agent may hold at once.
    pub max_chats: i64,
}

/// What the server sends an agent.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentServerFrame {
    /// Authenticated.
    Ready {
        /// The account.
        agent: AgentRow,
        /// Current presence.
        status: Presence,
    },
    /// The whole queue.
    Queue {
        /// By priority, then waiting time.
        entries: Vec<QueueEntry>,
    },
    /// The agent now owns the conversation.
    Assigned {
        /// The conversation.
        conversation_id: String,
        /// `claim`, `auto` or `transfer`.
        by: &'static str,
        /// A note from the agent who transferred it.
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        /// The context packet.
        context: serde_json::Value,
    },
    /// A claim lost or was refused.
    ClaimFailed {
        /// The conversation.
        conversation_id: String,
        /// `already_claimed`, `not_queued`, `at_capacity`, `not_found`.
        code: &'static str,
        /// In words.
        message: String,
    },
    /// A private note.
    Note {
        /// The conversation.
        conversation_id: String,
        /// Author's name.
        agent: String,
        /// The note.
        text: String,
        /// When (Unix ms).
        at: i64,
    },
    /// The agent no longer owns the conversation.
    Unassigned {
        /// The conversation.
        conversation_id: String,
        /// `no_reply`, `transferred`, `resolved`.
        reason: &'static str,
    },
    /// Nobody picked a conversation up in time.
    Alert {
        /// The conversation.
        conversation_id: String,
        /// In words.
        message: String,
        /// Seconds waiting.
        waiting_seconds: i64,
    },
    /// A customer rated a conversation this agent resolved.
    Rated {
        /// The conversation.
        conversation_id: String,
        /// 1–5.
        score: i64,
        /// Comment.
        #[serde(skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
    /// A frame was refused.
    Error {
        /// Stable code.
        code: &'static str,
        /// What to do.
        message: String,
    },
}

impl AgentServerFrame {
    /// An error frame.
    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Self::Error {
            code,
            message: message.into(),
        }
    }

    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"type":"error","code":"internal","message":"unencodable frame"}"#.into()
        })
    }
}
