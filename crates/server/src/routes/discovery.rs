//! Discovery: RFC 8414 metadata (also served as OpenID configuration) and the JWKS.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use jwtgrant_core::JwsAlgorithm;
use jwtgrant_core::grants::GrantType;
use jwtgrant_proto::{AuthorizationServerMetadata, DEFAULT_SCOPES, ID_JAG_GRANT_PROFILE};

use crate::state::AppState;

/// The metadata document. It claims only what works: `private_key_jwt` with the
/// algorithms integration keys verify, ID tokens signed with the algorithms of the
/// server's own keys, the `prompt` values the authorization endpoint honours, and
/// the token exchange for ID-JAGs.
pub async fn metadata(State(state): State<Arc<AppState>>) -> Json<AuthorizationServerMetadata> {
    let issuer = &state.issuer;
    let scopes_supported = match state.registry.known_scopes().await {
        Ok(scopes) => scopes.as_ref().clone(),
        // RFC 8414 lets a server leave scopes out; the next request lists them all.
        Err(error) => {
            tracing::warn!(%error, "metadata lists the default scopes only: the store did not answer");
            DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect()
        }
    };
    Json(AuthorizationServerMetadata {
        issuer: issuer.clone(),
        token_endpoint: state.token_endpoint(),
        jwks_uri: format!("{issuer}/oauth/jwks"),
        userinfo_endpoint: Some(format!("{issuer}/oauth/userinfo")),
        authorization_endpoint: Some(format!("{issuer}/oauth/auth")),
        introspection_endpoint: Some(format!("{issuer}/oauth/introspect")),
        revocation_endpoint: Some(format!("{issuer}/oauth/revoke")),
        grant_types_supported: GrantType::ALL
            .iter()
            .map(|g| g.as_str().to_owned())
            .collect(),
        code_challenge_methods_supported: vec![jwtgrant_core::pkce::S256.into()],
        introspection_endpoint_auth_methods_supported: vec![
            "client_secret_basic".into(),
            "client_secret_post".into(),
            "private_key_jwt".into(),
        ],
        revocation_endpoint_auth_methods_supported: vec![
            "client_secret_basic".into(),
            "client_secret_post".into(),
            "private_key_jwt".into(),
            "none".into(),
        ],
        response_types_supported: vec!["code".into()],
        token_endpoint_auth_methods_supported: vec![
            "client_secret_basic".into(),
            "client_secret_post".into(),
            "private_key_jwt".into(),
            "none".into(),
        ],
        // The algorithms an integration's keys verify client assertions with.
        token_endpoint_auth_signing_alg_values_supported: JwsAlgorithm::ALL
            .iter()
            .map(|alg| alg.as_str().to_owned())
            .collect(),
        scopes_supported,
        // Userinfo's `sub` is the user's id, the same for every client.
        subject_types_supported: vec!["public".into()],
        // ID tokens are signed like access tokens, by the server's keys.
        id_token_signing_alg_values_supported: {
            let keyring = state.registry.keyring();
            JwsAlgorithm::ALL
                .iter()
                .filter(|alg| keyring.has_algorithm(**alg))
                .map(|alg| alg.as_str().to_owned())
                .collect()
        },
        claims_supported: [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "at_hash",
            "azp",
            "name",
            "given_name",
            "family_name",
            "email",
        ]
        .map(str::to_owned)
        .to_vec(),
        prompt_values_supported: ["none", "login", "consent", "select_account"]
            .map(str::to_owned)
            .to_vec(),
        // ID-JAGs are accepted from trusted issuers registered with `--id-jag`.
        authorization_grant_profiles_supported: vec![ID_JAG_GRANT_PROFILE.into()],
        client_id_metadata_document_supported: state.client_documents.is_some(),
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
