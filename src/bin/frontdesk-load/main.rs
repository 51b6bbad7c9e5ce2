//! `frontdesk-load`: the load generator and chaos runner of docs/BENCHMARKS.md.
//!
//! It drives a real `frontdesk serve` process (started here, on a temporary store) over real
//! sockets from its own process, and reads the server's memory from `/proc`. One module per
//! profile; `server` starts and stops the processes, `ws` holds the client code every profile
//! shares (the floor relay is driven by the same code), `stats` and `report` turn samples into
//! medians, tables and JSON. `nodes` runs the relay across several nodes on Postgres and Redis
//! (`services` creates their database and reads each process's CPU).
//!
//! Latencies are open-loop: a scheduler thread fires each request at its planned time whatever
//! the server is doing, and latency counts from that planned time, so queueing is not hidden.

// A server must not panic on bad input: `unwrap` only in tests (clippy checks it; `expect` with
// a reason where a value is certain by construction).
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod bot;
mod chaos;
mod desk;
mod edit;
mod floor;
mod idle;
mod nodes;
mod pairs;
mod questions;
mod relay;
mod report;
mod schedule;
mod scrape;
mod server;
mod services;
mod stats;
mod ws;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "frontdesk-load",
    about = "Load and chaos runs against a real frontdesk server (docs/BENCHMARKS.md)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Hold N idle customer sockets that said hello; server RSS at each step and per socket.
    Idle(idle::IdleArgs),
    /// Bot turns with unique questions at offered rates: question → answer frame latency.
    Bot(bot::BotArgs),
    /// Customer ↔ agent messages over many conversations at offered rates, beside the floor relay.
    Relay(relay::RelayArgs),
    /// The relay across 1 and 3 nodes on one Postgres and Redis (customers on node 1, agents on
    /// the others): latencies, the CPU of each process, the throughput ratio.
    Nodes(nodes::NodesArgs),
    /// A support desk: customers asking the bot, some escalating, agents taking and answering.
    Desk(desk::DeskArgs),
    /// An article edited on disk: time from the save until the bot answers from the new text.
    Edit(edit::EditArgs),
    /// Forced disconnects and a kill -9 while customers and agents chat; verifies every
    /// acknowledged message arrived exactly once, in order, on both sides. Exits 1 otherwise.
    Chaos(chaos::ChaosArgs),
    /// Run the floor relay in the foreground: a bare pairing relay (no JSON parsing), with
    /// `--store` the durable floor (each frame committed to SQLite before it is passed on).
    Floor {
        /// Port to listen on (127.0.0.1).
        #[arg(long)]
        port: u16,
        /// The durable floor: put each frame in this SQLite file (created if missing) before
        /// passing it on, every frame waiting committed together.
        #[arg(long)]
        store: Option<PathBuf>,
        /// With --store: whether each commit waits for its fsync.
        #[arg(long, value_enum, default_value = "full", requires = "store")]
        sync: floor::Durability,
        /// With --store: one row per frame, or rows shaped like frontdesk's.
        #[arg(long, value_enum, default_value = "plain", requires = "store")]
        rows: floor::Rows,
    },
}

/// Options every profile that starts a server shares.
#[derive(Args, Clone, Debug)]
pub struct Common {
    /// The server binary (a release build for figures: `cargo build --release`).
    #[arg(long, default_value = "target/release/frontdesk")]
    pub server_bin: PathBuf,
    /// The server's working directory: where `models/` is.
    #[arg(long, default_value = ".")]
    pub root: PathBuf,
    /// Knowledge base folder the server answers from (copied into a temporary folder). The
    /// Plausible help centre: `../shared/data/plausible_docs/docs`.
    #[arg(long, default_value = "knowledge_base")]
    pub kb: PathBuf,
    /// Repeat the whole profile this many times (a new server each time); tables show medians.
    #[arg(long, default_value_t = 1, value_parser = at_least_one)]
    pub runs: usize,
    /// Print the report as JSON on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Extra server settings as `FRONTDESK_*` variables, e.g. `--server-env
    /// FRONTDESK_LIMITS__MESSAGES_PER_SECOND=5` (repeat for several). They win over the profile's.
    #[arg(long = "server-env", value_parser = parse_env)]
    pub server_env: Vec<(String, String)>,
}

fn at_least_one(s: &str) -> Result<usize, String> {
    s.parse::<usize>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| format!("{s:?} is not a count of 1 or more"))
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))?;
    if !key.starts_with("FRONTDESK_") && key != "RUST_LOG" {
        return Err(format!(
            "{key} is not a server setting: use FRONTDESK_SECTION__KEY=VALUE (or RUST_LOG)"
        ));
    }
    Ok((key.to_owned(), value.to_owned()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    ws::raise_open_files_limit()?;
    match command {
        Command::Idle(args) => idle::run(args).await,
        Command::Bot(args) => bot::run(args).await,
        Command::Relay(args) => relay::run(args).await,
        Command::Nodes(args) => nodes::run(args).await,
        Command::Desk(args) => desk::run(args).await,
        Command::Edit(args) => edit::run(args).await,
        Command::Chaos(args) => chaos::run(args).await,
        Command::Floor {
            port,
            store,
            sync,
            rows,
        } => {
            let store = store.map(|path| floor::Store {
                path,
                durability: sync,
                rows,
                most_pages: floor::MOST_PAGES,
            });
            floor::serve(port, store).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
