//! Trust (issue 12) as an attacker and an operator meet it: logins that resist guessing, demo
//! accounts that do not outlive their setting, tokens that can be revoked and whose sockets close.

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{nlu, spawn_app_with, spawn_app_with_seam, AgentClient, TestApp};
use frontdesk::accounts::{self, NewAccount, Role};
use frontdesk::escalation::{Scripted, Understand};
use frontdesk::nlu::{Analysis, NluError, Understanding};
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery";

async fn create(app: &TestApp, email: &str, role: Role) {
    accounts::create(
        &app.store,
        NewAccount {
            name: "Sam".into(),
            email: email.into(),
            password: PASSWORD.into(),
            role,
            teams: Vec::new(),
            max_chats: 3,
        },
    )
    .await
    .expect("account created");
}

/// Status, `Retry-After` and body of a login attempt.
async fn login(app: &TestApp, email: &str, password: &str) -> (u16, Option<u64>, Value) {
    post_login(app, json!({"email": email, "password": password})).await
}

/// A login attempt bringing the device token `device`: status and body.
async fn login_from(app: &TestApp, email: &str, password: &str, device: &str) -> (u16, Value) {
    let (status, _, body) = post_login(
        app,
        json!({"email": email, "password": password, "device": device}),
    )
    .await;
    (status, body)
}

/// Status, `Retry-After` and body of a login request with `body`.
async fn post_login(app: &TestApp, body: Value) -> (u16, Option<u64>, Value) {
    let response = reqwest::Client::new()
        .post(app.http("/api/agent/login"))
        .json(&body)
        .send()
        .await
        .expect("login answered");
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    (status, retry, response.json().await.unwrap_or(Value::Null))
}

