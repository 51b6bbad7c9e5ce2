//! A customer whose socket stops reading: nobody else waits for it, its socket is closed rather
//! than skipping frames, and after reconnecting it has every frame exactly once.

mod common;

use std::time::{Duration, Instant};

use common::{spawn_app_with, AgentClient, Client, TestApp};
use serde_json::{json, Value};

/// A customer asks for a person and `agent` claims the conversation; returns its session and id.
async fn handed_to(customer: &mut Client, agent: &mut AgentClient) -> (String, String) {
    let welcome = customer.hello(None, None).await;
    let id = welcome["conversation_id"].as_str().unwrap().to_owned();
    customer.send(json!({"type": "request_human"})).await;
    agent
        .wait_queue(|q| q.iter().any(|e| e["conversation_id"] == id.as_str()))
        .await;
    agent
        .send(json!({"type": "claim", "conversation_id": id}))
        .await;
    loop {
        let assigned = agent.next("assigned").await;
        if assigned["conversation_id"] == id.as_str() {
            break;
        }
    }
    (welcome["session"].as_str().unwrap().to_owned(), id)
}

/// `agent` writes `count` messages of about `chars` characters to conversation `id`, each
/// stored before the next.
async fn write_long(agent: &mut AgentClient, id: &str, label: &str, count: usize, chars: usize) {
    let long = label.repeat(chars / label.len().max(1));
    for i in 0..count {
        let text = format!("{label} {i} {long}");
        agent
            .send(json!({"type": "message", "conversation_id": id, "text": text}))
            .await;
        agent.next_event(|f| f["from"] == "agent").await;
    }
}

