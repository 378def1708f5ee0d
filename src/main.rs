use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use framecast::auth::{self, ALL_FILES_SCOPE};
use framecast::catalog::{self, FileUuid};
use framecast::config::Config;
use framecast::pipeline::PipelineFiles;
use framecast::request::Planner;
use framecast::storage::{Location, Storage};

#[derive(Parser)]
#[command(name = "framecast", version, about = "HTTP video server on GStreamer")]
struct Cli {
    /// TOML settings file; FRAMECAST_* environment variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server.
    Serve,
    /// Register a video (a path, an http(s):// URL or s3://bucket/key); prints its file uuid.
    Import {
        video: String,
        /// Use this uuid (32 hex digits) instead of a new one; replaces an existing entry.
        #[arg(long, value_name = "HEX32")]
        uuid: Option<FileUuid>,
        /// Detections as a JSON array or JSON lines.
        #[arg(long, value_name = "FILE")]
        detections: Option<PathBuf>,
    },
    /// Print a signed access token.
    Token {
        /// Grant this file (repeatable).
        #[arg(
            long = "file",
            value_name = "UUID",
            required_unless_present_any = ["all_files", "scopes"]
        )]
        files: Vec<FileUuid>,
        /// Grant every file.
        #[arg(long, conflicts_with = "files")]
        all_files: bool,
        /// Add this scope (repeatable): files:read, files:write (import, re-detect,
        /// delete over HTTP), file:UUID.
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// Print the viewer's URL with the token (`http://LISTEN/ui/#access_token=...`).
        #[arg(long)]
        url: bool,
    },
    /// List registered files.
    Files,
    /// Validate the pipeline description files without starting the server.
    Check,
    /// Print the gst-launch-1.0 command reproducing a request, e.g.
    /// '/api/v1/file/UUID/thumbnail?frame=1000'.
    Explain {
        url: String,
        /// File the command writes the response body to.
        #[arg(long, value_name = "FILE")]
        output: Option<String>,
    },
    /// Copy the SQLite catalog to FILE, consistently, while the server keeps running.
    Backup {
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    framecast::memory::limit_arenas();
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Serve => "info",
        _ => "warn",
    };
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: not in the journal or a log file.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FRAMECAST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .init();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("framecast: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => {
            let runtime = tokio::runtime::Runtime::new()?;
            let served = runtime.block_on(framecast::serve::serve(config, cli.config));
            // A thumbnail pipeline still running on a blocking thread ends by its own
            // timeout; exit without waiting for it.
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
            served
        }
        Command::Import {
            video,
            uuid,
            detections,
        } => {
            let uuid = block_on(async {
                let catalog = catalog::open(&config).await?;
                let storage = Storage::new(&config)?;
                let video = Location::parse(&video)?;
                let uuid = framecast::import::import(
                    &*catalog,
                    &storage,
                    &video,
                    uuid,
                    detections.as_deref(),
                )
                .await?;
                anyhow::Ok(uuid)
            })?;
            println!("{uuid}");
            Ok(())
        }
        Command::Token {
            files,
            all_files,
            scopes,
            ttl,
            url,
        } => {
            let mut scope: Vec<String> = if all_files {
                vec![ALL_FILES_SCOPE.to_owned()]
            } else {
                files.iter().map(|uuid| format!("file:{uuid}")).collect()
            };
            for given in scopes {
                // A space would split it into two scopes in the claim.
                anyhow::ensure!(
                    !given.is_empty() && !given.contains(char::is_whitespace),
                    "--scope {given:?}: one scope, without spaces"
                );
                if !scope.contains(&given) {
                    scope.push(given);
                }
            }
            let key = auth::SigningKey::from_config(&config)?;
            let token = auth::issue(&config, &key, &scope, ttl)?;
            if url {
                // A server listening on every interface is reached on loopback from here.
                let mut address = config.listen;
                if address.ip().is_unspecified() {
                    address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                println!("http://{address}/ui/#access_token={token}");
            } else {
                println!("{token}");
            }
            Ok(())
        }
        Command::Files => {
            let files =
                block_on(async { anyhow::Ok(catalog::open(&config).await?.list_files().await?) })?;
            println!(
                "{:<32}  {:>9}  {:>7}  {:>8}  {:>10}  path",
                "uuid", "duration", "fps", "frames", "detections"
            );
            for f in files {
                println!(
                    "{:<32}  {:>8.2}s  {:>7.3}  {:>8}  {:>10}  {}",
                    f.uuid,
                    f.duration_seconds,
                    f.fps,
                    f.frames,
                    f.detections,
                    f.path.display()
                );
            }
            Ok(())
        }
        Command::Check => {
            load_pipelines(&config)?;
            println!("pipelines in {} are valid", config.pipelines_dir.display());
            Ok(())
        }
        Command::Explain { url, output } => {
            let pipelines = load_pipelines(&config)?;
            let line = block_on(async {
                let planner = Planner {
                    catalog: catalog::open(&config).await?,
                    storage: Arc::new(Storage::new(&config)?),
                    limits: framecast::request::Limits::from_config(&config),
                };
                anyhow::Ok(
                    framecast::explain::launch_line(
                        &url,
                        &planner,
                        &pipelines,
                        config.label_font.as_deref(),
                        output.as_deref(),
                    )
                    .await?,
                )
            })?;
            println!("{line}");
            Ok(())
        }
        Command::Backup { file } => backup(&config, &file),
    }
}

/// `framecast backup FILE`: the SQLite catalog copied online; a PostgreSQL catalog is
/// refused with `backup::POSTGRES_ADVICE`.
fn backup(config: &Config, file: &std::path::Path) -> anyhow::Result<()> {
    let catalog = match config.catalog_setting()? {
        framecast::config::CatalogSetting::Sqlite(path) => path,
        framecast::config::CatalogSetting::Postgres(_) => {
            anyhow::bail!(framecast::catalog::backup::POSTGRES_ADVICE)
        }
    };
    let copied = framecast::catalog::backup::backup_sqlite(&catalog, file)?;
    println!(
        "backed up {} to {} ({} bytes)",
        catalog.display(),
        file.display(),
        copied.bytes
    );
    Ok(())
}

fn load_pipelines(config: &Config) -> anyhow::Result<PipelineFiles> {
    framecast::pipeline::init()?;
    Ok(PipelineFiles::load(&config.pipelines_dir)?)
}

/// Runs a CLI command's catalog work: the catalog is async, the CLI is not.
fn block_on<T>(work: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(work)
}
