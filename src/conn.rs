//! The connection layer: accepts TCP connections and serves the poem endpoint on each with
//! hyper (HTTP/1.1, and h2c as before), with the limits that poem's `Server` does not
//! expose: a deadline for request heads, an idle keep-alive timeout, a cap on header size
//! and on open connections, TCP_NODELAY, and a shutdown that does not wait for idle
//! connections.
//!
//! Timeouts are phases of a connection, watched by one timer per connection:
//! - waiting for a request (idle): `idle_timeout` after the last response; a new
//!   connection must send its first request head within `header_read_timeout`;
//! - a request head partly received: `header_read_timeout` from its first byte;
//! - answering a request: no timeout here (the write timeout below cuts stalled clients).
//!
//! At `max_connections`, a new connection closes the oldest one that is not answering a
//! request (idle or sending a head), so silent or slowloris connections cannot lock real
//! clients out; only when every connection is answering one is the new one refused with a
//! 503, counted in `/metrics`.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::combinators::BoxBody;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use poem::endpoint::BoxEndpoint;
use poem::http::uri::Scheme;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Addr, Endpoint, EndpointExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_io_timeout::TimeoutStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{positive, positive_seconds, Config, ConfigError};
use crate::metrics::{metrics, CloseLabels, ConnectionClose};

/// The connection layer's settings (see [`crate::config::Config`] for each).
#[derive(Debug, Clone)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    /// Request line plus headers, in bytes (HTTP/1.1); the header list of an h2 request.
    pub max_header_bytes: usize,
    pub max_connections: usize,
    /// A client that reads nothing for this long is disconnected.
    pub write_timeout: Duration,
}

impl Limits {
    /// The connection settings, checked.
    pub fn from_config(config: &Config) -> Result<Limits, ConfigError> {
        if config.max_header_bytes < MIN_HEADER_BYTES {
            return Err(ConfigError::BadValue {
                key: "max_header_bytes",
                value: config.max_header_bytes.to_string(),
                rule: "at least 8192",
            });
        }
        Ok(Limits {
            header_read_timeout: positive_seconds(
                "header_read_timeout_seconds",
                config.header_read_timeout_seconds,
            )?,
            idle_timeout: positive_seconds("idle_timeout_seconds", config.idle_timeout_seconds)?,
            max_header_bytes: config.max_header_bytes,
            max_connections: positive("max_connections", config.max_connections)?,
            // A second past the stall timeout: a stalled stream is first seen (and counted)
            // as a stall, which frees its pipeline, then its connection is dropped.
            write_timeout: Config::seconds("stall_timeout_seconds", config.stall_timeout_seconds)?
                + Duration::from_secs(1),
        })
    }
}

/// hyper refuses a read buffer smaller than this.
pub const MIN_HEADER_BYTES: usize = 8192;

/// Serves `endpoint` on `listener` until `shutdown` completes; then stops accepting (the
/// listening socket is closed), closes connections that are not answering a request, lets
/// running responses finish for up to `grace`, and cuts what is left.
pub async fn serve<E>(
    listener: TcpListener,
    endpoint: E,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> io::Result<()>
where
    E: Endpoint + 'static,
{
    let endpoint: Arc<BoxEndpoint<'static>> = Arc::new(endpoint.map_to_response().boxed());
    let local = listener.local_addr()?;
    let registry = Arc::new(Registry::default());
    let stopping = CancellationToken::new();
    let cut = CancellationToken::new();
    let tasks = TaskTracker::new();
    let mut accept_errors = AcceptErrors::default();
    tokio::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_errors.pause(e).await;
                    continue;
                }
            },
        };
        let Some(connection) = registry.admit(limits.max_connections) else {
            refuse(stream);
            continue;
        };
        // Small responses on a kept-alive connection otherwise wait on Nagle's algorithm
        // (issue 19 saw ~11 ms against 0.8 ms on a new connection; here 35 kept-alive
        // 100-byte ranges took a median 0.72 ms before, 0.26 ms with it).
        let _ = stream.set_nodelay(true);
        tasks.spawn(serve_connection(Accepted {
            stream,
            local,
            remote,
            endpoint: endpoint.clone(),
            limits: limits.clone(),
            connection,
            registry: registry.clone(),
            stopping: stopping.clone(),
            cut: cut.clone(),
        }));
    }
    drop(listener);
    stopping.cancel();
    tasks.close();
    if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
        tracing::info!("grace period over: closing the connections still open");
        cut.cancel();
        tasks.wait().await;
    }
    Ok(())
}

