//! Bearer-token check in front of every /api/v1 route.

use std::sync::Arc;

use poem::http::header;
use poem::{Endpoint, Request, Response, Result};

use super::error::ApiError;
use super::AppState;

/// The token from `Authorization: Bearer <jwt>`, or from `?access_token=<jwt>` (RFC 6750
/// §2.3) for clients such as a browser's video element that cannot set headers.
fn bearer_token(req: &Request) -> Result<String, ApiError> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let value = value
            .to_str()
            .map_err(|_| ApiError::Unauthorized("the Authorization header is not text".into()))?;
        return match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                Ok(token.trim().to_owned())
            }
            _ => Err(ApiError::Unauthorized(
                "use `Authorization: Bearer <token>`".into(),
            )),
        };
    }
    let query = req.uri().query().unwrap_or("");
    // The last one, as for every other parameter.
    form_urlencoded::parse(query.as_bytes())
        .filter(|(key, _)| key == "access_token")
        .last()
        .map(|(_, token)| token.into_owned())
        .ok_or_else(|| {
            ApiError::Unauthorized(
                "a bearer token is required: `Authorization: Bearer <token>` or `?access_token=<token>`"
                    .into(),
            )
        })
}

/// Verifies the token and leaves its [`crate::auth::Grant`] in the request for handlers.
pub async fn require_token<E: Endpoint>(next: E, mut req: Request) -> Result<Response> {
    let state = req
        .data::<Arc<AppState>>()
        .cloned()
        .expect("AppState is attached to the app");
    let token = bearer_token(&req)?;
    let grant = state
        .verifier
        .verify(&token)
        .await
        .map_err(ApiError::Unauthorized)?;
    req.extensions_mut().insert(grant);
    next.call(req).await.map(poem::IntoResponse::into_response)
}
