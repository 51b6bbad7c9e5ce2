//! The bot's dialogue policy: from a customer's question to an answer with its source, a question
//! back when two articles fit equally well, or an honest "I don't know" with the offer of a person.

use serde::{Deserialize, Serialize};

use crate::kb::{KbError, KnowledgeBase, Passage};
use crate::nlu::{Analysis, Nlu, Understanding};
use crate::settings::BotSettings;

/// What the bot decided to do with a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Answered with a passage.
    Answered,
    /// Asked which of several articles the customer means.
    Clarify,
    /// Said it does not know and offered a person.
    DontKnow,
    /// Answered a greeting or a thank-you in kind.
    SmallTalk,
}

impl Outcome {
    /// Stable name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Clarify => "clarify",
            Outcome::DontKnow => "dont_know",
            Outcome::SmallTalk => "small_talk",
        }
    }
}

/// An article an answer came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// Article title.
    pub title: String,
    /// Section heading, if the passage is not the introduction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
    /// Link to the section.
    pub url: String,
}

/// A button offered under a bot message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuickReply {
    /// What the button says.
    pub label: String,
    /// What pressing it does: `helpful` / `not_helpful` (feedback on this answer), `request_human`,
    /// or `send` (send `text` as the customer's message).
    pub action: String,
    /// Text to send, for `send`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// The bot's reply to one question, with why.
#[derive(Debug, Clone, Serialize)]
pub struct Reply {
    /// What it decided.
    pub outcome: Outcome,
    /// What it says.
    pub text: String,
    /// Where the answer came from.
    pub sources: Vec<Source>,
    /// Buttons under the message.
    pub quick_replies: Vec<QuickReply>,
    /// Confidence of the best passage (its similarity to the question).
    pub confidence: f32,
    /// Why, in a sentence an editor understands.
    pub reason: String,
    /// The passages considered, best first.
    pub candidates: Vec<Passage>,
    /// What was understood of the question (intent, out of scope, upset).
    pub understanding: Understanding,
    /// The intent classifier's best guess and its probability, even when out of scope.
    pub intent_guess: (String, f32),
}

/// The bot. Cheap to clone.
#[derive(Clone)]
pub struct Bot {
    kb: KnowledgeBase,
    nlu: Nlu,
    settings: BotSettings,
}

impl Bot {
    /// A bot that understands with `nlu` and answers from `kb`.
    pub fn new(kb: KnowledgeBase, nlu: Nlu, settings: BotSettings) -> Self {
        Self { kb, nlu, settings }
    }

    /// Its thresholds.
    pub fn settings(&self) -> &BotSettings {
        &self.settings
    }

    /// The knowledge base it answers from.
    pub fn kb(&self) -> &KnowledgeBase {
        &self.kb
    }

    /// The language-understanding models.
    pub fn nlu(&self) -> &Nlu {
        &self.nlu
    }

    /// Understands a customer message: intent, out of scope, upset (one encoder call).
    pub async fn understand(&self, text: &str) -> Result<Analysis, KbError> {
        Ok(self.nlu.analyse(text).await?)
    }

    /// Decides how to answer a question already understood (no second encoder call).
    pub fn answer(&self, question: &str, analysis: &Analysis) -> Result<Reply, KbError> {
        let candidates =
            self.kb
                .search_with(question, &analysis.embedding, 5, self.kb.keyword_weight())?;
        let mut reply = decide(&self.settings, candidates, &analysis.understanding);
        reply.understanding = analysis.understanding.clone();
        reply.intent_guess = analysis.best_intent.clone();
        Ok(reply)
    }

    /// Understands `question` and decides how to answer it.
    pub async fn reply(&self, question: &str) -> Result<Reply, KbError> {
        let analysis = self.understand(question).await?;
        self.answer(question, &analysis)
    }
}

