//! JWT bearer tokens: issuing (`framecast token`) and verifying (every /api/v1 request).
//!
//! Scope is the space-separated `scope` claim: `file:<uuid>` grants one file, `files:read`
//! grants every file.
//!
//! Several keys verify at once, so that keys can be rotated without logging anyone out:
//! HMAC secrets (`jwt_secrets`, `jwt_secret`), PEM public keys (`jwt_public_key(s)`) and an
//! identity provider's JWK set (`jwks_url`, see [`jwks`]). A token's `kid` header picks
//! the key it names; a token without `kid`, or naming no key we have (after one JWKS
//! refresh), is tried against every key of its algorithm's family. Either way only
//! configured keys can verify it. The whole set is swapped at once on SIGHUP.

mod jwks;

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::catalog::FileUuid;
use crate::config::{Config, ConfigError};
pub use jwks::Jwks;

pub const ALL_FILES_SCOPE: &str = "files:read";
/// Importing, re-detecting and deleting files (`POST /api/v1/files`, `PUT .../detections`,
/// `DELETE /api/v1/file/:uuid`); `files:read` does not grant it, nor it reading.
pub const WRITE_SCOPE: &str = "files:write";

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
    #[serde(default)]
    scope: Scope,
}

/// Issuers disagree on the shape: OAuth's space-separated string, or a JSON array.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(untagged)]
enum Scope {
    #[default]
    None,
    Text(String),
    List(Vec<String>),
}

impl Scope {
    fn items(&self) -> Vec<&str> {
        match self {
            Scope::None => Vec::new(),
            Scope::Text(text) => text.split_whitespace().collect(),
            Scope::List(list) => list.iter().map(String::as_str).collect(),
        }
    }
}

/// What a token whose claims do not parse is told.
const CLAIMS_SHAPE: &str = "the token's claims are not as expected: `exp` (and `nbf`, `iat`) \
     must be whole seconds since 1970, `scope` a space-separated string or a list of strings";

/// What a verified token allows.
#[derive(Debug, Clone)]
pub struct Grant {
    all_files: bool,
    files: HashSet<String>,
    write: bool,
}

impl Grant {
    pub fn allows(&self, file: FileUuid) -> bool {
        self.all_files || self.files.contains(&file.to_string())
    }

    /// The token carries [`WRITE_SCOPE`].
    pub fn may_write(&self) -> bool {
        self.write
    }

