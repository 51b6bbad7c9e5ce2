//! Embeddings of knowledge-base sections, kept on disk keyed by a hash of the encoder's model tag and
//! the text, so that a restart or an edit re-encodes only what changed, and a vector made by one
//! encoder (`nlu.encoder`: torch or onnx-int8) is never served to the other: both may share a file,
//! each finding only its own records. The file is an append-only log of `(sha256, vector)` records;
//! a torn last record (a crash mid-write) is ignored.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use super::{Embedding, Encoder, NluError};

const DIM: usize = 384;
const RECORD: usize = 32 + DIM * 4;

/// Disk-backed cache of text embeddings. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddingCache {
    inner: Arc<Mutex<Inner>>,
    /// Held while texts missing from the cache are encoded, so that two indexers of the same base
    /// (two nodes' worth of start-up in one process, a re-index racing the first) encode each text
    /// once: the second finds the first one's vectors.
    filling: Arc<Mutex<()>>,
}

struct Inner {
    path: Option<PathBuf>,
    file: Option<File>,
    vectors: HashMap<[u8; 32], Embedding>,
}

impl EmbeddingCache {
    /// Opens (or creates) the cache file at `path`.
    pub fn open(path: &Path) -> Result<Self, NluError> {
        let err = |source| NluError::Cache {
            path: path.display().to_string(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(err)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(err)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(err)?;
        let whole = bytes.len() / RECORD * RECORD;
        if whole != bytes.len() {
            file.set_len(whole as u64).map_err(err)?;
        }
        let vectors = bytes[..whole]
            .chunks_exact(RECORD)
            .map(|rec| {
                let key: [u8; 32] = rec[..32].try_into().expect("32-byte key");
                let v: Vec<f32> = rec[32..]
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                (key, Embedding::from(v))
            })
            .collect();
        Ok(Self {
            inner: Arc::new(Mutex::new(Inner {
                path: Some(path.to_owned()),
                file: Some(file),
                vectors,
            })),
            filling: Arc::default(),
        })
    }

    /// A cache that lives in memory only.
    pub fn in_memory() -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                path: None,
                file: None,
                vectors: HashMap::new(),
            })),
            filling: Arc::default(),
        }
    }

    /// Number of cached vectors.
    pub fn len(&self) -> usize {
        self.lock().vectors.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Embeddings of `texts`, encoding (in one batch) and storing only those not cached yet.
    /// Returns the vectors and how many had to be encoded.
    pub fn embed_blocking(
        &self,
        encoder: &Encoder,
        texts: &[String],
    ) -> Result<(Vec<Embedding>, usize), NluError> {
        let tag = encoder.model_tag();
        let keys: Vec<[u8; 32]> = texts.iter().map(|t| key(tag, t)).collect();
        let _filling = self.filling.lock().unwrap_or_else(|e| e.into_inner());
        let missing: Vec<usize> = {
            let inner = self.lock();
            (0..texts.len())
                .filter(|&i| !inner.vectors.contains_key(&keys[i]))
                .collect()
        };
        if !missing.is_empty() {
            let fresh =
                encoder.embed_blocking(missing.iter().map(|&i| texts[i].clone()).collect())?;
            self.insert(missing.iter().map(|&i| keys[i]).zip(fresh))?;
        }
        let inner = self.lock();
        let vectors = keys.iter().map(|k| inner.vectors[k].clone()).collect();
        Ok((vectors, missing.len()))
    }

    fn insert(&self, entries: impl Iterator<Item = ([u8; 32], Embedding)>) -> Result<(), NluError> {
        let mut inner = self.lock();
        let mut buf = Vec::new();
        for (k, v) in entries {
            if v.len() == DIM {
                buf.extend_from_slice(&k);
                v.iter()
                    .for_each(|x| buf.extend_from_slice(&x.to_le_bytes()));
            }
            inner.vectors.insert(k, v);
        }
        let path = inner.path.clone();
        if let Some(file) = inner.file.as_mut() {
            file.write_all(&buf).map_err(|source| NluError::Cache {
                path: path.map(|p| p.display().to_string()).unwrap_or_default(),
                source,
            })?;
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The record key: the model tag, a NUL, the text (the torch encoder's tag is the one every cache
/// written before the int8 encoder used, so those files stay valid).
fn key(model_tag: &str, text: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(model_tag.as_bytes());
    h.update([0]);
    h.update(text.as_bytes());
    h.finalize().into()
}
