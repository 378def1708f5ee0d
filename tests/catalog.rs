//! One catalog test suite, run for both stores: every behaviour is an async fn taking a
//! fresh catalog, called once with an SQLite file and once with a PostgreSQL database of
//! its own (created and dropped by the test). Then what is particular to each store
//! (migrations, concurrent starts, a server going away), and the overlay's source over both.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::pg::{Relay, TestDatabase};
use framecast::catalog::{
    rows_of, Catalog, CatalogError, Detection, FileRecord, FileUuid, FilesPage, Location,
    OverlaySource, PostgresCatalog, SqliteCatalog, TraceSummary,
};
use framecast::media::{FrameIndex, MediaInfo};
use gst::prelude::*;
use gstframecast::detections::DetectionSource;
use tempfile::TempDir;

/// A catalog and what keeps its store alive (the temporary folder, the database).
struct Subject {
    catalog: Arc<dyn Catalog>,
    _store: Box<dyn std::any::Any + Send>,
}

async fn sqlite() -> Subject {
    let dir = TempDir::new().unwrap();
    let catalog = SqliteCatalog::open_async(dir.path().join("catalog.sqlite3"))
        .await
        .unwrap();
    Subject {
        catalog: Arc::new(catalog),
        _store: Box::new(dir),
    }
}

async fn postgres() -> Subject {
    let db = TestDatabase::create();
    let catalog = PostgresCatalog::open(&db.url).await.unwrap();
    Subject {
        catalog: Arc::new(catalog),
        _store: Box::new(db),
    }
}

/// `behaviour` for each store, as two tests in a module named after it.
macro_rules! for_both_stores {
    ($($behaviour:ident),* $(,)?) => {$(
        mod $behaviour {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let subject = super::sqlite().await;
                super::$behaviour(subject.catalog.clone()).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let subject = super::postgres().await;
                super::$behaviour(subject.catalog.clone()).await
            }
        }
    )*};
}

for_both_stores!(
    put_then_get_gives_the_same_record,
    reimport_replaces_atomically,
    list_files_counts_detections_in_import_order,
    trace_spans_come_from_the_trace_rows,
    detections_come_by_frame_window,
    trace_detections_come_in_frame_order,
    overlay_source_reads_windows_from_a_plain_thread,
    a_bad_row_anywhere_changes_nothing,
    files_come_in_pages_within_a_scope,
    traces_come_in_pages_with_their_spans,
);

/// Rows are stored as they are read: a bad one after good ones (the 1,000,001st of a file,
/// say) rolls the whole import back, and the old entry stays as it was.
async fn a_bad_row_anywhere_changes_nothing(catalog: Arc<dyn Catalog>) {
    let uuid = FileUuid::new_random();
    catalog
        .put_file(&record(uuid), rows_of(vec![detection(0, 1)]))
        .await
        .unwrap();
    let mut replacement = record(uuid);
    replacement.size = 99;
    let bad = gstframecast::detections::ParseError {
        location: "line 3".into(),
        reason: "bad".into(),
    };
    let rows = vec![Ok(detection(1, 1)), Ok(detection(2, 2)), Err(bad)];
    let e = catalog
        .put_file(&replacement, Box::new(rows.into_iter()))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, CatalogError::Detections(e) if e.location == "line 3"),
        "{e}"
    );
    assert_eq!(
        catalog.file(uuid).await.unwrap().unwrap().size,
        123_456_789_012
    );
    assert_eq!(
        catalog.detections(uuid, 0, 249).await.unwrap(),
        vec![detection(0, 1)]
    );
}