    /// The files granted one by one; `None` when the token grants every file.
    pub fn files(&self) -> Option<Vec<FileUuid>> {
        (!self.all_files).then(|| self.files.iter().filter_map(|f| f.parse().ok()).collect())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("cannot read the JWT public key {path}: {reason}")]
    PublicKey { path: String, reason: String },
    #[error("jwks_url {url:?}: {reason}")]
    JwksUrl { url: String, reason: String },
    #[error("cannot sign the token: {0}")]
    Signing(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// One verification key and the `kid` that names it.
#[derive(Clone)]
pub(crate) struct NamedKey {
    kid: String,
    key: DecodingKey,
    /// For public keys the one algorithm they verify (RS256 or ES256); HS256 for secrets,
    /// which verify HS256/384/512 alike.
    alg: Algorithm,
}

/// The `kid` of an HMAC secret: a digest prefix, so that tokens can name their secret
/// without revealing it, and the same secret always gets the same `kid`.
pub fn secret_kid(secret: &[u8]) -> String {
    format!("hs-{}", &hex::encode(Sha256::digest(secret))[..16])
}

/// Everything verification depends on, replaced as a whole on reload.
pub struct KeySet {
    /// HMAC secrets, the signing one first.
    secrets: Vec<NamedKey>,
    /// PEM public keys, `kid` from the file name.
    public: Vec<NamedKey>,
    jwks: Option<Arc<Jwks>>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: u64,
}

impl KeySet {
    /// Reads the configured keys (no network: the JWK set is fetched by [`Verifier`]).
    pub fn load(config: &Config) -> Result<KeySet, AuthError> {
        let secrets = config
            .resolve_jwt_secrets()?
            .iter()
            .map(|secret| NamedKey {
                kid: secret_kid(secret),
                key: DecodingKey::from_secret(secret),
                alg: Algorithm::HS256,
            })
            .collect();
        let public = config
            .jwt_public_key
            .iter()
            .chain(&config.jwt_public_keys)
            .map(|path| load_public_key(path))
            .collect::<Result<_, _>>()?;
        let jwks = config
            .jwks_url
            .as_deref()
            .map(Jwks::new)
            .transpose()?
            .map(Arc::new);
        Ok(KeySet {
            secrets,
            public,
            jwks,
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            leeway: config.jwt_leeway_seconds,
        })
    }

    /// For the log: which keys, by `kid` (never the keys themselves).
    pub fn describe(&self) -> String {
        let kids = |keys: &[NamedKey]| {
            keys.iter()
                .map(|k| k.kid.as_str())
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "secrets [{}] (the first signs), public keys [{}], jwks {}",
            kids(&self.secrets),
            kids(&self.public),
            self.jwks.as_ref().map_or("none", |j| j.url())
        )
    }

    /// The keys a token with this header may have been signed with: the one its `kid`
    /// names, else every key of its algorithm's family. `None` when the algorithm is not
    /// accepted at all.
    fn candidates(&self, alg: Algorithm, kid: Option<&str>) -> Option<Vec<NamedKey>> {
        let family: Vec<NamedKey> = match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => self.secrets.clone(),
            Algorithm::RS256 | Algorithm::ES256 => {
                let mut keys: Vec<NamedKey> = self
                    .public
                    .iter()
                    .filter(|k| k.alg == alg)
                    .cloned()
                    .collect();
                if let Some(jwks) = &self.jwks {
                    keys.extend(jwks.keys().iter().filter(|k| k.alg == alg).cloned());
                }
                keys
            }
            _ => return None,
        };
        if family.is_empty() {
            return None;
        }
        if let Some(kid) = kid {
            if let Some(named) = family.iter().find(|k| k.kid == kid) {
                return Some(vec![named.clone()]);
            }
        }
        Some(family)
    }

    fn knows_kid(&self, kid: &str) -> bool {
        self.secrets
            .iter()
            .chain(&self.public)
            .any(|k| k.kid == kid)
            || self
                .jwks
                .as_ref()
                .is_some_and(|jwks| jwks.keys().iter().any(|k| k.kid == kid))
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut validation = Validation::new(alg);
        validation.algorithms = match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512]
            }
            alg => vec![alg],
        };
        validation.leeway = self.leeway;
        validation.validate_nbf = true;
        // A configured iss/aud must be present, not merely correct when present.
        let mut required = vec!["exp"];
        match &self.issuer {
            Some(issuer) => {
                validation.set_issuer(&[issuer]);
                required.push("iss");
            }
            None => validation.iss = None,
        }
        match &self.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        validation
    }
}

/// Verifies tokens against the current [`KeySet`], which [`Verifier::install`] swaps.
pub struct Verifier {
    keys: ArcSwap<KeySet>,
}

impl Verifier {
    pub fn new(keys: KeySet) -> Self {
        Verifier {
            keys: ArcSwap::from_pointee(keys),
        }
    }

    /// Loads the configured keys and fetches the JWK set, if any. An identity provider
    /// that does not answer is logged, not fatal: tokens signed with the other keys are
    /// still served, and its keys are fetched when a token names one.
    pub async fn start(config: &Config) -> Result<Self, AuthError> {
        let verifier = Verifier::new(KeySet::load(config)?);
        tracing::info!(keys = %verifier.keys.load().describe(), "verification keys loaded");
        verifier.refresh_jwks().await;
        Ok(verifier)
    }

    /// Replaces the keys. A JWK set at the same URL keeps its fetched keys and its
    /// refresh limit.
    pub fn install(&self, mut keys: KeySet) {
        if let (Some(new), Some(old)) = (&keys.jwks, &self.keys.load().jwks) {
            if new.url() == old.url() {
                keys.jwks = Some(old.clone());
            }
        }
        self.keys.store(Arc::new(keys));
    }

    pub fn describe(&self) -> String {
        self.keys.load().describe()
    }

    /// Fetches the JWK set now (startup, reload); a failure keeps the keys fetched before.
    pub async fn refresh_jwks(&self) {
        let jwks = self.keys.load().jwks.clone();
        if let Some(jwks) = jwks {
            jwks.refresh().await;
        }
    }

