//! `framecast serve`: bind, print where, serve until SIGTERM/SIGINT.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use poem::listener::{Acceptor, Listener, TcpListener};
use poem::Server;

use crate::auth::Verifier;
use crate::catalog::SqliteCatalog;
use crate::config::Config;
use crate::http::{self, AppState};
use crate::pipeline::PipelineFiles;

pub async fn serve(config: Config) -> anyhow::Result<()> {
    crate::pipeline::init()?;
    let pipelines = Arc::new(PipelineFiles::load(&config.pipelines_dir)?);
    config.ensure_data_dir()?;
    let catalog = Arc::new(SqliteCatalog::open(&config.catalog_path())?);
    let secret = config.resolve_jwt_secret()?;
    let state = Arc::new(AppState {
        catalog,
        verifier: Verifier::new(&config, &secret)?,
        pipelines,
        thumbnails: http::thumbnail_cache(config.thumbnail_cache_bytes),
        thumbnail_timeout: Duration::from_secs(config.thumbnail_timeout_seconds),
        max_clip_seconds: config.max_clip_seconds,
        catalog_path: config.catalog_path(),
        clip_start_timeout: Duration::from_secs(config.clip_start_timeout_seconds),
    });

    let acceptor = TcpListener::bind(config.listen).into_acceptor().await?;
    let local = acceptor
        .local_addr()
        .into_iter()
        .find_map(|addr| addr.as_socket_addr().copied())
        .unwrap_or(config.listen);
    // Scripts and tests read this line to find the port when listen uses port 0.
    println!("framecast listening on http://{local}");
    std::io::stdout().flush()?;

    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(
            http::app(state),
            shutdown_signal(),
            Some(Duration::from_secs(config.shutdown_grace_seconds)),
        )
        .await?;
    tracing::info!("stopped");
    Ok(())
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
