//! Typed, layered settings: built-in defaults, then `frontdesk.toml` (or the file given with
//! `--config`), then `FRONTDESK_*` environment variables (`FRONTDESK_SERVER__PORT=9000`).

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// The sections of [`Settings`], as they are named in the file and after `FRONTDESK_`.
const SECTIONS: [&str; 11] = [
    "server",
    "store",
    "kb",
    "nlu",
    "bot",
    "limits",
    "escalation",
    "handoff",
    "agents",
    "identity",
    "cluster",
];

/// Everything the server can be configured with.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where the server listens.
    pub server: ServerSettings,
    /// Where conversations are stored.
    pub store: StoreSettings,
    /// The knowledge base.
    pub kb: KbSettings,
    /// The sentence encoder and classifier heads.
    pub nlu: NluSettings,
    /// When the bot answers, asks which article is meant, or says it does not know.
    pub bot: BotSettings,
    /// Limits on what clients may send and hold: frames, rates, sockets, the queue.
    pub limits: LimitSettings,
    /// When a conversation goes from the bot to a person.
    pub escalation: EscalationSettings,
    /// The queue of conversations waiting for agents: timers, capacity, business hours.
    pub handoff: HandoffSettings,
    /// Agent accounts and login tokens.
    pub agents: AgentSettings,
    /// Verified customer identity (signed by the operator's backend).
    pub identity: IdentitySettings,
    /// Several nodes sharing one Postgres store and one Redis.
    pub cluster: ClusterSettings,
}

/// Several nodes: what crosses between them (README "Running on several machines").
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    /// `redis://host:6379` (or `rediss://`, `redis://:password@host`): frames, queue changes and
    /// claims are told to every node through it. Absent: one node, everything in its memory.
    /// Needs a Postgres `store.url` that every node shares. The password is never printed.
    pub redis_url: Option<String>,
    /// The Redis pub/sub channel the nodes talk on: every node of one cluster names the same, two
    /// clusters sharing one Redis name different ones.
    pub channel: String,
    /// The desk's timers (pickup, reply, disconnected agents, abandoned queue entries) run on
    /// one node at a time, the holder of a lease in the store that it renews at every tick.
    /// When that node dies, another takes the lease over this many seconds after its last
    /// renewal, and runs what came due meanwhile. At least three ticks of the timers.
    pub timer_lease_seconds: f64,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        Self {
            redis_url: None,
            channel: "frontdesk:cluster".into(),
            timer_lease_seconds: 10.0,
        }
    }
}

impl std::fmt::Debug for ClusterSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self.redis_url.as_deref().map(redact_url);
        f.debug_struct("ClusterSettings")
            .field("redis_url", &url)
            .field("channel", &self.channel)
            .field("timer_lease_seconds", &self.timer_lease_seconds)
            .finish()
    }
}

/// A URL with its password replaced by `***`, to print.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Where the server listens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Interface to bind, e.g. `127.0.0.1` or `0.0.0.0`.
    pub host: String,
    /// Port to bind; 0 picks a free one.
    pub port: u16,
    /// Most customer WebSockets (`/ws/chat`) open at once; beyond it the upgrade is answered
    /// `503` with `Retry-After`.
    pub max_connections: usize,
    /// Most agent WebSockets (`/ws/agent`) open at once, a pool of their own: customers can never
    /// take an agent's slot.
    pub max_agent_connections: usize,
    /// Reverse proxies (addresses or networks, e.g. `10.0.0.0/8`) whose `X-Forwarded-For` names
    /// the client. Behind a proxy, list it here: otherwise every customer has the proxy's address
    /// and the per-address limits count them all as one.
    pub trusted_proxies: Vec<String>,
    /// Seconds a client has to send a request's headers, and the most a kept-alive connection
    /// waits for its next request; then the connection is closed (slow clients cannot hold it).
    pub header_timeout_seconds: f64,
    /// Seconds a request has to arrive whole and be answered; then `408 request_timeout`.
    /// An upgraded WebSocket is not a request any more: it lives by the `limits` deadlines.
    pub request_timeout_seconds: f64,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            max_connections: 10_000,
            max_agent_connections: 500,
            trusted_proxies: Vec::new(),
            header_timeout_seconds: 10.0,
            request_timeout_seconds: 30.0,
        }
    }
}

/// Where conversations are stored. Its `Debug` leaves out the URL's password.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// Database URL. `sqlite://path/to/file.db` (created if missing) is the embedded default;
    /// `postgres://user:password@host:5432/database` stores in Postgres (the database must exist;
    /// frontdesk creates its tables), which several nodes can share. The password is never
    /// printed.
    pub url: String,
    /// `full`: every acknowledged message is on disk (SQLite `synchronous=FULL`; on Postgres the
    /// server's own setting, `synchronous_commit=on` by default), so it survives a power loss or
    /// an OS crash. `normal`: faster, survives a crash of the server process but may lose the
    /// last acknowledged messages to a power loss (SQLite `synchronous=NORMAL`; Postgres
    /// `synchronous_commit=off`; docs/BENCHMARKS.md has the cost on SQLite).
    pub durability: StoreDurability,
}

/// See [`StoreSettings::durability`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreDurability {
    /// Every commit synced to disk.
    #[default]
    Full,
    /// Synced at checkpoints only.
    Normal,
}

impl std::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = redact_url(&self.url);
        f.debug_struct("StoreSettings")
            .field("url", &url)
            .field("durability", &self.durability)
            .finish()
    }
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            url: "sqlite://data/frontdesk.db".into(),
            durability: StoreDurability::Full,
        }
    }
}

/// How much keyword (BM25) matching counts next to semantic similarity by default; 0.1 (with
/// title matching) was best on StackFAQ's development queries (docs/EVALUATION.md).
pub const DEFAULT_KEYWORD_WEIGHT: f32 = 0.1;

