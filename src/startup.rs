//! Building and running the server: the one place that wires the modules together. Tests use it
//! exactly as `frontdesk serve` does, on port 0.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;

use crate::accounts::identity::IdentityVerifier;
use crate::accounts::{self, Accounts, AuthError, NewAccount, Revoked, Role, SharedThrottles};
use crate::admission::{Admission, SharedSockets};
use crate::bot::Bot;
use crate::cluster::{self, Received};
use crate::conversation::{Conversations, Desk, Parts, UNANSWERED_WITHIN_MS};
use crate::escalation::{Policy, Understand};
use crate::fanout::Fanout;
use crate::http::{app, AppState, Deadlines};
use crate::kb::{KnowledgeBase, Reranker, Watcher};
use crate::metrics::Metrics;
use crate::nlu::{EmbeddingCache, Encoder, Nlu};
use crate::queue::{Caps, Queue};
use crate::settings::{Settings, StoreDurability};
use crate::store::{Durability, Store};

/// A built server, listening, not yet serving.
pub struct App {
    listener: TcpListener,
    router: axum::Router,
    deadlines: Deadlines,
    state: AppState,
    _watcher: Option<Watcher>,
    _timers: AbortOnDrop,
    _sweeper: AbortOnDrop,
    _unanswered: AbortOnDrop,
    /// The link to the other nodes and what hands their signals to this one (several nodes).
    _cluster: Option<(cluster::Link, AbortOnDrop, AbortOnDrop)>,
}

