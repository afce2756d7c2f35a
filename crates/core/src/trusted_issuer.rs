//! Trusted issuers (PROTOCOL.md part two): a third party (an identity provider, a
//! CI system, a cluster) whose signed JWTs are accepted as assertions for the
//! integration it is bound to, checked under its own policy. Here: the policy as the
//! store keeps it, the issuer with its expressions compiled, the verification of its
//! assertions with the keys the adapter fetched, and the grant decision (condition,
//! subject mapping, scopes, replay). Nothing here fetches or stores.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::alg::JwsAlgorithm;
use crate::assertion::{AssertionPolicy, ClaimRules, UnverifiedAssertion, VerifiedAssertion};
use crate::client_auth::AuthenticatedClient;
use crate::condition::{Expression, ExpressionError};
use crate::error::GrantError;
use crate::explain::Explanation;
use crate::grants::jwt_bearer::{
    GrantDecision, ReplayGuard, SubjectRecords, TokenSubject, requested_scopes, user_subject,
};
use crate::jwks::{IssuerKeySet, JwksError, parse_jwks};
use crate::model::Integration;

/// The default `--max-lifetime-secs` of a trusted issuer's tokens.
pub const DEFAULT_MAX_LIFETIME_SECS: i64 = 3600;

/// Where an issuer's keys come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySource {
    /// A JWKS URL the server fetches.
    JwksUri(String),
    /// The issuer's OpenID Connect or RFC 8414 metadata names the JWKS URL.
    Discovery,
    /// A JWKS document given when the issuer was added (`--jwks-file`).
    Jwks(Value),
}

/// Whether, and how long, an issuer's `jti` is single use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplayPolicy {
    /// `jti` required, each accepted once (the default).
    #[default]
    SingleUse,
    /// The same token may be presented again until it expires (ID-JAG, Auth0).
    UntilExp,
    /// No `jti` needed and none recorded (SPIFFE JWT-SVIDs).
    None,
}

impl ReplayPolicy {
    /// The name the CLI and the policy use.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplayPolicy::SingleUse => "single-use",
            ReplayPolicy::UntilExp => "until-exp",
            ReplayPolicy::None => "none",
        }
    }
}

/// Whom an issuer's tokens speak for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// A local user, found by the `user_claim`; consent applies.
    User,
    /// The workload itself: an application token whose `sub` is `subject_expr`.
    Workload,
}

/// Which claim finds the local user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserClaim {
    /// `sub`, through a link made with `jwtgrant user link`.
    #[default]
    Sub,
    /// `email`, when the token also says `email_verified: true`.
    Email,
}

/// An issuer's policy, as the store keeps it (a JSON object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerPolicy {
    /// Where its keys come from.
    pub keys: KeySource,
    /// Accepted `aud` values; empty: the server's own (part one's).
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Accepted `alg`s; empty: whatever the key type allows.
    #[serde(default)]
    pub algorithms: Vec<JwsAlgorithm>,
    /// Accepted header `typ`s, compared without case; empty: any or none.
    #[serde(default)]
    pub typs: Vec<String>,
    /// The longest a token may live, from `iat` (or now) to `exp`.
    pub max_lifetime_secs: i64,
    /// Clock skew allowed; `None`: the server's leeway.
    #[serde(default)]
    pub clock_skew_secs: Option<i64>,
    /// `jti` handling.
    #[serde(default)]
    pub replay: ReplayPolicy,
    /// Whom the tokens speak for.
    pub subject: SubjectKind,
    /// For [`SubjectKind::User`]: the claim that finds the user.
    #[serde(default)]
    pub user_claim: UserClaim,
    /// For [`SubjectKind::Workload`]: the CEL expression of the token's `sub`
    /// (`assertion.sub` when absent).
    #[serde(default)]
    pub subject_expr: Option<String>,
    /// A CEL expression over `assertion` that must be true.
    #[serde(default)]
    pub condition: Option<String>,
    /// The scopes its tokens may yield; empty: the integration's.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Unix seconds from which the trust ends.
    #[serde(default)]
    pub expires_at: Option<i64>,
    /// Its tokens also authenticate the bound integration as client assertions.
    #[serde(default)]
    pub client_authentication: bool,
    /// Its tokens are ID-JAGs (cross-app access): decided by [`crate::id_jag`].
    #[serde(default)]
    pub id_jag: bool,
}

