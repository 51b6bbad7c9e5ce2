//! A second opinion on the few best passages: a cross-encoder reads the question and each passage
//! together and scores how well the passage answers it. The sentence encoder compares two vectors
//! made apart; this model sees both texts at once, so it can tell "how do I export my stats as csv"
//! from the Stats API section of the same page. It is too slow for the whole base, so it rescores
//! the retrieval's top few, and its scores become inputs of the answer decision
//! ([`super::answerability`]).
//!
//! The model (`models/reranker/`) is a 6-layer MiniLM fine-tuned from the sentence encoder's weights
//! by `scripts/train_reranker.py` (docs/EVALUATION.md). One worker thread owns it, like the
//! encoder's; callers block on its reply, so they must run off the async runtime (the bot answers on
//! the blocking pool).

use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rust_bert::bert::{BertConfig, BertForSequenceClassification};
use rust_bert::Config;
use rust_tokenizers::tokenizer::{BertTokenizer, Tokenizer, TruncationStrategy};
#[cfg(test)]
use rust_tokenizers::vocab::Vocab;
use rust_tokenizers::TokenizedInput;
use tch::{nn, Device, Kind, Tensor};

use super::{KbError, Passage};

/// Longest passage text handed to the tokenizer, in characters: the pair is cut at `max_len`
/// tokens anyway, so tokenising a long section whole would be wasted.
const MAX_PASSAGE_CHARS: usize = 2_000;

/// How a passage is shown to the model: its article's title and heading path on the first line,
/// then the text. `scripts/train_reranker.py` shows its training passages the same way.
pub fn passage_text(title: &str, heading_path: &[String], text: &str) -> String {
    let head: Vec<&str> = std::iter::once(title)
        .chain(heading_path.iter().map(String::as_str))
        .filter(|h| !h.is_empty())
        .collect();
    let mut text = text;
    if text.len() > MAX_PASSAGE_CHARS {
        let mut end = MAX_PASSAGE_CHARS;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text = &text[..end];
    }
    if head.is_empty() {
        text.to_owned()
    } else {
        format!("{}\n{text}", head.join(" > "))
    }
}

/// Rows of token ids, one per pair, all of one width.
type Rows = Vec<Vec<i64>>;

/// Token ids, segment ids and attention mask of `question` paired with each passage, padded to the
/// longest pair: `[CLS] question [SEP] passage [SEP]`, the passage cut first when the pair is longer
/// than `max_len` tokens.
pub(crate) fn encode_pairs(
    tokenizer: &BertTokenizer,
    question: &str,
    passages: &[String],
    max_len: usize,
) -> (Rows, Rows, Rows) {
    // Cutting only the passage fails when the question alone fills the pair (three places go to
    // [CLS] and the two [SEP]); then both are cut, the longer first.
    let question_tokens = tokenizer.tokenize(question).len();
    let strategy = if question_tokens + 3 < max_len {
        TruncationStrategy::OnlySecond
    } else {
        TruncationStrategy::LongestFirst
    };
    let encoded: Vec<TokenizedInput> = passages
        .iter()
        .map(|p| tokenizer.encode(question, Some(p), max_len, &strategy, 0))
        .collect();
    let width = encoded.iter().map(|e| e.token_ids.len()).max().unwrap_or(0);
    let pad = |v: Vec<i64>| {
        let mut v = v;
        v.resize(width, 0);
        v
    };
    let mut ids = Vec::with_capacity(encoded.len());
    let mut segments = Vec::with_capacity(encoded.len());
    let mut mask = Vec::with_capacity(encoded.len());
    for e in encoded {
        let n = e.token_ids.len();
        mask.push(pad(vec![1; n]));
        segments.push(pad(e.segment_ids.iter().map(|s| *s as i64).collect()));
        ids.push(pad(e.token_ids));
    }
    (ids, segments, mask)
}

/// The model and its tokenizer, owned by the worker thread.
struct CrossEncoder {
    tokenizer: BertTokenizer,
    model: BertForSequenceClassification,
    // Holds the weights the model's tensors live in.
    _vs: nn::VarStore,
    max_len: usize,
}