/// What a connection is doing, for its timeouts and for eviction.
#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request since `since`; `fresh`: none received yet.
    Idle { since: Instant, fresh: bool },
    /// The first bytes of a request head came at `since`.
    Head { since: Instant },
    /// Answering this many requests (more than one only with h2).
    Busy(usize),
}

struct Connection {
    id: u64,
    phase: Mutex<Phase>,
    /// Woken at every phase change, for the timer.
    changed: Notify,
    /// Cancelled to close the connection to make room for a new one.
    evict: CancellationToken,
}

impl Connection {
    fn phase(&self) -> std::sync::MutexGuard<'_, Phase> {
        // Phases are plain values: a panic elsewhere cannot leave one half-written.
        self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_busy(&self) -> bool {
        matches!(*self.phase(), Phase::Busy(_))
    }

    /// Bytes arrived (HTTP/1: only from request heads, as bodies are not read while idle).
    fn received(&self) {
        let mut phase = self.phase();
        if let Phase::Idle { fresh: false, .. } = *phase {
            *phase = Phase::Head {
                since: Instant::now(),
            };
            drop(phase);
            self.changed.notify_one();
        }
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        let mut phase = self.phase();
        *phase = match *phase {
            Phase::Busy(n) => Phase::Busy(n + 1),
            _ => Phase::Busy(1),
        };
        drop(phase);
        self.changed.notify_one();
        crate::memory::request_started();
        InFlight(self.clone())
    }

    fn end(&self) {
        let mut phase = self.phase();
        *phase = match *phase {
            Phase::Busy(n) if n > 1 => Phase::Busy(n - 1),
            _ => Phase::Idle {
                since: Instant::now(),
                fresh: false,
            },
        };
        drop(phase);
        self.changed.notify_one();
    }

    /// When the current phase times out, and as what.
    fn deadline(&self, limits: &Limits) -> Option<(Instant, ConnectionClose)> {
        match *self.phase() {
            Phase::Idle { since, fresh: true } | Phase::Head { since } => Some((
                since + limits.header_read_timeout,
                ConnectionClose::HeaderTimeout,
            )),
            Phase::Idle { since, .. } => {
                Some((since + limits.idle_timeout, ConnectionClose::IdleTimeout))
            }
            Phase::Busy(_) => None,
        }
    }
}

/// One request being answered; dropped with its response body (sent, or abandoned).
struct InFlight(Arc<Connection>);

impl Drop for InFlight {
    fn drop(&mut self) {
        crate::memory::request_finished();
        self.0.end();
    }
}

/// Resolves when the connection's current phase times out.
async fn timer(connection: &Connection, limits: &Limits) -> ConnectionClose {
    loop {
        // notify_one keeps a permit when nobody waits, so a change between reading the
        // deadline and waiting is not lost.
        let changed = connection.changed.notified();
        match connection.deadline(limits) {
            None => changed.await,
            Some((at, reason)) => {
                tokio::select! {
                    _ = changed => {}
                    _ = tokio::time::sleep_until(at) => {
                        if connection.deadline(limits).is_some_and(|(at, _)| at <= Instant::now()) {
                            return reason;
                        }
                    }
                }
            }
        }
    }
}

/// The open connections, oldest first.
#[derive(Default)]
struct Registry {
    open: Mutex<BTreeMap<u64, Arc<Connection>>>,
    next_id: AtomicU64,
}

impl Registry {
    /// A new connection, after making room if at `max`; `None` when every open connection
    /// is answering a request.
    fn admit(&self, max: usize) -> Option<Arc<Connection>> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if open.len() >= max {
            let oldest_waiting = open
                .iter()
                .find(|(_, connection)| !connection.is_busy())
                .map(|(&id, _)| id)?;
            let evicted = open.remove(&oldest_waiting).expect("just found");
            evicted.evict.cancel();
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection {
            id,
            phase: Mutex::new(Phase::Idle {
                since: Instant::now(),
                fresh: true,
            }),
            changed: Notify::new(),
            evict: CancellationToken::new(),
        });
        open.insert(id, connection.clone());
        Some(connection)
    }

    fn remove(&self, id: u64) {
        self.open
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }
}

/// What is written to a connection refused at the limit.
static REFUSED: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let body = serde_json::json!({
        "success": false,
        "error": "overloaded",
        "message": "the server is at its connection limit (max_connections); try again shortly",
    })
    .to_string();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         cache-control: no-store\r\nretry-after: 1\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
});

/// Refusals being answered at once; past this, refused connections are closed unanswered.
static REFUSING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(64);

