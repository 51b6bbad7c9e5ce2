//! The Postgres store (issue 13): every store method gives on Postgres what it gives on SQLite,
//! appends and claims from two "nodes" (two pools on one database) stay exactly-once, and the real
//! server runs its conversations on a Postgres store: customer and agent, two agents claiming one
//! chat, a resume with `last_seq`, a restart on the same store.
//!
//! It needs a Postgres URL of a user who may create databases in FRONTDESK_TEST_POSTGRES; each
//! test makes a database of its own. `make test` starts a throwaway cluster for it
//! (scripts/with-postgres.sh). Without the variable every test here says it is skipped, and passes.

mod common;

use std::collections::BTreeSet;

use common::{spawn_app_with, TestApp};
use frontdesk::store::{Appended, NewBotTurn, NewEvent, OfferedOption, Store};
use serde_json::{json, Value};

/// The Postgres to test against, or `None` after saying that `test` is skipped.
fn postgres(test: &str) -> Option<String> {
    common::services("postgres.rs", test, &["FRONTDESK_TEST_POSTGRES"])?.pop()
}

/// A frame body that names its number, as the server's frames do.
fn body(seq: i64) -> String {
    json!({"type": "message", "seq": seq}).to_string()
}

fn event(sender: &'static str, client_id: Option<&str>, text: Option<&str>) -> NewEvent {
    NewEvent {
        sender,
        client_id: client_id.map(str::to_owned),
        seen: None,
        text: text.map(str::to_owned),
        state: None,
        responds_to: None,
        beside: Vec::new(),
        body: Box::new(body),
    }
}

