//! /thumbnail against ffmpeg's `select=eq(n\,N)` on every tricky kind of file, plus its
//! parameters, caching and `framecast explain`.

mod common;

use std::path::Path;

use common::{
    assert_json_error, awkward_copy, bframes_mp4, client, decode_rgb, edit_list_mp4, ffmpeg_frame,
    frame_count, long_gop_mp4, ntsc_mp4, offset_ts, psnr, vfr_mkv, vp9_webm, Server, Session,
};

/// A JPEG (bytes) decoded to RGB24 by ffmpeg, with its size.
fn jpeg_rgb(jpeg: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jpg");
    std::fs::write(&path, jpeg).unwrap();
    decode_rgb(&["-i", path.to_str().unwrap(), "-pix_fmt", "rgb24"])
}

/// A session that asks for thumbnails.
struct Thumbnails(Session);

impl std::ops::Deref for Thumbnails {
    type Target = Session;

    fn deref(&self) -> &Session {
        &self.0
    }
}

impl Thumbnails {
    fn new() -> Self {
        Thumbnails(Session::start())
    }

    fn get(&self, uuid: &str, query: &str) -> reqwest::blocking::Response {
        self.0
            .get(&format!("/api/v1/file/{uuid}/thumbnail?{query}"))
    }

    fn jpeg(&self, uuid: &str, query: &str) -> Vec<u8> {
        let response = self.get(uuid, query);
        assert_eq!(response.status(), 200, "{query}: {:?}", response.text());
        assert_eq!(response.headers()["content-type"], "image/jpeg");
        response.bytes().unwrap().to_vec()
    }

    /// Frame n matches ffmpeg's frame n at >= 32 dB, and better than its neighbours.
    fn check_frames(&self, video: &Path, frames: &[u32]) {
        let uuid = self.server.import(video, None);
        let count = frame_count(video);
        for &n in frames {
            let n = n.min(count - 1);
            let ours = jpeg_rgb(&self.jpeg(&uuid, &format!("frame={n}")));
            let exact = psnr(&ours, &ffmpeg_frame(video, n, None));
            assert!(exact >= 32.0, "{video:?} frame {n}: PSNR {exact:.1} dB");
            for neighbour in [n.checked_sub(1), Some(n + 1).filter(|&m| m < count)]
                .into_iter()
                .flatten()
            {
                let other = psnr(&ours, &ffmpeg_frame(video, neighbour, None));
                assert!(
                    exact > other,
                    "{video:?} frame {n}: {exact:.1} dB vs frame {neighbour} {other:.1} dB"
                );
            }
        }
    }
}

#[test]
fn bframes_and_edit_list_mp4() {
    let t = Thumbnails::new();
    t.check_frames(&bframes_mp4(), &[0, 1, 2, 49, 50, 51, 77, 99]);
    // GStreamer 1.22's qtdemux alone ends this cut after 18 of ffmpeg's frames
    // (gstframecast::movie_duration): every frame to the last is there and exact.
    let video = edit_list_mp4();
    let count = frame_count(&video);
    assert!(count > 30, "{count} frames");
    t.check_frames(&video, &[0, 1, 2, 10, 16, 17, 18, 30, count - 2, count - 1]);
    let uuid = t.server.import(&video, None);
    let message = assert_json_error(
        t.get(&uuid, &format!("frame={count}")),
        400,
        "bad_parameter",
    );
    assert!(
        message.contains(&format!("0 to {}", count - 1)),
        "{message}"
    );
}

#[test]
fn ntsc_vfr_and_offset_ts() {
    let t = Thumbnails::new();
    t.check_frames(&ntsc_mp4(), &[0, 44, 45, 89]);
    t.check_frames(&vfr_mkv(), &[0, 3, 17, 40, 59]);
    t.check_frames(&offset_ts(), &[0, 1, 30, 74]);
}

