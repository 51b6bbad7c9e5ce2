//! Real `frontdesk serve` processes, for what only a process shows: a node killed with SIGKILL in
//! the middle of a conversation. An in-process server ([`super::TestApp`]) cannot die that way:
//! its tasks live in the test's runtime.

use std::process::Stdio;
use std::time::Duration;

use frontdesk::accounts::{self, NewAccount};
use frontdesk::store::Store;
use serde_json::{json, Value};

/// How long a node may take to answer `/api/health` (it loads the models and indexes the demo
/// knowledge base on start).
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A `frontdesk serve` process on a loopback port, with a copy of the demo knowledge base.
pub struct Node {
    /// Its HTTP and WebSocket port.
    pub port: u16,
    child: tokio::process::Child,
    dir: tempfile::TempDir,
}

impl Node {
    /// Starts the binary Cargo built for the tests, in the repository (for `models/`), with the
    /// tests' settings and `env` (`FRONTDESK_*` variables) on top; waits until it answers.
    pub async fn start(env: &[(&str, String)]) -> Node {
        let dir = tempfile::tempdir().expect("temp dir");
        let kb = dir.path().join("kb");
        std::fs::create_dir_all(&kb).unwrap();
        super::copy_dir(&super::root().join("knowledge_base"), &kb);
        let cache = dir.path().join("embeddings.cache");
        // The embeddings the in-process tests computed, if any: the node starts sooner.
        let _ = std::fs::copy(super::root().join("target/test-embeddings.cache"), &cache);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = std::fs::File::create(dir.path().join("node.log")).unwrap();
        // An empty settings file: the defaults, whatever frontdesk.toml the repository holds.
        let settings = dir.path().join("frontdesk.toml");
        std::fs::write(&settings, "").unwrap();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_frontdesk"))
            .arg("serve")
            .current_dir(super::root())
            .env("FRONTDESK_CONFIG", &settings)
            .env("FRONTDESK_SERVER__HOST", "127.0.0.1")
            .env("FRONTDESK_SERVER__PORT", port.to_string())
            .env("FRONTDESK_KB__DIR", &kb)
            .env("FRONTDESK_KB__EMBEDDING_CACHE", &cache)
            .env("FRONTDESK_AGENTS__DEMO_AGENT", "false")
            .env("FRONTDESK_NLU__RETRAIN_STALE", "false")
            .env("RUST_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("frontdesk serve starts");
        let mut node = Node { port, child, dir };
        node.wait_healthy().await;
        node
    }

    async fn wait_healthy(&mut self) {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        let url = format!("http://127.0.0.1:{}/api/health", self.port);
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("frontdesk serve exited ({status}):\n{}", self.log());
            }
            if let Ok(r) = reqwest::get(&url).await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "frontdesk serve did not answer within {START_TIMEOUT:?}:\n{}",
            self.log()
        );
    }

    /// What the process wrote to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("node.log")).unwrap_or_default()
    }

    /// SIGKILL: the process ends at once, nothing flushed, nothing given up.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("the node is killed");
    }

    /// Creates an agent account in `store` (the nodes' shared one) and logs in on this node;
    /// returns the token.
    pub async fn agent_token(&self, store: &Store, name: &str) -> String {
        let email = format!("{}@example.com", name.to_lowercase().replace(' ', "."));
        accounts::create(
            store,
            NewAccount {
                name: name.into(),
                email: email.clone(),
                password: "secret-password".into(),
                role: "agent".parse().unwrap(),
                teams: Vec::new(),
                max_chats: 3,
            },
        )
        .await
        .expect("agent created");
        self.login(&email).await
    }

    /// Logs `email` in on this node; the token.
    pub async fn login(&self, email: &str) -> String {
        let body: Value = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/api/agent/login", self.port))
            .json(&json!({"email": email, "password": "secret-password"}))
            .send()
            .await
            .expect("login")
            .json()
            .await
            .unwrap();
        body["token"].as_str().expect("a token").to_owned()
    }

    /// The conversation's transcript as this node serves it to an agent.
    pub async fn transcript(&self, token: &str, id: &str) -> Vec<Value> {
        let body: Value = reqwest::Client::new()
            .get(format!(
                "http://127.0.0.1:{}/api/conversations/{id}",
                self.port
            ))
            .bearer_auth(token)
            .send()
            .await
            .expect("transcript")
            .json()
            .await
            .unwrap();
        body["transcript"].as_array().expect("a transcript").clone()
    }
}
