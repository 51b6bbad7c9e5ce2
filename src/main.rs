//! The `frontdesk` command: parses the command line and calls into the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use frontdesk::bot::Bot;
use frontdesk::escalation::Understand;
use frontdesk::kb::{self, Severity};
use frontdesk::nlu::{EmbeddingCache, Encoder};
use frontdesk::{App, Settings};

#[derive(Parser)]
#[command(
    name = "frontdesk",
    version,
    about = "Support chat server: a bot that answers from your knowledge base, and hands off to people"
)]
struct Cli {
    /// Settings file (TOML); `FRONTDESK_*` environment variables override it.
    #[arg(
        long,
        global = true,
        env = "FRONTDESK_CONFIG",
        default_value = "frontdesk.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the chat (the default).
    Serve,
    /// Knowledge-base tools for editors.
    Kb {
        #[command(subcommand)]
        command: KbCommand,
    },
    /// Print what the bot would answer to a question, and why.
    Ask {
        /// The question, as a customer would write it.
        question: String,
    },
    /// Agent accounts.
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
    },
    /// Measure answer quality on the public benchmarks (see docs/EVALUATION.md).
    Eval {
        /// Folder holding the benchmark data sets.
        #[arg(long, default_value = "../shared/data")]
        data: PathBuf,
        /// Use only the first N queries of each split (a quick check, as CI runs it).
        #[arg(long)]
        limit: Option<usize>,
    },
}

#[derive(Subcommand)]
enum AgentCommand {
    /// Create an agent account (password stored as an argon2 hash).
    Add {
        /// Name customers see, e.g. "Sam".
        #[arg(long)]
        name: String,
        /// Login email.
        #[arg(long)]
        email: String,
        /// Password (or set FRONTDESK_AGENT_PASSWORD).
        #[arg(long, env = "FRONTDESK_AGENT_PASSWORD")]
        password: String,
        /// Team served (repeat for several); none serves every team.
        #[arg(long = "team")]
        teams: Vec<String>,
        /// `agent` or `admin`.
        #[arg(long, default_value = "agent")]
        role: String,
        /// Chats at once (default: handoff.default_max_chats).
        #[arg(long)]
        max_chats: Option<i64>,
    },
}

#[derive(Subcommand)]
enum KbCommand {
    /// Check every article: front matter, empty sections, duplicate titles, broken links.
    Lint {
        /// Folder to check (default: kb.dir from the settings).
        dir: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tantivy=warn,sqlx=warn,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let settings = Settings::load(Some(&cli.config)).context("reading the settings")?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = App::build(settings).await?;
            tracing::info!("frontdesk is serving on http://localhost:{}/", app.port());
            app.run_until_stopped().await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Kb {
            command: KbCommand::Lint { dir },
        } => lint(&dir.unwrap_or(settings.kb.dir)),
        Command::Ask { question } => ask(settings, &question).await,
        Command::Eval { data, limit } => eval(settings, data, limit).await,
        Command::Agent {
            command:
                AgentCommand::Add {
                    name,
                    email,
                    password,
                    teams,
                    role,
                    max_chats,
                },
        } => {
            let store = frontdesk::store::Store::connect(&settings.store.url).await?;
            let new = frontdesk::handoff::accounts::NewAgent {
                name,
                email,
                password,
                role,
                teams,
                max_chats: max_chats.unwrap_or(settings.handoff.default_max_chats),
            };
            let agent = frontdesk::handoff::accounts::create_agent(&store, new).await?;
            println!(
                "created {} <{}> ({}, teams: {}, {} chats at once)",
                agent.name,
                agent.email,
                agent.role,
                if agent.teams.is_empty() {
                    "all".into()
                } else {
                    agent.teams.join(", ")
                },
                agent.max_chats
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn lint(dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let findings = kb::lint(dir)?;
    for f in &findings {
        let level = match f.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        println!("{level}: {}: {}", f.path, f.message);
    }
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    println!(
        "{} finding(s), {errors} error(s) in {}",
        findings.len(),
        dir.display()
    );
    Ok(if errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn ask(settings: Settings, question: &str) -> anyhow::Result<ExitCode> {
    let nlu = settings.nlu.clone();
    let encoder = tokio::task::spawn_blocking(move || Encoder::load(&nlu)).await??;
    let cache = EmbeddingCache::open(&settings.kb.embedding_cache)?;
    let kb = frontdesk::startup::open_kb(&settings, encoder, cache).await?;
    let bot = Bot::new(kb, settings.bot.clone());
    let reply = bot.reply(question).await?;
    // NLU seam: `ask` understands with the same implementation `serve` uses.
    let understanding = frontdesk::escalation::Neutral.understand(question).await;
    let decision = frontdesk::escalation::explain(
        &frontdesk::escalation::Policy::new(settings.escalation.clone()),
        &understanding,
        &reply,
        settings.bot.answer_threshold,
    );
    println!("question:   {question}");
    println!("outcome:    {}", reply.outcome.as_str());
    println!("confidence: {:.3}", reply.confidence);
    println!("why:        {}", reply.reason);
    println!("answer:     {}", reply.text.replace('\n', "\n            "));
    for s in &reply.sources {
        println!("source:     {} — {}", s.title, s.url);
    }
    println!(
        "understood: intent {} , out of scope {}, upset {:.2}",
        understanding
            .intent
            .as_ref()
            .map_or("-".into(), |i| format!("{} ({:.2})", i.name, i.confidence)),
        understanding.out_of_scope,
        understanding.upset
    );
    println!(
        "escalate:   {}{}",
        if decision.escalate { "yes" } else { "no" },
        decision
            .team
            .as_ref()
            .map_or(String::new(), |t| format!(" (team {t})"))
    );
    for r in &decision.reasons {
        println!("  reason:   {:?}: {}", r.kind, r.detail);
    }
    for c in &decision.checked {
        println!("  checked:  {c}");
    }
    println!("candidates:");
    for p in &reply.candidates {
        println!(
            "  {:.3}  bm25 #{:<2} semantic #{:<2}  {} › {}",
            p.similarity,
            p.bm25_rank.map_or("-".into(), |r| r.to_string()),
            p.semantic_rank,
            p.title,
            if p.heading_path.is_empty() {
                "(intro)".into()
            } else {
                p.heading_path.join(" › ")
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn eval(settings: Settings, data: PathBuf, limit: Option<usize>) -> anyhow::Result<ExitCode> {
    let nlu = settings.nlu.clone();
    let report = tokio::task::spawn_blocking(move || {
        let encoder = Encoder::load(&nlu)?;
        frontdesk::eval::stackfaq(&data, &encoder, limit)
    })
    .await??;
    let pct = |x: f64| format!("{:5.1}", x * 100.0);
    println!(
        "StackFAQ retrieval (article level; keyword weight {} chosen on dev)",
        report.keyword_weight
    );
    println!(
        "  dev sweep (weight: MRR@10): {}",
        report
            .dev_sweep
            .iter()
            .map(|(w, m)| format!("{w}: {:.3}", m))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  {:<10} {:<9} {:>6} {:>6} {:>7} {:>8}",
        "split", "method", "R@1", "R@5", "MRR@10", "queries"
    );
    for (split, s) in [("test", &report.test), ("all", &report.all)] {
        for (name, m) in [
            ("bm25", s.bm25),
            ("semantic", s.semantic),
            ("hybrid", s.hybrid),
        ] {
            println!(
                "  {:<10} {:<9} {:>6} {:>6} {:>7} {:>8}",
                split,
                name,
                pct(m.recall_at_1),
                pct(m.recall_at_5),
                pct(m.mrr_at_10),
                m.queries
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