fn refuse(stream: TcpStream) {
    metrics().connections_refused.inc();
    let Ok(permit) = REFUSING.try_acquire() else {
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        let mut stream = stream;
        // Briefly wait for the request: HTTP clients take an answer that comes before it
        // for a broken connection, and closing with it unread would reset the connection.
        let mut request = [0; 4096];
        let _ = tokio::time::timeout(REFUSAL_WAIT, stream.read(&mut request)).await;
        let _ = tokio::time::timeout(REFUSAL_WAIT, async {
            stream.write_all(&REFUSED).await?;
            stream.shutdown().await
        })
        .await;
    });
}

/// How long a refused connection is given to send its request, then to take the answer.
const REFUSAL_WAIT: Duration = Duration::from_millis(200);

/// Backs off after an accept error. Out of file descriptors, retrying at once would spin;
/// the warning is logged at most once a second.
#[derive(Default)]
struct AcceptErrors {
    last_warning: Option<Instant>,
}

impl AcceptErrors {
    async fn pause(&mut self, error: io::Error) {
        let now = Instant::now();
        if self
            .last_warning
            .is_none_or(|at| now - at >= Duration::from_secs(1))
        {
            tracing::warn!(%error, "cannot accept a connection");
            self.last_warning = Some(now);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Accepted {
    stream: TcpStream,
    local: SocketAddr,
    remote: SocketAddr,
    endpoint: Arc<BoxEndpoint<'static>>,
    limits: Limits,
    connection: Arc<Connection>,
    registry: Arc<Registry>,
    stopping: CancellationToken,
    cut: CancellationToken,
}

type ResponseBody = BoxBody<Bytes, io::Error>;

async fn serve_connection(accepted: Accepted) {
    let Accepted {
        stream,
        local,
        remote,
        endpoint,
        limits,
        connection,
        registry,
        stopping,
        cut,
    } = accepted;
    metrics().open_connections.inc();
    let mut io = TimeoutStream::new(stream);
    io.set_write_timeout(Some(limits.write_timeout));
    let io = Watched {
        inner: Box::pin(io),
        connection: connection.clone(),
        sniffed: false,
        h2: false,
        replacement: None,
        max_header_bytes: limits.max_header_bytes,
    };
    let service = {
        let connection = connection.clone();
        hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let in_flight = connection.begin();
            let endpoint = endpoint.clone();
            async move {
                let request = poem::Request::from((
                    request,
                    LocalAddr(Addr::SocketAddr(local)),
                    RemoteAddr(Addr::SocketAddr(remote)),
                    Scheme::HTTP,
                ));
                let response: hyper::Response<ResponseBody> =
                    endpoint.get_response(request).await.into();
                Ok::<_, Infallible>(response.map(|body| InFlightBody {
                    inner: body,
                    _in_flight: in_flight,
                }))
            }
        })
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The read buffer holds the request line and headers: past it, hyper answers 431.
    builder.http1().max_buf_size(limits.max_header_bytes);
    builder
        .http2()
        .max_pending_accept_reset_streams(20)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);

    enum Event {
        Done,
        Closed(ConnectionClose),
        Stopping,
    }
    let event = tokio::select! {
        result = conn.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(%remote, %error, "connection ended");
            }
            Event::Done
        }
        reason = timer(&connection, &limits) => Event::Closed(reason),
        _ = connection.evict.cancelled() => Event::Closed(ConnectionClose::Evicted),
        _ = stopping.cancelled() => Event::Stopping,
    };
    let closed = match event {
        Event::Done => None,
        Event::Closed(reason) => Some(reason),
        // Idle, or part of a head: nothing to finish, close now.
        Event::Stopping if !connection.is_busy() => Some(ConnectionClose::Shutdown),
        Event::Stopping => {
            // HTTP/1.1: close after the running response; h2: GOAWAY, finish the streams.
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                _ = conn.as_mut() => None,
                reason = timer(&connection, &limits) => Some(reason),
                _ = cut.cancelled() => Some(ConnectionClose::Shutdown),
            }
        }
    };
    registry.remove(connection.id);
    metrics().open_connections.dec();
    if let Some(reason) = closed {
        tracing::debug!(%remote, ?reason, "closing connection");
        metrics()
            .connections_closed
            .get_or_create(&CloseLabels { reason })
            .inc();
    }
}

/// A response body that keeps its request counted as in flight until it is dropped.
struct InFlightBody {
    inner: ResponseBody,
    _in_flight: InFlight,
}

impl HttpBody for InFlightBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, watched: reads move the connection's phase on, and hyper's own error
/// responses (400/414/431 for requests it cannot parse, written with an empty body) are
/// replaced by the JSON error every other response uses.
struct Watched {
    inner: Pin<Box<TimeoutStream<TcpStream>>>,
    connection: Arc<Connection>,
    /// Whether the first bytes were looked at (for the h2 preface).
    sniffed: bool,
    /// h2 sends frames of its own (pings, settings) while idle: those are not request heads.
    h2: bool,
    /// The JSON error being written instead of hyper's, and how much of it is written.
    replacement: Option<(Vec<u8>, usize)>,
    max_header_bytes: usize,
}

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0";

