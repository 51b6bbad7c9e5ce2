//! The floor: a bare pairing relay (tokio-tungstenite, no storage, no JSON parsing). Two sockets
//! that open `/pair/{key}/a` and `/pair/{key}/c` are paired; each gets the text `paired`, then
//! every text frame one sends is written to the other unchanged. The relay profile drives it with
//! the same client code as frontdesk, in the same run, so frontdesk's figures read as multiples of
//! what this machine does with no work in between.
//!
//! The durable floor (`--store FILE`) also puts each frame on disk before passing it on, the least
//! a SQLite-backed relay that acknowledges only stored messages must do: one SQLite table in WAL mode, one writer
//! thread that commits every frame waiting in one transaction (group commit) and then hands each
//! to its peer. Its log is kept bounded the way frontdesk's is (`src/store/checkpoint.rs`): a
//! `PASSIVE` checkpoint every 100 ms on a second connection, and when a pass finds more than
//! [`MOST_PAGES`] pages in the log, the writer copies the rest itself between two transactions,
//! so its next one starts the log over (under steady writes a passive pass never catches up, and
//! the log would grow by hundreds of megabytes in a ten-second step). With `--sync full` each
//! commit waits for its fsync, as frontdesk's default durability does; with `normal`, as
//! `store.durability = "normal"`.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::ValueEnum;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// The frame both sides get when their pair is complete.
pub const PAIRED: &str = "paired";

type Peer = mpsc::UnboundedSender<Message>;
type Pairs = Arc<Mutex<HashMap<String, [Option<Peer>; 2]>>>;

/// Pages in the durable floor's log past which the writer catches up and the log starts over:
/// frontdesk's limit (`store::checkpoint::MOST_PAGES`), and the floor's unless a test sets another.
pub const MOST_PAGES: i64 = 65536;

/// How often the durable floor checkpoints: frontdesk's `store::checkpoint::EVERY`.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// When the durable floor's commits are on disk (SQLite's `synchronous`). Not `Sync`, which would
/// hide the marker trait in this file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Durability {
    /// Every commit waits for its fsync (frontdesk's `store.durability = "full"`).
    Full,
    /// The log is synced at checkpoints only (`store.durability = "normal"`).
    Normal,
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        }
    }
}

/// What the durable floor stores for each frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Rows {
    /// One row in one table: the least there is.
    Plain,
    /// Rows shaped like frontdesk's (`migrations/0001_conversations.sql`): the conversation's row
    /// numbers the message, the event is keyed by conversation and number with a unique client
    /// id beside it, its text in a column and inside the stored frame.
    Frontdesk,
}

/// A value's name on the command line and in reports: clap's, from its `ValueEnum` derive.
pub fn name_of<T: ValueEnum>(value: &T) -> String {
    value
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_owned())
}

/// The durable floor's store.
#[derive(Debug, Clone)]
pub struct Store {
    /// The SQLite file, created if missing.
    pub path: PathBuf,
    pub durability: Durability,
    pub rows: Rows,
    /// Pages in the log past which the writer catches up: [`MOST_PAGES`] but in tests.
    pub most_pages: i64,
}

/// What the durable floor's writer and checkpointer share.
#[derive(Debug, Default)]
struct Log {
    /// Raised by the checkpointer when the log is past its limit, lowered by the writer's
    /// catch-up.
    too_long: AtomicBool,
    /// Catch-ups the writer made.
    catch_ups: AtomicU64,
}

/// The tables of [`Rows::Frontdesk`]: frontdesk's schema simplified (the columns a relayed
/// message writes; no session, state or visitor columns). No index of client ids, as in
/// frontdesk since its migration 0011.
const FRONTDESK_ROWS: &str = "
    CREATE TABLE IF NOT EXISTS conversations (
        id TEXT PRIMARY KEY, last_seq INTEGER NOT NULL, updated_at INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS events (
        conversation_id TEXT NOT NULL REFERENCES conversations(id), seq BIGINT NOT NULL,
        sender TEXT NOT NULL, client_id TEXT, text TEXT, body TEXT NOT NULL,
        created_at BIGINT NOT NULL, PRIMARY KEY (conversation_id, seq));";

/// A frame waiting for its commit, the conversation (pair) it belongs to, and the peer it goes
/// to after.
struct Pending {
    frame: Message,
    conversation: Arc<str>,
    peer: Peer,
}

/// Where a frame goes once it is read: straight to the peer, or through the store first.
#[derive(Clone)]
enum Route {
    Bare,
    Stored(std::sync::mpsc::Sender<Pending>),
}

impl Route {
    fn pass(&self, frame: Message, conversation: &Arc<str>, peer: Peer) {
        match self {
            Route::Bare => {
                let _ = peer.send(frame);
            }
            Route::Stored(writer) => {
                let _ = writer.send(Pending {
                    frame,
                    conversation: conversation.clone(),
                    peer,
                });
            }
        }
    }
}

/// Serves the floor relay on 127.0.0.1:`port` until the process is stopped; with `store`, the
/// durable floor on that SQLite file (created if missing).
pub async fn serve(port: u16, store: Option<Store>) -> anyhow::Result<()> {
    let route = match store {
        None => Route::Bare,
        Some(store) => Route::Stored(start_store(&store)?.0),
    };
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
    let pairs: Pairs = Arc::default();
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream, pairs.clone(), route.clone()));
    }
}

