//! Escalation and the human agent queue, end to end: a real customer client and real agent clients
//! over WebSocket, REST with real tokens.

mod common;

use std::time::Duration;

use common::{spawn_app_understanding, spawn_app_with, TestApp};
use frontdesk::nlu::{IntentMatch, Understanding};
use serde_json::{json, Value};

/// A stand-in for the classifier: "furious" is upset, "refund" is the sensitive refund intent.
fn rules(text: &str) -> Understanding {
    let lower = text.to_lowercase();
    let mut u = Understanding::default();
    if lower.contains("furious") {
        u.upset = 0.95;
        u.upset_cues = vec!["angry word".into()];
    }
    if lower.contains("refund") {
        u.intent = Some(IntentMatch {
            name: "refund".into(),
            confidence: 0.9,
            team: Some("billing".into()),
            always_human: true,
            confident_at: 0.5,
        });
    }
    u
}

async fn app_with_rules(adjust: impl FnOnce(&mut frontdesk::Settings)) -> TestApp {
    spawn_app_understanding(adjust, rules).await
}

fn manual(s: &mut frontdesk::Settings) {
    s.handoff.auto_assign = false;
}

#[tokio::test]
async fn a_customer_asks_for_a_person_an_agent_claims_they_chat_and_the_customer_rates() {
    let app = spawn_app_with(manual).await;
    let token = app.agent_token("Sam", &[]).await;
    let mut sam = app.agent(&token).await;
    let mut customer = app.client().await;
    let welcome = customer.hello(None, None).await;
    let id = welcome["conversation_id"].as_str().unwrap().to_owned();

    customer.send(json!({"type": "request_human"})).await;
    let status = customer.recv().await;
    assert_eq!(
        (status["type"].as_str(), status["state"].as_str()),
        (Some("status"), Some("queued")),
        "{status}"
    );
    assert_eq!(status["queue_position"], 1);
    assert!(status["eta_seconds"].as_u64().unwrap() > 0);
    assert_eq!(status["agents_available"], true);
    assert_eq!(customer.recv().await["from"], "system");

    let queue = sam.wait_queue(|q| !q.is_empty()).await;
    assert_eq!(queue[0]["conversation_id"], id.as_str());
    assert_eq!(queue[0]["reasons"][0]["kind"], "human_request");

    sam.send(json!({"type": "claim", "conversation_id": id}))
        .await;
    let assigned = sam.next("assigned").await;
    assert_eq!(assigned["by"], "claim");
    let context = &assigned["context"];
    assert_eq!(context["reasons"][0]["kind"], "human_request");
    assert_eq!(context["customer"]["name"], "Test Customer");
    assert_eq!(context["customer"]["page"], "https://shop.example/checkout");
    assert!(context["transcript"].as_array().unwrap().len() >= 2);

    let joined = customer.recv().await;
    assert_eq!(
        (joined["state"].as_str(), joined["agent"].as_str()),
        (Some("agent"), Some("Sam")),
        "{joined}"
    );

    sam.send(json!({"type": "message", "conversation_id": id, "text": "Hi, I'm Sam. How can I help?", "client_id": "a1"}))
        .await;
    let hello = customer.recv().await;
    assert_eq!(
        (hello["from"].as_str(), hello["author"].as_str()),
        (Some("agent"), Some("Sam"))
    );
    let echo = sam.next_event(|f| f["from"] == "agent").await;
    assert_eq!(echo["client_id"], "a1");

    // The customer answers: the agent sees it, the bot stays silent.
    customer
        .send(json!({"type": "message", "client_id": "m1", "text": "How do I reset my password?"}))
        .await;
    assert_eq!(customer.recv().await["type"], "ack");
    let seen = sam.next_event(|f| f["from"] == "customer").await;
    assert_eq!(seen["text"], "How do I reset my password?");
    assert!(
        customer.settle().await.is_empty(),
        "the bot must not answer while an agent owns the chat"
    );

    // A private note reaches agents only.
    sam.send(json!({"type": "note", "conversation_id": id, "text": "SECRET-NOTE customer seems confused"}))
        .await;
    let note = sam.next("note").await;
    assert_eq!(note["text"], "SECRET-NOTE customer seems confused");
    // A note is held to a message's length (it was stored at any length the frame allowed).
    sam.send(json!({"type": "note", "conversation_id": id, "text": "n".repeat(4_001)}))
        .await;
    let refused = sam.next("error").await;
    assert_eq!(refused["code"], "bad_frame", "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("4000"),
        "{refused}"
    );

    sam.send(json!({"type": "resolve", "conversation_id": id}))
        .await;
    let frames = [customer.recv().await, customer.recv().await];
    assert_eq!(frames[0]["state"], "resolved", "{frames:?}");
    assert_eq!(frames[1]["type"], "csat_request");
    assert_eq!(sam.next("unassigned").await["reason"], "resolved");
    customer
        .send(json!({"type": "rate", "score": 5, "comment": "quick and kind"}))
        .await;
    assert_eq!(
        customer.recv().await,
        json!({"type": "rate_ack", "score": 5})
    );
    let rated = sam.next("rated").await;
    assert_eq!(
        (rated["score"].as_i64(), rated["comment"].as_str()),
        (Some(5), Some("quick and kind"))
    );

    // Stored: the rating and the times; the note never reached the customer, not even on replay.
    let (status, body) = app
        .get_as(&format!("/api/conversations/{id}"), Some(&token))
        .await;
    assert_eq!(status, 200, "{body}");
    let handoff = &body["handoffs"][0];
    assert_eq!(handoff["csat_score"], 5);
    assert!(handoff["first_response_at"].as_i64().is_some());
    assert!(handoff["resolved_at"].as_i64().is_some());
    assert_eq!(body["notes"][0]["agent"], "Sam");
    let mut replay = app.client().await;
    let resumed = replay.hello(welcome["session"].as_str(), Some(0)).await;
    assert!(!resumed.to_string().contains("SECRET-NOTE"));
    let (_, own) = app
        .get_as(
            &format!("/api/conversations/{id}"),
            welcome["session"].as_str(),
        )
        .await;
    assert!(own["transcript"].is_array());
    assert!(!own.to_string().contains("SECRET-NOTE"), "{own}");

    // The next message goes back to the bot.
    customer
        .send(json!({"type": "message", "client_id": "m2", "text": "How do I reset my password?"}))
        .await;
    assert_eq!(customer.recv().await["type"], "ack");
    assert_eq!(customer.recv().await["state"], "bot");
    assert_eq!(customer.recv().await["from"], "bot");
}

