//! A source of fresh access tokens: signs an assertion, trades it at the token
//! endpoint (the JWT bearer grant, RFC 7523 section 2.1, or the client credentials
//! grant with a client assertion, RFC 6749 section 4.4 and RFC 7523 section 2.2),
//! caches the answer and trades again only near its expiry. Many callers at once
//! cause one request, and while a still-valid token is refreshed callers keep
//! getting it without waiting; transient failures are retried with backoff; OAuth
//! errors come back typed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use jwtgrant_proto::{
    CLIENT_CREDENTIALS_GRANT_TYPE, ErrorCode, JWT_BEARER_GRANT_TYPE, JwtGrantResponse,
    OAuthErrorResponse,
};
use reqwest::header::{ACCEPT, HeaderValue};
use tokio::sync::{Mutex, OnceCell};
use tokio::time::Instant;

use crate::assertion::{
    AssertionBuilder, AssertionError, ClientAssertionBuilder, ClientAssertionFields,
};
use crate::discovery::{self, DiscoveryError};
use crate::keys::PrivateKey;
use crate::retry::{self, Classify, RetryPolicy, Verdict};

/// The least margin before expiry at which a cached token is replaced: 5 minutes.
pub const MIN_REFRESH_MARGIN: Duration = Duration::from_secs(300);

/// An OAuth error answered by the token endpoint (RFC 6749 section 5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OAuthError {
    /// The HTTP status (400 or 401 for most errors, 429 or 503 when overloaded).
    pub status: u16,
    /// The error code, e.g. `invalid_grant` or `consent_required`.
    pub error: String,
    /// The server's explanation. jwtgrant and DocuSign start it with a short code
    /// such as `user_not_found` or `issuer_not_found`.
    pub error_description: Option<String>,
    /// For `consent_required`: where to send the user to grant consent. Read from the
    /// description (jwtgrant names it after [`jwtgrant_proto::CONSENT_URL_MARKER`]),
    /// else the one the token source was configured with (the DocuSign preset builds it).
    pub consent_url: Option<String>,
    /// The server's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
}

impl OAuthError {
    fn new(
        status: u16,
        body: OAuthErrorResponse,
        retry_after: Option<Duration>,
        configured_consent_url: Option<&str>,
    ) -> Self {
        let consent_url = (body.error == ErrorCode::ConsentRequired.as_str())
            .then(|| {
                body.error_description
                    .as_deref()
                    .and_then(jwtgrant_proto::consent_url_in)
                    .map(str::to_owned)
                    .or(configured_consent_url.map(str::to_owned))
            })
            .flatten();
        OAuthError {
            status,
            error: body.error,
            error_description: body.error_description,
            consent_url,
            retry_after,
        }
    }

    /// The OAuth error of an endpoint's error answer (`status`, `body`), when the
    /// body is one (RFC 6749 section 5.2, also used by RFC 7009 and RFC 7662).
    pub(crate) fn from_answer(
        status: u16,
        body: &[u8],
        retry_after: Option<Duration>,
        configured_consent_url: Option<&str>,
    ) -> Option<Self> {
        let body: OAuthErrorResponse = serde_json::from_slice(body).ok()?;
        Some(Self::new(status, body, retry_after, configured_consent_url))
    }

    /// Whether the error code is `code`.
    pub fn is(&self, code: ErrorCode) -> bool {
        self.error == code.as_str()
    }

