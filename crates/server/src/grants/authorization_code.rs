//! The authorization code grant as the server runs it: authenticate the client,
//! find the code by its hash, let the core decide, then redeem the code and store
//! the first refresh token in one transaction. A code presented again revokes what
//! its first redemption issued.

use jwtgrant_core::GrantError;
use jwtgrant_core::grants::authorization_code::{AuthorizationCode, CodeExchange, decide};
use jwtgrant_proto::JwtGrantResponse;

use axum::http::HeaderMap;

use crate::clock;
use crate::credentials::token_hash;
use crate::error::TokenEndpointError;
use crate::grants::{code_flow_client, issue_with_refresh, refuse};
use crate::routes::token::TokenForm;
use crate::state::AppState;

/// Runs the authorization code grant.
pub async fn grant(
    state: &AppState,
    headers: &HeaderMap,
    form: &TokenForm,
) -> Result<JwtGrantResponse, TokenEndpointError> {
    let now = clock::now();
    let client = code_flow_client(state, headers, form).await?;
    let code = form.require("code")?;
    let code_hash = token_hash(code);
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
        code_challenge: r.code_challenge.clone(),
        expires_at: r.expires_at,
        used: r.used_at.is_some(),
    });
    let exchange = CodeExchange {
        redirect_uri: form.get("redirect_uri"),
        code_verifier: form.get("code_verifier"),
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
    let (response, first) = issue_with_refresh(state, &decision, family_id, now)?;
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
