//! Intent and upset classification benchmarks: BANKING77, CLINC150 (with out-of-scope queries) and
//! GoEmotions (upset or not). Each trains a head on frozen sentence embeddings from the train
//! split, chooses its configuration (and thresholds) on a development split, and reports the test
//! split once.

use std::collections::BTreeMap;
use std::path::Path;

use super::data::{self, Labelled};
use crate::nlu::head::{Head, TrainOptions};
use crate::nlu::upset::UpsetModel;
use crate::nlu::{Embedding, EmbeddingCache, Encoder};

/// Head configurations tried on the development split.
pub fn intent_candidates() -> Vec<(&'static str, TrainOptions)> {
    vec![
        (
            "softmax regression",
            TrainOptions {
                epochs: 60,
                learning_rate: 3e-3,
                ..Default::default()
            },
        ),
        (
            "MLP 1024, label smoothing 0.1",
            TrainOptions {
                epochs: 40,
                learning_rate: 1e-3,
                hidden: 1024,
                label_smoothing: 0.1,
                ..Default::default()
            },
        ),
        (
            "5 × MLP 1024, label smoothing 0.1, logits averaged",
            TrainOptions {
                epochs: 40,
                learning_rate: 1e-3,
                hidden: 1024,
                label_smoothing: 0.1,
                members: 5,
                ..Default::default()
            },
        ),
    ]
}

/// Accuracy of an intent classifier.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IntentReport {
    /// Configuration chosen on dev.
    pub config: String,
    /// Dev accuracy of each configuration tried.
    pub dev_sweep: Vec<(String, f64)>,
    /// Training rows.
    pub train: usize,
    /// Test rows.
    pub test: usize,
    /// Test accuracy.
    pub accuracy: f64,
}

/// BANKING77: dev is every tenth training row; the chosen configuration is retrained on all of
/// train and scored on test.
pub fn banking77(
    data: &Path,
    encoder: &Encoder,
    cache: &EmbeddingCache,
    limit: Option<usize>,
) -> anyhow::Result<IntentReport> {
    let train = data::banking77(data, "train")?.sample(limit.map(|n| n * 4));
    let test = data::banking77(data, "test")?.sample(limit);
    let train_x = data::embed(encoder, cache, "BANKING77 train", &train.texts)?;
    let test_x = data::embed(encoder, cache, "BANKING77 test", &test.texts)?;
    let (fit, dev): (Vec<usize>, Vec<usize>) = (0..train.len()).partition(|i| i % 10 != 0);
    let classes = class_list(&train);
    let mut dev_sweep = Vec::new();
    for (name, options) in intent_candidates() {
        let head = train_head(&train, &train_x, &fit, &classes, &options)?;
        let acc = accuracy(&head, &train, &train_x, &dev);
        dev_sweep.push((name.to_owned(), acc));
    }
    let best = best_of(&dev_sweep);
    let (name, options) = &intent_candidates()[best];
    let all: Vec<usize> = (0..train.len()).collect();
    let head = train_head(&train, &train_x, &all, &classes, options)?;
    let everything: Vec<usize> = (0..test.len()).collect();
    Ok(IntentReport {
        config: (*name).to_owned(),
        dev_sweep,
        train: train.len(),
        test: test.len(),
        accuracy: accuracy(&head, &test, &test_x, &everything),
    })
}

/// One way of choosing the out-of-scope threshold, and what it gives.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OperatingPoint {
    /// How the threshold was chosen (always on val + oos_val).
    pub name: String,
    /// Probability below which a query is out of scope.
    pub threshold: f32,
    /// Val in-scope accuracy and oos_val recall.
    pub val: (f64, f64),
    /// Test in-scope accuracy (right intent, not rejected) and oos_test recall.
    pub test: (f64, f64),
}

/// In-scope accuracy and out-of-scope recall.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OosReport {
    /// Configuration chosen on val.
    pub config: String,
    /// Val in-scope accuracy (no threshold) of each configuration tried.
    pub dev_sweep: Vec<(String, f64)>,
    /// Results at each way of choosing the threshold.
    pub points: Vec<OperatingPoint>,
    /// Test rows (in scope, out of scope).
    pub test: (usize, usize),
    /// In-scope accuracy with no rejection at all (the classifier alone).
    pub in_scope_accuracy_no_threshold: f64,
}