impl Watched {
    /// Writes what is left of a replacement; ready once it is all written.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.replacement {
            if *written == bytes.len() {
                self.replacement = None;
                break;
            }
            let n = std::task::ready!(self.inner.as_mut().poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        Poll::Ready(Ok(()))
    }

    /// Takes over `head` if it is one of hyper's own error responses.
    fn replace(&mut self, head: &[u8]) -> bool {
        if self.h2 || self.connection.is_busy() {
            return false;
        }
        match hyper_error_response(head, self.max_header_bytes) {
            Some(replacement) => {
                self.replacement = Some((replacement, 0));
                true
            }
            None => false,
        }
    }
}

/// The JSON response replacing `head` when it is hyper's own answer to a request it could
/// not parse: a 400, 414 or 431 with no body and no content type (every response of the
/// app has a content type), written while no request is in flight.
fn hyper_error_response(head: &[u8], max_header_bytes: usize) -> Option<Vec<u8>> {
    if head.len() > 1024 || !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?.to_ascii_lowercase();
    if !text.contains("\r\ncontent-length: 0\r\n") || text.contains("\r\ncontent-type:") {
        return None;
    }
    let (code, message) = match text.get(..12)? {
        "http/1.1 400" | "http/1.0 400" => (
            "bad_request",
            "the request is not valid HTTP/1.1 (request line or a header malformed)".to_owned(),
        ),
        "http/1.1 414" | "http/1.0 414" => (
            "uri_too_long",
            "the request target (path and query) is too long".to_owned(),
        ),
        "http/1.1 431" | "http/1.0 431" => (
            "headers_too_large",
            format!(
                "the request line and headers exceed {max_header_bytes} bytes (max_header_bytes)"
            ),
        ),
        _ => return None,
    };
    let status_line = &head[..head.windows(2).position(|w| w == b"\r\n")?];
    let date = std::str::from_utf8(head)
        .ok()?
        .split("\r\n")
        .find(|line| line.to_ascii_lowercase().starts_with("date: "))
        .map(|line| format!("{line}\r\n"))
        .unwrap_or_default();
    let body = serde_json::json!({"success": false, "error": code, "message": message}).to_string();
    let mut response = status_line.to_vec();
    response.extend_from_slice(
        format!(
            "\r\ncontent-type: application/json\r\ncache-control: no-store\r\n\
             connection: close\r\n{date}content-length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    Some(response)
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = self.inner.as_mut().poll_read(cx, buf);
        let new = &buf.filled()[before..];
        if !new.is_empty() {
            if !self.sniffed {
                self.sniffed = true;
                let n = new.len().min(H2_PREFACE.len());
                self.h2 = new[..n] == H2_PREFACE[..n];
            }
            if !self.h2 {
                self.connection.received();
            }
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.poll_replacement(cx))?;
        if self.replace(buf) {
            // Taken over: hyper flushes next, which writes the replacement.
            return Poll::Ready(Ok(buf.len()));
        }
        self.inner.as_mut().poll_write(cx, buf)
    }

    /// No, as behind poem's Server (its boxed IO was not vectored): hyper copies body chunks
    /// into its own buffer, bounded by max_buf_size, so a connection buffers what it did
    /// when the streaming figures in the README were measured.
    fn is_write_vectored(&self) -> bool {
        false
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_replacement(cx))?;
        self.inner.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        std::task::ready!(self.poll_replacement(cx))?;
        self.inner.as_mut().poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::hyper_error_response;

    #[test]
    fn only_hypers_bodiless_errors_are_replaced() {
        let head = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Tue, 01 Jul 2025 00:00:00 GMT\r\n\r\n";
        let replaced = String::from_utf8(hyper_error_response(head, 32768).unwrap()).unwrap();
        assert!(replaced.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(replaced.contains("content-type: application/json"));
        assert!(
            replaced.contains("\r\ndate: Tue, 01 Jul 2025"),
            "{replaced}"
        );
        let body = replaced.split("\r\n\r\n").nth(1).unwrap();
        let json: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(json["error"], "headers_too_large");
        assert!(replaced.contains(&format!("content-length: {}\r\n", body.len())));

        let app = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 0\r\n\r\n";
        assert!(hyper_error_response(app, 32768).is_none());
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert!(hyper_error_response(ok, 32768).is_none());
    }
}
