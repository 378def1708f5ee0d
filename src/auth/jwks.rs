//! An identity provider's JWK set (RFC 7517): its RS256/ES256 keys, fetched with a
//! timeout, kept in memory, and fetched again when a token names a key we do not have (at
//! most once a minute, so tokens with made-up `kid`s cannot make us hammer the provider),
//! when the set is an hour old (in the background), and on reload.
//!
//! A failed fetch keeps the keys fetched before: an identity provider that is briefly down
//! must not log everyone out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::time::Instant;

use super::{AuthError, NamedKey};

/// How long one fetch may take, connection included.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// At most one fetch per this interval for tokens naming an unknown `kid`.
const UNKNOWN_KID_INTERVAL: Duration = Duration::from_secs(60);
/// Keys older than this are fetched again in the background, so that a key the provider
/// has withdrawn stops verifying without a reload.
const MAX_AGE: Duration = Duration::from_secs(3600);
/// A JWK set is a few KB; anything much larger is not one.
const MAX_BYTES: usize = 1 << 20;

pub struct Jwks {
    url: String,
    client: reqwest::Client,
    keys: ArcSwap<Vec<NamedKey>>,
    /// Held while fetching (one fetch at a time); holds when the last fetch for an
    /// unknown `kid` started.
    gate: tokio::sync::Mutex<Option<Instant>>,
    /// When the last fetch (successful or not) started, and when the keys were last
    /// replaced: what [`Jwks::refresh_if_stale`] decides on.
    times: Mutex<FetchTimes>,
    background: AtomicBool,
}

#[derive(Default)]
struct FetchTimes {
    attempted: Option<Instant>,
    succeeded: Option<Instant>,
}

impl Jwks {
    /// Checks the URL (no fetch yet). Plain `http` only to a loopback address: anyone on
    /// the path could otherwise hand us keys of their own.
    pub fn new(url: &str) -> Result<Jwks, AuthError> {
        let error = |reason: &str| AuthError::JwksUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| error(&e.to_string()))?;
        let host = parsed.host_str().unwrap_or("");
        let loopback = host == "localhost"
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        match parsed.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => return Err(error("must be https (or http to a loopback address)")),
        }
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            // A redirect could lead to plain http: the provider's URL must be the real one.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| error(&e.to_string()))?;
        Ok(Jwks {
            url: url.to_owned(),
            client,
            keys: ArcSwap::from_pointee(Vec::new()),
            gate: tokio::sync::Mutex::new(None),
            times: Mutex::new(FetchTimes::default()),
            background: AtomicBool::new(false),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn keys(&self) -> arc_swap::Guard<Arc<Vec<NamedKey>>> {
        self.keys.load()
    }

    /// Fetches now (startup, reload), after any fetch already running.
    pub async fn refresh(&self) {
        let _gate = self.gate.lock().await;
        self.fetch_and_store().await;
    }

    /// For a token naming a `kid` we do not have: fetches unless one such fetch started
    /// less than a minute ago. Concurrent callers wait for the running fetch, then use
    /// its keys.
    pub async fn refresh_for_unknown_kid(&self) {
        let mut last = self.gate.lock().await;
        if last.is_some_and(|at| at.elapsed() < UNKNOWN_KID_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
        self.fetch_and_store().await;
    }

    /// Starts a background fetch when the keys are over [`MAX_AGE`] old (and no fetch was
    /// tried in the last minute, so a provider that is down is not asked on every request).
    pub fn refresh_if_stale(self: &Arc<Self>) {
        {
            let times = self.times.lock().unwrap_or_else(|p| p.into_inner());
            let stale = times.succeeded.is_none_or(|at| at.elapsed() >= MAX_AGE);
            let tried_lately = times
                .attempted
                .is_some_and(|at| at.elapsed() < UNKNOWN_KID_INTERVAL);
            if !stale || tried_lately {
                return;
            }
        }
        if self.background.swap(true, Ordering::AcqRel) {
            return;
        }
        let jwks = self.clone();
        tokio::spawn(async move {
            jwks.refresh().await;
            jwks.background.store(false, Ordering::Release);
        });
    }

    async fn fetch_and_store(&self) {
        self.times
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .attempted = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
                tracing::info!(url = %self.url, kids = ?kids, "JWK set fetched");
                self.keys.store(Arc::new(keys));
                self.times
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .succeeded = Some(Instant::now());
            }
            Err(reason) => {
                tracing::error!(url = %self.url, %reason, "cannot fetch the JWK set: keeping the keys fetched before");
            }
        }
    }

    async fn fetch(&self) -> Result<Vec<NamedKey>, String> {
        let mut response = self
            .client
            .get(&self.url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("{e:#}"))?;
        if !response.status().is_success() {
            return Err(format!("answered {}", response.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| format!("{e:#}"))? {
            if body.len() + chunk.len() > MAX_BYTES {
                return Err(format!("larger than {MAX_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        parse(&body)
    }
}

/// The usable keys of a JWK set document. Keys we cannot use (encryption keys, other
/// algorithms) are skipped, not fatal: providers publish those beside signing keys.
fn parse(body: &[u8]) -> Result<Vec<NamedKey>, String> {
    #[derive(serde::Deserialize)]
    struct Set {
        keys: Vec<serde_json::Value>,
    }
    let set: Set = serde_json::from_slice(body).map_err(|e| format!("not a JWK set: {e}"))?;
    Ok(set
        .keys
        .into_iter()
        .filter_map(|value| match named_key(value) {
            Ok(key) => Some(key),
            Err(reason) => {
                tracing::debug!(reason, "JWK skipped");
                None
            }
        })
        .collect())
}

fn named_key(value: serde_json::Value) -> Result<NamedKey, String> {
    let jwk: Jwk = serde_json::from_value(value).map_err(|e| e.to_string())?;
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return Err("not a signature key".into());
    }
    let alg = match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
        (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
            if ec.curve == EllipticCurve::P256 =>
        {
            Algorithm::ES256
        }
        _ => return Err("not an RS256 or ES256 key".into()),
    };
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string())?;
    Ok(NamedKey {
        kid: jwk.common.key_id.unwrap_or_default(),
        key,
        alg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http() {
        assert!(Jwks::new("https://idp.example/.well-known/jwks.json").is_ok());
        assert!(Jwks::new("http://127.0.0.1:8000/jwks").is_ok());
        assert!(Jwks::new("http://[::1]/jwks").is_ok());
        assert!(Jwks::new("http://localhost/jwks").is_ok());
        assert!(Jwks::new("http://idp.example/jwks").is_err());
        assert!(Jwks::new("ftp://idp.example/jwks").is_err());
        assert!(Jwks::new("not a url").is_err());
    }

    #[test]
    fn unusable_keys_are_skipped() {
        let set = serde_json::json!({"keys": [
            // RFC 7517 appendix A.1's EC key, and its RSA key marked for encryption.
            {"kty": "EC", "crv": "P-256", "kid": "1",
             "x": "MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4",
             "y": "4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM"},
            {"kty": "RSA", "use": "enc", "kid": "2", "e": "AQAB",
             "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"},
            {"kty": "oct", "kid": "3", "k": "c2VjcmV0"},
            {"kty": "EC", "crv": "P-384", "kid": "4", "x": "AA", "y": "AA"}
        ]});
        let keys = parse(set.to_string().as_bytes()).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid, "1");
        assert_eq!(keys[0].alg, Algorithm::ES256);
        assert!(parse(b"<html>not json</html>").is_err());
    }
}
