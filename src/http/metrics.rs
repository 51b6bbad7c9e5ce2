//! `/metrics`: the server's figures in Prometheus' text format (`crate::metrics`). Like the other
//! operator endpoints it needs an account's token (`Authorization: Bearer …`): socket counts and
//! queue lengths say how busy the desk is, which is not for the public.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use super::auth::Account;
use super::AppState;
use crate::admission::Pool;

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(_: Account, State(state): State<AppState>) -> impl IntoResponse {
    let m = &state.metrics;
    for (pool, kind) in [(Pool::Customers, "customer"), (Pool::Agents, "agent")] {
        let open = state.admission.open(pool) as i64;
        m.sockets.with_label_values(&[kind]).set(open);
    }
    m.queue_length.set(state.desk.queue_length() as i64);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        m.render(),
    )
}
