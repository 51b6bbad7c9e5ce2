//! Web hygiene: every HTML page carries a strict Content-Security-Policy and its companions, and an
//! article's markdown cannot put a live script or a `javascript:` link on the console's origin.

mod common;

use std::time::Duration;

use common::spawn_app_with_files;
use serde_json::json;

const ARTICLE: &str = "---\ntitle: Returns\n---\n\n# Returns {#top onclick=alert(1)}\n\n\
    Click [here](javascript:alert(1)) or [there](JAVASCRIPT:alert(2)) or <vbscript:msgbox(1)>.\n\n\
    <script>alert(3)</script>\n\nHi <img src=x onerror=alert(4)> ![pic](data:image/svg+xml,<svg onload=alert(5)>)\n\n\
    See [the policy](https://example.com/policy) and [other](other.md).\n";

#[tokio::test]
async fn an_article_with_script_and_javascript_links_renders_nothing_live() {
    let app =
        spawn_app_with_files(&[("returns.md", ARTICLE), ("other.md", "# Other\n\nText.\n")]).await;
    let html = reqwest::get(app.http("/kb/returns.md"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lower = html.to_ascii_lowercase();
    for live in [
        "<script",
        "javascript:",
        "vbscript:",
        "onerror",
        "onclick",
        "data:image",
        "onload",
    ] {
        assert!(!lower.contains(live), "{live} in {html}");
    }
    assert!(html.contains("here"), "the link's text stays: {html}");
    assert!(
        html.contains(
            "<a href=\"https://example.com/policy\" rel=\"noopener noreferrer\">the policy</a>"
        ),
        "{html}"
    );
    assert!(
        html.contains("<a href=\"/kb/other.md\">other</a>"),
        "{html}"
    );
}

#[tokio::test]
async fn every_kind_of_page_carries_a_strict_policy() {
    let app = spawn_app_with_files(&[("returns.md", ARTICLE)]).await;
    for path in ["/", "/console", "/kb/returns.md"] {
        let response = reqwest::get(app.http(path)).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        let csp = headers
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("{path} has no Content-Security-Policy"))
            .to_str()
            .unwrap();
        for directive in [
            "default-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(!csp.contains("unsafe-eval"), "{path}: {csp}");
        let script = csp.split(';').find(|d| d.trim().starts_with("script-src"));
        if path.starts_with("/kb/") {
            assert!(script.is_none(), "articles run no script at all: {csp}");
        }
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "same-origin", "{path}");
        assert_eq!(headers["x-frame-options"], "DENY", "{path}");
    }
    // The demo page's inline styles are allowed by hash, so they still apply.
    let csp = reqwest::get(app.http("/")).await.unwrap().headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("style-src 'self' 'sha256-"), "{csp}");
    // JSON answers are never sniffed either.
    let health = reqwest::get(app.http("/api/health")).await.unwrap();
    assert_eq!(health.headers()["x-content-type-options"], "nosniff");
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(port: u16, path: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}{path}"))
        .await
        .expect("the WebSocket connects");
    ws
}

/// The next text frame as JSON, or the close frame's code and reason.
async fn next(ws: &mut Ws) -> Result<serde_json::Value, (u16, String)> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("an answer in time");
        match message {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(&text).unwrap()),
            Some(Ok(Message::Close(Some(frame)))) => {
                return Err((u16::from(frame.code), frame.reason.to_string()))
            }
            Some(Ok(Message::Close(None))) => return Err((0, String::new())),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err((0, format!("dropped without a close frame: {e}"))),
            None => return Err((0, "dropped without a close frame".into())),
        }
    }
}

async fn send(ws: &mut Ws, frame: serde_json::Value) {
    use futures_util::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        frame.to_string().into(),
    ))
    .await
    .expect("sent");
}

#[tokio::test]
async fn a_large_frame_before_auth_is_closed_at_once_and_the_server_serves_others() {
    let app = spawn_app_with_files(&[("a.md", "# A\n\nText.\n")]).await;
    let token = app.agent_token("Sam", &[]).await;
    // 1 MiB before auth: closed with 1009 and the limit, long before the hello timeout.
    let mut agent = open(app.port, "/ws/agent").await;
    let started = std::time::Instant::now();
    send(
        &mut agent,
        json!({"type": "ping", "id": "x".repeat(1 << 20)}),
    )
    .await;
    let (code, reason) = next(&mut agent).await.unwrap_err();
    assert_eq!(code, 1009, "{reason}");
    assert!(reason.contains("before hello/auth"), "{reason}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // A customer's first frame is held to the same limit.
    let mut customer = open(app.port, "/ws/chat").await;
    send(
        &mut customer,
        json!({"type": "hello", "visitor": {"name": "x".repeat(64 * 1024)}}),
    )
    .await;
    assert_eq!(next(&mut customer).await.unwrap_err().0, 1009);

    // Others are served; once auth is accepted (`ready`), the socket's normal limit holds.
    let mut agent = open(app.port, "/ws/agent").await;
    send(&mut agent, json!({"type": "auth", "token": token})).await;
    assert_eq!(next(&mut agent).await.unwrap()["type"], "ready");
    let big = "y".repeat(40 * 1024);
    send(&mut agent, json!({"type": "ping", "id": big})).await;
    loop {
        let frame = next(&mut agent).await.expect("the socket stays open");
        if frame["type"] == "pong" {
            assert_eq!(frame["id"], big.as_str());
            break;
        }
    }
    let mut customer = open(app.port, "/ws/chat").await;
    send(&mut customer, json!({"type": "hello"})).await;
    assert_eq!(next(&mut customer).await.unwrap()["type"], "welcome");
    // After hello, an oversized frame is an error frame, not the end of the socket.
    send(
        &mut customer,
        json!({"type": "ping", "id": "z".repeat(64 * 1024)}),
    )
    .await;
    let error = next(&mut customer).await.expect("an error frame");
    assert_eq!(error["code"], "frame_too_large", "{error}");
}

/// Writes `bytes` a byte at a time, `gap` apart, until the server closes the connection; how long
/// that took (or None when every byte went through).
async fn dribble(tcp: &mut tokio::net::TcpStream, bytes: &[u8], gap: Duration) -> Option<Duration> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = std::time::Instant::now();
    let mut answer = [0u8; 1024];
    for byte in bytes {
        if tcp.write_all(&[*byte]).await.is_err() {
            return Some(started.elapsed());
        }
        // Closed by the server: a read returns 0 (or an answer, then 0) at once.
        if let Ok(read) = tokio::time::timeout(gap, tcp.read(&mut answer)).await {
            if matches!(read, Ok(0) | Err(_)) {
                return Some(started.elapsed());
            }
        }
    }
    None
}

