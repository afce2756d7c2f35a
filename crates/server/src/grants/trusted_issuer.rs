//! The JWT bearer grant for a trusted issuer's token, as the server runs it: the
//! issuer's keys from its cache (fetched by the adapter), the core's checks under
//! the issuer's policy, the local user behind the token's subject, the decision
//! (an ID-JAG's by its own rules, with the presenting client), the replay record,
//! the signature.

use std::sync::Arc;

use jwtgrant_core::client_auth::AuthenticatedClient;
use jwtgrant_core::grants::jwt_bearer::{SubjectRecords, check_presenting_client};
use jwtgrant_core::id_jag::{IdJagRequest, decide_id_jag};
use jwtgrant_core::jwks::IssuerKeySet;
use jwtgrant_core::resource::Resources;
use jwtgrant_core::trusted_issuer::{
    KeySource as PolicyKeys, TrustedIssuer, UserLookup, decide_for_issuer,
};
use jwtgrant_core::{GrantError, TokenSubject, UnverifiedAssertion};
use jwtgrant_proto::JwtGrantResponse;

use crate::error::TokenEndpointError;
use crate::grants::{issue, record_replay_guard};
use crate::issuer_keys::KeySource;
use crate::state::AppState;
use crate::telemetry::TARGET;
use crate::token_request::JwtBearerRequest;
use tracing::Instrument as _;

/// Runs the JWT bearer grant for `unverified`, whose `iss` is `issuer`.
pub async fn grant(
    state: &AppState,
    now: i64,
    unverified: UnverifiedAssertion<'_>,
    issuer: &TrustedIssuer,
    request: &JwtBearerRequest<'_>,
    client: Option<&AuthenticatedClient>,
) -> Result<JwtGrantResponse, TokenEndpointError> {
    // A disabled or expired trust is refused before any key is fetched for it.
    issuer.check_trust(now)?;
    let integration = state
        .registry
        .integration(&issuer.integration_key)
        .await?
        .filter(|i| i.active)
        .ok_or(GrantError::IntegrationDisabled)?;
    let keys = issuer_keys(&state.issuer_keys, issuer, unverified.kid(), now).await?;
    let assertion = tracing::trace_span!(target: TARGET, "verify_signature")
        .in_scope(|| unverified.verify_from_issuer(issuer, &keys, &state.policy, now))?;
    crate::audit::note_verified(assertion.verified(), &integration.key);
    if !issuer.policy.id_jag {
        check_presenting_client(client, &integration)?;
    }
    state
        .rate_limit(
            "integration",
            &integration.key,
            state.config.rate_limit_per_integration,
        )
        .await?;

    let user_id = match issuer.user_lookup(&assertion)? {
        Some(UserLookup::Linked(subject)) => Some(
            state
                .registry
                .linked_user(&issuer.id, &subject)
                .await?
                .ok_or(GrantError::SubjectNotMapped(
                    "no local user is linked to the token's subject (jwtgrant user link)",
                ))?,
        ),
        Some(UserLookup::Email(email)) => {
            Some(state.registry.user_id_by_email(&email).await?.ok_or(
                GrantError::SubjectNotMapped("no local user has the token's email"),
            )?)
        }
        None => None,
    };
    if issuer.policy.id_jag {
        // The IdP's policy stands for consent: the user only has to exist here.
        let user = match &user_id {
            Some(user_id) => state.registry.user(user_id).await?,
            None => None,
        };
        let request = IdJagRequest {
            client,
            scope: request.scope,
            resources: &request.resources,
        };
        let decision = decide_id_jag(
            &assertion,
            issuer,
            &integration,
            &state.issuer,
            request,
            user.as_ref().map(|u| &u.user),
        )?;
        return issue(state, &decision, now);
    }
    let (user, consent) = match &user_id {
        Some(user_id) => (
            state.registry.user(user_id).await?,
            state.registry.consent(user_id, &integration.key).await?,
        ),
        None => (None, None),
    };
    let records = SubjectRecords {
        user: user.as_ref().map(|u| &u.user),
        consent: consent.as_deref(),
    };
    let redirect_uri = integration.redirect_uris.first().map(String::as_str);
    let decision = decide_for_issuer(
        &assertion,
        issuer,
        &integration,
        request.scope,
        records,
        state.config.clock_leeway_secs,
        |scopes| state.consent_url(&integration.key, redirect_uri, scopes),
    )?
    .for_resources(Resources::for_integration(
        &request.resources,
        &integration,
    )?);

    // A workload's `sub` comes from its claims: it may not pass for a local user or
    // another integration at a resource server.
    if let TokenSubject::Workload(subject) = decision.subject()
        && subject != &integration.key
        && (state.registry.user(subject).await?.is_some()
            || state.registry.integration(subject).await?.is_some())
    {
        return Err(GrantError::SubjectNotMapped(
            "the workload subject names a local user or another integration",
        )
        .into());
    }

    record_replay_guard(state, &decision, now).await?;
    issue(state, &decision, now)
}

/// The issuer's usable keys: those given when it was added, or those its JWKS URL
/// (or metadata) serves, from the cache.
pub async fn issuer_keys(
    cache: &crate::issuer_keys::IssuerKeys,
    issuer: &TrustedIssuer,
    kid: Option<&str>,
    now: i64,
) -> Result<Arc<IssuerKeySet>, GrantError> {
    let source = match (&issuer.policy.keys, issuer.static_keys()) {
        (_, Some(keys)) => KeySource::Static(Arc::clone(keys)),
        (PolicyKeys::JwksUri(url), None) => KeySource::JwksUri(url.clone()),
        (PolicyKeys::Discovery | PolicyKeys::Jwks(_), None) => KeySource::Discovery {
            issuer: issuer.issuer.clone(),
        },
    };
    cache
        .keys(&issuer.id, &source, issuer.allowed_algorithms(), kid, now)
        .instrument(tracing::trace_span!(
            target: TARGET,
            "key_lookup",
            jwtgrant.lookup = "issuer_keys"
        ))
        .await
        .map_err(|error| GrantError::IssuerKeysUnavailable(error.to_string()))
}
