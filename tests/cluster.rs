//! Several nodes (issue 13): three servers on one Postgres database and one Redis, as three
//! machines behind a load balancer without sticky sessions would be. A customer on node 1 and
//! their agent on node 2 chat, each message arriving once and in order; two agents on different
//! nodes claim one chat and exactly one wins; an agent on one node counts as online on the
//! others; a customer who comes back on node 3 with `last_seq`
//! misses nothing; when Redis goes away every socket closes with 4004 `reconnect` and resumes from
//! the store without losing a message, and live delivery comes back with Redis; the timers fire
//! once across the nodes and go on when the node running them dies; a node killed with SIGKILL
//! (a real process, `common::node`) mid-chat loses nothing acknowledged; the per-address budgets
//! and the login throttles (per account, per address) allow as much across three nodes as on one;
//! a node refuses to start linked to others on a SQLite store.
//!
//! It needs FRONTDESK_TEST_POSTGRES (a user who may create databases) and FRONTDESK_TEST_REDIS;
//! `make test` starts both (scripts/with-postgres.sh, scripts/with-redis.sh). Without them each
//! test says it is skipped and passes, unless FRONTDESK_REQUIRE_POSTGRES=1 (CI): then it fails.

mod common;

use std::time::Duration;

use common::{spawn_app_with, AgentClient, Client, TestApp};

const WAIT: Duration = Duration::from_secs(10);
use serde_json::{json, Value};

/// Postgres's and Redis's URLs, or `None` after saying that `test` is skipped.
fn services(test: &str) -> Option<[String; 2]> {
    let urls = common::services(
        "cluster.rs",
        test,
        &["FRONTDESK_TEST_POSTGRES", "FRONTDESK_TEST_REDIS"],
    )?;
    urls.try_into().ok()
}

/// `count` nodes on the fresh database `url`, linked through `redis` on `channel`.
async fn nodes_on(url: &str, redis: &str, channel: &str, count: usize) -> Vec<TestApp> {
    nodes_with(url, redis, channel, count, |_| {}).await
}

/// As [`nodes_on`], with the settings changed by `tweak` too.
async fn nodes_with(
    url: &str,
    redis: &str,
    channel: &str,
    count: usize,
    tweak: fn(&mut frontdesk::settings::Settings),
) -> Vec<TestApp> {
    let mut nodes = Vec::new();
    for _ in 0..count {
        let (url, redis, channel) = (url.to_owned(), redis.to_owned(), channel.to_owned());
        nodes.push(
            spawn_app_with(move |s| {
                s.store.url = url;
                s.cluster.redis_url = Some(redis);
                s.cluster.channel = channel;
                s.handoff.auto_assign = false;
                s.limits.message_burst = 50.0;
                tweak(s);
            })
            .await,
        );
    }
    nodes
}

/// Three nodes on a fresh database and a channel of their own on the Redis (tests run at once),
/// agents assigned by claim only, customers allowed to type faster than people do.
async fn three_nodes(admin: &str, redis: &str) -> [TestApp; 3] {
    let nodes = fresh_cluster(admin, redis, 3, |_| {}).await;
    nodes.try_into().ok().expect("three nodes")
}

/// `count` nodes as [`nodes_with`] makes them, on a fresh database and a Redis channel of their
/// own (tests run at once).
async fn fresh_cluster(
    admin: &str,
    redis: &str,
    count: usize,
    tweak: fn(&mut frontdesk::settings::Settings),
) -> Vec<TestApp> {
    let url = common::fresh_postgres_database(admin).await;
    let channel = format!("frontdesk-test:{}", uuid::Uuid::new_v4().simple());
    nodes_with(&url, redis, &channel, count, tweak).await
}

/// The next frame of `customer` that `pred` accepts, skipping the others (status, system
/// messages, typing).
async fn next_frame(customer: &mut Client, pred: impl Fn(&Value) -> bool) -> Value {
    loop {
        let frame = customer.recv().await;
        if pred(&frame) {
            return frame;
        }
    }
}

/// A customer on `node` who asked for a person; their conversation's id and session.
async fn queued_customer(node: &TestApp) -> (Client, String, String) {
    let mut customer = node.client().await;
    let welcome = customer.hello(None, None).await;
    let id = welcome["conversation_id"].as_str().unwrap().to_owned();
    let session = welcome["session"].as_str().unwrap().to_owned();
    customer.send(json!({"type": "request_human"})).await;
    next_frame(&mut customer, |f| f["state"] == "queued").await;
    (customer, id, session)
}

/// `agent` sees `id` in its queue (told by another node), claims it, and is assigned it.
async fn claim(agent: &mut AgentClient, id: &str) {
    agent
        .wait_queue(|q| q.iter().any(|e| e["conversation_id"] == id))
        .await;
    agent
        .send(json!({"type": "claim", "conversation_id": id}))
        .await;
    let assigned = agent.next("assigned").await;
    assert_eq!(assigned["conversation_id"], id);
}

/// Frames arriving on the customer's socket within a short quiet time.
async fn rest_of(customer: &mut Client) -> Vec<Value> {
    customer.drain(Duration::from_millis(700)).await
}

