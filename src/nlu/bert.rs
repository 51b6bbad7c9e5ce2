//! The torch encoder: all-MiniLM-L6-v2 run with rust-bert's BERT and pooled here, so one forward
//! pass gives both vectors a message needs (see [`Pooled`]): the sentence embedding (the mean of
//! the last layer's token vectors, as sentence-transformers pools it) and the mean of a middle
//! layer's, which keeps the tone of the words that the last layer, trained for topic similarity,
//! mostly drops (docs/EVALUATION.md, "A middle layer for the support signals").

use std::path::Path;

use rust_bert::bert::{BertConfig, BertEmbeddings, BertModel};
use rust_bert::pipelines::common::{ModelType, TokenizerOption};
use rust_bert::Config;
use rust_tokenizers::tokenizer::TruncationStrategy;
use tch::{nn, Device, Kind, Tensor};

use super::tuned::{TunedScores, TunedSignals};
use super::NluError;

/// The layer (1-based, of six) whose mean-pooled token vectors are a message's middle vector.
pub const MIDDLE_LAYER: usize = 3;

const DEFAULT_MAX_TOKENS: usize = 256;

/// One text's vectors, before normalisation.
#[derive(Debug, Clone, PartialEq)]
pub struct Pooled {
    /// Mean of the last layer's token vectors (the sentence embedding once normalised).
    pub sentence: Vec<f32>,
    /// Mean of layer [`MIDDLE_LAYER`]'s token vectors (empty when not asked for).
    pub middle: Vec<f32>,
    /// The tuned layers' reading (when loaded and asked for; see [`super::tuned`]).
    pub tuned: Option<TunedScores>,
}

/// all-MiniLM-L6-v2 on libtorch, pooled here.
pub struct TorchEncoder {
    // Kept alive: the model's tensors live in it.
    _weights: nn::VarStore,
    /// Whether [`Pooled::middle`] is computed (every layer's output kept) or left empty.
    middle: bool,
    model: BertModel<BertEmbeddings>,
    /// The support signals' tuned top layers, run on this model's lower layers.
    tuned: Option<TunedSignals>,
    tokenizer: TokenizerOption,
    max_tokens: usize,
    pad_id: i64,
}

impl TorchEncoder {
    /// Loads the model in `dir`; `middle`: also pool layer [`MIDDLE_LAYER`]; `tuned`: the folder
    /// of the support signals' tuned top layers, to run on this model's lower ones.
    pub fn load(dir: &Path, middle: bool, tuned: Option<&Path>) -> Result<Self, NluError> {
        let failed = |what: &Path, e: &dyn std::fmt::Display| {
            NluError::Model(format!("{}: {e}", what.display()))
        };
        let config_path = dir.join("config.json");
        let mut config = BertConfig::from_file(&config_path);
        config.output_hidden_states = Some(middle || tuned.is_some());
        if config.num_hidden_layers < MIDDLE_LAYER as i64 {
            return Err(NluError::Model(format!(
                "{} has {} layers; the support signals read layer {MIDDLE_LAYER}: use the \
                 all-MiniLM-L6-v2 encoder scripts/setup.sh installs",
                config_path.display(),
                config.num_hidden_layers
            )));
        }
        let mut weights = nn::VarStore::new(Device::Cpu);
        let model = BertModel::<BertEmbeddings>::new(weights.root(), &config);
        let safetensors = dir.join("model.safetensors");
        weights
            .load(&safetensors)
            .map_err(|e| failed(&safetensors, &e))?;
        let tuned = tuned.map(|t| TunedSignals::load(t, &config)).transpose()?;
        let (tokenizer, max_tokens) = tokenizer(dir)?;
        let pad_id = tokenizer.get_pad_id().unwrap_or(0);
        Ok(Self {
            _weights: weights,
            middle,
            model,
            tuned,
            tokenizer,
            max_tokens,
            pad_id,
        })
    }

