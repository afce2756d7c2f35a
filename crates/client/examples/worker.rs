//! A worker that calls a protected API in a loop with a [`TokenSource`]: the first
//! call fetches a token, later calls reuse it until it nears expiry, and a 401 from
//! the API drops it so the next call fetches a new one.
//!
//! ```sh
//! JWTGRANT_URL=http://127.0.0.1:8080 INTEGRATION_KEY=... KEY_FILE=my-integration.pem \
//! USER_ID=... API_URL=http://127.0.0.1:9000/me \
//!   cargo run -p jwtgrant-client --example worker
//! ```
//!
//! Without `USER_ID` the worker asks for an application token (the integration must
//! be allowed them).

use std::time::Duration;

use jwtgrant_client::{BearerAuth as _, Jwtgrant, PrivateKey, TokenSource};

fn env(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("set {name}"))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,jwtgrant_client=debug".into()),
        )
        .init();

    let server = Jwtgrant::new(&env("JWTGRANT_URL")?)?;
    let key = PrivateKey::from_file(env("KEY_FILE")?)?;
    let api = env("API_URL")?;

    let mut builder = server
        .token_source(&env("INTEGRATION_KEY")?, key)
        .deadline(Duration::from_secs(20));
    builder = match std::env::var("USER_ID") {
        Ok(user_id) => builder
            .subject(user_id)
            .scopes(["signature", "impersonation"]),
        Err(_) => builder.scopes(["signature"]),
    };
    let tokens: TokenSource = builder.build()?;
    let http = reqwest::Client::new();

    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        let request = match http.get(&api).bearer_token_from(&tokens).await {
            Ok(request) => request,
            Err(error) => {
                // A consent_required error names the URL to send the user to.
                if let Some(url) = error.consent_url() {
                    eprintln!("the user must consent first: open {url}");
                } else {
                    eprintln!("no access token: {error}");
                }
                continue;
            }
        };
        match request.send().await {
            Ok(response) if response.status() == reqwest::StatusCode::UNAUTHORIZED => {
                // Revoked or rotated away: fetch a fresh token next time.
                tokens.invalidate().await;
                eprintln!("the API refused the token; it will be replaced");
            }
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                println!("{status}: {body}");
            }
            Err(error) => eprintln!("the API is unreachable: {error}"),
        }
    }
}
