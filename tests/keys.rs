//! Keys: an identity provider's JWK set served by the test itself, `kid` selection, the
//! refresh limit for unknown `kid`s, and rotation without a restart (SIGHUP).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{client, small_mp4, Server};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};

/// A JWK set over HTTP on a loopback port, counting the fetches.
struct JwksServer {
    url: String,
    set: Arc<Mutex<JwkSet>>,
    hits: Arc<AtomicUsize>,
}

impl JwksServer {
    fn start(keys: Vec<Jwk>) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/.well-known/jwks.json",
            listener.local_addr().unwrap()
        );
        let set = Arc::new(Mutex::new(JwkSet { keys }));
        let hits = Arc::new(AtomicUsize::new(0));
        let (served, counted) = (set.clone(), hits.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                // The request line and headers, up to the empty line.
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                let body = serde_json::to_string(&*served.lock().unwrap()).unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        JwksServer { url, set, hits }
    }

    fn publish(&self, keys: Vec<Jwk>) {
        self.set.lock().unwrap().keys = keys;
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// A signing key made with openssl, and its `kid`.
struct SigningKey {
    kid: String,
    alg: Algorithm,
    key: EncodingKey,
}

impl SigningKey {
    fn generate(kid: &str, alg: Algorithm) -> SigningKey {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.pem");
        let options: &[&str] = match alg {
            Algorithm::RS256 => &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            Algorithm::ES256 => &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            _ => unreachable!(),
        };
        let status = std::process::Command::new("openssl")
            .args(["genpkey", "-out", path.to_str().unwrap()])
            .args(options)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(status.success());
        let pem = std::fs::read(&path).unwrap();
        let key = match alg {
            Algorithm::RS256 => EncodingKey::from_rsa_pem(&pem),
            _ => EncodingKey::from_ec_pem(&pem),
        }
        .unwrap();
        SigningKey {
            kid: kid.to_owned(),
            alg,
            key,
        }
    }

    /// The public half as a JWK named `kid`.
    fn jwk(&self) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(&self.key, self.alg).unwrap();
        jwk.common.key_id = Some(self.kid.clone());
        jwk
    }

    /// A token for every file, signed with this key, naming `kid`.
    fn token_named(&self, kid: &str) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, &all_files_claims(), &self.key).unwrap()
    }

    fn token(&self) -> String {
        self.token_named(&self.kid)
    }
}

fn all_files_claims() -> serde_json::Value {
    serde_json::json!({"exp": 4_000_000_000u64, "scope": "files:read"})
}