    /// One forward pass over `texts`; `signals`: the tuned layers read them too (when loaded).
    pub fn encode(&mut self, texts: &[&str], signals: bool) -> Result<Vec<Pooled>, String> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (ids, mask, rows, width) = padded(&self.tokenizer, texts, self.max_tokens, self.pad_id);
        let ids = Tensor::from_slice(&ids).view([rows as i64, width as i64]);
        let mask_t = Tensor::from_slice(&mask).view([rows as i64, width as i64]);
        let out = tch::no_grad(|| {
            self.model.forward_t(
                Some(&ids),
                Some(&mask_t),
                None,
                None,
                None,
                None,
                None,
                false,
            )
        })
        .map_err(|e| e.to_string())?;
        let last = flatten(&out.hidden_state)?;
        let middle = if self.middle {
            let layer = out
                .all_hidden_states
                .as_ref()
                .and_then(|layers| layers.get(MIDDLE_LAYER - 1))
                .ok_or("the BERT model returned no hidden states")?;
            Some(flatten(layer)?)
        } else {
            None
        };
        let dim = last.len() / (rows * width).max(1);
        let mut pooled = pool_rows(&last, middle.as_deref(), &mask, width, dim);
        if let (Some(tuned), true) = (&self.tuned, signals) {
            let from = tuned.manifest().from_layer;
            let hidden = out
                .all_hidden_states
                .as_ref()
                .and_then(|layers| layers.get(from - 1))
                .ok_or("the BERT model returned no hidden states")?;
            for (p, scores) in pooled.iter_mut().zip(tuned.score(hidden, &mask_t)?) {
                p.tuned = Some(scores);
            }
        }
        Ok(pooled)
    }
}

fn flatten(t: &Tensor) -> Result<Vec<f32>, String> {
    Vec::<f32>::try_from(t.to_kind(Kind::Float).flatten(0, -1)).map_err(|e| e.to_string())
}

/// The WordPiece tokenizer of the model in `dir` and its longest input, as sentence-transformers
/// configures them (`tokenizer_config.json`, `sentence_bert_config.json`).
pub fn tokenizer(dir: &Path) -> Result<(TokenizerOption, usize), NluError> {
    let vocab = dir.join("vocab.txt");
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
    Ok((tokenizer, max_tokens))
}

/// `texts` as token ids padded to the longest, with the mask (1 for a token, 0 for padding):
/// (ids, mask, rows, width).
pub fn padded(
    tokenizer: &TokenizerOption,
    texts: &[&str],
    max_tokens: usize,
    pad_id: i64,
) -> (Vec<i64>, Vec<i64>, usize, usize) {
    let tokens = tokenizer.encode_list(texts, max_tokens, &TruncationStrategy::LongestFirst, 0);
    let rows = tokens.len();
    let width = tokens.iter().map(|t| t.token_ids.len()).max().unwrap_or(0);
    let mut ids = vec![pad_id; rows * width];
    let mut mask = vec![0i64; rows * width];
    for (r, t) in tokens.iter().enumerate() {
        ids[r * width..r * width + t.token_ids.len()].copy_from_slice(&t.token_ids);
        mask[r * width..r * width + t.token_ids.len()].fill(1);
    }
    (ids, mask, rows, width)
}

/// Each row's [`Pooled`] vectors from a batch's token vectors (`last`, and `middle` when asked
/// for; row-major, `width` tokens of `dim` values a row) and its padding `mask`.
pub fn pool_rows(
    last: &[f32],
    middle: Option<&[f32]>,
    mask: &[i64],
    width: usize,
    dim: usize,
) -> Vec<Pooled> {
    mask.chunks_exact(width.max(1))
        .enumerate()
        .map(|(r, m)| {
            let span = r * width * dim..(r + 1) * width * dim;
            Pooled {
                sentence: mean_pool(&last[span.clone()], m, dim),
                middle: middle
                    .map(|v| mean_pool(&v[span], m, dim))
                    .unwrap_or_default(),
                tuned: None,
            }
        })
        .collect()
}

/// The mean of the token vectors whose mask is 1 (the padding left out).
pub fn mean_pool(tokens: &[f32], mask: &[i64], dim: usize) -> Vec<f32> {
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
    fn each_row_is_pooled_over_its_own_tokens_and_the_middle_only_when_given() {
        // Two rows of two tokens of two values; the second row's second token is padding.
        let last = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 100.0, 100.0];
        let middle = [0.0, 0.0, 2.0, 2.0, 4.0, 4.0, 100.0, 100.0];
        let mask = [1, 1, 1, 0];
        let rows = pool_rows(&last, Some(&middle), &mask, 2, 2);
        assert_eq!(rows[0].sentence, vec![2.0, 3.0]);
        assert_eq!(rows[1].sentence, vec![5.0, 6.0]);
        assert_eq!(rows[0].middle, vec![1.0, 1.0]);
        assert_eq!(rows[1].middle, vec![4.0, 4.0]);
        assert!(pool_rows(&last, None, &mask, 2, 2)
            .iter()
            .all(|p| p.middle.is_empty()));
    }

    #[test]
    fn mean_pool_leaves_out_padding() {
        let tokens = [1.0, 2.0, 3.0, 4.0, 100.0, 100.0];
        assert_eq!(mean_pool(&tokens, &[1, 1, 0], 2), vec![2.0, 3.0]);
    }
}
