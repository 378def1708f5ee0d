//! /clip against ffprobe and ffmpeg's `select=eq(n\,N)` on every tricky kind of file, plus
//! its parameters, headers, teardown on disconnect and `framecast explain`.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{
    assert_json_error, awkward_copy, bframes_mp4, client, edit_list_mp4, faststart_mp4,
    ffmpeg_frame, frame_count, lavfi_h264, ntsc_mp4, offset_ts, psnr, source, vfr_mkv, vp9_webm,
    Server, Session,
};

/// One stream of a clip, as ffprobe counts it.
#[derive(Debug)]
struct Stream {
    kind: String,
    codec: String,
    profile: String,
    pix_fmt: String,
    frames: u32,
    start_time: f64,
    duration: f64,
}

fn probe(clip: &Path) -> Vec<Stream> {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_type,codec_name,profile,pix_fmt,nb_read_frames,start_time,duration",
            "-of",
            "json",
            clip.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "ffprobe: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let text = |s: &serde_json::Value, key: &str| s[key].as_str().unwrap_or("").to_owned();
    json["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Stream {
            kind: text(s, "codec_type"),
            codec: text(s, "codec_name"),
            profile: text(s, "profile"),
            pix_fmt: text(s, "pix_fmt"),
            frames: text(s, "nb_read_frames").parse().unwrap_or(0),
            start_time: text(s, "start_time").parse().unwrap_or(f64::NAN),
            duration: text(s, "duration").parse().unwrap_or(f64::NAN),
        })
        .collect()
}

/// What a clip's audio must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sound {
    /// No audio stream.
    None,
    /// AAC starting with the first frame and lasting as long as the video.
    Covering,
}

/// A session that asks for clips.
struct Clips(Session);

impl std::ops::Deref for Clips {
    type Target = Session;

    fn deref(&self) -> &Session {
        &self.0
    }
}

impl Clips {
    fn new() -> Self {
        Clips(Session::start())
    }

    fn path(&self, uuid: &str, query: &str) -> String {
        format!("/api/v1/file/{uuid}/clip?{query}")
    }

    fn get(&self, uuid: &str, query: &str) -> reqwest::blocking::Response {
        self.0.get(&self.path(uuid, query))
    }

    /// The clip, saved to a file; checks the status and headers.
    fn clip(&self, uuid: &str, query: &str) -> PathBuf {
        let response = self.get(uuid, query);
        assert_eq!(response.status(), 200, "{query}: {:?}", response.text());
        let headers = response.headers();
        let extension = if query.contains("format=mp4") {
            "mp4"
        } else {
            "ts"
        };
        let content_type = if extension == "mp4" {
            "video/mp4"
        } else {
            "video/mp2t"
        };
        assert_eq!(headers["content-type"], content_type);
        assert_eq!(headers["cache-control"], "public, max-age=86400");
        let disposition = headers["content-disposition"].to_str().unwrap().to_owned();
        assert!(
            disposition.starts_with(&format!("inline; filename=\"{uuid}_"))
                && disposition.ends_with(&format!(".{extension}\"")),
            "{disposition}"
        );
        let bytes = response.bytes().unwrap();
        let path = self.dir.path().join(format!(
            "{uuid}-{}.{extension}",
            query.replace(['&', '='], "_")
        ));
        std::fs::write(&path, &bytes).unwrap();
        path
    }

    /// Frames `first..=last` of `video` as a clip: exactly those frames (first and last
    /// checked against ffmpeg's), H.264 yuv420p, AAC when `audio`, both starting together.
    fn check(&self, video: &Path, uuid: &str, first: u32, last: u32, audio: Sound) -> PathBuf {
        self.check_as(video, uuid, first, last, audio, "")
    }