/// Why a policy cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerPolicyError {
    /// The stored policy is not a valid policy document.
    #[error("the issuer policy is not valid: {0}")]
    Malformed(String),
    /// `--condition` does not compile.
    #[error("--condition: {0}")]
    Condition(ExpressionError),
    /// `--subject-expr` does not compile.
    #[error("--subject-expr: {0}")]
    SubjectExpr(ExpressionError),
    /// The JWKS given with the issuer has no usable key.
    #[error("--jwks-file: {0}")]
    Jwks(JwksError),
    /// A value out of range, or options that do not go together.
    #[error("{0}")]
    Invalid(String),
}

impl IssuerPolicy {
    /// Reads a stored policy.
    pub fn from_json(text: &str) -> Result<Self, IssuerPolicyError> {
        serde_json::from_str(text).map_err(|e| IssuerPolicyError::Malformed(e.to_string()))
    }

    /// The policy as the store keeps it.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A trusted issuer ready to check tokens: its record, its policy, its expressions
/// compiled once.
#[derive(Debug, Clone)]
pub struct TrustedIssuer {
    /// Its id.
    pub id: String,
    /// The issuer identifier, exactly as `iss` must carry it (no trailing-slash or
    /// case folding: a token from `https://idp.example/` is not from
    /// `https://idp.example`).
    pub issuer: String,
    /// The integration its tokens are for.
    pub integration_key: String,
    /// Whether its tokens are accepted.
    pub active: bool,
    /// Its policy.
    pub policy: IssuerPolicy,
    condition: Option<Arc<Expression>>,
    subject_expr: Option<Arc<Expression>>,
    static_keys: Option<Arc<IssuerKeySet>>,
}

impl TrustedIssuer {
    /// Checks `policy` and compiles its expressions.
    pub fn new(
        id: String,
        issuer: String,
        integration_key: String,
        active: bool,
        policy: IssuerPolicy,
    ) -> Result<Self, IssuerPolicyError> {
        if !(1..=86_400).contains(&policy.max_lifetime_secs) {
            return Err(IssuerPolicyError::Invalid(
                "--max-lifetime-secs must be 1 to 86400".into(),
            ));
        }
        if policy
            .clock_skew_secs
            .is_some_and(|skew| !(0..=600).contains(&skew))
        {
            return Err(IssuerPolicyError::Invalid(
                "--clock-skew-secs must be 0 to 600".into(),
            ));
        }
        if policy.id_jag {
            crate::id_jag::check_policy(&policy)?;
        }
        if policy.subject == SubjectKind::User && policy.subject_expr.is_some() {
            return Err(IssuerPolicyError::Invalid(
                "--subject-expr is for --subject workload; --subject user maps by --user-claim"
                    .into(),
            ));
        }
        let condition = policy
            .condition
            .as_deref()
            .map(Expression::compile)
            .transpose()
            .map_err(IssuerPolicyError::Condition)?
            .map(Arc::new);
        let subject_expr = policy
            .subject_expr
            .as_deref()
            .map(Expression::compile)
            .transpose()
            .map_err(IssuerPolicyError::SubjectExpr)?
            .map(Arc::new);
        let static_keys = match &policy.keys {
            KeySource::Jwks(document) => {
                let body = serde_json::to_vec(document).unwrap_or_default();
                Some(Arc::new(
                    parse_jwks(&body, &policy.algorithms).map_err(IssuerPolicyError::Jwks)?,
                ))
            }
            KeySource::JwksUri(_) | KeySource::Discovery => None,
        };
        Ok(TrustedIssuer {
            id,
            issuer,
            integration_key,
            active,
            policy,
            condition,
            subject_expr,
            static_keys,
        })
    }

    /// The replay record's issuer for this issuer's `jti`s, apart from every
    /// integration's (keys, never URLs) and every other issuer's. Named by the issuer
    /// identifier, not the registration's id, so that removing and adding the issuer
    /// again does not make its used tokens new.
    pub fn replay_namespace(&self) -> String {
        format!("issuer:{}", self.issuer)
    }

    /// Whether its tokens are accepted at `now`: active and before `--expires-at`.
    pub fn check_trust(&self, now: i64) -> Result<(), GrantError> {
        if !self.active {
            return Err(GrantError::TrustedIssuerDisabled);
        }
        if self.policy.expires_at.is_some_and(|at| now >= at) {
            return Err(GrantError::TrustedIssuerExpired);
        }
        Ok(())
    }

