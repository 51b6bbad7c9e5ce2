//! Plays a question set against the real server: `frontdesk serve` built in process on a
//! temporary store and the knowledge base under test, and a customer's WebSocket per question or
//! conversation, as the widget opens it. What each turn did is read from the frames the customer
//! receives, nothing else: an answer (a bot message with sources and a "That helped" button), a
//! choice of articles (sources with choice buttons), a decline (a bot message without sources), or
//! a hand-off (`status` queued).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::kb::KnowledgeBase;
use crate::nlu::{EmbeddingCache, Encoder};
use crate::settings::Settings;
use crate::startup::App;

/// What the bot did with one customer message, as the customer saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Did {
    /// Answered, citing these pages (knowledge-base paths), first the one it answered from.
    Answered(Vec<String>),
    /// Offered these pages to choose from.
    Choices(Vec<String>),
    /// Said it does not know (or replied without a source: small talk).
    Declined,
    /// Handed the conversation to a person.
    Escalated,
    /// Nothing came back (the conversation was already with a person).
    Silent,
}

impl Did {
    /// Short description for the list of mistakes.
    pub fn describe(&self) -> String {
        match self {
            Did::Answered(p) => format!("answered from {}", p.join(", ")),
            Did::Choices(p) => format!("offered {}", p.join(" | ")),
            Did::Declined => "declined".into(),
            Did::Escalated => "handed over".into(),
            Did::Silent => "no reply".into(),
        }
    }
}

/// The server under test and how to tell a cited link's page.
pub struct Stage {
    port: u16,
    pages_by_link: HashMap<String, String>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    kb: KnowledgeBase,
    _data: tempfile::TempDir,
}

impl Drop for Stage {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Stage {
    /// Serves `settings` (its `kb.dir` is the base under test) on a free port with a temporary
    /// store, limits raised for one client asking many questions, and no file watching.
    pub async fn start(
        mut settings: Settings,
        encoder: Encoder,
        cache: EmbeddingCache,
    ) -> anyhow::Result<Self> {
        let data = tempfile::tempdir().context("a temporary folder for the eval's store")?;
        settings.server.host = "127.0.0.1".into();
        settings.server.port = 0;
        settings.store.url = format!("sqlite://{}", data.path().join("eval.db").display());
        settings.kb.watch = false;
        settings.agents.demo_agent = false;
        let limits = &mut settings.limits;
        limits.messages_per_second = 1_000.0;
        limits.message_burst = 1_000.0;
        limits.new_conversations_per_address_per_minute = 100_000.0;
        limits.queued_per_address = 100_000;
        limits.max_queued = 100_000;
        limits.sockets_per_address = 1_000;
        limits.idle_timeout_seconds = 600.0;
        limits.ping_interval_seconds = 300.0;
        let app = App::build_with(settings, encoder, cache).await?;
        let port = app.port();
        let kb = app.state().kb.clone();
        let server = tokio::spawn(app.run_until_stopped());
        let mut stage = Self {
            port,
            pages_by_link: HashMap::new(),
            server,
            kb,
            _data: data,
        };
        stage.index_links();
        Ok(stage)
    }

    /// The knowledge base being served.
    pub fn kb(&self) -> &KnowledgeBase {
        &self.kb
    }

    fn index_links(&mut self) {
        for summary in self.kb.articles() {
            let Some(article) = self.kb.article(&summary.path) else {
                continue;
            };
            for section in &article.sections {
                let link = crate::kb::link(&article, section);
                let base = link.split('#').next().unwrap_or(&link).to_owned();
                self.pages_by_link.insert(link, summary.path.clone());
                self.pages_by_link.insert(base, summary.path.clone());
            }
        }
    }

    fn page_of(&self, url: &str) -> String {
        self.pages_by_link
            .get(url)
            .or_else(|| self.pages_by_link.get(url.split('#').next().unwrap_or(url)))
            .cloned()
            .unwrap_or_else(|| format!("<unknown link {url}>"))
    }

    /// Opens a conversation, as the widget does.
    pub async fn customer(&self) -> anyhow::Result<Customer<'_>> {
        let url = format!("ws://127.0.0.1:{}/ws/chat", self.port);
        let (mut ws, _) = tokio_tungstenite::connect_async(&url)
            .await
            .with_context(|| format!("connecting to {url}"))?;
        ws.send(Message::text(
            json!({"type": "hello", "visitor": {"name": "eval"}}).to_string(),
        ))
        .await?;
        let mut customer = Customer {
            stage: self,
            ws,
            next: 0,
            seen: 0,
        };
        let welcome = customer.frame().await?;
        anyhow::ensure!(
            welcome["type"] == "welcome",
            "expected a welcome, got {welcome}"
        );
        Ok(customer)
    }
}

/// One customer's socket.
pub struct Customer<'a> {
    stage: &'a Stage,
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    next: u64,
    /// The highest `seq` seen, sent with each message as the widget does (`seen`).
    seen: i64,
}

/// Longest wait for one frame: a bot turn on a busy machine takes well under a second.
const WAIT: Duration = Duration::from_secs(60);

impl Customer<'_> {
    async fn frame(&mut self) -> anyhow::Result<Value> {
        loop {
            let message = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .context("the server sent nothing for a minute")?
                .context("the server closed the socket")??;
            if let Message::Text(text) = message {
                let frame: Value = serde_json::from_str(&text)?;
                if let Some(seq) = frame["seq"].as_i64() {
                    self.seen = self.seen.max(seq);
                }
                return Ok(frame);
            }
        }
    }

    /// Sends `text` and reads every frame up to the answer to a ping sent right after it (the
    /// server handles a socket's frames in order, so the whole turn is in between).
    pub async fn say(&mut self, text: &str) -> anyhow::Result<Did> {
        self.next += 1;
        let id = self.next;
        for frame in [
            json!({"type": "message", "client_id": format!("eval-{id}"), "seen": self.seen, "text": text}),
            json!({"type": "ping", "id": id}),
        ] {
            self.ws.send(Message::text(frame.to_string())).await?;
        }
        let mut did = Did::Silent;
        loop {
            let frame = self.frame().await?;
            match frame["type"].as_str() {
                Some("pong") if frame["id"] == id => return Ok(did),
                Some("error") => anyhow::bail!("the server refused \"{text}\": {frame}"),
                Some("status") if matches!(frame["state"].as_str(), Some("queued" | "agent")) => {
                    did = Did::Escalated
                }
                Some("message") if frame["from"] == "bot" && did != Did::Escalated => {
                    did = self.read_bot_message(&frame)
                }
                _ => {}
            }
        }
    }

    fn read_bot_message(&self, frame: &Value) -> Did {
        let pages: Vec<String> = frame["sources"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["url"].as_str())
            .map(|url| self.stage.page_of(url))
            .collect();
        if pages.is_empty() {
            return Did::Declined;
        }
        let actions: Vec<&str> = frame["quick_replies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["action"].as_str())
            .collect();
        if actions.contains(&"helpful") {
            Did::Answered(pages)
        } else {
            Did::Choices(pages)
        }
    }

    /// Closes the socket.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
