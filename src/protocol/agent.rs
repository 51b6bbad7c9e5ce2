//! The agent protocol on `/ws/agent`: what the console sends ([`AgentFrame`]) and receives
//! ([`AgentServerFrame`]). See `docs/PROTOCOL.md`.

use serde::{Deserialize, Serialize};

use super::context::ContextPacket;
use super::{ErrorCode, StoredFrame};
use crate::accounts::Account;
use crate::escalation::Reason;
use crate::ids::{AgentId, ConversationId};
use crate::queue::{Presence, StaffView, Waiting};

/// What an agent's console may send.
#[derive(Debug, Clone, PartialEq, Deserialize)]
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
        conversation_id: ConversationId,
    },
    /// Writes to the customer.
    Message {
        /// The conversation.
        conversation_id: ConversationId,
        /// What to say.
        text: String,
        /// The console's id for the message, echoed in the `event`.
        #[serde(default)]
        client_id: Option<String>,
        /// The last `seq` the console had seen in this conversation when it first sent the
        /// message, sent again unchanged with every re-send: a re-send is looked for only after
        /// it (see `customer` `message`).
        #[serde(default)]
        seen: Option<i64>,
    },
    /// A private note on a conversation the agent holds: agents only.
    Note {
        /// The conversation.
        conversation_id: ConversationId,
        /// The note.
        text: String,
    },
    /// Typing indicator for the customer.
    Typing {
        /// The conversation.
        conversation_id: ConversationId,
        /// Typing or stopped.
        on: bool,
    },
    /// Hands the conversation to another agent or team.
    Transfer {
        /// The conversation.
        conversation_id: ConversationId,
        /// Agent id to hand it to.
        #[serde(default)]
        to_agent: Option<AgentId>,
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
        conversation_id: ConversationId,
    },
    /// Answered with `pong` once everything sent before it on this connection has been handled.
    Ping {
        /// Echoed in the `pong`.
        #[serde(default)]
        id: Option<serde_json::Value>,
    },
}

/// A queued conversation, as agents see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueEntry {
    /// The conversation.
    pub conversation_id: ConversationId,
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

impl QueueEntry {
    /// How agents see a queue entry at `position`, at `now_ms`.
    pub fn new(position: u32, w: &Waiting, now_ms: i64) -> Self {
        Self {
            conversation_id: w.conversation_id.clone(),
            position,
            priority: w.priority,
            team: w.team.clone(),
            reasons: w.reasons.clone(),
            waiting_seconds: (now_ms - w.escalated_at) / 1000,
            escalated_at: w.escalated_at,
            customer: w.customer.clone(),
            preview: w.preview.clone(),
        }
    }
}

/// An agent who is connected, as other agents see them (to transfer a conversation to).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentPresence {
    /// Id, for `transfer{to_agent}`.
    pub id: AgentId,
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

impl From<StaffView> for AgentPresence {
    fn from(s: StaffView) -> Self {
        Self {
            id: s.account.id,
            name: s.account.name,
            teams: s.account.teams,
            status: s.status,
            chats: s.chats,
            max_chats: s.account.max_chats,
        }
    }
}

/// How an agent came to hold a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignedBy {
    /// The agent claimed it from the queue.
    Claim,
    /// Automatic assignment.
    Auto,
    /// Another agent transferred it.
    Transfer,
}

/// Why an agent no longer holds a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Unassigned {
    /// The customer waited longer than `handoff.reply_timeout_seconds` for an answer.
    NoReply,
    /// The agent transferred it.
    Transferred,
    /// The agent resolved it.
    Resolved,
    /// The agent stayed disconnected longer than `handoff.disconnect_grace_seconds`.
    Disconnected,
}

