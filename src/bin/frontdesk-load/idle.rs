//! The idle profile: hold N customer sockets that said `hello` (from many loopback addresses) and
//! read the server's resident memory at each step; the slope is the memory one idle socket costs.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::bail;
use clap::Args;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::json;

use crate::report::{Machine, Report, Table};
use crate::server::Server;
use crate::ws::{self, SourceAddrs};
use crate::Common;

/// Options of the idle profile.
#[derive(Args, Debug)]
pub struct IdleArgs {
    #[command(flatten)]
    common: Common,
    /// Socket counts at which memory is read (0 is always read first).
    #[arg(long, value_delimiter = ',', default_value = "1000,5000,10000,15000")]
    steps: Vec<usize>,
    /// Sockets opened from each loopback source address.
    #[arg(long, default_value_t = 50)]
    per_address: u32,
    /// Seconds to wait at each step before reading memory.
    #[arg(long, default_value_t = 3.0)]
    settle: f64,
    /// Sockets being opened at once.
    #[arg(long, default_value_t = 200)]
    concurrency: usize,
}

/// Memory at one step.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    /// Sockets that got `welcome` and are held.
    pub sockets: usize,
    /// Server RSS, KiB.
    pub rss_kib: u64,
}

/// One run's figures.
#[derive(Debug, Clone, Serialize)]
pub struct IdleRun {
    /// Memory at each step.
    pub points: Vec<Point>,
    /// Least-squares slope over every step, KiB per socket.
    pub kib_per_socket: f64,
    /// Sockets that could not be opened or got no `welcome` within 30 s.
    pub failed: usize,
}

/// Medians over runs.
#[derive(Debug, Serialize)]
pub struct IdleResults {
    /// Median RSS at each step, KiB.
    pub points: Vec<Point>,
    /// Median slope, KiB per socket.
    pub kib_per_socket: f64,
    /// Each run.
    pub runs: Vec<IdleRun>,
}

/// Runs the profile `--runs` times and reports medians.
pub async fn run(args: IdleArgs) -> anyhow::Result<ExitCode> {
    let most = args.steps.iter().copied().max().unwrap_or(0);
    let limit = ws::open_files_limit() as usize;
    if most + 200 > limit {
        bail!(
            "holding {most} sockets needs more than the open-files limit of {limit} (this process and \
             the server each hold one file per socket): raise it with `ulimit -n` or lower --steps"
        );
    }
    let machine = Machine::read(&args.common);
    let env = [(
        "FRONTDESK_SERVER__MAX_CONNECTIONS",
        (most + 1000).to_string(),
    )];
    let mut runs = Vec::new();
    for run in 0..args.common.runs {
        eprintln!("idle: run {} of {}", run + 1, args.common.runs);
        let server = Server::start(&args.common, &env, &[]).await?;
        runs.push(one_run(&server, &args).await?);
    }
    let points = (0..runs[0].points.len())
        .map(|i| Point {
            sockets: runs[0].points[i].sockets,
            rss_kib: crate::stats::median(runs.iter().map(|r| r.points[i].rss_kib as f64).collect())
                as u64,
        })
        .collect();
    let kib_per_socket = crate::stats::median(runs.iter().map(|r| r.kib_per_socket).collect());
    let report = Report {
        profile: "idle",
        machine,
        runs: args.common.runs,
        settings: json!({
            "steps": args.steps, "per_address": args.per_address, "settle_seconds": args.settle,
            "server_env": env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
            "extra_server_env": args.common.server_env,
        }),
        notes: vec![
            "each socket opens /ws/chat from a loopback address of its own batch, sends hello, gets welcome and stays open (answering pings)".into(),
            "kib_per_socket: least-squares slope of server RSS over the steps".into(),
        ],
        results: IdleResults { points, kib_per_socket, runs },
        server: serde_json::Value::Null,
    };
    report.emit(&args.common, print)?;
    Ok(ExitCode::SUCCESS)
}

