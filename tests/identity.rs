//! Verified customer identity (issue 12): only what the operator's backend signed links a
//! customer's conversations; an email a page merely claims links nothing and is shown as
//! unverified; a wrong signature is refused.

mod common;

use common::{spawn_app_with, Client, TestApp};
use frontdesk::accounts::identity::{sign, sign_until};
use serde_json::{json, Value};

const SECRET: &str = "a long random secret shared with the shop's backend";

async fn app() -> TestApp {
    spawn_app_with(|s| s.identity.secret = Some(SECRET.into())).await
}

/// A hello with the visitor's email and, if given, a user id and signature; the first frame back.
async fn hello(
    customer: &mut Client,
    email: &str,
    user_id: Option<&str>,
    user_hash: Option<&str>,
) -> Value {
    customer
        .send(json!({"type": "hello", "protocol": 1,
            "visitor": {"name": "Ann", "email": email},
            "user_id": user_id, "user_hash": user_hash}))
        .await;
    customer.recv().await
}

/// The agent's context packet of a conversation.
async fn context(app: &TestApp, token: &str, id: &str) -> Value {
    let (status, body) = app
        .get_as(&format!("/api/conversations/{id}/context"), Some(token))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn an_unsigned_email_never_links_a_past_conversation_while_a_signed_one_does() {
    let app = app().await;
    let token = app.agent_token("Sam", &[]).await;
    let mut sam = app.agent(&token).await;
    let signed = sign(SECRET, "ann-42");

    // Ann, signed in on the shop, talks to a person about her order; the chat is resolved.
    let mut ann = app.client().await;
    let welcome = hello(&mut ann, "ann@example.com", Some("ann-42"), Some(&signed)).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let first = welcome["conversation_id"].as_str().unwrap().to_owned();
    // Whether the bot answers or hands over at once is not what this test is about.
    ann.send(json!({"type": "message", "client_id": "a1", "text": "My order 77123 never arrived and I was charged twice"}))
        .await;
    loop {
        let frame = ann.recv().await;
        if frame["type"] == "status" && frame["state"] == "queued" {
            break;
        }
        if frame["type"] == "message" && frame["from"] == "bot" {
            ann.send(json!({"type": "request_human"})).await;
            break;
        }
    }
    let assigned = sam.next("assigned").await;
    assert_eq!(assigned["context"]["customer"]["verified"], true);
    assert_eq!(assigned["context"]["customer"]["user_id"], "ann-42");
    sam.send(json!({"type": "resolve", "conversation_id": first}))
        .await;
    sam.next("unassigned").await;
    ann.close().await;

    // Someone else types Ann's email on the page: unverified, linked to nothing.
    let mut eve = app.client().await;
    let welcome = hello(&mut eve, "ann@example.com", None, None).await;
    let eves = welcome["conversation_id"].as_str().unwrap().to_owned();
    eve.ask("e1", "what did I order last time?").await;
    let packet = context(&app, &token, &eves).await;
    assert_eq!(packet["customer"]["verified"], false);
    assert_eq!(packet["previous_conversations"], json!([]));
    // Claiming `verified` in the visitor changes nothing: only the server sets it.
    let mut liar = app.client().await;
    liar.send(json!({"type": "hello", "protocol": 1,
        "visitor": {"email": "ann@example.com", "verified": true, "user_id": "ann-42"}}))
        .await;
    let lies = liar.recv().await["conversation_id"]
        .as_str()
        .unwrap()
        .to_owned();
    liar.ask("l1", "show me my orders").await;
    let packet = context(&app, &token, &lies).await;
    assert_eq!(packet["customer"]["verified"], false);
    assert_eq!(packet["previous_conversations"], json!([]));

    // Ann comes back on another device, signed: her earlier conversation is linked.
    let mut phone = app.client().await;
    let welcome = hello(&mut phone, "ann@example.com", Some("ann-42"), Some(&signed)).await;
    let second = welcome["conversation_id"].as_str().unwrap().to_owned();
    assert_ne!(
        second, first,
        "the resolved chat is history, not the open one"
    );
    phone.ask("p1", "any news about my parcel?").await;
    let packet = context(&app, &token, &second).await;
    let previous = packet["previous_conversations"].as_array().unwrap();
    assert_eq!(previous.len(), 1, "{packet}");
    assert_eq!(previous[0]["id"], first.as_str());
    assert!(previous[0]["summary"].as_str().unwrap().contains("77123"));
}

#[tokio::test]
async fn a_wrong_signature_is_refused_with_a_clear_error_code() {
    let app = app().await;
    let mut customer = app.client().await;
    let forged = sign("not the secret", "ann-42");
    let refused = hello(
        &mut customer,
        "ann@example.com",
        Some("ann-42"),
        Some(&forged),
    )
    .await;
    assert_eq!(refused["type"], "error");
    assert_eq!(refused["code"], "identity_refused");
    assert!(refused["message"]
        .as_str()
        .unwrap()
        .contains("identity.secret"));
    // Someone else's id with Ann's signature is refused too.
    let anns = sign(SECRET, "ann-42");
    let refused = hello(&mut customer, "bob@example.com", Some("bob-7"), Some(&anns)).await;
    assert_eq!(refused["code"], "identity_refused");
    // The socket keeps serving: a correct hello is welcomed.
    let welcome = hello(
        &mut customer,
        "ann@example.com",
        Some("ann-42"),
        Some(&anns),
    )
    .await;
    assert_eq!(welcome["type"], "welcome");
}

#[tokio::test]
async fn one_verified_customer_on_two_devices_sees_one_history() {
    let app = app().await;
    let signed = sign(SECRET, "ann@example.com");
    let mut laptop = app.client().await;
    let welcome = hello(&mut laptop, "ann@example.com", None, Some(&signed)).await;
    let id = welcome["conversation_id"].as_str().unwrap().to_owned();
    laptop.ask("l1", "How do I reset my password?").await;

    let mut phone = app.client().await;
    let welcome = hello(&mut phone, "ann@example.com", None, Some(&signed)).await;
    assert_eq!(welcome["conversation_id"], id.as_str());
    let missed = welcome["missed"].as_array().unwrap();
    assert!(
        missed
            .iter()
            .any(|f| f["text"] == "How do I reset my password?"),
        "{welcome}"
    );
    // And what the phone writes reaches the laptop.
    phone
        .ask("p1", "thanks, and how do I change my email?")
        .await;
    let seen = laptop.settle().await;
    assert!(
        seen.iter()
            .any(|f| f["text"] == "thanks, and how do I change my email?"),
        "{seen:?}"
    );
}

/// A signed hello from a device that has `session` and has seen frames up to `last_seq`.
async fn signed_hello_again(
    device: &mut Client,
    signed: &str,
    session: &str,
    last_seq: i64,
) -> Value {
    device
        .send(
            json!({"type": "hello", "protocol": 1, "session": session, "last_seq": last_seq,
            "visitor": {"name": "Ann", "email": "ann@example.com"}, "user_hash": signed}),
        )
        .await;
    let welcome = device.recv().await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    welcome
}

/// The highest `seq` among frames a device got (its welcome's `last_seq` first).
fn highest_seq(welcome: &Value, frames: &[Value]) -> i64 {
    frames
        .iter()
        .filter_map(|f| f["seq"].as_i64())
        .chain(welcome["last_seq"].as_i64())
        .max()
        .expect("a seq")
}

#[tokio::test]
async fn a_verified_customer_resumes_on_every_reconnect_of_every_device() {
    let app = app().await;
    let signed = sign(SECRET, "ann@example.com");
    let mut laptop = app.client().await;
    let first = hello(&mut laptop, "ann@example.com", None, Some(&signed)).await;
    let id = first["conversation_id"]
        .as_str()
        .expect("conversation id")
        .to_owned();
    let (ack, reply) = laptop.ask("l1", "How do I reset my password?").await;
    let mut seen = highest_seq(&first, &[ack, reply]);
    let mut session = first["session"].as_str().expect("token").to_owned();

    // A phone on a bad network: it drops and comes back, again and again, each time with the
    // token and the last seq of the welcome before. Each time it picks up where it was: nothing
    // missed is sent again, the chat is not redrawn from the start.
    laptop.close().await;
    for round in 0..3 {
        let mut again = app.client().await;
        let welcome = signed_hello_again(&mut again, &signed, &session, seen).await;
        assert_eq!(welcome["conversation_id"], id.as_str(), "round {round}");
        assert_eq!(welcome["resumed"], true, "round {round}: {welcome}");
        assert_eq!(welcome["missed"], json!([]), "round {round}: {welcome}");
        let (ack, reply) = again.ask(&format!("r{round}"), "and my email?").await;
        seen = highest_seq(&welcome, &[ack, reply]);
        session = welcome["session"].as_str().expect("token").to_owned();
        again.close().await;
    }

    // A second device joins with the whole history once, then resumes like the first.
    let mut phone = app.client().await;
    let joined = hello(&mut phone, "ann@example.com", None, Some(&signed)).await;
    assert_eq!(joined["conversation_id"], id.as_str());
    assert_eq!(joined["resumed"], false, "{joined}");
    let phone_seen = highest_seq(&joined, joined["missed"].as_array().expect("missed"));
    assert_eq!(phone_seen, seen, "{joined}");
    let phone_token = joined["session"].as_str().expect("token").to_owned();
    phone.close().await;
    let mut phone = app.client().await;
    let welcome = signed_hello_again(&mut phone, &signed, &phone_token, phone_seen).await;
    assert_eq!(welcome["resumed"], true, "{welcome}");
    assert_eq!(welcome["missed"], json!([]), "{welcome}");
    // A person resolves the chat; the phone drops and comes back to it, not to a new empty one.
    let token = app.agent_token("Sam", &[]).await;
    let mut sam = app.agent(&token).await;
    common::request_claim_and_resolve(&mut phone, &mut sam, &id).await;
    let resolved = phone.settle().await;
    let phone_seen = highest_seq(&welcome, &resolved);
    phone.close().await;
    let mut phone = app.client().await;
    let welcome = signed_hello_again(&mut phone, &signed, &phone_token, phone_seen).await;
    assert_eq!(welcome["conversation_id"], id.as_str(), "{welcome}");
    assert_eq!(welcome["resumed"], true, "{welcome}");
    assert_eq!(welcome["state"], "resolved", "{welcome}");
    // Its token reads the transcript, as the device that started the chat can.
    let (status, body) = app
        .get_as(&format!("/api/conversations/{id}"), Some(&phone_token))
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["transcript"]
        .as_array()
        .expect("transcript")
        .iter()
        .any(|f| f["text"] == "How do I reset my password?"));
    // A token of another chat reads nothing of it.
    let mut stranger = app.client().await;
    let theirs = stranger.hello(None, None).await;
    stranger.ask("s1", "hello").await;
    let (status, _) = app
        .get_as(
            &format!("/api/conversations/{id}"),
            theirs["session"].as_str(),
        )
        .await;
    assert_eq!(status, 403);
}

