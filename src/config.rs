//! Settings: built-in defaults, then an optional TOML file, then `FRAMECAST_*` environment
//! variables (the environment wins). `framecast.example.toml` documents every key.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server binds; port 0 picks a free port (printed at startup).
    pub listen: SocketAddr,
    /// Holds the catalog (`catalog.sqlite3`) and, when no secret is configured, `jwt_secret`.
    pub data_dir: PathBuf,
    /// Where files and detections are kept: `sqlite:PATH` or
    /// `postgres://user[:password]@host[:port]/db`; unset: `sqlite:<data_dir>/catalog.sqlite3`.
    pub catalog: Option<String>,
    /// Pipeline description files (`*.gst`).
    pub pipelines_dir: PathBuf,
    /// HS256/384/512 secret. Unset: generated once and kept in `<data_dir>/jwt_secret`.
    pub jwt_secret: Option<String>,
    /// PEM public key (RSA or EC P-256) accepting RS256/ES256 tokens issued elsewhere.
    pub jwt_public_key: Option<PathBuf>,
    /// Key rotation: HMAC secrets that all verify; the first signs `framecast token`.
    /// `jwt_secret`, when also set, verifies after them.
    pub jwt_secrets: Vec<String>,
    /// More PEM public keys; a token's `kid` names one by its file name without `.pem`.
    pub jwt_public_keys: Vec<PathBuf>,
    /// An identity provider's JWK set (RFC 7517): RS256/ES256 keys chosen by `kid`.
    pub jwks_url: Option<String>,
    /// When set, tokens must carry this `iss`.
    pub jwt_issuer: Option<String>,
    /// When set, tokens must carry this `aud`.
    pub jwt_audience: Option<String>,
    /// Clock skew tolerated on `exp`/`nbf`, in seconds.
    pub jwt_leeway_seconds: u64,
    /// Seconds that running responses get to finish after SIGTERM/SIGINT.
    pub shutdown_grace_seconds: u64,
    /// Memory for encoded thumbnails kept to serve repeats, in bytes.
    pub thumbnail_cache_bytes: u64,
    /// A thumbnail taking longer than this is abandoned with 504 (fractions allowed).
    pub thumbnail_timeout_seconds: f64,
    /// Longest clip `/clip` serves, in seconds of video.
    pub max_clip_seconds: u64,
    /// Pango font families for every detection label (e.g. "DejaVu Sans"); unset: the 5×7
    /// bitmap font for ASCII labels, DejaVu Sans / Noto Sans CJK for the rest.
    pub label_font: Option<String>,
    /// A clip whose first bytes take longer than this is abandoned with 503.
    pub clip_start_timeout_seconds: u64,
    /// Encoding pipelines (clips, overlay streams) running at once; unset: the number of
    /// CPU cores, since each one keeps about a core busy.
    pub max_encoding_pipelines: Option<usize>,
    /// Thumbnail pipelines running at once, a pool of their own so that thumbnails never
    /// wait behind long streams; unset: twice `max_encoding_pipelines`.
    pub max_thumbnail_pipelines: Option<usize>,
    /// Estimated memory all running pipelines may hold together, in bytes; a request whose
    /// pipeline would not fit waits like one over the slot limits.
    pub pipeline_memory_bytes: u64,
    /// Largest thumbnail, in output pixels (width × height).
    pub max_thumbnail_pixels: u64,
    /// Thumbnail decoders kept positioned after their frame, for the next frames of the
    /// same file; unset: twice the CPU cores; 0 disables them.
    pub warm_decoders: Option<usize>,
    /// How far ahead of a warm decoder (in frames) a thumbnail may be to continue it.
    pub warm_decoder_max_step: u32,
    /// A warm decoder unused for this many seconds is freed (fractions allowed).
    pub warm_decoder_idle_seconds: f64,
    /// How long a request over those limits waits for a free slot before 503.
    pub queue_timeout_seconds: f64,
    /// A stream that makes no progress (client not reading, or pipeline not producing) for
    /// this long is ended abnormally and its pipeline freed.
    pub stall_timeout_seconds: f64,
    /// Serve `GET /metrics` (Prometheus text format, no token needed).
    pub metrics_enabled: bool,
    /// Folders under which `POST /api/v1/files` may import local paths (after resolving
    /// symlinks and `..`); empty: no local path is accepted over HTTP.
    pub media_roots: Vec<PathBuf>,
    /// URL prefixes (`https://media.example.com/videos/`, `s3://bucket/`) under which
    /// `POST /api/v1/files` may import remote media; empty: none.
    pub media_url_prefixes: Vec<String>,
    /// A media origin (HTTP or S3) that does not connect or answer within this many seconds
    /// gives 504 (fractions allowed).
    pub origin_timeout_seconds: f64,
    /// S3 endpoint (`http://127.0.0.1:9000` for MinIO and the like; path-style requests);
    /// unset: `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`, else AWS's regional endpoint.
    pub s3_endpoint: Option<String>,
    /// S3 region; unset: `AWS_REGION` / `AWS_DEFAULT_REGION`, else us-east-1.
    pub s3_region: Option<String>,
    /// How long a pre-signed S3 URL made for one request stays valid, in seconds.
    pub s3_url_ttl_seconds: u64,
    /// Largest request body the import API reads (a detections upload), in bytes: 413 past it.
    pub max_upload_bytes: u64,
    /// A request head (request line and headers) must arrive within this many seconds of
    /// its first byte, and a new connection's first one within this of connecting.
    pub header_read_timeout_seconds: f64,
    /// A kept-alive connection with no request for this many seconds is closed.
    pub idle_timeout_seconds: f64,
    /// Largest request line plus headers, in bytes (at least 8192); larger gets 431.
    pub max_header_bytes: usize,
    /// Connections open at once. At the limit, a new connection closes the oldest one not
    /// answering a request, or, when all are, is refused with 503.
    pub max_connections: usize,
}

