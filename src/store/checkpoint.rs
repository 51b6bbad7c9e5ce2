//! SQLite's WAL checkpoints off the writers' path. By default SQLite copies the write-ahead log
//! back into the database file inside the commit that grows it past 1,000 pages, so every few
//! hundred milliseconds under load one group of appends waited for that copy and its sync: at
//! 5,000 relayed messages a second that was most of the relay's p99 (docs/BENCHMARKS.md). Here
//! every connection has automatic checkpoints off (`wal_autocheckpoint = 0`, set in
//! `connect.rs`), and a task of its own with a connection of its own checkpoints in `PASSIVE` mode
//! every [`EVERY`] after the writer has committed (every [`IDLE_EVERY`] otherwise, for what the
//! pool's connections wrote): it copies what it can without taking any lock a writer waits for,
//! so commits go on meanwhile.
//!
//! A passive pass copies the log as far as it was when the pass began, and SQLite starts the log
//! over only when a transaction begins with all of it copied. The writer commits hundreds of
//! times a second, so under writes without a pause that never happens by itself, and the log
//! would grow without end (measured: 1.9 GB in 25 s at 5,000 messages a second). So:
//! - when a pass finds more than [`MOST_PAGES`] pages, it raises a flag the writer reads between
//!   two transactions: the writer then copies the few pages committed since the pass itself (and
//!   syncs: about 10 ms measured), and its next transaction starts the log over;
//! - if the log is still past the limit [`STUCK_PASSES`] passes later (a reader on it, or the
//!   pool's connections committing in between), the checkpointer restarts it itself (`RESTART`,
//!   which waits for the write lock in SQLite's busy handler, which sleeps: measured 25 ms to
//!   1.4 s, so it is only the backstop);
//! - when the writer has committed nothing for [`QUIET`] and the log's file is larger than
//!   [`TRUNCATE_BYTES`], the checkpointer empties it (`TRUNCATE`), so a burst does not keep its
//!   disk space.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::{HistogramOpts, HistogramVec, IntCounter, IntGauge};
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

/// Passes in a row that found the log past its limit before the checkpointer restarts it itself.
const STUCK_PASSES: u32 = 20;

/// Size of the log's file beyond which an idle checkpointer empties it.
pub(super) const TRUNCATE_BYTES: u64 = 64 << 20;

/// How long the writer must have been idle before the log's file is emptied: emptying waits for
/// the write lock, so it must not meet the next burst (measured: a `TRUNCATE` in the one-second
/// pause between two steps of the relay benchmark gave the next step a p99 of 35–43 ms).
pub(super) const QUIET: Duration = Duration::from_secs(10);

/// How large the log may grow: [`MOST_PAGES`], [`TRUNCATE_BYTES`] and [`QUIET`] but in tests.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    /// Pages past which the log is made to start over.
    pub(super) most_pages: i64,
    /// Bytes of file past which an idle log is emptied.
    pub(super) truncate_bytes: u64,
    /// How long without a commit of the writer makes it idle.
    pub(super) quiet: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            most_pages: MOST_PAGES,
            truncate_bytes: TRUNCATE_BYTES,
            quiet: QUIET,
        }
    }
}

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
/// 4 KiB: 256 MiB, plus what is written until the writer's next transaction; reached only under
/// thousands of appends a second: a pass at a lighter load catches up between two commits, and
/// the log starts over by itself). Each catch-up held the writer about 10 ms; at 5,000 appends a
/// second 8,192 pages (a catch-up every half second) gave longer tails
/// (docs/benchmarks/after/checkpoint-tuning-*.json).
pub(super) const MOST_PAGES: i64 = 65536;

