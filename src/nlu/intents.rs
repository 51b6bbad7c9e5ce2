//! Intents: what a customer wants, learned from example phrasings that editors keep in
//! `models/intents.yaml` (general support intents every help centre gets), a help centre's own
//! intents beside its articles (`<kb.dir>/.frontdesk/intents.yaml`, see
//! [`NluSettings::for_knowledge_base`](crate::settings::NluSettings::for_knowledge_base)), plus
//! "none of them" learned from `models/out_of_scope.yaml`.
//!
//! `frontdesk train` fits a head on the sentence embeddings of the examples and saves it with a
//! manifest (`models/intents.model.json`): the hash of the files it learned from, the options, and
//! cross-validated scores. The out-of-scope threshold is chosen on out-of-fold predictions, never
//! on the examples a model was trained on. At start-up a model whose hash no longer matches the
//! files is stale: the server says so and retrains before it serves.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::head::{Head, TrainOptions};
use super::upset::write_json;
use super::{Embedding, EmbeddingCache, Encoder, IntentMatch, NluError};

/// Name of the extra class learned from the out-of-scope examples.
pub const OUT_OF_SCOPE: &str = "out_of_scope";

/// Bumped when training changes in a way that makes old models stale.
const TRAINER_VERSION: &str = "intents-v2";

/// Least out-of-fold precision of an intent at its calibrated threshold: an always-human intent
/// hands a conversation over only from there.
pub const POLICY_PRECISION: f64 = 0.9;

/// Folds of the cross-validation that chooses the threshold.
const FOLDS: usize = 5;

/// One intent as written in the intents file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    /// Stable name, e.g. `refund`.
    pub name: String,
    /// What it means, for people.
    #[serde(default)]
    pub description: String,
    /// Team that handles it.
    #[serde(default)]
    pub team: Option<String>,
    /// Conversations with this intent always go to a person.
    #[serde(default)]
    pub always_human: bool,
    /// Example phrasings.
    #[serde(default)]
    pub examples: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntentsFile {
    intents: Vec<Intent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutOfScopeFile {
    examples: Vec<String>,
}

/// The intents and out-of-scope examples, as read from their files.
#[derive(Debug, Clone)]
pub struct IntentSet {
    /// The intents.
    pub intents: Vec<Intent>,
    /// Messages that fit none of them.
    pub out_of_scope: Vec<String>,
    /// Hash of both files' contents and the trainer version: a model trained on other data is
    /// stale.
    pub data_hash: String,
    /// The intents file.
    pub path: PathBuf,
    /// The help centre's own intents file, if any.
    pub extra: Option<PathBuf>,
}

impl IntentSet {
    /// Reads and checks the intents file and the out-of-scope examples file.
    pub fn load(intents: &Path, out_of_scope: &Path) -> Result<Self, NluError> {
        Self::load_with(intents, None, out_of_scope)
    }

    /// Reads and checks the general intents file, a help centre's own intents (`extra`: a new name
    /// is a new intent, a name the general file has adds its phrasings to that intent, whose team
    /// and policy stay those of the general file) and the out-of-scope examples file.
    pub fn load_with(
        intents: &Path,
        extra: Option<&Path>,
        out_of_scope: &Path,
    ) -> Result<Self, NluError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|e| NluError::Intents {
                path: p.display().to_string(),
                message: format!("cannot read it ({e})"),
            })
        };
        let bad = |p: &Path, message: String| NluError::Intents {
            path: p.display().to_string(),
            message,
        };
        let parse = |p: &Path, text: &str| -> Result<Vec<Intent>, NluError> {
            let file: IntentsFile =
                serde_yaml::from_str(text).map_err(|e| bad(p, format!("is not valid: {e}")))?;
            let mut names = HashSet::new();
            for intent in &file.intents {
                if intent.name.trim().is_empty() || intent.name == OUT_OF_SCOPE {
                    return Err(bad(
                        p,
                        format!("an intent may not be named {:?}", intent.name),
                    ));
                }
                if !names.insert(intent.name.as_str()) {
                    return Err(bad(
                        p,
                        format!("the intent {} is defined twice", intent.name),
                    ));
                }
            }
            Ok(file.intents)
        };
        let intents_text = read(intents)?;
        let oos_text = read(out_of_scope)?;
        let mut all = parse(intents, &intents_text)?;
        let extra_text = match extra {
            Some(path) => {
                let text = read(path)?;
                for intent in parse(path, &text)? {
                    match all.iter_mut().find(|i| i.name == intent.name) {
                        Some(general) => general.examples.extend(intent.examples),
                        None => all.push(intent),
                    }
                }
                text
            }
            None => String::new(),
        };
        let oos: OutOfScopeFile = serde_yaml::from_str(&oos_text)
            .map_err(|e| bad(out_of_scope, format!("is not valid: {e}")))?;
        for intent in &all {
            let examples = intent
                .examples
                .iter()
                .filter(|e| !e.trim().is_empty())
                .count();
            if examples < FOLDS {
                return Err(bad(
                    extra.filter(|_| !intents_text.contains(&format!("name: {}", intent.name))).unwrap_or(intents),
                    format!(
                        "the intent {} has {examples} examples; give it at least {FOLDS} (10–30 is best)",
                        intent.name
                    ),
                ));
            }
        }
        if all.len() < 2 {
            return Err(bad(intents, "needs at least two intents".into()));
        }
        if oos.examples.len() < FOLDS {
            return Err(bad(
                out_of_scope,
                format!("needs at least {FOLDS} examples"),
            ));
        }
        let mut h = Sha256::new();
        for part in [TRAINER_VERSION, &intents_text, &extra_text, &oos_text] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        Ok(Self {
            intents: all,
            out_of_scope: oos.examples,
            data_hash: hex::encode(h.finalize()),
            path: intents.to_owned(),
            extra: extra.map(Path::to_owned),
        })
    }

    /// Every example with its class index (out of scope is the last class).
    fn examples(&self) -> (Vec<String>, Vec<usize>) {
        let mut texts = Vec::new();
        let mut labels = Vec::new();
        for (i, intent) in self.intents.iter().enumerate() {
            for e in intent.examples.iter().filter(|e| !e.trim().is_empty()) {
                texts.push(e.clone());
                labels.push(i);
            }
        }
        for e in &self.out_of_scope {
            texts.push(e.clone());
            labels.push(self.intents.len());
        }
        (texts, labels)
    }
}

