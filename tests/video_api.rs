//! /api/v1/file/:uuid/video over HTTP against the real binary: ranges, conditionals, auth,
//! parameters and the JSON error shape.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{assert_json_error, client, small_mp4, Server, SECRET};
use reqwest::blocking::RequestBuilder;

struct Fixture {
    server: Server,
    uuid: String,
    token: String,
    bytes: Vec<u8>,
}

impl Fixture {
    fn new() -> Fixture {
        let server = Server::start();
        let video = small_mp4();
        let uuid = server.import(&video, None);
        let token = server.token(&[&uuid]);
        Fixture {
            server,
            uuid,
            token,
            bytes: std::fs::read(video).unwrap(),
        }
    }

    fn video_url(&self) -> String {
        self.server
            .url(&format!("/api/v1/file/{}/video", self.uuid))
    }

    fn get(&self) -> RequestBuilder {
        client().get(self.video_url()).bearer_auth(&self.token)
    }

    fn range(&self, range: &str) -> reqwest::blocking::Response {
        self.get().header("Range", range).send().unwrap()
    }
}

fn sign(claims: serde_json::Value, secret: &str, alg: jsonwebtoken::Algorithm) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(alg),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn whole_file_and_every_range_form_are_byte_exact() {
    let f = Fixture::new();
    let size = f.bytes.len();

    let full = f.get().send().unwrap();
    assert_eq!(full.status(), 200);
    assert_eq!(full.headers()["accept-ranges"], "bytes");
    assert_eq!(full.headers()["content-type"], "video/mp4");
    assert_eq!(full.headers()["content-length"], size.to_string());
    assert_eq!(full.bytes().unwrap(), f.bytes);

    let cases: &[(&str, usize, usize)] = &[
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, size - 1),
        ("bytes=-500", size - 500, size - 1),
        ("bytes=10-10", 10, 10),
        // An end past the file is clipped to the file.
        (
            &format!("bytes={}-{}", size - 10, size + 1000),
            size - 10,
            size - 1,
        ),
        // A suffix longer than the file selects all of it (RFC 9110 §14.1.2).
        (&format!("bytes=-{}", size + 5), 0, size - 1),
    ];
    for (range, start, end) in cases {
        let response = f.range(range);
        assert_eq!(response.status(), 206, "{range}");
        assert_eq!(
            response.headers()["content-range"],
            format!("bytes {start}-{end}/{size}"),
            "{range}"
        );
        assert_eq!(
            response.headers()["content-length"],
            (end - start + 1).to_string(),
            "{range}"
        );
        assert_eq!(response.bytes().unwrap(), f.bytes[*start..=*end], "{range}");
    }
}

#[test]
fn unsatisfiable_and_ignorable_ranges() {
    let f = Fixture::new();
    let size = f.bytes.len();
    for range in [
        format!("bytes={size}-"),
        format!("bytes={}-{}", size + 1, size + 9),
    ] {
        let response = f.range(&range);
        assert_eq!(
            response.headers()["content-range"],
            format!("bytes */{size}"),
            "{range}"
        );
        assert_json_error(response, 416, "range_not_satisfiable");
    }
    // Malformed, other units and multiple ranges: ignored, whole file.
    for range in ["bytes=abc", "items=0-5", "bytes=0-1,5-9", "bytes=9-1"] {
        let response = f.range(range);
        assert_eq!(response.status(), 200, "{range}");
        assert_eq!(response.bytes().unwrap().len(), size, "{range}");
    }
}

#[test]
fn head_conditional_requests_and_if_range() {
    let f = Fixture::new();
    let size = f.bytes.len();

    let head = client()
        .head(f.video_url())
        .bearer_auth(&f.token)
        .send()
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], size.to_string());
    assert_eq!(head.headers()["accept-ranges"], "bytes");
    let etag = head.headers()["etag"].to_str().unwrap().to_owned();
    let last_modified = head.headers()["last-modified"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"'), "strong etag: {etag}");
    assert!(head.bytes().unwrap().is_empty());

    let not_modified = f.get().header("If-None-Match", &etag).send().unwrap();
    assert_eq!(not_modified.status(), 304);
    assert_eq!(not_modified.headers()["etag"], etag.as_str());
    let not_modified = f
        .get()
        .header("If-Modified-Since", &last_modified)
        .send()
        .unwrap();
    assert_eq!(not_modified.status(), 304);
    let changed = f.get().header("If-None-Match", "\"other\"").send().unwrap();
    assert_eq!(changed.status(), 200);

    let matching = f
        .get()
        .header("Range", "bytes=0-9")
        .header("If-Range", &etag)
        .send()
        .unwrap();
    assert_eq!(matching.status(), 206);
    assert_eq!(matching.bytes().unwrap(), f.bytes[..10]);
    let stale = f
        .get()
        .header("Range", "bytes=0-9")
        .header("If-Range", "\"stale\"")
        .send()
        .unwrap();
    assert_eq!(stale.status(), 200);
    assert_eq!(stale.bytes().unwrap().len(), size);

    let failed = f.get().header("If-Match", "\"stale\"").send().unwrap();
    assert_json_error(failed, 412, "precondition_failed");
}

