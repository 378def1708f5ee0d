//! Where a file's bytes are: a local path, an HTTP(S) origin (or a pre-signed object-storage
//! URL), or `s3://bucket/key`. This module turns a record's [`Location`] into what GStreamer
//! and the `/video` proxy read, and checks that a remote object is still the one imported.
//!
//! - `http://` and `https://` URLs are read as they are.
//! - `s3://bucket/key` becomes a pre-signed GET (or HEAD) URL, made per request and valid for
//!   `s3_url_ttl_seconds`, signed by `rusty-s3` with the credentials of the settings or the
//!   usual `AWS_*` variables; the endpoint is `s3_endpoint` / `AWS_ENDPOINT_URL` (path-style
//!   requests) or AWS's regional one (virtual-host style).
//!
//! Redirects are never followed (by the proxy or by souphttpsrc): an allowed origin cannot
//! send framecast to an address the allow-list refuses.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use poem::http::{header, HeaderValue, StatusCode};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use url::Url;

use crate::config::{Config, ConfigError};

/// A file's location, as given at import and kept in the catalog (`files.path`): a path is
/// absolute (import resolves it), a URL starts with its scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    File(PathBuf),
    Http(Url),
    S3 { bucket: String, key: String },
}

impl Location {
    /// A location as given to import: `http://`, `https://`, `s3://bucket/key`, or a path.
    pub fn parse(text: &str) -> Result<Location, StorageError> {
        let bad = |why: &str| {
            StorageError::BadLocation(format!("{}: {why}", crate::client_text::quote(text)))
        };
        let Some((scheme, _)) = text.split_once("://") else {
            if text.is_empty() {
                return Err(bad("empty"));
            }
            return Ok(Location::File(PathBuf::from(text)));
        };
        match scheme.to_ascii_lowercase().as_str() {
            "http" | "https" => {
                let url = Url::parse(text).map_err(|e| bad(&e.to_string()))?;
                if url.host_str().is_none_or(str::is_empty) {
                    return Err(bad("no host"));
                }
                if !url.username().is_empty() || url.password().is_some() {
                    return Err(bad("credentials in the URL are not accepted"));
                }
                Ok(Location::Http(url))
            }
            "s3" => {
                let rest = &text[5..];
                let (bucket, key) = rest
                    .split_once('/')
                    .filter(|(b, k)| !b.is_empty() && !k.is_empty())
                    .ok_or_else(|| bad("expected s3://bucket/key"))?;
                if !bucket
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
                {
                    return Err(bad("not a valid bucket name"));
                }
                Ok(Location::S3 {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                })
            }
            other => Err(bad(&format!(
                "scheme {other} is not supported; use a path, http(s):// or s3://"
            ))),
        }
    }

    /// A location as the catalog keeps it (what [`Location::stored`] wrote). Never fails:
    /// anything not a URL is a path.
    pub fn from_stored(text: &str) -> Location {
        match Location::parse(text) {
            Ok(location) => location,
            Err(_) => Location::File(PathBuf::from(text)),
        }
    }

    /// The text the catalog keeps, and the one the allow-lists are checked against.
    pub fn stored(&self) -> String {
        match self {
            Location::File(path) => path.to_string_lossy().into_owned(),
            Location::Http(url) => url.to_string(),
            Location::S3 { bucket, key } => format!("s3://{bucket}/{key}"),
        }
    }

    pub fn is_remote(&self) -> bool {
        !matches!(self, Location::File(_))
    }

    /// The last path segment's extension, lower-cased (for Content-Type).
    pub fn extension(&self) -> Option<String> {
        let name = match self {
            Location::File(path) => return path_extension(path),
            Location::Http(url) => url.path().rsplit('/').next().unwrap_or_default().to_owned(),
            Location::S3 { key, .. } => key.rsplit('/').next().unwrap_or_default().to_owned(),
        };
        path_extension(Path::new(&name))
    }
}

fn path_extension(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.stored())
    }
}