/// Stops a background task when the server that started it stops.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl App {
    /// Loads the encoder, then builds the server (see [`App::build_with`]).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        // The port first: a port in use is said at once, not after the models have loaded.
        let listener = bind(&settings).await?;
        let nlu = settings.nlu.clone();
        let encoder = tokio::task::spawn_blocking(move || Encoder::load(&nlu)).await??;
        let cache = EmbeddingCache::open(&settings.kb.embedding_cache)?;
        Self::build_inner(settings, encoder, cache, None, Some(listener)).await
    }

    /// Builds the server with an encoder already loaded: opens the store, indexes the knowledge
    /// base, starts watching it, and binds the listener.
    pub async fn build_with(
        settings: Settings,
        encoder: Encoder,
        cache: EmbeddingCache,
    ) -> anyhow::Result<Self> {
        Self::build_inner(settings, encoder, cache, None, None).await
    }

    /// Builds the server with `understand` instead of the trained models as what makes sense of
    /// each customer message (intent, out of scope, upset) for the escalation policy: tests use it
    /// to script what customers "mean".
    pub async fn build_with_understanding(
        settings: Settings,
        encoder: Encoder,
        cache: EmbeddingCache,
        understand: Arc<dyn Understand>,
    ) -> anyhow::Result<Self> {
        Self::build_inner(settings, encoder, cache, Some(understand), None).await
    }

    async fn build_inner(
        settings: Settings,
        encoder: Encoder,
        cache: EmbeddingCache,
        understand: Option<Arc<dyn Understand>>,
        listener: Option<TcpListener>,
    ) -> anyhow::Result<Self> {
        let durability = match settings.store.durability {
            StoreDurability::Full => Durability::Full,
            StoreDurability::Normal => Durability::Normal,
        };
        let link = link_nodes(&settings).await?;
        let store = Store::connect_with(&settings.store.url, durability)
            .await
            .context("opening the store")?;
        let metrics = Metrics::new();
        encoder
            .collectors()
            .into_iter()
            .for_each(|c| metrics.register(c));
        store
            .collectors()
            .into_iter()
            .for_each(|c| metrics.register(c));
        let nlu = open_nlu(&settings, encoder.clone(), cache.clone()).await?;
        let kb = open_kb(&settings, encoder, cache).await?;
        let watcher = if settings.kb.watch {
            Some(
                Watcher::start(&kb)
                    .with_context(|| format!("watching {}", settings.kb.dir.display()))?,
            )
        } else {
            None
        };
        let understand = understand.unwrap_or_else(|| Arc::new(nlu.clone()));
        let bot = Bot::new(kb.clone(), nlu, settings.bot.clone())
            .with_reranker(open_reranker(&settings).await?);
        if settings.bot.learn_from_picks {
            tokio::spawn(learn_from_stored_picks(bot.clone(), store.clone()));
        }
        let accounts = Accounts::linked(
            store.clone(),
            &settings.agents,
            link.as_ref()
                .map(|(bus, _, _)| Arc::new(bus.clone()) as Arc<dyn SharedThrottles>),
        );
        demo_accounts(&store, &accounts, settings.agents.demo_agent).await?;
        let admission = Admission::linked(
            &settings.server,
            &settings.limits,
            link.as_ref()
                .map(|(bus, _, _)| Arc::new(bus.clone()) as Arc<dyn SharedSockets>),
        )
        .map_err(anyhow::Error::msg)?;
        let limits = &settings.limits;
        let caps = Caps {
            max_queued: limits.max_queued.max(1),
            per_address: limits.queued_per_address.max(1),
        };
        let queue = Queue::new(settings.handoff.clone(), caps);
        let fanout = match &link {
            Some((bus, _, _)) => Fanout::linked(bus.clone()),
            None => Fanout::default(),
        };
        let tick = timer_tick(&settings);
        let (conversations, desk) = Conversations::new(Parts {
            store: store.clone(),
            bot: bot.clone(),
            policy: Policy::new(settings.escalation.clone()),
            understand,
            queue: queue.clone(),
            fanout: fanout.clone(),
            admission: admission.clone(),
            queue_snapshot_entries: limits.queue_snapshot_entries,
            metrics: metrics.clone(),
            cluster: link.as_ref().map(|(bus, _, _)| bus.clone()),
            timer_lease_ms: (settings.cluster.timer_lease_seconds * 1000.0)
                .max(3.0 * tick.as_secs_f64() * 1000.0) as i64,
        });
        let (queued, held) = desk
            .restore()
            .await
            .context("putting the conversations that wait for a person back in the queue")?;
        if queued + held > 0 {
            tracing::info!(queued, held, "hand-offs restored from the store");
        }
        let timers = spawn_timers(&desk, tick);
        let sweeper = spawn_sweeper(&accounts);
        let unanswered = spawn_answer_unanswered(&conversations, link.is_some());
        let cluster = link.map(|(bus, received, link)| {
            let fanout_here = fanout.clone();
            let receiver = spawn_receiver(received, fanout, desk.clone());
            (
                link,
                receiver,
                spawn_staff_news(bus, queue.clone(), fanout_here),
            )
        });
        let state = AppState {
            conversations,
            desk,
            accounts,
            identity: IdentityVerifier::new(&settings.identity),
            bot,
            kb,
            store,
            limits: Arc::new(settings.limits.clone()),
            admission,
            metrics,
        };
        let listener = match listener {
            Some(listener) => listener,
            None => bind(&settings).await?,
        };
        Ok(Self {
            listener,
            router: app(state.clone()),
            deadlines: Deadlines::from(&settings.server),
            state,
            _watcher: watcher,
            _timers: timers,
            _sweeper: sweeper,
            _unanswered: unanswered,
            _cluster: cluster,
        })
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Handles to the server's parts (for commands and tests that look inside).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until Ctrl-C or SIGTERM, then stops accepting and lets open requests finish; with
    /// several nodes, gives the timer lease up so another node runs the timers at once.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = crate::http::serve(
            self.listener,
            self.router,
            self.deadlines,
            shutdown_signal(),
        )
        .await;
        drop(self._timers);
        if let Err(e) = self.state.desk.release_timers().await {
            tracing::warn!("the timer lease could not be given up ({e}); another node takes it when it expires");
        }
        served
    }
}

