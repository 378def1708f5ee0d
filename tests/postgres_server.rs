//! The real binary on a PostgreSQL catalog (`FRAMECAST_CATALOG=postgres://...`): the CLI
//! imports into it, the server answers from it, the same as on SQLite, and a database that
//! goes away gives 503 `catalog_unavailable` until it is back, with no restart.

mod common;

use common::pg::{Relay, TestDatabase};
use common::{assert_json_error, client, small_mp4, Server};

/// A detections file for the small video: trace 7 on frames 10-20.
fn detections(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("detections.jsonl");
    let rows: Vec<String> = (10..=20)
        .map(|f| {
            format!(
                r#"{{"frame": {f}, "x": 40, "y": 30, "w": 50, "h": 60, "trace_id": 7, "identity_id": "alice"}}"#
            )
        })
        .collect();
    std::fs::write(&path, rows.join("\n")).unwrap();
    path
}

fn thumbnail(server: &Server, token: &str, uuid: &str, frame: u32) -> reqwest::blocking::Response {
    client()
        .get(server.url(&format!("/api/v1/file/{uuid}/thumbnail?frame={frame}")))
        .bearer_auth(token)
        .send()
        .unwrap()
}

#[test]
fn import_and_serve_from_postgres_as_from_sqlite() {
    let db = TestDatabase::create();
    let dir = tempfile::tempdir().unwrap();
    let detections = detections(&dir);
    let video = small_mp4();

    let pg = Server::start_with(&[("FRAMECAST_CATALOG", &db.url)]);
    let uuid = pg.import(&video, Some(&detections));
    assert_eq!(
        db.value(&format!(
            "SELECT COUNT(*) FROM face_detections WHERE file_uuid = '{uuid}' AND identity_id = 'alice'"
        ))
        .as_deref(),
        Some("11"),
        "the rows are in PostgreSQL"
    );
    assert!(
        !pg.data_dir.path().join("catalog.sqlite3").exists(),
        "no SQLite catalog beside it"
    );
    let files = pg.cli(&["files"]);
    assert!(files.status.success());
    let listing = String::from_utf8(files.stdout).unwrap();
    assert!(
        listing.contains(&uuid) && listing.contains("11"),
        "{listing}"
    );

    // The same file under the same uuid on SQLite: the same answers, ETags included.
    let sqlite = Server::start();
    let imported = sqlite.cli(&[
        "import",
        video.to_str().unwrap(),
        "--uuid",
        &uuid,
        "--detections",
        detections.to_str().unwrap(),
    ]);
    assert!(imported.status.success());
    let (pg_token, sqlite_token) = (pg.all_files_token(), sqlite.all_files_token());
    for frame in [0, 25, 49] {
        let from_pg = thumbnail(&pg, &pg_token, &uuid, frame);
        let from_sqlite = thumbnail(&sqlite, &sqlite_token, &uuid, frame);
        assert_eq!(from_pg.status(), 200);
        assert_eq!(from_pg.headers()["content-type"], "image/jpeg");
        assert_eq!(from_pg.headers()["etag"], from_sqlite.headers()["etag"]);
        assert!(
            from_pg.bytes().unwrap() == from_sqlite.bytes().unwrap(),
            "frame {frame}"
        );
    }
    // Streams that draw detections read them from PostgreSQL in-process: the same bytes as
    // from SQLite, with the trace's boxes drawn (they differ from the plain clip).
    let stream = |server: &Server, token: &str, path: &str| {
        let response = client()
            .get(server.url(&format!("/api/v1/file/{uuid}/{path}")))
            .bearer_auth(token)
            .send()
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        response.bytes().unwrap()
    };
    for path in ["video/bbox?audio=off", "trace/7/video?padding=0&mode=debug"] {
        let from_pg = stream(&pg, &pg_token, path);
        assert!(from_pg.len() > 10_000, "{path}: {} bytes", from_pg.len());
        let from_sqlite = stream(&sqlite, &sqlite_token, path);
        if from_pg != from_sqlite {
            // Once seen under heavy load, not reproduced since: say where and how they
            // differ, and keep both for a look.
            let kept = std::env::temp_dir().join(format!("framecast-pg-{}", std::process::id()));
            std::fs::create_dir_all(&kept).unwrap();
            let (pg_file, sqlite_file) = (kept.join("postgres.ts"), kept.join("sqlite.ts"));
            std::fs::write(&pg_file, &from_pg).unwrap();
            std::fs::write(&sqlite_file, &from_sqlite).unwrap();
            let first_difference = from_pg
                .iter()
                .zip(from_sqlite.iter())
                .position(|(a, b)| a != b);
            panic!(
                "{path}: PostgreSQL and SQLite differ: {} and {} bytes, {} and {} frames, \
                 first different byte {first_difference:?}; kept in {}",
                from_pg.len(),
                from_sqlite.len(),
                common::frame_count(&pg_file),
                common::frame_count(&sqlite_file),
                kept.display()
            );
        }
    }
    let drawn = stream(&pg, &pg_token, "video/bbox?audio=off&start=10");
    let plain = stream(&pg, &pg_token, "video?audio=off&start=10&mode=normal");
    assert!(drawn != plain, "the boxes are drawn");
    // A trace lookup through PostgreSQL: unknown is a 404.
    let response = client()
        .get(pg.url(&format!("/api/v1/file/{uuid}/trace/99/video")))
        .bearer_auth(&pg_token)
        .send()
        .unwrap();
    assert_json_error(response, 404, "not_found");
    let response = client()
        .get(pg.url("/api/v1/file/0123456789abcdef0123456789abcdef/thumbnail?frame=0"))
        .bearer_auth(&pg_token)
        .send()
        .unwrap();
    assert_json_error(response, 404, "file_not_found");
}

#[test]
fn postgres_going_away_gives_503_until_it_is_back() {
    let db = TestDatabase::create();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let relay = runtime.block_on(Relay::start(0));
    let port = relay.port;
    let url = db
        .url_via(&relay)
        .replacen("postgres@", "postgres:hunter2@", 1);
    let server = Server::start_with(&[("FRAMECAST_CATALOG", &url)]);
    let uuid = server.import(&small_mp4(), None);
    let token = server.all_files_token();
    assert_eq!(thumbnail(&server, &token, &uuid, 1).status(), 200);

    runtime.block_on(relay.stop());
    let response = thumbnail(&server, &token, &uuid, 2);
    assert!(response.headers().contains_key("retry-after"));
    let message = assert_json_error(response, 503, "catalog_unavailable");
    assert!(
        !message.contains("hunter2") && !message.contains("postgres"),
        "nothing about the database to clients: {message}"
    );

    let _relay = runtime.block_on(Relay::start(port));
    assert_eq!(
        thumbnail(&server, &token, &uuid, 2).status(),
        200,
        "served again once PostgreSQL is back"
    );
}