/// What identifies a remote object: kept in the catalog at import, compared on every use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteObject {
    pub size: u64,
    /// The origin's entity tag, as it sent it (quotes included).
    pub etag: Option<String>,
    /// Last-Modified, nanoseconds since the epoch (0 when the origin sends none).
    pub mtime_ns: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A location that is malformed or not allowed (the message says which).
    #[error("location {0}")]
    BadLocation(String),
    /// The origin could not be reached, refused, or answered with an error: 502.
    #[error("the media origin failed: {0}")]
    Origin(String),
    /// The origin did not answer within `origin_timeout_seconds`: 504.
    #[error("the media origin did not answer within {0} s")]
    Timeout(f64),
    /// The object is missing or changed since import: 410.
    #[error("{0}")]
    Gone(&'static str),
    /// s3:// without the settings to sign for it.
    #[error("s3:// locations need {0}")]
    NotConfigured(&'static str),
}

/// S3 settings: endpoint, region, and credentials (none: unsigned requests).
#[derive(Clone)]
struct S3 {
    endpoint: Url,
    style: UrlStyle,
    region: String,
    credentials: Option<Credentials>,
    ttl: Duration,
}

/// Reads remote media: signs S3 URLs, checks objects, and opens ranges for the proxy.
pub struct Storage {
    client: reqwest::Client,
    timeout: Duration,
    s3: Option<S3>,
}

/// The first of these environment variables that is set and not empty.
fn env(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
}

impl Storage {
    pub fn new(config: &Config) -> Result<Storage, ConfigError> {
        let timeout = Config::seconds("origin_timeout_seconds", config.origin_timeout_seconds)?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("framecast/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::BadValue {
                key: "origin_timeout_seconds",
                value: e.to_string(),
                rule: "an HTTP client could not be made",
            })?;
        let region = config
            .s3_region
            .clone()
            .or_else(|| env(&["AWS_REGION", "AWS_DEFAULT_REGION"]))
            .unwrap_or_else(|| "us-east-1".into());
        let endpoint = config
            .s3_endpoint
            .clone()
            .or_else(|| env(&["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]));
        let (endpoint, style) = match endpoint {
            Some(endpoint) => (endpoint, UrlStyle::Path),
            None => (
                format!("https://s3.{region}.amazonaws.com"),
                UrlStyle::VirtualHost,
            ),
        };
        let endpoint = Url::parse(&endpoint).map_err(|_| ConfigError::BadValue {
            key: "s3_endpoint",
            value: endpoint.clone(),
            rule: "an http:// or https:// URL",
        })?;
        let credentials = match (env(&["AWS_ACCESS_KEY_ID"]), env(&["AWS_SECRET_ACCESS_KEY"])) {
            (Some(key), Some(secret)) => Some(match env(&["AWS_SESSION_TOKEN"]) {
                Some(token) => Credentials::new_with_token(key, secret, token),
                None => Credentials::new(key, secret),
            }),
            _ => None,
        };
        Ok(Storage {
            client,
            timeout,
            s3: Some(S3 {
                endpoint,
                style,
                region,
                credentials,
                ttl: Duration::from_secs(config.s3_url_ttl_seconds.max(1)),
            }),
        })
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The URL to read `location` with `method` (GET or HEAD); for s3:// a pre-signed one,
    /// valid for `s3_url_ttl_seconds` from now. `None` for a local path.
    pub fn url(&self, location: &Location, head: bool) -> Result<Option<Url>, StorageError> {
        match location {
            Location::File(_) => Ok(None),
            Location::Http(url) => Ok(Some(url.clone())),
            Location::S3 { bucket, key } => {
                let s3 = self
                    .s3
                    .as_ref()
                    .ok_or(StorageError::NotConfigured("S3 settings"))?;
                let bucket = Bucket::new(
                    s3.endpoint.clone(),
                    s3.style,
                    bucket.clone(),
                    s3.region.clone(),
                )
                .map_err(|e| StorageError::BadLocation(format!("s3://{bucket}: {e}")))?;
                let credentials = s3.credentials.as_ref();
                Ok(Some(if head {
                    bucket.head_object(credentials, key).sign(s3.ttl)
                } else {
                    bucket.get_object(credentials, key).sign(s3.ttl)
                }))
            }
        }
    }

    /// What GStreamer opens for `location`: its path, or a (signed) URL.
    pub fn source(&self, location: &Location) -> Result<String, StorageError> {
        Ok(match self.url(location, false)? {
            Some(url) => url.to_string(),
            None => location.stored(),
        })
    }

    /// The object's identity now, by a HEAD request.
    pub async fn head(&self, location: &Location) -> Result<RemoteObject, StorageError> {
        let url = self
            .url(location, true)?
            .expect("head is only asked of remote locations");
        let response = self.send(self.client.head(url)).await?;
        check_status(response.status())?;
        remote_object(response.headers(), None)
    }

    /// For a remote file: the object is still the one imported (410 if not, 502/504 if the
    /// origin fails). A local file is checked by whoever opens it.
    pub async fn check(&self, file: &Imported<'_>) -> Result<(), StorageError> {
        if !file.location.is_remote() {
            return Ok(());
        }
        let now = self.head(file.location).await?;
        unchanged(file, &now)
    }

    /// Bytes `start..=end` of the remote `file`, conditional on the object being the one
    /// imported (`If-Match` its ETag, or `If-Unmodified-Since` its Last-Modified). The
    /// response's headers arrived; its body is read by the caller.
    pub async fn get_range(
        &self,
        file: &Imported<'_>,
        range: Option<(u64, u64)>,
    ) -> Result<reqwest::Response, StorageError> {
        let url = self
            .url(file.location, false)?
            .expect("get_range is only asked of remote files");
        let mut request = self.client.get(url);
        if let Some((start, end)) = range {
            request = request.header(header::RANGE, format!("bytes={start}-{end}"));
        }
        if let Some(etag) = file.etag {
            request = request.header(header::IF_MATCH, etag);
        } else if file.mtime_ns > 0 {
            let date = UNIX_EPOCH + Duration::from_nanos(file.mtime_ns as u64);
            request = request.header(
                header::IF_UNMODIFIED_SINCE,
                httpdate::fmt_http_date(date).as_str(),
            );
        }
        let response = self.send(request).await?;
        check_status(response.status())?;
        let now = remote_object(response.headers(), range.map(|_| ()))?;
        unchanged(file, &now)?;
        match (range, response.status()) {
            (Some(_), StatusCode::PARTIAL_CONTENT) | (None, StatusCode::OK) => Ok(response),
            (Some((0, end)), StatusCode::OK) if end + 1 == file.size => Ok(response),
            (_, status) => Err(StorageError::Origin(format!(
                "answered a range request with {status}"
            ))),
        }
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, StorageError> {
        match tokio::time::timeout(self.timeout, request.send()).await {
            Err(_) => Err(StorageError::Timeout(self.timeout.as_secs_f64())),
            Ok(Err(e)) if e.is_timeout() => Err(StorageError::Timeout(self.timeout.as_secs_f64())),
            Ok(Err(e)) => Err(StorageError::Origin(describe(e))),
            Ok(Ok(response)) => Ok(response),
        }
    }
}

/// reqwest's errors name the URL, which for S3 holds a signature: left out, causes kept.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn check_status(status: StatusCode) -> Result<(), StorageError> {
    match status {
        s if s.is_success() => Ok(()),
        StatusCode::NOT_FOUND | StatusCode::GONE => {
            Err(StorageError::Gone("the object is missing at its origin"))
        }
        StatusCode::PRECONDITION_FAILED => {
            Err(StorageError::Gone("the object changed since import"))
        }
        s => Err(StorageError::Origin(format!("answered {s}"))),
    }
}

/// The identity in a response's headers. For a ranged answer, the size is Content-Range's
/// total, else Content-Length.
fn remote_object(
    headers: &header::HeaderMap,
    ranged: Option<()>,
) -> Result<RemoteObject, StorageError> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let total = text(header::CONTENT_RANGE)
        .and_then(|r| r.rsplit('/').next())
        .and_then(|t| t.trim().parse::<u64>().ok());
    let length = text(header::CONTENT_LENGTH).and_then(|l| l.trim().parse::<u64>().ok());
    let size = match (ranged, total) {
        (_, Some(total)) => total,
        (Some(()), None) | (None, None) => length.ok_or_else(|| {
            StorageError::Origin("the answer has no Content-Length: its size is unknown".into())
        })?,
    };
    let mtime_ns = text(header::LAST_MODIFIED)
        .and_then(|d| httpdate::parse_http_date(d).ok())
        .and_then(epoch_ns)
        .unwrap_or(0);
    Ok(RemoteObject {
        size,
        etag: text(header::ETAG).map(str::to_owned),
        mtime_ns,
    })
}

/// The object `now` is the one `file` recorded at import: same size, and the same ETag (or,
/// when the origin gave none, the same Last-Modified).
fn unchanged(file: &Imported<'_>, now: &RemoteObject) -> Result<(), StorageError> {
    let same = now.size == file.size
        && match (file.etag, &now.etag) {
            (Some(then), Some(now)) => then == now,
            (Some(_), None) => false,
            (None, _) => now.mtime_ns == file.mtime_ns,
        };
    if same {
        Ok(())
    } else {
        Err(StorageError::Gone("the object changed since import"))
    }
}

/// What was recorded of a file at import, as the checks against its origin need it (the
/// catalog's record gives it: `FileRecord::imported`).
#[derive(Debug, Clone, Copy)]
pub struct Imported<'a> {
    pub location: &'a Location,
    pub size: u64,
    pub mtime_ns: i64,
    pub etag: Option<&'a str>,
}

impl Imported<'_> {
    /// Whether the local file `metadata` describes now is the one imported: the same size
    /// and modification time.
    pub fn matches_local(&self, metadata: &std::fs::Metadata) -> bool {
        metadata.len() == self.size
            && metadata.modified().ok().and_then(epoch_ns) == Some(self.mtime_ns)
    }
}

/// A time as the catalog records it: nanoseconds since the Unix epoch (`None` before it).
pub fn epoch_ns(time: SystemTime) -> Option<i64> {
    time.duration_since(UNIX_EPOCH)
        .ok()
        .map(|d| d.as_nanos() as i64)
}

/// Whether `location` may be imported through the API: a path under one of `roots` (after
/// resolving symlinks and `..`), or a URL starting with one of `prefixes`. Returns the
/// location to import (a path resolved).
pub fn allowed(
    location: &Location,
    roots: &[PathBuf],
    prefixes: &[String],
) -> Result<Location, StorageError> {
    match location {
        Location::File(path) => {
            let refuse = || {
                StorageError::BadLocation(format!(
                    "{}: not a readable file under the configured media_roots",
                    crate::client_text::quote(&path.to_string_lossy())
                ))
            };
            if !path.is_absolute() {
                return Err(StorageError::BadLocation(format!(
                    "{}: a local path must be absolute",
                    crate::client_text::quote(&path.to_string_lossy())
                )));
            }
            let resolved = std::fs::canonicalize(path).map_err(|_| refuse())?;
            let inside = roots.iter().any(|root| {
                std::fs::canonicalize(root).is_ok_and(|root| resolved.starts_with(root))
            });
            if inside && resolved.is_file() {
                Ok(Location::File(resolved))
            } else {
                Err(refuse())
            }
        }
        remote => {
            let text = remote.stored();
            // Compared on the normalised form (url's parse resolves `..`, lower-cases the
            // host), so `http://allowed/../` or `HTTP://Allowed` cannot slip past.
            if prefixes.iter().any(|prefix| prefix_matches(prefix, &text)) {
                Ok(remote.clone())
            } else {
                Err(StorageError::BadLocation(format!(
                    "{}: not under one of the configured media_url_prefixes",
                    crate::client_text::quote(&text)
                )))
            }
        }
    }
}

/// `text` starts with `prefix`, and the prefix ends at a boundary: a prefix
/// `http://origin:8080` does not allow `http://origin:80800/` or `http://origin:8080.evil/`.
fn prefix_matches(prefix: &str, text: &str) -> bool {
    // The configured prefix in the same normal form as the location (`HTTP://Host:80` is
    // `http://host/`).
    let normal = match Location::parse(prefix) {
        Ok(Location::Http(url)) => url.to_string(),
        _ => prefix.to_owned(),
    };
    let prefix = normal.as_str();
    let Some(rest) = text.strip_prefix(prefix) else {
        return false;
    };
    prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_and_round_trip() {
        for text in [
            "/videos/a b.mp4",
            "http://127.0.0.1:8080/media/a.mp4",
            "https://cdn.example.com/a.mp4?X-Amz-Signature=abc",
            "s3://bucket-1/dir/a.mp4",
        ] {
            let location = Location::parse(text).unwrap();
            assert_eq!(
                Location::from_stored(&location.stored()),
                location,
                "{text}"
            );
        }
        for bad in [
            "",
            "ftp://x/y",
            "s3://bucket",
            "s3:///key",
            "http://u:p@host/x",
            "s3://Bad_Bucket/k",
        ] {
            assert!(Location::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Location::parse("http://h/a/B.MP4")
                .unwrap()
                .extension()
                .as_deref(),
            Some("mp4")
        );
    }

    #[test]
    fn url_prefixes_match_at_boundaries_after_normalising() {
        let prefixes = vec!["HTTP://Origin:8080".to_owned(), "s3://media/".to_owned()];
        let check =
            |text: &str| Location::parse(text).is_ok_and(|l| allowed(&l, &[], &prefixes).is_ok());
        assert!(check("http://origin:8080/a.mp4"));
        assert!(check("HTTP://ORIGIN:8080/a.mp4"));
        assert!(check("s3://media/a.mp4"));
        assert!(!check("http://origin:80800/a.mp4"));
        assert!(!check("http://origin:8080.evil.net/a.mp4"));
        assert!(!check("http://127.0.0.1/a.mp4"));
        assert!(!check("s3://media-other/a.mp4"));
        assert!(!check("https://origin:8080/a.mp4"));
    }

    #[test]
    fn local_paths_must_resolve_under_a_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("media");
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("a.mp4"), b"x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("link.mp4")).unwrap();
        let roots = vec![root.clone()];
        let check = |p: PathBuf| allowed(&Location::File(p), &roots, &[]);
        assert!(check(root.join("a.mp4")).is_ok());
        assert!(check(root.join("../media/a.mp4")).is_ok());
        assert!(check(root.join("link.mp4")).is_err());
        assert!(check(root.join("../../../etc/passwd")).is_err());
        assert!(check(PathBuf::from("/etc/passwd")).is_err());
        assert!(check(PathBuf::from("media/a.mp4")).is_err());
        assert!(check(root.clone()).is_err(), "a folder is not a file");
    }
}
