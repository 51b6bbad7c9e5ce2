//! Starts and stops the processes under test: `frontdesk serve` on a temporary store with a copy
//! of a knowledge base (agent accounts added with `frontdesk agent add` first), and the floor
//! relay. Reads the server's memory from `/proc/<pid>/status`; kills it with SIGKILL and starts it
//! again on the same store for chaos runs.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::process::{Child, Command};

use crate::report::absolute;
use crate::scrape::Scrape;
use crate::ws;
use crate::Common;

/// How long a server may take to answer `/api/health` after starting (the first start on a new
/// knowledge base embeds every section).
const START_TIMEOUT: Duration = Duration::from_secs(300);

/// An agent account to create before the server starts.
#[derive(Debug, Clone)]
pub struct AgentSpec {
    /// Display name.
    pub name: String,
    /// Login email.
    pub email: String,
    /// Chats at once.
    pub max_chats: usize,
}

/// The password of every account the tool creates.
pub const PASSWORD: &str = "load-test-password";

/// The account the tool reads `/metrics` with (it never connects a console, so it takes no chat).
const METRICS_EMAIL: &str = "metrics@load.test";

impl AgentSpec {
    /// `count` agents named `Agent 1…`, each taking `max_chats` chats.
    pub fn many(count: usize, max_chats: usize) -> Vec<Self> {
        (1..=count)
            .map(|i| Self {
                name: format!("Agent {i}"),
                email: format!("agent{i}@load.test"),
                max_chats,
            })
            .collect()
    }
}

/// A running `frontdesk serve`.
pub struct Server {
    child: Option<Child>,
    port: u16,
    bin: PathBuf,
    root: PathBuf,
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
    starts: usize,
    /// The metrics account's token, once logged in.
    token: tokio::sync::OnceCell<String>,
}

impl Server {
    /// Copies the knowledge base into a temporary folder, creates `agents` on a new store there,
    /// starts the server with the profile's settings (`env`, then `--server-env`), and waits for
    /// `/api/health`.
    pub async fn start(
        common: &Common,
        env: &[(&str, String)],
        agents: &[AgentSpec],
    ) -> anyhow::Result<Self> {
        let mut server = Self::prepare(common, env)?;
        server.add_accounts(agents).await?;
        server.spawn().await?;
        Ok(server)
    }

    /// Starts another node on a store `env` points at, whose accounts a first node created (see
    /// [`Server::start`]); waits for `/api/health`.
    pub async fn join(common: &Common, env: &[(&str, String)]) -> anyhow::Result<Self> {
        let mut server = Self::prepare(common, env)?;
        server.spawn().await?;
        Ok(server)
    }

    /// Creates `agents` and the metrics reader on the server's store (`frontdesk agent add`).
    async fn add_accounts(&self, agents: &[AgentSpec]) -> anyhow::Result<()> {
        let reader = AgentSpec {
            name: "Metrics reader".into(),
            email: METRICS_EMAIL.into(),
            max_chats: 1,
        };
        for agent in agents.iter().chain([&reader]) {
            self.add_agent(agent).await?;
        }
        Ok(())
    }

