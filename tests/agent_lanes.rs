//! An agent's frames for different conversations are handled at the same time, and in order within
//! each conversation (`http::lanes`): a console writing to many chats at once gets every message to
//! its customer once and in order, its `event` echoes with the client ids it sent, a flood above
//! the socket's bound slowed rather than dropped, and a malformed frame answered without holding
//! up the rest.

mod common;

use std::collections::BTreeMap;

use common::{spawn_app_with, AgentClient, Client, TestApp};
use frontdesk::accounts::{self, NewAccount};
use serde_json::{json, Value};

/// An agent who may hold `chats` conversations, connected; its token's console.
async fn agent_holding(app: &TestApp, chats: i64) -> AgentClient {
    accounts::create(
        &app.store,
        NewAccount {
            name: "Busy Agent".into(),
            email: "busy@example.com".into(),
            password: "secret-password".into(),
            role: "agent".parse().unwrap(),
            teams: vec![],
            max_chats: chats,
        },
    )
    .await
    .expect("agent created");
    let response = reqwest::Client::new()
        .post(app.http("/api/agent/login"))
        .json(&json!({"email": "busy@example.com", "password": "secret-password"}))
        .send()
        .await
        .expect("login");
    let body: Value = response.json().await.unwrap();
    app.agent(body["token"].as_str().unwrap()).await
}

/// A server where one address may open `n` chats and hand them all over, and an agent who was
/// assigned all of them; the customers by conversation id.
async fn desk_of(n: usize) -> (TestApp, AgentClient, BTreeMap<String, Client>) {
    desk_with(n, 64).await
}

/// As [`desk_of`], with `in_flight` frames of a socket handled at once.
async fn desk_with(n: usize, in_flight: usize) -> (TestApp, AgentClient, BTreeMap<String, Client>) {
    let app = spawn_app_with(|s| {
        s.limits.agent_frames_in_flight = in_flight;
        s.limits.sockets_per_address = n + 8;
        s.limits.new_conversations_per_address_per_minute = n as f64 + 8.0;
        s.limits.handoff_requests_per_address_per_minute = n as f64 + 8.0;
        s.limits.queued_per_address = n + 8;
        // The test sends everything before it reads: the echoes wait in the outbox meanwhile.
        s.limits.agent_outbox = 8192;
        s.limits.customer_outbox = 1024;
    })
    .await;
    let mut agent = agent_holding(&app, n as i64).await;
    let mut customers = BTreeMap::new();
    for _ in 0..n {
        let mut customer = app.client().await;
        let welcome = customer.hello(None, None).await;
        customer.send(json!({"type": "request_human"})).await;
        let id = welcome["conversation_id"].as_str().unwrap().to_owned();
        customers.insert(id, customer);
    }
    let mut assigned = Vec::new();
    while assigned.len() < n {
        let frame = agent.next("assigned").await;
        assigned.push(frame["conversation_id"].as_str().unwrap().to_owned());
    }
    assigned.sort();
    assert_eq!(assigned, customers.keys().cloned().collect::<Vec<_>>());
    agent.settle().await;
    (app, agent, customers)
}

/// Sends `per` messages to each conversation, interleaved (c0's first, c1's first, …), as fast as
/// the socket takes them; `garbage_at` puts a malformed frame after that many messages.
async fn send_round_robin(
    agent: &mut AgentClient,
    ids: &[String],
    per: usize,
    garbage_at: Option<usize>,
) {
    let mut sent = 0;
    for i in 0..per {
        for (k, id) in ids.iter().enumerate() {
            if garbage_at == Some(sent) {
                agent
                    .send(json!({"type": "message", "conversation_id": 42}))
                    .await;
            }
            agent
                .send(json!({"type": "message", "conversation_id": id,
                    "client_id": format!("c{k}-{i}"), "text": format!("reply {i} in chat {k}")}))
                .await;
            sent += 1;
        }
    }
}

/// Frames the agent reads until the pong of a ping sent after everything: every echo is there
/// (a ping is answered only after the frames before it); checks each conversation's echoes are
/// its messages, once each, in order, with increasing `seq`. Returns the other frames.
async fn echoes_in_order(agent: &mut AgentClient, ids: &[String], per: usize) -> Vec<Value> {
    let frames = agent.settle().await;
    let mut echoed: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    let mut others = Vec::new();
    for f in frames {
        if f["type"] == "event" && f["frame"]["from"] == "agent" {
            let id = f["conversation_id"].as_str().unwrap().to_owned();
            let seq = f["frame"]["seq"].as_i64().unwrap();
            let client_id = f["frame"]["client_id"].as_str().unwrap().to_owned();
            echoed.entry(id).or_default().push((seq, client_id));
        } else {
            others.push(f);
        }
    }
    for (k, id) in ids.iter().enumerate() {
        let got = echoed.remove(id).unwrap_or_default();
        let client_ids: Vec<&str> = got.iter().map(|(_, c)| c.as_str()).collect();
        let expected: Vec<String> = (0..per).map(|i| format!("c{k}-{i}")).collect();
        assert_eq!(
            client_ids, expected,
            "the echoes of chat {k}, in order, once"
        );
        assert!(
            got.windows(2).all(|w| w[0].0 < w[1].0),
            "seq grows in chat {k}: {got:?}"
        );
    }
    assert!(echoed.is_empty(), "echoes of no sent message: {echoed:?}");
    others
}