    /// Checks signature, `exp` (required), `nbf`, and `iss`/`aud` when configured.
    /// The error is a sentence for the client: it says what to fix, never echoes the token.
    pub async fn verify(&self, token: &str) -> Result<Grant, String> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| "the bearer token is not a well-formed JWT".to_owned())?;
        let keys = self.keys.load_full();
        if let Some(jwks) = &keys.jwks {
            match header.kid.as_deref() {
                // A kid we do not know may be the identity provider's new key.
                Some(kid) if !keys.knows_kid(kid) => jwks.refresh_for_unknown_kid().await,
                _ => jwks.refresh_if_stale(),
            }
        }
        let Some(candidates) = keys.candidates(header.alg, header.kid.as_deref()) else {
            return Err(format!(
                "tokens signed with {:?} are not accepted here",
                header.alg
            ));
        };
        let validation = keys.validation(header.alg);
        let mut last = None;
        for candidate in &candidates {
            match jsonwebtoken::decode::<Claims>(token, &candidate.key, &validation) {
                Ok(data) => {
                    tracing::debug!(kid = %candidate.kid, "token verified");
                    return Ok(grant(&data.claims));
                }
                // The signature is checked before the claims: any other error means this
                // was the right key, and says what is wrong with the token.
                Err(e) if *e.kind() != jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    return Err(client_reason(&e))
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.map_or_else(
            || "the token's signature does not verify".to_owned(),
            |e| client_reason(&e),
        ))
    }
}

fn grant(claims: &Claims) -> Grant {
    let items = claims.scope.items();
    Grant {
        all_files: items.contains(&ALL_FILES_SCOPE),
        write: items.contains(&WRITE_SCOPE),
        files: items
            .iter()
            .filter_map(|s| s.strip_prefix("file:"))
            .filter_map(|uuid| uuid.parse::<FileUuid>().ok())
            .map(|uuid| uuid.to_string())
            .collect(),
    }
}

fn client_reason(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::ExpiredSignature => "the token has expired; get a new one".to_owned(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".to_owned(),
        ErrorKind::InvalidSignature => "the token's signature does not verify".to_owned(),
        ErrorKind::MissingRequiredClaim(claim) => {
            format!("the token lacks the required `{claim}` claim")
        }
        ErrorKind::InvalidIssuer => "the token's issuer (iss) is not accepted".to_owned(),
        ErrorKind::InvalidAudience => "the token's audience (aud) is not accepted".to_owned(),
        // Never the library's text: serde's names internal types ("untagged enum Scope")
        // and quotes claim values, which may be kilobytes long.
        ErrorKind::InvalidClaimFormat(claim) => format!(
            "the token's {} claim has the wrong type",
            crate::client_text::quote(claim)
        ),
        ErrorKind::Json(_) => CLAIMS_SHAPE.to_owned(),
        ErrorKind::Base64(_) | ErrorKind::Utf8(_) | ErrorKind::InvalidToken => {
            "the bearer token is not a well-formed JWT".to_owned()
        }
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            "the token's algorithm is not accepted here".to_owned()
        }
        _ => "the token is invalid".to_owned(),
    }
}

/// A PEM public key; its `kid` is the file name without `.pem` (name the file after the
/// issuer's key id).
fn load_public_key(path: &Path) -> Result<NamedKey, AuthError> {
    let error = |reason: String| AuthError::PublicKey {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    let (key, alg) = if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
        (key, Algorithm::RS256)
    } else {
        DecodingKey::from_ec_pem(&pem)
            .map(|key| (key, Algorithm::ES256))
            .map_err(|_| error("neither an RSA nor an EC (P-256) public key in PEM form".into()))?
    };
    let kid = path
        .file_name()
        .map(|name| name.to_string_lossy())
        .map(|name| name.strip_suffix(".pem").unwrap_or(&name).to_owned())
        .unwrap_or_default();
    Ok(NamedKey { kid, key, alg })
}

/// The key `framecast token` signs with: the first configured secret (or the generated
/// one), and its `kid`.
pub struct SigningKey {
    pub kid: String,
    secret: Vec<u8>,
}

impl SigningKey {
    pub fn from_config(config: &Config) -> Result<SigningKey, AuthError> {
        let secret = config
            .resolve_jwt_secrets()?
            .into_iter()
            .next()
            .expect("resolve_jwt_secrets gives at least one");
        Ok(SigningKey::new(&secret))
    }

    pub fn new(secret: &[u8]) -> SigningKey {
        SigningKey {
            kid: secret_kid(secret),
            secret: secret.to_vec(),
        }
    }
}

