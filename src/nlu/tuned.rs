//! The support signals read by the encoder's top layers, tuned for them: a copy of the last layers
//! of all-MiniLM-L6-v2, fine-tuned on GoEmotions and our support messages
//! (`scripts/finetune_signals.py --train-layers 2`), run on the shared encoder's output of the
//! layer below them, with two heads on their pooled vector: GoEmotions upset, and the support
//! classes calm / upset / urgent / asking for a person. The frozen encoder's last layer was
//! trained to place texts by topic and keeps little of their tone; these layers are trained to
//! keep it, and cost a third of an encoder pass, on customers' messages only (docs/EVALUATION.md,
//! "Tuned top layers for the support signals").

use std::path::{Path, PathBuf};

use rust_bert::bert::{BertConfig, BertLayer};
use serde::Deserialize;
use tch::{nn, nn::Module, Device, Kind, Tensor};

use super::NluError;

/// What the tuned layers make of one message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TunedScores {
    /// Probability that a GoEmotions annotator reads the message as upset (anger, annoyance,
    /// disappointment, disapproval or disgust).
    pub goemotions_upset: f32,
    /// Probabilities of the support classes, in [`super::signals::CLASSES`] order: calm, upset,
    /// urgent, asking for a person.
    pub support: [f32; 4],
}

/// `tuned.json`: how the layers were made and what the product needs to run them.
#[derive(Debug, Clone, Deserialize)]
pub struct TunedManifest {
    /// The encoder layer (1-based) whose token vectors the tuned layers read.
    pub from_layer: usize,
    /// How many tuned layers there are.
    pub layers: usize,
    /// The pooled vector is unit length times this before the heads.
    pub scale: f32,
    /// The support head's classes, in order.
    pub classes: Vec<String>,
    /// The bar on the strongest of upset, urgent and person (chosen on businesses held out of
    /// training: the most recall with at most 5 % of their calm messages flagged).
    pub threshold: f32,
    /// The bar for a message without a support cue (`escalation.upset_threshold_without_cue`'s
    /// default for this reader), chosen with `threshold` by `frontdesk train --tuned-bars`; absent
    /// in a fresh export, which has one bar for both.
    #[serde(default)]
    pub without_cue: Option<f32>,
    /// The longest input the layers were trained on, in tokens (longer messages are read whole,
    /// as the encoder below them reads them).
    #[serde(default)]
    pub max_len: Option<usize>,
    /// Texts and what the layers made of them in Python when exported: the Rust layers must give
    /// the same (`tests/encoder.rs`).
    #[serde(default)]
    pub reference: Vec<TunedReference>,
    /// The bar on the GoEmotions head (chosen on GoEmotions dev by F1).
    pub goemotions_threshold: f32,
    /// The training run's options.
    #[serde(default)]
    pub trained: serde_json::Value,
    /// The training run's figures (GoEmotions test, the businesses held out, support dev).
    #[serde(default)]
    pub figures: serde_json::Value,
}

/// One text and the exporting Python model's reading of it.
#[derive(Debug, Clone, Deserialize)]
pub struct TunedReference {
    /// The text, as a customer wrote it.
    pub text: String,
    /// The GoEmotions head's probability.
    pub goemotions_upset: f32,
    /// The support head's probabilities (calm, upset, urgent, person).
    pub support: [f32; 4],
}

/// The tuned layers and their heads, on libtorch.
pub struct TunedSignals {
    // Kept alive: the layers' tensors live in it.
    _weights: nn::VarStore,
    layers: Vec<BertLayer>,
    upset: nn::Linear,
    support: nn::Linear,
    manifest: TunedManifest,
}

impl std::fmt::Debug for TunedSignals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunedSignals")
            .field("manifest", &self.manifest)
            .finish_non_exhaustive()
    }
}

/// The manifest's file in a tuned model's folder.
pub fn manifest_path(dir: &Path) -> PathBuf {
    dir.join("tuned.json")
}

