//! A choice button pressed under "Which of these is it?": checked against the options that
//! message offered (stored when it was sent), stored as the customer's message with the option's
//! label, recorded for editors (what customers picked), and answered with exactly that passage —
//! no new retrieval, so the answer is the one the button promised.

use super::turn::Asked;
use super::{ConversationError, Conversations};
use crate::bot::NONE_OF_THESE;
use crate::clock::now_ms;
use crate::cluster::Signal;
use crate::ids::ConversationId;
use crate::protocol::customer::{Choice, State};
use crate::protocol::cut;

use super::session::Session;

/// A checked choice: the option offered under the bot message `offer_seq`.
#[derive(Debug, Clone)]
pub struct Chosen {
    offer_seq: i64,
    passage: Option<String>,
    /// Where the offered line was quoted from (see [`crate::store::OfferedOption::quote_from`]).
    quote_from: usize,
    label: String,
    question: String,
}

impl Chosen {
    /// What the button said: stored and shown as the customer's message.
    pub fn label(&self) -> &str {
        &self.label
    }
}

impl Conversations {
    /// Checks that the bot message `choice.seq` of this conversation offered choices, and among
    /// them `choice.passage` (none: "None of these"). Nothing is stored yet.
    pub async fn check_choice(
        &self,
        session: &Session,
        choice: &Choice,
    ) -> Result<Chosen, ConversationError> {
        if !session.is_stored() {
            return Err(ConversationError::NoChoices(choice.seq));
        }
        self.chosen(session.conversation(), choice).await
    }

    /// What `choice` picks among the options offered in the stored conversation `id`.
    pub(super) async fn chosen(
        &self,
        id: &ConversationId,
        choice: &Choice,
    ) -> Result<Chosen, ConversationError> {
        let offered = self.core.store.choices_offered(id, choice.seq).await?;
        let Some(offered) = offered else {
            return Err(ConversationError::NoChoices(choice.seq));
        };
        let (label, quote_from) = match &choice.passage {
            None => (NONE_OF_THESE.to_owned(), 0),
            Some(passage) => offered
                .options
                .iter()
                .find(|o| &o.passage == passage)
                .map(|o| (o.label.clone(), o.quote_from))
                .ok_or_else(|| ConversationError::NotOffered {
                    seq: choice.seq,
                    passage: cut(passage, 200).to_owned(),
                })?,
        };
        Ok(Chosen {
            offer_seq: choice.seq,
            passage: choice.passage.clone(),
            quote_from,
            label,
            question: offered.question,
        })
    }

    /// The turn after a choice was stored as the customer's message `asked`: the pick is
    /// recorded, and while the bot owns the conversation it answers with the chosen passage
    /// (a person who holds it sees the message, as any other).
    pub async fn after_choice(
        &self,
        asked: Asked,
        chosen: Chosen,
    ) -> Result<(), ConversationError> {
        let metrics = &self.core.metrics;
        let started = std::time::Instant::now();
        metrics.turns_in_flight.inc();
        let done = self.choose(&asked, &chosen).await;
        metrics.turns_in_flight.dec();
        let outcome = *done.as_ref().unwrap_or(&"failed");
        metrics.turn(outcome, started.elapsed().as_secs_f64());
        done.map(|_| ())
    }

    async fn choose(
        &self,
        asked: &Asked,
        chosen: &Chosen,
    ) -> Result<&'static str, ConversationError> {
        let core = &self.core;
        let id = asked.conversation();
        core.store
            .record_choice_picked(id, chosen.offer_seq, chosen.passage.as_deref(), now_ms())
            .await?;
        // The bot learns from the pick, here and on the other nodes, off the click's path (the
        // question is encoded; a failure loses the lesson, not the answer).
        core.tell_nodes(|| Signal::Pick {
            conversation: id.clone(),
            seq: chosen.offer_seq,
            question: chosen.question.clone(),
            passage: chosen.passage.clone(),
            quote_from: chosen.quote_from,
        });
        core.bot.learn_in_background(crate::bot::Press {
            conversation: id.to_string(),
            offer_seq: chosen.offer_seq,
            question: chosen.question.clone(),
            passage: chosen.passage.clone(),
            quote_from: chosen.quote_from,
        });
        let mut state = asked.stored().state;
        if state == State::Resolved {
            state = core.back_to_bot(id).await?;
        }
        if state != State::Bot {
            core.queue.customer_wrote(id, chosen.label(), now_ms());
            core.tell_queue_changes();
            return Ok("to_person");
        }
        core.bot_typing(id, true);
        let reply = core
            .bot
            .answer_chosen(chosen.passage.as_deref(), chosen.quote_from);
        core.send_reply(id, asked.stored().seq, &chosen.question, &reply, &mut None)
            .await?;
        Ok(reply.outcome.as_str())
    }
}
