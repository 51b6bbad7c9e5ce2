//! `frontdesk eval --kb DIR --questions FILE`: plays every question and conversation of a
//! question set over the real `/ws/chat` socket of the real server serving DIR, and scores what
//! the customer saw against what the set expects.

use std::fmt::Write as _;
use std::path::Path;

use super::play::{Did, Stage};
use super::questions::{Expect, Holder, QuestionSet};
use crate::nlu::{EmbeddingCache, Encoder};
use crate::settings::Settings;

/// Answerable questions by what the bot did.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct AnswerTally {
    /// A right page cited first in an answer.
    pub first: usize,
    /// A right page among the articles offered to choose from.
    pub among_choices: usize,
    /// Answered (or offered choices) with no right page.
    pub wrong: usize,
    /// Said it does not know.
    pub declined: usize,
    /// Handed over to a person.
    pub escalated: usize,
    /// Questions.
    pub total: usize,
}

impl AnswerTally {
    fn add(&mut self, did: &Did, pages: &[String]) -> bool {
        self.total += 1;
        let right = |cited: &[String]| cited.iter().any(|c| pages.contains(c));
        match did {
            Did::Answered(cited) if cited.first().is_some_and(|c| pages.contains(c)) => {
                self.first += 1;
                return true;
            }
            Did::Choices(cited) if right(cited) => {
                self.among_choices += 1;
                return true;
            }
            Did::Answered(_) | Did::Choices(_) => self.wrong += 1,
            Did::Declined | Did::Silent => self.declined += 1,
            Did::Escalated => self.escalated += 1,
        }
        false
    }

    /// Right page first or among the choices, as a share.
    pub fn right(&self) -> f64 {
        share(self.first + self.among_choices, self.total)
    }
}

/// Questions the bot should not answer (decline set) or should hand over (escalate set).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct RefuseTally {
    /// Said it does not know.
    pub declined: usize,
    /// Handed over to a person.
    pub escalated: usize,
    /// Answered or offered articles anyway.
    pub answered: usize,
    /// Questions.
    pub total: usize,
}

impl RefuseTally {
    fn add(&mut self, did: &Did) {
        self.total += 1;
        match did {
            Did::Declined | Did::Silent => self.declined += 1,
            Did::Escalated => self.escalated += 1,
            Did::Answered(_) | Did::Choices(_) => self.answered += 1,
        }
    }
}

/// Conversations by outcome.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct ConversationTally {
    /// `outcome: bot` conversations kept by the bot at every turn.
    pub kept: usize,
    /// `outcome: bot` conversations.
    pub bot_total: usize,
    /// `outcome: person` conversations handed over by their `by_turn`.
    pub handed_in_time: usize,
    /// `outcome: person` conversations.
    pub person_total: usize,
    /// Turns with `pages` answered citing one (first or among choices).
    pub turns_right: usize,
    /// Turns with `pages`.
    pub turns_with_pages: usize,
}

/// What one run of a question set measured.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SetReport {
    /// The set's name.
    pub name: String,
    /// sha256 of the question file.
    pub sha256: String,
    /// Answerable questions marked `overlap: low`.
    pub answer_low: AnswerTally,
    /// The other answerable questions.
    pub answer_rest: AnswerTally,
    /// Questions the base does not answer.
    pub decline: RefuseTally,
    /// Messages that must reach a person.
    pub escalate: RefuseTally,
    /// Conversations.
    pub conversations: ConversationTally,
    /// What went wrong, one line each.
    pub mistakes: Vec<String>,
}

impl SetReport {
    /// Every answerable question.
    pub fn answer_all(&self) -> AnswerTally {
        let (a, b) = (self.answer_low, self.answer_rest);
        AnswerTally {
            first: a.first + b.first,
            among_choices: a.among_choices + b.among_choices,
            wrong: a.wrong + b.wrong,
            declined: a.declined + b.declined,
            escalated: a.escalated + b.escalated,
            total: a.total + b.total,
        }
    }
}

fn share(n: usize, of: usize) -> f64 {
    n as f64 / of.max(1) as f64
}

