//! The re-encoded streams with detections drawn (/video/bbox, /trace/:id/video,
//! /video?mode=debug), the video without audio (/video?audio=off) and debug clips: frame
//! counts, audio, and pixels of the decoded output where the detections say.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{
    assert_json_error, client, ffmpeg_frame, ffprobe_values, frame_count, lavfi_h264, Server,
};

const WIDTH: usize = 1280;
const HEIGHT: usize = 720;
const FRAMES: u32 = 75;
const GREY: u8 = 128;

/// 3 s of flat grey 720p at 25 fps with a sine: any drawn pixel stands out.
fn grey_mp4() -> PathBuf {
    lavfi_h264(
        "streams-grey.mp4",
        "color=c=0x808080:size=1280x720:rate=25:duration=3",
        Some("sine=duration=3"),
        &["-preset", "veryfast", "-g", "25"],
    )
}

/// The same in 10-bit 4:2:0, a format the overlay does not draw in itself.
fn grey_10bit_mp4() -> PathBuf {
    lavfi_h264(
        "streams-grey-10bit.mp4",
        "color=c=0x808080:size=1280x720:rate=25:duration=3",
        Some("sine=duration=3"),
        &["-preset", "veryfast", "-g", "25", "-pix_fmt", "yuv420p10le"],
    )
}

/// A labelled box without trace on frames 0-49; trace 7 on frames 20 and 30 only, moving
/// right by 200 px.
const DETECTIONS: &str = r#"
{"frame": 10, "x": 100, "y": 200, "w": 240, "h": 180, "label": "face", "confidence": 0.9}
{"frame": 20, "x": 600, "y": 300, "w": 160, "h": 160, "trace_id": 7, "identity": "alice"}
{"frame": 30, "x": 800, "y": 300, "w": 160, "h": 160, "trace_id": 7, "identity": "alice"}
"#;

struct Streams {
    server: Server,
    token: String,
    uuid: String,
    dir: tempfile::TempDir,
}

impl Streams {
    fn new() -> Self {
        Self::of(&grey_mp4())
    }

    /// A server with `video` imported with [`DETECTIONS`].
    fn of(video: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let detections = dir.path().join("detections.jsonl");
        std::fs::File::create(&detections)
            .unwrap()
            .write_all(DETECTIONS.trim_start().as_bytes())
            .unwrap();
        let server = Server::start();
        let uuid = server.import(video, Some(&detections));
        let token = server.token(&[&uuid]);
        Streams {
            server,
            token,
            uuid,
            dir,
        }
    }

    fn get(&self, path: &str) -> reqwest::blocking::Response {
        client()
            .get(
                self.server
                    .url(&format!("/api/v1/file/{}{path}", self.uuid)),
            )
            .bearer_auth(&self.token)
            .send()
            .unwrap()
    }

    /// The stream at `path`, saved; checks status and type.
    fn stream(&self, path: &str) -> PathBuf {
        let response = self.get(path);
        assert_eq!(response.status(), 200, "{path}: {:?}", response.text());
        let (content_type, extension) = if path.contains("format=mp4") {
            ("video/mp4", "mp4")
        } else {
            ("video/mp2t", "ts")
        };
        assert_eq!(response.headers()["content-type"], content_type);
        let bytes = response.bytes().unwrap();
        let name = format!("{}.{extension}", path.replace(['/', '?', '&', '='], "_"));
        let file = self.dir.path().join(name);
        std::fs::write(&file, &bytes).unwrap();
        file
    }
}

/// RGB of pixel (x, y).
fn rgb(frame: &[u8], x: usize, y: usize) -> [u8; 3] {
    let at = (y * WIDTH + x) * 3;
    [frame[at], frame[at + 1], frame[at + 2]]
}

/// Whether the pixel is the untouched grey (give or take the encoder).
fn is_grey(frame: &[u8], x: usize, y: usize) -> bool {
    rgb(frame, x, y)
        .iter()
        .all(|&c| (c as i32 - GREY as i32).abs() <= 8)
}

/// How many pixels of the rectangle are not grey.
fn drawn_pixels(frame: &[u8], x: usize, y: usize, w: usize, h: usize) -> usize {
    (y..y + h)
        .flat_map(|row| (x..x + w).map(move |column| (column, row)))
        .filter(|&(column, row)| !is_grey(frame, column, row))
        .count()
}

