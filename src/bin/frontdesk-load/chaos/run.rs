//! The chaos run itself: set-up, the writer and the disconnects, the kill, the drain, the verdict.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc::UnboundedSender;

use super::agent::Agent;
use super::customer::Customer;
use super::ledger::Ledger;
use super::verify::Verdict;
use super::{AgentCmd, ChaosArgs, Cmd, Ledgers, Stats};
use crate::report::{Machine, Report, Table};
use crate::server::{AgentSpec, Server, PASSWORD};
use crate::ws::{self, SourceAddrs};

/// Server settings of a chaos run: no rate limit in the way, no timer moving chats mid-run, and
/// time to answer a flooded conversation's transcript (thousands of long messages, read while a
/// debug server is still busy) before the request deadline.
const CHAOS_ENV: [(&str, &str); 5] = [
    crate::relay::RELAY_ENV[0],
    crate::relay::RELAY_ENV[1],
    crate::relay::RELAY_ENV[2],
    crate::relay::RELAY_ENV[3],
    ("FRONTDESK_SERVER__REQUEST_TIMEOUT_SECONDS", "600"),
];

/// The counts a chaos run prints.
#[derive(Debug, Serialize)]
pub struct ChaosResults {
    /// The random seed (`--seed` repeats the choices).
    pub seed: u64,
    /// Forced disconnects by the chaos schedule: customers, agents.
    pub forced_disconnects: (usize, usize),
    /// Customers that stopped reading while their agent flooded them.
    pub stalls: usize,
    /// Connections the drain dropped to make clients send what was still unacknowledged, and
    /// the end-of-run catch-up to make clients that were behind resume.
    pub drain_resyncs: usize,
    /// Seconds after the drain until the server had stored nothing for 3 s (`None`: it was
    /// still storing five minutes later).
    pub settled_seconds: Option<f64>,
    /// Times the server was killed with SIGKILL, and how long each restart took to be healthy, ms.
    pub kills: Vec<f64>,
    /// Customer resumes, agent reconnects.
    pub reconnects: (usize, usize),
    /// Connections the server closed (or lost by dying).
    pub closed_by_server: usize,
    /// Connection attempts that failed (mostly while the server was down).
    pub failed_attempts: usize,
    /// Resumes that did not get their conversation back.
    pub sessions_lost: usize,
    /// Chats agents found they no longer held.
    pub ownership_lost: usize,
    /// Agent messages not written as nobody held the chat.
    pub no_holder: usize,
    /// `error` frames the server sent.
    pub error_frames: usize,
    /// The first error frames and failures seen.
    pub samples: Vec<String>,
    /// Seconds of chatting under disconnects.
    pub chaos_seconds: f64,
    /// The checks against the store.
    pub verdict: Verdict,
}

