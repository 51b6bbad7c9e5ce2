//! REST API for editors and operators: health, knowledge-base search, "what would the bot answer
//! and why", the state of the knowledge base, and the questions the bot could not answer.
//!
//! Everything but `/api/health` shows customers' words or the knowledge base's content, so it needs
//! an account's token (any role: agents and editors alike). Health shows counts only.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::Account;
use super::{ApiError, AppState, Params};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/health", get(health))
        .route("/api/kb/search", get(search))
        .route("/api/kb/articles", get(articles))
        .route("/api/explain", get(explain))
        .route("/api/reports/gaps", get(gaps))
}

#[derive(Deserialize)]
struct SearchParams {
    q: String,
    limit: Option<usize>,
}

/// Public, for load balancers and uptime checks: no article, file or customer text.
async fn health(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "articles": state.kb.articles().len(),
        "kb_problems": state.kb.problems().len(),
    }))
}

async fn search(
    _: Account,
    State(state): State<AppState>,
    Params(p): Params<SearchParams>,
) -> Result<Json<Value>, ApiError> {
    let q = checked_query(&p.q)?;
    let passages = state
        .kb
        .search(q, p.limit.unwrap_or(5).clamp(1, 50))
        .await?;
    Ok(Json(json!({ "query": q, "passages": passages })))
}

async fn articles(_: Account, State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "articles": state.kb.articles(), "problems": state.kb.problem_files() }))
}

async fn explain(
    _: Account,
    State(state): State<AppState>,
    Params(p): Params<SearchParams>,
) -> Result<Json<Value>, ApiError> {
    let q = checked_query(&p.q)?;
    let reply = state.bot.reply(q).await?;
    let understanding = reply.understanding.clone();
    let answer_threshold = state.bot.settings().answer_threshold;
    let decision = crate::escalation::explain(
        state.conversations.policy(),
        q,
        &understanding,
        &reply,
        answer_threshold,
    );
    let policy = state.conversations.policy().settings();
    Ok(Json(json!({
        "question": q,
        "reply": reply,
        "understanding": understanding,
        "decision": decision,
        "thresholds": {
            "answer": answer_threshold,
            "upset": policy.upset_threshold,
            "out_of_scope_below": state.bot.nlu().intent_model().threshold,
        },
    })))
}

#[derive(Deserialize)]
struct GapParams {
    /// Only questions asked from this time on (Unix ms).
    since: Option<i64>,
    limit: Option<usize>,
}

async fn gaps(
    _: Account,
    State(state): State<AppState>,
    Params(p): Params<GapParams>,
) -> Result<Json<crate::reports::GapReport>, ApiError> {
    let mut report = crate::reports::gaps(
        &state.store,
        &state.kb,
        p.since.unwrap_or(0).max(0),
        p.limit.unwrap_or(100).clamp(1, 1000),
    )
    .await?;
    // What the bot learned from the picks, beside each question (a vote over the picks each: off
    // the async runtime).
    let questions: Vec<String> = report.choices.iter().map(|c| c.question.clone()).collect();
    let bot = state.bot.clone();
    let lessons = tokio::task::spawn_blocking(move || bot.lessons_for(&questions))
        .await
        .unwrap_or_else(|e| {
            tracing::error!("the gaps report goes without the bot's lessons: {e}");
            Vec::new()
        });
    for (question, lesson) in report.choices.iter_mut().zip(lessons) {
        question.learned = lesson.map(|l| crate::reports::Lesson {
            passage: l.passage,
            conversations: l.conversations,
        });
    }
    Ok(Json(report))
}

fn checked_query(q: &str) -> Result<&str, ApiError> {
    let q = q.trim();
    if q.is_empty() {
        return Err(ApiError::bad_request(
            "empty_query",
            "give the question in ?q=",
        ));
    }
    if q.chars().count() > 1000 {
        return Err(ApiError::bad_request(
            "query_too_long",
            "questions are limited to 1000 characters",
        ));
    }
    Ok(q)
}
