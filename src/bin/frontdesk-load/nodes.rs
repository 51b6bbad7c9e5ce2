//! The relay across nodes (issue 13): for each node count of `--nodes` (e.g. 1 and 3), a cluster
//! of real `frontdesk serve` processes on a fresh database of one Postgres server and one Redis
//! (a channel of its own), customers on node 1 and agents on the other nodes (on node 1 when it is
//! alone), so every message of a multi-node cluster crosses nodes through Redis. The relay steps
//! are the relay profile's ([`crate::relay::offer`]); each step also reports the CPU each node,
//! Postgres, Redis and this tool used, to tell what runs out first. The report ends with the
//! sustained rate of each node count and their ratio.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use serde_json::json;

use crate::pairs::Way;
use crate::relay::{Traffic, RELAY_ENV};
use crate::report::{ms, Machine, Report, Table};
use crate::schedule::Step;
use crate::server::{AgentSpec, Server};
use crate::services::{self, Database, Group};
use crate::stats::Summary;
use crate::Common;

/// Options of the nodes profile.
#[derive(Args, Debug)]
pub struct NodesArgs {
    #[command(flatten)]
    common: Common,
    /// Node counts to measure, one cluster each, in this order.
    #[arg(long, value_delimiter = ',', default_value = "1,3", value_parser = crate::at_least_one)]
    nodes: Vec<usize>,
    /// A Postgres URL whose user may create databases (each cluster gets a fresh one).
    /// `scripts/with-postgres.sh` exports one.
    #[arg(long, env = "FRONTDESK_TEST_POSTGRES")]
    postgres: String,
    /// The Redis URL the nodes share. `scripts/with-redis.sh` exports one.
    #[arg(long, env = "FRONTDESK_TEST_REDIS")]
    redis: String,
    /// Offered rates, messages per second (both ways together).
    #[arg(long, value_delimiter = ',', default_value = "200,500,1000,2000", value_parser = crate::schedule::positive_rate)]
    rates: Vec<f64>,
    #[command(flatten)]
    traffic: Traffic,
}

/// One step of one run: the clients' latencies and the CPU each process group used.
#[derive(Debug, Clone, Serialize)]
struct StepResult {
    nodes: usize,
    rate: f64,
    ways: Vec<(String, Summary)>,
    /// Percent of one core over the step, by process group.
    cpu: Vec<(String, f64)>,
}

impl StepResult {
    fn achieved(&self) -> f64 {
        self.ways.iter().map(|(_, s)| s.achieved_per_s).sum()
    }

    fn lost(&self) -> usize {
        self.ways.iter().map(|(_, s)| s.lost).sum()
    }

    fn saturated(&self) -> bool {
        self.ways.iter().any(|(_, s)| s.saturated())
    }

    /// The worst way's p50 and p99.
    fn p50_p99(&self) -> (f64, f64) {
        self.ways.iter().fold((0.0f64, 0.0f64), |(a, b), (_, s)| {
            (a.max(s.p50_ms), b.max(s.p99_ms))
        })
    }
}

/// A row of the report: one node count at one rate, medians over runs.
#[derive(Debug, Serialize)]
struct Row {
    nodes: usize,
    rate: f64,
    achieved_per_s: f64,
    lost: usize,
    saturated: bool,
    p50_ms: f64,
    p99_ms: f64,
    cpu: Vec<(String, f64)>,
    runs: Vec<StepResult>,
}

fn way_name(way: Way) -> &'static str {
    match way {
        Way::ToCustomer => "agent→customer",
        Way::ToAgent => "customer→agent",
    }
}

