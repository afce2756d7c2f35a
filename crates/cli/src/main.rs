//! The `jwtgrant` binary: parses the command line and runs the server, an admin
//! command or a client command.

mod admin;
mod args;
mod assertion;
mod bench;
mod client;
mod keygen;
mod output;

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser as _;
use jwtgrant_server::{AppState, RawConfig, ServerConfig};
use jwtgrant_store::{OpenOptions, Store};

use crate::args::{Cli, Command, GlobalArgs, ServeArgs};

/// mimalloc: fewer cycles per allocation than glibc's malloc on the request path
/// (see docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Command::Serve(ServeArgs {
        worker_threads: Some(threads),
        ..
    }) = &cli.command
    {
        builder.worker_threads((*threads).max(1));
    }
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Reads `--config` (if any) as a TOML [`RawConfig`].
fn config_file(path: Option<&Path>) -> Result<RawConfig> {
    let Some(path) = path else {
        return Ok(RawConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config file {}", path.display()))
}

/// Flags and environment first, then the file, then defaults.
fn server_config(global: &GlobalArgs, serve: Option<&ServeArgs>) -> Result<ServerConfig> {
    let mut raw = RawConfig {
        data_dir: global.data_dir.clone(),
        database: global.database.clone(),
        ..RawConfig::default()
    };
    if let Some(s) = serve {
        raw.listen = s.listen.clone();
        raw.public_url = s.public_url.clone();
        raw.accept_audience = (!s.accept_audience.is_empty()).then(|| s.accept_audience.clone());
        raw.tls_cert = s.tls_cert.clone();
        raw.tls_key = s.tls_key.clone();
        raw.clock_leeway_secs = s.clock_leeway_secs;
        raw.max_assertion_lifetime_secs = s.max_assertion_lifetime_secs;
        raw.access_token_lifetime_secs = s.access_token_lifetime_secs;
        raw.refresh_token_lifetime_secs = s.refresh_token_lifetime_secs;
        raw.access_token_alg = s.access_token_alg.clone();
        raw.access_token_audience = s.access_token_audience.clone();
        raw.body_limit_bytes = s.body_limit_bytes;
        raw.registry_poll_ms = s.registry_poll_ms;
        raw.migrate_on_start = s.no_migrate.then_some(false);
        raw.redis = s.redis.clone();
        raw.redis_key_prefix = s.redis_key_prefix.clone();
        raw.rate_limit_per_client = s.rate_limit_per_client;
        raw.rate_limit_per_integration = s.rate_limit_per_integration;
    }
    raw.master_key = std::env::var("JWTGRANT_MASTER_KEY").ok();
    let raw = raw.or(config_file(global.config.as_deref())?);
    Ok(ServerConfig::from_raw(raw)?)
}

/// `JWTGRANT_*` variables in the environment that no option reads (a typo would
/// otherwise go unnoticed). The test harness's own `JWTGRANT_TEST_*` are left alone.
fn unknown_environment() -> Vec<String> {
    fn collect(command: &clap::Command, known: &mut Vec<String>) {
        known.extend(
            command
                .get_arguments()
                .filter_map(|arg| arg.get_env())
                .map(|name| name.to_string_lossy().into_owned()),
        );
        for sub in command.get_subcommands() {
            collect(sub, known);
        }
    }
    let mut known = vec!["JWTGRANT_MASTER_KEY".to_owned()];
    collect(&<Cli as clap::CommandFactory>::command(), &mut known);
    std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| name.starts_with("JWTGRANT_") && !name.starts_with("JWTGRANT_TEST_"))
        .filter(|name| !known.contains(name))
        .collect()
}

/// The configuration and store an admin command works on.
async fn admin_store(global: &GlobalArgs) -> Result<(ServerConfig, Arc<dyn Store>)> {
    let config = server_config(global, None)?;
    let store = jwtgrant_store::open(
        &config.store,
        &OpenOptions::migrate(config.migrate_on_start),
    )
    .await
    .context("cannot open the store")?;
    Ok((config, store))
}

async fn run(cli: Cli) -> Result<()> {
    let global = &cli.global;
    match cli.command {
        Command::Serve(args) => {
            let config = server_config(global, Some(&args))?;
            init_tracing(&args.log_format);
            for name in unknown_environment() {
                tracing::warn!(variable = %name, "unknown JWTGRANT_ environment variable ignored");
            }
            serve(config).await
        }
        Command::Assertion(args) => assertion::run(args),
        Command::Keygen(args) => keygen::run(args),
        Command::Token(args) => client::token(args).await,
        Command::Verify(args) => client::verify(args).await,
        Command::Migrate { json } => {
            let config = server_config(global, None)?;
            jwtgrant_store::open(&config.store, &OpenOptions::default())
                .await
                .context("migration failed")?;
            output::emit(
                json,
                serde_json::json!({"migrated": true}),
                "migrations applied\n".into(),
            )
        }
        Command::Bench(args) => {
            let store = if args.integration_key.is_some() {
                None
            } else {
                Some(admin_store(global).await?.1)
            };
            bench::run(args, store).await
        }
        Command::Integration(command) => {
            admin::integration(admin_store(global).await?.1.as_ref(), command).await
        }
        Command::User(command) => admin::user(admin_store(global).await?.1.as_ref(), command).await,
        Command::Account(command) => {
            admin::account(admin_store(global).await?.1.as_ref(), command).await
        }
        Command::Consent(command) => {
            admin::consent(admin_store(global).await?.1.as_ref(), command).await
        }
        Command::Keys(command) => {
            let (config, store) = admin_store(global).await?;
            admin::keys(store.as_ref(), command, &config).await
        }
    }
}

async fn serve(config: ServerConfig) -> Result<()> {
    let started = std::time::Instant::now();
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
    tracing::info!("shutting down: finishing requests in flight");
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
