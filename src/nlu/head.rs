//! A small classifier on top of sentence embeddings: softmax regression, or one hidden layer when
//! the task needs it. Trained with libtorch (tch); applied in plain Rust, because a 384×C product
//! costs microseconds and needs no tensor runtime on the request path.

use serde::{Deserialize, Serialize};
use tch::nn::{Module, OptimizerConfig};
use tch::{nn, Device, Kind, Tensor};

use super::NluError;

/// How a head is trained. Every field is recorded in the model's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    /// Passes over the training data.
    pub epochs: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Width of the hidden layer; 0 for plain softmax regression.
    pub hidden: usize,
    /// Examples per optimiser step.
    pub batch_size: usize,
    /// Label smoothing of the cross-entropy target (0 to 1).
    pub label_smoothing: f64,
    /// Inputs are multiplied by this before the first layer (unit vectors have tiny components).
    pub input_scale: f32,
    /// Random seed, so a retrain gives the same model.
    pub seed: i64,
    /// Heads trained with seeds `seed`, `seed + 1`, … and joined into one whose logits are the
    /// mean of theirs (an ensemble; for one hidden layer, exactly a head `members` times as wide).
    #[serde(default = "one")]
    pub members: usize,
}

fn one() -> usize {
    1
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            epochs: 60,
            learning_rate: 3e-3,
            weight_decay: 1e-4,
            hidden: 0,
            batch_size: 64,
            label_smoothing: 0.0,
            input_scale: 10.0,
            seed: 7,
            members: 1,
        }
    }
}

/// One dense layer, row-major `weight[out][in]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Layer {
    inputs: usize,
    outputs: usize,
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Layer {
    fn apply(&self, x: &[f32], out: &mut Vec<f32>) {
        out.clear();
        out.extend(self.bias.iter().enumerate().map(|(o, b)| {
            let row = &self.weight[o * self.inputs..(o + 1) * self.inputs];
            b + row.iter().zip(x).map(|(w, v)| w * v).sum::<f32>()
        }));
    }

    fn from_linear(linear: &nn::Linear) -> Result<Self, NluError> {
        let weight = tensor_to_vec(&linear.ws)?;
        let bias = match &linear.bs {
            Some(b) => tensor_to_vec(b)?,
            None => Vec::new(),
        };
        let size = linear.ws.size();
        Ok(Self {
            outputs: size[0] as usize,
            inputs: size[1] as usize,
            weight,
            bias,
        })
    }
}

/// A trained classifier: class names, layers, and the softmax temperature fitted on held-out data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Head {
    /// Class names, in output order.
    pub classes: Vec<String>,
    input_scale: f32,
    layers: Vec<Layer>,
    /// Logits are divided by this before the softmax (fitted by [`Head::calibrate`]).
    pub temperature: f32,
}

impl Head {
    /// Trains a head on `inputs` (all the same length) labelled with indices into `classes`.
    pub fn train(
        inputs: &[&[f32]],
        labels: &[usize],
        classes: Vec<String>,
        options: &TrainOptions,
    ) -> Result<Self, NluError> {
        let dim = inputs.first().map_or(0, |x| x.len());
        if dim == 0 || inputs.len() != labels.len() || classes.len() < 2 {
            return Err(NluError::Training(format!(
                "need examples of at least two classes (got {} examples, {} classes)",
                inputs.len(),
                classes.len()
            )));
        }
        if let Some(bad) = labels.iter().find(|&&l| l >= classes.len()) {
            return Err(NluError::Training(format!("label {bad} has no class")));
        }
        let n = inputs.len() as i64;
        let flat: Vec<f32> = inputs
            .iter()
            .flat_map(|x| x.iter().map(|v| v * options.input_scale))
            .collect();
        let x = Tensor::from_slice(&flat).view([n, dim as i64]);
        let y = Tensor::from_slice(&labels.iter().map(|&l| l as i64).collect::<Vec<_>>());
        let members = (0..options.members.max(1) as i64)
            .map(|k| train_member(&x, &y, dim, classes.len(), options, options.seed + k))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            classes,
            input_scale: options.input_scale,
            layers: join_members(members),
            temperature: 1.0,
        })
    }

    /// Width of the hidden layer (0: softmax regression).
    pub fn hidden(&self) -> usize {
        if self.layers.len() > 1 {
            self.layers[0].outputs
        } else {
            0
        }
    }

    /// Number of inputs the head expects.
    pub fn input_len(&self) -> usize {
        self.layers.first().map_or(0, |l| l.inputs)
    }

    /// Raw scores, one per class.
    pub fn logits(&self, input: &[f32]) -> Vec<f32> {
        let mut x: Vec<f32> = input.iter().map(|v| v * self.input_scale).collect();
        let mut out = Vec::new();
        let last = self.layers.len().saturating_sub(1);
        for (i, layer) in self.layers.iter().enumerate() {
            layer.apply(&x, &mut out);
            if i < last {
                out.iter_mut().for_each(|v| *v = v.max(0.0));
            }
            std::mem::swap(&mut x, &mut out);
        }
        x
    }

    /// Class probabilities (softmax of the logits over the temperature).
    pub fn probabilities(&self, input: &[f32]) -> Vec<f32> {
        softmax(&self.logits(input), self.temperature)
    }

    /// Fits the temperature that minimises the log-loss on held-out `inputs`, so that the
    /// probabilities mean what they say.
    pub fn calibrate(&mut self, inputs: &[&[f32]], labels: &[usize]) {
        let logits: Vec<Vec<f32>> = inputs.iter().map(|x| self.logits(x)).collect();
        let nll = |t: f32| -> f64 {
            logits
                .iter()
                .zip(labels)
                .map(|(l, &y)| -(softmax(l, t)[y].max(1e-12) as f64).ln())
                .sum()
        };
        let mut best = (f64::INFINITY, 1.0);
        for step in 0..=60 {
            let t = 0.25 * 1.06f32.powi(step);
            let loss = nll(t);
            if loss < best.0 {
                best = (loss, t);
            }
        }
        self.temperature = best.1;
    }
}

