//! Property tests: whatever a client sends (arbitrary text, arbitrary JSON, every frame type with
//! arbitrary field values) and whatever an editor writes in a markdown file, nothing panics and
//! no connection dies; and a widget that reconnects at any point misses no frame and sees none
//! twice.

mod common;

use std::collections::BTreeMap;

use frontdesk::protocol::agent::AgentFrame;
use frontdesk::protocol::customer::{check_message, ClientFrame, Visitor};
use frontdesk::protocol::{decode, ErrorCode};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const CUSTOMER_TYPES: [&str; 9] = [
    "hello",
    "message",
    "typing",
    "feedback",
    "request_human",
    "rate",
    "leave_email",
    "ping",
    "dance",
];
const CUSTOMER_FIELDS: [&str; 14] = [
    "session",
    "last_seq",
    "visitor",
    "protocol",
    "client_id",
    "text",
    "on",
    "seq",
    "helpful",
    "score",
    "comment",
    "email",
    "message",
    "id",
];
const AGENT_TYPES: [&str; 10] = [
    "auth", "presence", "claim", "message", "note", "typing", "transfer", "resolve", "ping", "x",
];
const AGENT_FIELDS: [&str; 9] = [
    "token",
    "status",
    "conversation_id",
    "text",
    "client_id",
    "on",
    "to_agent",
    "to_team",
    "note",
];

/// A frame of one of the given types with any of the given fields, each any JSON.
fn frame_like(
    types: &'static [&'static str],
    fields: &'static [&'static str],
) -> impl Strategy<Value = String> {
    (
        prop::sample::select(types),
        prop::collection::btree_map(prop::sample::select(fields), any_json(), 0..5),
    )
        .prop_map(|(kind, fields)| {
            let mut frame: serde_json::Map<String, Value> =
                fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            frame.insert("type".into(), kind.into());
            Value::Object(frame).to_string()
        })
}

/// Anything a client might send as a text frame.
fn client_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,200}",
        any_json().prop_map(|v| v.to_string()),
        frame_like(&CUSTOMER_TYPES, &CUSTOMER_FIELDS),
        frame_like(&CUSTOMER_TYPES, &CUSTOMER_FIELDS),
    ]
}

proptest! {
    #![proptest_config(Config { cases: 512, ..Config::default() })]

    #[test]
    fn decoding_any_client_text_never_panics(text in client_text()) {
        match decode::<ClientFrame>(&text, 16 * 1024) {
            Ok(_) => {}
            Err(refusal) => prop_assert!(matches!(refusal.code, ErrorCode::BadFrame | ErrorCode::FrameTooLarge)),
        }
        let _ = decode::<AgentFrame>(&text, 64 * 1024);
    }

    #[test]
    fn decoding_any_agent_frame_never_panics(text in frame_like(&AGENT_TYPES, &AGENT_FIELDS)) {
        let _ = decode::<AgentFrame>(&text, 64 * 1024);
    }

    #[test]
    fn messages_and_visitors_are_checked_without_panicking(
        client_id in ".{0,200}", text in ".{0,300}", max in 0usize..100,
        name in ".{0,300}", page in ".{0,600}",
    ) {
        if let Ok(kept) = check_message(&client_id, &text, max) {
            prop_assert!(!kept.is_empty() && kept.chars().count() <= max);
        }
        let v = Visitor { name: Some(name), page: Some(page), ..Visitor::default() }.truncated();
        prop_assert!(v.name.map_or(0, |n| n.chars().count()) <= Visitor::MAX_NAME);
        prop_assert!(v.page.map_or(0, |p| p.chars().count()) <= Visitor::MAX_PAGE);
    }

    #[test]
    fn the_markdown_loader_never_panics(
        front in prop::option::of("(title|tags|url|[a-z]{1,6}): .{0,40}"),
        body in "(#{0,4} .{0,30}\n|<[a-zA-Z/!]{0,8}.{0,20}>|```.{0,10}\n|import .{0,20}\n|[-*] .{0,20}\n|.{0,60}\n){0,12}",
        junk in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let source = match &front {
            Some(f) => format!("---\n{f}\n---\n{body}"),
            None => body.clone(),
        };
        let _ = frontdesk::kb::parse("a/b.md", &source);
        let _ = frontdesk::kb::render_html("a/b.md", &source, |p| p.len() % 2 == 0);
        let lossy = String::from_utf8_lossy(&junk);
        let _ = frontdesk::kb::parse("junk.md", &format!("{source}{lossy}"));
    }
}

/// One server for the socket properties (the runtime lives as long as the test).
fn server() -> (tokio::runtime::Runtime, common::TestApp) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = rt.block_on(common::spawn_app_with(|s| {
        s.limits.messages_per_second = 1000.0;
        s.limits.message_burst = 1000.0;
        s.limits.new_conversations_per_address_per_minute = 1e6;
        s.limits.max_queued = 1_000_000;
        s.limits.queued_per_address = 1_000_000;
    }));
    (rt, app)
}

