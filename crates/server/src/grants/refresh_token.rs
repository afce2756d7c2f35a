//! The refresh token grant as the server runs it, for a client authenticated
//! before: find the token by its hash, let the core decide (consent must still
//! hold), then rotate: the old token is marked used and its successor stored in one
//! transaction. An old token presented again revokes the whole chain.

use jwtgrant_core::GrantError;
use jwtgrant_core::client_auth::AuthenticatedClient;
use jwtgrant_core::grants::refresh_token::{RefreshToken, decide};
use jwtgrant_proto::JwtGrantResponse;

use crate::client_documents::ClientDocuments;
use crate::credentials::token_hash;
use crate::error::TokenEndpointError;
use crate::grants::{SignIn, issue_with_refresh, refuse};
use crate::state::AppState;
use crate::token_request::RefreshTokenRequest;

/// Runs the refresh token grant for `client`, authenticated and set up for the
/// browser flow.
pub async fn grant(
    state: &AppState,
    now: i64,
    request: &RefreshTokenRequest<'_>,
    client: &AuthenticatedClient,
) -> Result<JwtGrantResponse, TokenEndpointError> {
    let hash = token_hash(request.refresh_token);
    let record = state.store.refresh_token(&hash).await?;
    let (user, consent) = match &record {
        Some(r) => (
            state.registry.user(&r.user_id).await?,
            state.store.consent(&r.user_id, &r.integration_key).await?,
        ),
        None => (None, None),
    };
    let consent = match &record {
        // A client known by its metadata document has no consent record: the user
        // consented on the page to the code this chain began with, which stands.
        Some(r) if ClientDocuments::names_a_document(&r.integration_key) => {
            Some(jwtgrant_core::Consent {
                scopes: r.scopes.clone(),
            })
        }
        _ => consent.map(|c| jwtgrant_core::Consent { scopes: c.scopes }),
    };
    let stored = record.as_ref().map(|r| RefreshToken {
        client_id: r.integration_key.clone(),
        user_id: r.user_id.clone(),
        scopes: r.scopes.clone(),
        resources: r.resources.clone(),
        expires_at: r.expires_at,
        rotated: r.rotated_at.is_some(),
        revoked: r.revoked_at.is_some(),
    });
    let decided = decide(
        stored.as_ref(),
        request.scope,
        &request.resources,
        &client.client_id,
        user.as_ref().map(|u| &u.user),
        consent.as_ref(),
        now,
    );
    let family_id = record.as_ref().map(|r| r.family_id.as_str()).unwrap_or("");
    let decision = match decided {
        Ok(decision) => decision,
        Err(error) => return Err(refuse(state, error, family_id, now).await),
    };
    // A fresh ID token for `openid`, of the same sign-in, without a nonce (OpenID
    // Connect Core section 12.2).
    let sign_in = SignIn {
        auth_time: record.as_ref().and_then(|r| r.auth_time),
        nonce: None,
    };
    let (response, next) = issue_with_refresh(state, &decision, family_id, sign_in, now)?;
    if !state.store.rotate_refresh_token(&hash, now, &next).await? {
        // Rotated (or revoked) by another request between our read and our write.
        return Err(refuse(state, GrantError::RefreshTokenReused, family_id, now).await);
    }
    Ok(response)
}
