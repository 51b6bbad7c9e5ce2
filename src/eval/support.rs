//! Upset, urgent and asking for a person, as support customers write: training the support-signal
//! model on `models/support_messages.yaml` and `models/support_domains.yaml` (head and threshold
//! chosen by leave-one-domain-out cross-validation; `models/support_dev.yaml`, other domains, only
//! measured), and measuring any support-message file the way the product decides — the full understanding
//! (intents, upset, signals) and the escalation policy's checks on a first message (always-human
//! intents aside: they are a knowledge base's policy, not a reading of the customer).

use std::path::Path;

use super::data;
use crate::escalation::{History, Policy};
use crate::nlu::head::TrainOptions;
use crate::nlu::signals::{choose_threshold, rates, SignalModel, SupportMessage, SupportSet};
use crate::nlu::upset::UpsetModel;
use crate::nlu::{EmbeddingCache, Encoder, Nlu};

/// Most calm messages (out of fold) the chosen threshold may flag.
pub const MAX_FALSE_ALARMS: f64 = 0.05;

/// What a support-message set gave.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SupportReport {
    /// The set's name and file.
    pub name: String,
    /// sha256 of the file, so a report names exactly what it measured.
    pub sha256: String,
    /// Messages measured (escalating, calm).
    pub messages: (usize, usize),
    /// Share of the escalating ones that went to a person.
    pub recall: f64,
    /// Share of the calm ones that went to a person.
    pub false_alarms: f64,
    /// Per kind: (kind, messages, escalated).
    pub per_kind: Vec<(String, usize, usize)>,
    /// Escalating messages kept by the bot, and calm ones handed over (the first few).
    pub mistakes: Vec<String>,
}

/// How the support-signal model was chosen: out-of-fold figures of the cross-validation across
/// domains, per domain, and the held-out dev set (the model alone).
#[derive(Debug, Clone, serde::Serialize)]
pub struct SignalTraining {
    /// Messages trained on (own sets, calm extras).
    pub messages: (usize, usize),
    /// Every head tried: (name, threshold, out-of-fold recall, out-of-fold false alarms).
    pub sweep: Vec<(String, f32, f64, f64)>,
    /// The chosen head's out-of-fold (recall, false alarms) at its threshold.
    pub cross_validation: (f64, f64),
    /// The chosen head's out-of-fold figures per held-out domain: (domain, escalating, calm,
    /// recall, false alarms).
    pub per_domain: Vec<(String, usize, usize, f64, f64)>,
    /// The final model (trained on every training message) on the dev set: (escalating, calm,
    /// recall, false alarms); None when there is no dev set.
    pub dev: Option<(usize, usize, f64, f64)>,
}

/// One message with what the head reads besides its text.
struct Row<'a> {
    message: &'a SupportMessage,
    embedding: std::sync::Arc<[f32]>,
    goemotions: f32,
    group: String,
}

fn embed_rows<'a>(
    set: &'a SupportSet,
    upset: &UpsetModel,
    encoder: &Encoder,
    cache: &EmbeddingCache,
) -> anyhow::Result<Vec<Row<'a>>> {
    let texts: Vec<String> = set.messages.iter().map(|m| m.text.clone()).collect();
    let x = data::embed(encoder, cache, "support messages", &texts)?;
    Ok(set
        .messages
        .iter()
        .zip(x)
        .enumerate()
        .map(|(i, (m, e))| Row {
            goemotions: upset.score(&m.text, &e).0,
            message: m,
            embedding: e,
            group: set.group(i),
        })
        .collect())
}

fn train_on(rows: &[&Row], options: &TrainOptions, members: usize) -> anyhow::Result<SignalModel> {
    let messages: Vec<&SupportMessage> = rows.iter().map(|r| r.message).collect();
    let x: Vec<&[f32]> = rows.iter().map(|r| &r.embedding[..]).collect();
    let g: Vec<f32> = rows.iter().map(|r| r.goemotions).collect();
    Ok(SignalModel::train(&messages, &x, &g, options, members)?)
}

fn needs_person(model: &SignalModel, row: &Row) -> f32 {
    model
        .score(&row.message.text, &row.embedding, row.goemotions)
        .needs_person()
}