fn audio_streams(path: &Path) -> usize {
    let indices: std::collections::BTreeSet<String> = ffprobe_values(path, "a", "stream=index")
        .into_iter()
        .collect();
    indices.len()
}

#[test]
fn bbox_draws_each_detection_on_its_frame_only() {
    let s = Streams::new();
    let stream = s.stream("/video/bbox");
    assert_eq!(frame_count(&stream), FRAMES);
    assert_eq!(audio_streams(&stream), 1);

    let frame = ffmpeg_frame(&stream, 10, None);
    assert_face_box_on(&frame);
    // No debug panel without debug.
    assert_eq!(drawn_pixels(&frame, 0, 0, 90, 90), 0, "no panel");

    // Frame 11 has no detection.
    let frame = ffmpeg_frame(&stream, 11, None);
    assert_eq!(drawn_pixels(&frame, 0, 0, WIDTH, HEIGHT), 0);
    // Frame 20: trace 7's box, labelled "#7 alice".
    let frame = ffmpeg_frame(&stream, 20, None);
    assert!(!is_grey(&frame, 600, 380), "trace box edge");
    assert_eq!(
        drawn_pixels(&frame, 100, 200, 240, 180),
        0,
        "frame 10's box is gone"
    );
}

/// Frame 10's "face" box: its edges (2 px at 720p, on its outermost pixels and outwards) in
/// the colour of its label, its label on a background above it, the interior and the rest
/// untouched.
fn assert_face_box_on(frame: &[u8]) {
    let (r, g, b) = gstframecast::detection_color(None, "face");
    for (x, y) in [(100, 290), (339, 290), (220, 200), (220, 379)] {
        let got = rgb(frame, x, y);
        let want = [r, g, b];
        let off = got
            .iter()
            .zip(want)
            .map(|(a, b)| (*a as i32 - b as i32).abs());
        assert!(
            off.max().unwrap() <= 48,
            "edge ({x},{y}): {got:?}, want {want:?}"
        );
    }
    assert_eq!(drawn_pixels(frame, 110, 210, 220, 160), 0, "interior");
    assert!(is_grey(frame, 700, 600));
    assert!(
        drawn_pixels(frame, 100, 160, 120, 38) > 500,
        "label above the box"
    );
}

#[test]
fn bbox_draws_on_formats_the_overlay_converts_to() {
    let s = Streams::of(&grey_10bit_mp4());
    let stream = s.stream("/video/bbox?audio=off");
    assert_eq!(frame_count(&stream), FRAMES);
    assert_face_box_on(&ffmpeg_frame(&stream, 10, None));
}

#[test]
fn start_jumps_in_and_audio_off_drops_the_audio() {
    let s = Streams::new();
    let stream = s.stream("/video/bbox?start=10&audio=off");
    assert_eq!(frame_count(&stream), FRAMES - 10);
    assert_eq!(audio_streams(&stream), 0);
    // Its first frame is frame 10, with its box.
    let frame = ffmpeg_frame(&stream, 0, None);
    assert!(!is_grey(&frame, 100, 290));

    let plain = s.stream("/video?audio=off");
    assert_eq!(frame_count(&plain), FRAMES);
    assert_eq!(audio_streams(&plain), 0);
    assert_eq!(
        drawn_pixels(&ffmpeg_frame(&plain, 10, None), 0, 0, WIDTH, HEIGHT),
        0
    );
    assert_eq!(frame_count(&s.stream("/video?audio=off&start=70")), 5);
}

