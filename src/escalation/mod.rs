//! The escalation policy: whether a conversation should leave the bot for a person, and why.
//!
//! It takes what was understood of a customer message ([`Understanding`], from the language
//! understanding seam [`Understand`]), the conversation's history and, after the bot has looked for
//! an answer, what the bot found. Every escalation carries its reasons with the numbers behind them,
//! so agents, `frontdesk ask` and `/api/explain` can show why. Thresholds come from
//! [`EscalationSettings`]; per-intent rules (`team`, `always_human`) from the intents file through
//! the [`IntentMatch`](crate::nlu::IntentMatch). No I/O here: the policy is a pure function.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

use crate::nlu::{Analysis, Encoder, IntentMatch, Nlu, NluError, Understanding};
use crate::settings::EscalationSettings;

pub mod request;

pub use request::Request;

pub use crate::nlu::HUMAN_REQUEST_INTENT;
/// The seam where language understanding plugs into conversations: one call per customer
/// message, whose [`Analysis`] (the understanding for this policy, the embedding for the bot's
/// retrieval) is passed down, so a message is encoded once.
///
/// `startup` passes the trained models ([`Nlu`]); tests pass [`Scripted`].
pub trait Understand: Send + Sync + 'static {
    /// What was understood of `text`.
    fn understand<'a>(
        &'a self,
        text: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Analysis, NluError>> + Send + 'a>>;

    /// What was understood of a message `written` so, whose misspelt words are `corrected`
    /// against the knowledge base: the models read the corrected text, and the trained models
    /// read the surface cues as written ([`Nlu::analyse_corrected`]). By default, the corrected.
    fn understand_corrected<'a>(
        &'a self,
        written: &'a str,
        corrected: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Analysis, NluError>> + Send + 'a>> {
        let _ = written;
        self.understand(corrected)
    }
}

/// The trained models: intent classifier with out-of-scope rejection, and the upset detector.
impl Understand for Nlu {
    fn understand<'a>(
        &'a self,
        text: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Analysis, NluError>> + Send + 'a>> {
        Box::pin(self.analyse(text))
    }

    fn understand_corrected<'a>(
        &'a self,
        written: &'a str,
        corrected: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Analysis, NluError>> + Send + 'a>> {
        Box::pin(self.analyse_corrected(written, corrected))
    }
}

/// Understanding written by a plain function (tests, rules), on the real embedding of the text,
/// so the bot still finds its passages.
pub struct Scripted<F> {
    encoder: Encoder,
    script: F,
}

impl<F> Scripted<F>
where
    F: Fn(&str) -> Understanding + Send + Sync + 'static,
{
    /// Embeds with `encoder` and understands with `script`.
    pub fn new(encoder: Encoder, script: F) -> Self {
        Self { encoder, script }
    }
}

impl<F> Understand for Scripted<F>
where
    F: Fn(&str) -> Understanding + Send + Sync + 'static,
{
    fn understand<'a>(
        &'a self,
        text: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Analysis, NluError>> + Send + 'a>> {
        Box::pin(async move {
            let embedding = self.encoder.embed_one(text).await?;
            let understanding = (self.script)(text);
            let best_intent = understanding
                .intent
                .as_ref()
                .map(|i| (i.name.clone(), i.confidence))
                .unwrap_or_default();
            Ok(Analysis {
                understanding,
                best_intent,
                embedding,
            })
        })
    }
}

/// Why a conversation went to a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonKind {
    /// The customer asked for a person (button or words).
    HumanRequest,
    /// Upset above the threshold.
    Upset,
    /// Urgent: a deadline, something down right now.
    Urgent,
    /// Bot answers failed turn after turn and the customer is losing patience.
    RepeatedFailure,
    /// Upset rising over the last turns.
    UpsetRising,
    /// An intent configured to always reach a person.
    Sensitive,
    /// The bot could not place the question, turn after turn.
    OutOfScope,
    /// No confident passage, turn after turn.
    NoAnswer,
    /// "That didn't help", more than once.
    NegativeFeedback,
    /// The same question again right after the bot answered it.
    Rephrased,
    /// An agent handed it on.
    Transfer,
}

/// One reason, with the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    /// What kind.
    pub kind: ReasonKind,
    /// In words, with the numbers.
    pub detail: String,
    /// The measured value, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f32>,
    /// The threshold it was compared with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
}

impl Reason {
    fn new(kind: ReasonKind, detail: String, value: Option<f32>, threshold: Option<f32>) -> Self {
        Self {
            kind,
            detail,
            value,
            threshold,
        }
    }

    /// The customer pressed "Talk to a person".
    pub fn button() -> Self {
        Self::new(
            ReasonKind::HumanRequest,
            "the customer pressed \"Talk to a person\"".into(),
            None,
            None,
        )
    }
}

/// The policy's verdict on one turn.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Hand the conversation to a person.
    pub escalate: bool,
    /// Why (empty when it stays with the bot).
    pub reasons: Vec<Reason>,
    /// Queue priority (higher first).
    pub priority: i64,
    /// Team that should take it, from the intent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Every check made, triggered or not, in words (for `explain`).
    pub checked: Vec<String>,
}

impl Decision {
    /// Adds the reasons (and priority, team) of `other`.
    pub fn merge(mut self, other: Decision) -> Self {
        self.escalate |= other.escalate;
        self.reasons.extend(other.reasons);
        self.priority = self.priority.max(other.priority);
        self.team = self.team.or(other.team);
        self.checked.extend(other.checked);
        self
    }

