//! The open-loop schedule: request `n` is planned at `start + n / rate` and handed to its
//! connection at that time whatever the server is doing; latency is counted from the planned time.
//! A plain thread keeps the time (sleeping to each planned instant), so a busy async runtime
//! delays the requests' sending, which is measured, but never their planning.

use std::time::{Duration, Instant};

/// One step of a sweep: `rate` requests a second for `duration`.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// Requests per second.
    pub rate: f64,
    /// How long requests are started.
    pub duration: Duration,
}

impl Step {
    /// How many requests the step plans.
    pub fn count(&self) -> u64 {
        (self.rate * self.duration.as_secs_f64()).round() as u64
    }

    /// When request `n` is planned, for a step that starts at `start`.
    pub fn planned(&self, start: Instant, n: u64) -> Instant {
        start + Duration::from_secs_f64(n as f64 / self.rate)
    }
}

/// The steps of a sweep over `rates`: first `warmup` seconds at the lowest rate, not reported
/// (`false`), then `seconds` at each rate in order (`true`), as (reported, rate, seconds).
pub fn warmup_then(rates: &[f64], seconds: f64, warmup: f64) -> Vec<(bool, f64, f64)> {
    let lowest = rates.iter().copied().fold(f64::INFINITY, f64::min);
    let mut steps = vec![(false, lowest, warmup)];
    steps.extend(rates.iter().map(|r| (true, *r, seconds)));
    steps
}

/// A start time a moment from now, for [`run`] (so receivers can know it before the first send).
pub fn start_soon() -> Instant {
    Instant::now() + Duration::from_millis(20)
}

/// Runs `step` from `start`: calls `fire(n, planned)` for each request at its planned time, on its
/// own thread. Returns the number of requests fired.
pub async fn run<F>(step: Step, start: Instant, mut fire: F) -> u64
where
    F: FnMut(u64, Instant) + Send + 'static,
{
    let (done, fired) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let count = step.count();
        for n in 0..count {
            let planned = step.planned(start, n);
            let now = Instant::now();
            if planned > now {
                std::thread::sleep(planned - now);
            }
            fire(n, planned);
        }
        let _ = done.send(count);
    });
    fired.await.unwrap_or(0)
}

/// Parses one rate of `--rates 200,1000`: a positive number per second.
pub fn positive_rate(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|r| r.is_finite() && *r > 0.0)
        .ok_or_else(|| format!("{s:?} is not a positive rate per second"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fires_each_request_at_its_planned_time() {
        let step = Step {
            rate: 200.0,
            duration: Duration::from_millis(100),
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let start = start_soon();
        let fired = run(step, start, move |n, planned| {
            tx.send((n, planned, Instant::now())).unwrap();
        })
        .await;
        let got: Vec<_> = rx.try_iter().collect();
        assert_eq!(fired, 20);
        assert_eq!(got.len(), 20);
        for (n, planned, at) in got {
            assert_eq!(planned, step.planned(start, n));
            // No bound on lateness: that is the machine's load, not the schedule's logic.
            assert!(at >= planned, "never early");
        }
    }

    #[test]
    fn rates_parse_and_refuse_nonsense() {
        assert_eq!(positive_rate(" 200"), Ok(200.0));
        assert!(positive_rate("fast").is_err());
        assert!(positive_rate("0").is_err());
        assert!(positive_rate("inf").is_err());
    }
}