    /// The short code that starts the description, DocuSign style
    /// (`user_not_found`, `issuer_not_found`, `no_valid_keys_or_signatures`, ...).
    pub fn short_code(&self) -> Option<&str> {
        let description = self.error_description.as_deref()?;
        let (code, _) = description.split_once(':')?;
        (!code.is_empty() && code.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
            .then_some(code)
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.error_description.as_deref() {
            // jwtgrant repeats the code at the start of some descriptions.
            Some(text) if text.starts_with(&format!("{}:", self.error)) => f.write_str(text),
            Some(text) => write!(f, "{}: {text}", self.error),
            None => f.write_str(&self.error),
        }
    }
}

/// Why no access token could be had.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TokenSourceError {
    /// Neither a token endpoint nor a server to discover it from was given.
    #[error(
        "no token endpoint: set one with token_endpoint(), or a server URL to discover it with server()"
    )]
    MissingEndpoint,
    /// The token endpoint is not an http(s) URL.
    #[error("'{0}' is not an http(s) token endpoint URL")]
    InvalidEndpoint(String),
    /// A subject was set for the client credentials grant, whose token is the
    /// client's own.
    #[error(
        "the client credentials grant gets the client's own token: it takes no subject (use the JWT bearer grant to act as a user)"
    )]
    SubjectWithClientCredentials,
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client: {0}")]
    HttpClient(Arc<reqwest::Error>),
    /// The server's metadata could not be had.
    #[error(transparent)]
    Discovery(DiscoveryError),
    /// The assertion could not be built or signed.
    #[error(transparent)]
    Assertion(AssertionError),
    /// The request failed before an answer came (connection, TLS, timeout).
    #[error("token request to {url} failed: {source}")]
    Transport {
        /// The token endpoint.
        url: String,
        /// What failed.
        source: Arc<reqwest::Error>,
    },
    /// The server refused with an OAuth error.
    #[error("{0}")]
    OAuth(OAuthError),
    /// The server answered an error status without an OAuth error body.
    #[error("the token endpoint answered HTTP {status} without an OAuth error body")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// A success status whose body is not a bearer token response.
    #[error("the token endpoint's answer is not a bearer token response: {0}")]
    InvalidResponse(String),
    /// Transient failures lasted past the deadline; `last` is the final one.
    #[error("gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        last: Box<TokenSourceError>,
    },
}

impl TokenSourceError {
    /// The OAuth error, also when it ended a series of retries.
    pub fn oauth(&self) -> Option<&OAuthError> {
        match self {
            TokenSourceError::OAuth(error) => Some(error),
            TokenSourceError::RetriesExhausted { last, .. } => last.oauth(),
            _ => None,
        }
    }

    /// For `consent_required`, the URL to send the user to.
    pub fn consent_url(&self) -> Option<&str> {
        self.oauth()?.consent_url.as_deref()
    }
}

impl Classify for TokenSourceError {
    fn verdict(&self) -> Verdict {
        let transient_status = |status: u16| status >= 500 || status == 429 || status == 408;
        match self {
            TokenSourceError::Transport { source, .. } if !source.is_builder() => {
                Verdict::Transient { retry_after: None }
            }
            TokenSourceError::OAuth(error) if transient_status(error.status) => {
                Verdict::Transient {
                    retry_after: error.retry_after,
                }
            }
            TokenSourceError::Status {
                status,
                retry_after,
            } if transient_status(*status) => Verdict::Transient {
                retry_after: *retry_after,
            },
            TokenSourceError::Discovery(error) if error.is_transient() => {
                Verdict::Transient { retry_after: None }
            }
            _ => Verdict::Permanent,
        }
    }
}

/// An access token with what the server said about it.
#[derive(Clone)]
pub struct AccessToken {
    token: String,
    token_type: String,
    scope: Option<String>,
    lifetime: Duration,
    /// When the request that got it was sent: its lifetime counts from there.
    requested_at: Instant,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("scope", &self.scope)
            .field("expires_in", &self.expires_in())
            .finish_non_exhaustive()
    }
}

impl AccessToken {
    /// The token, for an `Authorization: Bearer` header.
    pub fn as_str(&self) -> &str {
        &self.token
    }

    /// The granted scopes, space separated, when the server said.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// The lifetime the server gave (`expires_in`).
    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// The token as a token response, `expires_in` counting from now (for printing
    /// it as the server would have sent it).
    pub fn to_response(&self) -> JwtGrantResponse {
        JwtGrantResponse {
            access_token: self.token.clone(),
            token_type: self.token_type.clone(),
            expires_in: self.expires_in().as_secs(),
            scope: self.scope.clone(),
            refresh_token: None,
            id_token: None,
        }
    }

    /// Time left before it expires (zero once expired).
    pub fn expires_in(&self) -> Duration {
        (self.requested_at + self.lifetime).saturating_duration_since(Instant::now())
    }

    fn refresh_at(&self, margin: Option<Duration>) -> Instant {
        let margin = margin
            .unwrap_or_else(|| MIN_REFRESH_MARGIN.max(self.lifetime / 10))
            .min(self.lifetime / 2);
        self.requested_at + self.lifetime - margin
    }
}

/// Where the token endpoint is.
#[derive(Debug, Clone)]
enum Endpoint {
    Token(String),
    Discover(String),
}

/// The grant a token source asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grant {
    /// RFC 7523 section 2.1: the signed assertion is the grant.
    JwtBearer,
    /// RFC 6749 section 4.4: the client's own token, the client authenticated by a
    /// client assertion.
    ClientCredentials,
}

