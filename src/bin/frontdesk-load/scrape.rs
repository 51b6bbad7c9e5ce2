//! The server's own figures, read from its `/metrics` (Prometheus text) before and after a step,
//! so a report shows what the server measured next to what the clients saw: how long a turn
//! spent inside the server and in the encoder, how the encoder batched, how long stores took.

use std::collections::BTreeMap;
use std::future::Future;

use serde::Serialize;

use crate::server::Server;

/// Runs `step` between two scrapes of the server's `/metrics`; the figures are `None` (with a
/// warning) when a scrape failed.
pub async fn around<F: Future>(server: &Server, step: F) -> (F::Output, Option<ServerFigures>) {
    let before = server.scrape().await;
    let out = step.await;
    let after = server.scrape().await;
    match (before, after) {
        (Ok(b), Ok(a)) => (out, Some(ServerFigures::between(&b, &a))),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("  could not read the server's /metrics: {e:#}");
            (out, None)
        }
    }
}

/// The server's figures for each step (by its label), one per run.
#[derive(Debug, Default, Serialize)]
pub struct ServerSide(BTreeMap<String, Vec<ServerFigures>>);

impl ServerSide {
    /// Adds one run's figures for `step` and prints them.
    pub fn add(&mut self, step: String, figures: Option<ServerFigures>) {
        if let Some(f) = figures {
            eprintln!("    {}", f.line());
            self.0.entry(step).or_default().push(f);
        }
    }

    /// As JSON for the report (`null` when nothing was read).
    pub fn to_json(&self) -> serde_json::Value {
        if self.0.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::to_value(&self.0).unwrap_or_default()
        }
    }

    /// Prints each step's figures, run by run, under the clients' table.
    pub fn print(&self) {
        if self.0.is_empty() {
            return;
        }
        println!("what the server measured (its /metrics, the difference over each step):");
        for (step, runs) in &self.0 {
            for f in runs {
                println!("  {step}: {}", f.line());
            }
        }
    }
}

/// One scrape: every sample by its rendered name and labels (`name{label="v"}`).
#[derive(Debug, Clone, Default)]
pub struct Scrape(BTreeMap<String, f64>);

impl Scrape {
    /// Parses Prometheus' text format (comments skipped, unparsable lines ignored).
    pub fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .filter_map(|l| {
                let (key, value) = l.rsplit_once(' ')?;
                Some((key.to_owned(), value.trim().parse().ok()?))
            })
            .collect();
        Self(samples)
    }

    /// Store appends the server has made (duplicates of re-sent messages included): unchanged
    /// between two scrapes, the server stored nothing meanwhile.
    pub fn appends(&self) -> f64 {
        self.get("frontdesk_store_seconds_count{op=\"append\"}")
    }

    fn get(&self, key: &str) -> f64 {
        self.0.get(key).copied().unwrap_or(0.0)
    }

    /// The sum over every labelled sample of `name`.
    fn total(&self, name: &str) -> f64 {
        let prefix = format!("{name}{{");
        self.0
            .iter()
            .filter(|(k, _)| k.as_str() == name || k.starts_with(&prefix))
            .map(|(_, v)| v)
            .sum()
    }

    /// `name`'s histogram buckets with `labels` (e.g. `op="append",`): (upper bound, count).
    fn buckets(&self, name: &str, labels: &str) -> Vec<(f64, f64)> {
        let prefix = format!("{name}_bucket{{{labels}le=\"");
        let mut b: Vec<(f64, f64)> = self
            .0
            .iter()
            .filter_map(|(k, v)| {
                let bound = k.strip_prefix(&prefix)?.strip_suffix("\"}")?;
                let bound = if bound == "+Inf" {
                    f64::INFINITY
                } else {
                    bound.parse().ok()?
                };
                Some((bound, *v))
            })
            .collect();
        b.sort_by(|x, y| x.0.total_cmp(&y.0));
        b
    }
}

