//! Smart-cut clips (issue 15): `/clip` on H.264 re-encodes the partial GOPs at the edges and
//! copies the whole GOPs between, frame-exact. Checked against ffmpeg and ffprobe on
//! generated files (GOPs of 25, 50 and 250, B-frames with b-pyramid, an open GOP, 29.97 fps,
//! with and without AAC), through the real server and `framecast explain`. HEVC is
//! re-encoded (the clip stays H.264).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{
    assert_json_error, client, decode_rgb, ffmpeg_frame, ffprobe_values, frame_count, generated,
    lavfi_h264, psnr, Session,
};

/// x264 settings of the sources: B-frames with b-pyramid, a fixed GOP of `gop` frames
/// (closed, IDR pictures only, unless `open`).
fn x264(gop: &str, open: bool) -> Vec<String> {
    let mut params = "b-pyramid=normal".to_owned();
    if open {
        params.push_str(":open-gop=1");
    }
    [
        "-preset",
        "veryfast",
        "-bf",
        "3",
        "-b_strategy",
        "0",
        "-g",
        gop,
        "-keyint_min",
        gop,
        "-sc_threshold",
        "0",
        "-x264-params",
        &params,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The sources' pictures. testsrc2 softened: its sharp patterns re-encode (x264 at
/// quantizer 23, as pipelines/clip-video.gst says) to 33-34 dB, under the 35 dB the edges are
/// held to; a wide bar moving 14 pixels a frame keeps neighbouring frames more than 10 dB
/// apart.
fn pictures(rate: &str, seconds: &str) -> String {
    format!(
        "testsrc2=size=320x240:rate={rate}:duration={seconds},gblur=sigma=3,\
         drawbox=x='mod(t*350\\,288)':y=0:w=32:h=ih:color=white:t=fill"
    )
}

fn media(name: &str, rate: &str, seconds: &str, gop: &str, open: bool, audio: bool) -> PathBuf {
    let audio_source = format!("sine=frequency=440:duration={seconds}");
    let extra = x264(gop, open);
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    lavfi_h264(
        name,
        &pictures(rate, seconds),
        audio.then_some(audio_source.as_str()),
        &extra,
    )
}

/// A session that asks for clips.
struct Smart(Session);

impl std::ops::Deref for Smart {
    type Target = Session;

    fn deref(&self) -> &Session {
        &self.0
    }
}

impl Smart {
    fn new() -> Self {
        Smart(Session::start())
    }

    fn path(uuid: &str, query: &str) -> String {
        format!("/api/v1/file/{uuid}/clip?{query}")
    }

    /// `X-Framecast-Cut` of a HEAD.
    fn head_cut(&self, uuid: &str, query: &str) -> String {
        let url = self.server.url(&Self::path(uuid, query));
        let head = client().head(&url).bearer_auth(&self.token).send().unwrap();
        assert_eq!(head.status(), 200, "HEAD {query}");
        head.headers()["x-framecast-cut"]
            .to_str()
            .unwrap()
            .to_owned()
    }

    /// The clip saved to a file, and its `X-Framecast-Cut`, which a HEAD must give too.
    fn clip(&self, uuid: &str, query: &str) -> (PathBuf, String) {
        let url = self.server.url(&Self::path(uuid, query));
        let head = client().head(&url).bearer_auth(&self.token).send().unwrap();
        assert_eq!(head.status(), 200, "HEAD {query}");
        let response = client().get(&url).bearer_auth(&self.token).send().unwrap();
        assert_eq!(response.status(), 200, "{query}");
        let cut = response.headers()["x-framecast-cut"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(head.headers()["x-framecast-cut"], cut.as_str(), "{query}");
        let path = self
            .dir
            .path()
            .join(format!("{uuid}-{}.ts", query.replace(['&', '='], "_")));
        std::fs::write(&path, response.bytes().unwrap()).unwrap();
        (path, cut)
    }

    /// Frames `first..=last` of `video` as a clip cut as `expected_cut`, checked throughout;
    /// with `copied = Some((k1, k2))`, frames `k1..k2` must decode exactly as the source's.
    #[allow(clippy::too_many_arguments)]
    fn check(
        &self,
        video: &Path,
        uuid: &str,
        (first, last): (u32, u32),
        extra: &str,
        expected_cut: &str,
        copied: Option<(u32, u32)>,
        audio: bool,
    ) -> PathBuf {
        let query = format!("start_frame={first}&end_frame={last}{extra}");
        let (clip, cut) = self.clip(uuid, &query);
        assert_eq!(cut, expected_cut, "{video:?} {query}");
        let what = format!("{video:?} {query}");

        // Decodes without a word from ffmpeg.
        let output = Command::new("ffmpeg")
            .args(["-hide_banner", "-v", "error", "-i"])
            .arg(&clip)
            .args(["-f", "null", "-"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{what}");
        assert!(
            output.stderr.is_empty(),
            "{what}: ffmpeg says {}",
            String::from_utf8_lossy(&output.stderr)
        );

        // (ffprobe lists the stream under the TS program too.)
        let codecs = ffprobe_values(&clip, "v", "stream=codec_name");
        assert!(codecs.iter().all(|c| c == "h264"), "{what}: {codecs:?}");
        let frames = last - first + 1;
        assert_eq!(frame_count(&clip), frames, "{what}");

        // First and last frames are the ones asked for.
        let count = frame_count(video);
        for (ours, theirs) in [(0, first), (last - first, last)] {
            let got = ffmpeg_frame(&clip, ours, None);
            let exact = psnr(&got, &ffmpeg_frame(video, theirs, None));
            assert!(exact >= 35.0, "{what}: frame {theirs} at {exact:.1} dB");
            for neighbour in [theirs.checked_sub(1), Some(theirs + 1)]
                .into_iter()
                .flatten()
                .filter(|&n| n < count)
            {
                let other = psnr(&got, &ffmpeg_frame(video, neighbour, None));
                assert!(
                    exact >= other + 10.0,
                    "{what}: frame {theirs} {exact:.1} dB, its neighbour {neighbour} {other:.1} dB"
                );
            }
        }

        // Copied frames decode to the source's very pixels.
        if let Some((k1, k2)) = copied {
            let ours = decode_rgb(&["-i", clip.to_str().unwrap(), "-fps_mode", "passthrough"]);
            let select = format!("select=between(n\\,{first}\\,{last})");
            let theirs = decode_rgb(&[
                "-i",
                video.to_str().unwrap(),
                "-vf",
                &select,
                "-fps_mode",
                "passthrough",
            ]);
            assert_eq!(ours.len(), theirs.len(), "{what}");
            let size = ours.len() / frames as usize;
            let same: Vec<bool> = ours
                .chunks(size)
                .zip(theirs.chunks(size))
                .map(|(a, b)| a == b)
                .collect();
            for n in k1..k2 {
                assert!(
                    same[(n - first) as usize],
                    "{what}: copied frame {n} differs"
                );
            }
            // The edges were re-encoded (x264 at CRF 23 is not lossless).
            if first < k1 {
                assert!(!same[0], "{what}: frame {first} was not re-encoded");
            }
        }

        // Decoding times strictly increase, across the seams too.
        let dts: Vec<i64> = ffprobe_values(&clip, "v:0", "packet=dts")
            .iter()
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(dts.len(), frames as usize, "{what}");
        for pair in dts.windows(2) {
            assert!(
                pair[1] > pair[0],
                "{what}: DTS {} then {}",
                pair[0],
                pair[1]
            );
        }

        // The audio lasts as long as the video, within an AAC frame.
        let duration = |select: &str| -> f64 {
            ffprobe_values(&clip, select, "stream=duration")[0]
                .parse()
                .unwrap()
        };
        let audio_streams = ffprobe_values(&clip, "a", "stream=codec_name");
        if audio {
            assert_eq!(audio_streams.first().map(String::as_str), Some("aac"));
            let rate: f64 = ffprobe_values(&clip, "a:0", "stream=sample_rate")[0]
                .parse()
                .unwrap();
            let excess = duration("a:0") - duration("v:0");
            assert!(
                excess.abs() <= 1024.0 / rate + 1e-6,
                "{what}: audio {excess:.4} s longer than the video"
            );
        } else {
            assert!(audio_streams.is_empty(), "{what}: {audio_streams:?}");
        }

        // GStreamer plays it.
        let played = Command::new("gst-launch-1.0")
            .arg("playbin")
            .arg(format!("uri=file://{}", clip.display()))
            .args(["video-sink=fakesink", "audio-sink=fakesink"])
            .output()
            .unwrap();
        let said =
            String::from_utf8_lossy(&played.stdout) + String::from_utf8_lossy(&played.stderr);
        assert!(
            played.status.success() && !said.contains("ERROR"),
            "{what}: playbin: {said}"
        );
        clip
    }
}

#[test]
fn smart_cuts_are_frame_exact_and_copy_whole_gops() {
    let s = Smart::new();

    // GOP 25, B-frames with b-pyramid, AAC: the head and tail re-encoded, 25..125 copied.
    let gop25 = media("smart-gop25.mp4", "25", "8", "25", false, true);
    let uuid = s.server.import(&gop25, None);
    s.check(&gop25, &uuid, (10, 139), "", "smart", Some((25, 125)), true);
    // Starting and ending on IDR pictures: nothing before the copy, a one-frame tail.
    s.check(&gop25, &uuid, (50, 100), "", "smart", Some((50, 100)), true);
    s.check(
        &gop25,
        &uuid,
        (10, 139),
        "&audio=off",
        "smart",
        Some((25, 125)),
        false,
    );
    // Asked to re-encode, or something drawn, or MP4 out: re-encoded.
    s.check(
        &gop25,
        &uuid,
        (10, 139),
        "&cut=reencode",
        "reencode",
        None,
        true,
    );
    for drawn_or_mp4 in ["&mode=debug", "&format=mp4"] {
        let query = format!("start_frame=10&end_frame=139{drawn_or_mp4}");
        assert_eq!(s.head_cut(&uuid, &query), "reencode", "{query}");
    }
    // Within one GOP there is nothing to copy.
    s.check(&gop25, &uuid, (26, 49), "", "reencode", None, true);

    // GOP 50 without audio.
    let gop50 = media("smart-gop50.mp4", "25", "8", "50", false, false);
    let uuid = s.server.import(&gop50, None);
    s.check(
        &gop50,
        &uuid,
        (30, 170),
        "",
        "smart",
        Some((50, 150)),
        false,
    );

    // GOP 250: from frame 0 (an IDR) with nothing before the copy.
    let gop250 = media("smart-gop250.mp4", "25", "12", "250", false, true);
    let uuid = s.server.import(&gop250, None);
    s.check(&gop250, &uuid, (0, 270), "", "smart", Some((0, 250)), true);
    // No IDR strictly inside: re-encoded.
    s.check(&gop250, &uuid, (5, 240), "", "reencode", None, true);

    // 29.97 fps, GOP 30.
    let ntsc = media("smart-ntsc.mp4", "30000/1001", "6", "30", false, true);
    let uuid = s.server.import(&ntsc, None);
    s.check(&ntsc, &uuid, (7, 100), "", "smart", Some((30, 90)), true);
}

#[test]
fn open_gops_are_never_copied_across_their_i_frames() {
    let s = Smart::new();
    // Only frame 0 is an IDR picture; the index's other keyframes are open-GOP I-frames.
    let open = media("smart-open-gop.mp4", "25", "6", "25", true, true);
    let uuid = s.server.import(&open, None);
    s.check(&open, &uuid, (10, 120), "", "reencode", None, true);
    s.check(&open, &uuid, (0, 120), "", "reencode", None, true);
}

/// Copying HEVC GOPs would make the clip HEVC, where `/clip` promises H.264.
#[test]
fn hevc_is_reencoded() {
    let s = Smart::new();
    let video = pictures("25", "6");
    let hevc = generated(
        "smart-hevc.mp4",
        &[
            "-f",
            "lavfi",
            "-i",
            &video,
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=6",
            "-shortest",
            "-c:a",
            "aac",
            "-c:v",
            "libx265",
            "-preset",
            "veryfast",
            "-crf",
            "18",
            "-pix_fmt",
            "yuv420p",
            "-x265-params",
            "keyint=25:min-keyint=25:open-gop=0:log-level=error",
        ],
    );
    let uuid = s.server.import(&hevc, None);
    s.check(&hevc, &uuid, (10, 120), "", "reencode", None, true);
}

#[test]
fn cut_is_checked_and_explain_reproduces_a_smart_cut() {
    let s = Smart::new();
    let video = media("smart-gop25.mp4", "25", "8", "25", false, true);
    let uuid = s.server.import(&video, None);

    let response = client()
        .get(
            s.server
                .url(&Smart::path(&uuid, "start_frame=0&end_frame=9&cut=fast")),
        )
        .bearer_auth(&s.token)
        .send()
        .unwrap();
    let message = assert_json_error(response, 400, "bad_parameter");
    assert!(message.contains("smart, reencode"), "{message}");

    for query in [
        "start_frame=10&end_frame=139",
        "start_frame=10&end_frame=139&audio=off",
    ] {
        let (served, cut) = s.clip(&uuid, query);
        assert_eq!(cut, "smart");
        let served = std::fs::read(served).unwrap();
        let output = s.dir.path().join("explained.ts");
        let (line, written) = s.server.run_explained(&Smart::path(&uuid, query), &output);
        assert!(line.contains("smartcut"), "{line}");
        assert!(written == served, "{line}: not the served bytes");
    }
}
