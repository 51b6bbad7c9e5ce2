//! The context packet: everything an agent needs to pick a conversation up without asking the
//! customer to repeat themselves. Sent in `assigned` and by `GET /api/conversations/{id}/context`.

use serde::Serialize;

use super::customer::{State, Visitor};
use crate::escalation::Reason;
use crate::ids::ConversationId;
use crate::nlu::Understanding;

/// The context packet of a conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContextPacket {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// Who owns it now.
    pub state: State,
    /// What the widget knew of the customer.
    pub customer: Visitor,
    /// What the customer wants, in a sentence or two taken from their words.
    pub summary: String,
    /// Why it was handed to a person (the latest hand-off), with the numbers.
    pub reasons: Vec<Reason>,
    /// The team it went to.
    pub team: Option<String>,
    /// Its queue priority.
    pub priority: Option<i64>,
    /// Seconds from escalation to pickup (or until now while it waits).
    pub waiting_seconds: Option<i64>,
    /// Each customer message with what was understood of it.
    pub turns: Vec<Turn>,
    /// The escalation policy's upset threshold when a cue backs the reading (turns at or above
    /// it hand a chat to a person).
    pub upset_threshold: f32,
    /// The same without a cue (most calm messages carry none); each turn's own bar is
    /// [`Turn::upset_bar`].
    pub upset_threshold_without_cue: f32,
    /// Articles the bot answered with, and the customer's verdicts.
    pub articles: Vec<ArticleShown>,
    /// Every customer-visible frame, in order, each with `at`.
    pub transcript: Vec<TimedFrame>,
    /// Private notes.
    pub notes: Vec<Note>,
    /// The customer's earlier conversations, only when the operator verified who they are.
    pub previous_conversations: Vec<PreviousConversation>,
}

/// One customer message and what was understood of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Turn {
    /// Its sequence number.
    pub seq: i64,
    /// What the customer wrote.
    pub text: String,
    /// The intent's name, if one was recognised.
    pub intent: Option<String>,
    /// The intent's probability.
    pub confidence: Option<f32>,
    /// Probability that the customer is upset.
    pub upset: Option<f32>,
    /// What raised the upset score.
    pub upset_cues: Vec<String>,
    /// The bar this turn's reading had to reach to hand the chat over on its own: the policy's
    /// threshold when a cue backs the reading, the higher one without a cue (None when the
    /// message was not understood).
    pub upset_bar: Option<f32>,
    /// Everything understood of the message, as the language models gave it.
    pub understanding: Option<Understanding>,
}

impl Turn {
    /// A customer message with what was understood of it (if it was).
    pub fn new(seq: i64, text: String, understanding: Option<Understanding>) -> Self {
        let u = understanding.as_ref();
        Self {
            seq,
            text,
            intent: u.and_then(|u| u.intent.as_ref().map(|i| i.name.clone())),
            confidence: u.and_then(|u| u.intent.as_ref().map(|i| i.confidence)),
            upset: u.map(|u| u.upset),
            upset_cues: u.map(|u| u.upset_cues.clone()).unwrap_or_default(),
            upset_bar: None,
            understanding,
        }
    }
}

/// An answer the bot gave from an article.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArticleShown {
    /// The bot message's sequence number.
    pub seq: i64,
    /// What the customer asked.
    pub question: String,
    /// The article's file.
    pub article: Option<String>,
    /// Its title, as linked.
    pub title: Option<String>,
    /// Its link.
    pub url: Option<String>,
    /// How confident the bot was.
    pub confidence: f64,
    /// The customer's verdict.
    pub helpful: Option<bool>,
}

/// A customer-visible frame with the time it was stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimedFrame {
    /// The frame as the customer received it.
    #[serde(flatten)]
    pub frame: serde_json::Map<String, serde_json::Value>,
    /// When it was stored (Unix ms).
    pub at: i64,
}

/// A private note.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Note {
    /// Who wrote it (agent id).
    pub agent_id: String,
    /// Their name.
    pub agent: String,
    /// The note.
    pub text: String,
    /// When (Unix ms).
    pub at: i64,
}

/// One of the customer's earlier conversations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreviousConversation {
    /// Its id.
    pub id: ConversationId,
    /// When it started (Unix ms).
    pub created_at: i64,
    /// Who owns it now.
    pub state: State,
    /// What the customer wanted.
    pub summary: String,
}
