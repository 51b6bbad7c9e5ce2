//! The relay profile: agent ↔ customer messages over many conversations at offered rates,
//! open-loop, on frontdesk and on the floor relay in the same run (each figure also printed as a
//! multiple of the floor's).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use serde_json::json;

use crate::pairs::{Rig, Way};
use crate::report::{latency_table, LatencyRow, Machine, Report};
use crate::schedule::{self, Step};
use crate::scrape::{self, ServerFigures, ServerSide};
use crate::server::{AgentSpec, FloorProcess, Server};
use crate::stats::Summary;
use crate::Common;

/// Options of the relay profile.
#[derive(Args, Debug)]
pub struct RelayArgs {
    #[command(flatten)]
    common: Common,
    /// Offered rates, messages per second (both ways together).
    #[arg(long, value_delimiter = ',', default_value = "200,1000,2000,5000", value_parser = crate::schedule::positive_rate)]
    rates: Vec<f64>,
    #[command(flatten)]
    traffic: Traffic,
    /// Measure frontdesk, the floor relay, or both (each figure as a multiple of the floor's).
    #[arg(long, value_enum, default_value = "both")]
    target: Target,
    /// Which floors to measure (with --target both or floor): `bare` (no storage; frontdesk's
    /// figures are multiples of it), `full` and `normal` (the durable floor: each frame committed
    /// to SQLite before it is passed on, with or without an fsync per commit, one row a frame),
    /// `full-rows` and `normal-rows` (the same, rows shaped like frontdesk's).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "bare")]
    floors: Vec<Floor>,
}

/// A floor to measure beside frontdesk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Floor {
    /// The bare pairing relay.
    Bare,
    /// The durable floor, an fsync per commit.
    Full,
    /// The durable floor, the log synced at checkpoints.
    Normal,
    /// The durable floor, an fsync per commit, rows shaped like frontdesk's.
    FullRows,
    /// The durable floor, the log synced at checkpoints, rows shaped like frontdesk's.
    NormalRows,
}

impl Floor {
    fn store(self) -> Option<(crate::floor::Durability, crate::floor::Rows)> {
        use crate::floor::{Durability, Rows};
        match self {
            Floor::Bare => None,
            Floor::Full => Some((Durability::Full, Rows::Plain)),
            Floor::Normal => Some((Durability::Normal, Rows::Plain)),
            Floor::FullRows => Some((Durability::Full, Rows::Frontdesk)),
            Floor::NormalRows => Some((Durability::Normal, Rows::Frontdesk)),
        }
    }

    fn name(self) -> String {
        match self.store() {
            None => "floor".into(),
            Some((durability, crate::floor::Rows::Plain)) => {
                format!("durable floor ({})", crate::floor::name_of(&durability))
            }
            Some((durability, crate::floor::Rows::Frontdesk)) => {
                format!(
                    "durable floor ({}, frontdesk's rows)",
                    crate::floor::name_of(&durability)
                )
            }
        }
    }
}

/// The floors a run measures: none for `--target frontdesk`, each of `--floors` once otherwise.
fn floors_measured(args: &RelayArgs) -> Vec<Floor> {
    if args.target == Target::Frontdesk {
        return Vec::new();
    }
    let mut floors = Vec::new();
    for floor in &args.floors {
        if !floors.contains(floor) {
            floors.push(*floor);
        }
    }
    floors
}

/// The relay's traffic, the same in the relay and nodes profiles.
#[derive(Args, Debug, Clone)]
pub struct Traffic {
    /// Conversations the messages are spread over.
    #[arg(long, default_value_t = 500)]
    pub conversations: usize,
    /// Agents holding them, each with room for its share (in the nodes profile, on the nodes after
    /// the first).
    #[arg(long, default_value_t = 10)]
    pub agents: usize,
    /// Seconds each rate is offered.
    #[arg(long, default_value_t = 10.0)]
    pub seconds: f64,
    /// Seconds at the lowest rate first, not reported.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Which way messages go.
    #[arg(long, value_enum, default_value = "both")]
    pub direction: Direction,
}

impl Traffic {
    /// The sweep over `rates` (see [`crate::schedule::warmup_then`]).
    pub fn steps(&self, rates: &[f64]) -> Vec<(bool, f64, f64)> {
        crate::schedule::warmup_then(rates, self.seconds, self.warmup)
    }
}

