//! Sideways video (a phone's MP4 with a display rotation): thumbnails, crops, clips and
//! drawn detections come out upright as players (and ffmpeg's CLI, which turns the picture
//! by the same matrix) show them, and the file's size is the upright one.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::{
    assert_json_error, decode_rgb, ffmpeg_frame, frame_count, generated, lavfi_h264, psnr, source,
    Session,
};

/// 320x240 landscape with motion, 2 s at 25 fps.
fn landscape() -> PathBuf {
    lavfi_h264(
        "rotation-source.mp4",
        &source("320x240", "25", "2"),
        None,
        &["-preset", "veryfast", "-g", "25", "-bf", "2"],
    )
}

/// [`landscape`], stream-copied with a display rotation of
/// `degrees` (the `rotate` tag ffmpeg turns into the track matrix; ffprobe then shows the
/// side data `rotation`, ffmpeg's decode turns the picture by it).
fn rotated_mp4(degrees: u32) -> PathBuf {
    let landscape = landscape();
    generated(
        &format!("rotation-{degrees}.mp4"),
        &[
            "-i",
            landscape.to_str().unwrap(),
            "-c",
            "copy",
            "-metadata:s:v",
            &format!("rotate={degrees}"),
        ],
    )
}

/// The same landscape video in Matroska, turned by `degrees` with the track's
/// `ProjectionPoseRoll` (mkvpropedit: ffmpeg 5.1 writes no rotation into Matroska; it reads
/// this one and shows the picture turned).
fn rolled_mkv(degrees: u32) -> PathBuf {
    let landscape = landscape();
    let remuxed = generated(
        "rotation-remux.mkv",
        &["-i", landscape.to_str().unwrap(), "-c", "copy"],
    );
    let path = common::media_dir().join(format!("rolled-{degrees}-{}.mkv", std::process::id()));
    std::fs::copy(&remuxed, &path).unwrap();
    let roll = format!("projection-pose-roll={degrees}");
    let status = std::process::Command::new("mkvpropedit")
        .args(["-q", path.to_str().unwrap(), "--edit", "track:v1"])
        .args(["--set", "projection-type=0", "--set", &roll])
        .status()
        .expect("mkvpropedit runs (Debian package mkvtoolnix)");
    assert!(status.success());
    path
}

/// The size ffprobe gives a picture file.
fn size_of(path: &Path) -> (u32, u32) {
    let values = common::ffprobe_values(path, "v:0", "stream=width,height");
    let (w, h) = values[0].split_once(',').expect("width,height");
    (w.parse().unwrap(), h.parse().unwrap())
}

/// A JPEG or frame of a stream, as RGB24.
fn rgb(path: &Path, n: u32) -> Vec<u8> {
    ffmpeg_frame(path, n, None)
}

/// The least PSNR of a thumbnail against ffmpeg's decode (decoded, turned, JPEG at 90).
const THUMBNAIL_DB: f64 = 35.0;
/// The least PSNR of a frame of a clip or stream: re-encoded by x264 at quantizer 23
/// (pipelines/clip-video.gst), which alone costs 4-8 dB on this busy test pattern.
const REENCODED_DB: f64 = 30.0;

/// Asserts `ours` is ffmpeg's (upright) frame `n` of `video` (cropped to `crop`): PSNR at
/// least `min_db` and at least 10 dB above the neighbouring frames'.
fn assert_is_frame(
    ours: &[u8],
    video: &Path,
    n: u32,
    crop: Option<(u32, u32, u32, u32)>,
    min_db: f64,
) {
    let exact = psnr(ours, &ffmpeg_frame(video, n, crop));
    assert!(exact >= min_db, "{video:?} frame {n}: {exact:.1} dB");
    let count = frame_count(video);
    for neighbour in [n.checked_sub(1), Some(n + 1).filter(|&m| m < count)]
        .into_iter()
        .flatten()
    {
        let other = psnr(ours, &ffmpeg_frame(video, neighbour, crop));
        assert!(
            exact >= other + 10.0,
            "{video:?} frame {n}: {exact:.1} dB, frame {neighbour} {other:.1} dB"
        );
    }
}

