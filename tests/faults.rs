//! Faults and limits: clients that leave or stall, overload, broken media, a vanished
//! catalog, timeouts, metrics and graceful shutdown. Every test is bounded in time and runs
//! on loopback against the real binary.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{
    assert_json_error, client, faststart_mp4, lavfi_h264, sample, small_mp4, source, Server,
};

/// 60 s, video only: its clip cannot finish into the socket buffers when re-encoded
/// (`cut=reencode`: a smart cut would copy most of it at demuxing speed).
fn long_mp4() -> PathBuf {
    lavfi_h264(
        "faults-long.mp4",
        &source("320x240", "25", "60"),
        None,
        &["-preset", "ultrafast"],
    )
}

/// 60 s of noise: its clip (tens of MB) outgrows any socket buffers, so a client that stops
/// reading soon holds the pipeline up.
fn noisy_mp4() -> PathBuf {
    lavfi_h264(
        "faults-noisy.mp4",
        "testsrc2=size=320x240:rate=25:duration=60,noise=alls=60:allf=t",
        None,
        &["-preset", "ultrafast"],
    )
}

/// A server with one imported file and a token for it.
struct Setup {
    server: Server,
    uuid: String,
    token: String,
}

impl Setup {
    fn new(video: &Path, env: &[(&str, &str)]) -> Setup {
        let server = Server::start_with(env);
        let uuid = server.import(video, None);
        let token = server.token(&[&uuid]);
        Setup {
            server,
            uuid,
            token,
        }
    }

    fn path(&self, endpoint: &str, query: &str) -> String {
        format!("/api/v1/file/{}/{endpoint}?{query}", self.uuid)
    }

    fn get(&self, endpoint: &str, query: &str) -> reqwest::blocking::Response {
        client()
            .get(self.server.url(&self.path(endpoint, query)))
            .bearer_auth(&self.token)
            .send()
            .expect("the server answers")
    }