/// Opens the store, then starts its writer and checkpointer threads; the writer's queue, and
/// what they share. A failure of either later ends the process: a floor that stopped storing
/// would measure nothing.
fn start_store(store: &Store) -> anyhow::Result<(std::sync::mpsc::Sender<Pending>, Arc<Log>)> {
    let Store {
        path,
        durability,
        rows,
        most_pages,
    } = store.clone();
    let path = path.as_path();
    let open = |path: &Path| -> rusqlite::Result<rusqlite::Connection> {
        let db = rusqlite::Connection::open(path)?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", durability.pragma())?;
        db.pragma_update(None, "wal_autocheckpoint", 0)?;
        db.busy_timeout(Duration::from_secs(5))?;
        Ok(db)
    };
    let context = |e: rusqlite::Error| {
        anyhow::anyhow!(
            "opening the floor's store {path:?}: {e}; check that its folder exists and is writable"
        )
    };
    let db = open(path).map_err(context)?;
    let tables = match rows {
        Rows::Plain => {
            "CREATE TABLE IF NOT EXISTS frames (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"
        }
        Rows::Frontdesk => FRONTDESK_ROWS,
    };
    db.execute_batch(tables).map_err(context)?;
    let checkpoints = open(path).map_err(context)?;
    let (tx, rx) = std::sync::mpsc::channel();
    let log = Arc::new(Log::default());
    let writers = log.clone();
    std::thread::Builder::new()
        .name("floor-writer".into())
        .spawn(move || {
            if let Err(e) = write(db, rows, rx, &writers) {
                eprintln!("error: the floor's writer failed: {e}");
                std::process::exit(1);
            }
        })?;
    // The checkpointer stops once the writer (and whoever else held what they share) is gone.
    let shared = Arc::downgrade(&log);
    std::thread::Builder::new()
        .name("floor-checkpoint".into())
        .spawn(move || loop {
            std::thread::sleep(CHECKPOINT_EVERY);
            let Some(log) = shared.upgrade() else {
                return;
            };
            match checkpoint(&checkpoints) {
                Ok(pages) => {
                    if pages > most_pages {
                        log.too_long.store(true, Ordering::Relaxed);
                    }
                }
                Err(e) => {
                    eprintln!("error: the floor's checkpoint failed: {e}");
                    std::process::exit(1);
                }
            }
        })?;
    Ok((tx, log))
}

/// A `PASSIVE` checkpoint; the pages in the log.
fn checkpoint(db: &rusqlite::Connection) -> rusqlite::Result<i64> {
    db.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| row.get(1))
}

/// The writer: every frame waiting is committed in one transaction, then each goes to its peer;
/// between two transactions, a catch-up when the checkpointer asks for one.
fn write(
    mut db: rusqlite::Connection,
    rows: Rows,
    frames: std::sync::mpsc::Receiver<Pending>,
    log: &Log,
) -> rusqlite::Result<()> {
    let mut stored: u64 = 0;
    while let Ok(first) = frames.recv() {
        if log.too_long.swap(false, Ordering::Relaxed) {
            checkpoint(&db)?;
            log.catch_ups.fetch_add(1, Ordering::Relaxed);
        }
        let mut batch = vec![first];
        batch.extend(frames.try_iter());
        let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for pending in &batch {
            let text = pending.frame.to_text().unwrap_or_default();
            match rows {
                Rows::Plain => {
                    tx.prepare_cached("INSERT INTO frames (body) VALUES (?1)")?
                        .execute([text])?;
                }
                Rows::Frontdesk => store_as_frontdesk(&tx, &pending.conversation, text, stored)?,
            }
            stored += 1;
        }
        tx.commit()?;
        for pending in batch {
            let _ = pending.peer.send(pending.frame);
        }
    }
    Ok(())
}