#[tokio::test]
async fn an_upset_message_escalates_with_reason_upset_and_the_bot_does_not_answer() {
    let app = app_with_rules(manual).await;
    let token = app.agent_token("Sam", &[]).await;
    let _sam = app.agent(&token).await;
    let mut customer = app.client().await;
    let welcome = customer.hello(None, None).await;
    let id = welcome["conversation_id"].as_str().unwrap();
    customer
        .send(json!({"type": "message", "client_id": "u1", "text": "I am FURIOUS, my order never came"}))
        .await;
    assert_eq!(customer.recv().await["type"], "ack");
    let status = customer.recv().await;
    assert_eq!(status["state"], "queued", "{status}");
    let (_, context) = app
        .get_as(&format!("/api/conversations/{id}/context"), Some(&token))
        .await;
    let reason = &context["reasons"][0];
    assert_eq!(reason["kind"], "upset", "{context}");
    assert_eq!(
        reason["value"].as_f64().map(|v| (v * 100.0).round()),
        Some(95.0)
    );
    assert_eq!(
        context["turns"][0]["upset"]
            .as_f64()
            .map(|v| (v * 100.0).round()),
        Some(95.0)
    );
    assert!(context["summary"]
        .as_str()
        .unwrap()
        .contains("order never came"));
    assert!(context["priority"].as_i64().unwrap() > 0);

    // While the chat waits for a person, the customer's next turns are still understood, so the
    // agent sees how the mood moves.
    customer
        .send(json!({"type": "message", "client_id": "u2", "text": "still furious, and I want a refund"}))
        .await;
    while customer.recv().await["type"] != "ack" {}
    let mut turns = Value::Null;
    for _ in 0..50 {
        let (_, context) = app
            .get_as(&format!("/api/conversations/{id}/context"), Some(&token))
            .await;
        turns = context["turns"].clone();
        // The turn is in the transcript as soon as it is stored; its signals follow.
        if !turns[1]["upset"].is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(turns[1]["intent"], "refund", "{turns}");
    assert_eq!(
        turns[1]["upset"].as_f64().map(|v| (v * 100.0).round()),
        Some(95.0)
    );
    // Each turn carries the bar its reading had to reach: the lower one when a cue ("angry word")
    // backs it, the higher one without; the context gives that one for the sparkline's line.
    let s = frontdesk::settings::EscalationSettings::default();
    let without_cue = f64::from(s.upset_threshold_without_cue.max(s.upset_threshold));
    for turn in turns.as_array().unwrap() {
        let cued = turn["upset_cues"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| frontdesk::nlu::signals::is_evidence(c.as_str().unwrap()));
        let bar = if cued {
            f64::from(s.upset_threshold)
        } else {
            without_cue
        };
        let got = turn["upset_bar"].as_f64().unwrap();
        assert!((got - bar).abs() < 1e-6, "{turn}");
    }
    let (_, context) = app
        .get_as(&format!("/api/conversations/{id}/context"), Some(&token))
        .await;
    let line = context["upset_threshold_without_cue"].as_f64().unwrap();
    assert!((line - without_cue).abs() < 1e-6, "{line}");
}

#[tokio::test]
async fn an_always_human_intent_goes_to_its_team_at_once() {
    let app = app_with_rules(|_| {}).await;
    let billing = app.agent_token("Bea", &["billing"]).await;
    let orders = app.agent_token("Oli", &["orders"]).await;
    let mut oli = app.agent(&orders).await;
    let mut bea = app.agent(&billing).await;
    let mut customer = app.client().await;
    let welcome = customer.hello(None, None).await;
    customer
        .send(json!({"type": "message", "client_id": "r1", "text": "I want a refund for my espresso machine"}))
        .await;
    assert_eq!(customer.recv().await["type"], "ack");
    assert_eq!(customer.recv().await["state"], "queued");
    // Assigned automatically to the billing agent, not the orders agent.
    let assigned = bea.next("assigned").await;
    assert_eq!(assigned["by"], "auto");
    assert_eq!(assigned["conversation_id"], welcome["conversation_id"]);
    assert_eq!(assigned["context"]["reasons"][0]["kind"], "sensitive");
    assert_eq!(assigned["context"]["team"], "billing");
    assert_eq!(assigned["context"]["turns"][0]["intent"], "refund");
    assert_eq!(customer.recv().await["from"], "system");
    let joined = customer.recv().await;
    assert_eq!(joined["agent"], "Bea", "{joined}");
    assert!(oli.settle().await.iter().all(|f| f["type"] != "assigned"));
}

#[tokio::test]
async fn of_two_agents_claiming_at_once_exactly_one_wins() {
    let app = spawn_app_with(manual).await;
    let (t1, t2) = (
        app.agent_token("Ann", &[]).await,
        app.agent_token("Bob", &[]).await,
    );
    let mut ann = app.agent(&t1).await;
    let mut bob = app.agent(&t2).await;
    let mut customer = app.client().await;
    let welcome = customer.hello(None, None).await;
    let id = welcome["conversation_id"].as_str().unwrap();
    customer.send(json!({"type": "request_human"})).await;
    customer.recv().await;
    let (a, b) = common::race_to_claim(&mut ann, &mut bob, id).await;
    let mut types = [a["type"].as_str().unwrap(), b["type"].as_str().unwrap()];
    types.sort();
    assert_eq!(types, ["assigned", "claim_failed"], "{a} {b}");
    let failed = if a["type"] == "claim_failed" { &a } else { &b };
    assert_eq!(failed["code"], "already_claimed");
    assert!(failed["message"]
        .as_str()
        .unwrap()
        .contains("another agent"));
}

#[tokio::test]
async fn an_agent_who_does_not_reply_in_time_gives_the_chat_back_to_the_queue() {
    let app = spawn_app_with(|s| {
        s.handoff.reply_timeout_seconds = 0.6;
        s.handoff.pickup_timeout_seconds = 60.0;
    })
    .await;
    let token = app.agent_token("Sam", &[]).await;
    let mut sam = app.agent(&token).await;
    let mut customer = app.client().await;
    customer.hello(None, None).await;
    customer.send(json!({"type": "request_human"})).await;
    let assigned = sam.next("assigned").await;
    assert_eq!(assigned["by"], "auto");
    assert_eq!(customer.recv().await["state"], "queued");
    customer.recv().await; // the system message
    let joined = customer.recv().await; // "Sam joined": the widget says so from this frame
    assert_eq!(
        (joined["state"].as_str(), joined["agent"].as_str()),
        (Some("agent"), Some("Sam"))
    );
    let back = sam.next("unassigned").await;
    assert_eq!(back["reason"], "no_reply");
    let status = customer.recv().await;
    assert_eq!(status["state"], "queued", "{status}");
    let queue = sam.wait_queue(|q| q.len() == 1).await;
    assert_eq!(queue[0]["reasons"][0]["kind"], "human_request", "{queue:?}");
}

#[tokio::test]
async fn with_no_agent_online_the_customer_is_told_and_can_leave_an_email() {
    let app = spawn_app_with(|_| {}).await;
    let mut customer = app.client().await;
    let welcome = customer.hello(None, None).await;
    customer.send(json!({"type": "request_human"})).await;
    let status = customer.recv().await;
    assert_eq!(status["state"], "queued");
    assert_eq!(status["agents_available"], false);
    let message = customer.recv().await;
    assert!(
        message["text"].as_str().unwrap().contains("Nobody"),
        "{message}"
    );
    assert_eq!(message["quick_replies"][0]["action"], "leave_email");
    customer
        .send(json!({"type": "leave_email", "email": "not-an-email"}))
        .await;
    assert_eq!(customer.recv().await["code"], "bad_email");
    customer
        .send(json!({"type": "leave_email", "email": "ana@example.com", "message": "about my refund"}))
        .await;
    let ack = customer.recv().await;
    assert_eq!(ack["type"], "email_ack");
    let token = app.agent_token("Sam", &[]).await;
    let (status, tickets) = app.get_as("/api/tickets", Some(&token)).await;
    assert_eq!(status, 200);
    let ticket = &tickets["tickets"][0];
    assert_eq!(ticket["email"], "ana@example.com");
    assert_eq!(ticket["status"], "open");
    assert_eq!(ticket["conversation_id"], welcome["conversation_id"]);
}

#[tokio::test]
async fn a_customer_token_reads_its_own_conversation_and_no_other() {
    let app = spawn_app_with(|_| {}).await;
    let mut a = app.client().await;
    let wa = a.hello(None, None).await;
    let mut b = app.client().await;
    let wb = b.hello(None, None).await;
    // A conversation is stored with its first message.
    a.ask("a1", "How do I reset my password?").await;
    b.ask("b1", "Where is my order?").await;
    let (ida, idb) = (
        wa["conversation_id"].as_str().unwrap(),
        wb["conversation_id"].as_str().unwrap(),
    );
    let session_a = wa["session"].as_str();
    let (status, own) = app
        .get_as(&format!("/api/conversations/{ida}"), session_a)
        .await;
    assert_eq!(status, 200);
    assert!(own.get("notes").is_none());
    let (status, other) = app
        .get_as(&format!("/api/conversations/{idb}"), session_a)
        .await;
    assert_eq!(status, 403, "{other}");
    assert_eq!(other["code"], "forbidden");
    let (status, _) = app.get_as(&format!("/api/conversations/{idb}"), None).await;
    assert_eq!(status, 401);
    // A session token is no agent token.
    let (status, _) = app.get_as("/api/conversations", session_a).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn agent_endpoints_refuse_a_missing_or_expired_token() {
    let app = spawn_app_with(|s| s.agents.token_ttl_seconds = 0.5).await;
    let (status, body) = app.get_as("/api/conversations", None).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    let token = app.agent_token("Sam", &[]).await;
    let (status, _) = app.get_as("/api/conversations", Some(&token)).await;
    assert_eq!(status, 200);

    // Without a token the socket accepts nothing but auth.
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws/agent", app.port))
            .await
            .unwrap();
    use futures_util::{SinkExt, StreamExt};
    ws.send(
        json!({"type": "claim", "conversation_id": "x"})
            .to_string()
            .into(),
    )
    .await
    .unwrap();
    let reply: Value =
        serde_json::from_str(ws.next().await.unwrap().unwrap().to_text().unwrap()).unwrap();
    assert_eq!(reply["code"], "unauthorized");

    tokio::time::sleep(Duration::from_millis(600)).await;
    let (status, body) = app.get_as("/api/conversations", Some(&token)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("token_expired"))
    );
    let refused = tokio_tungstenite::connect_async(format!(
        "ws://127.0.0.1:{}/ws/agent?token={token}",
        app.port
    ))
    .await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 401)
        }
        other => panic!("an expired token must be refused, got {other:?}"),
    }
}

