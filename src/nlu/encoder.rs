//! The sentence encoder: one worker thread owns the model and encodes requests in batches, because
//! one batch of 32 sentences costs about as much as three sentences one at a time.
//!
//! Requests come in two kinds. A customer's message ([`Encoder::embed`]) is waited on by someone in
//! a chat; indexing a knowledge base or a benchmark ([`Encoder::embed_blocking`]) may send thousands
//! of texts at once. The worker encodes bulk work one batch at a time and, between batches, takes
//! every waiting message first, so a re-index of a large help centre never stalls the chats.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rust_bert::pipelines::common::ModelType;
use rust_bert::pipelines::sentence_embeddings::{
    SentenceEmbeddingsConfig, SentenceEmbeddingsModel,
};
use rust_bert::resources::LocalResource;
use tokio::sync::{mpsc, oneshot};

use super::onnx::OnnxEncoder;
use super::NluError;
use crate::settings::{EncoderBackend, NluSettings};

/// A unit-length sentence embedding.
pub type Embedding = Arc<[f32]>;

type Reply = oneshot::Sender<Result<Vec<Embedding>, NluError>>;

struct Job {
    texts: Vec<String>,
    reply: Reply,
    /// Indexing work: encoded between customers' messages, never ahead of them.
    bulk: bool,
}

/// Cheap handle to the encoder worker; clone it freely.
#[derive(Clone)]
pub struct Encoder {
    jobs: mpsc::Sender<Job>,
    load: Load,
    backend: EncoderBackend,
    /// The model's WordPiece vocabulary (`vocab.txt`).
    vocabulary: Arc<Path>,
}

/// What the worker reports of its load, for the server's metrics.
#[derive(Clone)]
struct Load {
    /// Texts sent and not yet taken up by the worker.
    queued: prometheus::IntGauge,
    /// Texts encoded together.
    batches: prometheus::Histogram,
}

impl Load {
    fn new() -> Self {
        Self {
            queued: prometheus::IntGauge::new(
                "frontdesk_encoder_queue_depth",
                "Texts waiting for the sentence encoder",
            )
            .expect("a valid metric name"),
            batches: prometheus::Histogram::with_opts(
                prometheus::HistogramOpts::new(
                    "frontdesk_encoder_batch_size",
                    "Texts the sentence encoder encoded together",
                )
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]),
            )
            .expect("valid histogram options"),
        }
    }
}

