//! The JWT bearer grant's decision (rules 5 to 7 of PROTOCOL.md): who the token is
//! for, with which scopes, and which `jti` must be recorded before it is issued.

use crate::assertion::VerifiedAssertion;
use crate::client_auth::AuthenticatedClient;
use crate::error::GrantError;
use crate::explain::Explanation;
use crate::model::{Consent, Integration, User, split_scopes};
use crate::resource::Resources;

/// The scope a user token must carry (DocuSign's rule).
pub const IMPERSONATION_SCOPE: &str = "impersonation";

/// Whom the token will speak for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSubject {
    /// A user, by id: the integration acts as them.
    User(String),
    /// The integration itself (no `sub` in the assertion).
    Application,
    /// A workload a trusted issuer vouches for: an application token of the
    /// integration whose `sub` is the workload's (the issuer's `--subject-expr`).
    Workload(String),
}

/// A `jti` that must be recorded as used, until `remember_until`, before the token is
/// issued (rule 5). Two requests with the same `jti` must not both get a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayGuard {
    /// The integration key.
    pub issuer: String,
    /// The assertion's `jti`.
    pub jti: String,
    /// Unix seconds: the assertion's `exp` plus leeway.
    pub remember_until: i64,
}

/// The decision to grant: only [`decide`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantDecision {
    client_id: String,
    subject: TokenSubject,
    scopes: Vec<String>,
    resources: Resources,
    replay_guard: Option<ReplayGuard>,
}

impl GrantDecision {
    /// A decision for a grant that records no `jti` (authorization code, refresh).
    pub(crate) fn new(client_id: String, subject: TokenSubject, scopes: Vec<String>) -> Self {
        GrantDecision {
            client_id,
            subject,
            scopes,
            resources: Resources::none(),
            replay_guard: None,
        }
    }

    /// A decision that records `replay_guard` before issuing (a trusted issuer's).
    pub(crate) fn with_guard(
        client_id: String,
        subject: TokenSubject,
        scopes: Vec<String>,
        replay_guard: Option<ReplayGuard>,
    ) -> Self {
        GrantDecision {
            client_id,
            subject,
            scopes,
            resources: Resources::none(),
            replay_guard,
        }
    }

    /// The same decision for `resources` (RFC 8707), checked by their constructor:
    /// the token's audience.
    #[must_use]
    pub fn for_resources(mut self, resources: Resources) -> Self {
        self.resources = resources;
        self
    }

    /// The integration key: the token's `client_id`.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Whom the token is for.
    pub fn subject(&self) -> &TokenSubject {
        &self.subject
    }

    /// The token's `sub` claim: the user id, or the integration key for an
    /// application token.
    pub fn subject_claim(&self) -> &str {
        match &self.subject {
            TokenSubject::User(id) | TokenSubject::Workload(id) => id,
            TokenSubject::Application => &self.client_id,
        }
    }

    /// The granted scopes.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The resources the token is for; none means the configured audience.
    pub fn resources(&self) -> &[String] {
        self.resources.as_slice()
    }

    /// The `jti` to record before issuing, when the assertion had one.
    pub fn replay_guard(&self) -> Option<&ReplayGuard> {
        self.replay_guard.as_ref()
    }
}

/// What the adapter found about the assertion's `sub`.
#[derive(Debug, Clone, Copy)]
pub struct SubjectRecords<'a> {
    /// The user named by `sub`, if one exists.
    pub user: Option<&'a User>,
    /// The user's consent for this integration, if any.
    pub consent: Option<&'a Consent>,
}

/// Checks the client that presented the assertion, when the request also named or
/// authenticated one (RFC 7523 section 3.1: client authentication is optional on
/// this grant): it must be the integration the assertion yields tokens for, so one
/// client cannot spend another's assertion.
pub fn check_presenting_client(
    client: Option<&AuthenticatedClient>,
    integration: &Integration,
) -> Result<(), GrantError> {
    match client {
        Some(client) if client.client_id != integration.key => {
            Err(GrantError::PresentingClientMismatch)
        }
        _ => Ok(()),
    }
}

/// Decides the grant for a verified assertion.
///
/// `form_scope` is the token request's `scope` parameter; `consent_url` builds the
/// URL that sends the user to the consent page for the given scopes; `leeway_secs`
/// extends how long the `jti` is remembered.
pub fn decide(
    assertion: &VerifiedAssertion,
    form_scope: Option<&str>,
    integration: &Integration,
    records: SubjectRecords<'_>,
    leeway_secs: i64,
    consent_url: impl Fn(&[String]) -> String,
) -> Result<GrantDecision, GrantError> {
    let scopes = granted_scopes(assertion, form_scope, integration)?;
    let subject = token_subject(assertion, &scopes, integration, records, &consent_url)?;
    Ok(grant(assertion, integration, subject, scopes, leeway_secs))
}

