//! The original file ([`crate::request::Job::Original`]): its bytes, with range requests
//! and conditional requests per RFC 9110.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use headers::{
    ContentRange, ETag, HeaderMapExt, IfMatch, IfModifiedSince, IfNoneMatch, IfUnmodifiedSince,
    LastModified,
};
use poem::http::{header, StatusCode};
use poem::{Body, Request, Response, ResponseBuilder};

use super::error::ApiError;
use crate::catalog::FileRecord;
use crate::storage::{Location, Storage};

/// Read size per chunk: large enough for loopback throughput, small enough that a stream's
/// memory (at most `READ_AHEAD_CHUNKS` + 1 chunks) stays a few MB whatever the client's speed.
const CHUNK_BYTES: usize = 2048 * 1024;
const READ_AHEAD_CHUNKS: usize = 2;

/// The validators of the file as imported: a strong ETag and Last-Modified. framecast's own,
/// for remote files too (from the record, so every instance gives the same): size and
/// modification time, and for a remote object a digest of its origin's ETag. The origin's
/// validators are not passed on: requests are checked against the record, and the origin
/// is asked for the imported object only (`If-Match`).
fn validators(file: &FileRecord) -> (ETag, SystemTime, LastModified) {
    let origin = file.etag.as_deref().map_or_else(String::new, |etag| {
        use sha2::Digest;
        format!(
            "-{}",
            &hex::encode(sha2::Sha256::digest(etag.as_bytes()))[..16]
        )
    });
    let etag = format!(
        "\"{}-{:x}-{:x}{origin}\"",
        file.uuid, file.size, file.mtime_ns
    )
    .parse()
    .expect("valid entity tag");
    let mtime = UNIX_EPOCH + Duration::from_nanos(file.mtime_ns.max(0) as u64);
    (etag, mtime, LastModified::from(mtime))
}

/// The headers every answer about the file's bytes carries: ranges accepted, caching, and
/// the validators.
fn validated_response(etag: &ETag, last_modified: LastModified) -> ResponseBuilder {
    Response::builder()
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CACHE_CONTROL, "private, max-age=3600")
        .typed_header(etag.clone())
        .typed_header(last_modified)
}

/// The response for bytes `range` of `record` (all of it for `None`): 206 with
/// Content-Range for a range, the type and length; with the first byte and the length.
fn span(
    mut response: ResponseBuilder,
    range: Option<(u64, u64)>,
    record: &FileRecord,
) -> (ResponseBuilder, u64, u64) {
    let size = record.size;
    let (start, end) = match range {
        Some((start, end)) => {
            response = response
                .status(StatusCode::PARTIAL_CONTENT)
                .typed_header(ContentRange::bytes(start..=end, size).expect("valid range"));
            (start, end)
        }
        None => (0, size.saturating_sub(1)),
    };
    let length = if size == 0 { 0 } else { end - start + 1 };
    let response = response
        .content_type(content_type(&record.location))
        .header(header::CONTENT_LENGTH, length);
    (response, start, length)
}

/// What the request's preconditions (RFC 9110 §13.2.2) ask for, in their order of
/// evaluation.
enum Precondition {
    Failed,
    NotModified,
    Proceed,
}

fn evaluate_preconditions(req: &Request, etag: &ETag, mtime: SystemTime) -> Precondition {
    let headers = req.headers();
    if let Some(if_match) = headers.typed_get::<IfMatch>() {
        if !if_match.precondition_passes(etag) {
            return Precondition::Failed;
        }
    } else if let Some(since) = headers.typed_get::<IfUnmodifiedSince>() {
        if !since.precondition_passes(mtime) {
            return Precondition::Failed;
        }
    }
    if let Some(if_none_match) = headers.typed_get::<IfNoneMatch>() {
        if !if_none_match.precondition_passes(etag) {
            return Precondition::NotModified;
        }
    } else if let Some(since) = headers.typed_get::<IfModifiedSince>() {
        if !since.is_modified(mtime) {
            return Precondition::NotModified;
        }
    }
    Precondition::Proceed
}