#[test]
fn debug_adds_the_info_panel() {
    let s = Streams::new();
    let stream = s.stream("/video?mode=debug&audio=off");
    assert_eq!(frame_count(&stream), FRAMES);
    for n in [0, 10, 74] {
        let frame = ffmpeg_frame(&stream, n, None);
        assert!(
            drawn_pixels(&frame, 0, 0, 90, 90) > 1000,
            "panel on frame {n}"
        );
    }
    assert!(
        !is_grey(&ffmpeg_frame(&stream, 10, None), 100, 290),
        "boxes too"
    );

    let clip = s.stream("/clip?start_frame=5&end_frame=14&mode=debug");
    assert_eq!(frame_count(&clip), 10);
    let frame = ffmpeg_frame(&clip, 5, None);
    assert!(drawn_pixels(&frame, 0, 0, 90, 90) > 1000, "CLIP panel");
    // Clips draw no detections: frame 10's box is not there.
    assert_eq!(drawn_pixels(&frame, 90, 190, 260, 200), 0);
    let normal = s.stream("/clip?start_frame=5&end_frame=14");
    assert_eq!(
        drawn_pixels(&ffmpeg_frame(&normal, 5, None), 0, 0, WIDTH, HEIGHT),
        0
    );
}

#[test]
fn trace_spans_its_detections_with_padding_and_interpolates_between() {
    let s = Streams::new();
    // Detections on frames 20 and 30; 0.4 s = 10 frames of padding each side.
    let stream = s.stream("/trace/7/video?padding=0.4&audio=off");
    assert_eq!(frame_count(&stream), 31);
    // Output frame k is frame 10 + k. Frame 20: thick box (4 px) at x=600.
    let frame = ffmpeg_frame(&stream, 10, None);
    assert!(
        drawn_pixels(&frame, 596, 340, 4, 60) > 200,
        "thick left edge"
    );
    assert_eq!(drawn_pixels(&frame, 610, 310, 140, 140), 0, "interior");
    // Frame 25, between: a thin box halfway, at x=700.
    let frame = ffmpeg_frame(&stream, 15, None);
    assert!(
        drawn_pixels(&frame, 699, 340, 2, 60) > 40,
        "thin interpolated edge"
    );
    assert!(
        drawn_pixels(&frame, 690, 340, 6, 60) < 20,
        "thin, not thick"
    );
    assert_eq!(
        drawn_pixels(&frame, 580, 290, 40, 200),
        0,
        "not at frame 20's place"
    );
    // Frame 12, before the trace: nothing; no other detections in normal mode.
    assert_eq!(
        drawn_pixels(&ffmpeg_frame(&stream, 2, None), 0, 0, WIDTH, HEIGHT),
        0
    );

    // Default padding is 2 s, clamped to the file: frames 0 to 30 + 50.
    assert_eq!(frame_count(&s.stream("/trace/7/video?audio=off")), FRAMES);
    let with_audio = s.stream("/trace/7/video?padding=0");
    assert_eq!(frame_count(&with_audio), 11);
    assert_eq!(audio_streams(&with_audio), 1);
    // Debug: the panel, and frame 10's detection thin and grey.
    let debug = s.stream("/trace/7/video?padding=0.4&mode=debug&audio=off");
    let frame = ffmpeg_frame(&debug, 0, None);
    assert!(drawn_pixels(&frame, 0, 0, 90, 90) > 1000, "panel");
    assert!(
        drawn_pixels(&frame, 96, 260, 6, 60) > 20,
        "the others, thin and grey"
    );
    let normal = ffmpeg_frame(&stream, 0, None);
    assert_eq!(
        drawn_pixels(&normal, 96, 260, 6, 60),
        0,
        "not in normal mode"
    );
}

#[test]
fn bad_requests_are_json_errors() {
    let s = Streams::new();
    assert_json_error(s.get("/trace/8/video"), 404, "not_found");
    for (path, needle) in [
        ("/trace/x/video", "integer"),
        ("/trace/7/video?padding=-1", "padding"),
        ("/trace/7/video?padding=abc", "padding"),
        ("/trace/7/video?padding=0&start=5", "from 20 to 30"),
        ("/trace/8/video?padding=nan", "padding"),
        ("/video/bbox?start=75", "from 0 to 74"),
        ("/video/bbox?start=-1", "start"),
        ("/video/bbox?mode=loud", "mode"),
        ("/video?start=3", "Range"),
    ] {
        let message = assert_json_error(s.get(path), 400, "bad_parameter");
        assert!(message.contains(needle), "{path}: {message}");
    }
    // Still serving.
    assert_eq!(s.get("/video").status(), 200);
}