/// Which way messages go.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Direction {
    /// Agent → customer only.
    A2c,
    /// Customer → agent only.
    C2a,
    /// Alternately (half each way).
    Both,
}

impl Direction {
    /// The ways messages go, alternately.
    pub fn ways(self) -> &'static [Way] {
        match self {
            Direction::A2c => &[Way::ToCustomer],
            Direction::C2a => &[Way::ToAgent],
            Direction::Both => &[Way::ToCustomer, Way::ToAgent],
        }
    }
}

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// Frontdesk and the floor.
    Both,
    /// Frontdesk only.
    Frontdesk,
    /// The floor relay only.
    Floor,
}

/// Server settings the relay profile needs: no rate limit in the way, no timer firing mid-run.
pub const RELAY_ENV: [(&str, &str); 4] = [
    ("FRONTDESK_LIMITS__MESSAGES_PER_SECOND", "100000"),
    ("FRONTDESK_LIMITS__MESSAGE_BURST", "100000"),
    ("FRONTDESK_HANDOFF__PICKUP_TIMEOUT_SECONDS", "86400"),
    ("FRONTDESK_HANDOFF__REPLY_TIMEOUT_SECONDS", "86400"),
];

fn label(target: &str, way: Way) -> String {
    match way {
        Way::ToCustomer => format!("{target} agent→customer"),
        Way::ToAgent => format!("{target} customer→agent"),
    }
}

