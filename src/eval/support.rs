//! Upset, urgent and asking for a person, as support customers write: training the support-signal
//! model on `models/support_messages.yaml`, `models/support_domains.yaml` and
//! `models/support_faults.yaml` (head and thresholds chosen by cross-validation holding out whole
//! domains; `models/support_dev.yaml` and `models/support_faults_dev.yaml`, other domains, only
//! measured), and measuring any support-message file the way the product decides — the full
//! understanding (intents, upset, signals) and the escalation policy's checks on a first message
//! (always-human intents aside: they are a knowledge base's policy, not a reading of the customer).

use std::path::Path;

use super::data;
use super::questions::{Expect, QuestionSet};
use crate::escalation::{History, Policy};
use crate::nlu::intents::IntentSet;
use crate::nlu::signals::{
    choose_thresholds, fit_temperature, probabilities, rates_with, support_cues, Candidate,
    SignalModel, SupportMessage, SupportSet,
};
use crate::nlu::upset::UpsetModel;
use crate::nlu::{Encoded, Encoder, Nlu};

/// Most calm messages (out of fold) the chosen threshold may flag.
pub const MAX_FALSE_ALARMS: f64 = 0.05;

/// Folds of the cross-validation: each holds out whole domains (every seventh of them, sorted by
/// name), so a domain is always scored by heads that never saw it. Seven rather than one per
/// domain (21 of them) keeps `frontdesk train --signals` within minutes on two shared cores.
pub const FOLDS: usize = 7;

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
    /// Every head tried: (name, threshold, threshold without a cue, out-of-fold recall,
    /// out-of-fold false alarms).
    pub sweep: Vec<(String, f32, f32, f64, f64)>,
    /// The chosen head's out-of-fold (recall, false alarms) at its thresholds.
    pub cross_validation: (f64, f64),
    /// The chosen head's out-of-fold (recall, false alarms) with one threshold for every message
    /// (what the bar without a cue buys), and that threshold.
    pub single_threshold: (f32, f64, f64),
    /// The chosen head's out-of-fold figures per held-out domain: (domain, escalating, calm,
    /// recall, false alarms).
    pub per_domain: Vec<(String, usize, usize, f64, f64)>,
    /// The final model (trained on every training message) on each dev set: (file, escalating,
    /// calm, recall, false alarms).
    pub dev: Vec<(String, usize, usize, f64, f64)>,
    /// The model it replaces, on the same dev sets at its own threshold.
    pub dev_before: Vec<(String, usize, usize, f64, f64)>,
    /// Broad calm messages: (offered, kept after dropping those with support cues or a high
    /// GoEmotions upset score).
    pub broad_calm: (usize, usize),
    /// The softmax temperature fitted on the out-of-fold scores, with the mean log-loss out of
    /// fold before and after it.
    pub temperature: (f32, f64, f64),
    /// Answerable knowledge-base questions the signals would hand to a person (a check, never
    /// fitted on): per file (file, answerable, flagged by the new model, flagged by the model it
    /// replaces), and the flagged texts with their score.
    pub check: Vec<(String, usize, usize, Option<usize>)>,
    /// The answerable questions the new model flags, with `needs_person`.
    #[serde(skip)]
    pub check_flagged: Vec<(String, f32)>,
}

/// What [`train_signals`] trains on and checks against.
pub struct SignalData<'a> {
    /// Labelled support-message files (each message's `domain` is its cross-validation group).
    pub sets: &'a [&'a Path],
    /// Support messages of other domains, only measured.
    pub dev: &'a [&'a Path],
    /// Messages that are calm by definition (the intents' out-of-scope examples).
    pub calm_extra: &'a [String],
    /// Ordinary customer requests from public data sets ([`broad_calm`]): trained on as calm
    /// unless they carry support cues or a high GoEmotions upset score.
    pub broad_calm: &'a [String],
    /// Question files whose answerable questions are checked (never fitted on).
    pub check: &'a [&'a Path],
    /// The model being replaced, measured on dev and the check files alongside.
    pub previous: Option<&'a SignalModel>,
    /// Train the head that also reads the encoder's middle layer
    /// ([`SignalModel::candidates`]).
    pub middle_layer: bool,
}

