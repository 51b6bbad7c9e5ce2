//! Does an article of this knowledge base answer the question, and which one? A small logistic
//! model over features that mean the same on any help centre, fitted offline on data that does not
//! include the bases it is reported on (docs/EVALUATION.md, `models/answerability.json`).
//!
//! The retrieval's top passages are grouped by article; each article is described by how similar
//! its best passage is (raw and as this base's [`Calibration`] percentile), how far it leads or
//! trails the other articles, whether keyword search agrees, how well its headings fit, and how many
//! of the question's content words — weighted by how rare they are in this base — the passage, the
//! article, the article's title and headings alone, and the whole base contain: a question the base
//! cannot answer often uses words the base never uses, and help centres title an article with the
//! words customers ask about; and how far the passage stands out from the question's similarity to every section
//! of the base (in standard deviations), which means the same whatever the scale of cosines on a
//! base. The model's probability that the article answers the question both reranks the
//! articles and is the confidence the bot decides on.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use serde::Deserialize;

use super::{Article, Calibration, Passage};

/// The features, in the order the model's weights use.
pub const FEATURES: [&str; 16] = [
    "similarity",
    "percentile",
    "gap_to_best",
    "margin",
    "inverse_rank",
    "keyword_score",
    "inverse_keyword_rank",
    "heading_similarity",
    "passage_coverage",
    "article_coverage",
    "base_coverage",
    "question_words",
    "passages_found",
    "similarity_x_article_coverage",
    "standing",
    "title_coverage",
];

/// What the reranker ([`super::Reranker`]) adds, after [`FEATURES`], when it has rescored the top
/// passages: the article's best cross-encoder probability, the inverse of its rank by that
/// probability, and its lead over the best other article's.
pub const RERANK_FEATURES: [&str; 3] =
    ["rerank_probability", "rerank_inverse_rank", "rerank_margin"];

/// How often each content word occurs in this base (sections containing it) and which words each
/// article uses: rebuilt by every sync before the changed articles are searchable.
#[derive(Debug, Default)]
pub struct Lexicon {
    sections: usize,
    df: HashMap<String, u32>,
    articles: HashMap<String, HashSet<String>>,
    /// Each article's title and headings alone: the words its editors chose to say what it is
    /// about ("Bounce rate" for "what does bounce rate mean").
    titles: HashMap<String, HashSet<String>>,
    /// Each section's words with its article's title and its headings, by (path, anchor), so a
    /// turn does not tokenise its passages (None: two sections share the anchor, so the turn
    /// tokenises the one it has).
    passages: HashMap<(String, String), Option<HashSet<String>>>,
}

impl Lexicon {
    /// The words of `articles` (titles, headings and text).
    pub(crate) fn build<'a>(articles: impl Iterator<Item = &'a Article>) -> Self {
        let mut lexicon = Self::default();
        for article in articles {
            let mut in_article: HashSet<String> = words(&article.title).collect();
            let mut in_titles = in_article.clone();
            for section in &article.sections {
                lexicon.sections += 1;
                let mut in_section: HashSet<String> = words(&section.text).collect();
                for h in &section.heading_path {
                    in_section.extend(words(h));
                    in_titles.extend(words(h));
                }
                for w in &in_section {
                    *lexicon.df.entry(w.clone()).or_default() += 1;
                }
                in_article.extend(in_section.iter().cloned());
                in_section.extend(words(&article.title));
                lexicon
                    .passages
                    .entry((article.path.clone(), section.anchor.clone()))
                    .and_modify(|twice| *twice = None)
                    .or_insert(Some(in_section));
            }
            lexicon.articles.insert(article.path.clone(), in_article);
            lexicon.titles.insert(article.path.clone(), in_titles);
        }
        lexicon
    }

    /// How much a word tells: rare words more, words the base never uses most.
    fn idf(&self, word: &str) -> f32 {
        let n = self.sections.max(1) as f32;
        let df = self.df.get(word).copied().unwrap_or(0) as f32;
        (1.0 + n / (1.0 + df)).ln()
    }
}

pub use crate::nlu::content_words as words;

/// Passages the bot looks at (`bot::CANDIDATES`): the share of them an article holds is a feature,
/// measured against this many even when the base has fewer sections.
const PASSAGES: usize = 10;

/// One article among the candidates, with its best passage and its features.
#[derive(Debug, Clone)]
pub struct Judged {
    /// The article's path.
    pub path: String,
    /// Index of its best passage in the candidates.
    pub passage: usize,
    /// The features, in [`FEATURES`] order.
    pub features: Vec<f32>,
    /// The model's probability that this article answers the question.
    pub probability: f32,
}