/// The knowledge base.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KbSettings {
    /// Folder of markdown articles (searched recursively for `.md`, `.mdx` and `.markdown`).
    pub dir: PathBuf,
    /// Pick up edits, new and deleted files while running.
    pub watch: bool,
    /// File where section embeddings are cached, keyed by content hash.
    pub embedding_cache: PathBuf,
    /// How much keyword (BM25) matching counts next to semantic similarity when ranking passages;
    /// 0.1 (with title matching) was best on StackFAQ's development queries (docs/EVALUATION.md).
    pub keyword_weight: f32,
    /// Search customers' questions with their misspelt words corrected against the base's own
    /// words ("subscripton" → "subscription"; docs/EVALUATION.md, "Typos"). The message is stored
    /// and shown as written.
    pub spelling: bool,
    /// Match a long section (over 100 words) by its best piece of a few sentences as well as by
    /// the whole, so a question about a detail deep in it finds it (docs/EVALUATION.md, "Long
    /// sections in pieces"). The pieces are embedded either way (once, through the embedding
    /// cache); off, the search does not read them.
    pub pieces: bool,
}

impl Default for KbSettings {
    fn default() -> Self {
        Self {
            dir: "knowledge_base".into(),
            watch: true,
            embedding_cache: "data/embeddings.cache".into(),
            keyword_weight: DEFAULT_KEYWORD_WEIGHT,
            spelling: true,
            pieces: true,
        }
    }
}

/// The sentence encoder and classifier heads.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NluSettings {
    /// Which encoder runs: `torch` (the default: all-MiniLM-L6-v2 in fp32 on libtorch, from
    /// `model_dir`) or `onnx-int8` (the same model multiplying in int8 on onnxruntime, from
    /// `onnx_model_dir` and `onnx_runtime`), which encodes a question in about a fifth of
    /// libtorch's time (two cores carried 199 of 200 bot turns a second offered) and loses a few
    /// borderline questions on the dev question sets (docs/EVALUATION.md,
    /// "Encoder backends"; docs/BENCHMARKS.md, "bot turn: the int8 encoder multiplies in int8").
    /// Embedding caches keep each one's vectors apart.
    pub encoder: EncoderBackend,
    /// Folder of the sentence-transformers model (written by `scripts/setup.sh`).
    pub model_dir: PathBuf,
    /// Folder of the int8 ONNX encoder: `model.onnx` with the tokenizer files of `model_dir`
    /// (written by `scripts/setup.sh`).
    pub onnx_model_dir: PathBuf,
    /// onnxruntime's C library, version 1.31 or later (`scripts/setup.sh` links the one from
    /// PyPI's onnxruntime wheel here). Loaded only for `encoder = "onnx-int8"`; one per process.
    pub onnx_runtime: PathBuf,
    /// Threads each encoder worker (libtorch or onnxruntime) may use for inference. One by default: on a two-core machine that also runs
    /// the sockets and the store, a second libtorch thread spins against them and bot turns got
    /// 3× slower at p50 (docs/BENCHMARKS.md, "libtorch intra-op threads"); raise it on a machine
    /// with cores to spare.
    pub threads: i32,
    /// Encoder worker threads, each with its own copy of the model (about 90 MB for `torch`, 25 MB
    /// for `onnx-int8`), encoding customers' messages side by side. 0, the default: one per CPU
    /// core, at most four. One worker was the whole limit of a bot turn on two cores
    /// (docs/BENCHMARKS.md, "Encoder workers").
    pub workers: usize,
    /// Niceness the encoder workers run at (Linux; 0 to 19), 10 by default: the sockets and the
    /// store, whose work comes in short pieces, go before a long encoding on a busy machine, and
    /// the encoders take the rest. Measured with two workers on two cores: bot turns at 100/s had
    /// p99 44–57 ms at 10 and 372–549 ms at 0 (docs/BENCHMARKS.md, "Encoder workers").
    pub worker_nice: i32,
    /// Whether the encoder also gives each message the mean of its middle layer's token vectors,
    /// which only a support-signal model trained with `frontdesk train --signals --middle-layer`
    /// reads (not the shipped one; docs/EVALUATION.md, "A middle layer for the support
    /// signals"). Off by default: keeping every layer's output costs copies on every encode.
    /// A signal model that reads the middle layer refuses to start without it.
    pub middle_layer: bool,
    /// Most sentences encoded in one batch.
    pub max_batch: usize,
    /// Most encode requests waiting; callers beyond it wait (backpressure).
    pub queue_capacity: usize,
    /// The general support intents and their example phrasings (edited by people).
    pub intents: PathBuf,
    /// A help centre's own intents, added to the general ones (a name the general file has adds
    /// phrasings to it). Unset: `<kb.dir>/.frontdesk/intents.yaml` when the served knowledge base
    /// has one (the demo shop's order_status and shipping live there). The model trained on the
    /// combination is kept beside this file (`intents.model.json`), not in `intent_model`.
    pub extra_intents: Option<PathBuf>,
    /// Example messages that fit none of the intents.
    pub out_of_scope_examples: PathBuf,
    /// The trained intent classifier (written by `frontdesk train`).
    pub intent_model: PathBuf,
    /// The trained upset detector (committed; `frontdesk train --upset` rebuilds it).
    pub upset_model: PathBuf,
    /// The trained support-signal model: upset, urgent, asking for a person (committed;
    /// `frontdesk train --signals` rebuilds it from models/support_messages.yaml).
    pub signals_model: PathBuf,
    /// Who reads the support signals (upset, urgent, asking for a person): `"both"` (the
    /// default) averages the readings of the head on the sentence embedding (`signals_model`)
    /// with those of the encoder's top layers tuned for them (`tuned_signals_dir`, run on the
    /// torch encoder's lower layers: a third of an encoder pass more per customer message);
    /// `"head"` takes the head's alone (the reader until 2026-12-05: cheaper, catches fewer
    /// upset customers and hands more calm ones over), `"tuned"` the tuned layers' alone
    /// (docs/EVALUATION.md, "Tuned top layers for the support signals"). With
    /// `encoder = "onnx-int8"`, whose graph does not give the lower layers' output, the head
    /// reads them whatever this says.
    pub signal_reader: SignalReader,
    /// The tuned layers and their heads (`scripts/finetune_signals.py --train-layers 2` writes
    /// them; committed).
    pub tuned_signals_dir: PathBuf,
    /// Retrain at start-up when the intent examples changed since the model was trained (else
    /// refuse to start).
    pub retrain_stale: bool,
}