    /// The server's folder, knowledge base copy and settings, not started yet.
    fn prepare(common: &Common, env: &[(&str, String)]) -> anyhow::Result<Self> {
        let bin = absolute(&common.server_bin);
        if !bin.is_file() {
            bail!(
                "no server binary at {}: build it with `cargo build --release --bin frontdesk` \
                 (or pass --server-bin)",
                bin.display()
            );
        }
        let root = absolute(&common.root);
        if !root.join("models").is_dir() {
            bail!(
                "{} has no models/ folder: run from the repository (after `make setup`) or pass --root",
                root.display()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("frontdesk-load")
            .tempdir()?;
        let kb = dir.path().join("kb");
        copy_dir(&absolute(&common.kb), &kb)
            .with_context(|| format!("copying the knowledge base {}", common.kb.display()))?;
        let cache = root.join("target/frontdesk-load");
        std::fs::create_dir_all(&cache)?;
        let port = free_port()?;
        // An empty settings file: the defaults and the variables below, whatever frontdesk.toml
        // the working directory holds.
        let settings = dir.path().join("frontdesk.toml");
        std::fs::write(&settings, "")?;
        let mut all: Vec<(String, String)> = vec![
            ("FRONTDESK_CONFIG".into(), settings.display().to_string()),
            ("FRONTDESK_SERVER__HOST".into(), "127.0.0.1".into()),
            ("FRONTDESK_SERVER__PORT".into(), port.to_string()),
            (
                "FRONTDESK_STORE__URL".into(),
                format!("sqlite://{}", dir.path().join("load.db").display()),
            ),
            ("FRONTDESK_KB__DIR".into(), kb.display().to_string()),
            (
                "FRONTDESK_KB__EMBEDDING_CACHE".into(),
                cache.join("embeddings.cache").display().to_string(),
            ),
            ("FRONTDESK_AGENTS__DEMO_AGENT".into(), "false".into()),
            // Every client of the tool comes from a few loopback addresses: the per-address
            // caps (abuse limits, not capacity) would refuse them and hide every figure.
            (
                "FRONTDESK_LIMITS__SOCKETS_PER_ADDRESS".into(),
                "1000000".into(),
            ),
            (
                "FRONTDESK_LIMITS__QUEUED_PER_ADDRESS".into(),
                "1000000".into(),
            ),
            (
                "FRONTDESK_LIMITS__NEW_CONVERSATIONS_PER_ADDRESS_PER_MINUTE".into(),
                "1000000".into(),
            ),
            (
                "FRONTDESK_LIMITS__HANDOFF_REQUESTS_PER_ADDRESS_PER_MINUTE".into(),
                "1000000".into(),
            ),
            (
                "FRONTDESK_LIMITS__TICKETS_PER_ADDRESS_PER_MINUTE".into(),
                "1000000".into(),
            ),
            ("RUST_LOG".into(), "warn".into()),
        ];
        all.extend(env.iter().map(|(k, v)| (k.to_string(), v.clone())));
        all.extend(common.server_env.iter().cloned());
        Ok(Self {
            child: None,
            port,
            bin,
            root,
            env: all,
            dir,
            starts: 0,
            token: tokio::sync::OnceCell::new(),
        })
    }

    async fn add_agent(&self, agent: &AgentSpec) -> anyhow::Result<()> {
        let output = Command::new(&self.bin)
            .args([
                "agent",
                "add",
                "--name",
                &agent.name,
                "--email",
                &agent.email,
            ])
            .args([
                "--password",
                PASSWORD,
                "--max-chats",
                &agent.max_chats.to_string(),
            ])
            .envs(self.env.iter().cloned())
            .current_dir(&self.root)
            .output()
            .await
            .context("running `frontdesk agent add`")?;
        if !output.status.success() {
            bail!(
                "`frontdesk agent add` for {} failed: {}",
                agent.email,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// The server's own figures now (`/metrics`, as the metrics account).
    pub async fn scrape(&self) -> anyhow::Result<Scrape> {
        let http = reqwest::Client::new();
        let base = self.url("");
        let token = self
            .token
            .get_or_try_init(|| ws::login(&http, &base, METRICS_EMAIL, PASSWORD))
            .await?;
        let response = http
            .get(self.url("/metrics"))
            .bearer_auth(token)
            .send()
            .await
            .context("GET /metrics")?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("GET /metrics: {status} {text}");
        }
        Ok(Scrape::parse(&text))
    }

    async fn spawn(&mut self) -> anyhow::Result<Duration> {
        self.starts += 1;
        let log = std::fs::File::create(self.log_path())?;
        let started = Instant::now();
        let child = Command::new(&self.bin)
            .arg("serve")
            .envs(self.env.iter().cloned())
            .current_dir(&self.root)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        self.child = Some(child);
        self.wait_healthy().await?;
        Ok(started.elapsed())
    }

    async fn wait_healthy(&mut self) -> anyhow::Result<()> {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait().context("checking on the server")? {
                    bail!(
                        "the server exited ({status}) while starting:\n{}",
                        self.log_tail()
                    );
                }
            }
            let ok = http
                .get(self.url("/api/health"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the server did not answer /api/health within {START_TIMEOUT:?}:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("server-{}.log", self.starts))
    }

    /// The last lines the server wrote.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `ws://127.0.0.1:PORT{path}`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{path}", self.port)
    }

    /// The copy of the knowledge base the server answers from (edit it to test reloads).
    pub fn kb_dir(&self) -> PathBuf {
        self.dir.path().join("kb")
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    /// The server's resident memory, KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        let pid = self.pid().context("the server is not running")?;
        rss_kib(pid)
    }

    /// Kills the server with SIGKILL (no shutdown, nothing flushed) and waits for it to be gone.
    pub async fn kill9(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child
                .start_kill()
                .context("sending SIGKILL to the server")?;
            child.wait().await?;
        }
        Ok(())
    }

    /// Starts the server again on the same store, port and settings; returns how long it took to
    /// answer `/api/health`.
    pub async fn restart(&mut self) -> anyhow::Result<Duration> {
        self.spawn().await
    }
}

/// The resident memory of process `pid`, KiB.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    crate::report::kib_field(&status, "VmRSS:").context("no VmRSS in /proc/<pid>/status")
}

/// A port free on 127.0.0.1 now.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    if !from.is_dir() {
        bail!("{} is not a folder", from.display());
    }
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// The floor relay, run as its own process (this binary's `floor` command).
pub struct FloorProcess {
    /// Killed when this is dropped.
    child: Child,
    port: u16,
    /// The durable floor's store, removed when this is dropped (after the child is sent its kill:
    /// fields drop in order; Linux lets a file still open be removed).
    _dir: Option<tempfile::TempDir>,
}

