//! The queue stays small and nobody's chat is stranded: floods from one address are capped,
//! agents' queue frames carry changes, chats of an agent who left or stopped replying go back to
//! the queue, abandoned entries expire, notes go only on chats the agent holds, and a bot turn
//! that finishes late never hands over a chat that went to a person under it.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use common::{nlu, spawn_app_with, spawn_app_with_seam, Client, TestApp};
use frontdesk::escalation::{Scripted, Understand};
use frontdesk::nlu::{Analysis, NluError, Understanding};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

fn manual(s: &mut frontdesk::Settings) {
    s.handoff.auto_assign = false;
}

/// A customer asks for a person; returns the welcome.
async fn queued(customer: &mut Client) -> Value {
    let welcome = customer.hello(None, None).await;
    customer.send(json!({"type": "request_human"})).await;
    let status = customer.recv().await;
    assert_eq!(status["state"], "queued", "{status}");
    welcome
}

async fn claimed(app: &TestApp, token: &str) -> (common::AgentClient, Client, String) {
    let mut agent = app.agent(token).await;
    let mut customer = app.client().await;
    let id = queued(&mut customer).await["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    agent
        .send(json!({"type": "claim", "conversation_id": id}))
        .await;
    agent.next("assigned").await;
    // The customer is told a person joined (after the system message about the queue).
    while customer.recv().await["state"] != "agent" {}
    (agent, customer, id)
}

#[tokio::test]
async fn a_flood_from_one_address_is_capped_and_agents_queue_frames_stay_small() {
    let app = spawn_app_with(|s| {
        manual(s);
        s.limits.queued_per_address = 3;
        s.limits.new_conversations_per_address_per_minute = 10.0;
        // The queue's own caps are what is tested here, not the hand-off requests' budget.
        s.limits.handoff_requests_per_address_per_minute = 1000.0;
    })
    .await;
    let token = app.agent_token("Sam", &[]).await;
    let mut sam = app.agent(&token).await;
    let huge = "N".repeat(7_000);
    let (mut codes, mut queued) = (Vec::new(), 0);
    let mut flood = Vec::new();
    let mut full = Vec::new();
    let started = std::time::Instant::now();
    for i in 0..20 {
        let mut c = Client::connect_from(app.port, [127, 0, 0, 9], None)
            .await
            .expect("sockets are not what is capped here");
        c.send(json!({"type": "hello", "visitor": {"name": huge, "page": huge}}))
            .await;
        assert_eq!(c.recv().await["type"], "welcome");
        c.send(json!({"type": "message", "client_id": format!("m{i}"), "text": "PERSON NOW"}))
            .await;
        c.send(json!({"type": "request_human"})).await;
        for frame in c.settle().await {
            match frame["type"].as_str() {
                Some("status") if frame["state"] == "queued" => queued += 1,
                Some("error") => {
                    codes.push(frame["code"].as_str().unwrap().to_owned());
                    if frame["code"] == "queue_full" {
                        full.push(frame["message"].as_str().unwrap_or("").to_owned());
                    }
                }
                _ => {}
            }
        }
        flood.push(c);
    }
    assert_eq!(queued, 3, "{codes:?}");
    let count = |code: &str| codes.iter().filter(|c| *c == code).count();
    // Ten conversations a minute: the first ten became conversations, plus one for every six
    // seconds the flood took on a slow machine (the budget refills); the rest never did.
    let refilled = (started.elapsed().as_secs_f64() / 6.0).floor() as usize;
    let refused = count("too_many_conversations") / 2;
    let started_conversations = 20 - refused;
    assert!(
        (10..=10 + refilled).contains(&started_conversations),
        "{started_conversations} conversations started ({refilled} refills): {codes:?}"
    );
    // Every conversation past the third was refused a place in the queue.
    assert_eq!(count("queue_full"), started_conversations - 3, "{codes:?}");
    // They are told it is their network's conversations that wait, not that the team is busy.
    assert!(
        full.iter().all(|m| m.contains("from your network")),
        "{full:?}"
    );

    // Someone else still gets through.
    let mut neighbour = Client::connect_from(app.port, [127, 0, 0, 10], None)
        .await
        .unwrap();
    queued_ok(&mut neighbour).await;

    // The agent's queue: four entries, names cut short, and no frame anywhere near the flood.
    let queue = sam.wait_queue(|q| q.len() == 4).await;
    for entry in &queue {
        if let Some(name) = entry["customer"].as_str() {
            assert!(name.chars().count() <= 100, "{name}");
        }
    }
    sam.settle().await;
    let largest = sam.largest_queue_frame;
    assert!(largest < 2_000, "a queue frame of {largest} bytes");
    let (_, context) = app
        .get_as(
            &format!(
                "/api/conversations/{}/context",
                queue[0]["conversation_id"].as_str().unwrap()
            ),
            Some(&token),
        )
        .await;
    assert!(
        context["customer"]["page"]
            .as_str()
            .unwrap()
            .chars()
            .count()
            <= 500
    );
}

async fn queued_ok(customer: &mut Client) {
    queued(customer).await;
}

#[tokio::test]
async fn a_disconnected_agents_chats_go_back_to_the_queue_after_the_grace_period() {
    let app = spawn_app_with(|s| {
        manual(s);
        s.handoff.disconnect_grace_seconds = 0.5;
    })
    .await;
    let (sam_token, kim_token) = (
        app.agent_token("Sam", &[]).await,
        app.agent_token("Kim", &[]).await,
    );
    let mut kim = app.agent(&kim_token).await;
    let (sam, mut customer, id) = claimed(&app, &sam_token).await;
    kim.wait_queue(|q| q.is_empty()).await;

    drop(sam);
    let queue = kim.wait_queue(|q| !q.is_empty()).await;
    assert_eq!(queue[0]["conversation_id"], id.as_str());
    let status = customer.recv().await;
    assert_eq!(status["state"], "queued", "{status}");

    // Kim takes it, drops off briefly and comes back within the grace: it stays Kim's.
    kim.send(json!({"type": "claim", "conversation_id": id}))
        .await;
    kim.next("assigned").await;
    drop(kim);
    let mut kim = app.agent(&kim_token).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    kim.send(
        json!({"type": "message", "conversation_id": id, "text": "Still here.", "client_id": "k1"}),
    )
    .await;
    let echo = kim.next_event(|f| f["client_id"] == "k1").await;
    assert_eq!(echo["author"], "Kim");
}

#[tokio::test]
async fn the_reply_timer_runs_for_the_whole_chat_not_just_the_first_reply() {
    let app = spawn_app_with(|s| {
        manual(s);
        s.handoff.reply_timeout_seconds = 0.8;
    })
    .await;
    let token = app.agent_token("Sam", &[]).await;
    let (mut sam, mut customer, id) = claimed(&app, &token).await;
    sam.send(json!({"type": "message", "conversation_id": id, "text": "Hi, Sam here."}))
        .await;
    sam.next_event(|f| f["from"] == "agent").await;
    // The agent had the last word: no timer runs, however long the customer takes.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let meanwhile = sam.settle().await;
    assert!(
        meanwhile.iter().all(|f| f["type"] != "unassigned"),
        "{meanwhile:?}"
    );
    assert_eq!(customer.recv().await["text"], "Hi, Sam here.");
    customer.settle().await;
    customer
        .send(json!({"type": "message", "client_id": "m1", "text": "Hello? Are you there?"}))
        .await;
    assert_eq!(sam.next("unassigned").await["reason"], "no_reply");
    let queue = sam.wait_queue(|q| !q.is_empty()).await;
    assert_eq!(queue[0]["conversation_id"], id.as_str());
}

#[tokio::test]
async fn a_queued_customer_who_leaves_is_taken_out_of_the_queue_and_told_on_return() {
    let app = spawn_app_with(|s| {
        manual(s);
        s.handoff.abandon_after_seconds = 0.5;
    })
    .await;
    let token = app.agent_token("Sam", &[]).await;
    let mut sam = app.agent(&token).await;
    let mut customer = app.client().await;
    let welcome = queued(&mut customer).await;
    sam.wait_queue(|q| q.len() == 1).await;
    customer.close().await;
    sam.wait_queue(|q| q.is_empty()).await;

    let mut back = app.client().await;
    let resumed = back.hello(welcome["session"].as_str(), Some(0)).await;
    assert_eq!(resumed["state"], "bot", "{resumed}");
    let said = resumed["missed"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(
        said["text"]
            .as_str()
            .unwrap()
            .contains("while you were away"),
        "{said}"
    );
}

#[tokio::test]
async fn a_note_goes_only_on_a_chat_the_agent_holds() {
    let app = spawn_app_with(manual).await;
    let (sam_token, kim_token) = (
        app.agent_token("Sam", &[]).await,
        app.agent_token("Kim", &[]).await,
    );
    let (mut sam, _customer, id) = claimed(&app, &sam_token).await;
    let mut kim = app.agent(&kim_token).await;
    kim.send(json!({"type": "note", "conversation_id": id, "text": "not mine to note"}))
        .await;
    let refused = kim.next("error").await;
    assert_eq!(refused["code"], "not_owner", "{refused}");
    sam.send(json!({"type": "note", "conversation_id": id, "text": "mine"}))
        .await;
    assert_eq!(sam.next("note").await["text"], "mine");
    let (_, body) = app
        .get_as(&format!("/api/conversations/{id}"), Some(&sam_token))
        .await;
    let notes: Vec<&str> = body["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    assert_eq!(notes, ["mine"]);
}

#[tokio::test]
async fn one_address_with_many_sockets_files_only_so_many_tickets_and_hand_offs_a_minute() {
    let app = spawn_app_with(|s| {
        manual(s);
        s.limits.tickets_per_address_per_minute = 3.0;
        s.limits.handoff_requests_per_address_per_minute = 2.0;
        s.limits.queued_per_address = 10;
    })
    .await;
    let token = app.agent_token("Sam", &[]).await;
    let (mut acks, mut refused, mut queued, mut sockets) = (0, Vec::new(), 0, Vec::new());
    for i in 0..6 {
        // A fresh socket and conversation each time: the budget is the address's, not the socket's.
        let mut c = Client::connect_from(app.port, [127, 0, 0, 7], None)
            .await
            .unwrap();
        c.hello(None, None).await;
        c.send(json!({"type": "leave_email", "email": format!("spam{i}@example.com")}))
            .await;
        c.send(json!({"type": "request_human"})).await;
        for frame in c.settle().await {
            match frame["type"].as_str() {
                Some("email_ack") => acks += 1,
                Some("status") if frame["state"] == "queued" => queued += 1,
                Some("error") => refused.push(frame),
                _ => {}
            }
        }
        sockets.push(c);
    }
    assert_eq!(acks, 3, "{refused:?}");
    assert_eq!(queued, 2, "{refused:?}");
    assert_eq!(refused.len(), 3 + 4, "{refused:?}");
    for error in &refused {
        assert_eq!(error["code"], "rate_limited", "{error}");
        assert!(
            error["message"].as_str().unwrap().contains("try again in"),
            "{error}"
        );
    }
    let (_, body) = app.get_as("/api/tickets?status=open", Some(&token)).await;
    assert_eq!(body["tickets"].as_array().unwrap().len(), 3, "{body}");

    // Another address is not affected, and the refused customers' conversations go on.
    let mut other = Client::connect_from(app.port, [127, 0, 0, 8], None)
        .await
        .unwrap();
    other.hello(None, None).await;
    other
        .send(json!({"type": "leave_email", "email": "ana@example.com"}))
        .await;
    assert_eq!(other.recv().await["type"], "email_ack");
    let last = sockets.last_mut().unwrap();
    let (ack, _) = last.ask("m1", "how do I reset my password?").await;
    assert_eq!(ack["type"], "ack", "{ack}");
}

/// Understanding that waits for a permit on messages containing "furious" (and finds them upset
/// enough to hand over): a bot turn held in flight for as long as the test likes.
struct SlowFury {
    gate: Arc<Semaphore>,
    inner: Scripted<fn(&str) -> Understanding>,
}

fn fury(text: &str) -> Understanding {
    let mut u = Understanding::default();
    if text.contains("furious") {
        u.upset = 0.99;
        u.upset_cues = vec!["angry word".into()];
    }
    u
}

impl Understand for SlowFury {
    fn understand<'a>(
        &'a self,
        text: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Analysis, NluError>> + Send + 'a>> {
        Box::pin(async move {
            if text.contains("furious") {
                self.gate.acquire().await.expect("open gate").forget();
            }
            self.inner.understand(text).await
        })
    }
}

#[tokio::test]
async fn a_turn_that_finishes_after_a_person_resolved_the_chat_does_not_requeue_it() {
    late_turn(false).await;
}

/// As above, when the chat went back to the bot meanwhile (the customer wrote from a second tab
/// after the resolution): the state is `bot` again, but not since the late turn began.
#[tokio::test]
async fn a_late_turn_does_not_requeue_a_chat_that_went_back_to_the_bot_after_a_hand_off() {
    late_turn(true).await;
}

async fn late_turn(back_to_bot: bool) {
    let gate = Arc::new(Semaphore::new(0));
    let seam = SlowFury {
        gate: gate.clone(),
        inner: Scripted::new(nlu().0, fury as fn(&str) -> Understanding),
    };
    let app = spawn_app_with_seam(manual, Arc::new(seam)).await;
    let token = app.agent_token("Sam", &[]).await;
    let mut sam = app.agent(&token).await;
    let mut customer = app.client().await;
    let welcome = customer.hello(None, None).await;
    let id = welcome["conversation_id"].as_str().unwrap().to_owned();
    let session = welcome["session"].as_str().unwrap().to_owned();

    // The turn of an upset message is in flight (held in the models)...
    customer
        .send(json!({"type": "message", "client_id": "m1", "text": "I am furious"}))
        .await;
    assert_eq!(customer.recv().await["type"], "ack");
    // ...while the customer asks for a person, Sam claims the chat and resolves it.
    common::request_claim_and_resolve(&mut customer, &mut sam, &id).await;
    if back_to_bot {
        let mut tab = app.client().await;
        tab.hello(Some(&session), None).await;
        tab.send(json!({"type": "message", "client_id": "t1", "text": "one more thing: how do I reset my password?"}))
            .await;
        let frames = tab.settle().await;
        assert!(
            frames.iter().any(|f| f["state"] == "bot") && frames.iter().any(|f| f["from"] == "bot"),
            "back with the bot, which answers: {frames:?}"
        );
    }
    sam.settle().await;

    // The turn finishes now; its policy says "hand over", but the bot has not owned the chat all
    // along since the message.
    gate.add_permits(1);
    // `settle` waits for the pong, which comes once the turn is done.
    let after = customer.settle().await;
    assert!(
        after
            .iter()
            .all(|f| f["state"] != "queued" && f["from"] != "system"),
        "the customer is not queued again: {after:?}"
    );
    let queue = sam.settle().await;
    assert!(
        queue.iter().all(|f| f["type"] != "queue_changed"
            || f["upserted"].as_array().is_none_or(|u| u.is_empty())),
        "nothing is queued again: {queue:?}"
    );
    assert!(sam.queue().is_empty(), "{:?}", sam.queue());

    // The customer can still ask for a person again, as before.
    customer.send(json!({"type": "request_human"})).await;
    while customer.recv().await["state"] != "queued" {}
}
