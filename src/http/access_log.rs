//! One log line per request, with a request id, and never a token.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use poem::{Endpoint, IntoResponse, Request, Response, Result};
use tracing::Instrument;

static NEXT_REQUEST_ID: AtomicU64 = AtomicU64::new(1);

/// The query string with any `access_token` value replaced (keys compared decoded, so an
/// escaped spelling of the key is caught too).
pub fn redact_query(query: &str) -> String {
    let mut redacted = form_urlencoded::Serializer::new(String::new());
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        let value = if key == "access_token" {
            "REDACTED".into()
        } else {
            value
        };
        redacted.append_pair(&key, &value);
    }
    redacted.finish()
}

pub async fn log<E: Endpoint>(next: E, req: Request) -> Result<Response> {
    let id = NEXT_REQUEST_ID.fetch_add(1, Ordering::Relaxed);
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(redact_query);
    let span = tracing::info_span!("request", id);
    let started = Instant::now();
    let response = next
        .call(req)
        .instrument(span.clone())
        .await
        .map(IntoResponse::into_response)?;
    span.in_scope(|| {
        tracing::info!(
            %method,
            path,
            query = query.as_deref().unwrap_or(""),
            status = response.status().as_u16(),
            ms = started.elapsed().as_secs_f64() * 1e3,
            "served"
        )
    });
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::redact_query;

    #[test]
    fn access_token_never_reaches_the_log() {
        assert_eq!(
            redact_query("frame=3&access_token=abc.def.ghi&x=1"),
            "frame=3&access_token=REDACTED&x=1"
        );
        assert_eq!(redact_query("%61ccess_token=abc"), "access_token=REDACTED");
        assert_eq!(redact_query("frame=3"), "frame=3");
    }
}
