//! `framecast serve`: bind, print where, serve until SIGTERM/SIGINT.

use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{LocalAddr, RemoteAddr};
use poem::{http::uri::Scheme, Server};
use tokio_io_timeout::TimeoutStream;

use crate::admission::Admission;
use crate::auth::Verifier;
use crate::config::Config;
use crate::http::{self, AppState};
use crate::pipeline::PipelineFiles;
use crate::request::Planner;

pub async fn serve(config: Config) -> anyhow::Result<()> {
    crate::pipeline::init()?;
    let pipelines = Arc::new(PipelineFiles::load(&config.pipelines_dir)?);
    config.ensure_data_dir()?;
    let catalog = crate::catalog::open(&config).await?;
    let secret = config.resolve_jwt_secret()?;
    let admission = Admission::new(
        config.encoding_pipeline_limit()?,
        config.thumbnail_pipeline_limit()?,
        config.pipeline_memory_bytes,
        Config::seconds("queue_timeout_seconds", config.queue_timeout_seconds)?,
    );
    let state = Arc::new(AppState {
        planner: Planner {
            catalog,
            storage: Arc::new(crate::storage::Storage::new(&config)?),
            limits: config.limits(),
        },
        verifier: Verifier::new(&config, &secret)?,
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
    });

    let acceptor = WriteTimeout {
        inner: TcpListener::bind(config.listen).into_acceptor().await?,
        timeout: state.stall_timeout,
    };
    let local = acceptor
        .local_addr()
        .into_iter()
        .find_map(|addr| addr.as_socket_addr().copied())
        .unwrap_or(config.listen);
    // Scripts and tests read this line to find the port when listen uses port 0.
    println!("framecast listening on http://{local}");
    std::io::stdout().flush()?;

    // On the signal poem stops accepting (the listening socket is closed), lets every
    // connection finish its running response, and after the grace period drops those still
    // open: their bodies' drops then stop the pipelines.
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(
            http::app(state, config.metrics_enabled),
            shutdown_signal(),
            Some(Duration::from_secs(config.shutdown_grace_seconds)),
        )
        .await?;
    wait_for_pipelines_to_stop(PIPELINE_STOP_WAIT).await;
    tracing::info!("stopped");
    Ok(())
}

/// Accepts like `inner`, with a write timeout on every connection: a client that reads
/// nothing for `timeout` is disconnected. Without it, a stalled client's connection (and
/// the response data queued for it) stays until the client acts, even after its stream
/// has given up on it. Slow readers are unaffected: any progress restarts the timeout.
struct WriteTimeout<A> {
    inner: A,
    timeout: Duration,
}

impl<A: Acceptor> Acceptor for WriteTimeout<A> {
    type Io = Pin<Box<TimeoutStream<A::Io>>>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> std::io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (io, local, remote, scheme) = self.inner.accept().await?;
        let mut io = TimeoutStream::new(io);
        io.set_write_timeout(Some(self.timeout));
        Ok((Box::pin(io), local, remote, scheme))
    }
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
