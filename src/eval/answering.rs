//! Answer or say "I don't know": how the bot's real decision (`bot::decide`) does when the article
//! that answers a question is in the knowledge base (it should answer with it) and when it is not
//! (it should say it does not know and offer a person, not link a nearby article).
//!
//! StackFAQ asks each query twice, with its article and with its article removed from the results,
//! and chooses the answer threshold on its dev half. The demo knowledge base is asked the held-out
//! questions of `models/kb_questions_heldout.yaml`, a third of which it does not answer.

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

use crate::bot::{decide, Outcome};
use crate::kb::{Judged, KnowledgeBase, Model, Passage, Reranker};
use crate::nlu::{EmbeddingCache, Encoder, Understanding};
use crate::settings::BotSettings;

/// The answer threshold chosen on StackFAQ dev, scored on its test half and on the demo questions.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AnsweringReport {
    /// The threshold with the best decision accuracy on dev.
    pub chosen_threshold: f32,
    /// The shipped default (`bot.answer_threshold`).
    pub default_threshold: f32,
    /// Dev decision accuracy at each threshold tried.
    pub dev_sweep: Vec<(f32, f64)>,
    /// Test scores at the chosen threshold.
    pub test_chosen: AnswerScores,
    /// Test scores at the default threshold.
    pub test_default: AnswerScores,
}

/// Outcomes of the bot's decision over a set of questions, some answerable, some not.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct AnswerScores {
    /// Answerable: answered with the right article (or offered it among two when asking which
    /// one is meant).
    pub right: f64,
    /// Answerable: answered with another article.
    pub wrong: f64,
    /// Not answerable: said "I don't know".
    pub abstained_when_missing: f64,
    /// Not answerable: answered with some article anyway.
    pub wrong_when_missing: f64,
    /// Right decisions over all questions.
    pub decision_accuracy: f64,
    /// Answerable questions.
    pub answerable: usize,
    /// Questions the knowledge base does not answer.
    pub unanswerable: usize,
}

/// One question's candidate passages as the bot sees them, best first, and the article that
/// answers it (None: no article does).
pub(crate) struct Asked {
    pub candidates: Vec<Passage>,
    pub judged: Vec<Judged>,
    pub target: Option<String>,
}

impl Asked {
    /// `question`'s candidates judged by the shipped answerability model on `kb`.
    pub fn new(
        question: &str,
        candidates: Vec<Passage>,
        target: Option<String>,
        kb: &KnowledgeBase,
    ) -> Self {
        // Read as the bot reads it: misspelt words corrected against the base.
        let question = kb.correct(question);
        let judged =
            Model::shipped().judge(&question, &candidates, &kb.calibration(), &kb.lexicon());
        Self {
            candidates,
            judged,
            target,
        }
    }
}

/// The shipped bot settings with `threshold` as the least calibrated confidence to answer or
/// offer choices (and to answer directly, if the shipped answer threshold is lower).
pub(crate) fn settings_at(threshold: f32) -> BotSettings {
    let shipped = BotSettings::default();
    BotSettings {
        choices_threshold: threshold,
        answer_threshold: shipped.answer_threshold.max(threshold),
        option_threshold: shipped.option_threshold.min(threshold),
        unsure_option_threshold: shipped.unsure_option_threshold.min(threshold),
        ..shipped
    }
}

/// Thresholds tried for the answer threshold.
pub(crate) fn answer_thresholds() -> impl Iterator<Item = f32> {
    (20..=80).map(|i| i as f32 / 100.0)
}

