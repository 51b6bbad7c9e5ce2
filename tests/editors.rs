//! What content editors use, end to end against the real server: the routes that show customers'
//! questions and the knowledge base need a login.

mod common;

use common::spawn_app;
use serde_json::Value;

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
