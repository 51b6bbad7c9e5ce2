//! One customer turn after the message is stored: understood once, then answered by whoever owns
//! the conversation. The bot answers while it owns it, unless the escalation policy hands the
//! conversation to a person first; otherwise the message waits for a person.

use std::net::IpAddr;

use super::customer::Stored;
use super::handover::Asker;
use super::session::Session;
use super::{message, status, ConversationError, Conversations, Core};
use crate::bot::{passage_id, Outcome, Reply};
use crate::clock::now_ms;
use crate::escalation::{BotView, Decision, History};
use crate::ids::ConversationId;
use crate::nlu::{Analysis, Understanding};
use crate::protocol::customer::{Choice, Sender, ServerFrame, State, Visitor};
use crate::store::{Appended, NewBotTurn, OfferedOption, RowWrite, Store};

/// A stored customer message waiting for its turn, with what the turn needs of the socket's
/// session, owned: the turn runs apart from the socket that read the message, so the socket goes
/// on reading and relaying while the models and the bot work.
#[derive(Debug, Clone)]
pub struct Asked {
    id: ConversationId,
    customer: Option<String>,
    /// The client's address, for the queue's per-address cap; not known after a restart.
    origin: Option<IpAddr>,
    stored: Stored,
    text: String,
    /// When the message was stored (Unix ms): the turn may hand the conversation over only if the
    /// bot has owned it since.
    at: i64,
}

impl Asked {
    /// The message `stored` (its `text`) from the customer of `session`.
    pub fn new(session: &Session, stored: &Stored, text: &str) -> Self {
        Self {
            id: session.conversation().clone(),
            customer: session.customer_name().map(String::from),
            origin: Some(session.origin()),
            stored: stored.clone(),
            text: text.to_owned(),
            at: now_ms(),
        }
    }

    /// The conversation.
    pub fn conversation(&self) -> &ConversationId {
        &self.id
    }

    /// The stored message.
    pub(super) fn stored(&self) -> &Stored {
        &self.stored
    }
}

impl Conversations {
    /// Lets whoever owns the conversation respond to the customer message `asked`. The message
    /// is understood once (the `Understand` seam); what was understood is stored for the agent's
    /// view, goes to the escalation policy, and its embedding to the bot's retrieval.
    ///
    /// While a person holds the chat the bot stays silent, and the understanding (the upset
    /// signal in the agent's view) is best effort: when [`TURNS_IN_FLIGHT`] turns are already
    /// waiting on the models it is skipped rather than queued, so a busy desk never builds up a
    /// backlog behind the encoder.
    pub async fn after_message(&self, asked: Asked) -> Result<(), ConversationError> {
        let metrics = &self.core.metrics;
        let mut laps = Laps::new(metrics);
        metrics.turns_in_flight.inc();
        let done = self.turn(&asked, &mut laps).await;
        metrics.turns_in_flight.dec();
        let outcome = *done.as_ref().unwrap_or(&"failed");
        let seconds = laps.started.elapsed().as_secs_f64();
        metrics.turn(outcome, seconds);
        if seconds >= SLOW_TURN_SECONDS {
            let unlogged = self.core.slow_turns.seen();
            if let Some(unlogged) = unlogged {
                tracing::warn!(conversation = %asked.id, outcome, ms = (seconds * 1e3) as u64, phases = %laps, unlogged, "a slow turn (and `unlogged` more since the last one logged)");
            }
        }
        done.map(|_| ())
    }

