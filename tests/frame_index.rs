//! `probe` against ffprobe on media generated with the ffmpeg CLI, and seeks to indexed
//! timestamps landing on the indexed frame.

use std::path::{Path, PathBuf};
use std::process::Command;

use framecast::media::{probe, FrameIndex, MediaInfo, ProbeError, SEEK_MARGIN_NS};
use gst::prelude::*;
use tempfile::TempDir;

/// Tolerance when comparing our timestamps with ffprobe's decimal seconds.
const TOLERANCE_NS: i64 = 1_000_000;

/// Generates `name` in `dir` with `ffmpeg -y <args> name`, `args` split at whitespace.
fn ffmpeg(dir: &TempDir, name: &str, args: &str) -> PathBuf {
    let out = dir.path().join(name);
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(args.split_whitespace())
        .arg(&out)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success(), "ffmpeg {args} {name} failed");
    out
}

/// Like [`ffmpeg`], with a 320x240 test pattern at `rate` fps for `seconds` as first input.
///
/// Each frame carries a mark of its number: the top-left 64x64 block is flat, with luma
/// `N * 121 % 256` for source frame N, which differs by at least 14 between frames up to 15
/// apart.
fn ffmpeg_video(dir: &TempDir, name: &str, rate: &str, seconds: &str, args: &str) -> PathBuf {
    let mark = "geq=lum='if(lt(X,64)*lt(Y,64),mod(N*121,256),lum(X,Y))':cb='cb(X,Y)':cr='cr(X,Y)'";
    let input = format!(
        "-f lavfi -i testsrc2=size=320x240:rate={rate}:duration={seconds},format=yuv420p,{mark}"
    );
    ffmpeg(dir, name, &format!("{input} {args}"))
}

/// Mean luma inside the mark of each frame ffmpeg decodes, in presentation order: the
/// identity of ffmpeg's frame N.
fn ffmpeg_marks(dir: &TempDir, path: &Path) -> Vec<f64> {
    let out = dir.path().join("marks.txt");
    let filter = format!(
        "crop=32:32:16:16,signalstats,metadata=print:key=lavfi.signalstats.YAVG:file={}",
        out.display()
    );
    let input = path.to_str().unwrap();
    // The null muxer writes nothing: only the metadata file matters.
    ffmpeg(
        dir,
        "null",
        &format!("-i {input} -map 0:v:0 -vf {filter} -f null"),
    );
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .filter_map(|line| line.strip_prefix("lavfi.signalstats.YAVG="))
        .map(|luma| luma.parse().unwrap())
        .collect()
}

/// A decoded frame as ffprobe reports it.
#[derive(Debug)]
struct ProbedFrame {
    time_ns: i64,
    key: bool,
}

/// ffprobe's decoded video frames in presentation order.
fn ffprobe_frames(path: &Path) -> Vec<ProbedFrame> {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["frame=pts_time,best_effort_timestamp_time,key_frame"])
        .args(["-of", "compact=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(output.status.success(), "ffprobe {}", path.display());
    let text = String::from_utf8(output.stdout).expect("ffprobe prints UTF-8");
    text.lines()
        // Frames with side data are followed by an empty section line.
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let field = |name: &str| {
                line.split('|')
                    .filter_map(|kv| kv.split_once('='))
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v)
                    .filter(|v| *v != "N/A")
            };
            let seconds: f64 = field("pts_time")
                .or_else(|| field("best_effort_timestamp_time"))
                .unwrap_or_else(|| panic!("frame without time: {line}"))
                .parse()
                .expect("a decimal time");
            ProbedFrame {
                time_ns: (seconds * 1e9).round() as i64,
                key: field("key_frame") == Some("1"),
            }
        })
        .collect()
}

