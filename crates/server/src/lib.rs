//! The jwtgrant authorization server: axum endpoints over the sans-IO core and the
//! store. [`app`] builds the router (tests drive it without a socket); [`serve`] runs
//! it on a bound listener, with native TLS when configured, until `shutdown`.

pub mod audit;
pub mod client_addr;
pub mod client_auth;
pub mod client_documents;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod error;
pub mod explain;
pub mod fetch;
pub mod form;
pub mod grants;
pub mod issuer_keys;
pub mod listener;
pub mod metrics;
pub mod pages;
pub mod ratelimit;
pub mod registry;
pub mod replay;
pub mod routes;
pub mod sealing;
pub mod session;
pub mod signing;
pub mod state;
pub mod telemetry;
#[cfg(test)]
mod test_servers;
pub mod token_request;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use config::{ConfigError, RawConfig, ServerConfig};
pub use state::AppState;

/// The router with every endpoint; with traces on, each request in a span of its
/// own ([`telemetry::request_span`]).
pub fn app(state: Arc<AppState>) -> Router {
    let body_limit = state.config.body_limit_bytes;
    let traced = state.config.otlp_endpoint.is_some();
    let router = Router::new()
        .route("/oauth/token", post(routes::token::token))
        .route("/oauth/userinfo", get(routes::userinfo::userinfo))
        .route("/oauth/auth", get(routes::authorize::authorize))
        .route("/oauth/auth/decision", post(routes::authorize::decision))
        .route("/login", post(routes::authorize::login))
        .route("/logout", post(routes::authorize::logout))
        .route("/account/consents", get(routes::authorize::consents))
        .route(
            "/account/consents/revoke",
            post(routes::authorize::revoke_consent),
        )
        .route("/oauth/introspect", post(routes::introspect::introspect))
        .route("/oauth/revoke", post(routes::introspect::revoke))
        .route("/oauth/jwks", get(routes::discovery::jwks))
        .route(
            "/.well-known/oauth-authorization-server",
            get(routes::discovery::metadata),
        )
        .route(
            "/.well-known/openid-configuration",
            get(routes::discovery::metadata),
        )
        .route("/healthz", get(routes::ops::healthz))
        .route("/readyz", get(routes::ops::readyz))
        .route("/metrics", get(routes::ops::metrics))
        .layer(DefaultBodyLimit::max(body_limit));
    let router = if traced {
        router.layer(axum::middleware::from_fn(telemetry::request_span))
    } else {
        router
    };
    router.with_state(state)
}

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Reading the TLS files failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// The listener failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Serves `state` on `listener` (HTTPS when TLS is configured) until `shutdown`
/// resolves, every connection bounded in time and their number capped (see
/// [`listener`]); then lets requests in flight finish for at most the shutdown
/// grace period. Runs the registry poll and the `jti` sweep alongside.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let tls = match &state.config.tls {
        None => None,
        Some(tls) => {
            let rustls = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                .await
                .map_err(|e| ServeError::Tls(format!("{}: {e}", tls.cert.display())))?;
            Some(tokio_rustls::TlsAcceptor::from(rustls.get_inner()))
        }
    };
    let background = tokio::spawn(background_tasks(Arc::clone(&state)));
    let audit =
        tokio::spawn(Arc::clone(&state.audit).run(Arc::clone(&state.store), state.clock.clone()));
    listener::serve(
        listener,
        tls,
        app(Arc::clone(&state)),
        state.config.connections,
        state.config.shutdown_grace,
        shutdown,
    )
    .await;
    background.abort();
    // The decisions of the last requests are written before the server stops.
    state.audit.stop();
    let _ = audit.await;
    Ok(())
}

/// Polls the registry version and sweeps expired `jti`s.
async fn background_tasks(state: Arc<AppState>) {
    let mut poll = tokio::time::interval(state.config.registry_poll);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_sweep = state.clock.now();
    loop {
        poll.tick().await;
        match state.registry.refresh().await {
            // Keys cached for issuers that were removed are dropped with them.
            Ok(true) => match state.registry.trusted_issuers().await {
                Ok(issuers) => {
                    let ids: std::collections::HashSet<&str> =
                        issuers.values().map(|issuer| issuer.id.as_str()).collect();
                    state.issuer_keys.retain(|id| ids.contains(id));
                }
                Err(error) => tracing::warn!(%error, "trusted issuers could not be listed"),
            },
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "registry refresh failed"),
        }
        if let Err(error) = state.store.maintain().await {
            tracing::warn!(%error, "store maintenance failed");
        }
        let now = state.clock.now();
        if now - last_sweep >= 60 {
            last_sweep = now;
            state.rate_limiter.forget_idle();
            match state.store.sweep_authorizations(now).await {
                Ok(swept) if swept > 0 => tracing::debug!(swept, "forgot expired codes and tokens"),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "authorization sweep failed"),
            }
            match state.replay.sweep(now).await {
                Ok(swept) if swept > 0 => tracing::debug!(swept, "forgot expired jtis"),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "jti sweep failed"),
            }
        }
    }
}
