//! Chaos runs: customers and agents chat while the tool drops their connections at random
//! (without a close frame, as an orderly FIN or as a TCP reset) and kills the server with SIGKILL
//! once, starting it again on the same store. Clients behave as the widget and the console do
//! (resume with `last_seq`, read back, send unacknowledged messages again under the same
//! `client_id`). At the end every conversation's ledger is checked against its stored transcript
//! (`verify`): every acknowledged message delivered exactly once, in order, to both sides, and
//! nothing stored twice. The run prints its counts and exits 1 otherwise.

mod agent;
mod customer;
mod ledger;
mod run;
mod verify;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use dashmap::DashMap;
use serde_json::Value;

pub use run::run;

/// Options of the chaos run.
#[derive(Args, Debug, Clone)]
pub struct ChaosArgs {
    #[command(flatten)]
    common: crate::Common,
    /// The short form for CI: 300 disconnects, 60 conversations, one kill (under two minutes).
    #[arg(long)]
    short: bool,
    /// Forced disconnects of customers and agents (default 1000; 300 with --short).
    #[arg(long)]
    disconnects: Option<usize>,
    /// Conversations (one customer each; default 100, 60 with --short).
    #[arg(long)]
    conversations: Option<usize>,
    /// Agents holding them.
    #[arg(long, default_value_t = 8)]
    agents: usize,
    /// Messages written per second, customers and agents together.
    #[arg(long, default_value_t = 60.0, value_parser = crate::schedule::positive_rate)]
    rate: f64,
    /// Milliseconds between two forced disconnects.
    #[arg(long, default_value_t = 50)]
    every_ms: u64,
    /// Kill the server with SIGKILL this many times (spread over the run) and start it again.
    #[arg(long, default_value_t = 1)]
    kills: usize,
    /// Times a customer stops reading its socket while its agent floods it with long messages
    /// (a slow reader; default 3, 1 with --short).
    #[arg(long)]
    stalls: Option<usize>,
    /// A stalled customer reads nothing until its agent's flood is acknowledged, or this many
    /// ms at most.
    #[arg(long, default_value_t = 20000)]
    stall_ms: u64,
    /// Long messages (3,500 characters) the agent sends a stalled customer (default 6000; 1000
    /// with --short: the customer's outbox, 32 frames, overflows after a few dozen either way,
    /// and a debug server on a busy machine works through 1000 within the drain).
    #[arg(long)]
    flood: Option<usize>,
    /// Seed of the random choices (printed, to repeat a run exactly as far as timing allows).
    #[arg(long)]
    seed: Option<u64>,
}

impl ChaosArgs {
    fn disconnects(&self) -> usize {
        self.disconnects
            .unwrap_or(if self.short { 300 } else { 1000 })
    }

    fn stalls(&self) -> usize {
        self.stalls.unwrap_or(if self.short { 1 } else { 3 })
    }

    fn flood(&self) -> usize {
        self.flood.unwrap_or(if self.short { 1000 } else { 6000 })
    }

    fn conversations(&self) -> usize {
        self.conversations
            .unwrap_or(if self.short { 60 } else { 100 })
    }
}

/// What a customer task is told.
#[derive(Debug)]
pub enum Cmd {
    /// Write the next message.
    Write,
    /// Drop the connection now (a TCP reset with `reset`), then resume.
    Drop {
        /// Reset rather than close.
        reset: bool,
    },
    /// Read nothing until the agent's messages are acknowledged, for this long at most (the
    /// socket stays open).
    Stall(Duration),
    /// Stop.
    Stop,
}

/// What an agent task is told.
#[derive(Debug)]
pub enum AgentCmd {
    /// Write the next message in this conversation.
    Write(String),
    /// Write this many long messages in this conversation at once.
    Flood(String, usize),
    /// Drop the connection now (a TCP reset with `reset`), then reconnect.
    Drop {
        /// Reset rather than close.
        reset: bool,
    },
    /// Stop.
    Stop,
}

/// Every conversation's ledger, by conversation id.
pub type Ledgers = Arc<DashMap<String, Arc<Mutex<ledger::Ledger>>>>;

/// A counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicUsize);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// The count.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// Counters every client reports to.
#[derive(Debug, Default)]
pub struct Stats {
    /// Customer connections dropped by the tool.
    pub customer_drops: Counter,
    /// Agent connections dropped by the tool.
    pub agent_drops: Counter,
    /// Customers that stopped reading for a while.
    pub stalls: Counter,
    /// Customer resumes that got a socket.
    pub reconnects: Counter,
    /// Agent reconnects that got `ready`.
    pub agent_reconnects: Counter,
    /// Connections the server (or its death) closed.
    pub closed_by_server: Counter,
    /// Resumes that did not get their conversation back.
    pub sessions_lost: Counter,
    /// Chats an agent found it no longer held.
    pub ownership_lost: Counter,
    /// Agent messages not written because nobody held the chat.
    pub no_holder: Counter,
    /// `error` frames received.
    pub errors: Counter,
    /// Connection attempts that failed (the server down, handshakes timing out).
    pub failed_attempts: Counter,
    /// The first ten error frames and failures and the ten latest, for the report (a failure at
    /// the end of a run is the one that explains a verdict).
    pub samples: Mutex<Vec<String>>,
    /// Set when the run stops its clients: a client reconnecting then sends nothing again (what
    /// it would send would be stored after the other side stopped reading).
    pub stopping: std::sync::atomic::AtomicBool,
}

impl Stats {
    /// Whether the run is stopping its clients.
    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// An `error` frame from the server.
    pub fn note_error(&self, who: &str, frame: &Value) {
        self.errors.inc();
        self.sample(format!("{who} got {frame}"));
    }

    /// A failed connection attempt.
    pub fn note_failure(&self, what: &str, e: &anyhow::Error) {
        self.failed_attempts.inc();
        self.sample(format!("{what}: {e:#}"));
    }

    fn sample(&self, line: String) {
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if samples.len() >= 20 {
            samples.remove(10);
        }
        samples.push(line);
    }

    /// How long to wait before trying to connect again: 100–400 ms.
    pub fn backoff(&self) -> Duration {
        use rand::Rng;
        Duration::from_millis(rand::thread_rng().gen_range(100..400))
    }
}