#[test]
fn vp9_and_long_gop() {
    let t = Thumbnails::new();
    t.check_frames(&vp9_webm(), &[0, 24, 26, 49]);
    t.check_frames(&long_gop_mp4(), &[0, 299, 300, 301, 349]);
}

#[test]
fn crop_scale_and_quality() {
    let t = Thumbnails::new();
    let video = bframes_mp4();
    let uuid = t.server.import(&video, None);

    let cropped = t.jpeg(&uuid, "frame=30&x=40&y=20&w=160&h=120");
    let ours = jpeg_rgb(&cropped);
    assert_eq!(ours.len(), 160 * 120 * 3);
    let exact = psnr(&ours, &ffmpeg_frame(&video, 30, Some((40, 20, 160, 120))));
    assert!(exact >= 32.0, "crop PSNR {exact:.1}");

    // Both sides given: stretched to them, as ffmpeg's scale=W:H does (not letterboxed).
    // videoscale (bilinear) and ffmpeg's area averaging differ by about 25 dB here.
    let stretched = jpeg_rgb(&t.jpeg(&uuid, "frame=30&width=100&height=50"));
    let reference = decode_rgb(&[
        "-i",
        video.to_str().unwrap(),
        "-vf",
        "select=eq(n\\,30),format=rgb24,scale=100:50:flags=area",
        "-fps_mode",
        "passthrough",
        "-frames:v",
        "1",
    ]);
    let scaled = psnr(&stretched, &reference);
    assert!(scaled >= 22.0, "stretched PSNR {scaled:.1}");

    // One side given keeps the aspect ratio of the (cropped) image.
    assert_eq!(
        jpeg_rgb(&t.jpeg(&uuid, "frame=30&width=160")).len(),
        160 * 120 * 3
    );
    assert_eq!(
        jpeg_rgb(&t.jpeg(&uuid, "frame=30&x=0&y=0&w=160&h=80&height=40")).len(),
        80 * 40 * 3
    );
    assert_eq!(
        jpeg_rgb(&t.jpeg(&uuid, "frame=30&width=100&height=50")).len(),
        100 * 50 * 3
    );

    let low = t.jpeg(&uuid, "frame=30&quality=10");
    let high = t.jpeg(&uuid, "frame=30&quality=95");
    assert!(
        low.len() < high.len() / 2,
        "quality changes size: {} vs {}",
        low.len(),
        high.len()
    );
}

#[test]
fn bad_parameters_say_what_is_valid() {
    let t = Thumbnails::new();
    let uuid = t.server.import(&bframes_mp4(), None);
    let cases = [
        ("", "frame is required"),
        ("frame=abc", "0 to 99"),
        ("frame=-1", "0 to 99"),
        ("frame=100", "0 to 99"),
        ("frame=1.5", "0 to 99"),
        ("frame=1&x=0&y=0&w=10", "all four"),
        ("frame=1&x=0&y=0&w=0&h=10", "1 to 320"),
        ("frame=1&x=300&y=0&w=40&h=10", "320x240"),
        ("frame=1&x=0&y=200&w=40&h=41", "320x240"),
        ("frame=1&quality=0", "1 to 100"),
        ("frame=1&quality=101", "1 to 100"),
        ("frame=1&width=0", "1 to 7680"),
        ("frame=1&height=99999", "1 to 7680"),
    ];
    for (query, needle) in cases {
        let message = assert_json_error(t.get(&uuid, query), 400, "bad_parameter");
        assert!(message.contains(needle), "{query}: {message}");
    }
}

