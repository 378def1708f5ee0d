//! Every error a client can see, and the one place where each becomes an HTTP response:
//! `{"success": false, "error": "<code>", "message": "<what was wrong and how to fix it>"}`.

use std::borrow::Cow;

use poem::http::{header, HeaderValue, StatusCode};
use poem::Response;

use crate::catalog::CatalogError;
use crate::request::PlanError;
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadParameter(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error(
        "this token does not grant access to file {0}; it needs scope `file:{0}` or `files:read`"
    )]
    Forbidden(String),
    #[error("this token does not grant `{0}`, which this request needs")]
    ForbiddenScope(&'static str),
    #[error("no file with uuid {0} is registered")]
    FileNotFound(String),
    #[error("the request body is larger than the {0} bytes accepted")]
    PayloadTooLarge(u64),
    #[error("{0}")]
    NotFound(String),
    #[error(
        "the video registered as {0} is no longer available as it was imported ({1}); re-import it"
    )]
    FileGone(String, &'static str),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("a precondition (If-Match / If-Unmodified-Since) failed")]
    PreconditionFailed,
    #[error("the requested range is outside the file's {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    /// Details go to the log, never to the client (they may hold paths).
    #[error("internal error; the server log has the details")]
    Internal(String),
    #[error("{0}; try again, or ask for a smaller image")]
    Timeout(String),
    /// The request's pipeline pool stayed full for the whole queue timeout.
    #[error(transparent)]
    Overloaded(#[from] crate::admission::AdmissionError),
    /// Details (the path) go to the log only.
    #[error("the file catalog is unavailable; the server log says why. Try again later")]
    CatalogUnavailable(String),
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after_seconds: u64,
    },
    /// A remote file's origin (HTTP or S3) refused, failed or could not be reached.
    /// The detail goes to the log only (it may name internal hosts).
    #[error("the media origin of file {0} failed; try again later")]
    OriginFailed(String, String),
    /// A remote file's origin did not answer within `origin_timeout_seconds`.
    #[error("the media origin of file {0} did not answer in time; try again later")]
    OriginTimeout(String, String),
}

impl ApiError {
    pub fn bad_parameter(message: impl Into<String>) -> Self {
        ApiError::BadParameter(message.into())
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        ApiError::Internal(detail.to_string())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadParameter(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::ForbiddenScope(_) => StatusCode::FORBIDDEN,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::FileNotFound(_) | ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::FileGone(..) => StatusCode::GONE,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ApiError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Timeout(_) | ApiError::OriginTimeout(..) => StatusCode::GATEWAY_TIMEOUT,
            ApiError::OriginFailed(..) => StatusCode::BAD_GATEWAY,
            ApiError::Overloaded(_)
            | ApiError::CatalogUnavailable(_)
            | ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The stable machine-readable code clients switch on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadParameter(_) => "bad_parameter",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) | ApiError::ForbiddenScope(_) => "forbidden",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::FileNotFound(_) => "file_not_found",
            ApiError::NotFound(_) => "not_found",
            ApiError::FileGone(..) => "file_gone",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::PreconditionFailed => "precondition_failed",
            ApiError::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            ApiError::Internal(_) => "internal_error",
            ApiError::Timeout(_) => "timeout",
            ApiError::Overloaded(_) => "overloaded",
            ApiError::CatalogUnavailable(_) => "catalog_unavailable",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::OriginFailed(..) => "origin_failed",
            ApiError::OriginTimeout(..) => "origin_timeout",
        }
    }
}

/// The longest message a client is sent: messages quote client text, and whatever a
/// handler quotes, this bounds the body and the WWW-Authenticate header.
pub const MAX_MESSAGE_CHARS: usize = 400;

/// Runs of more digits than any real value has (`1e308` printed in full is 309 digits)
/// are shortened to their first digits and their length.
const MAX_DIGITS: usize = 20;

/// `message` made safe to send whatever it quotes: long digit runs shortened, then the
/// whole cut to [`MAX_MESSAGE_CHARS`].
pub fn bounded_message(message: &str) -> Cow<'_, str> {
    let mut out = String::new();
    let mut rest = message;
    let mut changed = false;
    while let Some(start) = rest.find(|c: char| c.is_ascii_digit()) {
        let len = rest[start..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len() - start);
        if len > MAX_DIGITS {
            out.push_str(&rest[..start]);
            out.push_str(&format!("{}…({len} digits)", &rest[start..start + 6]));
            changed = true;
        } else {
            out.push_str(&rest[..start + len]);
        }
        rest = &rest[start + len..];
    }
    if !changed {
        return crate::client_text::bounded(message, MAX_MESSAGE_CHARS);
    }
    out.push_str(rest);
    Cow::Owned(crate::client_text::bounded(&out, MAX_MESSAGE_CHARS).into_owned())
}

