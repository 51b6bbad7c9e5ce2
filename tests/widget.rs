//! The embeddable widget and the demo page that embeds it, as a browser on another site fetches
//! them. (The widget's behaviour is tested in a real browser: tests/e2e, run by `make test`.)

mod common;

use reqwest::header;

#[tokio::test]
async fn the_widget_script_can_be_embedded_from_any_site_and_revalidated_cheaply() {
    let app = common::spawn_app_with_files(&[]).await;
    let client = reqwest::Client::new();
    let response = client
        .get(app.http("/widget.js"))
        .header(header::ORIGIN, "https://shop.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    assert_eq!(headers["cross-origin-resource-policy"], "cross-origin");
    assert_eq!(headers[header::CACHE_CONTROL], "public, max-age=300");
    let body = response.text().await.unwrap();
    assert!(body.contains("attachShadow"), "the widget script is served");

    let etag = headers[header::ETAG].clone();
    let again = client
        .get(app.http("/widget.js"))
        .header(header::IF_NONE_MATCH, etag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()[header::ETAG], etag);
    assert!(again.text().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_demo_page_embeds_the_widget_with_one_script_tag() {
    let app = common::spawn_app_with_files(&[]).await;
    let page = reqwest::get(app.http("/")).await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert_eq!(html.matches("<script").count(), 1, "{html}");
    assert!(html.contains(r#"<script src="/widget.js" async"#));
    assert!(!html.contains("chat.js"));
}

#[tokio::test]
async fn the_agent_console_is_served_with_a_policy_that_runs_only_its_own_script() {
    let app = common::spawn_app_with_files(&[]).await;
    let page = reqwest::get(app.http("/console")).await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<script src="/console.js" defer>"#));
    assert!(html.contains(r#"<script src="/console-editors.js" defer>"#));
    for (path, mime) in [
        ("/console.js", "text/javascript; charset=utf-8"),
        ("/console-editors.js", "text/javascript; charset=utf-8"),
        ("/console.css", "text/css; charset=utf-8"),
    ] {
        let asset = reqwest::get(app.http(path)).await.unwrap();
        assert_eq!(asset.status(), 200, "{path}");
        assert_eq!(asset.headers()[header::CONTENT_TYPE], mime, "{path}");
        assert!(asset.text().await.unwrap().len() > 1000, "{path}");
    }
}