/// Configures a [`TokenSource`].
#[derive(Debug, Clone)]
#[must_use]
pub struct TokenSourceBuilder {
    grant: Grant,
    /// The JWT bearer grant's assertion; for client credentials only its scopes
    /// are read (sent as the form's `scope`).
    assertion: AssertionBuilder,
    /// The client assertion (`private_key_jwt`) sent with each request: always
    /// for client credentials, when asked for with the JWT bearer grant.
    client_assertion: Option<ClientAssertionBuilder>,
    key: PrivateKey,
    endpoint: Option<Endpoint>,
    http: Option<reqwest::Client>,
    refresh_margin: Option<Duration>,
    retry: RetryPolicy,
    consent_url: Option<String>,
    /// RFC 8707 resources the tokens are for (the form's `resource`).
    resources: Vec<String>,
}

impl TokenSourceBuilder {
    /// A token source for the integration `integration_key` (the assertion's `iss`)
    /// signing with `key`.
    pub fn new(integration_key: impl Into<String>, key: PrivateKey) -> Self {
        Self::from_assertion(AssertionBuilder::new(integration_key), key)
    }

    /// A token source whose assertions start from `assertion` (issuer, subject,
    /// audiences, scopes, lifetime, `kid`, algorithm, extra claims).
    pub fn from_assertion(assertion: AssertionBuilder, key: PrivateKey) -> Self {
        TokenSourceBuilder {
            grant: Grant::JwtBearer,
            assertion,
            client_assertion: None,
            key,
            endpoint: None,
            http: None,
            refresh_margin: None,
            retry: RetryPolicy::default(),
            consent_url: None,
            resources: Vec::new(),
        }
    }

    /// A token source for the client credentials grant (RFC 6749 section 4.4): the
    /// client `client_id` (the integration key) gets its own token, authenticating
    /// with a client assertion (`private_key_jwt`) signed with `key` for each request.
    /// The server must allow the integration application tokens.
    ///
    /// ```no_run
    /// # async fn run(key: jwtgrant_client::PrivateKey) -> Result<(), jwtgrant_client::TokenSourceError> {
    /// let tokens = jwtgrant_client::TokenSource::client_credentials("integration-key", key)
    ///     .server("https://auth.example.com") // client assertions name this issuer
    ///     .scopes(["signature"])
    ///     .build()?;
    /// let token = tokens.access_token().await?;
    /// # Ok(()) }
    /// ```
    pub fn client_credentials(client_id: impl Into<String>, key: PrivateKey) -> Self {
        let client_id = client_id.into();
        TokenSourceBuilder {
            grant: Grant::ClientCredentials,
            client_assertion: Some(ClientAssertionBuilder::new(client_id.clone())),
            ..Self::new(client_id, key)
        }
    }

