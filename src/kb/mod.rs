//! The knowledge base: markdown articles split into sections, indexed for keyword search (tantivy,
//! BM25) and semantic search (sentence embeddings), kept in step with the files while running.
//!
//! The index lives in memory and is rebuilt from the markdown at start-up (a few hundred articles
//! take well under a second); the expensive part, the embeddings, is cached on disk by content hash.
//! [`KnowledgeBase::sync`] compares the folder with what is indexed and re-indexes only files whose
//! content changed, so the file watcher can call it on any change.

mod answerability;
mod article;
mod calibrate;
mod html;
mod index;
mod lint;
mod rerank;
mod spelling;
mod watch;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};

use sha2::{Digest, Sha256};

pub use answerability::{
    features as answerability_features, features_reranked as answerability_features_reranked,
    words, Judged, Lexicon, Model, FEATURES, RERANK_FEATURES,
};
pub use article::{linked_article, parse, slugify, Article, Section};
pub use calibrate::Calibration;
pub use html::render_html;
pub use lint::{lint, Finding, Severity};
pub use rerank::{passage_text, Reranker};
pub use spelling::{English, Speller};
pub use watch::Watcher;

use crate::nlu::{cosine, Embedding, EmbeddingCache, Encoder, NluError};
use index::LexicalIndex;

/// What can go wrong with the knowledge base.
#[derive(Debug, thiserror::Error)]
pub enum KbError {
    /// One article could not be read; the rest of the base is unaffected.
    #[error("{path}: {problem}")]
    Article {
        /// Path of the article, relative to the knowledge-base folder.
        path: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// The knowledge-base folder itself cannot be read.
    #[error("cannot read the knowledge base folder {dir}: {source}; check kb.dir in the settings")]
    Folder {
        /// The folder.
        dir: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The search index failed.
    #[error("search index error: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// Embedding sections or the query failed.
    #[error(transparent)]
    Nlu(#[from] NluError),
    /// The reranker (`bot.rerank`) could not be loaded or failed.
    #[error("reranker: {0}")]
    Reranker(String),
}

/// A passage found for a query.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Passage {
    /// Path of the article, relative to the knowledge base.
    pub path: String,
    /// Title of the article.
    pub title: String,
    /// Headings leading to the section.
    pub heading_path: Vec<String>,
    /// Anchor of the section within the article.
    pub anchor: String,
    /// Link to the section: the article's `url` front matter, or the server's own `/kb/...` page.
    pub link: String,
    /// The section's prose.
    pub text: String,
    /// Cosine similarity between the question and the section (0–1 in practice): the confidence.
    pub similarity: f32,
    /// BM25 score, when the keyword search found the section.
    pub bm25: Option<f32>,
    /// Rank in the keyword search (1-based), when found there.
    pub bm25_rank: Option<usize>,
    /// Rank in the semantic search (1-based).
    pub semantic_rank: usize,
    /// The score results are ordered by: similarity plus the keyword weight times the BM25 score
    /// relative to the query's best.
    pub fused: f32,
    /// Similarity between the question and the section's own heading alone (the title for the
    /// introduction): which section of an article the question is about.
    pub heading_similarity: f32,
    /// How far the similarity stands above the question's similarity to every section of the
    /// base, in standard deviations: a passage that answers stands out from the rest of the base,
    /// whatever the scale of cosines on this base.
    pub standing: f32,
    /// Byte offset in `text` where the part that matched the question begins: the start of the
    /// best piece when a piece of a long section matched better than the whole, else 0. What the
    /// bot quotes starts here.
    pub quote_from: usize,
}

/// Summary of one article, for listings.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ArticleSummary {
    /// Path relative to the knowledge base.
    pub path: String,
    /// Title.
    pub title: String,
    /// Number of sections.
    pub sections: usize,
}

/// A file that fails to load, for editors.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// Path relative to the knowledge base.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
    /// An earlier version of the file loaded and keeps answering until this is fixed.
    pub serving_previous: bool,
}

