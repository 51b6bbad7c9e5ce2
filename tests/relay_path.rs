//! The relay path never waits on the models: while the language-understanding seam is busy with a
//! customer's message, the customer's next messages are still acknowledged and reach the agent,
//! and the bot's answers, once the models are free, come in the order of the questions.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use common::{nlu, spawn_app_with_seam};
use frontdesk::escalation::{Scripted, Understand};
use frontdesk::nlu::{Analysis, NluError, Understanding};
use serde_json::json;
use tokio::sync::Semaphore;

/// The scripted seam behind a gate: each message that contains `word` waits for a permit
/// before it is understood.
struct Gated {
    gate: Arc<Semaphore>,
    word: &'static str,
    inner: Scripted<fn(&str) -> Understanding>,
}

impl Understand for Gated {
    fn understand<'a>(
        &'a self,
        text: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Analysis, NluError>> + Send + 'a>> {
        Box::pin(async move {
            if text.contains(self.word) {
                self.gate.acquire().await.expect("open gate").forget();
            }
            self.inner.understand(text).await
        })
    }
}

fn plain(_: &str) -> Understanding {
    Understanding::default()
}

fn gated(word: &'static str) -> (Arc<Semaphore>, Arc<dyn Understand>) {
    let gate = Arc::new(Semaphore::new(0));
    let inner = Scripted::new(nlu().0, plain as fn(&str) -> Understanding);
    let seam = Gated {
        gate: gate.clone(),
        word,
        inner,
    };
    (gate, Arc::new(seam))
}

#[tokio::test]
async fn customer_messages_reach_the_agent_while_the_models_are_busy() {
    let (gate, seam) = gated("");
    let app = spawn_app_with_seam(|_| {}, seam).await;
    let token = app.agent_token("Sam", &[]).await;
    let mut sam = app.agent(&token).await;
    let mut customer = app.client().await;
    customer.hello(None, None).await;
    customer.send(json!({"type": "request_human"})).await;
    sam.next("assigned").await;
    assert_eq!(customer.recv().await["state"], "queued");
    customer.recv().await; // the system message
    assert_eq!(customer.recv().await["state"], "agent");

    // The models never get to the first message: the second is read, stored and relayed anyway.
    for (id, text) in [
        ("m1", "My order has not arrived"),
        ("m2", "It was due on Monday"),
    ] {
        customer
            .send(json!({"type": "message", "client_id": id, "text": text}))
            .await;
        let ack = customer.recv().await;
        assert_eq!(
            (ack["type"].as_str(), ack["client_id"].as_str()),
            (Some("ack"), Some(id))
        );
        let seen = sam.next_event(|f| f["from"] == "customer").await;
        assert_eq!(seen["text"], text);
    }
    gate.add_permits(2);
    assert!(
        customer.settle().await.is_empty(),
        "the bot stays silent while Sam has the chat"
    );
}

#[tokio::test]
async fn the_bot_answers_in_the_order_of_the_questions() {
    // Only the first question waits for the models: the second must still be answered after it.
    let (gate, seam) = gated("statement");
    let app = spawn_app_with_seam(
        |s| {
            s.limits.messages_per_second = 100.0;
            s.limits.message_burst = 100.0;
        },
        seam,
    )
    .await;
    let mut customer = app.client().await;
    customer.hello(None, None).await;
    let questions = [
        "I see two payments for one order on my statement",
        "How do I reset my password?",
    ];
    for (i, text) in questions.iter().enumerate() {
        let client_id = format!("m{i}");
        customer
            .send(json!({"type": "message", "client_id": client_id, "text": text}))
            .await;
        assert_eq!(customer.recv().await["type"], "ack");
    }
    gate.add_permits(1);
    let mut answered = Vec::new();
    while answered.len() < 2 {
        let frame = customer.recv().await;
        if frame["type"] == "message" && frame["from"] == "bot" {
            answered.push(frame["sources"][0]["url"].as_str().unwrap_or("").to_owned());
        }
    }
    assert!(answered[0].contains("charged-twice"), "{answered:?}");
    assert!(answered[1].contains("reset-password"), "{answered:?}");
}

#[tokio::test]
async fn a_probe_ping_is_answered_at_once_while_a_turn_waits_and_a_plain_one_after_it() {
    let (gate, seam) = gated("");
    let app = spawn_app_with_seam(|_| {}, seam).await;
    let mut customer = app.client().await;
    customer.hello(None, None).await;
    customer
        .send(json!({"type": "message", "client_id": "m1", "text": "How do I reset my password?"}))
        .await;
    assert_eq!(customer.recv().await["type"], "ack");
    // The turn waits for the models. A widget asking whether the connection is alive is told
    // so at once; a plain ping is answered only once the turn is done, as the protocol says.
    customer.send(json!({"type": "ping", "id": "plain"})).await;
    customer
        .send(json!({"type": "ping", "id": "alive?", "probe": true}))
        .await;
    let first = customer.recv().await;
    assert_eq!(
        (first["type"].as_str(), first["id"].as_str()),
        (Some("pong"), Some("alive?"))
    );
    gate.add_permits(1);
    let mut after = Vec::new();
    while after
        .last()
        .is_none_or(|f: &serde_json::Value| f["type"] != "pong")
    {
        after.push(customer.recv().await);
    }
    assert_eq!(after.last().expect("pong")["id"], "plain");
    assert!(
        after.iter().any(|f| f["from"] == "bot"),
        "the bot's answer came before the plain pong: {after:?}"
    );
}