/// Cross-validated quality of a trained intent model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CrossValidation {
    /// Folds.
    pub folds: usize,
    /// Out-of-fold accuracy on in-scope examples at the chosen threshold.
    pub accuracy: f64,
    /// Out-of-fold share of out-of-scope examples rejected at the chosen threshold.
    pub out_of_scope_recall: f64,
    /// Per intent: the least probability at which its out-of-fold guesses are right at least
    /// [`POLICY_PRECISION`] of the time, and the share of its examples recognised from there.
    #[serde(default)]
    pub confident_at: Vec<(String, f32, f64)>,
}

/// Where a model came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The intents file it was trained on.
    pub intents_file: String,
    /// Hash of the training data (see [`IntentSet::data_hash`]).
    pub data_hash: String,
    /// Sentence encoder the head reads.
    pub encoder: String,
    /// Examples per class.
    pub examples: Vec<(String, usize)>,
    /// Training options.
    pub options: TrainOptions,
    /// Scores from cross-validation.
    pub cross_validation: CrossValidation,
    /// When it was trained (seconds since the Unix epoch).
    pub trained_at: u64,
}

/// A trained intent classifier with each intent's policy fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntentModel {
    /// Where it came from.
    pub manifest: Manifest,
    /// Below this probability of its best intent a message is out of scope.
    pub threshold: f32,
    policies: Vec<Policy>,
    head: Head,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Policy {
    name: String,
    team: Option<String>,
    always_human: bool,
    /// An always-human intent hands over only from this probability (calibrated: see
    /// [`CrossValidation::confident_at`]).
    #[serde(default)]
    confident_at: f32,
}

