//! The agents' REST API: login, conversation lists, transcripts, search, context packets,
//! tickets, who is online. Every route but login needs an agent's token; a customer may read
//! their own conversation with their session token. (The agent WebSocket is `agent_socket`.)

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{bearer, AdminAccount, AgentAccount, Authed};
use super::{ApiError, AppState, JsonBody, Params, PathParams};
use crate::accounts::{self, token, AuthError, EDITORS_TAKE_NO_CHATS};
use crate::ids::{AgentId, ConversationId};
use crate::protocol::context::ContextPacket;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/agent/login", post(login))
        .route("/api/agent/logout", post(logout))
        .route("/api/agents/{id}/revoke", post(revoke_all))
        .route("/api/conversations", get(list))
        .route("/api/conversations/search", get(search))
        .route("/api/conversations/{id}", get(transcript))
        .route("/api/conversations/{id}/context", get(context))
        .route("/api/tickets", get(tickets))
        .route("/api/tickets/{id}", post(update_ticket))
        .route("/api/agents", get(agents))
}

#[derive(Deserialize)]
struct LoginBody {
    email: String,
    password: String,
    /// The device token this browser was given at its last sign-in, if any.
    #[serde(default)]
    device: Option<String>,
}

/// Throttled per address and per account, or per device for a browser that brings the device
/// token of its last sign-in (`429` with `Retry-After`); `503` when every password-hashing thread
/// is busy.
async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Json<Value>, ApiError> {
    let address = super::client_address(&state, peer, &headers);
    let login = state
        .accounts
        .login(&body.email, &body.password, body.device.as_deref(), address)
        .await?;
    Ok(Json(serde_json::to_value(login).unwrap_or_default()))
}

/// Ends this token's session: it stops working at once and its open sockets close.
async fn logout(
    Authed(session): Authed,
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let token = bearer(&headers).unwrap_or_default();
    state.accounts.logout(token).await?;
    tracing::info!(agent = %session.account.email, "logged out");
    Ok(Json(json!({ "logged_out": true })))
}

/// An admin revokes every token of an account (a lost laptop, someone who left): its sessions
/// end at once and its open sockets close.
async fn revoke_all(
    AdminAccount(admin): AdminAccount,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let id = AgentId::from(id);
    if accounts::find(&state.store, &id).await?.is_none() {
        return Err(ApiError::not_found("there is no account with this id"));
    }
    let revoked = state.accounts.revoke_all(&id).await?;
    tracing::warn!(by = %admin.email, agent = %id, revoked, "every token of an account revoked");
    Ok(Json(json!({ "revoked": revoked })))
}

#[derive(Deserialize)]
struct ListParams {
    state: Option<String>,
    limit: Option<i64>,
}

async fn list(
    _: AgentAccount,
    State(state): State<AppState>,
    Params(p): Params<ListParams>,
) -> Result<Json<Value>, ApiError> {
    let rows = state
        .store
        .list_conversations(p.state.as_deref(), p.limit.unwrap_or(50).clamp(1, 500))
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let last = state.store.handoffs_of(&row.id).await?.pop();
        out.push(json!({
            "id": row.id, "state": row.state, "visitor": row.visitor,
            "created_at": row.created_at, "updated_at": row.updated_at,
            "team": last.as_ref().and_then(|h| h.team.clone()),
            "priority": last.as_ref().map(|h| h.priority),
            "agent_id": last.as_ref().and_then(|h| h.agent_id.clone()),
        }));
    }
    Ok(Json(json!({ "conversations": out })))
}

#[derive(Deserialize)]
struct SearchParams {
    q: String,
    limit: Option<i64>,
}

async fn search(
    _: AgentAccount,
    State(state): State<AppState>,
    Params(p): Params<SearchParams>,
) -> Result<Json<Value>, ApiError> {
    let q = p.q.trim();
    if q.is_empty() {
        return Err(ApiError::bad_request(
            "empty_query",
            "give the words in ?q=",
        ));
    }
    let hits = state
        .store
        .search_messages(q, p.limit.unwrap_or(50).clamp(1, 500))
        .await?;
    let hits: Vec<Value> = hits
        .into_iter()
        .map(|(id, seq, from, text)| json!({"id": id, "seq": seq, "from": from, "text": text}))
        .collect();
    Ok(Json(json!({ "conversations": hits })))
}

