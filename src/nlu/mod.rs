//! Language understanding: the sentence encoder behind a batching worker, and the embedding cache.
//!
//! The encoder (all-MiniLM-L6-v2, through rust-bert on libtorch, or its int8 ONNX export through
//! onnxruntime: `nlu.encoder`) turns text into 384-dimensional unit vectors; everything semantic in
//! frontdesk (retrieval, intents, upset detection) is built on them.

mod bert;
mod cache;
mod encoder;
pub mod head;
pub mod intents;
mod onnx;
pub mod signals;
pub mod tuned;
mod understand;
pub mod upset;
mod words;

pub use bert::MIDDLE_LAYER;
pub use cache::EmbeddingCache;
pub use encoder::{cosine, Embedding, Encoded, Encoder};
pub use understand::{load_or_train_intents, progress_bar, Analysis, Nlu};
pub use words::{
    asks, codes, content_words, for_models, has_word_start, has_words, phrase_text, question_key,
};

/// What can go wrong understanding text.
#[derive(Debug, thiserror::Error)]
pub enum NluError {
    /// The model files are not where the settings say.
    #[error("the sentence encoder is missing from {dir}: run `scripts/setup.sh` (or `make setup`) to install it, or set {setting}")]
    ModelMissing {
        /// Folder that was searched.
        dir: String,
        /// The setting that names the folder.
        setting: &'static str,
    },
    /// onnxruntime's library (for `nlu.encoder = "onnx-int8"`) could not be loaded.
    #[error("onnxruntime could not be loaded from {path} ({reason}): run `scripts/setup.sh` (or `make setup`) to install it, set nlu.onnx_runtime to a libonnxruntime.so of version 1.31 or later, or set nlu.encoder = \"torch\"")]
    RuntimeMissing {
        /// The library path tried.
        path: String,
        /// Why it failed.
        reason: String,
    },
    /// libtorch or rust-bert failed to load or run the model.
    #[error("the sentence encoder failed: {0}")]
    Model(String),
    /// The encoder worker has stopped (the server is shutting down).
    #[error("the sentence encoder has stopped; restart the server")]
    Stopped,
    /// The intents file (or the out-of-scope examples, or the trained model) is unusable.
    #[error("{path} {message}")]
    Intents {
        /// The file.
        path: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// Training a classifier failed.
    #[error("training failed: {0}")]
    Training(String),
    /// The embedding cache file could not be read or written.
    #[error(
        "the embedding cache at {path} could not be used ({source}); delete it and it is rebuilt"
    )]
    Cache {
        /// The cache file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// What frontdesk understood of one customer message: the input of the escalation policy, stored
/// with the message and shown to agents.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Understanding {
    /// The most likely intent; `None` when the message fits none of them (out of scope).
    pub intent: Option<IntentMatch>,
    /// The message fits none of the intents.
    pub out_of_scope: bool,
    /// Probability that the customer is upset (0 to 1): frustration, sarcasm, a threat, a repeat
    /// contact, as support customers write them (the support-signal model; the GoEmotions score
    /// alone when that model is not loaded).
    pub upset: f32,
    /// Surface cues present ("shouting", "repeat contact", "threat", "deadline", ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upset_cues: Vec<String>,
    /// A short message of thanks for something that went right, with no complaint, request or
    /// question in it ([`signals::is_thanks`]): its upset reading is not counted (`upset` is 0).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub thanks: bool,
    /// The message says that what the customer was given did not work or help ("thanks but that
    /// didn't work", [`signals::says_it_did_not_help`]): whatever it thanks for, it is not
    /// answered in kind.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_helped: bool,
    /// Probability that the matter is urgent: a deadline, something down right now (0 to 1).
    #[serde(default)]
    pub urgent: f32,
    /// Probability that the customer asks for a person, plainly or not ("anyone on your team
    /// around?") (0 to 1).
    #[serde(default)]
    pub asks_for_person: f32,
    /// The message asks how to do something or whether something can be done ("how do i remove
    /// a colleague's access", "can i see a log of…"): a question the knowledge base may answer,
    /// even on a topic that otherwise goes to a person.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub how_to: bool,
    /// The message asks something in words of its own ([`asks`](crate::nlu::asks): a how-to phrase
    /// and a content word that is not small talk's, or a question mark and two: "hmm ok so if i
    /// turn it on now it only counts from now on?"), so it is no greeting or thank-you to answer
    /// in kind, whatever it opens with ("thanks! how are you?" still is one).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub asks: bool,
    /// Identifiers the customer quotes, letters and digits together ("E40", "ga4"), lower case:
    /// the one section of the chosen article that lists one is the one quoted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codes: Vec<String>,
}

impl Understanding {
    /// How much this message needs a person: the strongest of upset, urgent and asking for one.
    /// Not their sum: three middling readings ("a bit annoyed", "soonish", "maybe a person") do
    /// not add up to one clear one.
    pub fn needs_person(&self) -> f32 {
        self.upset.max(self.urgent).max(self.asks_for_person)
    }
}

/// The intent (in `models/intents.yaml`) of a customer asking for a person.
pub const HUMAN_REQUEST_INTENT: &str = "human_request";

/// An intent and how sure the classifier is, with the intent's policy fields from the intents file.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct IntentMatch {
    /// The intent's name, e.g. `refund`.
    pub name: String,
    /// Calibrated probability of this intent (0 to 1).
    pub confidence: f32,
    /// Team that handles it, e.g. `billing`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Conversations with this intent always go to a person.
    #[serde(default)]
    pub always_human: bool,
    /// The least probability at which the classifier is sure enough of this intent for its
    /// always-human policy to act (calibrated when training; 0 for an intent without one): what an
    /// agent is shown as the threshold a sensitive hand-off passed.
    #[serde(default)]
    pub confident_at: f32,
}