/// A record with a real frame index: 250 frames at 25 fps, keyframes every 50, B-frame-like
/// uneven timestamps at the start.
fn record(uuid: FileUuid) -> FileRecord {
    let mut timestamps: Vec<u64> = (0..250).map(|n| n * 40_000_000).collect();
    timestamps[1] += 1;
    let index = FrameIndex::new(timestamps, vec![0, 50, 100, 150, 200], 10_000_000_000).unwrap();
    FileRecord {
        uuid,
        location: Location::File(PathBuf::from("/videos/a b/ünïcode 'quoted'.mp4")),
        size: 123_456_789_012,
        mtime_ns: 1_700_000_000_123_456_789,
        etag: None,
        media: MediaInfo {
            duration_ns: 10_000_000_000,
            fps: 25.0,
            width: 1280,
            height: 720,
            has_audio: true,
            video_codec: "h264".into(),
            audio_codec: Some("aac".into()),
            frame_index: index,
        },
    }
}

fn detection(frame: u32, x: i32) -> Detection {
    Detection {
        frame,
        x,
        y: -2,
        w: 30,
        h: 40,
        label: "face".into(),
        confidence: Some(0.625),
        trace_id: None,
        identity: None,
    }
}

fn in_trace(frame: u32, trace: i64, identity: Option<&str>) -> Detection {
    Detection {
        trace_id: Some(trace),
        identity: identity.map(str::to_owned),
        ..detection(frame, frame as i32)
    }
}

async fn put_then_get_gives_the_same_record(catalog: Arc<dyn Catalog>) {
    let uuid = FileUuid::new_random();
    let mut silent = record(uuid);
    silent.media.audio_codec = None;
    silent.media.has_audio = false;
    // A remote object: its URL and the origin's entity tag come back as they went in.
    let remote = FileRecord {
        location: Location::parse("https://media.example.com/v/a%20b.mp4?x=1").unwrap(),
        etag: Some("\"5f0c-1a2b\"".into()),
        ..record(uuid)
    };
    let s3 = FileRecord {
        location: Location::parse("s3://bucket/dir/a.mp4").unwrap(),
        etag: Some("W/\"abc\"".into()),
        ..record(uuid)
    };
    for file in [record(uuid), silent, remote, s3] {
        catalog
            .put_file(&file, rows_of(vec![detection(0, 1)]))
            .await
            .unwrap();
        let got = catalog.file(uuid).await.unwrap().expect("the file");
        assert_eq!(got, file);
        assert_eq!(
            got.media.frame_index.to_bytes(),
            file.media.frame_index.to_bytes()
        );
    }
    assert!(catalog
        .file(FileUuid::new_random())
        .await
        .unwrap()
        .is_none());
    // Every field of a detection, including the optional ones and a label with quotes.
    let full = Detection {
        label: "it's a \"car\"".into(),
        confidence: None,
        trace_id: Some(i64::MAX),
        identity: Some("名前".into()),
        ..detection(249, i32::MIN)
    };
    catalog
        .put_file(&record(uuid), rows_of(vec![full.clone()]))
        .await
        .unwrap();
    assert_eq!(catalog.detections(uuid, 0, 249).await.unwrap(), [full]);
}

async fn reimport_replaces_atomically(catalog: Arc<dyn Catalog>) {
    let uuid = FileUuid::new_random();
    let old: Vec<Detection> = (0..100).map(|f| detection(f, 1)).collect();
    let new: Vec<Detection> = (0..200).map(|f| detection(f % 250, 2)).collect();
    let mut replacement = record(uuid);
    replacement.size = 99;
    catalog
        .put_file(&record(uuid), rows_of(old.clone()))
        .await
        .unwrap();

    // While one task replaces the entry back and forth, readers only ever see one whole
    // version: the file and its detections together.
    let writer = {
        let catalog = catalog.clone();
        let (old, new, first, second) = (old.clone(), new.clone(), record(uuid), replacement);
        tokio::spawn(async move {
            for _ in 0..10 {
                catalog
                    .put_file(&second, rows_of(new.clone()))
                    .await
                    .unwrap();
                catalog
                    .put_file(&first, rows_of(old.clone()))
                    .await
                    .unwrap();
            }
            catalog
                .put_file(&second, rows_of(new.clone()))
                .await
                .unwrap();
        })
    };
    let mut seen = std::collections::HashSet::new();
    while !writer.is_finished() {
        let rows = catalog.detections(uuid, 0, u32::MAX).await.unwrap();
        let xs: std::collections::HashSet<i32> = rows.iter().map(|d| d.x).collect();
        assert!(
            (rows.len() == 100 && xs == [1].into()) || (rows.len() == 200 && xs == [2].into()),
            "a mix of versions: {} rows with x in {xs:?}",
            rows.len()
        );
        seen.insert(rows.len());
    }
    writer.await.unwrap();
    assert_eq!(catalog.file(uuid).await.unwrap().unwrap().size, 99);
    let files = catalog.list_files().await.unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].detections, 200);
    assert!(!seen.is_empty());
}

