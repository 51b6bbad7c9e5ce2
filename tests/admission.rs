//! Who gets in: silent sockets, full servers, one address with too many sockets. Against the real
//! server, with real sockets.

mod common;

use std::time::{Duration, Instant};

use common::{spawn_app_with, Client};
use tokio_tungstenite::tungstenite::Error as WsError;

/// The HTTP status and `Retry-After` of a refused upgrade.
fn refusal(result: Result<Client, WsError>) -> (u16, Option<String>) {
    match result {
        Err(WsError::Http(response)) => (
            response.status().as_u16(),
            response.headers()["retry-after"]
                .to_str()
                .ok()
                .map(String::from),
        ),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected a refusal, the socket was accepted"),
    }
}

#[tokio::test]
async fn silent_sockets_cannot_keep_a_customer_or_an_agent_out() {
    let app = spawn_app_with(|s| {
        s.server.max_connections = 20;
        s.limits.sockets_per_address = 100;
        // Long enough for the 20 sockets, the agent and the refused customer to connect on a
        // loaded machine before the first silent socket is closed.
        s.limits.hello_timeout_seconds = 3.0;
    })
    .await;
    let token = app.agent_token("Sam", &[]).await;
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(Client::connect(app.port).await);
    }

    // The agents' slots are their own: an agent gets in at once.
    let mut sam = app.agent(&token).await;
    assert_eq!(sam.next("queue").await["total"], 0);

    // A customer is told the server is full, and when to try again...
    let (status, retry_after) = refusal(Client::connect_from(app.port, [127, 0, 0, 1], None).await);
    assert_eq!(status, 503);
    assert!(retry_after.is_some_and(|s| s.parse::<u32>().is_ok_and(|n| n > 0)));

    // ...and gets in once the silent sockets are closed for not saying hello in time.
    let started = Instant::now();
    for socket in &mut silent {
        assert_eq!(socket.closed(Duration::from_secs(5)).await, Some(4000));
    }
    let mut customer = loop {
        match Client::connect_from(app.port, [127, 0, 0, 1], None).await {
            Ok(client) => break client,
            // The slots are released as the closing sockets finish.
            Err(_) if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("the customer is still kept out: {e}"),
        }
    };
    customer.hello(None, None).await;
    customer.ask("c1", "How do I reset my password?").await;
}

/// Agent sockets that never sign in count against their address, so a script cannot fill the
/// agents' pool from one address and keep every agent out; an agent who signs in frees the place,
/// and one who brings a token is let in at once.
#[tokio::test]
async fn agent_sockets_that_never_sign_in_cannot_fill_the_agents_pool() {
    let app = spawn_app_with(|s| {
        s.server.max_agent_connections = 10;
        s.limits.sockets_per_address = 3;
        s.limits.hello_timeout_seconds = 30.0;
    })
    .await;
    let token = app.agent_token("Sam", &[]).await;
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(common::AgentClient::connect_unauthenticated(app.port).await);
    }
    let url = format!("ws://127.0.0.1:{}/ws/agent", app.port);
    let refused = tokio_tungstenite::connect_async(url.clone()).await;
    let Err(WsError::Http(response)) = refused else {
        panic!("a fourth socket that has not signed in was let in");
    };
    assert_eq!(response.status().as_u16(), 429);
    assert!(response.headers().contains_key("retry-after"));

    // An agent with a token is let in all the same...
    let mut sam = app.agent(&token).await;
    assert_eq!(sam.next("queue").await["total"], 0);

    // ...and one of the three signing in frees its place for the next.
    let mut signing = silent.pop().unwrap();
    signing
        .send(serde_json::json!({"type": "auth", "token": token}))
        .await;
    assert_eq!(signing.next("ready").await["type"], "ready");
    let started = Instant::now();
    while tokio_tungstenite::connect_async(url.clone()).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the place of the agent who signed in was not given back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn one_address_gets_only_so_many_sockets_and_others_are_not_affected() {
    let app = spawn_app_with(|s| s.limits.sockets_per_address = 3).await;
    let mut mine = Vec::new();
    for _ in 0..3 {
        let mut c = Client::connect_from(app.port, [127, 0, 0, 7], None)
            .await
            .expect("within the cap");
        c.hello(None, None).await;
        mine.push(c);
    }
    let (status, retry_after) = refusal(Client::connect_from(app.port, [127, 0, 0, 7], None).await);
    assert_eq!(status, 429);
    assert!(retry_after.is_some());
    let mut neighbour = Client::connect_from(app.port, [127, 0, 0, 8], None)
        .await
        .expect("another address is not affected");
    neighbour.hello(None, None).await;

    // A closed socket frees its place.
    mine.pop().unwrap().close().await;
    let started = Instant::now();
    loop {
        match Client::connect_from(app.port, [127, 0, 0, 7], None).await {
            Ok(_) => break,
            Err(_) if started.elapsed() < Duration::from_secs(10) => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("the freed place was not given back: {e}"),
        }
    }
}

#[tokio::test]
async fn a_socket_that_stops_answering_pings_is_closed_and_one_that_answers_stays() {
    let app = spawn_app_with(|s| {
        s.limits.ping_interval_seconds = 0.3;
        s.limits.idle_timeout_seconds = 0.6;
    })
    .await;
    // tokio-tungstenite answers pings while it is read: this client stays.
    let mut alive = app.client().await;
    alive.hello(None, None).await;
    assert!(alive.drain(Duration::from_millis(1500)).await.is_empty());
    alive.ask("a1", "How do I reset my password?").await;

    // A client whose pongs never come (never read, so never answered) is closed as idle.
    let mut dead = app.client().await;
    dead.hello(None, None).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(dead.closed(Duration::from_secs(5)).await, Some(4002));
}
