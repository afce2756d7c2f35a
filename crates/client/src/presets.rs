//! Presets for the common JWT bearer servers: DocuSign's account server,
//! Google-style service-account key files, and jwtgrant itself. Each fills in the
//! audience, endpoints and scopes that server expects.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::assertion::AssertionBuilder;
use crate::discovery::bare_host;
use crate::keys::{KeyLoadError, PrivateKey};
use crate::token_client::{ClientAuthentication, TokenClient, TokenClientError};
use crate::token_source::TokenSourceBuilder;
use crate::verifier::VerifierBuilder;

/// Why a preset could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PresetError {
    /// A URL that is not http(s) with a host.
    #[error("'{0}' is not an http(s) URL with a host")]
    InvalidUrl(String),
    /// The key file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The key file is not a service-account key.
    #[error("not a service-account key file: {0}")]
    Json(String),
    /// The private key in the file was refused.
    #[error(transparent)]
    Key(#[from] KeyLoadError),
}

/// DocuSign's account server: assertions name its bare OAuth host in `aud`, ask for
/// `signature impersonation`, and are traded at `https://{host}/oauth/token`.
///
/// ```
/// # use jwtgrant_client::DocuSign;
/// let docusign = DocuSign::demo().redirect_uri("https://localhost:3000/callback");
/// assert_eq!(docusign.oauth_host(), "account-d.docusign.com");
/// assert_eq!(docusign.token_endpoint(), "https://account-d.docusign.com/oauth/token");
/// assert_eq!(
///     docusign.consent_url("my-integration-key"),
///     "https://account-d.docusign.com/oauth/auth?response_type=code&scope=signature+impersonation&client_id=my-integration-key&redirect_uri=https%3A%2F%2Flocalhost%3A3000%2Fcallback"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocuSign {
    /// `https://{host}`, or another base URL for a server that emulates DocuSign.
    base_url: String,
    /// The bare host, the assertion's `aud`.
    host: String,
    redirect_uri: Option<String>,
    scopes: Vec<String>,
}

impl DocuSign {
    /// The developer (demo) account server.
    pub const DEMO_HOST: &str = "account-d.docusign.com";
    /// The production account server.
    pub const PRODUCTION_HOST: &str = "account.docusign.com";
    /// The scopes a JWT grant for eSignature asks for.
    pub const DEFAULT_SCOPES: [&str; 2] = jwtgrant_proto::DEFAULT_SCOPES;

    /// The developer account server, `account-d.docusign.com`.
    pub fn demo() -> Self {
        Self::new(Self::DEMO_HOST)
    }

    /// The production account server, `account.docusign.com`.
    pub fn production() -> Self {
        Self::new(Self::PRODUCTION_HOST)
    }

    /// The account server on `host` (no scheme), over HTTPS.
    pub fn new(host: impl Into<String>) -> Self {
        let host = host.into();
        DocuSign {
            base_url: format!("https://{host}"),
            host,
            redirect_uri: None,
            scopes: Self::DEFAULT_SCOPES.map(str::to_owned).to_vec(),
        }
    }

    /// A server at `base_url` that speaks DocuSign's flow, e.g. jwtgrant on
    /// `http://127.0.0.1:8080`: endpoints under that URL, `aud` its bare host.
    pub fn at(base_url: &str) -> Result<Self, PresetError> {
        let host = bare_host(base_url)
            .filter(|_| base_url.starts_with("https://") || base_url.starts_with("http://"))
            .ok_or_else(|| PresetError::InvalidUrl(base_url.to_owned()))?;
        Ok(DocuSign {
            base_url: base_url.trim_end_matches('/').to_owned(),
            ..Self::new(host)
        })
    }