/// What the checkpoints did, for `/metrics`.
#[derive(Clone)]
pub(super) struct Checkpoints {
    /// The checkpointer's passes that found something written since its last one.
    pub(super) passes: IntCounter,
    /// Catch-ups the writer made between two transactions (the log had grown past its limit).
    pub(super) catch_ups: IntCounter,
    /// Times the log started over (or was emptied), as the passes saw it.
    pub(super) restarts: IntCounter,
    /// Pages in the log after the last pass.
    pub(super) log_pages: IntGauge,
    /// How long a checkpoint took, by who made it and how: `checkpointer` (a passive pass),
    /// `restart` (the checkpointer's backstop, which holds the writer until the log starts
    /// over), `truncate` (an idle log emptied), or `writer` for a catch-up.
    pub(super) seconds: HistogramVec,
}

impl Default for Checkpoints {
    fn default() -> Self {
        let seconds = HistogramOpts::new(
            "frontdesk_store_checkpoint_seconds",
            "How long one checkpoint of SQLite's write-ahead log took, by who made it and how: \
             the checkpointer beside the writer (checkpointer: passive; restart: holding the \
             writer until the log starts over; truncate: an idle log emptied), or the writer \
             itself between two transactions (writer)",
        )
        .buckets(vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
        ]);
        Self {
            passes: IntCounter::new(
                "frontdesk_store_checkpoints_total",
                "Checkpoints of SQLite's write-ahead log by the checkpointer beside the writer",
            )
            .expect("a valid counter"),
            catch_ups: IntCounter::new(
                "frontdesk_store_checkpoint_catch_ups_total",
                "Checkpoints the writer made between two transactions so that SQLite's \
                 write-ahead log could start over (it had grown under writes without a pause)",
            )
            .expect("a valid counter"),
            restarts: IntCounter::new(
                "frontdesk_store_wal_restarts_total",
                "Times SQLite's write-ahead log started over or was emptied, as the \
                 checkpointer saw it",
            )
            .expect("a valid counter"),
            log_pages: IntGauge::new(
                "frontdesk_store_wal_pages",
                "Pages in SQLite's write-ahead log after the last checkpoint",
            )
            .expect("a valid gauge"),
            seconds: HistogramVec::new(seconds, &["by"]).expect("a valid histogram"),
        }
    }
}

impl Checkpoints {
    /// The collectors, for the server's registry.
    pub(super) fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.passes.clone()),
            Box::new(self.catch_ups.clone()),
            Box::new(self.restarts.clone()),
            Box::new(self.log_pages.clone()),
            Box::new(self.seconds.clone()),
        ]
    }
}

/// Opens the checkpointer's connection and starts its task on the current runtime; the task
/// stops once `alive` can no longer be upgraded (the store's last handle is gone).
/// `flags.start_over` is raised when the log has grown past `limits.most_pages`.
pub(super) async fn start<T: Send + 'static>(
    options: &SqliteConnectOptions,
    alive: WeakSender<T>,
    flags: Arc<Flags>,
    limits: Limits,
) -> Result<Checkpoints, StoreError> {
    // Named, so `top -H` tells it from the writer and the pool.
    let connection = options
        .clone()
        .thread_name(|_| "fd-checkpoint".into())
        .connect()
        .await?;
    let checkpoints = Checkpoints::default();
    let mut log_file = options.get_filename().as_os_str().to_owned();
    log_file.push("-wal");
    tokio::spawn(run(
        Checkpointer {
            connection,
            counts: checkpoints.clone(),
            flags,
            limits,
            log_file: log_file.into(),
        },
        alive,
    ));
    Ok(checkpoints)
}

/// The checkpointer's own state.
struct Checkpointer {
    connection: SqliteConnection,
    counts: Checkpoints,
    flags: Arc<Flags>,
    limits: Limits,
    log_file: PathBuf,
}

