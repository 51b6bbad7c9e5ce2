//! Serving the router on a listener, with the connection limits axum's own `serve` does not set:
//! a client must send a request's headers within `server.header_timeout_seconds` (also the most a
//! kept-alive connection may sit idle), and a request must arrive and be answered within
//! `server.request_timeout_seconds`. So clients that dribble their request a byte at a time
//! (slowloris) cannot hold connections open. A WebSocket is a request only until its upgrade: once
//! upgraded, it lives by its own deadlines (`http/socket.rs`).

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::{mpsc, watch};
use tower_service::Service;

use crate::settings::ServerSettings;

/// The HTTP deadlines, from `[server]`.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// To send a request's headers (and the most a kept-alive connection waits for the next).
    pub headers: Duration,
    /// To send the whole request and be answered.
    pub request: Duration,
}

impl Deadlines {
    /// The deadlines `server` sets.
    pub fn from(server: &ServerSettings) -> Self {
        let secs = |s: f64| Duration::from_secs_f64(s.clamp(0.1, 86_400.0));
        Self {
            headers: secs(server.header_timeout_seconds),
            request: secs(server.request_timeout_seconds),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then stops accepting, lets open
/// requests finish and closes idle connections. Every accepted socket gets `TCP_NODELAY`: a frame
/// is written as soon as it is ready instead of waiting (up to the client's delayed ACK, about
/// 40 ms) behind the previous one.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    deadlines: Deadlines,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = router.layer(axum::middleware::from_fn_with_state(
        deadlines.request,
        request_deadline,
    ));
    let mut make = router.into_make_service_with_connect_info::<SocketAddr>();
    // Connections hold a clone of `open` while they live and watch `stop` for the shutdown.
    let (stop, stopping) = watch::channel(false);
    let (open, mut all_closed) = mpsc::channel::<()>(1);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // wait a little rather than spin.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!("could not set TCP_NODELAY on a socket: {e}");
        }
        let service = match make.call(peer).await {
            Ok(service) => service,
            Err(never) => match never {},
        };
        let mut stopping = stopping.clone();
        let open = open.clone();
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(deadlines.headers)
                .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service))
                .with_upgrades();
            tokio::pin!(connection);
            let mut shutting_down = false;
            loop {
                tokio::select! {
                    done = connection.as_mut() => {
                        if let Err(e) = done {
                            tracing::debug!(%peer, "connection ended: {e}");
                        }
                        break;
                    }
                    _ = stopping.wait_for(|stop| *stop), if !shutting_down => {
                        // Finish the request in flight, then close.
                        connection.as_mut().graceful_shutdown();
                        shutting_down = true;
                    }
                }
            }
            drop(open);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    drop(open);
    // Nothing is ever sent: `recv` returns once the last connection has dropped its clone.
    let _ = all_closed.recv().await;
    Ok(())
}

/// A request not sent and answered in time gets `408` with what to do; the connection is free
/// again.
async fn request_deadline(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            let body = serde_json::json!({
                "code": "request_timeout",
                "message": format!(
                    "the request was not received and answered within {} s; send it again, all at once",
                    limit.as_secs_f64()
                ),
            });
            (StatusCode::REQUEST_TIMEOUT, axum::Json(body)).into_response()
        }
    }
}
