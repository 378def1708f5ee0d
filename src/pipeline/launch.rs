//! A [`Composition`] as a shell command: `GST_PLUGIN_PATH=... gst-launch-1.0 -q ...`,
//! which `framecast explain` prints and the server logs at debug level.

use std::path::PathBuf;

use super::Composition;

/// Where gst-launch-1.0 finds framecast's plugin: beside the running binary, where cargo
/// puts `libgstframecast.so` (`cargo build --workspace`). `cargo test` alone leaves the
/// plugin in `deps/` (and may leave an older copy beside the binary): the newer copy wins.
pub fn plugin_dir() -> PathBuf {
    let dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("."));
    let modified = |dir: &std::path::Path| {
        std::fs::metadata(dir.join("libgstframecast.so"))
            .and_then(|m| m.modified())
            .ok()
    };
    let deps = dir.join("deps");
    match (modified(&dir), modified(&deps)) {
        (None, Some(_)) => deps,
        (Some(beside), Some(built)) if built > beside => deps,
        _ => dir,
    }
}

/// A shell command line: `GST_PLUGIN_PATH=... gst-launch-1.0 -q <words>`, each word
/// quoted for the shell as needed; `... ! fdsink fd=1 | cat > OUTPUT` when the output must
/// not be seekable (fragmented MP4), as the server's appsink is not.
pub fn launch_line(composition: &Composition, output: &str) -> String {
    let quote = |s: &str| {
        shlex::try_quote(s)
            .map(|q| q.into_owned())
            .unwrap_or_else(|_| s.to_owned())
    };
    let words: Vec<String> = composition
        .launch_words(output)
        .iter()
        .map(|w| quote(w))
        .collect();
    let line = format!(
        "GST_PLUGIN_PATH={} gst-launch-1.0 -q {}",
        quote(&plugin_dir().to_string_lossy()),
        words.join(" ")
    );
    if composition.writes_to_pipe() {
        format!("{line} | cat > {}", quote(output))
    } else {
        line
    }
}