    /// The turn itself; says what came of it (for the metrics).
    async fn turn(
        &self,
        asked: &Asked,
        laps: &mut Laps<'_>,
    ) -> Result<&'static str, ConversationError> {
        let core = &self.core;
        let Asked {
            id, stored, text, ..
        } = asked;
        let mut state = stored.state;
        if state == State::Resolved {
            state = core.back_to_bot(id).await?;
        }
        let _permit = if state == State::Bot {
            core.turns.acquire().await.ok()
        } else {
            core.queue.customer_wrote(id, text, now_ms());
            core.tell_queue_changes();
            match core.turns.try_acquire() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    tracing::debug!(conversation = %id, "busy: no understanding for a message to a person");
                    return Ok("skipped");
                }
            }
        };
        laps.lap("slot");
        let understanding = std::time::Instant::now();
        // Read with misspelt words corrected against the knowledge base, its cues as written
        // (stored as written).
        let corrected = core.bot.kb().correct(text);
        let analysis = core.understand.understand_corrected(text, &corrected).await;
        let seconds = understanding.elapsed().as_secs_f64();
        core.metrics.understand_seconds.observe(seconds);
        laps.lap("understand");
        // What was understood is stored with the bot's reply (one commit), or alone before a
        // hand-off (its context packet shows it) or when a person has the chat.
        let mut signals = analysis.as_ref().ok().map(|analysis| {
            let understood = serde_json::to_string(&analysis.understanding).unwrap_or_default();
            Store::turn_signals_row(id, stored.seq, &understood, now_ms())
        });
        if state != State::Bot {
            // A person has the chat: it goes on without the models if they failed.
            if let Err(e) = &analysis {
                tracing::error!(conversation = %id, "understanding a message failed: {e}");
            }
            core.write_signals(signals.take()).await?;
            laps.lap("signals");
            return Ok("to_person");
        }
        let analysis = analysis?;
        let done = self.answer_turn(asked, &analysis, &mut signals, laps).await;
        if done.is_err() {
            // Stored all the same, as far as the store allows: a person asked for next sees it.
            if let Err(e) = core.write_signals(signals.take()).await {
                tracing::warn!(conversation = %id, "what was understood of a message could not be stored: {e}");
            }
        }
        done
    }

    /// The rest of a turn the bot owns: the policy, the answer, the reply. `signals` (what was
    /// understood, not stored yet) is taken when it is stored.
    async fn answer_turn(
        &self,
        asked: &Asked,
        analysis: &Analysis,
        signals: &mut Option<RowWrite>,
        laps: &mut Laps<'_>,
    ) -> Result<&'static str, ConversationError> {
        let core = &self.core;
        let Asked {
            id, stored, text, ..
        } = asked;
        let history = core.history(id, stored.seq).await?;
        laps.lap("history");
        let before = core
            .policy
            .before_bot(text, &analysis.understanding, &history);
        if before.escalate {
            core.write_signals(signals.take()).await?;
            if core.hand_over(asked, before.clone()).await? {
                laps.lap("hand_over");
                return Ok("escalated");
            }
        }
        core.bot_typing(id, true);
        let context = crate::bot::Context {
            previous_question: history.last_question.clone(),
            thread: history.thread.clone(),
            previous_article: history.last_article.clone(),
        };
        let reply = match core.bot.answer_in(text, analysis, &context).await {
            Ok(reply) => reply,
            Err(e) => {
                core.bot_typing(id, false);
                return Err(e.into());
            }
        };
        laps.lap("answer");
        let mut view = core.bot_view(&reply);
        if let (true, Some(last)) = (
            core.policy.may_be_rephrase(text, &history, &view),
            history.last_question.as_deref(),
        ) {
            // The same article again: the same question asked again, or another one it answers?
            // One more encoder call, on this rare path only.
            match core.bot.kb().embed_query(last).await {
                Ok(previous) => {
                    view.question_similarity =
                        Some(crate::nlu::cosine(&analysis.embedding, &previous));
                }
                Err(e) => {
                    tracing::warn!(conversation = %id, "the previous question could not be compared: {e}");
                }
            }
        }
        let after = core
            .policy
            .after_bot(text, &analysis.understanding, &history, &view);
        if after.escalate {
            core.write_signals(signals.take()).await?;
        }
        if after.escalate && core.hand_over(asked, before.merge(after)).await? {
            // The bot looked and a person takes over instead: editors see the question among
            // the gaps, with the article the bot would have answered from, if any.
            core.bot_typing(id, false);
            core.record_turn(id, stored.seq, text, &reply, view.article, true)
                .await?;
            laps.lap("hand_over");
            return Ok("escalated");
        }
        core.send_reply(id, stored.seq, text, &reply, signals)
            .await?;
        laps.lap("reply");
        Ok(reply.outcome.as_str())
    }
}

/// The options a "Which of these is it?" reply's buttons stand for.
fn offered_options(reply: &Reply) -> Vec<OfferedOption> {
    reply
        .quick_replies
        .iter()
        .filter_map(|q| {
            let passage = q.choice.as_ref()?.passage.clone()?;
            let quote_from = reply
                .candidates
                .iter()
                .find(|p| passage_id(&p.path, &p.anchor) == passage)
                .map_or(0, |p| p.quote_from);
            Some(OfferedOption {
                passage,
                label: q.label.clone(),
                quote_from,
            })
        })
        .collect()
}

/// A turn this slow is logged with where its time went, at most once a second.
const SLOW_TURN_SECONDS: f64 = 0.5;

