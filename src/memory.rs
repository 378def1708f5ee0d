//! Giving freed memory back to the system once the server is idle.
//!
//! glibc keeps what is freed in its per-thread heaps (arenas) instead of returning it, so
//! after a burst (large thumbnails, thousands of connections) an idle server stayed at its
//! busiest size. `malloc_trim` returns those free pages; it is called here once the server
//! has become idle (no request being answered, no pipeline live) after activity. Calling it
//! when the last pipeline stops is not enough: responses and connection buffers are freed
//! after that.

//! Fewer arenas also help: glibc makes up to 8 per core, each keeping its own free pages.
//! Measured with `scripts/hostile.sh thumbnails head` on 2 cores (8 thumbnails of
//! 7680x7680, then 550 HEADs), idle RSS 5 s after: 183 MB as it was, 153 MB with the idle
//! trim, 96 MB with it and 4 arenas (start: 56 MB); thumbnail throughput with 1 to 8
//! clients (`scripts/bench-load.sh`) did not drop.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// Requests being answered now (from the connection layer).
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
/// Requests finished since start: tells whether anything happened since the last trim.
static FINISHED: AtomicU64 = AtomicU64::new(0);

pub fn request_started() {
    IN_FLIGHT.fetch_add(1, Ordering::Relaxed);
}

pub fn request_finished() {
    IN_FLIGHT.fetch_sub(1, Ordering::Relaxed);
    FINISHED.fetch_add(1, Ordering::Relaxed);
}

/// How often idleness is checked; a trim of a few hundred MB takes milliseconds.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Runs for the life of the server: trims after each busy period, once idle (no request in
/// flight and `no_pipelines()`).
pub async fn trim_when_idle(no_pipelines: impl Fn() -> bool) {
    let mut trimmed_at = FINISHED.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        let finished = FINISHED.load(Ordering::Relaxed);
        if finished != trimmed_at && IN_FLIGHT.load(Ordering::Relaxed) == 0 && no_pipelines() {
            trimmed_at = finished;
            tokio::task::spawn_blocking(give_free_memory_back);
        }
    }
}

/// glibc arenas allowed: twice the cores, at most 8 (see the module's note).
fn arena_limit() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (2 * cores).min(8)
}

/// Limits glibc's arenas, unless `MALLOC_ARENA_MAX` says otherwise. Call first thing in
/// `main`, before any thread is started.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; no other thread runs yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arena_limit() as libc::c_int);
        }
    }
}

/// Returns the allocator's free pages to the system.
pub fn give_free_memory_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases unused pages; it is safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}