/// CLINC150 full: heads are trained on train + oos_train (out of scope is a class of its own), the
/// configuration is chosen on val, and the rejection threshold on val + oos_val, by two rules
/// (see [`OperatingPoint`]).
pub fn clinc150(
    data: &Path,
    encoder: &Encoder,
    cache: &EmbeddingCache,
    limit: Option<usize>,
) -> anyhow::Result<OosReport> {
    let load = |split: &str, n: Option<usize>| -> anyhow::Result<(Labelled, Vec<Embedding>)> {
        let rows = data::clinc150(data, split)?.sample(n);
        let x = data::embed(encoder, cache, &format!("CLINC150 {split}"), &rows.texts)?;
        Ok((rows, x))
    };
    let (mut train, mut train_x) = load("train", limit.map(|n| n * 4))?;
    let (oos_train, oos_train_x) = load("oos_train", None)?;
    train.texts.extend(oos_train.texts);
    train.labels.extend(oos_train.labels);
    train_x.extend(oos_train_x);
    let (val, val_x) = load("val", limit)?;
    let (_, oos_val_x) = load("oos_val", None)?;
    let (test, test_x) = load("test", limit)?;
    let (oos_test, oos_test_x) = load("oos_test", limit)?;

    let classes = class_list(&train);
    let oos = classes.iter().position(|c| c == "oos");
    let all: Vec<usize> = (0..train.len()).collect();
    let val_all: Vec<usize> = (0..val.len()).collect();
    let mut dev_sweep = Vec::new();
    let mut heads = Vec::new();
    for (name, options) in intent_candidates() {
        let head = train_head(&train, &train_x, &all, &classes, &options)?;
        dev_sweep.push((name.to_owned(), accuracy(&head, &val, &val_x, &val_all)));
        heads.push(head);
    }
    let best = best_of(&dev_sweep);
    let mut head = heads.swap_remove(best);
    let val_labels = label_ids(&val, &classes);
    let refs: Vec<&[f32]> = val_x.iter().map(|v| &v[..]).collect();
    head.calibrate(&refs, &val_labels);

    let verdicts = |x: &[Embedding]| -> Vec<(usize, f32)> {
        x.iter().map(|v| in_scope_guess(&head, v, oos)).collect()
    };
    let val_v = verdicts(&val_x);
    let oos_val_v = verdicts(&oos_val_x);
    let score = |v: &[(usize, f32)], rows: &Labelled, t: f32| -> f64 {
        let right = v
            .iter()
            .zip(&rows.labels)
            .filter(|((c, p), l)| *p >= t && Some(*c) != oos && classes[*c] == **l)
            .count();
        right as f64 / rows.len().max(1) as f64
    };
    let recall = |v: &[(usize, f32)], t: f32| -> f64 {
        v.iter().filter(|(c, p)| *p < t || Some(*c) == oos).count() as f64 / v.len().max(1) as f64
    };
    let thresholds: Vec<f32> = (0..100).map(|step| step as f32 / 100.0).collect();
    let val_points: Vec<(f32, f64, f64)> = thresholds
        .iter()
        .map(|&t| (t, score(&val_v, &val, t), recall(&oos_val_v, t)))
        .collect();
    // Balanced: the most in-scope accuracy + out-of-scope recall on val.
    let balanced = val_points
        .iter()
        .max_by(|a, b| (a.1 + a.2).total_cmp(&(b.1 + b.2)))
        .map_or(0.0, |p| p.0);
    // In-scope first: the most out-of-scope recall that costs at most one point of val in-scope
    // accuracy against no rejection at all.
    let floor = score(&val_v, &val, 0.0) - 0.01;
    let in_scope_first = val_points
        .iter()
        .filter(|p| p.1 >= floor)
        .max_by(|a, b| a.2.total_cmp(&b.2).then(b.0.total_cmp(&a.0)))
        .map_or(0.0, |p| p.0);
    let test_v = verdicts(&test_x);
    let oos_test_v = verdicts(&oos_test_x);
    let point = |name: &str, t: f32| OperatingPoint {
        name: name.to_owned(),
        threshold: t,
        val: (score(&val_v, &val, t), recall(&oos_val_v, t)),
        test: (score(&test_v, &test, t), recall(&oos_test_v, t)),
    };
    Ok(OosReport {
        config: intent_candidates()[best].0.to_owned(),
        dev_sweep,
        points: vec![
            point(
                "balanced (max in-scope accuracy + OOS recall on val)",
                balanced,
            ),
            point(
                "in-scope first (max OOS recall within 1 point of val in-scope accuracy)",
                in_scope_first,
            ),
        ],
        test: (test.len(), oos_test.len()),
        in_scope_accuracy_no_threshold: score(&test_v, &test, 0.0),
    })
}

