//! `GET /oauth/userinfo`: the user behind an access token, in DocuSign's shape.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use jwtgrant_core::access_token::{self, AccessTokenClaims, AccessTokenExpectations};
use jwtgrant_proto::{UserInfo, UserInfoAccount};

use crate::clock;
use crate::error::BearerError;
use crate::state::AppState;

/// Reads `Authorization: Bearer <token>` (scheme case-insensitive).
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, BearerError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(jwtgrant_proto::bearer_token)
        .ok_or(BearerError::Missing)
}

/// Verifies an access token this server issued and not revoked. A token verified
/// before skips the signature check (the cache is dropped on any registry change,
/// key rotation included); its expiry and revocation are checked every time.
pub fn verify_access_token(
    state: &AppState,
    token: &str,
    now: i64,
) -> Result<Arc<AccessTokenClaims>, BearerError> {
    let claims = verified(state, token, now)?;
    if state.registry.is_revoked(&claims.jti) {
        return Err(BearerError::InvalidToken(
            "the access token has been revoked".into(),
        ));
    }
    Ok(claims)
}

fn verified(
    state: &AppState,
    token: &str,
    now: i64,
) -> Result<Arc<AccessTokenClaims>, BearerError> {
    if let Some(claims) = state.registry.verified_token(token) {
        if now >= claims.exp.saturating_add(state.config.clock_leeway_secs) {
            return Err(BearerError::InvalidToken(
                access_token::TokenError::Expired.to_string(),
            ));
        }
        return Ok(claims);
    }
    let keyring = state.registry.keyring();
    let retire = state.key_retirement_secs();
    let expect = AccessTokenExpectations {
        issuer: state.issuer.clone(),
        audience: Some(state.token_settings.audience.clone()),
        leeway_secs: state.config.clock_leeway_secs,
    };
    let claims = access_token::verify(
        token,
        |kid| keyring.verification_key(kid, now, retire),
        &expect,
        now,
    )
    .map(Arc::new)
    .map_err(|e| BearerError::InvalidToken(e.to_string()))?;
    state
        .registry
        .remember_verified_token(token, Arc::clone(&claims));
    Ok(claims)
}

/// The userinfo endpoint.
pub async fn userinfo(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<UserInfo>, BearerError> {
    let token = bearer_token(&headers)?;
    let claims = verify_access_token(&state, token, state.clock.now())?;
    let user = state.registry.user(&claims.sub).await?.ok_or_else(|| {
        BearerError::InvalidToken("the access token does not belong to a user".into())
    })?;
    if !user.user.active {
        return Err(BearerError::InvalidToken(
            "the user has been disabled".into(),
        ));
    }
    let accounts = state.registry.accounts(&claims.sub).await?;
    let record = &user.record;
    Ok(Json(UserInfo {
        sub: record.user_id.clone(),
        name: record.name.clone(),
        given_name: record.given_name.clone(),
        family_name: record.family_name.clone(),
        created: clock::rfc3339(record.created_at),
        email: record.email.clone(),
        accounts: accounts
            .iter()
            .map(|account| UserInfoAccount {
                account_id: account.account_id.clone(),
                is_default: account.is_default,
                account_name: account.account_name.clone(),
                base_uri: account.base_uri.clone(),
                organization: account
                    .organization
                    .as_deref()
                    .and_then(|text| serde_json::from_str(text).ok()),
            })
            .collect(),
    }))
}