/// Trains the support-signal model on the messages of `sets` plus `calm_extra` (messages that are
/// calm by definition: the intents' out-of-scope examples, trivia and weather).
///
/// The head and the threshold are chosen by leave-one-domain-out cross-validation: each domain
/// (a message's `domain`, or its file's name) is scored by a model trained on all the others, and
/// the threshold is the one with the most recall over all those out-of-fold scores while at most
/// [`MAX_FALSE_ALARMS`] of the calm ones are flagged. The final model trains on everything. `dev_path`
/// (a set of other domains, never trained on) is only measured.
pub fn train_signals(
    sets: &[&Path],
    dev_path: Option<&Path>,
    calm_extra: &[String],
    upset: &UpsetModel,
    encoder: &Encoder,
    cache: &EmbeddingCache,
) -> anyhow::Result<(SignalModel, SignalTraining)> {
    let mut loaded = Vec::new();
    for path in sets {
        loaded.push(SupportSet::load(path)?);
    }
    let extra = SupportSet {
        name: "out-of-scope".into(),
        messages: calm_extra
            .iter()
            .map(|text| SupportMessage {
                text: text.clone(),
                escalate: false,
                kind: None,
                domain: None,
            })
            .collect(),
    };
    let mut rows = Vec::new();
    for set in &loaded {
        rows.extend(embed_rows(set, upset, encoder, cache)?);
    }
    let own = rows.len();
    let extra_rows = embed_rows(&extra, upset, encoder, cache)?;
    let mut groups: Vec<String> = rows.iter().map(|r| r.group.clone()).collect();
    groups.sort();
    groups.dedup();
    if groups.len() < 2 {
        anyhow::bail!(
            "the support messages come from one domain only ({groups:?}): cross-validation across domains needs at least two; give messages a `domain`"
        );
    }
    let gold: Vec<bool> = rows.iter().map(|r| r.message.escalate).collect();
    let mut sweep = Vec::new();
    // (out-of-fold recall, threshold, (options, heads averaged), out-of-fold scores)
    type Chosen = (f64, f32, (TrainOptions, usize), Vec<f32>);
    let mut best: Option<Chosen> = None;
    for (name, options, members) in SignalModel::candidates() {
        let mut oof = vec![0f32; own];
        for group in &groups {
            let train: Vec<&Row> = rows
                .iter()
                .filter(|r| &r.group != group)
                .chain(&extra_rows)
                .collect();
            let model = train_on(&train, &options, members)?;
            for (i, r) in rows.iter().enumerate() {
                if &r.group == group {
                    oof[i] = needs_person(&model, r);
                }
            }
        }
        let threshold = choose_threshold(&oof, &gold, MAX_FALSE_ALARMS);
        let (recall, false_alarms) = rates(&oof, &gold, threshold);
        eprintln!(
            "  {name}: threshold {threshold:.2}, out-of-fold recall {:.1}%, false alarms {:.1}%",
            recall * 100.0,
            false_alarms * 100.0
        );
        sweep.push((name.to_owned(), threshold, recall, false_alarms));
        // A head whose every threshold flags too many calm messages is not a candidate.
        let feasible = false_alarms <= MAX_FALSE_ALARMS;
        if feasible && best.as_ref().is_none_or(|(r, ..)| recall > *r) {
            best = Some((recall, threshold, (options, members), oof));
        }
    }
    let (_, threshold, (options, members), oof) = best.ok_or_else(|| {
        anyhow::anyhow!(
            "no head keeps calm messages flagged at or under {:.0}% out of fold: add calm messages that share the escalating ones' words",
            MAX_FALSE_ALARMS * 100.0
        )
    })?;
    let cross_validation = rates(&oof, &gold, threshold);
    let per_domain = groups
        .iter()
        .map(|g| {
            let idx: Vec<usize> = (0..own).filter(|&i| &rows[i].group == g).collect();
            let s: Vec<f32> = idx.iter().map(|&i| oof[i]).collect();
            let e: Vec<bool> = idx.iter().map(|&i| gold[i]).collect();
            let (r, f) = rates(&s, &e, threshold);
            let n_esc = e.iter().filter(|&&x| x).count();
            (g.clone(), n_esc, e.len() - n_esc, r, f)
        })
        .collect();
    let all: Vec<&Row> = rows.iter().chain(&extra_rows).collect();
    let mut model = train_on(&all, &options, members)?;
    model.threshold = threshold;
    let dev = match dev_path {
        Some(path) => {
            let set = SupportSet::load(path)?;
            let dev_rows = embed_rows(&set, upset, encoder, cache)?;
            let s: Vec<f32> = dev_rows.iter().map(|r| needs_person(&model, r)).collect();
            let e: Vec<bool> = dev_rows.iter().map(|r| r.message.escalate).collect();
            let (r, f) = rates(&s, &e, threshold);
            let n_esc = e.iter().filter(|&&x| x).count();
            Some((n_esc, e.len() - n_esc, r, f))
        }
        None => None,
    };
    let report = SignalTraining {
        messages: (own, extra_rows.len()),
        sweep,
        cross_validation,
        per_domain,
        dev,
    };
    let mut hashes = serde_json::Map::new();
    for path in sets.iter().copied().chain(dev_path) {
        hashes.insert(path.display().to_string(), sha256_file(path)?.into());
    }
    model.manifest = serde_json::json!({
        "data": format!("{} ({own} messages) + {} calm out-of-scope examples", sets.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" + "), extra_rows.len()),
        "sha256": hashes,
        "classes": crate::nlu::signals::CLASSES,
        "input": "all-MiniLM-L6-v2 embedding + support cues + GoEmotions upset score (models/upset.json)",
        "options": options,
        "heads_averaged": members,
        "threshold": model.threshold,
        "threshold_chosen_on": format!("leave-one-domain-out cross-validation over {groups:?}: most out-of-fold recall with at most {:.0}% of calm messages flagged", MAX_FALSE_ALARMS * 100.0),
        "cross_validation": report,
    });
    Ok((model, report))
}