impl Encoder {
    /// Loads the model `settings.encoder` names on a new worker thread; returns once it is ready.
    pub fn load(settings: &NluSettings) -> Result<Self, NluError> {
        let backend = settings.encoder;
        let vocabulary: Arc<Path> = match backend {
            EncoderBackend::Torch => settings.model_dir.join("vocab.txt"),
            EncoderBackend::OnnxInt8 => settings.onnx_model_dir.join("vocab.txt"),
        }
        .into();
        let source = match backend {
            EncoderBackend::Torch => {
                let dir = settings.model_dir.clone();
                if !dir.join("model.safetensors").is_file() {
                    return Err(NluError::ModelMissing {
                        dir: dir.display().to_string(),
                        setting: "nlu.model_dir",
                    });
                }
                Source::Torch(dir)
            }
            EncoderBackend::OnnxInt8 => Source::Onnx {
                dir: settings.onnx_model_dir.clone(),
                runtime: settings.onnx_runtime.clone(),
            },
        };
        let (jobs, queue) = mpsc::channel::<Job>(settings.queue_capacity.max(1));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let threads = settings.threads;
        let max_batch = settings.max_batch.max(1);
        let load = Load::new();
        let worker_load = load.clone();
        std::thread::Builder::new()
            .name("encoder".into())
            .spawn(move || match Model::load(source, threads) {
                Ok(model) => {
                    let _ = ready_tx.send(Ok(()));
                    serve(model, queue, max_batch, &worker_load);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| NluError::Model(format!("could not start the encoder thread: {e}")))?;
        ready_rx.recv().map_err(|_| NluError::Stopped)??;
        Ok(Self {
            jobs,
            load,
            backend,
            vocabulary,
        })
    }

    /// The model's WordPiece vocabulary (`vocab.txt`, one token a line): its whole words are the
    /// English words the knowledge base's spelling correction trusts.
    pub fn vocabulary(&self) -> &Path {
        &self.vocabulary
    }

    /// Which encoder this is.
    pub fn backend(&self) -> EncoderBackend {
        self.backend
    }

    /// Names the model whose vectors this encoder makes: vectors stored under one tag (the
    /// embedding cache's keys) are never read back under another.
    pub fn model_tag(&self) -> &'static str {
        match self.backend {
            EncoderBackend::Torch => "all-MiniLM-L6-v2",
            EncoderBackend::OnnxInt8 => "all-MiniLM-L6-v2-onnx-int8",
        }
    }

    /// The encoder's queue depth and batch sizes, for the server's metrics.
    pub fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.load.queued.clone()),
            Box::new(self.load.batches.clone()),
        ]
    }

    /// Texts sent to the encoder and not encoded yet.
    pub fn waiting(&self) -> i64 {
        self.load.queued.get()
    }

    /// Encodes `texts`, waiting for a place in the queue when it is full.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Embedding>, NluError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, result) = oneshot::channel();
        let count = texts.len() as i64;
        self.load.queued.add(count);
        let job = Job {
            texts,
            reply,
            bulk: false,
        };
        if self.jobs.send(job).await.is_err() {
            self.load.queued.sub(count);
            return Err(NluError::Stopped);
        }
        result.await.map_err(|_| NluError::Stopped)?
    }

    /// Encodes one text.
    pub async fn embed_one(&self, text: &str) -> Result<Embedding, NluError> {
        let mut v = self.embed(vec![text.to_owned()]).await?;
        v.pop().ok_or(NluError::Stopped)
    }

    /// Like [`Encoder::embed`], for bulk work on threads outside the async runtime (indexing at
    /// start-up and after an edit, training, benchmarks): encoded a batch at a time, after any
    /// customer's message that is waiting.
    pub fn embed_blocking(&self, texts: Vec<String>) -> Result<Vec<Embedding>, NluError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, result) = oneshot::channel();
        let count = texts.len() as i64;
        self.load.queued.add(count);
        let job = Job {
            texts,
            reply,
            bulk: true,
        };
        if self.jobs.blocking_send(job).is_err() {
            self.load.queued.sub(count);
            return Err(NluError::Stopped);
        }
        result.blocking_recv().map_err(|_| NluError::Stopped)?
    }
}

/// Where the worker loads its model from.
enum Source {
    Torch(PathBuf),
    Onnx { dir: PathBuf, runtime: PathBuf },
}

/// The model the worker thread owns.
enum Model {
    Torch(Box<SentenceEmbeddingsModel>),
    Onnx(Box<OnnxEncoder>),
}

impl Model {
    fn load(source: Source, threads: i32) -> Result<Self, NluError> {
        match source {
            Source::Torch(dir) => {
                if threads > 0 {
                    tch::set_num_threads(threads);
                }
                load_torch(&dir).map(|m| Self::Torch(Box::new(m)))
            }
            Source::Onnx { dir, runtime } => {
                OnnxEncoder::load(&dir, &runtime, threads.max(1) as usize)
                    .map(|m| Self::Onnx(Box::new(m)))
            }
        }
    }

    /// One forward pass: the mean-pooled vectors, not yet normalised.
    fn encode(&mut self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        match self {
            Self::Torch(model) => model.encode(texts).map_err(|e| e.to_string()),
            Self::Onnx(model) => model.encode(texts),
        }
    }
}

fn load_torch(dir: &Path) -> Result<SentenceEmbeddingsModel, NluError> {
    let res = |name: &str| Box::new(LocalResource::from(dir.join(name)));
    // Built by hand rather than with the builder, whose `local()` insists on `rust_model.ot`:
    // tch loads the `.safetensors` weights the model ships with directly.
    let config = SentenceEmbeddingsConfig {
        modules_config_resource: res("modules.json"),
        transformer_type: ModelType::Bert,
        transformer_config_resource: res("config.json"),
        transformer_weights_resource: res("model.safetensors"),
        pooling_config_resource: res("1_Pooling/config.json"),
        dense_config_resource: None,
        dense_weights_resource: None,
        sentence_bert_config_resource: res("sentence_bert_config.json"),
        tokenizer_config_resource: res("tokenizer_config.json"),
        tokenizer_vocab_resource: res("vocab.txt"),
        tokenizer_merges_resource: None,
        device: tch::Device::Cpu,
        kind: None,
    };
    SentenceEmbeddingsModel::new(config).map_err(|e| NluError::Model(e.to_string()))
}