/// One frame as [`Rows::Frontdesk`]: the conversation's next number, then the event.
fn store_as_frontdesk(
    tx: &rusqlite::Transaction,
    pair: &str,
    text: &str,
    n: u64,
) -> rusqlite::Result<()> {
    // frontdesk's ids are UUIDs: 36 characters.
    let conversation = format!("{pair:0>36}");
    let seq: i64 = tx
        .prepare_cached(
            "INSERT INTO conversations (id, last_seq, updated_at) VALUES (?1, 1, 0) \
             ON CONFLICT (id) DO UPDATE SET last_seq = last_seq + 1, updated_at = updated_at + 1 \
             RETURNING last_seq",
        )?
        .query_row([&conversation], |row| row.get(0))?;
    let body = serde_json::json!({
        "type": "message", "conversation_id": conversation, "seq": seq, "text": text,
    })
    .to_string();
    tx.prepare_cached(
        "INSERT INTO events (conversation_id, seq, sender, client_id, text, body, created_at) \
         VALUES (?1, ?2, 'agent', ?3, ?4, ?5, 0)",
    )?
    .execute(rusqlite::params![
        conversation,
        seq,
        format!("{n:0>36}"),
        text,
        body
    ])?;
    Ok(())
}

/// `/pair/{key}/a` → (key, 0); `/pair/{key}/c` → (key, 1).
fn route(path: &str) -> Option<(String, usize)> {
    let rest = path.strip_prefix("/pair/")?;
    let (key, side) = rest.rsplit_once('/')?;
    let side = match side {
        "a" => 0,
        "c" => 1,
        _ => return None,
    };
    (!key.is_empty()).then(|| (key.to_owned(), side))
}