/// Runs the profile: each node count `--runs` times, then the table and the ratio.
pub async fn run(args: NodesArgs) -> anyhow::Result<ExitCode> {
    let machine = Machine::read(&args.common);
    let load_before = services::load_average();
    let mut results: Vec<StepResult> = Vec::new();
    for run in 0..args.common.runs {
        for &count in &args.nodes {
            eprintln!(
                "nodes: run {} of {}, {count} node(s)",
                run + 1,
                args.common.runs
            );
            let name = format!("frontdesk_load_{}_{run}_{count}", std::process::id());
            let db = Database::create(&args.postgres, &name).await?;
            let outcome = cluster_run(&args, &db.url, &name, count).await;
            db.drop().await;
            results.extend(outcome?);
        }
    }
    let load_after = services::load_average();
    let rows = rows(&results);
    let sustained: BTreeMap<usize, f64> = args
        .nodes
        .iter()
        .map(|n| {
            let best = rows
                .iter()
                .filter(|r| r.nodes == *n && !r.saturated && r.lost == 0)
                .map(|r| r.achieved_per_s)
                .fold(0.0, f64::max);
            (*n, best)
        })
        .collect();
    let ratios: Vec<String> = ratios(&args.nodes, &sustained);
    let report = Report {
        profile: "nodes",
        machine,
        runs: args.common.runs,
        settings: json!({
            "nodes": args.nodes, "rates": args.rates, "conversations": args.traffic.conversations,
            "agents": args.traffic.agents, "seconds": args.traffic.seconds,
            "direction": format!("{:?}", args.traffic.direction),
            "server_env": RELAY_ENV.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
            "extra_server_env": args.common.server_env,
            "load_average_before": load_before, "load_average_after": load_after,
        }),
        notes: vec![
            "latency: from the planned send time to the frame on the other side (open-loop); p50/p99 of the slower way".into(),
            "customers on node 1, agents on nodes 2.. (node 1 alone): with several nodes every message crosses nodes through Redis".into(),
            "sustained: the highest achieved rate of a step with nothing lost and the median under 1 s".into(),
            format!("every process shares this machine's {} CPUs: with more nodes than cores this measures the cost of crossing nodes, not scaling", std::thread::available_parallelism().map_or(1, |n| n.get())),
            "cpu: percent of one core over the step (Postgres: its server and backends)".into(),
            format!("load average before {load_before}, after {load_after}"),
        ],
        results: json!({ "rows": rows, "sustained_per_s": sustained, "ratios": ratios }),
        server: serde_json::Value::Null,
    };
    report.emit(&args.common, |_| {
        print_table(&rows);
        for (n, s) in &sustained {
            println!("sustained with {n} node(s): {s:.0}/s");
        }
        for r in &ratios {
            println!("{r}");
        }
    })?;
    Ok(ExitCode::SUCCESS)
}

/// "3 nodes : 1 node = 0.85" for each count after the first.
fn ratios(nodes: &[usize], sustained: &BTreeMap<usize, f64>) -> Vec<String> {
    let Some(first) = nodes.first() else {
        return Vec::new();
    };
    nodes[1..]
        .iter()
        .filter_map(|n| {
            let (a, b) = (sustained.get(n)?, sustained.get(first)?);
            (*b > 0.0).then(|| format!("throughput {n} nodes : {first} node(s) = {:.2}", a / b))
        })
        .collect()
}