    fn push(&mut self, reason: Reason) {
        self.escalate = true;
        self.reasons.push(reason);
    }
}

/// What the conversation looked like before this turn, since its current stretch with the bot
/// began (a chat that comes back to the bot after a person resolved it starts over).
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Upset scores of the earlier customer turns, oldest first.
    pub upsets: Vec<f32>,
    /// How much each earlier customer turn asked for a person (`asks_for_person`), oldest first.
    pub person_asks: Vec<f32>,
    /// Bot turns of this conversation that did not help: "I don't know", or an answer marked
    /// not helpful.
    pub failed_answers: usize,
    /// Bot turns just before this one that ended without an answer (`dont_know`), in a row.
    pub unanswered_streak: usize,
    /// The article the bot answered the previous question with, if it answered.
    pub last_article: Option<String>,
    /// Whether that answer was marked helpful.
    pub last_helpful: Option<bool>,
    /// The customer's previous question to the bot (not small talk): a follow-up ("and the box
    /// that already shipped?") is searched with it, and the "asked again" rule compares with it.
    pub last_question: Option<String>,
    /// The questions before that one that it built on, oldest first ([`crate::bot::thread`]),
    /// since the last small talk or hand-off: a follow-up is searched with them too.
    pub thread: Vec<String>,
}

/// What the bot found for this turn.
#[derive(Debug, Clone)]
pub struct BotView<'a> {
    /// It answered with a passage.
    pub answered: bool,
    /// It found nothing confident enough (an honest "I don't know").
    pub dont_know: bool,
    /// The confidence of its best passage.
    pub confidence: f32,
    /// The confidence needed to answer.
    pub threshold: f32,
    /// The article it answered with.
    pub article: Option<&'a str>,
    /// The question was searched together with the previous one (it continues it).
    pub in_context: bool,
    /// Cosine between this question's sentence embedding and the previous question's, when
    /// measured (only when the answer comes from the article that answered the previous one:
    /// [`Policy::may_be_rephrase`]). `None` (not measured, or the encoder failed) counts as the
    /// same question, as before the two were compared.
    pub question_similarity: Option<f32>,
}

/// The escalation policy. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    settings: EscalationSettings,
}

impl Policy {
    /// A policy with these thresholds.
    pub fn new(settings: EscalationSettings) -> Self {
        Self { settings }
    }

    /// Its thresholds.
    pub fn settings(&self) -> &EscalationSettings {
        &self.settings
    }

    /// Checks made before the bot looks for an answer to `text`: a request for a person, a
    /// sensitive intent, an upset customer. When these escalate, the bot does not answer at all.
    ///
    /// A sensitive intent (`always_human`, arriving set only when the classifier is confident of
    /// it for this message, at its calibrated threshold) hands the conversation over at once when
    /// the customer asks the company to act or reports an incident ([`request::read`]), or is
    /// impatient; a calm question on the topic is the knowledge base's to answer first, with the
    /// offer of a person, and `after_bot` hands it over if the base cannot answer it.
    pub fn before_bot(&self, text: &str, u: &Understanding, history: &History) -> Decision {
        let s = &self.settings;
        let mut d = Decision::default();
        if let Some(intent) = &u.intent {
            d.team = intent.team.clone();
            let confident = intent.confidence >= s.intent_confidence;
            // For human_request, `always_human` means the request is passed on.
            let asks = intent.name == HUMAN_REQUEST_INTENT;
            // The intent's own words are "request", "talk", "call": "how do I request a
            // wheelchair" is no request for a person unless the message names someone or the
            // person reading agrees.
            // ("thank you, your team was so helpful" names someone, to thank them.)
            let backed = (!u.thanks && crate::nlu::signals::names_someone(text))
                || u.asks_for_person >= s.upset_threshold / 2.0;
            if asks && intent.always_human && confident && !backed {
                let why = if u.thanks {
                    "the message thanks someone"
                } else {
                    "the message names no one to talk to"
                };
                d.checked.push(format!(
                    "intent human_request (confidence {:.2}), but {why} and the reading of asking for a person is {:.2} < {:.2}: not passed on as a request",
                    intent.confidence,
                    u.asks_for_person,
                    s.upset_threshold / 2.0
                ));
            } else if asks && intent.always_human && confident {
                d.push(Reason::new(
                    ReasonKind::HumanRequest,
                    format!(
                        "asked for a person (intent human_request, confidence {:.2} ≥ {:.2})",
                        intent.confidence,
                        intent.confident_at.max(s.intent_confidence)
                    ),
                    Some(intent.confidence),
                    Some(intent.confident_at.max(s.intent_confidence)),
                ));
            }
            let sensitive = intent.always_human && !asks && confident;
            let request = request::read(text);
            if sensitive && self.defers(text, u).is_some() {
                d.checked.push(format!(
                    "intent {} always goes to a person, but this calm message {}: the bot answers it, with the offer of a person, if the knowledge base can",
                    intent.name,
                    request.describe()
                ));
            } else if sensitive {
                let why = if request.needs_a_person() {
                    request.describe()
                } else {
                    format!(
                        "the customer is not calm (needs a person {:.2} ≥ {:.2})",
                        u.needs_person(),
                        self.bar(u).0 / 2.0
                    )
                };
                d.push(Reason::new(
                    ReasonKind::Sensitive,
                    format!(
                        "intent {} always goes to a person (confidence {:.2} ≥ {:.2}); the message {why}",
                        intent.name,
                        intent.confidence,
                        intent.confident_at.max(s.intent_confidence)
                    ),
                    Some(intent.confidence),
                    Some(intent.confident_at.max(s.intent_confidence)),
                ));
                d.priority += s.sensitive_priority;
            }
            d.checked.push(format!(
                "intent {} (confidence {:.2}, team {}, always_human {})",
                intent.name,
                intent.confidence,
                intent.team.as_deref().unwrap_or("-"),
                intent.always_human
            ));
        } else {
            d.checked.push("no intent recognised".into());
        }
        self.check_signals(u, history, &mut d);
        d
    }