/// The sentence encoder's implementation (`nlu.encoder`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum EncoderBackend {
    /// all-MiniLM-L6-v2, fp32, through rust-bert on libtorch (the default).
    #[default]
    #[serde(rename = "torch")]
    Torch,
    /// all-MiniLM-L6-v2 with int8 weights, through onnxruntime.
    #[serde(rename = "onnx-int8")]
    OnnxInt8,
}

impl EncoderBackend {
    /// The name used in settings and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Torch => "torch",
            Self::OnnxInt8 => "onnx-int8",
        }
    }
}

/// Most encoder workers `nlu.workers = 0` starts, however many cores there are: each holds a copy
/// of the model, and past a few the sockets and the store need the cores more.
pub const AUTOMATIC_ENCODER_WORKERS: usize = 4;

/// Folder of a knowledge base that holds its own settings (not articles: the loader skips it).
pub const KB_SETTINGS_DIR: &str = ".frontdesk";

impl NluSettings {
    /// How many encoder workers run: `workers`, or when it is 0 one per CPU core, at most
    /// [`AUTOMATIC_ENCODER_WORKERS`].
    pub fn encoder_workers(&self) -> usize {
        if self.workers > 0 {
            return self.workers;
        }
        std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(AUTOMATIC_ENCODER_WORKERS)
    }

    /// These settings for serving the knowledge base in `kb_dir`: its own intents
    /// (`extra_intents`, or `<kb_dir>/.frontdesk/intents.yaml` when that exists) join the general
    /// ones, and the intent model is the one trained on both, kept beside the extra file.
    pub fn for_knowledge_base(&self, kb_dir: &std::path::Path) -> Self {
        let mut s = self.clone();
        let own = kb_dir.join(KB_SETTINGS_DIR).join("intents.yaml");
        if s.extra_intents.is_none() && own.is_file() {
            s.extra_intents = Some(own);
        }
        if let Some(extra) = &s.extra_intents {
            s.intent_model = extra.with_file_name("intents.model.json");
        }
        s
    }
}

/// Who reads the support signals (`nlu.signal_reader`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SignalReader {
    /// The tuned layers and the head, their probabilities averaged: the default.
    #[default]
    Both,
    /// The tuned layers alone (`nlu.tuned_signals_dir`).
    Tuned,
    /// The head on the sentence embedding alone (`nlu.signals_model`).
    Head,
}

impl NluSettings {
    /// Who reads the support signals: `signal_reader`, or the head when the encoder is not the
    /// torch one whose lower layers the tuned layers run on.
    pub fn reader(&self) -> SignalReader {
        if self.encoder == EncoderBackend::Torch {
            self.signal_reader
        } else {
            SignalReader::Head
        }
    }

    /// Whether the tuned layers run on customers' messages.
    pub fn reads_tuned_signals(&self) -> bool {
        self.reader() != SignalReader::Head
    }
}

impl Default for NluSettings {
    fn default() -> Self {
        Self {
            encoder: EncoderBackend::default(),
            model_dir: "models/all-MiniLM-L6-v2".into(),
            onnx_model_dir: "models/all-MiniLM-L6-v2-int8".into(),
            onnx_runtime: ".onnxruntime/libonnxruntime.so".into(),
            threads: 1,
            workers: 0,
            worker_nice: 10,
            middle_layer: false,
            max_batch: 32,
            queue_capacity: 256,
            intents: "models/intents.yaml".into(),
            extra_intents: None,
            out_of_scope_examples: "models/out_of_scope.yaml".into(),
            intent_model: "models/intents.model.json".into(),
            upset_model: "models/upset.json".into(),
            signals_model: "models/signals.json".into(),
            signal_reader: SignalReader::default(),
            tuned_signals_dir: "models/signals-tuned".into(),
            retrain_stale: true,
        }
    }
}

/// When the bot answers, asks which article is meant, or says it does not know.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BotSettings {
    /// Least probability (0–1) that the best article answers the question, by the answerability
    /// model (`models/answerability.json`, docs/EVALUATION.md), for the bot to count it as an
    /// answer: below it a greeting is answered in kind, and the hand-off policy counts the reply
    /// as unsure. The default is the model's own, chosen with it on its training data.
    pub answer_threshold: f32,
    /// Least probability of the best article for the bot to answer or offer choices; below it,
    /// it says it does not know.
    pub choices_threshold: f32,
    /// Least probability for a second or third article to be offered beside the best one
    /// ("Which of these is it?"); when no other article reaches it, the best one is answered.
    /// The default is the model's: a quarter of its choices threshold (until 2026-12-04 half:
    /// a quarter halved the wrong direct answers on the dev plays, docs/EVALUATION.md).
    pub option_threshold: f32,
    /// When the best article is below `choices_threshold`: least probability for a second or third
    /// article to be counted with it; when together they reach `choices_threshold` (the
    /// probability that one of them answers), they are offered. Two articles that fit one question
    /// equally split the evidence between them, so the runner-up is often far below
    /// `option_threshold`. The default is the model's (`models/answerability.json`).
    pub unsure_option_threshold: f32,
    /// Learn from what customers pick under "Which of these is it?": once customers in
    /// `learned_min_conversations` conversations picked the same article for a question, the next
    /// customer who asks it gets that article instead of the question back (see `bot::picks`).
    pub learn_from_picks: bool,
    /// Least cosine between a new question and a question customers picked an article for, for
    /// the pick to count (0.80: on StackFAQ's dev paraphrases, fewer than 1 % of questions have a
    /// paraphrase of another entry that close).
    pub learned_similarity: f32,
    /// Least number of conversations that picked the same article for such a question.
    pub learned_min_conversations: usize,
    /// Most articles offered at once.
    pub max_choices: usize,
    /// Longest line quoted from each offered article, in characters.
    pub choice_line_chars: usize,
    /// Longest passage quoted in an answer, in characters; the article link has the rest.
    pub max_passage_chars: usize,
    /// What the bot says to an intent that needs no article (greeting, thanks), by intent name.
    pub small_talk: std::collections::BTreeMap<String, String>,
    /// The cross-encoder that rescores the best passages before the decision.
    pub rerank: RerankSettings,
}