/// The features of every article among `candidates` (best first, as the search ranked them),
/// in the order of their first passage; probabilities are left at 0.
pub fn features(
    question: &str,
    candidates: &[Passage],
    calibration: &Calibration,
    lexicon: &Lexicon,
) -> Vec<Judged> {
    features_reranked(question, candidates, None, calibration, lexicon)
}

/// [`features`], followed by the [`RERANK_FEATURES`] when `rerank` holds the reranker's logits of
/// the first candidates (an article none of whose passages was rescored gets 0 for each). An
/// article's passage is then the one the reranker prefers among its rescored ones.
pub fn features_reranked(
    question: &str,
    candidates: &[Passage],
    rerank: Option<&[f32]>,
    calibration: &Calibration,
    lexicon: &Lexicon,
) -> Vec<Judged> {
    let q_words: Vec<String> = {
        let mut seen = HashSet::new();
        words(question).filter(|w| seen.insert(w.clone())).collect()
    };
    let idf: Vec<f32> = q_words.iter().map(|w| lexicon.idf(w)).collect();
    let total: f32 = idf.iter().sum();
    let coverage = |has: &dyn Fn(&str) -> bool| -> f32 {
        if total <= 0.0 {
            return 0.0;
        }
        q_words
            .iter()
            .zip(&idf)
            .filter(|(w, _)| has(w))
            .map(|(_, i)| i)
            .sum::<f32>()
            / total
    };
    let base_coverage = coverage(&|w| lexicon.df.contains_key(w));
    let best_similarity = candidates
        .iter()
        .map(|p| p.similarity)
        .fold(f32::NEG_INFINITY, f32::max);
    let best_bm25 = candidates
        .iter()
        .filter_map(|p| p.bm25)
        .fold(0.0f32, f32::max);

    let mut order: Vec<&str> = Vec::new();
    for p in candidates {
        if !order.contains(&p.path.as_str()) {
            order.push(&p.path);
        }
    }
    let mut judged: Vec<Judged> = order
        .iter()
        .enumerate()
        .map(|(rank, path)| {
            let own: Vec<(usize, &Passage)> = candidates
                .iter()
                .enumerate()
                .filter(|(_, p)| p.path == *path)
                .collect();
            let (index, best) = own
                .iter()
                .copied()
                .max_by(|a, b| a.1.similarity.total_cmp(&b.1.similarity))
                .expect("every article in the order has a passage");
            let similarity = best.similarity;
            let others = candidates
                .iter()
                .filter(|p| p.path != *path)
                .map(|p| p.similarity)
                .fold(f32::NEG_INFINITY, f32::max);
            // With no other article to compare (a base of one), no lead is claimed.
            let margin = if others.is_finite() {
                similarity - others
            } else {
                0.0
            };
            let keyword = own.iter().filter_map(|(_, p)| p.bm25).fold(0.0, f32::max);
            let keyword_rank = own.iter().filter_map(|(_, p)| p.bm25_rank).min();
            let heading = own
                .iter()
                .map(|(_, p)| p.heading_similarity)
                .fold(f32::NEG_INFINITY, f32::max);
            let tokenised;
            let passage_words = match lexicon
                .passages
                .get(&(best.path.clone(), best.anchor.clone()))
            {
                Some(Some(set)) => set,
                // A section the lexicon does not know (a caller's own passage), or one of two with
                // the same anchor.
                _ => {
                    tokenised = words(&best.text)
                        .chain(words(&best.title))
                        .chain(best.heading_path.iter().flat_map(|h| words(h)))
                        .collect::<HashSet<String>>();
                    &tokenised
                }
            };
            let passage_coverage = coverage(&|w| passage_words.contains(w));
            let article_coverage = match lexicon.articles.get(*path) {
                Some(set) => coverage(&|w| set.contains(w) || passage_words.contains(w)),
                None => passage_coverage,
            };
            let title_coverage = match lexicon.titles.get(*path) {
                Some(set) => coverage(&|w| set.contains(w)),
                None => {
                    let own: HashSet<String> = words(&best.title)
                        .chain(best.heading_path.iter().flat_map(|h| words(h)))
                        .collect();
                    coverage(&|w| own.contains(w))
                }
            };
            let features = vec![
                similarity,
                calibration.confidence(similarity),
                best_similarity - similarity,
                margin,
                1.0 / (rank + 1) as f32,
                if best_bm25 > 0.0 {
                    keyword / best_bm25
                } else {
                    0.0
                },
                keyword_rank.map_or(0.0, |r| 1.0 / r as f32),
                heading,
                passage_coverage,
                article_coverage,
                base_coverage,
                (1.0 + q_words.len() as f32).ln(),
                own.len() as f32 / PASSAGES as f32,
                similarity * article_coverage,
                best.standing,
                title_coverage,
            ];
            Judged {
                path: (*path).to_owned(),
                passage: index,
                features,
                probability: 0.0,
            }
        })
        .collect();
    if let Some(scores) = rerank {
        add_rerank_features(&mut judged, candidates, scores);
    }
    judged
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn add_rerank_features(judged: &mut [Judged], candidates: &[Passage], scores: &[f32]) {
    // Each article's best rescored passage and its probability (None: none was rescored).
    let best: Vec<Option<(usize, f32)>> = judged
        .iter()
        .map(|j| {
            candidates
                .iter()
                .zip(scores)
                .enumerate()
                .filter(|(_, (p, _))| p.path == j.path)
                .map(|(i, (_, s))| (i, sigmoid(*s)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
        })
        .collect();
    for (k, j) in judged.iter_mut().enumerate() {
        let Some((passage, probability)) = best[k] else {
            j.features.extend([0.0; RERANK_FEATURES.len()]);
            continue;
        };
        j.passage = passage;
        let ahead = best
            .iter()
            .flatten()
            .filter(|(_, p)| *p > probability)
            .count();
        let others = best
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != k)
            .map(|(_, b)| b.map_or(0.0, |(_, p)| p))
            .fold(0.0f32, f32::max);
        j.features
            .extend([probability, 1.0 / (ahead + 1) as f32, probability - others]);
    }
}

/// The fitted model: standardised features, one logistic unit, and the decision thresholds chosen
/// with it (on the training data only).
#[derive(Debug, Clone, Deserialize)]
pub struct Model {
    /// Feature names, which must be [`FEATURES`].
    pub features: Vec<String>,
    /// Subtracted from each feature...
    pub mean: Vec<f32>,
    /// ...then divided by this.
    pub scale: Vec<f32>,
    /// Weight of each standardised feature.
    pub weights: Vec<f32>,
    /// The intercept.
    pub bias: f32,
    /// Least probability to answer directly (the default of `bot.answer_threshold`).
    pub answer_threshold: f32,
    /// Least probability of the best article to offer anything (the default of
    /// `bot.choices_threshold`).
    pub choices_threshold: f32,
    /// Least probability for a second or third article to be offered beside the best.
    pub option_threshold: f32,
    /// Below the choices threshold, least probability for a second or third article to be counted
    /// with the best (the default of `bot.unsure_option_threshold`).
    pub unsure_option_threshold: f32,
    /// What it was fitted on.
    pub fitted_on: String,
}

impl Model {
    /// The model shipped in `models/answerability.json`, for a bot without the reranker.
    pub fn shipped() -> &'static Model {
        static MODEL: OnceLock<Model> = OnceLock::new();
        MODEL.get_or_init(|| {
            let model: Model =
                serde_json::from_str(include_str!("../../models/answerability.json"))
                    .expect("models/answerability.json is valid (checked by a unit test)");
            model
        })
    }

    /// The model shipped in `models/answerability-rerank.json`, fitted with the reranker's
    /// features ([`RERANK_FEATURES`]) after the others.
    pub fn shipped_reranked() -> &'static Model {
        static MODEL: OnceLock<Model> = OnceLock::new();
        MODEL.get_or_init(|| {
            let model: Model =
                serde_json::from_str(include_str!("../../models/answerability-rerank.json"))
                    .expect("models/answerability-rerank.json is valid (checked by a unit test)");
            model
        })
    }

    /// The probability that an article with `features` answers the question.
    pub fn probability(&self, features: &[f32]) -> f32 {
        let z: f32 = features
            .iter()
            .zip(&self.mean)
            .zip(&self.scale)
            .zip(&self.weights)
            .map(|(((x, m), s), w)| w * (x - m) / s)
            .sum::<f32>()
            + self.bias;
        1.0 / (1.0 + (-z).exp())
    }

    /// Every article among `candidates` with its probability, most probable first: the rerank.
    pub fn judge(
        &self,
        question: &str,
        candidates: &[Passage],
        calibration: &Calibration,
        lexicon: &Lexicon,
    ) -> Vec<Judged> {
        self.judge_reranked(question, candidates, None, calibration, lexicon)
    }

    /// [`Model::judge`] with the reranker's logits of the first candidates (`rerank`), for a
    /// model fitted with the [`RERANK_FEATURES`].
    pub fn judge_reranked(
        &self,
        question: &str,
        candidates: &[Passage],
        rerank: Option<&[f32]>,
        calibration: &Calibration,
        lexicon: &Lexicon,
    ) -> Vec<Judged> {
        let mut judged = features_reranked(question, candidates, rerank, calibration, lexicon);
        for j in &mut judged {
            j.probability = self.probability(&j.features);
        }
        judged.sort_by(|a, b| b.probability.total_cmp(&a.probability));
        judged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_model_matches_the_features() {
        let m = Model::shipped();
        assert_eq!(m.features, FEATURES);
        assert_eq!(m.mean.len(), FEATURES.len());
        assert_eq!(m.scale.len(), FEATURES.len());
        assert_eq!(m.weights.len(), FEATURES.len());
        assert!(m.scale.iter().all(|s| *s > 0.0));
        assert!(m.choices_threshold <= m.answer_threshold);
        let r = Model::shipped_reranked();
        let names: Vec<&str> = FEATURES.iter().chain(&RERANK_FEATURES).copied().collect();
        assert_eq!(r.features, names);
        for v in [&r.mean, &r.scale, &r.weights] {
            assert_eq!(v.len(), names.len());
        }
        assert!(r.scale.iter().all(|s| *s > 0.0));
        assert!(r.choices_threshold <= r.answer_threshold);
    }

    #[test]
    fn the_reranker_picks_the_passage_and_ranks_the_articles() {
        let passage = |path: &str, anchor: &str, similarity: f32| Passage {
            path: path.into(),
            title: path.into(),
            heading_path: vec![anchor.into()],
            anchor: anchor.into(),
            link: format!("/kb/{path}#{anchor}"),
            text: format!("{anchor} text"),
            similarity,
            bm25: None,
            bm25_rank: None,
            semantic_rank: 1,
            fused: similarity,
            heading_similarity: 0.0,
            standing: 0.0,
            quote_from: 0,
        };
        let candidates = [
            passage("stats.md", "stats-api", 0.6),
            passage("export.md", "intro", 0.55),
            passage("stats.md", "csv-export", 0.5),
            passage("other.md", "far", 0.4),
        ];
        let lexicon = Lexicon::default();
        let cal = Calibration::default();
        // The reranker scored the first three; the CSV section best.
        let judged = features_reranked(
            "export stats as csv",
            &candidates,
            Some(&[-1.0, 0.0, 2.0]),
            &cal,
            &lexicon,
        );
        assert!(judged
            .iter()
            .all(|j| j.features.len() == FEATURES.len() + 3));
        let stats = &judged[0];
        assert_eq!(stats.path, "stats.md");
        assert_eq!(stats.passage, 2, "the section the reranker prefers");
        let n = FEATURES.len();
        assert!((stats.features[n] - sigmoid(2.0)).abs() < 1e-6);
        assert_eq!(stats.features[n + 1], 1.0);
        assert!((stats.features[n + 2] - (sigmoid(2.0) - 0.5)).abs() < 1e-6);
        let export = &judged[1];
        assert_eq!(export.features[n + 1], 0.5);
        assert!(export.features[n + 2] < 0.0);
        let other = &judged[2];
        assert_eq!(&other.features[n..], &[0.0, 0.0, 0.0], "not rescored");
        assert_eq!(other.passage, 3);
    }

    #[test]
    fn an_article_stands_out_as_far_as_its_best_passage() {
        let passage = |path: &str, anchor: &str, similarity: f32, standing: f32| Passage {
            path: path.into(),
            title: path.into(),
            heading_path: vec![anchor.into()],
            anchor: anchor.into(),
            link: format!("/kb/{path}#{anchor}"),
            text: format!("{anchor} text"),
            similarity,
            bm25: None,
            bm25_rank: None,
            semantic_rank: 1,
            fused: similarity,
            heading_similarity: 0.0,
            standing,
            quote_from: 0,
        };
        let candidates = [
            passage("dark-mode.md", "theme", 0.55, 4.2),
            passage("dark-mode.md", "colours", 0.40, 2.0),
            passage("other.md", "far", 0.30, 0.8),
        ];
        let judged = features(
            "is there dark mode",
            &candidates,
            &Calibration::default(),
            &Lexicon::default(),
        );
        let at = FEATURES.iter().position(|f| *f == "standing").unwrap();
        assert_eq!(judged[0].features[at], 4.2, "the article's best passage");
        assert_eq!(judged[1].features[at], 0.8);
    }

    #[test]
    fn content_words_are_stemmed_and_stop_words_dropped() {
        let w: Vec<String> = words("How do I export my stats as CSV files? Exporting!").collect();
        assert_eq!(w, ["export", "stat", "csv", "file", "export"]);
    }

    #[test]
    fn words_the_base_never_uses_lower_its_coverage() {
        let article = super::super::parse(
            "billing.md",
            "# Billing\n\nWe accept credit cards and PayPal.\n\n## Invoices\n\nDownload invoices from settings.\n",
        )
        .unwrap();
        let lexicon = Lexicon::build([&article].into_iter());
        let passage = Passage {
            path: "billing.md".into(),
            title: "Billing".into(),
            heading_path: vec![],
            anchor: String::new(),
            link: "/kb/billing.md".into(),
            text: "We accept credit cards and PayPal.".into(),
            similarity: 0.5,
            bm25: Some(2.0),
            bm25_rank: Some(1),
            semantic_rank: 1,
            fused: 0.6,
            heading_similarity: 0.3,
            standing: 0.0,
            quote_from: 0,
        };
        let cal = Calibration::default();
        let known = features(
            "do you accept paypal",
            std::slice::from_ref(&passage),
            &cal,
            &lexicon,
        );
        let unknown = features("iphone app push notifications", &[passage], &cal, &lexicon);
        let base = FEATURES.iter().position(|f| *f == "base_coverage").unwrap();
        assert_eq!(known[0].features[base], 1.0);
        assert_eq!(unknown[0].features[base], 0.0);
    }

    #[test]
    fn words_in_an_articles_title_or_headings_count_apart_from_its_text() {
        let metrics = super::super::parse(
            "metrics.md",
            "# Metrics definitions\n\nWhat each number means.\n\n## Bounce rate\n\nThe share of single-page visits.\n",
        )
        .unwrap();
        let tips = super::super::parse(
            "tips.md",
            "# Tips\n\nA high bounce rate is not always bad.\n",
        )
        .unwrap();
        let lexicon = Lexicon::build([&metrics, &tips].into_iter());
        let passage = |path: &str, title: &str, text: &str| Passage {
            path: path.into(),
            title: title.into(),
            heading_path: vec![],
            anchor: String::new(),
            link: format!("/kb/{path}"),
            text: text.into(),
            similarity: 0.5,
            bm25: None,
            bm25_rank: None,
            semantic_rank: 1,
            fused: 0.5,
            heading_similarity: 0.3,
            standing: 0.0,
            quote_from: 0,
        };
        let judged = features(
            "what is a bounce rate",
            &[
                passage("tips.md", "Tips", "A high bounce rate is not always bad."),
                passage(
                    "metrics.md",
                    "Metrics definitions",
                    "What each number means.",
                ),
            ],
            &Calibration::default(),
            &lexicon,
        );
        let title = FEATURES
            .iter()
            .position(|f| *f == "title_coverage")
            .unwrap();
        let article = FEATURES
            .iter()
            .position(|f| *f == "article_coverage")
            .unwrap();
        let (tips, metrics) = (&judged[0], &judged[1]);
        assert_eq!(tips.features[title], 0.0, "'bounce rate' only in its text");
        assert_eq!(tips.features[article], 1.0);
        assert!(
            metrics.features[title] == 1.0,
            "a heading says 'Bounce rate': {:?}",
            metrics.features
        );
    }

    #[test]
    fn two_sections_with_one_anchor_each_count_their_own_words() {
        let article = super::super::parse(
            "setup.md",
            "# Setup\n\n## Steps\n\nInstall the wordpress plugin.\n\n## Steps\n\nPaste the snippet into shopify.\n",
        )
        .unwrap();
        let lexicon = Lexicon::build([&article].into_iter());
        let n = article.sections.len();
        assert_eq!(
            article.sections[n - 1].anchor,
            article.sections[n - 2].anchor
        );
        let covered = FEATURES
            .iter()
            .position(|f| *f == "passage_coverage")
            .unwrap();
        for (section, word) in [(n - 2, "wordpress"), (n - 1, "shopify")] {
            let s = &article.sections[section];
            assert!(s.text.contains(word), "{:?}", article.sections);
            let passage = Passage {
                path: "setup.md".into(),
                title: "Setup".into(),
                heading_path: s.heading_path.clone(),
                anchor: s.anchor.clone(),
                link: "/kb/setup.md#steps".into(),
                text: s.text.clone(),
                similarity: 0.5,
                bm25: None,
                bm25_rank: None,
                semantic_rank: 1,
                fused: 0.5,
                heading_similarity: 0.3,
                standing: 0.0,
                quote_from: 0,
            };
            let f = features(word, &[passage], &Calibration::default(), &lexicon);
            assert_eq!(f[0].features[covered], 1.0, "{word}");
        }
    }
}