#[tokio::test]
async fn a_client_dribbling_its_request_is_cut_off_and_others_are_served() {
    let app = common::spawn_app_with(|s| {
        s.server.header_timeout_seconds = 1.0;
        s.server.request_timeout_seconds = 2.0;
    })
    .await;
    let address = format!("127.0.0.1:{}", app.port);
    // A WebSocket opened before, and used after, the deadlines stays up.
    let mut customer = open(app.port, "/ws/chat").await;
    send(&mut customer, json!({"type": "hello"})).await;
    assert_eq!(next(&mut customer).await.unwrap()["type"], "welcome");

    // Headers a byte every 300 ms: cut off after the header deadline (1 s), well before the
    // request is complete.
    let request = b"GET /api/health HTTP/1.1\r\nHost: x\r\nUser-Agent: slow\r\n\r\n";
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    let cut = dribble(&mut slow, request, Duration::from_millis(300))
        .await
        .expect("the slow client is cut off");
    assert!(cut < Duration::from_secs(4), "{cut:?}");

    // A body dribbled after quick headers: 408 with what to do, after the request deadline.
    let mut slow = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = "POST /api/agent/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n";
    {
        use tokio::io::AsyncWriteExt;
        slow.write_all(head.as_bytes()).await.unwrap();
    }
    let started = std::time::Instant::now();
    let body = vec![b' '; 400];
    let answered = {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut answer = Vec::new();
        for byte in &body {
            if slow.write_all(&[*byte]).await.is_err() {
                break;
            }
            let mut buf = [0u8; 4096];
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(200), slow.read(&mut buf)).await
            {
                answer.extend_from_slice(&buf[..n]);
                if n == 0 || answer.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        }
        String::from_utf8_lossy(&answer).into_owned()
    };
    assert!(answered.starts_with("HTTP/1.1 408"), "{answered}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // Meanwhile, and after, others are served at once.
    let health = reqwest::get(app.http("/api/health")).await.unwrap();
    assert_eq!(health.status(), 200);
    let (_, body) = app.get("/api/health").await;
    assert!(body.is_object(), "{body}");
    send(&mut customer, json!({"type": "ping", "id": 7})).await;
    loop {
        let frame = next(&mut customer)
            .await
            .expect("the WebSocket outlives the deadlines");
        if frame["type"] == "pong" {
            break;
        }
    }
}

#[tokio::test]
async fn a_malformed_request_is_answered_with_the_json_error_every_other_error_has() {
    let app = spawn_app_with_files(&[("other.md", "# Other\n\nText.\n")]).await;
    let token = app.agent_token("Sam", &[]).await;
    let client = reqwest::Client::new();
    let raw = |body: &'static str, content_type: &'static str| {
        client
            .post(app.http("/api/agent/login"))
            .header("content-type", content_type)
            .body(body)
    };
    let cases = [
        (
            raw("{\"email\": \"sam@example.com\"", "application/json"),
            400,
            "invalid_body",
        ),
        (
            raw("{\"email\": 5, \"password\": \"x\"}", "application/json"),
            422,
            "invalid_body",
        ),
        (
            raw("email=sam&password=x", "application/x-www-form-urlencoded"),
            415,
            "invalid_body",
        ),
        (
            client
                .get(app.http("/api/conversations?limit=lots"))
                .bearer_auth(&token),
            400,
            "invalid_query",
        ),
        (
            client
                .post(app.http("/api/tickets/first"))
                .bearer_auth(&token),
            400,
            "invalid_path",
        ),
        (client.get(app.http("/api/nothing-here")), 404, "not_found"),
        (
            client.get(app.http("/api/agent/login")),
            405,
            "method_not_allowed",
        ),
    ];
    for (request, status, code) in cases {
        let response = request.send().await.expect("answered");
        assert_eq!(response.status().as_u16(), status, "{code}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
        let body: serde_json::Value = response.json().await.expect("a JSON body");
        assert_eq!(body["code"], code, "{body}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
    }
    // The server goes on serving.
    let health = reqwest::get(app.http("/api/health")).await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
}