/// The reranker (`kb::Reranker`): a cross-encoder that reads the question with each of the
/// retrieval's best passages; its scores join the answer decision's inputs
/// (`models/answerability-rerank.json` instead of `models/answerability.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RerankSettings {
    /// Rescore the best passages before deciding (docs/EVALUATION.md has what it buys and costs).
    pub enabled: bool,
    /// Folder of the model (config.json, vocab.txt, model*.safetensors).
    pub model_dir: PathBuf,
    /// How many of the retrieval's best passages each question has rescored, in one batch.
    pub top: usize,
    /// Longest question + passage pair, in tokens; the passage is cut first.
    pub max_len: usize,
}

impl Default for RerankSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            model_dir: "models/reranker".into(),
            top: 5,
            max_len: 128,
        }
    }
}

impl Default for BotSettings {
    fn default() -> Self {
        Self {
            answer_threshold: 0.54,
            choices_threshold: 0.54,
            option_threshold: 0.13,
            unsure_option_threshold: 0.05,
            learn_from_picks: true,
            learned_similarity: 0.80,
            learned_min_conversations: 2,
            max_choices: 3,
            choice_line_chars: 120,
            max_passage_chars: 600,
            small_talk: [
                ("greeting", "Hi! What can I help you with? Ask me anything, or ask for a person at any time."),
                ("thanks_goodbye", "You're welcome! If anything else comes up, just write here."),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            rerank: RerankSettings::default(),
        }
    }
}

/// Limits on what clients may send and hold: frames, rates, sockets, the queue.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Largest frame accepted, in bytes; larger ones get an `error` frame.
    pub max_frame_bytes: usize,
    /// Largest frame (or fragmented message) a socket may send before it has introduced itself
    /// (`hello` on `/ws/chat`, an accepted `auth` on `/ws/agent`), in bytes; a larger one closes
    /// the socket (1009) before its payload is read. Keeps what unauthenticated sockets can make
    /// the server buffer small.
    pub max_frame_bytes_before_greeting: usize,
    /// Longest message text, in characters.
    pub max_message_chars: usize,
    /// Sustained customer messages (and requests for a person) per second per conversation,
    /// across all its sockets: reconnecting does not start the count again.
    pub messages_per_second: f64,
    /// Messages a conversation may send in a burst above the sustained rate.
    pub message_burst: f64,
    /// Seconds a new socket has to send `hello` (customers) or `auth` (agents) before it is
    /// closed (code 4000).
    pub hello_timeout_seconds: f64,
    /// Seconds of silence from a client after which the server pings it.
    pub ping_interval_seconds: f64,
    /// Seconds of silence (not even a pong) after which the socket is closed (code 4002).
    pub idle_timeout_seconds: f64,
    /// Frames waiting for a customer socket; a socket that lets more pile up is closed (code
    /// 4001) and resumes from its `last_seq` when it reconnects.
    pub customer_outbox: usize,
    /// Frames waiting for an agent socket, as above.
    pub agent_outbox: usize,
    /// An agent's frames being handled at once: its messages, notes and typing for different
    /// conversations run concurrently (in order within each), up to this many; beyond, the
    /// socket reads no further until one is done (TCP slows the console; nothing is dropped).
    /// 64 is above the chats one console holds, so each of them can have a message in the
    /// store's next group commit, yet a flood costs at most 64 frames (≤ 64 KiB each) per
    /// socket. 1 handles one frame at a time.
    pub agent_frames_in_flight: usize,
    /// Customer sockets one client address may have open at once, and as many agent sockets not
    /// signed in yet (see `server.trusted_proxies`).
    pub sockets_per_address: usize,
    /// New conversations one client address may start per minute (in a burst, as many).
    pub new_conversations_per_address_per_minute: f64,
    /// `request_human` frames one client address may send per minute, across all its sockets
    /// (in a burst, as many); beyond, `rate_limited`.
    pub handoff_requests_per_address_per_minute: f64,
    /// Tickets (`leave_email`) one client address may leave per minute, across all its sockets
    /// (in a burst, as many); beyond, `rate_limited`.
    pub tickets_per_address_per_minute: f64,
    /// Conversations waiting in the queue at once; beyond it a hand-off is refused (`queue_full`).
    pub max_queued: usize,
    /// Conversations from one client address waiting in the queue at once.
    pub queued_per_address: usize,
    /// Queue entries sent to an agent when their console connects (the queue frame says how many
    /// wait in all); after that, agents get the changes.
    pub queue_snapshot_entries: usize,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            max_frame_bytes: 16 * 1024,
            max_frame_bytes_before_greeting: 16 * 1024,
            max_message_chars: 4_000,
            messages_per_second: 1.0,
            message_burst: 5.0,
            hello_timeout_seconds: 5.0,
            ping_interval_seconds: 25.0,
            idle_timeout_seconds: 60.0,
            customer_outbox: 32,
            agent_outbox: 256,
            agent_frames_in_flight: 64,
            sockets_per_address: 32,
            new_conversations_per_address_per_minute: 20.0,
            handoff_requests_per_address_per_minute: 6.0,
            tickets_per_address_per_minute: 3.0,
            max_queued: 1_000,
            queued_per_address: 3,
            queue_snapshot_entries: 100,
        }
    }
}