/// Reads a tuned model's manifest.
pub fn read_manifest(dir: &Path) -> Result<TunedManifest, NluError> {
    let path = manifest_path(dir);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        NluError::Model(format!(
            "cannot read {}: {e}; restore models/signals-tuned from git, or set \
             nlu.signal_reader = \"head\" to read the support signals with models/signals.json alone",
            path.display()
        ))
    })?;
    let manifest: TunedManifest = serde_json::from_str(&text).map_err(|e| {
        NluError::Model(format!(
            "{} is damaged ({e}); restore it from git",
            path.display()
        ))
    })?;
    if manifest.classes.len() != 4 || manifest.layers == 0 || manifest.from_layer == 0 {
        return Err(NluError::Model(format!(
            "{} names {} classes, {} layers on layer {}: frontdesk reads 4 classes (calm, upset, \
             urgent, person) and at least one layer on a layer of the encoder",
            path.display(),
            manifest.classes.len(),
            manifest.layers,
            manifest.from_layer
        )));
    }
    Ok(manifest)
}

impl TunedSignals {
    /// Loads the tuned layers in `dir` for an encoder configured by `config`.
    pub fn load(dir: &Path, config: &BertConfig) -> Result<Self, NluError> {
        let manifest = read_manifest(dir)?;
        if manifest.from_layer + manifest.layers != config.num_hidden_layers as usize {
            return Err(NluError::Model(format!(
                "the tuned layers in {} replace layers {}–{} of an encoder of {}: they were tuned \
                 on another encoder than the one configured (nlu.model_dir)",
                dir.display(),
                manifest.from_layer + 1,
                manifest.from_layer + manifest.layers,
                config.num_hidden_layers
            )));
        }
        let mut weights = nn::VarStore::new(Device::Cpu);
        let root = weights.root();
        let layers = (0..manifest.layers)
            .map(|i| BertLayer::new(&root / "layer" / i, config))
            .collect();
        let hidden = config.hidden_size;
        let upset = nn::linear(&root / "upset", hidden, 1, Default::default());
        let support = nn::linear(&root / "support", hidden, 4, Default::default());
        let path = dir.join("layers.safetensors");
        weights.load(&path).map_err(|e| {
            NluError::Model(format!(
                "{}: {e}; restore models/signals-tuned from git",
                path.display()
            ))
        })?;
        // Stored in fp16 to stay small; run in fp32 like the encoder below them.
        weights.float();
        Ok(Self {
            _weights: weights,
            layers,
            upset,
            support,
            manifest,
        })
    }

    /// The manifest the layers were loaded with.
    pub fn manifest(&self) -> &TunedManifest {
        &self.manifest
    }

    /// Scores each row of `hidden` ([rows, width, dim]: the encoder's token vectors of layer
    /// [`TunedManifest::from_layer`]) under its attention `mask` ([rows, width], 1 for a token).
    pub fn score(&self, hidden: &Tensor, mask: &Tensor) -> Result<Vec<TunedScores>, String> {
        let scores = tch::no_grad(|| {
            let kind = hidden.kind();
            // As BERT masks attention: 0 for a token, -10,000 for padding.
            let additive = ((mask.ones_like() - mask) * -10000.0)
                .unsqueeze(1)
                .unsqueeze(1)
                .to_kind(kind);
            let mut h = hidden.shallow_clone();
            for layer in &self.layers {
                h = layer
                    .forward_t(&h, Some(&additive), None, None, false)
                    .hidden_state;
            }
            let m = mask.unsqueeze(-1).to_kind(kind);
            let pooled = (&h * &m).sum_dim_intlist(1, false, kind)
                / m.sum_dim_intlist(1, false, kind).clamp_min(1e-9);
            let norm = pooled
                .norm_scalaropt_dim(2, [-1i64].as_slice(), true)
                .clamp_min(1e-12);
            let pooled = pooled / norm * f64::from(self.manifest.scale);
            let upset = self.upset.forward(&pooled).sigmoid().view(-1);
            let support = self.support.forward(&pooled).softmax(-1, Kind::Float);
            Tensor::cat(&[upset.unsqueeze(-1), support], 1)
        });
        let flat = Vec::<f32>::try_from(scores.to_kind(Kind::Float).flatten(0, -1))
            .map_err(|e| e.to_string())?;
        Ok(flat
            .chunks_exact(5)
            .map(|c| TunedScores {
                goemotions_upset: c[0],
                support: [c[1], c[2], c[3], c[4]],
            })
            .collect())
    }
}