/// The byte range to send: `None` for the whole file. Malformed or overlapping ranges are
/// ignored (RFC 9110 §14.2 allows it), as are several ranges (we answer with the whole
/// file rather than multipart/byteranges, which no video player asks for).
fn requested_range(
    req: &Request,
    size: u64,
    etag: &ETag,
    last_modified: &LastModified,
) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(range) = req.headers().get(header::RANGE) else {
        return Ok(None);
    };
    if let Some(if_range) = req.headers().get(header::IF_RANGE) {
        if !if_range_matches(if_range, etag, last_modified) {
            return Ok(None);
        }
    }
    let Ok(range) = range.to_str() else {
        return Ok(None);
    };
    let ranges = match http_range_header::parse_range_header(range).map(|r| r.validate(size)) {
        Ok(Ok(ranges)) => ranges,
        Ok(Err(http_range_header::RangeUnsatisfiableError::Unsatisfiable)) => {
            return Err(ApiError::RangeNotSatisfiable { size })
        }
        _ => return Ok(None),
    };
    match ranges.as_slice() {
        [one] => Ok(Some((*one.start(), *one.end()))),
        _ => Ok(None),
    }
}

/// RFC 9110 §13.1.5: the range applies only if the validator matches exactly: an entity
/// tag by strong comparison, a date by equality with Last-Modified. (The headers crate
/// treats any date at or after Last-Modified as a match, which sends a stale range.)
fn if_range_matches(
    if_range: &poem::http::HeaderValue,
    etag: &ETag,
    last_modified: &LastModified,
) -> bool {
    let Ok(text) = if_range.to_str() else {
        return false;
    };
    let text = text.trim();
    if text.starts_with('"') || text.starts_with("W/") {
        // Ours is strong: a weak tag never equals it; a malformed one matches nothing.
        return text.parse::<ETag>().is_ok_and(|given| given == *etag);
    }
    httpdate::parse_http_date(text).is_ok_and(|date| LastModified::from(date) == *last_modified)
}

pub async fn original(
    req: &Request,
    record: &FileRecord,
    stall_timeout: Duration,
    storage: &Storage,
) -> Result<Response, ApiError> {
    let path = match &record.location {
        Location::File(path) => path,
        _ => return proxied(req, record, storage).await,
    };
    let uuid = record.uuid.to_string();
    let file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::FileGone(uuid, "the file is missing"))
        }
        Err(e) => return Err(ApiError::internal(format!("{}: {e}", path.display()))),
    };
    // Stat the open file, not the path, so what we check is what we send.
    let metadata = file.metadata().await.map_err(ApiError::internal)?;
    if !record.imported().matches_local(&metadata) {
        return Err(ApiError::FileGone(uuid, "the file changed since import"));
    }

    let size = record.size;
    let (etag, mtime, last_modified) = validators(record);
    let response = validated_response(&etag, last_modified);
    match evaluate_preconditions(req, &etag, mtime) {
        Precondition::Failed => return Err(ApiError::PreconditionFailed),
        Precondition::NotModified => {
            return Ok(response.status(StatusCode::NOT_MODIFIED).finish());
        }
        Precondition::Proceed => {}
    }

    let range = requested_range(req, size, &etag, &last_modified)?;
    let (response, start, length) = span(response, range, record);
    // A HEAD gets every header a GET would, from the record and one stat: no read-ahead.
    if super::is_head(req) {
        return Ok(response.finish());
    }
    let stream = read_range(file.into_std().await, start, length, stall_timeout);
    Ok(response.body(Body::from_bytes_stream(stream)))
}