/// What the server sends an agent.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentServerFrame {
    /// Authenticated.
    Ready {
        /// The account.
        agent: Account,
        /// Current presence.
        status: Presence,
    },
    /// The queue when the console connects: the first `limits.queue_snapshot_entries` entries
    /// in order, and how many wait in all.
    Queue {
        /// By priority, then waiting time.
        entries: Vec<QueueEntry>,
        /// Conversations waiting in all.
        total: usize,
    },
    /// What changed in the queue since the last `queue` or `queue_changed`.
    QueueChanged {
        /// Entries added or changed (with their position now).
        upserted: Vec<QueueEntry>,
        /// Conversations that left the queue.
        removed: Vec<ConversationId>,
        /// Conversations waiting in all.
        total: usize,
    },
    /// The agent now holds the conversation.
    Assigned {
        /// The conversation.
        conversation_id: ConversationId,
        /// How.
        by: AssignedBy,
        /// A note from the agent who transferred it.
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        /// The context packet.
        context: Box<ContextPacket>,
    },
    /// A claim lost or was refused.
    ClaimFailed {
        /// The conversation.
        conversation_id: ConversationId,
        /// `already_claimed`, `not_queued` or `at_capacity`.
        code: ErrorCode,
        /// In words.
        message: String,
    },
    /// A frame of a held conversation, as the customer sees it.
    Event {
        /// The conversation.
        conversation_id: ConversationId,
        /// The customer's frame.
        frame: StoredFrame,
    },
    /// A private note.
    Note {
        /// The conversation.
        conversation_id: ConversationId,
        /// Author's name.
        agent: String,
        /// The note.
        text: String,
        /// When (Unix ms).
        at: i64,
    },
    /// The agent no longer holds the conversation.
    Unassigned {
        /// The conversation.
        conversation_id: ConversationId,
        /// Why.
        reason: Unassigned,
    },
    /// Nobody picked a conversation up in time.
    Alert {
        /// The conversation.
        conversation_id: ConversationId,
        /// In words.
        message: String,
        /// Seconds waiting.
        waiting_seconds: i64,
    },
    /// A customer rated a conversation this agent resolved.
    Rated {
        /// The conversation.
        conversation_id: ConversationId,
        /// 1–5.
        score: i64,
        /// Comment.
        #[serde(skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
    /// The answer to `ping`: everything sent before it has been handled.
    Pong {
        /// The ping's `id`.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<serde_json::Value>,
    },
    /// A frame was refused.
    Error {
        /// Stable code.
        code: ErrorCode,
        /// What to do.
        message: String,
        /// The conversation the refused frame was about, when it named one: an agent's frames
        /// for different chats are handled concurrently, so errors can come in any order.
        #[serde(skip_serializing_if = "Option::is_none")]
        conversation_id: Option<ConversationId>,
        /// The refused message's `client_id`: that message was not stored (send it again only
        /// after fixing what the error says).
        #[serde(skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
    },
}

impl AgentServerFrame {
    /// An error frame about no conversation in particular.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error {
            code,
            message: message.into(),
            conversation_id: None,
            client_id: None,
        }
    }

    /// An error frame about a frame that named a conversation (and, for a message, its
    /// `client_id`).
    pub fn error_about(code: ErrorCode, message: impl Into<String>, about: ErrorAbout) -> Self {
        Self::Error {
            code,
            message: message.into(),
            conversation_id: about.conversation_id,
            client_id: about.client_id,
        }
    }
}

/// What an agent's frame that failed was about, for the error answering it: with lanes an error
/// can arrive after later frames, so it names the chat and, for a message, the message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorAbout {
    /// The conversation the frame named.
    pub conversation_id: Option<ConversationId>,
    /// The message's `client_id`.
    pub client_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_carries_the_customers_frame_as_it_was_stored() {
        let event = AgentServerFrame::Event {
            conversation_id: "c".into(),
            frame: StoredFrame(
                r#"{"type":"message","seq":2,"from":"customer","text":"hi"}"#.into(),
            ),
        };
        let v = serde_json::to_value(&event).unwrap();
        assert_eq!(v["type"], "event");
        assert_eq!(v["frame"]["seq"], 2);
        let claim: AgentFrame =
            serde_json::from_str(r#"{"type":"claim","conversation_id":"c"}"#).unwrap();
        assert_eq!(
            claim,
            AgentFrame::Claim {
                conversation_id: "c".into()
            }
        );
    }
}