/// When a conversation goes from the bot to a person. Per-intent rules (`team`, `always_human`)
/// live in the intents file; these are the thresholds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EscalationSettings {
    /// A message goes to a person when the strongest of upset, urgent and asking for a person
    /// (`Understanding::needs_person`, 0–1, a calibrated probability) reaches this and a cue
    /// backs the reading. Unset: the signal reader's ([`SignalBars`]): for `"head"` and
    /// `"tuned"` the bar chosen on businesses held out of their training (`models/signals.json`'s
    /// `threshold`, `models/signals-tuned/tuned.json`'s), for `"both"`, the default, the mean of
    /// the two; half of it counts as "impatient" for the conversation-level checks.
    pub upset_threshold: f32,
    /// The bar when no support cue is present in the message (no repeat contact, threat,
    /// deadline, capitals, "nobody helps", sarcasm marker or asking for someone): a plain
    /// description of a fault needs stronger evidence. Never below `upset_threshold`. Unset: the
    /// reader's own ([`SignalBars`]; `models/signals.json`'s `cueless_threshold` with
    /// `nlu.signal_reader = "head"`). `Settings::load` resolves both from the reader; settings
    /// built in code call [`Settings::follow_signal_reader`] after choosing the reader.
    pub upset_threshold_without_cue: f32,
    /// Upset rising over `rising_turns` customer turns, each turn up by at least
    /// `upset_rise / rising_turns`, by at least this much in total escalates (0.15 with the
    /// head, set on its scale on 2026-12-03; unset, the same share of the reader's bar without a
    /// cue, [`SignalBars::rise`])...
    pub upset_rise: f32,
    /// ...when the latest score is at least this (0.25 with the head; unset, the same share of
    /// the reader's bar without a cue, [`SignalBars::rising_floor`]).
    pub upset_rising_floor: f32,
    /// Customer turns looked at for a rising upset score.
    pub rising_turns: usize,
    /// Least intent confidence for an intent to count (a person asked for, a sensitive topic).
    pub intent_confidence: f32,
    /// Consecutive turns the bot could not answer (out of scope or no confident passage) before a
    /// person takes over, each answered with "I don't know" and the offer of a person (two when
    /// the customer is impatient); also the number of failed bot answers after which an
    /// impatient customer goes to a person.
    pub unanswered_turns: usize,
    /// "That didn't help" verdicts in one conversation before a person takes over.
    pub negative_feedback: usize,
    /// Least cosine between a question and the previous one, both answered from the same
    /// article, for the second to count as the first asked again (the answer did not help: a
    /// person takes over). 0.64: on StackFAQ's even-numbered paraphrases, where two paraphrases
    /// of one entry and a paraphrase with the closest paraphrase of another entry are told apart
    /// with equal errors (26 % each).
    pub rephrase_similarity: f32,
    /// Priority added for an upset customer.
    pub upset_priority: i64,
    /// Priority added for a sensitive intent.
    pub sensitive_priority: i64,
}

impl Default for EscalationSettings {
    fn default() -> Self {
        let bars = SignalBars::of(&NluSettings::default());
        Self {
            upset_threshold: bars.threshold,
            upset_threshold_without_cue: bars.without_cue,
            upset_rise: bars.rise(),
            upset_rising_floor: bars.rising_floor(),
            rising_turns: 3,
            intent_confidence: 0.5,
            unanswered_turns: 3,
            negative_feedback: 2,
            rephrase_similarity: 0.64,
            upset_priority: 2,
            sensitive_priority: 2,
        }
    }
}

/// The queue of conversations waiting for agents.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HandoffSettings {
    /// Assign queued conversations to the least-loaded online agent of the team automatically.
    pub auto_assign: bool,
    /// Nobody picked a conversation up within this many seconds: raise its priority and alert every
    /// online agent (again after each further period).
    pub pickup_timeout_seconds: f64,
    /// The agent holding a conversation has not answered the customer within this many seconds
    /// (after being assigned, or after any customer message): back to the queue.
    pub reply_timeout_seconds: f64,
    /// An agent holding conversations has been disconnected this many seconds: their
    /// conversations go back to the queue.
    pub disconnect_grace_seconds: f64,
    /// A queued conversation whose customer has had no socket open for this many seconds leaves
    /// the queue (back to the bot; the customer is told when they return).
    pub abandon_after_seconds: f64,
    /// Chats an agent takes at once unless their account says otherwise.
    pub default_max_chats: i64,
    /// Expected wait shown to customers before any pickup has been measured.
    pub default_wait_seconds: u32,
    /// Team for conversations whose intent names none.
    pub default_team: String,
    /// Opening hours per team (teams not listed are always open).
    pub hours: std::collections::BTreeMap<String, TeamHours>,
}

impl Default for HandoffSettings {
    fn default() -> Self {
        Self {
            auto_assign: true,
            pickup_timeout_seconds: 120.0,
            reply_timeout_seconds: 180.0,
            disconnect_grace_seconds: 120.0,
            abandon_after_seconds: 900.0,
            default_max_chats: 3,
            default_wait_seconds: 120,
            default_team: "general".into(),
            hours: Default::default(),
        }
    }
}

/// When a team's people are at work.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TeamHours {
    /// Days open, 1 = Monday … 7 = Sunday.
    pub days: Vec<u8>,
    /// Opening time, `HH:MM`.
    pub open: String,
    /// Closing time, `HH:MM`.
    pub close: String,
    /// The team's time zone as minutes east of UTC (e.g. 60 for CET).
    pub utc_offset_minutes: i32,
}