/// The best in-scope class and its probability (the out-of-scope class, if any, is the answer
/// only when it wins outright).
fn in_scope_guess(head: &Head, x: &[f32], oos: Option<usize>) -> (usize, f32) {
    let p = head.probabilities(x);
    let best = argmax(&p);
    if Some(best) == oos {
        return (best, 0.0);
    }
    (best, p[best])
}

/// Upset detection on GoEmotions and on our held-out support messages.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UpsetReport {
    /// Dev F1 of each head tried.
    pub dev_sweep: Vec<(String, f64)>,
    /// The head chosen on dev.
    pub config: String,
    /// Decision threshold, chosen on dev for F1.
    pub threshold: f32,
    /// Test rows (all, upset).
    pub test: (usize, usize),
    /// Test precision.
    pub precision: f64,
    /// Test recall.
    pub recall: f64,
    /// Test F1.
    pub f1: f64,
    /// Held-out support messages.
    pub support_heldout: usize,
    /// Share of them judged right (upset or calm).
    pub support_accuracy: f64,
    /// Share of the upset ones flagged.
    pub support_recall: f64,
}

/// Support-chat messages labelled upset or calm (`models/upset_examples.yaml` for training,
/// `models/upset_heldout.yaml` for measuring).
pub fn support_messages(path: &Path) -> anyhow::Result<Labelled> {
    #[derive(serde::Deserialize)]
    struct File {
        upset: Vec<String>,
        calm: Vec<String>,
    }
    let file: File = serde_yaml::from_str(&std::fs::read_to_string(path)?)?;
    let mut out = Labelled::default();
    for (label, texts) in [("upset", file.upset), ("calm", file.calm)] {
        for t in texts {
            out.texts.push(t);
            out.labels.push(label.to_owned());
        }
    }
    Ok(out)
}

/// Times each of our support examples is repeated among the tens of thousands of GoEmotions rows.
const SUPPORT_WEIGHT: usize = 20;

/// Trains the upset model on GoEmotions train plus our support-chat examples, chooses the head
/// (with or without cues, linear or one hidden layer) and the threshold on GoEmotions dev, and
/// reports GoEmotions test and our held-out support messages. Returns the model too: `frontdesk
/// train --upset` saves it.
pub fn goemotions(
    data: &Path,
    support: &Path,
    support_heldout: &Path,
    encoder: &Encoder,
    cache: &EmbeddingCache,
    limit: Option<usize>,
) -> anyhow::Result<(UpsetReport, UpsetModel)> {
    let load = |split: &str, n: Option<usize>| -> anyhow::Result<(Labelled, Vec<Embedding>)> {
        let rows = data::goemotions(data, split)?.sample(n);
        let x = data::embed(encoder, cache, &format!("GoEmotions {split}"), &rows.texts)?;
        Ok((rows, x))
    };
    let (mut train, mut train_x) = load("train", limit.map(|n| n * 8))?;
    let ours = support_messages(support)?;
    let ours_x = data::embed(encoder, cache, "support examples", &ours.texts)?;
    for _ in 0..SUPPORT_WEIGHT {
        train.texts.extend(ours.texts.iter().cloned());
        train.labels.extend(ours.labels.iter().cloned());
        train_x.extend(ours_x.iter().cloned());
    }
    let (dev, dev_x) = load("dev", limit)?;
    let (test, test_x) = load("test", limit)?;
    let heldout = support_messages(support_heldout)?;
    let heldout_x = data::embed(encoder, cache, "held-out support messages", &heldout.texts)?;
    let is_upset =
        |rows: &Labelled| -> Vec<bool> { rows.labels.iter().map(|l| l == "upset").collect() };
    let mut dev_sweep = Vec::new();
    let mut best: Option<(f64, UpsetModel)> = None;
    for (hidden, cues) in [(0, false), (0, true), (256, true)] {
        let options = TrainOptions {
            hidden,
            ..UpsetModel::options()
        };
        let mut model =
            UpsetModel::train(&train.texts, &train_x, &is_upset(&train), cues, &options)?;
        let f1 = model.fit_threshold(&dev.texts, &dev_x, &is_upset(&dev));
        let name = format!(
            "{}{}",
            if hidden > 0 { "MLP 256" } else { "linear" },
            if cues { " + cues" } else { "" }
        );
        dev_sweep.push((name, f1));
        if best.as_ref().is_none_or(|(b, _)| f1 > *b) {
            best = Some((f1, model));
        }
    }
    let (_, model) = best.expect("three candidates");
    let confusion = |rows: &Labelled, x: &[Embedding]| -> (f64, f64, f64) {
        let gold = is_upset(rows);
        let predicted: Vec<bool> = rows
            .texts
            .iter()
            .zip(x)
            .map(|(t, x)| model.score(t, x).0 >= model.threshold)
            .collect();
        let tp = predicted
            .iter()
            .zip(&gold)
            .filter(|(p, g)| **p && **g)
            .count() as f64;
        let right = predicted.iter().zip(&gold).filter(|(p, g)| p == g).count() as f64;
        let pp = predicted.iter().filter(|p| **p).count() as f64;
        let gp = gold.iter().filter(|g| **g).count() as f64;
        (
            tp / pp.max(1.0),
            tp / gp.max(1.0),
            right / gold.len().max(1) as f64,
        )
    };
    let (precision, recall, _) = confusion(&test, &test_x);
    let (_, support_recall, support_accuracy) = confusion(&heldout, &heldout_x);
    let upset_in_test = is_upset(&test).iter().filter(|u| **u).count();
    Ok((
        UpsetReport {
            dev_sweep,
            config: model.describe(),
            threshold: model.threshold,
            test: (test.len(), upset_in_test),
            precision,
            recall,
            f1: 2.0 * precision * recall / (precision + recall).max(1e-9),
            support_heldout: heldout.len(),
            support_accuracy,
            support_recall,
        },
        model,
    ))
}

