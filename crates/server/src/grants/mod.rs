//! The token endpoint's grants, one file each: each runs the core's decision with
//! what it needs from the store. What several share lives here: client
//! authentication and signing an access token with a refresh token beside it.

pub mod authorization_code;
pub mod jwt_bearer;
pub mod refresh_token;

use axum::http::{HeaderMap, header};
use jwtgrant_core::access_token::{self, IssuedAccessToken};
use jwtgrant_core::client_auth::{AuthenticatedClient, authenticate, read_credentials};
use jwtgrant_core::{GrantDecision, GrantError};
use jwtgrant_proto::JwtGrantResponse;
use jwtgrant_store::RefreshTokenRecord;

use crate::credentials::{random_token, token_hash};
use crate::error::TokenEndpointError;
use crate::routes::token::TokenForm;
use crate::state::AppState;

/// Authenticates the client of a token, introspection or revocation request: HTTP
/// Basic, `client_secret` in the form, or a public client's `client_id`.
pub async fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    form: &TokenForm,
) -> Result<AuthenticatedClient, TokenEndpointError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let credentials = read_credentials(
        authorization,
        form.get("client_id"),
        form.get("client_secret"),
    )?;
    let integration = match credentials.client_id() {
        Some(id) => state.registry.integration(id).await?,
        None => None,
    };
    let secret_ok = match (
        &credentials,
        integration
            .as_deref()
            .and_then(|i| i.client_secret_hash.as_deref()),
    ) {
        (jwtgrant_core::client_auth::ClientCredentials::Secret { secret, .. }, Some(hash)) => {
            state.verified_secrets.verify(hash, secret).await
        }
        _ => false,
    };
    Ok(authenticate(
        &credentials,
        integration.as_deref(),
        |_, _| secret_ok,
    )?)
}

/// An access token for `decision` and a fresh refresh token of chain `family_id`:
/// the answer, and the record to store before the answer is sent.
pub fn issue_with_refresh(
    state: &AppState,
    decision: &GrantDecision,
    family_id: &str,
    now: i64,
) -> Result<(JwtGrantResponse, RefreshTokenRecord), TokenEndpointError> {
    let issued = sign(state, decision, now)?;
    let refresh = random_token();
    let record = RefreshTokenRecord {
        token_hash: token_hash(&refresh),
        family_id: family_id.to_owned(),
        integration_key: decision.client_id().to_owned(),
        user_id: decision.subject_claim().to_owned(),
        scopes: decision.scopes().to_vec(),
        access_jti: issued.claims.jti.clone(),
        access_expires_at: issued.claims.exp,
        created_at: now,
        expires_at: now + state.config.refresh_token_lifetime_secs,
        rotated_at: None,
        revoked_at: None,
    };
    let response = JwtGrantResponse {
        access_token: issued.token,
        token_type: "Bearer".to_owned(),
        expires_in: state.config.access_token_lifetime_secs as u64,
        scope: (!decision.scopes().is_empty()).then(|| decision.scopes().join(" ")),
        refresh_token: Some(refresh),
    };
    Ok((response, record))
}

/// Signs the access token for `decision` with the current key.
pub fn sign(
    state: &AppState,
    decision: &GrantDecision,
    now: i64,
) -> Result<IssuedAccessToken, TokenEndpointError> {
    let keyring = state.registry.keyring();
    let key = keyring
        .signing_key(state.config.access_token_alg, now)
        .ok_or_else(|| TokenEndpointError::Internal("no signing key is active".into()))?;
    access_token::issue(
        decision,
        &state.token_settings,
        key,
        uuid::Uuid::new_v4().to_string(),
        now,
    )
    .map_err(|e| TokenEndpointError::Internal(e.to_string()))
}

/// The client of an authorization code or refresh grant: authenticated, and set up
/// for the browser flow (with a redirect URI); others get `unauthorized_client`.
pub async fn code_flow_client(
    state: &AppState,
    headers: &HeaderMap,
    form: &TokenForm,
) -> Result<AuthenticatedClient, TokenEndpointError> {
    let client = authenticate_client(state, headers, form).await?;
    let integration = state.registry.integration(&client.client_id).await?;
    if integration.is_some_and(|i| i.redirect_uris.is_empty()) {
        return Err(TokenEndpointError::UnauthorizedClient(
            "this integration has no redirect URI, so it may not use the authorization code flow"
                .into(),
        ));
    }
    Ok(client)
}

/// Refuses a code or refresh grant. A reused code or refresh token (RFC 6749
/// section 4.1.2, RFC 9700 section 4.14) first revokes its chain, and this instance
/// refuses the chain's access tokens at once.
pub async fn refuse(
    state: &AppState,
    error: GrantError,
    family_id: &str,
    now: i64,
) -> TokenEndpointError {
    if matches!(
        error,
        GrantError::CodeReused | GrantError::RefreshTokenReused
    ) {
        let revoked = match state.store.revoke_token_family(family_id, now).await {
            Ok(revoked) => revoked,
            Err(store) => return store.into(),
        };
        tracing::warn!(
            family_id,
            revoked,
            "authorization reused: token chain revoked"
        );
        if let Err(store) = state.registry.poll_revocations().await {
            return store.into();
        }
    }
    error.into()
}
