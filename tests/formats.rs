//! Every container and codec framecast claims, through the server: each kind is generated
//! with ffmpeg, imported, and checked against ffmpeg's own view of it. The README's format
//! list is this matrix.
//!
//! Per kind: the frame count equals `ffprobe -count_frames`; thumbnails of the first, a
//! mid-GOP and the last frame are ffmpeg's `select=eq(n\,N)` decode of that frame (PSNR at
//! least [`THUMBNAIL_DB`] and [`MARGIN_DB`] above both neighbours'); a clip from the mid-GOP
//! frame to the last has exactly those frames, its first and last checked the same way
//! (against [`CLIP_DB`]: the clip is re-encoded). A missing ffmpeg encoder fails the test
//! with the Debian package that has it: nothing is skipped.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{client, decode_rgb, ffmpeg_frame, frame_count, generated, psnr, source, Server};

/// Thumbnails: the decoded frame as JPEG (quality 90, RGB) against ffmpeg's decode.
const THUMBNAIL_DB: f64 = 35.0;
/// Clip frames: decoded, re-encoded by x264 at quantizer 23 (pipelines/clip-video.gst), and
/// decoded again. The encoder alone costs 4-8 dB on this busy pattern at 320x240.
const CLIP_DB: f64 = 30.0;
/// How much closer to ffmpeg's frame N than to N-1 and N+1 a frame must be.
const MARGIN_DB: f64 = 10.0;
/// 2 s at 25 fps, a keyframe every 25 frames (12 for MPEG-2).
const SECONDS: &str = "2";

/// The Debian package that gives ffmpeg each encoder the matrix uses.
const ENCODERS: &[(&str, &str)] = &[
    ("libx264", "libx264-164"),
    ("libx265", "libx265-199"),
    ("libvpx", "libvpx7"),
    ("libvpx-vp9", "libvpx7"),
    ("libsvtav1", "libsvtav1enc1"),
    ("prores_ks", "libavcodec59"),
    ("mpeg2video", "libavcodec59"),
    ("mpeg4", "libavcodec59"),
    ("mjpeg", "libavcodec59"),
    ("aac", "libavcodec59"),
    ("libopus", "libopus0"),
    ("libvorbis", "libvorbis0a"),
    ("mp2", "libavcodec59"),
];

/// Fails naming the package when ffmpeg lacks an encoder the matrix needs.
fn require_encoders() {
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-encoders"])
        .output()
        .expect("ffmpeg is installed (Debian package ffmpeg)");
    let list = String::from_utf8_lossy(&output.stdout);
    let missing: Vec<String> = ENCODERS
        .iter()
        .filter(|(encoder, _)| {
            !list
                .lines()
                .any(|line| line.split_whitespace().nth(1) == Some(encoder))
        })
        .map(|(encoder, package)| format!("{encoder} (apt install {package})"))
        .collect();
    assert!(
        missing.is_empty(),
        "ffmpeg lacks encoders: {}",
        missing.join(", ")
    );
}

/// ffmpeg's conversion of a decoded frame to RGB for most kinds: its default.
const DEFAULT_RGB: &str = "format=rgb24";
/// For 10-bit 4:2:0: chroma repeated (as ffmpeg does by default for 8-bit 4:2:0, and
/// framecast for every format); ffmpeg's default for high bit depths interpolates the
/// chroma vertically instead (framecast's thumbnails measure about 33 dB against that).
const NEAREST_CHROMA_RGB: &str = "scale=flags=neighbor+full_chroma_int,format=rgb24";
/// For interlaced 4:2:0: chroma repeated within each field, as GStreamer keeps it; ffmpeg's
/// default treats the frame as progressive and mixes the fields' chroma (framecast's
/// thumbnails measure about 23 dB against that).
const FIELD_CHROMA_RGB: &str = "scale=interl=1:flags=neighbor+full_chroma_int,format=rgb24";

/// One kind of file: how ffmpeg makes it.
struct Kind {
    name: &'static str,
    file: &'static str,
    seconds: &'static str,
    /// ffmpeg's filter from a decoded frame to RGB24, the reference.
    rgb: &'static str,
    /// The reference for clip frames, when it differs: clips are 4:2:0 (H.264 yuv420p, as
    /// the README says), so a 4:2:2 source's frame is compared with ffmpeg's own 4:2:0
    /// conversion of it.
    clip_rgb: Option<&'static str>,
    /// Output options after the lavfi inputs (video source, then a sine when `audio`).
    args: Vec<String>,
    audio: bool,
    /// Stream-copied again from the made file with these options (an edit-list cut).
    recut: Option<Vec<&'static str>>,
}

fn kind(name: &'static str, file: &'static str, audio: bool, args: &str) -> Kind {
    Kind {
        name,
        file,
        args: args.split_whitespace().map(str::to_owned).collect(),
        audio,
        recut: None,
        seconds: SECONDS,
        rgb: DEFAULT_RGB,
        clip_rgb: None,
    }
}

