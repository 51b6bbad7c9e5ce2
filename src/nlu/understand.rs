//! [`Nlu`]: one handle that turns a customer message into an [`Understanding`] (intent,
//! out-of-scope, upset), from one embedding that retrieval reuses.

use std::sync::Arc;

use super::intents::{IntentModel, IntentSet, IntentVerdict};
use super::signals::SignalModel;
use super::upset::UpsetModel;
use super::{Embedding, EmbeddingCache, Encoded, Encoder, NluError, Understanding};
use crate::settings::{NluSettings, SignalReader};

/// The language-understanding models; cheap to clone.
#[derive(Clone)]
pub struct Nlu {
    encoder: Encoder,
    intents: Arc<IntentModel>,
    upset: Arc<UpsetModel>,
    signals: Option<Arc<SignalModel>>,
    /// Whose readings of the support signals count when the tuned layers read a message too.
    reader: SignalReader,
}

/// Everything understood of one message, with the intent classifier's explanation.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// What is stored and acted on.
    pub understanding: Understanding,
    /// The classifier's best guess even when out of scope.
    pub best_intent: (String, f32),
    /// The message's embedding (retrieval reuses it).
    pub embedding: Embedding,
}

impl Nlu {
    /// Loads the models named in `settings` (blocking: call it off the async threads). A missing
    /// or stale intent model is retrained from the examples, with progress on stderr, when
    /// `settings.retrain_stale` allows.
    pub fn open(
        settings: &NluSettings,
        encoder: Encoder,
        cache: &EmbeddingCache,
    ) -> Result<Self, NluError> {
        let intents = load_or_train_intents(settings, &encoder, cache)?;
        let upset = UpsetModel::load(&settings.upset_model)?;
        let signals = SignalModel::load(&settings.signals_model)?;
        signals.check_encoder(settings)?;
        Ok(Self::from_models(encoder, intents, upset)
            .with_signals(signals)
            .with_reader(settings.reader()))
    }

    /// Builds the handle from models in hand (tests, `eval`).
    pub fn from_models(encoder: Encoder, intents: IntentModel, upset: UpsetModel) -> Self {
        Self {
            encoder,
            intents: Arc::new(intents),
            upset: Arc::new(upset),
            signals: None,
            reader: SignalReader::default(),
        }
    }

    /// Whose readings of the support signals count (`nlu.signal_reader`): the tuned layers', the
    /// head's, or both averaged. The tuned layers only read when the encoder runs them.
    pub fn with_reader(mut self, reader: SignalReader) -> Self {
        self.reader = reader;
        self
    }

    /// Adds the support-signal model (upset, urgent, asking for a person as support customers
    /// write them); without it, `upset` is the GoEmotions score and the other two are 0.
    pub fn with_signals(mut self, signals: SignalModel) -> Self {
        self.signals = Some(Arc::new(signals));
        self
    }

    /// The support-signal model, if loaded.
    pub fn signal_model(&self) -> Option<&SignalModel> {
        self.signals.as_deref()
    }

    /// The sentence encoder.
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// The intent classifier.
    pub fn intent_model(&self) -> &IntentModel {
        &self.intents
    }

    /// The upset detector.
    pub fn upset_model(&self) -> &UpsetModel {
        &self.upset
    }

    /// Encodes `text` (one encoder call) and understands it. Callers pass the [`Analysis`] on
    /// (to the escalation policy and the bot) rather than analysing the same text again.
    /// The models read the message's words only: links, addresses and pasted strings are read
    /// as words (see [`super::for_models`]).
    pub async fn analyse(&self, text: &str) -> Result<Analysis, NluError> {
        self.analyse_corrected(text, text).await
    }

    /// As [`Nlu::analyse`], the encoder reading `corrected` (the message with misspelt words
    /// corrected against the knowledge base) while the surface cues are read in the customer's
    /// words as `written`: a correction towards the base's words must not take a cue's word away
    /// ("contacting the regulator" lost "contacting") or make one ("arent" became "agent").
    pub async fn analyse_corrected(
        &self,
        written: &str,
        corrected: &str,
    ) -> Result<Analysis, NluError> {
        let encoded = self
            .encoder
            .embed_one_full(&super::for_models(corrected))
            .await?;
        Ok(self.analyse_embedded(&super::for_models(written), encoded))
    }