    /// The token endpoint, e.g. `https://account-d.docusign.com/oauth/token`. Unless
    /// an audience is set, assertions name this URL in `aud`.
    pub fn token_endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(Endpoint::Token(url.into()));
        self
    }

    /// The server's issuer URL, e.g. `https://auth.example.com`: the token endpoint
    /// is read from its RFC 8414 metadata on first use. Unless an audience is set,
    /// JWT bearer assertions name the token endpoint in `aud`, and client assertions
    /// the issuer.
    pub fn server(mut self, issuer: impl Into<String>) -> Self {
        self.endpoint = Some(Endpoint::Discover(issuer.into()));
        self
    }

    /// A resource (RFC 8707, an absolute URI such as an MCP server's) the tokens are
    /// for; repeatable. The server narrows the token's `aud` to them and refuses a
    /// resource the integration may not use (`invalid_target`).
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// The user to act as (`sub`); without one, an application token is asked for.
    /// Not for the client credentials grant ([`build`](Self::build) refuses it).
    pub fn subject(mut self, user_id: impl Into<String>) -> Self {
        self.assertion = self.assertion.subject(user_id);
        self
    }

    /// The scopes to ask for (the assertion's `scope` claim; for client credentials
    /// the form's `scope`).
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.assertion = self.assertion.scopes(scopes);
        self
    }

    /// The assertion's audience, replacing any set before (DocuSign: the bare OAuth
    /// host such as `account-d.docusign.com`). For client credentials, the client
    /// assertion's.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        match (self.grant, self.client_assertion.take()) {
            (Grant::ClientCredentials, Some(client)) => {
                self.client_assertion = Some(client.audience(audience));
            }
            (_, client) => {
                self.client_assertion = client;
                self.assertion = self.assertion.audiences([audience.into()]);
            }
        }
        self
    }

    /// Adjusts the JWT bearer assertion template, e.g.
    /// `|a| a.algorithm(JwsAlgorithm::Ps256)`.
    pub fn assertion(mut self, adjust: impl FnOnce(AssertionBuilder) -> AssertionBuilder) -> Self {
        self.assertion = adjust(self.assertion);
        self
    }

    /// Adjusts the client assertion (`private_key_jwt`), e.g. its lifetime,
    /// algorithm or `kid`. With the JWT bearer grant this also turns client
    /// authentication on: each request then carries a client assertion of the
    /// assertion's issuer besides the grant (RFC 7521 section 4.2), for servers that
    /// authenticate the client on every grant.
    pub fn client_assertion(
        mut self,
        adjust: impl FnOnce(ClientAssertionBuilder) -> ClientAssertionBuilder,
    ) -> Self {
        let client = self
            .client_assertion
            .take()
            .unwrap_or_else(|| ClientAssertionBuilder::new(self.assertion.issuer()));
        self.client_assertion = Some(adjust(client));
        self
    }

    /// How long before expiry a cached token is replaced. Default: the larger of
    /// 5 minutes and 10 % of the token's lifetime. Either way at most half the
    /// lifetime, so a short-lived token is still used for half its life.
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = Some(margin);
        self
    }

    /// How transient failures are retried.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// How long one `access_token()` call may retry before failing (default 30 s).
    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.retry.deadline = deadline;
        self
    }

    /// The HTTP client to use (proxies, TLS roots, user agent); by default one that
    /// follows no redirects.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// The longest assertion lifetime the server accepts: assertions are signed for
    /// at most this long (default one hour). A server found with
    /// [`server`](Self::server) that publishes `jwtgrant_max_assertion_lifetime` in
    /// its metadata (jwtgrant does) caps it further by itself.
    pub fn max_assertion_lifetime(mut self, max: Duration) -> Self {
        self.assertion = self.assertion.max_lifetime(max);
        self
    }

    /// The consent URL to report with `consent_required` when the server's error
    /// does not name one (DocuSign's does not; its preset sets this).
    pub fn consent_url(mut self, url: impl Into<String>) -> Self {
        self.consent_url = Some(url.into());
        self
    }

    /// Builds the token source. No request is made until a token is asked for.
    pub fn build(self) -> Result<TokenSource, TokenSourceError> {
        let endpoint = self.endpoint.ok_or(TokenSourceError::MissingEndpoint)?;
        if self.grant == Grant::ClientCredentials && self.assertion.subject_id().is_some() {
            return Err(TokenSourceError::SubjectWithClientCredentials);
        }
        let resolved = OnceCell::new();
        match &endpoint {
            Endpoint::Token(url) => {
                let parsed = reqwest::Url::parse(url)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .ok_or_else(|| TokenSourceError::InvalidEndpoint(url.clone()))?;
                let _ = resolved.set(Resolved {
                    url: parsed.to_string(),
                    issuer: None,
                    max_assertion_lifetime: None,
                });
            }
            Endpoint::Discover(issuer) => {
                discovery::metadata_url(issuer).map_err(TokenSourceError::Discovery)?;
            }
        }
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| TokenSourceError::HttpClient(Arc::new(e)))?,
        };
        Ok(TokenSource {
            inner: Arc::new(Inner {
                grant: self.grant,
                assertion: self.assertion,
                client_assertion: self.client_assertion,
                key: self.key,
                endpoint,
                resolved,
                http,
                refresh_margin: self.refresh_margin,
                retry: self.retry,
                consent_url: self.consent_url,
                resources: self.resources,
                cache: std::sync::Mutex::new(Cache::default()),
                flight: Arc::new(Mutex::new(())),
                fetches: AtomicU64::new(0),
            }),
        })
    }
}

/// Hands out fresh access tokens; clones share one cache.
///
/// ```no_run
/// # async fn run(key: jwtgrant_client::PrivateKey) -> Result<(), jwtgrant_client::TokenSourceError> {
/// let tokens = jwtgrant_client::TokenSource::builder("integration-key", key)
///     .token_endpoint("https://account-d.docusign.com/oauth/token")
///     .audience("account-d.docusign.com")
///     .subject("user-id")
///     .scopes(["signature", "impersonation"])
///     .build()?;
/// let token = tokens.access_token().await?; // a request
/// let again = tokens.access_token().await?; // from the cache
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TokenSource {
    inner: Arc<Inner>,
}