/// Scores the bot's decision at `threshold` (see [`settings_at`]).
pub(crate) fn answer_scores(asked: &[Asked], threshold: f32) -> AnswerScores {
    let settings = settings_at(threshold);
    let none = Understanding::default();
    let (mut right, mut wrong, mut abstained, mut wrong_missing) = (0, 0, 0, 0);
    let (mut answerable, mut unanswerable) = (0, 0);
    for a in asked {
        let reply = decide(&settings, a.candidates.clone(), &a.judged, &none);
        let answered = matches!(reply.outcome, Outcome::Answered | Outcome::Clarify);
        match &a.target {
            Some(target) => {
                answerable += 1;
                let links: Vec<&str> = a
                    .candidates
                    .iter()
                    .filter(|p| &p.path == target)
                    .map(|p| p.link.as_str())
                    .collect();
                if answered {
                    if reply
                        .sources
                        .iter()
                        .any(|s| links.contains(&s.url.as_str()))
                    {
                        right += 1
                    } else {
                        wrong += 1
                    }
                }
            }
            None => {
                unanswerable += 1;
                if answered {
                    wrong_missing += 1
                } else {
                    abstained += 1
                }
            }
        }
    }
    let share = |n: usize, of: usize| n as f64 / of.max(1) as f64;
    AnswerScores {
        right: share(right, answerable),
        wrong: share(wrong, answerable),
        abstained_when_missing: share(abstained, unanswerable),
        wrong_when_missing: share(wrong_missing, unanswerable),
        decision_accuracy: share(right + abstained, asked.len()),
        answerable,
        unanswerable,
    }
}

#[derive(Deserialize)]
struct QuestionsFile {
    questions: Vec<Question>,
}

#[derive(Deserialize)]
struct Question {
    q: String,
    article: String,
}

/// The demo knowledge base's held-out questions through the bot's real retrieval and decision.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoAnswersReport {
    /// Scores at the shipped answer threshold.
    pub at_default: AnswerScores,
    /// The shipped answer threshold.
    pub default_threshold: f32,
    /// Decision accuracy at each threshold (for the record; nothing is chosen on this set).
    pub sweep: Vec<(f32, f64)>,
    /// Questions decided wrongly at the default threshold: (question, expected, what the bot did).
    pub mistakes: Vec<(String, String, String)>,
}