    /// The redirect URI registered with the integration, for the consent URL.
    pub fn redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(uri.into());
        self
    }

    /// Replaces the scopes (default `signature impersonation`).
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The bare OAuth host, which DocuSign expects as the assertion's `aud`.
    pub fn oauth_host(&self) -> &str {
        &self.host
    }

    /// `https://{host}/oauth/token`.
    pub fn token_endpoint(&self) -> String {
        format!("{}/oauth/token", self.base_url)
    }

    /// `https://{host}/oauth/userinfo`, which lists the user's accounts and base URIs.
    pub fn userinfo_endpoint(&self) -> String {
        format!("{}/oauth/userinfo", self.base_url)
    }

    /// Where a user grants the integration consent (once, before the first user
    /// token): `https://{host}/oauth/auth?response_type=code&scope=...&client_id=...&redirect_uri=...`.
    pub fn consent_url(&self, integration_key: &str) -> String {
        jwtgrant_proto::consent_url(
            &self.base_url,
            integration_key,
            &self.scopes,
            self.redirect_uri.as_deref(),
        )
    }

    /// The assertion DocuSign expects: `iss` the integration key, `sub` the user id,
    /// `aud` the OAuth host, `scope` the scopes.
    pub fn assertion(&self, integration_key: &str, user_id: &str) -> AssertionBuilder {
        AssertionBuilder::new(integration_key)
            .subject(user_id)
            .audience(self.host.clone())
            .scopes(self.scopes.clone())
    }

    /// A token source acting as `user_id`; a `consent_required` error carries this
    /// preset's consent URL.
    pub fn token_source(
        &self,
        integration_key: &str,
        user_id: &str,
        key: PrivateKey,
    ) -> TokenSourceBuilder {
        TokenSourceBuilder::from_assertion(self.assertion(integration_key, user_id), key)
            .token_endpoint(self.token_endpoint())
            .consent_url(self.consent_url(integration_key))
    }
}

/// Google's token endpoint, for key files that do not name one.
pub const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// A Google-style service-account key file (`"type": "service_account"`): the
/// assertion's `iss` is `client_email`, its `aud` the `token_uri`, its `kid` the
/// `private_key_id`.
#[derive(Clone, Deserialize)]
pub struct ServiceAccountKey {
    /// `service_account` in Google's files.
    #[serde(rename = "type", default)]
    pub account_type: Option<String>,
    /// The service account, the assertion's `iss`.
    pub client_email: String,
    /// The PEM private key.
    private_key: Zeroizing<String>,
    /// The key's id, sent as `kid`.
    #[serde(default)]
    pub private_key_id: Option<String>,
    /// The token endpoint, also the assertion's `aud`.
    #[serde(default = "google_token_uri")]
    pub token_uri: String,
    /// The numeric client id, when present.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The project, when present.
    #[serde(default)]
    pub project_id: Option<String>,
}

fn google_token_uri() -> String {
    GOOGLE_TOKEN_URI.to_owned()
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

impl ServiceAccountKey {
    /// Reads the key file's JSON text.
    pub fn from_json(text: &str) -> Result<Self, PresetError> {
        serde_json::from_str(text).map_err(|e| PresetError::Json(e.to_string()))
    }

    /// Reads a key file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, PresetError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map(Zeroizing::new)
            .map_err(|source| PresetError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Self::from_json(&text)
    }

    /// The private key, with `private_key_id` as its `kid`.
    pub fn private_key(&self) -> Result<PrivateKey, KeyLoadError> {
        let key = PrivateKey::from_pem(&self.private_key)?;
        Ok(match &self.private_key_id {
            Some(kid) => key.with_kid(kid.clone()),
            None => key,
        })
    }

    /// The assertion: `iss` the service account, `aud` the token endpoint, `scope`
    /// the scopes. Add [`subject`](AssertionBuilder::subject) for domain-wide delegation.
    pub fn assertion<I, S>(&self, scopes: I) -> AssertionBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        AssertionBuilder::new(self.client_email.clone())
            .audience(self.token_uri.clone())
            .scopes(scopes)
    }

    /// A token source for `scopes` at the file's `token_uri`.
    pub fn token_source<I, S>(&self, scopes: I) -> Result<TokenSourceBuilder, PresetError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Ok(
            TokenSourceBuilder::from_assertion(self.assertion(scopes), self.private_key()?)
                .token_endpoint(self.token_uri.clone()),
        )
    }
}

/// A jwtgrant server: endpoints from its RFC 8414 metadata, `aud` the bare host of
/// its issuer URL (as DocuSign's SDKs send it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwtgrant {
    issuer: String,
    host: String,
}

impl Jwtgrant {
    /// The server whose issuer (public URL) is `issuer`, e.g. `https://auth.example.com`.
    pub fn new(issuer: &str) -> Result<Self, PresetError> {
        let host = bare_host(issuer)
            .filter(|_| issuer.starts_with("https://") || issuer.starts_with("http://"))
            .ok_or_else(|| PresetError::InvalidUrl(issuer.to_owned()))?;
        Ok(Jwtgrant {
            issuer: issuer.trim_end_matches('/').to_owned(),
            host,
        })
    }

    /// The issuer URL.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The assertion audience: the bare `host[:port]` of the issuer.
    pub fn audience(&self) -> &str {
        &self.host
    }