    /// Understands a message already encoded (from [`super::for_models`] of it, as `analyse`
    /// does, when it may hold links or pasted strings).
    pub fn analyse_embedded(&self, text: &str, encoded: Encoded) -> Analysis {
        let embedding = encoded.sentence.clone();
        let IntentVerdict {
            intent,
            out_of_scope,
            best,
        } = self.intents.classify(&embedding);
        let (goemotions, cues) = self.upset.score(text, &embedding);
        let head = self
            .signals
            .as_ref()
            .filter(|_| encoded.tuned.is_none() || self.reader != SignalReader::Tuned)
            .map(|model| model.score(text, &encoded, goemotions));
        let tuned = encoded
            .tuned
            .filter(|_| head.is_none() || self.reader != SignalReader::Head);
        let head_read = head.is_some();
        let (upset, upset_cues, urgent, asks_for_person) = match (tuned, head) {
            // Both read it (nlu.signal_reader = "both"): their probabilities averaged.
            (Some(t), Some(h)) => {
                let [_, upset, urgent, person] = t.support;
                (
                    (upset + h.upset) / 2.0,
                    h.cues,
                    (urgent + h.urgent) / 2.0,
                    (person + h.person) / 2.0,
                )
            }
            (Some(t), None) => {
                let [_, upset, urgent, person] = t.support;
                (upset, super::signals::support_cues(text).1, urgent, person)
            }
            (None, Some(h)) => (h.upset, h.cues, h.urgent, h.person),
            (None, None) => (goemotions, cues, 0.0, 0.0),
        };
        // A message of thanks for something that went right: an upset reading of it is thanks
        // read as sarcasm (their words are the same), its praise is no sarcasm mark ("the
        // courier was lovely, thanks") and its staff named no ask for someone ("the agent was so
        // helpful"); urgency and asking for a person still count. Without a signal model the cues
        // above are the upset detector's only: the support cues are read.
        let thanks = match (tuned, head_read) {
            (None, false) => super::signals::is_thanks(text, &super::signals::support_cues(text).1),
            _ => super::signals::is_thanks(text, &upset_cues),
        };
        let (upset, upset_cues) = if thanks {
            let cues = upset_cues
                .into_iter()
                .filter(|c| c != "sarcasm" && c != "asks for someone")
                .collect();
            (0.0, cues)
        } else {
            (upset, upset_cues)
        };
        let asks = super::asks(text);
        Analysis {
            understanding: Understanding {
                intent,
                out_of_scope,
                upset,
                upset_cues,
                thanks,
                not_helped: super::signals::says_it_did_not_help(text, asks),
                urgent,
                asks_for_person,
                how_to: super::signals::asks_how_to(text),
                asks,
                codes: super::codes(text),
            },
            best_intent: best,
            embedding,
        }
    }
}

/// Loads the intent model, retraining it first when it is missing or was trained on other
/// examples than the files hold now.
pub fn load_or_train_intents(
    settings: &NluSettings,
    encoder: &Encoder,
    cache: &EmbeddingCache,
) -> Result<IntentModel, NluError> {
    let set = IntentSet::load_with(
        &settings.intents,
        settings.extra_intents.as_deref(),
        &settings.out_of_scope_examples,
    )?;
    let path = &settings.intent_model;
    let why = if path.is_file() {
        let model = IntentModel::load(path)?;
        if model.is_current(&set) {
            return Ok(model);
        }
        format!(
            "{}{} changed since the intent model {} was trained",
            settings.intents.display(),
            settings
                .extra_intents
                .as_ref()
                .map_or(String::new(), |e| format!(" or {}", e.display())),
            path.display()
        )
    } else {
        format!("there is no intent model at {}", path.display())
    };
    if !settings.retrain_stale {
        return Err(NluError::Intents {
            path: path.display().to_string(),
            message: format!("is stale: {why}; run `frontdesk train`"),
        });
    }
    tracing::warn!("{why}: retraining it now");
    let model = IntentModel::train(&set, encoder, cache, progress_bar("training intents"))?;
    match model.save(path) {
        Ok(()) => tracing::info!(
            accuracy = model.manifest.cross_validation.accuracy,
            out_of_scope_recall = model.manifest.cross_validation.out_of_scope_recall,
            "intent model retrained and saved to {}",
            path.display()
        ),
        Err(e) => {
            tracing::warn!("intent model retrained but not saved ({e}); it is used from memory")
        }
    }
    Ok(model)
}

/// A progress bar on stderr: `training intents [#######.......] 3/7 cross-validating`.
pub fn progress_bar(label: &'static str) -> impl FnMut(usize, usize, &str) {
    move |step, steps, what| {
        let width = 20;
        let filled = step * width / steps.max(1);
        eprint!(
            "\r{label} [{}{}] {step}/{steps} {what:<28}",
            "#".repeat(filled),
            ".".repeat(width - filled)
        );
        if step >= steps {
            eprintln!();
        }
    }
}
