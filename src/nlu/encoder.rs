//! The sentence encoder: worker threads, each with its own copy of the model, encode requests in
//! batches (for torch a batch costs less per sentence than one at a time; the int8 graph encodes
//! each text of a batch alone, see `onnx.rs`). One worker on one core was the whole limit of a bot
//! turn; a second one, called only when the first is busy, carried 1.6× the turns a second on two
//! cores with onnx-int8 (then multiplying in float32) and 1.3× with torch (docs/BENCHMARKS.md,
//! "Encoder workers").
//!
//! Requests come in two kinds. A customer's message ([`Encoder::embed`]) is waited on by someone in
//! a chat; indexing a knowledge base or a benchmark ([`Encoder::embed_blocking`]) may send thousands
//! of texts at once. Workers take bulk work one batch at a time and, before each batch, every
//! waiting message first, so a re-index of a large help centre never stalls the chats; the
//! batches of one bulk job are shared among the workers.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};

use tokio::sync::{mpsc, oneshot};

use super::bert::{Pooled, TorchEncoder};
use super::onnx::OnnxEncoder;
use super::NluError;
use crate::settings::{EncoderBackend, NluSettings};

/// A unit-length sentence embedding.
pub type Embedding = Arc<[f32]>;

/// Both vectors of one text, from one forward pass.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The unit-length sentence embedding (retrieval, intents, the GoEmotions head).
    pub sentence: Embedding,
    /// The mean of a middle layer's token vectors, not normalised (the support signals; see
    /// [`super::bert::MIDDLE_LAYER`]); empty unless `nlu.middle_layer` is on.
    pub middle: Arc<[f32]>,
    /// The support signals' tuned layers' reading (`nlu.signal_reader`; asked for by
    /// [`Encoder::embed_full`] and [`Encoder::embed_blocking_full`], not by indexing).
    pub tuned: Option<super::tuned::TunedScores>,
}

type Reply = oneshot::Sender<Result<Vec<Encoded>, NluError>>;

struct Job {
    texts: Vec<String>,
    reply: Reply,
    /// Indexing work: encoded between customers' messages, never ahead of them.
    bulk: bool,
    /// Whether the tuned layers read the texts too (see [`Encoded::tuned`]).
    signals: bool,
}