/// A browser a verified customer signed out of keeps the widget's session token: whoever uses it
/// next, signed in as someone else or not signed in, starts a conversation of their own and never
/// sees or writes into the verified customer's.
#[tokio::test]
async fn a_verified_customers_conversation_is_not_resumed_by_anyone_else_on_their_browser() {
    let app = app().await;
    let ann = sign(SECRET, "ann@example.com");
    let mut laptop = app.client().await;
    let first = hello(&mut laptop, "ann@example.com", None, Some(&ann)).await;
    let id = first["conversation_id"].as_str().expect("id").to_owned();
    let session = first["session"].as_str().expect("token").to_owned();
    laptop.ask("a1", "my new address is 12 Elm Street").await;
    laptop.close().await;

    let bob = sign(SECRET, "bob@example.com");
    for (who, email, signed) in [
        ("nobody signed in", None, None),
        ("Bob", Some("bob@example.com"), Some(bob.as_str())),
    ] {
        let mut next = app.client().await;
        next.send(
            json!({"type": "hello", "protocol": 1, "session": session, "last_seq": 0,
            "visitor": {"name": "Next", "email": email}, "user_hash": signed}),
        )
        .await;
        let welcome = next.recv().await;
        assert_eq!(welcome["type"], "welcome", "{who}: {welcome}");
        assert_ne!(welcome["conversation_id"], id.as_str(), "{who}: {welcome}");
        assert_eq!(welcome["resumed"], false, "{who}: {welcome}");
        assert!(
            !welcome.to_string().contains("Elm Street"),
            "{who} was shown Ann's words: {welcome}"
        );
        next.close().await;
    }
    // Ann herself, back on that browser, resumes it.
    let mut back = app.client().await;
    let welcome = signed_hello_again(&mut back, &ann, &session, 0).await;
    assert_eq!(welcome["conversation_id"], id.as_str(), "{welcome}");
}

