//! The agents' side of HTTP: login, the agent WebSocket at `/ws/agent`, and REST for conversation
//! lists, transcripts, search, context packets and tickets. Every route but login needs an agent
//! token; a customer may read their own conversation with their session token.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::auth::{bearer, AgentAccount};
use super::{ApiError, AppState};
use crate::conversation::{hash, ConversationError, Outbound};
use crate::handoff::accounts::{self, AuthError};
use crate::handoff::protocol::{AgentFrame, AgentServerFrame, Presence};
use crate::handoff::AgentSocket;
use crate::store::{AgentRow, TokenLookup};

const MAX_AGENT_FRAME: usize = 64 * 1024;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/agent/login", post(login))
        .route("/ws/agent", get(upgrade))
        .route("/api/conversations", get(list))
        .route("/api/conversations/search", get(search))
        .route("/api/conversations/{id}", get(transcript))
        .route("/api/conversations/{id}/context", get(context))
        .route("/api/tickets", get(tickets))
        .route("/api/agents", get(agents))
}

#[derive(Deserialize)]
struct LoginBody {
    email: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    Json(body): Json<LoginBody>,
) -> Result<Json<Value>, ApiError> {
    let ttl = (state.agents.token_ttl_seconds * 1000.0) as i64;
    let login = accounts::login(&state.store, &body.email, &body.password, ttl).await?;
    Ok(Json(serde_json::to_value(login).unwrap_or_default()))
}

#[derive(Deserialize)]
struct ListParams {
    state: Option<String>,
    limit: Option<i64>,
}

async fn list(
    _: AgentAccount,
    State(state): State<AppState>,
    Query(p): Query<ListParams>,
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
    Query(p): Query<SearchParams>,
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
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let Some(token) = bearer(&headers) else {
        return Err(AuthError::Missing.into());
    };
    let as_agent = match state
        .store
        .agent_by_token(&hash(token), crate::conversation::now_ms())
        .await?
    {
        TokenLookup::Valid(account) if accounts::takes_conversations(&account.role) => true,
        TokenLookup::Valid(_) => return Err(ApiError::forbidden(accounts::EDITORS_TAKE_NO_CHATS)),
        TokenLookup::Expired => return Err(AuthError::Expired.into()),
        TokenLookup::Unknown => {
            if !state.store.session_owns(&id, &hash(token)).await? {
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
    let transcript = state.store.events_after(&id, 0).await?;
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
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(state.conversations.context(&id).await?))
}

async fn tickets(_: AgentAccount, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "tickets": state.store.tickets(500).await? })))
}

/// The agents connected now (online or away), e.g. to pick whom to transfer a conversation to.
async fn agents(_: AgentAccount, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        json!({ "agents": state.conversations.handoff().connected() }),
    ))
}

#[derive(Deserialize)]
struct WsParams {
    token: Option<String>,
}

async fn upgrade(
    ws: WebSocketUpgrade,
    State(state): State<AppState>,
    Query(p): Query<WsParams>,
) -> Response {
    let agent = match p.token.as_deref() {
        Some(token) => match accounts::authenticate(&state.store, Some(token)).await {
            Ok(agent) if !accounts::takes_conversations(&agent.role) => {
                return ApiError::forbidden(accounts::EDITORS_TAKE_NO_CHATS).into_response()
            }
            Ok(agent) => Some(agent),
            Err(e) => return ApiError::from(e).into_response(),
        },
        None => None,
    };
    ws.max_message_size(MAX_AGENT_FRAME * 2)
        .on_upgrade(move |socket| serve(socket, state, agent))
}

async fn serve(socket: WebSocket, state: AppState, agent: Option<AgentRow>) {
    let Ok(_permit) = state.connections.clone().acquire_owned().await else {
        return;
    };
    let (mut stream, tx, writer) = super::socket::split(socket);
    let mut conn = AgentConnection {
        state,
        tx,
        agent: None,
        _socket: None,
    };
    if let Some(agent) = agent {
        conn.authenticated(agent).await;
    }
    while let Some(Ok(message)) = stream.next().await {
        match message {
            Message::Text(text) => conn.on_text(text.as_str()).await,
            Message::Close(_) => break,
            Message::Binary(_) => {
                conn.send(AgentServerFrame::error(
                    "bad_frame",
                    "send JSON text frames",
                ))
                .await
            }
            Message::Ping(_) | Message::Pong(_) => {}
        }
    }
    drop(conn);
    writer.finish().await;
}

struct AgentConnection {
    state: AppState,
    tx: mpsc::Sender<Outbound>,
    agent: Option<AgentRow>,
    _socket: Option<AgentSocket>,
}

impl AgentConnection {
    async fn send(&self, frame: AgentServerFrame) {
        let _ = self.tx.send(frame.to_json().into()).await;
    }

