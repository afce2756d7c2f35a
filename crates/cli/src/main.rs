//! The `jwtgrant` binary: parses the command line and runs the server, an admin
//! command or a client command.

mod admin;
mod args;
mod assertion;
mod audit;
mod bench;
mod client;
mod explain;
mod issuer;
mod keygen;
mod options;
mod output;
mod trust_target;

use std::future::Future;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser as _;
use jwtgrant_server::config::LogFormat;
use jwtgrant_server::telemetry::Traces;
use jwtgrant_server::{AppState, ServerConfig};
use jwtgrant_store::{OpenOptions, Store};

use crate::args::{Cli, Command};
use crate::options::{GlobalOptions, Settings};

/// mimalloc: fewer cycles per allocation than glibc's malloc on the request path
/// (see docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A runtime, with `threads` workers or one per core.
fn runtime(threads: Option<usize>) -> Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = threads {
        builder.worker_threads(threads.max(1));
    }
    builder
        .enable_all()
        .build()
        .context("cannot start the runtime")
}

/// Runs `future` on a runtime of one worker per core.
fn block_on(future: impl Future<Output = Result<()>>) -> Result<()> {
    runtime(None)?.block_on(future)
}

/// The configuration of a command that takes only the global flags; deprecated
/// names it used are warned of on stderr.
fn admin_settings(global: &GlobalOptions) -> Result<Settings> {
    let settings = Settings::resolve(global, None)?;
    for warning in &settings.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(settings)
}

/// The configuration and store an admin command works on.
async fn admin_store(global: &GlobalOptions) -> Result<(ServerConfig, Arc<dyn Store>)> {
    let config = admin_settings(global)?.config;
    let store = jwtgrant_store::open(
        &config.store,
        &OpenOptions::migrate(config.migrate_on_start),
    )
    .await
    .context("cannot open the store")?;
    Ok((config, store))
}

fn run(cli: Cli) -> Result<()> {
    let global = &cli.global;
    match cli.command {
        Command::Serve(flags) => {
            // Read before the runtime starts: worker_threads sizes it.
            let settings = Settings::resolve(global, Some(&flags))?;
            // Nothing of the trace pipeline exists unless --otlp-endpoint is set.
            let traces = settings
                .config
                .otlp_endpoint
                .as_deref()
                .map(Traces::start)
                .transpose()?;
            init_tracing(settings.config.log_format, traces.as_ref());
            for warning in &settings.warnings {
                tracing::warn!("{warning}");
            }
            let command = <Cli as clap::CommandFactory>::command();
            for name in options::unknown_variables(&command) {
                tracing::warn!(variable = %name, "unknown JWTGRANT_ environment variable ignored");
            }
            let served = runtime(settings.config.worker_threads)?.block_on(serve(settings.config));
            // The runtime is gone: the last spans are sent from here.
            if let Some(traces) = traces {
                traces.shutdown();
            }
            served
        }
        Command::Config(args) => {
            let settings = Settings::resolve(global, Some(&args.serve))?;
            for warning in &settings.warnings {
                eprintln!("warning: {warning}");
            }
            settings.print(args.json)
        }
        Command::Assertion(args) => assertion::run(args),
        Command::Keygen(args) => keygen::run(args),
        Command::Token(args) => block_on(client::token(args)),
        Command::Verify(args) => block_on(client::verify(args)),
        Command::Migrate { json } => {
            let config = admin_settings(global)?.config;
            block_on(async {
                jwtgrant_store::open(&config.store, &OpenOptions::default())
                    .await
                    .context("migration failed")?;
                output::emit(
                    json,
                    serde_json::json!({"migrated": true}),
                    "migrations applied\n".into(),
                )
            })
        }
        Command::Bench(args) => block_on(async {
            let store = if args.integration_key.is_some() || args.issuer.is_some() {
                None
            } else {
                Some(admin_store(global).await?.1)
            };
            bench::run(*args, store).await
        }),
        Command::Integration(command) => block_on(async {
            admin::integration(admin_store(global).await?.1.as_ref(), command).await
        }),
        Command::Issuer(command) => block_on(async {
            let (config, store) = admin_store(global).await?;
            issuer::issuer(store.as_ref(), command, config.allow_insecure_issuer_urls).await
        }),
        Command::Audit(command) => {
            block_on(async { audit::audit(admin_store(global).await?.1.as_ref(), command).await })
        }
        Command::Explain(args) => {
            let settings = Settings::resolve(global, Some(&args.serve))?;
            for warning in &settings.warnings {
                eprintln!("warning: {warning}");
            }
            block_on(explain::run(settings.config, *args))
        }
        Command::TrustTarget(command) => block_on(async {
            trust_target::trust_target(admin_store(global).await?.1.as_ref(), command).await
        }),
        Command::User(command) => {
            block_on(async { admin::user(admin_store(global).await?.1.as_ref(), command).await })
        }
        Command::Account(command) => {
            block_on(async { admin::account(admin_store(global).await?.1.as_ref(), command).await })
        }
        Command::Consent(command) => {
            block_on(async { admin::consent(admin_store(global).await?.1.as_ref(), command).await })
        }
        Command::Keys(command) => block_on(async {
            let (config, store) = admin_store(global).await?;
            admin::keys(store.as_ref(), command, &config).await
        }),
    }
}

async fn serve(config: ServerConfig) -> Result<()> {
    let started = std::time::Instant::now();
    raise_open_file_limit();
    let store = jwtgrant_store::open(
        &config.store,
        &OpenOptions::migrate(config.migrate_on_start),
    )
    .await
    .context("cannot open the store")?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let bound = listener.local_addr()?;
    let state = AppState::new(config, Arc::clone(&store), bound).await?;
    tracing::info!(
        listen = %bound,
        issuer = %state.issuer,
        tls = state.config.tls.is_some(),
        ready_ms = started.elapsed().as_millis() as u64,
        "jwtgrant serving"
    );
    jwtgrant_server::serve(listener, state, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Raises the open-file limit to its hard limit, so that `max_connections` and not
/// a low default decides how many clients are served at once, and says so.
fn raise_open_file_limit() {
    #[cfg(unix)]
    match jwtgrant_server::listener::raise_open_file_limit() {
        Ok(limit) if limit.soft > limit.was => tracing::info!(
            from = limit.was,
            to = limit.soft,
            "raised the open-file limit to its hard limit"
        ),
        Ok(limit) => tracing::info!(
            open_file_limit = limit.soft,
            "the open-file limit is at its hard limit"
        ),
        Err(error) => tracing::warn!(%error, "the open-file limit could not be raised"),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: no new connections; finishing requests in flight");
}

/// Logs to stderr by `RUST_LOG` (default `info`); with `traces`, the spans of
/// [`jwtgrant_server::telemetry::TARGET`] also go to the exporter, each layer
/// filtered on its own so the log shows what it showed before.
fn init_tracing(format: LogFormat, traces: Option<&Traces>) {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::{Layer as _, fmt};

    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let Some(traces) = traces else {
        let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
        if format == LogFormat::Json {
            builder.json().init();
        } else {
            builder.init();
        }
        return;
    };
    let log = fmt::layer().with_writer(std::io::stderr);
    let log = if format == LogFormat::Json {
        log.json().with_filter(filter).boxed()
    } else {
        log.with_filter(filter).boxed()
    };
    tracing_subscriber::registry()
        .with(log)
        .with(traces.layer())
        .init();
    tracing::info!("exporting traces over OTLP/HTTP");
}