async fn list_files_counts_detections_in_import_order(catalog: Arc<dyn Catalog>) {
    assert!(catalog.list_files().await.unwrap().is_empty());
    let (a, b) = (FileUuid::new_random(), FileUuid::new_random());
    catalog
        .put_file(&record(a), rows_of(vec![detection(0, 1), detection(1, 1)]))
        .await
        .unwrap();
    catalog
        .put_file(&record(b), rows_of(Vec::new()))
        .await
        .unwrap();
    let files = catalog.list_files().await.unwrap();
    let got: Vec<(String, u64)> = files
        .iter()
        .map(|f| (f.uuid.clone(), f.detections))
        .collect();
    assert_eq!(got, [(a.to_string(), 2), (b.to_string(), 0)]);
    let f = &files[0];
    assert_eq!(f.path.to_string_lossy(), record(a).location.stored());
    assert_eq!((f.frames, f.fps, f.duration_seconds), (250, 25.0, 10.0));
}

async fn files_come_in_pages_within_a_scope(catalog: Arc<dyn Catalog>) {
    let mut uuids: Vec<FileUuid> = (0..5).map(|_| FileUuid::new_random()).collect();
    for (i, uuid) in uuids.iter().enumerate() {
        let mut file = record(*uuid);
        file.media.has_audio = i % 2 == 0;
        catalog
            .put_file(&file, rows_of(vec![detection(0, 1); i]))
            .await
            .unwrap();
    }
    uuids.sort_by_key(|u| u.to_string());
    let page = |after: Option<FileUuid>, only: Option<Vec<FileUuid>>, limit| FilesPage {
        after,
        only,
        limit,
    };
    // Every file, two at a time, in uuid order.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let got = catalog.files_page(&page(after, None, 2)).await.unwrap();
        assert!(got.len() <= 2);
        let Some(last) = got.last() else { break };
        after = Some(last.uuid.parse().unwrap());
        seen.extend(got);
    }
    let seen_uuids: Vec<String> = seen.iter().map(|f| f.uuid.clone()).collect();
    let want: Vec<String> = uuids.iter().map(|u| u.to_string()).collect();
    assert_eq!(seen_uuids, want);
    // The same rows as list_files.
    let mut listed = catalog.list_files().await.unwrap();
    listed.sort_by(|a, b| a.uuid.cmp(&b.uuid));
    assert_eq!(seen, listed);
    let f = &seen[0];
    assert_eq!((f.width, f.height, f.frames), (1280, 720, 250));
    assert_eq!(seen.iter().filter(|f| f.has_audio).count(), 3);
    assert_eq!(seen.iter().map(|f| f.detections).sum::<u64>(), 10);
    // Within a scope: only those, still paged.
    let scope = vec![uuids[3], uuids[1], FileUuid::new_random()];
    let got = catalog
        .files_page(&page(None, Some(scope.clone()), 1))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].uuid, uuids[1].to_string());
    let got = catalog
        .files_page(&page(Some(uuids[1]), Some(scope), 10))
        .await
        .unwrap();
    let got: Vec<String> = got.into_iter().map(|f| f.uuid).collect();
    assert_eq!(got, [uuids[3].to_string()]);
    let none = catalog
        .files_page(&page(None, Some(Vec::new()), 10))
        .await
        .unwrap();
    assert!(none.is_empty());
}