/// Agents see everything; a customer's session token shows that customer's conversation only.
async fn transcript(
    State(state): State<AppState>,
    headers: HeaderMap,
    PathParams(id): PathParams<String>,
) -> Result<Json<Value>, ApiError> {
    let Some(bearer) = bearer(&headers) else {
        return Err(AuthError::Missing.into());
    };
    let as_agent = match accounts::lookup(&state.store, bearer).await? {
        Some(account) if account.role.takes_conversations() => true,
        Some(_) => return Err(ApiError::forbidden(EDITORS_TAKE_NO_CHATS)),
        None => {
            let hash = token::hash(bearer);
            if !state.store.session_owns(&id, &hash).await? {
                // A customer's conversation is stored with its first message: until then its
                // session finds none.
                if crate::conversation::opens_unstored(bearer, &id) {
                    return Err(ApiError::not_found(
                        "there is no such conversation yet: it is stored with its first message",
                    ));
                }
                // A token that opens no conversation at all is an agent's that expired or was
                // revoked (or none of ours): signing in again is what to do.
                if state.store.conversation_by_session(&hash).await?.is_none() {
                    return Err(AuthError::Expired.into());
                }
                return Err(ApiError::forbidden(
                    "this token does not give access to this conversation",
                ));
            }
            false
        }
    };
    let Some(row) = state.store.conversation_summary(&id).await? else {
        return Err(ApiError::not_found("there is no such conversation"));
    };
    let transcript: Vec<Value> = state
        .store
        .events_after(&id, 0)
        .await?
        .iter()
        .filter_map(|body| serde_json::from_str(body).ok())
        .collect();
    let mut body = json!({
        "id": row.id, "state": row.state, "visitor": row.visitor, "transcript": transcript,
    });
    if as_agent {
        body["notes"] = serde_json::to_value(state.store.notes_of(&id).await?).unwrap_or_default();
        body["handoffs"] =
            serde_json::to_value(state.store.handoffs_of(&id).await?).unwrap_or_default();
    }
    Ok(Json(body))
}

async fn context(
    _: AgentAccount,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Json<ContextPacket>, ApiError> {
    Ok(Json(state.desk.context(&ConversationId::from(id)).await?))
}

#[derive(Deserialize)]
struct TicketParams {
    status: Option<String>,
    before: Option<i64>,
    limit: Option<i64>,
}

/// Tickets newest first, a page at a time: `?status=open|closed`, `?before=<id>` (the
/// `next_before` of the previous page), `?limit=` (1–500, 100 by default).
async fn tickets(
    _: AgentAccount,
    State(state): State<AppState>,
    Params(p): Params<TicketParams>,
) -> Result<Json<Value>, ApiError> {
    let status = p.status.as_deref().map(ticket_status).transpose()?;
    let limit = p.limit.unwrap_or(100).clamp(1, 500);
    let page = state.store.tickets_page(status, p.before, limit).await?;
    let next_before = (page.len() as i64 == limit)
        .then(|| page.last().map(|t| t.id))
        .flatten();
    Ok(Json(json!({ "tickets": page, "next_before": next_before })))
}

#[derive(Deserialize)]
struct TicketUpdate {
    status: String,
}

/// An agent marks a ticket `closed` (followed up) or `open` again.
async fn update_ticket(
    _: AgentAccount,
    State(state): State<AppState>,
    PathParams(id): PathParams<i64>,
    JsonBody(body): JsonBody<TicketUpdate>,
) -> Result<Json<Value>, ApiError> {
    let status = ticket_status(&body.status)?;
    if !state.store.set_ticket_status(id, status).await? {
        return Err(ApiError::not_found("there is no such ticket"));
    }
    Ok(Json(json!({ "id": id, "status": status })))
}

fn ticket_status(s: &str) -> Result<&'static str, ApiError> {
    match s {
        "open" => Ok("open"),
        "closed" => Ok("closed"),
        _ => Err(ApiError::bad_request(
            "bad_status",
            "a ticket's status is `open` or `closed`",
        )),
    }
}

/// The agents connected now (online or away), e.g. to pick whom to transfer a conversation to.
async fn agents(_: AgentAccount, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "agents": state.desk.connected() })))
}
