//! The floor: a bare pairing relay (tokio-tungstenite, no storage, no JSON parsing). Two sockets
//! that open `/pair/{key}/a` and `/pair/{key}/c` are paired; each gets the text `paired`, then
//! every text frame one sends is written to the other unchanged. The relay profile drives it with
//! the same client code as frontdesk, in the same run, so frontdesk's figures read as multiples of
//! what this machine does with no work in between.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

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

/// Serves the floor relay on 127.0.0.1:`port` until the process is stopped.
pub async fn serve(port: u16) -> anyhow::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
    let pairs: Pairs = Arc::default();
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream, pairs.clone()));
    }
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

async fn connection(stream: TcpStream, pairs: Pairs) {
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
                let _ = peer.send(msg);
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
}