/// Opens the knowledge base (blocking work, so off the async threads) and logs what it found.
pub async fn open_kb(
    settings: &Settings,
    encoder: Encoder,
    cache: EmbeddingCache,
) -> anyhow::Result<KnowledgeBase> {
    let dir = settings.kb.dir.clone();
    let (kb, report) =
        tokio::task::spawn_blocking(move || KnowledgeBase::open(&dir, encoder, cache)).await??;
    kb.set_keyword_weight(settings.kb.keyword_weight);
    kb.set_spelling(settings.kb.spelling);
    kb.set_pieces(settings.kb.pieces);
    tracing::info!(
        articles = report.indexed.len(),
        newly_embedded_sections = report.embedded,
        "knowledge base loaded from {}",
        settings.kb.dir.display()
    );
    for problem in &report.problems {
        tracing::warn!("knowledge base: {problem} (run `frontdesk kb lint`)");
    }
    Ok(kb)
}

/// The bot alone, as `frontdesk ask`, the benchmarks and the fuzzer use it: the encoder, the
/// language models, the knowledge base (indexed, not watched) and the reranker when it is on.
pub async fn open_bot(settings: &Settings) -> anyhow::Result<Bot> {
    let nlu = settings.nlu.clone();
    let encoder = tokio::task::spawn_blocking(move || Encoder::load(&nlu)).await??;
    let cache = EmbeddingCache::open(&settings.kb.embedding_cache)?;
    let nlu = open_nlu(settings, encoder.clone(), cache.clone()).await?;
    let kb = open_kb(settings, encoder, cache).await?;
    Ok(Bot::new(kb, nlu, settings.bot.clone()).with_reranker(open_reranker(settings).await?))
}

/// Loads the reranker when `bot.rerank.enabled` (blocking work, so off the async threads).
pub async fn open_reranker(settings: &Settings) -> anyhow::Result<Option<Reranker>> {
    let r = settings.bot.rerank.clone();
    if !r.enabled {
        return Ok(None);
    }
    let reranker =
        tokio::task::spawn_blocking(move || Reranker::load(&r.model_dir, r.top, r.max_len))
            .await??;
    tracing::info!(
        top = reranker.top(),
        "reranker loaded from {}",
        settings.bot.rerank.model_dir.display()
    );
    Ok(Some(reranker))
}

/// Refuses to start when the code or the settings name an intent that the intents file does not
/// define: the bot would silently stop answering greetings, or noticing requests for a person.
fn check_intent_names(settings: &Settings, nlu: &Nlu) -> anyhow::Result<()> {
    let known: Vec<&str> = nlu.intent_model().intent_names().collect();
    let needed = std::iter::once((
        crate::escalation::HUMAN_REQUEST_INTENT,
        "the escalation policy",
    ))
    .chain(
        settings
            .bot
            .small_talk
            .keys()
            .map(|k| (k.as_str(), "bot.small_talk")),
    );
    for (name, who) in needed {
        anyhow::ensure!(
            known.contains(&name),
            "{who} uses the intent `{name}`, which {} does not define (it has: {}); add it there, \
             or rename it in the settings",
            settings.nlu.intents.display(),
            known.join(", ")
        );
    }
    Ok(())
}

/// Loads the intent and upset models (retraining a stale intent model first; blocking work). The
/// intents are the general ones plus the served knowledge base's own, if it has any
/// ([`NluSettings::for_knowledge_base`](crate::settings::NluSettings::for_knowledge_base)).
pub async fn open_nlu(
    settings: &Settings,
    encoder: Encoder,
    cache: EmbeddingCache,
) -> anyhow::Result<Nlu> {
    let nlu_settings = settings.nlu.for_knowledge_base(&settings.kb.dir);
    if let Some(extra) = &nlu_settings.extra_intents {
        tracing::info!(
            "the knowledge base's own intents in {} join the general ones",
            extra.display()
        );
    }
    let nlu =
        tokio::task::spawn_blocking(move || Nlu::open(&nlu_settings, encoder, &cache)).await??;
    check_intent_names(settings, &nlu)?;
    let cv = &nlu.intent_model().manifest.cross_validation;
    tracing::info!(
        intents = nlu.intent_model().intent_names().count(),
        cross_validated_accuracy = cv.accuracy,
        "language models loaded"
    );
    Ok(nlu)
}