    /// Starts a GET of `endpoint` over a raw connection and reads its first 8 KiB; the
    /// caller decides whether to go on reading, stall or leave.
    fn open(&self, endpoint: &str, query: &str) -> TcpStream {
        let address = self.server.address();
        let mut connection = TcpStream::connect(&address).unwrap();
        connection
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        write!(
            connection,
            "GET {} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\r\n",
            self.path(endpoint, query),
            self.token
        )
        .unwrap();
        let mut head = vec![0; 8192];
        connection.read_exact(&mut head).expect("8 KiB of the body");
        assert!(
            head.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&head[..200])
        );
        connection
    }

    /// Waits up to `limit` for the stream's pipeline to be live, panicking after.
    fn assert_pipeline_live_within(&self, limit: Duration) {
        let started = Instant::now();
        while self.server.active_pipelines() != 1 {
            assert!(
                started.elapsed() < limit,
                "{} live pipelines after {:?}",
                self.server.active_pipelines(),
                started.elapsed()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The server still does its job: a fresh thumbnail is served.
    fn assert_still_serving(&self, frame: u32) {
        let response = self.get("thumbnail", &format!("frame={frame}"));
        assert_eq!(response.status(), 200, "the server keeps serving");
        assert!(!response.bytes().unwrap().is_empty());
    }

    /// Encoding pipelines that failed with `failure` (start, midway, timeout, stall).
    fn encoding_failures(&self, failure: &str) -> f64 {
        let metrics = self.metrics();
        let series =
            format!("framecast_pipeline_failures_total{{kind=\"encoding\",failure=\"{failure}\"}}");
        sample(&metrics, &series).unwrap_or(0.0)
    }

    fn metrics(&self) -> String {
        self.server.metrics()
    }
}

#[test]
fn a_client_leaving_mid_stream_frees_the_pipeline_within_a_second() {
    let s = Setup::new(&long_mp4(), &[]);
    let connection = s.open("clip", "start_frame=0&end_frame=1499&cut=reencode");
    // The client stops reading: backpressure holds the pipeline, which stays live (its
    // 1,500 frames cannot all fit in the socket buffers).
    s.assert_pipeline_live_within(Duration::from_secs(10));
    drop(connection);
    s.server
        .assert_pipelines_stop_within(Duration::from_secs(1));
    s.assert_still_serving(10);
}

#[test]
fn clients_leaving_while_reading_are_not_counted_as_failures() {
    let s = Setup::new(&long_mp4(), &[]);
    // A smart cut too: its copy and tail start at the first frame, which is when these
    // clients leave, and what its elements say while stopping is no failure.
    let smart = "start_frame=10&end_frame=1499&cut=smart";
    let head = client()
        .head(s.server.url(&s.path("clip", smart)))
        .bearer_auth(&s.token)
        .send()
        .unwrap();
    assert_eq!(head.headers()["x-framecast-cut"], "smart");
    for query in ["start_frame=0&end_frame=1499&cut=reencode", smart] {
        for leave_after in 0..20 {
            let mut connection = s.open("clip", query);
            let mut more = vec![0; 4096 * leave_after];
            connection.read_exact(&mut more).unwrap();
        }
    }
    s.server
        .assert_pipelines_stop_within(Duration::from_secs(3));
    for failure in ["start", "midway", "timeout", "stall"] {
        assert_eq!(s.encoding_failures(failure), 0.0, "{failure}");
    }
}

#[test]
fn a_stalled_client_loses_its_pipeline_and_gets_a_cut_body() {
    let s = Setup::new(&noisy_mp4(), &[("FRAMECAST_STALL_TIMEOUT_SECONDS", "1")]);
    let idle_sockets = s.server.sockets();
    let mut connection = s.open("clip", "start_frame=0&end_frame=1499&cut=reencode");
    let stalled = Instant::now();
    // Freed by the stall timeout (1 s, once the socket buffers are full) while the
    // connection is still open.
    s.server
        .assert_pipelines_stop_within(Duration::from_secs(10));
    assert!(stalled.elapsed() >= Duration::from_millis(900));
    // The server then gives up writing to the client (the same timeout) and drops the
    // connection, although the client has neither read nor closed it.
    s.server
        .assert_sockets_within(idle_sockets, Duration::from_secs(5));
    // What was queued still comes, then the connection closes without the last chunk.
    let rest = read_until_closed(&mut connection);
    assert_cut_ts_body(&rest);
    assert_eq!(s.encoding_failures("stall"), 1.0);
}

#[test]
fn fifty_concurrent_thumbnails_are_all_answered() {
    let s = Setup::new(&small_mp4(), &[]);
    let started = Instant::now();
    let statuses: Vec<(u16, Option<String>, Vec<u8>)> = std::thread::scope(|scope| {
        let requests: Vec<_> = (0..50)
            .map(|frame| {
                let s = &s;
                // Distinct frames: each one needs its own pipeline (no cache hits).
                scope.spawn(move || {
                    let response = s.get("thumbnail", &format!("frame={frame}"));
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .map(|v| v.to_str().unwrap().to_owned());
                    let body = response.bytes().expect("a whole body").to_vec();
                    (status, retry_after, body)
                })
            })
            .collect();
        requests.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for (frame, (status, retry_after, body)) in statuses.iter().enumerate() {
        match status {
            // Each 200 is its own frame, as ffmpeg decodes it.
            200 => assert_is_frame(body, frame as u32),
            503 => assert_eq!(
                retry_after.as_deref(),
                Some("1"),
                "503 comes with Retry-After"
            ),
            other => panic!("frame {frame}: status {other}: only 200 or 503 are expected"),
        }
    }
    let served = statuses
        .iter()
        .filter(|(status, ..)| *status == 200)
        .count();
    let refused = 50 - served;
    eprintln!(
        "50 concurrent thumbnails: {served} served, {refused} refused, in {:?}",
        started.elapsed()
    );
    // Every refusal is an admission 503, counted as such.
    let counted = s
        .server
        .metric("framecast_admission_rejections_total{kind=\"thumbnail\"}")
        .unwrap_or(0.0);
    assert_eq!(counted, refused as f64);
    s.server
        .assert_pipelines_stop_within(Duration::from_secs(1));
    s.assert_still_serving(0);
}

/// `body` (a JPEG) is frame `n` of small_mp4: closest to ffmpeg's frame n of its
/// neighbours, at 30 dB or more.
fn assert_is_frame(body: &[u8], n: u32) {
    let dir = tempfile::tempdir().unwrap();
    let jpeg = dir.path().join("t.jpg");
    std::fs::write(&jpeg, body).unwrap();
    let ours = common::ffmpeg_frame(&jpeg, 0, None);
    let exact = common::psnr(&ours, &common::ffmpeg_frame(&small_mp4(), n, None));
    assert!(exact >= 30.0, "frame {n}: {exact:.1} dB");
    if n > 0 {
        let previous = common::psnr(&ours, &common::ffmpeg_frame(&small_mp4(), n - 1, None));
        assert!(
            exact > previous,
            "frame {n}: {exact:.1} dB, frame {} {previous:.1}",
            n - 1
        );
    }
}

/// Reads until the server closes the connection (or resets it: what arrived counts).
fn read_until_closed(connection: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 65536];
    loop {
        match connection.read(&mut buffer) {
            Ok(0) => return received,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return received,
            Err(e) => panic!("reading the rest: {e} after {} bytes", received.len()),
        }
    }
}

/// The rest of a chunked MPEG-TS body that was cut: some data (what was queued still
/// comes), chunks of whole 188-byte packets starting with their sync byte, and no final
/// zero-length chunk.
fn assert_cut_ts_body(rest: &[u8]) {
    assert!(!rest.is_empty(), "nothing of the queued stream arrived");
    assert!(
        rest.windows(2).any(|w| w == b"\r\n") && rest.contains(&0x47),
        "not a chunked MPEG-TS body: {:?}",
        &rest[..rest.len().min(64)]
    );
    assert!(
        !rest.ends_with(b"0\r\n\r\n"),
        "a cut stream must not end as if complete ({} bytes)",
        rest.len()
    );
}

/// Overwrites `path` in place with `len` pseudo-random bytes.
fn fill_with_noise(path: &Path, len: u64) {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<u8> = (0..len)
        .map(|_| {
            // xorshift64: reproducible noise without a dependency.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(path, noise).unwrap();
}

#[test]
fn random_bytes_media_gives_json_errors_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("noise.mp4");
    std::fs::copy(small_mp4(), &video).unwrap();
    let s = Setup::new(
        &small_mp4(),
        &[("FRAMECAST_THUMBNAIL_TIMEOUT_SECONDS", "5")],
    );
    let broken = s.server.import(&video, None);
    let token = s.server.token(&[&broken]);
    // Imported while good, then overwritten: what reaches the pipeline is noise.
    fill_with_noise(&video, std::fs::metadata(&video).unwrap().len());

    let get = |endpoint: &str, query: &str| {
        client()
            .get(
                s.server
                    .url(&format!("/api/v1/file/{broken}/{endpoint}?{query}")),
            )
            .bearer_auth(&token)
            .send()
            .unwrap()
    };
    let thumbnail = get("thumbnail", "frame=10");
    let status = thumbnail.status().as_u16();
    assert!(status == 500 || status == 504, "status {status}");
    assert_json_error(
        thumbnail,
        status,
        if status == 500 {
            "internal_error"
        } else {
            "timeout"
        },
    );
    let clip = get("clip", "start_frame=0&end_frame=24");
    if clip.status() == 200 {
        assert!(clip.bytes().is_err(), "a clip of noise cannot be complete");
    } else {
        let status = clip.status().as_u16();
        assert!(status >= 500, "status {status}");
        let body: serde_json::Value = clip.json().expect("a JSON error");
        assert_eq!(body["success"], false);
    }
    s.server
        .assert_pipelines_stop_within(Duration::from_secs(2));
    s.assert_still_serving(5);
}

#[test]
fn truncated_media_gives_a_json_error_or_a_cut_stream_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("truncated.mp4");
    std::fs::copy(faststart_mp4(), &video).unwrap();
    let s = Setup::new(&video, &[("FRAMECAST_THUMBNAIL_TIMEOUT_SECONDS", "5")]);
    // Cut after import: frames past 40% of the file are gone.
    let size = std::fs::metadata(&video).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&video)
        .unwrap();
    file.set_len(size * 2 / 5).unwrap();
    drop(file);

    let thumbnail = s.get("thumbnail", "frame=240");
    let status = thumbnail.status().as_u16();
    assert!(status == 500 || status == 504, "status {status}");
    let body: serde_json::Value = thumbnail.json().expect("a JSON error");
    assert_eq!(body["success"], false);
    // Counted once, under what happened: the pipeline ran out of frames (no image), or
    // took too long; never as a failure to start.
    let failures = |failure: &str| {
        s.server
            .metric(&format!(
                "framecast_pipeline_failures_total{{kind=\"thumbnail\",failure=\"{failure}\"}}"
            ))
            .unwrap_or(0.0)
    };
    let expected = if status == 500 { "output" } else { "timeout" };
    assert_eq!(failures(expected), 1.0, "{expected}");
    assert_eq!(failures("start"), 0.0);

    let clip = s.get("clip", "start_frame=0&end_frame=249");
    assert_eq!(clip.status(), 200, "the start of the file is still there");
    assert!(clip.bytes().is_err(), "the client sees the clip is cut");
    s.server
        .assert_pipelines_stop_within(Duration::from_secs(2));
    // Frames before the cut are still served.
    s.assert_still_serving(10);
}

#[test]
fn a_removed_catalog_gives_503_until_it_is_restored() {
    let s = Setup::new(&small_mp4(), &[]);
    s.assert_still_serving(1);
    let catalog = s.server.data_dir.path().join("catalog.sqlite3");
    let aside = s.server.data_dir.path().join("catalog.sqlite3.aside");
    std::fs::rename(&catalog, &aside).unwrap();
    let response = s.get("thumbnail", "frame=2");
    assert!(response.headers().contains_key("retry-after"));
    let message = assert_json_error(response, 503, "catalog_unavailable");
    assert!(
        !message.contains("sqlite3"),
        "no paths to clients: {message}"
    );
    std::fs::rename(&aside, &catalog).unwrap();
    s.assert_still_serving(2);
}

/// Slots free, memory budget taken: a request whose pipeline does not fit waits the queue
/// timeout and gets 503 naming the memory; the budget in use shows in /metrics.
#[test]
fn a_request_over_the_memory_budget_waits_then_gets_503() {
    // A 320x240 stream is charged 60 B/px + 8 MiB = 13 MiB, a 320x240 thumbnail 7 MiB:
    // together more than 16 MiB.
    let s = Setup::new(
        &long_mp4(),
        &[
            ("FRAMECAST_PIPELINE_MEMORY_BYTES", "16777216"),
            ("FRAMECAST_QUEUE_TIMEOUT_SECONDS", "0.3"),
        ],
    );
    let reserved = || {
        s.server
            .metric("framecast_pipeline_memory_reserved_bytes")
            .expect("the memory gauge")
    };
    assert_eq!(reserved(), 0.0);
    let holding = s.open("clip", "start_frame=0&end_frame=1499&cut=reencode");
    assert_eq!(reserved(), (13 << 20) as f64);
    let refused = s.get("thumbnail", "frame=3");
    assert_eq!(refused.headers()["retry-after"], "1");
    let message = assert_json_error(refused, 503, "overloaded");
    assert!(
        message.contains("7 MiB") && message.contains("16 MiB"),
        "{message}"
    );
    assert_eq!(
        sample(
            &s.metrics(),
            "framecast_admission_rejections_total{kind=\"thumbnail\"}"
        ),
        Some(1.0)
    );
    drop(holding);
    s.server
        .assert_pipelines_stop_within(Duration::from_secs(5));
    assert_eq!(reserved(), 0.0);
    s.assert_still_serving(3);
}

#[test]
fn over_the_limit_a_request_waits_then_gets_503_with_retry_after() {
    let s = Setup::new(
        &long_mp4(),
        &[
            ("FRAMECAST_MAX_ENCODING_PIPELINES", "1"),
            ("FRAMECAST_MAX_THUMBNAIL_PIPELINES", "1"),
            ("FRAMECAST_QUEUE_TIMEOUT_SECONDS", "0.3"),
        ],
    );
    let holding = s.open("clip", "start_frame=0&end_frame=1499&cut=reencode");
    let asked = Instant::now();
    let refused = s.get("clip", "start_frame=0&end_frame=24");
    let waited = asked.elapsed();
    assert_eq!(refused.headers()["retry-after"], "5");
    assert_json_error(refused, 503, "overloaded");
    assert!(
        waited >= Duration::from_millis(300),
        "it waited the queue timeout ({waited:?})"
    );
    // A HEAD runs no pipeline, so it needs no slot: its headers come at once.
    let head = client()
        .head(s.server.url(&s.path("clip", "start_frame=0&end_frame=24")))
        .bearer_auth(&s.token)
        .send()
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-type"], "video/mp2t");
    assert!(head.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .ends_with("_0-24.ts\""));
    assert_eq!(s.server.active_pipelines(), 1, "only the holding stream");
    // Thumbnails have their own pool: not starved by the stream.
    s.assert_still_serving(3);
    assert_eq!(
        sample(
            &s.metrics(),
            "framecast_admission_rejections_total{kind=\"encoding\"}"
        ),
        Some(1.0)
    );

    drop(holding);
    s.server
        .assert_pipelines_stop_within(Duration::from_secs(1));
    let clip = s.get("clip", "start_frame=0&end_frame=24");
    assert_eq!(clip.status(), 200, "the slot is free again");
    assert!(!clip.bytes().unwrap().is_empty());
}

#[test]
fn a_thumbnail_over_its_timeout_gives_504_and_frees_its_pipeline() {
    let s = Setup::new(
        &small_mp4(),
        &[("FRAMECAST_THUMBNAIL_TIMEOUT_SECONDS", "0.001")],
    );
    assert_json_error(s.get("thumbnail", "frame=30"), 504, "timeout");
    s.server
        .assert_pipelines_stop_within(Duration::from_secs(1));
}

#[test]
fn metrics_count_requests_by_route_template_and_cache_use() {
    let s = Setup::new(&small_mp4(), &[]);
    s.assert_still_serving(7);
    s.assert_still_serving(7);
    let unauthorized = client()
        .get(s.server.url(&s.path("thumbnail", "frame=7")))
        .send()
        .unwrap();
    assert_eq!(unauthorized.status(), 401);
    let metrics = s.metrics();
    let thumbnail = "route=\"/api/v1/file/:file_uuid/thumbnail\"";
    for (series, value) in [
        (
            format!("framecast_http_requests_total{{{thumbnail},method=\"GET\",status=\"200\"}}"),
            2.0,
        ),
        (
            format!("framecast_http_requests_total{{{thumbnail},method=\"GET\",status=\"401\"}}"),
            1.0,
        ),
        (
            "framecast_thumbnail_cache_lookups_total{outcome=\"hit\"}".into(),
            1.0,
        ),
        (
            "framecast_thumbnail_cache_lookups_total{outcome=\"miss\"}".into(),
            1.0,
        ),
        (
            format!("framecast_http_request_duration_seconds_count{{{thumbnail}}}"),
            3.0,
        ),
        ("framecast_active_pipelines{kind=\"thumbnail\"}".into(), 0.0),
    ] {
        assert_eq!(
            sample(&metrics, &series),
            Some(value),
            "{series}\n{metrics}"
        );
    }
    let bytes = sample(
        &metrics,
        &format!("framecast_http_response_body_bytes_total{{{thumbnail}}}"),
    )
    .expect("bytes sent");
    assert!(bytes > 1000.0, "two JPEGs were sent: {bytes}");
    assert!(
        !metrics.contains(&s.uuid),
        "route templates, never raw paths"
    );
}

#[test]
fn sigterm_lets_a_running_stream_finish_refuses_new_connections_and_exits_0() {
    let mut s = Setup::new(&long_mp4(), &[("FRAMECAST_SHUTDOWN_GRACE_SECONDS", "20")]);
    let url = s.server.url(&s.path("clip", "start_frame=0&end_frame=299"));
    let token = s.token.clone();
    let download = std::thread::spawn(move || {
        let response = client().get(url).bearer_auth(token).send().unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().map(|body| body.len())
    });
    // Until the clip is running.
    let started = Instant::now();
    while s.server.active_pipelines() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "clip never started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    s.server.signal("TERM");
    // The listener closes as the signal is handled.
    let signalled = Instant::now();
    while TcpStream::connect(s.server.address()).is_ok() {
        assert!(
            signalled.elapsed() < Duration::from_secs(5),
            "still accepting connections 5 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let sent = download
        .join()
        .unwrap()
        .expect("the running clip completes");
    assert!(sent > 10_000, "{sent} bytes");
    let status = s
        .server
        .wait_for_exit(Duration::from_secs(10))
        .expect("the server exits once the stream is done");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn sigint_cuts_what_is_still_running_after_the_grace_period_and_exits_0() {
    let mut s = Setup::new(&noisy_mp4(), &[("FRAMECAST_SHUTDOWN_GRACE_SECONDS", "1")]);
    // A client that stops reading: its stream cannot finish within the grace period.
    let mut stalled = s.open("clip", "start_frame=0&end_frame=1499&cut=reencode");
    let signalled = Instant::now();
    s.server.signal("INT");
    let status = s
        .server
        .wait_for_exit(Duration::from_secs(8))
        .expect("the server exits after the grace period");
    assert_eq!(status.code(), Some(0));
    assert!(signalled.elapsed() >= Duration::from_millis(900));
    let rest = read_until_closed(&mut stalled);
    assert_cut_ts_body(&rest);
}

#[test]
fn a_stalled_video_download_is_closed_short_of_its_length() {
    let s = Setup::new(&noisy_mp4(), &[("FRAMECAST_STALL_TIMEOUT_SECONDS", "1")]);
    let idle_sockets = s.server.sockets();
    let mut connection = s.open("video", "");
    // The client reads nothing: the socket buffers fill, the reader stalls, and after the
    // stall timeout the server drops the connection, which the client still holds.
    s.server
        .assert_sockets_within(idle_sockets, Duration::from_secs(15));
    let mut received = Vec::new();
    let started = Instant::now();
    connection
        .read_to_end(&mut received)
        .expect("the server closes the connection");
    assert!(started.elapsed() < Duration::from_secs(15));
    let size = std::fs::metadata(noisy_mp4()).unwrap().len() as usize;
    assert!(
        received.len() < size,
        "cut short: {} of {size} bytes",
        received.len()
    );
    s.assert_still_serving(1);
}

#[test]
fn a_pipeline_that_stops_producing_is_cut_at_the_stall_timeout() {
    // The shipped pipeline files, with each encoded frame held up 1.5 s: after its first
    // output the pipeline produces nothing for longer than the stall timeout (1 s).
    let pipelines = tempfile::tempdir().unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    for entry in std::fs::read_dir(shipped).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, pipelines.path().join(path.file_name().unwrap())).unwrap();
    }
    let clip_video = pipelines.path().join("clip-video.gst");
    let text = std::fs::read_to_string(&clip_video).unwrap();
    assert!(text.trim_end().ends_with("! h264parse"), "{text}");
    let slowed = format!("{}\n  ! identity sleep-time=1500000\n", text.trim_end());
    std::fs::write(&clip_video, slowed).unwrap();
    let s = Setup::new(
        &long_mp4(),
        &[
            ("FRAMECAST_STALL_TIMEOUT_SECONDS", "1"),
            (
                "FRAMECAST_PIPELINES_DIR",
                pipelines.path().to_str().unwrap(),
            ),
        ],
    );

    let started = Instant::now();
    let response = s.get("clip", "start_frame=0&end_frame=99");
    assert_eq!(response.status(), 200);
    // The client reads all the time, yet the body ends unfinished: 100 frames at 1.5 s
    // each would take 150 s.
    assert!(
        response.bytes().is_err(),
        "a cut body is not a complete one"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    s.server
        .assert_pipelines_stop_within(Duration::from_secs(3));
    assert_eq!(s.encoding_failures("stall"), 1.0);
    s.assert_still_serving(1);
}

#[test]
fn over_the_connection_limit_with_every_connection_busy_a_client_gets_503_counted_in_metrics() {
    let s = Setup::new(
        &long_mp4(),
        &[
            ("FRAMECAST_MAX_CONNECTIONS", "2"),
            ("FRAMECAST_MAX_ENCODING_PIPELINES", "2"),
        ],
    );
    // Two streams the clients do not read: both connections are answering a request, so
    // neither can be closed to make room.
    let first = s.open("clip", "start_frame=0&end_frame=1499&cut=reencode");
    let _second = s.open("clip", "start_frame=0&end_frame=1499&cut=reencode");
    let refused = client().get(s.server.url("/health")).send().unwrap();
    assert!(refused.headers().contains_key("retry-after"));
    assert_json_error(refused, 503, "overloaded");

    drop(first);
    // Once the first stream's connection is gone, there is room again.
    let started = Instant::now();
    let metrics = loop {
        match client().get(s.server.url("/metrics")).send() {
            Ok(response) if response.status() == 200 => break response.text().unwrap(),
            _ => {}
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no room after a connection closed"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        sample(&metrics, "framecast_connections_refused_total").is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
}
