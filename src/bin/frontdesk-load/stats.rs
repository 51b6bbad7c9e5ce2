//! Latency samples → percentiles, and medians over runs.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// A step whose median latency is above this is reported as saturated.
pub const SATURATED_MS: f64 = 1000.0;

/// The latencies of one step: what was offered, what came back, and how fast.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Summary {
    /// Requests sent (scheduled) in the step.
    pub sent: usize,
    /// Answers received in time.
    pub received: usize,
    /// Requests with no answer before the drain deadline (or refused).
    pub lost: usize,
    /// Offered rate, per second.
    pub offered_per_s: f64,
    /// Answers per second over the step (from its start to the last answer).
    pub achieved_per_s: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
}

impl Summary {
    /// Summarises `samples_ms` (latencies of the answers) for `sent` requests offered at
    /// `offered_per_s`, the last answer arriving `elapsed` after the step began.
    pub fn of(
        mut samples_ms: Vec<f64>,
        sent: usize,
        offered_per_s: f64,
        elapsed: Duration,
    ) -> Self {
        samples_ms.sort_by(f64::total_cmp);
        let received = samples_ms.len();
        let secs = elapsed.as_secs_f64().max(1e-9);
        Self {
            sent,
            received,
            lost: sent.saturating_sub(received),
            offered_per_s,
            achieved_per_s: received as f64 / secs,
            p50_ms: percentile(&samples_ms, 0.50),
            p90_ms: percentile(&samples_ms, 0.90),
            p99_ms: percentile(&samples_ms, 0.99),
            max_ms: samples_ms.last().copied().unwrap_or(f64::NAN),
        }
    }

    /// Saturated: the median waits more than a second, or more than 1% got no answer.
    pub fn saturated(&self) -> bool {
        self.p50_ms > SATURATED_MS || self.lost * 100 > self.sent
    }

    /// Field by field, the median of several runs' summaries.
    pub fn median_of(runs: &[Summary]) -> Summary {
        let m = |f: fn(&Summary) -> f64| median(runs.iter().map(f).collect());
        Summary {
            sent: m(|s| s.sent as f64) as usize,
            received: m(|s| s.received as f64) as usize,
            lost: m(|s| s.lost as f64) as usize,
            offered_per_s: m(|s| s.offered_per_s),
            achieved_per_s: m(|s| s.achieved_per_s),
            p50_ms: m(|s| s.p50_ms),
            p90_ms: m(|s| s.p90_ms),
            p99_ms: m(|s| s.p99_ms),
            max_ms: m(|s| s.max_ms),
        }
    }
}

/// Nearest-rank percentile of sorted samples; NaN when there are none.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median (the mean of the middle two for an even count); NaN when empty.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| !v.is_nan());
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

/// Collects latency samples from many tasks.
#[derive(Default)]
pub struct Recorder {
    samples: Mutex<Vec<f64>>,
    last: Mutex<Option<Instant>>,
}

impl Recorder {
    /// Records one answer that arrived now for a request planned at `scheduled`.
    pub fn record(&self, scheduled: Instant) {
        let now = Instant::now();
        let ms = now.saturating_duration_since(scheduled).as_secs_f64() * 1000.0;
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(ms);
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
    }

    /// Records a latency measured elsewhere.
    pub fn record_ms(&self, ms: f64) {
        self.samples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(ms);
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    /// Answers so far.
    pub fn count(&self) -> usize {
        self.samples.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Takes the samples and the time of the last one, leaving the recorder empty.
    pub fn take(&self) -> (Vec<f64>, Option<Instant>) {
        let samples = std::mem::take(&mut *self.samples.lock().unwrap_or_else(|e| e.into_inner()));
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner()).take();
        (samples, last)
    }

    /// The summary of what was recorded since `start`, for `sent` requests at `offered_per_s`.
    pub fn summary(
        &self,
        start: Instant,
        sent: usize,
        offered_per_s: f64,
        planned: Duration,
    ) -> Summary {
        let (samples, last) = self.take();
        let elapsed = last.map_or(planned, |l| l.duration_since(start).max(planned));
        Summary::of(samples, sent, offered_per_s, elapsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&samples, 0.5), 50.0);
        assert_eq!(percentile(&samples, 0.99), 99.0);
        assert_eq!(percentile(&samples, 1.0), 100.0);
        assert_eq!(percentile(&[7.0], 0.99), 7.0);
        assert!(percentile(&[], 0.5).is_nan());
    }

    #[test]
    fn summary_counts_lost_and_rates() {
        let s = Summary::of(vec![3.0, 1.0, 2.0], 4, 10.0, Duration::from_secs(2));
        assert_eq!((s.sent, s.received, s.lost), (4, 3, 1));
        assert_eq!(s.achieved_per_s, 1.5);
        assert_eq!((s.p50_ms, s.max_ms), (2.0, 3.0));
        assert!(s.saturated(), "a quarter lost is saturated");
    }

    #[test]
    fn medians_over_runs_are_field_by_field() {
        let run = |p99| Summary {
            p99_ms: p99,
            sent: 10,
            ..Default::default()
        };
        let m = Summary::median_of(&[run(5.0), run(1.0), run(3.0)]);
        assert_eq!(m.p99_ms, 3.0);
        assert_eq!(m.sent, 10);
        assert_eq!(median(vec![1.0, 2.0, 3.0, 10.0]), 2.5);
    }
}