/// Asks the questions of `questions` (YAML) of the knowledge base in `kb_dir`.
pub fn demo_answers(
    kb_dir: &Path,
    questions: &Path,
    encoder: &Encoder,
    cache: &EmbeddingCache,
    keyword_weight: f32,
) -> anyhow::Result<DemoAnswersReport> {
    let text = std::fs::read_to_string(questions)
        .with_context(|| format!("reading {}", questions.display()))?;
    let file: QuestionsFile =
        serde_yaml::from_str(&text).with_context(|| format!("parsing {}", questions.display()))?;
    let (kb, report) = KnowledgeBase::open(kb_dir, encoder.clone(), cache.clone())?;
    anyhow::ensure!(
        report.problems.is_empty(),
        "the knowledge base in {} has problems: {:?}",
        kb_dir.display(),
        report.problems
    );
    let articles = kb.articles();
    for q in &file.questions {
        anyhow::ensure!(
            q.article == "none" || articles.iter().any(|a| a.path == q.article),
            "{}: \"{}\" names article {}, which is not in {}",
            questions.display(),
            q.q,
            q.article,
            kb_dir.display()
        );
    }
    let texts: Vec<String> = file
        .questions
        .iter()
        .map(|q| kb.correct(&q.q).into_owned())
        .collect();
    let vecs = super::data::embed(encoder, cache, "demo questions", &texts)?;
    let asked = file
        .questions
        .iter()
        .zip(&vecs)
        .map(|(q, v)| {
            Ok(Asked::new(
                &q.q,
                kb.search_with(&q.q, v, 10, keyword_weight)?,
                (q.article != "none").then(|| q.article.clone()),
                &kb,
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let settings = BotSettings::default();
    let threshold = settings.choices_threshold;
    let none = Understanding::default();
    let mistakes = file
        .questions
        .iter()
        .zip(&asked)
        .filter_map(|(q, a)| {
            let one = std::slice::from_ref(a);
            let scores = answer_scores(one, threshold);
            (scores.decision_accuracy < 1.0).then(|| {
                let reply = decide(&settings, a.candidates.clone(), &a.judged, &none);
                let did = match reply.outcome {
                    Outcome::Answered | Outcome::Clarify => format!(
                        "{:?} with {} ({:.2})",
                        reply.outcome,
                        a.candidates.first().map_or("-", |p| p.path.as_str()),
                        reply.confidence
                    ),
                    other => format!("{other:?} ({:.2})", reply.confidence),
                };
                (q.q.clone(), q.article.clone(), did)
            })
        })
        .collect();
    Ok(DemoAnswersReport {
        at_default: answer_scores(&asked, threshold),
        default_threshold: threshold,
        sweep: answer_thresholds()
            .map(|t| (t, answer_scores(&asked, t).decision_accuracy))
            .collect(),
        mistakes,
    })
}

/// `frontdesk eval --kb DIR --questions FILE --dump OUT`: for every question of the set the base
/// should answer or decline, the articles among the bot's top passages with their answerability
/// features (`kb::FEATURES`, then `kb::RERANK_FEATURES` when a `reranker` is given) and whether
/// each is one of the question's pages, one JSON object per line, so decisions can be fitted and
/// compared offline in seconds. Returns what it wrote and the mean times it measured (this build).
pub fn dump_features(
    kb_dir: &Path,
    set: &super::QuestionSet,
    encoder: &Encoder,
    cache: &EmbeddingCache,
    reranker: Option<&Reranker>,
    out: &Path,
) -> anyhow::Result<DumpReport> {
    use std::io::Write;
    let (kb, report) = KnowledgeBase::open(kb_dir, encoder.clone(), cache.clone())
        .with_context(|| format!("opening the knowledge base {}", kb_dir.display()))?;
    if !report.problems.is_empty() {
        eprintln!("articles that failed to load: {:?}", report.problems);
    }
    let asked: Vec<&super::Question> = set
        .questions
        .iter()
        .filter(|q| matches!(q.expect, super::Expect::Answer | super::Expect::Decline))
        .collect();
    // Embedded as the bot reads them: misspelt words corrected against the base.
    let started = std::time::Instant::now();
    let texts: Vec<String> = asked
        .iter()
        .map(|q| kb.correct(&q.text).into_owned())
        .collect();
    let correcting = started.elapsed();
    let corrected = asked
        .iter()
        .zip(&texts)
        .filter(|(q, t)| q.text != **t)
        .count();
    let vectors = super::data::embed(encoder, cache, "questions", &texts)?;
    let calibration = kb.calibration();
    let lexicon = kb.lexicon();
    let names: Vec<&str> = crate::kb::FEATURES
        .iter()
        .chain(reranker.map_or(&[][..], |_| &crate::kb::RERANK_FEATURES[..]))
        .copied()
        .collect();
    let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut file = std::io::BufWriter::new(file);
    let mut judging = std::time::Duration::ZERO;
    let mut reranking = std::time::Duration::ZERO;
    for (q, v) in asked.iter().zip(&vectors) {
        let candidates = kb.search_with(&q.text, v, crate::bot::CANDIDATES, kb.keyword_weight())?;
        let started = std::time::Instant::now();
        let scores = reranker
            .map(|r| r.score(&q.text, &candidates))
            .transpose()?;
        reranking += started.elapsed();
        let started = std::time::Instant::now();
        std::hint::black_box(Model::shipped().judge(&q.text, &candidates, &calibration, &lexicon));
        judging += started.elapsed();
        // In the search's order, as the fitting script expects (it measures the rerank itself).
        let judged = crate::kb::answerability_features_reranked(
            &q.text,
            &candidates,
            scores.as_deref(),
            &calibration,
            &lexicon,
        );
        let line = serde_json::json!({
            "set": set.name,
            "text": q.text,
            "answerable": q.expect == super::Expect::Answer,
            "feature_names": names,
            "candidates": judged.iter().map(|j| serde_json::json!({
                "path": j.path,
                "right": q.pages.contains(&j.path),
                "features": j.features,
            })).collect::<Vec<_>>(),
        });
        writeln!(file, "{line}")?;
    }
    file.flush()?;
    let n = asked.len().max(1) as u32;
    Ok(DumpReport {
        questions: asked.len(),
        judging: judging / n,
        reranking: reranking / n,
        correcting: correcting / n,
        corrected,
    })
}

/// What [`dump_features`] wrote and measured.
#[derive(Debug, Clone, Copy)]
pub struct DumpReport {
    /// Questions written.
    pub questions: usize,
    /// Mean time the shipped model took to judge one question's candidates (features and
    /// logistic unit).
    pub judging: std::time::Duration,
    /// Mean time the reranker took to rescore one question's candidates.
    pub reranking: std::time::Duration,
    /// Mean time spelling correction took per question.
    pub correcting: std::time::Duration,
    /// Questions that spelling correction changed.
    pub corrected: usize,
}
