//! Client authentication against the registry, for the token, introspection and
//! revocation endpoints: the core decides, the cache of verified secrets keeps the
//! slow hash off the hot path.

use jwtgrant_core::client_auth::{AuthenticatedClient, ClientCredentials, authenticate};

use crate::error::TokenEndpointError;
use crate::state::AppState;

/// Authenticates the client presenting `credentials`.
pub async fn authenticate_client(
    state: &AppState,
    credentials: &ClientCredentials,
) -> Result<AuthenticatedClient, TokenEndpointError> {
    let integration = match credentials.client_id() {
        Some(id) => state.registry.integration(id).await?,
        None => None,
    };
    let secret_ok = match (
        credentials,
        integration
            .as_deref()
            .and_then(|i| i.client_secret_hash.as_deref()),
    ) {
        (ClientCredentials::Secret { secret, .. }, Some(hash)) => {
            state.verified_secrets.verify(hash, secret).await
        }
        _ => false,
    };
    Ok(authenticate(
        credentials,
        integration.as_deref(),
        |_, _| secret_ok,
    )?)
}

/// The client of an authorization code or refresh grant: authenticated, and set up
/// for the browser flow (with a redirect URI); others get `unauthorized_client`.
pub async fn code_flow_client(
    state: &AppState,
    credentials: &ClientCredentials,
) -> Result<AuthenticatedClient, TokenEndpointError> {
    let client = authenticate_client(state, credentials).await?;
    let integration = state.registry.integration(&client.client_id).await?;
    if integration.is_some_and(|i| i.redirect_uris.is_empty()) {
        return Err(TokenEndpointError::UnauthorizedClient(
            "this integration has no redirect URI, so it may not use the authorization code flow"
                .into(),
        ));
    }
    Ok(client)
}
