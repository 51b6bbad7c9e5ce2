//! The client side every profile shares: WebSocket connections from many loopback source
//! addresses with small buffers, frames as JSON values, and the few HTTP calls (login, reads).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// One client WebSocket.
pub type Ws = WebSocketStream<TcpStream>;
/// Its writing half.
pub type Sink = SplitSink<Ws, Message>;
/// Its reading half.
pub type Stream = SplitStream<Ws>;

/// Raises this process's soft limit on open files to the hard limit (children inherit it, so the
/// server started after this gets it too). Returns the limit now in force.
pub fn raise_open_files_limit() -> anyhow::Result<u64> {
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .context("reading the open-files limit (RLIMIT_NOFILE)")?;
    rlimit::increase_nofile_limit(hard).context("raising the open-files limit to the hard limit")
}

/// The open-files limit in force now.
pub fn open_files_limit() -> u64 {
    rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
}

/// Hands out loopback source addresses, `per_address` connections each (127.2.0.1, 127.2.0.2, …),
/// so a server's cap on sockets per client address never hides a figure.
pub struct SourceAddrs {
    next: AtomicU32,
    per_address: u32,
}

impl SourceAddrs {
    /// `per_address` connections from each address before moving to the next.
    pub fn new(per_address: u32) -> Self {
        Self {
            next: AtomicU32::new(0),
            per_address: per_address.max(1),
        }
    }

    /// The source address for the next connection.
    pub fn next(&self) -> Ipv4Addr {
        let n = self.next.fetch_add(1, Ordering::Relaxed) / self.per_address;
        address(n)
    }
}

/// The `n`th loopback source address: 127.2.x.y, skipping .0 and .255.
fn address(n: u32) -> Ipv4Addr {
    let n = n % (254 * 254);
    Ipv4Addr::new(127, 2, (n / 254) as u8 + 1, (n % 254) as u8 + 1)
}

/// Small client buffers: 15,000 sockets must fit in this process too.
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// Opens a WebSocket to `url` on `server`, from `from` (any loopback address) when given, with
/// Nagle's algorithm off.
pub async fn connect(server: SocketAddr, url: &str, from: Option<Ipv4Addr>) -> anyhow::Result<Ws> {
    let socket = TcpSocket::new_v4()?;
    if let Some(ip) = from {
        socket
            .bind(SocketAddrV4::new(ip, 0).into())
            .with_context(|| format!("binding a client socket to {ip}"))?;
    }
    socket.set_nodelay(true)?;
    let stream = socket
        .connect(server)
        .await
        .with_context(|| format!("connecting to {server}"))?;
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config()))
        .await
        .with_context(|| format!("opening the WebSocket {url}"))?;
    Ok(ws)
}

/// Drops a connection without a close frame; with `reset`, as a TCP reset (SO_LINGER 0) rather
/// than an orderly FIN.
pub fn drop_abruptly(ws: Ws, reset: bool) {
    if reset {
        // Deprecated because a non-zero linger blocks the thread on drop; zero never waits: the
        // kernel sends a reset at once.
        #[allow(deprecated)]
        let _ = ws.get_ref().set_linger(Some(Duration::ZERO));
    }
    drop(ws);
}

/// A text frame holding `v`.
pub fn text(v: &Value) -> Message {
    Message::Text(v.to_string().into())
}

/// The JSON object in a text frame; `None` for other frames and for text that is not JSON.
pub fn parse(msg: &Message) -> Option<Value> {
    match msg {
        Message::Text(t) => serde_json::from_str(t.as_str()).ok(),
        _ => None,
    }
}

/// A socket's writing half run by a task of its own, so whoever feeds it keeps reading: frames
/// sent on `tx` are written in order (batched while more are waiting).
pub struct Writer {
    /// Queue a frame.
    pub tx: tokio::sync::mpsc::UnboundedSender<Message>,
    task: tokio::task::JoinHandle<Option<Sink>>,
}

impl Writer {
    /// Starts writing to `sink`.
    pub fn spawn(mut sink: Sink) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Message>();
        let task = tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                sink.feed(msg).await.ok()?;
                while let Ok(more) = rx.try_recv() {
                    sink.feed(more).await.ok()?;
                }
                sink.flush().await.ok()?;
            }
            Some(sink)
        });
        Self { tx, task }
    }

    /// Queues `v` as a text frame; false once the writer has stopped (the connection failed).
    pub fn send(&self, v: &Value) -> bool {
        self.tx.send(text(v)).is_ok()
    }

    /// Stops the writer and gives its sink back; `None` when the connection failed or the
    /// writer is stuck on a peer that does not read (it is then aborted).
    pub async fn stop(self) -> Option<Sink> {
        drop(self.tx);
        let abort = self.task.abort_handle();
        match tokio::time::timeout(Duration::from_millis(100), self.task).await {
            Ok(Ok(sink)) => sink,
            _ => {
                abort.abort();
                None
            }
        }
    }
}

/// Sends `v` as a text frame.
pub async fn send(sink: &mut Sink, v: &Value) -> anyhow::Result<()> {
    sink.send(text(v)).await.context("sending a frame")
}

/// Reads frames until one satisfies `pred`, for at most `wait`.
pub async fn next_where(
    stream: &mut Stream,
    wait: Duration,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let msg = tokio::time::timeout_at(deadline, stream.next())
            .await
            .map_err(|_| anyhow!("no {what} within {wait:?}"))?
            .ok_or_else(|| anyhow!("the connection closed before {what}"))?
            .with_context(|| format!("reading while waiting for {what}"))?;
        if let Some(v) = parse(&msg) {
            if pred(&v) {
                return Ok(v);
            }
        }
    }
}

/// Logs in an agent over HTTP; returns the token.
pub async fn login(
    http: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    let response = http
        .post(format!("{base}/api/agent/login"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .context("logging in")?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    match body["token"].as_str() {
        Some(token) if status.is_success() => Ok(token.to_owned()),
        _ => bail!("login as {email} failed: {status} {body}"),
    }
}

/// GET `path` with a bearer token; the JSON body of a 2xx answer.
pub async fn get_json(http: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<Value> {
    // A kept-alive connection the server closed as idle just as the request went out fails
    // without an answer, and a server too busy to answer in time says 408: a GET is safe to
    // send again (a failed connection is not reused).
    let mut tries = 0;
    let response = loop {
        tries += 1;
        match http.get(url).bearer_auth(token).send().await {
            Ok(response)
                if response.status() == reqwest::StatusCode::REQUEST_TIMEOUT && tries < 3 =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Ok(response) => break response,
            Err(e) if tries < 3 && (e.is_request() || e.is_connect()) => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("GET {url}")),
        }
    };
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!("GET {url}: {status} {body}");
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_addresses_stay_in_loopback_and_change_every_per_address() {
        let addrs = SourceAddrs::new(2);
        let first: Vec<Ipv4Addr> = (0..6).map(|_| addrs.next()).collect();
        assert_eq!(first[0], first[1]);
        assert_ne!(first[1], first[2]);
        assert!(first.iter().all(|a| a.is_loopback()));
        let all: std::collections::HashSet<Ipv4Addr> = (0..254 * 254).map(address).collect();
        assert_eq!(all.len(), 254 * 254);
        assert!(all
            .iter()
            .all(|a| a.octets()[3] != 0 && a.octets()[3] != 255));
    }
}
