//! The HTTP layer, and the only module that knows axum: the customer and agent WebSockets, the REST
//! API, the demo page and the rendered knowledge-base articles. `auth` is the one place a request's
//! headers become an authenticated account.

mod agent;
mod api;
mod auth;
mod chat;
mod error;
mod pages;
mod socket;

use std::sync::Arc;

use axum::Router;
use tokio::sync::Semaphore;

use crate::bot::Bot;
use crate::conversation::Conversations;
use crate::kb::KnowledgeBase;
use crate::settings::{AgentSettings, LimitSettings};
use crate::store::Store;

pub use error::ApiError;

/// Cheap handles to everything a request may need.
#[derive(Clone)]
pub struct AppState {
    /// Conversations and their sockets.
    pub conversations: Conversations,
    /// The bot (for "explain").
    pub bot: Bot,
    /// The knowledge base.
    pub kb: KnowledgeBase,
    /// The store (for reports).
    pub store: Store,
    /// Limits on what customers may send.
    pub limits: Arc<LimitSettings>,
    /// Agent login settings.
    pub agents: Arc<AgentSettings>,
    /// One permit per open WebSocket.
    pub connections: Arc<Semaphore>,
}

/// All routes.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(chat::router())
        .merge(api::router())
        .merge(agent::router())
        .merge(pages::router())
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}
