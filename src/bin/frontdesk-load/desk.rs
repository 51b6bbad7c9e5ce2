//! The desk profile: a support desk at work. Customers arrive open-loop at a given rate, ask the
//! bot a few unique questions, and some ask for a person; a few agents take the chats (assigned
//! automatically, or claimed from the queue with `--claim`), answer each customer message and
//! resolve after two; the customer rates and leaves. Reports escalation → agent `assigned`, bot
//! turns and agent replies.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use dashmap::DashMap;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{json, Value};

use crate::questions::Questions;
use crate::report::{latency_table, LatencyRow, Machine, Report, Table};
use crate::schedule::{self, Step};
use crate::server::{AgentSpec, Server, PASSWORD};
use crate::stats::{Recorder, Summary};
use crate::ws::{self, SourceAddrs};
use crate::Common;

mod agent;

/// Options of the desk profile.
#[derive(Args, Debug, Clone)]
pub struct DeskArgs {
    #[command(flatten)]
    common: Common,
    /// New customers per second.
    #[arg(long, default_value_t = 5.0, value_parser = crate::schedule::positive_rate)]
    arrivals: f64,
    /// Seconds customers keep arriving.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// Questions each customer asks the bot first.
    #[arg(long, default_value_t = 2)]
    questions: usize,
    /// Share of customers who then ask for a person (0–1).
    #[arg(long, default_value_t = 0.3)]
    escalate: f64,
    /// Agents online.
    #[arg(long, default_value_t = 4)]
    agents: usize,
    /// Chats each agent takes at once.
    #[arg(long, default_value_t = 5)]
    max_chats: usize,
    /// Agents claim from the queue (automatic assignment off) instead of being assigned.
    #[arg(long)]
    claim: bool,
}

/// What every session and agent reports to.
#[derive(Default)]
pub struct Desk {
    /// Question → bot answer.
    pub bot: Recorder,
    /// Questions asked of the bot.
    pub asked: AtomicUsize,
    /// `request_human` → the agent's `assigned`.
    pub escalation: Recorder,
    /// Agent reply sent → the customer has it.
    pub reply: Recorder,
    /// Per conversation, whichever of the escalation and the assignment was seen first.
    pub handover: DashMap<String, Mark>,
    /// Conversations handed to a person (asked for, or by the policy).
    pub escalations: AtomicUsize,
    /// When each agent reply was sent, by client id.
    pub replied_at: DashMap<String, Instant>,
    /// Customers who finished (rated, or got their answers and left).
    pub served: AtomicUsize,
    /// Conversations resolved by an agent.
    pub resolved: AtomicUsize,
    /// Sessions that failed (with the first errors printed).
    pub failed: AtomicUsize,
}

/// The first half of an escalation → assignment pair seen.
pub enum Mark {
    /// The customer escalated at this time (the agent's `assigned` not seen yet).
    Escalated(Instant),
    /// An agent got `assigned` at this time (the customer's side not recorded yet).
    Assigned(Instant),
}

impl Desk {
    /// Records one side of a handover; the second side records the latency.
    pub fn handover(&self, conversation: &str, mark: Mark) {
        use dashmap::mapref::entry::Entry;
        match (self.handover.entry(conversation.to_owned()), mark) {
            (Entry::Occupied(e), Mark::Assigned(at)) => {
                if let Mark::Escalated(from) = e.remove() {
                    self.escalation.record_ms(ms_between(from, at));
                }
            }
            (Entry::Occupied(e), Mark::Escalated(from)) => {
                if let Mark::Assigned(at) = e.remove() {
                    self.escalation.record_ms(ms_between(from, at));
                }
            }
            (Entry::Vacant(e), mark) => {
                e.insert(mark);
            }
        }
    }
}

