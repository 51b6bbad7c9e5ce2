//! The agent WebSocket at `/ws/agent`: authenticated by `?token=` before the upgrade, or by an
//! `auth` frame first; its slots are apart from the customers', so no number of customers can
//! keep an agent out. The socket lives only as long as its token: when the token expires or is
//! revoked (the accounts' [`Revoked`] broadcast) it is closed with 4003 (`logged_out`).
//!
//! An agent's `message`, `note` and `typing` frames are handled in the conversation's lane
//! ([`Lanes`]): in order within a conversation, concurrently across them, so a console's chats
//! share the store's group commits. Every other frame (a claim, a transfer, a resolve, presence, a
//! ping) first waits for the frames before it, then is handled alone, as all frames once were: its
//! effect may reach beyond one conversation (a claim counts the agent's chats; a pong promises
//! that everything before it is done).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

use super::lanes::Lanes;
use super::socket::{self, Handler, Timing};
use super::{ApiError, AppState, Params};
use crate::accounts::{Account, Accounts, Revoked, Session, EDITORS_TAKE_NO_CHATS};
use crate::admission::{Pool, Slot};
use crate::conversation::{Attendance, ConversationError};
use crate::fanout::{outbox, Outbox};
use crate::protocol::agent::{AgentFrame, AgentServerFrame, ErrorAbout};
use crate::protocol::{decode, encode, CloseCode, ErrorCode};
use tokio::sync::{broadcast, oneshot};

/// Largest agent frame accepted (a long reply with a pasted passage fits easily).
const MAX_AGENT_FRAME: usize = 64 * 1024;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/ws/agent", get(upgrade))
}

#[derive(Deserialize)]
struct WsParams {
    token: Option<String>,
}

async fn upgrade(
    ws: super::upgrade::Upgrade,
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Params(p): Params<WsParams>,
) -> Response {
    let address = super::client_address(&state, peer, &headers);
    // Subscribed before the token is checked, so no revocation falls between the two.
    let revocations = state.accounts.revocations();
    let session = match p.token.as_deref() {
        Some(token) => match state.accounts.session(Some(token)).await {
            Ok(s) if !s.account.role.takes_conversations() => {
                return ApiError::forbidden(EDITORS_TAKE_NO_CHATS).into_response()
            }
            Ok(s) => Some(s),
            Err(e) => return ApiError::from(e).into_response(),
        },
        None => None,
    };
    // Until it signs in, the socket counts against its address: sockets that never sign in
    // cannot fill the agents' pool.
    let slot = match session {
        Some(_) => state.admission.admit_signed_in_agent(address),
        None => state.admission.admit(Pool::Agents, address),
    };
    let slot = match slot {
        Ok(slot) => slot,
        Err(refusal) => return super::refused(refusal, address),
    };
    let config = super::sized(MAX_AGENT_FRAME * 2, 8 * 1024);
    let gate = state.limits.max_frame_bytes_before_greeting;
    ws.on_upgrade(config, gate, move |socket| {
        let (outbox, inbox) = outbox(state.limits.agent_outbox);
        let timing = Timing::from(&state.limits);
        let lanes = Lanes::new(state.limits.agent_frames_in_flight);
        let (ended, stop) = oneshot::channel();
        let mut connection = AgentConnection {
            state,
            outbox,
            lanes,
            agent: None,
            ended: Some(ended),
            _attendance: None,
            slot,
        };
        async move {
            if let Some(session) = session {
                connection.authenticated(session, revocations).await;
            }
            let stop = async move {
                match stop.await {
                    Ok(code) => code,
                    // The connection is gone without its session ending: nothing to stop.
                    Err(_) => std::future::pending().await,
                }
            };
            socket::run_until(socket, inbox, connection, timing, stop).await
        }
    })
}

struct AgentConnection {
    state: AppState,
    outbox: Outbox,
    /// Where frames of one conversation wait for the ones before them.
    lanes: Lanes,
    agent: Option<Account>,
    /// Told when the session ends (the token expired or was revoked): the socket closes.
    ended: Option<oneshot::Sender<CloseCode>>,
    _attendance: Option<Attendance>,
    /// The socket's place; it counts against its address until the agent signs in.
    slot: Slot,
}

impl Handler for AgentConnection {
    fn on_text(mut self, text: String) -> Pin<Box<dyn Future<Output = Self> + Send>> {
        Box::pin(async move {
            self.handle(&text).await;
            self
        })
    }

    fn on_binary(&mut self) {
        self.send(AgentServerFrame::error(
            ErrorCode::BadFrame,
            "send JSON text frames",
        ));
    }