fn print(report: &Report<IdleResults>) {
    let mut table = Table::new(&["sockets", "server RSS MiB", "KiB/socket since 0"]);
    let base = report.results.points.first().map_or(0, |p| p.rss_kib);
    for p in &report.results.points {
        let per = if p.sockets == 0 {
            "–".into()
        } else {
            format!("{:.1}", (p.rss_kib as f64 - base as f64) / p.sockets as f64)
        };
        table.row(vec![
            p.sockets.to_string(),
            format!("{:.0}", p.rss_kib as f64 / 1024.0),
            per,
        ]);
    }
    table.print();
    println!(
        "slope: {:.1} KiB per idle socket",
        report.results.kib_per_socket
    );
    let failed: usize = report.results.runs.iter().map(|r| r.failed).sum();
    if failed > 0 {
        println!("sockets that failed to open or got no welcome (all runs): {failed}");
    }
}

async fn one_run(server: &Server, args: &IdleArgs) -> anyhow::Result<IdleRun> {
    tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
    let mut points = vec![Point {
        sockets: 0,
        rss_kib: server.rss_kib()?,
    }];
    let addrs = Arc::new(SourceAddrs::new(args.per_address));
    let failed = Arc::new(AtomicUsize::new(0));
    let (stop, _) = tokio::sync::broadcast::channel::<()>(1);
    let mut held = 0;
    let mut steps = args.steps.clone();
    steps.sort_unstable();
    for target in steps {
        let opened: Vec<bool> = futures_util::stream::iter(held..target)
            .map(|_| hold(server, addrs.clone(), stop.subscribe()))
            .buffer_unordered(args.concurrency.max(1))
            .collect()
            .await;
        let ok = opened.iter().filter(|ok| **ok).count();
        failed.fetch_add(opened.len() - ok, Ordering::Relaxed);
        held += ok;
        tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;
        let rss_kib = server.rss_kib()?;
        eprintln!(
            "  {held:>6} sockets: server RSS {:.0} MiB",
            rss_kib as f64 / 1024.0
        );
        points.push(Point {
            sockets: held,
            rss_kib,
        });
    }
    let _ = stop.send(());
    Ok(IdleRun {
        kib_per_socket: slope(&points),
        points,
        failed: failed.load(Ordering::Relaxed),
    })
}

/// Opens one socket, says hello, and (once `welcome` came) keeps reading it in a task of its own
/// until `stop`. False when it could not be opened or got no welcome.
async fn hold(
    server: &Server,
    addrs: Arc<SourceAddrs>,
    mut stop: tokio::sync::broadcast::Receiver<()>,
) -> bool {
    let opened = async {
        let ws = ws::connect(
            server.addr(),
            &server.ws_url("/ws/chat"),
            Some(addrs.next()),
        )
        .await?;
        let (mut sink, mut stream) = ws.split();
        ws::send(&mut sink, &json!({"type": "hello"})).await?;
        ws::next_where(&mut stream, Duration::from_secs(30), "welcome", |v| {
            v["type"] == "welcome"
        })
        .await?;
        anyhow::Ok((sink, stream))
    };
    let Ok((sink, mut stream)) = opened.await else {
        return false;
    };
    tokio::spawn(async move {
        let _sink = sink;
        loop {
            tokio::select! {
                _ = stop.recv() => return,
                frame = stream.next() => if !matches!(frame, Some(Ok(_))) { return },
            }
        }
    });
    true
}

/// Least-squares slope of RSS (KiB) over sockets.
fn slope(points: &[Point]) -> f64 {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.sockets as f64).sum::<f64>() / n;
    let my = points.iter().map(|p| p.rss_kib as f64).sum::<f64>() / n;
    let sxy: f64 = points
        .iter()
        .map(|p| (p.sockets as f64 - mx) * (p.rss_kib as f64 - my))
        .sum();
    let sxx: f64 = points.iter().map(|p| (p.sockets as f64 - mx).powi(2)).sum();
    if sxx == 0.0 {
        f64::NAN
    } else {
        sxy / sxx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slope_is_kib_per_socket() {
        let points: Vec<Point> = [(0, 1000), (1000, 11_000), (5000, 51_000)]
            .into_iter()
            .map(|(sockets, rss_kib)| Point { sockets, rss_kib })
            .collect();
        assert!((slope(&points) - 10.0).abs() < 1e-9);
        assert!(slope(&points[..1]).is_nan());
    }
}