/// What the server measured over one step (the difference of two scrapes).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerFigures {
    /// Customer turns finished.
    pub turns: f64,
    /// A turn inside the server: stored question → answer sent (ms, from histogram buckets).
    pub turn_p50_ms: Option<f64>,
    /// Same, 99th percentile.
    pub turn_p99_ms: Option<f64>,
    /// Of a turn, the understanding seam (waiting for the encoder and encoding), p50 ms.
    pub understand_p50_ms: Option<f64>,
    /// Same, 99th percentile.
    pub understand_p99_ms: Option<f64>,
    /// Of a turn, each step's 99th percentile (ms), in the turn's order: where a slow turn's
    /// time went.
    pub phase_p99_ms: Vec<(&'static str, Option<f64>)>,
    /// Encoder batches run.
    pub encoder_batches: f64,
    /// Texts per batch, on average.
    pub encoder_mean_batch: Option<f64>,
    /// Messages stored and relayed (every sender).
    pub messages: f64,
    /// A message's store append, p99 ms.
    pub store_append_p99_ms: Option<f64>,
    /// Escalations (every reason).
    pub escalations: f64,
    /// Transactions the SQLite writer committed (group commit): each a sync of the log.
    pub commits: f64,
    /// Appends per commit that held any, on average.
    pub commit_mean_batch: Option<f64>,
    /// Appends per commit, 99th percentile (from the histogram's buckets).
    pub commit_batch_p99: Option<f64>,
    /// Batches the SQLite writer stored one append at a time (a refused or broken append in
    /// them made storing them together fail).
    pub batches_one_at_a_time: f64,
    /// Passes of the SQLite checkpointer that found something to copy.
    pub checkpoints: f64,
    /// Checkpoints the writer made itself between two transactions (the log past its limit),
    /// each holding every append behind it.
    pub checkpoint_catch_ups: f64,
    /// The longest of those catch-ups, as the upper bound of its histogram bucket (ms): "at most
    /// this long". Infinite (`null` in JSON) when it took longer than the last finite bound.
    pub catch_up_longest_ms: Option<f64>,
    /// A checkpointer pass, p99 ms.
    pub checkpoint_p99_ms: Option<f64>,
    /// The checkpointer's backstop passes (`RESTART`: the log had stayed past its limit for 20
    /// passes), each holding the writer until the log starts over.
    pub checkpoint_restarts: f64,
    /// The longest of those, as the upper bound of its histogram bucket (ms), like
    /// [`Self::catch_up_longest_ms`].
    pub restart_longest_ms: Option<f64>,
    /// Times SQLite's write-ahead log started over (or was emptied), as the checkpointer's
    /// passes saw it: a log that grows past its limit without starting over is the writer's
    /// catch-ups failing.
    pub wal_restarts: f64,
}

