//! The bot profile: unique questions at offered rates, open-loop, spread over enough
//! conversations that none exceeds the server's default per-connection rate limit (one message a
//! second); latency from the planned send time to the bot's answer frame.

use std::collections::{BTreeMap, VecDeque};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::questions::Questions;
use crate::report::{latency_table, LatencyRow, Machine, Report};
use crate::schedule::{self, Step};
use crate::scrape::{self, ServerSide};
use crate::server::Server;
use crate::stats::{Recorder, Summary};
use crate::ws::{self, SourceAddrs};
use crate::Common;

/// Options of the bot profile.
#[derive(Args, Debug)]
pub struct BotArgs {
    #[command(flatten)]
    common: Common,
    /// Offered rates, questions per second.
    #[arg(long, value_delimiter = ',', default_value = "20,60,150,200", value_parser = crate::schedule::positive_rate)]
    rates: Vec<f64>,
    /// Seconds each rate is offered.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Seconds at the lowest rate first, not reported.
    #[arg(long, default_value_t = 3.0)]
    warmup: f64,
    /// Seconds between two questions in one conversation: a step opens rate × this many
    /// conversations (2.5 s keeps each under the default limit of one message a second).
    #[arg(long, default_value_t = 2.5)]
    spacing: f64,
}

/// "I don't know" twice in a row would hand the conversation to a person and silence the bot:
/// the profile measures bot turns, so it lifts that rule (everything else stays as configured).
const BOT_ENV: [(&str, &str); 1] = [("FRONTDESK_ESCALATION__UNANSWERED_TURNS", "1000000")];

/// Runs the profile `--runs` times and reports medians.
pub async fn run(args: BotArgs) -> anyhow::Result<ExitCode> {
    let machine = Machine::read(&args.common);
    let questions = Arc::new(Questions::from_kb(&args.common.kb)?);
    let mut runs: BTreeMap<u64, Vec<Summary>> = BTreeMap::new();
    let mut escalated = 0;
    let mut server_side = ServerSide::default();
    for run in 0..args.common.runs {
        eprintln!("bot: run {} of {}", run + 1, args.common.runs);
        let env: Vec<(&str, String)> = BOT_ENV.iter().map(|(k, v)| (*k, v.to_string())).collect();
        let server = Server::start(&args.common, &env, &[]).await?;
        let steps = crate::schedule::warmup_then(&args.rates, args.seconds, args.warmup);
        let mut asked = 0;
        for (keep, rate, seconds) in steps {
            let step = Step {
                rate,
                duration: Duration::from_secs_f64(seconds),
            };
            let stepping = offer(&server, &args, step, questions.clone(), asked);
            let (done, figures) = scrape::around(&server, stepping).await;
            let (summary, escalations) = done?;
            asked += step.count() as usize;
            if keep {
                eprintln!(
                    "  {rate:>5.0}/s: p50 {:.1} ms, p99 {:.1} ms, lost {}",
                    summary.p50_ms, summary.p99_ms, summary.lost
                );
                escalated += escalations;
                server_side.add(format!("bot turn @ {rate}/s"), figures);
                runs.entry(rate as u64).or_default().push(summary);
            }
        }
    }
    let rows: Vec<LatencyRow> = runs
        .into_iter()
        .map(|(rate, runs)| LatencyRow::at("bot turn", rate as f64, runs))
        .collect();
    let report = Report {
        profile: "bot",
        machine,
        runs: args.common.runs,
        settings: json!({
            "rates": args.rates, "seconds": args.seconds, "spacing_seconds": args.spacing,
            "kb": args.common.kb, "distinct_questions": questions.len(),
            "server_env": BOT_ENV.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
            "extra_server_env": args.common.server_env,
        }),
        notes: vec![
            "latency: planned send time → the bot's answer frame (or the status frame when the policy hands the chat to a person)".into(),
            format!("each question is new in the run (headings of the knowledge base × openings × endings); a conversation asks one every {} s, within the default rate limit", args.spacing),
            format!("turns handed to a person instead of answered, all runs: {escalated}"),
        ],
        results: rows,
        server: server_side.to_json(),
    };
    report.emit(&args.common, |r| {
        latency_table(&r.results);
        server_side.print();
    })?;
    Ok(ExitCode::SUCCESS)
}

