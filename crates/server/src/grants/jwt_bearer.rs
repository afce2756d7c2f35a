//! The JWT bearer grant (RFC 7523) as the server runs it: parse, look up the issuer
//! (an integration, or a trusted issuer, whose grant is in [`super::trusted_issuer`]),
//! verify, look up user and consent, decide, record the `jti`, sign.

use jwtgrant_core::client_auth::AuthenticatedClient;
use jwtgrant_core::grants::jwt_bearer::{SubjectRecords, check_presenting_client, decide};
use jwtgrant_core::resource::Resources;
use jwtgrant_core::{GrantError, UnverifiedAssertion};
use jwtgrant_proto::JwtGrantResponse;

use crate::audit;
use crate::error::TokenEndpointError;
use crate::grants::{issue, record_replay_guard};
use crate::state::AppState;
use crate::telemetry::TARGET;
use crate::token_request::JwtBearerRequest;

/// Runs the JWT bearer grant. The assertion's signature authenticates its issuer;
/// `client` is the client the request also named or authenticated, if any, which
/// must be the assertion's integration.
pub async fn grant(
    state: &AppState,
    now: i64,
    request: &JwtBearerRequest<'_>,
    client: Option<&AuthenticatedClient>,
) -> Result<JwtGrantResponse, TokenEndpointError> {
    // Every grant needs a store that answers, even one whose checks the caches could
    // serve (an assertion without `jti`): an outage refuses all of them alike.
    if !state.registry.store_reachable() {
        return Err(TokenEndpointError::Unavailable(
            "the store did not answer the last poll".into(),
        ));
    }

    let unverified = tracing::trace_span!(target: TARGET, "parse_assertion")
        .in_scope(|| UnverifiedAssertion::parse(request.assertion))?;
    audit::note_issuer(unverified.issuer());
    let Some(integration) = state.registry.integration(unverified.issuer()).await? else {
        // Not an integration: a trusted issuer's token, or nobody's.
        let issuer = state
            .registry
            .trusted_issuer(unverified.issuer())
            .await?
            .ok_or(GrantError::IssuerNotFound)?;
        return super::trusted_issuer::grant(state, now, unverified, &issuer, request, client)
            .await;
    };
    // The signature, then the claims' rules (microseconds beside it).
    let verified = tracing::trace_span!(target: TARGET, "verify_signature")
        .in_scope(|| unverified.verify(&integration, &state.policy, now))?;
    audit::note_verified(&verified, &integration.key);
    check_presenting_client(client, &integration)?;
    // Counted once the signature holds, so no one can spend another's quota.
    state
        .rate_limit(
            "integration",
            &integration.key,
            state.config.rate_limit_per_integration,
        )
        .await?;

    let (user, consent) = match verified.subject() {
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
    let decision = decide(
        &verified,
        request.scope,
        &integration,
        records,
        state.config.clock_leeway_secs,
        |scopes| state.consent_url(&integration.key, redirect_uri, scopes),
    )?
    .for_resources(Resources::for_integration(
        &request.resources,
        &integration,
    )?);

    record_replay_guard(state, &decision, now).await?;

    issue(state, &decision, now)
}
