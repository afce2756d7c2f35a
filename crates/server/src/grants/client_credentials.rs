//! The client credentials grant (RFC 6749 section 4.4) as the server runs it: the
//! route has authenticated the client; rate-limit it as an integration, let the core
//! decide, sign. No refresh token.

use jwtgrant_core::client_auth::AuthenticatedClient;
use jwtgrant_core::grants::client_credentials::decide;
use jwtgrant_proto::JwtGrantResponse;

use crate::error::TokenEndpointError;
use crate::grants::issue;
use crate::state::AppState;
use crate::token_request::ClientCredentialsRequest;

/// Runs the client credentials grant for the authenticated `client`.
pub async fn grant(
    state: &AppState,
    now: i64,
    request: &ClientCredentialsRequest<'_>,
    client: &AuthenticatedClient,
) -> Result<JwtGrantResponse, TokenEndpointError> {
    let integration = state
        .registry
        .integration(&client.client_id)
        .await?
        .ok_or_else(|| {
            TokenEndpointError::Internal("an authenticated client has no integration".into())
        })?;
    state
        .rate_limit(
            "integration",
            &integration.key,
            state.config.rate_limit_per_integration,
        )
        .await?;
    let decision = decide(client, &integration, request.scope, &request.resources)?;
    issue(state, &decision, now)
}