/// The classifier's verdict on one message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntentVerdict {
    /// The intent, unless the message is out of scope.
    pub intent: Option<IntentMatch>,
    /// The message fits none of the intents.
    pub out_of_scope: bool,
    /// The most likely intent even when out of scope, and its probability (for explanations).
    pub best: (String, f32),
}

impl IntentModel {
    /// The options the product trains with.
    pub fn options() -> TrainOptions {
        TrainOptions {
            epochs: 80,
            learning_rate: 3e-3,
            batch_size: 32,
            weight_decay: 1e-3,
            ..Default::default()
        }
    }

    /// Trains on `set`: cross-validation first (to choose the out-of-scope threshold), then the
    /// final model on every example. `progress(step, steps, what)` is called as it goes.
    pub fn train(
        set: &IntentSet,
        encoder: &Encoder,
        cache: &EmbeddingCache,
        mut progress: impl FnMut(usize, usize, &str),
    ) -> Result<Self, NluError> {
        let steps = FOLDS + 2;
        progress(0, steps, "embedding the examples");
        let (texts, labels) = set.examples();
        let (vectors, _) = cache.embed_blocking(encoder, &texts)?;
        let classes: Vec<String> = set
            .intents
            .iter()
            .map(|i| i.name.clone())
            .chain([OUT_OF_SCOPE.to_owned()])
            .collect();
        let options = Self::options();
        let oos = classes.len() - 1;
        // Out-of-fold best in-scope guess and its probability for every example.
        let mut held_out: Vec<(usize, f32)> = vec![(0, 0.0); texts.len()];
        for fold in 0..FOLDS {
            progress(1 + fold, steps, "cross-validating");
            let (test, train): (Vec<usize>, Vec<usize>) =
                (0..texts.len()).partition(|i| i % FOLDS == fold);
            let head = fit(&vectors, &labels, &train, &classes, &options)?;
            for i in test {
                held_out[i] = guess(&head, &vectors[i], oos);
            }
        }
        let score = |t: f32| -> (f64, f64) {
            let (mut right, mut inside, mut rejected, mut outside) = (0, 0, 0, 0);
            for (i, &(class, p)) in held_out.iter().enumerate() {
                let reject = class == oos || p < t;
                if labels[i] == oos {
                    outside += 1;
                    rejected += usize::from(reject);
                } else {
                    inside += 1;
                    right += usize::from(!reject && class == labels[i]);
                }
            }
            (
                right as f64 / inside.max(1) as f64,
                rejected as f64 / outside.max(1) as f64,
            )
        };
        let mut best = (f64::NEG_INFINITY, 0.0f32);
        for step in 0..90 {
            let t = step as f32 / 100.0;
            let (acc, rec) = score(t);
            if acc + rec > best.0 + 1e-9 {
                best = (acc + rec, t);
            }
        }
        let threshold = best.1;
        let (accuracy, out_of_scope_recall) = score(threshold);
        let confident_at: Vec<(String, f32, f64)> = set
            .intents
            .iter()
            .enumerate()
            .map(|(c, intent)| {
                let (t, recall) = confident_threshold(&held_out, &labels, c, threshold);
                (intent.name.clone(), t, recall)
            })
            .collect();
        progress(FOLDS + 1, steps, "training the final model");
        let all: Vec<usize> = (0..texts.len()).collect();
        let head = fit(&vectors, &labels, &all, &classes, &options)?;
        progress(steps, steps, "done");
        let examples = classes
            .iter()
            .enumerate()
            .map(|(c, name)| (name.clone(), labels.iter().filter(|&&l| l == c).count()))
            .collect();
        Ok(Self {
            head,
            policies: set
                .intents
                .iter()
                .zip(&confident_at)
                .map(|(i, (_, t, _))| Policy {
                    name: i.name.clone(),
                    team: i.team.clone(),
                    always_human: i.always_human,
                    confident_at: *t,
                })
                .collect(),
            threshold,
            manifest: Manifest {
                intents_file: set.path.display().to_string(),
                data_hash: set.data_hash.clone(),
                encoder: "all-MiniLM-L6-v2".into(),
                examples,
                options,
                cross_validation: CrossValidation {
                    folds: FOLDS,
                    accuracy,
                    out_of_scope_recall,
                    confident_at,
                },
                trained_at: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs()),
            },
        })
    }

    /// Whether the model was trained on exactly this data.
    pub fn is_current(&self, set: &IntentSet) -> bool {
        self.manifest.data_hash == set.data_hash
    }

    /// Classifies one embedded message.
    pub fn classify(&self, embedding: &[f32]) -> IntentVerdict {
        let oos = self.policies.len();
        let (class, p) = guess(&self.head, embedding, oos);
        let best = (self.head.classes[class].clone(), p);
        if class == oos || p < self.threshold {
            return IntentVerdict {
                intent: None,
                out_of_scope: true,
                best,
            };
        }
        let policy = &self.policies[class];
        IntentVerdict {
            intent: Some(IntentMatch {
                name: policy.name.clone(),
                confidence: p,
                team: policy.team.clone(),
                // The policy acts only when the classifier is sure enough of it for this message.
                always_human: policy.always_human && p >= policy.confident_at,
                confident_at: policy.confident_at,
            }),
            out_of_scope: false,
            best,
        }
    }

    /// The intents' names, in class order.
    pub fn intent_names(&self) -> impl Iterator<Item = &str> {
        self.policies.iter().map(|p| p.name.as_str())
    }

    /// Loads a model saved by [`IntentModel::save`].
    pub fn load(path: &Path) -> Result<Self, NluError> {
        let text = std::fs::read_to_string(path).map_err(|e| NluError::Intents {
            path: path.display().to_string(),
            message: format!("cannot read it ({e}); run `frontdesk train`"),
        })?;
        serde_json::from_str(&text).map_err(|e| NluError::Intents {
            path: path.display().to_string(),
            message: format!("is damaged ({e}); run `frontdesk train`"),
        })
    }

    /// Writes the model as JSON.
    pub fn save(&self, path: &Path) -> Result<(), NluError> {
        write_json(path, self)
    }
}

