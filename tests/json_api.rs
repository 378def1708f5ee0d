//! The JSON API: files within a token's scope and paged, one file's record, detections of a
//! frame span with their times, traces, frame times against ffprobe's, the OpenAPI document.

mod common;

use std::path::Path;
use std::process::Command;

use common::{assert_json_error, bframes_mp4, client, edit_list_mp4, small_mp4, Server};
use serde_json::Value;

const DETECTIONS: &str = r#"
{"frame": 3, "x": 10, "y": 20, "w": 30, "h": 40, "label": "face", "confidence": 0.5}
{"frame": 5, "x": 11, "y": 21, "w": 31, "h": 41, "trace_id": 7, "identity": "alice"}
{"frame": 9, "x": 12, "y": 22, "w": 32, "h": 42, "trace_id": 7}
{"frame": 9, "x": 50, "y": 60, "w": 20, "h": 20, "trace_id": 2}
"#;

fn get(server: &Server, token: Option<&str>, path: &str) -> reqwest::blocking::Response {
    let mut request = client().get(server.url(&format!("/api/v1{path}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().unwrap()
}

fn json(server: &Server, token: &str, path: &str) -> Value {
    let response = get(server, Some(token), path);
    assert_eq!(response.status(), 200, "{path}");
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().unwrap()
}

/// Presentation times of the video's frames in presentation order, as ffprobe reads them.
fn ffprobe_times(video: &Path) -> Vec<f64> {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["frame=pts_time", "-of", "csv=p=0"])
        .arg(video)
        .output()
        .unwrap();
    let mut times: Vec<f64> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect();
    times.sort_by(f64::total_cmp);
    times
}

#[test]
fn files_detections_traces_and_frames() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let detections = dir.path().join("d.jsonl");
    std::fs::write(&detections, DETECTIONS.trim_start()).unwrap();
    let video = bframes_mp4();
    let a = server.import(&video, Some(&detections));
    let b = server.import(&small_mp4(), None);
    let c = server.import(&edit_list_mp4(), None);
    let all = server.all_files_token();

    // A token for one file sees that file only.
    let only_a = server.token(&[&a]);
    let files = json(&server, &only_a, "/files");
    assert_eq!(files["files"].as_array().unwrap().len(), 1);
    let file = &files["files"][0];
    assert_eq!(file["uuid"], a.as_str());
    // Generated media is named after its recipe: thumb-bframes-<hash>.mp4.
    let name = file["name"].as_str().unwrap();
    assert!(
        name.starts_with("thumb-bframes-") && name.ends_with(".mp4"),
        "{name}"
    );
    assert_eq!(file["frames"], 100);
    assert_eq!(
        (file["width"].as_u64(), file["height"].as_u64()),
        (Some(320), Some(240))
    );
    assert_eq!(file["audio"], true);
    assert_eq!(file["detections"], 4);
    assert_eq!(file["fps"], 25.0);
    assert!(file.get("path").is_none(), "no server paths");
    assert_eq!(files["next_after"], Value::Null);

    // Every file, one per page.
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let page = json(&server, &all, &format!("/files?limit=1{after}"));
        let items = page["files"].as_array().unwrap();
        assert!(items.len() <= 1);
        seen.extend(items.iter().map(|f| f["uuid"].as_str().unwrap().to_owned()));
        match page["next_after"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    let mut want = vec![a.clone(), b.clone(), c.clone()];
    want.sort();
    assert_eq!(seen, want);

    let record = json(&server, &all, &format!("/file/{b}"));
    assert_eq!(record["uuid"], b.as_str());
    assert_eq!(record["video_codec"], "h264");
    assert_eq!(record["frames"], 50);
    assert_eq!(record["detections"], 0);

    // Detections of a span, with their frames' times.
    let span = json(
        &server,
        &only_a,
        &format!("/file/{a}/detections?start_frame=4&end_frame=9"),
    );
    let rows = span["detections"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["frame"], 5);
    assert_eq!(rows[0]["identity"], "alice");
    assert_eq!(rows[0]["trace_id"], 7);
    assert!(
        (rows[0]["time"].as_f64().unwrap() - 0.2).abs() < 1e-6,
        "{span}"
    );
    assert_eq!(
        (span["start_frame"].as_u64(), span["end_frame"].as_u64()),
        (Some(4), Some(9))
    );
    // Default span: from start_frame as far as the bound allows.
    let rest = json(
        &server,
        &only_a,
        &format!("/file/{a}/detections?start_frame=6"),
    );
    assert_eq!(rest["end_frame"], 99);
    assert_eq!(rest["detections"].as_array().unwrap().len(), 2);

    let traces = json(&server, &only_a, &format!("/file/{a}/traces"));
    let list = traces["traces"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["trace_id"], 2);
    assert_eq!(list[1]["trace_id"], 7);
    assert_eq!(
        (
            list[1]["first_frame"].as_u64(),
            list[1]["last_frame"].as_u64()
        ),
        (Some(5), Some(9))
    );
    assert_eq!(list[1]["identity"], "alice");
    assert_eq!(list[1]["detections"], 2);
    let first = json(&server, &only_a, &format!("/file/{a}/traces?limit=1"));
    assert_eq!(first["next_after"], 2);
    let second = json(
        &server,
        &only_a,
        &format!("/file/{a}/traces?limit=1&after=2"),
    );
    assert_eq!(second["traces"][0]["trace_id"], 7);

    // Frame times: ffprobe's presentation times (Chromium's mediaTime, see tests/browser.rs),
    // for a plain file; for an edit-list cut starting between two frames (1.3 s into a 25 fps
    // file), GStreamer's index keeps the 0.02 s the cut falls into its frame where ffmpeg
    // (and so Chromium) starts at 0: the same times but for that constant shift.
    for (uuid, path, shift) in [(&a, video.clone(), 0.0), (&c, edit_list_mp4(), 0.02)] {
        let frames = json(&server, &all, &format!("/file/{uuid}/frames"));
        let got: Vec<f64> = frames["frames"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["time"].as_f64().unwrap())
            .collect();
        let want = ffprobe_times(&path);
        assert!(
            got.len() <= want.len() && got.len() >= want.len().min(18),
            "{uuid}"
        );
        for (n, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!(
                (g - shift - w).abs() < 0.0005,
                "{path:?} frame {n}: {g} vs ffprobe {w}"
            );
        }
        // The cut's first frames decode from a keyframe hidden by the edit list.
        assert_eq!(frames["frames"][0]["keyframe"], uuid == &a);
    }
    let some = json(
        &server,
        &all,
        &format!("/file/{a}/frames?start_frame=10&end_frame=12"),
    );
    assert_eq!(some["frames"].as_array().unwrap().len(), 3);
    assert_eq!(some["frames"][0]["frame"], 10);

    // Refusals.
    assert_json_error(
        get(&server, Some(&only_a), &format!("/file/{b}")),
        403,
        "forbidden",
    );
    assert_json_error(get(&server, None, "/files"), 401, "unauthorized");
    for (path, needle) in [
        ("/files?limit=0", "limit"),
        ("/files?limit=1001", "1000"),
        ("/files?after=zz", "after"),
        (
            &format!("/file/{a}/detections?start_frame=0&end_frame=100") as &str,
            "99",
        ),
        (
            &format!("/file/{a}/detections?start_frame=5&end_frame=4"),
            "after",
        ),
        (&format!("/file/{a}/traces?after=x"), "after"),
        (&format!("/file/{a}/frames?end_frame=-1"), "end_frame"),
    ] {
        let message = assert_json_error(get(&server, Some(&all), path), 400, "bad_parameter");
        assert!(message.contains(needle), "{path}: {message}");
    }
}

#[test]
fn openapi_is_served_without_a_token() {
    let server = Server::start();
    let response = get(&server, None, "/openapi.json");
    assert_eq!(response.status(), 200);
    let spec: Value = response.json().unwrap();
    assert!(spec["paths"]["/files"]["get"].is_object());
    assert!(spec["paths"]["/file/{file_uuid}/frames"]["get"].is_object());
}