    fn greeted(&self) -> bool {
        self.agent.is_some()
    }
}

impl AgentConnection {
    fn send(&self, frame: AgentServerFrame) {
        self.outbox.push(encode(&frame));
    }

    async fn authenticated(&mut self, session: Session, revocations: broadcast::Receiver<Revoked>) {
        let agent = session.account.clone();
        if !agent.role.takes_conversations() {
            // An editor never counts as an online agent, so no chat is ever assigned to them.
            return self.send(AgentServerFrame::error(
                ErrorCode::NotAnAgent,
                EDITORS_TAKE_NO_CHATS,
            ));
        }
        if let Some(ended) = self.ended.take() {
            let accounts = self.state.accounts.clone();
            tokio::spawn(watch_session(accounts, session, revocations, ended));
        }
        self.slot.signed_in();
        let desk = &self.state.desk;
        self._attendance = Some(desk.connect(agent.clone(), &self.outbox));
        self.agent = Some(agent);
        // Someone is here now: queued conversations may be assigned.
        if let Err(e) = desk.dispatch().await {
            tracing::error!("assigning after an agent connected: {e}");
        }
    }

    async fn handle(&mut self, text: &str) {
        let frame = match decode::<AgentFrame>(text, MAX_AGENT_FRAME) {
            Ok(frame) => frame,
            Err(refusal) => {
                return self.send(AgentServerFrame::error(refusal.code, refusal.message))
            }
        };
        let agent =
            match (&self.agent, frame) {
                (_, AgentFrame::Ping { id }) => {
                    // Answered once everything sent before it is handled.
                    self.lanes.settle().await;
                    return self.send(AgentServerFrame::Pong { id });
                }
                (None, AgentFrame::Auth { token }) => {
                    let revocations = self.state.accounts.revocations();
                    match self.state.accounts.session(Some(&token)).await {
                        Ok(session) => self.authenticated(session, revocations).await,
                        Err(e) => self.send(AgentServerFrame::error(
                            ErrorCode::Unauthorized,
                            e.to_string(),
                        )),
                    }
                    return;
                }
                (None, _) => return self.send(AgentServerFrame::error(
                    ErrorCode::Unauthorized,
                    "send {\"type\":\"auth\",\"token\":…} first (log in at POST /api/agent/login)",
                )),
                (Some(_), AgentFrame::Auth { .. }) => {
                    return self.send(AgentServerFrame::error(
                        ErrorCode::BadFrame,
                        "this socket is already authenticated",
                    ))
                }
                (Some(agent), frame) => (agent.clone(), frame),
            };
        let (agent, frame) = agent;
        let acting = Acting {
            state: self.state.clone(),
            outbox: self.outbox.clone(),
        };
        match lane(&frame) {
            Some(conversation) => {
                let conversation = conversation.to_owned();
                let work = async move { acting.handle(&agent, frame).await };
                self.lanes.run(&conversation, work).await
            }
            None => {
                self.lanes.settle().await;
                acting.handle(&agent, frame).await
            }
        }
    }
}

/// The conversation whose lane `frame` is handled in; `None` for a frame handled alone.
fn lane(frame: &AgentFrame) -> Option<&str> {
    match frame {
        AgentFrame::Message {
            conversation_id, ..
        }
        | AgentFrame::Note {
            conversation_id, ..
        }
        | AgentFrame::Typing {
            conversation_id, ..
        } => Some(conversation_id.as_str()),
        _ => None,
    }
}

/// The conversation `frame` names and, for a message, its `client_id`: what an error answering
/// it says it is about.
fn about(frame: &AgentFrame) -> ErrorAbout {
    match frame {
        AgentFrame::Message {
            conversation_id,
            client_id,
            ..
        } => ErrorAbout {
            conversation_id: Some(conversation_id.clone()),
            client_id: client_id.clone(),
        },
        AgentFrame::Note {
            conversation_id, ..
        }
        | AgentFrame::Typing {
            conversation_id, ..
        }
        | AgentFrame::Claim { conversation_id }
        | AgentFrame::Transfer {
            conversation_id, ..
        }
        | AgentFrame::Resolve { conversation_id } => ErrorAbout {
            conversation_id: Some(conversation_id.clone()),
            client_id: None,
        },
        AgentFrame::Auth { .. } | AgentFrame::Ping { .. } | AgentFrame::Presence { .. } => {
            ErrorAbout::default()
        }
    }
}

/// What handling an authenticated agent's frame needs: cheap handles, so a lane's task owns them.
struct Acting {
    state: AppState,
    outbox: Outbox,
}