/// Asserts that the indexed frames are `expected`: as many, the same times relative to the
/// first frame (ffprobe's include the container's start offset, ours are stream times) and
/// the same keyframes.
fn assert_frames_match(index: &FrameIndex, expected: &[ProbedFrame], path: &Path) {
    assert!(!index.is_empty(), "{}: empty index", path.display());
    assert_eq!(
        index.len(),
        expected.len(),
        "{}: frame count against ffprobe's",
        path.display()
    );
    let ours0 = index.timestamp(0).unwrap() as i64;
    let theirs0 = expected[0].time_ns;
    for (n, frame) in (0u32..).zip(&expected[..index.len()]) {
        let ours = index.timestamp(n).unwrap() as i64 - ours0;
        let theirs = frame.time_ns - theirs0;
        assert!(
            (ours - theirs).abs() <= TOLERANCE_NS,
            "{}: frame {n} at {ours} ns, ffprobe says {theirs} ns",
            path.display()
        );
        assert_eq!(
            index.is_keyframe(n),
            frame.key,
            "{}: frame {n} keyframe flag",
            path.display()
        );
    }
}

/// Probes `path` and asserts its index is exactly ffprobe's frame list.
fn probe_matching_ffprobe(path: &Path) -> MediaInfo {
    let info = probe(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let expected = ffprobe_frames(path);
    assert_frames_match(&info.frame_index, &expected, path);
    info
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() < 1e-3 * expected.max(1.0),
        "{what}: {actual} vs {expected}"
    );
}

#[test]
fn h264_mp4_with_b_frames_and_audio() {
    let dir = TempDir::new().unwrap();
    let path = ffmpeg_video(
        &dir,
        "bframes.mp4",
        "25",
        "4",
        "-f lavfi -i sine=frequency=440:duration=4 -c:v libx264 -bf 3 -g 30 -pix_fmt yuv420p -c:a aac",
    );
    let info = probe_matching_ffprobe(&path);
    assert_eq!(info.frame_index.len(), 100);
    assert_eq!(info.frame_index.keyframes(), [0, 30, 60, 90]);
    assert_eq!((info.width, info.height), (320, 240));
    assert_eq!(info.fps, 25.0);
    assert_eq!(info.video_codec, "h264");
    assert_eq!(info.audio_codec.as_deref(), Some("aac"));
    assert!(info.has_audio);
    assert_close(info.duration_ns as f64, 4e9, "duration");
    // ffmpeg's edit list hides the B-frame delay: frame 0 is at stream time 0.
    assert_eq!(info.frame_index.timestamp(0), Some(0));
    assert_eq!(info.frame_index.end_ns(), 4_000_000_000);
}

/// A 10 s source with a keyframe every 2 s, stream-copied from 3.3 s: the MP4 gets an edit
/// list whose media time points into a GOP, so the demuxer outputs pre-roll frames from the
/// keyframe at 2 s that are not frames of the file.
fn edit_list_source(dir: &TempDir) -> PathBuf {
    ffmpeg_video(
        dir,
        "gop50.mp4",
        "25",
        "10",
        "-f lavfi -i sine=duration=10 -c:v libx264 -g 50 -keyint_min 50 -sc_threshold 0 -pix_fmt yuv420p -c:a aac",
    )
}

fn stream_copy_cut(dir: &TempDir, source: &Path, name: &str, seconds: &str) -> PathBuf {
    let source = source.to_str().unwrap();
    ffmpeg(
        dir,
        name,
        &format!("-ss 3.3 -i {source} -c copy -t {seconds}"),
    )
}

#[test]
fn mp4_edit_list_skips_pre_roll() {
    let dir = TempDir::new().unwrap();
    let source = edit_list_source(&dir);
    let cut = stream_copy_cut(&dir, &source, "cut.mp4", "2.5");
    let info = probe_matching_ffprobe(&cut);
    // The cut starts 1.3 s into a GOP, so its first keyframe is the source's at 4 s.
    assert_eq!(info.frame_index.keyframes(), [17]);
    assert_eq!(info.frame_index.keyframe_at_or_before(5), 0);
    assert!(info.frame_index.timestamp(0).unwrap() < 40_000_000);
}