/// What one [`KnowledgeBase::sync`] changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    /// Articles added or re-indexed because their content changed.
    pub indexed: Vec<String>,
    /// Articles removed because their file is gone (or was left without text).
    pub removed: Vec<String>,
    /// Files that could not be read (the previous good version, if any, keeps serving).
    pub problems: Vec<String>,
    /// Sections whose embeddings had to be computed (the rest came from the cache).
    pub embedded: usize,
}

/// Handle to the knowledge base; clone it freely.
#[derive(Clone)]
pub struct KnowledgeBase {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    encoder: Encoder,
    cache: EmbeddingCache,
    index: LexicalIndex,
    keyword_weight: AtomicU32,
    title_match: std::sync::atomic::AtomicBool,
    /// Whether queries are searched with their misspelt words corrected (see [`Speller`]).
    spelling: std::sync::atomic::AtomicBool,
    /// Whether a long section also matches by its best piece (see [`section_pieces`]).
    pieces: std::sync::atomic::AtomicBool,
    /// The encoder's vocabulary's whole words, loaded once.
    english: Arc<English>,
    state: RwLock<State>,
    sync_lock: std::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    articles: BTreeMap<String, Indexed>,
    problems: BTreeMap<String, String>,
    /// How well articles match questions they do not answer (see [`Calibration`]).
    calibration: Arc<Calibration>,
    /// The base's words, for the answerability features (see [`Lexicon`]).
    lexicon: Arc<Lexicon>,
    /// The base's words, for correcting customers' typos (see [`Speller`]).
    speller: Arc<Speller>,
    /// Bumped by every sync that changed articles; a recalibration of an older one is dropped.
    generation: u64,
}

struct Indexed {
    hash: [u8; 32],
    article: Article,
    embeddings: Vec<Embedding>,
    /// The title alone: help-centre titles are often the very question customers ask.
    title_embedding: Embedding,
    /// Each section's own heading alone (the title for the introduction), one per section: the
    /// editors' questions, asked of the other articles to calibrate, and what tells which section
    /// of an article a question is about.
    heading_embeddings: Vec<Embedding>,
    /// A long section's overlapping pieces, one list per section (empty for a short one): a
    /// question about a detail deep in a long section matches the piece that holds it, where the
    /// whole section's vector is dominated by its opening (the encoder reads 256 tokens at most).
    /// Each piece with the byte offset in the section's text where it starts.
    piece_embeddings: Vec<Vec<(usize, Embedding)>>,
}

/// Each section's own heading (the title for the introduction).
fn headings(article: &Article) -> impl Iterator<Item = String> + '_ {
    article.sections.iter().map(|s| {
        s.heading_path
            .last()
            .cloned()
            .unwrap_or_else(|| article.title.clone())
    })
}

/// Candidates taken from each of the two searches before fusing.
const CANDIDATES: usize = 30;
/// How much keyword search counts next to semantic similarity when ranking (see `search_with`);
/// defined with the settings, which must not depend on the knowledge base.
pub use crate::settings::DEFAULT_KEYWORD_WEIGHT;

impl KnowledgeBase {
    /// Opens the knowledge base in `dir` and indexes every article (blocking; call at start-up).
    pub fn open(
        dir: &Path,
        encoder: Encoder,
        cache: EmbeddingCache,
    ) -> Result<(Self, SyncReport), KbError> {
        let english = match English::load(encoder.vocabulary()) {
            Ok(english) => english,
            Err(e) => {
                tracing::warn!(
                    "no spelling correction: cannot read the encoder's vocabulary {} ({e}); run `make setup`",
                    encoder.vocabulary().display()
                );
                English::default()
            }
        };
        let kb = Self {
            inner: Arc::new(Inner {
                dir: dir.to_owned(),
                encoder,
                cache,
                index: LexicalIndex::new()?,
                keyword_weight: AtomicU32::new(DEFAULT_KEYWORD_WEIGHT.to_bits()),
                title_match: std::sync::atomic::AtomicBool::new(true),
                spelling: std::sync::atomic::AtomicBool::new(true),
                pieces: std::sync::atomic::AtomicBool::new(true),
                english: Arc::new(english),
                state: RwLock::new(State::default()),
                sync_lock: std::sync::Mutex::new(()),
            }),
        };
        let report = kb.sync_inner(false)?;
        Ok((kb, report))
    }

