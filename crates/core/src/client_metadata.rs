//! Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document, as
//! MCP clients use them): a `client_id` that is an https URL names a JSON document,
//! fetched by the adapter, that says who the client is and where it may be sent
//! back. Here: the document's rules, and the client it makes under the operator's
//! template integration (its scopes, default scopes and resources). Such a client has
//! no secret: PKCE binds its codes, and with `private_key_jwt` it signs client
//! assertions with the keys its `jwks_uri` publishes (fetched by the adapter).

use serde_json::Value;

use crate::model::Integration;

/// The largest document accepted, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 5 * 1024;

/// The longest `client_name` shown.
const MAX_NAME_CHARS: usize = 80;

/// Why a client ID metadata document is not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// Not a JSON object.
    #[error("the client metadata document is not a JSON object")]
    NotJsonObject,
    /// Its `client_id` is not the URL it was fetched from.
    #[error("the client metadata document's client_id is not the URL it was fetched from")]
    ClientIdMismatch,
    /// No `redirect_uris`, or not an array of strings.
    #[error("the client metadata document lists no redirect_uris")]
    NoRedirectUris,
    /// A redirect URI that is not an absolute http(s) URL without a fragment.
    #[error(
        "the client metadata document's redirect URI '{0}' is not an absolute http(s) URL without a fragment"
    )]
    BadRedirectUri(String),
    /// A document carries a shared secret, which a public document cannot keep.
    #[error("a client metadata document must not carry a client_secret")]
    SecretInDocument,
    /// An authentication method other than `none` and `private_key_jwt`.
    #[error(
        "token_endpoint_auth_method '{0}' is not supported for client metadata documents (only 'none' and 'private_key_jwt')"
    )]
    UnsupportedAuthMethod(String),
    /// `private_key_jwt` without an http(s) `jwks_uri` (an inline `jwks` is not taken).
    #[error(
        "token_endpoint_auth_method 'private_key_jwt' needs a jwks_uri in the client metadata document"
    )]
    NoJwksUri,
}

/// The client a document describes, and where its keys are when it authenticates
/// with `private_key_jwt`.
#[derive(Debug, Clone)]
pub struct DocumentClient {
    /// The client (no keys yet: the adapter adds those `jwks_uri` serves).
    pub integration: Integration,
    /// With `private_key_jwt`: the URL of its JWKS.
    pub jwks_uri: Option<String>,
}

/// Whether `client_id` names a document (an http or https URL), which the adapter
/// then fetches (https only, unless insecure URLs are allowed).
pub fn is_document_client_id(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// The host of a document's URL, which the consent page shows: what the user can
/// trust, since the document names itself.
pub fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split(['/', '?', '#']).next().unwrap_or(rest)
}