struct Inner {
    grant: Grant,
    assertion: AssertionBuilder,
    client_assertion: Option<ClientAssertionBuilder>,
    key: PrivateKey,
    endpoint: Endpoint,
    /// The token endpoint, set at build or once discovered.
    resolved: OnceCell<Resolved>,
    http: reqwest::Client,
    refresh_margin: Option<Duration>,
    retry: RetryPolicy,
    consent_url: Option<String>,
    /// The form's `resource` values.
    resources: Vec<String>,
    /// The cached token, and the outcome of the last fetch for callers who waited
    /// on it. Locked only to read or write it, never across a request, so a caller
    /// with a valid token never waits for a refresh.
    cache: std::sync::Mutex<Cache>,
    /// Held by the one fetch in flight (in a caller, or in a background refresh):
    /// that is what makes it single flight.
    flight: Arc<Mutex<()>>,
    /// Fetches completed (success or failure), so a waiter can tell one ended.
    fetches: AtomicU64,
}

impl Inner {
    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        // The cache holds no invariant a panic could break halfway.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Where tokens are asked for, and what the server's metadata said about them.
#[derive(Debug, Clone)]
struct Resolved {
    url: String,
    /// The issuer the metadata was found for: client assertions' default `aud`.
    issuer: Option<String>,
    /// `jwtgrant_max_assertion_lifetime` from the metadata, when discovered.
    max_assertion_lifetime: Option<Duration>,
}

#[derive(Default)]
struct Cache {
    token: Option<AccessToken>,
    last_error: Option<TokenSourceError>,
    /// After a refresh failed for good while the token was still valid: the token
    /// is handed out until then without another attempt.
    hold_until: Option<Instant>,
}

impl Cache {
    /// The cached token when it may be handed out without a fetch.
    fn usable(&self, margin: Option<Duration>) -> Option<&AccessToken> {
        let token = self.token.as_ref()?;
        let now = Instant::now();
        let fresh = now < token.refresh_at(margin);
        let held =
            self.hold_until.is_some_and(|until| now < until) && token.expires_in() > Duration::ZERO;
        (fresh || held).then_some(token)
    }

    /// The cached token while it has not expired, refresh margin or not.
    fn valid(&self) -> Option<&AccessToken> {
        self.token
            .as_ref()
            .filter(|token| token.expires_in() > Duration::ZERO)
    }
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("issuer", &self.inner.assertion.issuer())
            .field("endpoint", &self.inner.endpoint)
            .finish_non_exhaustive()
    }
}

impl TokenSource {
    /// Starts configuring a token source for `integration_key` signing with `key`.
    pub fn builder(integration_key: impl Into<String>, key: PrivateKey) -> TokenSourceBuilder {
        TokenSourceBuilder::new(integration_key, key)
    }

    /// Starts configuring a client credentials token source for `client_id`, which
    /// authenticates with client assertions signed with `key`
    /// ([`TokenSourceBuilder::client_credentials`]).
    pub fn client_credentials(client_id: impl Into<String>, key: PrivateKey) -> TokenSourceBuilder {
        TokenSourceBuilder::client_credentials(client_id, key)
    }

    /// A valid access token: the cached one unless it is within the refresh margin of
    /// its expiry, else a new one.
    ///
    /// Inside the margin the cached token is still valid: it is returned at once and
    /// one refresh starts in the background; callers arriving meanwhile get it too,
    /// and no second request is sent. Only callers without a valid token (the first,
    /// or after expiry) wait, all for the same single request and its result.
    ///
    /// A refresh that fails while the cached token is still valid (the server down
    /// until the retry deadline, or an OAuth error) leaves that token in use, without
    /// new attempts for one more deadline's length: an outage shorter than the margin
    /// goes unnoticed. Once no valid token is left, errors are returned.
    pub async fn access_token(&self) -> Result<String, TokenSourceError> {
        self.token().await.map(|token| token.token)
    }

