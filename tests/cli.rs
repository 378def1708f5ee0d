//! The command-line contract: import (and its refusals), token, files.

mod common;

use common::{generated, small_mp4, Server};

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn files_listing(server: &Server) -> String {
    let output = server.cli(&["files"]);
    assert!(output.status.success(), "{}", stderr(&output));
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn import_refuses_what_gstreamer_cannot_play_and_changes_nothing() {
    let server = Server::start();
    let good = server.import(&small_mp4(), None);
    let before = files_listing(&server);

    let dir = tempfile::tempdir().unwrap();
    let random = dir.path().join("random.mp4");
    let bytes: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&random, bytes).unwrap();
    let text = dir.path().join("notes.mkv");
    std::fs::write(&text, "this is not a video\n".repeat(100)).unwrap();
    let audio_only = generated(
        "audio-only.m4a",
        &["-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac"],
    );
    let missing = dir.path().join("missing.mp4");

    for (video, needle) in [
        (&random, "GStreamer"),
        (&text, "GStreamer"),
        (&audio_only, "no video"),
        (&missing, "cannot read"),
    ] {
        let output = server.cli(&["import", video.to_str().unwrap()]);
        assert_eq!(output.status.code(), Some(1), "{video:?}");
        assert!(output.stdout.is_empty(), "nothing on stdout for {video:?}");
        assert!(
            stderr(&output).contains(needle),
            "{video:?}: {}",
            stderr(&output)
        );
    }
    assert_eq!(files_listing(&server), before);
    assert!(before.contains(&good));
}

#[test]
fn bad_detections_refuse_the_whole_import() {
    let server = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let detections = dir.path().join("d.jsonl");
    std::fs::write(
        &detections,
        "{\"frame\": 0, \"x\": 1, \"y\": 2, \"w\": 3, \"h\": 4}\n{\"frame\": 1, \"x\": 1, \"y\": 2, \"w\": 3}\n",
    )
    .unwrap();
    let output = server.cli(&[
        "import",
        small_mp4().to_str().unwrap(),
        "--detections",
        detections.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("line 2"), "{}", stderr(&output));
    assert!(!files_listing(&server).contains("small.mp4"));
}

#[test]
fn reimporting_a_uuid_replaces_it() {
    let server = Server::start();
    let uuid = "00112233445566778899aabbccddeeff";
    let dir = tempfile::tempdir().unwrap();
    let detections = dir.path().join("d.json");
    std::fs::write(
        &detections,
        r#"[{"frame": 0, "x": 1, "y": 2, "w": 3, "h": 4, "trace_id": 1},
            {"frame_number": 49, "x": 1, "y": 2, "w": 3, "h": 4, "label": "car", "confidence": 0.5}]"#,
    )
    .unwrap();
    let video = small_mp4();
    let import = |extra: &[&str]| {
        let mut args = vec!["import", video.to_str().unwrap(), "--uuid", uuid];
        args.extend(extra);
        let output = server.cli(&args);
        assert!(output.status.success(), "{}", stderr(&output));
        assert_eq!(String::from_utf8(output.stdout).unwrap().trim(), uuid);
    };
    import(&["--detections", detections.to_str().unwrap()]);
    let listing = files_listing(&server);
    let row = listing.lines().find(|l| l.starts_with(uuid)).unwrap();
    // uuid, duration, fps, frames, detections, path
    let columns: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(&columns[2..5], ["25.000", "50", "2"], "{row}");

    import(&[]);
    let listing = files_listing(&server);
    assert_eq!(listing.lines().filter(|l| l.starts_with(uuid)).count(), 1);
    let row = listing.lines().find(|l| l.starts_with(uuid)).unwrap();
    assert_eq!(row.split_whitespace().nth(4), Some("0"), "{row}");

    let bad = server.cli(&["import", video.to_str().unwrap(), "--uuid", "nothex"]);
    assert_eq!(bad.status.code(), Some(2), "clap usage error");
}

#[test]
fn token_needs_a_scope() {
    let server = Server::start();
    assert!(!server.cli(&["token"]).status.success());
    assert!(!server.cli(&["token", "--file", "abc"]).status.success());
    let token = server.cli(&["token", "--all-files", "--ttl", "60"]);
    assert!(token.status.success());
    assert_eq!(
        String::from_utf8(token.stdout)
            .unwrap()
            .trim()
            .split('.')
            .count(),
        3
    );
}

#[test]
fn secret_is_generated_once_with_private_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let data = tempfile::tempdir().unwrap();
    let run = || {
        std::process::Command::new(common::BIN)
            .args(["token", "--all-files"])
            .env("FRAMECAST_DATA_DIR", data.path())
            .env_remove("FRAMECAST_JWT_SECRET")
            .output()
            .unwrap()
    };
    assert!(run().status.success());
    let secret_file = data.path().join("jwt_secret");
    let first = std::fs::read(&secret_file).unwrap();
    assert_eq!(
        std::fs::metadata(&secret_file)
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert!(run().status.success());
    assert_eq!(std::fs::read(&secret_file).unwrap(), first);
}

#[test]
fn a_broken_pipeline_file_stops_check_and_serve_naming_file_and_line() {
    let data = tempfile::tempdir().unwrap();
    let pipelines = tempfile::tempdir().unwrap();
    // Every shipped chain, then a typo in one of them.
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, pipelines.path().join(path.file_name().unwrap())).unwrap();
    }
    std::fs::write(
        pipelines.path().join("thumbnail.gst"),
        "# a typo on line 3\nvideoconvert\n  ! jpegencc name=encoder quality=90\n",
    )
    .unwrap();
    let run = |command: &str| {
        std::process::Command::new(common::BIN)
            .arg(command)
            .env("FRAMECAST_DATA_DIR", data.path())
            .env("FRAMECAST_PIPELINES_DIR", pipelines.path())
            .env("FRAMECAST_LISTEN", "127.0.0.1:0")
            .env("FRAMECAST_JWT_SECRET", common::SECRET)
            .output()
            .unwrap()
    };
    for command in ["check", "serve"] {
        let output = run(command);
        assert_eq!(output.status.code(), Some(1), "{command}");
        let message = stderr(&output);
        assert!(
            message.contains("thumbnail.gst:3") && message.contains("jpegencc"),
            "{command}: {message}"
        );
    }
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines/thumbnail.gst"),
        pipelines.path().join("thumbnail.gst"),
    )
    .unwrap();
    assert!(run("check").status.success());
}