async fn traces_come_in_pages_with_their_spans(catalog: Arc<dyn Catalog>) {
    let (uuid, other) = (FileUuid::new_random(), FileUuid::new_random());
    let rows = [
        in_trace(9, 7, None),
        in_trace(4, 7, None),
        in_trace(6, 7, Some("alice")),
        in_trace(8, 7, Some("bob")),
        in_trace(0, -3, None),
        in_trace(100, 12, Some("carol")),
        detection(5, 1),
    ];
    catalog
        .put_file(&record(uuid), rows_of(rows.to_vec()))
        .await
        .unwrap();
    catalog
        .put_file(&record(other), rows_of(vec![in_trace(1, 7, None)]))
        .await
        .unwrap();
    let all = catalog.traces(uuid, None, 100).await.unwrap();
    let trace =
        |trace_id, first_frame, last_frame, identity: Option<&str>, detections| TraceSummary {
            trace_id,
            first_frame,
            last_frame,
            identity: identity.map(str::to_owned),
            detections,
        };
    assert_eq!(
        all,
        [
            trace(-3, 0, 0, None, 1),
            trace(7, 4, 9, Some("alice"), 4),
            trace(12, 100, 100, Some("carol"), 1),
        ]
    );
    assert_eq!(catalog.traces(uuid, None, 1).await.unwrap(), all[..1]);
    assert_eq!(catalog.traces(uuid, Some(-3), 1).await.unwrap(), all[1..2]);
    assert!(catalog.traces(uuid, Some(12), 5).await.unwrap().is_empty());
    assert!(catalog
        .traces(FileUuid::new_random(), None, 5)
        .await
        .unwrap()
        .is_empty());
}

async fn trace_spans_come_from_the_trace_rows(catalog: Arc<dyn Catalog>) {
    let uuid = FileUuid::new_random();
    let rows = [
        in_trace(9, 7, None),
        in_trace(4, 7, None),
        in_trace(6, 7, Some("alice")),
        in_trace(8, 7, Some("bob")),
        in_trace(0, 8, None),
    ];
    catalog
        .put_file(&record(uuid), rows_of(rows.to_vec()))
        .await
        .unwrap();
    let span = catalog.trace_span(uuid, 7).await.unwrap().unwrap();
    assert_eq!((span.first, span.last), (4, 9));
    assert_eq!(span.identity.as_deref(), Some("alice"));
    let other = catalog.trace_span(uuid, 8).await.unwrap().unwrap();
    assert_eq!((other.first, other.last, other.identity), (0, 0, None));
    assert_eq!(catalog.trace_span(uuid, 99).await.unwrap(), None);
    assert_eq!(
        catalog.trace_span(FileUuid::new_random(), 7).await.unwrap(),
        None
    );
}

async fn detections_come_by_frame_window(catalog: Arc<dyn Catalog>) {
    let (uuid, other) = (FileUuid::new_random(), FileUuid::new_random());
    // Out of order, several per frame: the catalog orders by frame, then import order.
    let rows: Vec<Detection> = (0..600u32)
        .map(|i| detection((i * 7919) % 300, i as i32))
        .collect();
    catalog
        .put_file(&record(uuid), rows_of(rows.clone()))
        .await
        .unwrap();
    catalog
        .put_file(&record(other), rows_of(vec![detection(10, -1)]))
        .await
        .unwrap();
    let expected = |first: u32, last: u32| {
        let mut want: Vec<Detection> = rows
            .iter()
            .filter(|d| (first..=last).contains(&d.frame))
            .cloned()
            .collect();
        want.sort_by_key(|d| d.frame); // stable: import order within a frame
        want
    };
    for (first, last) in [(0, 255), (256, 511), (10, 10), (299, 299), (0, u32::MAX)] {
        let got = catalog.detections(uuid, first, last).await.unwrap();
        assert_eq!(got, expected(first, last), "frames {first}..={last}");
    }
    assert_eq!(catalog.detections(uuid, 0, 255).await.unwrap().len(), 512);
    assert!(catalog.detections(uuid, 300, 555).await.unwrap().is_empty());
    assert!(catalog
        .detections(uuid, u32::MAX - 5, u32::MAX)
        .await
        .unwrap()
        .is_empty());
    assert!(catalog.detections(uuid, 20, 10).await.unwrap().is_empty());
    assert_eq!(
        catalog.detections(other, 0, 300).await.unwrap(),
        [detection(10, -1)]
    );
}

