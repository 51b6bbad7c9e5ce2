//! The HTTP layer, and the only module that knows axum: the customer and agent WebSockets, the REST
//! API, the demo page and the rendered knowledge-base articles. `auth` is the one place a request's
//! headers become an authenticated account; `socket` runs both WebSockets.

mod agent;
mod agent_socket;
mod api;
mod auth;
mod chat;
mod error;
mod lanes;
mod metrics;
mod pages;
mod serve;
mod socket;
mod upgrade;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::accounts::identity::IdentityVerifier;
use crate::accounts::Accounts;
use crate::admission::{Admission, Refused};
use crate::bot::Bot;
use crate::conversation::{Conversations, Desk};
use crate::kb::KnowledgeBase;
use crate::metrics::Metrics;
use crate::settings::LimitSettings;
use crate::store::Store;

pub use error::{ApiError, JsonBody, Params, PathParams};
pub use serve::{serve, Deadlines};

/// Cheap handles to everything a request may need.
#[derive(Clone)]
pub struct AppState {
    /// The customers' side of conversations.
    pub conversations: Conversations,
    /// The agents' side of conversations.
    pub desk: Desk,
    /// The bot (for "explain").
    pub bot: Bot,
    /// The knowledge base.
    pub kb: KnowledgeBase,
    /// The store (for reports and lists).
    pub store: Store,
    /// Limits on what clients may send and hold.
    pub limits: Arc<LimitSettings>,
    /// Logins, tokens and their revocation.
    pub accounts: Accounts,
    /// Checks customers' signed identities.
    pub identity: IdentityVerifier,
    /// Socket slots and per-address budgets.
    pub admission: Admission,
    /// What operators scrape at `/metrics`.
    pub metrics: Metrics,
}

/// All routes. Serve them with `into_make_service_with_connect_info::<SocketAddr>()`: the
/// WebSockets need the client's address.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(chat::router())
        .merge(api::router())
        .merge(agent::router())
        .merge(agent_socket::router())
        .merge(pages::router())
        .merge(metrics::router())
        .fallback(no_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(axum::middleware::map_response(no_sniffing))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// A path no route serves: the JSON error every other API error has (axum's is an empty body).
async fn no_route(uri: axum::http::Uri) -> ApiError {
    let path: String = uri.path().chars().take(200).collect();
    ApiError::not_found(format!(
        "nothing is served at {path}; the API is described in docs/PROTOCOL.md"
    ))
}

/// A route asked with a method it does not take (`GET /api/agent/login`).
async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    let path: String = uri.path().chars().take(200).collect();
    ApiError::method_not_allowed(format!(
        "{path} does not take {method}; see docs/PROTOCOL.md for how to call it"
    ))
}

/// Every response says what it is, and browsers do not guess otherwise (a JSON body is never run
/// as a script or shown as a page).
async fn no_sniffing(mut response: Response) -> Response {
    response
        .headers_mut()
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    response
}

/// The client's address: the TCP peer, or what a trusted proxy says it is. Every
/// `X-Forwarded-For` line is read, in order: a proxy that adds a line of its own instead of
/// appending to the client's puts the address it saw last, after any line the client forged.
fn client_address(state: &AppState, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let forwarded = (!forwarded.is_empty()).then_some(forwarded.as_str());
    state.admission.client_address(peer.ip(), forwarded)
}

/// Socket buffers: small, so an idle socket costs little (frames larger than the read buffer are
/// read in several steps). What waits to be written is bounded by the outbox, in frames; a frame
/// itself may be large (a `welcome` with many missed frames).
fn sized(max_frame: usize, write_buffer: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(2 * 1024)
        .write_buffer_size(write_buffer)
        .max_message_size(Some(max_frame))
        .max_frame_size(Some(max_frame))
}

/// A refused upgrade: `503` when the server's sockets are all taken, `429` when this address has
/// too many; both with `Retry-After` and what to do.
fn refused(refusal: Refused, address: IpAddr) -> Response {
    let (status, code, message) = match refusal {
        Refused::Full { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            "server_full",
            "every connection slot is taken; try again shortly",
        ),
        Refused::TooManyFromAddress { .. } => {
            tracing::warn!(%address, "too many sockets from one address; if it is your reverse proxy, list it in server.trusted_proxies");
            (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_connections",
                "too many connections from your address; close some or try again shortly",
            )
        }
    };
    let body = serde_json::json!({ "code": code, "message": message });
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(refusal.retry_after()),
    );
    response
}