    /// The keys given when it was added (`--jwks-file`), parsed once; `None` when
    /// they come by URL.
    pub fn static_keys(&self) -> Option<&Arc<IssuerKeySet>> {
        self.static_keys.as_ref()
    }

    /// The algorithms its keys may be used with (empty: by key type).
    pub fn allowed_algorithms(&self) -> &[JwsAlgorithm] {
        &self.policy.algorithms
    }
}

/// A token of a trusted issuer whose signature and claims passed the issuer's
/// policy; its claims kept for the condition and the subject mapping.
#[derive(Debug, Clone)]
pub struct IssuerAssertion {
    verified: VerifiedAssertion,
    claims: Map<String, Value>,
}

impl IssuerAssertion {
    /// What the shared rules read from it.
    pub fn verified(&self) -> &VerifiedAssertion {
        &self.verified
    }

    /// All its claims.
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }
}

impl UnverifiedAssertion<'_> {
    /// Checks a trusted issuer's token: the trust itself (active, not expired), the
    /// header's `typ` and `alg` against the issuer's policy, the signature with
    /// `keys` (the issuer's usable keys, as the adapter fetched them; the key that
    /// verifies must be published for the `alg`), and the claims
    /// under the issuer's audiences, lifetime, clock skew and `jti` requirement
    /// (the server's `policy` where the issuer sets none).
    pub fn verify_from_issuer(
        self,
        issuer: &TrustedIssuer,
        keys: &IssuerKeySet,
        policy: &AssertionPolicy,
        now: i64,
    ) -> Result<IssuerAssertion, GrantError> {
        if issuer.issuer != self.issuer() {
            return Err(GrantError::IssuerNotFound);
        }
        issuer.check_trust(now)?;
        self.check_typ_allowed(issuer)?;
        self.check_alg_allowed(issuer)?;
        let alg = self.algorithm();
        let rules = issuer.claim_rules(policy);
        let (verified, claims) = self.verify_with_keys(&keys.keys, &rules, now)?;
        if !keys.permits(verified.kid(), alg) {
            return Err(GrantError::AlgorithmNotAllowed(alg.as_str().to_owned()));
        }
        Ok(IssuerAssertion { verified, claims })
    }
}

impl UnverifiedAssertion<'_> {
    /// The header's `typ` is one the issuer's policy lists, when it lists any.
    fn check_typ_allowed(&self, issuer: &TrustedIssuer) -> Result<(), GrantError> {
        let typs = &issuer.policy.typs;
        if !typs.is_empty() {
            let typ = self.typ().unwrap_or_default();
            if !typs.iter().any(|t| t.eq_ignore_ascii_case(typ)) {
                return Err(GrantError::TypNotAllowed(crate::jws::truncate(typ)));
            }
        }
        Ok(())
    }

    /// The header's `alg` is one the issuer's policy lists, when it lists any.
    fn check_alg_allowed(&self, issuer: &TrustedIssuer) -> Result<(), GrantError> {
        let alg = self.algorithm();
        if !issuer.policy.algorithms.is_empty() && !issuer.policy.algorithms.contains(&alg) {
            return Err(GrantError::AlgorithmNotAllowed(alg.as_str().to_owned()));
        }
        Ok(())
    }

    /// Explains [`Self::verify_from_issuer`], recording each rule in `explanation`.
    pub fn explain_from_issuer(
        &self,
        issuer: &TrustedIssuer,
        keys: &IssuerKeySet,
        policy: &AssertionPolicy,
        now: i64,
        explanation: &mut Explanation,
    ) -> Option<IssuerAssertion> {
        let start = explanation.checks().len();
        let trusted = if issuer.issuer != self.issuer() {
            Err(GrantError::IssuerNotFound)
        } else {
            issuer.check_trust(now)
        };
        explanation.check("issuer", trusted, |()| {
            format!(
                "trusted issuer '{}' ({}) is active and not expired",
                issuer.id, issuer.issuer
            )
        });
        explanation.check("typ", self.check_typ_allowed(issuer), |()| {
            match issuer.policy.typs.as_slice() {
                [] => "the issuer accepts any typ".into(),
                typs => format!("typ is one of {}", typs.join(", ")),
            }
        });
        explanation.check("alg_allowed", self.check_alg_allowed(issuer), |()| {
            format!("alg '{}' is allowed", self.algorithm().as_str())
        });
        let rules = issuer.claim_rules(policy);
        let (verified, claims) =
            self.explain_with_keys(&keys.keys, &rules, now, explanation, |e| e)?;
        let alg = self.algorithm();
        let permits = if keys.permits(verified.kid(), alg) {
            Ok(())
        } else {
            Err(GrantError::AlgorithmNotAllowed(alg.as_str().to_owned()))
        };
        explanation.check("key_alg", permits, |()| {
            format!("key '{}' is published for {}", verified.kid(), alg.as_str())
        })?;
        let assertion = IssuerAssertion { verified, claims };
        explanation.passed_since(start).then_some(assertion)
    }
}

