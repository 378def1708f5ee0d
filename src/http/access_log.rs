//! One log line per request, with a request id, and never a token; and the request's
//! metrics (count, latency, body bytes) by route template.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use poem::PathPattern;
use poem::{Endpoint, IntoResponse, Request, Response, Result};
use prometheus_client::metrics::counter::Counter;
use tracing::Instrument;

use crate::client_text::bounded;
use crate::metrics::{method_label, metrics, RequestLabels, RouteLabels};

/// What the log keeps of a request's method and path: made-up methods and paths can be
/// tens of kilobytes each, and were logged whole.
const LOGGED_METHOD_CHARS: usize = 32;
const LOGGED_PATH_CHARS: usize = 512;

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

/// Logs and measures every request. The span carries the request id: every line logged
/// while handling the request (and by the threads it starts) names it.
pub async fn log<E: Endpoint>(next: E, req: Request) -> Result<Response> {
    let id = NEXT_REQUEST_ID.fetch_add(1, Ordering::Relaxed);
    let method = req.method().clone();
    let path = bounded(req.uri().path(), LOGGED_PATH_CHARS).into_owned();
    let query = req
        .uri()
        .query()
        .map(|query| bounded(&redact_query(query), LOGGED_PATH_CHARS).into_owned());
    // At ERROR level so that the span is enabled whatever the filter: with
    // FRAMECAST_LOG=warn an info span would be off, and the warnings and errors logged for
    // the request (the lines that matter then) would lose their request id.
    let span = tracing::error_span!("request", id);
    let started = Instant::now();
    let mut response = next
        .call(req)
        .instrument(span.clone())
        .await
        .map(IntoResponse::into_response)?;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    span.in_scope(|| {
        tracing::info!(
            method = %bounded(method.as_str(), LOGGED_METHOD_CHARS),
            path,
            query = query.as_deref().unwrap_or(""),
            status,
            ms = elapsed.as_secs_f64() * 1e3,
            "served"
        )
    });

    // Unmatched paths share one label, or a scanner would make a series per path it tries.
    let route = response
        .data::<PathPattern>()
        .map_or_else(|| "unmatched".to_owned(), |pattern| pattern.0.to_string());
    let metrics = metrics();
    metrics
        .requests
        .get_or_create(&RequestLabels {
            route: route.clone(),
            method: method_label(&method),
            status,
        })
        .inc();
    let route = RouteLabels { route };
    metrics
        .request_seconds
        .get_or_create(&route)
        .observe(elapsed.as_secs_f64());
    let bytes_sent = metrics.response_body_bytes.get_or_create(&route).clone();
    let body = response.take_body();
    response.set_body(poem::Body::from(BoxBody::new(CountedBody {
        inner: body.into(),
        bytes_sent,
    })));
    Ok(response)
}

/// A response body that adds what it yields to a counter, as the connection takes it.
/// Size hints pass through, so fixed-length responses keep their Content-Length.
struct CountedBody {
    inner: BoxBody<Bytes, std::io::Error>,
    bytes_sent: Counter,
}

impl HttpBody for CountedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                this.bytes_sent.inc_by(data.len() as u64);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
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