/// BANKING77 and CLINC150 categories left out of the broad calm messages: a customer writing
/// them (a card stolen, a payment they do not recognise, fraud, a lost bag, "are you a bot") may
/// well need a person, and our own sets label such messages as escalating.
const NOT_CALM_CATEGORIES: &[&str] = &[
    "card_payment_not_recognised",
    "cash_withdrawal_not_recognised",
    "direct_debit_payment_not_recognised",
    "compromised_card",
    "lost_or_stolen_card",
    "lost_or_stolen_phone",
    "card_swallowed",
    "transaction_charged_twice",
    "wrong_amount_of_cash_received",
    "Refund_not_showing_up",
    "report_fraud",
    "report_lost_card",
    "freeze_account",
    "account_blocked",
    "damaged_card",
    "lost_luggage",
    "are_you_a_bot",
];

/// Intents of `models/intents.yaml` whose examples are calm requests (not complaints, refunds,
/// security incidents or asking for a person).
const CALM_INTENTS: &[&str] = &[
    "greeting",
    "thanks_goodbye",
    "billing",
    "cancel_subscription",
    "account_access",
    "technical_problem",
    "product_question",
    "feature_request",
    "privacy",
];

/// Training queries per BANKING77 category and per CLINC150 intent (the first ones of each).
const PER_CATEGORY: (usize, usize) = (25, 15);

/// Ordinary customer requests from the public data sets in `data` (BANKING77 and CLINC150
/// *train* queries, a few per category, StackFAQ's paraphrased questions) and the calm intents'
/// examples of `intents`: thousands of calm messages in many domains, so that the signal head
/// learns that a plain question is calm however unlike its support messages it is. Never the
/// knowledge-base question sets.
pub fn broad_calm(data: &Path, intents: &IntentSet) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut take = |set: data::Labelled, per: usize| {
        let mut seen: std::collections::HashMap<String, usize> = Default::default();
        for (text, label) in set.texts.into_iter().zip(set.labels) {
            if NOT_CALM_CATEGORIES.contains(&label.as_str()) || label == "oos" {
                continue;
            }
            let n = seen.entry(label).or_default();
            if *n < per {
                *n += 1;
                out.push(text);
            }
        }
    };
    take(data::banking77(data, "train")?, PER_CATEGORY.0);
    take(data::clinc150(data, "train")?, PER_CATEGORY.1);
    let path = data.join("stackfaq").join("stackExchange-FAQ.json");
    let file: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("cannot read {} ({e})", path.display()))?,
    )?;
    let entries = file["root"]["qapair"]
        .as_array()
        .ok_or_else(|| anyhow::anyhow!("{} has no root.qapair list", path.display()))?;
    for entry in entries {
        let queries = entry["rephr"].as_array().into_iter().flatten();
        out.extend(
            queries
                .filter_map(|q| q.as_str())
                .map(str::trim)
                .filter(|q| q.len() > 1 && *q != "*")
                .map(str::to_owned),
        );
    }
    for intent in &intents.intents {
        if CALM_INTENTS.contains(&intent.name.as_str()) {
            out.extend(
                intent
                    .examples
                    .iter()
                    .filter(|e| !e.trim().is_empty())
                    .cloned(),
            );
        }
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// One message with what the head reads besides its text.
struct Row<'a> {
    message: &'a SupportMessage,
    encoded: Encoded,
    goemotions: f32,
    group: String,
}