fn fit(
    vectors: &[Embedding],
    labels: &[usize],
    which: &[usize],
    classes: &[String],
    options: &TrainOptions,
) -> Result<Head, NluError> {
    let inputs: Vec<&[f32]> = which.iter().map(|&i| &vectors[i][..]).collect();
    let y: Vec<usize> = which.iter().map(|&i| labels[i]).collect();
    Head::train(&inputs, &y, classes.to_vec(), options)
}

/// The least probability (at or above `floor`, in steps of 0.01) from which the out-of-fold
/// guesses of class `c` are right at least [`POLICY_PRECISION`] of the time, and the share of the
/// class's examples guessed from there; (1.0, 0.0) when no threshold is that precise.
fn confident_threshold(
    held_out: &[(usize, f32)],
    labels: &[usize],
    c: usize,
    floor: f32,
) -> (f32, f64) {
    let total = labels.iter().filter(|&&l| l == c).count().max(1) as f64;
    for step in 0..=100 {
        let t = (step as f32 / 100.0).max(floor);
        let (mut right, mut guessed) = (0usize, 0usize);
        for (&(class, p), &label) in held_out.iter().zip(labels) {
            if class == c && p >= t {
                guessed += 1;
                right += usize::from(label == c);
            }
        }
        if guessed > 0 && right as f64 / guessed as f64 >= POLICY_PRECISION {
            return (t, right as f64 / total);
        }
    }
    (1.0, 0.0)
}

