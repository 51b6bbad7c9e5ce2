//! Shared by the integration tests: start the real server on port 0 with a temporary database and a
//! temporary copy of a knowledge base, and talk to it as the widget does.
#![allow(dead_code)]

pub mod node;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use std::sync::Arc;

use frontdesk::accounts::{self, NewAccount};
use frontdesk::escalation::{Scripted, Understand};
use frontdesk::kb::KnowledgeBase;
use frontdesk::nlu::{EmbeddingCache, Encoder, Understanding};
use frontdesk::settings::NluSettings;
use frontdesk::{App, Settings};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The public benchmark data that lives beside the repository (`../shared/data/<rel>`), or `None`
/// in a clone that has none (a newcomer's): then the test says on the terminal that it is skipped
/// and why, and passes. CI has the data, so there the test runs.
pub fn shared_data(test: &str, rel: &str) -> Option<PathBuf> {
    let path = root().join("../shared/data").join(rel);
    if path.exists() {
        return Some(path);
    }
    // Straight to stderr, past the test harness's capture, so the skip is seen in `make test`.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "skipped {test}: the benchmark data ../shared/data/{rel} is not beside this clone"
    );
    None
}

/// The customer asks for a person, `agent` claims the chat `id` and resolves it; returns once the
/// customer has read `resolved`.
pub async fn request_claim_and_resolve(customer: &mut Client, agent: &mut AgentClient, id: &str) {
    customer.send(json!({"type": "request_human"})).await;
    while customer.recv().await["state"] != "queued" {}
    agent
        .send(json!({"type": "claim", "conversation_id": id}))
        .await;
    agent.next("assigned").await;
    agent
        .send(json!({"type": "resolve", "conversation_id": id}))
        .await;
    while customer.recv().await["state"] != "resolved" {}
}

/// Two agents claim conversation `id` at the same moment; each one's answer (`assigned` or
/// `claim_failed`), in the order of the agents. Each socket answers its ping after its claim, so
/// the answer to the claim is among the frames before the pong.
pub async fn race_to_claim(a: &mut AgentClient, b: &mut AgentClient, id: &str) -> (Value, Value) {
    let claim = json!({"type": "claim", "conversation_id": id});
    tokio::join!(a.send(claim.clone()), b.send(claim));
    let outcome = |frames: Vec<Value>| {
        frames
            .into_iter()
            .find(|f| f["type"] == "assigned" || f["type"] == "claim_failed")
            .expect("an answer to the claim")
    };
    (outcome(a.settle().await), outcome(b.settle().await))
}

/// The URLs of the services the test needs, from the environment variables `vars` (set by
/// scripts/with-postgres.sh and scripts/with-redis.sh), or `None` after saying on the terminal that
/// `test` (of test file `file`) is skipped. With FRONTDESK_REQUIRE_POSTGRES=1 (CI) a missing one
/// fails the test instead.
pub fn services(file: &str, test: &str, vars: &[&str]) -> Option<Vec<String>> {
    let found: Vec<Option<String>> = vars
        .iter()
        .map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        .collect();
    let Some(missing) = vars
        .iter()
        .zip(&found)
        .find(|(_, f)| f.is_none())
        .map(|(v, _)| *v)
    else {
        return Some(found.into_iter().flatten().collect());
    };
    if std::env::var("FRONTDESK_REQUIRE_POSTGRES").as_deref() == Ok("1") {
        panic!("FRONTDESK_REQUIRE_POSTGRES=1 but {missing} is unset: run the tests under scripts/with-postgres.sh scripts/with-redis.sh (as `make test` does)");
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "skipped {file} {test}: {missing} is unset (`make test` starts Postgres and Redis with \
         scripts/with-postgres.sh and scripts/with-redis.sh)"
    );
    None
}

/// A new, empty database on the Postgres server of `admin` (a user who may create databases);
/// its URL.
pub async fn fresh_postgres_database(admin: &str) -> String {
    let name = format!("frontdesk_test_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::PgPool::connect(admin)
        .await
        .expect("connect to FRONTDESK_TEST_POSTGRES");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&pool)
        .await
        .expect("FRONTDESK_TEST_POSTGRES's user may create databases");
    pool.close().await;
    let mut url = url::Url::parse(admin).expect("a URL");
    url.set_path(&name);
    url.to_string()
}