/// The decision once the scopes and the subject hold: the `jti`, if any, to record
/// until `exp` plus the leeway.
fn grant(
    assertion: &VerifiedAssertion,
    integration: &Integration,
    subject: TokenSubject,
    scopes: Vec<String>,
    leeway_secs: i64,
) -> GrantDecision {
    let replay_guard = assertion.jti().map(|jti| ReplayGuard {
        issuer: assertion.issuer().to_owned(),
        jti: jti.to_owned(),
        remember_until: assertion.expires_at().saturating_add(leeway_secs),
    });
    GrantDecision {
        client_id: integration.key.clone(),
        subject,
        scopes,
        resources: Resources::none(),
        replay_guard,
    }
}

/// Rules 7 and 6's first part: the scopes asked for (see [`requested_scopes`]), each
/// one the integration allows.
fn granted_scopes(
    assertion: &VerifiedAssertion,
    form_scope: Option<&str>,
    integration: &Integration,
) -> Result<Vec<String>, GrantError> {
    let scopes = requested_scopes(assertion.scopes(), form_scope)?;
    if let Some(scope) = scopes.iter().find(|s| !integration.scopes.contains(s)) {
        return Err(GrantError::ScopeNotAllowed(crate::jws::truncate(scope)));
    }
    Ok(scopes)
}

/// Rule 6: a user, as [`user_subject`] allows; or the application itself, when the
/// integration may have application tokens.
fn token_subject(
    assertion: &VerifiedAssertion,
    scopes: &[String],
    integration: &Integration,
    records: SubjectRecords<'_>,
    consent_url: &impl Fn(&[String]) -> String,
) -> Result<TokenSubject, GrantError> {
    match assertion.subject() {
        Some(user_id) => user_subject(user_id, scopes, records, consent_url),
        None if integration.allow_application_tokens => Ok(TokenSubject::Application),
        None => Err(GrantError::ApplicationTokensNotAllowed),
    }
}

/// Explains [`decide`]: the scopes, then the subject, recorded in `explanation`.
/// Returns the decision when both hold.
pub fn explain_decision(
    assertion: &VerifiedAssertion,
    form_scope: Option<&str>,
    integration: &Integration,
    records: SubjectRecords<'_>,
    leeway_secs: i64,
    consent_url: impl Fn(&[String]) -> String,
    explanation: &mut Explanation,
) -> Option<GrantDecision> {
    let Some(scopes) = explanation.check(
        "scopes",
        granted_scopes(assertion, form_scope, integration),
        |scopes| match scopes.as_slice() {
            [] => "no scope is asked for".into(),
            scopes => format!("'{}' are the integration's scopes", scopes.join(" ")),
        },
    ) else {
        explanation.skip("subject", "the scopes were refused");
        return None;
    };
    let subject = explanation.check(
        "subject",
        token_subject(assertion, &scopes, integration, records, &consent_url),
        |subject| match subject {
            TokenSubject::User(id) => {
                format!("user '{id}' is active and has consented to every scope")
            }
            _ => "an application token, which the integration allows".into(),
        },
    )?;
    Some(grant(assertion, integration, subject, scopes, leeway_secs))
}

/// The subject of a user token for `user_id` (whose record is `records.user`): the
/// user must be active, the scopes must include `impersonation`, and the user must
/// have consented to every scope (rule 6).
pub(crate) fn user_subject(
    user_id: &str,
    scopes: &[String],
    records: SubjectRecords<'_>,
    consent_url: &impl Fn(&[String]) -> String,
) -> Result<TokenSubject, GrantError> {
    let user = records.user.ok_or(GrantError::UserNotFound)?;
    if user.id != user_id {
        return Err(GrantError::UserNotFound);
    }
    if !user.active {
        return Err(GrantError::UserDisabled);
    }
    if !scopes.iter().any(|s| s == IMPERSONATION_SCOPE) {
        // Consent to what was asked cannot help: the URL asks for
        // `impersonation` too, which the next assertion must request.
        let mut with_impersonation = scopes.to_vec();
        with_impersonation.push(IMPERSONATION_SCOPE.to_owned());
        return Err(GrantError::ImpersonationScopeMissing {
            consent_url: consent_url(&with_impersonation),
        });
    }
    let missing: Vec<&str> = scopes
        .iter()
        .filter(|s| !records.consent.is_some_and(|c| c.scopes.contains(s)))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(GrantError::ConsentRequired {
            scope: missing.join(" "),
            consent_url: consent_url(scopes),
        });
    }
    Ok(TokenSubject::User(user_id.to_owned()))
}

/// Rule 7: the assertion's `scope` claim, narrowed by the form's `scope` when both
/// are given; otherwise whichever is present.
pub(crate) fn requested_scopes(
    claim: Option<&[String]>,
    form_scope: Option<&str>,
) -> Result<Vec<String>, GrantError> {
    let form = form_scope.map(split_scopes);
    match (claim, form) {
        (Some(claim), Some(form)) => {
            if let Some(extra) = form.iter().find(|s| !claim.contains(s)) {
                return Err(GrantError::ScopeBeyondAssertion(crate::jws::truncate(
                    extra,
                )));
            }
            Ok(form)
        }
        (Some(claim), None) => Ok(claim.to_vec()),
        (None, Some(form)) => Ok(form),
        (None, None) => Ok(Vec::new()),
    }
}
