//! Discovery: RFC 8414 metadata (also served as OpenID configuration) and the JWKS.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use jwtgrant_core::JwsAlgorithm;
use jwtgrant_core::grants::GrantType;
use jwtgrant_proto::AuthorizationServerMetadata;

use crate::state::AppState;

/// The metadata document.
pub async fn metadata(State(state): State<Arc<AppState>>) -> Json<AuthorizationServerMetadata> {
    let issuer = &state.issuer;
    Json(AuthorizationServerMetadata {
        issuer: issuer.clone(),
        token_endpoint: state.token_endpoint(),
        jwks_uri: format!("{issuer}/oauth/jwks"),
        userinfo_endpoint: Some(format!("{issuer}/oauth/userinfo")),
        authorization_endpoint: Some(format!("{issuer}/oauth/auth")),
        introspection_endpoint: Some(format!("{issuer}/oauth/introspect")),
        revocation_endpoint: Some(format!("{issuer}/oauth/revoke")),
        grant_types_supported: GrantType::supported()
            .iter()
            .map(|g| g.to_string())
            .collect(),
        code_challenge_methods_supported: vec![jwtgrant_core::pkce::S256.into()],
        introspection_endpoint_auth_methods_supported: vec![
            "client_secret_basic".into(),
            "client_secret_post".into(),
        ],
        revocation_endpoint_auth_methods_supported: vec![
            "client_secret_basic".into(),
            "client_secret_post".into(),
            "none".into(),
        ],
        response_types_supported: vec!["code".into()],
        token_endpoint_auth_methods_supported: vec![
            "client_secret_basic".into(),
            "client_secret_post".into(),
            "none".into(),
        ],
        token_endpoint_auth_signing_alg_values_supported: JwsAlgorithm::ALL
            .iter()
            .map(|alg| alg.as_str().to_owned())
            .collect(),
        scopes_supported: Vec::new(),
        subject_types_supported: vec!["public".into()],
        id_token_signing_alg_values_supported: vec![
            state.config.access_token_alg.as_str().to_owned(),
        ],
        jwtgrant_max_assertion_lifetime: u64::try_from(state.config.max_assertion_lifetime_secs)
            .ok(),
    })
}

/// The JWKS of the keys that verify this server's access tokens.
pub async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    let set = state
        .registry
        .keyring()
        .jwks(state.clock.now(), state.key_retirement_secs());
    let mut response = Json(set).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    response
}