async fn run<T>(mut me: Checkpointer, alive: WeakSender<T>) {
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<Pass> = None;
    let mut passed = Instant::now();
    let mut last_written = Instant::now();
    let mut over = 0;
    loop {
        ticks.tick().await;
        if alive.upgrade().is_none() {
            return;
        }
        let written = me.flags.written.swap(false, Ordering::Relaxed);
        if written {
            last_written = Instant::now();
        } else if passed.elapsed() < IDLE_EVERY {
            continue;
        }
        passed = Instant::now();
        let size = || std::fs::metadata(&me.log_file).map_or(0, |m| m.len());
        let quiet = last_written.elapsed() >= me.limits.quiet;
        let mode = if quiet && size() > me.limits.truncate_bytes {
            Mode::Truncate
        } else if over >= STUCK_PASSES {
            Mode::Restart
        } else {
            Mode::Passive
        };
        let found = match pass(&mut me.connection, mode).await {
            // Another checkpoint was at work (a second store on the file): the next pass.
            Ok(found) if found.busy => continue,
            Ok(found) => found,
            Err(error) => {
                // A checkpoint that failed leaves the log as it was; the next pass tries again.
                tracing::warn!(%error, "checkpointing the SQLite write-ahead log failed");
                continue;
            }
        };
        let started_over = last.is_some_and(|l| found.log < l.log);
        if started_over {
            me.counts.restarts.inc();
        }
        // Idle: the log was copied already and nothing was written since.
        if last != Some(found) || mode != Mode::Passive {
            me.counts.passes.inc();
            me.counts
                .seconds
                .with_label_values(&[mode.label()])
                .observe(found.took.as_secs_f64());
        }
        me.counts.log_pages.set(found.log.max(0));
        if found.log > me.limits.most_pages {
            // Passes in a row past the limit with no start over between them.
            over = if started_over { 1 } else { over + 1 };
            me.flags.start_over.store(true, Ordering::Relaxed);
        } else {
            over = 0;
        }
        last = Some(found);
    }
}

impl Mode {
    /// Its `by` label in `frontdesk_store_checkpoint_seconds`.
    fn label(self) -> &'static str {
        match self {
            Mode::Passive => "checkpointer",
            Mode::Restart => "restart",
            Mode::Truncate => "truncate",
        }
    }
}

/// How a checkpoint treats the writers and the log (SQLite's modes of `wal_checkpoint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Copies what it can; waits for nobody.
    Passive,
    /// Waits for the writer's transaction and the readers, so the next transaction starts the log
    /// over.
    Restart,
    /// As `Restart`, and empties the log's file.
    Truncate,
}

/// For the writer, between two transactions when `flags.start_over` is up: copies the few pages
/// committed since the checkpointer's last pass, so the writer's next transaction finds the whole
/// log in the database and starts it over (unless a reader is still on it; then the flag comes
/// up again at the next pass).
pub(super) async fn catch_up(connection: &mut SqliteConnection, counts: &Checkpoints) {
    match pass(connection, Mode::Passive).await {
        // Another checkpoint is at work: the flag comes up again at the next pass.
        Ok(found) if found.busy => {}
        Ok(found) => {
            counts.catch_ups.inc();
            counts
                .seconds
                .with_label_values(&["writer"])
                .observe(found.took.as_secs_f64());
        }
        Err(error) => tracing::warn!(%error, "checkpointing the SQLite write-ahead log failed"),
    }
}

/// What a pass found: pages in the log, and how many of them are in the database now (counted
/// since the log last started over, not by this pass alone).
#[derive(Clone, Copy)]
struct Pass {
    /// Another checkpoint was running, or (`RESTART`, `TRUNCATE`) the wait for the writer or the
    /// readers timed out: nothing was done.
    busy: bool,
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

async fn pass(connection: &mut SqliteConnection, mode: Mode) -> Result<Pass, sqlx::Error> {
    let sql = match mode {
        Mode::Passive => "PRAGMA wal_checkpoint(PASSIVE)",
        Mode::Restart => "PRAGMA wal_checkpoint(RESTART)",
        Mode::Truncate => "PRAGMA wal_checkpoint(TRUNCATE)",
    };
    let started = Instant::now();
    let row = sqlx::query(sql).fetch_one(&mut *connection).await?;
    // (busy, pages in the log, pages checkpointed); the pages are -1 when the database is not in
    // WAL mode (in memory) or the checkpoint could not run.
    let busy: i64 = row.try_get(0)?;
    Ok(Pass {
        busy: busy != 0,
        log: row.try_get(1)?,
        copied: row.try_get(2)?,
        took: started.elapsed(),
    })
}