/// A bulk job being encoded a batch at a time.
struct Bulk {
    job: Job,
    done: Vec<Embedding>,
}

/// The worker loop. Each round it takes what is waiting in the channel (customers' messages up to a
/// batch; bulk jobs are set aside in arrival order), then encodes either the waiting messages
/// together or, when there are none, the next batch of the oldest bulk job.
fn serve(mut model: Model, mut queue: mpsc::Receiver<Job>, max_batch: usize, load: &Load) {
    let mut urgent: Vec<Job> = Vec::new();
    let mut bulk: std::collections::VecDeque<Bulk> = std::collections::VecDeque::new();
    loop {
        if urgent.is_empty() && bulk.is_empty() {
            match queue.blocking_recv() {
                Some(job) => take(job, &mut urgent, &mut bulk),
                None => return,
            }
        }
        // Every bulk caller waits for its reply, so at most one bulk job per indexing thread is
        // ever set aside here; messages beyond a batch stay in the (bounded) channel.
        while urgent.iter().map(|j| j.texts.len()).sum::<usize>() < max_batch {
            match queue.try_recv() {
                Ok(job) => take(job, &mut urgent, &mut bulk),
                Err(_) => break,
            }
        }
        if !urgent.is_empty() {
            encode_messages(&mut model, std::mem::take(&mut urgent), max_batch, load);
        } else if let Some(current) = bulk.front_mut() {
            let from = current.done.len();
            let to = (from + max_batch).min(current.job.texts.len());
            let texts: Vec<&str> = current.job.texts[from..to]
                .iter()
                .map(String::as_str)
                .collect();
            let result = encode(&mut model, &texts, load);
            let encoded = texts.len();
            let finished = match result {
                Ok(vectors) => {
                    current.done.extend(vectors);
                    current.done.len() == current.job.texts.len()
                }
                Err(e) => {
                    let failed = bulk.pop_front().expect("the current bulk job");
                    let left = failed.job.texts.len() - failed.done.len() - encoded;
                    load.queued.sub(left as i64);
                    let _ = failed.job.reply.send(Err(NluError::Model(e)));
                    continue;
                }
            };
            if finished {
                let Bulk { job, done } = bulk.pop_front().expect("the current bulk job");
                let _ = job.reply.send(Ok(done));
            }
        }
    }
}

fn take(job: Job, urgent: &mut Vec<Job>, bulk: &mut std::collections::VecDeque<Bulk>) {
    if job.bulk {
        bulk.push_back(Bulk {
            done: Vec::with_capacity(job.texts.len()),
            job,
        });
    } else {
        urgent.push(job);
    }
}

/// Encodes waiting customers' messages together and answers each.
fn encode_messages(model: &mut Model, jobs: Vec<Job>, max_batch: usize, load: &Load) {
    let texts: Vec<&str> = jobs
        .iter()
        .flat_map(|j| j.texts.iter().map(String::as_str))
        .collect();
    let mut encoded = Vec::with_capacity(texts.len());
    let mut failure = None;
    for (i, chunk) in texts.chunks(max_batch).enumerate() {
        match encode(model, chunk, load) {
            Ok(vectors) => encoded.extend(vectors),
            Err(e) => {
                let left = texts.len() - i * max_batch - chunk.len();
                load.queued.sub(left as i64);
                failure = Some(e);
                break;
            }
        }
    }
    let mut encoded = encoded.into_iter();
    for job in jobs {
        let result = match &failure {
            Some(e) => Err(NluError::Model(e.clone())),
            None => Ok(encoded.by_ref().take(job.texts.len()).collect()),
        };
        let _ = job.reply.send(result);
    }
}

/// One forward pass over at most a batch of texts, counted in the worker's metrics.
fn encode(model: &mut Model, texts: &[&str], load: &Load) -> Result<Vec<Embedding>, String> {
    load.queued.sub(texts.len() as i64);
    load.batches.observe(texts.len() as f64);
    model
        .encode(texts)
        .map(|vectors| vectors.into_iter().map(normalize).collect())
}

fn normalize(mut v: Vec<f32>) -> Embedding {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v.into()
}

/// Cosine similarity of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