/// Resumes `session` from `last_seq` until it has every frame up to `stored`: a welcome carries
/// at most a page of what was missed, and after a page that is not the last the server closes
/// the socket with 4004 (resume). Returns the seqs of the missed frames as they came and how many
/// welcomes it took.
async fn resume_all(
    app: &TestApp,
    session: &str,
    mut last_seq: i64,
    stored: i64,
) -> (Vec<i64>, usize) {
    let mut seqs = Vec::new();
    let mut welcomes = 0;
    loop {
        let mut customer = app.client().await;
        let welcome = customer.hello(Some(session), Some(last_seq)).await;
        welcomes += 1;
        let missed: Vec<i64> = welcome["missed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f: &Value| f["seq"].as_i64().unwrap())
            .collect();
        assert!(
            !missed.is_empty() || last_seq == stored,
            "nothing missed before {stored}"
        );
        seqs.extend(&missed);
        last_seq = missed.last().copied().unwrap_or(last_seq);
        if last_seq >= stored {
            assert_eq!(welcome["last_seq"].as_i64(), Some(stored));
            return (seqs, welcomes);
        }
        // A page that is not the last says how far it goes.
        assert_eq!(welcome["last_seq"].as_i64(), Some(last_seq));
        let close = customer.recv_or_close(Duration::from_secs(10)).await;
        assert_eq!(
            close,
            Err(Some(4004)),
            "a page that is not the last ends with 4004"
        );
        assert!(welcomes < 100, "resuming does not end");
    }
}

/// A customer who missed megabytes (here 300 long messages, about 1.2 MB) gets them in pages of
/// a welcome each, every frame once and in order, and resumes to the end without help.
#[tokio::test]
async fn a_customer_who_missed_megabytes_resumes_in_pages_and_misses_nothing() {
    let app = spawn_app_with(|s| {
        s.handoff.auto_assign = false;
        s.limits.agent_outbox = 4096;
    })
    .await;
    let token = app.agent_token("Ann", &[]).await;
    let mut ann = app.agent(&token).await;
    let mut customer = app.client().await;
    let (session, id) = handed_to(&mut customer, &mut ann).await;
    let before = customer.settle().await;
    let last_seen = before
        .iter()
        .filter_map(|f| f["seq"].as_i64())
        .max()
        .unwrap();
    customer.close().await;

    write_long(&mut ann, &id, "y", 300, 3_900).await;
    let (_, body) = app
        .get_as(&format!("/api/conversations/{id}"), Some(&token))
        .await;
    let stored = body["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["seq"].as_i64())
        .max()
        .unwrap();
    assert!(stored >= last_seen + 300);

    let (seqs, welcomes) = resume_all(&app, &session, last_seen, stored).await;
    assert_eq!(seqs, ((last_seen + 1)..=stored).collect::<Vec<_>>());
    assert!(welcomes >= 2, "1.2 MB came in one welcome");
    // Resumed to the end, the socket stays open and gets what comes next live.
    let mut again = app.client().await;
    let welcome = again.hello(Some(&session), Some(stored)).await;
    assert_eq!(welcome["missed"].as_array().unwrap().len(), 0);
    ann.send(json!({"type": "message", "conversation_id": id, "text": "still there?"}))
        .await;
    let next = again.recv().await;
    assert_eq!(next["text"], "still there?", "{next}");
    assert_eq!(next["seq"].as_i64(), Some(stored + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_who_stops_reading_delays_no_one_and_misses_nothing_after_resuming() {
    let app = spawn_app_with(|s| {
        s.handoff.auto_assign = false;
        s.limits.customer_outbox = 8;
        s.limits.agent_outbox = 4096;
        s.limits.messages_per_second = 1000.0;
        s.limits.message_burst = 1000.0;
        s.limits.max_message_chars = 60_000;
    })
    .await;
    let (ann_token, bob_token) = (
        app.agent_token("Ann", &[]).await,
        app.agent_token("Bob", &[]).await,
    );
    let mut ann = app.agent(&ann_token).await;
    let mut bob = app.agent(&bob_token).await;
    // The slow customer's kernel takes only a few kilobytes; the server's may take a few
    // megabytes before its writes wait, so the messages below are long.
    let mut slow = Client::connect_from(app.port, [127, 0, 0, 2], Some(4096))
        .await
        .unwrap();
    let (slow_session, slow_id) = handed_to(&mut slow, &mut ann).await;
    let mut quick = app.client().await;
    let (_, quick_id) = handed_to(&mut quick, &mut bob).await;
    quick.settle().await;
    slow.settle().await;

    // From here on the slow customer reads nothing. Ann writes long messages to them until the
    // kernel's buffers are full (a few megabytes) and the server's writes to them wait...
    write_long(&mut ann, &slow_id, "x", 90, 50_000).await;
    // ...then goes on with short ones, which pile up in the slow customer's outbox until it is
    // full. Meanwhile Bob writes to the quick customer, who reads each message as it comes.
    let mut delays = Vec::new();
    for i in 0..40 {
        let text = format!("short {i}");
        ann.send(json!({"type": "message", "conversation_id": slow_id, "text": text}))
            .await;
        let text = format!("quick {i}");
        let started = Instant::now();
        bob.send(json!({"type": "message", "conversation_id": quick_id, "text": text}))
            .await;
        loop {
            let frame = quick.recv().await;
            if frame["text"] == text.as_str() {
                break;
            }
        }
        delays.push(started.elapsed());
        // Keep the agents' own sockets read, as a console does.
        ann.drain(Duration::from_millis(1)).await;
        bob.drain(Duration::from_millis(1)).await;
    }
    // Not a speed check (latency is measured by `frontdesk-load`, not in tests): a server that
    // waited on the slow socket would hold Bob's messages until it gave up on it, seconds later.
    delays.sort();
    let worst = *delays.last().unwrap();
    assert!(
        worst < Duration::from_secs(2),
        "another conversation's messages were held behind the slow reader: up to {worst:?} \
         (median {:?})",
        delays[delays.len() / 2]
    );

    // Everything Ann wrote is stored, whatever the slow customer read.
    ann.settle().await;
    let (_, body) = app
        .get_as(&format!("/api/conversations/{slow_id}"), Some(&ann_token))
        .await;
    let stored: Vec<i64> = body["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["seq"].as_i64().unwrap())
        .collect();
    let last = *stored.last().unwrap();
    assert_eq!(stored, (1..=last).collect::<Vec<_>>());

    // The slow socket was closed for falling behind (not left open with frames skipped). What
    // it had received is a gap-free run of frames; resuming from the last one brings the rest.
    let mut seen = Vec::new();
    let close = loop {
        match slow.recv_or_close(Duration::from_secs(10)).await {
            Ok(frame) => {
                if let Some(seq) = frame["seq"].as_i64() {
                    seen.push(seq);
                }
            }
            Err(code) => break code,
        }
    };
    assert!(matches!(close, Some(4001) | None), "closed with {close:?}");
    assert!(
        seen.len() < stored.len(),
        "the slow customer read everything?"
    );
    let first = *seen.first().unwrap();
    assert_eq!(seen, (first..first + seen.len() as i64).collect::<Vec<_>>());
    let last_seen = *seen.last().unwrap();
    let (missed, _) = resume_all(&app, &slow_session, last_seen, last).await;
    assert_eq!(missed, ((last_seen + 1)..=last).collect::<Vec<_>>());
}
