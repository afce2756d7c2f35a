//! Token exchange (RFC 8693) as the server runs it, for a client authenticated
//! before: verify the ID token with this server's own keys, find the operator's
//! trust target for the requested audience and the user, let the core decide the
//! ID-JAG, and sign it. Nothing is stored: an ID-JAG is a short-lived grant that the
//! other server checks.

use jwtgrant_core::client_auth::AuthenticatedClient;
use jwtgrant_core::id_token::verify_subject_token;
use jwtgrant_core::token_exchange::{self, TrustTarget};
use jwtgrant_proto::{ID_JAG_LIFETIME_SECS, ID_JAG_TOKEN_TYPE, TokenExchangeResponse};

use crate::error::TokenEndpointError;
use crate::grants::active_signing_key;
use crate::state::AppState;
use crate::token_request::TokenExchangeRequest;

/// Exchanges the request's ID token for an ID-JAG for `client`.
pub async fn grant(
    state: &AppState,
    now: i64,
    request: &TokenExchangeRequest<'_>,
    client: &AuthenticatedClient,
) -> Result<TokenExchangeResponse, TokenEndpointError> {
    let core_request = token_exchange::TokenExchangeRequest {
        subject_token: request.subject_token,
        subject_token_type: request.subject_token_type,
        requested_token_type: request.requested_token_type,
        audiences: &request.audiences,
        resources: &request.resources,
        scope: request.scope,
        actor_token: request.actor_token,
    };
    // What the request asks for is checked before the token is looked at (the
    // endpoint authenticated the client; `decide` checks both again).
    token_exchange::check_request(&core_request)?;
    let keyring = state.registry.keyring();
    let retirement = state.key_retirement_secs();
    let subject = verify_subject_token(
        request.subject_token,
        |kid| keyring.verification_key(kid, now, retirement),
        &state.issuer,
        &client.client_id,
        state.config.clock_leeway_secs,
        now,
    )?;
    let audience = request.audiences.first().copied().unwrap_or_default();
    let target = state
        .store
        .trust_target(audience, &client.client_id)
        .await?
        .map(|t| TrustTarget {
            audience: t.audience,
            integration_key: t.integration_key,
            remote_client_id: t.remote_client_id,
            resources: t.resources,
            scopes: t.scopes,
        });
    let user = state.registry.user(&subject.sub).await?;
    let claims = token_exchange::decide(
        &core_request,
        &subject,
        client,
        target.as_ref(),
        user.as_ref().map(|u| &u.user),
        &state.issuer,
        uuid::Uuid::new_v4().to_string(),
        now,
    )?;
    let scopes: Vec<String> = claims
        .scope
        .as_deref()
        .map(jwtgrant_core::model::split_scopes)
        .unwrap_or_default();
    crate::audit::note_issued(&client.client_id, &claims.sub, &scopes, &claims.jti);
    let key = active_signing_key(state, &keyring, now)?;
    let id_jag = token_exchange::sign(&claims, key)
        .map_err(|e| TokenEndpointError::Internal(e.to_string()))?;
    tracing::info!(
        client_id = %client.client_id,
        audience = %claims.aud,
        sub = %claims.sub,
        jti = %claims.jti,
        "ID-JAG issued"
    );
    Ok(TokenExchangeResponse {
        access_token: id_jag,
        issued_token_type: ID_JAG_TOKEN_TYPE.to_owned(),
        token_type: "N_A".to_owned(),
        expires_in: ID_JAG_LIFETIME_SECS as u64,
        scope: claims.scope,
    })
}
