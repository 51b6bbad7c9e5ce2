//! A chaos customer, as the widget behaves: one conversation, messages kept until acknowledged,
//! and after any lost connection a resume with `hello{session, last_seq}` and the unacknowledged
//! messages sent again under the same `client_id`.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use futures_util::StreamExt;
use rand::Rng;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::ledger::{Ledger, Pending};
use super::{Cmd, Ledgers, Stats};
use crate::ws;

/// How long a hello may wait for `welcome` before the socket is dropped and opened again.
const HANDSHAKE: Duration = Duration::from_secs(5);

/// One customer.
pub struct Customer {
    /// Where the server listens.
    pub server: SocketAddr,
    /// `ws://…/ws/chat`.
    pub url: String,
    /// Source address.
    pub from: Ipv4Addr,
    /// Shared counters.
    pub stats: Arc<Stats>,
    /// This customer's conversation.
    pub ledger: Arc<Mutex<Ledger>>,
}

impl Customer {
    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the conversation, registers it in `ledgers`, asks for a person and waits until an
    /// agent has it. Returns the socket.
    pub async fn open(&self, ledgers: &Ledgers) -> anyhow::Result<ws::Ws> {
        let ws = ws::connect(self.server, &self.url, Some(self.from)).await?;
        let (mut sink, mut stream) = ws.split();
        ws::send(&mut sink, &json!({"type": "hello"})).await?;
        let welcome = ws::next_where(&mut stream, Duration::from_secs(30), "welcome", |v| {
            v["type"] == "welcome"
        })
        .await?;
        {
            let mut l = self.ledger();
            l.id = welcome["conversation_id"]
                .as_str()
                .context("welcome without conversation_id")?
                .to_owned();
            l.session = welcome["session"]
                .as_str()
                .context("welcome without session")?
                .to_owned();
            ledgers.insert(l.id.clone(), self.ledger.clone());
        }
        ws::send(&mut sink, &json!({"type": "request_human"})).await?;
        loop {
            let v =
                ws::next_where(&mut stream, Duration::from_secs(60), "an agent", |_| true).await?;
            self.on_frame(&v);
            if v["type"] == "status" && v["state"] == "agent" {
                return sink.reunite(stream).context("reuniting the socket");
            }
            if v["type"] == "error" {
                bail!("the server refused the request for a person: {v}");
            }
        }
    }

    /// Chats until told to stop: writes a message on `Cmd::Write`, drops the connection on
    /// `Cmd::Drop`, and resumes after every lost connection.
    pub async fn run(self, ws: ws::Ws, mut commands: mpsc::UnboundedReceiver<Cmd>) {
        let mut next = Some(ws);
        loop {
            let ws = match next.take() {
                Some(ws) => ws,
                None => match self.resume().await {
                    Ok(ws) => ws,
                    Err(e) => {
                        self.ledger()
                            .customer_event(format!("resume failed: {e:#}"));
                        self.stats.note_failure("customer resume", &e);
                        tokio::time::sleep(self.stats.backoff()).await;
                        continue;
                    }
                },
            };
            self.ledger().customer_live = true;
            let (mut sink, mut stream) = ws.split();
            loop {
                tokio::select! {
                    cmd = commands.recv() => match cmd {
                        None | Some(Cmd::Stop) => {
                            self.ledger().customer_stopped = Some(std::time::Instant::now());
                            return;
                        }
                        Some(Cmd::Write) => {
                            let p = {
                                let mut l = self.ledger();
                                let (prefix, seen) = (format!("c{}", l.number), l.customer_view.high);
                                l.customer.write(&prefix, seen)
                            };
                            if ws::send(&mut sink, &message(&p)).await.is_err() {
                                break;
                            }
                        }
                        Some(Cmd::Stall(most)) => {
                            self.stats.stalls.inc();
                            self.stall(most).await;
                        }
                        Some(Cmd::Drop { reset }) => {
                            if let Ok(ws) = sink.reunite(stream) {
                                ws::drop_abruptly(ws, reset);
                            }
                            let high = self.ledger().customer_view.high;
                            self.ledger().customer_event(format!("dropped by the tool at seq {high}"));
                            self.stats.customer_drops.inc();
                            let pause = rand::thread_rng().gen_range(0..300);
                            tokio::time::sleep(Duration::from_millis(pause)).await;
                            break;
                        }
                    },
                    frame = stream.next() => match frame {
                        Some(Ok(msg)) => match ws::parse(&msg) {
                            Some(v) => self.on_frame(&v),
                            None => if let tokio_tungstenite::tungstenite::Message::Close(close) = &msg {
                                let high = self.ledger().customer_view.high;
                                self.ledger().customer_event(format!("closed by the server at seq {high}: {close:?}"));
                            },
                        },
                        end => {
                            let high = self.ledger().customer_view.high;
                            let why = match end {
                                Some(Err(e)) => e.to_string(),
                                _ => "end of stream".into(),
                            };
                            self.ledger().customer_event(format!("connection lost at seq {high}: {why}"));
                            self.stats.closed_by_server.inc();
                            break;
                        }
                    },
                }
            }
            self.ledger().customer_live = false;
        }
    }

