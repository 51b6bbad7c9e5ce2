//! Pages for people: the demo page (a sample shop with the widget), the embeddable widget script,
//! the console at `/console` (agents' conversations and editors' knowledge-base view), and
//! knowledge-base articles rendered to HTML (the link target of answers whose article has no
//! public `url`).

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};

use super::{ApiError, AppState, PathParams};

const DEMO_PAGE: &str = include_str!("../../web_widget/index.html");
/// The widget, embedded by other sites with one `<script src=".../widget.js">` tag.
const WIDGET_JS: &str = include_str!("../../web_widget/widget.js");
/// The agent console: a page, its script and its styles, all same-origin.
const CONSOLE_PAGE: &str = include_str!("../../web_widget/console.html");
const CONSOLE_JS: &str = include_str!("../../web_widget/console.js");
/// The console's editors' view (gaps, "try a question", broken files), built on console.js.
const CONSOLE_EDITORS_JS: &str = include_str!("../../web_widget/console-editors.js");
const CONSOLE_CSS: &str = include_str!("../../web_widget/console.css");

/// The console runs only its own script and styles and talks only to this server, so even if some
/// customer's text ever reached the DOM as markup, an inline handler in it would not run.
const CONSOLE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The styles of an article page, allowed by their hash (no other style, and no script at all).
const ARTICLE_STYLE: &str = "body{font:16px/1.6 system-ui,sans-serif;max-width:46rem;margin:2rem auto;\
     padding:0 1rem;color:#1d2430}code{background:#f1f3f6;padding:0 .2em;border-radius:3px}a{color:#1a5fb4}\
     img{max-width:100%}";

/// Article pages show the operator's markdown on the console's origin (where an agent's token
/// lives): no script runs at all, images come from here or https, and nothing may frame them.
fn article_csp() -> &'static HeaderValue {
    static CSP: OnceLock<HeaderValue> = OnceLock::new();
    CSP.get_or_init(|| {
        csp(&format!(
            "default-src 'none'; style-src {}; img-src 'self' https:; base-uri 'none'; \
             form-action 'none'; frame-ancestors 'none'",
            style_hash(ARTICLE_STYLE)
        ))
    })
}

/// The demo page runs the widget from here and its own inline styles (by hash). The widget is a
/// script on the operator's page, not a frame, so no page of ours needs to be framed.
fn demo_csp() -> &'static HeaderValue {
    static CSP: OnceLock<HeaderValue> = OnceLock::new();
    CSP.get_or_init(|| {
        let styles: Vec<String> = inline_styles(DEMO_PAGE).map(style_hash).collect();
        csp(&format!(
            "default-src 'none'; script-src 'self'; style-src 'self' {}; connect-src 'self'; \
             img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            styles.join(" ")
        ))
    })
}

fn csp(policy: &str) -> HeaderValue {
    HeaderValue::from_str(policy).expect("a policy is a valid header value")
}

/// `'sha256-…'`: the CSP source that allows exactly this `<style>` element's content.
fn style_hash(css: &str) -> String {
    use base64::Engine;
    let digest = Sha256::digest(css.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The contents of a page's `<style>` elements.
fn inline_styles(page: &str) -> impl Iterator<Item = &str> {
    page.split("<style>")
        .skip(1)
        .filter_map(|rest| rest.split_once("</style>").map(|(css, _)| css))
}

/// Headers every HTML page carries: its policy, no MIME sniffing, no address leaking to other
/// sites, and no framing (for browsers without `frame-ancestors`).
fn page_headers(policy: HeaderValue) -> [(header::HeaderName, HeaderValue); 4] {
    [
        (header::CONTENT_SECURITY_POLICY, policy),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    ]
}

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|| async { (page_headers(demo_csp().clone()), Html(DEMO_PAGE)) }),
        )
        .route("/widget.js", get(widget))
        .route("/console", get(console_page))
        .route(
            "/console.js",
            get(|| console_asset(CONSOLE_JS, "text/javascript")),
        )
        .route(
            "/console-editors.js",
            get(|| console_asset(CONSOLE_EDITORS_JS, "text/javascript")),
        )
        .route(
            "/console.css",
            get(|| console_asset(CONSOLE_CSS, "text/css")),
        )
        .route("/kb/{*path}", get(article))
}

/// The widget script. It is loaded from other origins, so it allows them explicitly (CORS, and
/// CORP for pages with cross-origin isolation). The URL is not versioned: browsers may keep it five
/// minutes, then revalidate cheaply with the ETag, so a new release reaches everyone quickly.
async fn widget(headers: HeaderMap) -> Response {
    static ETAG: OnceLock<HeaderValue> = OnceLock::new();
    let etag = ETAG.get_or_init(|| {
        let hash = Sha256::digest(WIDGET_JS.as_bytes());
        HeaderValue::from_str(&format!("\"{}\"", hex::encode(&hash[..12])))
            .expect("hex is a valid header value")
    });
    let common = [
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        ),
        (header::ETAG, etag.clone()),
        (
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        ),
        (
            header::HeaderName::from_static("cross-origin-resource-policy"),
            HeaderValue::from_static("cross-origin"),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    let fresh = headers.get(header::IF_NONE_MATCH).is_some_and(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii() == etag.as_bytes())
    });
    if fresh {
        return (StatusCode::NOT_MODIFIED, common).into_response();
    }
    (
        common,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/javascript; charset=utf-8"),
        )],
        WIDGET_JS,
    )
        .into_response()
}

async fn console_page() -> Response {
    (
        page_headers(HeaderValue::from_static(CONSOLE_CSP)),
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))],
        Html(CONSOLE_PAGE),
    )
        .into_response()
}

/// The console's script and styles: revalidated on each load (`no-cache`), so an upgrade shows at once.
async fn console_asset(body: &'static str, mime: &'static str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_str(&format!("{mime}; charset=utf-8"))
                    .expect("a valid header value"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

async fn article(
    State(state): State<AppState>,
    PathParams(path): PathParams<String>,
) -> Result<impl IntoResponse, ApiError> {
    // Only paths of indexed articles are served, so no path can reach outside the knowledge base.
    let article = state
        .kb
        .article(&path)
        .ok_or_else(|| ApiError::not_found(format!("no article at {path}")))?;
    let source = std::fs::read_to_string(state.kb.dir().join(&path))
        .map_err(|_| ApiError::not_found(format!("the article at {path} was just removed")))?;
    let body = crate::kb::render_html(&path, &source, |p| state.kb.has_article(p))
        .map_err(|e| ApiError::not_found(e.to_string()))?;
    let title = escape(&article.title);
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title}</title><style>{ARTICLE_STYLE}</style></head>\
         <body><p><a href=\"/\">Help centre</a></p><h1>{title}</h1>{body}</body></html>"
    );
    Ok((page_headers(article_csp().clone()), Html(page)))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
