//! SQLite's WAL checkpoints off the writers' path. By default SQLite copies the write-ahead log
//! back into the database file inside the commit that grows it past 1,000 pages, so every few
//! hundred milliseconds under load one group of appends waited for that copy and its fsync: at
//! 5,000 relayed messages a second it was half of the relay's p99 (measured in
//! docs/BENCHMARKS.md). Here every connection has automatic checkpoints off
//! (`wal_autocheckpoint = 0`, set in `connect.rs`), and a task of its own with a connection of its
//! own checkpoints in `PASSIVE` mode every [`EVERY`] after the writer has committed (every
//! [`IDLE_EVERY`] otherwise, for what the pool's connections wrote): it copies what it can
//! without taking any lock a writer waits for, so commits go on meanwhile.
//!
//! A passive pass copies the log as far as it was when the pass began, and SQLite starts the log
//! over only when a transaction begins with all of it copied. The writer commits hundreds of
//! times a second, so under writes without a pause that never happens by itself, and the log
//! would grow without end (measured: 1.9 GB in 25 s at 5,000 messages a second). When a pass
//! finds more than [`MOST_PAGES`] pages, it raises a flag the writer reads between two
//! transactions: the writer then copies the few pages committed since the pass itself (and syncs:
//! about 10 ms measured) and its next transaction starts the log over. A `RESTART` checkpoint from
//! this connection would do the same but waits for the write lock in SQLite's busy handler, which
//! sleeps: measured 25 ms to 1.4 s. A log that large also costs a restart after a crash: SQLite
//! reads it through once when it opens the store.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Row};
use tokio::sync::mpsc::WeakSender;

use super::StoreError;

/// How often the log is checkpointed while the writer commits. Measured at 5,000 appends a second
/// (docs/BENCHMARKS.md): 100 ms and 50 ms gave the same tails, 250 ms longer ones (more to copy
/// and sync at once).
pub(super) const EVERY: Duration = Duration::from_millis(100);

/// How often the log is checkpointed when the writer has committed nothing since the last pass.
pub(super) const IDLE_EVERY: Duration = Duration::from_secs(1);

/// What the writer and the checkpointer tell each other.
#[derive(Debug, Default)]
pub(super) struct Flags {
    /// The writer committed since the checkpointer last looked.
    pub(super) written: AtomicBool,
    /// The log has grown past its limit: the writer should [`catch_up`] before its next
    /// transaction.
    pub(super) start_over: AtomicBool,
}

/// Pages in the log beyond which the writer is asked to let it start over (65,536 pages of
/// 4 KiB: 256 MiB, reached only under thousands of appends a second: a pass at a lighter load
/// catches up between two commits, and the log starts over by itself). Each catch-up held the
/// writer about 10 ms; at 5,000 appends a second 8,192 pages (a catch-up every half second)
/// gave longer tails.
pub(super) const MOST_PAGES: i64 = 65536;

/// What the checkpoints did, for `/metrics`.
#[derive(Clone)]
pub(super) struct Checkpoints {
    /// Passes that found something written since the last one.
    pub(super) passes: IntCounter,
    /// Catch-ups the writer made so the log could start over (it had grown past [`MOST_PAGES`]).
    pub(super) restarts: IntCounter,
    /// Pages in the log after the last pass.
    pub(super) log_pages: IntGauge,
    /// How long a pass took.
    pub(super) seconds: Histogram,
}

impl Default for Checkpoints {
    fn default() -> Self {
        let seconds = HistogramOpts::new(
            "frontdesk_store_checkpoint_seconds",
            "How long one checkpoint of SQLite's write-ahead log took (off the writers' path)",
        )
        .buckets(vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
        ]);
        Self {
            passes: IntCounter::new(
                "frontdesk_store_checkpoints_total",
                "Checkpoints of SQLite's write-ahead log into the database, off the writers' path",
            )
            .expect("a valid counter"),
            restarts: IntCounter::new(
                "frontdesk_store_checkpoint_restarts_total",
                "Checkpoints the writer made between two transactions so that SQLite's \
                 write-ahead log could start over (it had grown under writes without a pause)",
            )
            .expect("a valid counter"),
            log_pages: IntGauge::new(
                "frontdesk_store_wal_pages",
                "Pages in SQLite's write-ahead log after the last checkpoint",
            )
            .expect("a valid gauge"),
            seconds: Histogram::with_opts(seconds).expect("a valid histogram"),
        }
    }
}