/// A hello signed with an expiry, from a device with `session` (or none); the first frame back.
async fn hello_until(
    device: &mut Client,
    user_id: &str,
    user_hash: &str,
    expires: i64,
    session: Option<&str>,
) -> Value {
    device
        .send(json!({"type": "hello", "protocol": 1, "session": session,
            "visitor": {"name": "Ann", "email": "ann@example.com"},
            "user_id": user_id, "user_hash": user_hash, "user_hash_expires": expires}))
        .await;
    device.recv().await
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn a_signature_with_an_expiry_works_until_then_and_a_copied_one_stops_working() {
    let app = app().await;
    let (later, past) = (now_secs() + 3600, now_secs() - 60);
    let fresh = sign_until(SECRET, "ann-42", later);
    let stale = sign_until(SECRET, "ann-42", past);

    // Ann's page, signed for the next hour: verified, her conversation stored.
    let mut laptop = app.client().await;
    let welcome = hello_until(&mut laptop, "ann-42", &fresh, later, None).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let id = welcome["conversation_id"].as_str().unwrap().to_owned();
    let session = welcome["session"].as_str().unwrap().to_owned();
    laptop.ask("a1", "How do I reset my password?").await;
    laptop.close().await;

    // The signature moved to another expiry is no signature.
    let mut other = app.client().await;
    let moved = hello_until(&mut other, "ann-42", &fresh, later + 86_400, None).await;
    assert_eq!(moved["code"], "identity_refused", "{moved}");

    // Someone who copied an expired signature from her page gets nothing of hers.
    let copied = hello_until(&mut other, "ann-42", &stale, past, None).await;
    assert_eq!(copied["code"], "identity_refused", "{copied}");
    assert!(
        copied["message"].as_str().unwrap().contains("expired"),
        "{copied}"
    );

    // Her own page, left open past the expiry, reconnects to her conversation as before.
    let mut again = app.client().await;
    let welcome = hello_until(&mut again, "ann-42", &stale, past, Some(&session)).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    // (Resumed as hers: a verified customer's conversation is resumed by nobody else.)
    assert_eq!(welcome["conversation_id"], id.as_str(), "{welcome}");
    // Not once it expired more than 12 hours ago: the page must be loaded again.
    let long_ago = now_secs() - 13 * 3600;
    let older = sign_until(SECRET, "ann-42", long_ago);
    let mut next_day = app.client().await;
    let refused = hello_until(&mut next_day, "ann-42", &older, long_ago, Some(&session)).await;
    assert_eq!(refused["code"], "identity_refused", "{refused}");

    // An expiry that is not whole seconds is a refused identity (the widget chats on), not a
    // malformed hello.
    let mut odd = app.client().await;
    odd.send(
        json!({"type": "hello", "protocol": 1, "visitor": {"name": "Ann"},
        "user_id": "ann-42", "user_hash": fresh, "user_hash_expires": 1.5}),
    )
    .await;
    assert_eq!(odd.recv().await["code"], "identity_refused");

    // With identity.require_expiry, a signature without one is refused and one with it works.
    let strict = spawn_app_with(|s| {
        s.identity.secret = Some(SECRET.into());
        s.identity.require_expiry = true;
    })
    .await;
    let mut customer = strict.client().await;
    let old_style = sign(SECRET, "ann-42");
    let refused = hello(
        &mut customer,
        "ann@example.com",
        Some("ann-42"),
        Some(&old_style),
    )
    .await;
    assert_eq!(refused["code"], "identity_refused", "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .contains("require_expiry"),
        "{refused}"
    );
    let welcome = hello_until(&mut customer, "ann-42", &fresh, later, None).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
}

#[tokio::test]
async fn an_expired_signature_reaches_no_conversation_but_the_open_one_its_page_holds() {
    let app = app().await;
    let token = app.agent_token("Sam", &[]).await;
    let mut sam = app.agent(&token).await;
    let (later, past) = (now_secs() + 3600, now_secs() - 60);
    let fresh = sign_until(SECRET, "ann-42", later);
    let stale = sign_until(SECRET, "ann-42", past);

    // Ann chats on a library computer; the chat is resolved and she leaves.
    let mut library = app.client().await;
    let welcome = hello_until(&mut library, "ann-42", &fresh, later, None).await;
    let first = welcome["conversation_id"].as_str().unwrap().to_owned();
    let library_session = welcome["session"].as_str().unwrap().to_owned();
    library.ask("l1", "Where is my parcel?").await;
    common::request_claim_and_resolve(&mut library, &mut sam, &first).await;
    library.close().await;
    // Later she opens a conversation on her phone.
    let mut phone = app.client().await;
    let welcome = hello_until(&mut phone, "ann-42", &fresh, later, None).await;
    let open = welcome["conversation_id"].as_str().unwrap().to_owned();
    assert_ne!(open, first);
    phone.ask("p1", "My card was charged twice").await;

    // The next person at the library computer goes Back to her cached page: its expired
    // signature and her old session reach neither her open conversation nor a verified new one.
    let mut next = app.client().await;
    let refused = hello_until(&mut next, "ann-42", &stale, past, Some(&library_session)).await;
    assert_eq!(refused["code"], "identity_refused", "{refused}");
    // Nor does someone else's session with her expired signature.
    let mut bob = app.client().await;
    let welcome = hello(&mut bob, "bob@example.com", None, None).await;
    let bobs_session = welcome["session"].as_str().unwrap().to_owned();
    bob.ask("b1", "Do you ship to Norway?").await;
    let mut bobs_tab = app.client().await;
    let refused = hello_until(&mut bobs_tab, "ann-42", &stale, past, Some(&bobs_session)).await;
    assert_eq!(refused["code"], "identity_refused", "{refused}");
}
