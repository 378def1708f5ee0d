//! Test harness: the real `framecast` binary on a free loopback port, its own data dir, and
//! media generated with the ffmpeg CLI.
#![allow(dead_code)] // each test binary uses its own part of this module

pub mod origin;
pub mod pg;
pub mod webdriver;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

pub const SECRET: &str = "framecast-test-secret";
pub const BIN: &str = env!("CARGO_BIN_EXE_framecast");

/// Where generated media lives: under target/, shared by every test and kept between runs
/// (each file's name carries a hash of its recipe, so a changed recipe makes a new file).
pub fn media_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("media");
        std::fs::create_dir_all(&dir).expect("media dir");
        dir
    })
}

/// Runs ffmpeg quietly with `args`, panicking with its message on failure.
pub fn ffmpeg(args: &[&str]) {
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg is installed");
    assert!(
        output.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `name` in the media dir, made once by `ffmpeg <args> <path>`: the file name carries a
/// hash of the arguments (`small-1f2e3d4c5b6a7988.mp4`), so a file made by another recipe
/// is never taken for this one.
pub fn generated(name: &str, args: &[&str]) -> PathBuf {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    // FNV-1a over the arguments, each ended by a NUL: stable across runs and toolchains.
    let hash = args.iter().fold(0xcbf2_9ce4_8422_2325u64, |hash, arg| {
        arg.bytes().chain([0]).fold(hash, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    });
    let (stem, extension) = name.rsplit_once('.').expect("a name with an extension");
    let file = format!("{stem}-{hash:016x}.{extension}");
    let path = media_dir().join(&file);
    if !path.exists() {
        // Write aside and rename: an interrupted run never leaves a half-made file, and test
        // processes running at once never read one.
        let partial = media_dir().join(format!("partial-{}-{file}", std::process::id()));
        let mut full: Vec<&str> = args.to_vec();
        let partial_str = partial.to_str().unwrap().to_owned();
        full.push(&partial_str);
        ffmpeg(&full);
        std::fs::rename(&partial, &path).expect("rename generated media");
    }
    path
}

/// `name` in the media dir, generated once: H.264 (yuv420p) from the lavfi source `video`,
/// with AAC from the lavfi source `audio` when given (cut to the shorter), and `extra`
/// output options (preset, GOP, B-frames, movflags...).
pub fn lavfi_h264(name: &str, video: &str, audio: Option<&str>, extra: &[&str]) -> PathBuf {
    let mut args = vec!["-f", "lavfi", "-i", video];
    if let Some(audio) = audio {
        args.extend(["-f", "lavfi", "-i", audio, "-c:a", "aac", "-shortest"]);
    }
    args.extend(["-c:v", "libx264", "-pix_fmt", "yuv420p"]);
    args.extend(extra);
    generated(name, &args)
}

/// 10 s with the index (moov) first, so that a truncated copy still opens.
pub fn faststart_mp4() -> PathBuf {
    lavfi_h264(
        "faststart.mp4",
        &source("320x240", "25", "10"),
        None,
        &["-preset", "ultrafast", "-movflags", "+faststart"],
    )
}

/// 2 s of 320x240 25 fps H.264 (with B-frames) and AAC audio in MP4.
pub fn small_mp4() -> PathBuf {
    lavfi_h264(
        "small.mp4",
        "testsrc2=size=320x240:rate=25:duration=2",
        Some("sine=frequency=440:duration=2"),
        &["-bf", "2", "-g", "25"],
    )
}

// The tricky kinds of file that thumbnails and clips are checked on, and comparing frames
// with ffmpeg's.

/// A moving bar on testsrc2 so that neighbouring frames differ clearly.
pub const MOTION: &str = "drawbox=x='mod(t*175\\,300)':y=0:w=16:h=ih:color=white:t=fill";

pub fn source(size: &str, rate: &str, seconds: &str) -> String {
    format!("testsrc2=size={size}:rate={rate}:duration={seconds},{MOTION}")
}

/// H.264 with B-frames and AAC audio in MP4, GOP 50.
pub fn bframes_mp4() -> PathBuf {
    lavfi_h264(
        "thumb-bframes.mp4",
        &source("320x240", "25", "4"),
        Some("sine=duration=4"),
        &["-preset", "veryfast", "-bf", "3", "-g", "50"],
    )
}

/// Stream-copied from a cut between keyframes: an edit list hides the pre-roll frames.
pub fn edit_list_mp4() -> PathBuf {
    let src = bframes_mp4();
    generated(
        "thumb-editlist.mp4",
        &[
            "-ss",
            "1.3",
            "-i",
            src.to_str().unwrap(),
            "-c",
            "copy",
            "-t",
            "1.5",
        ],
    )
}

pub fn ntsc_mp4() -> PathBuf {
    lavfi_h264(
        "thumb-2997.mp4",
        &source("320x240", "30000/1001", "3"),
        None,
        &["-preset", "veryfast"],
    )
}

/// Variable frame rate: frames dropped irregularly, timestamps kept.
pub fn vfr_mkv() -> PathBuf {
    lavfi_h264(
        "thumb-vfr.mkv",
        &source("320x240", "30", "3"),
        None,
        &[
            "-vf",
            "select='not(eq(mod(n,5),2))*not(eq(mod(n,7),3))'",
            "-fps_mode",
            "vfr",
            "-preset",
            "veryfast",
        ],
    )
}

/// MPEG-TS starting at 10 s, with audio.
pub fn offset_ts() -> PathBuf {
    lavfi_h264(
        "thumb-offset.ts",
        &source("320x240", "25", "3"),
        Some("sine=duration=3"),
        &["-preset", "veryfast", "-bf", "2", "-output_ts_offset", "10"],
    )
}

pub fn vp9_webm() -> PathBuf {
    generated(
        "thumb-vp9.webm",
        &[
            "-f",
            "lavfi",
            "-i",
            &source("320x240", "25", "2"),
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
            "-b:v",
            "1M",
            "-g",
            "25",
        ],
    )
}

/// One keyframe every 300 frames.
pub fn long_gop_mp4() -> PathBuf {
    lavfi_h264(
        "thumb-gop300.mp4",
        &source("320x240", "25", "14"),
        None,
        &[
            "-preset",
            "ultrafast",
            "-g",
            "300",
            "-keyint_min",
            "300",
            "-sc_threshold",
            "0",
        ],
    )
}

/// Frame `n` of `video` as ffmpeg's select filter picks it, as RGB24 bytes, cropped to
/// `(x, y, w, h)` of its RGB pixels (ffmpeg's crop on 4:2:0 would round x and y down to
/// even).
pub fn ffmpeg_frame(video: &Path, n: u32, crop: Option<(u32, u32, u32, u32)>) -> Vec<u8> {
    let mut filter = format!("select=eq(n\\,{n}),format=rgb24");
    if let Some((x, y, w, h)) = crop {
        filter.push_str(&format!(",crop={w}:{h}:{x}:{y}"));
    }
    decode_rgb(&[
        "-i",
        video.to_str().unwrap(),
        "-vf",
        &filter,
        "-fps_mode",
        "passthrough",
        "-frames:v",
        "1",
    ])
}

pub fn decode_rgb(input_args: &[&str]) -> Vec<u8> {
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error"])
        .args(input_args)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !output.stdout.is_empty(),
        "ffmpeg produced no frame for {input_args:?}"
    );
    output.stdout
}

pub fn psnr(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len(), "images differ in size");
    let mse = a
        .iter()
        .zip(b)
        .map(|(x, y)| (*x as f64 - *y as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0 * 255.0 / mse).log10()
    }
}

/// ffprobe's `entry` (e.g. `stream=codec_name`) for each stream `select` picks (`v:0`,
/// `a`), in order. MPEG-TS lists its program's streams again, after an empty line: those
/// repeats are included.
pub fn ffprobe_values(video: &Path, select: &str, entry: &str) -> Vec<String> {
    let mut ffprobe = Command::new("ffprobe");
    ffprobe.args(["-v", "error", "-select_streams", select]);
    if entry.contains("nb_read_frames") {
        // Counting decodes the whole stream: only when asked for.
        ffprobe.arg("-count_frames");
    }
    let output = ffprobe
        .args(["-show_entries", entry, "-of", "csv=p=0"])
        .arg(video)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "ffprobe {entry} of {}: {}",
        video.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8(output.stdout).unwrap();
    // A stream with side data (a display matrix) gets an empty side-data column: `50,`.
    text.split_whitespace()
        .map(|value| value.trim_end_matches(',').to_owned())
        .collect()
}

pub fn frame_count(video: &Path) -> u32 {
    ffprobe_values(video, "v:0", "stream=nb_read_frames")[0]
        .parse()
        .unwrap()
}

/// A copy of `video` in `dir` under a name that gst-launch syntax and the shell would both
/// trip on (quotes, `!`, an apostrophe, spaces).
pub fn awkward_copy(video: &Path, dir: &Path) -> PathBuf {
    let awkward = dir.join("a \"clip\" ! it's.mp4");
    std::fs::copy(video, &awkward).unwrap();
    awkward
}

/// A running server with its own data dir, stopped on drop.
pub struct Server {
    child: Child,
    pub base: String,
    pub data_dir: tempfile::TempDir,
    /// The extra settings it was started with, which its CLI commands get too.
    env: Vec<(String, String)>,
}

impl Server {
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    /// Starts with extra `FRAMECAST_*` environment settings (also given to [`Server::cli`]).
    pub fn start_with(env: &[(&str, &str)]) -> Server {
        Self::start_configured(env, |command| {
            command.envs(env.iter().copied());
        })
    }

    /// Starts with `--config FILE`, without the harness's secret and pipelines dir in the
    /// environment (which would win over the file).
    pub fn start_with_config(file: &Path) -> Server {
        Self::start_configured(&[], |command| {
            command
                .arg("--config")
                .arg(file)
                .env_remove("FRAMECAST_JWT_SECRET")
                .env_remove("FRAMECAST_PIPELINES_DIR");
        })
    }

    fn start_configured(env: &[(&str, &str)], configure: impl FnOnce(&mut Command)) -> Server {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut command = command(data_dir.path());
        configure(&mut command);
        let mut child = command
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("framecast starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("framecast prints its address");
        let base = line
            .trim()
            .strip_prefix("framecast listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Server {
            child,
            base,
            data_dir,
            env: env
                .iter()
                .map(|&(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    /// Runs a `framecast` subcommand against this server's data dir.
    pub fn cli(&self, args: &[&str]) -> Output {
        command(self.data_dir.path())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(args)
            .output()
            .expect("framecast runs")
    }

    /// Imports `video` (with optional detections file), returning the uuid it printed.
    pub fn import(&self, video: &Path, detections: Option<&Path>) -> String {
        let mut args = vec!["import", video.to_str().unwrap()];
        if let Some(d) = detections {
            args.extend(["--detections", d.to_str().unwrap()]);
        }
        let output = self.cli(&args);
        assert!(
            output.status.success(),
            "import failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let uuid = String::from_utf8(output.stdout).unwrap().trim().to_owned();
        assert_eq!(uuid.len(), 32, "import prints only the uuid: {uuid:?}");
        uuid
    }

    /// A token from `framecast token --all-files`.
    pub fn all_files_token(&self) -> String {
        let output = self.cli(&["token", "--all-files"]);
        assert!(output.status.success());
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    /// A token from `framecast token` for these files.
    pub fn token(&self, files: &[&str]) -> String {
        let mut args = vec!["token"];
        for f in files {
            args.extend(["--file", f]);
        }
        let output = self.cli(&args);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    /// Runs `framecast explain URL --output OUTPUT`, then the command it printed; returns
    /// the command and the bytes it wrote.
    pub fn run_explained(&self, url: &str, output: &Path) -> (String, Vec<u8>) {
        let explained = self.cli(&["explain", url, "--output", output.to_str().unwrap()]);
        assert!(
            explained.status.success(),
            "{}",
            String::from_utf8_lossy(&explained.stderr)
        );
        let line = String::from_utf8(explained.stdout).unwrap();
        assert!(line.contains("gst-launch-1.0"), "{line}");
        // Bounded: a pipeline that hangs fails the test (status 124) instead of holding it.
        let run = Command::new("timeout")
            .args(["120", "sh", "-c", line.trim()])
            .output()
            .unwrap();
        assert!(
            run.status.success(),
            "{line}: {:?} {}",
            run.status.code(),
            String::from_utf8_lossy(&run.stderr)
        );
        let written = std::fs::read(output).unwrap();
        (line, written)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `host:port`, for raw TCP clients.
    pub fn address(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    /// Sends a signal (`TERM`, `INT`, ...) to the server process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits up to `limit` for the server to exit; `None` if it is still running.
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if started.elapsed() >= limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `active_pipelines` from `GET /health`.
    pub fn active_pipelines(&self) -> u64 {
        let health: serde_json::Value = client()
            .get(self.url("/health"))
            .send()
            .expect("health answers")
            .json()
            .expect("health is JSON");
        health["active_pipelines"]
            .as_u64()
            .expect("active_pipelines")
    }

    /// `GET /metrics`, the Prometheus text.
    pub fn metrics(&self) -> String {
        let response = client()
            .get(self.url("/metrics"))
            .send()
            .expect("metrics answer");
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
        response.text().unwrap()
    }

    /// One series' value from `GET /metrics` (name and labels, e.g.
    /// `framecast_pipelines_started_total`), if present.
    pub fn metric(&self, series: &str) -> Option<f64> {
        sample(&self.metrics(), series)
    }

    /// Bytes the server process has read through read(2) and friends so far (`rchar`).
    pub fn bytes_read(&self) -> u64 {
        let io = std::fs::read_to_string(format!("/proc/{}/io", self.child.id()))
            .expect("the server's /proc io");
        io.lines()
            .find_map(|line| line.strip_prefix("rchar: "))
            .and_then(|n| n.trim().parse().ok())
            .expect("rchar")
    }

    /// The sockets the server process has open: its listener and its connections.
    pub fn sockets(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .expect("the server's fd directory")
            .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
            .filter(|target| target.to_string_lossy().starts_with("socket:"))
            .count()
    }

    /// Waits up to `limit` for the server to have `sockets` open sockets, panicking after.
    pub fn assert_sockets_within(&self, sockets: usize, limit: Duration) {
        let started = std::time::Instant::now();
        while self.sockets() != sockets {
            assert!(
                started.elapsed() < limit,
                "{} sockets open instead of {sockets} {:?} later",
                self.sockets(),
                started.elapsed()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `limit` for every pipeline to be stopped, panicking after.
    pub fn assert_pipelines_stop_within(&self, limit: Duration) {
        let started = std::time::Instant::now();
        while self.active_pipelines() != 0 {
            assert!(
                started.elapsed() < limit,
                "pipelines still live {:?} later",
                started.elapsed()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(data_dir: &Path) -> Command {
    let mut command = Command::new(BIN);
    command
        .env("FRAMECAST_DATA_DIR", data_dir)
        .env("FRAMECAST_LISTEN", "127.0.0.1:0")
        .env("FRAMECAST_JWT_SECRET", SECRET)
        .env(
            "FRAMECAST_LOG",
            std::env::var("FRAMECAST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .env(
            "FRAMECAST_PIPELINES_DIR",
            concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines"),
        );
    command
}

/// The value of the sample line starting with `series` (name and labels), if any.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.trim().parse().expect("a number"))
}

/// A started server, a token for all its files, and a directory for what a test saves:
/// what most tests of the HTTP API begin with.
pub struct Session {
    pub server: Server,
    pub token: String,
    pub dir: tempfile::TempDir,
}

impl Session {
    pub fn start() -> Self {
        let server = Server::start();
        Session {
            token: server.all_files_token(),
            server,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// GET `path` with the token.
    pub fn get(&self, path: &str) -> reqwest::blocking::Response {
        client()
            .get(self.server.url(path))
            .bearer_auth(&self.token)
            .send()
            .unwrap()
    }

    /// The body of a 200 at `path`, saved as `name` in the session's directory.
    pub fn save(&self, path: &str, name: &str) -> PathBuf {
        let response = self.get(path);
        assert_eq!(response.status(), 200, "{path}: {:?}", response.text());
        let file = self.dir.path().join(name);
        std::fs::write(&file, response.bytes().unwrap()).unwrap();
        file
    }
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// Asserts the response is our JSON error with this status and code; returns the message.
pub fn assert_json_error(response: reqwest::blocking::Response, status: u16, code: &str) -> String {
    assert_eq!(response.status().as_u16(), status, "status");
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "errors are JSON"
    );
    let body: serde_json::Value = response.json().expect("JSON body");
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["error"], code, "{body}");
    let message = body["message"].as_str().expect("message").to_owned();
    assert!(!message.is_empty());
    message
}

/// The top-level box types of an MP4 (`ftyp`, `moov`, `moof`, `mdat`, ...), in order.
pub fn mp4_boxes(bytes: &[u8]) -> Vec<String> {
    let mut boxes = Vec::new();
    let mut at = 0;
    while at + 8 <= bytes.len() {
        let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        boxes.push(String::from_utf8_lossy(&bytes[at + 4..at + 8]).into_owned());
        if size < 8 {
            break;
        }
        at += size;
    }
    boxes
}

/// `bytes` (an MP4) with the creation and modification times of its `mvhd`, `tkhd` and
/// `mdhd` boxes zeroed: mp4mux writes the wall-clock time there, the one part of its output
/// that differs between two runs of the same pipeline.
pub fn mp4_without_times(bytes: &[u8]) -> Vec<u8> {
    fn walk(bytes: &mut [u8], start: usize, end: usize) {
        let mut at = start;
        while at + 8 <= end {
            let size = u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
            if size < 8 || at + size > end {
                return;
            }
            let kind = bytes[at + 4..at + 8].to_vec();
            match &kind[..] {
                b"moov" | b"trak" | b"mdia" => walk(bytes, at + 8, at + size),
                b"mvhd" | b"tkhd" | b"mdhd" => {
                    // Full box: version, 3 bytes of flags, then both times (32 or 64 bits).
                    let width = if bytes[at + 8] == 1 { 8 } else { 4 };
                    bytes[at + 12..at + 12 + 2 * width].fill(0);
                }
                _ => {}
            }
            at += size;
        }
    }
    let mut copy = bytes.to_vec();
    let len = copy.len();
    walk(&mut copy, 0, len);
    copy
}