/// RFC 9110 §13.1.5: a date in If-Range matches only if it is exactly Last-Modified.
#[test]
fn if_range_dates_match_only_exactly() {
    let f = Fixture::new();
    let size = f.bytes.len();
    let last_modified = f.get().send().unwrap().headers()["last-modified"]
        .to_str()
        .unwrap()
        .to_owned();
    let with_if_range = |if_range: &str| {
        f.get()
            .header("Range", "bytes=0-9")
            .header("If-Range", if_range)
            .send()
            .unwrap()
    };
    let exact = with_if_range(&last_modified);
    assert_eq!(exact.status(), 206);
    assert_eq!(exact.bytes().unwrap(), f.bytes[..10]);
    let stamp = |t: SystemTime| httpdate::fmt_http_date(t);
    let modified = httpdate::parse_http_date(&last_modified).unwrap();
    for other in [
        stamp(modified + std::time::Duration::from_secs(3600)),
        stamp(modified - std::time::Duration::from_secs(3600)),
        "W/\"weak\"".to_owned(),
        "not a date".to_owned(),
    ] {
        let response = with_if_range(&other);
        assert_eq!(response.status(), 200, "If-Range: {other}");
        assert_eq!(response.bytes().unwrap().len(), size, "If-Range: {other}");
    }
}

/// A HEAD answers from the record and a stat: it reads none of the file, however often.
#[test]
fn head_reads_no_file_bytes() {
    let server = Server::start();
    let video = common::lavfi_h264(
        "video-api-noise.mp4",
        "testsrc2=size=640x480:rate=25:duration=2,noise=alls=80:allf=t",
        None,
        &["-preset", "ultrafast", "-qp", "0"],
    );
    let size = std::fs::metadata(&video).unwrap().len();
    assert!(
        size > 4 << 20,
        "the file outgrows a read-ahead chunk: {size}"
    );
    let uuid = server.import(&video, None);
    let token = server.token(&[&uuid]);
    let url = server.url(&format!("/api/v1/file/{uuid}/video"));
    let before = server.bytes_read();
    for _ in 0..20 {
        let head = client().head(&url).bearer_auth(&token).send().unwrap();
        assert_eq!(head.status(), 200);
        assert_eq!(head.headers()["content-length"], size.to_string().as_str());
        let ranged = client()
            .head(&url)
            .bearer_auth(&token)
            .header("Range", "bytes=100-")
            .send()
            .unwrap();
        assert_eq!(ranged.status(), 206);
        assert_eq!(
            ranged.headers()["content-range"],
            format!("bytes 100-{}/{size}", size - 1).as_str()
        );
    }
    // The catalog lookups and request lines are read too: a few KB per request.
    let read = server.bytes_read() - before;
    assert!(read < 1 << 20, "40 HEADs read {read} bytes");
}