async fn connection(stream: TcpStream, pairs: Pairs, passing: Route) {
    let mut path = String::new();
    // The error type is tungstenite's (an HTTP response); this callback never returns it.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, response: Response| {
        path = req.uri().path().to_owned();
        Ok(response)
    };
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let Ok(ws) =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(config)).await
    else {
        return;
    };
    let Some((key, side)) = route(&path) else {
        return;
    };
    let conversation: Arc<str> = key.as_str().into();
    let (mut sink, mut incoming) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    {
        let mut map = pairs.lock().unwrap_or_else(|e| e.into_inner());
        let slots = map.entry(key.clone()).or_default();
        slots[side] = Some(tx);
        if let [Some(a), Some(c)] = slots {
            let _ = a.send(Message::Text(PAIRED.into()));
            let _ = c.send(Message::Text(PAIRED.into()));
        }
    }
    let writer = tokio::spawn(async move {
        while let Some(msg) = rx.recv().await {
            if sink.send(msg).await.is_err() {
                break;
            }
        }
    });
    while let Some(Ok(msg)) = incoming.next().await {
        if let Message::Text(_) = msg {
            let peer = pairs
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&key)
                .and_then(|slots| slots[1 - side].clone());
            if let Some(peer) = peer {
                passing.pass(msg, &conversation, peer);
            }
        }
    }
    writer.abort();
    let mut map = pairs.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(slots) = map.get_mut(&key) {
        slots[side] = None;
        if slots.iter().all(Option::is_none) {
            map.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_pairs_by_key_and_side() {
        assert_eq!(route("/pair/17/a"), Some(("17".into(), 0)));
        assert_eq!(route("/pair/x-y/c"), Some(("x-y".into(), 1)));
        assert_eq!(route("/pair//a"), None);
        assert_eq!(route("/pair/17/b"), None);
        assert_eq!(route("/ws/chat"), None);
    }

    type Client = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

    /// Connects one side of pair `key`, retrying for two seconds until the floor listens.
    async fn side(port: u16, key: &str, side: &str) -> Option<Client> {
        let url = format!("ws://127.0.0.1:{port}/pair/{key}/{side}");
        for _ in 0..100 {
            if let Ok((ws, _)) = tokio_tungstenite::connect_async(url.as_str()).await {
                return Some(ws);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    async fn next_text(ws: &mut Client) -> String {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => t.as_str().to_owned(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Drives a durable floor storing `rows`: two pairs, twenty frames each sent from one side
    /// without waiting (so batches hold several, of both pairs), each checked to be in the store
    /// (`stored_sql`, given a pair's key: its texts in stored order) by the time the other side
    /// has it, and all stored once, in order.
    async fn frames_arrive_only_once_stored(rows: Rows, stored_sql: &str) {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("floor.db");
        let port = crate::server::free_port().expect("a free port");
        let serving = tokio::spawn(serve(
            port,
            Some(Store {
                path: path.clone(),
                durability: Durability::Full,
                rows,
                most_pages: MOST_PAGES,
            }),
        ));
        let keys = ["1", "2"];
        let mut agents = Vec::new();
        let mut customers = Vec::new();
        for key in keys {
            let Some(agent) = side(port, key, "a").await else {
                panic!("the floor did not listen: {:?}", serving.await);
            };
            agents.push(agent);
            customers.push(side(port, key, "c").await.expect("the customer's side"));
        }
        for ws in agents.iter_mut().chain(customers.iter_mut()) {
            assert_eq!(next_text(ws).await, PAIRED);
        }
        let db = rusqlite::Connection::open(&path).expect("the floor's store");
        db.busy_timeout(Duration::from_secs(5))
            .expect("a busy timeout");
        let stored = |key: &str| -> Vec<String> {
            let mut rows = db.prepare(stored_sql).expect("a query");
            rows.query_map([key], |row| row.get(0))
                .expect("rows")
                .collect::<Result<_, _>>()
                .expect("bodies")
        };
        let frame = |key: &str, n: usize| format!("{key}-m{n}");
        for n in 0..20 {
            for (key, agent) in keys.iter().zip(agents.iter_mut()) {
                agent
                    .send(Message::Text(frame(key, n).into()))
                    .await
                    .expect("sent");
            }
        }
        for (key, customer) in keys.iter().zip(customers.iter_mut()) {
            for n in 0..20 {
                let got = next_text(customer).await;
                assert_eq!(got, frame(key, n), "in order");
                // Passed on only after its commit: it is in the store by the time it arrives.
                assert!(
                    stored(key).contains(&got),
                    "{got} arrived before it was stored"
                );
            }
        }
        for key in keys {
            let all: Vec<String> = (0..20).map(|n| frame(key, n)).collect();
            assert_eq!(
                stored(key),
                all,
                "pair {key}: each frame stored once, in order"
            );
        }
    }

    #[tokio::test]
    async fn the_durable_floor_passes_on_only_frames_already_stored() {
        frames_arrive_only_once_stored(
            Rows::Plain,
            "SELECT body FROM frames WHERE body LIKE ?1 || '-%' ORDER BY id",
        )
        .await;
    }

    #[tokio::test]
    async fn with_frontdesk_s_rows_each_frame_is_numbered_in_its_conversation() {
        // Each pair's own conversation, ordered by the numbers its row gave; a row is listed only
        // if its number is its rank there, so numbers with a gap (or shared across pairs) fail.
        frames_arrive_only_once_stored(
            Rows::Frontdesk,
            "SELECT text FROM events WHERE conversation_id = printf('%036d', ?1) \
             AND seq = (SELECT COUNT(*) FROM events e \
             WHERE e.conversation_id = events.conversation_id AND e.seq <= events.seq) \
             ORDER BY seq",
        )
        .await;
    }

    /// Frames without a pause never let a passive checkpoint finish by itself; past its limit the
    /// writer catches up and the log starts over, so its file stays far smaller than what was
    /// written. Without the catch-up (or with it never asked for) this fails.
    #[test]
    fn the_durable_floor_s_log_starts_over_past_its_limit() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let path = dir.path().join("floor.db");
        let store = Store {
            path: path.clone(),
            durability: Durability::Normal,
            rows: Rows::Frontdesk,
            most_pages: 64,
        };
        let (writer, log) = start_store(&store).expect("the floor's store");
        let (peer, mut delivered) = mpsc::unbounded_channel();
        let conversation: Arc<str> = "1".into();
        let text = "a long enough message ".repeat(20);
        let started = std::time::Instant::now();
        let mut sent = 0;
        while started.elapsed() < CHECKPOINT_EVERY * 25 {
            for _ in 0..20 {
                let frame = Message::Text(text.clone().into());
                writer
                    .send(Pending {
                        frame,
                        conversation: conversation.clone(),
                        peer: peer.clone(),
                    })
                    .expect("the writer is running");
                sent += 1;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut got = 0;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while got < sent && std::time::Instant::now() < deadline {
            match delivered.try_recv() {
                Ok(_) => got += 1,
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        assert_eq!(got, sent, "every frame passed on");
        let catch_ups = log.catch_ups.load(Ordering::Relaxed);
        assert!(catch_ups >= 2, "the writer caught up {catch_ups} times");
        // Twice the text per frame (a column and the stored frame) was written.
        let written = sent as u64 * text.len() as u64 * 2;
        let file = std::fs::metadata(dir.path().join("floor.db-wal"))
            .expect("the log")
            .len();
        // A log that never started over holds every page written, so at least the database's
        // size; one that did is the most written between two catch-ups (about a tenth of it
        // here; several times that when the checkpointer's thread was held up, which made a
        // bound on a share of the text written fail now and then).
        let db = std::fs::metadata(&path).expect("the database").len();
        assert!(
            file < db,
            "the log's file is {file} bytes, the database's {db}, after {written} bytes of text: it did not start over"
        );
    }
}