/// Every key of [`Config`], as spelled in TOML (and, upper-cased, after `FRAMECAST_`).
const KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "catalog",
    "pipelines_dir",
    "jwt_secret",
    "jwt_public_key",
    "jwt_secrets",
    "jwt_public_keys",
    "jwks_url",
    "jwt_issuer",
    "jwt_audience",
    "jwt_leeway_seconds",
    "shutdown_grace_seconds",
    "thumbnail_cache_bytes",
    "thumbnail_timeout_seconds",
    "max_clip_seconds",
    "label_font",
    "clip_start_timeout_seconds",
    "max_encoding_pipelines",
    "max_thumbnail_pipelines",
    "pipeline_memory_bytes",
    "max_thumbnail_pixels",
    "warm_decoders",
    "warm_decoder_max_step",
    "warm_decoder_idle_seconds",
    "queue_timeout_seconds",
    "stall_timeout_seconds",
    "metrics_enabled",
    "media_roots",
    "media_url_prefixes",
    "origin_timeout_seconds",
    "s3_endpoint",
    "s3_region",
    "s3_url_ttl_seconds",
    "max_upload_bytes",
    "header_read_timeout_seconds",
    "idle_timeout_seconds",
    "max_header_bytes",
    "max_connections",
];

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".parse().expect("valid default address"),
            data_dir: PathBuf::from("data"),
            catalog: None,
            pipelines_dir: PathBuf::from("pipelines"),
            jwt_secret: None,
            jwt_public_key: None,
            jwt_secrets: Vec::new(),
            jwt_public_keys: Vec::new(),
            jwks_url: None,
            jwt_issuer: None,
            jwt_audience: None,
            jwt_leeway_seconds: 30,
            shutdown_grace_seconds: 10,
            thumbnail_cache_bytes: 64 * 1024 * 1024,
            thumbnail_timeout_seconds: 15.0,
            max_clip_seconds: 600,
            label_font: None,
            clip_start_timeout_seconds: 15,
            max_encoding_pipelines: None,
            max_thumbnail_pipelines: None,
            pipeline_memory_bytes: 2 << 30,
            max_thumbnail_pixels: 3840 * 2160,
            warm_decoders: None,
            warm_decoder_max_step: 30,
            warm_decoder_idle_seconds: 3.0,
            queue_timeout_seconds: 2.0,
            stall_timeout_seconds: 30.0,
            metrics_enabled: true,
            media_roots: Vec::new(),
            media_url_prefixes: Vec::new(),
            origin_timeout_seconds: 10.0,
            s3_endpoint: None,
            s3_region: None,
            s3_url_ttl_seconds: 900,
            max_upload_bytes: 256 << 20,
            header_read_timeout_seconds: 10.0,
            idle_timeout_seconds: 60.0,
            max_header_bytes: 32 * 1024,
            max_connections: 1000,
        }
    }
}