impl Default for TeamHours {
    fn default() -> Self {
        Self {
            days: vec![1, 2, 3, 4, 5],
            open: "09:00".into(),
            close: "17:00".into(),
            utc_offset_minutes: 0,
        }
    }
}

/// Agent accounts and login tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSettings {
    /// How long a login token lasts, in seconds.
    pub token_ttl_seconds: f64,
    /// Seconds between checks, for each open agent socket, that its token still holds in the
    /// store: a logout or revocation on another node, or from the command line, closes the socket
    /// within this time (on the node where it is made, at once).
    pub session_check_seconds: f64,
    /// `serve` creates the accounts demo@example.com (admin, every team) and editor@example.com
    /// (editor), both with password `demo`, if they do not exist. For trying frontdesk out only:
    /// when it is off, `serve` disables them and revokes their tokens.
    pub demo_agent: bool,
    /// Login attempts one account may have in a burst; then one more per
    /// `login_account_backoff_seconds` (answered `429` with `Retry-After` meanwhile).
    pub login_attempts_per_account: u32,
    /// Seconds for one more login attempt to an account once its burst is used.
    pub login_account_backoff_seconds: f64,
    /// Login attempts one client address may have in a burst, whatever the accounts.
    pub login_attempts_per_address: u32,
    /// Seconds for one more login attempt from an address once its burst is used.
    pub login_address_backoff_seconds: f64,
    /// Passwords checked at once (argon2 takes ~19 MiB and a core for a fraction of a second);
    /// a login that finds them all busy for two seconds is answered `503` with `Retry-After`.
    pub password_hashing_threads: usize,
}

impl Default for AgentSettings {
    fn default() -> Self {
        Self {
            token_ttl_seconds: 12.0 * 3600.0,
            session_check_seconds: 10.0,
            demo_agent: false,
            login_attempts_per_account: 5,
            login_account_backoff_seconds: 30.0,
            login_attempts_per_address: 30,
            login_address_backoff_seconds: 2.0,
            password_hashing_threads: 2,
        }
    }
}

/// Verified customer identity: the operator's backend signs each logged-in customer's id (or
/// email) with this secret, and the widget passes the signature as `user_hash` (see the README).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct IdentitySettings {
    /// The HMAC-SHA256 key shared with the operator's backend (a long random string; set it with
    /// `FRONTDESK_IDENTITY__SECRET`). Unset: every customer is unverified, and no two
    /// conversations are linked.
    pub secret: Option<Secret>,
    /// Refuse signatures without an expiry (`user_hash_expires`): a `user_hash` copied from a
    /// page then stops working when it expires. Off by default, so sites that sign without one
    /// keep working; turn it on once the backend signs with an expiry (see the README).
    pub require_expiry: bool,
}

/// A secret setting: never printed (`Debug` shows `***`).
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl Settings {
    /// Loads defaults, then the TOML file (if it exists), then `FRONTDESK_*` variables. The
    /// escalation bars nobody set are those of the signal reader in use ([`SignalBars::of`]).
    pub fn load(config_file: Option<&Path>) -> Result<Self, Box<figment::Error>> {
        // A file named on purpose must be there (a mistyped path would silently run on
        // defaults); `frontdesk.toml` beside the binary is read when it exists.
        if let Some(file) = config_file.filter(|f| !f.is_file()) {
            return Err(Box::new(figment::Error::from(format!(
                "the settings file {} does not exist: give the path of a TOML file (see \"Configuration\" in the README), or leave out --config and FRONTDESK_CONFIG to use frontdesk.toml if present and the defaults",
                file.display()
            ))));
        }
        // The file named is read as named (not looked for in the folders above, as
        // frontdesk.toml is).
        let toml = match config_file {
            Some(file) => Toml::file_exact(file),
            None => Toml::file("frontdesk.toml"),
        };
        // Only variables that name a section are settings (FRONTDESK_CONFIG, or a test's
        // FRONTDESK_TEST_POSTGRES, are not); within a section an unknown key is refused, as in
        // the file, so a misspelled setting says so instead of being ignored.
        let given =
            Figment::new()
                .merge(toml)
                .merge(Env::prefixed("FRONTDESK_").split("__").filter(|key| {
                    let key = key.as_str().to_lowercase();
                    SECTIONS.iter().any(|s| {
                        key.strip_prefix(s)
                            .is_some_and(|rest| rest.starts_with("__") || rest.starts_with('.'))
                    })
                }));
        let mut settings: Settings = Figment::from(Serialized::defaults(Settings::default()))
            .merge(given.clone())
            .extract()
            .map_err(Box::new)?;
        settings.apply_signal_bars(|key| given.contains(&format!("escalation.{key}")));
        settings
            .check()
            .map_err(|e| Box::new(figment::Error::from(e)))?;
        Ok(settings)
    }

    /// Refuses values the server cannot work with, saying which and what to set instead: a
    /// message burst of 0 would refuse every frame, hello included; a threshold above 1 would
    /// never be reached.
    pub fn check(&self) -> Result<(), String> {
        let positive = [
            (
                "limits.messages_per_second",
                self.limits.messages_per_second,
            ),
            ("agents.token_ttl_seconds", self.agents.token_ttl_seconds),
            (
                "agents.session_check_seconds",
                self.agents.session_check_seconds,
            ),
        ];
        for (key, value) in positive {
            if value.is_nan() || value <= 0.0 {
                return Err(format!(
                    "{key} is {value}: it must be above 0 (to lift a limit, set a large number)"
                ));
            }
        }
        let at_least = [
            ("limits.message_burst", self.limits.message_burst, 1.0),
            (
                "limits.max_frame_bytes",
                self.limits.max_frame_bytes as f64,
                1024.0,
            ),
            (
                "limits.max_message_chars",
                self.limits.max_message_chars as f64,
                1.0,
            ),
            (
                "server.max_connections",
                self.server.max_connections as f64,
                1.0,
            ),
            (
                "server.max_agent_connections",
                self.server.max_agent_connections as f64,
                1.0,
            ),
        ];
        for (key, value, least) in at_least {
            if value.is_nan() || value < least {
                return Err(format!("{key} is {value}: it must be at least {least}"));
            }
        }
        let answer = self.bot.answer_threshold;
        if !(0.0..=1.0).contains(&answer) {
            return Err(format!(
                "bot.answer_threshold is {answer}: it is a probability, between 0 and 1"
            ));
        }
        Ok(())
    }

    /// Sets both escalation bars, and the rising-upset rule's numbers, to those of the signal
    /// reader `nlu` now names (for settings built in code: `load` does it for those nobody set).
    pub fn follow_signal_reader(&mut self) {
        self.apply_signal_bars(|_| false);
    }

    /// The reader's bars and rising-upset numbers into `escalation`, except the fields `kept`
    /// names (an operator set them).
    fn apply_signal_bars(&mut self, kept: impl Fn(&str) -> bool) {
        let bars = SignalBars::of(&self.nlu);
        let e = &mut self.escalation;
        for (key, field, value) in [
            ("upset_threshold", &mut e.upset_threshold, bars.threshold),
            (
                "upset_threshold_without_cue",
                &mut e.upset_threshold_without_cue,
                bars.without_cue,
            ),
            ("upset_rise", &mut e.upset_rise, bars.rise()),
            (
                "upset_rising_floor",
                &mut e.upset_rising_floor,
                bars.rising_floor(),
            ),
        ] {
            if !kept(key) {
                *field = value;
            }
        }
    }
}

