//! What customers do: write, type, give feedback, ask for a person, rate, leave an email.

use super::handover::Asker;
use super::{message, ConversationError, Conversations};
use crate::bot::Outcome;
use crate::clock::now_ms;
use crate::cluster::Signal;
use crate::escalation::{Decision, Reason};
use crate::fanout::Outbox;
use crate::protocol::agent::AgentServerFrame;
use crate::protocol::customer::{Choice, Sender, ServerFrame, State};
use crate::protocol::encode;
use crate::store::Appended;

use super::session::Session;

/// The outcome of storing a customer message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// Its sequence number.
    pub seq: i64,
    /// Whether it had been stored before (a re-send): nothing else happens then.
    pub duplicate: bool,
    /// Who owned the conversation when it was stored.
    pub state: State,
}

/// Longest rating comment or ticket message kept, in characters.
const MAX_COMMENT_CHARS: usize = 2_000;

impl Conversations {
    /// Stores a customer message (once per `client_id`; `seen`: see
    /// [`crate::store::NewEvent::seen`]), shows it on the conversation's other
    /// sockets and to its agent, and queues its `ack` on `socket` (the sender's outbox): the
    /// store append is the only wait. The `ack` is queued before the conversation's lock is let
    /// go, so no later frame (an agent's reply stored a moment after) reaches the sender before
    /// it: the sender sees every `seq` in order, its own included. The caller then calls
    /// [`Conversations::after_message`] (or, for a `choice` checked by
    /// [`Conversations::check_choice`], [`Conversations::after_choice`]).
    pub async fn message(
        &self,
        session: &mut Session,
        client_id: &str,
        seen: Option<i64>,
        text: &str,
        choice: Option<Choice>,
        socket: &Outbox,
    ) -> Result<Stored, ConversationError> {
        self.ensure_stored(session).await?;
        let core = &self.core;
        let id = session.conversation();
        let _guard = core.lock(id).await;
        let mut frame = message(Sender::Customer, text);
        frame.client_id = Some(client_id.to_owned());
        frame.choice = choice;
        let stored = match core
            .append_message(id, frame, Some(session.socket()), None, seen)
            .await?
        {
            Appended::New { seq, state, .. } => Stored {
                seq,
                duplicate: false,
                state: State::parse(&state),
            },
            Appended::Duplicate { seq } => Stored {
                seq,
                duplicate: true,
                state: State::Bot,
            },
        };
        socket.push_ack(
            stored.seq,
            encode(&ServerFrame::Ack {
                client_id: client_id.to_owned(),
                seq: stored.seq,
                duplicate: stored.duplicate,
            }),
        );
        Ok(stored)
    }

    /// Shows "customer is typing" to the conversation's other sockets and its agent.
    pub fn typing(&self, session: &Session, on: bool) {
        let frame = ServerFrame::Typing {
            from: Sender::Customer,
            on,
        };
        self.core
            .publish_ephemeral(session.conversation(), &frame, Some(session.socket()));
    }

    /// Stores the customer's verdict on the bot answer at `seq`; "not helpful" often enough hands
    /// the conversation to a person.
    pub async fn feedback(
        &self,
        session: &Session,
        seq: i64,
        helpful: bool,
    ) -> Result<(), ConversationError> {
        let core = &self.core;
        let id = session.conversation();
        if !session.is_stored() || core.store.sender_of(id, seq).await?.as_deref() != Some("bot") {
            return Err(ConversationError::UnknownMessage(seq));
        }
        let verdict_at = now_ms();
        core.store
            .record_feedback(id, seq, helpful, verdict_at)
            .await?;
        let turns = core.store.bot_turns_of(id).await?;
        // The bot learns from the verdict on an answer (a failure loses the lesson, not the
        // verdict).
        if let Some(turn) = turns
            .iter()
            .find(|t| t.seq == seq && t.outcome == Outcome::Answered.as_str())
        {
            core.tell_nodes(|| match helpful {
                true => Signal::Unpick {
                    conversation: id.clone(),
                    seq,
                },
                false => Signal::Pick {
                    conversation: id.clone(),
                    seq,
                    question: turn.question.clone(),
                    passage: None,
                    quote_from: 0,
                },
            });
            core.bot
                .remember_verdict(id.as_ref(), seq, &turn.question, helpful);
        }
        if !helpful && core.state(id).await? == State::Bot {
            // This stretch with the bot's: answers before a person resolved the chat are not.
            let start = core.store.bot_stretch_start(id).await?;
            let negatives = turns
                .iter()
                .filter(|t| t.seq >= start && t.helpful == Some(false))
                .count();
            let decision = core.policy.on_feedback(negatives);
            if decision.escalate {
                core.escalate(
                    id,
                    decision,
                    session.customer_name(),
                    Some(session.origin()),
                    Asker::BotSince(verdict_at),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// The customer asked for a person: the conversation leaves the bot and waits in the queue.
    pub async fn request_human(&self, session: &mut Session) -> Result<(), ConversationError> {
        self.ensure_stored(session).await?;
        let decision = Decision {
            escalate: true,
            reasons: vec![Reason::button()],
            ..Decision::default()
        };
        self.core
            .escalate(
                session.conversation(),
                decision,
                session.customer_name(),
                Some(session.origin()),
                Asker::Customer,
            )
            .await
    }

    /// The customer rates the conversation after a person resolved it.
    pub async fn rate(
        &self,
        session: &Session,
        score: i64,
        comment: Option<&str>,
    ) -> Result<(), ConversationError> {
        if !(1..=5).contains(&score) {
            return Err(ConversationError::BadRating);
        }
        let core = &self.core;
        let id = session.conversation();
        let handoffs = if session.is_stored() {
            core.store.handoffs_of(id).await?
        } else {
            Vec::new()
        };
        let Some(last) = handoffs.iter().rev().find(|h| h.resolved_at.is_some()) else {
            return Err(ConversationError::NotResolved);
        };
        let comment = comment
            .map(|c| c.trim().chars().take(MAX_COMMENT_CHARS).collect::<String>())
            .filter(|c| !c.is_empty());
        let comment = comment.as_deref();
        if !core.store.handoff_rated(last.id, score, comment).await? {
            return Err(ConversationError::AlreadyRated);
        }
        if let Some(agent) = &last.agent_id {
            let frame = AgentServerFrame::Rated {
                conversation_id: id.clone(),
                score,
                comment: comment.map(String::from),
            };
            core.to_agent(&agent.as_str().into(), &frame);
        }
        Ok(())
    }

    /// The customer leaves an email for follow-up: stored as the conversation's one open
    /// ticket (leaving another corrects it). Returns its id.
    pub async fn leave_email(
        &self,
        session: &mut Session,
        email: &str,
        message: &str,
    ) -> Result<i64, ConversationError> {
        let email = email.trim();
        let valid = email.len() <= 254
            && email.split_once('@').is_some_and(|(user, domain)| {
                !user.is_empty() && domain.contains('.') && !email.contains(char::is_whitespace)
            });
        if !valid {
            return Err(ConversationError::BadEmail);
        }
        self.ensure_stored(session).await?;
        let core = &self.core;
        let id = session.conversation();
        let team = core.store.handoffs_of(id).await?.pop().and_then(|h| h.team);
        let message: String = message.trim().chars().take(MAX_COMMENT_CHARS).collect();
        let ticket = core
            .store
            .create_ticket(id, email, &message, team.as_deref(), now_ms())
            .await?;
        tracing::info!(conversation = %id, ticket, "ticket left for follow-up");
        Ok(ticket)
    }
}
