//! The client's calls of the authorization code flow after the browser part: the
//! code exchange (RFC 6749 section 4.1.3, with PKCE's `code_verifier`), refresh
//! (section 6), revocation (RFC 7009) and introspection (RFC 7662), each request
//! authenticating the client by one method of RFC 6749 section 2.3 or RFC 7523
//! section 2.2 ([`ClientAuthentication`]).

use std::sync::Arc;
use std::time::Duration;

use jwtgrant_core::access_token::Audience;
use jwtgrant_proto::{
    AuthorizationServerMetadata, ID_JAG_TOKEN_TYPE, ID_TOKEN_TYPE, JWT_BEARER_GRANT_TYPE,
    JwtGrantResponse, TOKEN_EXCHANGE_GRANT_TYPE, TokenExchangeResponse,
};
use reqwest::header::{ACCEPT, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::assertion::{AssertionError, ClientAssertionBuilder};
use crate::authorization::{AuthorizationError, AuthorizationRequest, PendingAuthorization};
use crate::discovery::{self, DiscoveryError};
use crate::keys::PrivateKey;
use crate::retry;
use crate::token_source::{OAuthError, bearer_response};

/// How long one request may take unless [`TokenClientBuilder::timeout`] says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How the client proves who it is on every request (RFC 6749 section 2.3, RFC 7523
/// section 2.2), each named as servers list it in
/// `token_endpoint_auth_methods_supported`.
#[derive(Clone)]
#[non_exhaustive]
pub enum ClientAuthentication {
    /// `client_secret_basic`: the id and secret in HTTP Basic, each form-urlencoded
    /// first (RFC 6749 section 2.3.1).
    ClientSecretBasic {
        /// The client id (jwtgrant: the integration key).
        client_id: String,
        /// The client secret.
        client_secret: Zeroizing<String>,
    },
    /// `client_secret_post`: the id and secret as form fields.
    ClientSecretPost {
        /// The client id.
        client_id: String,
        /// The client secret.
        client_secret: Zeroizing<String>,
    },
    /// `private_key_jwt`: a client assertion newly signed with `key` for every
    /// request, so no two requests share a `jti`.
    PrivateKeyJwt {
        /// The client assertion: the client id, and optionally its lifetime, `kid`,
        /// algorithm or audience (by default the server's issuer).
        assertion: ClientAssertionBuilder,
        /// The private half of a key registered for the client.
        key: PrivateKey,
    },
    /// `none`: a public client named by its `client_id` alone; PKCE binds its codes.
    None {
        /// The client id.
        client_id: String,
    },
}

impl ClientAuthentication {
    /// `client_secret_basic` for `client_id`.
    pub fn client_secret_basic(client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        ClientAuthentication::ClientSecretBasic {
            client_id: client_id.into(),
            client_secret: Zeroizing::new(secret.into()),
        }
    }

    /// `client_secret_post` for `client_id`.
    pub fn client_secret_post(client_id: impl Into<String>, secret: impl Into<String>) -> Self {
        ClientAuthentication::ClientSecretPost {
            client_id: client_id.into(),
            client_secret: Zeroizing::new(secret.into()),
        }
    }

    /// `private_key_jwt` for `client_id`, signing with `key`; client assertions as
    /// [`ClientAssertionBuilder::new`] makes them (two minutes, a fresh `jti`).
    pub fn private_key_jwt(client_id: impl Into<String>, key: PrivateKey) -> Self {
        Self::private_key_jwt_with(ClientAssertionBuilder::new(client_id), key)
    }

    /// `private_key_jwt` with client assertions from `assertion` (e.g. another
    /// lifetime, algorithm or audience).
    pub fn private_key_jwt_with(assertion: ClientAssertionBuilder, key: PrivateKey) -> Self {
        ClientAuthentication::PrivateKeyJwt { assertion, key }
    }

    /// `none`: the public client `client_id`.
    pub fn none(client_id: impl Into<String>) -> Self {
        ClientAuthentication::None {
            client_id: client_id.into(),
        }
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        match self {
            ClientAuthentication::ClientSecretBasic { client_id, .. }
            | ClientAuthentication::ClientSecretPost { client_id, .. }
            | ClientAuthentication::None { client_id } => client_id,
            ClientAuthentication::PrivateKeyJwt { assertion, .. } => assertion.client_id(),
        }
    }

    /// The method's name in RFC 8414 metadata (`client_secret_basic`,
    /// `client_secret_post`, `private_key_jwt`, `none`).
    pub fn method(&self) -> &'static str {
        match self {
            ClientAuthentication::ClientSecretBasic { .. } => "client_secret_basic",
            ClientAuthentication::ClientSecretPost { .. } => "client_secret_post",
            ClientAuthentication::PrivateKeyJwt { .. } => "private_key_jwt",
            ClientAuthentication::None { .. } => "none",
        }
    }

    /// What one request sends: Basic credentials or form fields, a client
    /// assertion signed now (its `aud` `default_audience` unless set).
    fn credentials(&self, default_audience: &str) -> Result<Credentials, AssertionError> {
        let encode = |text: &str| form_urlencoded::byte_serialize(text.as_bytes()).collect();
        Ok(match self {
            ClientAuthentication::ClientSecretBasic {
                client_id,
                client_secret,
            } => Credentials {
                basic: Some((encode(client_id), Zeroizing::new(encode(client_secret)))),
                fields: Vec::new(),
            },
            ClientAuthentication::ClientSecretPost {
                client_id,
                client_secret,
            } => Credentials {
                basic: None,
                fields: vec![
                    ("client_id", client_id.clone()),
                    ("client_secret", client_secret.to_string()),
                ],
            },
            ClientAuthentication::PrivateKeyJwt { assertion, key } => {
                let signed = assertion.form_fields_for(key, default_audience)?;
                Credentials {
                    basic: None,
                    fields: signed
                        .pairs()
                        .into_iter()
                        .map(|(name, value)| (name, value.to_owned()))
                        .collect(),
                }
            }
            ClientAuthentication::None { client_id } => Credentials {
                basic: None,
                fields: vec![("client_id", client_id.clone())],
            },
        })
    }
}