/// One head's layers, trained on `x` (already scaled) from `seed`.
fn train_member(
    x: &Tensor,
    y: &Tensor,
    dim: usize,
    classes: usize,
    options: &TrainOptions,
    seed: i64,
) -> Result<Vec<Layer>, NluError> {
    tch::manual_seed(seed);
    let n = x.size()[0];
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let classes_n = classes as i64;
    let (hidden, output) = if options.hidden > 0 {
        let h = options.hidden as i64;
        (
            Some(nn::linear(
                &root / "hidden",
                dim as i64,
                h,
                Default::default(),
            )),
            nn::linear(&root / "output", h, classes_n, Default::default()),
        )
    } else {
        (
            None,
            nn::linear(&root / "output", dim as i64, classes_n, Default::default()),
        )
    };
    let forward = |x: &Tensor, train: bool| -> Tensor {
        match &hidden {
            Some(h) => output.forward(&h.forward(x).relu().dropout(0.1, train)),
            None => output.forward(x),
        }
    };
    let mut opt = nn::AdamW {
        wd: options.weight_decay,
        ..Default::default()
    }
    .build(&vs, options.learning_rate)
    .map_err(|e| NluError::Training(e.to_string()))?;
    let batch = options.batch_size.max(1) as i64;
    for epoch in 0..options.epochs {
        // Cosine decay of the learning rate over the epochs.
        let progress = epoch as f64 / options.epochs.max(1) as f64;
        opt.set_lr(options.learning_rate * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()));
        let order = Tensor::randperm(n, (Kind::Int64, Device::Cpu));
        let mut start = 0;
        while start < n {
            let idx = order.narrow(0, start, batch.min(n - start));
            let logits = forward(&x.index_select(0, &idx), true);
            let loss = logits.cross_entropy_loss::<Tensor>(
                &y.index_select(0, &idx),
                None,
                tch::Reduction::Mean,
                -100,
                options.label_smoothing,
            );
            opt.backward_step(&loss);
            start += batch;
        }
    }
    let mut layers = Vec::new();
    if let Some(h) = &hidden {
        layers.push(Layer::from_linear(h)?);
    }
    layers.push(Layer::from_linear(&output)?);
    Ok(layers)
}

/// Joins heads of the same shape into one whose logits are the mean of theirs: the hidden layers
/// side by side, the output layers' weights over the members' count, their biases averaged.
fn join_members(mut members: Vec<Vec<Layer>>) -> Vec<Layer> {
    if members.len() < 2 {
        return members.pop().unwrap_or_default();
    }
    let k = members.len() as f32;
    let outputs: Vec<Layer> = members.iter_mut().filter_map(Vec::pop).collect();
    let classes = outputs[0].outputs;
    let hidden: Vec<Layer> = members.into_iter().filter_map(|mut m| m.pop()).collect();
    let mut bias = vec![0.0; classes];
    for layer in &outputs {
        bias.iter_mut()
            .zip(&layer.bias)
            .for_each(|(b, v)| *b += v / k);
    }
    if hidden.is_empty() {
        // Softmax regression: the mean of linear maps is one linear map.
        let inputs = outputs[0].inputs;
        let mut weight = vec![0.0; classes * inputs];
        for layer in &outputs {
            weight
                .iter_mut()
                .zip(&layer.weight)
                .for_each(|(w, v)| *w += v / k);
        }
        return vec![Layer {
            inputs,
            outputs: classes,
            weight,
            bias,
        }];
    }
    let joined_hidden = Layer {
        inputs: hidden[0].inputs,
        outputs: hidden.iter().map(|h| h.outputs).sum(),
        weight: hidden
            .iter()
            .flat_map(|h| h.weight.iter().copied())
            .collect(),
        bias: hidden.iter().flat_map(|h| h.bias.iter().copied()).collect(),
    };
    let width = joined_hidden.outputs;
    let mut weight = Vec::with_capacity(classes * width);
    for o in 0..classes {
        for layer in &outputs {
            let row = &layer.weight[o * layer.inputs..(o + 1) * layer.inputs];
            weight.extend(row.iter().map(|v| v / k));
        }
    }
    let output = Layer {
        inputs: width,
        outputs: classes,
        weight,
        bias,
    };
    vec![joined_hidden, output]
}