/// Cheap handle to the encoder worker; clone it freely.
#[derive(Clone)]
pub struct Encoder {
    jobs: mpsc::Sender<Job>,
    /// Wakes a helper worker when the first one is busy (see [`Helpers`]).
    helpers: Arc<Helpers>,
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
        let work = Arc::new(Mutex::new(Work {
            jobs: queue,
            messages: VecDeque::new(),
            bulk: VecDeque::new(),
            closed: false,
        }));
        let helpers = Arc::new(Helpers::default());
        let workers = settings.encoder_workers();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let threads = settings.threads;
        let max_batch = settings.max_batch.max(1);
        let nice = settings.worker_nice;
        let middle = settings.middle_layer;
        let tuned = settings
            .reads_tuned_signals()
            .then(|| settings.tuned_signals_dir.clone());
        if settings.signal_reader != crate::settings::SignalReader::Head && tuned.is_none() {
            tracing::info!(
                "the support signals are read by {} alone (the tuned layers of nlu.signal_reader \
                 run on the torch encoder's lower layers, which the int8 encoder does not give)",
                settings.signals_model.display()
            );
        }
        let load = Load::new();
        for n in 0..workers {
            let (work, helpers, load, ready_tx) = (
                work.clone(),
                helpers.clone(),
                load.clone(),
                ready_tx.clone(),
            );
            let (source, tuned) = (source.clone(), tuned.clone());
            let worker = Worker {
                first: n == 0,
                work,
                helpers,
                max_batch,
            };
            std::thread::Builder::new()
                .name("encoder".into())
                .spawn(move || {
                    match lower_priority(nice)
                        .and_then(|()| Model::load(source, threads, middle, tuned))
                    {
                        Ok(model) => {
                            let _ = ready_tx.send(Ok(()));
                            worker.serve(model, &load);
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                })
                .map_err(|e| NluError::Model(format!("could not start an encoder thread: {e}")))?;
        }
        drop(ready_tx);
        for _ in 0..workers {
            ready_rx.recv().map_err(|_| NluError::Stopped)??;
        }
        Ok(Self {
            jobs,
            helpers,
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
            EncoderBackend::OnnxInt8 => super::onnx::MODEL_TAG,
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
        Ok(sentences(self.send(texts, false).await?))
    }

    /// Like [`Encoder::embed`], with each text's middle-layer vector and the support signals'
    /// tuned reading too.
    pub async fn embed_full(&self, texts: Vec<String>) -> Result<Vec<Encoded>, NluError> {
        self.send(texts, true).await
    }

    async fn send(&self, texts: Vec<String>, signals: bool) -> Result<Vec<Encoded>, NluError> {
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
            signals,
        };
        if self.jobs.send(job).await.is_err() {
            self.load.queued.sub(count);
            return Err(NluError::Stopped);
        }
        self.helpers.wanted();
        result.await.map_err(|_| NluError::Stopped)?
    }

    /// Encodes one text (its sentence embedding only: a search, not a customer's message).
    pub async fn embed_one(&self, text: &str) -> Result<Embedding, NluError> {
        let mut v = self.send(vec![text.to_owned()], false).await?;
        Ok(v.pop().ok_or(NluError::Stopped)?.sentence)
    }

    /// Encodes one text: both its vectors.
    pub async fn embed_one_full(&self, text: &str) -> Result<Encoded, NluError> {
        let mut v = self.embed_full(vec![text.to_owned()]).await?;
        v.pop().ok_or(NluError::Stopped)
    }

    /// Like [`Encoder::embed`], for bulk work on threads outside the async runtime (indexing at
    /// start-up and after an edit, training, benchmarks): encoded a batch at a time, after any
    /// customer's message that is waiting.
    pub fn embed_blocking(&self, texts: Vec<String>) -> Result<Vec<Embedding>, NluError> {
        Ok(sentences(self.send_blocking(texts, false)?))
    }

    /// Like [`Encoder::embed_blocking`], with each text's middle-layer vector and the support
    /// signals' tuned reading too.
    pub fn embed_blocking_full(&self, texts: Vec<String>) -> Result<Vec<Encoded>, NluError> {
        self.send_blocking(texts, true)
    }

    fn send_blocking(&self, texts: Vec<String>, signals: bool) -> Result<Vec<Encoded>, NluError> {
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
            signals,
        };
        if self.jobs.blocking_send(job).is_err() {
            self.load.queued.sub(count);
            return Err(NluError::Stopped);
        }
        self.helpers.wanted();
        result.blocking_recv().map_err(|_| NluError::Stopped)?
    }
}

/// Runs the calling thread (and the threads it starts, such as onnxruntime's) at niceness `nice`.
fn lower_priority(nice: i32) -> Result<(), NluError> {
    if nice == 0 {
        return Ok(());
    }
    #[cfg(target_os = "linux")]
    rustix::process::setpriority_process(Some(rustix::thread::gettid()), nice).map_err(|e| {
        NluError::Model(format!(
            "could not run the encoder at niceness {nice} ({e}): set nlu.worker_nice between 0 \
             and 19, or 0 to leave it as it is"
        ))
    })?;
    Ok(())
}

/// Where a worker loads its model from.
#[derive(Clone)]
enum Source {
    Torch(PathBuf),
    Onnx { dir: PathBuf, runtime: PathBuf },
}

/// The model the worker thread owns.
enum Model {
    Torch(Box<TorchEncoder>),
    Onnx(Box<OnnxEncoder>),
}

impl Model {
    fn load(
        source: Source,
        threads: i32,
        middle: bool,
        tuned: Option<PathBuf>,
    ) -> Result<Self, NluError> {
        match source {
            Source::Torch(dir) => {
                if threads > 0 {
                    tch::set_num_threads(threads);
                }
                TorchEncoder::load(&dir, middle, tuned.as_deref()).map(|m| Self::Torch(Box::new(m)))
            }
            Source::Onnx { dir, runtime } => {
                OnnxEncoder::load(&dir, &runtime, threads.max(1) as usize, middle)
                    .map(|m| Self::Onnx(Box::new(m)))
            }
        }
    }

    /// The mean-pooled vectors, not yet normalised: one forward pass for torch, one per text for
    /// the int8 graph.
    fn encode(&mut self, texts: &[&str], signals: bool) -> Result<Vec<Pooled>, String> {
        match self {
            Self::Torch(model) => model.encode(texts, signals),
            Self::Onnx(model) => model.encode(texts),
        }
    }
}

/// A bulk job, shared by the workers that encode its batches.
struct BulkJob {
    texts: Vec<String>,
    signals: bool,
    done: Mutex<BulkDone>,
}

/// What has come of a bulk job's batches so far.
struct BulkDone {
    vectors: Vec<Option<Encoded>>,
    /// Texts handed to a worker and not encoded yet, or never handed out.
    left: usize,
    /// Taken when the job is answered: with every vector, or with the first failure.
    reply: Option<Reply>,
}

impl BulkJob {
    fn new(job: Job) -> Arc<Self> {
        let n = job.texts.len();
        Arc::new(Self {
            texts: job.texts,
            signals: job.signals,
            done: Mutex::new(BulkDone {
                vectors: vec![None; n],
                left: n,
                reply: Some(job.reply),
            }),
        })
    }