impl ServerFigures {
    /// The figures between `before` and `after`.
    pub fn between(before: &Scrape, after: &Scrape) -> Self {
        let d = |key: &str| after.get(key) - before.get(key);
        let total = |name: &str| after.total(name) - before.total(name);
        let q = |name: &str, labels: &str, q: f64| {
            quantile(
                &before.buckets(name, labels),
                &after.buckets(name, labels),
                q,
            )
            .map(|s| s * 1000.0)
        };
        // Every transaction, rows alone included, where the server counts them (since
        // 5 December); before, the transactions that held appends.
        let commits = if after.0.contains_key("frontdesk_store_commits_total") {
            d("frontdesk_store_commits_total")
        } else {
            d("frontdesk_store_commit_batch_size_count")
        };
        let append_commits = d("frontdesk_store_commit_batch_size_count");
        let committed = d("frontdesk_store_commit_batch_size_sum");
        let batch_p99 = quantile(
            &before.buckets("frontdesk_store_commit_batch_size", ""),
            &after.buckets("frontdesk_store_commit_batch_size", ""),
            0.99,
        );
        let batches = d("frontdesk_encoder_batch_size_count");
        let texts = d("frontdesk_encoder_batch_size_sum");
        Self {
            turns: d("frontdesk_turn_seconds_count"),
            turn_p50_ms: q("frontdesk_turn_seconds", "", 0.5),
            turn_p99_ms: q("frontdesk_turn_seconds", "", 0.99),
            understand_p50_ms: q("frontdesk_understand_seconds", "", 0.5),
            understand_p99_ms: q("frontdesk_understand_seconds", "", 0.99),
            phase_p99_ms: PHASES
                .iter()
                .map(|p| {
                    let labels = format!("phase=\"{p}\",");
                    (*p, q("frontdesk_turn_phase_seconds", &labels, 0.99))
                })
                .collect(),
            encoder_batches: batches,
            encoder_mean_batch: (batches > 0.0).then(|| texts / batches),
            messages: total("frontdesk_messages_total"),
            store_append_p99_ms: q("frontdesk_store_seconds", "op=\"append\",", 0.99),
            escalations: total("frontdesk_escalations_total"),
            commits,
            commit_mean_batch: (append_commits > 0.0).then(|| committed / append_commits),
            commit_batch_p99: batch_p99,
            batches_one_at_a_time: d("frontdesk_store_batches_one_at_a_time_total"),
            checkpoints: d("frontdesk_store_checkpoints_total"),
            checkpoint_catch_ups: d("frontdesk_store_checkpoint_catch_ups_total"),
            catch_up_longest_ms: longest_bound(
                &before.buckets("frontdesk_store_checkpoint_seconds", "by=\"writer\","),
                &after.buckets("frontdesk_store_checkpoint_seconds", "by=\"writer\","),
            )
            .map(|s| s * 1000.0),
            checkpoint_p99_ms: q(
                "frontdesk_store_checkpoint_seconds",
                "by=\"checkpointer\",",
                0.99,
            ),
            checkpoint_restarts: d("frontdesk_store_checkpoint_seconds_count{by=\"restart\"}"),
            restart_longest_ms: longest_bound(
                &before.buckets("frontdesk_store_checkpoint_seconds", "by=\"restart\","),
                &after.buckets("frontdesk_store_checkpoint_seconds", "by=\"restart\","),
            )
            .map(|s| s * 1000.0),
            wal_restarts: d("frontdesk_store_wal_restarts_total"),
        }
    }

    /// One line for the console.
    pub fn line(&self) -> String {
        let ms = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.1}"));
        let phases: Vec<String> = self
            .phase_p99_ms
            .iter()
            .filter_map(|(p, v)| v.map(|v| format!("{p} {v:.1}")))
            .collect();
        format!(
            "server: {} turns (p50 {} / p99 {} ms; understanding p50 {} / p99 {} ms; p99 of each step, ms: {}), {} encoder batches of {} on average, {} messages (store append p99 {} ms; {} commits, {} appends in one on average (p99 {}); {} batches stored one at a time; {} checkpoints, p99 {} ms; {} catch-ups by the writer, the longest {}; {} restarts by the checkpointer, the longest {}; the log started over {} times), {} escalations",
            self.turns,
            ms(self.turn_p50_ms),
            ms(self.turn_p99_ms),
            ms(self.understand_p50_ms),
            ms(self.understand_p99_ms),
            if phases.is_empty() {
                "–".into()
            } else {
                phases.join(", ")
            },
            self.encoder_batches,
            self.encoder_mean_batch.map_or("–".into(), |v| format!("{v:.1}")),
            self.messages,
            ms(self.store_append_p99_ms),
            self.commits,
            ms(self.commit_mean_batch),
            ms(self.commit_batch_p99),
            self.batches_one_at_a_time,
            self.checkpoints,
            ms(self.checkpoint_p99_ms),
            self.checkpoint_catch_ups,
            longest(self.catch_up_longest_ms),
            self.checkpoint_restarts,
            longest(self.restart_longest_ms),
            self.wal_restarts,
            self.escalations,
        )
    }
}

