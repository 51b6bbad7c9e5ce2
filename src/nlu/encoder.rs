//! The sentence encoder: one worker thread owns the model and encodes requests in batches, because
//! one batch of 32 sentences costs about as much as three sentences one at a time.

use std::path::Path;
use std::sync::Arc;

use rust_bert::pipelines::common::ModelType;
use rust_bert::pipelines::sentence_embeddings::{
    SentenceEmbeddingsConfig, SentenceEmbeddingsModel,
};
use rust_bert::resources::LocalResource;
use tokio::sync::{mpsc, oneshot};

use super::NluError;
use crate::settings::NluSettings;

/// A unit-length sentence embedding.
pub type Embedding = Arc<[f32]>;

type Reply = oneshot::Sender<Result<Vec<Embedding>, NluError>>;

struct Job {
    texts: Vec<String>,
    reply: Reply,
}

/// Cheap handle to the encoder worker; clone it freely.
#[derive(Clone)]
pub struct Encoder {
    jobs: mpsc::Sender<Job>,
    load: Load,
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
    /// Loads the model from `settings.model_dir` on a new worker thread; returns once it is ready.
    pub fn load(settings: &NluSettings) -> Result<Self, NluError> {
        let dir = settings.model_dir.clone();
        if !dir.join("model.safetensors").is_file() {
            return Err(NluError::ModelMissing {
                dir: dir.display().to_string(),
            });
        }
        let (jobs, queue) = mpsc::channel::<Job>(settings.queue_capacity.max(1));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let threads = settings.threads;
        let max_batch = settings.max_batch.max(1);
        let load = Load::new();
        let worker_load = load.clone();
        std::thread::Builder::new()
            .name("encoder".into())
            .spawn(move || {
                if threads > 0 {
                    tch::set_num_threads(threads);
                }
                match load_model(&dir) {
                    Ok(model) => {
                        let _ = ready_tx.send(Ok(()));
                        serve(model, queue, max_batch, &worker_load);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })
            .map_err(|e| NluError::Model(format!("could not start the encoder thread: {e}")))?;
        ready_rx.recv().map_err(|_| NluError::Stopped)??;
        Ok(Self { jobs, load })
    }

    /// The encoder's queue depth and batch sizes, for the server's metrics.
    pub fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.load.queued.clone()),
            Box::new(self.load.batches.clone()),
        ]
    }

    /// Encodes `texts`, waiting for a place in the queue when it is full.
    pub async fn embed(&self, texts: Vec<String>) -> Result<Vec<Embedding>, NluError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, result) = oneshot::channel();
        let count = texts.len() as i64;
        self.load.queued.add(count);
        if self.jobs.send(Job { texts, reply }).await.is_err() {
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

    /// Like [`Encoder::embed`], for threads outside the async runtime (file watcher, start-up).
    pub fn embed_blocking(&self, texts: Vec<String>) -> Result<Vec<Embedding>, NluError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, result) = oneshot::channel();
        let count = texts.len() as i64;
        self.load.queued.add(count);
        if self.jobs.blocking_send(Job { texts, reply }).is_err() {
            self.load.queued.sub(count);
            return Err(NluError::Stopped);
        }
        result.blocking_recv().map_err(|_| NluError::Stopped)?
    }
}

fn load_model(dir: &Path) -> Result<SentenceEmbeddingsModel, NluError> {
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

/// The worker loop: take one job, then whatever else is already waiting, up to `max_batch` texts,
/// and encode them together.
fn serve(
    model: SentenceEmbeddingsModel,
    mut queue: mpsc::Receiver<Job>,
    max_batch: usize,
    load: &Load,
) {
    while let Some(first) = queue.blocking_recv() {
        let mut jobs = vec![first];
        let mut count = jobs[0].texts.len();
        while count < max_batch {
            match queue.try_recv() {
                Ok(job) => {
                    count += job.texts.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        load.queued.sub(count as i64);
        load.batches.observe(count as f64);
        let texts: Vec<&str> = jobs
            .iter()
            .flat_map(|j| j.texts.iter().map(String::as_str))
            .collect();
        let mut encoded = Vec::with_capacity(texts.len());
        let mut failure = None;
        for chunk in texts.chunks(max_batch) {
            match model.encode(chunk) {
                Ok(vectors) => encoded.extend(vectors.into_iter().map(normalize)),
                Err(e) => {
                    failure = Some(e.to_string());
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