impl CrossEncoder {
    fn load(dir: &Path, max_len: usize) -> Result<Self, KbError> {
        let fail = |what: String| KbError::Reranker(format!("{}: {what}", dir.display()));
        let config_path = dir.join("config.json");
        let vocab = dir.join("vocab.txt");
        if !config_path.is_file() || !vocab.is_file() {
            return Err(fail(
                "no config.json or vocab.txt; point bot.rerank.model_dir at the reranker \
                 (models/reranker in the repository) or set bot.rerank.enabled = false"
                    .into(),
            ));
        }
        let config = BertConfig::from_file(&config_path);
        let tokenizer = BertTokenizer::from_file(&vocab, true, true)
            .map_err(|e| fail(format!("reading vocab.txt: {e}")))?;
        let mut vs = nn::VarStore::new(Device::Cpu);
        let model = BertForSequenceClassification::new(vs.root(), &config)
            .map_err(|e| fail(format!("config.json: {e}")))?;
        let mut shards: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| fail(e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("model") && n.ends_with(".safetensors"))
            })
            .collect();
        shards.sort();
        if shards.is_empty() {
            return Err(fail("no model*.safetensors weights".into()));
        }
        let mut missing: Option<std::collections::HashSet<String>> = None;
        for shard in &shards {
            let absent: std::collections::HashSet<String> = vs
                .load_partial(shard)
                .map_err(|e| fail(format!("{}: {e}", shard.display())))?
                .into_iter()
                .collect();
            missing = Some(match missing {
                None => absent,
                Some(m) => m.intersection(&absent).cloned().collect(),
            });
        }
        if let Some(m) = missing.filter(|m| !m.is_empty()) {
            let mut m: Vec<String> = m.into_iter().collect();
            m.sort();
            return Err(fail(format!(
                "the weights lack {} tensor(s), e.g. {}; retrain with scripts/train_reranker.py",
                m.len(),
                m[0]
            )));
        }
        Ok(Self {
            tokenizer,
            model,
            _vs: vs,
            max_len,
        })
    }

    /// One logit per passage: higher means it answers `question` better.
    fn score(&self, question: &str, passages: &[String]) -> Result<Vec<f32>, KbError> {
        if passages.is_empty() {
            return Ok(Vec::new());
        }
        let (ids, segments, mask) = encode_pairs(&self.tokenizer, question, passages, self.max_len);
        let tensor = |rows: Rows| {
            let n = rows.len() as i64;
            let flat: Vec<i64> = rows.into_iter().flatten().collect();
            let width = flat.len() as i64 / n;
            Tensor::from_slice(&flat).view((n, width))
        };
        let (ids, segments, mask) = (tensor(ids), tensor(segments), tensor(mask));
        let logits = tch::no_grad(|| {
            self.model
                .forward_t(Some(&ids), Some(&mask), Some(&segments), None, None, false)
                .logits
        });
        Vec::<f32>::try_from(logits.to_kind(Kind::Float).view(-1))
            .map_err(|e| KbError::Reranker(format!("reading the scores: {e}")))
    }
}

struct Job {
    question: String,
    passages: Vec<String>,
    reply: mpsc::Sender<Result<Vec<f32>, KbError>>,
}

/// Cheap handle to the reranker's worker thread; clone it freely.
#[derive(Clone)]
pub struct Reranker {
    jobs: mpsc::SyncSender<Job>,
    top: usize,
}