    /// Like [`access_token`](Self::access_token), with the token's scope and expiry.
    pub async fn token(&self) -> Result<AccessToken, TokenSourceError> {
        let margin = self.inner.refresh_margin;
        let seen = self.inner.fetches.load(Ordering::Acquire);
        let still_valid = {
            let cache = self.inner.cache();
            if let Some(token) = cache.usable(margin) {
                return Ok(token.clone());
            }
            cache.valid().cloned()
        };
        if let Some(token) = still_valid {
            self.refresh_in_background();
            return Ok(token);
        }
        let _flight = self.inner.flight.lock().await;
        {
            let cache = self.inner.cache();
            if let Some(token) = cache.valid() {
                return Ok(token.clone());
            }
            // A fetch ended while this caller waited and failed: share its error
            // rather than send another request at once.
            if self.inner.fetches.load(Ordering::Acquire) != seen
                && let Some(error) = &cache.last_error
            {
                return Err(error.clone());
            }
        }
        let result = self.fetch().await;
        self.record(result)
    }

    /// Starts a refresh of a still-valid token unless one is in flight already.
    fn refresh_in_background(&self) {
        let Ok(flight) = Arc::clone(&self.inner.flight).try_lock_owned() else {
            return; // a fetch is in flight: it will replace the token
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return; // no runtime to run it on; the next call inside one will
        };
        let source = self.clone();
        runtime.spawn(async move {
            let _flight = flight;
            // Another refresh may have ended between the caller's look and the lock.
            if source
                .inner
                .cache()
                .usable(source.inner.refresh_margin)
                .is_some()
            {
                return;
            }
            let result = source.fetch().await;
            if let Err(error) = source.record(result) {
                tracing::warn!(%error, "refreshing the access token failed");
            }
        });
    }

    /// Stores a fetch's outcome for every caller. A failure while the cached token is
    /// still valid keeps handing that token out for a while, and returns it.
    fn record(
        &self,
        result: Result<AccessToken, TokenSourceError>,
    ) -> Result<AccessToken, TokenSourceError> {
        let mut cache = self.inner.cache();
        self.inner.fetches.fetch_add(1, Ordering::AcqRel);
        match result {
            Ok(token) => {
                cache.token = Some(token.clone());
                cache.last_error = None;
                cache.hold_until = None;
                Ok(token)
            }
            Err(error) => {
                cache.last_error = Some(error.clone());
                let Some(token) = cache.valid().cloned() else {
                    return Err(error);
                };
                tracing::warn!(%error, expires_in = ?token.expires_in(), "cannot refresh the access token; using the current one");
                let hold = self.inner.retry.deadline.max(Duration::from_secs(1));
                cache.hold_until = Some(Instant::now() + hold);
                Ok(token)
            }
        }
    }

    /// Forgets the cached token, e.g. after an API refused it with 401; the next
    /// call fetches a new one.
    pub async fn invalidate(&self) {
        *self.inner.cache() = Cache::default();
    }

    /// The token endpoint, once known (at once when set, after the first fetch when
    /// discovered).
    pub fn token_endpoint(&self) -> Option<&str> {
        self.inner
            .resolved
            .get()
            .map(|resolved| resolved.url.as_str())
    }

    /// Adds `Authorization: Bearer <token>` to `request`.
    pub async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, TokenSourceError> {
        Ok(request.bearer_auth(self.access_token().await?))
    }

    async fn fetch(&self) -> Result<AccessToken, TokenSourceError> {
        retry::run(&self.inner.retry, |timeout| self.attempt(timeout))
            .await
            .map_err(|failed| {
                if failed.transient {
                    tracing::warn!(attempts = failed.attempts, error = %failed.error, "giving up on the token endpoint");
                    TokenSourceError::RetriesExhausted {
                        attempts: failed.attempts,
                        last: Box::new(failed.error),
                    }
                } else {
                    failed.error
                }
            })
    }

