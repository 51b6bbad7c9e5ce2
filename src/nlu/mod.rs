//! Language understanding: the sentence encoder behind a batching worker, and the embedding cache.
//!
//! The encoder (all-MiniLM-L6-v2 through rust-bert on libtorch) turns text into 384-dimensional unit
//! vectors; everything semantic in frontdesk (retrieval, intents, upset detection) is built on them.

mod cache;
mod encoder;

pub use cache::EmbeddingCache;
pub use encoder::{cosine, Embedding, Encoder};

/// What can go wrong understanding text.
#[derive(Debug, thiserror::Error)]
pub enum NluError {
    /// The model files are not where the settings say.
    #[error("the sentence encoder is missing from {dir}: run `scripts/setup.sh` (or `make setup`) to install it, or set nlu.model_dir")]
    ModelMissing {
        /// Folder that was searched.
        dir: String,
    },
    /// libtorch or rust-bert failed to load or run the model.
    #[error("the sentence encoder failed: {0}")]
    Model(String),
    /// The encoder worker has stopped (the server is shutting down).
    #[error("the sentence encoder has stopped; restart the server")]
    Stopped,
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