/// Streams `length` bytes from `start` of `file`. One blocking thread reads ahead at most
/// `READ_AHEAD_CHUNKS` chunks (straight into each chunk's fresh buffer: one copy, no
/// per-chunk task hop), so a slow client holds the reader back instead of filling memory;
/// a client that goes away drops the receiver and ends the thread. A client reading nothing
/// for `stall_timeout` ends it too (the body then falls short of its Content-Length and the
/// connection is closed): otherwise enough stalled downloads would take every thread of the
/// blocking pool, which thumbnails and catalog lookups need.
fn read_range(
    mut file: std::fs::File,
    start: u64,
    length: u64,
    stall_timeout: Duration,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> {
    use std::io::{Read, Seek};
    let (sender, receiver) = tokio::sync::mpsc::channel(READ_AHEAD_CHUNKS);
    let runtime = tokio::runtime::Handle::current();
    let send = move |message| {
        runtime
            .block_on(async { tokio::time::timeout(stall_timeout, sender.send(message)).await })
            .is_ok_and(|sent| sent.is_ok())
    };
    tokio::task::spawn_blocking(move || {
        if let Err(e) = file.seek(std::io::SeekFrom::Start(start)) {
            send(Err(e));
            return;
        }
        let mut remaining = length;
        while remaining > 0 {
            let want = remaining.min(CHUNK_BYTES as u64);
            let mut chunk = Vec::with_capacity(want as usize);
            let message = match (&mut file).take(want).read_to_end(&mut chunk) {
                Ok(0) => Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(read) => {
                    remaining -= read as u64;
                    Ok(bytes::Bytes::from(chunk))
                }
                Err(e) => Err(e),
            };
            let failed = message.is_err();
            if !send(message) || failed {
                return;
            }
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(receiver)
}

/// A remote file's bytes through framecast: preconditions and the range are decided here
/// against the record (as for a local file), then the origin is asked for exactly that range
/// of exactly the imported object (`Range`, and `If-Match` its ETag or `If-Unmodified-Since`
/// its Last-Modified: a changed object is 410, never mixed bytes). The body is passed on as
/// it arrives: the origin's connection is read only as fast as the client reads (constant
/// memory), and an origin that stalls for `origin_timeout_seconds` mid-body ends it short of
/// its Content-Length.
async fn proxied(
    req: &Request,
    record: &FileRecord,
    storage: &Storage,
) -> Result<Response, ApiError> {
    let size = record.size;
    let (etag, mtime, last_modified) = validators(record);
    let response = validated_response(&etag, last_modified);
    let failed = |e| ApiError::storage(record.uuid, e);
    let precondition = evaluate_preconditions(req, &etag, mtime);
    let range = requested_range(req, size, &etag, &last_modified);
    // Answers without a body still say whether the object is the imported one.
    if !matches!(precondition, Precondition::Proceed) || super::is_head(req) || size == 0 {
        storage.check(&record.imported()).await.map_err(failed)?;
    }
    match precondition {
        Precondition::Failed => return Err(ApiError::PreconditionFailed),
        Precondition::NotModified => {
            return Ok(response.status(StatusCode::NOT_MODIFIED).finish());
        }
        Precondition::Proceed => {}
    }
    let range = range?;
    let (response, start, length) = span(response, range, record);
    if super::is_head(req) || size == 0 {
        return Ok(response.finish());
    }
    let origin = storage
        // Not empty: an empty file was answered above.
        .get_range(&record.imported(), Some((start, start + length - 1)))
        .await
        .map_err(failed)?;
    let stall = storage.timeout();
    let uuid = record.uuid;
    let body = Box::pin(origin.bytes_stream());
    let stream = futures_util::stream::unfold(Some(body), move |body| async move {
        use futures_util::StreamExt;
        let mut body = body?;
        let failed = |what: &str| {
            tracing::warn!(file = %uuid, "media origin {what} mid-body: the download is cut");
            Some((Err(std::io::Error::other(format!("origin {what}"))), None))
        };
        match tokio::time::timeout(stall, body.next()).await {
            Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(body))),
            Ok(Some(Err(_))) => failed("failed"),
            Ok(None) => None,
            Err(_) => failed("stalled"),
        }
    });
    Ok(response.body(Body::from_bytes_stream(stream)))
}

/// Content-Type from the file extension, for the containers framecast serves.
fn content_type(location: &Location) -> &'static str {
    match location.extension().as_deref() {
        Some("mp4" | "m4v") => "video/mp4",
        Some("mov") => "video/quicktime",
        Some("mkv") => "video/x-matroska",
        Some("webm") => "video/webm",
        Some("ts" | "m2ts" | "mts") => "video/mp2t",
        Some("avi") => "video/x-msvideo",
        Some("ogv") => "video/ogg",
        _ => "application/octet-stream",
    }
}