/// An HS256 token for every file, without `kid` (as tokens from before rotation are).
fn hmac_token(secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &all_files_claims(),
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// The status of `HEAD /api/v1/file/UUID/video` with `token`.
fn status(server: &Server, uuid: &str, token: &str) -> u16 {
    client()
        .head(server.url(&format!("/api/v1/file/{uuid}/video")))
        .bearer_auth(token)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

/// Polls until `check` holds, panicking with `what` after 20 s.
fn eventually(what: &str, check: impl Fn() -> bool) {
    let started = Instant::now();
    while !check() {
        assert!(started.elapsed() < Duration::from_secs(20), "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn reloads(server: &Server, outcome: &str) -> f64 {
    server
        .metric(&format!("framecast_reloads_total{{outcome=\"{outcome}\"}}"))
        .unwrap_or(0.0)
}

#[test]
fn jwks_keys_are_chosen_by_kid_cached_and_refreshed_at_most_once_a_minute() {
    let rsa = SigningKey::generate("rsa-1", Algorithm::RS256);
    let ec = SigningKey::generate("ec-1", Algorithm::ES256);
    let jwks = JwksServer::start(vec![rsa.jwk(), ec.jwk()]);
    let server = Server::start_with(&[("FRAMECAST_JWKS_URL", &jwks.url)]);
    assert_eq!(jwks.hits(), 1, "fetched once at startup");
    let uuid = server.import(&small_mp4(), None);

    assert_eq!(status(&server, &uuid, &rsa.token()), 200);
    assert_eq!(status(&server, &uuid, &ec.token()), 200);
    // The harness's HMAC secret still verifies beside the provider's keys.
    assert_eq!(status(&server, &uuid, &server.token(&[&uuid])), 200);
    assert_eq!(jwks.hits(), 1, "known kids are served from the cache");

    // A known kid on a token signed by another key: refused, nothing fetched.
    let intruder = SigningKey::generate("rsa-1", Algorithm::RS256);
    assert_eq!(status(&server, &uuid, &intruder.token()), 401);
    assert_eq!(jwks.hits(), 1);

    // The provider rotates: a token naming the new kid makes us fetch the set again.
    let rsa2 = SigningKey::generate("rsa-2", Algorithm::RS256);
    jwks.publish(vec![rsa.jwk(), ec.jwk(), rsa2.jwk()]);
    assert_eq!(status(&server, &uuid, &rsa2.token()), 200);
    assert_eq!(jwks.hits(), 2);

    // Within the minute, unknown kids fetch nothing more, even once the key exists.
    let rsa3 = SigningKey::generate("rsa-3", Algorithm::RS256);
    for _ in 0..5 {
        assert_eq!(status(&server, &uuid, &rsa3.token_named("made-up")), 401);
    }
    jwks.publish(vec![rsa.jwk(), ec.jwk(), rsa2.jwk(), rsa3.jwk()]);
    assert_eq!(status(&server, &uuid, &rsa3.token()), 401);
    assert_eq!(
        jwks.hits(),
        2,
        "at most one refresh a minute for unknown kids"
    );

    // A reload fetches the set whatever the limit: rsa-3 is in, rsa-1 (withdrawn) out.
    jwks.publish(vec![ec.jwk(), rsa2.jwk(), rsa3.jwk()]);
    server.signal("HUP");
    eventually("the reload fetched the JWK set", || {
        reloads(&server, "applied") == 1.0 && jwks.hits() == 3
    });
    eventually("rsa-3 accepted after the reload", || {
        status(&server, &uuid, &rsa3.token()) == 200
    });
    assert_eq!(status(&server, &uuid, &rsa.token()), 401);
    assert_eq!(status(&server, &uuid, &rsa2.token()), 200);
}

/// Copies of the shipped pipeline files, to edit.
fn pipelines_copy(dir: &Path) -> PathBuf {
    let pipelines = dir.join("pipelines");
    std::fs::create_dir(&pipelines).unwrap();
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, pipelines.join(path.file_name().unwrap())).unwrap();
    }
    pipelines
}

fn write_config(file: &Path, pipelines: &Path, secrets: &[&str]) {
    let secrets: Vec<String> = secrets.iter().map(|s| format!("{s:?}")).collect();
    std::fs::write(
        file,
        format!(
            "pipelines_dir = {:?}\njwt_secrets = [{}]\n",
            pipelines.to_str().unwrap(),
            secrets.join(", ")
        ),
    )
    .unwrap();
}

/// The ETag of thumbnail frame 0: it names the pipeline file's content.
fn thumbnail_etag(server: &Server, uuid: &str, token: &str) -> String {
    let response = client()
        .get(server.url(&format!("/api/v1/file/{uuid}/thumbnail?frame=0")))
        .bearer_auth(token)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    response.headers()["etag"].to_str().unwrap().to_owned()
}

#[test]
fn sighup_rotates_secrets_and_pipeline_files_and_a_bad_reload_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pipelines = pipelines_copy(dir.path());
    let config = dir.path().join("framecast.toml");
    write_config(&config, &pipelines, &["first-secret"]);
    let server = Server::start_with_config(&config);
    let uuid = server.import(&small_mp4(), None);
    let first = hmac_token("first-secret");
    let second = hmac_token("second-secret");
    assert_eq!(status(&server, &uuid, &first), 200);
    assert_eq!(status(&server, &uuid, &second), 401);
    let etag = thumbnail_etag(&server, &uuid, &first);

    // Step 1 of a rotation: the new secret signs, the old one still verifies; and a
    // pipeline file edited at the same time.
    write_config(&config, &pipelines, &["second-secret", "first-secret"]);
    let thumbnail = pipelines.join("thumbnail.gst");
    let text = std::fs::read_to_string(&thumbnail).unwrap();
    std::fs::write(&thumbnail, text.replace("quality=90", "quality=80")).unwrap();
    server.signal("HUP");
    // The counter moves last, after the swap.
    eventually("the reload is applied", || {
        reloads(&server, "applied") == 1.0
    });
    assert_eq!(status(&server, &uuid, &second), 200);
    assert_eq!(status(&server, &uuid, &first), 200);
    let edited = thumbnail_etag(&server, &uuid, &second);
    assert_ne!(edited, etag, "the edited thumbnail.gst is in use");

    // `framecast token` signs with the first secret and names it.
    let output = std::process::Command::new(common::BIN)
        .args(["--config", config.to_str().unwrap(), "token", "--all-files"])
        .env("FRAMECAST_DATA_DIR", server.data_dir.path())
        .env_remove("FRAMECAST_JWT_SECRET")
        .output()
        .unwrap();
    assert!(output.status.success());
    let issued = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let kid = jsonwebtoken::decode_header(&issued).unwrap().kid.unwrap();
    assert_eq!(kid, framecast::auth::secret_kid(b"second-secret"));
    assert_eq!(status(&server, &uuid, &issued), 200);

    // Step 2: the old secret removed, and refused.
    write_config(&config, &pipelines, &["second-secret"]);
    server.signal("HUP");
    eventually("the reload is applied", || {
        reloads(&server, "applied") == 2.0
    });
    assert_eq!(status(&server, &uuid, &first), 401);
    assert_eq!(status(&server, &uuid, &second), 200);

    // A broken pipeline file: nothing of the reload applies, not even its new secret.
    write_config(&config, &pipelines, &["third-secret"]);
    std::fs::write(&thumbnail, "videoconvert ! jpegencc name=encoder\n").unwrap();
    server.signal("HUP");
    eventually("the reload is refused", || {
        reloads(&server, "refused") == 1.0
    });
    assert_eq!(reloads(&server, "applied"), 2.0);
    assert_eq!(status(&server, &uuid, &second), 200);
    assert_eq!(status(&server, &uuid, &hmac_token("third-secret")), 401);
    assert_eq!(thumbnail_etag(&server, &uuid, &second), edited);

    // So does a configuration that does not parse.
    std::fs::write(&thumbnail, text).unwrap();
    std::fs::write(&config, "jwt_secrets = [\"unterminated\n").unwrap();
    server.signal("HUP");
    eventually("the second reload is refused", || {
        reloads(&server, "refused") == 2.0
    });
    assert_eq!(status(&server, &uuid, &second), 200);
}