impl std::fmt::Debug for ClientAuthentication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut debug = f.debug_struct("ClientAuthentication");
        debug
            .field("method", &self.method())
            .field("client_id", &self.client_id());
        if let ClientAuthentication::PrivateKeyJwt { assertion, .. } = self {
            debug.field("assertion", assertion);
        }
        debug.finish_non_exhaustive()
    }
}

/// One request's client authentication.
struct Credentials {
    /// HTTP Basic user and password, each form-urlencoded.
    basic: Option<(String, Zeroizing<String>)>,
    /// Fields added to the form.
    fields: Vec<(&'static str, String)>,
}

/// Why a call of a [`TokenClient`] failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TokenClientError {
    /// The call needs an endpoint the client was not given and the metadata did
    /// not name (`token`, `authorization`, `introspection` or `revocation`).
    #[error("no {0} endpoint: set it on the builder, or discover it from the server's metadata")]
    MissingEndpoint(&'static str),
    /// An endpoint that is not an http(s) URL.
    #[error("'{0}' is not an http(s) endpoint URL")]
    InvalidEndpoint(String),
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client: {0}")]
    HttpClient(Arc<reqwest::Error>),
    /// The server's metadata could not be had.
    #[error(transparent)]
    Discovery(DiscoveryError),
    /// The client assertion could not be built or signed.
    #[error(transparent)]
    Assertion(AssertionError),
    /// The authorization request could not be made, or its callback carries no
    /// code (a wrong `state`, or the server's refusal).
    #[error(transparent)]
    Authorization(AuthorizationError),
    /// The request failed before an answer came (connection, TLS, timeout).
    #[error("request to {url} failed: {source}")]
    Transport {
        /// The endpoint.
        url: String,
        /// What failed.
        source: Arc<reqwest::Error>,
    },
    /// The server refused with an OAuth error (`invalid_grant`, `invalid_client`...).
    #[error("{0}")]
    OAuth(OAuthError),
    /// The server answered an error status without an OAuth error body.
    #[error("{url} answered HTTP {status} without an OAuth error body")]
    Status {
        /// The endpoint.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// A success status whose body is not what the endpoint answers.
    #[error("the answer of {url} is not a {expected}: {reason}")]
    InvalidResponse {
        /// The endpoint.
        url: String,
        /// What was expected (a bearer token response, an introspection response).
        expected: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl TokenClientError {
    /// The server's OAuth error, when it refused with one.
    pub fn oauth(&self) -> Option<&OAuthError> {
        match self {
            TokenClientError::OAuth(error) => Some(error),
            _ => None,
        }
    }
}

/// Which kind of token is revoked or introspected (RFC 7009 section 2.1): a hint
/// the server may use to find it sooner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenTypeHint {
    /// `access_token`.
    AccessToken,
    /// `refresh_token`.
    RefreshToken,
}

impl TokenTypeHint {
    /// The hint as sent in `token_type_hint`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenTypeHint::AccessToken => "access_token",
            TokenTypeHint::RefreshToken => "refresh_token",
        }
    }
}

/// What the introspection endpoint says of a token (RFC 7662 section 2.2). An
/// inactive token (expired, revoked, unknown, or not the caller's to see) carries
/// only `active: false`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Introspection {
    /// Whether the token is valid now.
    pub active: bool,
    /// Its scopes, space separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The client it was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// A human-readable name of its user (jwtgrant: the email address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Its type (jwtgrant: `Bearer` for access tokens, `refresh_token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Expiry, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Issued at, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// Not before, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Its subject: the user, or the client for an application token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// Its audiences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    /// Its issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// Its identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Members of the server's own.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Configures a [`TokenClient`].
#[derive(Debug, Clone)]
#[must_use]
pub struct TokenClientBuilder {
    auth: ClientAuthentication,
    endpoints: Endpoints,
    /// The server's issuer identifier: client assertions' default `aud`.
    issuer: Option<String>,
    http: Option<reqwest::Client>,
    timeout: Duration,
}

/// The server's endpoints a client calls.
#[derive(Debug, Clone, Default)]
struct Endpoints {
    token: Option<String>,
    authorization: Option<String>,
    introspection: Option<String>,
    revocation: Option<String>,
}

impl TokenClientBuilder {
    /// The token endpoint, e.g. `https://auth.example.com/oauth/token`.
    pub fn token_endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoints.token = Some(url.into());
        self
    }