/// A longest checkpoint for the console: "≤ 25 ms", or past the last bound.
fn longest(bound_ms: Option<f64>) -> String {
    bound_ms.map_or("–".into(), |v| {
        if v.is_finite() {
            format!("≤ {v} ms")
        } else {
            "past the histogram's last bound".into()
        }
    })
}

/// A turn's steps as the server labels them (`frontdesk_turn_phase_seconds`), in order.
const PHASES: [&str; 7] = [
    "slot",
    "understand",
    "signals",
    "history",
    "answer",
    "hand_over",
    "reply",
];

/// The `q` quantile of what was observed between two scrapes of one histogram, interpolated
/// linearly within its bucket (as Prometheus' `histogram_quantile` does); `None` if nothing was.
fn quantile(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> Option<f64> {
    let counts = between(before, after);
    let total = counts.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower = (0.0, 0.0);
    for &(bound, cumulative) in &counts {
        if cumulative >= rank {
            if bound.is_infinite() {
                return Some(lower.0);
            }
            let within = (rank - lower.1) / (cumulative - lower.1).max(f64::MIN_POSITIVE);
            return Some(lower.0 + (bound - lower.0) * within.clamp(0.0, 1.0));
        }
        lower = (bound, cumulative);
    }
    None
}

/// The upper bound of the highest bucket that gained observations between two scrapes of one
/// histogram (infinite for the `+Inf` bucket): the longest of them took at most this long.
fn longest_bound(before: &[(f64, f64)], after: &[(f64, f64)]) -> Option<f64> {
    let mut below = 0.0;
    let mut longest = None;
    for (bound, cumulative) in between(before, after) {
        if cumulative > below {
            longest = Some(bound);
        }
        below = cumulative;
    }
    longest
}

/// A histogram's cumulative bucket counts (bound, observations at or under it) of what was
/// observed between two scrapes.
fn between(before: &[(f64, f64)], after: &[(f64, f64)]) -> Vec<(f64, f64)> {
    after
        .iter()
        .map(|(bound, n)| {
            let was = before
                .iter()
                .find(|(b, _)| b == bound)
                .map_or(0.0, |(_, n)| *n);
            (*bound, n - was)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "# TYPE frontdesk_turn_seconds histogram\n\
        frontdesk_turn_seconds_bucket{le=\"0.01\"} 10\n\
        frontdesk_turn_seconds_bucket{le=\"0.1\"} 10\n\
        frontdesk_turn_seconds_bucket{le=\"+Inf\"} 10\n\
        frontdesk_turn_seconds_count 10\n\
        frontdesk_messages_total{from=\"bot\"} 4\n\
        frontdesk_store_commit_batch_size_bucket{le=\"1\"} 5\n\
        frontdesk_store_commit_batch_size_bucket{le=\"64\"} 5\n\
        frontdesk_store_commit_batch_size_bucket{le=\"+Inf\"} 5\n\
        frontdesk_store_commit_batch_size_sum 5\n\
        frontdesk_store_commit_batch_size_count 5\n\
        frontdesk_store_checkpoints_total 7\n\
        frontdesk_store_checkpoint_catch_ups_total 1\n\
        frontdesk_store_wal_restarts_total 4\n\
        frontdesk_store_checkpoint_seconds_bucket{by=\"writer\",le=\"0.01\"} 0\n\
        frontdesk_store_checkpoint_seconds_bucket{by=\"writer\",le=\"0.025\"} 1\n\
        frontdesk_store_checkpoint_seconds_bucket{by=\"writer\",le=\"1\"} 1\n\
        frontdesk_store_checkpoint_seconds_bucket{by=\"writer\",le=\"+Inf\"} 1\n";
    const AFTER: &str = "frontdesk_turn_seconds_bucket{le=\"0.01\"} 10\n\
        frontdesk_turn_seconds_bucket{le=\"0.1\"} 110\n\
        frontdesk_turn_seconds_bucket{le=\"+Inf\"} 110\n\
        frontdesk_turn_seconds_count 110\n\
        frontdesk_messages_total{from=\"bot\"} 104\n\
        frontdesk_messages_total{from=\"customer\"} 100\n\
        frontdesk_store_commit_batch_size_bucket{le=\"1\"} 5\n\
        frontdesk_store_commit_batch_size_bucket{le=\"64\"} 15\n\
        frontdesk_store_commit_batch_size_bucket{le=\"+Inf\"} 15\n\
        frontdesk_store_commit_batch_size_sum 205\n\
        frontdesk_store_commit_batch_size_count 15\n\
        frontdesk_store_checkpoints_total 17\n\
        frontdesk_store_checkpoint_catch_ups_total 3\n\
        frontdesk_store_wal_restarts_total 5\n\
        frontdesk_store_checkpoint_seconds_bucket{by=\"writer\",le=\"0.01\"} 2\n\
        frontdesk_store_checkpoint_seconds_bucket{by=\"writer\",le=\"0.025\"} 3\n\
        frontdesk_store_checkpoint_seconds_bucket{by=\"writer\",le=\"1\"} 3\n\
        frontdesk_store_checkpoint_seconds_bucket{by=\"writer\",le=\"+Inf\"} 3\n\
        frontdesk_store_checkpoint_seconds_bucket{by=\"restart\",le=\"0.1\"} 0\n\
        frontdesk_store_checkpoint_seconds_bucket{by=\"restart\",le=\"0.25\"} 1\n\
        frontdesk_store_checkpoint_seconds_bucket{by=\"restart\",le=\"1\"} 1\n\
        frontdesk_store_checkpoint_seconds_bucket{by=\"restart\",le=\"+Inf\"} 1\n\
        frontdesk_store_checkpoint_seconds_count{by=\"restart\"} 1\n";

    #[test]
    fn figures_are_the_step_s_own() {
        let f = ServerFigures::between(&Scrape::parse(BEFORE), &Scrape::parse(AFTER));
        assert_eq!(f.turns, 100.0);
        assert_eq!(f.messages, 200.0);
        // All 100 new turns fell between 10 and 100 ms: the median is halfway.
        let p50 = f.turn_p50_ms.unwrap();
        assert!((p50 - 55.0).abs() < 1e-6, "{p50}");
        assert_eq!(f.understand_p50_ms, None);
        // 10 commits of 200 appends in the step: 20 on average, all between 1 and 64.
        assert_eq!(f.commits, 10.0);
        assert_eq!(f.commit_mean_batch, Some(20.0));
        assert!(f.commit_batch_p99.is_some_and(|p| p > 1.0 && p <= 64.0));
        // 10 passes and 2 catch-ups in the step, both under 10 ms (the one of 10–25 ms was
        // before it); no checkpointer pass was timed.
        assert_eq!(f.checkpoints, 10.0);
        assert_eq!(f.checkpoint_catch_ups, 2.0);
        assert_eq!(f.catch_up_longest_ms, Some(10.0));
        assert_eq!(f.wal_restarts, 1.0, "the step's own start over");
        // One backstop pass in the step (none before it), of 100–250 ms.
        assert_eq!(f.checkpoint_restarts, 1.0);
        assert_eq!(f.restart_longest_ms, Some(250.0));
        assert_eq!(f.checkpoint_p99_ms, None);
    }

    #[test]
    fn the_longest_is_the_highest_bucket_that_gained() {
        let before = [(0.01, 0.0), (0.025, 1.0), (1.0, 1.0), (f64::INFINITY, 1.0)];
        let after = [(0.01, 0.0), (0.025, 1.0), (1.0, 2.0), (f64::INFINITY, 3.0)];
        assert_eq!(longest_bound(&before, &after), Some(f64::INFINITY));
        let after = [(0.01, 0.0), (0.025, 1.0), (1.0, 2.0), (f64::INFINITY, 2.0)];
        assert_eq!(longest_bound(&before, &after), Some(1.0));
        assert_eq!(longest_bound(&before, &before), None);
    }
}
