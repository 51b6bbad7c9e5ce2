//! One error type for the REST API: a status and a stable JSON body `{"code", "message"}`.
//! Internal details are logged, never shown.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::accounts::AuthError;
use crate::conversation::ConversationError;
use crate::kb::KbError;
use crate::protocol::ErrorCode;
use crate::store::StoreError;

/// An error answered to an HTTP client.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    /// The client asked for something wrong.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The thing asked for does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: message.into(),
            retry_after: None,
        }
    }

    /// The route does not take this method.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::METHOD_NOT_ALLOWED,
            code: "method_not_allowed",
            message: message.into(),
            retry_after: None,
        }
    }

    /// The client has not proven who it is.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The client may not see this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: message.into(),
            retry_after: None,
        }
    }

    fn internal(detail: &dyn std::fmt::Display) -> Self {
        tracing::error!("internal error: {detail}");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: "something went wrong on the server; it has been logged".into(),
            retry_after: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "code": self.code, "message": self.message });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750: say which scheme would be accepted.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"frontdesk\""),
            );
        }
        response
    }
}

/// A JSON request body; one that does not parse (or is not JSON, or is too large) is answered with
/// the `{"code", "message"}` body every other error has (`invalid_body`, with axum's status and
/// words: what was wrong and where), not axum's plain text.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct JsonBody<T>(pub T);

/// A query string, answered like [`JsonBody`] when it does not parse (`invalid_query`).
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Params<T>(pub T);

/// Path parameters, answered like [`JsonBody`] when they do not parse (`invalid_path`).
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct PathParams<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        Self {
            status: r.status(),
            code: "invalid_body",
            message: format!(
                "{}; send a JSON object as the API documentation (docs/PROTOCOL.md) shows",
                r.body_text()
            ),
            retry_after: None,
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::bad_request("invalid_query", r.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        // A route wired wrongly, not the client's doing: logged, not shown.
        if r.status().is_server_error() {
            return Self::internal(&r.body_text());
        }
        Self {
            status: r.status(),
            code: "invalid_path",
            message: r.body_text(),
            retry_after: None,
        }
    }
}

impl From<KbError> for ApiError {
    fn from(e: KbError) -> Self {
        Self::internal(&e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::internal(&e)
    }
}

impl From<ConversationError> for ApiError {
    fn from(e: ConversationError) -> Self {
        if e.is_internal() {
            return Self::internal(&e);
        }
        let code = e.code();
        let status = match code {
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::NotOwner => StatusCode::FORBIDDEN,
            ErrorCode::AlreadyClaimed | ErrorCode::NotQueued | ErrorCode::AtCapacity => {
                StatusCode::CONFLICT
            }
            ErrorCode::QueueFull | ErrorCode::TooManyConversations | ErrorCode::RateLimited => {
                StatusCode::TOO_MANY_REQUESTS
            }
            _ => StatusCode::BAD_REQUEST,
        };
        Self {
            status,
            code: code.as_str(),
            message: e.public_message(),
            retry_after: None,
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Missing => Self::unauthorized("unauthorized", e.to_string()),
            AuthError::Expired => Self::unauthorized("token_expired", e.to_string()),
            AuthError::BadCredentials => Self::unauthorized("bad_credentials", e.to_string()),
            AuthError::EmailTaken(_) => Self {
                status: StatusCode::CONFLICT,
                code: "email_taken",
                message: e.to_string(),
                retry_after: None,
            },
            AuthError::Invalid(_) => Self::bad_request("invalid", e.to_string()),
            AuthError::NoSuchAccount(_) => Self::not_found(e.to_string()),
            AuthError::Throttled { retry_after } => Self {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "too_many_attempts",
                message: e.to_string(),
                retry_after: Some(retry_after),
            },
            AuthError::Busy { retry_after } => Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "busy",
                message: e.to_string(),
                retry_after: Some(retry_after),
            },
            AuthError::Store(e) => Self::internal(&e),
        }
    }
}