/// Each customer reads exactly its `per` agent messages, in order, and nothing more of the agent.
async fn customers_got_theirs(customers: &mut BTreeMap<String, Client>, per: usize) {
    let ids: Vec<String> = customers.keys().cloned().collect();
    for (k, id) in ids.iter().enumerate() {
        let customer = customers.get_mut(id).unwrap();
        let mut texts = Vec::new();
        while texts.len() < per {
            let frame = customer.recv().await;
            if frame["type"] == "message" && frame["from"] == "agent" {
                texts.push(frame["text"].as_str().unwrap().to_owned());
            }
        }
        let expected: Vec<String> = (0..per).map(|i| format!("reply {i} in chat {k}")).collect();
        assert_eq!(texts, expected, "chat {k}'s customer, in order");
        let more = customer.settle().await;
        assert!(
            !more
                .iter()
                .any(|f| f["type"] == "message" && f["from"] == "agent"),
            "chat {k}'s customer got a message twice: {more:?}"
        );
    }
}

#[tokio::test]
async fn an_agent_writing_to_twenty_chats_at_once_reaches_each_customer_once_in_order() {
    let (_app, mut agent, mut customers) = desk_of(20).await;
    let ids: Vec<String> = customers.keys().cloned().collect();
    send_round_robin(&mut agent, &ids, 8, None).await;
    let others = echoes_in_order(&mut agent, &ids, 8).await;
    assert!(
        !others.iter().any(|f| f["type"] == "error"),
        "no error: {others:?}"
    );
    customers_got_theirs(&mut customers, 8).await;
}

#[tokio::test]
async fn one_frame_at_a_time_when_the_bound_is_one() {
    let (_app, mut agent, mut customers) = desk_with(4, 1).await;
    let ids: Vec<String> = customers.keys().cloned().collect();
    send_round_robin(&mut agent, &ids, 5, Some(7)).await;
    let others = echoes_in_order(&mut agent, &ids, 5).await;
    assert_eq!(
        others.iter().filter(|f| f["type"] == "error").count(),
        1,
        "{others:?}"
    );
    customers_got_theirs(&mut customers, 5).await;
}

#[tokio::test]
async fn a_flood_above_the_bound_is_slowed_not_dropped() {
    // 360 frames to 3 chats: far above the 64 a socket may have in flight, and most of them in
    // one lane at a time.
    let (_app, mut agent, mut customers) = desk_of(3).await;
    let ids: Vec<String> = customers.keys().cloned().collect();
    send_round_robin(&mut agent, &ids, 120, None).await;
    let others = echoes_in_order(&mut agent, &ids, 120).await;
    assert!(
        !others.iter().any(|f| f["type"] == "error"),
        "no error: {others:?}"
    );
    customers_got_theirs(&mut customers, 120).await;
}

#[tokio::test]
async fn a_malformed_frame_among_them_is_answered_and_holds_nothing_up() {
    let (_app, mut agent, mut customers) = desk_of(5).await;
    let ids: Vec<String> = customers.keys().cloned().collect();
    send_round_robin(&mut agent, &ids, 6, Some(12)).await;
    let others = echoes_in_order(&mut agent, &ids, 6).await;
    let errors: Vec<&Value> = others.iter().filter(|f| f["type"] == "error").collect();
    assert_eq!(
        errors.len(),
        1,
        "one error, for the one bad frame: {others:?}"
    );
    assert_eq!(errors[0]["code"], "bad_frame", "{errors:?}");
    customers_got_theirs(&mut customers, 6).await;
}

#[tokio::test]
async fn a_message_to_a_chat_the_agent_does_not_hold_fails_alone() {
    let (_app, mut agent, mut customers) = desk_of(4).await;
    let ids: Vec<String> = customers.keys().cloned().collect();
    agent
        .send(
            json!({"type": "message", "conversation_id": "not-a-chat-of-mine",
            "client_id": "x", "text": "hello?"}),
        )
        .await;
    send_round_robin(&mut agent, &ids, 5, None).await;
    let others = echoes_in_order(&mut agent, &ids, 5).await;
    let errors: Vec<&Value> = others.iter().filter(|f| f["type"] == "error").collect();
    assert_eq!(errors.len(), 1, "one error, for that message: {others:?}");
    // Errors come in any order among the chats' echoes: the error says which message it refuses.
    assert_eq!(
        errors[0]["conversation_id"], "not-a-chat-of-mine",
        "{errors:?}"
    );
    assert_eq!(errors[0]["client_id"], "x", "{errors:?}");
    customers_got_theirs(&mut customers, 5).await;
}

#[tokio::test]
async fn a_refused_message_in_a_held_chat_names_the_chat_and_its_client_id() {
    let (_app, mut agent, mut customers) = desk_of(3).await;
    let ids: Vec<String> = customers.keys().cloned().collect();
    // The console sends a blank message to the second chat among good ones to the others.
    agent
        .send(json!({"type": "message", "conversation_id": ids[1], "client_id": "blank", "text": "   "}))
        .await;
    send_round_robin(&mut agent, &ids, 2, None).await;
    let others = echoes_in_order(&mut agent, &ids, 2).await;
    let errors: Vec<&Value> = others.iter().filter(|f| f["type"] == "error").collect();
    assert_eq!(
        errors.len(),
        1,
        "one error, for the blank message: {others:?}"
    );
    assert_eq!(errors[0]["code"], "bad_frame", "{errors:?}");
    assert_eq!(errors[0]["conversation_id"], ids[1].as_str(), "{errors:?}");
    assert_eq!(errors[0]["client_id"], "blank", "{errors:?}");
    // Nothing of it was stored or sent: each customer has exactly the two good messages.
    customers_got_theirs(&mut customers, 2).await;
}
