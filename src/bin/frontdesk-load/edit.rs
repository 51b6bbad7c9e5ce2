//! The edit profile: a section added to an article on disk, then the same question asked again
//! and again (each time in a new conversation, so no escalation rule interferes) until the bot
//! answers from the new text. Latency: from the end of the write to the first answer quoting it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::json;

use crate::report::{ms, Machine, Report, Table};
use crate::server::Server;
use crate::stats::{median, percentile};
use crate::ws::{self, SourceAddrs};
use crate::Common;

/// Options of the edit profile.
#[derive(Args, Debug)]
pub struct EditArgs {
    #[command(flatten)]
    common: Common,
    /// Edits measured per run (each a different new section).
    #[arg(long, default_value_t = 10)]
    repeats: usize,
    /// Seconds to wait for an edit to be answered before counting it as failed.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
}

const COLOURS: [&str; 12] = [
    "teal", "amber", "crimson", "violet", "olive", "indigo", "coral", "ivory", "saffron", "cobalt",
    "maroon", "jade",
];
const ANIMALS: [&str; 12] = [
    "otter", "heron", "lynx", "walrus", "gecko", "bison", "marten", "ibis", "yak", "newt",
    "puffin", "tapir",
];

/// The figures of all runs.
#[derive(Debug, Serialize)]
pub struct EditResults {
    /// Save → answer, ms, every edit of every run.
    pub samples_ms: Vec<f64>,
    /// Edits never answered within the timeout.
    pub failed: usize,
    /// Median, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
}

/// Runs the profile `--runs` times.
pub async fn run(args: EditArgs) -> anyhow::Result<ExitCode> {
    let machine = Machine::read(&args.common);
    let env = [("FRONTDESK_KB__WATCH", "true".to_string())];
    let mut samples = Vec::new();
    let mut failed = 0;
    for run in 0..args.common.runs {
        eprintln!("edit: run {} of {}", run + 1, args.common.runs);
        let server = Server::start(&args.common, &env, &[]).await?;
        let article = first_article(&server.kb_dir())?;
        // Every poll is a new conversation: each from an address of its own, so a cap on new
        // conversations per address never slows the polling.
        let addrs = SourceAddrs::new(1);
        for i in 0..args.repeats {
            let k = run * args.repeats + i;
            match one_edit(&server, &article, k, &args, &addrs).await? {
                Some(latency) => {
                    eprintln!("  edit {k}: answered {latency:.0} ms after the save");
                    samples.push(latency);
                }
                None => {
                    eprintln!("  edit {k}: not answered within {} s", args.timeout);
                    failed += 1;
                }
            }
        }
    }
    let mut sorted = samples.clone();
    sorted.sort_by(f64::total_cmp);
    let results = EditResults {
        p50_ms: median(samples.clone()),
        p90_ms: percentile(&sorted, 0.9),
        max_ms: sorted.last().copied().unwrap_or(f64::NAN),
        samples_ms: samples,
        failed,
    };
    let report = Report {
        profile: "edit",
        machine,
        runs: args.common.runs,
        settings: json!({"repeats": args.repeats, "timeout_seconds": args.timeout, "kb": args.common.kb}),
        notes: vec![
            "a new section is appended to the first article; the question is its first sentence; polled with one question per new conversation (each poll is a full bot turn, so the figure includes up to one turn)".into(),
        ],
        results,
        server: serde_json::Value::Null,
    };
    report.emit(&args.common, |r| {
        let mut t = Table::new(&["edits", "failed", "p50 ms", "p90 ms", "max ms"]);
        let x = &r.results;
        t.row(vec![
            x.samples_ms.len().to_string(),
            x.failed.to_string(),
            ms(x.p50_ms),
            ms(x.p90_ms),
            ms(x.max_ms),
        ]);
        t.print();
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The first markdown article (by path) in the knowledge base, searched recursively.
fn first_article(kb: &Path) -> anyhow::Result<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.is_dir() {
                walk(&path, out)?;
            } else if path.extension().is_some_and(|e| e == "md" || e == "mdx") {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(kb, &mut files)?;
    files.sort();
    files
        .into_iter()
        .next()
        .with_context(|| format!("no .md article in {}", kb.display()))
}

/// Adds section `k`, measures save → answer, puts the article back. `None`: never answered.
async fn one_edit(
    server: &Server,
    article: &Path,
    k: usize,
    args: &EditArgs,
    addrs: &SourceAddrs,
) -> anyhow::Result<Option<f64>> {
    let colour = COLOURS[k % COLOURS.len()];
    let animal = ANIMALS[(k / COLOURS.len()) % ANIMALS.len()];
    let question = format!("How do I switch on the {colour} {animal} layout for my reports?");
    let marker = format!("tick {colour} {animal} layout");
    let section = format!(
        "\n\n## The {colour} {animal} layout\n\n{question} Open Settings, then Labs, and {marker}: \
         every report then uses the {colour} {animal} layout.\n"
    );
    let original = std::fs::read_to_string(article)?;
    if ask(server, &question, addrs.next())
        .await?
        .contains(&marker)
    {
        bail!("the bot already answers {question:?} with the new text before the edit: the measurement would mean nothing");
    }
    std::fs::write(article, format!("{original}{section}"))?;
    let saved = Instant::now();
    let deadline = saved + Duration::from_secs_f64(args.timeout);
    let mut answered = None;
    while Instant::now() < deadline {
        if ask(server, &question, addrs.next())
            .await?
            .contains(&marker)
        {
            answered = Some(saved.elapsed().as_secs_f64() * 1000.0);
            break;
        }
    }
    std::fs::write(article, original)?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(answered)
}

/// Asks `question` in a new conversation; the bot's answer text (empty if it handed over).
async fn ask(server: &Server, question: &str, from: std::net::Ipv4Addr) -> anyhow::Result<String> {
    let ws = ws::connect(server.addr(), &server.ws_url("/ws/chat"), Some(from)).await?;
    let (mut sink, mut stream) = ws.split();
    ws::send(&mut sink, &json!({"type": "hello"})).await?;
    ws::send(
        &mut sink,
        &json!({"type": "message", "client_id": "edit", "text": question}),
    )
    .await?;
    let reply = ws::next_where(
        &mut stream,
        Duration::from_secs(10),
        "the bot's answer",
        |v| {
            (v["type"] == "message" && v["from"] == "bot")
                || (v["type"] == "status" && v["state"] == "queued")
        },
    )
    .await?;
    Ok(reply["text"].as_str().unwrap_or_default().to_owned())
}
