//! Question sets: what an operator (or a blind writer) expects the bot to do with customers'
//! questions on one knowledge base. The format is the contract of `docs/EVALUATION.md`: answerable
//! questions with the pages that answer them, questions the base cannot answer, messages that must
//! reach a person, and whole conversations.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// One question file, as read.
#[derive(Debug, Clone, Deserialize)]
pub struct QuestionSet {
    /// A short name printed in the table.
    pub name: String,
    /// Single questions.
    #[serde(default)]
    pub questions: Vec<Question>,
    /// Multi-turn conversations.
    #[serde(default)]
    pub conversations: Vec<Conversation>,
    /// sha256 of the file's bytes (hex), so a report names exactly what it measured.
    #[serde(skip)]
    pub sha256: String,
}

/// What the bot should do with a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// Answer it, citing one of `pages`.
    Answer,
    /// Say it does not know (or hand over): the base does not answer it.
    Decline,
    /// Hand over to a person: upset, urgent, or asking for one.
    Escalate,
}

/// One question.
#[derive(Debug, Clone, Deserialize)]
pub struct Question {
    /// What the customer writes.
    pub text: String,
    /// What the bot should do.
    pub expect: Expect,
    /// Pages (relative to the knowledge-base folder) that answer it; required for `answer`.
    #[serde(default)]
    pub pages: Vec<String>,
    /// `low`: no content word shared with the page title (reported apart).
    #[serde(default)]
    pub overlap: Option<String>,
    /// For `escalate`: upset, urgent, human, threat, sarcasm...
    #[serde(default)]
    pub kind: Option<String>,
}

impl Question {
    /// Marked as sharing no content word with its page's title.
    pub fn low_overlap(&self) -> bool {
        self.overlap.as_deref() == Some("low")
    }
}

/// Who should hold a conversation at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Holder {
    /// The bot keeps it: no hand-off at any turn.
    Bot,
    /// A person: handed over no later than `by_turn`.
    Person,
}

/// A multi-turn conversation.
#[derive(Debug, Clone, Deserialize)]
pub struct Conversation {
    /// The customer's messages, in order.
    pub turns: Vec<Turn>,
    /// Who should have it at the end.
    pub outcome: Holder,
    /// For `person`: the 1-based turn by which it must have been handed over (default: the last).
    #[serde(default)]
    pub by_turn: Option<usize>,
}

/// One customer message of a conversation.
#[derive(Debug, Clone, Deserialize)]
pub struct Turn {
    /// What the customer writes.
    pub text: String,
    /// If given, the bot's answer to this turn must cite one of these pages.
    #[serde(default)]
    pub pages: Vec<String>,
}

impl QuestionSet {
    /// Reads and checks a question file: every `answer` names pages, conversations have turns.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the question file {}", path.display()))?;
        let mut set: QuestionSet = serde_yaml::from_slice(&bytes).with_context(|| {
            format!(
                "{} is not a question file (see docs/EVALUATION.md for the format)",
                path.display()
            )
        })?;
        set.sha256 = hex::encode(Sha256::digest(&bytes));
        anyhow::ensure!(
            !set.questions.is_empty() || !set.conversations.is_empty(),
            "{} has no `questions` or `conversations` to play against a knowledge base (a \
             support-message set with `messages` is not played here)",
            path.display()
        );
        for q in &set.questions {
            anyhow::ensure!(
                q.expect != Expect::Answer || !q.pages.is_empty(),
                "{}: \"{}\" expects an answer but lists no `pages` that answer it",
                path.display(),
                q.text
            );
        }
        for (i, c) in set.conversations.iter().enumerate() {
            anyhow::ensure!(
                !c.turns.is_empty(),
                "{}: conversation {} has no turns",
                path.display(),
                i + 1
            );
            anyhow::ensure!(
                c.by_turn.is_none_or(|t| t >= 1 && t <= c.turns.len()),
                "{}: conversation {} has by_turn outside its {} turns",
                path.display(),
                i + 1,
                c.turns.len()
            );
        }
        Ok(set)
    }

    /// Every page the set names (to check against the knowledge base before playing).
    pub fn pages(&self) -> BTreeSet<&str> {
        self.questions
            .iter()
            .flat_map(|q| &q.pages)
            .chain(
                self.conversations
                    .iter()
                    .flat_map(|c| c.turns.iter().flat_map(|t| &t.pages)),
            )
            .map(String::as_str)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_format_reads_and_answers_need_pages() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("set.yaml");
        std::fs::write(
            &path,
            r#"name: demo
questions:
  - text: "do you take paypal"
    expect: answer
    pages: [billing.md]
    overlap: low
  - text: "dark mode next year?"
    expect: decline
  - text: "THIRD time i write"
    expect: escalate
    kind: upset
conversations:
  - turns:
      - text: "hi"
      - text: "add my teammate"
        pages: [users-roles.md]
    outcome: bot
  - turns:
      - text: "no visitors"
      - text: "a person please"
    outcome: person
    by_turn: 2
"#,
        )
        .unwrap();
        let set = QuestionSet::load(&path).unwrap();
        assert_eq!(set.questions.len(), 3);
        assert!(set.questions[0].low_overlap());
        assert_eq!(set.conversations[1].by_turn, Some(2));
        assert_eq!(set.pages().len(), 2);
        assert_eq!(set.sha256.len(), 64);

        std::fs::write(
            &path,
            "name: x\nquestions:\n  - text: hi\n    expect: answer\n",
        )
        .unwrap();
        let err = QuestionSet::load(&path).unwrap_err().to_string();
        assert!(err.contains("lists no `pages`"), "{err}");
    }
}