async fn post(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(app.http(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("answered");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn twenty_wrong_passwords_in_a_row_are_throttled_and_the_right_one_works_later() {
    let app = spawn_app_with(|s| {
        s.agents.login_attempts_per_account = 5;
        s.agents.login_account_backoff_seconds = 2.0;
    })
    .await;
    create(&app, "sam@example.com", Role::Agent).await;
    let mut wrong = 0;
    let mut throttled = Vec::new();
    for i in 0..20 {
        let (status, retry, body) = login(&app, "sam@example.com", &format!("guess {i}")).await;
        match status {
            401 => wrong += 1,
            429 => {
                assert_eq!(body["code"], "too_many_attempts");
                throttled.push(retry.expect("a 429 says when to come back"));
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    // Five in the burst, and at most one more for each back-off period the loop took.
    assert!(
        wrong >= 5 && throttled.len() >= 10,
        "{wrong} wrong, {throttled:?}"
    );
    // While throttled, even the right password is not tried.
    let (status, retry, _) = login(&app, "sam@example.com", PASSWORD).await;
    assert_eq!(status, 429);
    // After the back-off it works.
    tokio::time::sleep(Duration::from_secs(retry.unwrap())).await;
    let (status, _, body) = login(&app, "sam@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["token"].is_string());
}

#[tokio::test]
async fn someone_guessing_an_agents_password_does_not_keep_out_the_browser_they_signed_in_on() {
    let app = spawn_app_with(|s| {
        s.agents.login_attempts_per_account = 5;
        s.agents.login_account_backoff_seconds = 600.0;
    })
    .await;
    create(&app, "sam@example.com", Role::Agent).await;
    create(&app, "kim@example.com", Role::Agent).await;
    let (status, _, body) = login(&app, "sam@example.com", PASSWORD).await;
    assert_eq!(status, 200, "{body}");
    let device = body["device"].as_str().expect("a device token").to_owned();
    let (_, _, body) = login(&app, "kim@example.com", PASSWORD).await;
    let kims_device = body["device"].as_str().expect("a device token").to_owned();

    // Someone who knows Sam's email guesses until the account's throttle refuses everyone...
    for i in 0..8 {
        let (status, _, _) = login(&app, "Sam@example.com", &format!("guess {i}")).await;
        assert!(status == 401 || status == 429, "{status}");
    }
    assert_eq!(login(&app, "sam@example.com", PASSWORD).await.0, 429);
    // ... but not Sam's own browser, which signed in before.
    let (status, body) = login_from(&app, "sam@example.com", PASSWORD, &device).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["token"].is_string());
    let renewed = body["device"]
        .as_str()
        .expect("a new device token")
        .to_owned();
    assert_ne!(renewed, device);
    // A device token made up, altered, or another account's is no way around the throttle.
    let mut altered = device.clone();
    let last = altered.pop().expect("not empty");
    altered.push(if last == '0' { '1' } else { '0' });
    for other in [
        "d1.00000000000000000000000000000000.99999999999999.00",
        &altered,
        &kims_device,
    ] {
        let (status, body) = login_from(&app, "sam@example.com", PASSWORD, other).await;
        assert_eq!(status, 429, "{other}: {body}");
    }
    // A wrong password from the known browser is still wrong; after three the browser is no
    // longer trusted, though its own budget (five) is not used up: someone else at it gets three
    // guesses, not a budget of their own.
    for _ in 0..3 {
        let (status, _) = login_from(&app, "sam@example.com", "typo", &renewed).await;
        assert_eq!(status, 401);
    }
    assert_eq!(
        login_from(&app, "sam@example.com", PASSWORD, &renewed)
            .await
            .0,
        429
    );
    assert_eq!(
        login(&app, "kim@example.com", PASSWORD).await.0,
        200,
        "Kim is not held up"
    );
    // A new password ends the devices known before it.
    accounts::set_password(&app.store, "kim@example.com", "a brand new passphrase")
        .await
        .expect("password changed");
    for i in 0..6 {
        login(&app, "kim@example.com", &format!("guess {i}")).await;
    }
    let (status, _) = login_from(
        &app,
        "kim@example.com",
        "a brand new passphrase",
        &kims_device,
    )
    .await;
    assert_eq!(status, 429, "a device known before the password changed");
}

#[tokio::test]
async fn one_address_guessing_many_accounts_is_throttled() {
    let app = spawn_app_with(|s| {
        s.agents.login_attempts_per_address = 8;
        s.agents.login_address_backoff_seconds = 60.0;
    })
    .await;
    let mut statuses = Vec::new();
    for i in 0..12 {
        statuses.push(
            login(&app, &format!("user{i}@example.com"), "guess guess guess")
                .await
                .0,
        );
    }
    assert_eq!(&statuses[..8], &[401; 8]);
    assert!(statuses[8..].iter().all(|s| *s == 429), "{statuses:?}");
}

#[tokio::test]
async fn known_and_unknown_emails_take_the_same_path() {
    let app = spawn_app_with(|_| {}).await;
    create(&app, "sam@example.com", Role::Agent).await;
    let gate = app.accounts.gate().clone();
    let before = gate.verifications();
    let known = login(&app, "sam@example.com", "not the password").await;
    assert_eq!(
        gate.verifications(),
        before + 1,
        "a known email runs argon2 once"
    );
    let unknown = login(&app, "nobody@example.com", "not the password").await;
    assert_eq!(
        gate.verifications(),
        before + 2,
        "an unknown email runs argon2 once too"
    );
    // The answers cannot be told apart.
    assert_eq!(known.0, 401);
    assert_eq!(known, unknown);
}

#[tokio::test]
async fn weak_passwords_are_refused_with_what_to_do() {
    let app = spawn_app_with(|_| {}).await;
    for (email, password) in [
        ("kim@example.com", "short"),
        ("kim@example.com", "kim@example.com"),
    ] {
        let refused = accounts::create(
            &app.store,
            NewAccount {
                name: "Kim".into(),
                email: email.into(),
                password: password.into(),
                role: Role::Agent,
                teams: Vec::new(),
                max_chats: 3,
            },
        )
        .await
        .expect_err("a weak password is refused");
        assert!(refused.to_string().contains("password"), "{refused}");
    }
}

#[tokio::test]
async fn a_demo_account_is_gone_after_a_restart_with_the_setting_off() {
    let app = spawn_app_with(|s| s.agents.demo_agent = true).await;
    let (status, _, body) = login(&app, "demo@example.com", "demo").await;
    assert_eq!(
        status, 200,
        "the demo account works while the setting is on: {body}"
    );
    let token = body["token"].as_str().unwrap().to_owned();

    let app = app.restart_with(|s| s.agents.demo_agent = false).await;
    let (status, _, _) = login(&app, "demo@example.com", "demo").await;
    assert_eq!(status, 401, "no demo login once the setting is off");
    let (status, _, _) = login(&app, "editor@example.com", "demo").await;
    assert_eq!(status, 401);
    let (status, _) = app.get_as("/api/conversations", Some(&token)).await;
    assert_eq!(status, 401, "the demo token was revoked");

    // Turned on again, the demo works again (`make run` after `make run DEMO_AGENT=false`).
    let app = app.restart_with(|s| s.agents.demo_agent = true).await;
    assert_eq!(login(&app, "demo@example.com", "demo").await.0, 200);
}

#[tokio::test]
async fn logout_ends_the_token_and_closes_its_socket_within_a_second() {
    let app = spawn_app_with(|_| {}).await;
    let token = app.agent_token("Sam", &[]).await;
    let mut console = app.agent(&token).await;
    let (status, body) = post(&app, "/api/agent/logout", &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(console.closed(Duration::from_secs(1)).await, Some(4003));
    let (status, body) = app.get_as("/api/conversations", Some(&token)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("token_expired"))
    );
    // A conversation's transcript too: the console signs out on 401 (it showed an error on the
    // 403 that a customer's session of another conversation gets).
    let mut customer = app.client().await;
    let welcome = customer.hello(None, None).await;
    let id = welcome["conversation_id"].as_str().unwrap().to_owned();
    let path = format!("/api/conversations/{id}");
    let (status, body) = app.get_as(&path, Some(&token)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("token_expired")),
        "{body}"
    );
    // The customer's own session before their first message: nothing stored yet.
    let (status, body) = app.get_as(&path, welcome["session"].as_str()).await;
    assert_eq!(status, 404, "{body}");
    customer.ask("c1", "How do I reset my password?").await;
    let (status, body) = app.get_as(&path, welcome["session"].as_str()).await;
    assert_eq!(status, 200, "{body}");
    // Another conversation's session is refused.
    let mut other = app.client().await;
    let theirs = other.hello(None, None).await;
    other.ask("o1", "hello").await;
    let (status, _) = app.get_as(&path, theirs["session"].as_str()).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn an_admin_revokes_every_token_of_an_agent_and_their_sockets_close() {
    let app = spawn_app_with(|_| {}).await;
    let admin = app.account_token("Ada", "admin", &[]).await;
    let sam = app.agent_token("Sam", &[]).await;
    let mut laptop = app.agent(&sam).await;
    let mut phone = AgentClient::connect(app.port, &sam).await;
    assert_eq!(phone.next("ready").await["type"], "ready");
    let sam_id = app
        .store
        .agent_by_email("sam@example.com")
        .await
        .unwrap()
        .expect("Sam exists")
        .0
        .id;
    // An agent may not revoke anyone's tokens.
    let (status, _) = post(&app, &format!("/api/agents/{sam_id}/revoke"), &sam).await;
    assert_eq!(status, 403);
    let (status, body) = post(&app, &format!("/api/agents/{sam_id}/revoke"), &admin).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(laptop.closed(Duration::from_secs(1)).await, Some(4003));
    assert_eq!(phone.closed(Duration::from_secs(1)).await, Some(4003));
    assert_eq!(app.get_as("/api/tickets", Some(&sam)).await.0, 401);
    // The admin's own session is untouched.
    assert_eq!(app.get_as("/api/tickets", Some(&admin)).await.0, 200);
}

#[tokio::test]
async fn an_expired_tokens_socket_closes_and_expired_tokens_are_purged() {
    let app = spawn_app_with(|s| s.agents.token_ttl_seconds = 1.5).await;
    let token = app.agent_token("Sam", &[]).await;
    let mut console = app.agent(&token).await;
    // The token's 1.5 s end, within a second.
    assert_eq!(
        console.closed(Duration::from_millis(2500)).await,
        Some(4003)
    );
    let (status, _) = app.get_as("/api/conversations", Some(&token)).await;
    assert_eq!(status, 401);
    let session_id = {
        let account = app
            .store
            .agent_by_email("sam@example.com")
            .await
            .unwrap()
            .expect("Sam exists")
            .0;
        account.id
    };
    assert_eq!(app.store.agent_token_count(&session_id).await.unwrap(), 1);
    app.accounts.sweep().await.unwrap();
    assert_eq!(app.store.agent_token_count(&session_id).await.unwrap(), 0);
}

#[tokio::test]
async fn the_command_lines_passwd_and_disable_reach_a_running_servers_sockets() {
    let app = spawn_app_with(|_| {}).await;
    let token = app.agent_token("Sam", &[]).await;
    let mut console = app.agent(&token).await;
    // What `frontdesk agent passwd` does, on the same store (another process in production).
    let weak = accounts::set_password(&app.store, "sam@example.com", "tiny").await;
    assert!(weak.is_err(), "the policy applies to new passwords too");
    accounts::set_password(&app.store, "sam@example.com", "a brand new passphrase")
        .await
        .unwrap();
    // The server's sweep (every 5 s) notices and closes the socket.
    assert_eq!(console.closed(Duration::from_secs(7)).await, Some(4003));
    assert_eq!(
        login(&app, "sam@example.com", "secret-password").await.0,
        401
    );
    let (status, _, body) = login(&app, "sam@example.com", "a brand new passphrase").await;
    assert_eq!(status, 200);
    let token = body["token"].as_str().unwrap().to_owned();
    let mut console = app.agent(&token).await;

    // `frontdesk agent disable`.
    accounts::disable(&app.store, "sam@example.com")
        .await
        .unwrap();
    assert_eq!(console.closed(Duration::from_secs(7)).await, Some(4003));
    assert_eq!(
        login(&app, "sam@example.com", "a brand new passphrase")
            .await
            .0,
        401
    );
    assert!(accounts::disable(&app.store, "nobody@example.com")
        .await
        .is_err());
}

#[tokio::test]
async fn a_resolve_interrupted_between_its_statements_is_recovered_by_a_restart() {
    let app = spawn_app_with(|_| {}).await;
    let token = app.agent_token("Sam", &[]).await;
    let mut sam = app.agent(&token).await;
    let mut customer = app.client().await;
    let welcome = customer.hello(None, None).await;
    let session = welcome["session"].as_str().unwrap().to_owned();
    let id = welcome["conversation_id"].as_str().unwrap().to_owned();
    customer.send(json!({"type": "request_human"})).await;
    sam.next("assigned").await;
    let seen = customer.settle().await;
    let last_seq = seen.iter().filter_map(|f| f["seq"].as_i64()).max().unwrap();

    // Resolving is one transaction now, so a crash leaves all of it or nothing. A server that
    // resolved in several statements could be killed after the first (the hand-off marked
    // resolved, the conversation still held): write exactly that, as the crash left it.
    let db = sqlx::SqlitePool::connect(&app.database_url())
        .await
        .unwrap();
    sqlx::query("UPDATE handoffs SET resolved_at = 1 WHERE conversation_id = $1")
        .bind(&id)
        .execute(&db)
        .await
        .unwrap();
    db.close().await;
    drop((sam, customer));

    let app = app.restart().await;
    // The restart finished the resolve: the customer sees it and is asked for a rating...
    let mut customer = app.client().await;
    let welcome = customer.hello(Some(&session), Some(last_seq)).await;
    assert_eq!(welcome["state"], "resolved", "{welcome}");
    let missed: Vec<&str> = welcome["missed"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["type"].as_str())
        .collect();
    assert_eq!(missed, ["status", "csat_request"], "{welcome}");
    // ...and can go on writing (to the bot); nothing waits for a person.
    customer
        .send(
            json!({"type": "message", "client_id": "after", "text": "How do I reset my password?"}),
        )
        .await;
    // The ack, the conversation back with the bot, and the bot's answer (frames come in order).
    let mut frames = Vec::new();
    while !frames.iter().any(|f: &Value| f["from"] == "bot") {
        frames.push(customer.recv().await);
    }
    assert!(
        frames
            .iter()
            .any(|f| f["type"] == "status" && f["state"] == "bot"),
        "{frames:?}"
    );
    let (status, body) = app
        .get_as("/api/conversations?state=agent", Some(&token))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["conversations"], json!([]));
}

#[tokio::test]
async fn resolving_stores_the_hand_off_the_state_and_both_frames_together() {
    let app = spawn_app_with(|_| {}).await;
    let token = app.agent_token("Sam", &[]).await;
    let mut sam = app.agent(&token).await;
    let mut customer = app.client().await;
    let id = customer.hello(None, None).await["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    customer.send(json!({"type": "request_human"})).await;
    sam.next("assigned").await;
    sam.send(json!({"type": "resolve", "conversation_id": id}))
        .await;
    sam.next("unassigned").await;
    let (_, body) = app
        .get_as(&format!("/api/conversations/{id}"), Some(&token))
        .await;
    assert_eq!(body["state"], "resolved");
    assert!(body["handoffs"][0]["resolved_at"].as_i64().is_some());
    let kinds: Vec<&str> = body["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .take(2)
        .filter_map(|f| f["type"].as_str())
        .collect();
    assert_eq!(kinds, ["csat_request", "status"]);
}

#[tokio::test]
async fn a_flood_of_leave_email_is_capped_and_real_tickets_stay_visible() {
    let app = spawn_app_with(|s| {
        s.limits.messages_per_second = 1000.0;
        s.limits.message_burst = 1000.0;
        // This test is about one conversation's tickets; the per-address cap has its own test
        // (hygiene.rs).
        s.limits.tickets_per_address_per_minute = 1000.0;
    })
    .await;
    let token = app.agent_token("Sam", &[]).await;
    // A real customer leaves an email first.
    let mut real = app.client().await;
    real.hello(None, None).await;
    real.send(
        json!({"type": "leave_email", "email": "ana@example.com", "message": "about my refund"}),
    )
    .await;
    assert_eq!(real.recv().await["type"], "email_ack");

    // A spammer floods leave_email from one conversation: it stays one ticket.
    let mut spam = app.client().await;
    spam.hello(None, None).await;
    for i in 0..300 {
        spam.send(
            json!({"type": "leave_email", "email": format!("spam{i}@example.com"),
            "message": "x".repeat(3_000)}),
        )
        .await;
    }
    let acks = spam.settle().await;
    assert!(acks.iter().all(|f| f["type"] == "email_ack"), "{acks:?}");
    let (status, body) = app.get_as("/api/tickets?status=open", Some(&token)).await;
    assert_eq!(status, 200);
    let tickets = body["tickets"].as_array().unwrap();
    assert_eq!(tickets.len(), 2, "one ticket per conversation: {body}");
    assert_eq!(tickets[0]["email"], "spam299@example.com");
    assert_eq!(
        tickets[0]["message"].as_str().unwrap().chars().count(),
        2_000
    );
    assert_eq!(tickets[1]["email"], "ana@example.com");

    // Paging and status: close the spam, and the open list is the real ticket.
    let spam_id = tickets[0]["id"].as_i64().unwrap();
    let closed = reqwest::Client::new()
        .post(app.http(&format!("/api/tickets/{spam_id}")))
        .bearer_auth(&token)
        .json(&json!({"status": "closed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(closed.status().as_u16(), 200);
    let (_, open) = app.get_as("/api/tickets?status=open", Some(&token)).await;
    assert_eq!(open["tickets"].as_array().unwrap().len(), 1);
    assert_eq!(open["tickets"][0]["email"], "ana@example.com");
    let (_, first) = app.get_as("/api/tickets?limit=1", Some(&token)).await;
    let next = first["next_before"].as_i64().expect("a next page");
    let (_, second) = app
        .get_as(&format!("/api/tickets?limit=1&before={next}"), Some(&token))
        .await;
    assert_eq!(second["tickets"][0]["email"], "ana@example.com");
    let (status, _) = app.get_as("/api/tickets?status=maybe", Some(&token)).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_resolution_is_rated_once() {
    let app = spawn_app_with(|_| {}).await;
    let token = app.agent_token("Sam", &[]).await;
    let mut sam = app.agent(&token).await;
    let mut customer = app.client().await;
    let id = customer.hello(None, None).await["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    customer.send(json!({"type": "request_human"})).await;
    sam.next("assigned").await;
    sam.send(json!({"type": "resolve", "conversation_id": id}))
        .await;
    sam.next("unassigned").await;
    customer.settle().await;
    customer
        .send(json!({"type": "rate", "score": 5, "comment": "great"}))
        .await;
    assert_eq!(customer.recv().await["type"], "rate_ack");
    assert_eq!(sam.next("rated").await["score"], 5);
    for _ in 0..5 {
        customer
            .send(json!({"type": "rate", "score": 1, "comment": "spam spam"}))
            .await;
        assert_eq!(customer.recv().await["code"], "already_rated");
    }
    let (_, body) = app
        .get_as(&format!("/api/conversations/{id}"), Some(&token))
        .await;
    assert_eq!(body["handoffs"][0]["csat_score"], 5);
    // The agent was told once.
    let more = sam.settle().await;
    assert!(!more.iter().any(|f| f["type"] == "rated"), "{more:?}");
}

/// Understands as the scripted seam does, except that the first message's turn never ends: the
/// turn a crash cuts short.
struct FirstTurnHangs {
    calls: AtomicUsize,
    inner: Scripted<fn(&str) -> Understanding>,
}

impl Understand for FirstTurnHangs {
    fn understand<'a>(
        &'a self,
        text: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<Analysis, NluError>> + Send + 'a>> {
        Box::pin(async move {
            if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
                std::future::pending::<()>().await;
            }
            self.inner.understand(text).await
        })
    }
}

fn plain(_: &str) -> Understanding {
    Understanding::default()
}

#[tokio::test]
async fn a_question_whose_turn_a_restart_cut_short_is_answered_after_it() {
    let seam = FirstTurnHangs {
        calls: AtomicUsize::new(0),
        inner: Scripted::new(nlu().0, plain as fn(&str) -> Understanding),
    };
    let app = spawn_app_with_seam(|_| {}, Arc::new(seam)).await;
    let mut customer = app.client().await;
    let welcome = customer.hello(None, None).await;
    let session = welcome["session"].as_str().expect("token").to_owned();
    customer
        .send(json!({"type": "message", "client_id": "q1", "text": "How do I reset my password?"}))
        .await;
    let ack = customer.recv().await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let seq = ack["seq"].as_i64().expect("seq");
    // The message is stored and acknowledged; its turn never ends, and the server stops.
    assert_eq!(customer.recv_any(Duration::from_millis(500)).await, None);
    customer.close().await;

    let app = app.restart().await;
    // The widget comes back with what it had: the answer is there, in `missed` or live.
    let mut customer = app.client().await;
    let answer = customer.resume_until_bot(&session, seq).await;
    assert!(answer["seq"].as_i64() > Some(seq), "{answer}");
    assert!(
        answer["text"].as_str().is_some_and(|t| !t.is_empty()),
        "{answer}"
    );
}