    async fn authenticated(&mut self, agent: AgentRow) {
        if !accounts::takes_conversations(&agent.role) {
            // An editor never counts as an online agent, so no chat is ever assigned to them.
            return self
                .send(AgentServerFrame::error(
                    "not_an_agent",
                    accounts::EDITORS_TAKE_NO_CHATS,
                ))
                .await;
        }
        let handoff = self.state.conversations.handoff();
        self._socket = Some(handoff.connect(agent.clone(), self.tx.clone()));
        let status = handoff.presence(&agent.id);
        self.agent = Some(agent.clone());
        self.send(AgentServerFrame::Ready { agent, status }).await;
        self.send(AgentServerFrame::Queue {
            entries: handoff.snapshot(crate::conversation::now_ms()),
        })
        .await;
        // Someone is here now: queued conversations may be assigned.
        if let Err(e) = self.state.conversations.dispatch().await {
            tracing::error!("assigning after an agent connected: {e}");
        }
    }

    async fn on_text(&mut self, text: &str) {
        if text.len() > MAX_AGENT_FRAME {
            return self
                .send(AgentServerFrame::error(
                    "frame_too_large",
                    format!("frames are limited to {MAX_AGENT_FRAME} bytes"),
                ))
                .await;
        }
        let frame = match serde_json::from_str::<AgentFrame>(text) {
            Ok(f) => f,
            Err(e) => {
                let mut detail = e.to_string();
                detail.truncate(200);
                return self
                    .send(AgentServerFrame::error(
                        "bad_frame",
                        format!("not a valid frame: {detail}"),
                    ))
                    .await;
            }
        };
        let agent = match (&self.agent, frame) {
            (None, AgentFrame::Auth { token }) => {
                match accounts::authenticate(&self.state.store, Some(&token)).await {
                    Ok(agent) => self.authenticated(agent).await,
                    Err(e) => {
                        self.send(AgentServerFrame::error("unauthorized", e.to_string()))
                            .await
                    }
                }
                return;
            }
            (None, _) => return self
                .send(AgentServerFrame::error(
                    "unauthorized",
                    "send {\"type\":\"auth\",\"token\":…} first (log in at POST /api/agent/login)",
                ))
                .await,
            (Some(_), AgentFrame::Auth { .. }) => {
                return self
                    .send(AgentServerFrame::error(
                        "bad_frame",
                        "this socket is already authenticated",
                    ))
                    .await
            }
            (Some(agent), frame) => (agent.clone(), frame),
        };
        let (agent, frame) = agent;
        let conversations = self.state.conversations.clone();
        let result = match frame {
            AgentFrame::Auth { .. } => Ok(()),
            AgentFrame::Presence { status } => {
                let status = if status == Presence::Offline {
                    Presence::Away
                } else {
                    status
                };
                conversations.handoff().set_presence(&agent.id, status);
                if status == Presence::Online {
                    conversations.dispatch().await
                } else {
                    Ok(())
                }
            }
            AgentFrame::Claim { conversation_id } => {
                match conversations.claim(&agent, &conversation_id).await {
                    Err(ConversationError::Claim(e)) => {
                        self.send(AgentServerFrame::ClaimFailed {
                            conversation_id,
                            code: e.code(),
                            message: e.message().into(),
                        })
                        .await;
                        Ok(())
                    }
                    other => other,
                }
            }
            AgentFrame::Message {
                conversation_id,
                text,
                client_id,
            } => {
                let text = text.trim();
                let max = self.state.limits.max_message_chars;
                if text.is_empty() || text.chars().count() > max {
                    return self
                        .send(AgentServerFrame::error(
                            "bad_frame",
                            format!("messages are 1 to {max} characters"),
                        ))
                        .await;
                }
                conversations
                    .agent_message(&agent, &conversation_id, text, client_id.as_deref())
                    .await
                    .map(|_| ())
            }
            AgentFrame::Note {
                conversation_id,
                text,
            } => {
                if text.trim().is_empty() {
                    return self
                        .send(AgentServerFrame::error("bad_frame", "the note is empty"))
                        .await;
                }
                conversations
                    .note(&agent, &conversation_id, text.trim())
                    .await
            }
            AgentFrame::Typing {
                conversation_id,
                on,
            } => {
                conversations
                    .agent_typing(&agent, &conversation_id, on)
                    .await
            }
            AgentFrame::Transfer {
                conversation_id,
                to_agent,
                to_team,
                note,
            } => {
                conversations
                    .transfer(
                        &agent,
                        &conversation_id,
                        to_agent.as_deref(),
                        to_team.as_deref(),
                        note,
                    )
                    .await
            }
            AgentFrame::Resolve { conversation_id } => {
                conversations.resolve(&agent, &conversation_id).await
            }
        };
        if let Err(e) = result {
            let code = match e {
                ConversationError::NotOwner => "not_owner",
                ConversationError::NotFound => "not_found",
                ConversationError::UnknownAgent => "unknown_agent",
                ref other => {
                    tracing::error!("agent frame failed: {other}");
                    return self
                        .send(AgentServerFrame::error(
                            "unavailable",
                            "the server could not do this just now; try again",
                        ))
                        .await;
                }
            };
            self.send(AgentServerFrame::error(code, e.to_string()))
                .await;
        }
    }
}