/// How often slow turns are logged: one line a second at most, under an overload too.
#[derive(Debug, Default)]
pub(super) struct SlowTurns {
    /// When the last line was written (Unix ms).
    logged_at: std::sync::atomic::AtomicI64,
    /// Slow turns since then that wrote no line.
    unlogged: std::sync::atomic::AtomicU64,
}

impl SlowTurns {
    /// A slow turn happened: `Some(slow turns not logged since the last line)` if this one is
    /// to be logged.
    fn seen(&self) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        let now = now_ms();
        let last = self.logged_at.load(Relaxed);
        if now - last < 1_000
            || self
                .logged_at
                .compare_exchange(last, now, Relaxed, Relaxed)
                .is_err()
        {
            self.unlogged.fetch_add(1, Relaxed);
            return None;
        }
        Some(self.unlogged.swap(0, Relaxed))
    }
}

/// A turn's steps timed one after the other: each goes to the phase histogram, and a slow turn's
/// log line lists them.
struct Laps<'a> {
    metrics: &'a crate::metrics::Metrics,
    started: std::time::Instant,
    last: std::time::Instant,
    spent: Vec<(&'static str, f64)>,
}

impl<'a> Laps<'a> {
    fn new(metrics: &'a crate::metrics::Metrics) -> Self {
        let now = std::time::Instant::now();
        Self {
            metrics,
            started: now,
            last: now,
            spent: Vec::with_capacity(7),
        }
    }

    /// The step `phase` ended now.
    fn lap(&mut self, phase: &'static str) {
        let now = std::time::Instant::now();
        let seconds = (now - self.last).as_secs_f64();
        self.last = now;
        self.metrics
            .turn_phase_seconds
            .with_label_values(&[phase])
            .observe(seconds);
        self.spent.push((phase, seconds));
    }
}

impl std::fmt::Display for Laps<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (phase, seconds)) in self.spent.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(f, "{sep}{phase}={:.1}ms", seconds * 1e3)?;
        }
        Ok(())
    }
}

impl Core {
    /// A resolved conversation goes back to the bot with the customer's next message.
    pub(super) async fn back_to_bot(
        &self,
        id: &ConversationId,
    ) -> Result<State, ConversationError> {
        let _guard = self.lock(id).await;
        let state = self.state(id).await?;
        if state != State::Resolved {
            return Ok(state);
        }
        // The status frame sets the state too.
        self.append_status(id, status(State::Bot)).await?;
        Ok(State::Bot)
    }