/// Medians over runs, by node count and rate, in the order measured.
fn rows(results: &[StepResult]) -> Vec<Row> {
    let mut keys: Vec<(usize, u64)> = Vec::new();
    for r in results {
        let key = (r.nodes, r.rate as u64);
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys.into_iter()
        .map(|(nodes, rate)| {
            let runs: Vec<StepResult> = results
                .iter()
                .filter(|r| r.nodes == nodes && r.rate as u64 == rate)
                .cloned()
                .collect();
            let m =
                |f: &dyn Fn(&StepResult) -> f64| crate::stats::median(runs.iter().map(f).collect());
            let mut groups: Vec<String> = runs
                .iter()
                .flat_map(|r| r.cpu.iter().map(|(g, _)| g.clone()))
                .collect();
            groups.sort();
            groups.dedup();
            let cpu = groups
                .into_iter()
                .map(|g| {
                    let v = m(&|r: &StepResult| {
                        r.cpu
                            .iter()
                            .find(|(n, _)| *n == g)
                            .map_or(f64::NAN, |c| c.1)
                    });
                    (g, v)
                })
                .collect();
            Row {
                nodes,
                rate: rate as f64,
                achieved_per_s: m(&StepResult::achieved),
                lost: m(&|r: &StepResult| r.lost() as f64) as usize,
                saturated: runs.iter().filter(|r| r.saturated()).count() * 2 > runs.len(),
                p50_ms: m(&|r: &StepResult| r.p50_p99().0),
                p99_ms: m(&|r: &StepResult| r.p50_p99().1),
                cpu,
                runs,
            }
        })
        .collect()
}

fn print_table(rows: &[Row]) {
    let mut table = Table::new(&[
        "nodes",
        "offered/s",
        "achieved/s",
        "lost",
        "p50 ms",
        "p99 ms",
        "cpu % of a core",
    ]);
    for r in rows {
        let cpu: Vec<String> = r.cpu.iter().map(|(g, v)| format!("{g} {v:.0}")).collect();
        table.row(vec![
            if r.saturated {
                format!("{} (saturated)", r.nodes)
            } else {
                r.nodes.to_string()
            },
            format!("{:.0}", r.rate),
            format!("{:.0}", r.achieved_per_s),
            r.lost.to_string(),
            ms(r.p50_ms),
            ms(r.p99_ms),
            cpu.join(", "),
        ]);
    }
    table.print();
}

/// One cluster of `count` nodes on database `url`: its nodes started, the conversations set up,
/// every rate offered; the nodes are stopped when this returns.
async fn cluster_run(
    args: &NodesArgs,
    url: &str,
    channel: &str,
    count: usize,
) -> anyhow::Result<Vec<StepResult>> {
    let mut env: Vec<(&str, String)> = RELAY_ENV.iter().map(|(k, v)| (*k, v.to_string())).collect();
    env.extend([
        ("FRONTDESK_STORE__URL", url.to_owned()),
        ("FRONTDESK_CLUSTER__REDIS_URL", args.redis.clone()),
        (
            "FRONTDESK_CLUSTER__CHANNEL",
            format!("frontdesk-load:{channel}"),
        ),
    ]);
    let per_agent = args
        .traffic
        .conversations
        .div_ceil(args.traffic.agents.max(1));
    let agents = AgentSpec::many(args.traffic.agents.max(1), per_agent);
    // The first node creates the accounts; the others join its store one after the other (they
    // share the embedding cache the first one wrote).
    let mut nodes = vec![Server::start(&args.common, &env, &agents).await?];
    for _ in 1..count {
        nodes.push(Server::join(&args.common, &env).await?);
    }
    let agents_on: Vec<&Server> = if count == 1 {
        vec![&nodes[0]]
    } else {
        nodes[1..].iter().collect()
    };
    let rig =
        crate::pairs::frontdesk(&nodes[0], &agents_on, &agents, args.traffic.conversations).await?;
    let mut groups: Vec<(String, Group)> = nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| Some((format!("node {}", i + 1), Group::Pid(n.pid()?))))
        .collect();
    if let Some(port) = services::port_of(&args.postgres) {
        groups.push(("postgres".into(), Group::Postgres(port)));
    }
    if let Some(port) = services::port_of(&args.redis) {
        groups.push(("redis".into(), Group::Redis(port)));
    }
    groups.push(("load tool".into(), Group::Pid(std::process::id())));

    let ways = args.traffic.direction.ways();
    let steps = args.traffic.steps(&args.rates);
    let mut out = Vec::new();
    for (id, (keep, rate, seconds)) in steps.into_iter().enumerate() {
        if seconds <= 0.0 {
            continue;
        }
        let step = Step {
            rate,
            duration: Duration::from_secs_f64(seconds),
        };
        let before = services::sample(&groups);
        let began = Instant::now();
        let summaries = crate::relay::offer(&rig, ways, id as u64, step).await;
        let cpu = services::cpu_percent(
            &before,
            &services::sample(&groups),
            began.elapsed().as_secs_f64(),
        );
        if !keep {
            continue;
        }
        for (way, s) in &summaries {
            eprintln!(
                "  {count} node(s) {rate:>6.0}/s {}: achieved {:.0}/s, p50 {:.2} ms, p99 {:.2} ms, lost {}",
                way_name(*way),
                s.achieved_per_s,
                s.p50_ms,
                s.p99_ms,
                s.lost
            );
        }
        let line: Vec<String> = cpu.iter().map(|(g, v)| format!("{g} {v:.0}%")).collect();
        eprintln!("    cpu: {}", line.join(", "));
        out.push(StepResult {
            nodes: count,
            rate,
            ways: summaries
                .into_iter()
                .map(|(w, s)| (way_name(w).to_owned(), s))
                .collect(),
            cpu,
        });
    }
    for (i, node) in nodes.iter().enumerate() {
        let tail = node.log_tail();
        if tail.contains("ERROR") || tail.contains("WARN") {
            eprintln!("  node {} logged (last lines):\n{tail}", i + 1);
        }
    }
    drop(rig);
    Ok(out)
}