/// `/thumbnail?mode=debug`: the frame with its detections drawn as `/video/bbox?mode=debug`
/// draws that frame (boxes, labels, the panel), cropped with the picture; `framecast
/// explain` reproduces it; its ETag changes when the detections are re-imported.
#[test]
fn debug_thumbnails_draw_the_frames_detections() {
    let s = Streams::new();
    let thumbnail = |query: &str| {
        let response = s.get(&format!("/thumbnail?{query}"));
        assert_eq!(response.status(), 200, "{query}");
        let etag = response.headers()["etag"].to_str().unwrap().to_owned();
        let path = s.dir.path().join("t.jpg");
        std::fs::write(&path, response.bytes().unwrap()).unwrap();
        (common::decode_rgb(&["-i", path.to_str().unwrap()]), etag)
    };
    let (plain, plain_etag) = thumbnail("frame=10");
    assert_eq!(drawn_pixels(&plain, 0, 0, WIDTH, HEIGHT), 0);
    let (drawn, drawn_etag) = thumbnail("frame=10&mode=debug");
    assert_face_box_on(&drawn);
    assert!(drawn_pixels(&drawn, 0, 0, 90, 60) > 500, "the panel");
    assert_ne!(plain_etag, drawn_etag);
    // The bbox stream's frame 10, drawn the same way (both encoded: compared by PSNR).
    let stream = s.stream("/video/bbox?mode=debug&audio=off");
    let psnr = common::psnr(&drawn, &ffmpeg_frame(&stream, 10, None));
    assert!(
        psnr > 35.0,
        "the thumbnail is the stream's frame: {psnr:.1} dB"
    );

    // Cropped with the picture: the crop's first row is the box's top edge.
    let response = s.get("/thumbnail?frame=10&mode=debug&x=100&y=200&w=240&h=180");
    assert_eq!(response.status(), 200);
    let path = s.dir.path().join("crop.jpg");
    std::fs::write(&path, response.bytes().unwrap()).unwrap();
    let crop = common::decode_rgb(&["-i", path.to_str().unwrap()]);
    let (r, g, b) = gstframecast::detection_color(None, "face");
    let at = (120 * 3) as usize;
    let off = [r, g, b]
        .iter()
        .zip(&crop[at..at + 3])
        .map(|(a, b)| (*a as i32 - *b as i32).abs())
        .max()
        .unwrap();
    assert!(off <= 48, "top edge in the crop: {:?}", &crop[at..at + 3]);

    let url = format!("/api/v1/file/{}/thumbnail?frame=10&mode=debug", s.uuid);
    let served = s.get("/thumbnail?frame=10&mode=debug").bytes().unwrap();
    let (line, written) = s
        .server
        .run_explained(&url, &s.dir.path().join("frame.jpg"));
    assert!(line.contains("detectionoverlay"), "{line}");
    assert!(written == served, "explain differs from HTTP: {line}");

    // New detections for the file: a new ETag, and the new drawing.
    let moved = s.dir.path().join("moved.jsonl");
    std::fs::write(
        &moved,
        r#"{"frame": 10, "x": 700, "y": 400, "w": 200, "h": 150, "label": "face"}"#,
    )
    .unwrap();
    let video = grey_mp4();
    let reimported = s.server.cli(&[
        "import",
        video.to_str().unwrap(),
        "--uuid",
        &s.uuid,
        "--detections",
        moved.to_str().unwrap(),
    ]);
    assert!(reimported.status.success());
    let (redrawn, redrawn_etag) = thumbnail("frame=10&mode=debug");
    assert_ne!(redrawn_etag, drawn_etag, "re-imported detections, new ETag");
    assert_eq!(
        drawn_pixels(&redrawn, 110, 210, 220, 160),
        0,
        "the old box is gone"
    );
    assert!(!is_grey(&redrawn, 700, 475), "the new box's left edge");
    assert_eq!(
        thumbnail("frame=10").1,
        plain_etag,
        "plain thumbnails keep theirs"
    );
}