    /// The folder the articles live in.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Brings the index in line with the folder: new and changed files are (re)indexed, deleted ones
    /// removed, untouched ones left alone. A file that fails to parse is reported and its previous
    /// version, if any, keeps serving; one left without text is reported and taken out.
    /// The knowledge base's calibration is measured again in the background (well under a second
    /// for a few hundred articles); until then the previous one serves.
    pub fn sync(&self) -> Result<SyncReport, KbError> {
        self.sync_inner(true)
    }

    fn sync_inner(&self, calibrate_in_background: bool) -> Result<SyncReport, KbError> {
        let _one_at_a_time = self
            .inner
            .sync_lock
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let files = match markdown_files(&self.inner.dir) {
            Ok(files) => files,
            Err(e) => {
                // Editors and the health check see it, not only the log; the articles loaded
                // before keep answering, and the next sync that reads the folder clears it.
                self.write().problems.insert(
                    FOLDER_PROBLEM.to_owned(),
                    format!(
                        "{FOLDER_PROBLEM}: {e}; the articles loaded before keep answering until the folder is back"
                    ),
                );
                return Err(e);
            }
        };
        let mut report = SyncReport::default();
        let mut changed: Vec<(String, [u8; 32], Article)> = Vec::new();
        let mut problems = BTreeMap::new();
        // Files left without text: an editor who blanks an article takes it back, so the version
        // before is not served either.
        let mut emptied = Vec::new();
        {
            let state = self.read();
            for (rel, full) in &files {
                let source = match std::fs::read(full) {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        problems.insert(rel.clone(), format!("{rel}: cannot be read ({e})"));
                        continue;
                    }
                };
                let hash: [u8; 32] = Sha256::digest(&source).into();
                if state.articles.get(rel).is_some_and(|a| a.hash == hash) {
                    continue;
                }
                let text = String::from_utf8_lossy(&source);
                match article::parse(rel, &text) {
                    Ok(article) if !article::has_text(&article) => {
                        problems.insert(rel.clone(), format!("{rel}: {}", article::NO_TEXT));
                        emptied.push(rel.clone());
                    }
                    Ok(article) => changed.push((rel.clone(), hash, article)),
                    Err(e) => {
                        problems.insert(rel.clone(), e.to_string());
                    }
                }
            }
        }
        let removed: Vec<String> = {
            let state = self.read();
            state
                .articles
                .keys()
                .filter(|p| !files.contains_key(*p) || emptied.contains(*p))
                .cloned()
                .collect()
        };

        // Embed every changed section, title, heading and piece of a long section in one go (the
        // cache skips unchanged text), in that order per article.
        let pieces: Vec<Vec<Vec<(usize, String)>>> = changed
            .iter()
            .map(|(_, _, a)| a.sections.iter().map(|s| section_pieces(a, s)).collect())
            .collect();
        let texts: Vec<String> = changed
            .iter()
            .zip(&pieces)
            .flat_map(|((_, _, a), pieces)| {
                a.sections
                    .iter()
                    .map(|s| embedding_text(a, s))
                    .chain([a.title.clone()])
                    .chain(headings(a))
                    .chain(pieces.iter().flatten().map(|(_, text)| text.clone()))
            })
            .collect();
        let (vectors, embedded) = self
            .inner
            .cache
            .embed_blocking(&self.inner.encoder, &texts)?;
        report.embedded = embedded;