/// The server on the Plausible help centre of ../shared/data, its settings adjusted by `adjust`, or
/// `None` (the skip said, see [`shared_data`]) in a clone without the data.
pub async fn spawn_plausible_app(
    test: &str,
    adjust: impl FnOnce(&mut Settings),
) -> Option<TestApp> {
    let docs = shared_data(test, "plausible_docs/docs")?;
    Some(
        spawn_app_with(move |s| {
            s.kb.dir = docs;
            adjust(s);
        })
        .await,
    )
}

/// One encoder and one embedding cache for every test in the process (the model is loaded once,
/// and the demo base is embedded once, before any test uses it).
pub fn nlu() -> (Encoder, EmbeddingCache) {
    static NLU: OnceLock<(Encoder, EmbeddingCache)> = OnceLock::new();
    NLU.get_or_init(|| {
        std::thread::spawn(|| {
            let settings = NluSettings {
                model_dir: root().join("models/all-MiniLM-L6-v2"),
                onnx_model_dir: root().join("models/all-MiniLM-L6-v2-int8"),
                onnx_runtime: root().join(".onnxruntime/libonnxruntime.so"),
                ..Default::default()
            };
            let encoder =
                Encoder::load(&settings).expect("the encoder loads; run scripts/setup.sh first");
            let cache = EmbeddingCache::open(&root().join("target/test-embeddings.cache"))
                .expect("cache opens");
            KnowledgeBase::open(
                &root().join("knowledge_base"),
                encoder.clone(),
                cache.clone(),
            )
            .expect("the demo knowledge base indexes");
            (encoder, cache)
        })
        .join()
        .expect("warm-up thread")
    })
    .clone()
}

pub struct TestApp {
    pub port: u16,
    /// Its id among several nodes (`cluster.redis_url`), or `None` on its own.
    pub node: Option<String>,
    pub store: frontdesk::store::Store,
    pub accounts: frontdesk::accounts::Accounts,
    pub kb_dir: PathBuf,
    settings: Settings,
    understand: Option<Arc<dyn Understand>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    editor: tokio::sync::OnceCell<String>,
    _kb: tempfile::TempDir,
    _data: tempfile::TempDir,
}