    /// The authorization endpoint (for [`TokenClient::authorization_request`]).
    pub fn authorization_endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoints.authorization = Some(url.into());
        self
    }

    /// The introspection endpoint (RFC 7662).
    pub fn introspection_endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoints.introspection = Some(url.into());
        self
    }

    /// The revocation endpoint (RFC 7009).
    pub fn revocation_endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoints.revocation = Some(url.into());
        self
    }

    /// The server's issuer identifier, e.g. `https://auth.example.com`: the `aud`
    /// of `private_key_jwt` client assertions unless their builder sets one.
    /// Without it (and without discovery) they name the token endpoint, which
    /// jwtgrant accepts unless run with `--strict-client-assertion-audience`.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }

    /// Takes the issuer and every endpoint not set already from the server's RFC
    /// 8414 metadata.
    pub fn metadata(mut self, metadata: &AuthorizationServerMetadata) -> Self {
        let fill = |slot: &mut Option<String>, value: Option<&String>| {
            if slot.is_none() {
                *slot = value.cloned();
            }
        };
        fill(&mut self.issuer, Some(&metadata.issuer));
        fill(&mut self.endpoints.token, Some(&metadata.token_endpoint));
        fill(
            &mut self.endpoints.authorization,
            metadata.authorization_endpoint.as_ref(),
        );
        fill(
            &mut self.endpoints.introspection,
            metadata.introspection_endpoint.as_ref(),
        );
        fill(
            &mut self.endpoints.revocation,
            metadata.revocation_endpoint.as_ref(),
        );
        self
    }

    /// The HTTP client to use (proxies, TLS roots, user agent); by default one that
    /// follows no redirects.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// How long one request may take (default [`DEFAULT_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Reads the metadata of the server whose issuer is `issuer` (RFC 8414) for
    /// what was not set, and builds the client.
    pub async fn discover(mut self, issuer: &str) -> Result<TokenClient, TokenClientError> {
        let http = self.http_or_default()?;
        let metadata = discovery::discover(&http, issuer)
            .await
            .map_err(TokenClientError::Discovery)?;
        self.http = Some(http);
        self.metadata(&metadata).build()
    }

    fn http_or_default(&self) -> Result<reqwest::Client, TokenClientError> {
        match &self.http {
            Some(http) => Ok(http.clone()),
            None => reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| TokenClientError::HttpClient(Arc::new(e))),
        }
    }

    /// Builds the client; no request is made until a call.
    pub fn build(self) -> Result<TokenClient, TokenClientError> {
        let http = self.http_or_default()?;
        let endpoints = self.endpoints;
        let token = endpoints
            .token
            .clone()
            .ok_or(TokenClientError::MissingEndpoint("token"))?;
        for url in [
            Some(&token),
            endpoints.authorization.as_ref(),
            endpoints.introspection.as_ref(),
            endpoints.revocation.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            let valid = reqwest::Url::parse(url)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some());
            if !valid {
                return Err(TokenClientError::InvalidEndpoint(url.clone()));
            }
        }
        Ok(TokenClient {
            inner: Arc::new(Inner {
                auth: self.auth,
                token,
                authorization: endpoints.authorization,
                introspection: endpoints.introspection,
                revocation: endpoints.revocation,
                issuer: self.issuer,
                http,
                timeout: self.timeout,
            }),
        })
    }
}

