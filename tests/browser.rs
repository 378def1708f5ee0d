//! The viewer in a real browser: Debian's headless Chromium over chromedriver. The page loads
//! with no console errors and lists the files; the original MP4 and a format=mp4 clip play;
//! at a paused frame the screenshot shows that frame's detection box where the detection
//! is, over that very frame (its pixels against ffmpeg's decode); a step of +1 frame moves
//! both; the storyboard track and its sheet load.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::webdriver::{base64_decode, Browser};
use common::{ffmpeg_frame, lavfi_h264, psnr, small_mp4, source, Server};
use serde_json::json;

const WIDTH: usize = 640;
const HEIGHT: usize = 360;
const WAIT: Duration = Duration::from_secs(30);

/// A moving bar on testsrc2, 3 s at 25 fps, with audio: every frame differs from the next.
fn moving_mp4() -> std::path::PathBuf {
    lavfi_h264(
        "browser-moving.mp4",
        &source("640x360", "25", "3"),
        Some("sine=duration=3"),
        &["-preset", "veryfast", "-bf", "2", "-g", "25"],
    )
}

/// One box on frame 10, another elsewhere on frame 11.
const DETECTIONS: &str = r#"{"frame": 10, "x": 100, "y": 100, "w": 200, "h": 150, "label": "face", "confidence": 0.9}
{"frame": 11, "x": 380, "y": 160, "w": 150, "h": 120, "label": "face", "confidence": 0.8}
"#;

/// A PNG as RGB bytes, and its width, through ffmpeg.
fn png_rgb(png: &[u8], dir: &Path) -> (Vec<u8>, usize) {
    let path = dir.join("shot.png");
    std::fs::write(&path, png).unwrap();
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=width",
            "-of",
            "csv=p=0",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let width = String::from_utf8(probe.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    (common::decode_rgb(&["-i", path.to_str().unwrap()]), width)
}

fn pixel(rgb: &[u8], width: usize, x: usize, y: usize) -> [u8; 3] {
    let at = (y * width + x) * 3;
    [rgb[at], rgb[at + 1], rgb[at + 2]]
}

fn close(a: [u8; 3], b: [u8; 3], tolerance: i32) -> bool {
    a.iter()
        .zip(b)
        .all(|(x, y)| (*x as i32 - y as i32).abs() <= tolerance)
}

/// The frame on screen as RGB, read from the video element through a canvas.
fn video_pixels(browser: &Browser) -> Vec<u8> {
    let encoded = browser.run(
        "const v = document.getElementById('video');
         const c = document.createElement('canvas');
         c.width = v.videoWidth; c.height = v.videoHeight;
         const g = c.getContext('2d');
         g.drawImage(v, 0, 0);
         const rgba = g.getImageData(0, 0, c.width, c.height).data;
         let s = '';
         for (let i = 0; i < rgba.length; i += 4) s += String.fromCharCode(rgba[i], rgba[i+1], rgba[i+2]);
         return btoa(s);",
        json!([]),
    );
    base64_decode(encoded.as_str().unwrap())
}

/// Checks that the screenshot shows frame `n`'s box (`x`, `y`, `h`: its left edge) in the
/// overlay colour, over the video's own pixels elsewhere.
fn assert_box_at(
    browser: &Browser,
    dir: &Path,
    (x, y, h): (usize, usize, usize),
    absent: (usize, usize, usize),
    frame: &[u8],
) -> Vec<u8> {
    let rect = browser.run(
        "const r = document.getElementById('video').getBoundingClientRect();
         return [r.left, r.top, r.width, r.height, window.devicePixelRatio];",
        json!([]),
    );
    let r: Vec<f64> = rect
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(
        (r[2].round() as usize, r[3].round() as usize, r[4]),
        (WIDTH, HEIGHT, 1.0),
        "shown at its size"
    );
    let colour = browser.run(
        "const g = document.createElement('canvas').getContext('2d');
         g.fillStyle = framecast.color({label: 'face', trace_id: null});
         const hex = g.fillStyle;
         return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));",
        json!([]),
    );
    let colour: Vec<u8> = colour
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u8)
        .collect();
    let colour = [colour[0], colour[1], colour[2]];
    let png = browser.screenshot();
    let (shot, shot_width) = png_rgb(&png, dir);
    let at =
        |px: usize, py: usize| pixel(&shot, shot_width, r[0] as usize + px, r[1] as usize + py);
    // The left edge (2 px, on x-1 and x) along its middle half.
    for py in (y + h / 4..y + 3 * h / 4).step_by(7) {
        let got = at(x, py);
        assert!(
            close(got, colour, 40),
            "box edge at ({x},{py}): {got:?}, want {colour:?}"
        );
    }
    // Where the other frame's box would be: the video itself.
    let (ax, ay, ah) = absent;
    for py in (ay + ah / 4..ay + 3 * ah / 4).step_by(7) {
        let got = at(ax, py);
        let video = pixel(frame, WIDTH, ax, py);
        assert!(
            close(got, video, 48),
            "no box at ({ax},{py}): {got:?}, the video has {video:?}"
        );
    }
    png
}