impl TestApp {
    pub fn http(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.port).await
    }

    /// Creates an agent account and logs in over HTTP; returns the token.
    pub async fn agent_token(&self, name: &str, teams: &[&str]) -> String {
        self.account_token(name, "agent", teams).await
    }

    /// Creates an account of `role` and logs in over HTTP; returns the token.
    pub async fn account_token(&self, name: &str, role: &str, teams: &[&str]) -> String {
        let email = format!("{}@example.com", name.to_lowercase().replace(' ', "."));
        accounts::create(
            &self.store,
            NewAccount {
                name: name.into(),
                email: email.clone(),
                password: "secret-password".into(),
                role: role.parse().expect("a known role"),
                teams: teams.iter().map(|t| t.to_string()).collect(),
                max_chats: 3,
            },
        )
        .await
        .expect("agent created");
        let response = reqwest::Client::new()
            .post(self.http("/api/agent/login"))
            .json(&json!({"email": email, "password": "secret-password"}))
            .send()
            .await
            .expect("login");
        assert_eq!(response.status().as_u16(), 200);
        let body: Value = response.json().await.unwrap();
        body["token"].as_str().unwrap().to_owned()
    }

    /// An agent's console connected with `token`, past `ready` and the first queue snapshot.
    pub async fn agent(&self, token: &str) -> AgentClient {
        let mut agent = AgentClient::connect(self.port, token).await;
        assert_eq!(agent.next("ready").await["type"], "ready");
        agent
    }

    /// The store's URL (`sqlite://…`), for a test that edits it as a crash would have left it.
    pub fn database_url(&self) -> String {
        self.settings.store.url.clone()
    }

    /// GET with a bearer token.
    pub async fn get_as(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut request = reqwest::Client::new().get(self.http(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A logged-in editor's token (an account created on first use), for the editors' routes.
    pub async fn editor_token(&self) -> &str {
        self.editor
            .get_or_init(|| self.account_token("Editor", "editor", &[]))
            .await
    }

    /// GET as a logged-in editor.
    pub async fn api(&self, path: &str) -> (u16, Value) {
        let token = self.editor_token().await.to_owned();
        self.get_as(path, Some(&token)).await
    }

    /// GET without a token.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = reqwest::get(self.http(path)).await.expect("request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// The server with a copy of the demo knowledge base.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// The server with a copy of the demo knowledge base and adjusted settings.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let kb = tempfile::tempdir().expect("temp dir");
    copy_dir(&root().join("knowledge_base"), kb.path());
    spawn_in(kb, adjust).await
}

/// The server with a knowledge base of the given files only.
pub async fn spawn_app_with_files(files: &[(&str, &str)]) -> TestApp {
    spawn_app_with_files_and(files, |_| {}).await
}

/// The server with a knowledge base of the given files only and adjusted settings.
pub async fn spawn_app_with_files_and(
    files: &[(&str, &str)],
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    let kb = tempfile::tempdir().expect("temp dir");
    for (path, text) in files {
        let full = kb.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, text).unwrap();
    }
    spawn_in(kb, adjust).await
}

/// The server with a copy of the demo knowledge base, adjusted settings, and `script` deciding
/// what customers mean (on the real embeddings, so the bot still finds its passages).
pub async fn spawn_app_understanding(
    adjust: impl FnOnce(&mut Settings),
    script: fn(&str) -> Understanding,
) -> TestApp {
    let kb = tempfile::tempdir().expect("temp dir");
    copy_dir(&root().join("knowledge_base"), kb.path());
    let understand: Arc<dyn Understand> = Arc::new(Scripted::new(nlu().0, script));
    spawn_in_with(kb, adjust, Some(understand)).await
}

/// The server with a copy of the demo knowledge base, adjusted settings, and `understand` as the
/// language-understanding seam.
pub async fn spawn_app_with_seam(
    adjust: impl FnOnce(&mut Settings),
    understand: Arc<dyn Understand>,
) -> TestApp {
    let kb = tempfile::tempdir().expect("temp dir");
    copy_dir(&root().join("knowledge_base"), kb.path());
    spawn_in_with(kb, adjust, Some(understand)).await
}

/// The settings every test server starts from: port 0, the store and caches in `data`, the
/// knowledge base in `kb`, the committed language models.
pub fn test_settings(kb: &Path, data: &Path) -> Settings {
    let mut settings = Settings::default();
    settings.server.port = 0;
    settings.store.url = format!("sqlite://{}", data.join("test.db").display());
    settings.kb.dir = kb.to_owned();
    settings.kb.embedding_cache = data.join("unused.cache");
    settings.nlu.model_dir = root().join("models/all-MiniLM-L6-v2");
    settings.nlu.onnx_model_dir = root().join("models/all-MiniLM-L6-v2-int8");
    settings.nlu.onnx_runtime = root().join(".onnxruntime/libonnxruntime.so");
    settings.nlu.intents = root().join("models/intents.yaml");
    settings.nlu.out_of_scope_examples = root().join("models/out_of_scope.yaml");
    settings.nlu.intent_model = root().join("models/intents.model.json");
    settings.nlu.upset_model = root().join("models/upset.json");
    settings.nlu.signals_model = root().join("models/signals.json");
    settings.nlu.tuned_signals_dir = root().join("models/signals-tuned");
    settings.bot.rerank.model_dir = root().join("models/reranker");
    // The committed intent model must match the committed examples: run `frontdesk train`.
    settings.nlu.retrain_stale = false;
    settings
}

/// The trained language models understand customers, as in production.
async fn spawn_in(kb: tempfile::TempDir, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_in_with(kb, adjust, None).await
}

async fn spawn_in_with(
    kb: tempfile::TempDir,
    adjust: impl FnOnce(&mut Settings),
    understand: Option<Arc<dyn Understand>>,
) -> TestApp {
    let data = tempfile::tempdir().expect("temp dir");
    let mut settings = test_settings(kb.path(), data.path());
    adjust(&mut settings);
    start(settings, understand, kb, data).await
}

/// Builds and serves the app on the given settings and directories.
async fn start(
    settings: Settings,
    understand: Option<Arc<dyn Understand>>,
    kb: tempfile::TempDir,
    data: tempfile::TempDir,
) -> TestApp {
    let (encoder, cache) = nlu();
    let app = match understand.clone() {
        Some(u) => App::build_with_understanding(settings.clone(), encoder, cache, u).await,
        None => App::build_with(settings.clone(), encoder, cache).await,
    }
    .expect("the app builds");
    let port = app.port();
    let node = app.state().desk.node().map(String::from);
    let store = app.state().store.clone();
    let accounts = app.state().accounts.clone();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        port,
        node,
        store,
        accounts,
        kb_dir: kb.path().to_owned(),
        settings,
        understand,
        server,
        editor: tokio::sync::OnceCell::new(),
        _kb: kb,
        _data: data,
    }
}

