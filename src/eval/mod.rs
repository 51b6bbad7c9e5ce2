//! `frontdesk eval`: answer quality measured on public benchmark data (see `docs/EVALUATION.md`).
//! Anything tuned is tuned on a development split and reported on a split it never saw.

mod answering;
mod classify;
pub mod data;
mod play;
mod questions;
mod score;
mod stackfaq;
mod support;

pub use classify::{
    banking77, clinc150, demo_intents, goemotions, goemotions_tuned, DemoIntentReport,
    IntentReport, OosReport, TunedUpsetReport, UpsetReport,
};

pub use answering::{
    demo_answers, dump_features, AnswerScores, AnsweringReport, DemoAnswersReport, DumpReport,
};
pub use play::{Did, Stage};
pub use questions::{Conversation, Expect, Holder, Question, QuestionSet, Turn};
pub use score::{
    run as play_questions, table as question_table, AnswerTally, ConversationTally, RefuseTally,
    SetReport,
};
pub use stackfaq::{stackfaq, RetrievalScores, StackFaqReport};
pub use support::{
    broad_calm, support_set, train_signals, tuned_bars, SignalData, SignalTraining, SupportReport,
    TunedBars, MAX_FALSE_ALARMS,
};

/// Rank metrics of one retrieval method over a set of queries.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct RankMetrics {
    /// Queries whose right article came first.
    pub recall_at_1: f64,
    /// Queries whose right article was in the first five.
    pub recall_at_5: f64,
    /// Mean reciprocal rank of the right article, counting only the first ten.
    pub mrr_at_10: f64,
    /// Number of queries.
    pub queries: usize,
}

impl RankMetrics {
    /// Metrics from the 1-based rank of the right answer for each query (None: not found).
    pub fn from_ranks(ranks: &[Option<usize>]) -> Self {
        let n = ranks.len().max(1) as f64;
        let within = |k| ranks.iter().filter(|r| r.is_some_and(|r| r <= k)).count() as f64 / n;
        let mrr = ranks
            .iter()
            .map(|r| r.filter(|&r| r <= 10).map_or(0.0, |r| 1.0 / r as f64))
            .sum::<f64>()
            / n;
        Self {
            recall_at_1: within(1),
            recall_at_5: within(5),
            mrr_at_10: mrr,
            queries: ranks.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RankMetrics;

    #[test]
    fn rank_metrics_count_what_they_say() {
        let m = RankMetrics::from_ranks(&[Some(1), Some(3), None, Some(11)]);
        assert_eq!(m.recall_at_1, 0.25);
        assert_eq!(m.recall_at_5, 0.5);
        assert!((m.mrr_at_10 - (1.0 + 1.0 / 3.0) / 4.0).abs() < 1e-9);
    }
}