fn embed_rows<'a>(
    set: &'a SupportSet,
    upset: &UpsetModel,
    encoder: &Encoder,
) -> anyhow::Result<Vec<Row<'a>>> {
    let texts: Vec<String> = set.messages.iter().map(|m| m.text.clone()).collect();
    let x = data::embed_full(encoder, "support messages", &texts)?;
    Ok(set
        .messages
        .iter()
        .zip(x)
        .enumerate()
        .map(|(i, (m, e))| Row {
            goemotions: upset.score(&m.text, &e.sentence).0,
            message: m,
            encoded: e,
            group: set.group(i),
        })
        .collect())
}

fn train_on(rows: &[&Row], candidate: &Candidate) -> anyhow::Result<SignalModel> {
    let messages: Vec<&SupportMessage> = rows.iter().map(|r| r.message).collect();
    let x: Vec<&Encoded> = rows.iter().map(|r| &r.encoded).collect();
    let g: Vec<f32> = rows.iter().map(|r| r.goemotions).collect();
    Ok(SignalModel::train(
        &messages,
        &x,
        &g,
        &candidate.options,
        candidate.members,
        candidate.middle,
    )?)
}

fn needs_person(model: &SignalModel, row: &Row) -> f32 {
    model
        .score(&row.message.text, &row.encoded, row.goemotions)
        .needs_person()
}

/// Whether a support cue that is evidence ([`crate::nlu::signals::is_evidence`]) is present in
/// the row's message.
fn cued(row: &Row) -> bool {
    crate::nlu::signals::has_evidence_cue(&row.message.text)
}

/// Whether `model` alone flags the row: `needs_person` at its threshold, or at its bar without a
/// cue when no cue is present.
fn flags(model: &SignalModel, row: &Row) -> bool {
    let bar = match model.cueless_threshold {
        Some(t) if !cued(row) => t.max(model.threshold),
        _ => model.threshold,
    };
    needs_person(model, row) >= bar
}

