//! RFC 9728 protected resource metadata: the document a resource server publishes
//! about itself, so a client refused with a 401 learns which authorization server
//! issues tokens for it and which scopes to ask for.

use serde::{Deserialize, Serialize};

/// The well-known path of the metadata (RFC 9728 section 3). A resource with a
/// path has its document at this path followed by its own
/// (`https://api.example.com/mcp` at
/// `https://api.example.com/.well-known/oauth-protected-resource/mcp`).
pub const PROTECTED_RESOURCE_METADATA_PATH: &str = "/.well-known/oauth-protected-resource";

/// The protected resource metadata document (RFC 9728 section 2). Lists with no
/// element are left out, as section 2 requires; unknown members are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectedResourceMetadata {
    /// The resource identifier: the URL of the API, as tokens name it in `aud`.
    pub resource: String,
    /// The issuers of the authorization servers whose tokens the resource takes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_servers: Vec<String>,
    /// The scopes the resource uses, so a client asks for them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// How a token may be sent: `header`, `body`, `query` (RFC 6750 section 2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bearer_methods_supported: Vec<String>,
    /// A name for people, e.g. on a consent page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    /// A page for developers on how to use the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_documentation: Option<String>,
}

impl ProtectedResourceMetadata {
    /// The document of `resource` with nothing else in it.
    pub fn new(resource: impl Into<String>) -> Self {
        ProtectedResourceMetadata {
            resource: resource.into(),
            authorization_servers: Vec::new(),
            scopes_supported: Vec::new(),
            bearer_methods_supported: Vec::new(),
            resource_name: None,
            resource_documentation: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_lists_are_left_out_and_unknown_members_ignored() {
        let metadata = ProtectedResourceMetadata {
            authorization_servers: vec!["https://auth.example.com".into()],
            ..ProtectedResourceMetadata::new("https://api.example.com/mcp")
        };
        assert_eq!(
            serde_json::to_value(&metadata).unwrap(),
            serde_json::json!({
                "resource": "https://api.example.com/mcp",
                "authorization_servers": ["https://auth.example.com"],
            })
        );
        let read: ProtectedResourceMetadata = serde_json::from_value(serde_json::json!({
            "resource": "https://api.example.com/mcp",
            "authorization_servers": ["https://auth.example.com"],
            "dpop_bound_access_tokens_required": false,
        }))
        .unwrap();
        assert_eq!(read, metadata);
    }
}
