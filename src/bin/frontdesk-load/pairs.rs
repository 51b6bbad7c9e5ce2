//! Customer ↔ agent pairs for the relay profile, on frontdesk or on the floor relay, driven by one
//! piece of client code: a writer task per socket fed by a channel (frames batched while more are
//! waiting), and a reader task per socket that recognises the relayed messages by `client_id`.
//!
//! On frontdesk a pair is a conversation handed over (`request_human`) and assigned to one of a
//! few agents, whose sockets carry many conversations each. On the floor a pair is two sockets.
//! Message ids are `a{step}.{n}` (agent → customer) and `c{step}.{n}` (customer → agent), so a
//! reader knows which step and planned time a frame belongs to without any shared table.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use crate::schedule::Step;
use crate::server::{AgentSpec, FloorProcess, Server, PASSWORD};
use crate::stats::Recorder;
use crate::ws::{self, SourceAddrs};

/// Which way a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// Agent → customer (id prefix `a`).
    ToCustomer,
    /// Customer → agent (id prefix `c`).
    ToAgent,
}

/// The step being measured, and where its answers go.
#[derive(Default)]
pub struct Clock {
    step: AtomicU64,
    now: Mutex<Option<(Step, Instant)>>,
    /// Agent → customer latencies.
    pub to_customer: Recorder,
    /// Customer → agent latencies.
    pub to_agent: Recorder,
}

impl Clock {
    /// Starts measuring step number `id`; frames of earlier steps are ignored from now on.
    pub fn begin(&self, id: u64, step: Step, start: Instant) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = Some((step, start));
        self.step.store(id, Ordering::SeqCst);
        self.to_customer.take();
        self.to_agent.take();
    }

    /// A relayed message arrived: records its latency if it belongs to the current step.
    fn arrived(&self, way: Way, id: &str) {
        let Some(rest) = id.strip_prefix(match way {
            Way::ToCustomer => 'a',
            Way::ToAgent => 'c',
        }) else {
            return;
        };
        let Some((step, n)) = rest.split_once('.') else {
            return;
        };
        let (Ok(step), Ok(n)) = (step.parse::<u64>(), n.parse::<u64>()) else {
            return;
        };
        if step != self.step.load(Ordering::SeqCst) {
            return;
        }
        let Some((plan, start)) = *self.now.lock().unwrap_or_else(|e| e.into_inner()) else {
            return;
        };
        let recorder = match way {
            Way::ToCustomer => &self.to_customer,
            Way::ToAgent => &self.to_agent,
        };
        recorder.record(plan.planned(start, n));
    }
}

/// The `client_id` of a relayed message frame: a customer's `message` (frontdesk or the floor's
/// copy of the agent's frame), or an agent's `event` wrapping a customer `message`.
pub fn relayed_id(v: &Value) -> Option<&str> {
    let frame = if v["type"] == "event" { &v["frame"] } else { v };
    (frame["type"] == "message")
        .then(|| frame["client_id"].as_str())
        .flatten()
}

/// The highest `seq` one side (the customers, or the agents) has seen in each conversation: sent
/// as `seen` with its messages, as the widget and the console do, so the server looks for an
/// earlier copy among the few frames after it.
#[derive(Default)]
pub struct Seen(Mutex<HashMap<String, i64>>);

impl Seen {
    fn saw(&self, conversation: &str, seq: i64) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match all.get_mut(conversation) {
            Some(seen) => *seen = (*seen).max(seq),
            None => {
                all.insert(conversation.to_owned(), seq);
            }
        }
    }

    fn of(&self, conversation: &str) -> i64 {
        let all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        all.get(conversation).copied().unwrap_or(0)
    }
}

/// One conversation's two ends.
#[derive(Clone)]
pub struct Pair {
    customer: mpsc::UnboundedSender<String>,
    agent: mpsc::UnboundedSender<String>,
    conversation: String,
    /// What the customers and the agents have seen (nothing is recorded on the floor).
    seen: [Arc<Seen>; 2],
}

impl Pair {
    /// Sends message `n` of step `step` the given way.
    pub fn send(&self, way: Way, step: u64, n: u64) {
        let [customers, agents] = &self.seen;
        let _ = match way {
            Way::ToCustomer => self.agent.send(format!(
                r#"{{"type":"message","conversation_id":"{}","client_id":"a{step}.{n}","seen":{},"text":"relay a{step}.{n}"}}"#,
                self.conversation,
                agents.of(&self.conversation),
            )),
            Way::ToAgent => self.customer.send(format!(
                r#"{{"type":"message","client_id":"c{step}.{n}","seen":{},"text":"relay c{step}.{n}"}}"#,
                customers.of(&self.conversation),
            )),
        };
    }
}

