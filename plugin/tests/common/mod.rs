//! Shared by the plugin's integration tests.

use std::path::PathBuf;

use tempfile::TempDir;

/// The plugin library cargo built along with this test: `cargo test` leaves it in
/// target/<profile>/deps beside the test binary, `cargo build` copies it up to
/// target/<profile>; the newer one is this build's.
fn plugin_library() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let deps = exe.parent()?;
    [deps, deps.parent()?]
        .iter()
        .map(|dir| dir.join("libgstframecast.so"))
        .filter_map(|path| Some((std::fs::metadata(&path).ok()?.modified().ok()?, path)))
        .max()
        .map(|(_, path)| path)
}

/// A folder holding this build's `libgstframecast.so` alone, for `GST_PLUGIN_PATH`, so that
/// GStreamer scans nothing else. Testing this package builds its cdylib too, so a missing
/// library is a failure.
pub fn plugin_dir() -> TempDir {
    let library = plugin_library().expect("libgstframecast.so built with this test");
    let dir = TempDir::new().unwrap();
    std::fs::copy(&library, dir.path().join("libgstframecast.so")).unwrap();
    dir
}
