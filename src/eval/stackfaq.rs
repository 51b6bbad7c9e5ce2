//! StackFAQ: each of the 125 FAQ entries becomes one knowledge-base article (title = the question,
//! body = the answers), loaded through the real markdown loader; each paraphrased user query is
//! asked, and we look at where the right article ranks.
//!
//! The keyword weight of hybrid search is chosen on the even-numbered paraphrases of every entry
//! (dev) and reported on the odd-numbered ones (test).

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

use super::answering::{answer_scores, answer_thresholds, AnsweringReport, Asked};
use super::RankMetrics;
use crate::kb::KnowledgeBase;
use crate::nlu::{EmbeddingCache, Encoder};
use crate::settings::BotSettings;

/// Keyword weights tried on the dev queries.
const WEIGHTS: [f32; 7] = [0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5];

#[derive(Deserialize)]
struct File {
    root: Root,
}

#[derive(Deserialize)]
struct Root {
    qapair: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    rephr: Vec<Option<String>>,
    #[serde(default)]
    question: Option<String>,
    #[serde(default)]
    answer: OneOrMany,
}

/// The data set writes a lone answer as a string and several as a list.
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
    #[default]
    None,
}

impl OneOrMany {
    fn join(&self) -> String {
        match self {
            OneOrMany::One(s) => s.clone(),
            OneOrMany::Many(v) => v.join("\n\n"),
            OneOrMany::None => String::new(),
        }
    }
}

/// Scores of the three retrieval methods on one split.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RetrievalScores {
    /// BM25 alone.
    pub bm25: RankMetrics,
    /// Embedding similarity alone.
    pub semantic: RankMetrics,
    /// Hybrid at the chosen keyword weight.
    pub hybrid: RankMetrics,
}

/// The StackFAQ result.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StackFaqReport {
    /// Keyword weight chosen on dev.
    pub keyword_weight: f32,
    /// Whether title matching was chosen on dev.
    pub title_match: bool,
    /// Hybrid MRR@10 on dev for each (title matching, keyword weight) tried.
    pub dev_sweep: Vec<(bool, f32, f64)>,
    /// Scores on the test queries.
    pub test: RetrievalScores,
    /// Scores on all queries (dev and test together).
    pub all: RetrievalScores,
    /// Answer or say "I don't know": the answer threshold chosen on dev, scored on test.
    pub answering: AnsweringReport,
}