#[tokio::test]
async fn a_customer_on_node_1_and_an_agent_on_node_2_chat_each_message_once_and_in_order() {
    let Some([pg, redis]) = services("a_customer_on_node_1_and_an_agent_on_node_2_chat") else {
        return;
    };
    let [one, two, _three] = three_nodes(&pg, &redis).await;
    let token = two.agent_token("Sam", &[]).await;
    let mut sam = two.agent(&token).await;
    let (mut customer, id, _) = queued_customer(&one).await;
    claim(&mut sam, &id).await;
    let joined = next_frame(&mut customer, |f| f["state"] == "agent").await;
    assert_eq!(
        joined["agent"], "Sam",
        "the widget on node 1 says who joined"
    );

    // Each side writes several messages before reading: they must arrive in the order written.
    for i in 0..5 {
        customer
            .send(json!({"type": "message", "client_id": format!("m{i}"), "text": format!("customer says {i}")}))
            .await;
    }
    for i in 0..5 {
        let seen = sam.next_event(|f| f["from"] == "customer").await;
        assert_eq!(seen["text"], format!("customer says {i}"));
    }
    for i in 0..5 {
        sam.send(json!({"type": "message", "conversation_id": id, "text": format!("agent says {i}"), "client_id": format!("a{i}")}))
            .await;
    }
    let mut last = 0;
    for i in 0..5 {
        let from_agent = next_frame(&mut customer, |f| f["from"] == "agent").await;
        assert_eq!(from_agent["text"], format!("agent says {i}"));
        let seq = from_agent["seq"].as_i64().unwrap();
        assert!(seq > last, "sequence numbers rise: {seq} after {last}");
        last = seq;
    }
    // Nothing arrives twice: not on the customer's socket, not on the agent's.
    let extra = rest_of(&mut customer).await;
    assert!(
        extra.iter().all(|f| f["from"] != "agent"),
        "an agent message arrived twice on node 1: {extra:?}"
    );
    let extra = sam.drain(Duration::from_millis(700)).await;
    assert!(
        extra.iter().all(|f| f["frame"]["from"] != "customer"),
        "a customer message arrived twice on node 2: {extra:?}"
    );

    // The store holds each message once, numbered without a gap.
    let frames: Vec<Value> = one
        .store
        .events_after(&id, 0)
        .await
        .unwrap()
        .iter()
        .map(|f| serde_json::from_str(f).unwrap())
        .collect();
    let seqs: Vec<i64> = frames.iter().map(|f| f["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=frames.len() as i64).collect::<Vec<_>>());
    for i in 0..5 {
        for text in [format!("customer says {i}"), format!("agent says {i}")] {
            let copies = frames.iter().filter(|f| f["text"] == text.as_str()).count();
            assert_eq!(copies, 1, "{text} stored {copies} times");
        }
    }

    // The agent resolves on node 2: the customer on node 1 is told, and no console still lists
    // the chat.
    sam.send(json!({"type": "resolve", "conversation_id": id}))
        .await;
    next_frame(&mut customer, |f| f["state"] == "resolved").await;
}

#[tokio::test]
async fn an_agent_on_node_2_counts_as_online_for_a_customer_on_node_1_until_they_leave() {
    let Some([pg, redis]) = services("an_agent_on_node_2_counts_as_online") else {
        return;
    };
    let [one, two, _three] = three_nodes(&pg, &redis).await;
    let token = two.agent_token("Sam", &[]).await;
    let sam = two.agent(&token).await;
    // Node 1 lists Sam among the agents online (told by node 2 as Sam connected).
    let listed = |agents: &Value| {
        agents["agents"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["name"] == "Sam"))
    };
    let mut tries = 0;
    while !listed(&one.get_as("/api/agents", Some(&token)).await.1) {
        tries += 1;
        assert!(tries < 100, "node 1 never listed the agent on node 2");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A customer on node 1 asking for a person is told a person will reply, not "nobody online".
    let mut customer = one.client().await;
    customer.hello(None, None).await;
    customer.send(json!({"type": "request_human"})).await;
    let queued = next_frame(&mut customer, |f| f["state"] == "queued").await;
    assert_eq!(queued["agents_available"], true, "{queued}");
    let note = next_frame(&mut customer, |f| f["from"] == "system").await;
    assert!(
        note["text"]
            .as_str()
            .unwrap()
            .contains("A person will reply"),
        "{note}"
    );
    // Sam closes the console: node 1 stops listing them.
    drop(sam);
    let mut tries = 0;
    while listed(&one.get_as("/api/agents", Some(&token)).await.1) {
        tries += 1;
        assert!(tries < 100, "node 1 still lists an agent who left node 2");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn two_agents_on_different_nodes_claim_one_chat_and_exactly_one_wins() {
    let Some([pg, redis]) = services("two_agents_on_different_nodes_claim_one_chat") else {
        return;
    };
    let [one, two, three] = three_nodes(&pg, &redis).await;
    let (t1, t2) = (
        two.agent_token("Ann", &[]).await,
        three.agent_token("Bob", &[]).await,
    );
    let mut ann = two.agent(&t1).await;
    let mut bob = three.agent(&t2).await;
    let (mut customer, id, _) = queued_customer(&one).await;
    for agent in [&mut ann, &mut bob] {
        agent
            .wait_queue(|q| q.iter().any(|e| e["conversation_id"] == id))
            .await;
    }
    let (a, b) = common::race_to_claim(&mut ann, &mut bob, &id).await;
    let mut types = [a["type"].as_str().unwrap(), b["type"].as_str().unwrap()];
    types.sort();
    assert_eq!(types, ["assigned", "claim_failed"], "{a} {b}");
    let (winner, mut loser) = if a["type"] == "assigned" {
        ("Ann", bob)
    } else {
        ("Bob", ann)
    };
    // The store says the same, the customer was joined by the winner once, and the loser's queue
    // no longer lists the chat.
    let handoffs = one.store.handoffs_of(&id).await.unwrap();
    let holder = one
        .store
        .agent(handoffs[0].agent_id.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(holder.name, winner);
    let joined = next_frame(&mut customer, |f| f["state"] == "agent").await;
    assert_eq!(joined["agent"], winner);
    let again = rest_of(&mut customer).await;
    assert!(
        again.iter().all(|f| f["state"] != "agent"),
        "joined twice: {again:?}"
    );
    loser
        .wait_queue(|q| q.iter().all(|e| e["conversation_id"] != id))
        .await;
}

#[tokio::test]
async fn a_customer_who_comes_back_on_node_3_with_last_seq_misses_nothing() {
    let Some([pg, redis]) = services("a_customer_who_comes_back_on_node_3") else {
        return;
    };
    let [one, two, three] = three_nodes(&pg, &redis).await;
    let token = two.agent_token("Sam", &[]).await;
    let mut sam = two.agent(&token).await;
    let (mut customer, id, session) = queued_customer(&one).await;
    claim(&mut sam, &id).await;
    let joined = next_frame(&mut customer, |f| f["state"] == "agent").await;
    let last_seq = joined["seq"].as_i64().unwrap();
    customer.close().await;

    // While the customer is away the agent writes twice; they come back on another node.
    for i in 0..2 {
        sam.send(json!({"type": "message", "conversation_id": id, "text": format!("while away {i}"), "client_id": format!("w{i}")}))
            .await;
        let text = format!("while away {i}");
        sam.next_event(|f| f["text"] == text.as_str()).await;
    }
    let mut back = three.client().await;
    let welcome = back.hello(Some(&session), Some(last_seq)).await;
    assert_eq!(welcome["conversation_id"], id.as_str());
    let missed: Vec<&str> = welcome["missed"]
        .as_array()
        .expect("welcome carries what was missed")
        .iter()
        .filter(|f| f["from"] == "agent")
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    assert_eq!(missed, ["while away 0", "while away 1"]);

    // And the chat carries on between node 3 and node 2, both ways.
    sam.send(
        json!({"type": "message", "conversation_id": id, "text": "still here?", "client_id": "s1"}),
    )
    .await;
    // Another node's publish of a frame already in `missed` may arrive late: the server does not
    // send it again, and frames come in order.
    let mut have = welcome["last_seq"].as_i64().expect("welcome's last_seq");
    let live = loop {
        let f = back.recv().await;
        if let Some(seq) = f["seq"].as_i64() {
            assert!(seq > have, "seq {seq} after {have}: {f}");
            have = seq;
        }
        if f["from"] == "agent" {
            break f;
        }
    };
    assert_eq!(live["text"], "still here?");
    back.send(json!({"type": "message", "client_id": "c1", "text": "yes, on another server"}))
        .await;
    let seen = sam.next_event(|f| f["from"] == "customer").await;
    assert_eq!(seen["text"], "yes, on another server");
}

/// A Redis of this test's own (it is stopped and started again), on a loopback port.
struct OwnRedis {
    bin: std::path::PathBuf,
    port: u16,
    dir: tempfile::TempDir,
    process: Option<tokio::process::Child>,
}

impl OwnRedis {
    /// `redis-server` from the PATH (scripts/with-redis.sh installs it), started on a free port.
    async fn start() -> Option<Self> {
        let bin = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|p| p.join("redis-server"))
                .find(|p| p.is_file())
        })?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut redis = Self {
            bin,
            port,
            dir: tempfile::tempdir().unwrap(),
            process: None,
        };
        redis.resume().await;
        Some(redis)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) and waits until it accepts connections.
    async fn resume(&mut self) {
        let child = tokio::process::Command::new(&self.bin)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server starts");
        self.process = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("redis-server did not listen on port {}", self.port);
    }

    /// Kills the server, as a crash or a lost network would take it away.
    async fn kill(&mut self) {
        if let Some(mut child) = self.process.take() {
            child.kill().await.expect("redis-server killed");
        }
    }
}

#[tokio::test]
async fn when_redis_goes_away_sockets_resume_from_the_store_and_nothing_is_lost() {
    let Some([pg, _]) = services("when_redis_goes_away_sockets_resume_from_the_store") else {
        return;
    };
    let Some(mut redis) = OwnRedis::start().await else {
        assert_ne!(
            std::env::var("FRONTDESK_REQUIRE_POSTGRES").as_deref(),
            Ok("1"),
            "FRONTDESK_REQUIRE_POSTGRES=1 but redis-server is not on the PATH"
        );
        eprintln!("skipped cluster.rs when_redis_goes_away: redis-server is not on the PATH");
        return;
    };
    let url = common::fresh_postgres_database(&pg).await;
    let nodes = nodes_on(&url, &redis.url(), "frontdesk-test", 2).await;
    let (one, two) = (&nodes[0], &nodes[1]);
    let token = two.agent_token("Sam", &[]).await;
    let mut sam = two.agent(&token).await;
    let (mut customer, id, session) = queued_customer(one).await;
    claim(&mut sam, &id).await;
    let joined = next_frame(&mut customer, |f| f["state"] == "agent").await;
    let last_seq = joined["seq"].as_i64().unwrap();

    // Redis dies: both nodes close their sockets with `reconnect`.
    redis.kill().await;
    assert_eq!(customer.closed(WAIT).await, Some(4004));
    assert_eq!(sam.closed(WAIT).await, Some(4004));

    // While it is down the agent comes back to node 2 and writes: stored, and shown on node 2.
    // The customer's tab reconnects to node 1 meanwhile.
    let mut sam = two.agent(&token).await;
    sam.send(json!({"type": "message", "conversation_id": id, "text": "during the outage", "client_id": "o1"}))
        .await;
    sam.next_event(|f| f["text"] == "during the outage").await;
    let mut waiting = one.client().await;
    waiting.hello(Some(&session), Some(last_seq)).await;
    // And another customer on node 1 asks for a person: node 2 cannot hear of it yet.
    let (_other, other_id, _) = queued_customer(one).await;

    // Redis is back: as each node links again it closes the sockets opened while it could not
    // hear the others (they may have missed frames)...
    redis.resume().await;
    assert_eq!(sam.closed(WAIT).await, Some(4004));
    assert_eq!(waiting.closed(WAIT).await, Some(4004));

    // ...and they resume: the customer on node 1 gets what the agent wrote on node 2 during the
    // outage, and the chat goes on live across the nodes. A frame published late (it was in
    // `missed`) is not sent again: each number arrives once, in order.
    let mut sam = two.agent(&token).await;
    // Node 2's queue has what node 1 queued during the outage.
    sam.wait_queue(|q| q.iter().any(|e| e["conversation_id"] == other_id))
        .await;
    let mut back = one.client().await;
    let welcome = back.hello(Some(&session), Some(last_seq)).await;
    let mut shown = std::collections::BTreeMap::new();
    for f in welcome["missed"].as_array().unwrap() {
        shown.insert(f["seq"].as_i64().unwrap(), f.clone());
    }
    sam.send(json!({"type": "message", "conversation_id": id, "text": "after the outage", "client_id": "o2"}))
        .await;
    loop {
        let f = back.recv().await;
        if let Some(seq) = f["seq"].as_i64().filter(|_| f["type"] != "ack") {
            let last = *shown.keys().next_back().unwrap_or(&last_seq);
            assert!(seq > last, "seq {seq} after {last}: {f}");
            shown.insert(seq, f.clone());
        }
        if f["text"] == "after the outage" {
            break;
        }
    }
    let from_agent: Vec<&str> = shown
        .values()
        .filter(|f| f["from"] == "agent")
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    assert_eq!(from_agent, ["during the outage", "after the outage"]);
    let seqs: Vec<i64> = shown.keys().copied().collect();
    assert_eq!(
        seqs,
        (last_seq + 1..=*seqs.last().unwrap()).collect::<Vec<_>>(),
        "every frame since last_seq, none skipped"
    );
}

/// The wall-clock minute that per-minute limits count in (a test started again if it turns).
fn minute() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        / 60
}

#[tokio::test]
async fn new_conversations_from_one_address_are_counted_across_the_nodes() {
    let Some([pg, redis]) = services("new_conversations_from_one_address_are_counted") else {
        return;
    };
    let nodes = fresh_cluster(&pg, &redis, 3, |s| {
        s.limits.new_conversations_per_address_per_minute = 2.0;
    })
    .await;
    // One conversation per node from one address: each node alone would allow two a minute,
    // all of them together allow two. (Counted per minute: started again if a minute turns.)
    for attempt in 0..2 {
        let started = minute();
        let address = [127, 0, 0, 70 + attempt];
        let mut outcomes = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            let mut c = Client::connect_from(node.port, address, None)
                .await
                .unwrap();
            c.hello(None, None).await;
            c.send(json!({"type": "message", "client_id": format!("m{i}"), "text": "hello"}))
                .await;
            let answer = next_frame(&mut c, |f| f["type"] == "ack" || f["type"] == "error").await;
            outcomes.push(if answer["type"] == "ack" {
                "ack".to_owned()
            } else {
                answer["code"].as_str().unwrap().to_owned()
            });
        }
        if minute() != started {
            continue;
        }
        assert_eq!(outcomes, ["ack", "ack", "too_many_conversations"]);
        return;
    }
    panic!("a minute turned during both attempts");
}