/// The output size bounds a thumbnail's memory: too many pixels is a 400 naming the limit,
/// whether asked for directly or derived from one side.
#[test]
fn thumbnails_over_the_pixel_limit_are_refused_before_decoding() {
    let t = Thumbnails::new();
    let uuid = t.server.import(&bframes_mp4(), None);
    let started = || {
        t.server
            .metric("framecast_pipelines_started_total")
            .unwrap()
    };
    let before = started();
    for query in [
        "frame=1&width=7680&height=7680",
        "frame=1&width=3841&height=2160",
        // One column scaled to 7680 wide: the height keeping the ratio is 1,843,200.
        "frame=1&x=0&y=0&w=1&h=240&width=7680",
    ] {
        let message = assert_json_error(t.get(&uuid, query), 400, "bad_parameter");
        assert!(
            message.contains("max_thumbnail_pixels") && message.contains("8294400"),
            "{query}: {message}"
        );
    }
    assert_eq!(started(), before, "no pipeline for a refused thumbnail");
    let jpeg = t.jpeg(&uuid, "frame=1&width=3840&height=2160");
    assert_eq!(jpeg_rgb(&jpeg).len(), 3840 * 2160 * 3);

    // A lower limit from the settings, and the full frame counts too.
    let small = Server::start_with(&[("FRAMECAST_MAX_THUMBNAIL_PIXELS", "10000")]);
    let uuid = small.import(&bframes_mp4(), None);
    let token = small.token(&[&uuid]);
    let get = |query: &str| {
        client()
            .get(small.url(&format!("/api/v1/file/{uuid}/thumbnail?{query}")))
            .bearer_auth(&token)
            .send()
            .unwrap()
    };
    let message = assert_json_error(get("frame=1"), 400, "bad_parameter");
    assert!(message.contains("320x240 (76800 pixels)"), "{message}");
    assert_eq!(get("frame=1&width=100").status(), 200);
}

/// HEAD answers from what is known: no pipeline; Content-Length once the JPEG is cached.
#[test]
fn head_starts_no_pipeline() {
    let t = Thumbnails::new();
    let uuid = t.server.import(&bframes_mp4(), None);
    let url = t
        .server
        .url(&format!("/api/v1/file/{uuid}/thumbnail?frame=7"));
    let started = || {
        t.server
            .metric("framecast_pipelines_started_total")
            .unwrap()
    };
    let head = || client().head(&url).bearer_auth(&t.token).send().unwrap();
    let before = started();
    for _ in 0..3 {
        let response = head();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "image/jpeg");
        assert!(response.headers().contains_key("etag"));
        assert!(!response.headers().contains_key("content-length"));
    }
    assert_eq!(started(), before, "HEAD started a pipeline");
    let jpeg = t.jpeg(&uuid, "frame=7");
    // A decoder and an encoder with warm decoders on (tests/warm.rs), one pipeline without.
    let after = started();
    assert!(after > before);
    let response = head();
    assert_eq!(
        response.headers()["content-length"],
        jpeg.len().to_string().as_str()
    );
    assert_eq!(started(), after);
    // Validation is the GET's: a bad frame is a 400 with HEAD too.
    let bad = client()
        .head(
            t.server
                .url(&format!("/api/v1/file/{uuid}/thumbnail?frame=-1")),
        )
        .bearer_auth(&t.token)
        .send()
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[test]
fn etag_304_and_cache() {
    let t = Thumbnails::new();
    let uuid = t.server.import(&bframes_mp4(), None);
    let first = t.get(&uuid, "frame=12");
    assert_eq!(first.headers()["cache-control"], "public, max-age=86400");
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let body = first.bytes().unwrap();

    let again = t.get(&uuid, "frame=12");
    assert_eq!(again.headers()["etag"], etag.as_str());
    assert_eq!(
        again.bytes().unwrap(),
        body,
        "a cached repeat is the same image"
    );

    let other = t.get(&uuid, "frame=13");
    assert_ne!(other.headers()["etag"], etag.as_str());
    let cropped = t.get(&uuid, "frame=12&x=0&y=0&w=10&h=10");
    assert_ne!(cropped.headers()["etag"], etag.as_str());

    let not_modified = client()
        .get(
            t.server
                .url(&format!("/api/v1/file/{uuid}/thumbnail?frame=12")),
        )
        .bearer_auth(&t.token)
        .header("If-None-Match", &etag)
        .send()
        .unwrap();
    assert_eq!(not_modified.status(), 304);
}

