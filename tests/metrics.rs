//! `/metrics`: an operator scrapes it with an account's token after real conversations, and the
//! figures show what happened.

mod common;

use common::spawn_app;
use serde_json::json;

/// The value of the sample `name` (with its labels, as rendered), or 0 when it is absent.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().expect("a number"))
}

async fn scrape(app: &common::TestApp, token: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(app.http("/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn metrics_need_a_token() {
    let app = spawn_app().await;
    let (status, body) = scrape(&app, None).await;
    assert_eq!(status, 401, "{body}");
    let (status, _) = scrape(&app, Some("not-a-token")).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn the_counters_follow_a_real_conversation() {
    let app = spawn_app().await;
    let token = app.agent_token("Sam", &[]).await;
    let (status, before) = scrape(&app, Some(&token)).await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(sample(&before, "frontdesk_turn_seconds_count"), 0.0);
    assert_eq!(sample(&before, "frontdesk_queue_length"), 0.0);

    // A bot turn, then a person: asked for, assigned, a message each way.
    let mut customer = app.client().await;
    let welcome = customer.hello(None, None).await;
    let id = welcome["conversation_id"].as_str().unwrap().to_owned();
    let (_, reply) = customer.ask("m1", "How do I reset my password?").await;
    assert_eq!(reply["from"], "bot");
    let mut sam = app.agent(&token).await;
    customer.send(json!({"type": "request_human"})).await;
    assert_eq!(sam.next("assigned").await["conversation_id"], id.as_str());
    sam.send(json!({"type": "message", "conversation_id": id, "text": "Hi, Sam here", "client_id": "a1"}))
        .await;
    sam.next_event(|f| f["from"] == "agent").await;
    customer
        .send(json!({"type": "message", "client_id": "m2", "text": "Thanks, it still fails"}))
        .await;
    sam.next_event(|f| f["from"] == "customer").await;

    let (_, after) = scrape(&app, Some(&token)).await;
    let open = |kind: &str| {
        sample(
            &after,
            &format!("frontdesk_sockets_open{{kind=\"{kind}\"}}"),
        )
    };
    assert_eq!((open("customer"), open("agent")), (1.0, 1.0), "{after}");
    let messages = |from: &str| {
        sample(
            &after,
            &format!("frontdesk_messages_total{{from=\"{from}\"}}"),
        )
    };
    assert_eq!(messages("customer"), 2.0, "{after}");
    assert_eq!(messages("agent"), 1.0, "{after}");
    assert!(messages("bot") >= 1.0, "{after}");
    let escalations = "frontdesk_escalations_total{reason=\"human_request\"}";
    assert_eq!(sample(&after, escalations), 1.0, "{after}");
    assert_eq!(sample(&after, "frontdesk_queue_wait_seconds_count"), 1.0);
    assert_eq!(sample(&after, "frontdesk_queue_length"), 0.0);
    // The bot's turn is counted once it is answered; the turn of the message to Sam may still be
    // at work on the models (it does not hold up the relay).
    assert!(
        sample(&after, "frontdesk_turn_seconds_count") >= 1.0,
        "{after}"
    );
    assert!(
        sample(&after, "frontdesk_encoder_batch_size_count") >= 1.0,
        "{after}"
    );
    let appends = "frontdesk_store_seconds_count{op=\"append\"}";
    assert!(sample(&after, appends) >= 5.0, "{after}");
    // The SQLite writer's transactions, and the appends they held (at least one each).
    // Batches stored one append at a time (a refused or broken append in them): none here.
    assert!(
        after.contains("\nfrontdesk_store_batches_one_at_a_time_total 0\n"),
        "{after}"
    );
    let commits = sample(&after, "frontdesk_store_commit_batch_size_count");
    assert!(commits >= 1.0, "{after}");
    assert!(
        sample(&after, "frontdesk_store_commit_batch_size_sum") >= commits,
        "{after}"
    );
    assert!(
        after.contains("# TYPE frontdesk_turn_seconds histogram"),
        "{after}"
    );
    // What the appends wrote to SQLite's log is copied into the database beside the writer (this
    // shows the checkpointer at work and reported; what it is for is measured in BENCHMARKS.md,
    // and the log's starting over is tested in `store::writer`).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (_, now) = scrape(&app, Some(&token)).await;
        if sample(&now, "frontdesk_store_checkpoints_total") >= 1.0
            && sample(&now, "frontdesk_store_wal_pages") > 0.0
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint of the log within 5 s of the appends: {now}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