/// The client side of the authorization code flow's token calls: exchange a code,
/// refresh, revoke, introspect, the client authenticated on each by its
/// [`ClientAuthentication`]. Clones share one HTTP client.
///
/// Calls are not retried: a code is single use and a refresh token is rotated, so
/// a repeat after a lost answer reads to the server as a replay and revokes what
/// the first request issued. The caller decides (for example: start the
/// authorization again).
///
/// ```no_run
/// # async fn run(key: jwtgrant_client::PrivateKey, callback_url: &str) -> Result<(), jwtgrant_client::TokenClientError> {
/// use jwtgrant_client::{ClientAuthentication, TokenClient, TokenTypeHint};
///
/// let client = TokenClient::discover(
///     "https://auth.example.com",
///     ClientAuthentication::private_key_jwt("my-integration-key", key),
/// )
/// .await?;
/// // Send the user to `pending.url()`; keep `pending` until they come back.
/// let pending = client
///     .authorization_request("https://app.example.com/callback")?
///     .scopes(["signature"])
///     .start()
///     .map_err(jwtgrant_client::TokenClientError::Authorization)?;
/// // The user is back at the callback URL: check its state, trade the code.
/// let tokens = client.finish_authorization(&pending, callback_url).await?;
/// let refresh_token = tokens.refresh_token.unwrap_or_default();
/// // Later: a new access token (and the next refresh token) for fewer scopes.
/// let refreshed = client.refresh(&refresh_token, Some("signature")).await?;
/// assert!(client.introspect(&refreshed.access_token, None).await?.active);
/// // Signing out: end the refresh token's chain.
/// if let Some(next) = &refreshed.refresh_token {
///     client.revoke(next, Some(TokenTypeHint::RefreshToken)).await?;
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TokenClient {
    inner: Arc<Inner>,
}

struct Inner {
    auth: ClientAuthentication,
    token: String,
    authorization: Option<String>,
    introspection: Option<String>,
    revocation: Option<String>,
    issuer: Option<String>,
    http: reqwest::Client,
    timeout: Duration,
}

impl std::fmt::Debug for TokenClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenClient")
            .field("auth", &self.inner.auth)
            .field("token_endpoint", &self.inner.token)
            .field("issuer", &self.inner.issuer)
            .finish_non_exhaustive()
    }
}