#[test]
fn every_auth_failure_is_401_with_challenge_and_scope_is_403() {
    let f = Fixture::new();
    let url = f.video_url();
    let expect_401 = |request: RequestBuilder, why: &str| {
        let response = request.send().unwrap();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .unwrap_or_else(|| panic!("{why}: no WWW-Authenticate"))
            .to_str()
            .unwrap()
            .to_owned();
        assert!(challenge.starts_with("Bearer "), "{why}: {challenge}");
        assert_json_error(response, 401, "unauthorized");
    };
    let hs = jsonwebtoken::Algorithm::HS256;
    let scope = format!("file:{}", f.uuid);
    expect_401(client().get(&url), "no token");
    expect_401(client().get(&url).bearer_auth("not.a.jwt"), "malformed");
    expect_401(
        client()
            .get(&url)
            .header("Authorization", format!("Basic {}", f.token)),
        "wrong scheme",
    );
    expect_401(
        client().get(&url).bearer_auth(sign(
            serde_json::json!({"exp": now() - 3600, "scope": scope}),
            SECRET,
            hs,
        )),
        "expired",
    );
    expect_401(
        client().get(&url).bearer_auth(sign(
            serde_json::json!({"exp": now() + 3600, "scope": scope}),
            "another-secret",
            hs,
        )),
        "wrong signature",
    );
    expect_401(
        client()
            .get(&url)
            .bearer_auth(sign(serde_json::json!({"scope": scope}), SECRET, hs)),
        "no exp",
    );
    // alg=none: header {"alg":"none"} and an empty signature.
    let none_header = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";
    let claims = sign(
        serde_json::json!({"exp": now() + 3600, "scope": scope}),
        SECRET,
        hs,
    );
    let payload = claims.split('.').nth(1).unwrap();
    expect_401(
        client()
            .get(&url)
            .bearer_auth(format!("{none_header}.{payload}.")),
        "alg none",
    );

    // HS384 with the right secret, the query-string form, and files:read all work.
    let hs384 = sign(
        serde_json::json!({"exp": now() + 60, "scope": scope}),
        SECRET,
        jsonwebtoken::Algorithm::HS384,
    );
    assert_eq!(
        client()
            .get(&url)
            .bearer_auth(hs384)
            .send()
            .unwrap()
            .status(),
        200
    );
    let query = client()
        .get(&url)
        .query(&[("access_token", &f.token)])
        .send()
        .unwrap();
    assert_eq!(query.status(), 200);
    // Repeated, the last one counts, as for every parameter.
    let last_valid = client()
        .get(&url)
        .query(&[
            ("access_token", "not.a.jwt"),
            ("access_token", f.token.as_str()),
        ])
        .send()
        .unwrap();
    assert_eq!(last_valid.status(), 200);
    expect_401(
        client().get(&url).query(&[
            ("access_token", f.token.as_str()),
            ("access_token", "not.a.jwt"),
        ]),
        "last access_token invalid",
    );
    let all = sign(
        serde_json::json!({"exp": now() + 60, "scope": "files:read"}),
        SECRET,
        hs,
    );
    assert_eq!(
        client().get(&url).bearer_auth(all).send().unwrap().status(),
        200
    );

    // A valid token for another file.
    let other = f.server.token(&["0123456789abcdef0123456789abcdef"]);
    assert_json_error(
        client().get(&url).bearer_auth(other).send().unwrap(),
        403,
        "forbidden",
    );

    // /health needs nothing.
    let health = client().get(f.server.url("/health")).send().unwrap();
    assert_eq!(health.status(), 200);
}

#[test]
fn bad_parameters_and_unknown_files() {
    let f = Fixture::new();
    for (query, needle) in [("mode=fast", "normal, debug"), ("audio=maybe", "on, off")] {
        let message = assert_json_error(
            f.get()
                .query(&[(
                    query.split('=').next().unwrap(),
                    query.split('=').nth(1).unwrap(),
                )])
                .send()
                .unwrap(),
            400,
            "bad_parameter",
        );
        assert!(message.contains(needle), "{message}");
    }
    let all = f.server.all_files_token();
    let get = |uuid: &str| {
        client()
            .get(f.server.url(&format!("/api/v1/file/{uuid}/video")))
            .bearer_auth(&all)
            .send()
            .unwrap()
    };
    assert_json_error(
        get("0123456789abcdef0123456789abcdef"),
        404,
        "file_not_found",
    );
    for malformed in [
        "xyz",
        "0123456789abcdef0123456789abcdeg",
        "..%2F..%2Fetc%2Fpasswd",
    ] {
        assert_json_error(get(malformed), 400, "bad_parameter");
    }
    // The hyphenated and upper-case spellings name the same file.
    let upper = f.uuid.to_uppercase();
    assert_eq!(get(&upper).status(), 200);

    assert_json_error(
        client()
            .get(f.server.url("/api/v1/nothing"))
            .bearer_auth(&all)
            .send()
            .unwrap(),
        404,
        "not_found",
    );
    assert_json_error(
        client()
            .post(f.video_url())
            .bearer_auth(&all)
            .send()
            .unwrap(),
        405,
        "method_not_allowed",
    );
}

#[test]
fn a_file_changed_or_removed_after_import_is_410() {
    let server = Server::start();
    let copy = server.data_dir.path().join("copy.mp4");
    std::fs::copy(small_mp4(), &copy).unwrap();
    let uuid = server.import(&copy, None);
    let token = server.token(&[&uuid]);
    let url = server.url(&format!("/api/v1/file/{uuid}/video"));
    assert_eq!(
        client()
            .get(&url)
            .bearer_auth(&token)
            .send()
            .unwrap()
            .status(),
        200
    );

    let mut bytes = std::fs::read(&copy).unwrap();
    bytes.extend_from_slice(b"appended");
    std::fs::write(&copy, &bytes).unwrap();
    assert_json_error(
        client().get(&url).bearer_auth(&token).send().unwrap(),
        410,
        "file_gone",
    );

    std::fs::remove_file(&copy).unwrap();
    let message = assert_json_error(
        client().get(&url).bearer_auth(&token).send().unwrap(),
        410,
        "file_gone",
    );
    assert!(
        !message.contains("copy.mp4"),
        "no paths in messages: {message}"
    );
    // The server keeps serving.
    assert_eq!(
        client().get(server.url("/health")).send().unwrap().status(),
        200
    );
}
