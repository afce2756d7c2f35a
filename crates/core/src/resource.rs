//! RFC 8707 resource indicators: the `resource` values a request names, checked (an
//! absolute URI without a fragment) and held to what the integration, or the grant
//! being refreshed, allows. A token's audience is its resources, or the server's
//! configured audience when the request named none.

use crate::error::GrantError;
use crate::jws::truncate;
use crate::model::Integration;

/// The longest `resource` value accepted.
const MAX_RESOURCE_LEN: usize = 2048;

/// The resources a token is for, checked: only this module's constructors make one,
/// so a decision never carries a resource nobody allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources(Vec<String>);

impl Resources {
    /// No resource named: the token keeps the configured audience.
    pub fn none() -> Self {
        Resources(Vec::new())
    }

    /// `requested` (the request's `resource` values), each of which must be one of
    /// the integration's resources (`invalid_target` otherwise).
    pub fn for_integration(
        requested: &[&str],
        integration: &Integration,
    ) -> Result<Self, GrantError> {
        Self::within(requested, &integration.resources, |r| {
            GrantError::ResourceNotAllowed(truncate(r))
        })
    }

    /// `requested`, which may only narrow `granted` (the resources of the code or
    /// refresh token being redeemed); none requested keeps them all.
    pub fn narrowing(requested: &[&str], granted: &[String]) -> Result<Self, GrantError> {
        if requested.is_empty() {
            return Ok(Resources(granted.to_vec()));
        }
        Self::within(requested, granted, |r| {
            GrantError::ResourceBeyondGrant(truncate(r))
        })
    }

    fn within(
        requested: &[&str],
        allowed: &[String],
        refuse: impl Fn(&str) -> GrantError,
    ) -> Result<Self, GrantError> {
        let mut out: Vec<String> = Vec::with_capacity(requested.len());
        for resource in requested {
            check_form(resource)?;
            if !allowed.iter().any(|a| a == resource) {
                return Err(refuse(resource));
            }
            if !out.iter().any(|known| known == resource) {
                out.push((*resource).to_owned());
            }
        }
        Ok(Resources(out))
    }

    /// The resources, in the order first requested.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// Whether no resource was named.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// RFC 8707 section 2: a `resource` is an absolute URI (a scheme, then `:`) and has
/// no fragment. Whitespace and control characters are refused too.
pub fn check_form(resource: &str) -> Result<(), GrantError> {
    let malformed = || GrantError::ResourceMalformed(truncate(resource));
    if resource.len() > MAX_RESOURCE_LEN
        || resource.contains('#')
        || resource
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(malformed());
    }
    let (scheme, rest) = resource.split_once(':').ok_or_else(malformed)?;
    let mut scheme_chars = scheme.chars();
    let scheme_ok = scheme_chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme_chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok || rest.is_empty() {
        return Err(malformed());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn integration(resources: &[&str]) -> Integration {
        Integration {
            key: "ik".into(),
            name: "MCP client".into(),
            active: true,
            allow_application_tokens: true,
            require_jti: false,
            scopes: vec!["mcp".into()],
            default_scopes: Vec::new(),
            redirect_uris: Vec::new(),
            resources: resources.iter().map(|r| (*r).to_owned()).collect(),
            client_secret_hash: None,
            keys: Vec::new(),
        }
    }

    #[test]
    fn a_resource_is_an_absolute_uri_without_a_fragment() {
        for good in [
            "https://api.example.com/mcp",
            "https://api.example.com",
            "urn:example:resource",
            "HTTP://x",
            "web+app://y",
        ] {
            assert_eq!(check_form(good), Ok(()), "{good}");
        }
        for bad in [
            "api.example.com/mcp",
            "/mcp",
            "https://api.example.com/mcp#frag",
            "https:",
            ":nothing",
            "1http://x",
            "ht tp://x",
            "https://x/ y",
            "https://x/\u{7}",
            "",
        ] {
            assert!(
                matches!(check_form(bad), Err(GrantError::ResourceMalformed(_))),
                "{bad:?}"
            );
        }
        assert!(check_form(&format!("https://x/{}", "a".repeat(MAX_RESOURCE_LEN))).is_err());
    }

    #[test]
    fn an_integration_yields_only_its_own_resources() {
        let mcp = integration(&["https://api.example.com/mcp", "https://files.example.com"]);
        let both = Resources::for_integration(
            &[
                "https://files.example.com",
                "https://api.example.com/mcp",
                "https://files.example.com",
            ],
            &mcp,
        );
        assert_eq!(
            both.map(|r| r.as_slice().to_vec()),
            Ok(vec![
                "https://files.example.com".to_owned(),
                "https://api.example.com/mcp".to_owned()
            ])
        );
        assert_eq!(
            Resources::for_integration(&["https://evil.example.com"], &mcp),
            Err(GrantError::ResourceNotAllowed(
                "https://evil.example.com".into()
            ))
        );
        // Exact match: a prefix or a trailing slash is another resource.
        assert!(Resources::for_integration(&["https://api.example.com/mcp/"], &mcp).is_err());
        assert!(Resources::for_integration(&["https://api.example.com"], &mcp).is_err());
        assert_eq!(
            Resources::for_integration(&["not a uri"], &mcp),
            Err(GrantError::ResourceMalformed("not a uri".into()))
        );
        assert_eq!(Resources::for_integration(&[], &mcp), Ok(Resources::none()));
    }

    #[test]
    fn a_redemption_keeps_or_narrows_the_granted_resources_never_widens() {
        let granted = vec![
            "https://a.example".to_owned(),
            "https://b.example".to_owned(),
        ];
        assert_eq!(
            Resources::narrowing(&[], &granted).map(|r| r.as_slice().to_vec()),
            Ok(granted.clone())
        );
        assert_eq!(
            Resources::narrowing(&["https://b.example"], &granted).map(|r| r.as_slice().to_vec()),
            Ok(vec!["https://b.example".to_owned()])
        );
        assert_eq!(
            Resources::narrowing(&["https://c.example"], &granted),
            Err(GrantError::ResourceBeyondGrant("https://c.example".into()))
        );
        // A grant for the default audience cannot be turned into one for a resource.
        assert_eq!(
            Resources::narrowing(&["https://a.example"], &[]),
            Err(GrantError::ResourceBeyondGrant("https://a.example".into()))
        );
    }
}