impl TrustedIssuer {
    /// The claim rules of its tokens: its audiences, lifetime, clock skew and `jti`
    /// requirement, the server's `policy` where it sets none.
    fn claim_rules<'p>(&'p self, policy: &'p AssertionPolicy) -> ClaimRules<'p> {
        let audiences = if self.policy.audiences.is_empty() {
            &policy.accepted_audiences
        } else {
            &self.policy.audiences
        };
        ClaimRules {
            accepted_audiences: audiences,
            leeway_secs: self.policy.clock_skew_secs.unwrap_or(policy.leeway_secs),
            max_lifetime_secs: self.policy.max_lifetime_secs,
            require_jti: self.policy.replay == ReplayPolicy::SingleUse,
        }
    }
}

/// How the adapter must look up the local user of a `--subject user` issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserLookup {
    /// The user linked to this subject of the issuer.
    Linked(String),
    /// The user with this (verified) email address.
    Email(String),
}

impl TrustedIssuer {
    /// Checks the issuer's condition on the token: `condition_not_met` when it is
    /// false or fails, without saying more (`jwtgrant explain` says which).
    pub fn check_condition(&self, assertion: &IssuerAssertion) -> Result<(), GrantError> {
        match &self.condition {
            Some(condition) => match condition.evaluate_condition(&assertion.claims) {
                Ok(true) => Ok(()),
                Ok(false) | Err(_) => Err(GrantError::ConditionNotMet),
            },
            None => Ok(()),
        }
    }

    /// Explains [`Self::check_condition`]: the condition's source, and why it
    /// failed (false, or the evaluation's error), which the client is not told.
    pub fn explain_condition(&self, assertion: &IssuerAssertion, explanation: &mut Explanation) {
        let Some(condition) = &self.condition else {
            explanation.pass("condition", "the issuer sets no condition");
            return;
        };
        let source = condition.source();
        match condition.evaluate_condition(&assertion.claims) {
            Ok(true) => explanation.pass("condition", format!("`{source}` is true")),
            Ok(false) => explanation.fail_because(
                "condition",
                &GrantError::ConditionNotMet,
                &format!("`{source}` is false"),
            ),
            Err(error) => explanation.fail_because(
                "condition",
                &GrantError::ConditionNotMet,
                &format!("`{source}` failed: {error}"),
            ),
        }
    }

    /// For a `--subject user` issuer, which user the token names; `None` for a
    /// workload issuer.
    pub fn user_lookup(
        &self,
        assertion: &IssuerAssertion,
    ) -> Result<Option<UserLookup>, GrantError> {
        if self.policy.subject != SubjectKind::User {
            return Ok(None);
        }
        let claims = &assertion.claims;
        match self.policy.user_claim {
            UserClaim::Sub => assertion
                .verified
                .subject()
                .map(|sub| Some(UserLookup::Linked(sub.to_owned())))
                .ok_or(GrantError::SubjectNotMapped("the token has no 'sub'")),
            UserClaim::Email => {
                if claims.get("email_verified") != Some(&Value::Bool(true)) {
                    return Err(GrantError::SubjectNotMapped(
                        "the token's email is not verified ('email_verified' is not true)",
                    ));
                }
                match claims.get("email") {
                    Some(Value::String(email)) if !email.is_empty() => {
                        Ok(Some(UserLookup::Email(email.clone())))
                    }
                    _ => Err(GrantError::SubjectNotMapped("the token has no 'email'")),
                }
            }
        }
    }

    /// The `sub` of a workload's application token: `subject_expr`, or the token's
    /// own `sub`.
    fn workload_subject(&self, assertion: &IssuerAssertion) -> Result<String, GrantError> {
        match &self.subject_expr {
            Some(expr) => expr
                .evaluate_subject(&assertion.claims)
                .map_err(|_| GrantError::SubjectNotMapped("--subject-expr did not give a subject")),
            None => assertion
                .verified
                .subject()
                .map(str::to_owned)
                .ok_or(GrantError::SubjectNotMapped("the token has no 'sub'")),
        }
    }
}