    /// [`Clips::check`] with more query parameters (`&format=mp4`).
    fn check_as(
        &self,
        video: &Path,
        uuid: &str,
        first: u32,
        last: u32,
        audio: Sound,
        extra: &str,
    ) -> PathBuf {
        let clip = self.clip(
            uuid,
            &format!("start_frame={first}&end_frame={last}{extra}"),
        );
        let streams = probe(&clip);
        let video_stream = streams.iter().find(|s| s.kind == "video").unwrap();
        assert_eq!(video_stream.codec, "h264");
        assert_eq!(video_stream.pix_fmt, "yuv420p");
        // pipelines/clip-video.gst asks x264 for High, as the README says.
        assert_eq!(video_stream.profile, "High", "{video_stream:?}");
        assert_eq!(
            video_stream.frames,
            last - first + 1,
            "{video:?} {first}-{last}: {streams:?}"
        );
        let audio_stream = streams.iter().find(|s| s.kind == "audio");
        match audio_stream {
            Some(a) => {
                assert_ne!(audio, Sound::None, "{video:?}: unexpected audio {a:?}");
                assert_eq!(a.codec, "aac");
                assert_eq!(a.profile, "LC");
                assert!(
                    (a.start_time - video_stream.start_time).abs() < 0.001,
                    "audio starts with the first frame: {streams:?}"
                );
                // ffprobe counts whole AAC frames (1024 samples, 23 ms at 44.1 kHz): the
                // encoder's priming frame and the padded last one make the audio up to two
                // frames longer than the samples framesrc gave it (exact, see the plugin's
                // tests), never shorter than one frame less.
                let aac_frame = 1024.0 / 44_100.0;
                let excess = a.duration - video_stream.duration;
                assert!(
                    (-aac_frame..=2.0 * aac_frame).contains(&excess),
                    "audio covers the video's span: {streams:?}"
                );
            }
            None => assert_eq!(
                audio,
                Sound::None,
                "{video:?}: no audio stream: {streams:?}"
            ),
        }
        let count = frame_count(video);
        for (ours, theirs) in [(0, first), (last - first, last)] {
            let got = ffmpeg_frame(&clip, ours, None);
            let exact = psnr(&got, &ffmpeg_frame(video, theirs, None));
            assert!(
                exact >= 30.0,
                "{video:?} clip {first}-{last}, frame {theirs}: PSNR {exact:.1} dB"
            );
            for neighbour in [theirs.checked_sub(1), Some(theirs + 1)]
                .into_iter()
                .flatten()
                .filter(|&n| n < count)
            {
                let other = psnr(&got, &ffmpeg_frame(video, neighbour, None));
                assert!(
                    exact > other,
                    "{video:?} frame {theirs}: {exact:.1} dB vs frame {neighbour} {other:.1} dB"
                );
            }
        }
        clip
    }