/// The rising-upset rule's numbers on the head's scale, where they were chosen (2026-12-03).
const HEAD_RISE: f32 = 0.15;
const HEAD_RISING_FLOOR: f32 = 0.25;

/// The bars the support signals' readings are held to by default: for the head and the tuned
/// layers as chosen when each was trained (on businesses held out of its training), for both
/// averaged the mean of the two (not chosen on any set).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignalBars {
    /// `escalation.upset_threshold`.
    pub threshold: f32,
    /// `escalation.upset_threshold_without_cue`.
    pub without_cue: f32,
}

impl SignalBars {
    /// `models/signals.json` (`threshold`, `cueless_threshold`): the head on the sentence
    /// embedding, `nlu.signal_reader = "head"` (or the int8 encoder).
    pub const HEAD: SignalBars = SignalBars {
        threshold: 0.44,
        without_cue: 0.65,
    };
    /// `models/signals-tuned/tuned.json` (`threshold`, `without_cue`): the tuned layers.
    pub const TUNED: SignalBars = SignalBars {
        threshold: 0.12,
        without_cue: 0.63,
    };
    /// Both readers averaged: the mean of their bars (not chosen on any measured set).
    pub const BOTH: SignalBars = SignalBars {
        threshold: (Self::HEAD.threshold + Self::TUNED.threshold) / 2.0,
        without_cue: (Self::HEAD.without_cue + Self::TUNED.without_cue) / 2.0,
    };

    /// The bars of the reader `nlu` configures.
    pub fn of(nlu: &NluSettings) -> SignalBars {
        match nlu.reader() {
            SignalReader::Both => Self::BOTH,
            SignalReader::Tuned => Self::TUNED,
            SignalReader::Head => Self::HEAD,
        }
    }

    /// How far upset must rise over the last turns to hand a conversation over
    /// (`escalation.upset_rise`): 0.15 on the head's scale, where it was set, and the same share
    /// of the bar without a cue for the other readers. The rule acts on turns that pass no bar
    /// alone, mostly messages without a cue, so it follows that bar.
    pub fn rise(&self) -> f32 {
        self.on_scale(HEAD_RISE)
    }

    /// The least reading that ends a rise (`escalation.upset_rising_floor`): 0.25 with the head,
    /// the same share of the bar without a cue for the other readers.
    pub fn rising_floor(&self) -> f32 {
        self.on_scale(HEAD_RISING_FLOOR)
    }