/// GStreamer 1.22's qtdemux ends a track whose edit list starts past media time 0 early (it
/// compares its position plus the edit's media start with the movie duration, see
/// `gstframecast::movie_duration`). For this cut (the edit starts at media time 1.38 s, a
/// keyframe at media DTS 4.00 s, past the movie duration) it stopped after that keyframe: 68
/// of ffprobe's 77 frames. With the movie duration patched on the way to qtdemux every frame is
/// indexed, the last ones too, and the duration is still the file's.
#[test]
fn mp4_edit_list_tail_is_indexed() {
    let dir = TempDir::new().unwrap();
    let source = edit_list_source(&dir);
    let cut = stream_copy_cut(&dir, &source, "cut.mp4", "3");
    let info = probe_matching_ffprobe(&cut);
    // 17 frames before the keyframe, 50 in its GOP, and the 10 of the next one.
    assert_eq!(info.frame_index.len(), 77);
    assert_eq!(info.frame_index.keyframes(), [17, 67]);
    // The file's own duration, not the one qtdemux was given.
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(&cut)
        .output()
        .unwrap();
    assert!(output.status.success());
    let seconds: f64 = String::from_utf8(output.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_close(info.duration_ns as f64, seconds * 1e9, "duration");
}

#[test]
fn ntsc_29_97_fps() {
    let dir = TempDir::new().unwrap();
    let path = ffmpeg_video(
        &dir,
        "ntsc.mp4",
        "30000/1001",
        "3",
        "-c:v libx264 -pix_fmt yuv420p",
    );
    let info = probe_matching_ffprobe(&path);
    assert_eq!(info.frame_index.len(), 90);
    assert_close(info.fps, 30000.0 / 1001.0, "fps");
    // Frame 89 starts at 89 * 1001/30000 s: not a whole number of ns, the index keeps it
    // to the ns, which N / fps rounding would miss after enough frames.
    assert_eq!(info.frame_index.timestamp(89), Some(2_969_633_333));
    assert_eq!(info.frame_index.frame_at(2_969_633_333), Some(89));
    assert_eq!(info.frame_index.frame_at(2_969_633_332), Some(88));
}

/// Keeps frames 0-5 of every 10 at 30 fps: gaps of 5 frame times every 6 frames.
fn vfr_mkv(dir: &TempDir) -> PathBuf {
    ffmpeg_video(
        dir,
        "vfr.mkv",
        "30",
        "4",
        "-vf select='lt(mod(n,10),6)' -fps_mode vfr -c:v libx264 -pix_fmt yuv420p",
    )
}

#[test]
fn variable_frame_rate_matroska() {
    let dir = TempDir::new().unwrap();
    let info = probe_matching_ffprobe(&vfr_mkv(&dir));
    let index = &info.frame_index;
    assert_eq!(index.len(), 72);
    // Frames 5 and 6 are the source's frames 5 and 10.
    assert_eq!(index.duration_of(5), Some(333_000_000 - 167_000_000));
    assert_eq!(index.frame_at(300_000_000), Some(5));
    // N / fps would be way off: frame 36 is at 2 s (source frame 60).
    assert_eq!(index.timestamp(36), Some(2_000_000_000));
    assert_close(
        info.fps,
        71.0 / (index.timestamp(71).unwrap() as f64 / 1e9),
        "mean fps",
    );
}

/// ffmpeg writes Matroska blocks in decode order: with B-frames, the first video blocks (PTS
/// 23 ms, after the muxer's rounding of the B-frame delay) come before the first audio block
/// (PTS 0). matroskademux first maps video to stream time 0, then re-bases on the audio
/// block.
fn remuxed_mkv(dir: &TempDir, source: &Path) -> PathBuf {
    ffmpeg(
        dir,
        "remux.mkv",
        &format!("-i {} -c copy", source.display()),
    )
}

#[test]
fn matroska_remux_rebased_on_earliest_track() {
    let dir = TempDir::new().unwrap();
    let source = ffmpeg_video(
        &dir,
        "bframes.mp4",
        "25",
        "2",
        "-f lavfi -i sine=duration=2 -c:v libx264 -bf 3 -pix_fmt yuv420p -c:a aac",
    );
    let mkv = remuxed_mkv(&dir, &source);
    let info = probe_matching_ffprobe(&mkv);
    // Stream time is the block timestamp, as the audio starts at 0.
    let first = ffprobe_frames(&mkv)[0].time_ns;
    assert!(first > 0);
    assert_eq!(info.frame_index.timestamp(0), Some(first as u64));
}

#[test]
fn mpeg_ts_with_start_offsets() {
    let dir = TempDir::new().unwrap();
    let args = "-f lavfi -i sine=duration=3 -c:v libx264 -c:a aac";
    let plain = ffmpeg_video(&dir, "plain.ts", "25", "3", args);
    let offset_args = format!("{args} -output_ts_offset 10");
    let offset = ffmpeg_video(&dir, "offset.ts", "25", "3", &offset_args);

    let plain_info = probe_matching_ffprobe(&plain);
    let offset_info = probe_matching_ffprobe(&offset);
    assert_eq!(plain_info.frame_index.len(), 75);
    assert_eq!((offset_info.width, offset_info.height), (320, 240));
    assert_eq!(offset_info.audio_codec.as_deref(), Some("aac"));
    // ffprobe puts frame 0 at 1.4 s and 11.4 s or later: stream time ignores the container's
    // start offset.
    assert!(ffprobe_frames(&offset)[0].time_ns >= 11_400_000_000);
    assert!(offset_info.frame_index.timestamp(0).unwrap() < 1_000_000_000);
    assert_eq!(plain_info.frame_index, offset_info.frame_index);
}

/// VP9 WebM without audio.
#[test]
fn mpeg_program_stream_frames_without_pts() {
    let dir = TempDir::new().unwrap();
    // MPEG-1 video (no B-frames, shown a frame after it is decoded) and MP2 in a program
    // stream: small frames share a packet, and only the packet's first frame has a PTS.
    let args = "-f lavfi -i sine=duration=4 -c:v mpeg1video -c:a mp2 -shortest";
    let path = ffmpeg_video(&dir, "program.mpg", "25", "4", args);
    let info = probe_matching_ffprobe(&path);
    assert_eq!(info.frame_index.len(), 100);
    assert_close(info.fps, 25.0, "fps");
}

fn vp9_webm(dir: &TempDir) -> PathBuf {
    ffmpeg_video(
        dir,
        "vp9.webm",
        "24",
        "3",
        "-c:v libvpx-vp9 -deadline realtime -cpu-used 8 -g 24 -pix_fmt yuv420p",
    )
}

#[test]
fn vp9_webm_without_audio() {
    let dir = TempDir::new().unwrap();
    let info = probe_matching_ffprobe(&vp9_webm(&dir));
    assert_eq!(info.frame_index.len(), 72);
    assert_eq!(info.frame_index.keyframes(), [0, 24, 48]);
    assert_eq!(info.video_codec, "vp9");
    assert!(!info.has_audio);
    assert_eq!(info.audio_codec, None);
}

#[test]
fn refuses_what_is_not_video() {
    let dir = TempDir::new().unwrap();

    // A fixed xorshift sequence: random enough that no typefinder claims it.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let noise: Vec<u8> = (0..256 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let random = dir.path().join("random.mp4");
    std::fs::write(&random, noise).unwrap();
    assert!(matches!(probe(&random), Err(ProbeError::Unsupported(_))));

    let text = dir.path().join("notes.mkv");
    std::fs::write(&text, "Not a video.\n".repeat(1000)).unwrap();
    assert!(matches!(probe(&text), Err(ProbeError::Unsupported(_))));

    let audio = ffmpeg(&dir, "audio.m4a", "-f lavfi -i sine=duration=2 -c:a aac");
    assert!(matches!(probe(&audio), Err(ProbeError::NoVideo)));

    // ffmpeg's experimental Snow codec: Matroska demuxes it, nothing decodes it.
    let snow = ffmpeg_video(&dir, "snow.mkv", "25", "1", "-c:v snow -strict -2");
    match probe(&snow) {
        Err(ProbeError::Unsupported(reason)) => assert!(reason.contains("no video decoder")),
        other => panic!("snow: {other:?}"),
    }

    // The header of an MP4 whose index (moov) was moved to the front, cut inside the index.
    let whole = ffmpeg_video(
        &dir,
        "whole.mp4",
        "25",
        "2",
        "-c:v libx264 -movflags +faststart",
    );
    let truncated = dir.path().join("truncated.mp4");
    std::fs::write(&truncated, &std::fs::read(&whole).unwrap()[..1500]).unwrap();
    assert!(matches!(probe(&truncated), Err(ProbeError::Unsupported(_))));

    assert!(matches!(
        probe(&dir.path().join("missing.mp4")),
        Err(ProbeError::Io(_))
    ));
}

/// A decoding pipeline (filesrc ! decodebin ! videoconvert ! appsink), playing, that shows
/// frames the way the thumbnail code is meant to find them.
struct Decoder {
    pipeline: gst::Pipeline,
    appsink: gst_app::AppSink,
}

impl Decoder {
    fn new(path: &Path) -> Self {
        gst::init().unwrap();
        let pipeline = gst::Pipeline::new();
        let filesrc = gst::ElementFactory::make("filesrc")
            .property("location", path.to_str().unwrap())
            .build()
            .unwrap();
        let decodebin = gst::ElementFactory::make("decodebin").build().unwrap();
        let convert = gst::ElementFactory::make("videoconvert").build().unwrap();
        let appsink = gst_app::AppSink::builder()
            .caps(
                &gst::Caps::builder("video/x-raw")
                    .field("format", "I420")
                    .build(),
            )
            .sync(false)
            // Decode no further ahead than the frame being looked at.
            .max_buffers(1)
            .build();
        pipeline
            .add_many([&filesrc, &decodebin, &convert, appsink.upcast_ref()])
            .unwrap();
        filesrc.link(&decodebin).unwrap();
        convert.link(&appsink).unwrap();
        decodebin.connect_pad_added({
            let pipeline = pipeline.downgrade();
            let video_sink = convert.static_pad("sink").unwrap();
            move |_, pad| {
                let caps = pad.current_caps().unwrap();
                if caps.structure(0).unwrap().name().starts_with("video/") {
                    pad.link(&video_sink).unwrap();
                } else {
                    let pipeline = pipeline.upgrade().unwrap();
                    let sink = gst::ElementFactory::make("fakesink")
                        .property("sync", false)
                        .build()
                        .unwrap();
                    pipeline.add(&sink).unwrap();
                    sink.sync_state_with_parent().unwrap();
                    pad.link(&sink.static_pad("sink").unwrap()).unwrap();
                }
            }
        });
        pipeline.set_state(gst::State::Playing).unwrap();
        let bus = pipeline.bus().unwrap();
        let message = bus
            .timed_pop_filtered(
                gst::ClockTime::from_seconds(30),
                &[gst::MessageType::AsyncDone, gst::MessageType::Error],
            )
            .expect("the pipeline prerolls");
        if let gst::MessageView::Error(err) = message.view() {
            panic!("decoding pipeline: {} {:?}", err.error(), err.debug());
        }
        Decoder { pipeline, appsink }
    }

    /// Stream time and mark luma of frame `n`, found the way frame_index.rs documents: an
    /// accurate seek to [`FrameIndex::seek_position`], then the first decoded frame that
    /// [`FrameIndex::decoded_frame`] recognises.
    fn frame(&self, index: &FrameIndex, n: u32) -> (u64, f64) {
        let position = index.seek_position(n).unwrap();
        self.pipeline
            .seek_simple(
                gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
                gst::ClockTime::from_nseconds(position),
            )
            .unwrap();
        loop {
            let sample = self
                .appsink
                .try_pull_sample(gst::ClockTime::from_seconds(10))
                .expect("a frame after the seek");
            let segment = sample
                .segment()
                .unwrap()
                .downcast_ref::<gst::ClockTime>()
                .unwrap();
            let buffer = sample.buffer().unwrap();
            let Some(stream_time) = segment.to_stream_time(buffer.pts().unwrap()) else {
                continue;
            };
            match index.decoded_frame(stream_time.nseconds()) {
                Some(m) if m == n => {}
                Some(m) if m > n => panic!("frame {m} decoded before frame {n}"),
                _ => continue,
            }
            let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
            let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info).unwrap();
            let (luma, stride) = (frame.plane_data(0).unwrap(), info.stride()[0] as usize);
            let mark: u32 = (16..48)
                .flat_map(|y| &luma[y * stride + 16..y * stride + 48])
                .map(|&v| u32::from(v))
                .sum();
            return (stream_time.nseconds(), f64::from(mark) / (32.0 * 32.0));
        }
    }
}