/// Trains the support-signal model on the messages of `data.sets` plus calm messages
/// (`calm_extra`, and the `broad_calm` ones without support cues or a high GoEmotions score).
///
/// The head, its softmax temperature and the thresholds are chosen by cross-validation holding
/// out whole domains ([`FOLDS`] folds): each domain (a message's `domain`, or its file's name) is
/// scored by a model trained on other domains only; the temperature minimises the log-loss of
/// those out-of-fold scores, and the thresholds (with a support cue, and without one) are the pair
/// with the most recall over them while at most [`MAX_FALSE_ALARMS`] of the calm ones are
/// flagged. The final model trains on everything. The dev sets (other domains, never trained on)
/// and the check files' answerable questions are only measured.
pub fn train_signals(
    data: &SignalData,
    upset: &UpsetModel,
    encoder: &Encoder,
) -> anyhow::Result<(SignalModel, SignalTraining)> {
    let mut loaded = Vec::new();
    for path in data.sets {
        loaded.push(SupportSet::load(path)?);
    }
    let calm_set = |name: &str, texts: &[String]| SupportSet {
        name: name.into(),
        messages: texts
            .iter()
            .map(|text| SupportMessage {
                text: text.clone(),
                escalate: false,
                kind: None,
                domain: None,
            })
            .collect(),
    };
    let extra = calm_set("out-of-scope", data.calm_extra);
    let broad = calm_set("broad calm", data.broad_calm);
    let candidates = SignalModel::candidates(data.middle_layer);
    let with_broad = candidates.iter().any(|c| c.broad_calm);
    // A business of a dev set is never trained on, whichever file its messages come from: the dev
    // figures measure businesses the model has never seen.
    let mut dev_domains = std::collections::BTreeSet::new();
    let dev_sets = data
        .dev
        .iter()
        .map(|path| SupportSet::load(path).map(|set| (path, set)))
        .collect::<Result<Vec<_>, _>>()?;
    for (_, set) in &dev_sets {
        dev_domains.extend((0..set.messages.len()).map(|i| set.group(i)));
    }
    for set in &mut loaded {
        let before = set.messages.len();
        let name = set.name.clone();
        set.messages
            .retain(|m| !m.domain.as_ref().is_some_and(|d| dev_domains.contains(d)));
        if set.messages.len() < before {
            eprintln!(
                "  {name}: {} messages of businesses a dev set holds left out",
                before - set.messages.len()
            );
        }
    }
    let mut rows = Vec::new();
    for set in &loaded {
        rows.extend(embed_rows(set, upset, encoder)?);
    }
    let own = rows.len();
    let extra_rows = embed_rows(&extra, upset, encoder)?;
    let broad_rows = if with_broad {
        embed_rows(&broad, upset, encoder)?
    } else {
        Vec::new()
    };
    let offered = broad_rows.len();
    // A public query that reads upset or carries a support cue ("my card still hasn't come",
    // "urgent") is not certainly calm: it is left out rather than taught as calm.
    let broad_rows: Vec<Row> = broad_rows
        .into_iter()
        .filter(|r| r.goemotions < upset.threshold && support_cues(&r.message.text).1.is_empty())
        .collect();
    let kept = broad_rows.len();
    eprintln!("  broad calm messages: {kept} of {offered} kept (no support cue, GoEmotions upset under {:.2})", upset.threshold);
    let mut groups: Vec<String> = rows.iter().map(|r| r.group.clone()).collect();
    groups.sort();
    groups.dedup();
    if groups.len() < 2 {
        anyhow::bail!(
            "the support messages come from one domain only ({groups:?}): cross-validation across domains needs at least two; give messages a `domain`"
        );
    }
    let gold: Vec<bool> = rows.iter().map(|r| r.message.escalate).collect();
    let labels: Vec<usize> = rows.iter().map(|r| r.message.class()).collect();
    let with_cue: Vec<bool> = rows.iter().map(cued).collect();
    let fold_of = |group: &str| groups.iter().position(|g| g == group).unwrap_or(0) % FOLDS;
    let mut sweep = Vec::new();
    // (out-of-fold recall, thresholds, temperature fit, candidate, out-of-fold scores)
    type Chosen = (
        f64,
        (f32, f32),
        (f32, f64, f64),
        crate::nlu::signals::Candidate,
        Vec<f32>,
    );
    let mut best: Option<Chosen> = None;
    for candidate in candidates {
        let (name, repeats) = (candidate.name, candidate.repeats);
        let started = std::time::Instant::now();
        let mut oof_logits = vec![Vec::new(); own];
        for fold in 0..FOLDS.min(groups.len()) {
            let train: Vec<&Row> = (0..repeats.max(1))
                .flat_map(|_| rows.iter().filter(|r| fold_of(&r.group) != fold))
                .chain(&extra_rows)
                .chain(broad_rows.iter().filter(|_| candidate.broad_calm))
                .collect();
            let model = train_on(&train, &candidate)?;
            for (i, r) in rows.iter().enumerate() {
                if fold_of(&r.group) == fold {
                    oof_logits[i] = model.logits(&r.message.text, &r.encoded, r.goemotions);
                }
            }
        }
        let fit = fit_temperature(&oof_logits, &labels);
        let oof: Vec<f32> = oof_logits
            .iter()
            .map(|l| crate::nlu::signals::needs_person(&probabilities(l, fit.0)))
            .collect();
        let (threshold, cueless) = choose_thresholds(&oof, &gold, &with_cue, MAX_FALSE_ALARMS);
        let (recall, false_alarms) = rates_with(&oof, &gold, &with_cue, threshold, cueless);
        eprintln!(
            "  {name}: temperature {:.2} (out-of-fold log-loss {:.3} -> {:.3}), threshold {threshold:.2} ({cueless:.2} without a cue), out-of-fold recall {:.1}%, false alarms {:.1}% ({:.0} s)",
            fit.0,
            fit.1,
            fit.2,
            recall * 100.0,
            false_alarms * 100.0,
            started.elapsed().as_secs_f64()
        );
        sweep.push((name.to_owned(), threshold, cueless, recall, false_alarms));
        // A head whose every threshold flags too many calm messages is not a candidate.
        let feasible = false_alarms <= MAX_FALSE_ALARMS;
        if feasible && best.as_ref().is_none_or(|(r, ..)| recall > *r) {
            best = Some((recall, (threshold, cueless), fit, candidate.clone(), oof));
        }
    }
    let (_, (threshold, cueless), temperature, chosen, oof) = best.ok_or_else(|| {
        anyhow::anyhow!(
            "no head keeps calm messages flagged at or under {:.0}% out of fold: add calm messages that share the escalating ones' words",
            MAX_FALSE_ALARMS * 100.0
        )
    })?;
    let single = {
        let t = crate::nlu::signals::choose_threshold(&oof, &gold, MAX_FALSE_ALARMS);
        let (r, f) = crate::nlu::signals::rates(&oof, &gold, t);
        (t, r, f)
    };
    // A cue never lowers the bar below the one chosen without regard to cues: the lack of a cue
    // raises it. Cue words ("today", "launch", "our team", "switching") are common in calm
    // help-centre questions and rare in the calm training messages, so the pair's lower bar
    // trusted them too far (0.12 against 0.45 in the 2026-12-04 model: a blind help centre's calm
    // questions handed over 6.6 -> 18.9 %; docs/EVALUATION.md, "A middle layer for the support
    // signals").
    let (threshold, cueless) = (threshold.max(single.0), cueless.max(single.0));
    let cross_validation = rates_with(&oof, &gold, &with_cue, threshold, cueless);
    eprintln!(
        "  bars: {threshold:.2} with a cue, {cueless:.2} without (out of fold {:.1}% escalated, {:.1}% of calm)",
        cross_validation.0 * 100.0,
        cross_validation.1 * 100.0
    );
    let per_domain = groups
        .iter()
        .map(|g| {
            let idx: Vec<usize> = (0..own).filter(|&i| &rows[i].group == g).collect();
            let s: Vec<f32> = idx.iter().map(|&i| oof[i]).collect();
            let e: Vec<bool> = idx.iter().map(|&i| gold[i]).collect();
            let c: Vec<bool> = idx.iter().map(|&i| with_cue[i]).collect();
            let (r, f) = rates_with(&s, &e, &c, threshold, cueless);
            let n_esc = e.iter().filter(|&&x| x).count();
            (g.clone(), n_esc, e.len() - n_esc, r, f)
        })
        .collect();
    let all: Vec<&Row> = (0..chosen.repeats.max(1))
        .flat_map(|_| rows.iter())
        .chain(&extra_rows)
        .chain(broad_rows.iter().filter(|_| chosen.broad_calm))
        .collect();
    let mut model = train_on(&all, &chosen)?;
    model.set_temperature(temperature.0);
    model.threshold = threshold;
    model.cueless_threshold = Some(cueless);
    let measure = |model: &SignalModel, rows: &[Row]| {
        let hit: Vec<bool> = rows.iter().map(|r| flags(model, r)).collect();
        let n_esc = rows.iter().filter(|r| r.message.escalate).count();
        let share = |want: bool| {
            let n = rows.iter().filter(|r| r.message.escalate == want).count();
            let h = rows
                .iter()
                .zip(&hit)
                .filter(|(r, &h)| h && r.message.escalate == want)
                .count();
            h as f64 / n.max(1) as f64
        };
        (n_esc, rows.len() - n_esc, share(true), share(false))
    };
    let (mut dev, mut dev_before) = (Vec::new(), Vec::new());
    for (path, set) in &dev_sets {
        let dev_rows = embed_rows(set, upset, encoder)?;
        let file = path.display().to_string();
        let (e, c, r, f) = measure(&model, &dev_rows);
        dev.push((file.clone(), e, c, r, f));
        if let Some(p) = data.previous {
            let (e, c, r, f) = measure(p, &dev_rows);
            dev_before.push((file, e, c, r, f));
        }
    }
    let mut check = Vec::new();
    let mut check_flagged = Vec::new();
    for path in data.check {
        let questions = QuestionSet::load(path)?;
        let set = calm_set(
            &questions.name,
            &questions
                .questions
                .iter()
                .filter(|q| q.expect == Expect::Answer)
                .map(|q| q.text.clone())
                .collect::<Vec<_>>(),
        );
        let check_rows = embed_rows(&set, upset, encoder)?;
        let flagged = |model: &SignalModel| check_rows.iter().filter(|r| flags(model, r)).count();
        check.push((
            path.display().to_string(),
            check_rows.len(),
            flagged(&model),
            data.previous.map(flagged),
        ));
        for r in check_rows.iter().filter(|r| flags(&model, r)) {
            check_flagged.push((r.message.text.clone(), needs_person(&model, r)));
        }
    }
    let report = SignalTraining {
        messages: (
            own,
            extra_rows.len() + if chosen.broad_calm { kept } else { 0 },
        ),
        sweep,
        cross_validation,
        single_threshold: single,
        per_domain,
        dev,
        dev_before,
        broad_calm: (offered, kept),
        temperature,
        check,
        check_flagged,
    };
    let mut hashes = serde_json::Map::new();
    for path in data.sets.iter().chain(data.dev).copied() {
        hashes.insert(path.display().to_string(), sha256_file(path)?.into());
    }
    model.manifest = serde_json::json!({
        "data": format!(
            "{} ({own} messages) + {} calm out-of-scope examples{}",
            data.sets.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" + "),
            extra.messages.len(),
            if chosen.broad_calm {
                format!(" + {kept} broad calm requests (BANKING77 and CLINC150 train, {} and {} per category, some categories left out; StackFAQ queries; the calm intents' examples; those with a support cue or a GoEmotions upset score of {:.2} or more left out, {offered} offered)", PER_CATEGORY.0, PER_CATEGORY.1, upset.threshold)
            } else {
                String::new()
            },
        ),
        "sha256": hashes,
        "classes": crate::nlu::signals::CLASSES,
        "input": if chosen.middle {
            format!("all-MiniLM-L6-v2 embedding + the mean of layer {}'s token vectors (standardised) + support cues + calm-request features + GoEmotions upset score (models/upset.json)", crate::nlu::MIDDLE_LAYER)
        } else {
            "all-MiniLM-L6-v2 embedding + support cues + calm-request features + GoEmotions upset score (models/upset.json)".to_owned()
        },
        "head": chosen.name,
        "options": chosen.options,
        "heads_averaged": chosen.members,
        "own_messages_repeated": chosen.repeats,
        "temperature": temperature.0,
        "temperature_chosen_on": "out-of-fold scores, whole domains held out: least log-loss",
        "threshold": model.threshold,
        "cueless_threshold": cueless,
        "threshold_chosen_on": format!("cross-validation holding out whole domains ({FOLDS} folds) over {groups:?}: most out-of-fold recall with at most {:.0}% of calm messages flagged, the threshold for messages without a support cue at least the other", MAX_FALSE_ALARMS * 100.0),
        "cross_validation": report,
    });
    Ok((model, report))
}

