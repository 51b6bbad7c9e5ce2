//! How upset is the customer? A head on the sentence embedding, trained on GoEmotions (anger,
//! annoyance, disappointment, disapproval and disgust count as upset), optionally with a few cheap
//! surface cues (shouting, "!!!", swearing, "third time") as extra inputs when the evaluation shows
//! they help. The trained model is committed (`models/upset.json`): users need not have the data.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::head::{Head, TrainOptions};
use super::NluError;

/// Words that, in a support chat, nearly always mean frustration.
const SWEARING: &[&str] = &[
    "fuck", "fucking", "fucked", "shit", "shitty", "crap", "crappy", "damn", "damned", "wtf",
    "bullshit", "bs", "pissed", "screw", "sucks", "goddamn", "hell",
];

/// Phrases of someone whose patience has run out.
const FED_UP: &[&str] = &[
    "third time",
    "second time",
    "again and again",
    "ridiculous",
    "unacceptable",
    "useless",
    "worst",
    "scam",
    "a joke",
    "waste of",
    "fed up",
    "sick of",
    "tired of",
    "had enough",
    "furious",
    "disgusting",
    "pathetic",
    "incompetent",
    "never again",
    "terrible",
    "awful",
];

/// Names of the cues, in feature order.
pub const CUES: [&str; 4] = [
    "shouting",
    "repeated punctuation",
    "swearing",
    "fed-up phrase",
];

/// The surface cues of `text` as 0/1 features, and the names of those present.
pub fn cue_features(text: &str) -> (Vec<f32>, Vec<String>) {
    let letters: Vec<char> = text.chars().filter(|c| c.is_alphabetic()).collect();
    let upper = letters.iter().filter(|c| c.is_uppercase()).count();
    let shouting = letters.len() >= 8 && upper * 10 >= letters.len() * 7;
    let repeated = ["!!", "??", "?!", "!?"].iter().any(|p| text.contains(p));
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .collect();
    let swearing = words.iter().any(|w| SWEARING.contains(w));
    let fed_up = FED_UP.iter().any(|p| lower.contains(p));
    let present = [shouting, repeated, swearing, fed_up];
    let names = CUES
        .iter()
        .zip(present)
        .filter(|(_, on)| *on)
        .map(|(n, _)| (*n).to_owned())
        .collect();
    (
        present
            .iter()
            .map(|&on| if on { 1.0 } else { 0.0 })
            .collect(),
        names,
    )
}

/// The upset model: head, whether it reads the cues, and the decision threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UpsetModel {
    head: Head,
    cues: bool,
    /// Score at or above which a message counts as upset (chosen on GoEmotions dev for F1).
    pub threshold: f32,
    /// Where the model came from: data, options, scores.
    #[serde(default)]
    pub manifest: serde_json::Value,
}

impl UpsetModel {
    /// The training options used for the committed model.
    pub fn options() -> TrainOptions {
        TrainOptions {
            epochs: 20,
            learning_rate: 3e-3,
            batch_size: 256,
            ..Default::default()
        }
    }

    /// Trains on embedded `texts` labelled upset or not.
    pub fn train(
        texts: &[String],
        embeddings: &[impl AsRef<[f32]>],
        upset: &[bool],
        cues: bool,
        options: &TrainOptions,
    ) -> Result<Self, NluError> {
        let inputs: Vec<Vec<f32>> = texts
            .iter()
            .zip(embeddings)
            .map(|(t, e)| input(e.as_ref(), cues.then(|| cue_features(t).0)))
            .collect();
        let refs: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
        let labels: Vec<usize> = upset.iter().map(|&u| usize::from(u)).collect();
        let head = Head::train(&refs, &labels, vec!["calm".into(), "upset".into()], options)?;
        Ok(Self {
            head,
            cues,
            threshold: 0.5,
            manifest: serde_json::Value::Null,
        })
    }

    /// Chooses the threshold with the best F1 on held-out data; returns that F1.
    pub fn fit_threshold(
        &mut self,
        texts: &[String],
        embeddings: &[impl AsRef<[f32]>],
        upset: &[bool],
    ) -> f64 {
        let scores: Vec<f32> = texts
            .iter()
            .zip(embeddings)
            .map(|(t, e)| self.score(t, e.as_ref()).0)
            .collect();
        let mut best = (0.0, 0.5);
        for step in 1..100 {
            let t = step as f32 / 100.0;
            let f1 = f1(&scores, upset, t);
            if f1 > best.0 {
                best = (f1, t);
            }
        }
        self.threshold = best.1;
        best.0
    }

    /// Probability that the writer is upset, and the surface cues present.
    pub fn score(&self, text: &str, embedding: &[f32]) -> (f32, Vec<String>) {
        let (features, cues) = cue_features(text);
        let x = input(embedding, self.cues.then_some(features));
        (self.head.probabilities(&x)[1], cues)
    }

    /// The head, in words ("linear + cues").
    pub fn describe(&self) -> String {
        format!(
            "{}{}",
            if self.head.hidden() > 0 {
                format!("MLP {}", self.head.hidden())
            } else {
                "linear".to_owned()
            },
            if self.cues { " + cues" } else { "" }
        )
    }

    /// Whether the model reads the surface cues.
    pub fn uses_cues(&self) -> bool {
        self.cues
    }

    /// Loads a model saved by [`UpsetModel::save`].
    pub fn load(path: &Path) -> Result<Self, NluError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            NluError::Training(format!(
                "cannot read the upset model {}: {e}; restore it from git, or run `frontdesk train --upset`",
                path.display()
            ))
        })?;
        serde_json::from_str(&text).map_err(|e| {
            NluError::Training(format!(
                "the upset model {} is damaged ({e}); restore it from git, or run `frontdesk train --upset`",
                path.display()
            ))
        })
    }

    /// Writes the model as JSON.
    pub fn save(&self, path: &Path) -> Result<(), NluError> {
        write_json(path, self)
    }
}

/// The head's input: the embedding, then the cue features when the head uses them.
fn input(embedding: &[f32], cue_features: Option<Vec<f32>>) -> Vec<f32> {
    let mut v = embedding.to_vec();
    v.extend(cue_features.unwrap_or_default());
    v
}

fn f1(scores: &[f32], gold: &[bool], t: f32) -> f64 {
    let tp = scores
        .iter()
        .zip(gold)
        .filter(|(s, g)| **s >= t && **g)
        .count() as f64;
    let pp = scores.iter().filter(|s| **s >= t).count() as f64;
    let gp = gold.iter().filter(|g| **g).count() as f64;
    if tp == 0.0 {
        return 0.0;
    }
    let (p, r) = (tp / pp, tp / gp);
    2.0 * p * r / (p + r)
}

/// Writes `value` as pretty JSON through a temporary file, so a crash never leaves half a model.
pub(crate) fn write_json(path: &Path, value: &impl Serialize) -> Result<(), NluError> {
    let text = serde_json::to_string(value).map_err(|e| NluError::Training(e.to_string()))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| NluError::Training(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::cue_features;

    #[test]
    fn cues_name_what_they_see() {
        let (_, cues) = cue_features("THIS IS THE THIRD TIME I'M ASKING!!!");
        assert_eq!(cues, ["shouting", "repeated punctuation", "fed-up phrase"]);
        let (v, cues) = cue_features("Hi, could you help me with my order? Thanks!");
        assert!(cues.is_empty());
        assert_eq!(v, [0.0; 4]);
        assert_eq!(cue_features("what the hell").1, ["swearing"]);
        // Short capitals are acronyms, not shouting.
        assert!(cue_features("my PIN for the ATM").1.is_empty());
    }
}
