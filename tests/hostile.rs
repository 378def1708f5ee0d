//! Hostile clients (issue 19): slowloris and silent connections, connection limits, junk
//! methods, oversized heads, tokens with absurd claims, odd detections files, and shutdown
//! with idle connections open. Real binary, loopback only, every wait bounded.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{client, small_mp4, Server, SECRET};

/// Whether the server has closed `connection` (read gives end of file or a reset);
/// whatever it answered before closing is discarded.
fn closed_by_server(connection: &mut TcpStream) -> bool {
    connection.set_nonblocking(true).unwrap();
    let mut buffer = [0; 4096];
    loop {
        match connection.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

/// Polls until the server has closed every connection, panicking after `limit`.
fn assert_all_closed_within(connections: &mut [TcpStream], limit: Duration) {
    let started = Instant::now();
    while !connections.iter_mut().all(closed_by_server) {
        assert!(
            started.elapsed() < limit,
            "connections still open {limit:?} later"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends `request` on a new connection and reads the answer until the server closes it.
fn exchange(server: &Server, request: &[u8]) -> String {
    let mut connection = TcpStream::connect(server.address()).unwrap();
    connection
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    // The server may answer and close before the request is all written.
    let _ = connection.write_all(request);
    let mut answer = Vec::new();
    let _ = connection.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// The JSON body of a raw HTTP answer.
fn json_body(answer: &str) -> serde_json::Value {
    let body = answer.split("\r\n\r\n").nth(1).expect("a body");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {answer}"))
}

fn health_ok(server: &Server) {
    let response = client()
        .get(server.url("/health"))
        .timeout(Duration::from_secs(5))
        .send()
        .expect("/health answers");
    assert_eq!(response.status(), 200);
}

fn metrics(server: &Server) -> String {
    client()
        .get(server.url("/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap()
}

fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.trim().parse().expect("a number"))
}

#[test]
fn slowloris_connections_are_closed_after_the_header_timeout_and_health_answers_at_the_limit() {
    let server = Server::start_with(&[
        ("FRAMECAST_HEADER_READ_TIMEOUT_SECONDS", "1"),
        ("FRAMECAST_MAX_CONNECTIONS", "4"),
    ]);
    let started = Instant::now();
    let mut slow: Vec<TcpStream> = (0..6)
        .map(|_| {
            let mut connection = TcpStream::connect(server.address()).unwrap();
            connection
                .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: a")
                .unwrap();
            connection
        })
        .collect();
    // More half-sent heads than the limit allows: the oldest make room for new clients.
    health_ok(&server);
    health_ok(&server);
    assert_all_closed_within(&mut slow, Duration::from_secs(5));
    // The last two were only closed by the timeout, not before it.
    assert!(started.elapsed() >= Duration::from_millis(900));
    let metrics = metrics(&server);
    let timed_out = sample(
        &metrics,
        "framecast_connections_closed_total{reason=\"header_timeout\"}",
    )
    .unwrap_or(0.0);
    let evicted = sample(
        &metrics,
        "framecast_connections_closed_total{reason=\"evicted\"}",
    )
    .unwrap_or(0.0);
    assert!(timed_out >= 1.0 && evicted >= 2.0, "{metrics}");
}

#[test]
fn a_silent_connection_and_an_idle_kept_alive_one_are_closed_by_their_timeouts() {
    let server = Server::start_with(&[
        ("FRAMECAST_HEADER_READ_TIMEOUT_SECONDS", "1"),
        ("FRAMECAST_IDLE_TIMEOUT_SECONDS", "2"),
    ]);
    let mut silent = TcpStream::connect(server.address()).unwrap();
    let mut kept = TcpStream::connect(server.address()).unwrap();
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = [0; 512];
    let n = kept.read(&mut answer).unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
    let answered = Instant::now();
    // A new connection gets the header timeout: it has sent nothing yet.
    assert_all_closed_within(std::slice::from_mut(&mut silent), Duration::from_secs(3));
    assert!(!closed_by_server(&mut kept), "idle for less than 2 s");
    assert_all_closed_within(std::slice::from_mut(&mut kept), Duration::from_secs(4));
    assert!(answered.elapsed() >= Duration::from_millis(1900));
}

#[test]
fn a_junk_method_creates_no_metrics_series() {
    let server = Server::start();
    let answer = exchange(
        &server,
        b"FROBNICATEXYZ /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 405"), "{answer}");
    let metrics = metrics(&server);
    assert!(!metrics.contains("FROBNICATEXYZ"), "{metrics}");
    assert_eq!(
        sample(
            &metrics,
            "framecast_http_requests_total{route=\"unmatched\",method=\"other\",status=\"405\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
}

#[test]
fn oversized_and_malformed_heads_get_json_errors() {
    let server = Server::start_with(&[("FRAMECAST_MAX_HEADER_BYTES", "16384")]);
    let big = format!(
        "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(40_000)
    );
    let answer = exchange(&server, big.as_bytes());
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert!(
        answer.contains("content-type: application/json"),
        "{answer}"
    );
    let body = json_body(&answer);
    assert_eq!(body["error"], "headers_too_large");
    assert!(body["message"].as_str().unwrap().contains("16384"));

    let answer = exchange(
        &server,
        b"GET /health HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n",
    );
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert_eq!(json_body(&answer)["error"], "bad_request");
    health_ok(&server);
}

/// base64url without padding.
fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, &b| n << 8 | b as u32) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// A token with exactly these claims (any JSON text), signed with the server's secret.
fn token_with_claims(claims: &str) -> String {
    let message = format!(
        "{}.{}",
        b64(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64(claims.as_bytes())
    );
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap();
    format!("{message}.{signature}")
}

#[test]
fn a_401_echoes_no_claim_values_and_names_no_internal_types() {
    let server = Server::start();
    let uuid = server.import(&small_mp4(), None);
    let url = server.url(&format!("/api/v1/file/{uuid}/thumbnail?frame=1"));
    let huge_exp = format!(
        r#"{{"exp": {}, "scope": "files:read"}}"#,
        "7".repeat(20_000)
    );
    let float_exp = r#"{"exp": 1e308, "scope": "files:read"}"#.to_owned();
    let bad_scope = r#"{"exp": 9999999999, "scope": 7}"#.to_owned();
    for claims in [huge_exp, float_exp, bad_scope] {
        let response = client()
            .get(&url)
            .bearer_auth(token_with_claims(&claims))
            .send()
            .unwrap();
        assert_eq!(response.status(), 401);
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        let body = response.text().unwrap();
        for text in [&challenge, &body] {
            assert!(text.len() < 600, "{} bytes: {text:.200}", text.len());
            assert!(!text.contains("7777777777"), "{text:.200}");
            assert!(!text.contains("enum") && !text.contains("Scope"), "{text}");
        }
    }
}

#[test]
fn a_detections_file_with_a_byte_order_mark_imports() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bom.jsonl");
    std::fs::write(
        &file,
        "\u{feff}{\"frame\": 1, \"x\": 2, \"y\": 3, \"w\": 4, \"h\": 5}\n",
    )
    .unwrap();
    server.import(&small_mp4(), Some(&file));
    let listed = server.cli(&["files"]);
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert!(
        listed.lines().nth(1).unwrap().split_whitespace().nth(4) == Some("1"),
        "{listed}"
    );
}

#[test]
fn an_overlong_identity_is_refused_naming_its_row_and_nothing_is_imported() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("long.json");
    let row = |identity: &str| {
        format!(
            r#"{{"frame": 1, "x": 2, "y": 3, "w": 4, "h": 5, "trace_id": 1, "identity": "{identity}"}}"#
        )
    };
    std::fs::write(
        &file,
        format!(
            "[{}, {}, {}]",
            row("alice"),
            row("bob"),
            row(&"x".repeat(10_000))
        ),
    )
    .unwrap();
    let output = server.cli(&[
        "import",
        small_mp4().to_str().unwrap(),
        "--detections",
        file.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("index 2") && stderr.contains("identity") && stderr.contains("200"),
        "{stderr}"
    );
    assert!(stderr.len() < 1000, "the identity is not echoed: {stderr}");
    let listed = String::from_utf8(server.cli(&["files"]).stdout).unwrap();
    assert_eq!(listed.lines().count(), 1, "only the header line: {listed}");
}

#[test]
fn shutdown_with_idle_connections_open_exits_promptly() {
    let mut server = Server::start_with(&[("FRAMECAST_SHUTDOWN_GRACE_SECONDS", "30")]);
    // One kept alive after a request, one that sent half a head, one that sent nothing.
    let mut kept = TcpStream::connect(server.address()).unwrap();
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = [0; 512];
    let n = kept.read(&mut answer).unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
    let mut half = TcpStream::connect(server.address()).unwrap();
    half.write_all(b"GET /health HTTP/1.1\r\nHo").unwrap();
    let _silent = TcpStream::connect(server.address()).unwrap();
    health_ok(&server);

    let signalled = Instant::now();
    server.signal("TERM");
    let status = server
        .wait_for_exit(Duration::from_secs(8))
        .expect("exits well before the 30 s grace period");
    assert_eq!(status.code(), Some(0));
    eprintln!("exited {:?} after SIGTERM", signalled.elapsed());
    assert!(closed_by_server(&mut kept));
    assert!(closed_by_server(&mut half));
}