/// How often the desk's timers run: a few times per shortest timeout, at least once a second.
fn timer_tick(settings: &Settings) -> std::time::Duration {
    let h = &settings.handoff;
    let shortest = [
        h.pickup_timeout_seconds,
        h.reply_timeout_seconds,
        h.disconnect_grace_seconds,
        h.abandon_after_seconds,
    ]
    .into_iter()
    .filter(|s| *s > 0.0)
    .fold(4.0_f64, f64::min);
    std::time::Duration::from_secs_f64((shortest / 4.0).clamp(0.05, 1.0))
}

/// Runs the desk's timers (pickup, reply, disconnected agents, abandoned queue entries) every
/// `every`, until the server stops.
fn spawn_timers(desk: &Desk, every: std::time::Duration) -> AbortOnDrop {
    let desk = desk.clone();
    AbortOnDrop(tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if let Err(e) = desk.tick().await {
                tracing::error!("hand-off timers: {e}");
            }
        }
    }))
}

/// How long a node that joins others waits before answering the messages a stop left unanswered
/// ([`spawn_answer_unanswered`]): a turn another node is running ends well within it, and its
/// answer takes the message off the list.
const UNANSWERED_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Answers, in the background, the customer messages stored in the last
/// [`UNANSWERED_WITHIN_MS`] before this start whose turn a stop cut short (a crash, a `kill -9`,
/// a restart while turns ran): the customer who wrote just then gets the answer live or when the
/// widget resumes, instead of a message marked sent and no reply. Alone, at once; with several
/// nodes, after [`UNANSWERED_GRACE`].
fn spawn_answer_unanswered(conversations: &Conversations, several_nodes: bool) -> AbortOnDrop {
    let conversations = conversations.clone();
    let started = crate::clock::now_ms();
    AbortOnDrop(tokio::spawn(async move {
        if several_nodes {
            tokio::time::sleep(UNANSWERED_GRACE).await;
        }
        match conversations
            .answer_unanswered(started - UNANSWERED_WITHIN_MS, started)
            .await
        {
            Ok(0) => {}
            Ok(answered) => {
                tracing::info!(
                    answered,
                    "messages a stop had left unanswered were answered"
                )
            }
            Err(e) => tracing::warn!("the messages a stop left unanswered were not answered: {e}"),
        }
    }))
}

/// The bot learns from what customers pressed before this start, in the background (a large store
/// never delays the start; the lessons arrive a few seconds after it): the most recent
/// [`crate::bot::MAX_PICKS`] presses of choice buttons and "not helpful" verdicts on answers
/// together, by when they were given.
async fn learn_from_stored_picks(bot: Bot, store: Store) {
    let limit = crate::bot::MAX_PICKS as i64;
    let (picks, verdicts) = match (
        store.presses(limit).await,
        store.unhelpful_answers(limit).await,
    ) {
        (Ok(p), Ok(v)) => (p, v),
        (Err(e), _) | (_, Err(e)) => {
            tracing::warn!("the bot did not learn from the stored picks: {e}");
            return;
        }
    };
    let mut presses: Vec<(i64, crate::bot::Press)> = picks
        .into_iter()
        .map(|row| {
            let quote_from = row
                .options
                .iter()
                .find(|o| Some(&o.passage) == row.picked.as_ref())
                .map_or(0, |o| o.quote_from);
            let press = crate::bot::Press {
                conversation: row.conversation_id,
                offer_seq: row.seq,
                question: row.question,
                passage: row.picked,
                quote_from,
            };
            (row.at, press)
        })
        .chain(
            verdicts
                .into_iter()
                .map(|(conversation, seq, question, at)| {
                    let press = crate::bot::Press {
                        conversation,
                        offer_seq: seq,
                        question,
                        passage: None,
                        quote_from: 0,
                    };
                    (at, press)
                }),
        )
        .collect();
    // The newest MAX_PICKS of both, oldest first.
    presses.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    presses.truncate(crate::bot::MAX_PICKS);
    presses.reverse();
    let presses = presses.into_iter().map(|(_, p)| p).collect();
    match bot.learn_from_earlier(presses).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(picks = n, "the bot learned from customers' earlier picks"),
        Err(e) => tracing::warn!("the bot did not learn from the stored picks: {e}"),
    }
}

