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

use crate::nlu::{Analysis, Encoder, Nlu, NluError, Understanding};
use crate::settings::EscalationSettings;

/// The intent (in `models/intents.yaml`) of a customer asking for a person.
pub const HUMAN_REQUEST_INTENT: &str = "human_request";
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
}

/// The trained models: intent classifier with out-of-scope rejection, and the upset detector.
impl Understand for Nlu {
    fn understand<'a>(
        &'a self,
        text: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Analysis, NluError>> + Send + 'a>> {
        Box::pin(self.analyse(text))
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

/// What the conversation looked like before this turn.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Upset scores of the earlier customer turns, oldest first.
    pub upsets: Vec<f32>,
    /// Bot turns just before this one that ended without an answer (`dont_know`), in a row.
    pub unanswered_streak: usize,
    /// The article the bot answered the previous question with, if it answered.
    pub last_article: Option<String>,
    /// Whether that answer was marked helpful.
    pub last_helpful: Option<bool>,
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

    /// Checks made before the bot looks for an answer: a request for a person, a sensitive intent,
    /// an upset customer. When these escalate, the bot does not answer at all.
    pub fn before_bot(&self, u: &Understanding, history: &History) -> Decision {
        let s = &self.settings;
        let mut d = Decision::default();
        if let Some(intent) = &u.intent {
            d.team = intent.team.clone();
            let confident = intent.confidence >= s.intent_confidence;
            if intent.name == HUMAN_REQUEST_INTENT && confident {
                d.push(Reason::new(
                    ReasonKind::HumanRequest,
                    format!(
                        "asked for a person (intent human_request, confidence {:.2} ≥ {:.2})",
                        intent.confidence, s.intent_confidence
                    ),
                    Some(intent.confidence),
                    Some(s.intent_confidence),
                ));
            }
            if intent.always_human && confident {
                d.push(Reason::new(
                    ReasonKind::Sensitive,
                    format!(
                        "intent {} always goes to a person (confidence {:.2} ≥ {:.2})",
                        intent.name, intent.confidence, s.intent_confidence
                    ),
                    Some(intent.confidence),
                    Some(s.intent_confidence),
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
        let cues = if u.upset_cues.is_empty() {
            String::new()
        } else {
            format!(" ({})", u.upset_cues.join(", "))
        };
        if u.upset >= s.upset_threshold {
            d.push(Reason::new(
                ReasonKind::Upset,
                format!(
                    "upset {:.2} ≥ threshold {:.2}{cues}",
                    u.upset, s.upset_threshold
                ),
                Some(u.upset),
                Some(s.upset_threshold),
            ));
            d.priority += s.upset_priority;
        } else {
            d.checked.push(format!(
                "upset {:.2} < threshold {:.2}",
                u.upset, s.upset_threshold
            ));
            let turns = s.rising_turns.max(2);
            let mut recent: Vec<f32> = history.upsets.clone();
            recent.push(u.upset);
            let window = &recent[recent.len().saturating_sub(turns)..];
            let rising = window.len() == turns && window.windows(2).all(|w| w[1] > w[0]);
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
        d
    }

    /// Checks made once the bot has looked for an answer: turn after turn without one, or the same
    /// question again right after an answer.
    pub fn after_bot(&self, u: &Understanding, history: &History, bot: &BotView<'_>) -> Decision {
        let s = &self.settings;
        let mut d = Decision::default();
        if bot.dont_know {
            let streak = history.unanswered_streak + 1;
            let needed = s.unanswered_turns.max(1);
            let (kind, what) = if u.out_of_scope {
                (ReasonKind::OutOfScope, "out of scope")
            } else {
                (ReasonKind::NoAnswer, "no confident passage")
            };
            let detail = format!(
                "{what} {streak} turn(s) in a row (need {needed}); best passage confidence {:.2} < {:.2}",
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
        } else if let (true, Some(article), Some(last)) =
            (bot.answered, bot.article, history.last_article.as_deref())
        {
            if article == last && history.last_helpful != Some(true) {
                d.push(Reason::new(
                    ReasonKind::Rephrased,
                    format!("asked again after the answer from {article} (confidence {:.2}); it did not help", bot.confidence),
                    Some(bot.confidence),
                    None,
                ));
            }
        }
        d
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
    understanding: &Understanding,
    reply: &crate::bot::Reply,
    answer_threshold: f32,
) -> Decision {
    use crate::bot::Outcome;
    let history = History::default();
    let before = policy.before_bot(understanding, &history);
    let view = BotView {
        answered: reply.outcome == Outcome::Answered,
        dont_know: reply.outcome == Outcome::DontKnow,
        confidence: reply.confidence,
        threshold: answer_threshold,
        article: None,
    };
    let after = policy.after_bot(understanding, &history, &view);
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
        let d = policy.before_bot(&u, &History::default());
        assert!(d.escalate);
        assert_eq!(kinds(&d), [ReasonKind::Upset]);
        assert_eq!(d.reasons[0].value, Some(0.93));
        assert_eq!(d.reasons[0].threshold, Some(0.55));
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
            kinds(&policy.before_bot(&u, &history)),
            [ReasonKind::UpsetRising]
        );
        let flat = History {
            upsets: vec![0.5, 0.3],
            ..Default::default()
        };
        assert!(!policy.before_bot(&u, &flat).escalate);
    }

    #[test]
    fn sensitive_intents_escalate_at_once_to_their_team() {
        let policy = Policy::default();
        let d = policy.before_bot(&intent("refund", 0.9, "billing", true), &History::default());
        assert_eq!(kinds(&d), [ReasonKind::Sensitive]);
        assert_eq!(d.team.as_deref(), Some("billing"));
        let unsure =
            policy.before_bot(&intent("refund", 0.3, "billing", true), &History::default());
        assert!(
            !unsure.escalate,
            "a guess below the confidence bar is not enough"
        );
        let asked = policy.before_bot(
            &intent("human_request", 0.8, "general", false),
            &History::default(),
        );
        assert_eq!(kinds(&asked), [ReasonKind::HumanRequest]);
    }

    #[test]
    fn the_second_unanswered_turn_in_a_row_escalates_and_the_first_does_not() {
        let policy = Policy::default();
        let bot = BotView {
            answered: false,
            dont_know: true,
            confidence: 0.2,
            threshold: 0.4,
            article: None,
        };
        let u = Understanding {
            out_of_scope: true,
            ..Default::default()
        };
        assert!(!policy.after_bot(&u, &History::default(), &bot).escalate);
        let history = History {
            unanswered_streak: 1,
            ..Default::default()
        };
        let d = policy.after_bot(&u, &history, &bot);
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
        };
        let history = History {
            last_article: Some("billing/refunds.md".into()),
            ..Default::default()
        };
        let u = Understanding::default();
        assert_eq!(
            kinds(&policy.after_bot(&u, &history, &bot)),
            [ReasonKind::Rephrased]
        );
        let helped = History {
            last_helpful: Some(true),
            ..history
        };
        assert!(!policy.after_bot(&u, &helped, &bot).escalate);
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
}