/// Names in other scripts are drawn (Pango/cairo), not as question marks: a debug thumbnail
/// with "José Ramírez", "王伟" and "Дмитрий" differs from the same with "?" in the label
/// areas only. The image is kept as target/tmp/readme/thumbnail-labels.jpg (the README's
/// picture, docs/thumbnail-labels.jpg, is a copy of it).
#[test]
fn debug_thumbnails_draw_names_in_any_script() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start();
    let video = lavfi_h264(
        "streams-testsrc-720p.mp4",
        "testsrc2=size=1280x720:rate=25:duration=1",
        None,
        &["-preset", "veryfast"],
    );
    let thumbnail = |names: [&str; 3]| {
        let rows: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                format!(
                    r#"{{"frame": 5, "x": {}, "y": 300, "w": 260, "h": 300, "trace_id": {}, "identity": "{name}", "confidence": 0.93}}"#,
                    100 + 400 * i,
                    i + 1
                )
            })
            .collect();
        let path = dir.path().join("names.jsonl");
        std::fs::write(&path, rows.join("\n")).unwrap();
        let uuid = server.import(&video, Some(&path));
        let response = client()
            .get(server.url(&format!("/api/v1/file/{uuid}/thumbnail?frame=5&mode=debug")))
            .bearer_auth(server.token(&[&uuid]))
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        response.bytes().unwrap().to_vec()
    };
    let named = thumbnail(["José Ramírez", "王伟", "Дмитрий"]);
    let unknown = thumbnail(["Jos? Ram?rez", "??", "???????"]);
    let decode = |jpeg: &[u8]| {
        let path = dir.path().join("t.jpg");
        std::fs::write(&path, jpeg).unwrap();
        common::decode_rgb(&["-i", path.to_str().unwrap()])
    };
    let (a, b) = (decode(&named), decode(&unknown));
    let differs = |x0: usize, y0: usize, x1: usize, y1: usize| {
        (y0..y1)
            .flat_map(|y| (x0..x1).map(move |x| (x, y)))
            .filter(|&(x, y)| rgb(&a, x, y) != rgb(&b, x, y))
            .count()
    };
    for i in 0..3 {
        let x = 100 + 400 * i;
        assert!(
            differs(x, 250, x + 260, 300) > 100,
            "label {i} is drawn from its glyphs"
        );
    }
    assert_eq!(differs(0, 620, WIDTH, HEIGHT), 0, "nothing else differs");
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("readme");
    std::fs::create_dir_all(&keep).unwrap();
    std::fs::write(keep.join("thumbnail-labels.jpg"), &named).unwrap();
}

#[test]
fn explain_reproduces_the_streams_byte_for_byte() {
    let s = Streams::new();
    for path in [
        "/video/bbox?start=5&audio=off",
        "/trace/7/video?padding=0.2&mode=debug&audio=off",
    ] {
        let served = std::fs::read(s.stream(path)).unwrap();
        let url = format!("/api/v1/file/{}{path}", s.uuid);
        let (line, written) = s
            .server
            .run_explained(&url, &s.dir.path().join("explained.ts"));
        assert!(line.contains("detectionoverlay"), "{line}");
        assert!(
            written == served,
            "{path}: explain differs from HTTP: {line}"
        );
    }
}

/// `ffmpeg -f framemd5` of the video: one line per decoded frame.
fn frame_md5s(path: &Path) -> Vec<String> {
    let output = Command::new("ffmpeg")
        .args(["-v", "error", "-i", path.to_str().unwrap()])
        .args(["-map", "0:v:0", "-f", "framemd5", "-"])
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with('#'))
        // The hash, not the timestamps (MPEG-TS shifts them).
        .map(|line| line.rsplit(',').next().unwrap().trim().to_owned())
        .collect()
}