    fn on_scale(&self, head_value: f32) -> f32 {
        (head_value * self.without_cue / Self::HEAD.without_cue * 100.0).round() / 100.0
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("custom.toml", "[server]\nport = 9000\nhost = \"0.0.0.0\"\n")?;
            jail.set_env("FRONTDESK_SERVER__PORT", "9100");
            let settings = Settings::load(Some(Path::new("custom.toml"))).map_err(|e| *e)?;
            assert_eq!(settings.server.port, 9100);
            assert_eq!(settings.server.host, "0.0.0.0");
            assert_eq!(settings.kb.dir, PathBuf::from("knowledge_base"));
            Ok(())
        });
    }

    #[test]
    fn a_misspelled_setting_or_a_missing_settings_file_is_refused_with_its_name() {
        figment::Jail::expect_with(|jail| {
            let missing = Settings::load(Some(Path::new("nope.toml"))).expect_err("missing file");
            assert!(missing.to_string().contains("nope.toml"), "{missing}");
            jail.create_file("typo.toml", "[limits]\nmax_frame_byte = 10\n")?;
            let typo = Settings::load(Some(Path::new("typo.toml"))).expect_err("unknown key");
            assert!(typo.to_string().contains("max_frame_byte"), "{typo}");
            jail.set_env("FRONTDESK_LIMITS__MESSAGES_PER_SECONDS", "5");
            let typo = Settings::load(None).expect_err("unknown key in the environment");
            assert!(typo.to_string().contains("messages_per_seconds"), "{typo}");
            Ok(())
        });
        figment::Jail::expect_with(|jail| {
            // A value the server cannot work with is refused too.
            jail.set_env("FRONTDESK_LIMITS__MESSAGE_BURST", "0");
            let zero = Settings::load(None).expect_err("a burst of 0 refuses every frame");
            assert!(zero.to_string().contains("limits.message_burst"), "{zero}");
            jail.set_env("FRONTDESK_LIMITS__MESSAGE_BURST", "5");
            jail.set_env("FRONTDESK_BOT__ANSWER_THRESHOLD", "7");
            let seven = Settings::load(None).expect_err("a threshold above 1");
            assert!(
                seven.to_string().contains("bot.answer_threshold"),
                "{seven}"
            );
            Ok(())
        });
        figment::Jail::expect_with(|jail| {
            // Variables that name no section are not settings.
            jail.set_env("FRONTDESK_CONFIG", "frontdesk.toml");
            jail.set_env("FRONTDESK_TEST_POSTGRES", "postgres://localhost/x");
            jail.set_env("FRONTDESK_IDENTITY_SECRET", "a backend's own variable");
            Settings::load(None).map_err(|e| *e)?;
            Ok(())
        });
    }

    #[test]
    fn a_postgres_url_is_read_from_the_environment_and_its_password_never_printed() {
        figment::Jail::expect_with(|jail| {
            jail.set_env(
                "FRONTDESK_STORE__URL",
                "postgres://frontdesk:hunter2@db.internal:5432/frontdesk",
            );
            let settings = Settings::load(None).map_err(|e| *e)?;
            assert_eq!(
                settings.store.url,
                "postgres://frontdesk:hunter2@db.internal:5432/frontdesk"
            );
            let printed = format!("{settings:?}");
            assert!(!printed.contains("hunter2"), "{printed}");
            assert!(printed.contains("postgres://frontdesk:***@db.internal:5432/frontdesk"));
            Ok(())
        });
    }

    #[test]
    fn the_encoder_backend_is_chosen_by_name() {
        figment::Jail::expect_with(|jail| {
            assert_eq!(
                Settings::load(None).map_err(|e| *e)?.nlu.encoder,
                EncoderBackend::Torch
            );
            jail.set_env("FRONTDESK_NLU__ENCODER", "onnx-int8");
            let settings = Settings::load(None).map_err(|e| *e)?;
            assert_eq!(settings.nlu.encoder, EncoderBackend::OnnxInt8);
            jail.set_env("FRONTDESK_NLU__ENCODER", "int8");
            let error = Settings::load(None).expect_err("an unknown encoder is refused");
            assert!(error.to_string().contains("onnx-int8"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn the_escalation_bars_follow_the_signal_reader_unless_set() {
        figment::Jail::expect_with(|jail| {
            let bars = |s: &Settings| {
                (
                    s.escalation.upset_threshold,
                    s.escalation.upset_threshold_without_cue,
                    s.escalation.upset_rise,
                    s.escalation.upset_rising_floor,
                )
            };
            let of = |b: SignalBars| (b.threshold, b.without_cue, b.rise(), b.rising_floor());
            let default = Settings::load(None).map_err(|e| *e)?;
            assert_eq!(default.nlu.signal_reader, SignalReader::Both);
            assert_eq!(bars(&default), of(SignalBars::of(&default.nlu)));
            assert_eq!(bars(&default), bars(&Settings::default()));
            jail.set_env("FRONTDESK_NLU__SIGNAL_READER", "head");
            let switched = Settings::load(None).map_err(|e| *e)?;
            let expected = of(SignalBars::of(&switched.nlu));
            assert_eq!(bars(&switched), expected);
            assert_ne!(bars(&switched), bars(&default));
            // The head's rising-upset numbers are those it was set with.
            assert_eq!((expected.2, expected.3), (0.15, 0.25));
            jail.create_file(
                "frontdesk.toml",
                "[escalation]\nupset_threshold = 0.7\nupset_rise = 0.3\n",
            )?;
            let set = Settings::load(None).map_err(|e| *e)?;
            assert_eq!(bars(&set), (0.7, expected.1, 0.3, expected.3));
            Ok(())
        });
    }

    #[test]
    fn the_default_bars_are_those_the_committed_readers_were_trained_with() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let read = |path: &str| -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(root.join(path)).expect("committed model"))
                .expect("json")
        };
        let number = |v: &serde_json::Value, key: &str| v[key].as_f64().expect(key) as f32;
        let head = read("models/signals.json");
        assert_eq!(
            SignalBars::HEAD,
            SignalBars {
                threshold: number(&head, "threshold"),
                without_cue: number(&head, "cueless_threshold"),
            }
        );
        let tuned = read("models/signals-tuned/tuned.json");
        assert_eq!(
            SignalBars::TUNED,
            SignalBars {
                threshold: number(&tuned, "threshold"),
                without_cue: number(&tuned, "without_cue"),
            }
        );
        let mean = |a: f32, b: f32| ((a + b) / 2.0 * 1000.0).round() / 1000.0;
        assert_eq!(
            SignalBars::BOTH,
            SignalBars {
                threshold: mean(SignalBars::HEAD.threshold, SignalBars::TUNED.threshold),
                without_cue: mean(SignalBars::HEAD.without_cue, SignalBars::TUNED.without_cue),
            }
        );
    }

    #[test]
    fn with_the_int8_encoder_the_signals_are_read_by_the_head_and_the_bars_are_its_own() {
        let settings = NluSettings {
            encoder: EncoderBackend::OnnxInt8,
            signal_reader: SignalReader::Both,
            ..Default::default()
        };
        assert!(!settings.reads_tuned_signals());
        assert_eq!(SignalBars::of(&settings), SignalBars::HEAD);
        let torch = NluSettings {
            signal_reader: SignalReader::Tuned,
            ..Default::default()
        };
        assert!(torch.reads_tuned_signals());
        assert_eq!(SignalBars::of(&torch), SignalBars::TUNED);
        assert_eq!(SignalBars::of(&NluSettings::default()), SignalBars::BOTH);
    }
}
