//! RFC 8414 authorization server metadata: where a server's token endpoint and JWKS
//! are, found from its issuer URL.

use std::sync::Arc;

use jwtgrant_proto::AuthorizationServerMetadata;
use reqwest::Url;

/// The well-known path of RFC 8414 section 3.
pub const WELL_KNOWN_PATH: &str = "/.well-known/oauth-authorization-server";

/// Why the metadata could not be had.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The issuer is not an http(s) URL without query or fragment.
    #[error("'{0}' is not an http(s) issuer URL")]
    InvalidUrl(String),
    /// The request failed before an answer came (connection, TLS, timeout).
    #[error("fetching {url} failed: {source}")]
    Transport {
        /// The URL fetched.
        url: String,
        /// What failed.
        source: Arc<reqwest::Error>,
    },
    /// The server answered with an error status.
    #[error("fetching {url} answered HTTP {status}")]
    Status {
        /// The URL fetched.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The answer is not a metadata document.
    #[error("{url} is not an RFC 8414 metadata document: {reason}")]
    InvalidDocument {
        /// The URL fetched.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The document names another issuer (RFC 8414 section 3.3: it must not be used).
    #[error("the metadata names issuer '{found}', not '{expected}'")]
    IssuerMismatch {
        /// The issuer asked for.
        expected: String,
        /// The issuer in the document.
        found: String,
    },
}

impl DiscoveryError {
    /// Whether trying again later may succeed: connection errors, 5xx and 429.
    pub fn is_transient(&self) -> bool {
        match self {
            DiscoveryError::Transport { .. } => true,
            DiscoveryError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// The metadata URL of `issuer`: the well-known path goes between the host and the
/// issuer's own path (RFC 8414 section 3.1).
pub fn metadata_url(issuer: &str) -> Result<Url, DiscoveryError> {
    let invalid = || DiscoveryError::InvalidUrl(issuer.to_owned());
    let url = Url::parse(issuer).map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(invalid());
    }
    let path = url.path().trim_end_matches('/').to_owned();
    let mut metadata = url;
    metadata.set_path(&format!("{WELL_KNOWN_PATH}{path}"));
    Ok(metadata)
}

/// The bare `host[:port]` of a URL: what DocuSign's SDKs (and jwtgrant's preset) put
/// in an assertion's `aud`; the same function the jwtgrant server uses to accept it.
pub use jwtgrant_proto::bare_host;

/// Fetches and checks the metadata of `issuer` (a URL such as
/// `https://auth.example.com`). The document's `issuer` must equal the one asked
/// for, trailing slash aside.
pub async fn discover(
    http: &reqwest::Client,
    issuer: &str,
) -> Result<AuthorizationServerMetadata, DiscoveryError> {
    let url = metadata_url(issuer)?;
    let metadata: AuthorizationServerMetadata = get_json(http, url).await?;
    let expected = issuer.trim_end_matches('/');
    if metadata.issuer.trim_end_matches('/') != expected {
        return Err(DiscoveryError::IssuerMismatch {
            expected: expected.to_owned(),
            found: metadata.issuer,
        });
    }
    Ok(metadata)
}

/// GETs `url` and reads its JSON body as `T`.
pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: Url,
) -> Result<T, DiscoveryError> {
    let shown = url.to_string();
    let response = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| DiscoveryError::Transport {
            url: shown.clone(),
            source: Arc::new(e),
        })?;
    let status = response.status();
    if !status.is_success() {
        return Err(DiscoveryError::Status {
            url: shown,
            status: status.as_u16(),
        });
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| DiscoveryError::Transport {
            url: shown.clone(),
            source: Arc::new(e),
        })?;
    serde_json::from_slice(&bytes).map_err(|e| DiscoveryError::InvalidDocument {
        url: shown,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_goes_before_the_issuer_path() {
        let url = |issuer: &str| metadata_url(issuer).map(|u| u.to_string()).ok();
        assert_eq!(
            url("https://auth.example.com").as_deref(),
            Some("https://auth.example.com/.well-known/oauth-authorization-server")
        );
        assert_eq!(
            url("https://auth.example.com/").as_deref(),
            Some("https://auth.example.com/.well-known/oauth-authorization-server")
        );
        assert_eq!(
            url("http://127.0.0.1:8080/tenant1").as_deref(),
            Some("http://127.0.0.1:8080/.well-known/oauth-authorization-server/tenant1")
        );
        assert_eq!(url("ftp://x"), None);
        assert_eq!(url("https://x/?a=b"), None);
    }
}