fn ms_between(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

/// Counts of the run.
#[derive(Debug, Serialize, Default, Clone)]
pub struct Counts {
    /// Customers who arrived.
    pub customers: usize,
    /// Customers who finished.
    pub served: usize,
    /// Customers who asked for a person.
    pub escalated: usize,
    /// Conversations resolved by agents.
    pub resolved: usize,
    /// Sessions that failed.
    pub failed: usize,
}

/// The figures.
#[derive(Debug, Serialize)]
pub struct DeskResults {
    /// Latency rows (medians over runs).
    pub latencies: Vec<LatencyRow>,
    /// Counts of each run.
    pub counts: Vec<Counts>,
}

/// Runs the profile `--runs` times and reports medians.
pub async fn run(args: DeskArgs) -> anyhow::Result<ExitCode> {
    let machine = Machine::read(&args.common);
    let questions = Arc::new(Questions::from_kb(&args.common.kb)?);
    let mut env = vec![(
        "FRONTDESK_ESCALATION__UNANSWERED_TURNS",
        "1000000".to_string(),
    )];
    if args.claim {
        env.push(("FRONTDESK_HANDOFF__AUTO_ASSIGN", "false".into()));
    }
    let mut runs: [Vec<Summary>; 3] = Default::default();
    let mut counts = Vec::new();
    for run in 0..args.common.runs {
        eprintln!("desk: run {} of {}", run + 1, args.common.runs);
        let agents = AgentSpec::many(args.agents.max(1), args.max_chats);
        let server = Server::start(&args.common, &env, &agents).await?;
        let (summaries, count) = one_run(&server, &agents, &args, questions.clone()).await?;
        for (all, s) in runs.iter_mut().zip(summaries) {
            all.push(s);
        }
        counts.push(count);
    }
    let [bot, escalation, reply] = runs;
    let latencies = vec![
        LatencyRow::new("escalation → agent assigned", escalation),
        LatencyRow::new("bot turn (question → answer)", bot),
        LatencyRow::new("agent reply → customer", reply),
    ];
    let report = Report {
        profile: "desk",
        machine,
        runs: args.common.runs,
        settings: json!({
            "arrivals_per_s": args.arrivals, "seconds": args.seconds, "questions": args.questions,
            "escalate": args.escalate, "agents": args.agents, "max_chats": args.max_chats,
            "claim": args.claim, "server_env": env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
            "extra_server_env": args.common.server_env,
        }),
        notes: vec![
            "customers arrive open-loop; within a conversation each step waits for the previous answer, and latency counts from the actual send".into(),
            "offered/achieved columns are per second of the run; `lost` = requests with no answer".into(),
        ],
        results: DeskResults { latencies, counts },
        server: serde_json::Value::Null,
    };
    report.emit(&args.common, |r| {
        latency_table(&r.results.latencies);
        let mut t = Table::new(&[
            "run",
            "customers",
            "served",
            "escalated",
            "resolved",
            "failed",
        ]);
        for (i, c) in r.results.counts.iter().enumerate() {
            t.row(vec![
                (i + 1).to_string(),
                c.customers.to_string(),
                c.served.to_string(),
                c.escalated.to_string(),
                c.resolved.to_string(),
                c.failed.to_string(),
            ]);
        }
        t.print();
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn one_run(
    server: &Server,
    agents: &[AgentSpec],
    args: &DeskArgs,
    questions: Arc<Questions>,
) -> anyhow::Result<([Summary; 3], Counts)> {
    let desk = Arc::new(Desk::default());
    let agent_tasks = start_agents(server, agents, args, &desk).await?;
    let step = Step {
        rate: args.arrivals,
        duration: Duration::from_secs_f64(args.seconds),
    };
    let addrs = Arc::new(SourceAddrs::new(10));
    let handle = tokio::runtime::Handle::current();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let session = Session {
        server: server.addr(),
        url: server.ws_url("/ws/chat"),
        desk: desk.clone(),
        questions,
        asks: args.questions,
    };
    let session = Arc::new(session);
    let share = args.escalate;
    let start = schedule::start_soon();
    let customers = schedule::run(step, start, move |n, _| {
        let escalate = ((n + 1) as f64 * share).floor() > (n as f64 * share).floor();
        let (session, from, done) = (session.clone(), addrs.next(), done_tx.clone());
        handle.spawn(async move {
            if let Err(e) = session.run(n, from, escalate).await {
                if session.desk.failed.fetch_add(1, Ordering::Relaxed) < 5 {
                    eprintln!("  customer {n} failed: {e:#}");
                }
            }
            let _ = done.send(());
        });
    })
    .await as usize;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut finished = 0;
    while finished < customers {
        match tokio::time::timeout_at(deadline.into(), done_rx.recv()).await {
            Ok(Some(())) => finished += 1,
            _ => break,
        }
    }
    for t in agent_tasks {
        t.abort();
    }
    let elapsed = start.elapsed();
    let escalated = desk.escalations.load(Ordering::Relaxed);
    let summary = |r: &Recorder, sent: usize| {
        let (samples, _) = r.take();
        Summary::of(samples, sent, sent as f64 / elapsed.as_secs_f64(), elapsed)
    };
    let replies = desk.reply.count();
    let summaries = [
        summary(&desk.bot, desk.asked.load(Ordering::Relaxed)),
        summary(&desk.escalation, escalated),
        summary(&desk.reply, replies),
    ];
    let counts = Counts {
        customers,
        served: desk.served.load(Ordering::Relaxed),
        escalated,
        resolved: desk.resolved.load(Ordering::Relaxed),
        failed: desk.failed.load(Ordering::Relaxed) + customers - finished,
    };
    Ok((summaries, counts))
}

/// Logs the agents in and starts them working.
async fn start_agents(
    server: &Server,
    agents: &[AgentSpec],
    args: &DeskArgs,
    desk: &Arc<Desk>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for (i, spec) in agents.iter().enumerate() {
        let token = ws::login(&http, &server.url(""), &spec.email, PASSWORD).await?;
        let url = server.ws_url(&format!("/ws/agent?token={token}"));
        let ws = ws::connect(server.addr(), &url, None).await?;
        let agent = agent::Agent::new(i, desk.clone(), args.claim, args.max_chats);
        tasks.push(tokio::spawn(agent.run(ws)));
    }
    Ok(tasks)
}

/// One customer's visit.
struct Session {
    server: std::net::SocketAddr,
    url: String,
    desk: Arc<Desk>,
    questions: Arc<Questions>,
    asks: usize,
}

impl Session {
    async fn run(&self, n: u64, from: std::net::Ipv4Addr, escalate: bool) -> anyhow::Result<()> {
        let ws = ws::connect(self.server, &self.url, Some(from)).await?;
        let (mut sink, mut stream) = ws.split();
        ws::send(&mut sink, &json!({"type": "hello"})).await?;
        let welcome = ws::next_where(&mut stream, Duration::from_secs(30), "welcome", |v| {
            v["type"] == "welcome"
        })
        .await?;
        let conversation = welcome["conversation_id"]
            .as_str()
            .context("no conversation_id")?
            .to_owned();
        let wait = Duration::from_secs(60);
        let mut handed_over = false;
        for q in 0..self.asks {
            let text = self.questions.get(n as usize * self.asks + q);
            let sent = Instant::now();
            self.desk.asked.fetch_add(1, Ordering::Relaxed);
            ws::send(
                &mut sink,
                &json!({"type": "message", "client_id": format!("q{q}"), "text": text}),
            )
            .await?;
            let answer =
                ws::next_where(&mut stream, wait, "the bot's answer", is_bot_answer).await?;
            self.desk.bot.record(sent);
            if answer["type"] == "status" {
                self.desk.escalations.fetch_add(1, Ordering::Relaxed);
                self.desk.handover(&conversation, Mark::Escalated(sent));
                handed_over = true;
                break;
            }
        }
        if !escalate && !handed_over {
            self.desk.served.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        if !handed_over {
            self.desk.escalations.fetch_add(1, Ordering::Relaxed);
            self.desk
                .handover(&conversation, Mark::Escalated(Instant::now()));
            ws::send(&mut sink, &json!({"type": "request_human"})).await?;
        }
        ws::next_where(&mut stream, Duration::from_secs(120), "an agent", |v| {
            v["type"] == "status" && v["state"] == "agent"
        })
        .await?;
        for k in 0..2 {
            let text = format!("Thanks. One more detail, number {k}: it happens on every page.");
            ws::send(
                &mut sink,
                &json!({"type": "message", "client_id": format!("m{k}"), "text": text}),
            )
            .await?;
            let reply = ws::next_where(&mut stream, wait, "the agent's reply", |v| {
                v["type"] == "message" && v["from"] == "agent"
            })
            .await?;
            if let Some((_, at)) = reply["client_id"]
                .as_str()
                .and_then(|id| self.desk.replied_at.remove(id))
            {
                self.desk.reply.record(at);
            }
        }
        ws::next_where(&mut stream, wait, "csat_request", |v| {
            v["type"] == "csat_request"
        })
        .await?;
        ws::send(&mut sink, &json!({"type": "rate", "score": 5})).await?;
        ws::next_where(&mut stream, wait, "rate_ack", |v| v["type"] == "rate_ack").await?;
        self.desk.served.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The bot's answer to a question, or the status that says a person will take over instead.
fn is_bot_answer(v: &Value) -> bool {
    (v["type"] == "message" && v["from"] == "bot")
        || (v["type"] == "status" && v["state"] == "queued")
}