    async fn attempt(&self, timeout: Duration) -> Result<AccessToken, TokenSourceError> {
        let inner = &self.inner;
        let resolved = inner
            .resolved
            .get_or_try_init(|| async {
                match &inner.endpoint {
                    Endpoint::Token(url) => Ok(Resolved {
                        url: url.clone(),
                        issuer: None,
                        max_assertion_lifetime: None,
                    }),
                    Endpoint::Discover(issuer) => discovery::discover(&inner.http, issuer)
                        .await
                        .map(|metadata| Resolved {
                            url: metadata.token_endpoint,
                            issuer: Some(metadata.issuer),
                            max_assertion_lifetime: metadata
                                .jwtgrant_max_assertion_lifetime
                                .map(Duration::from_secs),
                        })
                        .map_err(TokenSourceError::Discovery),
                }
            })
            .await?;
        let url = &resolved.url;
        let form = self.form(resolved)?;
        let transport = |e: reqwest::Error| TokenSourceError::Transport {
            url: url.clone(),
            source: Arc::new(e),
        };
        let requested_at = Instant::now();
        let response = inner
            .http
            .post(url.as_str())
            .timeout(timeout)
            .header(ACCEPT, HeaderValue::from_static("application/json"))
            .form(&form.pairs())
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        let retry_after = retry::retry_after(response.headers());
        let body = response.bytes().await.map_err(transport)?;
        if status.is_success() {
            let grant = bearer_response(&body).map_err(TokenSourceError::InvalidResponse)?;
            tracing::debug!(expires_in = grant.expires_in, "obtained an access token");
            return Ok(AccessToken {
                token: grant.access_token,
                token_type: grant.token_type,
                scope: grant.scope,
                lifetime: Duration::from_secs(grant.expires_in),
                requested_at,
            });
        }
        match OAuthError::from_answer(
            status.as_u16(),
            &body,
            retry_after,
            inner.consent_url.as_deref(),
        ) {
            Some(error) => Err(TokenSourceError::OAuth(error)),
            None => Err(TokenSourceError::Status {
                status: status.as_u16(),
                retry_after,
            }),
        }
    }
}

/// A token endpoint's success body read as a bearer token response (RFC 6749
/// section 5.1); what is wrong with it otherwise.
pub(crate) fn bearer_response(body: &[u8]) -> Result<JwtGrantResponse, String> {
    let grant: JwtGrantResponse = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if !grant.token_type.eq_ignore_ascii_case("bearer") {
        return Err(format!(
            "token_type is '{}', not Bearer",
            grant.token_type.chars().take(32).collect::<String>()
        ));
    }
    Ok(grant)
}

/// One token request's form, its assertions newly signed.
struct TokenForm {
    grant_type: &'static str,
    /// The JWT bearer grant's assertion.
    assertion: Option<String>,
    /// The client credentials grant's scopes.
    scope: Option<String>,
    /// RFC 8707 resources.
    resources: Vec<String>,
    client: Option<ClientAssertionFields>,
}

impl TokenForm {
    fn pairs(&self) -> Vec<(&'static str, &str)> {
        let mut pairs = vec![("grant_type", self.grant_type)];
        if let Some(assertion) = &self.assertion {
            pairs.push(("assertion", assertion));
        }
        if let Some(scope) = &self.scope {
            pairs.push(("scope", scope));
        }
        pairs.extend(self.resources.iter().map(|r| ("resource", r.as_str())));
        if let Some(client) = &self.client {
            pairs.extend(client.pairs());
        }
        pairs
    }
}

impl TokenSource {
    /// Signs what one request sends: the grant's assertion (or scopes) and the
    /// client assertion, each new, so a retried request never repeats a `jti`.
    fn form(&self, resolved: &Resolved) -> Result<TokenForm, TokenSourceError> {
        let inner = &self.inner;
        let (grant_type, assertion, scope) = match inner.grant {
            Grant::JwtBearer => {
                let mut assertion = inner.assertion.clone();
                if !assertion.has_audience() {
                    assertion = assertion.audience(resolved.url.as_str());
                }
                if let Some(server_max) = resolved.max_assertion_lifetime {
                    let cap = server_max.min(assertion.effective_lifetime());
                    assertion = assertion.max_lifetime(cap);
                }
                let signed = assertion
                    .sign(&inner.key)
                    .map_err(TokenSourceError::Assertion)?;
                (JWT_BEARER_GRANT_TYPE, Some(signed), None)
            }
            Grant::ClientCredentials => {
                let scope = Some(inner.assertion.scope_string()).filter(|s| !s.is_empty());
                (CLIENT_CREDENTIALS_GRANT_TYPE, None, scope)
            }
        };
        let client = match &inner.client_assertion {
            Some(client) => {
                let issuer = resolved.issuer.as_deref().unwrap_or(&resolved.url);
                Some(
                    client
                        .form_fields_for(&inner.key, issuer)
                        .map_err(TokenSourceError::Assertion)?,
                )
            }
            None => None,
        };
        Ok(TokenForm {
            grant_type,
            assertion,
            scope,
            resources: inner.resources.clone(),
            client,
        })
    }
}