/// Calls every store method with the same arguments, the clock given (so both engines see the same
/// times), and writes down what each returned: two engines that behave alike write the same lines.
async fn exercise(store: &Store) -> Vec<String> {
    let mut log = Vec::new();
    macro_rules! note {
        ($what:expr) => {
            log.push(format!("{}: {:?}", stringify!($what), $what))
        };
    }
    let visitor = r#"{"name":"Ada"}"#;
    note!(store
        .create_conversation("c1", "s1", visitor, 1_000)
        .await
        .unwrap());
    note!(store
        .create_conversation("c1", "s1", visitor, 1_001)
        .await
        .unwrap());
    note!(store
        .create_conversation("c2", "s2", "{}", 1_002)
        .await
        .unwrap());
    note!(store.conversation_exists("c1").await.unwrap());
    note!(store.conversation_exists("nope").await.unwrap());
    note!(store.conversation_by_session("s1").await.unwrap());
    note!(store.conversation_state("c1").await.unwrap());
    let text = "How do I reset my PASSWORD? 100% _urgent_";
    note!(store
        .append("c1", event("customer", Some("m1"), Some(text)), 1_010)
        .await
        .unwrap());
    note!(store
        .append("c1", event("customer", Some("m1"), Some(text)), 1_011)
        .await
        .unwrap());
    note!(store
        .append("c1", event("agent", Some("m1"), Some("x")), 1_012)
        .await
        .map_err(|e| e.to_string()));
    note!(store
        .append("c1", event("bot", None, None), 1_013)
        .await
        .unwrap());
    note!(store
        .append(
            "c2",
            event("customer", Some("m1"), Some("other chat")),
            1_014
        )
        .await
        .unwrap());
    note!(store
        .seq_of_client_id("c1", "customer", "m1")
        .await
        .unwrap());
    note!(store.events_after("c1", 0).await.unwrap());
    note!(store.timed_events("c1").await.unwrap());
    note!(store.sender_of("c1", 2).await.unwrap());
    note!(store.sender_of("c1", 9).await.unwrap());
    let turn = NewBotTurn {
        seq: 2,
        question: text,
        outcome: "dont_know",
        confidence: 0.42,
        article: Some("account/password.md"),
        handed_off: false,
    };
    note!(store.record_bot_turn("c1", turn, 1_020).await.unwrap());
    let handed = NewBotTurn {
        seq: 1,
        outcome: "answered",
        handed_off: true,
        article: None,
        ..turn
    };
    note!(store.record_bot_turn("c2", handed, 1_021).await.unwrap());
    note!(store.record_feedback("c1", 2, true, 1_022).await.unwrap());
    note!(store.record_feedback("c1", 2, false, 1_023).await.unwrap());
    note!(store.feedback("c1", 2).await.unwrap());
    note!(store.feedback("c1", 3).await.unwrap());
    note!(store
        .record_turn_signals("c1", 1, r#"{"upset":0.1}"#, 1_024)
        .await
        .unwrap());
    note!(store
        .record_turn_signals("c1", 1, r#"{"upset":0.9}"#, 1_025)
        .await
        .unwrap());
    // A bot reply with its turn and what was understood of the question, in one commit.
    let reply = NewEvent {
        beside: vec![
            Box::new(|_| Store::turn_signals_row("c2", 1, r#"{"upset":0.2}"#, 1_026)),
            Box::new(|seq| {
                let turn = NewBotTurn {
                    seq,
                    question: "and the invoice?",
                    outcome: "answered",
                    confidence: 0.5,
                    article: Some("billing.md"),
                    handed_off: false,
                };
                Store::bot_turn_row("c2", turn, 1_026)
            }),
        ],
        ..event("bot", None, Some("here it is"))
    };
    note!(store.append("c2", reply, 1_026).await.unwrap());
    note!(store.turn_signals_of("c2").await.unwrap());
    note!(store.bot_turns_of("c2").await.unwrap());
    note!(store.turn_signals_of("c1").await.unwrap());
    note!(store.bot_turns_of("c1").await.unwrap());
    note!(store.bot_stretch_start("c1").await.unwrap());
    note!(store.customer_texts("c1").await.unwrap());
    note!(store.gaps(0, 10).await.unwrap());
    note!(store.search_messages("PASSWORD? 100%", 10).await.unwrap());
    note!(store.search_messages("_urgent_", 10).await.unwrap());
    note!(store.search_messages("1%", 10).await.unwrap());
    // A backslash is a character like any other: no escape, and no error at the end.
    note!(store
        .append(
            "c2",
            event("customer", Some("m9"), Some(r"saved to C:\Users\ann\")),
            1_027
        )
        .await
        .unwrap());
    let found = store.search_messages(r"c:\users\", 10).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    note!(found);
    note!(store.search_messages(r"\u", 10).await.unwrap());
    note!(store.session_owns("c1", "s1").await.unwrap());
    note!(store.session_owns("c1", "s2").await.unwrap());

    // Accounts and tokens.
    let agent = frontdesk::store::AgentRow {
        id: "a1".into(),
        name: "Sam".into(),
        email: "sam@example.com".into(),
        role: "agent".into(),
        teams: vec!["billing".into()],
        max_chats: 3,
    };
    note!(store.create_agent(&agent, "hash", 1_030).await.unwrap());
    note!(store.create_agent(&agent, "hash", 1_031).await.unwrap());
    let other = frontdesk::store::AgentRow {
        id: "a2".into(),
        email: "bea@example.com".into(),
        ..agent.clone()
    };
    note!(store.create_agent(&other, "hash2", 1_032).await.unwrap());
    note!(store.mark_demo("a2").await.unwrap());
    note!(store.agent_by_email("sam@example.com").await.unwrap());
    note!(store.agent("a2").await.unwrap());
    note!(store
        .insert_agent_token("t1", "a1", 5_000, 1_033)
        .await
        .unwrap());
    note!(store
        .insert_agent_token("t2", "a1", 1_500, 1_034)
        .await
        .unwrap());
    note!(store
        .insert_agent_token("t3", "a2", 5_000, 1_035)
        .await
        .unwrap());
    note!(store.agent_by_token("t1", 2_000).await.unwrap());
    note!(store.agent_by_token("t2", 2_000).await.unwrap());
    note!(store.agent_by_token("zz", 2_000).await.unwrap());
    note!(store.agent_token_count("a1").await.unwrap());
    note!(store.purge_expired_tokens(2_000).await.unwrap());
    note!(store.delete_agent_token("t1").await.unwrap());
    note!(store.delete_agent_token("t1").await.unwrap());
    note!(store.disable_demo_agents(2_001).await.unwrap());
    note!(store.agent_by_token("t3", 2_002).await.unwrap());
    note!(store.enable_demo_agents().await.unwrap());
    note!(store.agents_revoked_since(2_000).await.unwrap());
    note!(store.revoke_agent_tokens("a1", 2_003).await.unwrap());
    note!(store
        .set_password("bea@example.com", "hash3", 2_004)
        .await
        .unwrap());
    note!(store
        .set_password("nobody@example.com", "hash3", 2_004)
        .await
        .unwrap());
    note!(store.disable_agent("bea@example.com", 2_005).await.unwrap());
    note!(store.agent_by_email("bea@example.com").await.unwrap());

    // Hand-offs, notes, claims.
    let reasons = json!([{"kind": "human_request"}]);
    note!(store
        .create_handoff("c1", &reasons, Some("billing"), 1, 3_000)
        .await
        .unwrap());
    note!(store
        .create_handoff("c2", &reasons, None, 0, 3_001)
        .await
        .unwrap());
    note!(store.set_state("c1", "queued", 3_002).await.unwrap());
    note!(store.set_state("c2", "queued", 3_003).await.unwrap());
    note!(store.open_handoffs().await.unwrap());
    note!(store.claim_handoff(1, "a1", 3_010).await.unwrap());
    note!(store.claim_handoff(1, "a2", 3_011).await.unwrap());
    note!(store
        .handoff_assigned(2, Some("a1"), Some("sales"), 2, 3_012)
        .await
        .unwrap());
    note!(store
        .handoff_assigned(2, None, None, 3, 3_013)
        .await
        .unwrap());
    note!(store
        .handoff_taken("c2", 2, "a2", None, 3, 3_014)
        .await
        .unwrap());
    note!(store.conversation_state("c2").await.unwrap());
    let announce = NewEvent {
        state: Some("queued"),
        ..event("system", None, None)
    };
    note!(store.append("c2", announce, 3_015).await.unwrap());
    note!(store.conversation_state("c2").await.unwrap());
    // The agent's first reply sets the hand-off's first_response_at in its own commit; the
    // second keeps it.
    for at in [3_020, 3_021] {
        let reply = NewEvent {
            responds_to: Some(1),
            ..event("agent", None, Some("on it"))
        };
        note!(store.append("c1", reply, at).await.unwrap());
    }
    note!(store.handoff_abandoned(2, 3_030).await.unwrap());
    note!(store.claim_handoff(2, "a1", 3_031).await.unwrap());
    note!(store.recent_pickup_ms(5).await.unwrap());
    note!(store
        .insert_note("c1", "a1", "Sam", "private", 3_040)
        .await
        .unwrap());
    note!(store.notes_of("c1").await.unwrap());
    note!(store.set_state("c1", "agent", 3_041).await.unwrap());
    let closing = [event("system", None, None), event("system", None, None)];
    note!(store.resolve("c1", 1, &closing, 3_050).await.unwrap());
    note!(store.handoff_rated(1, 5, Some("kind")).await.unwrap());
    note!(store.handoff_rated(1, 1, None).await.unwrap());
    note!(store.handoffs_of("c1").await.unwrap());
    note!(store.bot_stretch_start("c1").await.unwrap());
    note!(store.bot_stretch_start("c2").await.unwrap());
    note!(store.stranded_resolutions().await.unwrap());
    note!(store.conversation_summary("c1").await.unwrap());
    note!(store.list_conversations(None, 10).await.unwrap());
    note!(store.list_conversations(Some("queued"), 10).await.unwrap());

    // Tickets.
    note!(store
        .create_ticket("c2", "ada@example.com", "call me", Some("billing"), 4_000)
        .await
        .unwrap());
    note!(store
        .create_ticket("c2", "ada@example.org", "call me later", None, 4_001)
        .await
        .unwrap());
    note!(store
        .create_ticket("c1", "ada@example.com", "", None, 4_002)
        .await
        .unwrap());
    note!(store.set_ticket_status(1, "done").await.unwrap());
    note!(store.set_ticket_status(99, "done").await.unwrap());
    note!(store.tickets_page(Some("open"), None, 10).await.unwrap());
    note!(store.tickets_page(None, Some(2), 10).await.unwrap());
    note!(store.tickets(10).await.unwrap());

    // Verified identity.
    note!(store.set_customer("c1", "id:42").await.unwrap());
    note!(store.set_customer("c2", "id:42").await.unwrap());
    note!(store.customer_of("c1").await.unwrap());
    note!(store.open_conversation_of("id:42").await.unwrap());
    note!(store.conversation_by_id("c2").await.unwrap());
    note!(store
        .conversations_of_customer("id:42", "c2", 5)
        .await
        .unwrap());
    // Customer messages no turn answered, as a start reads them.
    note!(store.unanswered_messages(0, i64::MAX).await.unwrap());
    note!(store.unanswered_messages(0, 1_000).await.unwrap());
    // A second device of the verified customer joins c2 with a token of its own.
    note!(store.add_session_token("c2", "d2", 1_500).await.unwrap());
    note!(store.conversation_by_session("d2").await.unwrap());
    note!(store.session_owns("c2", "d2").await.unwrap());
    note!(store.session_owns("c1", "d2").await.unwrap());
    note!(store.conversation_by_session("nobody's").await.unwrap());
    // A conversation keeps its newest tokens: the oldest of 21 more is gone, the newest works.
    for n in 0..21 {
        store
            .add_session_token("c2", &format!("more-{n:02}"), 1_600 + n)
            .await
            .unwrap();
    }
    assert!(store.conversation_by_session("d2").await.unwrap().is_none());
    assert!(store.session_owns("c2", "more-20").await.unwrap());
    assert!(store.session_owns("c2", "more-01").await.unwrap());
    assert!(!store.session_owns("c2", "more-00").await.unwrap());
    assert!(
        store.session_owns("c2", "s2").await.unwrap(),
        "the first token stays"
    );

    // Choices.
    let options = [
        OfferedOption {
            passage: "a.md#one".into(),
            label: "One".into(),
            quote_from: 0,
        },
        OfferedOption {
            passage: "b.md".into(),
            label: "Two".into(),
            quote_from: 0,
        },
    ];
    note!(store
        .record_choices_offered("c2", 1, "which?", &options, 5_000)
        .await
        .unwrap());
    note!(store
        .record_choices_offered("c2", 1, "again", &options, 5_001)
        .await
        .unwrap());
    note!(store.choices_offered("c2", 1).await.unwrap());
    note!(store
        .record_choice_picked("c2", 1, Some("b.md"), 5_002)
        .await
        .unwrap());
    note!(store
        .record_choice_picked("c2", 1, None, 5_003)
        .await
        .unwrap());
    note!(store.choices_since(0, 10).await.unwrap());

    // The NUL character, which Postgres cannot hold in text: stored alike on both engines.
    let nul = "a NUL \0 inside";
    note!(store
        .create_conversation("c3", "s3", "{}", 6_000)
        .await
        .unwrap());
    note!(store
        .append("c3", event("customer", Some("n\0"), Some(nul)), 6_001)
        .await
        .unwrap());
    note!(store
        .append("c3", event("customer", Some("n\0"), Some(nul)), 6_002)
        .await
        .unwrap());
    note!(store.search_messages("nul \0", 10).await.unwrap());
    note!(store
        .record_bot_turn(
            "c3",
            NewBotTurn {
                seq: 1,
                question: nul,
                ..turn
            },
            6_003
        )
        .await
        .unwrap());
    note!(store
        .insert_note("c3", "a1", "S\0m", nul, 6_004)
        .await
        .unwrap());
    note!(store.notes_of("c3").await.unwrap());
    note!(store.agent_by_email("sam\0@example.com").await.unwrap());
    log
}

#[tokio::test]
async fn every_store_method_answers_on_postgres_as_it_does_on_sqlite() {
    let Some(admin) = postgres("every_store_method_answers_on_postgres_as_it_does_on_sqlite")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::connect(&format!("sqlite://{}", dir.path().join("s.db").display()))
        .await
        .unwrap();
    let pg = Store::connect(&common::fresh_postgres_database(&admin).await)
        .await
        .unwrap();
    assert_eq!((sqlite.engine(), pg.engine()), ("sqlite", "postgres"));
    let (expected, got) = (exercise(&sqlite).await, exercise(&pg).await);
    assert_eq!(expected.len(), got.len());
    for (e, g) in expected.iter().zip(&got) {
        assert_eq!(e, g, "SQLite (left) and Postgres (right) differ");
    }
}

#[tokio::test]
async fn appends_from_two_nodes_get_every_number_once_and_a_resend_is_stored_once() {
    let Some(admin) = postgres("appends_from_two_nodes_get_every_number_once") else {
        return;
    };
    let url = common::fresh_postgres_database(&admin).await;
    // Two pools on one database: two nodes, with no lock in common but the database's.
    let nodes = [
        Store::connect(&url).await.unwrap(),
        Store::connect(&url).await.unwrap(),
    ];
    nodes[0]
        .create_conversation("c", "s", "{}", 0)
        .await
        .unwrap();
    // 60 messages, each sent by both nodes at once (a widget re-sending to another node), and 60
    // frames without a client id (bot and system frames) from either.
    let mut tasks = Vec::new();
    for i in 0..60 {
        for node in &nodes {
            let store = node.clone();
            tasks.push(tokio::spawn(async move {
                let id = format!("m{i}");
                let text = format!("message {i}");
                let e = event("customer", Some(&id), Some(&text));
                (Some(id.clone()), store.append("c", e, 1).await.unwrap())
            }));
        }
        let store = nodes[i % 2].clone();
        tasks.push(tokio::spawn(async move {
            (
                None,
                store
                    .append("c", event("bot", None, None), 1)
                    .await
                    .unwrap(),
            )
        }));
    }
    let mut new_seqs = BTreeSet::new();
    let mut by_client = std::collections::HashMap::<String, Vec<Appended>>::new();
    for task in tasks {
        let (client_id, appended) = task.await.unwrap();
        if let Appended::New { seq, .. } = appended {
            assert!(new_seqs.insert(seq), "seq {seq} given twice");
        }
        if let Some(id) = client_id {
            by_client.entry(id).or_default().push(appended);
        }
    }
    assert_eq!(
        new_seqs,
        (1..=120).collect(),
        "the numbers have a gap or go too far"
    );
    for (id, both) in by_client {
        let seqs: Vec<i64> = both
            .iter()
            .map(|a| match a {
                Appended::New { seq, .. } | Appended::Duplicate { seq } => *seq,
            })
            .collect();
        let stored = both
            .iter()
            .filter(|a| matches!(a, Appended::New { .. }))
            .count();
        assert_eq!(stored, 1, "{id} stored {stored} times");
        assert_eq!(
            seqs[0], seqs[1],
            "{id}: both senders are told the same number"
        );
    }
    let row = nodes[1].conversation_by_id("c").await.unwrap().unwrap();
    assert_eq!(row.last_seq, 120);
    assert_eq!(nodes[1].events_after("c", 0).await.unwrap().len(), 120);
}

#[tokio::test]
async fn of_two_nodes_claiming_one_hand_off_exactly_one_wins() {
    let Some(admin) = postgres("of_two_nodes_claiming_one_hand_off_exactly_one_wins") else {
        return;
    };
    let url = common::fresh_postgres_database(&admin).await;
    let nodes = [
        Store::connect(&url).await.unwrap(),
        Store::connect(&url).await.unwrap(),
    ];
    let agent = |id: &str| frontdesk::store::AgentRow {
        id: id.into(),
        name: id.into(),
        email: format!("{id}@example.com"),
        role: "agent".into(),
        teams: vec![],
        max_chats: 3,
    };
    for id in ["ann", "bob"] {
        nodes[0].create_agent(&agent(id), "h", 0).await.unwrap();
    }
    for round in 0..30 {
        let conversation = format!("c{round}");
        nodes[0]
            .create_conversation(&conversation, &conversation, "{}", 0)
            .await
            .unwrap();
        let handoff = nodes[0]
            .create_handoff(&conversation, &json!([]), None, 0, 0)
            .await
            .unwrap();
        let (ann, bob) = (nodes[0].clone(), nodes[1].clone());
        let (a, b) = tokio::join!(
            tokio::spawn(async move { ann.claim_handoff(handoff, "ann", 1).await.unwrap() }),
            tokio::spawn(async move { bob.claim_handoff(handoff, "bob", 1).await.unwrap() }),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(
            a ^ b,
            "round {round}: ann {a}, bob {b}: exactly one must win"
        );
        let holder = nodes[1].handoffs_of(&conversation).await.unwrap()[0]
            .agent_id
            .clone();
        assert_eq!(holder.as_deref(), Some(if a { "ann" } else { "bob" }));
    }
}

/// The server on a fresh Postgres database, agents assigned by claim only, customers allowed to
/// type faster than people do.
async fn app_on_postgres(admin: &str) -> TestApp {
    let url = common::fresh_postgres_database(admin).await;
    spawn_app_with(move |s| {
        s.store.url = url;
        s.handoff.auto_assign = false;
        s.limits.message_burst = 50.0;
    })
    .await
}

/// The next frame of `customer` that `pred` accepts, skipping the others (status, system
/// messages, typing).
async fn next_frame(customer: &mut common::Client, pred: impl Fn(&Value) -> bool) -> Value {
    loop {
        let frame = customer.recv().await;
        if pred(&frame) {
            return frame;
        }
    }
}

#[tokio::test]
async fn on_postgres_a_customer_and_an_agent_chat_and_each_message_arrives_once() {
    let Some(admin) = postgres("on_postgres_a_customer_and_an_agent_chat") else {
        return;
    };
    let app = app_on_postgres(&admin).await;
    assert_eq!(app.store.engine(), "postgres");
    let token = app.agent_token("Sam", &[]).await;
    let mut sam = app.agent(&token).await;
    let mut customer = app.client().await;
    let welcome = customer.hello(None, None).await;
    let id = welcome["conversation_id"].as_str().unwrap().to_owned();
    customer.send(json!({"type": "request_human"})).await;
    assert_eq!(customer.recv().await["state"], "queued");
    sam.wait_queue(|q| !q.is_empty()).await;
    sam.send(json!({"type": "claim", "conversation_id": id}))
        .await;
    sam.next("assigned").await;

    for i in 0..5 {
        let text = format!("customer says {i}");
        customer
            .send(json!({"type": "message", "client_id": format!("m{i}"), "text": text}))
            .await;
        let seen = sam.next_event(|f| f["from"] == "customer").await;
        assert_eq!(seen["text"], text.as_str());
        let text = format!("agent says {i}");
        sam.send(json!({"type": "message", "conversation_id": id, "text": text, "client_id": format!("a{i}")}))
            .await;
        let from_agent = next_frame(&mut customer, |f| f["from"] == "agent").await;
        assert_eq!(from_agent["text"], text.as_str());
    }
    // A message re-sent (the ack was lost) is acknowledged with its number, not delivered again.
    customer
        .send(json!({"type": "message", "client_id": "m0", "text": "customer says 0"}))
        .await;
    let acks: Vec<Value> = customer.settle().await;
    assert!(
        sam.settle()
            .await
            .iter()
            .all(|f| f["frame"]["text"] != "customer says 0"),
        "a re-sent message reached the agent twice"
    );
    assert!(
        acks.iter()
            .any(|f| f["type"] == "ack" && f["client_id"] == "m0"),
        "{acks:?}"
    );

    // The store has each message once, numbered without a gap.
    let frames: Vec<Value> = app
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
}

#[tokio::test]
async fn on_postgres_of_two_agents_claiming_one_chat_exactly_one_wins() {
    let Some(admin) = postgres("on_postgres_of_two_agents_claiming_one_chat") else {
        return;
    };
    let app = app_on_postgres(&admin).await;
    let (t1, t2) = (
        app.agent_token("Ann", &[]).await,
        app.agent_token("Bob", &[]).await,
    );
    let mut ann = app.agent(&t1).await;
    let mut bob = app.agent(&t2).await;
    let mut customer = app.client().await;
    let welcome = customer.hello(None, None).await;
    let id = welcome["conversation_id"].as_str().unwrap().to_owned();
    customer.send(json!({"type": "request_human"})).await;
    customer.recv().await;
    let (a, b) = common::race_to_claim(&mut ann, &mut bob, &id).await;
    let mut types = [a["type"].as_str().unwrap(), b["type"].as_str().unwrap()];
    types.sort();
    assert_eq!(types, ["assigned", "claim_failed"], "{a} {b}");
    let winner = if a["type"] == "assigned" {
        "ann"
    } else {
        "bob"
    };
    let handoffs = app.store.handoffs_of(&id).await.unwrap();
    let holder = app
        .store
        .agent(handoffs[0].agent_id.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(holder.unwrap().email, format!("{winner}@example.com"));
}

#[tokio::test]
async fn on_postgres_a_customer_resumes_with_last_seq_and_a_restart_keeps_the_chat() {
    let Some(admin) = postgres("on_postgres_a_customer_resumes_and_a_restart_keeps_the_chat")
    else {
        return;
    };
    let app = app_on_postgres(&admin).await;
    let token = app.agent_token("Sam", &[]).await;
    let mut sam = app.agent(&token).await;
    let mut customer = app.client().await;
    let welcome = customer.hello(None, None).await;
    let session = welcome["session"].as_str().unwrap().to_owned();
    let id = welcome["conversation_id"].as_str().unwrap().to_owned();
    customer.send(json!({"type": "request_human"})).await;
    sam.wait_queue(|q| !q.is_empty()).await;
    sam.send(json!({"type": "claim", "conversation_id": id}))
        .await;
    sam.next("assigned").await;
    let joined = next_frame(&mut customer, |f| f["state"] == "agent").await;
    let last_seq = joined["seq"].as_i64().unwrap();

    // The customer's network drops; the agent writes meanwhile.
    customer.close().await;
    for i in 0..3 {
        sam.send(json!({"type": "message", "conversation_id": id, "text": format!("while away {i}"), "client_id": format!("a{i}")}))
            .await;
        sam.next_event(|f| f["text"] == format!("while away {i}").as_str())
            .await;
    }
    let mut back = app.client().await;
    let welcome = back.hello(Some(&session), Some(last_seq)).await;
    let missed: Vec<&str> = welcome["missed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["text"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        missed,
        ["while away 0", "while away 1", "while away 2"],
        "{welcome}"
    );
    let seen_last = welcome["missed"][2]["seq"].as_i64().unwrap();
    assert_eq!(seen_last, last_seq + 3);

    // The server restarts on the same Postgres store: the chat is still Sam's, and goes on.
    drop((sam, back));
    let app = app.restart().await;
    assert_eq!(app.store.engine(), "postgres");
    let mut sam = app.agent(&token).await;
    sam.next("queue").await;
    let mut customer = app.client().await;
    let welcome = customer.hello(Some(&session), Some(seen_last)).await;
    assert_eq!(welcome["conversation_id"], id.as_str());
    assert_eq!(welcome["missed"], json!([]), "{welcome}");
    sam.send(json!({"type": "message", "conversation_id": id, "text": "Back after the restart.", "client_id": "a9"}))
        .await;
    let reply = next_frame(&mut customer, |f| f["from"] == "agent").await;
    assert_eq!(
        (reply["text"].as_str(), reply["seq"].as_i64()),
        (Some("Back after the restart."), Some(seen_last + 1))
    );
    customer
        .send(json!({"type": "message", "client_id": "m9", "text": "Great, thanks"}))
        .await;
    let ack = customer.recv().await;
    assert_eq!(
        (ack["type"].as_str(), ack["seq"].as_i64()),
        (Some("ack"), Some(seen_last + 2))
    );
}

/// What an operator reads back after a migration: the same answers from both stores.
async fn read_back(store: &Store) -> Vec<String> {
    vec![
        format!("{:?}", store.events_after("c1", 0).await.unwrap()),
        format!("{:?}", store.timed_events("c2").await.unwrap()),
        format!("{:?}", store.list_conversations(None, 10).await.unwrap()),
        format!("{:?}", store.handoffs_of("c1").await.unwrap()),
        format!("{:?}", store.handoffs_of("c2").await.unwrap()),
        format!("{:?}", store.notes_of("c1").await.unwrap()),
        format!("{:?}", store.bot_turns_of("c1").await.unwrap()),
        format!("{:?}", store.turn_signals_of("c1").await.unwrap()),
        format!("{:?}", store.gaps(0, 10).await.unwrap()),
        format!("{:?}", store.tickets(10).await.unwrap()),
        format!("{:?}", store.choices_since(0, 10).await.unwrap()),
        format!(
            "{:?}",
            store.agent_by_email("sam@example.com").await.unwrap()
        ),
        format!("{:?}", store.agent("a2").await.unwrap()),
        format!("{:?}", store.agent_by_token("t3", 2_000).await.unwrap()),
        format!(
            "{:?}",
            store
                .conversations_of_customer("id:42", "c2", 5)
                .await
                .unwrap()
        ),
        format!("{:?}", store.conversation_by_session("s2").await.unwrap()),
        format!("{:?}", store.conversation_by_session("d2").await.unwrap()),
    ]
}

#[tokio::test]
async fn store_migrate_copies_a_sqlite_store_into_postgres_and_it_carries_on_there() {
    let Some(admin) = postgres("store_migrate_copies_a_sqlite_store_into_postgres") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = format!("sqlite://{}", dir.path().join("single-node.db").display());
    let sqlite = Store::connect(&sqlite_url).await.unwrap();
    exercise(&sqlite).await;
    // A message stored twice (sent again with a `seen` at its first copy's number, which no
    // widget does): SQLite keeps no index of client ids to refuse it, and the copy carries both.
    let twice = || event("customer", Some("twice"), Some("again?"));
    let first = sqlite.append("c1", twice(), 5_000).await.unwrap();
    let Appended::New { seq, .. } = first else {
        panic!("{first:?}")
    };
    let misstated = NewEvent {
        seen: Some(seq),
        ..twice()
    };
    let second = sqlite.append("c1", misstated, 5_001).await.unwrap();
    assert!(matches!(second, Appended::New { .. }), "{second:?}");
    let pg_url = common::fresh_postgres_database(&admin).await;
    // The defaults alone, whatever frontdesk.toml the working directory holds.
    let settings_dir = tempfile::tempdir().expect("temp dir");
    let empty_settings = settings_dir.path().join("frontdesk.toml");
    std::fs::write(&empty_settings, "").expect("an empty settings file");
    let migrate = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_frontdesk"))
            .args([
                "--config",
                empty_settings.to_str().expect("a UTF-8 path"),
                "store",
                "migrate",
            ])
            .args(["--from", &sqlite_url, "--to", &pg_url])
            .output()
            .expect("frontdesk runs")
    };
    let out = migrate();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("into the postgres store"), "{stdout}");
    assert!(stdout.contains("events  13 rows"), "{stdout}");

    let pg = Store::connect(&pg_url).await.unwrap();
    let (before, after) = (read_back(&sqlite).await, read_back(&pg).await);
    for (s, p) in before.iter().zip(&after) {
        assert_eq!(
            s, p,
            "SQLite (left) and the migrated Postgres (right) differ"
        );
    }

    // It goes on where the single node stopped: the next numbers, the next ids.
    let next = pg
        .append("c2", event("customer", Some("m2"), Some("after")), 9_000)
        .await
        .unwrap();
    assert!(matches!(next, Appended::New { seq: 5, .. }), "{next:?}");
    let handoff = pg
        .create_handoff("c2", &json!([]), None, 0, 9_001)
        .await
        .unwrap();
    assert_eq!(handoff, 3, "the ids go on after the copied ones");
    let ticket = pg
        .create_ticket("c2", "x@example.com", "", None, 9_002)
        .await
        .unwrap();
    assert_eq!(ticket, 3);

    // A second run refuses: the target is not empty, and nothing was written twice.
    let again = migrate();
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success());
    assert!(
        stderr.contains("migrate into an empty database"),
        "{stderr}"
    );
    assert_eq!(pg.handoffs_of("c1").await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_postgres_that_cannot_be_reached_is_named_without_its_password_and_says_what_to_check() {
    // Port 1 on loopback: nothing listens there. Needs no Postgres, so it runs everywhere.
    let refused = Store::connect("postgres://frontdesk:hunter2@127.0.0.1:1/frontdesk")
        .await
        .err()
        .expect("nothing listens on port 1")
        .to_string();
    assert!(refused.contains("127.0.0.1:1"), "{refused}");
    assert!(refused.contains("check store.url"), "{refused}");
    assert!(
        !refused.contains("hunter2"),
        "the password is printed: {refused}"
    );
}