fn kinds() -> Vec<Kind> {
    let h264 = "-c:v libx264 -preset veryfast -crf 18 -g 25 -bf 2 -pix_fmt yuv420p";
    let mpeg2 = "-c:v mpeg2video -q:v 2 -g 12 -bf 2";
    vec![
        // Cut 0.7 s into a GOP of a 4 s file: GStreamer 1.22's qtdemux alone shows 33 of
        // its 39 frames (see gstframecast::movie_duration).
        Kind {
            recut: Some(vec!["-ss", "1.7", "-c", "copy", "-t", "1.5"]),
            seconds: "4",
            ..kind(
                "MP4 H.264 + AAC, stream-copied cut (edit list mid-GOP)",
                "edit.mp4",
                true,
                &format!("{h264} -c:a aac"),
            )
        },
        kind(
            "MP4 fragmented H.264 + AAC",
            "frag.mp4",
            true,
            &format!("{h264} -c:a aac -movflags frag_keyframe+empty_moov"),
        ),
        Kind {
            rgb: NEAREST_CHROMA_RGB,
            ..kind(
                "MP4 H.264 10-bit",
                "h264-10bit.mp4",
                false,
                "-c:v libx264 -preset veryfast -crf 18 -g 25 -bf 2 -pix_fmt yuv420p10le",
            )
        },
        kind(
            "MP4 HEVC + AAC",
            "hevc.mp4",
            true,
            "-c:v libx265 -preset veryfast -crf 18 -g 25 -x265-params log-level=error \
             -tag:v hvc1 -c:a aac",
        ),
        Kind {
            clip_rgb: Some("format=yuv420p,format=rgb24"),
            ..kind(
                "MOV ProRes 4:2:2 10-bit",
                "prores.mov",
                false,
                "-c:v prores_ks -profile:v 2 -pix_fmt yuv422p10le",
            )
        },
        kind(
            "MKV H.264 + Vorbis",
            "audio.mkv",
            true,
            &format!("{h264} -c:a libvorbis"),
        ),
        kind("MKV H.264, no audio", "silent.mkv", false, h264),
        kind(
            "WebM VP8 + Vorbis",
            "vp8.webm",
            true,
            "-c:v libvpx -b:v 2M -deadline realtime -cpu-used 8 -g 25 -c:a libvorbis",
        ),
        kind(
            "WebM VP9 + Opus",
            "vp9.webm",
            true,
            "-c:v libvpx-vp9 -b:v 2M -deadline realtime -cpu-used 8 -g 25 -c:a libopus",
        ),
        kind(
            "WebM AV1 + Opus",
            "av1.webm",
            true,
            "-c:v libsvtav1 -preset 12 -crf 20 -g 25 -c:a libopus",
        ),
        kind(
            "MPEG-TS H.264 + AAC, starting at 10 s",
            "offset.ts",
            true,
            &format!("{h264} -c:a aac -output_ts_offset 10"),
        ),
        kind("MPEG-TS MPEG-2, open GOPs", "open-gop.ts", false, mpeg2),
        Kind {
            rgb: FIELD_CHROMA_RGB,
            ..kind(
                "MPEG-TS MPEG-2 interlaced (top field first) + MP2",
                "interlaced.ts",
                true,
                &format!("{mpeg2} -flags +ilme+ildct -top 1 -c:a mp2"),
            )
        },
        kind(
            "MPEG-PS MPEG-2 + MP2",
            "program.mpg",
            true,
            &format!("{mpeg2} -c:a mp2 -f vob"),
        ),
        kind(
            "AVI MJPEG",
            "mjpeg.avi",
            false,
            "-c:v mjpeg -q:v 2 -pix_fmt yuvj420p",
        ),
        kind(
            "AVI MPEG-4 part 2",
            "mpeg4.avi",
            false,
            "-c:v mpeg4 -q:v 2 -g 25 -vtag xvid",
        ),
    ]
}

impl Kind {
    fn make(&self) -> PathBuf {
        let video = source("320x240", "25", self.seconds);
        let mut args: Vec<&str> = vec!["-f", "lavfi", "-i", &video];
        let sine = format!("sine=frequency=440:duration={}", self.seconds);
        if self.audio {
            args.extend(["-f", "lavfi", "-i", &sine, "-shortest"]);
        }
        args.extend(self.args.iter().map(String::as_str));
        let made = generated(&format!("formats-{}", self.file), &args);
        match &self.recut {
            None => made,
            Some(options) => {
                let mut args = vec![options[0], options[1], "-i", made.to_str().unwrap()];
                args.extend(&options[2..]);
                generated(&format!("formats-cut-{}", self.file), &args)
            }
        }
    }
}

struct Matrix {
    server: Server,
    token: String,
    dir: tempfile::TempDir,
}

impl Matrix {
    fn body(&self, path: &str, name: &str) -> PathBuf {
        let response = client()
            .get(self.server.url(path))
            .bearer_auth(&self.token)
            .send()
            .unwrap();
        assert_eq!(response.status(), 200, "{path}: {:?}", response.text());
        let file = self.dir.path().join(name);
        std::fs::write(&file, response.bytes().unwrap()).unwrap();
        file
    }
}