/// GoEmotions test as the support signals' tuned layers read it (`nlu.signal_reader`).
#[derive(Debug, Clone)]
pub struct TunedUpsetReport {
    /// The bar on the GoEmotions head, chosen on dev when the layers were trained.
    pub threshold: f32,
    /// Test rows (all, upset).
    pub test: (usize, usize),
    /// Test precision, recall and F1.
    pub precision: f64,
    /// Test recall.
    pub recall: f64,
    /// Test F1.
    pub f1: f64,
}

/// Scores GoEmotions test with the tuned layers' GoEmotions head at `threshold` (their
/// manifest's); None when the encoder runs no tuned layers.
pub fn goemotions_tuned(
    data: &Path,
    encoder: &Encoder,
    threshold: f32,
    limit: Option<usize>,
) -> anyhow::Result<Option<TunedUpsetReport>> {
    let test = data::goemotions(data, "test")?.sample(limit);
    let encoded = data::embed_full(encoder, "GoEmotions test (tuned layers)", &test.texts)?;
    let Some(scores) = encoded
        .iter()
        .map(|e| e.tuned.map(|t| t.goemotions_upset))
        .collect::<Option<Vec<f32>>>()
    else {
        return Ok(None);
    };
    let gold: Vec<bool> = test.labels.iter().map(|l| l == "upset").collect();
    let predicted: Vec<bool> = scores.iter().map(|&s| s >= threshold).collect();
    let tp = predicted
        .iter()
        .zip(&gold)
        .filter(|(p, g)| **p && **g)
        .count() as f64;
    let pp = predicted.iter().filter(|p| **p).count() as f64;
    let gp = gold.iter().filter(|g| **g).count();
    let (precision, recall) = (tp / pp.max(1.0), tp / (gp as f64).max(1.0));
    Ok(Some(TunedUpsetReport {
        threshold,
        test: (gold.len(), gp),
        precision,
        recall,
        f1: 2.0 * precision * recall / (precision + recall).max(1e-9),
    }))
}

fn class_list(rows: &Labelled) -> Vec<String> {
    let set: BTreeMap<&str, ()> = rows.labels.iter().map(|l| (l.as_str(), ())).collect();
    set.into_keys().map(str::to_owned).collect()
}

fn label_ids(rows: &Labelled, classes: &[String]) -> Vec<usize> {
    rows.labels
        .iter()
        .map(|l| classes.iter().position(|c| c == l).unwrap_or(0))
        .collect()
}