/// The pickup alerts for `id` each console received while `for_how_long` passed, as the seconds
/// waited they report, in the order received.
async fn alerts_for(
    consoles: &mut [AgentClient],
    id: &str,
    for_how_long: Duration,
) -> Vec<Vec<i64>> {
    let until = tokio::time::Instant::now() + for_how_long;
    let mut seen = vec![Vec::new(); consoles.len()];
    for (console, seen) in consoles.iter_mut().zip(&mut seen) {
        while let Some(f) = console
            .recv_any(until.saturating_duration_since(tokio::time::Instant::now()))
            .await
        {
            if f["type"] == "alert" && f["conversation_id"] == id {
                seen.push(f["waiting_seconds"].as_i64().unwrap());
            }
        }
    }
    seen
}

/// How many times the store holds the message "the customer is gone, the bot is back" for `id`.
async fn abandon_notices(node: &TestApp, id: &str) -> usize {
    let frames = node.store.events_after(id, 0).await.unwrap();
    frames
        .iter()
        .filter(|f| f.contains("Nobody could take this conversation while you were away"))
        .count()
}

/// Waits (up to 40 s) until the store holds an abandon notice for `id`; then, `settle` later
/// (time enough for any other node to fire too), how many.
async fn abandoned_once(node: &TestApp, id: &str, settle: Duration) -> usize {
    for _ in 0..400 {
        if abandon_notices(node, id).await > 0 {
            tokio::time::sleep(settle).await;
            return abandon_notices(node, id).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{id} was never abandoned");
}

/// A few ticks of the timers (another node firing too would have done so by then).
const TICKS: Duration = Duration::from_millis(1_500);

/// Every console saw each pickup alert once: rising waiting times, no repeat.
fn once_each(alerts: &[Vec<i64>], at_least: usize) {
    for seen in alerts {
        assert!(seen.len() >= at_least, "too few alerts: {alerts:?}");
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "an alert fired more than once (on more than one node): {alerts:?}"
        );
    }
}

#[tokio::test]
async fn timers_fire_once_across_three_nodes_and_still_fire_after_the_node_running_them_dies() {
    let Some([pg, redis]) = services("timers_fire_once_across_three_nodes") else {
        return;
    };
    let nodes = fresh_cluster(&pg, &redis, 3, |s| {
        s.handoff.pickup_timeout_seconds = 1.0;
        s.handoff.abandon_after_seconds = 1.0;
        s.cluster.timer_lease_seconds = 1.0;
    })
    .await;
    let mut tokens = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        tokens.push(node.agent_token(&format!("Agent {i}"), &[]).await);
    }
    let mut consoles = Vec::new();
    for (node, token) in nodes.iter().zip(&tokens) {
        consoles.push(node.agent(token).await);
    }

    // A customer on node 1 waits: every console on every node is alerted once per pickup
    // timeout, whichever node runs the timers.
    let (customer, first, _) = queued_customer(&nodes[0]).await;
    once_each(
        &alerts_for(&mut consoles, &first, Duration::from_millis(3_200)).await,
        2,
    );
    // They leave: the conversation is abandoned once (one notice stored, not one per node).
    customer.close().await;
    assert_eq!(abandoned_once(&nodes[0], &first, TICKS).await, 1);

    // The node that runs the timers dies without giving its lease up.
    let (holder, _) = nodes[0]
        .store
        .lease_holder("desk-timers")
        .await
        .unwrap()
        .expect("a node holds the timer lease");
    let dead = nodes
        .iter()
        .position(|n| n.node.as_deref() == Some(holder.as_str()))
        .expect("the holder is one of the nodes");
    drop(consoles);
    let mut nodes = nodes;
    nodes.remove(dead).crash().await;
    let mut consoles = Vec::new();
    for (node, token) in nodes.iter().zip(&tokens) {
        consoles.push(node.agent(token).await);
    }

    // Another node takes the lease once it expired, and the timers go on, still once each.
    let (customer, second, _) = queued_customer(&nodes[0]).await;
    once_each(
        &alerts_for(&mut consoles, &second, Duration::from_millis(3_200)).await,
        2,
    );
    customer.close().await;
    assert_eq!(abandoned_once(&nodes[1], &second, TICKS).await, 1);
    let (now_held_by, _) = nodes[0]
        .store
        .lease_holder("desk-timers")
        .await
        .unwrap()
        .unwrap();
    assert_ne!(now_held_by, holder, "a surviving node took the lease");
}

