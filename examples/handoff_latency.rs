//! Benchmark: time from a customer's escalating frame (`request_human`) to the agent's socket
//! receiving the assignment, against the real server on port 0 over real WebSockets.
//!
//! `cargo run --release --example handoff_latency -- [runs]` (default 300). Prints median and p99.

use std::time::{Duration, Instant};

use frontdesk::accounts::{self, NewAccount, Role};
use frontdesk::nlu::{EmbeddingCache, Encoder};
use frontdesk::{App, Settings};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next(ws: &mut Ws, pred: impl Fn(&Value) -> bool) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).expect("JSON");
            if pred(&v) {
                return v;
            }
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300);
    let data = tempfile::tempdir()?;
    let mut settings = Settings::default();
    settings.server.port = 0;
    settings.store.url = format!("sqlite://{}", data.path().join("bench.db").display());
    settings.kb.watch = false;
    settings.kb.embedding_cache = "target/test-embeddings.cache".into();
    // Every customer of the run comes from 127.0.0.1.
    settings.limits.new_conversations_per_address_per_minute = 1e9;
    settings.limits.handoff_requests_per_address_per_minute = 1e9;
    let nlu = settings.nlu.clone();
    let encoder = tokio::task::spawn_blocking(move || Encoder::load(&nlu)).await??;
    let cache = EmbeddingCache::open(&settings.kb.embedding_cache)?;
    let app = App::build_with(settings, encoder, cache).await?;
    let port = app.port();
    let store = app.state().store.clone();
    tokio::spawn(app.run_until_stopped());

    accounts::create(
        &store,
        NewAccount {
            name: "Bench".into(),
            email: "bench@example.com".into(),
            password: "bench-password".into(),
            role: Role::Agent,
            teams: Vec::new(),
            max_chats: 10,
        },
    )
    .await?;
    let login: Value = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/agent/login"))
        .json(&json!({"email": "bench@example.com", "password": "bench-password"}))
        .send()
        .await?
        .json()
        .await?;
    let token = login["token"].as_str().expect("token");
    let (mut agent, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws/agent?token={token}"))
            .await?;
    next(&mut agent, |v| v["type"] == "ready").await;

    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let (mut customer, _) =
            tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws/chat")).await?;
        customer
            .send(Message::Text(json!({"type": "hello"}).to_string().into()))
            .await?;
        let welcome = next(&mut customer, |v| v["type"] == "welcome").await;
        let id = welcome["conversation_id"].as_str().unwrap().to_owned();
        let start = Instant::now();
        customer
            .send(Message::Text(
                json!({"type": "request_human"}).to_string().into(),
            ))
            .await?;
        next(&mut agent, |v| {
            v["type"] == "assigned" && v["conversation_id"] == id.as_str()
        })
        .await;
        samples.push(start.elapsed());
        agent
            .send(Message::Text(
                json!({"type": "resolve", "conversation_id": id})
                    .to_string()
                    .into(),
            ))
            .await?;
        next(&mut agent, |v| {
            v["type"] == "unassigned" && v["conversation_id"] == id.as_str()
        })
        .await;
        let _ = customer.close(None).await;
    }
    samples.sort();
    let pick = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "escalation → agent socket (assigned, with context packet), {runs} runs: median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pick(0.5).as_secs_f64() * 1000.0,
        pick(0.99).as_secs_f64() * 1000.0,
        samples.last().unwrap().as_secs_f64() * 1000.0
    );
    Ok(())
}