    /// Escalates for `decision`; false when the queue is full (the bot answers instead, and the
    /// customer can still ask for a person).
    async fn hand_over(
        &self,
        asked: &Asked,
        decision: Decision,
    ) -> Result<bool, ConversationError> {
        let id = &asked.id;
        match self
            .escalate(
                id,
                decision,
                asked.customer.as_deref(),
                asked.origin,
                Asker::BotSince(asked.at),
            )
            .await
        {
            Ok(()) => Ok(true),
            Err(ConversationError::QueueFull(full)) => {
                tracing::warn!(conversation = %id, ?full, "the policy would hand over, but the queue is full");
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    fn bot_view<'a>(&self, reply: &'a Reply) -> BotView<'a> {
        let answered = reply.outcome == Outcome::Answered;
        BotView {
            answered,
            dont_know: reply.outcome == Outcome::DontKnow,
            confidence: reply.confidence,
            threshold: self.bot.settings().answer_threshold,
            article: answered.then(|| reply.article()).flatten(),
            in_context: reply.in_context,
            question_similarity: None,
        }
    }

    /// Stores and sends the bot's reply, unless a person took the conversation meanwhile. In the
    /// reply's commit: what was understood of the question (`signals`, if not stored yet), the
    /// bot's turn for the editors' gaps report, and the options of a "Which of these is it?"
    /// message (what a choice is checked against, and what editors see customers pick).
    pub(super) async fn send_reply(
        &self,
        id: &ConversationId,
        question_seq: i64,
        question: &str,
        reply: &Reply,
        signals: &mut Option<RowWrite>,
    ) -> Result<(), ConversationError> {
        let _guard = self.lock(id).await;
        if self.state(id).await? != State::Bot {
            self.bot_typing(id, false);
            return self.write_signals(signals.take()).await;
        }
        // The bot's own words, sources and buttons, whatever the outcome: a new outcome needs
        // nothing here.
        let mut frame = message(Sender::Bot, &reply.text);
        frame.sources = reply.sources.clone();
        frame.quick_replies = reply.quick_replies.clone();
        let mut beside: Vec<crate::store::Beside> = Vec::with_capacity(3);
        if let Some(row) = signals.clone() {
            beside.push(Box::new(move |_| row.clone()));
        }
        let now = now_ms();
        let (conversation, asked) = (id.to_string(), question.to_owned());
        let (outcome, confidence) = (reply.outcome.as_str(), reply.confidence);
        let article = self.bot_view(reply).article.map(String::from);
        beside.push(Box::new(move |seq| {
            let turn = NewBotTurn {
                seq,
                question: &asked,
                outcome,
                confidence,
                article: article.as_deref(),
                handed_off: false,
            };
            Store::bot_turn_row(&conversation, turn, now)
        }));
        if reply.outcome == Outcome::Clarify {
            let options = offered_options(reply);
            let (conversation, asked) = (id.to_string(), question.to_owned());
            beside.push(Box::new(move |seq| {
                Store::choices_row(&conversation, seq, &asked, &options, now)
            }));
        }
        let event = crate::store::NewEvent {
            sender: Sender::Bot.as_str(),
            client_id: None,
            seen: None,
            text: Some(reply.text.clone()),
            state: None,
            responds_to: None,
            body: Box::new(move |seq| {
                let frame = crate::protocol::customer::MessageFrame {
                    seq,
                    ..frame.clone()
                };
                crate::protocol::to_json(&ServerFrame::Message(frame))
            }),
            beside,
        };
        let appended = self.store_frame(id, event).await?;
        // Stored with the reply (kept for the caller to store alone if the reply was not).
        *signals = None;
        let Appended::New { seq, frame, .. } = appended else {
            return Ok(());
        };
        self.metrics.relayed.with_label_values(&["bot"]).inc();
        tracing::debug!(conversation = %id, question_seq, seq, outcome = reply.outcome.as_str(), reason = %reply.reason, intent = ?reply.intent_guess, "bot turn");
        self.publish(id, &frame, Some(seq), None);
        Ok(())
    }

    /// Stores what was understood of a question, if it is not stored yet.
    async fn write_signals(&self, signals: Option<RowWrite>) -> Result<(), ConversationError> {
        if let Some(row) = signals {
            self.store.write_alone(row).await?;
        }
        Ok(())
    }

    /// Records what the bot did with a question, for the editors' gaps report.
    async fn record_turn(
        &self,
        id: &ConversationId,
        seq: i64,
        question: &str,
        reply: &Reply,
        article: Option<&str>,
        handed_off: bool,
    ) -> Result<(), ConversationError> {
        let turn = NewBotTurn {
            seq,
            question,
            outcome: reply.outcome.as_str(),
            confidence: reply.confidence,
            article,
            handed_off,
        };
        Ok(self.store.record_bot_turn(id, turn, now_ms()).await?)
    }

    /// Shows (or hides) "the bot is typing" on the conversation's sockets.
    pub(super) fn bot_typing(&self, id: &ConversationId, on: bool) {
        let frame = ServerFrame::Typing {
            from: Sender::Bot,
            on,
        };
        self.publish_ephemeral(id, &frame, None);
    }

    /// What the conversation looked like before the customer message at `seq`, since its current
    /// stretch with the bot began: a chat a person resolved starts over when it comes back to the
    /// bot (the readings, asks, failed answers and questions before the person are not this
    /// stretch's; the bot's context for a follow-up starts over too).
    async fn history(&self, id: &ConversationId, seq: i64) -> Result<History, ConversationError> {
        let start = self.store.bot_stretch_start(id).await?;
        let earlier: Vec<Understanding> = self
            .store
            .turn_signals_of(id)
            .await?
            .into_iter()
            .filter(|(s, _)| (start..seq).contains(s))
            .filter_map(|(_, u)| serde_json::from_value::<Understanding>(u).ok())
            .collect();
        let mut turns = self.store.bot_turns_of(id).await?;
        turns.retain(|t| t.seq >= start);
        // Stored outcomes are the bot's names for them (`Outcome::as_str`).
        let is = |t: &crate::store::BotTurnRow, o: Outcome| t.outcome == o.as_str();
        let unanswered_streak = turns
            .iter()
            .rev()
            .take_while(|t| is(t, Outcome::DontKnow))
            .count();
        let failed_answers = turns
            .iter()
            .filter(|t| is(t, Outcome::DontKnow) || t.helpful == Some(false))
            .count();
        let last = turns.last();
        // The questions since the last small talk or hand-off: the thread a follow-up continues.
        let mut since: Vec<&str> = turns
            .iter()
            .rev()
            .take_while(|t| !is(t, Outcome::SmallTalk) && !t.handed_off)
            .map(|t| t.question.as_str())
            .collect();
        since.reverse();
        Ok(History {
            upsets: earlier.iter().map(|u| u.upset).collect(),
            person_asks: earlier.iter().map(|u| u.asks_for_person).collect(),
            failed_answers,
            unanswered_streak,
            last_article: last
                .filter(|t| is(t, Outcome::Answered))
                .and_then(|t| t.article.clone()),
            last_helpful: last.and_then(|t| t.helpful),
            last_question: last
                .filter(|t| !is(t, Outcome::SmallTalk))
                .map(|t| t.question.clone()),
            thread: crate::bot::thread(&since)
                .into_iter()
                .map(str::to_owned)
                .collect(),
        })
    }
}

/// How far back a start looks for messages whose turn a stop cut short: a customer who wrote
/// longer ago than this has most likely left, and an answer out of the blue would puzzle them.
pub const UNANSWERED_WITHIN_MS: i64 = 10 * 60 * 1000;

/// The store's lease a node holds while it answers what a stop left unanswered.
const UNANSWERED_LEASE: &str = "answer-unanswered";

/// How long that lease lasts if its node dies while holding it.
const UNANSWERED_LEASE_MS: i64 = 5 * 60 * 1000;

impl Conversations {
    /// Answers the customer messages stored between `since` and `until` (Unix ms) that no turn
    /// answered: the turns a stop (a crash, a `kill -9`, a restart while they ran) cut short. Each
    /// is answered as if it had just come, unless something was stored after it meanwhile; the
    /// customer gets the answer live or on resuming. Returns how many were answered.
    ///
    /// With several nodes only one at a time does it (a lease in the store):
    /// nodes started together would otherwise each answer the same messages.
    pub async fn answer_unanswered(
        &self,
        since: i64,
        until: i64,
    ) -> Result<usize, ConversationError> {
        let store = &self.core.store;
        let node = self.core.cluster.as_ref().map(|bus| bus.node().to_owned());
        if let Some(node) = &node {
            if !store
                .take_lease(UNANSWERED_LEASE, node, now_ms(), UNANSWERED_LEASE_MS)
                .await?
            {
                tracing::info!("another node is answering the messages a stop left unanswered");
                return Ok(0);
            }
        }
        let answered = self.answer_each_unanswered(since, until).await;
        if let Some(node) = &node {
            store.release_lease(UNANSWERED_LEASE, node).await?;
        }
        answered
    }