/// Measures a support-message file as the product decides on a first message: `nlu` understands
/// it, `policy` checks it before the bot would answer.
pub fn support_set(path: &Path, nlu: &Nlu, policy: &Policy) -> anyhow::Result<SupportReport> {
    let set = SupportSet::load(path)?;
    let messages: Vec<_> = set.messages.iter().collect();
    // Read as the server reads a message (links and pasted strings as words; no knowledge base,
    // so nothing to correct).
    let texts: Vec<String> = messages
        .iter()
        .map(|m| crate::nlu::for_models(&m.text).into_owned())
        .collect();
    let x = data::embed_full(nlu.encoder(), "support messages", &texts)?;
    let mut per_kind: Vec<(String, usize, usize)> = Vec::new();
    let mut mistakes = Vec::new();
    let (mut hit, mut esc, mut alarms, mut calm) = (0, 0, 0, 0);
    for ((m, text), e) in messages.iter().zip(&texts).zip(x) {
        let analysis = nlu.analyse_embedded(text, e);
        // Always-human intents are a knowledge base's policy (the demo shop's refunds), not a
        // reading of the customer: only what the message itself says counts here.
        let mut decision = policy.before_bot(&m.text, &analysis.understanding, &History::default());
        decision
            .reasons
            .retain(|r| r.kind != crate::escalation::ReasonKind::Sensitive);
        decision.escalate = !decision.reasons.is_empty();
        let kind = match (m.escalate, &m.kind) {
            (true, kind) => kind.clone().unwrap_or_else(|| "escalate".into()),
            (false, Some(kind)) => format!("calm {kind}"),
            (false, None) => "calm".into(),
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

/// The tuned layers' two bars, as chosen on the businesses held out of their training.
#[derive(Debug, Clone, PartialEq)]
pub struct TunedBars {
    /// `needs_person` bar when a support cue backs the reading.
    pub threshold: f32,
    /// The bar without one (at least `threshold`).
    pub without_cue: f32,
    /// Share of the held-out escalating messages flagged at those bars.
    pub recall: f64,
    /// Share of the held-out calm ones flagged.
    pub false_alarms: f64,
    /// Held-out messages (escalating, calm).
    pub messages: (usize, usize),
}

/// Chooses the support signals' tuned layers' bars (with a support cue and without one) the way
/// `frontdesk train --signals` chooses the head's: the pair with the most recall of escalating
/// messages while at most [`MAX_FALSE_ALARMS`] of the calm ones are flagged, the bar without a cue
/// at least the other — on the messages of `files` from the businesses in `holdout`, which the
/// tuned layers were never trained on (`scripts/finetune_signals.py --holdout`).
pub fn tuned_bars(
    files: &[&Path],
    holdout: &[String],
    encoder: &Encoder,
) -> anyhow::Result<TunedBars> {
    let mut messages = Vec::new();
    for path in files {
        let set = SupportSet::load(path)?;
        messages.extend(
            set.messages
                .into_iter()
                .filter(|m| m.domain.as_ref().is_some_and(|d| holdout.contains(d))),
        );
    }
    if messages.is_empty() {
        anyhow::bail!(
            "no message of the businesses {holdout:?} in {files:?}: name the businesses the tuned \
             layers were trained without (tuned.json, trained.holdout)"
        );
    }
    let texts: Vec<String> = messages.iter().map(|m| m.text.clone()).collect();
    let encoded = data::embed_full(encoder, "held-out support messages", &texts)?;
    let mut scores = Vec::with_capacity(encoded.len());
    for e in &encoded {
        let Some(t) = e.tuned else {
            anyhow::bail!(
                "the encoder runs no tuned layers: set nlu.signal_reader = \"tuned\" and the torch encoder"
            );
        };
        scores.push(t.support[1..].iter().copied().fold(0.0, f32::max));
    }
    let gold: Vec<bool> = messages.iter().map(|m| m.escalate).collect();
    let cued: Vec<bool> = messages
        .iter()
        .map(|m| crate::nlu::signals::has_evidence_cue(&m.text))
        .collect();
    let (threshold, without_cue) = choose_thresholds(&scores, &gold, &cued, MAX_FALSE_ALARMS);
    let (recall, false_alarms) = rates_with(&scores, &gold, &cued, threshold, without_cue);
    let escalating = gold.iter().filter(|g| **g).count();
    Ok(TunedBars {
        threshold,
        without_cue,
        recall,
        false_alarms,
        messages: (escalating, gold.len() - escalating),
    })
}
