//! The import API through the real binary: `POST /api/v1/files` (local paths under
//! `media_roots`, URLs under `media_url_prefixes`, nothing else), `PUT .../detections`
//! (atomic, 400 naming the row, 413 past `max_upload_bytes`) and `DELETE`, each needing the
//! `files:write` scope.

mod common;

use common::origin::Nginx;
use common::{assert_json_error, bframes_mp4, client, Server};

struct Api {
    server: Server,
    /// files:write only.
    write: String,
    /// files:read only.
    read: String,
    root: tempfile::TempDir,
    nginx: Nginx,
}

fn token(server: &Server, args: &[&str]) -> String {
    let mut all = vec!["token"];
    all.extend(args);
    let output = server.cli(&all);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

impl Api {
    fn start() -> Api {
        let root = tempfile::tempdir().unwrap();
        let media = root.path().join("media");
        std::fs::create_dir(&media).unwrap();
        std::fs::copy(bframes_mp4(), media.join("a.mp4")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", media.join("passwd.mp4")).unwrap();
        let nginx = Nginx::start(&media);
        let roots = format!("[\"{}\"]", media.display());
        let prefixes = format!("[\"{}\"]", nginx.prefix());
        let server = Server::start_with(&[
            ("FRAMECAST_MEDIA_ROOTS", &roots),
            ("FRAMECAST_MEDIA_URL_PREFIXES", &prefixes),
            ("FRAMECAST_MAX_UPLOAD_BYTES", "20000"),
        ]);
        let write = token(&server, &["--scope", "files:write"]);
        let read = token(&server, &["--all-files"]);
        Api {
            server,
            write,
            read,
            root,
            nginx,
        }
    }

    fn media(&self, name: &str) -> String {
        self.root
            .path()
            .join("media")
            .join(name)
            .display()
            .to_string()
    }

    fn post(&self, token: &str, body: &str) -> reqwest::blocking::Response {
        client()
            .post(self.server.url("/api/v1/files"))
            .bearer_auth(token)
            .header("Content-Type", "application/json")
            .body(body.to_owned())
            .send()
            .unwrap()
    }

    fn import(&self, location: &str, uuid: Option<&str>) -> serde_json::Value {
        let body = match uuid {
            Some(uuid) => serde_json::json!({"location": location, "file_uuid": uuid}),
            None => serde_json::json!({"location": location}),
        };
        let response = self.post(&self.write, &body.to_string());
        assert_eq!(response.status(), 201, "{location}: {:?}", response.text());
        response.json().unwrap()
    }

    fn put(&self, token: &str, uuid: &str, body: &str) -> reqwest::blocking::Response {
        client()
            .put(self.server.url(&format!("/api/v1/file/{uuid}/detections")))
            .bearer_auth(token)
            .body(body.to_owned())
            .send()
            .unwrap()
    }

    fn get(&self, token: &str, uuid: &str, route: &str) -> reqwest::blocking::Response {
        client()
            .get(self.server.url(&format!("/api/v1/file/{uuid}/{route}")))
            .bearer_auth(token)
            .send()
            .unwrap()
    }

    /// The detections `framecast files` lists for `uuid`.
    fn detections(&self, uuid: &str) -> String {
        let listing = String::from_utf8(self.server.cli(&["files"]).stdout).unwrap();
        let line = listing
            .lines()
            .find(|l| l.starts_with(uuid))
            .unwrap_or_else(|| panic!("{uuid} not listed: {listing}"));
        line.split_whitespace().nth(4).unwrap().to_owned()
    }
}

fn rows(frames: std::ops::RangeInclusive<u32>) -> Vec<String> {
    frames
        .map(|f| format!(r#"{{"frame": {f}, "x": 10, "y": 10, "w": 40, "h": 40, "trace_id": 4}}"#))
        .collect()
}

#[test]
fn import_redetect_and_delete_over_http() {
    let api = Api::start();
    let uuid = "00112233445566778899aabbccddeeff";
    let record = api.import(&api.media("a.mp4"), Some(uuid));
    assert_eq!(record["uuid"], uuid);
    assert_eq!(record["frames"], 100);
    assert_eq!(record["fps"], 25.0);
    assert_eq!(record["width"], 320);
    assert_eq!(record["height"], 240);
    assert_eq!(record["audio"], true);
    assert!(
        (record["duration"].as_f64().unwrap() - 4.0).abs() < 0.1,
        "{record}"
    );
    let remote = api.import(&api.nginx.url("a.mp4"), None);
    assert_eq!(remote["frames"], 100);
    assert_eq!(remote["location"], api.nginx.url("a.mp4"));
    let remote_uuid = remote["uuid"].as_str().unwrap();
    assert_eq!(remote_uuid.len(), 32);
    assert_eq!(
        api.get(&api.read, remote_uuid, "thumbnail?frame=9")
            .status(),
        200
    );

    // Detections as a JSON array, then as JSON lines: replaced, counted.
    let array = format!("[{}]", rows(0..=2).join(","));
    let response = api.put(&api.write, uuid, &array);
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().unwrap();
    assert_eq!(body["detections"], 3);
    let lines = rows(10..=19).join("\n");
    let response = api.put(&api.write, uuid, &lines);
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.json::<serde_json::Value>().unwrap()["detections"],
        10
    );
    assert_eq!(api.detections(uuid), "10");
    assert_eq!(
        api.get(&api.read, uuid, "trace/4/video?padding=0").status(),
        200
    );

    // A bad row anywhere: 400 naming it, the old detections untouched.
    let mut bad = rows(20..=25);
    bad[3] = r#"{"frame": 23, "x": 1, "y": 1, "w": -5, "h": 4}"#.into();
    let message = assert_json_error(
        api.put(&api.write, uuid, &bad.join("\n")),
        400,
        "bad_parameter",
    );
    assert!(message.contains("line 4"), "{message}");
    let past_end = rows(98..=101).join("\n");
    let message = assert_json_error(api.put(&api.write, uuid, &past_end), 400, "bad_parameter");
    assert!(message.contains("line 3"), "{message}");
    assert_json_error(api.put(&api.write, uuid, "{not json"), 400, "bad_parameter");
    // Past max_upload_bytes (20,000): 413, nothing changed.
    let big = [rows(0..=99), rows(0..=99), rows(0..=99), rows(0..=99)]
        .concat()
        .join("\n");
    assert!(big.len() > 20_000);
    assert_json_error(api.put(&api.write, uuid, &big), 413, "payload_too_large");
    // Chunked, without a Content-Length: cut off as soon as the limit is passed.
    let chunked = client()
        .put(api.server.url(&format!("/api/v1/file/{uuid}/detections")))
        .bearer_auth(&api.write)
        .body(reqwest::blocking::Body::new(std::io::Cursor::new(
            big.clone().into_bytes(),
        )))
        .send()
        .unwrap();
    assert_json_error(chunked, 413, "payload_too_large");
    assert_eq!(api.detections(uuid), "10");

    // Scopes: reading does not grant writing, nor writing reading.
    assert_json_error(api.put(&api.read, uuid, &lines), 403, "forbidden");
    assert_json_error(
        api.post(
            &api.read,
            &serde_json::json!({"location": api.media("a.mp4")}).to_string(),
        ),
        403,
        "forbidden",
    );
    assert_json_error(
        api.get(&api.write, uuid, "thumbnail?frame=1"),
        403,
        "forbidden",
    );
    let both = token(&api.server, &["--all-files", "--scope", "files:write"]);
    assert_eq!(api.get(&both, uuid, "thumbnail?frame=1").status(), 200);
    let anonymous = client()
        .delete(api.server.url(&format!("/api/v1/file/{uuid}")))
        .send()
        .unwrap();
    assert_json_error(anonymous, 401, "unauthorized");

    // Unknown files.
    let unknown = "ffeeddccbbaa99887766554433221100";
    assert_json_error(api.put(&api.write, unknown, &lines), 404, "file_not_found");

    // Delete: gone from every route, and a second delete is a 404.
    let delete = || {
        client()
            .delete(api.server.url(&format!("/api/v1/file/{uuid}")))
            .bearer_auth(&api.write)
            .send()
            .unwrap()
    };
    assert_eq!(delete().status(), 204);
    assert_json_error(
        api.get(&api.read, uuid, "thumbnail?frame=1"),
        404,
        "file_not_found",
    );
    assert_json_error(delete(), 404, "file_not_found");
    assert_eq!(
        api.get(&api.read, remote_uuid, "thumbnail?frame=9")
            .status(),
        200
    );
}

#[test]
fn locations_outside_the_allow_lists_are_refused() {
    let api = Api::start();
    let outside = tempfile::tempdir().unwrap();
    let copy = outside.path().join("a.mp4");
    std::fs::copy(bframes_mp4(), &copy).unwrap();
    let port = api.nginx.port;
    let refused = [
        "/etc/passwd".to_owned(),
        api.media("../../../../etc/passwd"),
        api.media("passwd.mp4"),
        api.media("missing.mp4"),
        copy.display().to_string(),
        "media/a.mp4".to_owned(),
        format!("file://{}", api.media("a.mp4")),
        format!("http://127.0.0.1:{port}0/a.mp4"),
        format!("http://127.0.0.1:{port}.evil.example/a.mp4"),
        format!("https://127.0.0.1:{port}/a.mp4"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://localhost:5432/".to_owned(),
        "s3://media/a.mp4".to_owned(),
        "gopher://127.0.0.1/".to_owned(),
        String::new(),
    ];
    for location in &refused {
        let body = serde_json::json!({ "location": location }).to_string();
        let message = assert_json_error(api.post(&api.write, &body), 400, "bad_parameter");
        assert!(
            !message.contains("root:"),
            "{location}: nothing of the file is echoed: {message}"
        );
    }
    for body in [
        "{",
        r#"{"location": 7}"#,
        r#"{"path": "/x"}"#,
        r#"{"location": "/x", "file_uuid": "xyz"}"#,
    ] {
        assert_json_error(api.post(&api.write, body), 400, "bad_parameter");
    }
    // Nothing was registered, and the origin was never asked.
    let listing = String::from_utf8(api.server.cli(&["files"]).stdout).unwrap();
    assert_eq!(listing.lines().count(), 1, "{listing}");
    assert!(
        api.nginx.requests().is_empty(),
        "{:?}",
        api.nginx.requests()
    );
}