    fn active_pipelines(&self) -> u64 {
        let health: serde_json::Value = client()
            .get(self.server.url("/health"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        health["active_pipelines"]
            .as_u64()
            .expect("active_pipelines")
    }
}

fn has_audio(clip: &Path) -> bool {
    probe(clip).iter().any(|s| s.kind == "audio")
}

#[test]
fn bframes_mp4_with_audio_and_headers() {
    let c = Clips::new();
    let video = bframes_mp4();
    let uuid = c.server.import(&video, None);
    let clip = c.check(&video, &uuid, 10, 59, Sound::Covering);
    assert!(clip.to_str().unwrap().contains(&uuid));
    let response = c.get(&uuid, "start_frame=0&end_frame=0");
    assert_eq!(
        response.headers()["content-disposition"],
        format!("inline; filename=\"{uuid}_0-0.ts\"").as_str()
    );
    drop(response);
    c.check(&video, &uuid, 0, 0, Sound::Covering);
    c.check(&video, &uuid, 77, 99, Sound::Covering);

    let silent = c.clip(&uuid, "start_frame=10&end_frame=20&audio=off");
    assert!(!has_audio(&silent));
    assert_eq!(probe(&silent)[0].frames, 11);
}

#[test]
fn time_based_clips() {
    let c = Clips::new();
    let video = bframes_mp4();
    let uuid = c.server.import(&video, None);
    // floor(0.4 × 25) = 10, ceil(2.4 × 25) - 1 = 59; at fps=50, 0.2 s and 1.2 s name the same.
    for query in [
        "start_time=0.4&end_time=2.4",
        "start_time=0.2&end_time=1.2&fps=50",
        "start_time=0.41&end_time=2.39",
    ] {
        let streams = probe(&c.clip(&uuid, query));
        assert_eq!(streams[0].frames, 50, "{query}: {streams:?}");
    }
    let first = c.clip(&uuid, "start_time=0.41&end_time=2.39");
    let exact = psnr(
        &ffmpeg_frame(&first, 0, None),
        &ffmpeg_frame(&video, 10, None),
    );
    assert!(exact >= 30.0, "{exact:.1} dB");
}

#[test]
fn edit_list_ntsc_and_vfr() {
    let c = Clips::new();
    // GStreamer 1.22's qtdemux alone ends this cut's video after 18 of ffmpeg's 37 frames
    // and its audio after 0.35 of its 1.5 s (gstframecast::movie_duration): clips to the
    // last frame are exact, with their audio.
    let video = edit_list_mp4();
    let uuid = c.server.import(&video, None);
    c.check(&video, &uuid, 2, 16, Sound::Covering);
    c.check(&video, &uuid, 17, 36, Sound::Covering);
    let video = ntsc_mp4();
    let uuid = c.server.import(&video, None);
    c.check(&video, &uuid, 44, 88, Sound::None);
    let video = vfr_mkv();
    let uuid = c.server.import(&video, None);
    c.check(&video, &uuid, 3, 40, Sound::None);
}

#[test]
fn offset_ts_and_vp9() {
    let c = Clips::new();
    let video = offset_ts();
    let uuid = c.server.import(&video, None);
    c.check(&video, &uuid, 1, 30, Sound::Covering);
    // No audio track: video only, whatever audio= says.
    let video = vp9_webm();
    let uuid = c.server.import(&video, None);
    let clip = c.check(&video, &uuid, 24, 49, Sound::None);
    assert!(!has_audio(&clip));
}

#[test]
fn odd_sizes_lose_their_last_column_and_row() {
    let c = Clips::new();
    // 4:4:4, since H.264 4:2:0 cannot have an odd size.
    let video = lavfi_h264(
        "odd-321x241.mp4",
        "testsrc2=size=320x240:rate=25:duration=2,scale=321:241",
        None,
        &["-pix_fmt", "yuv444p"],
    );
    let uuid = c.server.import(&video, None);
    let clip = c.clip(&uuid, "start_frame=5&end_frame=24");
    let streams = probe(&clip);
    assert_eq!(streams[0].frames, 20, "{streams:?}");
    assert_eq!(streams[0].pix_fmt, "yuv420p");
    let got = ffmpeg_frame(&clip, 0, None);
    assert_eq!(got.len(), 320 * 240 * 3, "320x240");
    let exact = psnr(&got, &ffmpeg_frame(&video, 5, Some((0, 0, 320, 240))));
    let next = psnr(&got, &ffmpeg_frame(&video, 6, Some((0, 0, 320, 240))));
    assert!(
        exact >= 25.0 && exact > next,
        "{exact:.1} dB, next {next:.1} dB"
    );
}

#[test]
fn bad_parameters_say_what_is_valid() {
    let c = Clips::new();
    let uuid = c.server.import(&bframes_mp4(), None);
    let cases = [
        ("", "give start_frame and end_frame"),
        ("mode=normal", "give start_frame and end_frame"),
        ("start_frame=1", "end_frame is missing"),
        ("end_frame=1", "start_frame is missing"),
        ("start_time=1", "end_time is missing"),
        ("end_time=1", "start_time is missing"),
        ("start_frame=5&end_frame=4", "after end_frame"),
        ("start_frame=0&end_frame=100", "0 to 99"),
        ("start_frame=-1&end_frame=4", "0 to 99"),
        ("start_frame=0&end_frame=-4", "0 to 99"),
        ("start_frame=a&end_frame=4", "0 to 99"),
        ("start_time=-1&end_time=1", "0 or more"),
        ("start_time=0&end_time=-1", "0 or more"),
        ("start_time=2&end_time=1", "after start_time"),
        ("start_time=1&end_time=1", "after start_time"),
        ("start_time=0&end_time=4.1", "past the last frame 99"),
        ("start_time=0&end_time=1&fps=0", "above 0"),
        ("start_time=0&end_time=1&fps=-25", "above 0"),
        ("start_time=0&end_time=1&fps=inf", "above 0"),
        ("start_time=0&end_time=1&fps=NaN", "above 0"),
        ("start_time=nan&end_time=1", "0 or more"),
        ("start_frame=0&end_frame=4&audio=maybe", "on, off"),
        ("start_frame=0&end_frame=4&mode=fast", "normal, debug"),
    ];
    for (query, needle) in cases {
        let message = assert_json_error(c.get(&uuid, query), 400, "bad_parameter");
        assert!(message.contains(needle), "{query}: {message}");
    }

    let short = Server::start_with(&[("FRAMECAST_MAX_CLIP_SECONDS", "2")]);
    let uuid = short.import(&bframes_mp4(), None);
    let token = short.token(&[&uuid]);
    let get = |query: &str| {
        client()
            .get(short.url(&format!("/api/v1/file/{uuid}/clip?{query}")))
            .bearer_auth(&token)
            .send()
            .unwrap()
    };
    let message = assert_json_error(get("start_frame=0&end_frame=50"), 400, "bad_parameter");
    assert!(message.contains("longer than the 2 s"), "{message}");
    assert_eq!(get("start_frame=0&end_frame=49").status(), 200);
}

/// 60 s: long enough that its clip cannot finish into the socket buffers.
fn long_mp4() -> PathBuf {
    lavfi_h264(
        "clip-long.mp4",
        &source("320x240", "25", "60"),
        Some("sine=duration=60"),
        &["-preset", "ultrafast"],
    )
}

#[test]
fn disconnect_frees_the_pipeline() {
    let c = Clips::new();
    let uuid = c.server.import(&long_mp4(), None);
    assert_eq!(c.active_pipelines(), 0);
    let address = c.server.base.trim_start_matches("http://").to_owned();
    let mut connection = std::net::TcpStream::connect(&address).unwrap();
    write!(
        connection,
        "GET {} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\r\n",
        c.path(&uuid, "start_frame=0&end_frame=1499"),
        c.token
    )
    .unwrap();
    let mut head = vec![0; 8192];
    let mut read = 0;
    while read < head.len() {
        let n = connection.read(&mut head[read..]).unwrap();
        assert!(n > 0, "the response ended early");
        read += n;
    }
    assert!(head.starts_with(b"HTTP/1.1 200"));
    // The client stops reading: backpressure holds the pipeline, which stays live.
    let stopped = Instant::now();
    while c.active_pipelines() != 1 {
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "no live pipeline {:?} after the client stopped reading",
            stopped.elapsed()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(connection);
    let dropped = Instant::now();
    while c.active_pipelines() != 0 {
        assert!(
            dropped.elapsed() < Duration::from_secs(1),
            "pipeline still live {:?} after the client left",
            dropped.elapsed()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_stream_failing_midway_ends_incomplete() {
    let c = Clips::new();
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("truncated.mp4");
    std::fs::copy(faststart_mp4(), &video).unwrap();
    let uuid = c.server.import(&video, None);
    // Cut after import: the demuxer ends quietly where the data stops.
    let size = std::fs::metadata(&video).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&video)
        .unwrap();
    file.set_len(size * 2 / 5).unwrap();
    drop(file);

    let response = c.get(&uuid, "start_frame=0&end_frame=249");
    assert_eq!(response.status(), 200);
    assert!(
        response.bytes().is_err(),
        "the client must see the body is incomplete"
    );
    let ended = Instant::now();
    while c.active_pipelines() != 0 {
        assert!(
            ended.elapsed() < Duration::from_secs(1),
            "pipeline not freed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Noise for audio: FFmpeg's AAC encoder codes noisy bands with perceptual noise
/// substitution, whose decoder draws from a random generator that a flush does not reset, so
/// this audio shows any difference in what the decoder saw before framesrc's seek.
fn explain_mp4() -> PathBuf {
    lavfi_h264(
        "clip-explain-noise.mp4",
        &source("320x240", "25", "3"),
        Some("anoisesrc=duration=3:color=pink:seed=7"),
        &["-preset", "veryfast", "-bf", "3"],
    )
}

#[test]
fn explain_reproduces_the_response_byte_for_byte() {
    let c = Clips::new();
    let dir = tempfile::tempdir().unwrap();
    let awkward = awkward_copy(&explain_mp4(), dir.path());
    let uuid = c.server.import(&awkward, None);
    for query in [
        "start_frame=10&end_frame=59&audio=off",
        "start_time=0.5&end_time=1.5&audio=off",
        "start_frame=10&end_frame=59",
    ] {
        let served_path = c.clip(&uuid, query);
        let served = std::fs::read(&served_path).unwrap();
        let output = dir.path().join("out.ts");
        let (line, written) = c.server.run_explained(&c.path(&uuid, query), &output);
        assert!(line.contains("mpegtsmux"), "{line}");
        assert!(written == served, "{line}: not the served bytes");
        if !query.contains("audio=off") {
            assert!(has_audio(&served_path), "{query}: no audio");
        }
    }
}

/// Clips served at the same time are each the same bytes as one served alone, audio included.
/// Which stream starts first inside framesrc, and how far the audio decoder gets before the
/// seek, varies with load: this is where the decoder state carried over the seek showed (one
/// clip in about ten differed).
#[test]
fn concurrent_clips_are_identical() {
    let c = Clips::new();
    let uuid = c.server.import(&explain_mp4(), None);
    let query = "start_frame=10&end_frame=59";
    let alone_path = c.clip(&uuid, query);
    assert!(has_audio(&alone_path));
    let alone = std::fs::read(alone_path).unwrap();
    for round in 0..2 {
        let clips: Vec<Vec<u8>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..6)
                .map(|_| scope.spawn(|| c.get(&uuid, query).bytes().unwrap().to_vec()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (i, clip) in clips.iter().enumerate() {
            assert!(
                *clip == alone,
                "round {round}, clip {i}: {} bytes differ from the clip served alone",
                clip.iter().zip(&alone).filter(|(a, b)| a != b).count()
                    + clip.len().abs_diff(alone.len())
            );
        }
    }
}

/// format=mp4: fragmented MP4 (ftyp, moov, then moof+mdat fragments) with the same frames as
/// the MPEG-TS clip, audio starting with the first frame; explain writes the same bytes but
/// for the muxing time mp4mux stamps in its header.
#[test]
fn mp4_clips_are_fragmented_and_frame_exact() {
    let c = Clips::new();
    let video = bframes_mp4();
    let uuid = c.server.import(&video, None);
    let clip = c.check_as(&video, &uuid, 10, 59, Sound::Covering, "&format=mp4");
    let bytes = std::fs::read(&clip).unwrap();
    // (mp4mux adds a `uuid` box of XMP metadata, which players skip.)
    let boxes = common::mp4_boxes(&bytes);
    assert_eq!(
        boxes
            .iter()
            .filter(|b| *b != "uuid")
            .take(3)
            .collect::<Vec<_>>(),
        ["ftyp", "moov", "moof"],
        "{boxes:?}"
    );
    assert!(
        boxes.iter().filter(|b| *b == "moof").count() >= 2,
        "fragments of about a second: {boxes:?}"
    );
    let video_start = probe(&clip)[0].start_time;
    assert!(video_start.abs() < 0.001, "first frame at 0: {video_start}");
    c.check_as(&video, &uuid, 0, 0, Sound::Covering, "&format=mp4");
    let cut = edit_list_mp4();
    let cut_uuid = c.server.import(&cut, None);
    c.check_as(
        &cut,
        &cut_uuid,
        2,
        16,
        Sound::Covering,
        "&format=mp4&audio=on",
    );
    assert_json_error(
        c.get(&uuid, "start_frame=0&end_frame=1&format=webm"),
        400,
        "bad_parameter",
    );

    let dir = tempfile::tempdir().unwrap();
    let awkward = awkward_copy(&explain_mp4(), dir.path());
    let uuid = c.server.import(&awkward, None);
    for query in [
        "start_frame=10&end_frame=59&format=mp4",
        "start_frame=10&end_frame=59&audio=off&format=mp4",
    ] {
        let served = std::fs::read(c.clip(&uuid, query)).unwrap();
        let output = dir.path().join("out.mp4");
        let (line, written) = c.server.run_explained(&c.path(&uuid, query), &output);
        assert!(line.contains("mp4mux"), "{line}");
        assert!(line.contains("bframes=0"), "{line}");
        assert!(
            common::mp4_without_times(&written) == common::mp4_without_times(&served),
            "{line}: not the served bytes"
        );
    }
}