/// The policy itself: what to do given the passages found, best first, and what was understood
/// of the question.
pub(crate) fn decide(
    settings: &BotSettings,
    candidates: Vec<Passage>,
    understood: &Understanding,
) -> Reply {
    let threshold = settings.answer_threshold;
    let confident = candidates
        .first()
        .is_some_and(|best| best.similarity >= threshold);
    // A greeting or a thank-you is answered in kind, unless it also asks something the knowledge
    // base answers well, or it is not meant kindly ("wow, thanks for nothing").
    if !confident && understood.upset < 0.5 {
        let small_talk = understood
            .intent
            .as_ref()
            .and_then(|i| settings.small_talk.get(&i.name).map(|text| (i, text)));
        if let Some((intent, text)) = small_talk {
            return Reply {
                outcome: Outcome::SmallTalk,
                text: text.clone(),
                sources: Vec::new(),
                quick_replies: Vec::new(),
                confidence: intent.confidence,
                reason: format!(
                    "the message is \"{}\" (probability {:.2}) and no passage reaches the answer threshold {threshold:.2}",
                    intent.name, intent.confidence
                ),
                candidates,
                understanding: Understanding::default(),
                intent_guess: Default::default(),
            };
        }
    }
    let Some(best) = candidates.first() else {
        return dont_know(0.0, "the knowledge base is empty".into(), candidates);
    };
    let confidence = best.similarity;
    if confidence < threshold {
        let reason = format!(
                "the best passage (\"{}\" in {}) has confidence {confidence:.2}, below the answer threshold {threshold:.2}",
                heading(best),
                best.title
            );
        return dont_know(confidence, reason, candidates);
    }
    // A close runner-up from another article means the question is ambiguous.
    // A close runner-up from another article makes a middling match ambiguous; a strong match is
    // answered directly even when related articles come close.
    let rival = candidates.iter().skip(1).find(|p| {
        confidence < settings.clarify_below
            && p.path != best.path
            && p.similarity >= threshold
            && best.fused - p.fused < settings.clarify_margin
    });
    if let Some(rival) = rival {
        let reason = format!(
                "\"{}\" ({confidence:.2}) and \"{}\" ({:.2}) score within the clarify margin {:.2}, and the best is below {:.2}",
                best.title,
                rival.title,
                rival.similarity,
                settings.clarify_margin,
                settings.clarify_below
            );
        let options = [best, rival];
        return Reply {
            outcome: Outcome::Clarify,
            text: format!(
                "I can help with that. Which of these do you mean: \"{}\" or \"{}\"?",
                best.title, rival.title
            ),
            sources: options.iter().map(|p| source(p)).collect(),
            quick_replies: options
                .iter()
                .map(|p| QuickReply {
                    label: p.title.clone(),
                    action: "send".into(),
                    text: Some(p.title.clone()),
                })
                .chain([talk_to_person()])
                .collect(),
            confidence,
            reason,
            candidates,
            understanding: Understanding::default(),
            intent_guess: Default::default(),
        };
    }
    let reason = format!(
            "\"{}\" in \"{}\" has confidence {confidence:.2} (threshold {threshold:.2}); keyword rank {}, semantic rank {}",
            heading(best),
            best.title,
            best.bm25_rank.map_or("-".into(), |r| r.to_string()),
            best.semantic_rank
        );
    Reply {
        outcome: Outcome::Answered,
        text: excerpt(&best.text, settings.max_passage_chars),
        sources: vec![source(best)],
        quick_replies: vec![
            QuickReply {
                label: "That helped".into(),
                action: "helpful".into(),
                text: None,
            },
            talk_to_person(),
        ],
        confidence,
        reason,
        candidates,
        understanding: Understanding::default(),
        intent_guess: Default::default(),
    }
}

fn dont_know(confidence: f32, reason: String, candidates: Vec<Passage>) -> Reply {
    Reply {
        outcome: Outcome::DontKnow,
        text: "I'm sorry, I don't know the answer to that. You can rephrase your question, or I can connect you with a person."
            .into(),
        sources: Vec::new(),
        quick_replies: vec![talk_to_person()],
        confidence,
        reason,
        candidates,
        understanding: Understanding::default(),
        intent_guess: Default::default(),
    }
}

fn talk_to_person() -> QuickReply {
    QuickReply {
        label: "Talk to a person".into(),
        action: "request_human".into(),
        text: None,
    }
}