/// Every pair, their socket tasks (stopped on drop), and the clock their readers report to.
pub struct Rig {
    /// The pairs, by index.
    pub pairs: Vec<Pair>,
    /// Where latencies go.
    pub clock: Arc<Clock>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Rig {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Runs a socket: a writer fed by the returned channel, a reader reporting relayed frames as
/// arriving `way` and handing every frame to `on_frame` first.
fn run_socket(
    ws: ws::Ws,
    way: Way,
    clock: Arc<Clock>,
    tasks: &mut Vec<JoinHandle<()>>,
    mut on_frame: impl FnMut(&Value) + Send + 'static,
) -> mpsc::UnboundedSender<String> {
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    tasks.push(tokio::spawn(async move {
        while let Some(text) = rx.recv().await {
            if sink.feed(Message::Text(text.into())).await.is_err() {
                return;
            }
            while let Ok(more) = rx.try_recv() {
                if sink.feed(Message::Text(more.into())).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    }));
    tasks.push(tokio::spawn(async move {
        while let Some(Ok(msg)) = stream.next().await {
            let Some(v) = ws::parse(&msg) else { continue };
            on_frame(&v);
            if let Some(id) = relayed_id(&v) {
                clock.arrived(way, id);
            }
        }
    }));
    tx
}

/// `conversations` pairs on the floor relay.
pub async fn floor(floor: &FloorProcess, conversations: usize) -> anyhow::Result<Rig> {
    let clock = Arc::new(Clock::default());
    let mut tasks = Vec::new();
    let mut pairs = Vec::new();
    let addrs = SourceAddrs::new(50);
    for i in 0..conversations {
        let mut ends = Vec::new();
        for side in ["c", "a"] {
            let url = format!("ws://{}/pair/{i}/{side}", floor.addr());
            ends.push(ws::connect(floor.addr(), &url, Some(addrs.next())).await?);
        }
        let mut senders = Vec::new();
        for (mut end, way) in ends.into_iter().zip([Way::ToCustomer, Way::ToAgent]) {
            let first = tokio::time::timeout(Duration::from_secs(5), end.next()).await;
            if !matches!(first, Ok(Some(Ok(Message::Text(ref t)))) if t.as_str() == crate::floor::PAIRED)
            {
                bail!("the floor relay did not pair connection {i}");
            }
            senders.push(run_socket(end, way, clock.clone(), &mut tasks, |_| {}));
        }
        let agent = senders.pop().context("agent end")?;
        let customer = senders.pop().context("customer end")?;
        pairs.push(Pair {
            customer,
            agent,
            conversation: i.to_string(),
            seen: Default::default(),
        });
    }
    Ok(Rig {
        pairs,
        clock,
        tasks,
    })
}

/// `conversations` conversations on frontdesk, each handed over and assigned to one of `agents`
/// (created with room for all of them). Customers connect to `server`, agent `i` to
/// `agents_on[i % len]` (the same server, or other nodes of its cluster).
pub async fn frontdesk(
    server: &Server,
    agents_on: &[&Server],
    agents: &[AgentSpec],
    conversations: usize,
) -> anyhow::Result<Rig> {
    let clock = Arc::new(Clock::default());
    let mut tasks = Vec::new();
    let http = reqwest::Client::new();
    let holders: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let [customers_saw, agents_saw]: [Arc<Seen>; 2] = Default::default();
    let mut agent_tx = Vec::new();
    for (i, agent) in agents.iter().enumerate() {
        let node = agents_on.get(i % agents_on.len().max(1)).unwrap_or(&server);
        let token = ws::login(&http, &node.url(""), &agent.email, PASSWORD).await?;
        let ws = ws::connect(
            node.addr(),
            &node.ws_url(&format!("/ws/agent?token={token}")),
            None,
        )
        .await?;
        let (sink, mut stream) = ws.split();
        ws::next_where(&mut stream, Duration::from_secs(10), "ready", |v| {
            v["type"] == "ready"
        })
        .await?;
        let ws = sink.reunite(stream).context("reuniting the agent socket")?;
        let holders = holders.clone();
        let saw = agents_saw.clone();
        agent_tx.push(run_socket(
            ws,
            Way::ToAgent,
            clock.clone(),
            &mut tasks,
            move |v| {
                if let (Some(id), Some(seq)) =
                    (v["conversation_id"].as_str(), v["frame"]["seq"].as_i64())
                {
                    saw.saw(id, seq);
                }
                if v["type"] == "assigned" {
                    if let Some(id) = v["conversation_id"].as_str() {
                        holders
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(id.to_owned(), i);
                    }
                }
            },
        ));
    }
    let addrs = Arc::new(SourceAddrs::new(50));
    let customers: Vec<anyhow::Result<(String, ws::Ws)>> =
        futures_util::stream::iter(0..conversations)
            .map(|_| handed_over(server, addrs.clone()))
            .buffer_unordered(32)
            .collect()
            .await;
    let mut pairs = Vec::new();
    for customer in customers {
        let (conversation, ws) = customer?;
        let holder = wait_for_holder(&holders, &conversation).await?;
        let saw = customers_saw.clone();
        let id = conversation.clone();
        let customer = run_socket(ws, Way::ToCustomer, clock.clone(), &mut tasks, move |v| {
            if let Some(seq) = v["seq"].as_i64() {
                saw.saw(&id, seq);
            }
        });
        pairs.push(Pair {
            customer,
            agent: agent_tx[holder].clone(),
            conversation,
            seen: [customers_saw.clone(), agents_saw.clone()],
        });
    }
    Ok(Rig {
        pairs,
        clock,
        tasks,
    })
}

/// A customer who said hello and asked for a person, once an agent holds the conversation.
async fn handed_over(server: &Server, addrs: Arc<SourceAddrs>) -> anyhow::Result<(String, ws::Ws)> {
    let ws = ws::connect(
        server.addr(),
        &server.ws_url("/ws/chat"),
        Some(addrs.next()),
    )
    .await?;
    let (mut sink, mut stream) = ws.split();
    ws::send(&mut sink, &json!({"type": "hello"})).await?;
    let welcome = ws::next_where(&mut stream, Duration::from_secs(30), "welcome", |v| {
        v["type"] == "welcome"
    })
    .await?;
    let conversation = welcome["conversation_id"]
        .as_str()
        .context("welcome without conversation_id")?
        .to_owned();
    ws::send(&mut sink, &json!({"type": "request_human"})).await?;
    ws::next_where(
        &mut stream,
        Duration::from_secs(60),
        "an agent (status agent)",
        |v| v["type"] == "status" && v["state"] == "agent",
    )
    .await?;
    Ok((
        conversation,
        sink.reunite(stream)
            .context("reuniting the customer socket")?,
    ))
}

async fn wait_for_holder(
    holders: &Mutex<HashMap<String, usize>>,
    conversation: &str,
) -> anyhow::Result<usize> {
    for _ in 0..500 {
        if let Some(i) = holders
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(conversation)
        {
            return Ok(*i);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bail!("no agent got `assigned` for conversation {conversation} although its customer saw an agent join")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relayed_ids_come_from_messages_and_agent_events_only() {
        let to_customer =
            json!({"type": "message", "seq": 3, "from": "agent", "client_id": "a1.2"});
        assert_eq!(relayed_id(&to_customer), Some("a1.2"));
        let to_agent = json!({"type": "event", "conversation_id": "x",
                              "frame": {"type": "message", "client_id": "c1.3"}});
        assert_eq!(relayed_id(&to_agent), Some("c1.3"));
        assert_eq!(
            relayed_id(&json!({"type": "ack", "client_id": "c1.3"})),
            None
        );
    }

    #[test]
    fn the_clock_counts_only_the_current_step_and_the_right_way() {
        let clock = Clock::default();
        let step = Step {
            rate: 1000.0,
            duration: Duration::from_secs(1),
        };
        clock.begin(2, step, Instant::now());
        clock.arrived(Way::ToCustomer, "a2.5");
        clock.arrived(Way::ToCustomer, "a1.5");
        clock.arrived(Way::ToCustomer, "c2.5");
        clock.arrived(Way::ToAgent, "c2.6");
        assert_eq!((clock.to_customer.count(), clock.to_agent.count()), (1, 1));
    }
}