async fn trace_detections_come_in_frame_order(catalog: Arc<dyn Catalog>) {
    let uuid = FileUuid::new_random();
    let rows = [
        in_trace(20, 3, Some("bob")),
        detection(5, 0),
        in_trace(5, 3, None),
        in_trace(5, 4, None),
        Detection {
            x: 99,
            ..in_trace(5, 3, None)
        },
    ];
    catalog
        .put_file(&record(uuid), rows_of(rows.to_vec()))
        .await
        .unwrap();
    let trace = catalog.trace_detections(uuid, 3).await.unwrap();
    assert_eq!(trace, [rows[2].clone(), rows[4].clone(), rows[0].clone()]);
    assert!(catalog.trace_detections(uuid, 9).await.unwrap().is_empty());
}

/// What the element does: calls from a thread outside the runtime, window after window.
async fn overlay_source_reads_windows_from_a_plain_thread(catalog: Arc<dyn Catalog>) {
    let uuid = FileUuid::new_random();
    let rows: Vec<Detection> = (0..300)
        .map(|f| in_trace(f, (f / 100) as i64, None))
        .collect();
    catalog
        .put_file(&record(uuid), rows_of(rows.clone()))
        .await
        .unwrap();
    let source = OverlaySource::new(catalog.clone(), tokio::runtime::Handle::current(), uuid);
    let (windows, trace, past) = std::thread::spawn(move || {
        let windows: Vec<Vec<Detection>> = [(0, 255), (256, 511)]
            .iter()
            .map(|&(first, last)| source.frames(first, last).unwrap())
            .collect();
        let past = source.frames(u64::from(u32::MAX) + 1, u64::MAX).unwrap();
        (windows, source.trace(2).unwrap(), past)
    })
    .join()
    .unwrap();
    assert_eq!(windows[0], rows[..256]);
    assert_eq!(windows[1], rows[256..]);
    assert_eq!(trace, rows[200..]);
    assert!(past.is_empty());
}

// What is particular to each store.