/// Serves `kb_dir` with `settings` and plays `set` against it.
pub async fn run(
    mut settings: Settings,
    kb_dir: &Path,
    set: &QuestionSet,
    encoder: Encoder,
    cache: EmbeddingCache,
) -> anyhow::Result<SetReport> {
    settings.kb.dir = kb_dir.to_owned();
    let stage = Stage::start(settings, encoder, cache).await?;
    let known: Vec<String> = stage.kb().articles().into_iter().map(|a| a.path).collect();
    let missing: Vec<&str> = set
        .pages()
        .into_iter()
        .filter(|p| !known.iter().any(|k| k == p))
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "the question set names pages that are not in {}: {}; paths are relative to that folder",
        kb_dir.display(),
        missing.join(", ")
    );
    let mut report = SetReport {
        name: set.name.clone(),
        sha256: set.sha256.clone(),
        ..Default::default()
    };
    for q in &set.questions {
        let mut customer = stage.customer().await?;
        let did = customer.say(&q.text).await?;
        customer.close().await;
        let ok = match q.expect {
            Expect::Answer => {
                let tally = if q.low_overlap() {
                    &mut report.answer_low
                } else {
                    &mut report.answer_rest
                };
                tally.add(&did, &q.pages)
            }
            Expect::Decline => {
                report.decline.add(&did);
                matches!(did, Did::Declined | Did::Escalated | Did::Silent)
            }
            Expect::Escalate => {
                report.escalate.add(&did);
                did == Did::Escalated
            }
        };
        if !ok {
            let expected = match q.expect {
                Expect::Answer => format!("answer from {}", q.pages.join(" or ")),
                Expect::Decline => "decline".into(),
                Expect::Escalate => "hand over".into(),
            };
            report.mistakes.push(format!(
                "\"{}\": expected {expected}, {}",
                q.text,
                did.describe()
            ));
        }
    }
    for (i, c) in set.conversations.iter().enumerate() {
        let mut customer = stage.customer().await?;
        let mut handed_at = None;
        let mut notes = Vec::new();
        for (t, turn) in c.turns.iter().enumerate() {
            let did = customer.say(&turn.text).await?;
            if !turn.pages.is_empty() && handed_at.is_none() {
                report.conversations.turns_with_pages += 1;
                let right = match &did {
                    Did::Answered(cited) => cited.first().is_some_and(|p| turn.pages.contains(p)),
                    Did::Choices(cited) => cited.iter().any(|p| turn.pages.contains(p)),
                    _ => false,
                };
                if right {
                    report.conversations.turns_right += 1;
                } else {
                    notes.push(format!(
                        "turn {} \"{}\" expected {}, {}",
                        t + 1,
                        turn.text,
                        turn.pages.join(" or "),
                        did.describe()
                    ));
                }
            }
            if did == Did::Escalated && handed_at.is_none() {
                handed_at = Some(t + 1);
                break;
            }
        }
        customer.close().await;
        let tally = &mut report.conversations;
        let ok = match c.outcome {
            Holder::Bot => {
                tally.bot_total += 1;
                let kept = handed_at.is_none();
                tally.kept += kept as usize;
                kept
            }
            Holder::Person => {
                tally.person_total += 1;
                let by = c.by_turn.unwrap_or(c.turns.len());
                let in_time = handed_at.is_some_and(|t| t <= by);
                tally.handed_in_time += in_time as usize;
                in_time
            }
        };
        if !ok {
            let expected = match c.outcome {
                Holder::Bot => "kept by the bot".to_owned(),
                Holder::Person => {
                    format!("handed over by turn {}", c.by_turn.unwrap_or(c.turns.len()))
                }
            };
            let got = handed_at.map_or("never handed over".into(), |t| {
                format!("handed over at turn {t}")
            });
            notes.insert(0, format!("expected {expected}, {got}"));
        }
        if !notes.is_empty() {
            report.mistakes.push(format!(
                "conversation {} (\"{}\"…): {}",
                i + 1,
                c.turns[0].text,
                notes.join("; ")
            ));
        }
    }
    Ok(report)
}

/// The table `frontdesk eval --questions` prints.
pub fn table(report: &SetReport, file: &Path, kb_dir: &Path) -> String {
    let pct = |n: usize, of: usize| {
        if of == 0 {
            "    -".to_owned()
        } else {
            format!("{:5.1}", 100.0 * share(n, of))
        }
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "question set \"{}\" ({}), sha256 {}\nknowledge base {}",
        report.name,
        file.display(),
        report.sha256,
        kb_dir.display()
    );
    let _ = writeln!(
        out,
        "\nanswerable            n   right  first choices  wrong declined escalated"
    );
    for (name, t) in [
        ("overlap: low", report.answer_low),
        ("other", report.answer_rest),
        ("all", report.answer_all()),
    ] {
        let _ = writeln!(
            out,
            "  {name:<16} {:>4}   {}  {}   {}  {}    {}     {}",
            t.total,
            pct(t.first + t.among_choices, t.total),
            pct(t.first, t.total),
            pct(t.among_choices, t.total),
            pct(t.wrong, t.total),
            pct(t.declined, t.total),
            pct(t.escalated, t.total),
        );
    }
    let _ = writeln!(
        out,
        "\nnot to be answered     n   right  declined handed-over answered"
    );
    for (name, t, right) in [
        (
            "decline set",
            report.decline,
            report.decline.declined + report.decline.escalated,
        ),
        ("escalate set", report.escalate, report.escalate.escalated),
    ] {
        let _ = writeln!(
            out,
            "  {name:<16} {:>4}   {}   {}       {}    {}",
            t.total,
            pct(right, t.total),
            pct(t.declined, t.total),
            pct(t.escalated, t.total),
            pct(t.answered, t.total),
        );
    }
    let c = report.conversations;
    let _ = writeln!(
        out,
        "\nconversations          n   right\n  kept by bot      {:>4}   {}\n  handed over in time {:>1}   {}\n  turns citing the page {} {}",
        c.bot_total,
        pct(c.kept, c.bot_total),
        c.person_total,
        pct(c.handed_in_time, c.person_total),
        c.turns_with_pages,
        pct(c.turns_right, c.turns_with_pages),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_right_page_counts_first_or_among_choices_and_nothing_else() {
        let pages = vec!["billing.md".to_owned()];
        let mut t = AnswerTally::default();
        assert!(t.add(&Did::Answered(vec!["billing.md".into()]), &pages));
        assert!(t.add(
            &Did::Choices(vec!["plans.md".into(), "billing.md".into()]),
            &pages
        ));
        assert!(!t.add(
            &Did::Answered(vec!["plans.md".into(), "billing.md".into()]),
            &pages
        ));
        assert!(!t.add(&Did::Declined, &pages));
        assert!(!t.add(&Did::Escalated, &pages));
        assert_eq!(
            (t.first, t.among_choices, t.wrong, t.declined, t.escalated),
            (1, 1, 1, 1, 1)
        );
        assert!((t.right() - 0.4).abs() < 1e-9);
    }
}
