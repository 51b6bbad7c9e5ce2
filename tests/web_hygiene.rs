//! Web hygiene: every HTML page carries a strict Content-Security-Policy and its companions, and an
//! article's markdown cannot put a live script or a `javascript:` link on the console's origin.

mod common;

use common::spawn_app_with_files;

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
    assert!(html.contains("<a href=\"other.md\">other</a>"), "{html}");
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