fn train_head(
    rows: &Labelled,
    x: &[Embedding],
    which: &[usize],
    classes: &[String],
    options: &TrainOptions,
) -> anyhow::Result<Head> {
    let ids = label_ids(rows, classes);
    let inputs: Vec<&[f32]> = which.iter().map(|&i| &x[i][..]).collect();
    let labels: Vec<usize> = which.iter().map(|&i| ids[i]).collect();
    Ok(Head::train(&inputs, &labels, classes.to_vec(), options)?)
}

fn accuracy(head: &Head, rows: &Labelled, x: &[Embedding], which: &[usize]) -> f64 {
    let right = which
        .iter()
        .filter(|&&i| head.classes[argmax(&head.logits(&x[i]))] == rows.labels[i])
        .count();
    right as f64 / which.len().max(1) as f64
}

fn best_of(sweep: &[(String, f64)]) -> usize {
    (0..sweep.len())
        .max_by(|&a, &b| sweep[a].1.total_cmp(&sweep[b].1))
        .unwrap_or(0)
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len())
        .max_by(|&a, &b| v[a].total_cmp(&v[b]))
        .unwrap_or(0)
}

/// The product's own intents (`models/intents.yaml`) on phrasings nobody trained on.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DemoIntentReport {
    /// Held-out phrasings.
    pub heldout: usize,
    /// Held-out phrasings given the right intent (rejecting one as out of scope counts as wrong).
    pub accuracy: f64,
    /// The same without out-of-scope rejection (the classifier alone).
    pub accuracy_no_threshold: f64,
    /// CLINC150 oos_test queries (nothing to do with a coffee shop) rejected as out of scope.
    pub oos_queries: usize,
    /// Share of them rejected.
    pub oos_recall: f64,
    /// Cross-validated accuracy and out-of-scope recall from training.
    pub cross_validation: (f64, f64),
    /// Per intent: (name, held-out phrasings, right).
    pub per_intent: Vec<(String, usize, usize)>,
}

/// Trains the product's intent model exactly as `frontdesk train` does and scores it on
/// `models/intents_heldout.yaml` and on CLINC150's out-of-scope test queries.
pub fn demo_intents(
    data: &Path,
    settings: &crate::settings::NluSettings,
    heldout: &Path,
    encoder: &Encoder,
    cache: &EmbeddingCache,
    limit: Option<usize>,
) -> anyhow::Result<DemoIntentReport> {
    use crate::nlu::intents::{IntentModel, IntentSet};
    let set = IntentSet::load_with(
        &settings.intents,
        settings.extra_intents.as_deref(),
        &settings.out_of_scope_examples,
    )?;
    let model = IntentModel::train(&set, encoder, cache, |_, _, _| {})?;
    #[derive(serde::Deserialize)]
    struct Heldout {
        intents: Vec<HeldoutIntent>,
    }
    #[derive(serde::Deserialize)]
    struct HeldoutIntent {
        name: String,
        examples: Vec<String>,
    }
    let file: Heldout = serde_yaml::from_str(&std::fs::read_to_string(heldout)?)?;
    let mut per_intent = Vec::new();
    let (mut right, mut right_any, mut total) = (0, 0, 0);
    for intent in &file.intents {
        let x = data::embed(encoder, cache, "held-out phrasings", &intent.examples)?;
        let mut ok = 0;
        for v in &x {
            let verdict = model.classify(v);
            if verdict
                .intent
                .as_ref()
                .is_some_and(|m| m.name == intent.name)
            {
                ok += 1;
            }
            if verdict.best.0 == intent.name {
                right_any += 1;
            }
        }
        right += ok;
        total += x.len();
        per_intent.push((intent.name.clone(), x.len(), ok));
    }
    let oos = data::clinc150(data, "oos_test")?.sample(limit);
    let oos_x = data::embed(encoder, cache, "CLINC150 oos_test", &oos.texts)?;
    let rejected = oos_x
        .iter()
        .filter(|v| model.classify(v).out_of_scope)
        .count();
    let cv = &model.manifest.cross_validation;
    Ok(DemoIntentReport {
        heldout: total,
        accuracy: right as f64 / total.max(1) as f64,
        accuracy_no_threshold: right_any as f64 / total.max(1) as f64,
        oos_queries: oos.len(),
        oos_recall: rejected as f64 / oos.len().max(1) as f64,
        cross_validation: (cv.accuracy, cv.out_of_scope_recall),
        per_intent,
    })
}
