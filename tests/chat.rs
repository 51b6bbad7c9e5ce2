//! The customer's path over the WebSocket, end to end against the real server.

mod common;

use common::{spawn_app, spawn_app_with};
use serde_json::json;

#[tokio::test]
async fn a_question_from_the_help_centre_is_answered_with_its_article() {
    let app = spawn_app().await;
    let mut customer = app.client().await;
    let welcome = customer.hello(None, None).await;
    assert_eq!(welcome["resumed"], false);
    assert_eq!(welcome["state"], "bot");
    assert!(welcome["session"].as_str().unwrap().len() >= 32);

    let (ack, answer) = customer
        .ask("c1", "I see two payments for one order on my statement")
        .await;
    assert_eq!(ack["client_id"], "c1");
    assert_eq!(ack["seq"], 1);
    assert_eq!(answer["from"], "bot");
    assert_eq!(answer["seq"], 2);
    let source = &answer["sources"][0];
    assert_eq!(source["title"], "Why was I charged twice?", "{answer}");
    assert!(source["url"]
        .as_str()
        .unwrap()
        .starts_with("https://help.tidewater.example/billing/charged-twice"));
    assert!(!answer["text"].as_str().unwrap().is_empty());
    let actions: Vec<&str> = answer["quick_replies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["helpful", "request_human"]);
}

#[tokio::test]
async fn an_unrelated_question_gets_an_honest_dont_know_and_the_offer_of_a_person() {
    let app = spawn_app().await;
    let mut customer = app.client().await;
    customer.hello(None, None).await;
    let (_, answer) = customer
        .ask("c1", "Who won the football world cup in 1998?")
        .await;
    assert!(
        answer["sources"].as_array().is_none_or(|s| s.is_empty()),
        "{answer}"
    );
    assert!(
        answer["text"].as_str().unwrap().contains("don't know"),
        "{answer}"
    );
    assert_eq!(answer["quick_replies"][0]["action"], "request_human");

    // Editors see it among the questions the bot could not answer.
    let (status, gaps) = app.api("/api/reports/gaps").await;
    assert_eq!(status, 200);
    assert_eq!(
        gaps["gaps"][0]["question"],
        "Who won the football world cup in 1998?"
    );
    assert_eq!(gaps["gaps"][0]["outcome"], "dont_know");
}

#[tokio::test]
async fn a_customer_who_reconnects_gets_every_missed_frame_exactly_once() {
    let app = spawn_app().await;
    let mut customer = app.client().await;
    let welcome = customer.hello(None, None).await;
    let session = welcome["session"].as_str().unwrap().to_owned();
    let (ack, _) = customer.ask("m1", "How do I reset my password?").await;
    assert_eq!(ack["seq"], 1);
    // The widget saw the ack but lost the answer (seq 2) when the network dropped.
    customer.close().await;

    let conversation_id = welcome["conversation_id"].clone();
    let mut again = app.client().await;
    let welcome = again.hello(Some(&session), Some(1)).await;
    assert_eq!(welcome["resumed"], true);
    assert_eq!(welcome["conversation_id"], conversation_id);
    let missed = welcome["missed"].as_array().unwrap();
    assert_eq!(missed.len(), 1, "{welcome}");
    assert_eq!(missed[0]["seq"], 2);
    assert_eq!(missed[0]["from"], "bot");

    // The conversation goes on with the next numbers, and nothing old arrives again.
    let (ack, answer) = again
        .ask("m2", "And how do I turn on two-step verification?")
        .await;
    assert_eq!(
        (ack["seq"].as_i64(), answer["seq"].as_i64()),
        (Some(3), Some(4))
    );
    assert!(again.settle().await.is_empty());

    // A widget that remembers nothing gets the whole conversation, in order.
    let mut fresh_tab = app.client().await;
    let welcome = fresh_tab.hello(Some(&session), Some(0)).await;
    let seqs: Vec<i64> = welcome["missed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(welcome["missed"][0]["client_id"], "m1");
    assert_eq!(welcome["missed"][0]["from"], "customer");
}

#[tokio::test]
async fn a_message_resent_with_the_same_client_id_is_stored_and_answered_once() {
    let app = spawn_app().await;
    let mut customer = app.client().await;
    let welcome = customer.hello(None, None).await;
    let session = welcome["session"].as_str().unwrap().to_owned();
    let (ack, _) = customer.ask("same-id", "Where is my order?").await;
    assert_eq!(ack["duplicate"], false);

    // The widget never saw the ack (say), reconnects and re-sends.
    customer.close().await;
    let mut again = app.client().await;
    again.hello(Some(&session), Some(2)).await;
    again
        .send(json!({"type": "message", "client_id": "same-id", "text": "Where is my order?"}))
        .await;
    let ack = again.recv().await;
    assert_eq!(ack["type"], "ack");
    assert_eq!(ack["seq"], 1);
    assert_eq!(ack["duplicate"], true);
    assert!(
        again.settle().await.is_empty(),
        "the bot must not answer twice"
    );

    let mut check = app.client().await;
    let welcome = check.hello(Some(&session), Some(0)).await;
    assert_eq!(welcome["missed"].as_array().unwrap().len(), 2, "{welcome}");
}

#[tokio::test]
async fn bad_frames_get_error_frames_and_the_connection_and_server_live_on() {
    let app = spawn_app_with(|s| s.limits.max_frame_bytes = 8 * 1024).await;
    let mut customer = app.client().await;

    customer
        .send(json!({"type": "message", "client_id": "early", "text": "hi"}))
        .await;
    assert_eq!(customer.recv().await["code"], "hello_first");
    customer.hello(None, None).await;

    for (raw, code) in [
        ("{not json".to_owned(), "bad_frame"),
        (json!({"type": "dance"}).to_string(), "bad_frame"),
        (
            json!({"type": "message", "text": "no id"}).to_string(),
            "bad_frame",
        ),
        (
            json!({"type": "message", "client_id": "big", "text": "x".repeat(20_000)}).to_string(),
            "frame_too_large",
        ),
        (
            json!({"type": "message", "client_id": "long", "text": "y ".repeat(2_500)}).to_string(),
            "message_too_long",
        ),
        (
            json!({"type": "message", "client_id": "blank", "text": "   "}).to_string(),
            "empty_message",
        ),
        (
            // Zero-width spaces, a word joiner and a byte-order mark show nothing either.
            json!({"type": "message", "client_id": "unseen", "text": "\u{200b}\u{200b} \u{2060}\u{feff}"})
                .to_string(),
            "empty_message",
        ),
        (
            json!({"type": "feedback", "seq": 99, "helpful": true}).to_string(),
            "unknown_message",
        ),
    ] {
        customer.send_raw(raw).await;
        let error = customer.recv().await;
        assert_eq!(error["type"], "error", "{error}");
        assert_eq!(error["code"], code, "{error}");
        assert!(!error["message"].as_str().unwrap().is_empty());
    }

    // Still the same working connection...
    let (ack, answer) = customer
        .ask("ok", "How long does shipping to Canada take?")
        .await;
    assert_eq!(ack["seq"], 1);
    assert_eq!(answer["from"], "bot");
    // ...and the server serves everyone else.
    let mut other = app.client().await;
    other.hello(None, None).await;
    other.ask("x", "How do I descale the brewer?").await;
}

#[tokio::test]
async fn a_customer_sending_too_fast_is_told_to_slow_down_and_nothing_is_lost() {
    let app = spawn_app_with(|s| {
        // Slow enough that no token comes back while the bot answers the first two (which can take
        // seconds on a loaded machine): the third is refused whatever the timing.
        s.limits.messages_per_second = 0.01;
        s.limits.message_burst = 2.0;
    })
    .await;
    let mut customer = app.client().await;
    customer.hello(None, None).await;
    for i in 0..3 {
        customer
            .send(json!({"type": "message", "client_id": format!("f{i}"), "text": "hello?"}))
            .await;
    }
    let frames = customer.settle().await;
    let acks: Vec<_> = frames.iter().filter(|f| f["type"] == "ack").collect();
    let limited: Vec<_> = frames
        .iter()
        .filter(|f| f["code"] == "rate_limited")
        .collect();
    assert_eq!(acks.len(), 2, "{frames:?}");
    assert_eq!(limited.len(), 1, "{frames:?}");
    // The refused message names itself, so the widget can send it again later.
    assert_eq!(limited[0]["client_id"], "f2");
}

/// The message budget is the conversation's: a script that drops its socket and comes back to
/// the same conversation after each burst (or writes from a second tab) does not start it again.
#[tokio::test]
async fn reconnecting_does_not_reset_the_message_budget() {
    let app = spawn_app_with(|s| {
        s.limits.messages_per_second = 0.01;
        s.limits.message_burst = 2.0;
    })
    .await;
    let mut first = app.client().await;
    let welcome = first.hello(None, None).await;
    let session = welcome["session"].as_str().expect("session").to_owned();
    for i in 0..2 {
        first
            .send(json!({"type": "message", "client_id": format!("a{i}"), "text": "hello?"}))
            .await;
    }
    let frames = first.settle().await;
    assert_eq!(
        frames.iter().filter(|f| f["type"] == "ack").count(),
        2,
        "{frames:?}"
    );
    let seen = frames.iter().filter_map(|f| f["seq"].as_i64()).max();
    first.close().await;

    let mut again = app.client().await;
    let welcome = again.hello(Some(&session), seen).await;
    assert_eq!(welcome["resumed"], true, "{welcome}");
    again
        .send(json!({"type": "message", "client_id": "b0", "text": "hello again?"}))
        .await;
    let frames = again.settle().await;
    let limited: Vec<_> = frames
        .iter()
        .filter(|f| f["code"] == "rate_limited")
        .collect();
    assert_eq!(limited.len(), 1, "{frames:?}");
    assert_eq!(limited[0]["client_id"], "b0");
    assert!(!frames.iter().any(|f| f["type"] == "ack"), "{frames:?}");
}

#[tokio::test]
async fn feedback_on_an_answer_is_stored_and_unhelpful_answers_reach_the_gaps_report() {
    let app = spawn_app().await;
    let mut customer = app.client().await;
    customer.hello(None, None).await;
    let (_, answer) = customer
        .ask("q", "Can I change my delivery address after ordering?")
        .await;
    let seq = answer["seq"].as_i64().unwrap();
    customer
        .send(json!({"type": "feedback", "seq": seq, "helpful": false}))
        .await;
    let ack = customer.recv().await;
    assert_eq!(ack, json!({"type": "feedback_ack", "seq": seq}));
    let (_, gaps) = app.api("/api/reports/gaps").await;
    assert_eq!(
        gaps["gaps"][0]["question"],
        "Can I change my delivery address after ordering?"
    );
    assert_eq!(gaps["gaps"][0]["outcome"], "unhelpful");
}

#[tokio::test]
async fn asking_for_a_person_hands_the_conversation_over_and_the_bot_falls_silent() {
    let app = spawn_app().await;
    let mut customer = app.client().await;
    let welcome = customer.hello(None, None).await;
    customer.send(json!({"type": "request_human"})).await;
    let status = customer.recv().await;
    assert_eq!(status["type"], "status");
    assert_eq!(status["state"], "queued");
    let note = customer.recv().await;
    assert_eq!(note["from"], "system");

    customer
        .send(json!({"type": "message", "client_id": "w", "text": "How do I reset my password?"}))
        .await;
    assert_eq!(customer.recv().await["type"], "ack");
    assert!(
        customer.settle().await.is_empty(),
        "the bot must not answer while a person owns the chat"
    );

    let mut again = app.client().await;
    let resumed = again.hello(welcome["session"].as_str(), Some(0)).await;
    assert_eq!(resumed["state"], "queued");
}

#[tokio::test]
async fn two_tabs_of_one_conversation_both_see_every_message() {
    let app = spawn_app().await;
    let mut tab1 = app.client().await;
    let welcome = tab1.hello(None, None).await;
    let mut tab2 = app.client().await;
    tab2.hello(welcome["session"].as_str(), Some(0)).await;
    tab1.ask("t1", "How do I update my payment card?").await;
    let echoed = tab2.recv().await;
    assert_eq!(
        (echoed["from"].as_str(), echoed["client_id"].as_str()),
        (Some("customer"), Some("t1"))
    );
    let answer = tab2.recv().await;
    assert_eq!(answer["from"], "bot");
}

#[tokio::test]
async fn a_ping_is_answered_after_the_bot_has_replied_to_every_message_before_it() {
    // The customer turn runs in a task of its own; the pong must still wait for it, or a client
    // that waits for the pong (the widget's resume, the eval command) misses the reply.
    let app = spawn_app().await;
    let mut customer = app.client().await;
    customer.hello(None, None).await;
    for (id, text) in [
        ("c1", "How long does shipping to Canada take?"),
        ("c2", "Which countries do you ship to?"),
    ] {
        customer
            .send(json!({"type": "message", "client_id": id, "text": text}))
            .await;
    }
    let frames = customer.settle().await;
    // Each turn ends in a bot message (an answer) or a change of owner (a hand-off).
    let turns_ended = frames
        .iter()
        .filter(|f| (f["type"] == "message" && f["from"] == "bot") || f["type"] == "status")
        .count();
    assert_eq!(turns_ended, 2, "{frames:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_both_sides_write_at_once_the_customer_gets_every_seq_once_in_order_its_acks_included(
) {
    let app = spawn_app_with(|s| {
        s.handoff.auto_assign = false;
        s.limits.messages_per_second = 1000.0;
        s.limits.message_burst = 1000.0;
        s.limits.customer_outbox = 4096;
        s.limits.agent_outbox = 4096;
    })
    .await;
    let token = app.agent_token("Ann", &[]).await;
    let mut ann = app.agent(&token).await;
    let mut customer = app.client().await;
    let welcome = customer.hello(None, None).await;
    let id = welcome["conversation_id"].as_str().unwrap().to_owned();
    customer.send(json!({"type": "request_human"})).await;
    ann.wait_queue(|q| q.iter().any(|e| e["conversation_id"] == id.as_str()))
        .await;
    ann.send(json!({"type": "claim", "conversation_id": id}))
        .await;
    // Every seq the customer is shown, in the order it arrives: frames, and its own messages'
    // acks (the server does not echo them to the socket they came from).
    let mut seen = Vec::new();
    loop {
        let f = customer.recv().await;
        seen.extend(f["seq"].as_i64());
        if f["type"] == "status" && f["state"] == "agent" {
            break;
        }
    }

    // Both write at once, neither waiting for the other: the customer's acks and Ann's messages
    // are numbered from the same counter in whatever order the server takes them.
    const N: usize = 120;
    let customer_side = async {
        for i in 0..N {
            let frame = json!({"type": "message", "client_id": format!("c{i}"), "text": format!("customer {i}")});
            customer.send(frame).await;
        }
        let (mut acks, mut replies) = (0, 0);
        while acks < N || replies < N {
            let f = customer.recv().await;
            seen.extend(f["seq"].as_i64());
            match (f["type"].as_str(), f["from"].as_str()) {
                (Some("ack"), _) => acks += 1,
                (Some("message"), Some("agent")) => replies += 1,
                _ => {}
            }
        }
    };
    let agent_side = async {
        for i in 0..N {
            let frame = json!({"type": "message", "conversation_id": id, "client_id": format!("a{i}"), "text": format!("agent {i}")});
            ann.send(frame).await;
        }
    };
    tokio::join!(customer_side, agent_side);

    let (_, body) = app
        .get_as(&format!("/api/conversations/{id}"), Some(&token))
        .await;
    let stored: Vec<i64> = body["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["seq"].as_i64())
        .collect();
    assert_eq!(stored.len(), 2 * N + 3, "{:?}", body["transcript"]);
    assert_eq!(
        seen, stored,
        "the customer's view (acks included) is the stored log, each seq once and in order"
    );
}