    fn done(&self) -> std::sync::MutexGuard<'_, BulkDone> {
        // A worker that panicked mid-batch leaves the vectors as they were: still usable.
        self.done.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the job was already answered (with a failure): its other batches are skipped.
    fn answered(&self) -> bool {
        self.done().reply.is_none()
    }

    /// Records one batch's outcome and answers the job when it is the last, or the first failure.
    fn finish(&self, range: std::ops::Range<usize>, result: Result<Vec<Encoded>, String>) {
        let mut done = self.done();
        done.left -= range.len();
        match result {
            Ok(vectors) => {
                for (slot, v) in done.vectors[range].iter_mut().zip(vectors) {
                    *slot = Some(v);
                }
                if done.left == 0 {
                    if let Some(reply) = done.reply.take() {
                        let vectors = std::mem::take(&mut done.vectors);
                        let _ = reply.send(Ok(vectors.into_iter().flatten().collect()));
                    }
                }
            }
            Err(e) => {
                if let Some(reply) = done.reply.take() {
                    let _ = reply.send(Err(NluError::Model(e)));
                }
            }
        }
    }
}

/// The work every worker takes from: the channel, customers' messages taken out of it, and bulk
/// jobs being handed out a batch at a time (with the next text to hand out).
struct Work {
    jobs: mpsc::Receiver<Job>,
    messages: VecDeque<Job>,
    bulk: VecDeque<(Arc<BulkJob>, usize)>,
    /// Every [`Encoder`] handle is gone and nothing is left.
    closed: bool,
}

/// What one worker encodes next.
enum Task {
    Messages(Vec<Job>),
    Bulk(Arc<BulkJob>, std::ops::Range<usize>),
}

impl Work {
    fn take(&mut self, job: Job) {
        if job.bulk {
            self.bulk.push_back((BulkJob::new(job), 0));
        } else {
            self.messages.push_back(job);
        }
    }

    fn waiting_messages(&self) -> usize {
        self.messages.iter().map(|j| j.texts.len()).sum()
    }

    /// The next task if there is one now: waiting customers' messages together (up to a batch),
    /// else the next batch of the oldest bulk job.
    fn try_next(&mut self, max_batch: usize) -> Option<Task> {
        // Every bulk caller waits for its reply, so at most one bulk job per indexing thread is
        // ever set aside here; messages beyond a batch stay in the (bounded) channel.
        while self.waiting_messages() < max_batch {
            match self.jobs.try_recv() {
                Ok(job) => self.take(job),
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    self.closed = self.messages.is_empty() && self.bulk.is_empty();
                    break;
                }
            }
        }
        if !self.messages.is_empty() {
            let mut batch = vec![self.messages.pop_front()?];
            let mut texts = batch[0].texts.len();
            while let Some(job) = self.messages.front() {
                if texts + job.texts.len() > max_batch {
                    break;
                }
                texts += job.texts.len();
                batch.extend(self.messages.pop_front());
            }
            return Some(Task::Messages(batch));
        }
        let (job, next) = self.bulk.front_mut()?;
        let job = job.clone();
        let from = *next;
        let to = (from + max_batch).min(job.texts.len());
        *next = to;
        if to == job.texts.len() {
            self.bulk.pop_front();
        }
        Some(Task::Bulk(job, from..to))
    }

    /// The next task, waiting on the channel when there is none. None once every [`Encoder`]
    /// handle is gone.
    fn next(&mut self, max_batch: usize) -> Option<Task> {
        loop {
            if let Some(task) = self.try_next(max_batch) {
                return Some(task);
            }
            match self.jobs.blocking_recv() {
                Some(job) => self.take(job),
                None => {
                    self.closed = true;
                    return None;
                }
            }
        }
    }

    /// Whether a task is left for another worker.
    fn more(&self) -> bool {
        !self.messages.is_empty() || !self.bulk.is_empty() || !self.jobs.is_empty()
    }
}

/// How the first worker calls the others: they sleep until a message arrives while it is busy
/// (or it leaves work behind), so under light load every message goes to the first worker alone,
/// as fast as one worker is, and a second core joins only when a message would otherwise wait.
#[derive(Default)]
struct Helpers {
    first_busy: std::sync::atomic::AtomicBool,
    wake: Condvar,
}

impl Helpers {
    /// Called after a job is sent: a helper takes it if the first worker is busy.
    fn wanted(&self) {
        if self.first_busy.load(Ordering::SeqCst) {
            self.wake.notify_one();
        }
    }
}

/// Longest a helper worker sleeps before it looks at the work again by itself.
const HELPER_RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// One encoder worker: the first waits on the channel, the others on [`Helpers`].
struct Worker {
    first: bool,
    work: Arc<Mutex<Work>>,
    helpers: Arc<Helpers>,
    max_batch: usize,
}