/// A request's form before client authentication is added.
type Form = Vec<(&'static str, String)>;

impl TokenClient {
    /// Starts configuring a client that authenticates by `auth`.
    pub fn builder(auth: ClientAuthentication) -> TokenClientBuilder {
        TokenClientBuilder {
            auth,
            endpoints: Endpoints::default(),
            issuer: None,
            http: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// A client of the server whose issuer is `issuer`, its endpoints read from
    /// the server's RFC 8414 metadata; client assertions name that issuer.
    pub async fn discover(
        issuer: &str,
        auth: ClientAuthentication,
    ) -> Result<TokenClient, TokenClientError> {
        Self::builder(auth).discover(issuer).await
    }

    /// The client id.
    pub fn client_id(&self) -> &str {
        self.inner.auth.client_id()
    }

    /// The token endpoint.
    pub fn token_endpoint(&self) -> &str {
        &self.inner.token
    }

    /// The issuer, when given or discovered.
    pub fn issuer(&self) -> Option<&str> {
        self.inner.issuer.as_deref()
    }

    /// An authorization request of this client at the authorization endpoint,
    /// whose user comes back to `redirect_uri`; add scopes, then
    /// [`start`](AuthorizationRequest::start) it.
    pub fn authorization_request(
        &self,
        redirect_uri: impl Into<String>,
    ) -> Result<AuthorizationRequest, TokenClientError> {
        let endpoint = self
            .inner
            .authorization
            .as_deref()
            .ok_or(TokenClientError::MissingEndpoint("authorization"))?;
        Ok(AuthorizationRequest::new(
            endpoint,
            self.client_id(),
            redirect_uri,
        ))
    }

    /// Trades an authorization code for tokens (RFC 6749 section 4.1.3): with the
    /// `redirect_uri` the authorization request carried (required then) and the
    /// PKCE `code_verifier` of its challenge.
    pub async fn exchange_code(
        &self,
        code: &str,
        redirect_uri: Option<&str>,
        code_verifier: Option<&str>,
    ) -> Result<JwtGrantResponse, TokenClientError> {
        self.exchange_code_for(code, redirect_uri, code_verifier, &[])
            .await
    }

    /// [`exchange_code`](Self::exchange_code) naming RFC 8707 `resources`, which
    /// may only narrow the authorization request's.
    pub async fn exchange_code_for(
        &self,
        code: &str,
        redirect_uri: Option<&str>,
        code_verifier: Option<&str>,
        resources: &[String],
    ) -> Result<JwtGrantResponse, TokenClientError> {
        let mut form: Form = vec![
            ("grant_type", "authorization_code".into()),
            ("code", code.into()),
        ];
        if let Some(uri) = redirect_uri {
            form.push(("redirect_uri", uri.into()));
        }
        if let Some(verifier) = code_verifier {
            form.push(("code_verifier", verifier.into()));
        }
        form.extend(resources.iter().map(|r| ("resource", r.clone())));
        self.token_request(form).await
    }

    /// Reads the callback of `pending` (the URL the user came back to, or its
    /// query): its `state` must be the request's, and an error there is returned as
    /// [`TokenClientError::Authorization`]; then trades the code with the request's
    /// redirect URI and code verifier.
    pub async fn finish_authorization(
        &self,
        pending: &PendingAuthorization,
        callback: &str,
    ) -> Result<JwtGrantResponse, TokenClientError> {
        let code = pending
            .code_from(callback)
            .map_err(TokenClientError::Authorization)?;
        self.exchange_code_for(
            &code,
            Some(pending.redirect_uri()),
            pending.code_verifier(),
            pending.resources(),
        )
        .await
    }

    /// Trades a refresh token for a new access token (RFC 6749 section 6), and
    /// with jwtgrant the next refresh token (the one sent is then used up).
    /// `scope` narrows the scopes; without it they stay as granted.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        scope: Option<&str>,
    ) -> Result<JwtGrantResponse, TokenClientError> {
        let mut form: Form = vec![
            ("grant_type", "refresh_token".into()),
            ("refresh_token", refresh_token.into()),
        ];
        if let Some(scope) = scope {
            form.push(("scope", scope.into()));
        }
        self.token_request(form).await
    }

    /// Trades an ID token this server issued to the client for an ID-JAG for the
    /// server `audience` (RFC 8693 token exchange, as the identity provider of
    /// cross-app access answers it), optionally for `resource` there and with
    /// `scope`, which the provider narrows to what its operator allows.
    pub async fn exchange_id_token_for_id_jag(
        &self,
        id_token: &str,
        audience: &str,
        resource: Option<&str>,
        scope: Option<&str>,
    ) -> Result<TokenExchangeResponse, TokenClientError> {
        let mut form: Form = vec![
            ("grant_type", TOKEN_EXCHANGE_GRANT_TYPE.into()),
            ("requested_token_type", ID_JAG_TOKEN_TYPE.into()),
            ("subject_token", id_token.into()),
            ("subject_token_type", ID_TOKEN_TYPE.into()),
            ("audience", audience.into()),
        ];
        if let Some(resource) = resource {
            form.push(("resource", resource.into()));
        }
        if let Some(scope) = scope {
            form.push(("scope", scope.into()));
        }
        let url = &self.inner.token;
        let body = self.post(url, form).await?;
        let invalid = |reason: String| TokenClientError::InvalidResponse {
            url: url.clone(),
            expected: "token exchange response (RFC 8693) with an ID-JAG",
            reason,
        };
        let answer: TokenExchangeResponse =
            serde_json::from_slice(&body).map_err(|e| invalid(e.to_string()))?;
        if answer.issued_token_type != ID_JAG_TOKEN_TYPE {
            return Err(invalid(format!(
                "issued_token_type is '{}'",
                answer.issued_token_type
            )));
        }
        Ok(answer)
    }

    /// Presents `assertion` (an ID-JAG, or any JWT the server trusts) with the JWT
    /// bearer grant (RFC 7523), this client authenticated, optionally narrowing
    /// `scope` and naming `resource`.
    pub async fn jwt_bearer(
        &self,
        assertion: &str,
        scope: Option<&str>,
        resource: Option<&str>,
    ) -> Result<JwtGrantResponse, TokenClientError> {
        let mut form: Form = vec![
            ("grant_type", JWT_BEARER_GRANT_TYPE.into()),
            ("assertion", assertion.into()),
        ];
        if let Some(scope) = scope {
            form.push(("scope", scope.into()));
        }
        if let Some(resource) = resource {
            form.push(("resource", resource.into()));
        }
        self.token_request(form).await
    }

    /// Revokes a token of this client (RFC 7009): an access token, or a refresh
    /// token (jwtgrant then ends its whole chain and the access tokens issued
    /// along it). An unknown or already invalid token is no error, as the RFC says.
    pub async fn revoke(
        &self,
        token: &str,
        hint: Option<TokenTypeHint>,
    ) -> Result<(), TokenClientError> {
        let url = self
            .inner
            .revocation
            .as_deref()
            .ok_or(TokenClientError::MissingEndpoint("revocation"))?;
        self.post(url, token_form(token, hint)).await.map(drop)
    }

    /// Asks the server about a token (RFC 7662). jwtgrant answers confidential
    /// clients only.
    pub async fn introspect(
        &self,
        token: &str,
        hint: Option<TokenTypeHint>,
    ) -> Result<Introspection, TokenClientError> {
        let url = self
            .inner
            .introspection
            .as_deref()
            .ok_or(TokenClientError::MissingEndpoint("introspection"))?;
        let body = self.post(url, token_form(token, hint)).await?;
        serde_json::from_slice(&body).map_err(|e| TokenClientError::InvalidResponse {
            url: url.to_owned(),
            expected: "RFC 7662 introspection response",
            reason: e.to_string(),
        })
    }

    async fn token_request(&self, form: Form) -> Result<JwtGrantResponse, TokenClientError> {
        let url = &self.inner.token;
        let body = self.post(url, form).await?;
        bearer_response(&body).map_err(|reason| TokenClientError::InvalidResponse {
            url: url.clone(),
            expected: "bearer token response",
            reason,
        })
    }

    /// The form with this request's client authentication.
    fn authenticated(&self, mut form: Form) -> Result<(Form, Credentials), TokenClientError> {
        // The issuer, which jwtgrant always accepts; the token endpoint if unknown.
        let audience = self.inner.issuer.as_deref().unwrap_or(&self.inner.token);
        let mut credentials = self
            .inner
            .auth
            .credentials(audience)
            .map_err(TokenClientError::Assertion)?;
        form.append(&mut credentials.fields);
        Ok((form, credentials))
    }

    /// POSTs `form`, authenticated, to `url`: the body of a success answer, the
    /// server's OAuth error otherwise.
    async fn post(&self, url: &str, form: Form) -> Result<Vec<u8>, TokenClientError> {
        let (form, credentials) = self.authenticated(form)?;
        let mut request = self
            .inner
            .http
            .post(url)
            .timeout(self.inner.timeout)
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .form(&form);
        if let Some((user, password)) = &credentials.basic {
            request = request.basic_auth(user, Some(password.as_str()));
        }
        let transport = |e: reqwest::Error| TokenClientError::Transport {
            url: url.to_owned(),
            source: Arc::new(e),
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status();
        let retry_after = retry::retry_after(response.headers());
        let body = response.bytes().await.map_err(transport)?;
        if status.is_success() {
            return Ok(body.to_vec());
        }
        Err(
            match OAuthError::from_answer(status.as_u16(), &body, retry_after, None) {
                Some(error) => TokenClientError::OAuth(error),
                None => TokenClientError::Status {
                    url: url.to_owned(),
                    status: status.as_u16(),
                    retry_after,
                },
            },
        )
    }
}

/// The form of a revocation or introspection request.
fn token_form(token: &str, hint: Option<TokenTypeHint>) -> Form {
    let mut form: Form = vec![("token", token.into())];
    if let Some(hint) = hint {
        form.push(("token_type_hint", hint.as_str().into()));
    }
    form
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwtgrant_core::jws::CompactJws;
    use jwtgrant_core::{JwsAlgorithm, SigningKey};

    fn key() -> PrivateKey {
        PrivateKey::new(SigningKey::generate(JwsAlgorithm::EdDsa, 0).unwrap()).with_kid("k1")
    }

    fn client(auth: ClientAuthentication) -> TokenClientBuilder {
        TokenClient::builder(auth).token_endpoint("https://auth.example.com/oauth/token")
    }

    type Pairs = Vec<(String, String)>;

    /// The form and Basic credentials a request of `client` sends with `form`.
    fn sent(client: &TokenClient, form: Form) -> (Pairs, Option<(String, String)>) {
        let (form, credentials) = client.authenticated(form).unwrap();
        (
            form.into_iter().map(|(n, v)| (n.to_owned(), v)).collect(),
            credentials.basic.map(|(u, p)| (u, p.to_string())),
        )
    }

    fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
        form.iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn assertion_claims(form: &[(String, String)]) -> Map<String, Value> {
        let jws = CompactJws::parse(field(form, "client_assertion").unwrap()).unwrap();
        jws.payload().clone()
    }

    #[test]
    fn secrets_by_basic_form_urlencoded_or_in_the_form() {
        let basic = client(ClientAuthentication::client_secret_basic("ik", "s3cr:t +%"))
            .build()
            .unwrap();
        let (form, credentials) = sent(&basic, token_form("t", None));
        assert_eq!(
            credentials,
            Some(("ik".into(), "s3cr%3At+%2B%25".into())),
            "RFC 6749 2.3.1: each encoded before base64"
        );
        assert_eq!(form, [("token".to_owned(), "t".to_owned())]);

        let post = client(ClientAuthentication::client_secret_post("ik", "s3cr:t"))
            .build()
            .unwrap();
        let (form, credentials) = sent(&post, token_form("t", Some(TokenTypeHint::RefreshToken)));
        assert_eq!(credentials, None);
        assert_eq!(field(&form, "client_id"), Some("ik"));
        assert_eq!(field(&form, "client_secret"), Some("s3cr:t"));
        assert_eq!(field(&form, "token_type_hint"), Some("refresh_token"));

        let public = client(ClientAuthentication::none("ik")).build().unwrap();
        let (form, credentials) = sent(&public, vec![]);
        assert_eq!((form.len(), credentials), (1, None));
        assert_eq!(field(&form, "client_id"), Some("ik"));
    }

    #[test]
    fn private_key_jwt_signs_a_new_assertion_for_the_issuer_on_every_request() {
        let auth = ClientAuthentication::private_key_jwt("ik", key());
        let discovered = client(auth.clone())
            .issuer("https://auth.example.com")
            .build()
            .unwrap();
        let (first, credentials) = sent(&discovered, vec![]);
        assert_eq!(credentials, None);
        assert_eq!(field(&first, "client_id"), Some("ik"));
        assert_eq!(
            field(&first, "client_assertion_type"),
            Some(jwtgrant_proto::CLIENT_ASSERTION_TYPE)
        );
        let claims = assertion_claims(&first);
        assert_eq!(claims["iss"], "ik");
        assert_eq!(claims["sub"], "ik");
        assert_eq!(claims["aud"], "https://auth.example.com");
        let (second, _) = sent(&discovered, vec![]);
        assert_ne!(assertion_claims(&second)["jti"], claims["jti"]);

        // No issuer known: the token endpoint; an audience set on the assertion wins.
        let endpoint_only = client(auth).build().unwrap();
        let (form, _) = sent(&endpoint_only, vec![]);
        assert_eq!(
            assertion_claims(&form)["aud"],
            "https://auth.example.com/oauth/token"
        );
        let explicit = client(ClientAuthentication::private_key_jwt_with(
            ClientAssertionBuilder::new("ik").audience("https://other.example"),
            key(),
        ))
        .issuer("https://auth.example.com")
        .build()
        .unwrap();
        let (form, _) = sent(&explicit, vec![]);
        assert_eq!(assertion_claims(&form)["aud"], "https://other.example");
    }

    #[test]
    fn a_key_that_cannot_sign_is_an_assertion_error() {
        let auth = ClientAuthentication::private_key_jwt_with(
            ClientAssertionBuilder::new("ik").algorithm(JwsAlgorithm::Rs256),
            key(),
        );
        let client = client(auth).build().unwrap();
        assert!(matches!(
            client.authenticated(vec![]),
            Err(TokenClientError::Assertion(
                AssertionError::AlgorithmMismatch { .. }
            ))
        ));
    }

    #[test]
    fn debug_shows_no_secret() {
        let auth = ClientAuthentication::client_secret_basic("ik", "hunter2-secret");
        assert_eq!(auth.method(), "client_secret_basic");
        let shown = format!("{:?}", client(auth).build().unwrap());
        assert!(
            shown.contains("client_secret_basic") && shown.contains("ik"),
            "{shown}"
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        let shown = format!("{:?}", ClientAuthentication::private_key_jwt("ik", key()));
        assert!(shown.contains("private_key_jwt"), "{shown}");
    }

    #[test]
    fn endpoints_from_the_builder_or_the_metadata() {
        let missing = TokenClient::builder(ClientAuthentication::none("ik"))
            .build()
            .unwrap_err();
        assert!(matches!(
            missing,
            TokenClientError::MissingEndpoint("token")
        ));
        let invalid = client(ClientAuthentication::none("ik"))
            .revocation_endpoint("auth.example.com/oauth/revoke")
            .build()
            .unwrap_err();
        assert!(
            matches!(&invalid, TokenClientError::InvalidEndpoint(url) if url == "auth.example.com/oauth/revoke")
        );

        let metadata: AuthorizationServerMetadata = serde_json::from_value(serde_json::json!({
            "issuer": "https://auth.example.com",
            "token_endpoint": "https://auth.example.com/oauth/token",
            "jwks_uri": "https://auth.example.com/oauth/jwks",
            "authorization_endpoint": "https://auth.example.com/oauth/auth",
            "revocation_endpoint": "https://auth.example.com/oauth/revoke",
            "grant_types_supported": ["authorization_code"],
        }))
        .unwrap();
        let client = TokenClient::builder(ClientAuthentication::none("ik"))
            .revocation_endpoint("https://elsewhere.example/revoke")
            .metadata(&metadata)
            .build()
            .unwrap();
        assert_eq!(client.issuer(), Some("https://auth.example.com"));
        assert_eq!(
            client.token_endpoint(),
            "https://auth.example.com/oauth/token"
        );
        assert_eq!(
            client.inner.revocation.as_deref(),
            Some("https://elsewhere.example/revoke"),
            "what was set stays"
        );
        assert!(client.inner.introspection.is_none());
        let request = client
            .authorization_request("https://app.example/cb")
            .unwrap();
        assert!(
            request.start().unwrap().url().starts_with(
                "https://auth.example.com/oauth/auth?response_type=code&client_id=ik&"
            )
        );
    }

    #[test]
    fn introspection_answers_of_either_aud_shape() {
        let active: Introspection = serde_json::from_value(serde_json::json!({
            "active": true, "scope": "signature", "client_id": "ik", "sub": "u",
            "aud": "https://api.example", "exp": 1_800_000_000, "username": "a@example.com",
            "token_type": "Bearer", "tenant": "t1",
        }))
        .unwrap();
        assert!(active.active);
        assert_eq!(
            active.aud.as_ref().map(Audience::as_slice),
            Some(&["https://api.example".to_owned()][..])
        );
        assert_eq!(active.extra["tenant"], "t1");
        let many: Introspection =
            serde_json::from_value(serde_json::json!({"active": true, "aud": ["a", "b"]})).unwrap();
        assert!(many.aud.unwrap().contains("b"));
        let inactive: Introspection =
            serde_json::from_value(serde_json::json!({"active": false})).unwrap();
        assert_eq!(
            (inactive.active, inactive.scope, inactive.sub),
            (false, None, None)
        );
        assert!(serde_json::from_value::<Introspection>(serde_json::json!({})).is_err());
    }
}
