//! The token endpoint's grants, one file each. A grant takes the state, `now`, its
//! typed request and (where it authenticates one) the client; it runs the core's
//! decision with what it needs from the store and never sees HTTP. What they share
//! lives here: [`issue`] and [`issue_with_refresh`], the one place an access token
//! (and, for `openid`, an ID token) is signed and a token response built, and
//! [`refuse`] for the code and refresh grants.

pub mod authorization_code;
pub mod client_credentials;
pub mod jwt_bearer;
pub mod refresh_token;
pub mod token_exchange;
pub mod trusted_issuer;

use jwtgrant_core::access_token::{self, IssuedAccessToken};
use jwtgrant_core::id_token::{self, IdTokenGrant};
use jwtgrant_core::keyring::{Keyring, KeyringEntry};
use jwtgrant_core::{GrantDecision, GrantError};
use jwtgrant_proto::JwtGrantResponse;
use jwtgrant_store::RefreshTokenRecord;

use crate::credentials::{random_token, token_hash};
use crate::error::TokenEndpointError;
use crate::state::AppState;
use crate::telemetry::{TARGET, record_replay};
use jwtgrant_store::JtiOutcome;
use tracing::Instrument as _;

/// An access token for `decision`, as the token endpoint answers it.
pub fn issue(
    state: &AppState,
    decision: &GrantDecision,
    now: i64,
) -> Result<JwtGrantResponse, TokenEndpointError> {
    let issued = sign(state, decision, now)?;
    Ok(response(state, decision, issued, None))
}

/// Records the decision's `jti` (rule 5) before anything is issued: a replay is
/// `jti_replayed`, a replay record that does not answer refuses (fails closed).
pub async fn record_replay_guard(
    state: &AppState,
    decision: &GrantDecision,
    now: i64,
) -> Result<(), TokenEndpointError> {
    let Some(guard) = decision.replay_guard() else {
        return Ok(());
    };
    let span = tracing::trace_span!(target: TARGET, "replay_record", jwtgrant.replay = tracing::field::Empty);
    let outcome = state
        .replay
        .record(guard, now)
        .instrument(span.clone())
        .await?;
    record_replay(&span, outcome);
    if outcome == JtiOutcome::Replayed {
        return Err(GrantError::JtiReplayed.into());
    }
    Ok(())
}

/// The user's sign-in a code or refresh grant descends from, for its ID token.
#[derive(Debug, Clone, Copy, Default)]
pub struct SignIn<'a> {
    /// When the user signed in.
    pub auth_time: Option<i64>,
    /// The authorization request's `nonce` (on the code's redemption only).
    pub nonce: Option<&'a str>,
}

/// An access token for `decision` and a fresh refresh token of chain `family_id`
/// (and an ID token when the grant's scopes include `openid`): the answer, and the
/// record to store before the answer is sent.
pub fn issue_with_refresh(
    state: &AppState,
    decision: &GrantDecision,
    family_id: &str,
    sign_in: SignIn<'_>,
    now: i64,
) -> Result<(JwtGrantResponse, RefreshTokenRecord), TokenEndpointError> {
    let issued = sign(state, decision, now)?;
    let id_token = if id_token::requested(decision.scopes()) {
        Some(sign_id_token(state, decision, &issued.token, sign_in, now)?)
    } else {
        None
    };
    let refresh = random_token();
    let record = RefreshTokenRecord {
        token_hash: token_hash(&refresh),
        family_id: family_id.to_owned(),
        integration_key: decision.client_id().to_owned(),
        user_id: decision.subject_claim().to_owned(),
        scopes: decision.scopes().to_vec(),
        resources: decision.resources().to_vec(),
        auth_time: sign_in.auth_time,
        access_jti: issued.claims.jti.clone(),
        access_expires_at: issued.claims.exp,
        created_at: now,
        expires_at: now + state.config.refresh_token_lifetime_secs,
        rotated_at: None,
        revoked_at: None,
    };
    let mut response = response(state, decision, issued, Some(refresh));
    response.id_token = id_token;
    Ok((response, record))
}

/// Signs the ID token of a user's grant, beside its access token.
fn sign_id_token(
    state: &AppState,
    decision: &GrantDecision,
    access_token: &str,
    sign_in: SignIn<'_>,
    now: i64,
) -> Result<String, TokenEndpointError> {
    let _span = tracing::trace_span!(target: TARGET, "sign_id_token").entered();
    let keyring = state.registry.keyring();
    let key = active_signing_key(state, &keyring, now)?;
    let grant = IdTokenGrant {
        subject: decision.subject_claim(),
        client_id: decision.client_id(),
        auth_time: sign_in.auth_time,
        nonce: sign_in.nonce,
        access_token,
    };
    id_token::issue(
        &grant,
        &state.issuer,
        key,
        state.config.access_token_lifetime_secs,
        now,
    )
    .map(|(token, _)| token)
    .map_err(|e| TokenEndpointError::Internal(e.to_string()))
}

/// The key that signs at `now`: of the configured algorithm, else the newest.
pub(crate) fn active_signing_key<'k>(
    state: &AppState,
    keyring: &'k Keyring,
    now: i64,
) -> Result<&'k KeyringEntry, TokenEndpointError> {
    keyring
        .signing_key(state.config.access_token_alg, now)
        .ok_or_else(|| TokenEndpointError::Internal("no signing key is active".into()))
}

/// Signs the access token for `decision` with the key active at `now`.
fn sign(
    state: &AppState,
    decision: &GrantDecision,
    now: i64,
) -> Result<IssuedAccessToken, TokenEndpointError> {
    let _span = tracing::trace_span!(target: TARGET, "sign_access_token").entered();
    let keyring = state.registry.keyring();
    let key = active_signing_key(state, &keyring, now)?;
    let issued = access_token::issue(
        decision,
        &state.token_settings,
        key,
        uuid::Uuid::new_v4().to_string(),
        now,
    )
    .map_err(|e| TokenEndpointError::Internal(e.to_string()))?;
    crate::audit::note_issued(
        decision.client_id(),
        decision.subject_claim(),
        decision.scopes(),
        &issued.claims.jti,
    );
    Ok(issued)
}

/// The token response (RFC 6749 section 5.1) for a signed access token.
fn response(
    state: &AppState,
    decision: &GrantDecision,
    issued: IssuedAccessToken,
    refresh_token: Option<String>,
) -> JwtGrantResponse {
    JwtGrantResponse {
        access_token: issued.token,
        token_type: "Bearer".to_owned(),
        expires_in: state.config.access_token_lifetime_secs as u64,
        scope: (!decision.scopes().is_empty()).then(|| decision.scopes().join(" ")),
        refresh_token,
        id_token: None,
    }
}

/// Refuses a code or refresh grant. A reused code or refresh token (RFC 6749
/// section 4.1.2, RFC 9700 section 4.14) first revokes its chain, and this instance
/// refuses the chain's access tokens at once.
pub async fn refuse(
    state: &AppState,
    error: GrantError,
    family_id: &str,
    now: i64,
) -> TokenEndpointError {
    if matches!(
        error,
        GrantError::CodeReused | GrantError::RefreshTokenReused
    ) {
        let revoked = match state.store.revoke_token_family(family_id, now).await {
            Ok(revoked) => revoked,
            Err(store) => return store.into(),
        };
        tracing::warn!(
            family_id,
            revoked,
            "authorization reused: token chain revoked"
        );
        if let Err(store) = state.registry.poll_revocations().await {
            return store.into();
        }
    }
    error.into()
}
