//! `POST /oauth/introspect` (RFC 7662) and `POST /oauth/revoke` (RFC 7009) for
//! access tokens (our JWTs, by `jti`) and refresh tokens (by hash). Introspection
//! answers confidential clients only (resource servers authenticate with their
//! secret); revocation also takes a public client's own tokens. Revoking a refresh
//! token ends its whole chain and the access tokens issued with it.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use jwtgrant_core::client_auth::ClientAuthError;
use serde_json::{Value, json};

use crate::audit::{self, Endpoint};
use crate::client_addr::ClientAddr;
use crate::client_auth::authenticate_client;
use crate::credentials::token_hash;
use crate::error::{RequestError, TokenEndpointError};
use crate::form::Form;
use crate::routes::no_store;
use crate::routes::token::{audited, refused};
use crate::routes::userinfo::verify_access_token;
use crate::state::AppState;

fn read_form(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Form, TokenEndpointError> {
    let body = body.map_err(|_| RequestError::TooLarge(state.config.body_limit_bytes))?;
    Ok(Form::parse(headers, &body)?)
}

/// The introspection endpoint; each answer is an audit event.
pub async fn introspect(
    State(state): State<Arc<AppState>>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (result, facts) = audit::gathering(introspection(&state, &headers, body)).await;
    let (response, refusal) = match result {
        Ok(answer) => (no_store(Json(answer).into_response()), None),
        Err(error) => refused(error),
    };
    audited(
        &state,
        Endpoint::Introspect,
        &headers,
        client,
        facts,
        refusal,
        response,
    )
}

async fn introspection(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Value, TokenEndpointError> {
    let form = read_form(state, headers, body)?;
    let client = authenticate_client(state, &form.client_credentials(headers)?).await?;
    if !client.confidential {
        return Err(ClientAuthError::ConfidentialClientRequired.into());
    }
    let token = form.require("token")?;
    let now = state.clock.now();
    if let Ok(claims) = verify_access_token(state, token, now) {
        audit::note(|facts| {
            facts.token_id = Some(claims.jti.clone());
            facts.subject = Some(claims.sub.clone());
        });
        let username = state
            .registry
            .user(&claims.sub)
            .await?
            .map(|user| user.record.email.clone());
        let mut answer = json!({
            "active": true,
            "token_type": "Bearer",
            "scope": claims.scope,
            "client_id": claims.client_id,
            "sub": claims.sub,
            "iss": claims.iss,
            "aud": claims.aud.as_slice(),
            "iat": claims.iat,
            "exp": claims.exp,
            "jti": claims.jti,
        });
        if let (Some(username), Value::Object(map)) = (username, &mut answer) {
            map.insert("username".into(), Value::String(username));
        }
        return Ok(answer);
    }
    if let Some(record) = state.store.refresh_token(&token_hash(token)).await?
        && record.rotated_at.is_none()
        && record.revoked_at.is_none()
        && now < record.expires_at
    {
        return Ok(json!({
            "active": true,
            "token_type": "refresh_token",
            "scope": record.scopes.join(" "),
            "client_id": record.integration_key,
            "sub": record.user_id,
            "iss": state.issuer,
            "iat": record.created_at,
            "exp": record.expires_at,
        }));
    }
    Ok(json!({ "active": false }))
}

/// The revocation endpoint; each answer is an audit event.
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (result, facts) = audit::gathering(revocation(&state, &headers, body)).await;
    let (response, refusal) = match result {
        Ok(()) => (no_store(StatusCode::OK.into_response()), None),
        Err(error) => refused(error),
    };
    audited(
        &state,
        Endpoint::Revoke,
        &headers,
        client,
        facts,
        refusal,
        response,
    )
}

async fn revocation(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(), TokenEndpointError> {
    let form = read_form(state, headers, body)?;
    let client = authenticate_client(state, &form.client_credentials(headers)?).await?;
    let token = form.require("token")?;
    let now = state.clock.now();
    let not_yours = || TokenEndpointError::UnauthorizedClient {
        rule: "token_not_yours",
        reason: "the token was not issued to this client; a client may revoke only its own tokens"
            .into(),
    };
    // An access token: its signature must hold (we revoke only what we issued).
    if let Ok(claims) = verify_access_token(state, token, now) {
        audit::note(|facts| {
            facts.token_id = Some(claims.jti.clone());
            facts.subject = Some(claims.sub.clone());
        });
        if claims.client_id != client.client_id {
            return Err(not_yours());
        }
        state
            .store
            .revoke_access_token(&claims.jti, claims.exp)
            .await?;
        state.registry.poll_revocations().await?;
        return Ok(());
    }
    if let Some(record) = state.store.refresh_token(&token_hash(token)).await? {
        if record.integration_key != client.client_id {
            return Err(not_yours());
        }
        state
            .store
            .revoke_token_family(&record.family_id, now)
            .await?;
        state.registry.poll_revocations().await?;
    }
    // Unknown, expired or already revoked: nothing to do, and RFC 7009 says 200.
    Ok(())
}