/// With `cluster.redis_url`: checks the store is one the nodes can share, and links this node
/// to the others through Redis.
async fn link_nodes(
    settings: &Settings,
) -> anyhow::Result<
    Option<(
        cluster::Bus,
        tokio::sync::mpsc::Receiver<Received>,
        cluster::Link,
    )>,
> {
    let Some(url) = settings
        .cluster
        .redis_url
        .as_deref()
        .filter(|u| !u.is_empty())
    else {
        return Ok(None);
    };
    let store = &settings.store.url;
    anyhow::ensure!(
        store.starts_with("postgres://") || store.starts_with("postgresql://"),
        "cluster.redis_url is set, but store.url is not a Postgres database: several nodes must \
         share one store. Set store.url = \"postgres://…\" on every node (`frontdesk store migrate \
         --to postgres://…` copies this node's data), or remove cluster.redis_url to run one node"
    );
    Ok(Some(
        cluster::connect(url, &settings.cluster.channel).await?,
    ))
}

/// Hands what other nodes did to this node: frames to its sockets, queue changes to its desk;
/// when the link is lost, closes every socket with `reconnect` so clients resume from the store.
fn spawn_receiver(
    mut received: tokio::sync::mpsc::Receiver<Received>,
    fanout: Fanout,
    desk: Desk,
) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        while let Some(news) = received.recv().await {
            match news {
                Received::Lost => fanout.close_all(),
                Received::Relinked => {
                    fanout.close_all();
                    if let Err(e) = desk.resync().await {
                        tracing::error!("reading the queue again after the link came back: {e}");
                    }
                }
                Received::Signal(signal) => {
                    if let Err(e) = desk.deliver(*signal).await {
                        tracing::error!("applying another node's queue change: {e}");
                    }
                }
            }
        }
    }))
}

/// Tells the other nodes which agents this node has, and which waiting customers: at once when
/// its agents change, and every few seconds (a node that stops telling drops out of the others'
/// "who is online"). When another node stops telling, every socket here closes with 4004
/// `reconnect`: that node may have stored frames (acknowledged them) that it never published, and
/// the clients here get them by resuming from the store.
fn spawn_staff_news(bus: cluster::Bus, queue: Queue, fanout: Fanout) -> AbortOnDrop {
    let every = std::time::Duration::from_millis(crate::queue::STAFF_EVERY_MS);
    AbortOnDrop(tokio::spawn(async move {
        loop {
            bus.publish(cluster::Signal::Staff {
                node: bus.node().to_owned(),
                agents: queue.staff_here(),
                customers: queue.customers_here(|c| fanout.customer_connected(c)),
            });
            let gone = queue.nodes_gone();
            if !gone.is_empty() {
                tracing::warn!(
                    nodes = ?gone,
                    "other nodes stopped telling (killed or cut off): every socket here resumes from the store"
                );
                fanout.close_all();
            }
            let _ = tokio::time::timeout(every, queue.staff_changed()).await;
        }
    }))
}