/// The `catalog` setting, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatalogSetting {
    /// An SQLite file (created if missing).
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (it may hold a password: never log it as is).
    Postgres(String),
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not `BadValue`: the value may hold a password.
    #[error("invalid configuration: catalog: {0}")]
    Catalog(String),
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    #[error("invalid configuration: {key} = {value}: {rule}")]
    BadValue {
        key: &'static str,
        value: String,
        rule: &'static str,
    },
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read or write the JWT secret file {path}: {source}")]
    SecretFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Config {
    /// Defaults < TOML file (if given) < `FRAMECAST_*` environment.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        // Only known keys: other FRAMECAST_* variables (FRAMECAST_LOG) are not settings.
        let env = Env::prefixed("FRAMECAST_").filter(|key| {
            KEYS.iter()
                .any(|known| key.as_str().eq_ignore_ascii_case(known))
        });
        figment
            .merge(env)
            .extract()
            .map_err(|e| ConfigError::Invalid(Box::new(e)))
    }

    /// A `*_seconds` setting as a duration, refusing negative, NaN and huge values.
    pub fn seconds(key: &'static str, value: f64) -> Result<Duration, ConfigError> {
        Duration::try_from_secs_f64(value).map_err(|_| ConfigError::BadValue {
            key,
            value: value.to_string(),
            rule: "a number of seconds, 0 or more",
        })
    }

    /// `max_encoding_pipelines`, or the number of CPU cores.
    pub fn encoding_pipeline_limit(&self) -> Result<usize, ConfigError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        positive(
            "max_encoding_pipelines",
            self.max_encoding_pipelines.unwrap_or(cores),
        )
    }

    /// `max_thumbnail_pipelines`, or twice the encoding limit.
    pub fn thumbnail_pipeline_limit(&self) -> Result<usize, ConfigError> {
        let default = 2 * self.encoding_pipeline_limit()?;
        positive(
            "max_thumbnail_pipelines",
            self.max_thumbnail_pipelines.unwrap_or(default),
        )
    }

    /// The `catalog` setting: `sqlite:PATH`, `postgres://...` (or `postgresql://...`), or
    /// by default the SQLite file in the data dir.
    pub fn catalog_setting(&self) -> Result<CatalogSetting, ConfigError> {
        let Some(value) = self.catalog.as_deref() else {
            return Ok(CatalogSetting::Sqlite(
                self.data_dir.join("catalog.sqlite3"),
            ));
        };
        if let Some(path) = value.strip_prefix("sqlite:") {
            if path.is_empty() {
                return Err(ConfigError::Catalog(
                    "sqlite: needs a path, as in sqlite:/var/lib/framecast/catalog.sqlite3".into(),
                ));
            }
            return Ok(CatalogSetting::Sqlite(PathBuf::from(path)));
        }
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            // Parsed now so that a typo stops startup rather than the first request.
            value
                .parse::<tokio_postgres::Config>()
                .map_err(|e| ConfigError::Catalog(format!("not a valid PostgreSQL URL: {e}")))?;
            return Ok(CatalogSetting::Postgres(value.to_owned()));
        }
        Err(ConfigError::Catalog(
            "expected sqlite:PATH or postgres://user[:password]@host[:port]/db".into(),
        ))
    }

    /// The SQLite catalog's file (the data dir's default one when the catalog is
    /// PostgreSQL).
    pub fn catalog_path(&self) -> PathBuf {
        match self.catalog_setting() {
            Ok(CatalogSetting::Sqlite(path)) => path,
            _ => self.data_dir.join("catalog.sqlite3"),
        }
    }

    pub fn ensure_data_dir(&self) -> Result<(), ConfigError> {
        std::fs::create_dir_all(&self.data_dir).map_err(|source| ConfigError::DataDir {
            path: self.data_dir.clone(),
            source,
        })
    }

    /// The configured HMAC secret, or the one kept in the data dir (created on first use,
    /// mode 0600, so tokens printed by `framecast token` stay valid across restarts).
    pub fn resolve_jwt_secret(&self) -> Result<Vec<u8>, ConfigError> {
        if let Some(secret) = &self.jwt_secret {
            return Ok(secret.as_bytes().to_vec());
        }
        self.ensure_data_dir()?;
        let path = self.data_dir.join("jwt_secret");
        let err = |source| ConfigError::SecretFile {
            path: path.clone(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(secret) if !secret.trim().is_empty() => {
                return Ok(secret.trim().as_bytes().to_vec())
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(e)),
        }
        let secret = hex::encode(rand::random::<[u8; 32]>());
        write_private_file(&path, secret.as_bytes()).map_err(err)?;
        tracing::warn!(path = %path.display(), "FRAMECAST_JWT_SECRET is unset: generated a random secret and stored it");
        Ok(secret.into_bytes())
    }
}