fn source(p: &Passage) -> Source {
    Source {
        title: p.title.clone(),
        section: p.heading_path.last().cloned(),
        url: p.link.clone(),
    }
}

fn heading(p: &Passage) -> String {
    if p.heading_path.is_empty() {
        "introduction".into()
    } else {
        p.heading_path.join(" > ")
    }
}

/// The passage cut to about `max` characters at a sentence (or at least word) boundary.
fn excerpt(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max).collect();
    let sentence_end = cut.rfind(['.', '!', '?']).filter(|&i| i > max / 3);
    match sentence_end {
        Some(i) => cut[..=i].to_owned(),
        None => format!("{}…", cut[..cut.rfind(' ').unwrap_or(cut.len())].trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passage(path: &str, similarity: f32, fused: f32) -> Passage {
        Passage {
            path: path.into(),
            title: path.trim_end_matches(".md").into(),
            heading_path: vec!["Steps".into()],
            anchor: "steps".into(),
            link: format!("/kb/{path}#steps"),
            text: format!("How {path} works."),
            similarity,
            bm25: None,
            bm25_rank: None,
            semantic_rank: 1,
            fused,
        }
    }

    #[test]
    fn a_confident_match_is_answered_with_its_source_and_quick_replies() {
        let reply = decide(
            &BotSettings::default(),
            vec![
                passage("refunds.md", 0.7, 0.8),
                passage("returns.md", 0.69, 0.79),
            ],
            &Understanding::default(),
        );
        assert_eq!(reply.outcome, Outcome::Answered);
        assert_eq!(reply.text, "How refunds.md works.");
        assert_eq!(reply.sources[0].url, "/kb/refunds.md#steps");
        let actions: Vec<_> = reply
            .quick_replies
            .iter()
            .map(|q| q.action.as_str())
            .collect();
        assert_eq!(actions, ["helpful", "request_human"]);
    }

    #[test]
    fn a_middling_match_with_an_equal_rival_article_asks_which_one() {
        let reply = decide(
            &BotSettings::default(),
            vec![
                passage("refunds.md", 0.53, 0.60),
                passage("refunds.md", 0.52, 0.595),
                passage("returns.md", 0.52, 0.59),
            ],
            &Understanding::default(),
        );
        assert_eq!(reply.outcome, Outcome::Clarify);
        assert_eq!(reply.sources.len(), 2);
        assert_eq!(reply.quick_replies[1].text.as_deref(), Some("returns"));
    }

    #[test]
    fn a_weak_match_gets_an_honest_dont_know_and_the_offer_of_a_person() {
        let reply = decide(
            &BotSettings::default(),
            vec![passage("refunds.md", 0.2, 0.4)],
            &Understanding::default(),
        );
        assert_eq!(reply.outcome, Outcome::DontKnow);
        assert!(reply.sources.is_empty());
        assert_eq!(reply.quick_replies[0].action, "request_human");
        assert_eq!(
            decide(
                &BotSettings::default(),
                Vec::new(),
                &Understanding::default()
            )
            .outcome,
            Outcome::DontKnow
        );
    }

    #[test]
    fn greetings_are_answered_in_kind_unless_the_knowledge_base_answers_well() {
        let hello = Understanding {
            intent: Some(crate::nlu::IntentMatch {
                name: "greeting".into(),
                confidence: 0.9,
                team: None,
                always_human: false,
            }),
            ..Default::default()
        };
        let settings = BotSettings::default();
        let reply = decide(&settings, vec![passage("refunds.md", 0.1, 0.1)], &hello);
        assert_eq!(reply.outcome, Outcome::SmallTalk);
        assert_eq!(reply.text, settings.small_talk["greeting"]);
        let reply = decide(&settings, vec![passage("refunds.md", 0.7, 0.8)], &hello);
        assert_eq!(reply.outcome, Outcome::Answered);
    }

    #[test]
    fn excerpts_end_at_a_sentence() {
        let text = "First sentence is here. Second sentence is a bit longer than the first one.";
        assert_eq!(excerpt(text, 40), "First sentence is here.");
        assert_eq!(excerpt(text, 500), text);
        assert_eq!(excerpt("word word word word", 12), "word word…");
    }
}