#[tokio::test]
async fn nobody_picking_up_raises_the_priority_and_alerts_every_agent() {
    let app = spawn_app_with(|s| {
        s.handoff.auto_assign = false;
        s.handoff.pickup_timeout_seconds = 0.5;
    })
    .await;
    let token = app.agent_token("Sam", &[]).await;
    let mut sam = app.agent(&token).await;
    let mut customer = app.client().await;
    customer.hello(None, None).await;
    customer.send(json!({"type": "request_human"})).await;
    let alert = sam.next("alert").await;
    assert!(alert["message"].as_str().unwrap().contains("nobody"));
    let queue = sam
        .wait_queue(|q| q.first().is_some_and(|e| e["priority"] == 1))
        .await;
    assert_eq!(queue.len(), 1, "{queue:?}");
}

#[tokio::test]
async fn agents_see_who_is_connected_and_when_each_frame_of_a_context_happened() {
    let app = spawn_app_with(manual).await;
    let sam_token = app.agent_token("Sam", &["billing"]).await;
    let kim_token = app.agent_token("Kim", &[]).await;
    let (status, body) = app.get_as("/api/agents", None).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));
    let (_, body) = app.get_as("/api/agents", Some(&sam_token)).await;
    assert_eq!(body, json!({"agents": []}), "nobody is connected yet");

    let mut sam = app.agent(&sam_token).await;
    let _kim = app.agent(&kim_token).await;
    sam.send(json!({"type": "presence", "status": "away"}))
        .await;
    let mut customer = app.client().await;
    let welcome = customer.hello(None, None).await;
    let id = welcome["conversation_id"].as_str().unwrap().to_owned();
    customer.send(json!({"type": "request_human"})).await;
    // Claim only once it is queued: a claim that overtakes the hand-off fails (not in the queue).
    loop {
        let change = sam.next("queue_changed").await;
        if change["upserted"].as_array().is_some_and(|e| !e.is_empty()) {
            break;
        }
    }
    sam.send(json!({"type": "claim", "conversation_id": id}))
        .await;
    let assigned = sam.next("assigned").await;
    for frame in assigned["context"]["transcript"].as_array().unwrap() {
        assert!(frame["at"].as_i64().unwrap() > 0, "{frame}");
    }

    let (status, body) = app.get_as("/api/agents", Some(&kim_token)).await;
    assert_eq!(status, 200, "{body}");
    let agents = body["agents"].as_array().unwrap();
    let shown: Vec<(&str, &str, u64)> = agents
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap(),
                a["status"].as_str().unwrap(),
                a["chats"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(shown, [("Kim", "online", 0), ("Sam", "away", 1)]);
    assert_eq!(agents[1]["teams"], json!(["billing"]));
    assert!(agents[1]["id"].as_str().is_some_and(|id| !id.is_empty()));
}

