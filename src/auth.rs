//! JWT bearer tokens: issuing (`framecast token`) and verifying (every /api/v1 request).
//!
//! Scope is the space-separated `scope` claim: `file:<uuid>` grants one file, `files:read`
//! grants every file.

use std::collections::HashSet;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::catalog::FileUuid;
use crate::config::Config;

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
    #[error("cannot sign the token: {0}")]
    Signing(String),
}

pub struct Verifier {
    hmac: DecodingKey,
    public: Option<(DecodingKey, Algorithm)>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: u64,
}

impl Verifier {
    pub fn new(config: &Config, secret: &[u8]) -> Result<Self, AuthError> {
        let public = config
            .jwt_public_key
            .as_deref()
            .map(load_public_key)
            .transpose()?;
        Ok(Verifier {
            hmac: DecodingKey::from_secret(secret),
            public,
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            leeway: config.jwt_leeway_seconds,
        })
    }

    /// Checks signature, `exp` (required), `nbf`, and `iss`/`aud` when configured.
    /// The error is a sentence for the client: it says what to fix, never echoes the token.
    pub fn verify(&self, token: &str) -> Result<Grant, String> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| "the bearer token is not a well-formed JWT".to_owned())?;
        let (key, algorithms) = match header.alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => (
                &self.hmac,
                vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512],
            ),
            alg => match &self.public {
                Some((key, public_alg)) if *public_alg == alg => (key, vec![alg]),
                _ => return Err(format!("tokens signed with {alg:?} are not accepted here")),
            },
        };
        let mut validation = Validation::new(algorithms[0]);
        validation.algorithms = algorithms;
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
        let data = jsonwebtoken::decode::<Claims>(token, key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::ExpiredSignature => "the token has expired; get a new one".to_owned(),
                ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".to_owned(),
                ErrorKind::InvalidSignature => "the token's signature does not verify".to_owned(),
                ErrorKind::MissingRequiredClaim(claim) => {
                    format!("the token lacks the required `{claim}` claim")
                }
                ErrorKind::InvalidIssuer => "the token's issuer (iss) is not accepted".to_owned(),
                ErrorKind::InvalidAudience => {
                    "the token's audience (aud) is not accepted".to_owned()
                }
                // Never the library's text: serde's names internal types ("untagged enum
                // Scope") and quotes claim values, which may be kilobytes long.
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
        })?;
        let items = data.claims.scope.items();
        Ok(Grant {
            all_files: items.contains(&ALL_FILES_SCOPE),
            write: items.contains(&WRITE_SCOPE),
            files: items
                .iter()
                .filter_map(|s| s.strip_prefix("file:"))
                .filter_map(|uuid| uuid.parse::<FileUuid>().ok())
                .map(|uuid| uuid.to_string())
                .collect(),
        })
    }
}

fn load_public_key(path: &Path) -> Result<(DecodingKey, Algorithm), AuthError> {
    let error = |reason: String| AuthError::PublicKey {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    if let Ok(key) = DecodingKey::from_rsa_pem(&pem) {
        return Ok((key, Algorithm::RS256));
    }
    DecodingKey::from_ec_pem(&pem)
        .map(|key| (key, Algorithm::ES256))
        .map_err(|_| error("neither an RSA nor an EC (P-256) public key in PEM form".into()))
}

/// Signs an HS256 token granting `scope` for `ttl_seconds`, carrying the configured
/// issuer and audience so the server accepts it.
pub fn issue(
    config: &Config,
    secret: &[u8],
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
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| AuthError::Signing(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"test-secret";

    fn verifier(config: &Config) -> Verifier {
        Verifier::new(config, SECRET).unwrap()
    }

    #[test]
    fn issued_token_grants_its_files_only() {
        let config = Config::default();
        let a = FileUuid::new_random();
        let b = FileUuid::new_random();
        let token = issue(&config, SECRET, &[format!("file:{a}")], 60).unwrap();
        let grant = verifier(&config).verify(&token).unwrap();
        assert!(grant.allows(a));
        assert!(!grant.allows(b));

        let all = issue(&config, SECRET, &[ALL_FILES_SCOPE.into()], 60).unwrap();
        assert!(verifier(&config).verify(&all).unwrap().allows(b));
        assert!(!verifier(&config).verify(&all).unwrap().may_write());

        let write = issue(&config, SECRET, &[WRITE_SCOPE.into()], 60).unwrap();
        let grant = verifier(&config).verify(&write).unwrap();
        assert!(grant.may_write());
        assert!(!grant.allows(a), "files:write does not grant reading");
    }

    #[test]
    fn issuer_and_audience_are_enforced_when_configured() {
        let plain = issue(&Config::default(), SECRET, &[], 60).unwrap();
        let config = Config {
            jwt_issuer: Some("analytics".into()),
            jwt_audience: Some("framecast".into()),
            ..Config::default()
        };
        assert!(verifier(&config).verify(&plain).is_err());
        let token = issue(&config, SECRET, &[], 60).unwrap();
        assert!(verifier(&config).verify(&token).is_ok());
    }

    /// Signs `claims` as given (any JSON), as a client could.
    fn signed(claims: &str) -> String {
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
            &EncodingKey::from_secret(SECRET),
            Algorithm::HS256,
        )
        .unwrap();
        format!("{message}.{signature}")
    }

    #[test]
    fn refusals_name_no_internal_types_and_echo_no_claims() {
        let verifier = verifier(&Config::default());
        let huge_exp = format!(r#"{{"exp": {}}}"#, "9".repeat(20_000));
        let float_exp = r#"{"exp": 1e308}"#.to_owned();
        let bad_scope = r#"{"exp": 9999999999, "scope": 7}"#.to_owned();
        for claims in [huge_exp, float_exp, bad_scope] {
            let message = verifier.verify(&signed(&claims)).unwrap_err();
            assert!(message.len() < 300, "{message}");
            assert!(!message.contains("999999999"), "{message}");
            assert!(
                !message.contains("enum") && !message.contains("Scope"),
                "{message}"
            );
        }
    }

    #[test]
    fn wrong_secret_and_alg_none_are_refused() {
        let config = Config::default();
        let token = issue(&config, b"other", &[], 60).unwrap();
        assert!(verifier(&config).verify(&token).is_err());
        // {"alg":"none","typ":"JWT"} . {"exp":9999999999,"scope":"files:read"} . (no signature)
        let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJleHAiOjk5OTk5OTk5OTksInNjb3BlIjoiZmlsZXM6cmVhZCJ9.";
        assert!(verifier(&config).verify(none).is_err());
    }
}