#[tokio::test]
async fn sqlite_migrations_run_once_and_rename_identity_in_old_catalogs() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("old.sqlite3");
    // A catalog as the first schema made it, with a named trace.
    {
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute_batch(
            "CREATE TABLE files (file_uuid TEXT PRIMARY KEY NOT NULL, path TEXT NOT NULL,
                 size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, duration_ns INTEGER NOT NULL,
                 fps REAL NOT NULL, frame_count INTEGER NOT NULL, width INTEGER NOT NULL,
                 height INTEGER NOT NULL, has_audio INTEGER NOT NULL, video_codec TEXT NOT NULL,
                 audio_codec TEXT, frame_index BLOB NOT NULL,
                 imported_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')));
             CREATE TABLE face_detections (id INTEGER PRIMARY KEY,
                 file_uuid TEXT NOT NULL REFERENCES files(file_uuid) ON DELETE CASCADE,
                 trace_id INTEGER, frame_number INTEGER NOT NULL, x INTEGER NOT NULL,
                 y INTEGER NOT NULL, w INTEGER NOT NULL, h INTEGER NOT NULL, confidence REAL,
                 label TEXT NOT NULL, identity TEXT);
             INSERT INTO files VALUES ('00000000000000000000000000000001', '/v.mp4', 1, 1, 1,
                 25, 0, 2, 2, 0, 'h264', NULL, x'', '2020-01-01T00:00:00Z');
             INSERT INTO face_detections (file_uuid, trace_id, frame_number, x, y, w, h, label,
                 identity) VALUES ('00000000000000000000000000000001', 7, 3, 0, 0, 1, 1, 'face',
                 'alice');
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let uuid: FileUuid = "00000000000000000000000000000001".parse().unwrap();
    for _ in 0..2 {
        let catalog = SqliteCatalog::open_async(path.clone()).await.unwrap();
        let span = catalog.trace_span(uuid, 7).await.unwrap().unwrap();
        assert_eq!(span.identity.as_deref(), Some("alice"));
        assert_eq!(
            catalog.trace_detections(uuid, 7).await.unwrap()[0].identity,
            Some("alice".into())
        );
    }
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_instances_starting_at_once_migrate_once() {
    let db = TestDatabase::create();
    // Without the advisory lock, concurrent CREATE TABLEs on a fresh database fail.
    let opened =
        futures_util::future::join_all((0..4).map(|_| PostgresCatalog::open(&db.url))).await;
    let catalogs: Vec<PostgresCatalog> = opened
        .into_iter()
        .map(|c| c.expect("every instance starts"))
        .collect();
    assert_eq!(
        db.value("SELECT COUNT(*) || ' ' || MAX(version) FROM schema_migrations")
            .as_deref(),
        Some("2 2")
    );
    // Opening again changes nothing and keeps the data.
    let uuid = FileUuid::new_random();
    catalogs[0]
        .put_file(&record(uuid), rows_of(Vec::new()))
        .await
        .unwrap();
    let again = PostgresCatalog::open(&db.url).await.unwrap();
    assert!(again.file(uuid).await.unwrap().is_some());
    assert_eq!(
        db.value("SELECT COUNT(*) FROM schema_migrations")
            .as_deref(),
        Some("2")
    );
    // The platform's column names.
    assert_eq!(
        db.value(
            "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns
             WHERE table_name = 'face_detections'"
        )
        .as_deref(),
        Some("confidence,file_uuid,frame_number,h,id,identity_id,label,trace_id,w,x,y")
    );
}

#[tokio::test]
async fn postgres_refuses_a_schema_newer_than_it_knows() {
    let db = TestDatabase::create();
    PostgresCatalog::open(&db.url).await.unwrap();
    db.execute("INSERT INTO schema_migrations (version) VALUES (1000)");
    let e = PostgresCatalog::open(&db.url).await.err().unwrap();
    assert!(e.to_string().contains("version 1000"), "{e}");
}

#[tokio::test]
async fn postgres_failed_import_changes_nothing() {
    let subject = postgres().await;
    let catalog = subject.catalog;
    let uuid = FileUuid::new_random();
    catalog
        .put_file(&record(uuid), rows_of(vec![detection(1, 1)]))
        .await
        .unwrap();
    // Past PostgreSQL's INTEGER: refused after the file row was already written.
    let mut changed = record(uuid);
    changed.size = 1;
    let e = catalog
        .put_file(
            &changed,
            rows_of(vec![detection(2, 2), detection(u32::MAX, 2)]),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, CatalogError::OutOfRange(_)), "{e}");
    assert_eq!(catalog.file(uuid).await.unwrap().unwrap(), record(uuid));
    assert_eq!(
        catalog.detections(uuid, 0, 10).await.unwrap(),
        [detection(1, 1)]
    );
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn postgres_unreachable_is_unavailable() {
    let url = format!(
        "postgres://postgres:hunter2@127.0.0.1:{}/framecast",
        closed_port()
    );
    let e = PostgresCatalog::open(&url).await.err().unwrap();
    assert!(matches!(e, CatalogError::Unavailable { .. }), "{e:?}");
    assert!(!e.to_string().contains("hunter2"), "password in {e}");
    assert!(e.to_string().contains("refused"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_away_is_unavailable_and_coming_back_needs_no_restart() {
    let db = TestDatabase::create();
    let relay = Relay::start(0).await;
    let port = relay.port;
    let url = db.url_via(&relay);
    assert_ne!(url, db.url);
    let catalog = PostgresCatalog::open(&url).await.unwrap();
    let uuid = FileUuid::new_random();
    catalog
        .put_file(&record(uuid), rows_of(Vec::new()))
        .await
        .unwrap();

    relay.stop().await;
    for _ in 0..3 {
        let e = catalog.file(uuid).await.unwrap_err();
        assert!(matches!(e, CatalogError::Unavailable { .. }), "{e:?}");
    }

    let _relay = Relay::start(port).await;
    // The very next request gets a fresh connection: the broken ones are not handed out.
    assert_eq!(
        catalog.file(uuid).await.unwrap().unwrap(),
        record(uuid),
        "served again once the server is back"
    );
    assert_eq!(catalog.list_files().await.unwrap().len(), 1);
}

/// The element reading an `OverlaySource` in a running pipeline (GStreamer's streaming
/// thread, windows of 256 frames) draws what it draws from the same rows in a file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overlay_draws_the_same_from_either_catalog_as_from_a_file() {
    framecast::pipeline::init().unwrap();
    let rows: Vec<Detection> = (0..300u32)
        .flat_map(|f| {
            [
                detection(f, (f % 100) as i32),
                in_trace(f, 1 + (f / 150) as i64, Some("eve")),
            ]
        })
        .filter(|d| d.frame % 3 != 1)
        .collect();
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("detections.json");
    std::fs::write(&file, serde_json::to_string(&rows).unwrap()).unwrap();
    let from_file = tokio::task::spawn_blocking(move || {
        overlay_frames(|o| o.set_property("detections-file", file.to_str().unwrap()))
    })
    .await
    .unwrap();
    let background = tokio::task::spawn_blocking(|| overlay_frames(|_| {}))
        .await
        .unwrap();
    let drawn = (0..300).filter(|&i| from_file[i] != background[i]).count();
    // Every frame but those with no detection (one in three).
    assert_eq!(drawn, 200);

    for subject in [sqlite().await, postgres().await] {
        let uuid = FileUuid::new_random();
        subject
            .catalog
            .put_file(&record(uuid), rows_of(rows.clone()))
            .await
            .unwrap();
        let source = Arc::new(OverlaySource::new(
            subject.catalog.clone(),
            tokio::runtime::Handle::current(),
            uuid,
        ));
        let from_catalog = tokio::task::spawn_blocking(move || {
            overlay_frames(move |o| {
                o.downcast_ref::<gstframecast::DetectionOverlay>()
                    .unwrap()
                    .set_source(source.clone())
            })
        })
        .await
        .unwrap();
        assert_eq!(from_catalog.len(), 300);
        for (i, (a, b)) in from_file.iter().zip(&from_catalog).enumerate() {
            assert!(a == b, "frame {i} differs");
        }
    }
}

/// 300 small frames through `videotestsrc ! detectionoverlay ! appsink`, the overlay set up
/// by `configure`.
fn overlay_frames(configure: impl FnOnce(&gst::Element)) -> Vec<Vec<u8>> {
    let pipeline = gst::parse::launch(
        "videotestsrc num-buffers=300 ! video/x-raw,format=I420,width=160,height=120,framerate=25/1 \
         ! detectionoverlay name=overlay ! appsink name=sink sync=false",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    configure(&pipeline.by_name("overlay").unwrap());
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut frames = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        frames.push(sample.buffer().unwrap().map_readable().unwrap().to_vec());
    }
    let bus = pipeline.bus().unwrap();
    let error = bus.pop_filtered(&[gst::MessageType::Error]);
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(error.is_none(), "{error:?}");
    frames
}
