//! The protected resource an API is (RFC 9728): its identifier, the metadata
//! document that names its authorization servers and scopes, and the URL and path
//! that document is served at. [`RequireAccessToken::resource`] puts one behind
//! the layer, which then serves the document and names it in its challenges.
//!
//! [`RequireAccessToken::resource`]: crate::RequireAccessToken::resource

use jwtgrant_proto::{PROTECTED_RESOURCE_METADATA_PATH, ProtectedResourceMetadata};
use reqwest::Url;

/// Why a URL cannot be a protected resource's identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceError {
    /// Not an absolute `https` (or `http`) URL with a host.
    #[error("'{0}' is not an absolute http(s) URL")]
    NotAbsolute(String),
    /// A fragment, which no resource identifier may have (RFC 8707 section 2).
    #[error("'{0}' has a fragment, which a resource identifier may not have")]
    Fragment(String),
    /// A query: RFC 8707 section 2 advises against one, and the metadata's route
    /// could not tell two resources that differ only by it apart.
    #[error("'{0}' has a query, which this SDK does not take in a resource identifier")]
    Query(String),
    /// A path segment starting with `:` or `*`, which axum reads as a capture, so
    /// the metadata's path could not be routed as written.
    #[error("'{0}' has a path segment starting with ':' or '*', which cannot be routed")]
    UnroutablePath(String),
}

/// An API guarded by access tokens, described for clients (RFC 9728): what the
/// layer serves at [`ProtectedResource::metadata_url`] and expects as the
/// tokens' `aud`.
///
/// ```
/// use jwtgrant_client::ProtectedResource;
///
/// let mcp = ProtectedResource::new("https://api.example.com/mcp")?
///     .authorization_server("https://auth.example.com")
///     .scopes_supported(["mcp:tools"])
///     .resource_name("Example MCP server");
/// assert_eq!(
///     mcp.metadata_url(),
///     "https://api.example.com/.well-known/oauth-protected-resource/mcp"
/// );
/// # Ok::<(), jwtgrant_client::ResourceError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ProtectedResource {
    metadata: ProtectedResourceMetadata,
    /// Where clients fetch the document; named in every challenge.
    metadata_url: String,
    /// The path of `metadata_url`, which the layer's router serves.
    metadata_path: String,
}

impl ProtectedResource {
    /// The resource `resource`, an absolute URL without query or fragment, kept as
    /// written: it is the `resource` of the document and the `aud` tokens must
    /// carry. RFC 9728 wants `https`; `http` is taken for local development.
    pub fn new(resource: impl Into<String>) -> Result<ProtectedResource, ResourceError> {
        let resource = resource.into();
        let url = match Url::parse(&resource) {
            Ok(url) if matches!(url.scheme(), "https" | "http") && url.has_host() => url,
            _ => return Err(ResourceError::NotAbsolute(resource)),
        };
        if url.fragment().is_some() {
            return Err(ResourceError::Fragment(resource));
        }
        if url.query().is_some() {
            return Err(ResourceError::Query(resource));
        }
        if url
            .path_segments()
            .into_iter()
            .flatten()
            .any(|segment| segment.starts_with([':', '*']))
        {
            return Err(ResourceError::UnroutablePath(resource));
        }
        // RFC 9728 section 3.1: the well-known path goes between the host and the
        // resource's path; a path of only "/" is dropped.
        let path = match url.path() {
            "/" => "",
            path => path,
        };
        let metadata_path = format!("{PROTECTED_RESOURCE_METADATA_PATH}{path}");
        let metadata_url = format!("{}{metadata_path}", url.origin().ascii_serialization());
        Ok(ProtectedResource {
            metadata: ProtectedResourceMetadata {
                bearer_methods_supported: vec!["header".into()],
                ..ProtectedResourceMetadata::new(resource)
            },
            metadata_url,
            metadata_path,
        })
    }

    /// An authorization server (its issuer URL) whose tokens the resource takes;
    /// repeatable. Behind the layer, none named means the verifier's issuer.
    pub fn authorization_server(mut self, issuer: impl Into<String>) -> Self {
        self.metadata.authorization_servers.push(issuer.into());
        self
    }

