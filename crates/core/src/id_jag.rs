//! Cross-app access at the resource authorization server: an Identity Assertion JWT
//! Authorization Grant (ID-JAG, draft-ietf-oauth-identity-assertion-authz-grant, as
//! MCP's enterprise-managed authorization uses it) from a trusted issuer registered
//! with `--id-jag`. The IdP's policy stands for consent; this module decides the
//! rest: the presenting client, the exact audience, the scopes, the resources and
//! the user. The signature and the claims' times were checked by
//! [`crate::UnverifiedAssertion::verify_from_issuer`] under the issuer's policy,
//! whose `typ` is the ID-JAG's.

use serde_json::Value;

use crate::client_auth::AuthenticatedClient;
use crate::error::GrantError;
use crate::grants::jwt_bearer::{GrantDecision, TokenSubject};
use crate::model::{Integration, User, split_scopes};
use crate::resource::Resources;
use crate::trusted_issuer::{
    IssuerAssertion, IssuerPolicy, IssuerPolicyError, ReplayPolicy, SubjectKind, TrustedIssuer,
};
use jwtgrant_proto::ID_JAG_TYP;

/// What the token request adds to the ID-JAG.
#[derive(Debug, Clone, Copy)]
pub struct IdJagRequest<'a> {
    /// The client the request authenticated, if any.
    pub client: Option<&'a AuthenticatedClient>,
    /// The form's `scope`: intersected with the ID-JAG's.
    pub scope: Option<&'a str>,
    /// The form's `resource` values.
    pub resources: &'a [&'a str],
}

/// An `--id-jag` issuer's policy must say what an ID-JAG is: a user's grant
/// (`--subject user`), presented again until it expires (`until-exp`), with the
/// ID-JAG's `typ` and no other.
pub fn check_policy(policy: &IssuerPolicy) -> Result<(), IssuerPolicyError> {
    let invalid = |text: &str| Err(IssuerPolicyError::Invalid(text.to_owned()));
    if policy.subject != SubjectKind::User {
        return invalid("--id-jag needs --subject user: an ID-JAG speaks for a user");
    }
    if policy.replay != ReplayPolicy::UntilExp {
        return invalid(
            "--id-jag needs --replay until-exp: an ID-JAG may be presented until it expires",
        );
    }
    if policy.typs.len() != 1
        || !policy
            .typs
            .iter()
            .all(|t| t.eq_ignore_ascii_case(ID_JAG_TYP))
    {
        return invalid("--id-jag accepts only --typ oauth-id-jag+jwt");
    }
    if policy.client_authentication {
        return invalid("--id-jag and --client-authentication do not go together");
    }
    Ok(())
}

/// Decides the grant for a verified ID-JAG from `issuer` (bound to `integration`),
/// presented as `request` says, to this server (`server_issuer`). `user` is the
/// local user the adapter found for the ID-JAG's subject
/// ([`TrustedIssuer::user_lookup`]).
pub fn decide_id_jag(
    assertion: &IssuerAssertion,
    issuer: &TrustedIssuer,
    integration: &Integration,
    server_issuer: &str,
    request: IdJagRequest<'_>,
    user: Option<&User>,
) -> Result<GrantDecision, GrantError> {
    if !issuer.policy.id_jag {
        return Err(GrantError::IssuerNotFound);
    }
    if integration.key != issuer.integration_key || !integration.active {
        return Err(GrantError::IntegrationDisabled);
    }
    let client = request
        .client
        .filter(|c| c.confidential)
        .ok_or(GrantError::IdJagClientAuthenticationRequired)?;
    let claims = assertion.claims();
    let client_id = claims.get("client_id").and_then(Value::as_str);
    if client_id != Some(client.client_id.as_str()) || client.client_id != integration.key {
        return Err(GrantError::IdJagClientMismatch);
    }
    let audience_is_us = match claims.get("aud") {
        Some(Value::String(aud)) => aud == server_issuer,
        Some(Value::Array(auds)) => {
            auds.len() == 1 && auds.first().and_then(Value::as_str) == Some(server_issuer)
        }
        _ => false,
    };
    if !audience_is_us {
        return Err(GrantError::IdJagAudience);
    }
    issuer.check_condition(assertion)?;

    // The ID-JAG's scopes, narrowed by the request's (a requested scope the ID-JAG
    // lacks is dropped), within the issuer's cap and the integration's scopes.
    let granted = assertion.verified().scopes().unwrap_or_default();
    let cap = &issuer.policy.scopes;
    let requested = request.scope.map(split_scopes);
    let scopes: Vec<String> = granted
        .iter()
        .filter(|s| requested.as_ref().is_none_or(|r| r.contains(s)))
        .filter(|s| integration.scopes.contains(s) && (cap.is_empty() || cap.contains(s)))
        .cloned()
        .collect();
    if scopes.is_empty() && requested.as_ref().is_some_and(|r| !r.is_empty()) {
        return Err(GrantError::IdJagNoScope);
    }

    // The ID-JAG's `resource` becomes the token's audience; the request may narrow it.
    let resources = match resource_claim(claims.get("resource"))? {
        Some(in_id_jag) => {
            let named: Vec<&str> = in_id_jag.iter().map(String::as_str).collect();
            let allowed = Resources::for_integration(&named, integration)?;
            Resources::narrowing(request.resources, allowed.as_slice())?
        }
        None => Resources::for_integration(request.resources, integration)?,
    };

    let user = user.ok_or(GrantError::UserNotFound)?;
    if !user.active {
        return Err(GrantError::UserDisabled);
    }
    Ok(GrantDecision::new(
        integration.key.clone(),
        TokenSubject::User(user.id.clone()),
        scopes,
    )
    .for_resources(resources))
}

/// The ID-JAG's `resource` claim: one URI or several.
fn resource_claim(value: Option<&Value>) -> Result<Option<Vec<String>>, GrantError> {
    let wrong = GrantError::WrongType {
        name: "resource",
        expected: "a string or an array of strings",
    };
    match value {
        None => Ok(None),
        Some(Value::String(one)) => Ok(Some(vec![one.clone()])),
        Some(Value::Array(many)) => many
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or(wrong.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(wrong),
    }
}

#[cfg(test)]
mod tests;