        let mut vectors = vectors.into_iter();
        let mut upserts = Vec::new();
        for ((path, hash, article), pieces) in changed.into_iter().zip(pieces) {
            let n = article.sections.len();
            let embeddings: Vec<Embedding> = vectors.by_ref().take(n).collect();
            let title_embedding = vectors.next().expect("the title was embedded");
            let heading_embeddings: Vec<Embedding> = vectors.by_ref().take(n).collect();
            let piece_embeddings: Vec<Vec<(usize, Embedding)>> = pieces
                .iter()
                .map(|p| {
                    p.iter()
                        .map(|(from, _)| *from)
                        .zip(vectors.by_ref().take(p.len()))
                        .collect()
                })
                .collect();
            upserts.push(Indexed {
                hash,
                article,
                embeddings,
                title_embedding,
                heading_embeddings,
                piece_embeddings,
            });
            report.indexed.push(path);
        }
        if upserts.is_empty() && removed.is_empty() {
            self.write().problems = problems.clone();
            report.problems = problems.into_values().collect();
            return Ok(report);
        }
        self.inner
            .index
            .update(upserts.iter().map(|i| &i.article), &removed)?;
        // The base's words are rebuilt before the new articles are published, not in the
        // background with the calibration: a question asked at once must not find an article whose
        // words the bot weighs as words the base never uses (it declined the browser test's twin
        // articles, added to a running server, that way).
        let lexicon = {
            let state = self.read();
            let replaced: std::collections::HashSet<&str> = upserts
                .iter()
                .map(|i| i.article.path.as_str())
                .chain(removed.iter().map(String::as_str))
                .collect();
            Lexicon::build(
                state
                    .articles
                    .iter()
                    .filter(|(path, _)| !replaced.contains(path.as_str()))
                    .map(|(_, i)| &i.article)
                    .chain(upserts.iter().map(|i| &i.article)),
            )
        };
        {
            let mut state = self.write();
            state.lexicon = Arc::new(lexicon);
            for path in &removed {
                state.articles.remove(path);
            }
            for indexed in upserts {
                state.articles.insert(indexed.article.path.clone(), indexed);
            }
            state.problems = problems.clone();
            state.generation += 1;
        }
        // Under the sync lock: no other sync changes the articles meanwhile.
        let speller = Speller::build(
            self.read().articles.values().map(|i| &i.article),
            self.inner.english.clone(),
        );
        self.write().speller = Arc::new(speller);
        if calibrate_in_background {
            let kb = self.clone();
            std::thread::spawn(move || kb.recalibrate());
        } else {
            self.recalibrate();
        }
        report.removed = removed;
        report.problems = problems.into_values().collect();
        Ok(report)
    }

    /// Measures the calibration on the articles as they are now (see [`Calibration`]).
    fn recalibrate(&self) {
        let (generation, calibration) = {
            let state = self.read();
            let articles: Vec<calibrate::ArticleVectors> = state
                .articles
                .values()
                .map(|i| calibrate::ArticleVectors {
                    title: &i.title_embedding,
                    sections: &i.embeddings,
                    questions: std::iter::once(&*i.title_embedding)
                        .chain(
                            i.article
                                .sections
                                .iter()
                                .zip(&i.heading_embeddings)
                                .filter(|(s, _)| !s.heading_path.is_empty())
                                .map(|(_, e)| &**e),
                        )
                        .collect(),
                })
                .collect();
            (state.generation, Calibration::measure(&articles))
        };
        let mut state = self.write();
        if state.generation == generation {
            state.calibration = Arc::new(calibration);
        }
    }

    /// How well articles of this base match questions they do not answer: turns a passage's
    /// similarity into a confidence that means the same on any base.
    pub fn calibration(&self) -> Arc<Calibration> {
        self.read().calibration.clone()
    }

    /// The words of this base, as of the last sync (see [`Lexicon`]).
    pub fn lexicon(&self) -> Arc<Lexicon> {
        self.read().lexicon.clone()
    }

    /// `text` with its misspelt words corrected against this base's words (see [`Speller`]);
    /// as it is when nothing needs correcting or correction is off.
    pub fn correct<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        if !self.inner.spelling.load(Ordering::Relaxed) {
            return std::borrow::Cow::Borrowed(text);
        }
        let speller = self.read().speller.clone();
        match speller.correct(text) {
            std::borrow::Cow::Borrowed(_) => std::borrow::Cow::Borrowed(text),
            std::borrow::Cow::Owned(fixed) => std::borrow::Cow::Owned(fixed),
        }
    }

    /// Whether queries are searched with misspelt words corrected (`kb.spelling`, on by default).
    pub fn set_spelling(&self, on: bool) {
        self.inner.spelling.store(on, Ordering::Relaxed);
    }

    /// Match a long section by its best piece as well as by the whole (see [`section_pieces`]).
    pub fn set_pieces(&self, on: bool) {
        self.inner.pieces.store(on, Ordering::Relaxed);
    }

    /// Best passages for `query`, best first (see [`KnowledgeBase::search_with`]).
    pub async fn search(&self, query: &str, limit: usize) -> Result<Vec<Passage>, KbError> {
        // Embedded as the bot embeds a customer's message.
        let query_vec = self.embed_query(query).await?;
        let weight = f32::from_bits(self.inner.keyword_weight.load(Ordering::Relaxed));
        self.search_with(query, &query_vec, limit, weight)
    }

    /// `query` embedded as the bot embeds a customer's message (typos corrected), to search
    /// with [`KnowledgeBase::search_with`].
    pub async fn embed_query(&self, query: &str) -> Result<Embedding, KbError> {
        let query = self.correct(query);
        Ok(self
            .inner
            .encoder
            .embed_one(&crate::nlu::for_models(&query))
            .await?)
    }

    /// [`KnowledgeBase::embed_query`] of several queries, in one encoder job.
    pub async fn embed_queries(&self, queries: &[String]) -> Result<Vec<Embedding>, KbError> {
        let texts = queries
            .iter()
            .map(|q| crate::nlu::for_models(&self.correct(q)).into_owned())
            .collect();
        Ok(self.inner.encoder.embed(texts).await?)
    }

    /// How much keyword matching counts next to semantic similarity.
    pub fn keyword_weight(&self) -> f32 {
        f32::from_bits(self.inner.keyword_weight.load(Ordering::Relaxed))
    }

    /// Whether a question that matches an article's title scores its first section by that
    /// match when it is better than the section's own (on by default; chosen on StackFAQ dev).
    pub fn set_title_match(&self, on: bool) {
        self.inner.title_match.store(on, Ordering::Relaxed);
    }

    /// Sets how much keyword matching counts next to semantic similarity (see `search_with`).
    pub fn set_keyword_weight(&self, weight: f32) {
        self.inner
            .keyword_weight
            .store(weight.to_bits(), Ordering::Relaxed);
    }

    /// Hybrid search with the query already embedded. Candidates are the best sections by embedding
    /// similarity and by BM25; each is scored `similarity + keyword_weight * bm25 / best_bm25`, so
    /// semantics lead and exact keywords (product names, error codes) break near-ties. Keywords
    /// are matched with typos corrected (`query_vec` should be of the corrected text too: see
    /// [`KnowledgeBase::correct`]).
    pub fn search_with(
        &self,
        query: &str,
        query_vec: &[f32],
        limit: usize,
        keyword_weight: f32,
    ) -> Result<Vec<Passage>, KbError> {
        let lexical = self.inner.index.search(&self.correct(query), CANDIDATES)?;
        let title_match = self.inner.title_match.load(Ordering::Relaxed);
        let pieces = self.inner.pieces.load(Ordering::Relaxed);
        let state = self.read();
        // Each section with its similarity and where its best-matching piece starts.
        let mut semantic: Vec<((&str, usize), f32, usize)> = state
            .articles
            .iter()
            .flat_map(|(path, a)| {
                let title = if title_match {
                    cosine(query_vec, &a.title_embedding)
                } else {
                    f32::NEG_INFINITY
                };
                a.embeddings.iter().enumerate().map(move |(i, e)| {
                    let mut own = cosine(query_vec, e);
                    let mut from = 0;
                    if pieces {
                        for (start, p) in a.piece_embeddings.get(i).into_iter().flatten() {
                            let s = cosine(query_vec, p);
                            if s > own {
                                own = s;
                                from = *start;
                            }
                        }
                    }
                    if i == 0 && title > own {
                        ((path.as_str(), i), title, 0)
                    } else {
                        ((path.as_str(), i), own, from)
                    }
                })
            })
            .collect();
        semantic.sort_by(|a, b| b.1.total_cmp(&a.1));
        let n = semantic.len().max(1) as f32;
        let mean = semantic.iter().map(|(_, s, _)| s).sum::<f32>() / n;
        let spread = (semantic
            .iter()
            .map(|(_, s, _)| (s - mean).powi(2))
            .sum::<f32>()
            / n)
            .sqrt()
            .max(1e-6);

        let mut fused: HashMap<(&str, usize), Passage> = HashMap::new();
        for (rank, (key, similarity, from)) in semantic.iter().take(CANDIDATES).enumerate() {
            if let Some(p) = passage(&state, key.0, key.1, *similarity) {
                let mut p = p;
                p.semantic_rank = rank + 1;
                p.quote_from = *from;
                p.fused = *similarity;
                fused.insert(*key, p);
            }
        }
        // Each section's similarity, where its best piece starts, and its semantic rank.
        let similarity_of: HashMap<(&str, usize), (f32, usize, usize)> = semantic
            .iter()
            .enumerate()
            .map(|(rank, (key, similarity, from))| (*key, (*similarity, *from, rank + 1)))
            .collect();
        let best_bm25 = lexical.first().map_or(1.0, |h| h.score.max(f32::EPSILON));
        for (rank, hit) in lexical.iter().enumerate() {
            let key = (hit.path.as_str(), hit.section);
            let Some(&(similarity, from, semantic_rank)) = similarity_of.get(&key) else {
                continue;
            };
            let entry = match fused.entry(key) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    let Some(mut p) = passage(&state, key.0, key.1, similarity) else {
                        continue;
                    };
                    p.semantic_rank = semantic_rank;
                    p.quote_from = from;
                    p.fused = similarity;
                    v.insert(p)
                }
            };
            entry.bm25 = Some(hit.score);
            entry.bm25_rank = Some(rank + 1);
            entry.fused += keyword_weight * hit.score / best_bm25;
        }
        let mut results: Vec<Passage> = fused.into_values().collect();
        for p in &mut results {
            p.standing = (p.similarity - mean) / spread;
            let heading = state.articles.get(&p.path).and_then(|a| {
                let i = a
                    .article
                    .sections
                    .iter()
                    .position(|s| s.anchor == p.anchor)?;
                a.heading_embeddings.get(i)
            });
            if let Some(h) = heading {
                p.heading_similarity = cosine(query_vec, h);
            }
        }
        results.sort_by(|a, b| {
            b.fused
                .total_cmp(&a.fused)
                .then(b.similarity.total_cmp(&a.similarity))
        });
        results.truncate(limit);
        Ok(results)
    }

    /// Keyword-only search (BM25), for comparison in the evaluation.
    pub fn search_bm25(
        &self,
        query: &str,
        limit: usize,
    ) -> Result<Vec<(String, usize, f32)>, KbError> {
        Ok(self
            .inner
            .index
            .search(query, limit)?
            .into_iter()
            .map(|h| (h.path, h.section, h.score))
            .collect())
    }

    /// Every indexed article, by path.
    pub fn articles(&self) -> Vec<ArticleSummary> {
        self.read()
            .articles
            .values()
            .map(|i| ArticleSummary {
                path: i.article.path.clone(),
                title: i.article.title.clone(),
                sections: i.article.sections.len(),
            })
            .collect()
    }

    /// One article by path.
    pub fn article(&self, path: &str) -> Option<Article> {
        self.read().articles.get(path).map(|i| i.article.clone())
    }

    /// Whether an article is indexed at `path`.
    pub fn has_article(&self, path: &str) -> bool {
        self.read().articles.contains_key(path)
    }

    /// Whether the article at `path` is indexed and has the section `anchor` ("" for its
    /// introduction).
    pub fn has_section(&self, path: &str, anchor: &str) -> bool {
        self.read()
            .articles
            .get(path)
            .is_some_and(|i| i.article.sections.iter().any(|s| s.anchor == anchor))
    }

    /// The title of the article at `path`, if it is indexed.
    pub fn title(&self, path: &str) -> Option<String> {
        self.read()
            .articles
            .get(path)
            .map(|i| i.article.title.clone())
    }

    /// Files that currently fail to load, with what is wrong.
    pub fn problems(&self) -> Vec<String> {
        self.read().problems.values().cloned().collect()
    }

    /// Files that currently fail to load, by path, and whether an earlier version still serves.
    pub fn problem_files(&self) -> Vec<Problem> {
        let state = self.read();
        state
            .problems
            .iter()
            .map(|(path, message)| Problem {
                path: path.clone(),
                message: message
                    .strip_prefix(path.as_str())
                    .and_then(|m| m.strip_prefix(": "))
                    .unwrap_or(message)
                    .to_owned(),
                serving_previous: state.articles.contains_key(path),
            })
            .collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.inner.state.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.inner.state.write().unwrap_or_else(|p| p.into_inner())
    }
}