impl poem::error::ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        ApiError::status(self)
    }

    fn as_response(&self) -> Response {
        match self {
            ApiError::Internal(detail) => tracing::error!(%detail, "internal error"),
            ApiError::CatalogUnavailable(detail) => tracing::error!(%detail, "catalog unavailable"),
            ApiError::OriginFailed(file, detail) | ApiError::OriginTimeout(file, detail) => {
                tracing::warn!(%file, %detail, "media origin failed")
            }
            _ => {}
        }
        let body = serde_json::json!({
            "success": false,
            "error": self.code(),
            "message": bounded_message(&self.to_string()),
        });
        let mut response = Response::builder()
            .status(self.status())
            .content_type("application/json")
            .header(header::CACHE_CONTROL, "no-store")
            .body(body.to_string());
        let headers = response.headers_mut();
        match self {
            ApiError::Unauthorized(reason) => {
                let challenge = format!(
                    "Bearer realm=\"framecast\", error=\"invalid_token\", error_description=\"{}\"",
                    bounded_message(reason)
                        .replace(['"', '\\'], "'")
                        // A header is ASCII.
                        .replace('…', "...")
                );
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    headers.insert(header::WWW_AUTHENTICATE, value);
                }
            }
            ApiError::RangeNotSatisfiable { size } => {
                headers.insert(
                    header::CONTENT_RANGE,
                    HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii"),
                );
            }
            ApiError::Unavailable {
                retry_after_seconds,
                ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_seconds));
            }
            ApiError::CatalogUnavailable(_) => {
                // Someone has to put the file back: not a matter of seconds.
                headers.insert(header::RETRY_AFTER, HeaderValue::from(30));
            }
            ApiError::Overloaded(busy) => {
                headers.insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(busy.retry_after_seconds()),
                );
            }
            _ => {}
        }
        response
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        match e {
            CatalogError::Unavailable { .. } => ApiError::CatalogUnavailable(e.to_string()),
            e => ApiError::internal(e),
        }
    }
}

impl From<PlanError> for ApiError {
    fn from(e: PlanError) -> Self {
        match e {
            PlanError::BadParameter(message) => ApiError::BadParameter(message),
            e @ PlanError::NoTrace { .. } => ApiError::NotFound(e.to_string()),
            PlanError::Catalog(e) => e.into(),
            PlanError::Storage { file, source } => ApiError::storage(file, source),
        }
    }
}

impl ApiError {
    /// A storage failure while serving `file`.
    pub fn storage(file: crate::catalog::FileUuid, e: StorageError) -> Self {
        let file = file.to_string();
        match e {
            e @ StorageError::BadLocation(_) => ApiError::BadParameter(e.to_string()),
            StorageError::Origin(detail) => ApiError::OriginFailed(file, detail),
            e @ StorageError::Timeout(_) => ApiError::OriginTimeout(file, e.to_string()),
            StorageError::Gone(why) => ApiError::FileGone(file, why),
            e @ StorageError::NotConfigured(_) => ApiError::internal(e),
        }
    }
}

/// Renders any error reaching the top of the app: ours as they are, poem's own (unknown
/// route, wrong method, unreadable request) in the same JSON shape.
pub fn render(error: poem::Error) -> Response {
    use poem::error::ResponseError;
    if error.is::<ApiError>() {
        return error.into_response();
    }
    let api = match error.status() {
        StatusCode::NOT_FOUND => ApiError::NotFound(
            "no such endpoint; see the README's API section for the routes".into(),
        ),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        // poem's messages can quote the request (a header's value).
        status if status.is_client_error() => {
            ApiError::BadParameter(bounded_message(&error.to_string()).into_owned())
        }
        _ => ApiError::internal(error),
    };
    api.as_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_bounded() {
        let huge = format!("width {} is too large", "1".to_owned() + &"0".repeat(308));
        let message = bounded_message(&huge);
        assert_eq!(message, "width 100000…(309 digits) is too large");
        assert_eq!(bounded_message("frame 12 of 250"), "frame 12 of 250");
        assert!(bounded_message(&"x".repeat(5000)).chars().count() <= MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn unauthorized_header_and_body_stay_short() {
        use poem::error::ResponseError;
        let response = ApiError::Unauthorized(format!("bad {}", "9".repeat(20_000))).as_response();
        let challenge = response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap();
        assert!(challenge.len() < 600, "{challenge}");
    }
}