/// Runs the chaos profile once; exit code 1 when a check failed.
pub async fn run(args: ChaosArgs) -> anyhow::Result<ExitCode> {
    if args.common.runs != 1 {
        bail!("a chaos run is one run with one verdict: repeat the command (with --seed) instead of --runs");
    }
    let seed = args.seed.unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(seed);
    let machine = Machine::read(&args.common);
    let n = args.conversations().max(1);
    let specs = AgentSpec::many(args.agents.max(1), n.div_ceil(args.agents.max(1)) + 2);
    let env: Vec<(&str, String)> = CHAOS_ENV.iter().map(|(k, v)| (*k, v.to_string())).collect();
    let mut server = Server::start(&args.common, &env, &specs).await?;
    eprintln!(
        "chaos: seed {seed}; {n} conversations, {} agents",
        specs.len()
    );
    let stats = Arc::new(Stats::default());
    let ledgers: Ledgers = Arc::default();
    let agents = start_agents(&server, &specs, &ledgers, &stats).await?;
    let (customers, conversations) = open_customers(&server, n, &ledgers, &stats).await?;
    let started = Instant::now();
    let writer = tokio::spawn(write(
        args.rate,
        seed ^ 0x5eed,
        customers.clone(),
        agents.clone(),
        conversations.clone(),
        stats.clone(),
    ));
    let (forced, kills) = disrupt(
        &args,
        &mut rng,
        &mut server,
        &customers,
        &agents,
        &conversations,
    )
    .await?;
    writer.abort();
    let chaos_seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "chaos: {} disconnects and {} kill(s) in {chaos_seconds:.0} s; draining",
        forced.0 + forced.1,
        kills.len()
    );
    let mut drain_resyncs = drain(&server, &conversations, &customers, &agents).await;
    let (caught_up, settled) =
        catch_up(&server, &specs[0], &conversations, &customers, &agents).await?;
    drain_resyncs += caught_up;
    stats
        .stopping
        .store(true, std::sync::atomic::Ordering::Release);
    for tx in &customers {
        let _ = tx.send(Cmd::Stop);
    }
    for tx in &agents {
        let _ = tx.send(AgentCmd::Stop);
    }
    let verdict = verify(&server, &specs[0], &conversations).await?;
    let results = ChaosResults::from_stats(
        &stats,
        seed,
        forced,
        kills,
        (drain_resyncs, settled.map(|d| d.as_secs_f64())),
        chaos_seconds,
        verdict,
    );
    let passed = results.verdict.passed() && results.sessions_lost == 0;
    let report = Report {
        profile: "chaos",
        machine,
        runs: 1,
        settings: settings(&args, seed, n, specs.len()),
        notes: vec![format!(
            "repeat with: frontdesk-load chaos --seed {seed} --disconnects {} --conversations {n} --agents {} --rate {} --every-ms {} --kills {} --stalls {} --stall-ms {} --flood {}",
            args.disconnects(), specs.len(), args.rate, args.every_ms, args.kills, args.stalls(), args.stall_ms, args.flood()
        )],
        results,
        server: serde_json::Value::Null,
    };
    report.emit(&args.common, print)?;
    println!("{}", if passed { "PASSED" } else { "FAILED" });
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

impl ChaosResults {
    fn from_stats(
        stats: &Stats,
        seed: u64,
        forced_disconnects: (usize, usize),
        kills: Vec<f64>,
        (drain_resyncs, settled_seconds): (usize, Option<f64>),
        chaos_seconds: f64,
        verdict: Verdict,
    ) -> Self {
        Self {
            seed,
            forced_disconnects,
            drain_resyncs,
            settled_seconds,
            stalls: stats.stalls.get(),
            kills,
            reconnects: (stats.reconnects.get(), stats.agent_reconnects.get()),
            closed_by_server: stats.closed_by_server.get(),
            failed_attempts: stats.failed_attempts.get(),
            sessions_lost: stats.sessions_lost.get(),
            ownership_lost: stats.ownership_lost.get(),
            no_holder: stats.no_holder.get(),
            error_frames: stats.errors.get(),
            samples: stats
                .samples
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            chaos_seconds,
            verdict,
        }
    }
}

fn settings(args: &ChaosArgs, seed: u64, conversations: usize, agents: usize) -> serde_json::Value {
    json!({
        "disconnects": args.disconnects(), "conversations": conversations, "agents": agents,
        "rate": args.rate, "every_ms": args.every_ms, "kills": args.kills, "seed": seed,
        "stalls": args.stalls(), "stall_ms": args.stall_ms, "flood": args.flood(),
        "server_env": CHAOS_ENV.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
    })
}

async fn start_agents(
    server: &Server,
    specs: &[AgentSpec],
    ledgers: &Ledgers,
    stats: &Arc<Stats>,
) -> anyhow::Result<Vec<UnboundedSender<AgentCmd>>> {
    let http = reqwest::Client::new();
    let mut senders = Vec::new();
    for (index, spec) in specs.iter().enumerate() {
        let token = ws::login(&http, &server.url(""), &spec.email, PASSWORD).await?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let (ready, is_ready) = tokio::sync::oneshot::channel();
        let agent = Agent {
            index,
            token,
            server: server.addr(),
            base: server.url(""),
            ledgers: ledgers.clone(),
            stats: stats.clone(),
            ready: Some(ready),
        };
        tokio::spawn(agent.run(rx));
        tokio::time::timeout(Duration::from_secs(10), is_ready)
            .await
            .with_context(|| format!("agent {} got no `ready` within 10 s", spec.email))??;
        senders.push(tx);
    }
    Ok(senders)
}