/// One step: opens the conversations, offers the questions, waits for the answers.
async fn offer(
    server: &Server,
    args: &BotArgs,
    step: Step,
    questions: Arc<Questions>,
    first: usize,
) -> anyhow::Result<(Summary, usize)> {
    let conversations = (step.rate * args.spacing).ceil().max(1.0) as usize;
    let recorder = Arc::new(Recorder::default());
    let escalations = Arc::new(AtomicUsize::new(0));
    let addrs = Arc::new(SourceAddrs::new(10));
    let mut senders = Vec::new();
    let mut tasks = Vec::new();
    let (opened, mut open) = mpsc::unbounded_channel();
    let opening = Instant::now();
    for _ in 0..conversations {
        let (tx, rx) = mpsc::unbounded_channel();
        let customer = Customer {
            server: server.addr(),
            url: server.ws_url("/ws/chat"),
            from: addrs.next(),
            recorder: recorder.clone(),
            escalations: escalations.clone(),
        };
        tasks.push(tokio::spawn(customer.run(rx, opened.clone())));
        senders.push(tx);
    }
    drop(opened);
    // Every socket has its `welcome` before the first question is planned: a question planned
    // while its socket is still connecting would count the connection burst as the bot's time.
    // (The conversation itself is stored with its first message, as for any widget.)
    let mut n = 0;
    let all_open = async {
        while n < conversations && open.recv().await.is_some() {
            n += 1;
        }
    };
    let _ = tokio::time::timeout(OPEN_TIMEOUT, all_open).await;
    if n < conversations {
        for t in &tasks {
            t.abort();
        }
        anyhow::bail!(
            "only {n} of the step's {conversations} conversations opened within {} s. Offer a lower rate, \
             or give the server more room for new chats (its limits on sockets and on new \
             conversations per address, in the `limits` settings). The server's log ends with: {}",
            OPEN_TIMEOUT.as_secs(),
            server.log_tail()
        );
    }
    eprintln!(
        "  {:>5.0}/s: {conversations} sockets welcomed in {} ms",
        step.rate,
        opening.elapsed().as_millis()
    );
    let start = schedule::start_soon();
    let fired = schedule::run(step, start, move |n, planned| {
        let question = questions.get(first + n as usize);
        let _ = senders[n as usize % senders.len()].send((n, planned, question));
    })
    .await as usize;
    let deadline = Instant::now() + Duration::from_secs(30);
    while recorder.count() < fired && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for t in &tasks {
        t.abort();
    }
    let summary = recorder.summary(start, fired, step.rate, step.duration);
    Ok((summary, escalations.load(Ordering::Relaxed)))
}

/// One customer asking the questions it is handed, in one conversation.
struct Customer {
    server: std::net::SocketAddr,
    url: String,
    from: std::net::Ipv4Addr,
    recorder: Arc<Recorder>,
    escalations: Arc<AtomicUsize>,
}

type Question = (u64, Instant, String);

/// How long a step's conversations may take to open.
const OPEN_TIMEOUT: Duration = Duration::from_secs(60);

impl Customer {
    /// Asks each question as it arrives; a conversation handed to a person is replaced by a new
    /// one, and the questions still waiting are asked there.
    /// Says on `opened` when its first conversation is open (the server's `welcome` read).
    async fn run(
        self,
        mut questions: mpsc::UnboundedReceiver<Question>,
        opened: mpsc::UnboundedSender<()>,
    ) {
        let mut opened = Some(opened);
        let mut waiting: VecDeque<Question> = VecDeque::new();
        let mut more = true;
        loop {
            let Ok(ws) = ws::connect(self.server, &self.url, Some(self.from)).await else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            let (mut sink, mut stream) = ws.split();
            if ws::send(&mut sink, &json!({"type": "hello"}))
                .await
                .is_err()
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            if opened.is_some() {
                if !welcomed(&mut stream).await {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
                if let Some(opened) = opened.take() {
                    let _ = opened.send(());
                }
            }
            // The highest `seq` this conversation has shown, sent as `seen` with each question.
            let mut seen = 0;
            for (n, _, text) in &waiting {
                let _ = ws::send(&mut sink, &message(*n, text, seen)).await;
            }
            loop {
                if !more && waiting.is_empty() {
                    return;
                }
                tokio::select! {
                    q = questions.recv(), if more => {
                        let Some(q) = q else {
                            // The step planned everything: wait for the answers still due.
                            more = false;
                            continue;
                        };
                        let _ = ws::send(&mut sink, &message(q.0, &q.2, seen)).await;
                        waiting.push_back(q);
                    }
                    frame = stream.next() => {
                        let Some(Ok(frame)) = frame else { break };
                        let Some(v) = ws::parse(&frame) else { continue };
                        seen = seen.max(v["seq"].as_i64().unwrap_or(0));
                        if self.answered(&v, &mut waiting) {
                            break;
                        }
                    }
                }
            }
        }
    }

    /// Handles a frame; true when the conversation went to a person (start a new one).
    fn answered(&self, v: &Value, waiting: &mut VecDeque<Question>) -> bool {
        match v["type"].as_str() {
            Some("message") if v["from"] == "bot" => {
                if let Some((_, planned, _)) = waiting.pop_front() {
                    self.recorder.record(planned);
                }
                false
            }
            Some("status") if v["state"] == "queued" => {
                if let Some((_, planned, _)) = waiting.pop_front() {
                    self.recorder.record(planned);
                }
                self.escalations.fetch_add(1, Ordering::Relaxed);
                true
            }
            Some("error") => {
                let id = v["client_id"].as_str().unwrap_or_default();
                eprintln!("  the server refused a question: {v}");
                waiting.retain(|(n, _, _)| format!("q{n}") != id);
                false
            }
            _ => false,
        }
    }
}

/// Reads frames until the server's `welcome`; false if the socket ended first.
async fn welcomed(stream: &mut ws::Stream) -> bool {
    while let Some(Ok(frame)) = stream.next().await {
        if ws::parse(&frame).is_some_and(|v| v["type"] == "welcome") {
            return true;
        }
    }
    false
}

fn message(n: u64, text: &str, seen: i64) -> Value {
    json!({"type": "message", "client_id": format!("q{n}"), "seen": seen, "text": text})
}