fn passage(state: &State, path: &str, section: usize, similarity: f32) -> Option<Passage> {
    let a = &state.articles.get(path)?.article;
    let s = a.sections.get(section)?;
    Some(Passage {
        path: a.path.clone(),
        title: a.title.clone(),
        heading_path: s.heading_path.clone(),
        anchor: s.anchor.clone(),
        link: link(a, s),
        text: s.text.clone(),
        similarity,
        bm25: None,
        bm25_rank: None,
        semantic_rank: 0,
        fused: 0.0,
        heading_similarity: 0.0,
        standing: 0.0,
        quote_from: 0,
    })
}

/// An article's path as it goes in an address: anything but letters, digits, `-._~` and the `/`
/// between folders percent-escaped (`faq?.md` would end the path at `?`).
fn escaped_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Link to a section: the article's public URL if it has one, else the server's own article page.
pub fn link(article: &Article, section: &Section) -> String {
    let base = match &article.url {
        Some(url) => url.clone(),
        None => format!("/kb/{}", escaped_path(&article.path)),
    };
    if section.anchor.is_empty() {
        base
    } else {
        format!("{base}#{}", section.anchor)
    }
}

/// The text a section is embedded as: where it sits (title, headings) and what it says.
fn embedding_text(article: &Article, section: &Section) -> String {
    let mut text = article.title.clone();
    for h in &section.heading_path {
        text.push_str(". ");
        text.push_str(h);
    }
    text.push_str(". ");
    text.push_str(&section.text);
    text
}