impl Drop for Decoder {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Looks up frames at the start, around a keyframe, in the middle and at the end by their
/// indexed timestamp, and checks that what the decoder shows there is ffmpeg's frame N: same
/// mark, and exactly the indexed stream time.
///
/// The mark matters: a video decoder clips the PTS of a frame overlapping the segment start to
/// that start, so the previous frame would pass a time check alone.
fn assert_seeks_land_on_frames(dir: &TempDir, path: &Path) {
    let index = probe(path).unwrap().frame_index;
    let marks = ffmpeg_marks(dir, path);
    assert_eq!(
        marks.len(),
        index.len(),
        "{}: ffmpeg frames",
        path.display()
    );
    let decoder = Decoder::new(path);
    let last = index.last_frame().unwrap();
    let keyframe = index.keyframes()[index.keyframes().len() / 2];
    for n in [
        0,
        1,
        2,
        3,
        keyframe.saturating_sub(1),
        keyframe,
        keyframe + 1,
        last / 2,
        last - 1,
        last,
    ] {
        let ts = index.timestamp(n).unwrap();
        let (stream_time, mark) = decoder.frame(&index, n);
        let expected = marks[n as usize];
        assert!(
            stream_time.abs_diff(ts) <= SEEK_MARGIN_NS / 2 && (mark - expected).abs() < 5.0,
            "{}: frame {n} at {ts} ns: decoded a frame at {stream_time} ns marked {mark}, \
             ffmpeg's frame {n} is marked {expected}",
            path.display()
        );
    }
}

#[test]
fn seeks_to_indexed_timestamps_land_on_the_frame() {
    let dir = TempDir::new().unwrap();
    let bframes = ffmpeg_video(
        &dir,
        "bframes.mp4",
        "25",
        "3",
        "-c:v libx264 -bf 3 -g 30 -pix_fmt yuv420p",
    );
    let source = edit_list_source(&dir);
    let cut = stream_copy_cut(&dir, &source, "cut.mp4", "2.5");
    let mkv = remuxed_mkv(&dir, &source);
    let ts = ffmpeg_video(
        &dir,
        "offset.ts",
        "25",
        "3",
        "-c:v libx264 -g 30 -output_ts_offset 10",
    );
    for path in [bframes, cut, mkv, ts, vfr_mkv(&dir), vp9_webm(&dir)] {
        assert_seeks_land_on_frames(&dir, &path);
    }
}
