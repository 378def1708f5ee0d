//! `framecast serve`: bind, print where, serve until SIGTERM/SIGINT.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::admission::Admission;
use crate::auth::Verifier;
use crate::config::Config;
use crate::http::{self, AppState};
use crate::pipeline::warm::{DecoderPool, WarmSettings};
use crate::pipeline::PipelineFiles;
use crate::request::{Limits, Planner};

/// `config_file`: where `config` came from, read again on SIGHUP ([`crate::reload`]).
pub async fn serve(config: Config, config_file: Option<std::path::PathBuf>) -> anyhow::Result<()> {
    crate::pipeline::init()?;
    let pipelines = arc_swap::ArcSwap::from_pointee(PipelineFiles::load(&config.pipelines_dir)?);
    config.ensure_data_dir()?;
    let catalog = crate::catalog::open(&config).await?;
    let admission = Arc::new(Admission::new(
        config.encoding_pipeline_limit()?,
        config.thumbnail_pipeline_limit()?,
        config.pipeline_memory_bytes,
        Config::seconds("queue_timeout_seconds", config.queue_timeout_seconds)?,
    ));
    let decoders = DecoderPool::new(WarmSettings::from_config(&config)?, admission.clone());
    tokio::spawn(DecoderPool::evict_idle_periodically(Arc::downgrade(
        &decoders,
    )));
    let state = Arc::new(AppState {
        planner: Planner {
            catalog,
            storage: Arc::new(crate::storage::Storage::new(&config)?),
            limits: Limits::from_config(&config),
        },
        verifier: Verifier::start(&config).await?,
        pipelines,
        thumbnails: http::thumbnail_cache(config.thumbnail_cache_bytes),
        thumbnail_timeout: Config::seconds(
            "thumbnail_timeout_seconds",
            config.thumbnail_timeout_seconds,
        )?,
        label_font: config.label_font.clone(),
        clip_start_timeout: Duration::from_secs(config.clip_start_timeout_seconds),
        stall_timeout: Config::seconds("stall_timeout_seconds", config.stall_timeout_seconds)?,
        admission,
        import: http::ImportSettings {
            media_roots: config.media_roots.clone(),
            media_url_prefixes: config.media_url_prefixes.clone(),
            max_upload_bytes: config.max_upload_bytes,
            body_stall: Config::seconds("stall_timeout_seconds", config.stall_timeout_seconds)?,
        },
        decoders,
    });

    crate::reload::on_hangup(state.clone(), config_file)?;

    let mut limits = crate::conn::Limits::from_config(&config)?;
    limits.max_connections = fit_to_file_limit(limits.max_connections);
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let local = listener.local_addr()?;
    // Scripts and tests read this line to find the port when listen uses port 0.
    println!("framecast listening on http://{local}");
    std::io::stdout().flush()?;

    tokio::spawn(crate::memory::trim_when_idle(|| {
        crate::pipeline::live_pipelines() == 0
    }));
    // On the signal: no new connections (the listening socket is closed), connections not
    // answering a request are closed at once, running responses may finish, and after the
    // grace period those still open are dropped: their bodies' drops stop the pipelines.
    crate::conn::serve(
        listener,
        http::app(state, config.metrics_enabled),
        limits,
        shutdown_signal(),
        Duration::from_secs(config.shutdown_grace_seconds),
    )
    .await?;
    wait_for_pipelines_to_stop(PIPELINE_STOP_WAIT).await;
    tracing::info!("stopped");
    Ok(())
}

/// Raises the soft file-descriptor limit to the hard one, and returns `max_connections`
/// lowered to fit what is left after a reserve for everything else (the catalog,
/// pipelines' files and pipes): a quarter of the limit, 64 to 256. Past the limit, accept()
/// fails and every route (and /health) stops answering; under it, the connection layer's
/// own limit keeps room for new clients.
fn fit_to_file_limit(max_connections: usize) -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return max_connections;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    let reserve = (limit.rlim_cur / 4).clamp(64, 256);
    let room = limit.rlim_cur.saturating_sub(reserve).max(1);
    if (max_connections as u64) > room {
        tracing::warn!(
            max_connections,
            open_files_limit = limit.rlim_cur,
            lowered_to = room,
            "max_connections does not fit the open files limit: lowered"
        );
        return room as usize;
    }
    max_connections
}

/// How long stopping pipelines (set to NULL on threads of their own) may take at exit.
const PIPELINE_STOP_WAIT: Duration = Duration::from_secs(3);

/// Waits until every pipeline is set back to NULL, so that none is cut mid-write by the
/// process exit (a half-written element state is harmless, but the log should say if so).
async fn wait_for_pipelines_to_stop(limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    while crate::pipeline::live_pipelines() > 0 {
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(
                live = crate::pipeline::live_pipelines(),
                "pipelines still stopping at exit"
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down: no new connections, letting running responses finish");
}