/// Softmax of `logits / temperature`.
pub fn softmax(logits: &[f32], temperature: f32) -> Vec<f32> {
    let t = temperature.max(1e-3);
    let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|l| ((l - max) / t).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

fn tensor_to_vec(t: &Tensor) -> Result<Vec<f32>, NluError> {
    Vec::<f32>::try_from(t.detach().flatten(0, -1).to_kind(Kind::Float))
        .map_err(|e| NluError::Training(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_separable_classes_and_applies_in_plain_rust() {
        // Three clusters in 4 dimensions.
        let centres = [
            [1.0, 0.0, 0.0, 0.0],
            [0.0, 1.0, 0.0, 0.0],
            [0.0, 0.0, 1.0, 0.5],
        ];
        let mut inputs = Vec::new();
        let mut labels = Vec::new();
        for i in 0..90 {
            let c = i % 3;
            let jitter = (i as f32 * 0.37).sin() * 0.2;
            let mut v = centres[c].to_vec();
            v[3] += jitter;
            inputs.push(v);
            labels.push(c);
        }
        let refs: Vec<&[f32]> = inputs.iter().map(|v| v.as_slice()).collect();
        let classes = vec!["a".into(), "b".into(), "c".into()];
        for hidden in [0, 16] {
            let options = TrainOptions {
                hidden,
                epochs: 200,
                learning_rate: 1e-2,
                batch_size: 16,
                ..Default::default()
            };
            let mut head = Head::train(&refs, &labels, classes.clone(), &options).unwrap();
            head.calibrate(&refs, &labels);
            for (x, &y) in refs.iter().zip(&labels) {
                let p = head.probabilities(x);
                let best = (0..3).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
                assert_eq!(best, y, "hidden={hidden}");
            }
            let json = serde_json::to_string(&head).unwrap();
            let back: Head = serde_json::from_str(&json).unwrap();
            assert_eq!(back.logits(refs[0]), head.logits(refs[0]));
        }
    }

    #[test]
    fn members_joined_give_the_mean_of_their_logits() {
        // Layers with fixed, distinct weights (training draws from libtorch's global generator,
        // which tests running in parallel share).
        let layer = |inputs: usize, outputs: usize, salt: f32| Layer {
            inputs,
            outputs,
            weight: (0..inputs * outputs)
                .map(|i| ((i as f32 + salt) * 0.37).sin())
                .collect(),
            bias: (0..outputs)
                .map(|o| ((o as f32 + salt) * 0.11).cos())
                .collect(),
        };
        let head = |layers: Vec<Layer>| Head {
            classes: ["a", "b", "c"].map(String::from).to_vec(),
            input_scale: 10.0,
            layers,
            temperature: 1.0,
        };
        let x = [0.3f32, -0.2, 0.9, 0.05];
        for hidden in [0, 5] {
            let members: Vec<Vec<Layer>> = (0..3)
                .map(|k| {
                    let salt = k as f32 * 10.0;
                    if hidden == 0 {
                        vec![layer(4, 3, salt)]
                    } else {
                        vec![layer(4, hidden, salt), layer(hidden, 3, salt + 1.0)]
                    }
                })
                .collect();
            let alone: Vec<Head> = members.iter().cloned().map(head).collect();
            let joined = head(join_members(members));
            assert_eq!(joined.hidden(), hidden * 3);
            let mean: Vec<f32> = (0..3)
                .map(|c| alone.iter().map(|h| h.logits(&x)[c]).sum::<f32>() / 3.0)
                .collect();
            for (a, b) in joined.logits(&x).iter().zip(&mean) {
                assert!((a - b).abs() < 1e-4, "hidden={hidden}: {a} vs {b}");
            }
        }
        // One member is that member, unchanged.
        let one = vec![vec![layer(4, 3, 1.0)]];
        assert_eq!(join_members(one.clone()), one[0]);
    }

    #[test]
    fn refuses_a_single_class() {
        let x = [0.0f32, 1.0];
        let err = Head::train(&[&x], &[0], vec!["only".into()], &TrainOptions::default());
        assert!(err.is_err());
    }
}