/// Sections longer than this many words are also embedded in pieces.
const PIECES_ABOVE_WORDS: usize = 100;
/// About how many words a piece holds: a few sentences, the length of text the encoder was
/// trained to match against a question.
const PIECE_WORDS: usize = 60;

/// A long section cut into overlapping pieces of whole sentences (or lines: list items, table
/// rows) of about [`PIECE_WORDS`] words, each consecutive pair sharing a sentence, each embedded
/// with the title and headings in front as the whole section is. Empty for a short section.
fn section_pieces(article: &Article, section: &Section) -> Vec<(usize, String)> {
    if section.text.split_whitespace().count() <= PIECES_ABOVE_WORDS {
        return Vec::new();
    }
    let mut units: Vec<Vec<&str>> = Vec::new();
    // Every unit holds at least one word (an empty one is never pushed).
    for line in section.text.lines() {
        let mut unit = Vec::new();
        for word in line.split_whitespace() {
            unit.push(word);
            let ends_sentence = word.ends_with(['.', '?', '!', ':']);
            if (ends_sentence && unit.len() >= 4) || unit.len() >= PIECE_WORDS {
                units.push(std::mem::take(&mut unit));
            }
        }
        if !unit.is_empty() {
            units.push(unit);
        }
    }
    let prefix = {
        let mut p = article.title.clone();
        for h in &section.heading_path {
            p.push_str(". ");
            p.push_str(h);
        }
        p.push_str(". ");
        p
    };
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < units.len() {
        let mut end = start;
        let mut words = 0;
        while end < units.len() && (end == start || words + units[end].len() <= PIECE_WORDS) {
            words += units[end].len();
            end += 1;
        }
        let mut text = prefix.clone();
        text.push_str(&units[start..end].concat().join(" "));
        // Where the piece's first word sits in the section's text (the words are slices of it).
        let from = units[start][0].as_ptr() as usize - section.text.as_ptr() as usize;
        pieces.push((from, text));
        if end == units.len() {
            break;
        }
        // The next piece starts with this one's last sentence, so no sentence is only ever read
        // cut from its neighbour.
        start = if end - 1 > start { end - 1 } else { end };
    }
    pieces
}