#[tokio::test]
async fn after_a_restart_the_queue_and_each_agents_chats_are_back() {
    let app = spawn_app_with(manual).await;
    let token = app.agent_token("Sam", &[]).await;
    let mut sam = app.agent(&token).await;
    let mut waiting = app.client().await;
    let waiting_id = waiting.hello(None, None).await["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    waiting
        .send(json!({"type": "message", "client_id": "w1", "text": "Where is my order 1234?"}))
        .await;
    waiting.send(json!({"type": "request_human"})).await;
    let mut chatting = app.client().await;
    let welcome = chatting.hello(None, None).await;
    let chatting_id = welcome["conversation_id"].as_str().unwrap().to_owned();
    chatting.send(json!({"type": "request_human"})).await;
    sam.wait_queue(|q| q.len() == 2).await;
    sam.send(json!({"type": "claim", "conversation_id": chatting_id}))
        .await;
    sam.next("assigned").await;
    sam.send(json!({"type": "message", "conversation_id": chatting_id, "text": "Sam here.", "client_id": "a1"}))
        .await;
    sam.next_event(|f| f["from"] == "agent").await;

    // The server restarts; every socket drops.
    drop((sam, waiting, chatting));
    let app = app.restart().await;

    let mut sam = app.agent(&token).await;
    let queue = sam.next("queue").await;
    assert_eq!(queue["total"], 1, "{queue}");
    let entries = queue["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{queue}");
    assert_eq!(entries[0]["conversation_id"], waiting_id.as_str());
    assert_eq!(entries[0]["reasons"][0]["kind"], "human_request");
    assert_eq!(entries[0]["preview"], "Where is my order 1234?");

    // The chat Sam held is still Sam's: the customer comes back and they go on talking.
    let mut customer = app.client().await;
    customer.hello(welcome["session"].as_str(), None).await;
    sam.send(json!({"type": "message", "conversation_id": chatting_id, "text": "Still here after the restart.", "client_id": "a2"}))
        .await;
    let reply = loop {
        let frame = customer.recv().await;
        if frame["text"] == "Still here after the restart." {
            break frame;
        }
    };
    assert_eq!(reply["author"], "Sam");

    // And the waiting one can be claimed as before.
    sam.send(json!({"type": "claim", "conversation_id": waiting_id}))
        .await;
    let assigned = sam.next("assigned").await;
    assert_eq!(assigned["context"]["reasons"][0]["kind"], "human_request");
}

#[tokio::test]
async fn an_agent_message_sent_again_after_a_reconnect_is_stored_once() {
    let app = spawn_app_with(manual).await;
    let token = app.agent_token("Sam", &[]).await;
    let mut sam = app.agent(&token).await;
    let mut customer = app.client().await;
    let id = customer.hello(None, None).await["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    customer.send(json!({"type": "request_human"})).await;
    assert_eq!(customer.recv().await["state"], "queued");
    sam.send(json!({"type": "claim", "conversation_id": id}))
        .await;
    sam.next("assigned").await;
    let message =
        json!({"type": "message", "conversation_id": id, "text": "Sam here.", "client_id": "a1"});
    sam.send(message.clone()).await;
    sam.next_event(|f| f["client_id"] == "a1").await;

    // The console lost its socket before it saw the echo, and sends the pending message again.
    drop(sam);
    let mut sam = app.agent(&token).await;
    sam.send(message).await;
    // A client id longer than a customer may use is refused, and nothing is stored.
    let long = "x".repeat(129);
    sam.send(json!({"type": "message", "conversation_id": id, "text": "Too long an id", "client_id": &long}))
        .await;
    let refused = sam.next("error").await;
    assert_eq!(refused["code"], "bad_frame", "{refused}");
    assert_eq!(
        refused["client_id"],
        long.as_str(),
        "the refused message is named"
    );
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("client_id must be 1 to 128")),
        "{refused}"
    );
    sam.send(json!({"type": "message", "conversation_id": id, "text": "Anything else?", "client_id": "a2"}))
        .await;
    sam.next_event(|f| f["client_id"] == "a2").await;
    let (_, body) = app
        .get_as(&format!("/api/conversations/{id}"), Some(&token))
        .await;
    let from_sam: Vec<&str> = body["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["from"] == "agent")
        .map(|f| f["text"].as_str().unwrap())
        .collect();
    assert_eq!(from_sam, ["Sam here.", "Anything else?"], "{body}");
}