#[test]
fn thumbnails_crops_and_clips_are_upright() {
    let r = Session::start();
    for degrees in [90, 180, 270] {
        let video = rotated_mp4(degrees);
        let uuid = r.server.import(&video, None);
        let upright = if degrees == 180 {
            (320, 240)
        } else {
            (240, 320)
        };
        // ffmpeg's own decode is upright.
        assert_eq!(
            ffmpeg_frame(&video, 0, None).len() as u32,
            upright.0 * upright.1 * 3
        );

        let thumbnail = |query: &str, name: &str| {
            r.save(
                &format!("/api/v1/file/{uuid}/thumbnail?{query}"),
                &format!("{degrees}-{name}.jpg"),
            )
        };
        let jpeg = thumbnail("frame=10", "full");
        assert_eq!(size_of(&jpeg), upright, "{degrees}°");
        assert_is_frame(&rgb(&jpeg, 0), &video, 10, None, THUMBNAIL_DB);
        let jpeg = thumbnail("frame=31", "full31");
        assert_is_frame(&rgb(&jpeg, 0), &video, 31, None, THUMBNAIL_DB);

        // A crop in the upright picture's pixels (odd, and taller than a landscape frame
        // when the picture is portrait), with the moving bar in it.
        let (x, y, w, h) = (3, 5, upright.0 - 7, upright.1 - 9);
        let jpeg = thumbnail(&format!("frame=10&x={x}&y={y}&w={w}&h={h}"), "crop");
        assert_eq!(size_of(&jpeg), (w, h));
        assert_is_frame(&rgb(&jpeg, 0), &video, 10, Some((x, y, w, h)), THUMBNAIL_DB);
        // The bounds are the upright picture's.
        let message = assert_json_error(
            r.get(&format!(
                "/api/v1/file/{uuid}/thumbnail?frame=1&x=1&y=0&w={}&h=1",
                upright.0
            )),
            400,
            "bad_parameter",
        );
        assert!(
            message.contains(&format!("{}x{}", upright.0, upright.1)),
            "{message}"
        );

        let clip = r.save(
            &format!("/api/v1/file/{uuid}/clip?start_frame=5&end_frame=20&audio=off"),
            &format!("{degrees}-clip.ts"),
        );
        assert_eq!(frame_count(&clip), 16);
        assert_eq!(size_of(&clip), upright);
        assert_is_frame(&rgb(&clip, 0), &video, 5, None, REENCODED_DB);
        assert_is_frame(&rgb(&clip, 15), &video, 20, None, REENCODED_DB);

        // The video without audio cannot be copied (MPEG-TS has no rotation): re-encoded
        // upright, every frame.
        let whole = r.save(
            &format!("/api/v1/file/{uuid}/video?audio=off"),
            &format!("{degrees}-video.ts"),
        );
        assert_eq!(frame_count(&whole), frame_count(&video));
        assert_eq!(size_of(&whole), upright);
        assert_is_frame(&rgb(&whole, 42), &video, 42, None, REENCODED_DB);
    }
}

/// GStreamer 1.22 does not report Matroska's rotation; the import reads it.
#[test]
fn matroska_rolls_are_upright() {
    let r = Session::start();
    for (degrees, upright) in [(90, (240, 320)), (180, (320, 240)), (270, (240, 320))] {
        let video = rolled_mkv(degrees);
        assert_eq!(
            ffmpeg_frame(&video, 0, None).len() as u32,
            upright.0 * upright.1 * 3,
            "ffmpeg's decode is upright"
        );
        let uuid = r.server.import(&video, None);
        let jpeg = r.save(
            &format!("/api/v1/file/{uuid}/thumbnail?frame=12"),
            &format!("roll-{degrees}.jpg"),
        );
        assert_eq!(size_of(&jpeg), upright, "{degrees}°");
        assert_is_frame(&rgb(&jpeg, 0), &video, 12, None, THUMBNAIL_DB);
        std::fs::remove_file(&video).unwrap();
    }
}

#[test]
fn explain_reproduces_an_upright_thumbnail() {
    let r = Session::start();
    let video = rotated_mp4(90);
    let uuid = r.server.import(&video, None);
    let url = format!("/api/v1/file/{uuid}/thumbnail?frame=7&x=16&y=224&w=96&h=64&width=48");
    let served = std::fs::read(r.save(&url, "served.jpg")).unwrap();
    let (line, written) = r
        .server
        .run_explained(&url, &r.dir.path().join("explained.jpg"));
    assert!(line.contains("video-direction=90l"), "{line}");
    assert!(written == served, "{line}: other bytes");
}

/// Flat grey, turned: drawn pixels stand out.
fn grey_rotated_mp4() -> PathBuf {
    let landscape = lavfi_h264(
        "rotation-grey-source.mp4",
        "color=c=0x808080:size=320x240:rate=25:duration=1",
        None,
        &["-preset", "veryfast"],
    );
    generated(
        "rotation-grey-90.mp4",
        &[
            "-i",
            landscape.to_str().unwrap(),
            "-c",
            "copy",
            "-metadata:s:v",
            "rotate=90",
        ],
    )
}

#[test]
fn detection_boxes_are_in_upright_pixels() {
    let r = Session::start();
    // In the upright 240x320 picture: below row 240, where a landscape frame has none.
    let detections = r.dir.path().join("detections.jsonl");
    std::fs::File::create(&detections)
        .unwrap()
        .write_all(br#"{"frame": 5, "x": 60, "y": 250, "w": 120, "h": 60, "label": "face"}"#)
        .unwrap();
    let uuid = r.server.import(&grey_rotated_mp4(), Some(&detections));
    let stream = r.save(
        &format!("/api/v1/file/{uuid}/video/bbox?audio=off"),
        "bbox.ts",
    );
    assert_eq!(size_of(&stream), (240, 320));
    let frame = decode_rgb(&[
        "-i",
        stream.to_str().unwrap(),
        "-vf",
        "select=eq(n\\,5)",
        "-frames:v",
        "1",
    ]);
    let drawn = |x: usize, y: usize| {
        let at = (y * 240 + x) * 3;
        frame[at..at + 3]
            .iter()
            .any(|&c| (c as i32 - 128).abs() > 24)
    };
    // The box's left and bottom edges, its interior untouched, and grey away from it.
    assert!(drawn(60, 280), "left edge");
    assert!(drawn(120, 309), "bottom edge");
    assert!(!drawn(120, 280), "interior");
    assert!(!drawn(200, 100), "elsewhere");
}