/// Attaches a token source's `Authorization: Bearer` header to a request.
///
/// ```no_run
/// # async fn run(tokens: &jwtgrant_client::TokenSource) -> Result<(), Box<dyn std::error::Error>> {
/// use jwtgrant_client::BearerAuth as _;
/// let response = reqwest::Client::new()
///     .get("https://api.example.com/v2/me")
///     .bearer_token_from(tokens)
///     .await?
///     .send()
///     .await?;
/// # drop(response); Ok(()) }
/// ```
pub trait BearerAuth: Sized {
    /// The request with `Authorization: Bearer <token>` from `source`.
    fn bearer_token_from(
        self,
        source: &TokenSource,
    ) -> impl Future<Output = Result<Self, TokenSourceError>> + Send;
}

impl BearerAuth for reqwest::RequestBuilder {
    async fn bearer_token_from(self, source: &TokenSource) -> Result<Self, TokenSourceError> {
        source.authorize(self).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(lifetime: u64) -> AccessToken {
        AccessToken {
            token: "t".into(),
            token_type: "Bearer".into(),
            scope: None,
            lifetime: Duration::from_secs(lifetime),
            requested_at: Instant::now(),
        }
    }

    #[test]
    fn refresh_margin_defaults_and_caps() {
        let margin = |lifetime: u64, configured: Option<u64>| {
            let t = token(lifetime);
            (t.requested_at + t.lifetime) - t.refresh_at(configured.map(Duration::from_secs))
        };
        // One hour: 10 % (6 minutes) is more than 5 minutes.
        assert_eq!(margin(3600, None), Duration::from_secs(360));
        assert_eq!(margin(1200, None), Duration::from_secs(300));
        assert_eq!(margin(36_000, None), Duration::from_secs(3600));
        // Short-lived tokens are used for half their life.
        assert_eq!(margin(60, None), Duration::from_secs(30));
        assert_eq!(margin(3600, Some(30)), Duration::from_secs(30));
        assert_eq!(margin(100, Some(90)), Duration::from_secs(50));
    }

    #[test]
    fn reads_the_consent_url_from_jwtgrant_descriptions() {
        let description = "consent_required: the user has not consented to this integration for scope 'signature impersonation'; send the user to http://127.0.0.1:8080/oauth/auth?response_type=code&scope=signature+impersonation&client_id=ik";
        assert_eq!(
            jwtgrant_proto::consent_url_in(description),
            Some(
                "http://127.0.0.1:8080/oauth/auth?response_type=code&scope=signature+impersonation&client_id=ik"
            )
        );
        assert_eq!(jwtgrant_proto::consent_url_in("consent_required"), None);

        let error = OAuthError::new(
            400,
            OAuthErrorResponse {
                error: "consent_required".into(),
                error_description: None,
            },
            None,
            Some("https://account-d.docusign.com/oauth/auth?x"),
        );
        assert_eq!(
            error.consent_url.as_deref(),
            Some("https://account-d.docusign.com/oauth/auth?x")
        );
        assert_eq!(error.to_string(), "consent_required");
    }

    #[test]
    fn display_and_short_codes() {
        let error = OAuthError::new(
            400,
            OAuthErrorResponse {
                error: "invalid_grant".into(),
                error_description: Some("user_not_found: no active user has this id".into()),
            },
            None,
            Some("ignored for other errors"),
        );
        assert_eq!(
            error.to_string(),
            "invalid_grant: user_not_found: no active user has this id"
        );
        assert_eq!(error.short_code(), Some("user_not_found"));
        assert!(error.is(ErrorCode::InvalidGrant));
        assert_eq!(error.consent_url, None);
    }

    #[test]
    fn only_transient_failures_are_retried() {
        let oauth = |status: u16| {
            TokenSourceError::OAuth(OAuthError {
                status,
                error: "x".into(),
                error_description: None,
                consent_url: None,
                retry_after: Some(Duration::from_secs(2)),
            })
        };
        assert_eq!(oauth(400).verdict(), Verdict::Permanent);
        assert_eq!(oauth(401).verdict(), Verdict::Permanent);
        assert_eq!(
            oauth(503).verdict(),
            Verdict::Transient {
                retry_after: Some(Duration::from_secs(2))
            }
        );
        assert!(matches!(oauth(429).verdict(), Verdict::Transient { .. }));
        let status = |status| TokenSourceError::Status {
            status,
            retry_after: None,
        };
        assert!(matches!(status(502).verdict(), Verdict::Transient { .. }));
        assert_eq!(status(404).verdict(), Verdict::Permanent);
        assert_eq!(
            TokenSourceError::InvalidResponse("x".into()).verdict(),
            Verdict::Permanent
        );
    }
}