/// ffmpeg's frame `n` of `video` (`select=eq(n\,N)`), converted to RGB24 by `rgb`.
fn reference(video: &Path, n: u32, rgb: &str) -> Vec<u8> {
    decode_rgb(&[
        "-i",
        video.to_str().unwrap(),
        "-vf",
        &format!("select=eq(n\\,{n}),{rgb}"),
        "-fps_mode",
        "passthrough",
        "-frames:v",
        "1",
    ])
}

/// PSNR of `ours` against ffmpeg's frame `n` of `video`, and the best against its
/// neighbours.
fn compare(ours: &[u8], video: &Path, n: u32, count: u32, rgb: &str) -> (f64, f64) {
    let exact = psnr(ours, &reference(video, n, rgb));
    let neighbours = [n.checked_sub(1), Some(n + 1).filter(|&m| m < count)]
        .into_iter()
        .flatten()
        .map(|m| psnr(ours, &reference(video, m, rgb)))
        .fold(f64::NEG_INFINITY, f64::max);
    (exact, neighbours)
}

/// What one kind measured, for the summary line.
struct Measured {
    frames: (u32, u32),
    thumbnails: Vec<f64>,
    clip: Vec<f64>,
}

fn check(m: &Matrix, kind: &Kind) -> Result<Measured, String> {
    let video = kind.make();
    let uuid = m.server.import(&video, None);
    let count = frame_count(&video);
    // The server's count, through its validation message for the first frame past the end.
    let response = client()
        .get(
            m.server
                .url(&format!("/api/v1/file/{uuid}/thumbnail?frame={count}")),
        )
        .bearer_auth(&m.token)
        .send()
        .unwrap();
    let message = response.text().unwrap();
    let ours = message
        .split("from 0 to ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|last| last.parse::<u32>().ok())
        .map(|last| last + 1);
    let mut failures = Vec::new();
    if ours != Some(count) {
        failures.push(format!("frames: ours {ours:?}, ffprobe {count}: {message}"));
    }
    let (first, mid, last) = (0, 30.min(count - 1), count - 1);
    let mut thumbnails = Vec::new();
    for n in [first, mid, last] {
        let jpeg = m.body(
            &format!("/api/v1/file/{uuid}/thumbnail?frame={n}"),
            &format!("{}-{n}.jpg", kind.file),
        );
        let (exact, other) = compare(&ffmpeg_frame(&jpeg, 0, None), &video, n, count, kind.rgb);
        thumbnails.push(exact);
        if exact < THUMBNAIL_DB || exact < other + MARGIN_DB {
            failures.push(format!(
                "thumbnail {n}: {exact:.1} dB, neighbours {other:.1} dB"
            ));
        }
    }
    let clip = m.body(
        &format!("/api/v1/file/{uuid}/clip?start_frame={mid}&end_frame={last}"),
        &format!("{}-clip.ts", kind.file),
    );
    let clip_frames = frame_count(&clip);
    if clip_frames != last - mid + 1 {
        failures.push(format!(
            "clip {mid}-{last}: {clip_frames} frames, {} expected",
            last - mid + 1
        ));
    }
    let mut clip_db = Vec::new();
    for (ours, theirs) in [(0, mid), (clip_frames.saturating_sub(1), last)] {
        // The clip's frame decoded by ffmpeg with the same conversion (an interlaced
        // source gives an interlaced clip).
        let (exact, other) = compare(
            &reference(&clip, ours, kind.rgb),
            &video,
            theirs,
            count,
            kind.clip_rgb.unwrap_or(kind.rgb),
        );
        clip_db.push(exact);
        if exact < CLIP_DB || exact < other + MARGIN_DB {
            failures.push(format!(
                "clip frame {theirs}: {exact:.1} dB, neighbours {other:.1} dB"
            ));
        }
    }
    let measured = Measured {
        frames: (ours.unwrap_or(0), count),
        thumbnails,
        clip: clip_db,
    };
    if failures.is_empty() {
        Ok(measured)
    } else {
        Err(failures.join("; "))
    }
}

#[test]
fn every_format_matches_ffmpeg() {
    require_encoders();
    let server = Server::start();
    let token = server.all_files_token();
    let m = Matrix {
        server,
        token,
        dir: tempfile::tempdir().unwrap(),
    };
    let mut failed = Vec::new();
    for kind in kinds() {
        match check(&m, &kind) {
            Ok(measured) => {
                let db = |values: &[f64]| {
                    values
                        .iter()
                        .map(|v| format!("{v:.1}"))
                        .collect::<Vec<_>>()
                        .join("/")
                };
                eprintln!(
                    "{}: frames {}/{} (ours/ffprobe), thumbnails {} dB, clip {} dB",
                    kind.name,
                    measured.frames.0,
                    measured.frames.1,
                    db(&measured.thumbnails),
                    db(&measured.clip)
                );
            }
            Err(why) => {
                eprintln!("{}: FAILED: {why}", kind.name);
                failed.push(format!("{}: {why}", kind.name));
            }
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