/// The frame on screen is frame `n` of `video`: nearer ffmpeg's frame n than its neighbours.
fn assert_frame_is(browser: &Browser, video: &Path, n: u32) -> Vec<u8> {
    let shown = video_pixels(browser);
    let exact = psnr(&shown, &ffmpeg_frame(video, n, None));
    assert!(exact > 30.0, "frame {n}: PSNR {exact:.1} dB");
    for other in [n - 1, n + 1] {
        let neighbour = psnr(&shown, &ffmpeg_frame(video, other, None));
        assert!(
            exact > neighbour + 3.0,
            "frame {n}: {exact:.1} dB vs frame {other}: {neighbour:.1} dB"
        );
    }
    shown
}

#[test]
fn the_viewer_plays_steps_and_draws_each_frames_boxes() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let detections = dir.path().join("d.jsonl");
    std::fs::write(&detections, DETECTIONS).unwrap();
    let video = moving_mp4();
    let uuid = server.import(&video, Some(&detections));
    server.import(&small_mp4(), None);
    let token = server.all_files_token();

    let browser = Browser::start(1280, 800);
    browser.goto(&server.url(&format!("/ui/#access_token={token}")));
    browser.wait_for("document.querySelectorAll('#files li').length === 2", WAIT);
    let names = browser.run(
        "return document.getElementById('files').textContent",
        json!([]),
    );
    assert!(
        names.as_str().unwrap().contains("browser-moving-"),
        "{names}"
    );
    // Generated media is named after its recipe: small-<hash>.mp4.
    assert!(names.as_str().unwrap().contains("small-"), "{names}");

    // Open the file: its frame map, traces, storyboard.
    browser.run(
        &format!("document.querySelector('#files li[data-uuid=\"{uuid}\"]').click()"),
        json!([]),
    );
    browser.wait_for(
        "window.framecast.state.times.length === 75 && document.body.dataset.frame === '0'",
        WAIT,
    );
    browser.wait_for("Number(document.body.dataset.storyboard) > 0", WAIT);
    let sheet = browser.run_async(
        "const done = arguments[0];
         const cue = framecast.state.cues[0].text.trim().split('#')[0];
         const img = new Image();
         img.onload = () => done([img.naturalWidth, img.naturalHeight]);
         img.onerror = () => done('sheet failed');
         img.src = new URL(cue, document.querySelector('track').src);",
        json!([]),
    );
    assert_eq!(sheet[0], 160 * 3, "3 tiles of 160 px in the sheet: {sheet}");

    // The original plays.
    browser.run("document.getElementById('video').play()", json!([]));
    // Chromium's mediaTime of every frame it presents is a time of /frames: the map holds.
    let unmatched = browser.run_async(
        "const done = arguments[0];
         const v = document.getElementById('video');
         const seen = [];
         const cb = (now, m) => {
           seen.push(m.mediaTime);
           if (seen.length < 12) v.requestVideoFrameCallback(cb);
           else done(seen.filter((t) => !framecast.state.times.some((f) => Math.abs(f - t) < 5e-4)));
         };
         v.requestVideoFrameCallback(cb);",
        json!([]),
    );
    assert_eq!(unmatched, json!([]), "mediaTimes not in /frames");
    let offset = browser.run("return framecast.state.offset", json!([]));
    assert_eq!(
        offset.as_f64(),
        Some(0.0),
        "frame 0's mediaTime is /frames' time"
    );
    browser.wait_for("document.getElementById('video').currentTime > 0.5", WAIT);
    browser.run("document.getElementById('video').pause()", json!([]));

    // Paused at frame 10: its box, over frame 10.
    browser.run("framecast.seekFrame(10)", json!([]));
    browser.wait_for(
        "document.body.dataset.frame === '10' && !document.getElementById('video').seeking",
        WAIT,
    );
    let frame10 = assert_frame_is(&browser, &video, 10);
    let png = assert_box_at(
        &browser,
        dir.path(),
        (100, 100, 150),
        (380, 160, 120),
        &frame10,
    );
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("viewer.png");
    std::fs::write(&shot, &png).unwrap();
    if std::env::var_os("FRAMECAST_SAVE_SCREENSHOT").is_some() {
        std::fs::write(
            concat!(env!("CARGO_MANIFEST_DIR"), "/docs/viewer.png"),
            &png,
        )
        .unwrap();
    }

    // One step forward (the right arrow): frame 11 and its box, together.
    browser.run(
        "document.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowRight'}))",
        json!([]),
    );
    browser.wait_for(
        "document.body.dataset.frame === '11' && !document.getElementById('video').seeking",
        WAIT,
    );
    let frame11 = assert_frame_is(&browser, &video, 11);
    assert_box_at(
        &browser,
        dir.path(),
        (380, 160, 120),
        (100, 100, 150),
        &frame11,
    );
    let shown = browser.run(
        "return document.getElementById('frame').textContent",
        json!([]),
    );
    assert_eq!(shown, "11");

    // A format=mp4 clip plays in a <video> of its own.
    browser.run(
        &format!(
            "const v = document.createElement('video'); v.id = 'clip-video'; v.muted = true;
             v.src = '/api/v1/file/{uuid}/clip?start_frame=5&end_frame=60&format=mp4&access_token={token}';
             document.body.append(v); v.play();"
        ),
        json!([]),
    );
    browser.wait_for(
        "document.getElementById('clip-video').currentTime > 0.5",
        WAIT,
    );

    // Nothing went wrong on the page.
    let problems: Vec<_> = browser
        .log()
        .into_iter()
        .filter(|(level, _)| level == "SEVERE" || level == "WARNING")
        .collect();
    assert!(problems.is_empty(), "console: {problems:?}");
}