    /// The sensitive intent whose hand-off waits for the bot's answer: the classifier is
    /// confident of an `always_human` intent (other than asking for a person), but the message
    /// only asks for information and the customer is calm.
    fn defers<'u>(&self, text: &str, u: &'u Understanding) -> Option<&'u IntentMatch> {
        let s = &self.settings;
        u.intent.as_ref().filter(|i| {
            i.always_human
                && i.name != HUMAN_REQUEST_INTENT
                && i.confidence >= s.intent_confidence
                && !request::read(text).needs_a_person()
                && u.needs_person() < self.bar(u).0 / 2.0
        })
    }

    /// The bar this message's need for a person is held to, and its name. With no cue in the
    /// message (or only "??", "still") the reading rests on the embedding alone: a calm fault
    /// report ("theres a puddle under the machine") must not pass on that, so the bar is higher.
    /// Half of it marks a customer who is not calm (impatient).
    /// The bar `u`'s strongest reading must reach to hand the chat over on its own: the threshold
    /// when a cue that is evidence backs it, the higher one without.
    pub fn reading_bar(&self, u: &Understanding) -> f32 {
        self.bar(u).0
    }

    fn bar(&self, u: &Understanding) -> (f32, &'static str) {
        let s = &self.settings;
        let evidence = u
            .upset_cues
            .iter()
            .any(|c| crate::nlu::signals::is_evidence(c));
        if evidence {
            (s.upset_threshold, "threshold")
        } else {
            (
                s.upset_threshold_without_cue.max(s.upset_threshold),
                "threshold without a cue",
            )
        }
    }

    /// Upset, urgent or asking for a person (this message, or rising over the conversation);
    /// asking again; answers failing while patience runs out.
    fn check_signals(&self, u: &Understanding, history: &History, d: &mut Decision) {
        let s = &self.settings;
        let cues = if u.upset_cues.is_empty() {
            String::new()
        } else {
            format!(" ({})", u.upset_cues.join(", "))
        };
        let need = u.needs_person();
        let parts = [
            (ReasonKind::Upset, "upset", u.upset),
            (ReasonKind::Urgent, "urgent", u.urgent),
            (
                ReasonKind::HumanRequest,
                "asks for a person",
                u.asks_for_person,
            ),
        ];
        let (kind, what, value) = parts
            .iter()
            .copied()
            .max_by(|a, b| a.2.total_cmp(&b.2))
            .unwrap_or(parts[0]);
        let summary = format!(
            "needs a person {need:.2} (upset {:.2}, urgent {:.2}, asks for a person {:.2}){cues}",
            u.upset, u.urgent, u.asks_for_person
        );
        if u.thanks {
            d.checked.push(
                "a message of thanks for something that went right, with no complaint or question in it: its upset reading is not counted".into(),
            );
        }
        let (bar, which) = self.bar(u);
        if need >= bar {
            if !d.reasons.iter().any(|r| r.kind == kind) {
                d.push(Reason::new(
                    kind,
                    format!("{what} {value:.2}: {summary} ≥ {which} {bar:.2}"),
                    Some(need),
                    Some(bar),
                ));
            }
            if kind != ReasonKind::HumanRequest {
                d.priority += s.upset_priority;
            }
            return;
        }
        d.checked.push(format!("{summary} < {which} {bar:.2}"));
        // Asked for a person before, and again now, each time too softly to pass on its own.
        let soft = s.upset_threshold / 2.0;
        let earlier_ask = history.person_asks.iter().copied().fold(0.0, f32::max);
        if u.asks_for_person >= soft && earlier_ask >= soft {
            d.push(Reason::new(
                ReasonKind::HumanRequest,
                format!(
                    "asked for a person again ({:.2}, earlier {earlier_ask:.2}; each ≥ {soft:.2})",
                    u.asks_for_person
                ),
                Some(u.asks_for_person),
                Some(soft),
            ));
            return;
        }
        // Answers keep failing and the customer's patience is going.
        if history.failed_answers >= s.unanswered_turns.max(1) && need >= soft {
            d.push(Reason::new(
                ReasonKind::RepeatedFailure,
                format!(
                    "{} bot answers did not help and the customer is losing patience ({summary} ≥ {soft:.2})",
                    history.failed_answers
                ),
                Some(need),
                Some(soft),
            ));
            d.priority += s.upset_priority;
            return;
        }
        let turns = s.rising_turns.max(2);
        let mut recent: Vec<f32> = history.upsets.clone();
        recent.push(u.upset);
        let window = &recent[recent.len().saturating_sub(turns)..];
        // A trend, not one jump: every step rises by a share of the rise asked for, so a calm
        // reading's noise (0.00 → 0.03) followed by one moderate reading below the bar is not
        // "rising" (that one reading is judged by the bar alone).
        let step = s.upset_rise / turns as f32;
        let rising = window.len() == turns && window.windows(2).all(|w| w[1] - w[0] >= step);
        let rise = window.last().unwrap_or(&0.0) - window.first().unwrap_or(&0.0);
        if rising && rise >= s.upset_rise && u.upset >= s.upset_rising_floor {
            d.push(Reason::new(
                ReasonKind::UpsetRising,
                format!(
                    "upset rising over {turns} turns ({}), up {rise:.2} ≥ {:.2}",
                    window
                        .iter()
                        .map(|x| format!("{x:.2}"))
                        .collect::<Vec<_>>()
                        .join(" → "),
                    s.upset_rise
                ),
                Some(rise),
                Some(s.upset_rise),
            ));
            d.priority += s.upset_priority;
        }
    }

    /// Checks made once the bot has looked for an answer to `text`: a sensitive question it could
    /// not answer, turn after turn without an answer, or the same question again right after an
    /// answer.
    pub fn after_bot(
        &self,
        text: &str,
        u: &Understanding,
        history: &History,
        bot: &BotView<'_>,
    ) -> Decision {
        let s = &self.settings;
        let mut d = Decision::default();
        // A sensitive question `before_bot` let through: answered (or articles offered to choose
        // from), with the offer of a person, or handed over when nothing fits.
        if let Some(intent) = self.defers(text, u) {
            if bot.dont_know {
                d.team = intent.team.clone();
                d.push(Reason::new(
                    ReasonKind::Sensitive,
                    format!(
                        "intent {} always goes to a person (confidence {:.2} ≥ {:.2}); the knowledge base did not answer the question",
                        intent.name,
                        intent.confidence,
                        intent.confident_at.max(s.intent_confidence)
                    ),
                    Some(intent.confidence),
                    Some(intent.confident_at.max(s.intent_confidence)),
                ));
                d.priority += s.sensitive_priority;
                return d;
            }
        }
        if bot.dont_know {
            let streak = history.unanswered_streak + 1;
            let needed = s.unanswered_turns.max(1);
            let (kind, what) = if u.out_of_scope {
                (ReasonKind::OutOfScope, "out of scope")
            } else {
                (ReasonKind::NoAnswer, "no confident passage")
            };
            // Sooner when the customer is getting impatient: two in a row then.
            let soft = self.bar(u).0 / 2.0;
            let impatient = u.needs_person() >= soft;
            let needed = if impatient { needed.min(2) } else { needed };
            let detail = format!(
                "{what} {streak} turn(s) in a row (need {needed}{}); best passage confidence {:.2} < {:.2}",
                if impatient { ", customer impatient" } else { "" },
                bot.confidence, bot.threshold
            );
            if streak >= needed {
                d.push(Reason::new(
                    kind,
                    detail,
                    Some(bot.confidence),
                    Some(bot.threshold),
                ));
            } else {
                d.checked.push(detail);
            }
        } else if let (true, Some(article)) =
            (self.may_be_rephrase(text, history, bot), bot.article)
        {
            // Another question the same article answers ("how long does approval take" after
            // "is my university email a problem") is no sign the first answer failed: a
            // rephrase asks the same thing.
            let same_question = bot
                .question_similarity
                .is_none_or(|similarity| similarity >= s.rephrase_similarity);
            if same_question {
                let bar = s.rephrase_similarity;
                let similar = bot
                    .question_similarity
                    .map(|q| format!(", the same question: similarity {q:.2} ≥ {bar:.2}"))
                    .unwrap_or_default();
                d.push(Reason::new(
                    ReasonKind::Rephrased,
                    format!(
                        "asked again after the answer from {article} (confidence {:.2}{similar}); it did not help",
                        bot.confidence,
                    ),
                    Some(bot.confidence),
                    None,
                ));
            }
        }
        d
    }

    /// Whether this turn could be the previous question asked again: the answer comes from the
    /// article that answered it, which was not marked helpful, and the question neither builds on
    /// it (a follow-up such as "and the box already on its way?" is often answered by another
    /// section of the same article) nor found the article only together with it. Then how close
    /// the two questions are decides
    /// ([`BotView::question_similarity`], `escalation.rephrase_similarity`).
    pub fn may_be_rephrase(&self, text: &str, history: &History, bot: &BotView<'_>) -> bool {
        bot.answered
            && bot.article.is_some()
            && bot.article == history.last_article.as_deref()
            && history.last_helpful != Some(true)
            && !request::follow_up(text)
            && !bot.in_context
    }

    /// Checks made when the customer says an answer did not help.
    pub fn on_feedback(&self, negatives: usize) -> Decision {
        let needed = self.settings.negative_feedback.max(1);
        let mut d = Decision::default();
        let detail = format!("{negatives} answer(s) marked not helpful (need {needed})");
        if negatives >= needed {
            d.push(Reason::new(
                ReasonKind::NegativeFeedback,
                detail,
                Some(negatives as f32),
                Some(needed as f32),
            ));
        } else {
            d.checked.push(detail);
        }
        d
    }
}