/// The client the document at `url` describes, given `body` as fetched, with the
/// scopes, default scopes and resources of `template`.
pub fn client_from_document(
    url: &str,
    body: &[u8],
    template: &Integration,
) -> Result<DocumentClient, DocumentError> {
    let Ok(Value::Object(document)) = serde_json::from_slice::<Value>(body) else {
        return Err(DocumentError::NotJsonObject);
    };
    if document.get("client_id").and_then(Value::as_str) != Some(url) {
        return Err(DocumentError::ClientIdMismatch);
    }
    if document.contains_key("client_secret") {
        return Err(DocumentError::SecretInDocument);
    }
    let jwks_uri = match document.get("token_endpoint_auth_method") {
        None => None,
        Some(Value::String(method)) if method == "none" => None,
        Some(Value::String(method)) if method == "private_key_jwt" => {
            match document.get("jwks_uri").and_then(Value::as_str) {
                Some(uri) if uri.starts_with("https://") || uri.starts_with("http://") => {
                    Some(uri.to_owned())
                }
                _ => return Err(DocumentError::NoJwksUri),
            }
        }
        Some(other) => {
            let method = other
                .as_str()
                .map_or_else(|| other.to_string(), str::to_owned);
            return Err(DocumentError::UnsupportedAuthMethod(crate::jws::truncate(
                &method,
            )));
        }
    };
    let redirect_uris: Vec<String> = match document.get("redirect_uris") {
        Some(Value::Array(uris)) if !uris.is_empty() => uris
            .iter()
            .map(|uri| {
                uri.as_str()
                    .map(str::to_owned)
                    .ok_or(DocumentError::NoRedirectUris)
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(DocumentError::NoRedirectUris),
    };
    if let Some(bad) = redirect_uris.iter().find(|uri| {
        !(uri.starts_with("https://") || uri.starts_with("http://")) || uri.contains('#')
    }) {
        return Err(DocumentError::BadRedirectUri(crate::jws::truncate(bad)));
    }
    let host = host_of(url);
    let name = match document.get("client_name").and_then(Value::as_str) {
        Some(name) if !name.trim().is_empty() => {
            // No control or bidirectional-override characters: the page shows it.
            let name: String = name
                .chars()
                .filter(|c| {
                    !c.is_control()
                        && !matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
                })
                .take(MAX_NAME_CHARS)
                .collect();
            format!("{name} ({host})")
        }
        _ => host.to_owned(),
    };
    let integration = Integration {
        key: url.to_owned(),
        name,
        active: true,
        allow_application_tokens: false,
        require_jti: false,
        scopes: template.scopes.clone(),
        default_scopes: template.default_scopes.clone(),
        redirect_uris,
        resources: template.resources.clone(),
        client_secret_hash: None,
        keys: Vec::new(),
    };
    Ok(DocumentClient {
        integration,
        jwks_uri,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const URL: &str = "https://app.example.com/oauth/client-metadata.json";

    fn template() -> Integration {
        Integration {
            key: "template".into(),
            name: "MCP clients".into(),
            active: true,
            allow_application_tokens: true,
            require_jti: true,
            scopes: vec!["mcp:tools".into()],
            default_scopes: vec!["mcp:tools".into()],
            redirect_uris: vec!["https://template.example/cb".into()],
            resources: vec!["https://mcp.example.com/mcp".into()],
            client_secret_hash: Some("$argon2id$...".into()),
            keys: Vec::new(),
        }
    }

    fn document() -> serde_json::Value {
        json!({
            "client_id": URL,
            "client_name": "Example MCP Client",
            "client_uri": "https://app.example.com",
            "redirect_uris": ["http://127.0.0.1:3000/callback", "https://app.example.com/cb"],
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })
    }

    fn client(document: &serde_json::Value) -> Result<Integration, DocumentError> {
        client_from_document(URL, &serde_json::to_vec(document).unwrap(), &template())
            .map(|c| c.integration)
    }

    #[test]
    fn a_document_makes_a_public_client_under_the_template() {
        let client = client(&document()).unwrap();
        assert_eq!(client.key, URL);
        assert_eq!(client.name, "Example MCP Client (app.example.com)");
        assert_eq!(
            client.redirect_uris,
            [
                "http://127.0.0.1:3000/callback",
                "https://app.example.com/cb"
            ]
        );
        assert_eq!(client.scopes, ["mcp:tools"]);
        assert_eq!(client.default_scopes, ["mcp:tools"]);
        assert_eq!(client.resources, ["https://mcp.example.com/mcp"]);
        // Public, whatever the template is: no secret, no keys, no application tokens.
        assert!(client.client_secret_hash.is_none() && client.keys.is_empty());
        assert!(!client.allow_application_tokens);
    }

    #[test]
    fn every_document_rule_refuses() {
        let with = |change: fn(&mut serde_json::Value)| {
            let mut doc = document();
            change(&mut doc);
            client(&doc).err()
        };
        assert_eq!(
            client_from_document(URL, b"[1]", &template()).err(),
            Some(DocumentError::NotJsonObject)
        );
        assert_eq!(
            client_from_document(URL, b"not json", &template()).err(),
            Some(DocumentError::NotJsonObject)
        );
        assert_eq!(
            with(|d| d["client_id"] = json!("https://app.example.com/other.json")),
            Some(DocumentError::ClientIdMismatch)
        );
        assert_eq!(
            with(|d| d["client_id"] = json!(format!("{URL}/"))),
            Some(DocumentError::ClientIdMismatch)
        );
        assert_eq!(
            with(|d| {
                d.as_object_mut().unwrap().remove("client_id");
            }),
            Some(DocumentError::ClientIdMismatch)
        );
        assert_eq!(
            with(|d| d["redirect_uris"] = json!([])),
            Some(DocumentError::NoRedirectUris)
        );
        assert_eq!(
            with(|d| d["redirect_uris"] = json!("https://app.example.com/cb")),
            Some(DocumentError::NoRedirectUris)
        );
        assert_eq!(
            with(|d| d["redirect_uris"] = json!(["https://app.example.com/cb#x"])),
            Some(DocumentError::BadRedirectUri(
                "https://app.example.com/cb#x".into()
            ))
        );
        assert_eq!(
            with(|d| d["redirect_uris"] = json!(["app://cb"])),
            Some(DocumentError::BadRedirectUri("app://cb".into()))
        );
        assert_eq!(
            with(|d| d["client_secret"] = json!("s3cret")),
            Some(DocumentError::SecretInDocument)
        );
        assert_eq!(
            with(|d| d["token_endpoint_auth_method"] = json!("client_secret_basic")),
            Some(DocumentError::UnsupportedAuthMethod(
                "client_secret_basic".into()
            ))
        );
    }

    #[test]
    fn private_key_jwt_names_the_jwks_uri() {
        let mut doc = document();
        doc["token_endpoint_auth_method"] = json!("private_key_jwt");
        assert_eq!(client(&doc).err(), Some(DocumentError::NoJwksUri));
        doc["jwks"] = json!({ "keys": [] });
        assert_eq!(
            client(&doc).err(),
            Some(DocumentError::NoJwksUri),
            "inline jwks"
        );
        doc["jwks_uri"] = json!("https://app.example.com/jwks.json");
        let with_keys =
            client_from_document(URL, &serde_json::to_vec(&doc).unwrap(), &template()).unwrap();
        assert_eq!(
            with_keys.jwks_uri.as_deref(),
            Some("https://app.example.com/jwks.json")
        );
        assert!(
            with_keys.integration.keys.is_empty(),
            "the adapter fetches them"
        );
        let public =
            client_from_document(URL, &serde_json::to_vec(&document()).unwrap(), &template());
        assert_eq!(public.map(|c| c.jwks_uri).ok(), Some(None));
    }

    #[test]
    fn the_name_shown_is_the_documents_beside_its_host() {
        let mut doc = document();
        doc.as_object_mut().unwrap().remove("client_name");
        assert_eq!(client(&doc).unwrap().name, "app.example.com");
        doc["client_name"] = json!("Evil\u{202e}\u{7} Corp");
        assert_eq!(client(&doc).unwrap().name, "Evil Corp (app.example.com)");
        assert_eq!(host_of("https://h.example:8443/a?b"), "h.example:8443");
        assert!(is_document_client_id(URL));
        assert!(!is_document_client_id("3f9c1e2a-uuid"));
    }
}