#[tokio::test]
async fn a_timer_fires_once_even_while_the_nodes_cannot_hear_each_other() {
    let Some([pg, _]) = services("a_timer_fires_once_even_while_the_nodes_cannot_hear_each_other")
    else {
        return;
    };
    let Some(mut redis) = OwnRedis::start().await else {
        eprintln!("skipped cluster.rs a_timer_fires_once: redis-server is not on the PATH");
        return;
    };
    let url = common::fresh_postgres_database(&pg).await;
    let nodes = nodes_with(&url, &redis.url(), "frontdesk-test", 3, |s| {
        s.handoff.abandon_after_seconds = 1.0;
        s.cluster.timer_lease_seconds = 1.0;
    })
    .await;
    // A customer on node 1 waits for a person; every node's copy of the queue has them.
    let (customer, id, _) = queued_customer(&nodes[0]).await;
    let token = nodes[2].agent_token("Sam", &[]).await;
    nodes[2]
        .agent(&token)
        .await
        .wait_queue(|q| q.iter().any(|e| e["conversation_id"] == id))
        .await;
    // Redis goes: the nodes cannot tell each other anything, the customer's socket closes. Each
    // node's copy finds the customer gone; only the holder of the store's lease abandons the
    // conversation: one notice stored, not one per node.
    // (A node counts the customer gone once the others' last news is too old to hold: each node
    // may get there at its own time, within `STAFF_HOLDS_MS`.)
    redis.kill().await;
    drop(customer);
    let settle = Duration::from_millis(frontdesk::queue::STAFF_HOLDS_MS as u64 + 2_000);
    assert_eq!(abandoned_once(&nodes[1], &id, settle).await, 1);
}