/// Where to quote `section` from for a piece that started at byte `at` when it was offered: the
/// start of the section's piece at or before `at` (the very piece while the text is unchanged; a
/// sentence start near it after an edit), 0 for a short section or an offset beyond its pieces.
pub fn piece_start(article: &Article, section: &Section, at: usize) -> usize {
    section_pieces(article, section)
        .iter()
        .map(|(from, _)| *from)
        .filter(|&from| from <= at)
        .max()
        .unwrap_or(0)
}

/// The path a problem with the knowledge base's folder itself is listed under.
const FOLDER_PROBLEM: &str = ".";

/// Markdown files under `dir`, keyed by path relative to it (with `/`), skipping hidden folders.
/// The file names the knowledge base reads as markdown (Jekyll sites write `.markdown`).
const MARKDOWN: [&str; 3] = [".md", ".mdx", ".markdown"];

fn markdown_files(dir: &Path) -> Result<BTreeMap<String, PathBuf>, KbError> {
    files_ending(dir, &MARKDOWN)
}

/// Every file under `dir` whose name ends with one of `endings`, by its path relative to `dir`
/// (with `/`), hidden folders and `node_modules` left out.
fn files_ending(dir: &Path, endings: &[&str]) -> Result<BTreeMap<String, PathBuf>, KbError> {
    let mut files = BTreeMap::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        let entries = std::fs::read_dir(&folder).map_err(|source| KbError::Folder {
            dir: folder.display().to_string(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name == "node_modules" {
                continue;
            }
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                pending.push(path);
            } else if endings.iter().any(|ext| name.ends_with(ext)) {
                if let Ok(rel) = path.strip_prefix(dir) {
                    let rel = rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy())
                        .collect::<Vec<_>>();
                    files.insert(rel.join("/"), path);
                }
            }
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_section_is_cut_into_overlapping_pieces_that_point_back_into_its_text() {
        let sentence =
            |i: usize| format!("Sentence number {i} says one short thing about billing.");
        let long: Vec<String> = (0..30).map(sentence).collect();
        let source = format!(
            "# Billing\n\nShort intro.\n\n## Payment methods\n\n{}\n\n## Invoices\n\nWe send one.\n",
            long.join(" ")
        );
        let article = parse("billing.md", &source).expect("parses");
        let short = &article.sections[0];
        assert!(section_pieces(&article, short).is_empty());
        let section = &article.sections[1];
        let pieces = section_pieces(&article, section);
        assert!(pieces.len() >= 4, "{pieces:?}");
        for (i, (from, text)) in pieces.iter().enumerate() {
            assert!(
                text.starts_with("Billing. Payment methods. Sentence number"),
                "{text}"
            );
            let body = &text["Billing. Payment methods. ".len()..];
            assert!(body.split_whitespace().count() <= PIECE_WORDS, "{body}");
            // The offset is where the piece's words start in the section.
            assert!(section.text[*from..].starts_with(body), "{from}: {body}");
            // Neighbours share a sentence: the last of one is the first of the next.
            if let Some((_, next)) = pieces.get(i + 1) {
                let last = body.rsplit("Sentence").next().expect("a sentence");
                assert!(next.contains(&format!("Sentence{last}")), "{body} / {next}");
            }
        }
        assert!(pieces[0].0 == 0);
        assert!(pieces
            .last()
            .expect("pieces")
            .1
            .ends_with("Sentence number 29 says one short thing about billing."));
    }
}
