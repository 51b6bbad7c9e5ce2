//! What content editors use, end to end against the real server: the routes that show customers'
//! questions and the knowledge base need a login, and the gaps report lists what customers asked
//! over the WebSocket that the bot could not answer.

mod common;

use common::spawn_app;
use serde_json::{json, Value};

/// The editors' and operators' routes, each with a valid request.
const PROTECTED: [&str; 4] = [
    "/api/reports/gaps",
    "/api/explain?q=how+do+I+descale+my+brewer",
    "/api/kb/articles",
    "/api/kb/search?q=refund",
];

async fn get_raw(app: &common::TestApp, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(app.http(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("request")
}

#[tokio::test]
async fn editors_routes_refuse_a_missing_or_bad_token_and_answer_a_good_one() {
    let app = spawn_app().await;
    let mut customer = app.client().await;
    let welcome = customer.hello(None, None).await;
    let session = welcome["session"].as_str().unwrap().to_owned();
    let token = app.agent_token("Eda", &[]).await;

    for path in PROTECTED {
        let missing = get_raw(&app, path, None).await;
        assert_eq!(missing.status().as_u16(), 401, "{path} without a token");
        assert!(
            missing
                .headers()
                .get("www-authenticate")
                .is_some_and(|v| v.to_str().unwrap().starts_with("Bearer")),
            "{path}: {:?}",
            missing.headers()
        );
        let body: Value = missing.json().await.unwrap();
        assert_eq!(body["code"], "unauthorized", "{path}: {body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("/api/agent/login") && message.contains("Bearer"),
            "the message says how to log in: {message}"
        );

        for bad in ["not-a-token", session.as_str()] {
            let (status, body) = app.get_as(path, Some(bad)).await;
            assert_eq!(
                (status, body["code"].as_str()),
                (401, Some("token_expired")),
                "{path} with {bad:?}: {body}"
            );
            assert!(body["message"].as_str().unwrap().contains("log in again"));
        }

        let (status, body) = app.get_as(path, Some(&token)).await;
        assert_eq!(status, 200, "{path} with a good token: {body}");
    }

    // A question is checked only once the caller is known.
    let (status, _) = app.get_as("/api/explain?q=", None).await;
    assert_eq!(status, 401);
    let (status, body) = app.get_as("/api/explain?q=", Some(&token)).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("empty_query")));

    // What "Try a question" shows: the reply with its article, the thresholds, the hand-off.
    let (_, explained) = app
        .get_as(
            "/api/explain?q=I+was+charged+twice+for+one+order",
            Some(&token),
        )
        .await;
    assert_eq!(explained["reply"]["outcome"], "answered", "{explained}");
    assert_eq!(
        explained["reply"]["sources"][0]["title"],
        "Why was I charged twice?"
    );
    assert!(explained["thresholds"]["answer"].as_f64().unwrap() > 0.0);
    assert_eq!(explained["decision"]["escalate"], false);

    // Health stays public and shows counts only.
    let (status, health) = app.get("/api/health").await;
    assert_eq!(status, 200);
    let keys: Vec<&str> = health
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["articles", "kb_problems", "status"], "{health}");
}