impl FloorProcess {
    /// Starts `frontdesk-load floor` on a free port and waits until it accepts connections; with
    /// `store`, the durable floor on a new store in a temporary folder.
    pub async fn start(
        store: Option<(crate::floor::Durability, crate::floor::Rows)>,
    ) -> anyhow::Result<Self> {
        let port = free_port()?;
        let exe =
            std::env::current_exe().context("finding this program to start the floor relay")?;
        let mut args = vec!["floor".to_owned(), "--port".into(), port.to_string()];
        let dir = match store {
            None => None,
            Some((durability, rows)) => {
                let dir = tempfile::Builder::new()
                    .prefix("frontdesk-floor")
                    .tempdir()
                    .context("making a temporary folder for the durable floor's store (is TMPDIR writable?)")?;
                args.push("--store".into());
                args.push(dir.path().join("floor.db").display().to_string());
                args.push("--sync".into());
                args.push(crate::floor::name_of(&durability));
                args.push("--rows".into());
                args.push(crate::floor::name_of(&rows));
                Some(dir)
            }
        };
        let mut child = Command::new(exe)
            .args(&args)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting the floor relay")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .is_err()
        {
            if let Some(status) = child.try_wait().context("checking on the floor relay")? {
                bail!("the floor relay exited ({status}) before it listened: its error is above");
            }
            if Instant::now() > deadline {
                bail!("the floor relay did not listen on port {port} within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self {
            child,
            port,
            _dir: dir,
        })
    }

    /// Fails if the floor has exited (a durable floor whose store failed exits with its error):
    /// its figures would be of nothing.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        match self
            .child
            .try_wait()
            .context("checking on the floor relay")?
        {
            Some(status) => bail!("the floor relay exited mid-run ({status}): its error is above"),
            None => Ok(()),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }
}