    /// Reads nothing until the agent's messages in this conversation are all acknowledged (the
    /// server took them all), or for `most` at the longest: on a server that waits on slow
    /// readers, the stall lasts until the buffers are full whatever the server's speed.
    async fn stall(&self, most: Duration) {
        let until = tokio::time::Instant::now() + most;
        tokio::time::sleep(Duration::from_millis(500)).await;
        while tokio::time::Instant::now() < until && !self.ledger().agent.pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Opens a new socket: `hello` with the session and the highest seq seen, the frames missed,
    /// then every unacknowledged message again.
    async fn resume(&self) -> anyhow::Result<ws::Ws> {
        let ws = tokio::time::timeout(
            HANDSHAKE,
            ws::connect(self.server, &self.url, Some(self.from)),
        )
        .await
        .context("connecting took over 5 s")??;
        self.stats.reconnects.inc();
        let (mut sink, mut stream) = ws.split();
        let (session, last_seq) = {
            let l = self.ledger();
            (l.session.clone(), l.customer_view.high)
        };
        ws::send(
            &mut sink,
            &json!({"type": "hello", "session": session, "last_seq": last_seq}),
        )
        .await?;
        let welcome = ws::next_where(&mut stream, HANDSHAKE, "welcome", |v| {
            v["type"] == "welcome"
        })
        .await?;
        if welcome["resumed"] != true || welcome["conversation_id"] != self.ledger().id.as_str() {
            self.stats.sessions_lost.inc();
            bail!("the session did not resume its conversation: {welcome}");
        }
        self.on_frame(&welcome);
        {
            let mut l = self.ledger();
            let missed: Vec<i64> = welcome["missed"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["seq"].as_i64())
                .collect();
            let event = format!(
                "resumed from seq {last_seq}: welcome.last_seq {}, missed {} ({:?}..={:?})",
                welcome["last_seq"],
                missed.len(),
                missed.first(),
                missed.last()
            );
            l.customer_event(event);
        }
        // Once the run stops, what is sent again would be stored after the agent stopped reading.
        let pending: Vec<Pending> = if self.stats.stopping() {
            Vec::new()
        } else {
            self.ledger().customer.pending.clone()
        };
        for p in &pending {
            ws::send(&mut sink, &message(p)).await?;
        }
        self.ledger().customer.resent += pending.len();
        sink.reunite(stream).context("reuniting the socket")
    }

    fn on_frame(&self, v: &Value) {
        let mut l = self.ledger();
        match v["type"].as_str() {
            Some("ack") => {
                if let (Some(id), Some(seq)) = (v["client_id"].as_str(), v["seq"].as_i64()) {
                    l.customer_ack(id, seq, v["duplicate"] == true);
                }
            }
            Some("welcome") => {
                for frame in v["missed"].as_array().into_iter().flatten() {
                    l.customer_frame(frame);
                }
            }
            Some("error") => {
                drop(l);
                self.stats.note_error("customer", v);
            }
            _ => l.customer_frame(v),
        }
    }
}

fn message(p: &Pending) -> Value {
    json!({"type": "message", "client_id": p.client_id, "seen": p.seen, "text": p.text})
}
