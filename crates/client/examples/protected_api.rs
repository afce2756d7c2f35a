//! A tiny API protected by jwtgrant access tokens: `GET /me` needs a token with the
//! `signature` scope and answers with its claims; `GET /healthz` is open.
//!
//! ```sh
//! JWTGRANT_URL=http://127.0.0.1:8080 LISTEN=127.0.0.1:9000 \
//!   cargo run -p jwtgrant-client --example protected_api
//! curl -i http://127.0.0.1:9000/me                       # 401, WWW-Authenticate: Bearer
//! curl -i http://127.0.0.1:9000/me -H "Authorization: Bearer $TOKEN"
//! ```
//!
//! `AUDIENCE` sets the expected `aud` when the server issues tokens for another
//! audience than its issuer URL (`jwtgrant serve --access-token-audience`).

use axum::routing::get;
use axum::{Extension, Json, Router};
use jwtgrant_client::{AccessTokenClaims, Jwtgrant, RequireAccessToken, Verifier};

async fn me(Extension(claims): Extension<AccessTokenClaims>) -> Json<AccessTokenClaims> {
    Json(claims)
}

/// The API: `GET /me` behind the token check (scope `signature`), `GET /healthz`
/// open. A function of its own so the SDK's tests serve exactly this router.
pub fn app(verifier: Verifier) -> Router {
    Router::new()
        .route("/me", get(me))
        .route_layer(RequireAccessToken::new(verifier).scopes(["signature"]))
        .route("/healthz", get(|| async { "ok" }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,jwtgrant_client=debug".into()),
        )
        .init();

    let issuer = std::env::var("JWTGRANT_URL").map_err(|_| "set JWTGRANT_URL")?;
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:9000".into());

    let mut verifier = Jwtgrant::new(&issuer)?.verifier();
    if let Ok(audience) = std::env::var("AUDIENCE") {
        verifier = verifier.audience(audience);
    }
    let verifier = verifier.build()?;
    // Fail at start rather than on the first request when the server is unreachable.
    verifier.refresh().await?;

    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app(verifier)).await?;
    Ok(())
}
