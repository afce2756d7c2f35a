//! The client commands `jwtgrant token` (the JWT bearer or the client credentials
//! grant) and `jwtgrant verify`: thin shells over the SDK (`jwtgrant-client`), so
//! the shell and Rust services behave the same.

use anyhow::{Context, Result, bail};
use jwtgrant_client::{Jwtgrant, PrivateKey, TokenSourceBuilder, TokenSourceError, Verifier};
use jwtgrant_proto::DEFAULT_SCOPES;
use serde_json::json;

use crate::args::{TokenArgs, VerifyArgs};
use crate::output::emit;

/// Exit code for an OAuth error from the server (other failures exit 1).
const OAUTH_ERROR_EXIT: i32 = 2;

/// Gets an access token; an OAuth error prints `error: description` and exits 2.
pub async fn token(args: TokenArgs) -> Result<()> {
    let key =
        PrivateKey::from_file(&args.key).with_context(|| format!("{}", args.key.display()))?;
    let builder = match args.grant.as_str() {
        "jwt-bearer" => jwt_bearer(&args, key)?,
        "client-credentials" => client_credentials(&args, key)?,
        other => bail!("unknown --grant {other}: use jwt-bearer or client-credentials"),
    };
    let source = builder.build()?;
    match source.token().await {
        Ok(token) => {
            let response = token.to_response();
            emit(
                args.json,
                serde_json::to_value(&response)?,
                format!("{}\n", response.access_token),
            )
        }
        Err(TokenSourceError::OAuth(error)) => {
            eprintln!("{error}");
            std::process::exit(OAUTH_ERROR_EXIT);
        }
        Err(other) => Err(other.into()),
    }
}

/// The client credentials grant: the integration's own token, the client
/// authenticated by a client assertion the SDK signs.
fn client_credentials(args: &TokenArgs, key: PrivateKey) -> Result<TokenSourceBuilder> {
    if args.user_id.is_some() {
        bail!(
            "--user-id is not for --grant client-credentials: its token is the integration's own"
        );
    }
    let mut builder = match (&args.token_endpoint, &args.server) {
        (Some(endpoint), _) => TokenSourceBuilder::client_credentials(&args.integration_key, key)
            .token_endpoint(endpoint.clone()),
        (None, Some(server)) => {
            Jwtgrant::new(server)?.client_credentials(&args.integration_key, key)
        }
        (None, None) => bail!("give --server or --token-endpoint"),
    };
    match args.audiences.as_slice() {
        [] => {}
        [audience] => builder = builder.audience(audience.clone()),
        _ => bail!("a client assertion has one audience: give --aud once"),
    }
    if !args.scopes.is_empty() {
        builder = builder.scopes(args.scopes.clone());
    }
    Ok(builder)
}

/// The JWT bearer grant: the signed assertion is the grant.
fn jwt_bearer(args: &TokenArgs, key: PrivateKey) -> Result<TokenSourceBuilder> {
    let mut builder = match (&args.token_endpoint, &args.server) {
        (Some(endpoint), _) => {
            TokenSourceBuilder::new(&args.integration_key, key).token_endpoint(endpoint.clone())
        }
        (None, Some(server)) => Jwtgrant::new(server)?.token_source(&args.integration_key, key),
        (None, None) => bail!("give --server or --token-endpoint"),
    };
    if !args.audiences.is_empty() {
        let audiences = args.audiences.clone();
        builder = builder.assertion(|assertion| assertion.audiences(audiences));
    }
    let scopes = match (&args.user_id, args.scopes.is_empty()) {
        (Some(_), true) => DEFAULT_SCOPES.map(str::to_owned).to_vec(),
        _ => args.scopes.clone(),
    };
    if let Some(user) = &args.user_id {
        builder = builder.subject(user.clone());
    }
    if !scopes.is_empty() {
        builder = builder.scopes(scopes);
    }
    Ok(builder)
}

/// Verifies an access token and prints its claims as JSON, or why not.
pub async fn verify(args: VerifyArgs) -> Result<()> {
    let mut builder = Verifier::discover(args.server.trim_end_matches('/'));
    if let Some(audience) = &args.audience {
        builder = builder.audience(audience.clone());
    }
    let verifier = builder.build()?;
    let claims = verifier
        .verify_with_scopes(args.token.trim(), &args.scopes)
        .await
        .context("the token is not valid")?;
    let value = json!(claims);
    let text = serde_json::to_string_pretty(&value)? + "\n";
    emit(false, value, text)
}