/// Every few seconds: closes the sockets of tokens revoked by the command line, deletes expired
/// tokens, forgets idle login throttles.
fn spawn_sweeper(accounts: &Accounts) -> AbortOnDrop {
    let accounts = accounts.clone();
    AbortOnDrop(tokio::spawn(async move {
        let mut interval = tokio::time::interval(std::time::Duration::from_secs(SWEEP_SECONDS));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            match accounts.sweep().await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "expired login tokens deleted"),
                Err(e) => tracing::error!("sweeping login tokens: {e}"),
            }
        }
    }))
}

/// How often [`spawn_sweeper`] runs.
const SWEEP_SECONDS: u64 = 5;

/// With `agents.demo_agent` on: creates (or enables again) the demo accounts demo@example.com
/// (admin, all teams) and editor@example.com (editor), password `demo`, and warns loudly. With it
/// off: disables every demo account and revokes its tokens, so a server once started with
/// `make run` keeps no public admin.
async fn demo_accounts(store: &Store, accounts: &Accounts, on: bool) -> anyhow::Result<()> {
    if !on {
        let disabled = accounts::disable_demo_accounts(store)
            .await
            .context("disabling the demo accounts")?;
        if !disabled.is_empty() {
            tracing::warn!(
                accounts = disabled.len(),
                "agents.demo_agent is off: the demo accounts are disabled and their tokens revoked"
            );
        }
        for id in disabled {
            accounts.announce(Revoked::Agent(id));
        }
        return Ok(());
    }
    for (name, email, role) in [
        ("Demo", "demo@example.com", Role::Admin),
        ("Demo Editor", "editor@example.com", Role::Editor),
    ] {
        let account = NewAccount {
            name: name.into(),
            email: email.into(),
            password: "demo".into(),
            role,
            teams: Vec::new(),
            max_chats: 5,
        };
        match accounts::create_demo(store, account).await {
            Ok(_) | Err(AuthError::EmailTaken(_)) => {}
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("creating the demo {} {email}", role.as_str()))
            }
        }
    }
    accounts::enable_demo_accounts(store).await?;
    tracing::warn!(
        "\n\n  DEMO ACCOUNTS ARE ON (agents.demo_agent): demo@example.com (admin) and \
         editor@example.com sign in with the password `demo`.\n  Anyone who can reach this server \
         can sign in as them. For trying frontdesk out only: turn agents.demo_agent off \
         (`make run DEMO_AGENT=false`) before real customers or real data arrive; the next start \
         disables them.\n"
    );
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

/// Connections waiting to be accepted: the kernel caps it at `net.core.somaxconn` (4096 on
/// current Linux). The standard library's 128 dropped the SYNs of a burst of a few hundred
/// widgets connecting at once (a reconnect storm after a restart), and each dropped one waited
/// the second TCP waits before it tries again (docs/BENCHMARKS.md).
const BACKLOG: u32 = 4096;

/// The server's listener, on `server.host` and `server.port`, or an error that says what to
/// change: another process has the port, or the host is not one this machine has.
async fn bind(settings: &Settings) -> anyhow::Result<TcpListener> {
    let address = format!("{}:{}", settings.server.host, settings.server.port);
    listen(&address).await.map_err(|e| {
        let hint = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                "another server is using the port: stop it, or set server.port"
            }
            std::io::ErrorKind::AddrNotAvailable => {
                "this machine has no such address: check server.host"
            }
            _ => "check server.host and server.port",
        };
        anyhow::anyhow!("cannot listen on {address} ({e}): {hint}")
    })
}

/// A listener on `address` (`host:port`) with room for a burst of connections ([`BACKLOG`]).
async fn listen(address: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host(address).await? {
        // Each address on its own, as tokio's bind does: "localhost" may name an IPv6 address
        // first on a host without IPv6.
        match listen_on(addr) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the host name resolved to no address; check server.host",
        )
    }))
}

fn listen_on(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As the standard library's bind does on Unix: a restarted server takes its port back at
    // once. (On Windows the option would let a second server share the port.)
    #[cfg(not(windows))]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}