impl Checkpoints {
    /// The collectors, for the server's registry.
    pub(super) fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.passes.clone()),
            Box::new(self.restarts.clone()),
            Box::new(self.log_pages.clone()),
            Box::new(self.seconds.clone()),
        ]
    }
}

/// Opens the checkpointer's connection and starts its task on the current runtime; the task
/// stops once `alive` can no longer be upgraded (the store's last handle is gone).
/// `flags.start_over` is raised when the log has grown past `most_pages` ([`MOST_PAGES`] but in
/// tests).
pub(super) async fn start<T: Send + 'static>(
    options: &SqliteConnectOptions,
    alive: WeakSender<T>,
    flags: Arc<Flags>,
    most_pages: i64,
) -> Result<Checkpoints, StoreError> {
    let connection = options.connect().await?;
    let checkpoints = Checkpoints::default();
    tokio::spawn(run(
        connection,
        alive,
        checkpoints.clone(),
        flags,
        most_pages,
    ));
    Ok(checkpoints)
}

async fn run<T>(
    mut connection: SqliteConnection,
    alive: WeakSender<T>,
    counts: Checkpoints,
    flags: Arc<Flags>,
    most_pages: i64,
) {
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = None;
    let mut passed = Instant::now();
    loop {
        ticks.tick().await;
        if alive.upgrade().is_none() {
            return;
        }
        if !flags.written.swap(false, Ordering::Relaxed) && passed.elapsed() < IDLE_EVERY {
            continue;
        }
        passed = Instant::now();
        match pass(&mut connection).await {
            Ok(found) if last != Some(found) => {
                last = Some(found);
                counts.passes.inc();
                counts.seconds.observe(found.took.as_secs_f64());
                counts.log_pages.set(found.log.max(0));
                if found.log > most_pages {
                    flags.start_over.store(true, Ordering::Relaxed);
                }
            }
            // Idle: the log was copied already and nothing was written since.
            Ok(_) => {}
            // A checkpoint that failed leaves the log as it was; the next pass tries again.
            Err(error) => tracing::warn!(%error, "checkpointing the SQLite write-ahead log failed"),
        }
    }
}

/// For the writer, between two transactions when `flags.start_over` is up: copies the few pages
/// committed since the checkpointer's last pass, so the writer's next transaction finds the whole
/// log in the database and starts it over (unless a reader is still on it; then the flag comes
/// up again at the next pass).
pub(super) async fn catch_up(connection: &mut SqliteConnection, counts: &Checkpoints) {
    match pass(connection).await {
        Ok(found) => {
            counts.restarts.inc();
            counts.seconds.observe(found.took.as_secs_f64());
        }
        Err(error) => tracing::warn!(%error, "checkpointing the SQLite write-ahead log failed"),
    }
}

/// What a pass found: pages in the log, and how many of them are in the database now (counted
/// since the log last started over, not by this pass alone).
#[derive(Clone, Copy)]
struct Pass {
    log: i64,
    copied: i64,
    took: Duration,
}

impl PartialEq for Pass {
    /// The same log, copied as far: nothing was written between the two passes.
    fn eq(&self, other: &Self) -> bool {
        (self.log, self.copied) == (other.log, other.copied)
    }
}

async fn pass(connection: &mut SqliteConnection) -> Result<Pass, sqlx::Error> {
    let started = Instant::now();
    let row = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(&mut *connection)
        .await?;
    // (busy, pages in the log, pages checkpointed); -1 when the database is not in WAL mode.
    Ok(Pass {
        log: row.try_get(1)?,
        copied: row.try_get(2)?,
        took: started.elapsed(),
    })
}