impl Config {
    /// Every HMAC secret that verifies tokens, the signing one first: `jwt_secrets`, then
    /// `jwt_secret`; when neither is set, the generated one in the data dir.
    pub fn resolve_jwt_secrets(&self) -> Result<Vec<Vec<u8>>, ConfigError> {
        let configured: Vec<&String> = self.jwt_secrets.iter().chain(&self.jwt_secret).collect();
        if configured.is_empty() {
            return Ok(vec![self.resolve_jwt_secret()?]);
        }
        // An empty HMAC key would let anyone sign tokens.
        if configured.iter().any(|secret| secret.is_empty()) {
            return Err(ConfigError::BadValue {
                key: "jwt_secrets",
                value: "\"\"".into(),
                rule: "secrets must not be empty",
            });
        }
        Ok(configured.iter().map(|s| s.as_bytes().to_vec()).collect())
    }
}

/// A limit of 0 would refuse every request: surely a mistake, so it stops startup.
pub(crate) fn positive(key: &'static str, value: usize) -> Result<usize, ConfigError> {
    if value == 0 {
        return Err(ConfigError::BadValue {
            key,
            value: "0".into(),
            rule: "at least 1 (leave it unset for the default)",
        });
    }
    Ok(value)
}

/// A timeout of 0 would close every connection at once.
pub(crate) fn positive_seconds(key: &'static str, value: f64) -> Result<Duration, ConfigError> {
    match Config::seconds(key, value)? {
        duration if duration.is_zero() => Err(ConfigError::BadValue {
            key,
            value: value.to_string(),
            rule: "more than 0 seconds",
        }),
        duration => Ok(duration),
    }
}

fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
// figment's Jail closures return figment's own (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "f.toml",
                "listen = \"127.0.0.1:9000\"\ndata_dir = \"/tmp/x\"",
            )?;
            jail.set_env("FRAMECAST_DATA_DIR", "/tmp/y");
            let config = Config::load(Some(Path::new("f.toml"))).unwrap();
            assert_eq!(config.listen.port(), 9000);
            assert_eq!(config.data_dir, PathBuf::from("/tmp/y"));
            assert_eq!(config.pipelines_dir, PathBuf::from("pipelines"));
            Ok(())
        });
    }

    #[test]
    fn keys_list_every_setting() {
        let value = serde_json::to_value(Config::default()).unwrap();
        let mut fields: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let mut keys = KEYS.to_vec();
        fields.sort();
        keys.sort();
        assert_eq!(fields, keys);
    }

    #[test]
    fn example_file_is_valid_and_shows_the_defaults() {
        let example = Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/framecast.example.toml"
        ));
        // In a jail: the other tests' jails set FRAMECAST_* variables, which would leak in.
        figment::Jail::expect_with(|_| {
            let loaded = serde_json::to_value(Config::load(Some(example)).unwrap()).unwrap();
            assert_eq!(loaded, serde_json::to_value(Config::default()).unwrap());
            Ok(())
        });
    }

    #[test]
    fn catalog_setting() {
        let with = |catalog: Option<&str>| Config {
            catalog: catalog.map(str::to_owned),
            data_dir: PathBuf::from("/d"),
            ..Config::default()
        };
        assert_eq!(
            with(None).catalog_setting().unwrap(),
            CatalogSetting::Sqlite(PathBuf::from("/d/catalog.sqlite3"))
        );
        assert_eq!(
            with(Some("sqlite:/x/c.db")).catalog_setting().unwrap(),
            CatalogSetting::Sqlite(PathBuf::from("/x/c.db"))
        );
        let url = "postgres://framecast:secret@db.internal:5433/catalog";
        assert_eq!(
            with(Some(url)).catalog_setting().unwrap(),
            CatalogSetting::Postgres(url.into())
        );
        for bad in [
            "sqlite:",
            "mysql://x/y",
            "/x/c.db",
            "postgres://u:secret@h:notaport/db",
        ] {
            let e = with(Some(bad)).catalog_setting().unwrap_err().to_string();
            assert!(!e.contains("secret"), "no password in errors: {e}");
            assert!(e.contains("catalog"), "{e}");
        }
        figment::Jail::expect_with(|jail| {
            jail.set_env("FRAMECAST_CATALOG", "sqlite:/e.db");
            let config = Config::load(None).unwrap();
            assert_eq!(config.catalog_path(), PathBuf::from("/e.db"));
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("f.toml", "lisen = \"127.0.0.1:9000\"")?;
            assert!(Config::load(Some(Path::new("f.toml"))).is_err());
            Ok(())
        });
    }
}
