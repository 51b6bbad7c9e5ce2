//! Pages for people: the demo page with the chat box, and knowledge-base articles rendered to HTML
//! (the link target of answers whose article has no public `url`).

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;

use super::{ApiError, AppState};

const DEMO_PAGE: &str = include_str!("../../web_widget/index.html");
const CHAT_JS: &str = include_str!("../../web_widget/chat.js");

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Html(DEMO_PAGE) }))
        .route(
            "/chat.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    CHAT_JS,
                )
            }),
        )
        .route("/kb/{*path}", get(article))
}

async fn article(
    State(state): State<AppState>,
    Path(path): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    // Only paths of indexed articles are served, so no path can reach outside the knowledge base.
    let article = state
        .kb
        .article(&path)
        .ok_or_else(|| ApiError::not_found(format!("no article at {path}")))?;
    let source = std::fs::read_to_string(state.kb.dir().join(&path))
        .map_err(|_| ApiError::not_found(format!("the article at {path} was just removed")))?;
    let body =
        crate::kb::render_html(&path, &source).map_err(|e| ApiError::not_found(e.to_string()))?;
    let title = escape(&article.title);
    Ok(Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title}</title><style>body{{font:16px/1.6 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1d2430}}\
         code{{background:#f1f3f6;padding:0 .2em;border-radius:3px}}a{{color:#1a5fb4}}</style></head>\
         <body><p><a href=\"/\">Help centre</a></p><h1>{title}</h1>{body}</body></html>"
    )))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