impl Reranker {
    /// Loads the model in `dir` on a new worker thread; returns once it is ready. `top` is how
    /// many of the retrieval's best passages each question has rescored; pairs are cut at
    /// `max_len` tokens.
    pub fn load(dir: &Path, top: usize, max_len: usize) -> Result<Self, KbError> {
        let (jobs, queue) = mpsc::sync_channel::<Job>(64);
        let (ready_tx, ready_rx) = mpsc::channel();
        let dir = dir.to_owned();
        std::thread::Builder::new()
            .name("reranker".into())
            .spawn(move || match CrossEncoder::load(&dir, max_len.max(16)) {
                Ok(model) => {
                    let _ = ready_tx.send(Ok(()));
                    while let Ok(job) = queue.recv() {
                        let _ = job.reply.send(model.score(&job.question, &job.passages));
                    }
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| KbError::Reranker(format!("could not start the reranker thread: {e}")))?;
        ready_rx
            .recv()
            .map_err(|_| KbError::Reranker("the reranker thread stopped while loading".into()))??;
        Ok(Self {
            jobs,
            top: top.max(1),
        })
    }

    /// How many passages it rescores per question.
    pub fn top(&self) -> usize {
        self.top
    }

    /// Scores (logits) of the first [`Reranker::top`] `candidates` for `question`, in their order;
    /// the rest are not scored. Blocks until the worker has scored them: call it off the async
    /// runtime.
    pub fn score(&self, question: &str, candidates: &[Passage]) -> Result<Vec<f32>, KbError> {
        let passages: Vec<String> = candidates
            .iter()
            .take(self.top)
            .map(|p| passage_text(&p.title, &p.heading_path, &p.text))
            .collect();
        self.score_texts(question, passages)
    }

    /// Scores (logits) of `passages` (as [`passage_text`] shows them) for `question`.
    pub fn score_texts(&self, question: &str, passages: Vec<String>) -> Result<Vec<f32>, KbError> {
        let stopped = || KbError::Reranker("the reranker thread has stopped".into());
        let (reply, result) = mpsc::channel();
        self.jobs
            .send(Job {
                question: question.to_owned(),
                passages,
                reply,
            })
            .map_err(|_| stopped())?;
        result.recv().map_err(|_| stopped())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokenizer() -> Option<BertTokenizer> {
        let vocab = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/reranker/vocab.txt");
        BertTokenizer::from_file(vocab, true, true).ok()
    }

    #[test]
    fn the_shipped_model_prefers_the_passage_that_answers() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/reranker");
        let reranker = Reranker::load(&dir, 3, 128).expect("models/reranker loads");
        let passages = vec![
            passage_text(
                "Shipping",
                &["Delivery times".to_owned()],
                "Orders ship within two working days and arrive in three to five days.",
            ),
            passage_text(
                "Billing",
                &["Payment methods".to_owned()],
                "We accept Visa, Mastercard, American Express and PayPal.",
            ),
            passage_text(
                "Brewer care",
                &["Descaling".to_owned()],
                "Run the descaling programme every month to remove limescale.",
            ),
        ];
        let scores = reranker
            .score_texts("can i pay with paypal", passages.clone())
            .unwrap();
        assert_eq!(scores.len(), 3);
        assert!(scores[1] > scores[0] && scores[1] > scores[2], "{scores:?}");
        let scores = reranker
            .score_texts(
                "how do i get the chalky white stuff out of my machine",
                passages,
            )
            .unwrap();
        assert!(scores[2] > scores[0] && scores[2] > scores[1], "{scores:?}");
        // No passages, no work.
        assert!(reranker
            .score_texts("anything", Vec::new())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_missing_model_says_where_to_point_the_setting() {
        let Err(e) = Reranker::load(Path::new("/nonexistent/reranker"), 3, 128) else {
            panic!("a missing model loads");
        };
        assert!(e.to_string().contains("bot.rerank.model_dir"), "{e}");
    }

    #[test]
    fn a_passage_shows_its_title_and_headings_first() {
        let text = passage_text(
            "Billing FAQ",
            &["Payments".to_owned(), "Methods".to_owned()],
            "We accept PayPal.",
        );
        assert_eq!(text, "Billing FAQ > Payments > Methods\nWe accept PayPal.");
        assert_eq!(passage_text("", &[], "Just text."), "Just text.");
        let long = "é".repeat(MAX_PASSAGE_CHARS);
        assert!(passage_text("T", &[], &long).len() <= MAX_PASSAGE_CHARS + 2);
    }

    #[test]
    fn pairs_are_question_then_passage_padded_to_the_longest() {
        let tok = tokenizer().expect("models/reranker/vocab.txt is committed");
        let passages = vec![
            "paypal".to_owned(),
            "we accept credit cards and paypal on every plan".to_owned(),
        ];
        let (ids, segments, mask) = encode_pairs(&tok, "do you take paypal", &passages, 64);
        assert_eq!(ids.len(), 2);
        assert_eq!(ids[0].len(), ids[1].len(), "padded to one width");
        let cls = tok.vocab().token_to_id("[CLS]");
        let sep = tok.vocab().token_to_id("[SEP]");
        assert_eq!(ids[1][0], cls);
        // [CLS] do you take paypal [SEP]: the question is segment 0, the passage segment 1.
        let first_sep = ids[1].iter().position(|t| *t == sep).unwrap();
        assert!(segments[1][..=first_sep].iter().all(|s| *s == 0));
        assert!(segments[1][first_sep + 1..].iter().all(|s| *s == 1));
        assert_eq!(*ids[1].last().unwrap(), sep);
        // The short pair is padded with zeros that the mask hides.
        let real = mask[0].iter().filter(|m| **m == 1).count();
        assert!(real < mask[0].len());
        assert!(ids[0][real..].iter().all(|t| *t == 0));
        assert!(mask[1].iter().all(|m| *m == 1));
    }

    #[test]
    fn a_long_passage_is_cut_and_the_question_kept() {
        let tok = tokenizer().expect("models/reranker/vocab.txt is committed");
        let long = "coffee ".repeat(500);
        let (ids, _, _) = encode_pairs(&tok, "how do i descale my brewer", &[long], 32);
        assert_eq!(ids[0].len(), 32);
        let text = tok.vocab().id_to_token(&ids[0][1]);
        assert_eq!(text, "how");
        // A question longer than the pair can hold is cut too, rather than failing.
        let (ids, _, _) = encode_pairs(&tok, &"why ".repeat(100), &["short".to_owned()], 32);
        assert_eq!(ids[0].len(), 32);
    }
}