/// The decision for one message on its own (no history), as `frontdesk ask` and `/api/explain`
/// show it.
pub fn explain(
    policy: &Policy,
    question: &str,
    understanding: &Understanding,
    reply: &crate::bot::Reply,
    answer_threshold: f32,
) -> Decision {
    use crate::bot::Outcome;
    let history = History::default();
    let before = policy.before_bot(question, understanding, &history);
    let view = BotView {
        answered: reply.outcome == Outcome::Answered,
        dont_know: reply.outcome == Outcome::DontKnow,
        confidence: reply.confidence,
        threshold: answer_threshold,
        article: None,
        in_context: reply.in_context,
        question_similarity: None,
    };
    let after = policy.after_bot(question, understanding, &history, &view);
    before.merge(after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nlu::IntentMatch;

    fn intent(name: &str, confidence: f32, team: &str, always_human: bool) -> Understanding {
        Understanding {
            intent: Some(IntentMatch {
                name: name.into(),
                confidence,
                team: Some(team.into()),
                always_human,
                confident_at: 0.5,
            }),
            ..Default::default()
        }
    }

    fn kinds(d: &Decision) -> Vec<ReasonKind> {
        d.reasons.iter().map(|r| r.kind).collect()
    }

    #[test]
    fn an_upset_customer_goes_to_a_person_with_the_score_and_threshold() {
        let policy = Policy::default();
        let u = Understanding {
            upset: 0.93,
            upset_cues: vec!["all caps".into()],
            ..Default::default()
        };
        let d = policy.before_bot("", &u, &History::default());
        assert!(d.escalate);
        assert_eq!(kinds(&d), [ReasonKind::Upset]);
        assert_eq!(d.reasons[0].value, Some(0.93));
        assert_eq!(
            d.reasons[0].threshold,
            Some(EscalationSettings::default().upset_threshold)
        );
        assert!(d.reasons[0].detail.contains("all caps"));
        assert!(d.priority > 0);
    }

    #[test]
    fn rising_upset_escalates_before_the_threshold() {
        let policy = Policy::default();
        let history = History {
            upsets: vec![0.1, 0.3],
            ..Default::default()
        };
        let u = Understanding {
            upset: 0.45,
            ..Default::default()
        };
        assert_eq!(
            kinds(&policy.before_bot("", &u, &history)),
            [ReasonKind::UpsetRising]
        );
        let flat = History {
            upsets: vec![0.5, 0.3],
            ..Default::default()
        };
        assert!(!policy.before_bot("", &u, &flat).escalate);
    }

    #[test]
    fn one_jump_after_calm_turns_is_not_a_rising_upset() {
        // "hi there" 0.00, "quick one" 0.03, then a chatty "probably never haha" read at 0.51:
        // one reading below the bar, not a customer growing upset over three turns.
        let policy = Policy::default();
        let history = History {
            upsets: vec![0.0, 0.03],
            ..Default::default()
        };
        let u = Understanding {
            upset: 0.51,
            ..Default::default()
        };
        assert!(!policy.before_bot("", &u, &history).escalate);
    }

    #[test]
    fn a_sensitive_hand_off_shows_the_intents_own_calibrated_threshold() {
        // The agent reads why the chat came over: the bar the intent passed is its calibrated
        // one, not the floor every intent shares.
        let mut u = intent("refund", 0.9, "billing", true);
        if let Some(i) = u.intent.as_mut() {
            i.confident_at = 0.8;
        }
        let d = Policy::default().before_bot("refund me now", &u, &History::default());
        let reason = &d.reasons[0];
        assert_eq!(reason.threshold, Some(0.8));
        assert!(reason.detail.contains("≥ 0.80"), "{}", reason.detail);
    }

    #[test]
    fn sensitive_intents_escalate_at_once_to_their_team() {
        let policy = Policy::default();
        let refund = "I want my money back for the grinder";
        let d = policy.before_bot(
            refund,
            &intent("refund", 0.9, "billing", true),
            &History::default(),
        );
        assert_eq!(kinds(&d), [ReasonKind::Sensitive]);
        assert_eq!(d.team.as_deref(), Some("billing"));
        assert!(d.reasons[0].detail.contains("asks the company to act"));
        let unsure = policy.before_bot(
            refund,
            &intent("refund", 0.3, "billing", true),
            &History::default(),
        );
        assert!(
            !unsure.escalate,
            "a guess below the confidence bar is not enough"
        );
        // "can i talk to someone": the intent, and the message names someone to talk to.
        let someone = intent("human_request", 0.8, "general", true);
        let asked = policy.before_bot("can i talk to someone", &someone, &History::default());
        assert_eq!(kinds(&asked), [ReasonKind::HumanRequest]);
        // "can this be sorted out properly now": no one named, the reading of asking for a
        // person decides: at half the threshold it agrees, just under it does not.
        let half = EscalationSettings::default().upset_threshold / 2.0;
        let text = "can this be sorted out properly now";
        let mut agrees = intent("human_request", 0.8, "general", true);
        agrees.asks_for_person = half;
        let asked = policy.before_bot(text, &agrees, &History::default());
        assert_eq!(kinds(&asked), [ReasonKind::HumanRequest]);
        let mut under = intent("human_request", 0.8, "general", true);
        under.asks_for_person = half - 0.01;
        assert!(
            !policy
                .before_bot(text, &under, &History::default())
                .escalate
        );
        // "how do I request a wheelchair at the airport": the intent's word, and nothing else.
        let wheelchair = policy.before_bot(
            "how do I request a wheelchair at the airport",
            &intent("human_request", 0.8, "general", true),
            &History::default(),
        );
        assert!(!wheelchair.escalate, "{:?}", wheelchair.reasons);
        assert!(
            wheelchair
                .checked
                .iter()
                .any(|c| c.contains("not passed on as a request")),
            "{:?}",
            wheelchair.checked
        );
        // The classifier was not confident enough of it for this message (always_human unset).
        let unsure = policy.before_bot(
            "",
            &intent("human_request", 0.6, "general", false),
            &History::default(),
        );
        assert!(!unsure.escalate);
        // "How can I talk to a person?" is a request, not a how-to question to answer first.
        let mut how = intent("human_request", 0.9, "general", true);
        how.how_to = true;
        assert_eq!(
            kinds(&policy.before_bot("how can i talk to a person?", &how, &History::default())),
            [ReasonKind::HumanRequest]
        );
    }

    #[test]
    fn the_third_unanswered_turn_in_a_row_escalates_and_the_second_does_not() {
        let policy = Policy::default();
        let bot = BotView {
            answered: false,
            dont_know: true,
            confidence: 0.2,
            threshold: 0.4,
            article: None,
            in_context: false,
            question_similarity: None,
        };
        let u = Understanding {
            out_of_scope: true,
            ..Default::default()
        };
        assert!(!policy.after_bot("", &u, &History::default(), &bot).escalate);
        let second = History {
            unanswered_streak: 1,
            ..Default::default()
        };
        assert!(!policy.after_bot("", &u, &second, &bot).escalate);
        let history = History {
            unanswered_streak: 2,
            ..Default::default()
        };
        let d = policy.after_bot("", &u, &history, &bot);
        assert_eq!(kinds(&d), [ReasonKind::OutOfScope]);
        assert_eq!(d.reasons[0].value, Some(0.2));
    }

    #[test]
    fn the_same_article_again_after_an_unconfirmed_answer_counts_as_a_rephrase() {
        let policy = Policy::default();
        let bot = BotView {
            answered: true,
            dont_know: false,
            confidence: 0.7,
            threshold: 0.4,
            article: Some("billing/refunds.md"),
            in_context: false,
            question_similarity: None,
        };
        let history = History {
            last_article: Some("billing/refunds.md".into()),
            ..Default::default()
        };
        let u = Understanding::default();
        assert_eq!(
            kinds(&policy.after_bot("", &u, &history, &bot)),
            [ReasonKind::Rephrased]
        );
        // A follow-up the same article answers again is not a rephrase.
        assert!(
            !policy
                .after_bot(
                    "and what about orders already on the way?",
                    &u,
                    &history,
                    &bot
                )
                .escalate
        );
        // Nor is a question that found the article only together with the previous one.
        let continued = BotView {
            in_context: true,
            ..bot.clone()
        };
        assert!(
            !policy
                .after_bot(
                    "how do i change where my boxes go",
                    &u,
                    &history,
                    &continued
                )
                .escalate
        );
        // Another question the same article answers is not a rephrase either; the same
        // question in other words is.
        let another = BotView {
            question_similarity: Some(0.2),
            ..bot.clone()
        };
        assert!(
            !policy
                .after_bot("how long does it take", &u, &history, &another)
                .escalate
        );
        assert!(policy.may_be_rephrase("how long does it take", &history, &bot));
        // Not a candidate at all: a follow-up, a question searched with the previous one, an
        // answer marked helpful, or another article.
        assert!(!policy.may_be_rephrase("and what about the old ones too?", &history, &bot));
        assert!(!policy.may_be_rephrase(
            "",
            &history,
            &BotView {
                in_context: true,
                ..bot.clone()
            }
        ));
        let confirmed = History {
            last_helpful: Some(true),
            ..history.clone()
        };
        assert!(!policy.may_be_rephrase("", &confirmed, &bot));
        let elsewhere = BotView {
            article: Some("billing/invoices.md"),
            ..bot.clone()
        };
        assert!(!policy.may_be_rephrase("", &history, &elsewhere));
        let same = BotView {
            question_similarity: Some(0.9),
            ..bot.clone()
        };
        assert_eq!(
            kinds(&policy.after_bot("", &u, &history, &same)),
            [ReasonKind::Rephrased]
        );
        let helped = History {
            last_helpful: Some(true),
            ..history
        };
        assert!(!policy.after_bot("", &u, &helped, &bot).escalate);
    }

    #[test]
    fn negative_feedback_escalates_from_the_configured_count() {
        let policy = Policy::default();
        assert!(!policy.on_feedback(1).escalate);
        assert_eq!(
            kinds(&policy.on_feedback(2)),
            [ReasonKind::NegativeFeedback]
        );
    }

    #[test]
    fn a_calm_question_on_a_sensitive_topic_is_answered_when_the_base_can() {
        let policy = Policy::default();
        let u = intent("security", 0.87, "accounts", true);
        let question = "a colleague left the company, how do i remove their access";
        assert!(
            !policy
                .before_bot(question, &u, &History::default())
                .escalate
        );
        let answered = BotView {
            answered: true,
            dont_know: false,
            confidence: 0.7,
            threshold: 0.5,
            article: Some("users-roles.md"),
            in_context: false,
            question_similarity: None,
        };
        assert!(
            !policy
                .after_bot(question, &u, &History::default(), &answered)
                .escalate
        );
        // Articles offered to choose from: the customer picks one, or presses "Talk to a person".
        let choices = BotView {
            answered: false,
            dont_know: false,
            article: None,
            in_context: false,
            ..answered
        };
        assert!(
            !policy
                .after_bot(question, &u, &History::default(), &choices)
                .escalate
        );
        let unanswered = BotView {
            dont_know: true,
            ..choices
        };
        let d = policy.after_bot(question, &u, &History::default(), &unanswered);
        assert_eq!(kinds(&d), [ReasonKind::Sensitive]);
        assert_eq!(d.team.as_deref(), Some("accounts"));
        // A wish the customer can carry out with the right article is a question too.
        let cancel = intent("cancel_subscription", 1.0, "billing", true);
        let quit = "i want to quit the subscription";
        assert!(
            !policy
                .before_bot(quit, &cancel, &History::default())
                .escalate
        );
        assert!(
            !policy
                .after_bot(quit, &cancel, &History::default(), &answered)
                .escalate
        );
    }

    #[test]
    fn a_slight_reading_with_no_cue_does_not_make_a_sensitive_question_impatient() {
        // Half the bar that applies to the message marks a customer who is not calm: with no cue,
        // that is half the higher bar, so a slight cue-less reading on a calm how-to question about
        // a sensitive topic is still answered by the bot.
        // Bars far apart, as the head on the sentence embedding has them (the logic is the same
        // for every reader).
        let bars = crate::settings::SignalBars::HEAD;
        let s = EscalationSettings {
            upset_threshold: bars.threshold,
            upset_threshold_without_cue: bars.without_cue,
            ..EscalationSettings::default()
        };
        let policy = Policy::new(s.clone());
        // Over half the bar with a cue, under that bar itself, and under half the bar without one.
        let low = s.upset_threshold / 2.0;
        let high = s.upset_threshold.min(s.upset_threshold_without_cue / 2.0);
        assert!(low < high);
        let slight = (low + high) / 2.0;
        let mut u = intent("refund", 0.9, "billing", true);
        u.upset = slight;
        let question = "how long do i have to send the brewer back if i dont like it";
        assert!(
            !policy
                .before_bot(question, &u, &History::default())
                .escalate
        );
        // The same reading with a cue behind it is impatience: the topic goes to a person.
        u.upset_cues = vec!["repeat contact".into()];
        assert!(crate::nlu::signals::is_evidence("repeat contact"));
        let d = policy.before_bot(question, &u, &History::default());
        assert_eq!(kinds(&d), [ReasonKind::Sensitive], "{:?}", d.reasons);
    }

    #[test]
    fn an_operators_sensitive_intent_still_reaches_a_person_for_acts_incidents_and_anger() {
        let policy = Policy::default();
        let cancel = intent("cancel_subscription", 1.0, "billing", true);
        for text in [
            "I want to cancel, do it for me",
            "cancel it for me, now",
            "please cancel my subscription",
        ] {
            let d = policy.before_bot(text, &cancel, &History::default());
            assert_eq!(kinds(&d), [ReasonKind::Sensitive], "{text:?}");
            assert_eq!(d.team.as_deref(), Some("billing"));
            assert!(d.priority > 0);
        }
        let security = intent("security", 0.9, "accounts", true);
        let d = policy.before_bot(
            "someone logged into my account from another country, how do i stop them",
            &security,
            &History::default(),
        );
        assert_eq!(kinds(&d), [ReasonKind::Sensitive]);
        assert!(d.reasons[0].detail.contains("reports an incident"));
        // A question, but asked in anger (under the bar alone, over half of it): a person at once.
        let mut angry = intent("cancel_subscription", 1.0, "billing", true);
        angry.upset = EscalationSettings::default().upset_threshold_without_cue * 0.75;
        let d = policy.before_bot("how do i cancel this", &angry, &History::default());
        assert_eq!(kinds(&d), [ReasonKind::Sensitive]);
        assert!(d.reasons[0].detail.contains("not calm"));
        // An intent without the policy is never handed over for the same words.
        let billing = intent("billing", 1.0, "billing", false);
        assert!(
            !policy
                .before_bot("cancel it for me, now", &billing, &History::default())
                .escalate
        );
    }

    #[test]
    fn a_message_of_thanks_still_hands_over_on_urgency() {
        let policy = Policy::default();
        // As the understanding reads "thanks, the part arrived, the clinic opens in an hour":
        // thanks, its upset reading not counted, urgent.
        let thanks = Understanding {
            thanks: true,
            urgent: 0.9,
            ..Default::default()
        };
        let d = policy.before_bot("", &thanks, &History::default());
        assert_eq!(kinds(&d), [ReasonKind::Urgent]);
    }

    #[test]
    fn a_message_of_thanks_that_names_someone_is_no_request_for_a_person() {
        let policy = Policy::default();
        // "thank you, your team was so helpful": read as asking for a person by the intent, and
        // it names someone, to thank them.
        let text = "thank you, your team was so helpful";
        let mut thanks = intent("human_request", 0.8, "general", true);
        thanks.thanks = true;
        let d = policy.before_bot(text, &thanks, &History::default());
        assert!(!d.escalate, "{:?}", d.reasons);
        assert!(d.checked.iter().any(|c| c.contains("message of thanks")));
        // The same words, no thanks: a request.
        thanks.thanks = false;
        assert_eq!(
            kinds(&policy.before_bot(text, &thanks, &History::default())),
            [ReasonKind::HumanRequest]
        );
    }

    #[test]
    fn urgency_and_asking_for_a_person_count_with_upset() {
        let policy = Policy::default();
        let urgent = Understanding {
            upset: 0.2,
            urgent: 0.85,
            ..Default::default()
        };
        let d = policy.before_bot("", &urgent, &History::default());
        assert_eq!(kinds(&d), [ReasonKind::Urgent]);
        assert!(d.reasons[0].detail.contains("urgent 0.85"));
        // Under the bar without a cue: not enough once, enough when asked again.
        let soft_ask = Understanding {
            asks_for_person: EscalationSettings::default().upset_threshold_without_cue * 0.9,
            ..Default::default()
        };
        assert!(
            !policy
                .before_bot("", &soft_ask, &History::default())
                .escalate
        );
        let again = History {
            person_asks: vec![0.1, 0.5],
            ..Default::default()
        };
        assert_eq!(
            kinds(&policy.before_bot("", &soft_ask, &again)),
            [ReasonKind::HumanRequest]
        );
    }

    #[test]
    fn a_reading_with_no_cue_behind_it_needs_the_higher_bar() {
        let policy = Policy::new(EscalationSettings {
            upset_threshold: 0.5,
            upset_threshold_without_cue: 0.8,
            ..Default::default()
        });
        let reading = |urgent: f32, cues: &[&str]| Understanding {
            urgent,
            upset_cues: cues.iter().map(|c| (*c).to_owned()).collect(),
            ..Default::default()
        };
        // "theres a puddle under the machine every morning": a fault stated plainly.
        let plain = policy.before_bot("", &reading(0.7, &[]), &History::default());
        assert!(!plain.escalate, "{plain:?}");
        assert!(plain
            .checked
            .iter()
            .any(|c| c.ends_with("< threshold without a cue 0.80")));
        // The same reading with a deadline in the words passes the ordinary threshold.
        let cued = policy.before_bot("", &reading(0.7, &["deadline"]), &History::default());
        assert_eq!(kinds(&cued), [ReasonKind::Urgent]);
        assert_eq!(cued.reasons[0].threshold, Some(0.5));
        // A clear reading needs no cue.
        let clear = policy.before_bot("", &reading(0.85, &[]), &History::default());
        assert_eq!(kinds(&clear), [ReasonKind::Urgent]);
        assert_eq!(clear.reasons[0].threshold, Some(0.8));
        // The bar without a cue is never lower than the ordinary one.
        let lower = Policy::new(EscalationSettings {
            upset_threshold: 0.6,
            upset_threshold_without_cue: 0.3,
            ..Default::default()
        });
        assert!(
            !lower
                .before_bot("", &reading(0.5, &[]), &History::default())
                .escalate
        );
    }

    #[test]
    fn three_middling_readings_do_not_add_up_to_one_clear_one() {
        let policy = Policy::default();
        // Softly upset, a little urgent, perhaps wanting a person: calm enough for the bot.
        let middling = Understanding {
            upset: 0.35,
            urgent: 0.30,
            asks_for_person: 0.26,
            ..Default::default()
        };
        let d = policy.before_bot("", &middling, &History::default());
        assert!(!d.escalate, "{d:?}");
        assert!(d.checked.iter().any(|c| c.contains("needs a person 0.35")));
        // One clear reading is enough, whichever it is.
        for (upset, urgent, asks) in [(0.85, 0.0, 0.0), (0.0, 0.85, 0.0), (0.0, 0.0, 0.85)] {
            let clear = Understanding {
                upset,
                urgent,
                asks_for_person: asks,
                ..Default::default()
            };
            assert!(policy.before_bot("", &clear, &History::default()).escalate);
        }
    }

    #[test]
    fn unanswered_turns_hand_over_sooner_only_when_the_customer_is_impatient() {
        let policy = Policy::default();
        let bot = BotView {
            answered: false,
            dont_know: true,
            confidence: 0.2,
            threshold: 0.5,
            article: None,
            in_context: false,
            question_similarity: None,
        };
        let second = History {
            unanswered_streak: 1,
            ..Default::default()
        };
        let calm = Understanding::default();
        assert!(!policy.after_bot("", &calm, &second, &bot).escalate);
        let third = History {
            unanswered_streak: 2,
            ..Default::default()
        };
        assert!(policy.after_bot("", &calm, &third, &bot).escalate);
        // Over half the bar (impatient), under the bar itself.
        let impatient = Understanding {
            upset: EscalationSettings::default().upset_threshold_without_cue * 0.75,
            ..Default::default()
        };
        assert!(policy.after_bot("", &impatient, &second, &bot).escalate);
        let failing = History {
            failed_answers: 3,
            ..Default::default()
        };
        assert_eq!(
            kinds(&policy.before_bot("", &impatient, &failing)),
            [ReasonKind::RepeatedFailure]
        );
        assert!(!policy.before_bot("", &calm, &failing).escalate);
    }
}
