//! The JWT bearer grant (RFC 7523) as the server runs it: parse, look up the issuer,
//! verify, look up user and consent, decide, record the `jti`, sign.

use jwtgrant_core::access_token;
use jwtgrant_core::grants::jwt_bearer::{SubjectRecords, decide};
use jwtgrant_core::{GrantError, UnverifiedAssertion};
use jwtgrant_proto::JwtGrantResponse;
use jwtgrant_store::JtiOutcome;

use crate::clock;
use crate::error::TokenEndpointError;
use crate::routes::token::TokenForm;
use crate::state::AppState;

/// Runs the JWT bearer grant for a parsed form.
pub async fn grant(
    state: &AppState,
    form: &TokenForm,
) -> Result<JwtGrantResponse, TokenEndpointError> {
    let assertion = form.require("assertion")?;
    let now = clock::now();
    // Every grant needs a store that answers, even one whose checks the caches could
    // serve (an assertion without `jti`): an outage refuses all of them alike.
    if !state.registry.store_reachable() {
        return Err(TokenEndpointError::Unavailable(
            "the store did not answer the last poll".into(),
        ));
    }

    let unverified = UnverifiedAssertion::parse(assertion)?;
    let integration = state
        .registry
        .integration(unverified.issuer())
        .await?
        .ok_or(GrantError::IssuerNotFound)?;
    let verified = unverified.verify(&integration, &state.policy, now)?;
    // Counted once the signature holds, so no one can spend another's quota.
    state
        .rate_limit(
            &format!("integration:{}", integration.key),
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
        form.get("scope"),
        &integration,
        records,
        state.config.clock_leeway_secs,
        |scopes| state.consent_url(&integration.key, redirect_uri, scopes),
    )?;

    if let Some(guard) = decision.replay_guard() {
        let outcome = state.replay.record(guard).await?;
        if outcome == JtiOutcome::Replayed {
            return Err(GrantError::JtiReplayed.into());
        }
    }

    let keyring = state.registry.keyring();
    let key = keyring
        .signing_key(state.config.access_token_alg, now)
        .ok_or_else(|| TokenEndpointError::Internal("no signing key is active".into()))?;
    let issued = access_token::issue(
        &decision,
        &state.token_settings,
        key,
        uuid::Uuid::new_v4().to_string(),
        now,
    )
    .map_err(|e| TokenEndpointError::Internal(e.to_string()))?;

    Ok(JwtGrantResponse {
        access_token: issued.token,
        token_type: "Bearer".to_owned(),
        expires_in: state.config.access_token_lifetime_secs as u64,
        scope: (!decision.scopes().is_empty()).then(|| decision.scopes().join(" ")),
        refresh_token: None,
    })
}