/// Measures a support-message file as the product decides on a first message: `nlu` understands
/// it, `policy` checks it before the bot would answer.
pub fn support_set(
    path: &Path,
    nlu: &Nlu,
    policy: &Policy,
    cache: &EmbeddingCache,
) -> anyhow::Result<SupportReport> {
    let set = SupportSet::load(path)?;
    let messages: Vec<_> = set.messages.iter().collect();
    let texts: Vec<String> = messages.iter().map(|m| m.text.clone()).collect();
    let x = data::embed(nlu.encoder(), cache, "support messages", &texts)?;
    let mut per_kind: Vec<(String, usize, usize)> = Vec::new();
    let mut mistakes = Vec::new();
    let (mut hit, mut esc, mut alarms, mut calm) = (0, 0, 0, 0);
    for (m, e) in messages.iter().zip(x) {
        let analysis = nlu.analyse_embedded(&m.text, e);
        // Always-human intents are a knowledge base's policy (the demo shop's refunds), not a
        // reading of the customer: only what the message itself says counts here.
        let mut decision = policy.before_bot(&m.text, &analysis.understanding, &History::default());
        decision
            .reasons
            .retain(|r| r.kind != crate::escalation::ReasonKind::Sensitive);
        decision.escalate = !decision.reasons.is_empty();
        let kind = if m.escalate {
            m.kind.clone().unwrap_or_else(|| "escalate".into())
        } else {
            "calm".into()
        };
        match per_kind.iter_mut().find(|(k, _, _)| *k == kind) {
            Some(row) => {
                row.1 += 1;
                row.2 += usize::from(decision.escalate);
            }
            None => per_kind.push((kind.clone(), 1, usize::from(decision.escalate))),
        }
        if m.escalate {
            esc += 1;
            hit += usize::from(decision.escalate);
        } else {
            calm += 1;
            alarms += usize::from(decision.escalate);
        }
        if decision.escalate != m.escalate && mistakes.len() < 40 {
            let u = &analysis.understanding;
            mistakes.push(format!(
                "{} ({kind}; needs a person {:.2}: upset {:.2}, urgent {:.2}, person {:.2}): \"{}\"",
                if m.escalate { "kept" } else { "handed over" },
                u.needs_person(),
                u.upset,
                u.urgent,
                u.asks_for_person,
                m.text
            ));
        }
    }
    per_kind.sort();
    Ok(SupportReport {
        name: format!("{} ({})", set.name, path.display()),
        sha256: sha256_file(path)?,
        messages: (esc, calm),
        recall: hit as f64 / esc.max(1) as f64,
        false_alarms: alarms as f64 / calm.max(1) as f64,
        per_kind,
        mistakes,
    })
}

fn sha256_file(path: &Path) -> anyhow::Result<String> {
    use sha2::Digest;
    let bytes = std::fs::read(path)?;
    Ok(format!("{:x}", sha2::Sha256::digest(bytes)))
}