/// The customer's socket as the widget keeps it across reconnects: every frame it kept (a `seq`
/// it already has is dropped, the widget's rule), by `seq`.
struct Widget {
    port: u16,
    socket: Client,
    session: String,
    kept: std::collections::BTreeMap<i64, Value>,
    /// The customer's messages sent, by client id, and sent again after each reconnect until
    /// acknowledged (the widget's rule: one sent just as the socket closed was never read).
    sent: std::collections::BTreeMap<String, String>,
    /// The client ids of the customer's messages the server acknowledged, by an `ack` or by the
    /// message itself coming back with its `client_id` (in a resume's `missed`).
    acked: std::collections::BTreeSet<String>,
    /// Frames that arrived again with a `seq` already kept.
    repeats: usize,
}

impl Widget {
    async fn send_message(&mut self, client_id: String, text: String) {
        self.socket
            .send(json!({"type": "message", "client_id": client_id, "text": text}))
            .await;
        self.sent.insert(client_id, text);
    }

    fn keep(&mut self, frame: Value) {
        let own = frame["type"] == "ack" || frame["from"] == "customer";
        if let (true, Some(client_id)) = (own, frame["client_id"].as_str()) {
            self.acked.insert(client_id.to_owned());
        }
        if frame["type"] == "ack" {
            return;
        }
        if let Some(seq) = frame["seq"].as_i64() {
            if self.kept.insert(seq, frame).is_some() {
                self.repeats += 1;
            }
        }
    }

    fn last_seq(&self) -> Option<i64> {
        self.kept.keys().next_back().copied()
    }

    /// Reads until `done` holds of what was kept, resuming (same node, `last_seq`) whenever the
    /// server closes the socket with `reconnect`.
    async fn read_until(&mut self, done: impl Fn(&Self) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !done(self) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            assert!(
                !left.is_zero(),
                "the widget never got everything: {:?}",
                self.kept
            );
            match self.socket.recv_or_close(left).await {
                Ok(frame) => self.keep(frame),
                Err(code) => {
                    assert_eq!(code, Some(4004), "closed for another reason than reconnect");
                    self.socket = Client::connect(self.port).await;
                    let (session, last) = (self.session.clone(), self.last_seq());
                    let welcome = self.socket.hello(Some(&session), last).await;
                    for f in welcome["missed"].as_array().unwrap().clone() {
                        self.keep(f);
                    }
                    let unacked: Vec<(String, String)> = (self.sent.iter())
                        .filter(|(id, _)| !self.acked.contains(*id))
                        .map(|(id, text)| (id.clone(), text.clone()))
                        .collect();
                    for (client_id, text) in unacked {
                        self.send_message(client_id, text).await;
                    }
                }
            }
        }
    }

    /// The texts of the kept messages from `from`, in `seq` order.
    fn texts(&self, from: &str) -> Vec<String> {
        self.kept
            .values()
            .filter(|f| f["type"] == "message" && f["from"] == from)
            .map(|f| f["text"].as_str().unwrap().to_owned())
            .collect()
    }
}

