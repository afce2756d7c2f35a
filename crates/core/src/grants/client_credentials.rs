//! The client credentials grant (RFC 6749 section 4.4): a confidential client asks
//! for a token for itself. Only integrations allowed application tokens may; the
//! token's `sub` and `client_id` are the integration key, the scopes are those asked
//! for within the integration's, and no refresh token comes with it.

use crate::client_auth::AuthenticatedClient;
use crate::error::GrantError;
use crate::grants::jwt_bearer::{GrantDecision, TokenSubject};
use crate::model::{Integration, split_scopes};
use crate::resource::Resources;

/// Decides a client credentials grant for the authenticated `client`, whose
/// integration is `integration`; `requested_scope` is the form's `scope` and
/// `requested_resources` its `resource` values (RFC 8707).
pub fn decide(
    client: &AuthenticatedClient,
    integration: &Integration,
    requested_scope: Option<&str>,
    requested_resources: &[&str],
) -> Result<GrantDecision, GrantError> {
    if !client.confidential {
        return Err(GrantError::ClientCredentialsNeedConfidentialClient);
    }
    if !integration.allow_application_tokens {
        return Err(GrantError::ClientCredentialsNotAllowed);
    }
    let scopes = requested_scope.map(split_scopes).unwrap_or_default();
    if let Some(scope) = scopes.iter().find(|s| !integration.scopes.contains(s)) {
        return Err(GrantError::ScopeNotAllowed(crate::jws::truncate(scope)));
    }
    let resources = Resources::for_integration(requested_resources, integration)?;
    Ok(
        GrantDecision::new(integration.key.clone(), TokenSubject::Application, scopes)
            .for_resources(resources),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn integration(allow_application_tokens: bool) -> Integration {
        Integration {
            key: "ik".into(),
            name: "Reports".into(),
            active: true,
            allow_application_tokens,
            require_jti: false,
            scopes: vec!["signature".into(), "extended".into()],
            default_scopes: Vec::new(),
            redirect_uris: Vec::new(),
            resources: vec!["https://api.example.com".into()],
            client_secret_hash: Some("$argon2id$...".into()),
            keys: Vec::new(),
        }
    }

    fn client(confidential: bool) -> AuthenticatedClient {
        AuthenticatedClient {
            client_id: "ik".into(),
            confidential,
        }
    }

    #[test]
    fn a_confidential_client_gets_an_application_token_with_its_scopes() {
        let decision = decide(
            &client(true),
            &integration(true),
            Some("signature extended"),
            &[],
        );
        let decision = decision.unwrap();
        assert_eq!(decision.client_id(), "ik");
        assert_eq!(decision.subject(), &TokenSubject::Application);
        assert_eq!(decision.subject_claim(), "ik");
        assert_eq!(decision.scopes(), ["signature", "extended"]);
        assert!(decision.replay_guard().is_none());
        let no_scope = decide(&client(true), &integration(true), None, &[]).unwrap();
        assert!(no_scope.scopes().is_empty());
    }

    #[test]
    fn a_public_client_is_refused() {
        assert_eq!(
            decide(&client(false), &integration(true), None, &[]).err(),
            Some(GrantError::ClientCredentialsNeedConfidentialClient)
        );
    }

    #[test]
    fn an_integration_without_application_tokens_is_refused() {
        assert_eq!(
            decide(&client(true), &integration(false), None, &[]).err(),
            Some(GrantError::ClientCredentialsNotAllowed)
        );
    }

    #[test]
    fn a_scope_beyond_the_integration_is_refused() {
        assert_eq!(
            decide(
                &client(true),
                &integration(true),
                Some("signature admin"),
                &[]
            )
            .err(),
            Some(GrantError::ScopeNotAllowed("admin".into()))
        );
    }

    #[test]
    fn resources_narrow_the_audience_to_the_integrations_own() {
        let decision = decide(
            &client(true),
            &integration(true),
            None,
            &["https://api.example.com"],
        );
        assert_eq!(
            decision.map(|d| d.resources().to_vec()),
            Ok(vec!["https://api.example.com".to_owned()])
        );
        assert_eq!(
            decide(
                &client(true),
                &integration(true),
                None,
                &["https://other.example.com"]
            )
            .err(),
            Some(GrantError::ResourceNotAllowed(
                "https://other.example.com".into()
            ))
        );
    }
}