/// Decides the grant for a trusted issuer's token (already verified): the
/// condition, the scopes (`form_scope`, else the token's `scope`, else the
/// issuer's; each within the issuer's cap and the integration's scopes), the
/// subject (the mapped user, whose consent applies as for integrations, found by the
/// adapter in `records`; or the workload), and the `jti` to record under
/// `single-use`.
pub fn decide_for_issuer(
    assertion: &IssuerAssertion,
    issuer: &TrustedIssuer,
    integration: &Integration,
    form_scope: Option<&str>,
    records: SubjectRecords<'_>,
    leeway_secs: i64,
    consent_url: impl Fn(&[String]) -> String,
) -> Result<GrantDecision, GrantError> {
    if integration.key != issuer.integration_key || !integration.active {
        return Err(GrantError::IntegrationDisabled);
    }
    if issuer.policy.id_jag {
        // An ID-JAG is decided by its own rules, with the presenting client.
        return Err(GrantError::IssuerNotFound);
    }
    issuer.check_condition(assertion)?;

    let cap = &issuer.policy.scopes;
    let claim = assertion.verified.scopes();
    let scopes = match (claim, form_scope) {
        (None, None) => cap.clone(),
        _ => requested_scopes(claim, form_scope)?,
    };
    if let Some(scope) = scopes
        .iter()
        .find(|s| !integration.scopes.contains(s) || (!cap.is_empty() && !cap.contains(s)))
    {
        return Err(GrantError::ScopeNotAllowed(crate::jws::truncate(scope)));
    }

    let subject = match issuer.policy.subject {
        SubjectKind::User => {
            let user = records.user.ok_or(GrantError::UserNotFound)?;
            user_subject(&user.id, &scopes, records, &consent_url)?
        }
        SubjectKind::Workload if integration.allow_application_tokens => {
            TokenSubject::Workload(issuer.workload_subject(assertion)?)
        }
        SubjectKind::Workload => return Err(GrantError::ApplicationTokensNotAllowed),
    };

    let verified = &assertion.verified;
    let replay_guard = match (issuer.policy.replay, verified.jti()) {
        (ReplayPolicy::SingleUse, Some(jti)) => Some(ReplayGuard {
            issuer: issuer.replay_namespace(),
            jti: jti.to_owned(),
            remember_until: verified
                .expires_at()
                .saturating_add(issuer.policy.clock_skew_secs.unwrap_or(leeway_secs)),
        }),
        (ReplayPolicy::SingleUse, None) => return Err(GrantError::JtiRequired),
        _ => None,
    };
    Ok(GrantDecision::with_guard(
        integration.key.clone(),
        subject,
        scopes,
        replay_guard,
    ))
}

/// Federated client authentication (`--client-authentication`): a trusted issuer's
/// token, verified with [`UnverifiedAssertion::verify_from_issuer`], authenticates
/// the bound integration named by the request's `client_id` when the issuer allows
/// it and its condition holds. The replay guard, under `single-use`, must be
/// recorded by the caller before the client counts as authenticated.
pub fn authenticate_federated_client(
    assertion: &IssuerAssertion,
    issuer: &TrustedIssuer,
    integration: &Integration,
    leeway_secs: i64,
) -> Result<(AuthenticatedClient, Option<ReplayGuard>), GrantError> {
    if !issuer.policy.client_authentication || issuer.policy.id_jag {
        return Err(GrantError::IssuerNotFound);
    }
    if integration.key != issuer.integration_key || !integration.active {
        return Err(GrantError::IntegrationDisabled);
    }
    issuer.check_condition(assertion)?;
    let verified = &assertion.verified;
    let guard = match (issuer.policy.replay, verified.jti()) {
        (ReplayPolicy::SingleUse, Some(jti)) => Some(ReplayGuard {
            issuer: format!("client-assertion:{}", issuer.replay_namespace()),
            jti: jti.to_owned(),
            remember_until: verified
                .expires_at()
                .saturating_add(issuer.policy.clock_skew_secs.unwrap_or(leeway_secs)),
        }),
        (ReplayPolicy::SingleUse, None) => return Err(GrantError::JtiRequired),
        _ => None,
    };
    Ok((
        AuthenticatedClient {
            client_id: integration.key.clone(),
            confidential: true,
        },
        guard,
    ))
}

#[cfg(test)]
mod tests;