#[tokio::test]
async fn a_question_the_bot_could_not_answer_is_in_the_gaps_report_grouped_with_its_count() {
    let app = spawn_app().await;
    let before = frontdesk::clock::now_ms();

    let mut first = app.client().await;
    first.hello(None, None).await;
    let (_, answer) = first
        .ask("q1", "Can I bring my dog to the roastery open day?")
        .await;
    assert!(
        answer["text"].as_str().unwrap().contains("don't know"),
        "{answer}"
    );
    // Small talk and good answers are not gaps.
    first.ask("q2", "hello").await;
    first.ask("q3", "How do I reset my password?").await;

    let mut second = app.client().await;
    second.hello(None, None).await;
    second
        .ask("q1", "can I bring my DOG to the roastery open day")
        .await;

    let (status, report) = app.api("/api/reports/gaps").await;
    assert_eq!(status, 200, "{report}");
    let questions = report["questions"].as_array().unwrap();
    assert_eq!(questions.len(), 1, "{report}");
    let dog = &questions[0];
    assert_eq!(
        dog["question"], "can I bring my DOG to the roastery open day",
        "as last asked"
    );
    assert_eq!(dog["outcome"], "dont_know");
    assert_eq!(
        (dog["count"].as_u64(), dog["conversations"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(dog["outcomes"], json!({"dont_know": 2}));
    assert!(dog["last_at"].as_i64().unwrap() >= dog["first_at"].as_i64().unwrap());
    assert!(dog["first_at"].as_i64().unwrap() >= before);
    assert_eq!(report["asked"], 2);
    assert_eq!(report["gaps"].as_array().unwrap().len(), 2);
    assert_eq!(
        report["gaps"][1]["question"],
        "Can I bring my dog to the roastery open day?"
    );

    // The time range: nothing asked after now.
    let later = frontdesk::clock::now_ms() + 1000;
    let (_, empty) = app.api(&format!("/api/reports/gaps?since={later}")).await;
    assert_eq!(empty["questions"], json!([]), "{empty}");
    assert_eq!(empty["since"], later);
}

#[tokio::test]
async fn a_question_handed_to_a_person_after_the_bot_looked_is_a_gap_too() {
    let app = spawn_app().await;
    let mut customer = app.client().await;
    customer.hello(None, None).await;
    customer
        .ask("a", "Who won the football world cup in 1998?")
        .await;
    customer
        .ask("b", "Which planet is the largest in the solar system?")
        .await;
    // A third unanswerable question in a row goes to a person instead of a third "don't know".
    customer
        .send(json!({"type": "message", "client_id": "c", "text": "What is the boiling point of mercury?"}))
        .await;
    assert_eq!(customer.recv().await["type"], "ack");
    let status = customer.recv().await;
    assert_eq!(
        (status["type"].as_str(), status["state"].as_str()),
        (Some("status"), Some("queued")),
        "{status}"
    );

    let (_, report) = app.api("/api/reports/gaps").await;
    let shown: Vec<(&str, &str)> = report["questions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            (
                q["question"].as_str().unwrap(),
                q["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("What is the boiling point of mercury?", "handed_off"),
            (
                "Which planet is the largest in the solar system?",
                "dont_know"
            ),
            ("Who won the football world cup in 1998?", "dont_know"),
        ],
        "{report}"
    );

    // The agent's context packet lists only articles the customer was actually shown.
    let id = report["questions"][0]["conversation_id"].as_str().unwrap();
    let token = app.agent_token("Sam", &[]).await;
    let (_, context) = app
        .get_as(&format!("/api/conversations/{id}/context"), Some(&token))
        .await;
    assert_eq!(context["articles"], json!([]), "{context}");
}

#[tokio::test]
async fn an_editor_account_reads_the_reports_but_never_takes_or_reads_a_chat() {
    let app = spawn_app().await;
    let editor = app.editor_token().await.to_owned();
    assert_eq!(app.get_as("/api/reports/gaps", Some(&editor)).await.0, 200);
    for path in ["/api/conversations", "/api/tickets", "/api/agents"] {
        let (status, body) = app.get_as(path, Some(&editor)).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("agent account"),
            "{body}"
        );
    }

    // The agent socket refuses an editor, so a conversation is never assigned to one.
    let mut console = common::AgentClient::connect_unauthenticated(app.port).await;
    console.send(json!({"type": "auth", "token": editor})).await;
    let refused = console.next("error").await;
    assert_eq!(refused["code"], "not_an_agent", "{refused}");
    let mut customer = app.client().await;
    let welcome = customer.hello(None, None).await;
    customer.send(json!({"type": "request_human"})).await;
    let status = customer.recv().await;
    assert_eq!(
        (
            status["state"].as_str(),
            status["agents_available"].as_bool()
        ),
        (Some("queued"), Some(false)),
        "an editor is not an agent who could answer: {status}"
    );
    let id = welcome["conversation_id"].as_str().unwrap();
    let (status, _) = app
        .get_as(&format!("/api/conversations/{id}"), Some(&editor))
        .await;
    assert_eq!(status, 403, "an editor does not read customers' chats");
}