type Conversations = Vec<Arc<Mutex<Ledger>>>;

async fn open_customers(
    server: &Server,
    n: usize,
    ledgers: &Ledgers,
    stats: &Arc<Stats>,
) -> anyhow::Result<(Vec<UnboundedSender<Cmd>>, Conversations)> {
    let addrs = SourceAddrs::new(10);
    let opened: Vec<(Customer, anyhow::Result<ws::Ws>)> = futures_util::stream::iter(0..n)
        .map(|number| {
            let customer = Customer {
                server: server.addr(),
                url: server.ws_url("/ws/chat"),
                from: addrs.next(),
                stats: stats.clone(),
                ledger: Arc::new(Mutex::new(Ledger {
                    number,
                    ..Default::default()
                })),
            };
            async move {
                let ws = customer.open(ledgers).await;
                (customer, ws)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut senders = Vec::new();
    let mut conversations = Vec::new();
    for (customer, ws) in opened {
        let ws = ws.context("opening a customer's conversation")?;
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        conversations.push(customer.ledger.clone());
        tokio::spawn(customer.run(ws, rx));
        senders.push(tx);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while conversations
        .iter()
        .any(|l| l.lock().unwrap_or_else(|e| e.into_inner()).holder.is_none())
    {
        if Instant::now() > deadline {
            bail!(
                "some conversations were handed over but no agent was told `assigned` within 10 s"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((senders, conversations))
}

/// Writes messages at `rate` a second, each from a random conversation's customer or agent.
async fn write(
    rate: f64,
    seed: u64,
    customers: Vec<UnboundedSender<Cmd>>,
    agents: Vec<UnboundedSender<AgentCmd>>,
    conversations: Conversations,
    stats: Arc<Stats>,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.1)));
    loop {
        tick.tick().await;
        let i = rng.gen_range(0..customers.len());
        if rng.gen_bool(0.5) {
            let _ = customers[i].send(Cmd::Write);
            continue;
        }
        let (holder, id) = {
            let l = conversations[i].lock().unwrap_or_else(|e| e.into_inner());
            (l.holder, l.id.clone())
        };
        match holder {
            Some(h) => {
                let _ = agents[h].send(AgentCmd::Write(id));
            }
            None => stats.no_holder.inc(),
        }
    }
}

/// The disconnects, one every `--every-ms`, with the kills spread among them; then the slow
/// readers, one after another. Returns the forced
/// disconnects (customers, agents) and each restart's time to health, ms.
async fn disrupt(
    args: &ChaosArgs,
    rng: &mut StdRng,
    server: &mut Server,
    customers: &[UnboundedSender<Cmd>],
    agents: &[UnboundedSender<AgentCmd>],
    conversations: &Conversations,
) -> anyhow::Result<((usize, usize), Vec<f64>)> {
    let total = args.disconnects();
    let kill_at: Vec<usize> = (1..=args.kills)
        .map(|k| k * total / (args.kills + 1))
        .collect();
    let mut forced = (0, 0);
    let mut kills = Vec::new();
    for i in 0..total {
        tokio::time::sleep(Duration::from_millis(args.every_ms)).await;
        if kill_at.contains(&i) {
            eprintln!("chaos: kill -9 of the server after {i} disconnects");
            server.kill9().await?;
            tokio::time::sleep(Duration::from_millis(rng.gen_range(200..1000))).await;
            let took = server.restart().await?;
            eprintln!(
                "chaos: the server is back after {:.1} s",
                took.as_secs_f64()
            );
            kills.push(took.as_secs_f64() * 1000.0);
        }
        let reset = rng.gen_bool(0.5);
        if rng.gen_bool(0.75) {
            let _ = customers[rng.gen_range(0..customers.len())].send(Cmd::Drop { reset });
            forced.0 += 1;
        } else {
            let _ = agents[rng.gen_range(0..agents.len())].send(AgentCmd::Drop { reset });
            forced.1 += 1;
        }
    }
    // Slow readers last, one at a time with no disconnect or kill to end them early: the stalled
    // customer's socket stays open, as a phone's does when its app is in the background.
    for _ in 0..args.stalls() {
        stall(args, rng, customers, agents, conversations);
        tokio::time::sleep(Duration::from_millis(args.stall_ms + 2000)).await;
    }
    Ok((forced, kills))
}

/// A slow reader: a random customer stops reading while its agent sends it `--flood` long
/// messages at once.
fn stall(
    args: &ChaosArgs,
    rng: &mut StdRng,
    customers: &[UnboundedSender<Cmd>],
    agents: &[UnboundedSender<AgentCmd>],
    conversations: &Conversations,
) {
    let i = rng.gen_range(0..customers.len());
    let (holder, id) = {
        let l = conversations[i].lock().unwrap_or_else(|e| e.into_inner());
        (l.holder, l.id.clone())
    };
    let Some(h) = holder else { return };
    eprintln!(
        "chaos: customer {i} stops reading (until the flood is acknowledged, {} ms at most) while its agent sends {} long messages",
        args.stall_ms, args.flood()
    );
    let _ = customers[i].send(Cmd::Stall(Duration::from_millis(args.stall_ms)));
    let _ = agents[h].send(AgentCmd::Flood(id, args.flood()));
}

/// Waits until nothing is unacknowledged, making clients whose pending messages made no progress
/// in 5 s reconnect (and so send them again), at most 60 s; returns the reconnects it asked
/// for. A client is only nudged while the server stored nothing in those 5 s: a server still
/// working through a backlog (a flood re-sent after a reconnect) is not stuck, and dropping its
/// clients would only make them send the backlog once more.
async fn drain(
    server: &Server,
    conversations: &Conversations,
    customers: &[UnboundedSender<Cmd>],
    agents: &[UnboundedSender<AgentCmd>],
) -> usize {
    let mut resyncs = 0;
    // Pending counts at the last check: a client whose count has not gone down in 5 s is stuck
    // (an error frame, a lost ack) and is made to reconnect; one still working is left alone.
    let mut before: Vec<(usize, usize)> = vec![(usize::MAX, usize::MAX); conversations.len()];
    let mut stored = appends(server).await;
    for round in 1..=60 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut pending = 0;
        let check = round % 5 == 0;
        let server_idle = if check {
            let now = appends(server).await;
            let idle = now.is_none() || now == stored;
            stored = now;
            idle
        } else {
            false
        };
        for (i, l) in conversations.iter().enumerate() {
            let l = l.lock().unwrap_or_else(|e| e.into_inner());
            let now = (l.customer.pending.len(), l.agent.pending.len());
            pending += now.0 + now.1;
            if !check {
                continue;
            }
            if stuck(server_idle, before[i].0, now.0) {
                let _ = customers[i].send(Cmd::Drop { reset: false });
                resyncs += 1;
            }
            if let (true, Some(h)) = (stuck(server_idle, before[i].1, now.1), l.holder) {
                let _ = agents[h].send(AgentCmd::Drop { reset: false });
                resyncs += 1;
            }
            before[i] = now;
        }
        if pending == 0 {
            break;
        }
    }
    resyncs
}

/// Whether a client with `now` messages pending (`before` at the last check) is stuck and must
/// reconnect to send them again: only when the server stored nothing since the last check. While
/// the server works through a backlog a client's count may stand still; dropping it then makes it
/// send everything pending once more (a flood of thousands), which only adds to the backlog: the
/// full chaos run spent its drain that way and stopped its clients while the server was still
/// storing (and relaying) their messages.
fn stuck(server_idle: bool, before: usize, now: usize) -> bool {
    server_idle && now > 0 && now >= before
}

/// The server's store appends so far (`None` when `/metrics` cannot be read).
async fn appends(server: &Server) -> Option<f64> {
    server.scrape().await.ok().map(|s| s.appends())
}

/// Waits until the server has stored nothing for 3 s (at most `most`): then no frame is on its
/// way to a client, and what each client holds can be compared with the store. Returns how
/// long it took, or `None` if the server was still storing at the deadline.
async fn settle(server: &Server, most: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut quiet = Quiet::new(Duration::from_secs(3), appends(server).await, started);
    while started.elapsed() < most {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if quiet.observe(appends(server).await, Instant::now()) {
            return Some(started.elapsed());
        }
    }
    None
}

/// Watches a counter of the server's work for a span with no change.
struct Quiet {
    span: Duration,
    last: Option<f64>,
    since: Instant,
}

impl Quiet {
    fn new(span: Duration, first: Option<f64>, at: Instant) -> Self {
        Self {
            span,
            last: first,
            since: at,
        }
    }

    /// A new reading at `at`; true once the counter has stood still for the whole span (a
    /// reading that failed never counts as quiet).
    fn observe(&mut self, now: Option<f64>, at: Instant) -> bool {
        if now.is_some() && now == self.last {
            return at.duration_since(self.since) >= self.span;
        }
        self.last = now;
        self.since = at;
        false
    }
}

/// The end of a run: once the server is quiet, makes every customer that has not received its
/// conversation's last stored frame resume, and every agent that missed a frame of a chat it
/// holds reconnect (and read back), until none is behind or 10 rounds passed; returns how many
/// reconnects it asked for and how long the server took to settle the first time. Clients are
/// only stopped after this: a client stopped while the server is still storing misses what is
/// stored after, which says nothing about the server.
async fn catch_up(
    server: &Server,
    agent: &AgentSpec,
    conversations: &Conversations,
    customers: &[UnboundedSender<Cmd>],
    agents: &[UnboundedSender<AgentCmd>],
) -> anyhow::Result<(usize, Option<Duration>)> {
    let http = reqwest::Client::new();
    let token = ws::login(&http, &server.url(""), &agent.email, PASSWORD).await?;
    let mut asked = 0;
    let mut settled = None;
    for round in 0..10 {
        // A busy debug server took up to 2 minutes to work through the duplicates of re-sent
        // floods: allow more than that.
        let took = settle(server, Duration::from_secs(300)).await;
        if round == 0 {
            settled = took;
        }
        let mut behind = 0;
        let mut agents_behind = std::collections::BTreeSet::new();
        for (i, ledger) in conversations.iter().enumerate() {
            let id = ledger.lock().unwrap_or_else(|e| e.into_inner()).id.clone();
            let url = server.url(&format!("/api/conversations/{id}"));
            let body = ws::get_json(&http, &url, &token).await?;
            let seqs: Vec<i64> = body["transcript"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["seq"].as_i64())
                .collect();
            let last = seqs.iter().copied().max().unwrap_or(0);
            let mut l = ledger.lock().unwrap_or_else(|e| e.into_inner());
            let high = l.customer_view.high;
            l.customer_event(format!(
                "catch-up: stored up to seq {last}, customer at {high}"
            ));
            if last > high {
                if round == 0 && settled.is_some() && l.customer_live {
                    l.customer_stuck = Some(format!(
                        "{id}: the server stored up to seq {last} and was quiet for 3 s, but the customer's open socket had only got seq {high}"
                    ));
                }
                behind += 1;
                let _ = customers[i].send(Cmd::Drop { reset: false });
            }
            if let (false, Some(h)) = (l.agent_view.missing(seqs).is_empty(), l.holder) {
                agents_behind.insert(h);
            }
        }
        for h in &agents_behind {
            let _ = agents[*h].send(AgentCmd::Drop { reset: false });
        }
        if behind == 0 && agents_behind.is_empty() {
            break;
        }
        asked += behind + agents_behind.len();
        // Let them reconnect before the server is watched for quiet again.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Ok((asked, settled))
}

async fn verify(
    server: &Server,
    agent: &AgentSpec,
    conversations: &Conversations,
) -> anyhow::Result<Verdict> {
    let http = reqwest::Client::new();
    let token = ws::login(&http, &server.url(""), &agent.email, PASSWORD).await?;
    let mut verdict = Verdict::default();
    for ledger in conversations {
        let id = ledger.lock().unwrap_or_else(|e| e.into_inner()).id.clone();
        let body = ws::get_json(
            &http,
            &server.url(&format!("/api/conversations/{id}")),
            &token,
        )
        .await?;
        let transcript = body["transcript"].as_array().cloned().unwrap_or_default();
        verdict.check(
            &ledger.lock().unwrap_or_else(|e| e.into_inner()),
            &transcript,
        );
    }
    Ok(verdict)
}

fn print(report: &Report<ChaosResults>) {
    let r = &report.results;
    let v = &r.verdict;
    let mut t = Table::new(&["what", "count"]);
    let rows: Vec<(&str, String)> = vec![
        ("conversations", v.conversations.to_string()),
        (
            "forced disconnects: customers / agents",
            format!("{} / {}", r.forced_disconnects.0, r.forced_disconnects.1),
        ),
        (
            "server kill -9 (restart to healthy, ms)",
            format!(
                "{} ({:?})",
                r.kills.len(),
                r.kills.iter().map(|k| k.round()).collect::<Vec<_>>()
            ),
        ),
        (
            "resumes: customers / agents",
            format!("{} / {}", r.reconnects.0, r.reconnects.1),
        ),
        (
            "connections closed by the server",
            r.closed_by_server.to_string(),
        ),
        ("failed connection attempts", r.failed_attempts.to_string()),
        (
            "customer messages acknowledged / written",
            format!("{} / {}", v.customer_acked, v.customer_written),
        ),
        (
            "agent messages acknowledged / written",
            format!("{} / {}", v.agent_acked, v.agent_written),
        ),
        (
            "messages sent again after a reconnect",
            v.resent.to_string(),
        ),
        ("never acknowledged", v.unacknowledged.to_string()),
        (
            "of them stored after the last frame a side got",
            v.stored_after_the_end.to_string(),
        ),
        ("frames stored", v.stored_frames.to_string()),
        (
            "frames agents read back (missed live)",
            v.agent_read_back.to_string(),
        ),
        ("drain and catch-up reconnects", r.drain_resyncs.to_string()),
        (
            "server quiet after the drain (s)",
            r.settled_seconds
                .map_or("never (still storing)".into(), |s| format!("{s:.1}")),
        ),
        ("sessions lost", r.sessions_lost.to_string()),
        ("chats agents lost", r.ownership_lost.to_string()),
        ("error frames", r.error_frames.to_string()),
    ];
    for (what, count) in rows {
        t.row(vec![what.into(), count]);
    }
    t.print();
    if v.failure_counts.is_empty() {
        println!("every acknowledged message was delivered exactly once, in order, to both sides; nothing was stored twice");
    } else {
        println!("failures by kind: {:?}", v.failure_counts);
        for f in &v.failures {
            println!("  {f}");
        }
    }
    for s in &r.samples {
        println!("  seen: {s}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_nudged_only_when_the_server_stored_nothing_meanwhile() {
        // The server is working through a backlog: a count that stands still is not stuck.
        assert!(!stuck(false, 6000, 6000));
        assert!(stuck(true, 6000, 6000));
        // Progress, or nothing pending: never stuck.
        assert!(!stuck(true, 6000, 5999));
        assert!(!stuck(true, 0, 0));
        // The first check has no count before it (`usize::MAX`): progress by definition.
        assert!(!stuck(true, usize::MAX, 10));
    }

    #[test]
    fn the_server_is_quiet_only_after_a_whole_span_without_an_append() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        let mut q = Quiet::new(Duration::from_secs(3), Some(10.0), t0);
        assert!(!q.observe(Some(10.0), t0 + 2 * s));
        // An append restarts the span.
        assert!(!q.observe(Some(11.0), t0 + 3 * s));
        assert!(!q.observe(Some(11.0), t0 + 5 * s));
        assert!(q.observe(Some(11.0), t0 + 6 * s));
        // A scrape that failed is not quiet, nor is the first good one after it.
        let mut q = Quiet::new(Duration::from_secs(3), None, t0);
        assert!(!q.observe(None, t0 + 4 * s));
        assert!(!q.observe(Some(1.0), t0 + 5 * s));
        assert!(q.observe(Some(1.0), t0 + 8 * s));
    }
}