/// The most likely class, and the probability of the best in-scope class (0 when out of scope
/// wins outright).
fn guess(head: &Head, x: &[f32], oos: usize) -> (usize, f32) {
    let p = head.probabilities(x);
    let best = (0..p.len())
        .max_by(|&a, &b| p[a].total_cmp(&p[b]))
        .unwrap_or(0);
    if best == oos {
        (best, 0.0)
    } else {
        (best, p[best])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn an_intent_is_confident_from_where_its_guesses_are_right_nine_times_in_ten() {
        // Class 0 guessed for ten examples: right above 0.6, wrong below.
        let mut held_out = Vec::new();
        let mut labels = Vec::new();
        for i in 0..10 {
            let p = 0.3 + i as f32 * 0.07;
            held_out.push((0, p));
            labels.push(if p >= 0.6 { 0 } else { 1 });
        }
        let (t, recall) = confident_threshold(&held_out, &labels, 0, 0.2);
        assert!(t > 0.5 && t <= 0.6, "{t}");
        assert!((recall - 1.0).abs() < 1e-9);
        // Never right: never confident.
        assert_eq!(confident_threshold(&held_out, &labels, 2, 0.2), (1.0, 0.0));
    }

    #[test]
    fn a_help_centres_own_intents_add_to_the_general_ones() {
        let dir = tempfile::tempdir().unwrap();
        let oos = write(dir.path(), "oos.yaml", "examples: [a, b, c, d, e]\n");
        let general = write(
            dir.path(),
            "general.yaml",
            "intents:\n  - name: a\n    examples: [1, 2, 3, 4, 5]\n  - name: b\n    team: billing\n    always_human: true\n    examples: [6, 7, 8, 9, 10]\n",
        );
        let own = write(
            dir.path(),
            "own.yaml",
            "intents:\n  - name: b\n    examples: [11]\n  - name: shipping\n    team: orders\n    examples: [12, 13, 14, 15, 16]\n",
        );
        let alone = IntentSet::load(&general, &oos).unwrap();
        let set = IntentSet::load_with(&general, Some(&own), &oos).unwrap();
        let names: Vec<&str> = set.intents.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "shipping"]);
        assert_eq!(set.intents[1].examples.len(), 6);
        assert!(
            set.intents[1].always_human,
            "the general file's policy stays"
        );
        assert_ne!(set.data_hash, alone.data_hash);
        let few = write(
            dir.path(),
            "few.yaml",
            "intents:\n  - name: returns\n    examples: [1, 2]\n",
        );
        let err = IntentSet::load_with(&general, Some(&few), &oos)
            .unwrap_err()
            .to_string();
        assert!(err.contains("few.yaml") && err.contains("returns"), "{err}");
    }

    #[test]
    fn the_files_are_checked_and_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let oos = write(dir.path(), "oos.yaml", "examples: [a, b, c, d, e]\n");
        let ok = write(
            dir.path(),
            "ok.yaml",
            "intents:\n  - name: a\n    examples: [1, 2, 3, 4, 5]\n  - name: b\n    team: billing\n    always_human: true\n    examples: [6, 7, 8, 9, 10]\n",
        );
        let set = IntentSet::load(&ok, &oos).unwrap();
        assert_eq!(set.intents[1].team.as_deref(), Some("billing"));
        assert!(set.intents[1].always_human);
        let (texts, labels) = set.examples();
        assert_eq!(texts.len(), 15);
        assert_eq!(labels[14], 2);

        let dup = write(
            dir.path(),
            "dup.yaml",
            "intents:\n  - name: a\n    examples: [1, 2, 3, 4, 5]\n  - name: a\n    examples: [1, 2, 3, 4, 5]\n",
        );
        let err = IntentSet::load(&dup, &oos).unwrap_err().to_string();
        assert!(err.contains("defined twice"), "{err}");
        let few = write(
            dir.path(),
            "few.yaml",
            "intents:\n  - name: a\n    examples: [1]\n  - name: b\n    examples: [1, 2, 3, 4, 5]\n",
        );
        let err = IntentSet::load(&few, &oos).unwrap_err().to_string();
        assert!(err.contains("at least 5"), "{err}");
        let typo = write(dir.path(), "typo.yaml", "intents:\n  - nme: a\n");
        assert!(IntentSet::load(&typo, &oos).is_err());

        // Any edit changes the hash.
        let edited = write(
            dir.path(),
            "ok.yaml",
            "intents:\n  - name: a\n    examples: [1, 2, 3, 4, 5, 11]\n  - name: b\n    examples: [6, 7, 8, 9, 10]\n",
        );
        assert_ne!(
            IntentSet::load(&edited, &oos).unwrap().data_hash,
            set.data_hash
        );
    }
}