impl Worker {
    /// The worker's loop: it takes the next task from the shared work (holding the lock only while
    /// it takes, or while the first worker waits on the channel) and encodes it with its own
    /// model.
    fn serve(&self, mut model: Model, load: &Load) {
        while let Some(task) = self.next() {
            run(&mut model, task, self.max_batch, load);
            if self.first {
                self.helpers.first_busy.store(false, Ordering::SeqCst);
            }
        }
        // The channel is closed: wake every helper so they see it too.
        self.helpers.wake.notify_all();
    }

    fn next(&self) -> Option<Task> {
        let mut work = self.work.lock().unwrap_or_else(|p| p.into_inner());
        let task = if self.first {
            work.next(self.max_batch)
        } else {
            loop {
                if let Some(task) = work.try_next(self.max_batch) {
                    break Some(task);
                }
                if work.closed {
                    break None;
                }
                // Woken by the first worker or a caller; the timeout only bounds a wake-up
                // that came between the check above and this wait, and notices a closed
                // channel when the first worker never started.
                work = self
                    .helpers
                    .wake
                    .wait_timeout(work, HELPER_RECHECK)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        };
        if self.first && task.is_some() {
            // Set before the lock is let go, so a message sent from now on calls a helper.
            self.helpers.first_busy.store(true, Ordering::SeqCst);
        }
        if task.is_some() && work.more() {
            // Left behind (a backlog, or the rest of a bulk job): one more worker takes it.
            self.helpers.wake.notify_one();
        }
        task
    }
}

/// Encodes one task and answers its callers.
fn run(model: &mut Model, task: Task, max_batch: usize, load: &Load) {
    match task {
        Task::Messages(jobs) => encode_messages(model, jobs, max_batch, load),
        Task::Bulk(job, range) => {
            if job.answered() {
                // An earlier batch failed and the caller has its error: nothing to encode.
                load.queued.sub(range.len() as i64);
                return;
            }
            let texts: Vec<&str> = job.texts[range.clone()]
                .iter()
                .map(String::as_str)
                .collect();
            let result = encode(model, &texts, job.signals, load);
            job.finish(range, result);
        }
    }
}

/// Encodes waiting customers' messages together and answers each.
fn encode_messages(model: &mut Model, jobs: Vec<Job>, max_batch: usize, load: &Load) {
    let texts: Vec<&str> = jobs
        .iter()
        .flat_map(|j| j.texts.iter().map(String::as_str))
        .collect();
    let signals = jobs.iter().any(|j| j.signals);
    let mut encoded = Vec::with_capacity(texts.len());
    let mut failure = None;
    for (i, chunk) in texts.chunks(max_batch).enumerate() {
        match encode(model, chunk, signals, load) {
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

/// At most a batch of texts, counted in the worker's metrics (the batch as the queue gave it, one
/// forward pass for torch, one per text for the int8 graph).
fn encode(
    model: &mut Model,
    texts: &[&str],
    signals: bool,
    load: &Load,
) -> Result<Vec<Encoded>, String> {
    load.queued.sub(texts.len() as i64);
    load.batches.observe(texts.len() as f64);
    model.encode(texts, signals).map(|vectors| {
        vectors
            .into_iter()
            .map(|p| Encoded {
                sentence: normalize(p.sentence),
                middle: p.middle.into(),
                tuned: p.tuned,
            })
            .collect()
    })
}

fn normalize(mut v: Vec<f32>) -> Embedding {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v.into()
}

fn sentences(encoded: Vec<Encoded>) -> Vec<Embedding> {
    encoded.into_iter().map(|e| e.sentence).collect()
}

/// Cosine similarity of two unit vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    // Eight running sums, not one: a single sum is a chain of dependent additions the compiler
    // may not reorder, while eight independent ones become vector instructions (the search
    // computes one of these per section and piece of the base for every question).
    let mut sums = [0f32; 8];
    let (chunks_a, chunks_b) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = chunks_a
        .remainder()
        .iter()
        .zip(chunks_b.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in chunks_a.zip(chunks_b) {
        for i in 0..8 {
            sums[i] += x[i] * y[i];
        }
    }
    sums.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::cosine;

    #[test]
    fn cosine_is_the_dot_product_for_any_length() {
        for n in [0usize, 1, 7, 8, 9, 383, 384] {
            let a: Vec<f32> = (0..n).map(|i| ((i * 7 % 13) as f32 - 6.0) / 10.0).collect();
            let b: Vec<f32> = (0..n).map(|i| ((i * 5 % 11) as f32 - 5.0) / 10.0).collect();
            let plain: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(x * y)).sum();
            assert!(
                (f64::from(cosine(&a, &b)) - plain).abs() < 1e-4,
                "length {n}"
            );
        }
    }
}