#[tokio::test]
async fn node_2_killed_mid_chat_its_agent_carries_on_from_node_3_and_nothing_acknowledged_is_lost()
{
    let Some([pg, redis]) = services("node_2_killed_mid_chat") else {
        return;
    };
    use common::node::Node;
    let url = common::fresh_postgres_database(&pg).await;
    let channel = format!("frontdesk-test:{}", uuid::Uuid::new_v4().simple());
    let env = vec![
        ("FRONTDESK_STORE__URL", url.clone()),
        ("FRONTDESK_CLUSTER__REDIS_URL", redis.clone()),
        ("FRONTDESK_CLUSTER__CHANNEL", channel),
        ("FRONTDESK_HANDOFF__AUTO_ASSIGN", "false".into()),
        ("FRONTDESK_LIMITS__MESSAGE_BURST", "50".into()),
    ];
    let (one, mut two, three) =
        tokio::join!(Node::start(&env), Node::start(&env), Node::start(&env));
    let store = frontdesk::store::Store::connect(&url).await.unwrap();
    let token = two.agent_token(&store, "Sam").await;

    // A customer on node 1, their agent on node 2.
    let mut customer = Client::connect(one.port).await;
    let welcome = customer.hello(None, None).await;
    let id = welcome["conversation_id"].as_str().unwrap().to_owned();
    let session = welcome["session"].as_str().unwrap().to_owned();
    customer.send(json!({"type": "request_human"})).await;
    let mut sam = AgentClient::connect(two.port, &token).await;
    sam.next("ready").await;
    claim(&mut sam, &id).await;
    let mut widget = Widget {
        port: one.port,
        socket: customer,
        session,
        kept: Default::default(),
        sent: Default::default(),
        acked: Default::default(),
        repeats: 0,
    };
    widget
        .read_until(|w| w.kept.values().any(|f| f["state"] == "agent"))
        .await;

    // Both write; each side's messages are acknowledged (the customer's by `ack`, the agent's by
    // their own message coming back as an event with its `seq`).
    let mut agent_has = std::collections::BTreeMap::new();
    for i in 0..10 {
        widget
            .send_message(format!("c{i}"), format!("customer {i}"))
            .await;
        sam.send(json!({"type": "message", "conversation_id": id, "client_id": format!("a{i}"), "text": format!("agent {i}")}))
            .await;
    }
    while !(0..10).all(|i| {
        let texts: Vec<&Value> = agent_has.values().collect();
        texts.iter().any(|f| f["text"] == format!("agent {i}"))
            && texts.iter().any(|f| f["text"] == format!("customer {i}"))
    }) {
        let f = sam.next_event(|_| true).await;
        if let Some(seq) = f["seq"].as_i64() {
            agent_has.insert(seq, f);
        }
    }
    let acked_agent: Vec<String> = (0..10).map(|i| format!("agent {i}")).collect();

    // The agent writes five more and node 2 is killed at once, with them in flight: some may be
    // stored (and never published), some never read.
    for i in 10..15 {
        sam.send(json!({"type": "message", "conversation_id": id, "client_id": format!("a{i}"), "text": format!("agent {i}")}))
            .await;
    }
    two.kill().await;
    drop(sam);
    // Meanwhile the customer goes on writing on node 1.
    for i in 10..15 {
        widget
            .send_message(format!("c{i}"), format!("customer {i}"))
            .await;
    }

    // The agent's console reconnects to node 3 and reloads the chat; what it sent and never saw
    // acknowledged it sends again, with the same ids, then carries on.
    let token = three.login("sam@example.com").await;
    let mut sam = AgentClient::connect(three.port, &token).await;
    sam.next("ready").await;
    for f in three.transcript(&token, &id).await {
        agent_has.insert(f["seq"].as_i64().unwrap(), f);
    }
    for i in 10..20 {
        let text = format!("agent {i}");
        if agent_has.values().all(|f| f["text"] != text.as_str()) {
            sam.send(json!({"type": "message", "conversation_id": id, "client_id": format!("a{i}"), "text": text}))
                .await;
        }
    }
    for i in 15..20 {
        widget
            .send_message(format!("c{i}"), format!("customer {i}"))
            .await;
    }

    // Both sides end with every message of the other, once, in the order written.
    let agent_texts: Vec<String> = (0..20).map(|i| format!("agent {i}")).collect();
    let customer_texts: Vec<String> = (0..20).map(|i| format!("customer {i}")).collect();
    widget
        .read_until(|w| w.texts("agent").len() >= agent_texts.len() && w.acked.len() >= 20)
        .await;
    assert_eq!(widget.texts("agent"), agent_texts);
    assert_eq!(widget.repeats, 0, "a frame reached the customer twice");
    assert!(acked_agent
        .iter()
        .all(|t| widget.texts("agent").contains(t)));
    while agent_has
        .values()
        .filter(|f| f["from"] == "customer")
        .count()
        < customer_texts.len()
    {
        let f = sam.next_event(|_| true).await;
        if let Some(seq) = f["seq"].as_i64() {
            agent_has.insert(seq, f);
        }
    }
    let seen_by_agent: Vec<&str> = agent_has
        .values()
        .filter(|f| f["from"] == "customer")
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    assert_eq!(seen_by_agent, customer_texts);
    for client_id in &widget.acked {
        let text = format!("customer {}", &client_id[1..]);
        assert!(
            seen_by_agent.contains(&text.as_str()),
            "{text} acknowledged, never seen"
        );
    }

    // The store holds each message once, numbered without a gap.
    let stored: Vec<Value> = store
        .events_after(&id, 0)
        .await
        .unwrap()
        .iter()
        .map(|f| serde_json::from_str(f).unwrap())
        .collect();
    let seqs: Vec<i64> = stored.iter().map(|f| f["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=stored.len() as i64).collect::<Vec<_>>());
    for text in agent_texts.iter().chain(&customer_texts) {
        let copies = stored.iter().filter(|f| f["text"] == text.as_str()).count();
        assert_eq!(copies, 1, "{text} stored {copies} times");
    }
    drop((one, three));
}

#[tokio::test]
async fn requests_for_a_person_from_one_address_are_counted_across_the_nodes() {
    let Some([pg, redis]) = services("requests_for_a_person_from_one_address_are_counted") else {
        return;
    };
    let nodes = fresh_cluster(&pg, &redis, 3, |s| {
        s.limits.handoff_requests_per_address_per_minute = 2.0;
    })
    .await;
    // One request per node from one address: each node alone would allow two a minute, all of
    // them together allow two. (Counted per minute: started again if a minute turns.)
    for attempt in 0..2 {
        let started = minute();
        let address = [127, 0, 0, 80 + attempt];
        let mut outcomes = Vec::new();
        for node in &nodes {
            let mut c = Client::connect_from(node.port, address, None)
                .await
                .unwrap();
            c.hello(None, None).await;
            c.send(json!({"type": "request_human"})).await;
            let answer =
                next_frame(&mut c, |f| f["state"] == "queued" || f["type"] == "error").await;
            outcomes.push(if answer["type"] == "error" {
                answer["code"].as_str().unwrap().to_owned()
            } else {
                "queued".to_owned()
            });
        }
        if minute() != started {
            continue;
        }
        assert_eq!(outcomes, ["queued", "queued", "rate_limited"]);
        return;
    }
    panic!("a minute turned during both attempts");
}

#[tokio::test]
async fn a_node_linked_to_others_refuses_a_sqlite_store_and_says_what_to_do() {
    let data = tempfile::tempdir().unwrap();
    let mut settings = common::test_settings(&common::root().join("knowledge_base"), data.path());
    settings.cluster.redis_url = Some("redis://127.0.0.1:1".into());
    let (encoder, cache) = common::nlu();
    let error = frontdesk::startup::App::build_with(settings, encoder, cache)
        .await
        .err()
        .expect("a node linked to others on SQLite does not start");
    let message = format!("{error:#}");
    assert!(
        message.contains("store.url is not a Postgres database"),
        "{message}"
    );
    assert!(message.contains("remove cluster.redis_url"), "{message}");
}

/// Wrong-password logins for `emails` (one after the other), each on the next node in turn;
/// the HTTP statuses.
async fn failed_logins(nodes: &[TestApp], emails: &[String]) -> Vec<u16> {
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for (i, email) in emails.iter().enumerate() {
        let node = &nodes[i % nodes.len()];
        let response = http
            .post(node.http("/api/agent/login"))
            .json(&json!({"email": email, "password": "not-the-password"}))
            .send()
            .await
            .expect("login answered");
        if response.status() == 429 {
            assert!(
                response.headers().contains_key("retry-after"),
                "a throttled login says when to come back"
            );
        }
        statuses.push(response.status().as_u16());
    }
    statuses
}

#[tokio::test]
async fn failed_logins_for_one_account_are_throttled_across_the_nodes() {
    let Some([pg, redis]) = services("failed_logins_for_one_account_are_throttled") else {
        return;
    };
    let nodes = fresh_cluster(&pg, &redis, 3, |s| {
        s.agents.login_attempts_per_account = 3;
        s.agents.login_account_backoff_seconds = 600.0;
        s.agents.login_attempts_per_address = 1000;
    })
    .await;
    // Three guesses, one per node: each node alone would allow three more; together they allow
    // three, then the account waits, whichever node is asked.
    let emails = vec!["sam@example.com".to_owned(); 5];
    assert_eq!(
        failed_logins(&nodes, &emails).await,
        [401, 401, 401, 429, 429]
    );
    // Another account is not held up by Sam's.
    assert_eq!(
        failed_logins(&nodes[1..], &["kim@example.com".to_owned()]).await,
        [401]
    );
}

#[tokio::test]
async fn failed_logins_from_one_address_are_throttled_across_the_nodes() {
    let Some([pg, redis]) = services("failed_logins_from_one_address_are_throttled") else {
        return;
    };
    let nodes = fresh_cluster(&pg, &redis, 3, |s| {
        s.agents.login_attempts_per_address = 4;
        s.agents.login_address_backoff_seconds = 600.0;
    })
    .await;
    // A different account each time, the nodes in turn: the address gets four tries in all.
    let emails: Vec<String> = (0..6).map(|i| format!("guess{i}@example.com")).collect();
    assert_eq!(
        failed_logins(&nodes, &emails).await,
        [401, 401, 401, 401, 429, 429]
    );
}

#[tokio::test]
async fn conversations_queued_from_one_address_are_counted_across_the_nodes() {
    let Some([pg, redis]) = services("conversations_queued_from_one_address_are_counted") else {
        return;
    };
    let nodes = fresh_cluster(&pg, &redis, 3, |s| {
        s.limits.queued_per_address = 2;
        s.limits.handoff_requests_per_address_per_minute = 1000.0;
    })
    .await;
    let token = nodes[2].agent_token("Sam", &[]).await;
    let mut sam = nodes[2].agent(&token).await;
    let from = [127, 0, 0, 90];
    let mut waiting = Vec::new();
    for node in &nodes[..2] {
        let mut c = Client::connect_from(node.port, from, None).await.unwrap();
        c.hello(None, None).await;
        c.send(json!({"type": "request_human"})).await;
        next_frame(&mut c, |f| f["state"] == "queued").await;
        waiting.push(c);
    }
    // Node 3 knows of both (every node's copy of the queue is complete): a third from the same
    // address is refused there, although node 3 itself queued none of them.
    sam.wait_queue(|q| q.len() == 2).await;
    let mut third = Client::connect_from(nodes[2].port, from, None)
        .await
        .unwrap();
    third.hello(None, None).await;
    third.send(json!({"type": "request_human"})).await;
    let answer = next_frame(&mut third, |f| {
        f["state"] == "queued" || f["type"] == "error"
    })
    .await;
    assert_eq!(answer["code"], "queue_full", "{answer}");
    // Someone else gets in on the same node.
    let mut neighbour = Client::connect_from(nodes[2].port, [127, 0, 0, 91], None)
        .await
        .unwrap();
    neighbour.hello(None, None).await;
    neighbour.send(json!({"type": "request_human"})).await;
    next_frame(&mut neighbour, |f| f["state"] == "queued").await;
    drop(waiting);
}

#[tokio::test]
async fn customer_sockets_from_one_address_are_counted_across_the_nodes() {
    let Some([pg, redis]) = services("customer_sockets_from_one_address_are_counted") else {
        return;
    };
    let nodes = fresh_cluster(&pg, &redis, 3, |s| {
        s.limits.sockets_per_address = 2;
    })
    .await;
    let from = [127, 0, 0, 100];
    let mut first = Client::connect_from(nodes[0].port, from, None)
        .await
        .expect("node 1 takes the first socket");
    first.hello(None, None).await;
    let mut second = Client::connect_from(nodes[1].port, from, None)
        .await
        .expect("node 2 takes the second socket");
    second.hello(None, None).await;
    // Node 3 has none from the address, but the nodes together have two.
    let refused = Client::connect_from(nodes[2].port, from, None).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            assert!(response.headers().contains_key("retry-after"));
        }
        Err(e) => panic!("expected a refusal with Retry-After, got {e}"),
        Ok(_) => panic!("a third socket from the address was let in on node 3"),
    }
    // Another address is not held up.
    Client::connect_from(nodes[2].port, [127, 0, 0, 101], None)
        .await
        .expect("another address gets in");
    // Once the socket on node 1 closes, node 3 lets one in.
    drop(first);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok(mut c) = Client::connect_from(nodes[2].port, from, None).await {
            c.hello(None, None).await;
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node 3 still refuses after the socket on node 1 closed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn limits_are_shared_again_once_redis_is_back() {
    let Some([pg, _]) = services("limits_are_shared_again_once_redis_is_back") else {
        return;
    };
    let Some(mut redis) = OwnRedis::start().await else {
        assert_ne!(
            std::env::var("FRONTDESK_REQUIRE_POSTGRES").as_deref(),
            Ok("1"),
            "FRONTDESK_REQUIRE_POSTGRES=1 but redis-server is not on the PATH"
        );
        eprintln!("skipped cluster.rs limits_are_shared_again: redis-server is not on the PATH");
        return;
    };
    let url = common::fresh_postgres_database(&pg).await;
    let nodes = nodes_with(&url, &redis.url(), "frontdesk-test", 2, |s| {
        s.agents.login_attempts_per_account = 2;
        s.agents.login_account_backoff_seconds = 600.0;
        s.agents.login_attempts_per_address = 1000;
    })
    .await;
    // While Redis is down each node counts alone: two tries on each.
    redis.kill().await;
    let during = vec!["away@example.com".to_owned(); 4];
    assert_eq!(failed_logins(&nodes, &during).await, [401, 401, 401, 401]);
    // Back: a node's first count may still go to the dead connection (and be counted alone);
    // after that the counts are shared again.
    redis.resume().await;
    let warm: Vec<String> = (0..4).map(|i| format!("warm{i}@example.com")).collect();
    failed_logins(&nodes, &warm).await;
    let emails = vec!["back@example.com".to_owned(); 3];
    assert_eq!(failed_logins(&nodes, &emails).await, [401, 401, 429]);
}

/// The choice buttons of a message: (label, passage).
fn choice_options(reply: &Value) -> Vec<(String, String)> {
    reply["quick_replies"]
        .as_array()
        .map(|q| {
            q.iter()
                .filter_map(|r| {
                    let passage = r["choice"]["passage"].as_str()?;
                    Some((r["label"].as_str()?.to_owned(), passage.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn what_customers_picked_on_node_1_the_bot_on_node_2_answers_with() {
    let Some([pg, redis]) = services("what_customers_picked_on_node_1") else {
        return;
    };
    // Choices whenever two articles fit at all, so the question gets them on every node.
    let nodes = fresh_cluster(&pg, &redis, 2, |s| {
        s.bot.choices_threshold = 0.0;
        s.bot.option_threshold = 0.0;
    })
    .await;
    let question = "cleaning the machine";
    let mut title = String::new();
    for i in 0..2 {
        let mut customer = nodes[0].client().await;
        customer.hello(None, None).await;
        let (_, offer) = customer.ask("q", question).await;
        let options = choice_options(&offer);
        assert!(options.len() >= 2, "{offer}");
        let (label, passage) = options[1].clone();
        customer
            .send(
                json!({"type": "message", "client_id": format!("p{i}"), "text": label,
                         "choice": {"seq": offer["seq"], "passage": passage}}),
            )
            .await;
        let answer = next_frame(&mut customer, |f| f["from"] == "bot").await;
        title = answer["sources"][0]["title"].as_str().unwrap().to_owned();
    }
    // Node 2 never saw the presses: it learned them from node 1 (allow the signal a moment).
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let mut customer = nodes[1].client().await;
        customer.hello(None, None).await;
        let (_, reply) = customer.ask("q", question).await;
        if choice_options(&reply).is_empty() && reply["sources"][0]["title"] == title.as_str() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "node 2 did not learn node 1's picks: {reply}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An agent signs out in one tab on node 1 (or an admin ends their session there) while their
/// console is open on node 2: the revocation is told to node 1's sockets at once, and node 2's
/// socket closes (4003 `logged_out`) at its next check of the store, not when the token expires.
#[tokio::test]
async fn a_logout_on_one_node_closes_the_agents_socket_on_another() {
    let Some([pg, redis]) = services("a_logout_on_one_node_closes_the_agents_socket_on_another")
    else {
        return;
    };
    let nodes = fresh_cluster(&pg, &redis, 2, |s| s.agents.session_check_seconds = 0.5).await;
    let token = nodes[0].agent_token("Sam", &[]).await;
    let mut on_node_2 = nodes[1].agent(&token).await;
    let response = reqwest::Client::new()
        .post(nodes[0].http("/api/agent/logout"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("logout answered");
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(on_node_2.closed(WAIT).await, Some(4003));
}
