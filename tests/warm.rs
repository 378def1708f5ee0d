//! Warm decoders (src/pipeline/warm.rs): thumbnails that continue a parked decoder are
//! ffmpeg's frames and the bytes `framecast explain`'s single pipeline writes; the pool's
//! size, idle timeout and metrics.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{client, decode_rgb, ffmpeg_frame, long_gop_mp4, psnr, Server};

struct Warm {
    server: Server,
    uuid: String,
    token: String,
}

impl Warm {
    fn new(video: &Path, env: &[(&str, &str)]) -> Warm {
        let server = Server::start_with(env);
        let uuid = server.import(video, None);
        let token = server.token(&[&uuid]);
        Warm {
            server,
            uuid,
            token,
        }
    }

    fn url(&self, query: &str) -> String {
        self.server
            .url(&format!("/api/v1/file/{}/thumbnail?{query}", self.uuid))
    }

    fn jpeg(&self, query: &str) -> Vec<u8> {
        let response = client()
            .get(self.url(query))
            .bearer_auth(&self.token)
            .send()
            .unwrap();
        assert_eq!(response.status(), 200, "{query}: {:?}", response.text());
        response.bytes().unwrap().to_vec()
    }

    fn lookups(&self, outcome: &str) -> f64 {
        self.server
            .metric(&format!(
                "framecast_warm_decoder_lookups_total{{outcome=\"{outcome}\"}}"
            ))
            .unwrap_or(0.0)
    }

    fn pooled(&self) -> f64 {
        self.server
            .metric("framecast_warm_decoders")
            .expect("the pool gauge")
    }

