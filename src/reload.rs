//! Rotation without a restart: on SIGHUP the server reads its configuration again and
//! swaps in the verification keys (`jwt_secrets`, `jwt_secret`, `jwt_public_key(s)`,
//! `jwks_url`, `jwt_issuer`, `jwt_audience`, `jwt_leeway_seconds`) and the pipeline files.
//! Other settings need a restart.
//!
//! All or nothing: if the configuration, a key or a pipeline file is bad, nothing changes,
//! the log says why, and `framecast_reloads_total{outcome="refused"}` counts it. Requests
//! already running keep the pipeline files they started with.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};

use crate::auth::KeySet;
use crate::config::Config;
use crate::http::AppState;
use crate::metrics::{metrics, ReloadLabels, ReloadOutcome};
use crate::pipeline::PipelineFiles;

/// Installs the SIGHUP handler now (before the server says it is listening: a SIGHUP
/// arriving before the handler would end the process), and reloads on each signal.
pub fn on_hangup(state: Arc<AppState>, config_file: Option<PathBuf>) -> std::io::Result<()> {
    let mut hangup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            reload(&state, config_file.as_deref()).await;
        }
    });
    Ok(())
}

/// One reload: everything read and checked first, then swapped.
pub async fn reload(state: &AppState, config_file: Option<&Path>) {
    let file = config_file.map(Path::to_owned);
    let loaded = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let config = Config::load(file.as_deref())?;
        let keys = KeySet::load(&config)?;
        let pipelines = PipelineFiles::load(&config.pipelines_dir)?;
        Ok((keys, pipelines, config.pipelines_dir))
    })
    .await
    .map_err(anyhow::Error::from)
    .and_then(|loaded| loaded);
    let outcome = match loaded {
        Ok((keys, pipelines, dir)) => {
            state.verifier.install(keys);
            state.pipelines.store(Arc::new(pipelines));
            tracing::info!(
                keys = %state.verifier.describe(),
                pipelines = %dir.display(),
                "reloaded keys and pipeline files"
            );
            // After the swap: a provider that does not answer keeps its old keys, and
            // must not hold back the rest of the reload.
            state.verifier.refresh_jwks().await;
            ReloadOutcome::Applied
        }
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "reload refused: keeping the current keys and pipeline files");
            ReloadOutcome::Refused
        }
    };
    metrics()
        .reloads
        .get_or_create(&ReloadLabels { outcome })
        .inc();
}