impl TestApp {
    /// Stops the server (its listener, timers and in-memory state) and starts a new one on the
    /// same store and knowledge base, on a new port: what an operator's restart does. Close the
    /// clients first; open sockets of the old server are not closed by this.
    pub async fn restart(self) -> TestApp {
        self.restart_with(|_| {}).await
    }

    /// Stops the server as a crash would: its listener, timers and link to other nodes end at
    /// once and nothing is given up (a timer lease expires). Close its clients first; open
    /// sockets are not closed by this.
    pub async fn crash(self) {
        self.server.abort();
        let _ = self.server.await;
    }

    /// As [`TestApp::restart`], with the settings changed first (an operator's edit of the
    /// configuration before the restart).
    pub async fn restart_with(mut self, adjust: impl FnOnce(&mut Settings)) -> TestApp {
        self.server.abort();
        let _ = self.server.await;
        adjust(&mut self.settings);
        let mut app = start(self.settings, self.understand, self._kb, self._data).await;
        app.editor = self.editor; // the account and its token live in the store
        app
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A customer's WebSocket, as the widget uses it.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

const WAIT: Duration = Duration::from_secs(20);

impl Client {
    pub async fn connect(port: u16) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws/chat"))
            .await
            .expect("the WebSocket connects");
        Self { ws }
    }

    /// A customer socket from the local address `from` (any of 127.0.0.0/8), optionally with a
    /// small kernel receive buffer (a phone on a bad network, or a client that stops reading).
    pub async fn connect_from(
        port: u16,
        from: [u8; 4],
        receive_buffer: Option<u32>,
    ) -> Result<Self, tokio_tungstenite::tungstenite::Error> {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket
            .bind(std::net::SocketAddr::from((from, 0)))
            .expect("127.0.0.0/8 addresses bind on Linux");
        if let Some(size) = receive_buffer {
            socket.set_recv_buffer_size(size).expect("receive buffer");
        }
        let stream = socket
            .connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .expect("TCP connects");
        let url = format!("ws://127.0.0.1:{port}/ws/chat");
        let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream)).await?;
        Ok(Self { ws })
    }

    pub async fn send(&mut self, frame: Value) {
        self.send_raw(frame.to_string()).await;
    }

    pub async fn send_raw(&mut self, text: String) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("frame sent");
    }

    /// The next frame that is not a typing indicator.
    pub async fn recv(&mut self) -> Value {
        loop {
            let frame = self.recv_any(WAIT).await.expect("a frame arrives in time");
            if frame["type"] != "typing" {
                return frame;
            }
        }
    }

    /// The next frame of any type, or None if nothing comes within `wait`.
    pub async fn recv_any(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            match message
                .expect("the connection stays open")
                .expect("a frame")
            {
                Message::Text(text) => {
                    return Some(serde_json::from_str(&text).expect("JSON frame"))
                }
                Message::Close(reason) => panic!("the server closed the connection: {reason:?}"),
                _ => continue,
            }
        }
    }

    /// Frames other than typing indicators arriving within `wait`.
    pub async fn drain(&mut self, wait: Duration) -> Vec<Value> {
        let mut frames = Vec::new();
        while let Some(f) = self.recv_any(wait).await {
            if f["type"] != "typing" {
                frames.push(f);
            }
        }
        frames
    }

    /// Sends `ping` and returns the frames (but typing indicators) that arrive before its `pong`:
    /// the server answers a ping only once everything sent before it has been handled, so this
    /// is everything the earlier frames caused on this socket.
    pub async fn settle(&mut self) -> Vec<Value> {
        self.send(json!({"type": "ping", "id": "settle"})).await;
        let mut frames = Vec::new();
        loop {
            let f = self.recv().await;
            if f["type"] == "pong" && f["id"] == "settle" {
                return frames;
            }
            frames.push(f);
        }
    }

    /// Waits for the server to close the socket; returns the close code (None for a plain drop).
    pub async fn closed(&mut self, wait: Duration) -> Option<u16> {
        closed(&mut self.ws, wait).await
    }

    /// The next text frame, or the close code when the server closes the socket (None when it
    /// drops it without a close frame). Panics if nothing happens within `wait`.
    pub async fn recv_or_close(&mut self, wait: Duration) -> Result<Value, Option<u16>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("a frame or the close in time");
            match next {
                Some(Ok(Message::Text(text))) => {
                    return Ok(serde_json::from_str(&text).expect("JSON frame"))
                }
                Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| u16::from(f.code))),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(None),
            }
        }
    }

    /// Sends hello and returns the welcome.
    pub async fn hello(&mut self, session: Option<&str>, last_seq: Option<i64>) -> Value {
        self.send(
            json!({"type": "hello", "protocol": 1, "session": session, "last_seq": last_seq,
            "visitor": {"name": "Test Customer", "page": "https://shop.example/checkout"}}),
        )
        .await;
        let welcome = self.recv().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        welcome
    }

    /// Resumes `session` from `last_seq` and returns the bot's first message after it, whether it
    /// comes in the welcome's `missed` or live.
    pub async fn resume_until_bot(&mut self, session: &str, last_seq: i64) -> Value {
        let welcome = self.hello(Some(session), Some(last_seq)).await;
        let mut frames: Vec<Value> = welcome["missed"].as_array().expect("missed").clone();
        loop {
            if let Some(answer) = frames.iter().find(|f| f["from"] == "bot") {
                return answer.clone();
            }
            frames.push(self.recv().await);
        }
    }

    /// Sends a message and returns its ack and the bot's reply.
    pub async fn ask(&mut self, client_id: &str, text: &str) -> (Value, Value) {
        self.send(json!({"type": "message", "client_id": client_id, "text": text}))
            .await;
        let ack = self.recv().await;
        assert_eq!(ack["type"], "ack", "{ack}");
        let reply = self.recv().await;
        assert_eq!(reply["type"], "message", "{reply}");
        (ack, reply)
    }

    /// Sends a message and returns, after its ack, the next `message` or `status` frame: the
    /// bot's answer, or the news that the chat went to a person.
    pub async fn outcome(&mut self, client_id: &str, text: &str) -> Value {
        self.send(json!({"type": "message", "client_id": client_id, "text": text}))
            .await;
        let ack = self.recv().await;
        assert_eq!(ack["type"], "ack", "{ack}");
        loop {
            let frame = self.recv().await;
            if matches!(frame["type"].as_str(), Some("message") | Some("status")) {
                return frame;
            }
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// An agent's console WebSocket.
pub struct AgentClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The queue as the frames read so far tell it (a `queue` snapshot, then `queue_changed`).
    queue: std::collections::BTreeMap<String, Value>,
    /// The largest queue frame read so far, in bytes.
    pub largest_queue_frame: usize,
}

impl AgentClient {
    pub async fn connect(port: u16, token: &str) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(format!(
            "ws://127.0.0.1:{port}/ws/agent?token={token}"
        ))
        .await
        .expect("the agent WebSocket connects");
        Self {
            ws,
            queue: Default::default(),
            largest_queue_frame: 0,
        }
    }

    /// The agent socket as the console opens it: the token follows in an `auth` frame.
    pub async fn connect_unauthenticated(port: u16) -> Self {
        let (ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws/agent"))
            .await
            .expect("the agent WebSocket connects");
        Self {
            ws,
            queue: Default::default(),
            largest_queue_frame: 0,
        }
    }

    pub async fn send(&mut self, frame: Value) {
        self.ws
            .send(Message::Text(frame.to_string().into()))
            .await
            .expect("frame sent");
    }

    /// The next frame of any type, or None within `wait`.
    pub async fn recv_any(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            match message
                .expect("the connection stays open")
                .expect("a frame")
            {
                Message::Text(text) => {
                    let frame: Value = serde_json::from_str(&text).expect("JSON");
                    if frame["type"] == "queue" || frame["type"] == "queue_changed" {
                        self.largest_queue_frame = self.largest_queue_frame.max(text.len());
                    }
                    self.follow_queue(&frame);
                    return Some(frame);
                }
                Message::Close(reason) => panic!("the server closed the connection: {reason:?}"),
                _ => continue,
            }
        }
    }

    fn follow_queue(&mut self, frame: &Value) {
        let entries = |key: &str| frame[key].as_array().cloned().unwrap_or_default();
        match frame["type"].as_str() {
            Some("queue") => {
                self.queue.clear();
                for e in entries("entries") {
                    self.queue
                        .insert(e["conversation_id"].as_str().unwrap().to_owned(), e);
                }
            }
            Some("queue_changed") => {
                for id in entries("removed") {
                    self.queue.remove(id.as_str().unwrap());
                }
                for e in entries("upserted") {
                    self.queue
                        .insert(e["conversation_id"].as_str().unwrap().to_owned(), e);
                }
            }
            _ => {}
        }
    }

    /// The queue as this console knows it, in queue order (by priority, then waiting time).
    pub fn queue(&self) -> Vec<Value> {
        let mut entries: Vec<Value> = self.queue.values().cloned().collect();
        entries.sort_by_key(|e| {
            (
                -e["priority"].as_i64().unwrap(),
                e["escalated_at"].as_i64().unwrap(),
                e["conversation_id"].as_str().unwrap().to_owned(),
            )
        });
        entries
    }

    /// Reads frames until the queue this console knows satisfies `pred`; returns it.
    pub async fn wait_queue(&mut self, pred: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        loop {
            let entries = self.queue();
            if pred(&entries) {
                return entries;
            }
            self.recv_any(WAIT)
                .await
                .expect("the queue changes as expected in time");
        }
    }

    /// The next frame of type `kind`, skipping others.
    pub async fn next(&mut self, kind: &str) -> Value {
        loop {
            let frame = self
                .recv_any(WAIT)
                .await
                .unwrap_or_else(|| panic!("a {kind} frame arrives in time"));
            if frame["type"] == kind {
                return frame;
            }
        }
    }

    /// The next `event` whose inner frame matches `pred`, skipping others.
    pub async fn next_event(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let frame = self.next("event").await;
            if pred(&frame["frame"]) {
                return frame["frame"].clone();
            }
        }
    }

    /// Every frame arriving within `wait`.
    pub async fn drain(&mut self, wait: Duration) -> Vec<Value> {
        let mut frames = Vec::new();
        while let Some(f) = self.recv_any(wait).await {
            frames.push(f);
        }
        frames
    }

    /// Sends `ping` and returns the frames that arrive before its `pong` (see [`Client::settle`]).
    pub async fn settle(&mut self) -> Vec<Value> {
        self.send(json!({"type": "ping", "id": "settle"})).await;
        let mut frames = Vec::new();
        loop {
            let f = self.recv_any(WAIT).await.expect("the pong arrives in time");
            if f["type"] == "pong" && f["id"] == "settle" {
                return frames;
            }
            frames.push(f);
        }
    }

    /// Waits for the server to close the socket; returns the close code (None for a plain drop).
    pub async fn closed(&mut self, wait: Duration) -> Option<u16> {
        closed(&mut self.ws, wait).await
    }
}

/// Reads until the server closes the socket (or `wait` passes: then a panic); the close code.
async fn closed(
    ws: &mut WebSocketStream<MaybeTlsStream<TcpStream>>,
    wait: Duration,
) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("the server closes the socket in time");
        match next {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}