    async fn answer_each_unanswered(
        &self,
        since: i64,
        until: i64,
    ) -> Result<usize, ConversationError> {
        let rows = self.core.store.unanswered_messages(since, until).await?;
        let mut answered = 0;
        for row in rows {
            let id = ConversationId::from(row.conversation_id);
            let latest = self.core.store.conversation_by_id(&id).await?;
            if latest.is_none_or(|c| c.last_seq != row.seq) {
                continue; // answered, or written to again, meanwhile
            }
            let customer = serde_json::from_str::<Visitor>(&row.visitor)
                .ok()
                .and_then(|v| v.name);
            // A pressed choice button is answered with the passage it named, as it would have been.
            let choice = serde_json::from_str::<serde_json::Value>(&row.body)
                .ok()
                .and_then(|body| serde_json::from_value::<Choice>(body["choice"].clone()).ok());
            let chosen = match &choice {
                Some(choice) => match self.chosen(&id, choice).await {
                    Ok(chosen) => Some(chosen),
                    Err(e) => {
                        tracing::warn!(conversation = %id, "a choice a stop left unanswered no longer fits its offer: {e}");
                        continue;
                    }
                },
                None => None,
            };
            let asked = Asked {
                id: id.clone(),
                customer,
                origin: None,
                stored: Stored {
                    seq: row.seq,
                    duplicate: false,
                    state: State::parse(&row.state),
                },
                text: row.text,
                at: now_ms(),
            };
            let done = match chosen {
                Some(chosen) => self.after_choice(asked, chosen).await,
                None => self.after_message(asked).await,
            };
            match done {
                Ok(()) => answered += 1,
                Err(e) => {
                    tracing::warn!(conversation = %id, "a message left unanswered by the stop could not be answered: {e}")
                }
            }
        }
        Ok(answered)
    }
}