#[test]
fn explain_reproduces_the_response_byte_for_byte() {
    let t = Thumbnails::new();
    let dir = tempfile::tempdir().unwrap();
    let awkward = awkward_copy(&bframes_mp4(), dir.path());
    let uuid = t.server.import(&awkward, None);
    // Odd sizes too: whole MCUs are encoded from defined pixels (edgepad, jpegsize).
    for query in [
        "frame=77",
        "frame=5&x=10&y=20&w=160&h=96&width=80&quality=55",
        "frame=6&x=3&y=5&w=233&h=111",
        "frame=7&width=50&height=37",
    ] {
        let url = format!("/api/v1/file/{uuid}/thumbnail?{query}");
        let served = t.jpeg(&uuid, query);
        let (line, written) = t.server.run_explained(&url, &dir.path().join("out.jpg"));
        assert_eq!(written, served, "{line}");
    }
}

/// Strong ETags mean identical bytes: the same request, rendered again (no cache) or by
/// another server, gives the same JPEG at every size. jpegenc (GStreamer 1.22) alone encodes
/// uninitialised memory in a partial last MCU column: 5 runs of a 50-pixel-wide thumbnail
/// gave 5 different files.
#[test]
fn every_size_gives_the_same_bytes_every_time() {
    let video = bframes_mp4();
    let servers: Vec<Server> = (0..2)
        .map(|_| Server::start_with(&[("FRAMECAST_THUMBNAIL_CACHE_BYTES", "0")]))
        .collect();
    let queries = [
        "frame=11&width=50&height=37",
        "frame=12&x=3&y=5&w=233&h=111",
        "frame=13&x=1&y=1&w=9&h=7",
        "frame=14&width=321",
        "frame=15&width=1&height=1&quality=40",
        "frame=16&width=1&height=7",
        "frame=17",
    ];
    let mut first: Option<Vec<(String, Vec<u8>)>> = None;
    // The same uuid on both: the ETag names the file by it.
    let uuid = "0123456789abcdef0123456789abcdef";
    for server in &servers {
        let imported = server.cli(&["import", video.to_str().unwrap(), "--uuid", uuid]);
        assert!(imported.status.success(), "{imported:?}");
        let token = server.token(&[uuid]);
        let cache = |outcome: &str| {
            server
                .metric(&format!(
                    "framecast_thumbnail_cache_lookups_total{{outcome=\"{outcome}\"}}"
                ))
                .unwrap_or(0.0)
        };
        let missed = cache("miss");
        let mut answers = Vec::new();
        for query in queries {
            let fetch = || {
                let response = client()
                    .get(server.url(&format!("/api/v1/file/{uuid}/thumbnail?{query}")))
                    .bearer_auth(&token)
                    .send()
                    .unwrap();
                assert_eq!(response.status(), 200, "{query}");
                let etag = response.headers()["etag"].to_str().unwrap().to_owned();
                (etag, response.bytes().unwrap().to_vec())
            };
            let (etag, bytes) = fetch();
            for _ in 0..2 {
                let (again_etag, again) = fetch();
                assert_eq!(again_etag, etag, "{query}");
                assert!(again == bytes, "{query}: other bytes under ETag {etag}");
            }
            answers.push((etag, bytes));
        }
        // Every answer was rendered (cold or by a warm decoder), nothing from a cache.
        assert_eq!(cache("miss") - missed, 3.0 * queries.len() as f64);
        assert_eq!(cache("hit"), 0.0);
        match &first {
            None => first = Some(answers),
            Some(first) => {
                for ((query, (etag, bytes)), (first_etag, first_bytes)) in
                    queries.iter().zip(&answers).zip(first)
                {
                    assert_eq!(etag, first_etag, "{query}: ETag on another server");
                    assert!(
                        bytes == first_bytes,
                        "{query}: other bytes on another server"
                    );
                }
            }
        }
    }
}
