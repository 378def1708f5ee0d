//! Media not on local disk: files imported from an HTTP origin (nginx) and from S3 (moto's
//! server) are served as the same file imported from disk is: the same thumbnails, clips
//! and bbox streams byte for byte, and `/video` proxied with ranges. An origin that is down
//! is a 502, one that stalls a 504 within `origin_timeout_seconds`, and an object changed
//! since import a 410.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::origin::{Moto, Nginx, Silent};
use common::{assert_json_error, bframes_mp4, client, Server};

/// Detections for the 100-frame video: a face on frames 10-40, trace 3.
fn detections(dir: &Path) -> PathBuf {
    let path = dir.join("detections.jsonl");
    let rows: Vec<String> = (10..=40)
        .map(|f| {
            format!(
                r#"{{"frame": {f}, "x": {}, "y": 40, "w": 60, "h": 80, "trace_id": 3, "identity": "bob", "confidence": 0.9}}"#,
                20 + f * 2
            )
        })
        .collect();
    std::fs::write(&path, rows.join("\n")).unwrap();
    path
}

fn get(server: &Server, token: &str, path: &str) -> reqwest::blocking::Response {
    client()
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .unwrap()
}

fn get_with(
    server: &Server,
    token: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> reqwest::blocking::Response {
    let mut request = client().get(server.url(path)).bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().unwrap()
}

fn body(response: reqwest::blocking::Response, what: &str) -> Vec<u8> {
    let status = response.status();
    let bytes = response.bytes().unwrap();
    assert!(
        status.is_success(),
        "{what}: {status} {}",
        String::from_utf8_lossy(&bytes)
    );
    bytes.to_vec()
}

/// Imports `location` (a path or URL) with the detections, returning the uuid.
fn import(server: &Server, location: &str, detections: &Path) -> String {
    let output = server.cli(&[
        "import",
        location,
        "--detections",
        detections.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "import {location}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Every pipeline route of `remote` gives the bytes it gives for `local`, and `/video`
/// ranges of `remote` are the file's bytes.
fn assert_served_as_local(server: &Server, token: &str, local: &str, remote: &str, file: &[u8]) {
    for route in [
        "thumbnail?frame=0",
        "thumbnail?frame=37",
        "thumbnail?frame=99",
        // A crop and a scale (any size is deterministic: see edgepad and jpegsize).
        "thumbnail?frame=55&x=16&y=32&w=96&h=80",
        "thumbnail?frame=55&width=128",
        "clip?start_frame=20&end_frame=60",
        "clip?start_frame=0&end_frame=99&audio=off",
        // To the end without audio: framesrc's qtdemux workaround for MP4 edit lists
        // (movie_duration) reads the moov from a local file only, so the audio of a
        // remote file's last GOP is not yet the same (see the README).
        "video/bbox?start=5&audio=off",
        "trace/3/video?padding=0.2",
        "video?audio=off",
    ] {
        let ours = body(
            get(server, token, &format!("/api/v1/file/{local}/{route}")),
            route,
        );
        let theirs = body(
            get(server, token, &format!("/api/v1/file/{remote}/{route}")),
            route,
        );
        assert!(!ours.is_empty(), "{route}");
        assert!(
            ours == theirs,
            "{route}: the remote file's answer differs from the local one's"
        );
    }
    let size = file.len();
    for (range, start, end) in [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-", 1000, size - 1),
        ("bytes=-500", size - 500, size - 1),
        ("bytes=12345-2000000000", 12345, size - 1),
    ] {
        let response = get_with(
            server,
            token,
            &format!("/api/v1/file/{remote}/video"),
            &[("Range", range)],
        );
        assert_eq!(response.status(), 206, "{range}");
        assert_eq!(
            response.headers()["content-range"],
            format!("bytes {start}-{end}/{size}").as_str(),
            "{range}"
        );
        assert_eq!(response.headers()["content-type"], "video/mp4");
        assert_eq!(body(response, range), &file[start..=end], "{range}");
    }
    let whole = get(server, token, &format!("/api/v1/file/{remote}/video"));
    assert_eq!(whole.status(), 200);
    let etag = whole.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(body(whole, "whole"), file);
    // framecast's validators: 304, 412, If-Range, 416, HEAD.
    let path = format!("/api/v1/file/{remote}/video");
    let not_modified = get_with(server, token, &path, &[("If-None-Match", &etag)]);
    assert_eq!(not_modified.status(), 304);
    let failed = get_with(server, token, &path, &[("If-Match", "\"other\"")]);
    assert_json_error(failed, 412, "precondition_failed");
    let stale_range = get_with(
        server,
        token,
        &path,
        &[("Range", "bytes=0-9"), ("If-Range", "\"other\"")],
    );
    assert_eq!(
        stale_range.status(),
        200,
        "a stale If-Range gets the whole file"
    );
    assert_eq!(body(stale_range, "if-range").len(), size);
    let past = get_with(
        server,
        token,
        &path,
        &[("Range", &format!("bytes={size}-"))],
    );
    assert_eq!(past.status(), 416);
    let head = client()
        .head(server.url(&path))
        .bearer_auth(token)
        .send()
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], size.to_string().as_str());
    assert_eq!(head.headers()["etag"], etag.as_str());
}

#[test]
fn http_origin_files_are_served_as_local_files() {
    let root = tempfile::tempdir().unwrap();
    let video = bframes_mp4();
    std::fs::copy(&video, root.path().join("a.mp4")).unwrap();
    let file = std::fs::read(&video).unwrap();
    let nginx = Nginx::start(root.path());
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let detections = detections(dir.path());
    let local = import(&server, video.to_str().unwrap(), &detections);
    let remote = import(&server, &nginx.url("a.mp4"), &detections);
    let listing = String::from_utf8(server.cli(&["files"]).stdout).unwrap();
    assert!(listing.contains(&nginx.url("a.mp4")), "{listing}");
    let token = server.all_files_token();
    assert_served_as_local(&server, &token, &local, &remote, &file);

    // Origin requests per thumbnail (a fresh frame: no cache).
    let before = nginx.requests().len();
    body(
        get(
            &server,
            &token,
            &format!("/api/v1/file/{remote}/thumbnail?frame=71"),
        ),
        "thumbnail",
    );
    let requests = &nginx.requests()[before..];
    eprintln!(
        "origin requests for one thumbnail: {}\n{}",
        requests.len(),
        requests.join("\n")
    );
    assert!(
        requests.len() <= 6,
        "a thumbnail should cost a few origin requests, not {}: {requests:?}",
        requests.len()
    );
}

#[test]
fn changed_missing_down_and_stalling_origins() {
    let root = tempfile::tempdir().unwrap();
    let video = bframes_mp4();
    std::fs::copy(&video, root.path().join("a.mp4")).unwrap();
    std::fs::copy(&video, root.path().join("b.mp4")).unwrap();
    let nginx = Nginx::start(root.path());
    let server = Server::start_with(&[("FRAMECAST_ORIGIN_TIMEOUT_SECONDS", "1")]);
    let dir = tempfile::tempdir().unwrap();
    let detections = detections(dir.path());
    let a = import(&server, &nginx.url("a.mp4"), &detections);
    let b = import(&server, &nginx.url("b.mp4"), &detections);
    let token = server.all_files_token();
    body(
        get(
            &server,
            &token,
            &format!("/api/v1/file/{a}/thumbnail?frame=3"),
        ),
        "before",
    );

    // a changes (new content, new size), b disappears: 410 on every route.
    let mut changed = std::fs::read(&video).unwrap();
    changed.extend_from_slice(b"trailing bytes");
    std::fs::write(root.path().join("a.mp4"), changed).unwrap();
    std::fs::remove_file(root.path().join("b.mp4")).unwrap();
    for uuid in [&a, &b] {
        for route in [
            "thumbnail?frame=4",
            "clip?start_frame=0&end_frame=9",
            "video",
        ] {
            let response = get(&server, &token, &format!("/api/v1/file/{uuid}/{route}"));
            assert_json_error(response, 410, "file_gone");
        }
        let ranged = get_with(
            &server,
            &token,
            &format!("/api/v1/file/{uuid}/video"),
            &[("Range", "bytes=0-9")],
        );
        assert_json_error(ranged, 410, "file_gone");
    }
    // Put back as it was? Same bytes, new modification time: nginx's ETag differs, so still
    // not the object imported.
    std::fs::copy(&video, root.path().join("a.mp4")).unwrap();
    // (nginx's ETag has the time in seconds: make sure it moves.)
    std::fs::File::options()
        .write(true)
        .open(root.path().join("a.mp4"))
        .unwrap()
        .set_modified(std::time::SystemTime::now() + Duration::from_secs(60))
        .unwrap();
    assert_json_error(
        get(
            &server,
            &token,
            &format!("/api/v1/file/{a}/thumbnail?frame=4"),
        ),
        410,
        "file_gone",
    );
    let c = import(&server, &nginx.url("a.mp4"), &detections);

    // The origin goes down: 502, at once.
    let port = nginx.port;
    drop(nginx);
    for route in [
        "thumbnail?frame=5",
        "video",
        "clip?start_frame=0&end_frame=9",
    ] {
        let started = Instant::now();
        let response = get(&server, &token, &format!("/api/v1/file/{c}/{route}"));
        assert_json_error(response, 502, "origin_failed");
        assert!(started.elapsed() < Duration::from_secs(5), "{route}");
    }

    // Something that accepts connections and never answers takes its port: 504 within
    // the 1 s origin timeout (plus slack for a loaded machine), never a hang.
    let silent = Silent::start_on(port);
    for route in ["thumbnail?frame=6", "video", "video/bbox"] {
        let started = Instant::now();
        let response = get(&server, &token, &format!("/api/v1/file/{c}/{route}"));
        let elapsed = started.elapsed();
        assert_json_error(response, 504, "origin_timeout");
        assert!(
            elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(4),
            "{route}: {elapsed:?}"
        );
    }
    drop(silent);
}

#[test]
fn an_origin_failing_inside_the_pipeline_is_a_502() {
    let root = tempfile::tempdir().unwrap();
    std::fs::copy(bframes_mp4(), root.path().join("a.mp4")).unwrap();
    let nginx = Nginx::start(root.path());
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let uuid = import(&server, &nginx.url("a.mp4"), &detections(dir.path()));
    let token = server.all_files_token();
    // The same origin comes back answering HEAD as before and every GET with 503: the
    // check passes, souphttpsrc's read fails.
    let port = nginx.port;
    drop(nginx);
    let _flaky = Nginx::start_with(
        root.path(),
        port,
        "if ($request_method = GET) { return 503; }",
    );
    for route in [
        "thumbnail?frame=8",
        "clip?start_frame=0&end_frame=9",
        "video",
    ] {
        let response = get(&server, &token, &format!("/api/v1/file/{uuid}/{route}"));
        assert_json_error(response, 502, "origin_failed");
    }
}

#[test]
fn s3_objects_are_served_as_local_files() {
    let moto = Moto::start();
    moto.create_bucket("media");
    let video = bframes_mp4();
    moto.put("media", "videos/a.mp4", &video);
    let env = moto.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = Server::start_with(&env);
    let dir = tempfile::tempdir().unwrap();
    let detections = detections(dir.path());
    let local = import(&server, video.to_str().unwrap(), &detections);
    let remote = import(&server, "s3://media/videos/a.mp4", &detections);
    let token = server.all_files_token();
    let file = std::fs::read(&video).unwrap();
    assert_served_as_local(&server, &token, &local, &remote, &file);

    // explain names a pre-signed URL that gst-launch reads as the server does.
    let out = dir.path().join("frame.jpg");
    let (line, written) =
        server.run_explained(&format!("/api/v1/file/{remote}/thumbnail?frame=37"), &out);
    assert!(line.contains("X-Amz-Signature"), "{line}");
    assert_eq!(
        written,
        body(
            get(
                &server,
                &token,
                &format!("/api/v1/file/{local}/thumbnail?frame=37")
            ),
            "t"
        )
    );

    // Another object under the same key: 410.
    let other = dir.path().join("other.mp4");
    let mut bytes = file.clone();
    bytes.extend_from_slice(b"more");
    std::fs::write(&other, bytes).unwrap();
    moto.put("media", "videos/a.mp4", &other);
    assert_json_error(
        get(
            &server,
            &token,
            &format!("/api/v1/file/{remote}/thumbnail?frame=1"),
        ),
        410,
        "file_gone",
    );
    assert_json_error(
        get(&server, &token, &format!("/api/v1/file/{remote}/video")),
        410,
        "file_gone",
    );
    // A missing object is refused at import, saying so.
    let missing = server.cli(&["import", "s3://media/nothing.mp4"]);
    assert!(!missing.status.success());
    let message = String::from_utf8_lossy(&missing.stderr);
    assert!(message.contains("missing"), "{message}");
}