    /// The scopes the resource uses. Behind the layer, none named means the scopes
    /// the layer requires.
    pub fn scopes_supported<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.metadata.scopes_supported = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// A name for people (`resource_name`).
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.metadata.resource_name = Some(name.into());
        self
    }

    /// A page for developers (`resource_documentation`).
    pub fn resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.metadata.resource_documentation = Some(url.into());
        self
    }

    /// The resource identifier, as given.
    pub fn resource(&self) -> &str {
        &self.metadata.resource
    }

    /// The absolute URL of the metadata document (RFC 9728 section 3.1).
    pub fn metadata_url(&self) -> &str {
        &self.metadata_url
    }

    /// The path of [`ProtectedResource::metadata_url`] on the resource's host.
    pub fn metadata_path(&self) -> &str {
        &self.metadata_path
    }

    /// The document as configured, before the layer fills in its defaults.
    pub fn metadata(&self) -> &ProtectedResourceMetadata {
        &self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_url_puts_the_well_known_path_before_the_resource_path() {
        let cases = [
            (
                "https://api.example.com/mcp",
                "https://api.example.com/.well-known/oauth-protected-resource/mcp",
            ),
            (
                "https://api.example.com",
                "https://api.example.com/.well-known/oauth-protected-resource",
            ),
            (
                "https://api.example.com/",
                "https://api.example.com/.well-known/oauth-protected-resource",
            ),
            (
                "https://api.example.com:8443/v1/mcp/",
                "https://api.example.com:8443/.well-known/oauth-protected-resource/v1/mcp/",
            ),
            (
                "http://127.0.0.1:9000/mcp",
                "http://127.0.0.1:9000/.well-known/oauth-protected-resource/mcp",
            ),
            (
                "https://api.example.com:443/mcp",
                "https://api.example.com/.well-known/oauth-protected-resource/mcp",
            ),
        ];
        for (resource, url) in cases {
            let described = ProtectedResource::new(resource).unwrap();
            assert_eq!(described.metadata_url(), url, "{resource}");
            assert_eq!(described.resource(), resource, "kept as written");
            assert!(url.ends_with(described.metadata_path()), "{resource}");
        }
    }

    #[test]
    fn refuses_what_cannot_be_a_resource_identifier() {
        let refused = |url: &str| ProtectedResource::new(url).err();
        assert_eq!(
            refused("/mcp"),
            Some(ResourceError::NotAbsolute("/mcp".into()))
        );
        assert!(matches!(
            refused("urn:example:mcp"),
            Some(ResourceError::NotAbsolute(_))
        ));
        assert!(matches!(
            refused("ftp://api.example.com/mcp"),
            Some(ResourceError::NotAbsolute(_))
        ));
        assert!(matches!(
            refused("https://api.example.com/mcp#top"),
            Some(ResourceError::Fragment(_))
        ));
        assert!(matches!(
            refused("https://api.example.com/mcp?tenant=a"),
            Some(ResourceError::Query(_))
        ));
        assert!(matches!(
            refused("https://api.example.com/:tenant/mcp"),
            Some(ResourceError::UnroutablePath(_))
        ));
        assert!(matches!(
            refused("https://api.example.com/files/*"),
            Some(ResourceError::UnroutablePath(_))
        ));
    }

    #[test]
    fn the_document_names_the_header_as_the_only_bearer_method() {
        let resource = ProtectedResource::new("https://api.example.com/mcp")
            .unwrap()
            .authorization_server("https://auth.example.com")
            .authorization_server("https://other.example.com")
            .scopes_supported(["mcp:tools", "mcp:read"])
            .resource_name("Example")
            .resource_documentation("https://api.example.com/docs");
        assert_eq!(
            serde_json::to_value(resource.metadata()).unwrap(),
            serde_json::json!({
                "resource": "https://api.example.com/mcp",
                "authorization_servers": ["https://auth.example.com", "https://other.example.com"],
                "scopes_supported": ["mcp:tools", "mcp:read"],
                "bearer_methods_supported": ["header"],
                "resource_name": "Example",
                "resource_documentation": "https://api.example.com/docs",
            })
        );
    }
}
