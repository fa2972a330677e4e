//! Bearer tokens with roles.
//!
//! Tokens are created with `portolan token create` or `POST /api/v1/tokens`
//! and stored hashed. Every mutating call needs one; reads need one unless
//! the operator enabled anonymous reads.

use axum::extract::FromRequestParts;
use axum::http::{header, request::Parts, Method};
use portolan_store::{Role, TokenInfo};

use crate::app::AppState;
use crate::error::ApiError;

/// Who is calling: a verified token, or nobody.
#[derive(Debug, Clone)]
pub enum Caller {
    Token(TokenInfo),
    Anonymous,
}

impl Caller {
    /// Fails unless the caller holds at least `role`.
    pub fn require(&self, role: Role) -> Result<&TokenInfo, ApiError> {
        match self {
            Caller::Token(t) if t.role >= role => Ok(t),
            Caller::Token(t) => Err(ApiError::Forbidden(format!(
                "this call needs the {role} role; the token has {}",
                t.role
            ))),
            Caller::Anonymous => Err(ApiError::Unauthenticated(
                "send `Authorization: Bearer <token>`; create one with `portolan token create`"
                    .into(),
            )),
        }
    }
}

/// A token the web UI verified for the page it is building, handed to its
/// in-process API calls as a request extension so that each call does not
/// look the same token up again (a catalog page calls the API for its rows,
/// and for each facet whose cached counts have expired). Only code in this
/// process can attach an extension: a request from the network never
/// carries one.
#[derive(Debug, Clone)]
pub struct Verified(pub TokenInfo);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(Verified(info)) = parts.extensions.get::<Verified>() {
            return Ok(Caller::Token(info.clone()));
        }
        let caller = match parts.headers.get(header::AUTHORIZATION) {
            None => Caller::Anonymous,
            Some(value) => {
                let value = value.to_str().map_err(|_| bad_header())?;
                let (scheme, secret) = value.split_once(' ').ok_or_else(bad_header)?;
                if !scheme.eq_ignore_ascii_case("bearer") {
                    return Err(bad_header());
                }
                match state.store.verify_token(secret.trim()).await? {
                    Some(info) => Caller::Token(info),
                    None => {
                        return Err(ApiError::Unauthenticated(
                            "the bearer token is unknown or revoked".into(),
                        ))
                    }
                }
            }
        };
        // Reads are open only where the operator chose so; everything else
        // needs at least a viewer token to get this far.
        let read = parts.method == Method::GET || parts.method == Method::HEAD;
        if matches!(caller, Caller::Anonymous) && !(read && state.config.anonymous_read) {
            caller.require(Role::Viewer)?;
        }
        Ok(caller)
    }
}

fn bad_header() -> ApiError {
    ApiError::Unauthenticated("the Authorization header must be `Bearer <token>`".into())
}