    /// The assertion for `integration_key` (add a subject for a user token).
    pub fn assertion(&self, integration_key: &str) -> AssertionBuilder {
        AssertionBuilder::new(integration_key).audience(self.host.clone())
    }

    /// A token source for `integration_key`; set a subject for a user token (with
    /// scopes including `impersonation`), none for an application token.
    pub fn token_source(&self, integration_key: &str, key: PrivateKey) -> TokenSourceBuilder {
        TokenSourceBuilder::from_assertion(self.assertion(integration_key), key)
            .server(self.issuer.clone())
    }

    /// A token source for the client credentials grant: `integration_key`'s own
    /// token, the client authenticated by client assertions signed with `key`
    /// (`aud` the issuer). The integration must allow application tokens.
    pub fn client_credentials(&self, integration_key: &str, key: PrivateKey) -> TokenSourceBuilder {
        TokenSourceBuilder::client_credentials(integration_key, key).server(self.issuer.clone())
    }

    /// A client of this server's authorization code flow (code exchange, refresh,
    /// revocation, introspection), its endpoints from the metadata, authenticating
    /// by `auth` (`private_key_jwt` client assertions name the issuer).
    pub async fn token_client(
        &self,
        auth: ClientAuthentication,
    ) -> Result<TokenClient, TokenClientError> {
        TokenClient::discover(&self.issuer, auth).await
    }

    /// A verifier of this server's access tokens (JWKS from its metadata; `aud` the
    /// issuer, jwtgrant's default access-token audience).
    pub fn verifier(&self) -> VerifierBuilder {
        VerifierBuilder::discover(self.issuer.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docusign_hosts_and_urls() {
        let prod = DocuSign::production();
        assert_eq!(prod.oauth_host(), "account.docusign.com");
        assert_eq!(
            prod.userinfo_endpoint(),
            "https://account.docusign.com/oauth/userinfo"
        );
        assert_eq!(
            prod.consent_url("ik"),
            "https://account.docusign.com/oauth/auth?response_type=code&scope=signature+impersonation&client_id=ik"
        );
        let local = DocuSign::at("http://127.0.0.1:8080/").unwrap();
        assert_eq!(local.oauth_host(), "127.0.0.1:8080");
        assert_eq!(local.token_endpoint(), "http://127.0.0.1:8080/oauth/token");
        assert!(DocuSign::at("127.0.0.1:8080").is_err());
    }

    #[test]
    fn docusign_assertion_claims() {
        let claims = DocuSign::demo()
            .assertion("ik", "user")
            .claims(1_700_000_000)
            .unwrap();
        assert_eq!(claims["aud"], "account-d.docusign.com");
        assert_eq!(claims["sub"], "user");
        assert_eq!(claims["scope"], "signature impersonation");
    }

    #[test]
    fn service_account_file() {
        let key =
            jwtgrant_core::SigningKey::generate(jwtgrant_core::JwsAlgorithm::Rs256, 2048).unwrap();
        let file = serde_json::json!({
            "type": "service_account",
            "project_id": "p",
            "private_key_id": "abc123",
            "private_key": *key.to_pkcs8_pem().unwrap(),
            "client_email": "svc@p.iam.gserviceaccount.com",
            "client_id": "1",
            "token_uri": "https://oauth2.googleapis.com/token",
        })
        .to_string();
        let account = ServiceAccountKey::from_json(&file).unwrap();
        assert!(!format!("{account:?}").contains("PRIVATE"));
        let private = account.private_key().unwrap();
        assert_eq!(private.kid(), Some("abc123"));
        let claims = account
            .assertion(["https://www.googleapis.com/auth/cloud-platform"])
            .claims(0)
            .unwrap();
        assert_eq!(claims["iss"], "svc@p.iam.gserviceaccount.com");
        assert_eq!(claims["aud"], "https://oauth2.googleapis.com/token");
        assert_eq!(
            claims["scope"],
            "https://www.googleapis.com/auth/cloud-platform"
        );
        assert!(ServiceAccountKey::from_json("{}").is_err());
    }

    #[test]
    fn jwtgrant_audience_is_the_bare_host() {
        let server = Jwtgrant::new("http://127.0.0.1:8080/").unwrap();
        assert_eq!(server.audience(), "127.0.0.1:8080");
        assert_eq!(server.issuer(), "http://127.0.0.1:8080");
        assert!(Jwtgrant::new("nope").is_err());
    }
}
