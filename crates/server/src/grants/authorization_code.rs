//! The authorization code grant as the server runs it, for a client authenticated
//! before: find the code by its hash, let the core decide, then redeem the code and
//! store the first refresh token in one transaction. A code presented again revokes
//! what its first redemption issued. With `openid`, the answer carries an ID token
//! with the authorization request's `nonce`.

use jwtgrant_core::GrantError;
use jwtgrant_core::client_auth::AuthenticatedClient;
use jwtgrant_core::grants::authorization_code::{AuthorizationCode, CodeExchange, decide};
use jwtgrant_proto::JwtGrantResponse;

use crate::credentials::token_hash;
use crate::error::TokenEndpointError;
use crate::grants::{SignIn, issue_with_refresh, refuse};
use crate::state::AppState;
use crate::token_request::AuthorizationCodeRequest;

/// Runs the authorization code grant for `client`, authenticated and set up for
/// the browser flow.
pub async fn grant(
    state: &AppState,
    now: i64,
    request: &AuthorizationCodeRequest<'_>,
    client: &AuthenticatedClient,
) -> Result<JwtGrantResponse, TokenEndpointError> {
    let code_hash = token_hash(request.code);
    let record = state.store.authorization_code(&code_hash).await?;
    let user = match &record {
        Some(r) => state.registry.user(&r.user_id).await?,
        None => None,
    };
    let stored = record.as_ref().map(|r| AuthorizationCode {
        client_id: r.integration_key.clone(),
        user_id: r.user_id.clone(),
        redirect_uri: r.redirect_uri.clone(),
        scopes: r.scopes.clone(),
        resources: r.resources.clone(),
        code_challenge: r.code_challenge.clone(),
        expires_at: r.expires_at,
        used: r.used_at.is_some(),
    });
    let exchange = CodeExchange {
        redirect_uri: request.redirect_uri,
        code_verifier: request.code_verifier,
        resources: &request.resources,
    };
    let decided = decide(
        stored.as_ref(),
        exchange,
        &client.client_id,
        user.as_ref().map(|u| &u.user),
        now,
    );
    let family_id = record.as_ref().map(|r| r.family_id.as_str()).unwrap_or("");
    let decision = match decided {
        Ok(decision) => decision,
        Err(error) => return Err(refuse(state, error, family_id, now).await),
    };
    let sign_in = SignIn {
        auth_time: record.as_ref().and_then(|r| r.auth_time),
        nonce: record.as_ref().and_then(|r| r.nonce.as_deref()),
    };
    let (response, first) = issue_with_refresh(state, &decision, family_id, sign_in, now)?;
    if !state
        .store
        .redeem_authorization_code(&code_hash, now, &first)
        .await?
    {
        // Another request redeemed it between our read and our write.
        return Err(refuse(state, GrantError::CodeReused, family_id, now).await);
    }
    Ok(response)
}