/// Runs the StackFAQ evaluation on `data_dir/stackfaq/stackExchange-FAQ.json`; `limit` keeps only
/// the first N queries of each split (for a quick check).
pub fn stackfaq(
    data_dir: &Path,
    encoder: &Encoder,
    cache: &EmbeddingCache,
    limit: Option<usize>,
) -> anyhow::Result<StackFaqReport> {
    let path = data_dir.join("stackfaq/stackExchange-FAQ.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let file: File =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;

    let kb_dir = tempfile::tempdir()?;
    for (i, entry) in file.root.qapair.iter().enumerate() {
        let title = entry
            .question
            .as_deref()
            .unwrap_or("Untitled")
            .replace('"', "'");
        let body = entry.answer.join();
        std::fs::write(
            kb_dir.path().join(format!("faq-{i:03}.md")),
            format!("---\ntitle: \"{title}\"\n---\n\n{body}\n"),
        )?;
    }
    let (kb, report) = KnowledgeBase::open(kb_dir.path(), encoder.clone(), cache.clone())?;
    anyhow::ensure!(
        report.problems.is_empty(),
        "StackFAQ articles failed to load: {:?}",
        report.problems
    );

    let mut dev = Vec::new();
    let mut test = Vec::new();
    for (i, entry) in file.root.qapair.iter().enumerate() {
        let queries = entry
            .rephr
            .iter()
            .flatten()
            .filter(|q| q.trim() != "*" && !q.trim().is_empty());
        for (j, q) in queries.enumerate() {
            let target = format!("faq-{i:03}.md");
            if j % 2 == 0 {
                dev.push((q.clone(), target))
            } else {
                test.push((q.clone(), target))
            }
        }
    }
    if let Some(n) = limit {
        dev.truncate(n);
        test.truncate(n);
    }
    let embed = |what: &str, qs: &[(String, String)]| {
        // Embedded as the bot reads them: misspelt words corrected against the base.
        let texts: Vec<String> = qs.iter().map(|(q, _)| kb.correct(q).into_owned()).collect();
        super::data::embed(encoder, cache, what, &texts)
    };
    let dev_vecs = embed("StackFAQ dev queries", &dev)?;
    let test_vecs = embed("StackFAQ test queries", &test)?;

    let hybrid_ranks = |qs: &[(String, String)],
                        vecs: &[crate::nlu::Embedding],
                        w: f32|
     -> anyhow::Result<Vec<Option<usize>>> {
        qs.iter()
            .zip(vecs)
            .map(|((q, target), v)| {
                let passages = kb.search_with(q, v, 60, w)?;
                Ok(article_rank(
                    passages.iter().map(|p| p.path.as_str()),
                    target,
                ))
            })
            .collect()
    };
    let bm25_ranks = |qs: &[(String, String)]| -> anyhow::Result<Vec<Option<usize>>> {
        qs.iter()
            .map(|(q, target)| {
                let hits = kb.search_bm25(q, 100)?;
                Ok(article_rank(
                    hits.iter().map(|(p, _, _)| p.as_str()),
                    target,
                ))
            })
            .collect()
    };

    let mut dev_sweep = Vec::new();
    for title_match in [false, true] {
        kb.set_title_match(title_match);
        for w in WEIGHTS {
            dev_sweep.push((
                title_match,
                w,
                RankMetrics::from_ranks(&hybrid_ranks(&dev, &dev_vecs, w)?).mrr_at_10,
            ));
        }
    }
    let (title_match, keyword_weight) = dev_sweep
        .iter()
        .max_by(|a, b| a.2.total_cmp(&b.2))
        .map(|b| (b.0, b.1))
        .expect("the sweep tries at least one setting");
    kb.set_title_match(title_match);

    let scores = |qs: &[(String, String)],
                  vecs: &[crate::nlu::Embedding]|
     -> anyhow::Result<RetrievalScores> {
        Ok(RetrievalScores {
            bm25: RankMetrics::from_ranks(&bm25_ranks(qs)?),
            semantic: RankMetrics::from_ranks(&hybrid_ranks(qs, vecs, 0.0)?),
            hybrid: RankMetrics::from_ranks(&hybrid_ranks(qs, vecs, keyword_weight)?),
        })
    };
    // Each query is asked twice: with its article, and with its article missing.
    let ask =
        |qs: &[(String, String)], vecs: &[crate::nlu::Embedding]| -> anyhow::Result<Vec<Asked>> {
            let mut asked = Vec::new();
            for ((q, target), v) in qs.iter().zip(vecs) {
                let found = kb.search_with(q, v, 20, keyword_weight)?;
                let present = found.iter().take(10).cloned().collect();
                asked.push(Asked::new(q, present, Some(target.clone()), &kb));
                let missing = found
                    .into_iter()
                    .filter(|p| &p.path != target)
                    .take(10)
                    .collect();
                asked.push(Asked::new(q, missing, None, &kb));
            }
            Ok(asked)
        };
    let dev_asked = ask(&dev, &dev_vecs)?;
    let answer_sweep: Vec<(f32, f64)> = answer_thresholds()
        .map(|t| (t, answer_scores(&dev_asked, t).decision_accuracy))
        .collect();
    let chosen_threshold = answer_sweep
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|b| b.0)
        .expect("the sweep tries at least one threshold");
    let test_asked = ask(&test, &test_vecs)?;
    let default_threshold = BotSettings::default().choices_threshold;
    let answering = AnsweringReport {
        chosen_threshold,
        default_threshold,
        dev_sweep: answer_sweep,
        test_chosen: answer_scores(&test_asked, chosen_threshold),
        test_default: answer_scores(&test_asked, default_threshold),
    };

    let test_scores = scores(&test, &test_vecs)?;
    let all: Vec<_> = dev.iter().chain(&test).cloned().collect();
    let all_vecs: Vec<_> = dev_vecs.iter().chain(&test_vecs).cloned().collect();
    let all_scores = scores(&all, &all_vecs)?;
    Ok(StackFaqReport {
        keyword_weight,
        title_match,
        dev_sweep,
        test: test_scores,
        all: all_scores,
        answering,
    })
}

/// 1-based rank of `target` among the distinct articles in `paths` (in order).
fn article_rank<'a>(paths: impl Iterator<Item = &'a str>, target: &str) -> Option<usize> {
    let mut seen: Vec<&str> = Vec::new();
    for p in paths {
        if !seen.contains(&p) {
            seen.push(p);
            if p == target {
                return Some(seen.len());
            }
        }
    }
    None
}
