//! How high a passage scores for a question this knowledge base does *not* answer, measured on the
//! base itself: every article's title and headings are questions its editors wrote, and asking
//! each one with its own article held out shows how well the *other* articles match a question
//! they do not answer. A raw cosine similarity means different things on different bases (a narrow
//! shop's articles all resemble each other; a broad help centre's do not); its percentile among
//! these held-out scores means the same everywhere, so the bot's thresholds carry over from one
//! base to another without hand-tuning.

use crate::nlu::{cosine, Embedding};

/// Most self-questions asked (spread evenly over the base): enough for stable percentiles, few
/// enough that recalibrating a large base after an edit stays well under a second.
const MAX_QUESTIONS: usize = 600;

/// The held-out scores of one knowledge base.
#[derive(Debug, Clone, Default)]
pub struct Calibration {
    /// The best similarity of another article to each self-question, sorted ascending.
    held_out: Vec<f32>,
}

/// One article's vectors, as the search scores them.
pub(crate) struct ArticleVectors<'a> {
    /// The title alone (section 0 also scores by it).
    pub title: &'a [f32],
    /// Each section's embedding.
    pub sections: &'a [Embedding],
    /// Self-questions: the title and each heading, alone.
    pub questions: Vec<&'a [f32]>,
}

impl Calibration {
    /// Asks every article's self-questions of the other articles.
    pub(crate) fn measure(articles: &[ArticleVectors<'_>]) -> Self {
        let total: usize = articles.iter().map(|a| a.questions.len()).sum();
        let stride = total.div_ceil(MAX_QUESTIONS).max(1);
        let mut held_out = Vec::with_capacity(total / stride + 1);
        let mut n = 0usize;
        for (i, article) in articles.iter().enumerate() {
            for question in &article.questions {
                n += 1;
                if !n.is_multiple_of(stride) {
                    continue;
                }
                let best = articles
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, other)| score(question, other))
                    .fold(f32::NEG_INFINITY, f32::max);
                if best.is_finite() {
                    held_out.push(best);
                }
            }
        }
        held_out.sort_by(f32::total_cmp);
        Self { held_out }
    }

    /// The share of held-out self-questions that `similarity` beats (0–1): the bot's confidence
    /// that a passage scoring `similarity` was not found by a question the base does not answer.
    /// A base too small to measure (fewer than two articles) compares with the raw similarity.
    pub fn confidence(&self, similarity: f32) -> f32 {
        if self.held_out.len() < 2 {
            return similarity.clamp(0.0, 1.0);
        }
        let below = self.held_out.partition_point(|&s| s < similarity);
        below as f32 / self.held_out.len() as f32
    }

    /// The similarity at a given confidence (the inverse of [`Calibration::confidence`]), for
    /// explanations.
    pub fn similarity_at(&self, confidence: f32) -> f32 {
        if self.held_out.len() < 2 {
            return confidence;
        }
        let i = ((confidence.clamp(0.0, 1.0) * self.held_out.len() as f32) as usize)
            .min(self.held_out.len() - 1);
        self.held_out[i]
    }

    /// Self-questions measured.
    pub fn questions(&self) -> usize {
        self.held_out.len()
    }
}

/// How the search scores an article for a question: its best section, the first section also by
/// the title.
fn score(question: &[f32], article: &ArticleVectors<'_>) -> f32 {
    let title = cosine(question, article.title);
    article
        .sections
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let own = cosine(question, e);
            if i == 0 {
                own.max(title)
            } else {
                own
            }
        })
        .fold(title, f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn confidence_is_the_share_of_held_out_questions_beaten() {
        // Two unrelated articles and two close ones: the close ones answer each other's questions
        // well, so the held-out scores are spread and a middling similarity is not confident.
        let sections: Vec<Vec<Embedding>> = [
            [1.0, 0.0, 0.0],
            [0.0, 1.0, 0.0],
            [0.0, 0.9, 0.1],
            [0.0, 0.0, 1.0],
        ]
        .iter()
        .map(|v| vec![Embedding::from(unit(v))])
        .collect();
        let articles: Vec<ArticleVectors> = sections
            .iter()
            .map(|s| ArticleVectors {
                title: &s[0],
                sections: s,
                questions: vec![&s[0]],
            })
            .collect();
        let cal = Calibration::measure(&articles);
        assert_eq!(cal.questions(), 4);
        assert_eq!(cal.confidence(1.0), 1.0);
        assert_eq!(cal.confidence(-1.0), 0.0);
        // b and c are each other's best held-out match (~0.99); a and d find nothing (≤ 0.11).
        assert_eq!(cal.confidence(0.5), 0.5);
        assert!(cal.similarity_at(0.75) > 0.9);
        assert_eq!(Calibration::default().confidence(0.7), 0.7);
    }
}