/// Runs the profile `--runs` times and reports medians.
pub async fn run(args: RelayArgs) -> anyhow::Result<ExitCode> {
    let machine = Machine::read(&args.common);
    // (label, rate) → one summary per run.
    let mut runs: BTreeMap<(String, u64), Vec<Summary>> = BTreeMap::new();
    let mut floor_ratios: BTreeMap<(String, u64), Vec<(f64, f64)>> = BTreeMap::new();
    let mut server_side = ServerSide::default();
    let floors = floors_measured(&args);
    if args.target == Target::Both && !floors.contains(&Floor::Bare) {
        eprintln!(
            "relay: no bare floor in --floors, so frontdesk's figures get no ×floor columns (add `bare`)"
        );
    }
    for run in 0..args.common.runs {
        eprintln!("relay: run {} of {}", run + 1, args.common.runs);
        let mut floor = BTreeMap::new();
        for kind in &floors {
            let mut process = FloorProcess::start(kind.store()).await?;
            let rig = crate::pairs::floor(&process, args.traffic.conversations).await?;
            let measured = sweep(&args, &rig, None).await;
            process.check_alive()?;
            for (way, rate, s, _) in measured {
                if *kind == Floor::Bare {
                    floor.insert((way == Way::ToCustomer, rate as u64), s.clone());
                }
                runs.entry((label(&kind.name(), way), rate as u64))
                    .or_default()
                    .push(s);
            }
        }
        if args.target != Target::Floor {
            let per_agent = args
                .traffic
                .conversations
                .div_ceil(args.traffic.agents.max(1));
            let agents = AgentSpec::many(args.traffic.agents.max(1), per_agent);
            let env: Vec<(&str, String)> =
                RELAY_ENV.iter().map(|(k, v)| (*k, v.to_string())).collect();
            let server = Server::start(&args.common, &env, &agents).await?;
            let rig =
                crate::pairs::frontdesk(&server, &[&server], &agents, args.traffic.conversations)
                    .await?;
            for (way, rate, s, figures) in sweep(&args, &rig, Some(&server)).await {
                if figures.is_some() {
                    server_side.add(format!("frontdesk @ {rate}/s"), figures);
                }
                let key = (label("frontdesk", way), rate as u64);
                if let Some(f) = floor.get(&(way == Way::ToCustomer, rate as u64)) {
                    floor_ratios
                        .entry(key.clone())
                        .or_default()
                        .push((s.p50_ms / f.p50_ms, s.p99_ms / f.p99_ms));
                }
                runs.entry(key).or_default().push(s);
            }
        }
    }
    let mut rows: Vec<(u64, LatencyRow)> = runs
        .into_iter()
        .map(|(key, runs)| {
            let mut row = LatencyRow::at(key.0.clone(), key.1 as f64, runs);
            if let Some(r) = floor_ratios.get(&key) {
                let m = |f: fn(&(f64, f64)) -> f64| crate::stats::median(r.iter().map(f).collect());
                row.vs_floor = Some((m(|x| x.0), m(|x| x.1)));
            }
            (key.1, row)
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.label.cmp(&b.1.label)));
    let rows: Vec<LatencyRow> = rows.into_iter().map(|(_, row)| row).collect();
    let report = Report {
        profile: "relay",
        machine,
        runs: args.common.runs,
        settings: json!({
            "rates": args.rates, "conversations": args.traffic.conversations, "agents": args.traffic.agents,
            "target": format!("{:?}", args.target).to_lowercase(),
            "floors": floors.iter().map(|f| f.name()).collect::<Vec<_>>(),
            "seconds": args.traffic.seconds, "direction": format!("{:?}", args.traffic.direction),
            "server_env": RELAY_ENV.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
            "extra_server_env": args.common.server_env,
        }),
        notes: [
            Some("latency: from the planned send time to the frame on the other side (open-loop)"),
            Some("the floor relay pairs two sockets per conversation; frontdesk's agents hold many conversations on one socket each"),
            floors.iter().any(|f| f.store().is_some()).then_some(
                "the durable floor commits each frame to SQLite (WAL, every frame waiting in one transaction) before passing it on",
            ),
            Some("customer rate limits lifted through FRONTDESK_LIMITS__* (see settings)"),
        ]
        .into_iter()
        .flatten()
        .map(String::from)
        .collect(),
        results: rows,
        server: server_side.to_json(),
    };
    report.emit(&args.common, |r| {
        latency_table(&r.results);
        server_side.print();
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Offers each rate in turn (after a warm-up); one summary per way and rate, and with a
/// `server`, what it measured over the step (given with the step's first way).
async fn sweep(
    args: &RelayArgs,
    rig: &Rig,
    server: Option<&Server>,
) -> Vec<(Way, f64, Summary, Option<ServerFigures>)> {
    let ways = args.traffic.direction.ways();
    let mut out = Vec::new();
    let steps = args.traffic.steps(&args.rates);
    for (id, (keep, rate, seconds)) in steps.into_iter().enumerate() {
        if seconds <= 0.0 {
            continue;
        }
        let step = Step {
            rate,
            duration: Duration::from_secs_f64(seconds),
        };
        let stepping = offer(rig, ways, id as u64, step);
        let (results, mut figures) = match server {
            Some(server) => scrape::around(server, stepping).await,
            None => (stepping.await, None),
        };
        if keep {
            for (way, s) in results {
                eprintln!(
                    "  {rate:>6.0}/s {:?}: p50 {:.2} ms, p99 {:.2} ms, lost {}",
                    way, s.p50_ms, s.p99_ms, s.lost
                );
                out.push((way, rate, s, figures.take()));
            }
        }
    }
    out
}

/// One step: messages `n = 0..` go alternately the `ways` given, over the pairs in turn.
pub async fn offer(rig: &Rig, ways: &'static [Way], id: u64, step: Step) -> Vec<(Way, Summary)> {
    let start = schedule::start_soon();
    rig.clock.begin(id, step, start);
    let senders = rig.pairs.clone();
    let fired = schedule::run(step, start, move |n, _| {
        let way = ways[n as usize % ways.len()];
        let pair = (n as usize / ways.len()) % senders.len();
        senders[pair].send(way, id, n);
    })
    .await as usize;
    let sent_of = |i: usize| fired / ways.len() + usize::from(i < fired % ways.len());
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        let got = rig.clock.to_customer.count() + rig.clock.to_agent.count();
        if got >= fired {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let results = ways
        .iter()
        .enumerate()
        .map(|(i, way)| {
            let recorder = match way {
                Way::ToCustomer => &rig.clock.to_customer,
                Way::ToAgent => &rig.clock.to_agent,
            };
            let share = step.rate / ways.len() as f64;
            (
                *way,
                recorder.summary(start, sent_of(i), share, step.duration),
            )
        })
        .collect();
    // Let a backlog clear before the next step.
    tokio::time::sleep(Duration::from_secs(1)).await;
    results
}