fn video_codec(path: &Path) -> String {
    ffprobe_values(path, "v:0", "stream=codec_name")
        .first()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn audio_off_copies_the_video_when_the_codec_allows() {
    let s = Streams::new();
    // H.264 from a keyframe: copied, so it decodes to the very same frames.
    let copied = s.stream("/video?audio=off");
    assert_eq!(audio_streams(&copied), 0);
    let original = frame_md5s(&grey_mp4());
    assert_eq!(original.len(), FRAMES as usize);
    assert_eq!(
        frame_md5s(&copied),
        original,
        "the video is copied, not re-encoded"
    );
    let url = format!("/api/v1/file/{}/video?audio=off", s.uuid);
    let (line, written) = s
        .server
        .run_explained(&url, &s.dir.path().join("explained.ts"));
    assert!(line.contains("parsebin"), "{line}");
    assert!(written == std::fs::read(&copied).unwrap(), "{line}");

    // VP9 does not go into MPEG-TS: re-encoded to H.264, every frame.
    let vp9 = common::vp9_webm();
    let uuid = s.server.import(&vp9, None);
    let token = s.server.token(&[&uuid]);
    let response = client()
        .get(
            s.server
                .url(&format!("/api/v1/file/{uuid}/video?audio=off")),
        )
        .bearer_auth(token)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let path = s.dir.path().join("vp9.ts");
    std::fs::write(&path, response.bytes().unwrap()).unwrap();
    assert_eq!(video_codec(&path), "h264");
    assert_eq!(frame_count(&path), frame_count(&vp9));

    // An MP4 cut with an edit list between keyframes starts with frames that need a hidden
    // keyframe: re-encoded, as many frames as a clip of the whole file.
    // Compared with ffmpeg's view of the file: every one of its frames, first and last
    // included.
    let video = common::edit_list_mp4();
    let cut = s.server.import(&video, None);
    let token = s.server.token(&[&cut]);
    let response = client()
        .get(s.server.url(&format!("/api/v1/file/{cut}/video?audio=off")))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let path = s.dir.path().join("cut.ts");
    std::fs::write(&path, response.bytes().unwrap()).unwrap();
    let frames = frame_count(&video);
    assert_eq!(frame_count(&path), frames);
    assert_eq!(video_codec(&path), "h264");
    for (ours, theirs) in [(0, 0), (frames - 1, frames - 1)] {
        // Re-encoded by x264 at quantizer 23: 30 dB, as clips.
        let got = ffmpeg_frame(&path, ours, None);
        let exact = common::psnr(&got, &ffmpeg_frame(&video, theirs, None));
        assert!(exact >= 30.0, "frame {theirs}: {exact:.1} dB");
        let neighbour = if theirs == 0 { 1 } else { theirs - 1 };
        let other = common::psnr(&got, &ffmpeg_frame(&video, neighbour, None));
        assert!(
            exact > other,
            "frame {theirs}: {exact:.1} dB, {neighbour}: {other:.1}"
        );
    }
}

/// format=mp4 on every re-encoded stream: the same frames, boxes and audio as MPEG-TS, in
/// fragmented MP4; explain writes the same bytes but for mp4mux's muxing time.
#[test]
fn mp4_streams_draw_the_same_frames() {
    let s = Streams::new();
    let bbox = s.stream("/video/bbox?format=mp4");
    assert_eq!(frame_count(&bbox), FRAMES);
    assert_eq!(audio_streams(&bbox), 1);
    assert_face_box_on(&ffmpeg_frame(&bbox, 10, None));
    // (mp4mux adds a `uuid` box of XMP metadata, which players skip.)
    let boxes = common::mp4_boxes(&std::fs::read(&bbox).unwrap());
    assert_eq!(
        boxes
            .iter()
            .filter(|b| *b != "uuid")
            .take(3)
            .collect::<Vec<_>>(),
        ["ftyp", "moov", "moof"],
        "{boxes:?}"
    );

    let trace = s.stream("/trace/7/video?padding=0.4&audio=off&format=mp4");
    assert_eq!(frame_count(&trace), 31);
    assert!(drawn_pixels(&ffmpeg_frame(&trace, 10, None), 596, 340, 4, 60) > 200);

    // /video with format=mp4 alone: the whole file re-encoded, with its audio.
    let whole = s.stream("/video?format=mp4");
    assert_eq!(frame_count(&whole), FRAMES);
    assert_eq!(audio_streams(&whole), 1);
    assert_eq!(
        frame_count(&s.stream("/video?format=mp4&start=70&audio=off")),
        5
    );

    let path = "/video/bbox?start=5&audio=off&format=mp4";
    let served = std::fs::read(s.stream(path)).unwrap();
    let url = format!("/api/v1/file/{}{path}", s.uuid);
    let (line, written) = s
        .server
        .run_explained(&url, &s.dir.path().join("explained.mp4"));
    assert!(line.contains("mp4mux"), "{line}");
    assert!(
        common::mp4_without_times(&written) == common::mp4_without_times(&served),
        "{path}: explain differs from HTTP: {line}"
    );
}
