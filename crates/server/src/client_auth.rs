//! Client authentication against the registry, for the token, introspection and
//! revocation endpoints: the core decides, the cache of verified secrets keeps the
//! slow hash off the hot path, and a trusted issuer's keys come from its cache.

use jwtgrant_core::UnverifiedAssertion;
use jwtgrant_core::client_auth::{
    AuthenticatedClient, ClientAuthError, ClientCredentials, authenticate, authenticate_assertion,
};
use jwtgrant_core::model::Integration;
use jwtgrant_core::trusted_issuer::authenticate_federated_client;
use jwtgrant_store::JtiOutcome;

use crate::error::TokenEndpointError;
use crate::grants::trusted_issuer::issuer_keys;
use crate::state::{AppState, ClientLookupError};

/// Authenticates the client presenting `credentials`.
pub async fn authenticate_client(
    state: &AppState,
    credentials: &ClientCredentials,
) -> Result<AuthenticatedClient, TokenEndpointError> {
    let client = authenticate_with_store(state, credentials).await?;
    crate::audit::note(|facts| facts.client_id = Some(client.client_id.clone()));
    Ok(client)
}

async fn authenticate_with_store(
    state: &AppState,
    credentials: &ClientCredentials,
) -> Result<AuthenticatedClient, TokenEndpointError> {
    let integration = match credentials.client_id() {
        Some(id) => match state.client(id).await {
            Ok(integration) => integration,
            Err(ClientLookupError::Store(error)) => return Err(error.into()),
            // A document that cannot be used names no client.
            Err(ClientLookupError::Document(_)) => None,
        },
        None => None,
    };
    if let ClientCredentials::FederatedAssertion {
        client_id,
        issuer,
        assertion,
    } = credentials
    {
        return authenticate_federated(state, client_id, issuer, assertion, integration.as_deref())
            .await;
    }
    if let ClientCredentials::Assertion { assertion, .. } = credentials {
        let now = state.clock.now();
        let (client, guard) =
            authenticate_assertion(assertion, integration.as_deref(), &state.client_policy, now)?;
        // Single use, across restarts and instances, like grant assertions.
        if state.replay.record(&guard, now).await? == JtiOutcome::Replayed {
            return Err(ClientAuthError::ClientAssertionReplayed.into());
        }
        return Ok(client);
    }
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

/// Federated client authentication: a trusted issuer's token (`iss` the issuer)
/// authenticates the integration named by `client_id` when that issuer is bound to
/// it with `--client-authentication`; its keys, policy and condition decide, and a
/// `jti` is single use like every client assertion's (under `single-use`).
async fn authenticate_federated(
    state: &AppState,
    client_id: &str,
    iss: &str,
    assertion: &str,
    integration: Option<&Integration>,
) -> Result<AuthenticatedClient, TokenEndpointError> {
    let now = state.clock.now();
    let issuer = state
        .registry
        .trusted_issuer(iss)
        .await?
        .filter(|issuer| issuer.policy.client_authentication && issuer.integration_key == client_id)
        .ok_or(ClientAuthError::ClientAssertionClientId)?;
    let integration = integration.ok_or(ClientAuthError::ClientAssertionUnknownClient)?;
    let refused = ClientAuthError::ClientAssertion;
    let unverified = UnverifiedAssertion::parse(assertion).map_err(refused)?;
    issuer.check_trust(now).map_err(refused)?;
    let keys = issuer_keys(&state.issuer_keys, &issuer, unverified.kid(), now)
        .await
        .map_err(refused)?;
    let verified = unverified
        .verify_from_issuer(&issuer, &keys, &state.client_policy, now)
        .map_err(refused)?;
    let (client, guard) = authenticate_federated_client(
        &verified,
        &issuer,
        integration,
        state.config.clock_leeway_secs,
    )
    .map_err(refused)?;
    if let Some(guard) = guard
        && state.replay.record(&guard, now).await? == JtiOutcome::Replayed
    {
        return Err(ClientAuthError::ClientAssertionReplayed.into());
    }
    Ok(client)
}

/// The client that presents a JWT bearer grant's assertion, where the request names
/// one: authenticated when it sends credentials (a failure is 401 like on every
/// grant), named only by a bare `client_id`, and `None` when it sends neither, as
/// DocuSign's and Google's clients do.
pub async fn presenting_client(
    state: &AppState,
    credentials: &ClientCredentials,
) -> Result<Option<AuthenticatedClient>, TokenEndpointError> {
    match credentials {
        ClientCredentials::None => Ok(None),
        ClientCredentials::Public { client_id } => Ok(Some(AuthenticatedClient {
            client_id: client_id.clone(),
            confidential: false,
        })),
        ClientCredentials::Secret { .. }
        | ClientCredentials::Assertion { .. }
        | ClientCredentials::FederatedAssertion { .. } => {
            authenticate_client(state, credentials).await.map(Some)
        }
    }
}

/// The client of an authorization code or refresh grant: authenticated, and set up
/// for the browser flow (with a redirect URI); others get `unauthorized_client`.
pub async fn code_flow_client(
    state: &AppState,
    credentials: &ClientCredentials,
) -> Result<AuthenticatedClient, TokenEndpointError> {
    let client = authenticate_client(state, credentials).await?;
    let integration = match state.client(&client.client_id).await {
        Ok(integration) => integration,
        Err(ClientLookupError::Store(error)) => return Err(error.into()),
        Err(ClientLookupError::Document(_)) => None,
    };
    if integration.is_some_and(|i| i.redirect_uris.is_empty()) {
        return Err(TokenEndpointError::UnauthorizedClient {
            rule: "code_flow_not_allowed",
            reason:
                "this integration has no redirect URI, so it may not use the authorization code flow"
                    .into(),
        });
    }
    Ok(client)
}