impl Acting {
    fn send(&self, frame: AgentServerFrame) {
        self.outbox.push(encode(&frame));
    }

    /// Does what `frame` asks and answers a failure with a frame.
    async fn handle(&self, agent: &Account, frame: AgentFrame) {
        let about = about(&frame);
        match self.act(agent, frame).await {
            Ok(()) => {}
            Err(ConversationError::Claim(e)) => {
                let e = ConversationError::Claim(e);
                self.send(AgentServerFrame::ClaimFailed {
                    conversation_id: about.conversation_id.unwrap_or_else(|| "".into()),
                    code: e.code(),
                    message: e.to_string(),
                })
            }
            Err(e) => {
                if e.is_internal() {
                    tracing::error!("agent frame failed: {e}");
                }
                self.send(AgentServerFrame::error_about(
                    e.code(),
                    e.public_message(),
                    about,
                ))
            }
        }
    }

    async fn act(&self, agent: &Account, frame: AgentFrame) -> Result<(), ConversationError> {
        let desk = &self.state.desk;
        match frame {
            AgentFrame::Auth { .. } | AgentFrame::Ping { .. } => Ok(()),
            AgentFrame::Presence { status } => desk.set_presence(&agent.id, status).await,
            AgentFrame::Claim { conversation_id } => desk.claim(agent, &conversation_id).await,
            AgentFrame::Message {
                conversation_id,
                text,
                client_id,
                seen,
            } => {
                let text = text.trim();
                let max = self.state.limits.max_message_chars;
                let refused = if text.is_empty() || text.chars().count() > max {
                    Some(format!("messages are 1 to {max} characters"))
                } else {
                    client_id
                        .as_deref()
                        .map(crate::protocol::customer::check_client_id)
                        .and_then(Result::err)
                        .map(|refusal| refusal.message)
                };
                if let Some(message) = refused {
                    self.send(AgentServerFrame::error_about(
                        ErrorCode::BadFrame,
                        message,
                        ErrorAbout {
                            conversation_id: Some(conversation_id),
                            client_id,
                        },
                    ));
                    return Ok(());
                }
                desk.message(agent, &conversation_id, text, client_id.as_deref(), seen)
                    .await
                    .map(|_| ())
            }
            AgentFrame::Note {
                conversation_id,
                text,
            } => {
                let text = text.trim();
                let max = self.state.limits.max_message_chars;
                if text.is_empty() || text.chars().count() > max {
                    self.send(AgentServerFrame::error_about(
                        ErrorCode::BadFrame,
                        format!("notes are 1 to {max} characters"),
                        ErrorAbout {
                            conversation_id: Some(conversation_id),
                            client_id: None,
                        },
                    ));
                    return Ok(());
                }
                desk.note(agent, &conversation_id, text).await
            }
            AgentFrame::Typing {
                conversation_id,
                on,
            } => desk.typing(agent, &conversation_id, on),
            AgentFrame::Transfer {
                conversation_id,
                to_agent,
                to_team,
                note,
            } => {
                desk.transfer(
                    agent,
                    &conversation_id,
                    to_agent.as_ref(),
                    to_team.as_deref(),
                    note,
                )
                .await
            }
            AgentFrame::Resolve { conversation_id } => desk.resolve(agent, &conversation_id).await,
        }
    }
}

/// Waits until the session ends — its token expires, a revocation names it, or the store no
/// longer holds it at a check (`agents.session_check_seconds`) — and tells the socket to close;
/// returns early when the socket is gone first.
async fn watch_session(
    accounts: Accounts,
    session: Session,
    mut revocations: broadcast::Receiver<Revoked>,
    mut ended: oneshot::Sender<CloseCode>,
) {
    let expiry = tokio::time::sleep(session.remaining());
    tokio::pin!(expiry);
    // A logout or revocation on another node (or by the command line) is broadcast there, not
    // here: the store tells, at the next check.
    let every = accounts.check_every();
    let mut check = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ended.closed() => return,
            _ = &mut expiry => break,
            _ = check.tick() => {
                if !accounts.is_live(&session).await {
                    break;
                }
            }
            revoked = revocations.recv() => match revoked {
                Ok(revoked) if session.ended_by(&revoked) => break,
                Ok(_) => {}
                // Revocations were missed: ask the store whether this token still holds.
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    if !accounts.is_live(&session).await {
                        break;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
        }
    }
    tracing::info!(agent = %session.account.email, "session ended: closing the agent's socket");
    let _ = ended.send(CloseCode::LoggedOut);
}