    /// Waits up to `limit` for the pool gauge to read `want`, panicking after.
    fn assert_pooled_within(&self, want: f64, limit: Duration) {
        let started = Instant::now();
        while self.pooled() != want {
            assert!(
                started.elapsed() < limit,
                "{} warm decoders instead of {want} {:?} later",
                self.pooled(),
                started.elapsed()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn jpeg_rgb(jpeg: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jpg");
    std::fs::write(&path, jpeg).unwrap();
    decode_rgb(&["-i", path.to_str().unwrap(), "-pix_fmt", "rgb24"])
}

/// Frame n of `video` as served: ffmpeg's frame n at >= 32 dB, closer than its neighbours.
fn assert_exact(video: &Path, jpeg: &[u8], n: u32) {
    let ours = jpeg_rgb(jpeg);
    let exact = psnr(&ours, &ffmpeg_frame(video, n, None));
    assert!(exact >= 32.0, "frame {n}: PSNR {exact:.1} dB");
    for neighbour in [n - 1, n + 1] {
        let other = psnr(&ours, &ffmpeg_frame(video, neighbour, None));
        assert!(
            exact > other,
            "frame {n}: {exact:.1} dB vs frame {neighbour} {other:.1} dB"
        );
    }
}

/// Mid-GOP in a 300-frame GOP: N cold, N+1 and N+5 warm, then a seek backwards (cold);
/// all ffmpeg's frames, and warm ones the bytes of explain's single pipeline.
#[test]
fn warm_frames_are_exact_and_the_bytes_explain_writes() {
    let video = long_gop_mp4();
    let w = Warm::new(&video, &[]);
    let dir = tempfile::tempdir().unwrap();
    let n = 150;
    for (frame, hits, misses) in [(n, 0.0, 1.0), (n + 1, 1.0, 1.0), (n + 5, 2.0, 1.0)] {
        let jpeg = w.jpeg(&format!("frame={frame}"));
        assert_eq!(
            (w.lookups("hit"), w.lookups("miss")),
            (hits, misses),
            "frame {frame}"
        );
        assert_exact(&video, &jpeg, frame);
        let url = format!("/api/v1/file/{}/thumbnail?frame={frame}", w.uuid);
        let (line, written) = w.server.run_explained(&url, &dir.path().join("out.jpg"));
        assert_eq!(written, jpeg, "frame {frame}: {line}");
    }
    // Cropped, scaled, other quality: the encoder half is the request's.
    let query = format!("frame={}&x=16&y=32&w=160&h=96&width=80&quality=55", n + 6);
    let jpeg = w.jpeg(&query);
    assert_eq!(w.lookups("hit"), 3.0);
    let url = format!("/api/v1/file/{}/thumbnail?{query}", w.uuid);
    let (line, written) = w.server.run_explained(&url, &dir.path().join("out.jpg"));
    assert_eq!(written, jpeg, "{line}");

    // Backwards: no parked decoder reaches it, so it seeks (and is still exact).
    let jpeg = w.jpeg(&format!("frame={}", n - 10));
    assert_eq!((w.lookups("hit"), w.lookups("miss")), (3.0, 2.0));
    assert_exact(&video, &jpeg, n - 10);
    // Within the GOP (keyframes 0, 300) but over warm_decoder_max_step: continues.
    w.jpeg(&format!("frame={}", n + 6 + 40));
    assert_eq!((w.lookups("hit"), w.lookups("miss")), (4.0, 2.0));
    // Past the next keyframe and over warm_decoder_max_step: seeks.
    let jpeg = w.jpeg("frame=301");
    assert_eq!((w.lookups("hit"), w.lookups("miss")), (4.0, 3.0));
    assert_exact(&video, &jpeg, 301);
}

/// At most warm_decoders parked, shown in /metrics, each charged to the memory budget;
/// all freed after the idle timeout.
#[test]
fn the_pool_is_bounded_and_idle_decoders_are_freed() {
    let w = Warm::new(
        &long_gop_mp4(),
        &[
            ("FRAMECAST_WARM_DECODERS", "2"),
            ("FRAMECAST_WARM_DECODER_IDLE_SECONDS", "3"),
        ],
    );
    // Backwards each time: no parked decoder reaches the next frame, so each parks another.
    for frame in [250, 200, 150, 100] {
        w.jpeg(&format!("frame={frame}"));
        assert!(w.pooled() <= 2.0, "{} parked", w.pooled());
    }
    assert_eq!(w.lookups("miss"), 4.0);
    // Parked decoders are not live pipelines (/health), but hold memory.
    assert!(
        w.server
            .metric("framecast_pipeline_memory_reserved_bytes")
            .unwrap()
            > 0.0
    );
    w.assert_pooled_within(0.0, Duration::from_secs(15));
    // An evicted decoder leaves the pool first, then gives its memory back once its
    // pipeline has stopped (its threads joined).
    let started = Instant::now();
    let reserved = || w.server.metric("framecast_pipeline_memory_reserved_bytes");
    while reserved() != Some(0.0) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?} bytes still reserved",
            reserved()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    w.server
        .assert_pipelines_stop_within(Duration::from_secs(1));
}

/// Four clients stepping through one file at once, each its own decoder: all exact.
#[test]
fn concurrent_clients_on_one_file_get_exact_frames() {
    let video = long_gop_mp4();
    let w = Warm::new(&video, &[("FRAMECAST_WARM_DECODERS", "4")]);
    let served: Vec<(u32, Vec<u8>)> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..4u32)
            .map(|c| {
                let w = &w;
                scope.spawn(move || {
                    (0..4)
                        .map(|i| {
                            let frame = 40 + 70 * c + i;
                            (frame, w.jpeg(&format!("frame={frame}")))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        clients
            .into_iter()
            .flat_map(|c| c.join().unwrap())
            .collect()
    });
    for (frame, jpeg) in &served {
        assert_exact(&video, jpeg, *frame);
    }
    assert!(w.lookups("hit") >= 8.0, "{} warm hits", w.lookups("hit"));
}

/// warm_decoders = 0: one pipeline per thumbnail, as before; nothing pooled.
#[test]
fn a_disabled_pool_keeps_the_single_pipeline() {
    let video = long_gop_mp4();
    let w = Warm::new(&video, &[("FRAMECAST_WARM_DECODERS", "0")]);
    let before = w
        .server
        .metric("framecast_pipelines_started_total")
        .unwrap();
    let jpeg = w.jpeg("frame=151");
    assert_exact(&video, &jpeg, 151);
    assert_eq!(
        w.server.metric("framecast_pipelines_started_total"),
        Some(before + 1.0)
    );
    assert_eq!(w.pooled(), 0.0);
    assert_eq!(w.lookups("miss") + w.lookups("hit"), 0.0);
}

/// A parked decoder's memory goes to a request first: with a 16 MiB budget, one parked
/// 320x240 decoder (7 MiB) and a clip needing 13 MiB, the clip is served at once (not a 503
/// after the queue timeout) and the decoder is gone.
#[test]
fn parked_decoders_give_their_memory_to_requests() {
    let w = Warm::new(
        &long_gop_mp4(),
        &[
            ("FRAMECAST_PIPELINE_MEMORY_BYTES", "16777216"),
            ("FRAMECAST_QUEUE_TIMEOUT_SECONDS", "0.3"),
            ("FRAMECAST_WARM_DECODER_IDLE_SECONDS", "600"),
        ],
    );
    w.jpeg("frame=20");
    assert_eq!(w.pooled(), 1.0);
    assert_eq!(
        w.server.metric("framecast_pipeline_memory_reserved_bytes"),
        Some((7 << 20) as f64)
    );
    let clip = client()
        .get(w.server.url(&format!(
            "/api/v1/file/{}/clip?start_frame=0&end_frame=10",
            w.uuid
        )))
        .bearer_auth(&w.token)
        .send()
        .unwrap();
    assert_eq!(clip.status(), 200, "{:?}", clip.text());
    assert!(!clip.bytes().unwrap().is_empty());
    assert_eq!(w.pooled(), 0.0);
}
