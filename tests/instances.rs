//! Stateless instances: two `framecast serve` processes on one PostgreSQL catalog, with the
//! media on an HTTP origin (nginx), answer every route the same (ETags included), and a file
//! re-imported or re-detected through one is served anew by the other at once.

mod common;

use std::path::Path;

use common::origin::Nginx;
use common::pg::TestDatabase;
use common::{bframes_mp4, client, ntsc_mp4, Server};

fn detections(dir: &Path, name: &str, x: u32) -> std::path::PathBuf {
    let path = dir.join(name);
    let rows: Vec<String> = (5..=50)
        .map(|f| {
            format!(
                r#"{{"frame": {f}, "x": {x}, "y": 30, "w": 60, "h": 70, "trace_id": 9, "identity": "eve"}}"#
            )
        })
        .collect();
    std::fs::write(&path, rows.join("\n")).unwrap();
    path
}

/// Status, the headers that must agree, and the body.
#[derive(Debug, PartialEq)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn answer(server: &Server, token: &str, path: &str, range: Option<&str>, head: bool) -> Answer {
    let url = server.url(path);
    let mut request = if head {
        client().head(url)
    } else {
        client().get(url)
    };
    request = request.bearer_auth(token);
    if let Some(range) = range {
        request = request.header("Range", range);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    let headers = [
        "etag",
        "last-modified",
        "content-type",
        "content-length",
        "content-range",
        "cache-control",
        "content-disposition",
    ]
    .iter()
    .filter_map(|name| {
        let value = response.headers().get(*name)?;
        Some((name.to_string(), value.to_str().unwrap().to_owned()))
    })
    .collect();
    Answer {
        status,
        headers,
        body: response.bytes().unwrap().to_vec(),
    }
}

const ROUTES: &[(&str, Option<&str>, bool)] = &[
    ("video", None, false),
    ("video", Some("bytes=100-20000"), false),
    ("video", None, true),
    ("thumbnail?frame=42", None, false),
    ("thumbnail?frame=42&width=64", None, false),
    ("thumbnail?frame=42", None, true),
    ("clip?start_frame=10&end_frame=30", None, false),
    ("video/bbox?start=40", None, false),
    ("trace/9/video?padding=0", None, false),
    ("trace/8/video", None, false),
    ("thumbnail?frame=100000", None, false),
];

fn assert_same_answers(a: &Server, b: &Server, token_a: &str, token_b: &str, uuid: &str) {
    for &(route, range, head) in ROUTES {
        let path = format!("/api/v1/file/{uuid}/{route}");
        let from_a = answer(a, token_a, &path, range, head);
        let from_b = answer(b, token_b, &path, range, head);
        assert_eq!(from_a.status, from_b.status, "{route} {range:?}");
        assert_eq!(from_a.headers, from_b.headers, "{route} {range:?}");
        assert!(
            from_a.body == from_b.body,
            "{route} {range:?}: bodies differ"
        );
    }
}

#[test]
fn two_instances_on_one_postgres_catalog_answer_alike_and_see_reimports_at_once() {
    let db = TestDatabase::create();
    let root = tempfile::tempdir().unwrap();
    std::fs::copy(bframes_mp4(), root.path().join("a.mp4")).unwrap();
    let nginx = Nginx::start(root.path());
    let a = Server::start_with(&[("FRAMECAST_CATALOG", &db.url)]);
    let b = Server::start_with(&[("FRAMECAST_CATALOG", &db.url)]);
    let (token_a, token_b) = (a.all_files_token(), b.all_files_token());
    let dir = tempfile::tempdir().unwrap();
    let first = detections(dir.path(), "first.jsonl", 20);

    let imported = a.cli(&[
        "import",
        &nginx.url("a.mp4"),
        "--detections",
        first.to_str().unwrap(),
    ]);
    assert!(imported.status.success());
    let uuid = String::from_utf8(imported.stdout)
        .unwrap()
        .trim()
        .to_owned();
    assert_same_answers(&a, &b, &token_a, &token_b, &uuid);

    // Both have the thumbnail cached now. Another video under the same URL and uuid, and
    // other detections, imported through a: b serves the new ones at once.
    let thumbnail = format!("/api/v1/file/{uuid}/thumbnail?frame=42");
    let bbox = format!("/api/v1/file/{uuid}/video/bbox?start=40");
    let old_thumbnail = answer(&b, &token_b, &thumbnail, None, false);
    let old_bbox = answer(&b, &token_b, &bbox, None, false);
    std::fs::copy(ntsc_mp4(), root.path().join("a.mp4")).unwrap();
    let second = detections(dir.path(), "second.jsonl", 120);
    let reimported = a.cli(&[
        "import",
        &nginx.url("a.mp4"),
        "--uuid",
        &uuid,
        "--detections",
        second.to_str().unwrap(),
    ]);
    assert!(
        reimported.status.success(),
        "{}",
        String::from_utf8_lossy(&reimported.stderr)
    );
    let new_thumbnail = answer(&b, &token_b, &thumbnail, None, false);
    assert_eq!(new_thumbnail.status, 200);
    assert_ne!(new_thumbnail.headers, old_thumbnail.headers, "a new ETag");
    assert!(
        new_thumbnail.body != old_thumbnail.body,
        "not the cached image"
    );
    let new_bbox = answer(&b, &token_b, &bbox, None, false);
    assert_eq!(new_bbox.status, 200);
    assert!(new_bbox.body != old_bbox.body, "the new detections");
    assert_same_answers(&a, &b, &token_a, &token_b, &uuid);
}