#[test]
fn no_client_frame_kills_its_connection_or_the_server() {
    let (rt, app) = server();
    let mut runner = TestRunner::new(Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    });
    let frames = prop::collection::vec(client_text(), 1..4);
    runner
        .run(&frames, |texts| {
            rt.block_on(async {
                let mut client = app.client().await;
                for text in &texts {
                    client.send_raw(text.clone()).await;
                }
                // The connection still answers: every frame before the ping was handled.
                client.settle().await;
                client.close().await;
            });
            Ok(())
        })
        .unwrap();
    // And the server serves everyone else as before.
    rt.block_on(async {
        let mut customer = app.client().await;
        customer.hello(None, None).await;
        customer.ask("after", "How do I reset my password?").await;
    });
}

/// What a widget does between two points where its connection may drop.
#[derive(Debug, Clone)]
enum Step {
    /// Send a message and read until everything it caused has arrived.
    Send,
    /// Send a message and lose the connection at once, before any answer.
    SendAndDrop,
    /// Lose the connection.
    Drop,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            3 => Just(Step::Send),
            2 => Just(Step::SendAndDrop),
            1 => Just(Step::Drop),
        ],
        1..7,
    )
}

/// The frames a widget has seen, by `seq`; seeing one twice fails the property. As the widget
/// does, an `ack` counts as having seen the customer's own message (which is not echoed to the
/// socket that sent it).
#[derive(Default)]
struct Seen(BTreeMap<i64, Value>);

impl Seen {
    fn take(&mut self, frame: &Value) -> Result<(), TestCaseError> {
        let Some(seq) = frame["seq"].as_i64() else {
            return Ok(());
        };
        if frame["type"] == "ack" {
            let own = json!({"from": "customer", "client_id": frame["client_id"]});
            let known = self.0.entry(seq).or_insert(own);
            prop_assert_eq!(&known["client_id"], &frame["client_id"]);
            return Ok(());
        }
        prop_assert!(
            self.0.insert(seq, frame.clone()).is_none(),
            "seq {seq} arrived twice: {frame}"
        );
        Ok(())
    }

    fn last(&self) -> i64 {
        self.0.keys().last().copied().unwrap_or(0)
    }
}

#[test]
fn a_reconnect_at_any_point_never_loses_or_duplicates_a_frame() {
    let (rt, app) = server();
    let mut runner = TestRunner::new(Config {
        cases: 24,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&steps(), |steps| {
            rt.block_on(reconnecting_widget(&app, steps))
        })
        .unwrap();
}

async fn reconnecting_widget(app: &common::TestApp, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let mut seen = Seen::default();
    let mut client = app.client().await;
    let welcome = client.hello(None, None).await;
    let session = welcome["session"].as_str().unwrap().to_owned();
    // Each unacknowledged message with the `seen` it was first sent with, as the widget keeps it.
    let mut pending: Vec<(String, i64)> = Vec::new();
    let mut sent = 0;
    for step in steps {
        let message = |n: usize, seen: i64| json!({"type": "message", "client_id": format!("m{n}"), "seen": seen, "text": format!("Where is my order {n}?")});
        match step {
            Step::Send | Step::SendAndDrop => {
                sent += 1;
                pending.push((format!("m{sent}"), seen.last()));
                client.send(message(sent, seen.last())).await;
            }
            Step::Drop => {}
        }
        if matches!(step, Step::Send) {
            for frame in client.settle().await {
                seen.take(&frame)?;
                if frame["type"] == "ack" {
                    pending.retain(|(p, _)| frame["client_id"] != p.as_str());
                }
            }
            continue;
        }
        // The connection drops; the widget comes back with what it saw, and sends again what
        // was never acknowledged, under the same ids.
        client.close().await;
        client = app.client().await;
        let welcome = client.hello(Some(&session), Some(seen.last())).await;
        for frame in welcome["missed"].as_array().unwrap() {
            seen.take(frame)?;
        }
        for (id, first_seen) in pending.clone() {
            let n: usize = id[1..].parse().unwrap();
            client.send(message(n, first_seen)).await;
        }
        for frame in client.settle().await {
            seen.take(&frame)?;
            if frame["type"] == "ack" {
                pending.retain(|(p, _)| frame["client_id"] != p.as_str());
            }
        }
        prop_assert!(pending.is_empty(), "unacknowledged: {pending:?}");
    }
    // A last reconnect from what was seen brings the rest; then the widget has it all, in order.
    client.close().await;
    let mut client = app.client().await;
    let welcome = client.hello(Some(&session), Some(seen.last())).await;
    for frame in welcome["missed"].as_array().unwrap() {
        seen.take(frame)?;
    }
    let last = welcome["last_seq"].as_i64().unwrap();
    prop_assert_eq!(
        seen.0.keys().copied().collect::<Vec<_>>(),
        (1..=last).collect::<Vec<_>>()
    );
    let mut ids: Vec<&str> = seen
        .0
        .values()
        .filter(|f| f["from"] == "customer")
        .map(|f| f["client_id"].as_str().unwrap())
        .collect();
    ids.sort();
    let mut expected: Vec<String> = (1..=sent).map(|n| format!("m{n}")).collect();
    expected.sort();
    prop_assert_eq!(ids, expected.iter().map(String::as_str).collect::<Vec<_>>());
    client.close().await;
    Ok(())
}