/// Signs an HS256 token granting `scope` for `ttl_seconds`, naming its key in `kid` and
/// carrying the configured issuer and audience so the server accepts it.
pub fn issue(
    config: &Config,
    key: &SigningKey,
    scope: &[String],
    ttl_seconds: u64,
) -> Result<String, AuthError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    let claims = Claims {
        sub: Some("framecast-cli".into()),
        exp: now + ttl_seconds,
        iat: Some(now),
        iss: config.jwt_issuer.clone(),
        aud: config.jwt_audience.clone(),
        scope: Scope::Text(scope.join(" ")),
    };
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&key.secret))
        .map_err(|e| AuthError::Signing(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "test-secret";

    fn config_with_secrets(secrets: &[&str]) -> Config {
        Config {
            jwt_secrets: secrets.iter().map(|s| s.to_string()).collect(),
            ..Config::default()
        }
    }

    fn verifier(config: &Config) -> Verifier {
        Verifier::new(KeySet::load(config).unwrap())
    }

    fn token(config: &Config, secret: &str, scope: &[String]) -> String {
        issue(config, &SigningKey::new(secret.as_bytes()), scope, 60).unwrap()
    }

    /// A token signed with `key` (PEM private key) and `alg`, with header `kid`.
    fn signed(alg: Algorithm, key: &EncodingKey, kid: Option<&str>) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        let claims = serde_json::json!({"exp": 9_999_999_999u64, "scope": "files:read"});
        jsonwebtoken::encode(&header, &claims, key).unwrap()
    }

    /// An openssl-made key pair: (private key for signing, public key PEM file).
    fn key_pair(dir: &Path, name: &str, algorithm: &[&str]) -> (Vec<u8>, std::path::PathBuf) {
        let private = dir.join(format!("{name}.key"));
        let public = dir.join(format!("{name}.pem"));
        let run = |args: &[&str]| {
            let status = std::process::Command::new("openssl")
                .args(args)
                .stderr(std::process::Stdio::null())
                .status()
                .expect("openssl runs");
            assert!(status.success(), "openssl {args:?}");
        };
        let mut genpkey = vec!["genpkey", "-out", private.to_str().unwrap()];
        genpkey.extend(algorithm);
        run(&genpkey);
        run(&[
            "pkey",
            "-in",
            private.to_str().unwrap(),
            "-pubout",
            "-out",
            public.to_str().unwrap(),
        ]);
        (std::fs::read(&private).unwrap(), public)
    }

    #[tokio::test]
    async fn issued_token_grants_its_files_only() {
        let config = config_with_secrets(&[SECRET]);
        let a = FileUuid::new_random();
        let b = FileUuid::new_random();
        let token = token(&config, SECRET, &[format!("file:{a}")]);
        let grant = verifier(&config).verify(&token).await.unwrap();
        assert!(grant.allows(a));
        assert!(!grant.allows(b));

        let all = super::tests::token(&config, SECRET, &[ALL_FILES_SCOPE.into()]);
        assert!(verifier(&config).verify(&all).await.unwrap().allows(b));
        assert!(!verifier(&config).verify(&all).await.unwrap().may_write());

        let write = super::tests::token(&config, SECRET, &[WRITE_SCOPE.into()]);
        let grant = verifier(&config).verify(&write).await.unwrap();
        assert!(grant.may_write());
        assert!(!grant.allows(a), "files:write does not grant reading");
    }

    #[tokio::test]
    async fn issuer_and_audience_are_enforced_when_configured() {
        let plain = token(&config_with_secrets(&[SECRET]), SECRET, &[]);
        let config = Config {
            jwt_issuer: Some("analytics".into()),
            jwt_audience: Some("framecast".into()),
            ..config_with_secrets(&[SECRET])
        };
        assert!(verifier(&config).verify(&plain).await.is_err());
        let token = token(&config, SECRET, &[]);
        assert!(verifier(&config).verify(&token).await.is_ok());
    }

    /// Signs `claims` as given (any JSON), as a client could.
    fn signed_claims(claims: &str) -> String {
        use jsonwebtoken::crypto::sign;
        let header = r#"{"alg":"HS256","typ":"JWT"}"#;
        // base64url without padding, short of a dependency for one test.
        let b64 = |bytes: &[u8]| -> String {
            const ALPHABET: &[u8] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut out = String::new();
            for chunk in bytes.chunks(3) {
                let n =
                    chunk.iter().fold(0u32, |n, &b| n << 8 | b as u32) << (8 * (3 - chunk.len()));
                for i in 0..=chunk.len() {
                    out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
                }
            }
            out
        };
        let message = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
        let signature = sign(
            message.as_bytes(),
            &EncodingKey::from_secret(SECRET.as_bytes()),
            Algorithm::HS256,
        )
        .unwrap();
        format!("{message}.{signature}")
    }

    #[tokio::test]
    async fn refusals_name_no_internal_types_and_echo_no_claims() {
        let verifier = verifier(&config_with_secrets(&[SECRET]));
        let huge_exp = format!(r#"{{"exp": {}}}"#, "9".repeat(20_000));
        let float_exp = r#"{"exp": 1e308}"#.to_owned();
        let bad_scope = r#"{"exp": 9999999999, "scope": 7}"#.to_owned();
        for claims in [huge_exp, float_exp, bad_scope] {
            let message = verifier.verify(&signed_claims(&claims)).await.unwrap_err();
            assert!(message.len() < 300, "{message}");
            assert!(!message.contains("999999999"), "{message}");
            assert!(
                !message.contains("enum") && !message.contains("Scope"),
                "{message}"
            );
        }
    }

    #[tokio::test]
    async fn wrong_secret_and_alg_none_are_refused() {
        let config = config_with_secrets(&[SECRET]);
        let token = token(&config, "other", &[]);
        assert!(verifier(&config).verify(&token).await.is_err());
        // {"alg":"none","typ":"JWT"} . {"exp":9999999999,"scope":"files:read"} . (no signature)
        let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJleHAiOjk5OTk5OTk5OTksInNjb3BlIjoiZmlsZXM6cmVhZCJ9.";
        assert!(verifier(&config).verify(none).await.is_err());
    }

    #[tokio::test]
    async fn every_secret_verifies_the_first_signs_and_kid_picks() {
        let config = Config {
            jwt_secret: Some("oldest".into()),
            ..config_with_secrets(&["new", "old"])
        };
        let signing = SigningKey::from_config(&config).unwrap();
        assert_eq!(signing.kid, secret_kid(b"new"));
        let issued = issue(&config, &signing, &[], 60).unwrap();
        let header = jsonwebtoken::decode_header(&issued).unwrap();
        assert_eq!(header.kid.as_deref(), Some(secret_kid(b"new").as_str()));

        let verifier = verifier(&config);
        assert!(verifier.verify(&issued).await.is_ok());
        // Tokens from before rotation carry no kid (or another issuer's): every secret
        // is tried.
        for secret in ["old", "oldest"] {
            let mut header = Header::new(Algorithm::HS512);
            for kid in [None, Some("someone-elses-kid".to_owned())] {
                header.kid = kid;
                let claims = serde_json::json!({"exp": 9_999_999_999u64});
                let token = jsonwebtoken::encode(
                    &header,
                    &claims,
                    &EncodingKey::from_secret(secret.as_bytes()),
                )
                .unwrap();
                assert!(verifier.verify(&token).await.is_ok(), "{secret}");
            }
        }
        // A kid naming one secret is checked against that secret only.
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(secret_kid(b"new"));
        let claims = serde_json::json!({"exp": 9_999_999_999u64});
        let misnamed =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(b"old")).unwrap();
        assert!(verifier.verify(&misnamed).await.is_err());

        let removed = config_with_secrets(&["new"]);
        assert!(self::verifier(&removed)
            .verify(&token(&config, "old", &[]))
            .await
            .is_err());
        assert!(KeySet::load(&config_with_secrets(&["new", ""])).is_err());
    }

    #[tokio::test]
    async fn public_keys_are_chosen_by_kid_and_algorithm() {
        let dir = tempfile::tempdir().unwrap();
        let (rsa, rsa_pem) = key_pair(
            dir.path(),
            "idp-rsa",
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
        );
        let (ec, ec_pem) = key_pair(
            dir.path(),
            "idp-ec",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        );
        let (other, _) = key_pair(
            dir.path(),
            "other",
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
        );
        let config = Config {
            jwt_public_key: Some(rsa_pem),
            jwt_public_keys: vec![ec_pem],
            ..config_with_secrets(&[SECRET])
        };
        let verifier = verifier(&config);
        let rsa = EncodingKey::from_rsa_pem(&rsa).unwrap();
        let ec = EncodingKey::from_ec_pem(&ec).unwrap();
        let other = EncodingKey::from_ec_pem(&other).unwrap();
        for token in [
            signed(Algorithm::RS256, &rsa, Some("idp-rsa")),
            signed(Algorithm::RS256, &rsa, None),
            signed(Algorithm::ES256, &ec, Some("idp-ec")),
            signed(Algorithm::ES256, &ec, None),
        ] {
            assert!(verifier.verify(&token).await.is_ok());
        }
        for token in [
            signed(Algorithm::ES256, &other, Some("idp-ec")),
            signed(Algorithm::ES256, &other, None),
        ] {
            assert!(verifier.verify(&token).await.is_err());
        }
        // No PS256 key is configured: refused before any signature check.
        let e = verifier
            .verify(&signed(Algorithm::PS256, &rsa, None))
            .await
            .unwrap_err();
        assert!(e.contains("PS256"), "{e}");
    }
}
