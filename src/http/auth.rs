//! Who is calling: the one place that turns a request's headers into an authenticated account.
//!
//! Handlers that need an account take [`Account`] as an argument (before `Query` or `Json`, so a
//! caller without a token learns that first, and learns nothing about the request's shape). A
//! missing, expired or unknown token is a `401` whose message says how to log in.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

use super::{ApiError, AppState};
use crate::accounts::{self, EDITORS_TAKE_NO_CHATS};

/// An account (any role) proven by `Authorization: Bearer TOKEN`.
pub(super) struct Account(#[allow(dead_code)] pub accounts::Account);

/// An account that takes conversations (`agent` or `admin`); an editor gets `403`.
pub(super) struct AgentAccount(#[allow(dead_code)] pub accounts::Account);

impl FromRequestParts<AppState> for AgentAccount {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Account(account) = Account::from_request_parts(parts, state).await?;
        if !account.role.takes_conversations() {
            return Err(ApiError::forbidden(EDITORS_TAKE_NO_CHATS));
        }
        Ok(Self(account))
    }
}

impl FromRequestParts<AppState> for Account {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Authed(session) = Authed::from_request_parts(parts, state).await?;
        Ok(Self(session.account))
    }
}

/// A logged-in session (any role): the account and its token's life.
pub(super) struct Authed(pub accounts::Session);

impl FromRequestParts<AppState> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(Self(state.accounts.session(bearer(&parts.headers)).await?))
    }
}

/// An admin's account; other roles get `403`.
pub(super) struct AdminAccount(#[allow(dead_code)] pub accounts::Account);

impl FromRequestParts<AppState> for AdminAccount {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Account(account) = Account::from_request_parts(parts, state).await?;
        if account.role != accounts::Role::Admin {
            return Err(ApiError::forbidden(
                "only an admin may do this; ask one, or use `frontdesk agent` on the server",
            ));
        }
        Ok(Self(account))
    }
}

/// The token of an `Authorization: Bearer TOKEN` header (the scheme in any case), if there is one.
pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn the_token_is_read_from_a_bearer_header_only() {
        assert_eq!(bearer(&headers("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&headers("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(&headers("Basic YWJjOmRlZg==")), None);
        assert_eq!(bearer(&headers("Bearer ")), None);
        assert_eq!(bearer(&HeaderMap::new()), None);
    }
}
