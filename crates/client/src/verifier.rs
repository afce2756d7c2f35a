//! Access-token verification for resource servers (RFC 9068): the server's JWKS,
//! fetched and cached (refetched for an unknown `kid`, at most once per interval),
//! and the checks of `typ`, signature, `iss`, `aud`, `exp`/`nbf`/`iat` and scopes.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use jwtgrant_core::access_token::{self, AccessTokenClaims, AccessTokenExpectations, TokenError};
use jwtgrant_core::jws::CompactJws;
use jwtgrant_core::{JwsAlgorithm, PublicKey};
use jwtgrant_proto::JwkSet;
use reqwest::Url;
use tokio::sync::{Mutex, OnceCell};
use tokio::time::Instant;

use crate::assertion::unix_now;
use crate::discovery::{self, DiscoveryError};

/// Why an access token was not accepted.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The token is malformed, forged, expired or not for us (answer 401
    /// `invalid_token`). The reason says which check failed.
    #[error(transparent)]
    Invalid(TokenError),
    /// The token is valid but lacks a scope the resource requires (answer 403
    /// `insufficient_scope`).
    #[error("the access token lacks the scope '{missing}'")]
    InsufficientScope {
        /// The scopes the resource requires.
        required: Vec<String>,
        /// The first one the token lacks.
        missing: String,
    },
    /// The server's keys could not be fetched, so no token can be checked (answer 503).
    #[error("the authorization server's keys are unavailable: {0}")]
    KeysUnavailable(DiscoveryError),
    /// The verifier's configuration is unusable (a bad URL).
    #[error("{0}")]
    Config(String),
}

impl From<TokenError> for VerifyError {
    fn from(error: TokenError) -> Self {
        VerifyError::Invalid(error)
    }
}

/// Which `aud` tokens must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Audience {
    /// The issuer URL: jwtgrant's default access-token audience.
    Issuer,
    /// This exact value.
    Exact(String),
    /// Any: only for a resource server that checks `aud` itself.
    Any,
}

/// Where the JWKS is.
#[derive(Debug, Clone)]
enum JwksLocation {
    Url(String),
    Discover,
}

/// Configures a [`Verifier`].
#[derive(Debug, Clone)]
#[must_use]
pub struct VerifierBuilder {
    issuer: String,
    jwks: JwksLocation,
    audience: Audience,
    leeway: Duration,
    refetch_interval: Duration,
    jwks_max_age: Duration,
    required_scopes: Vec<String>,
    http: Option<reqwest::Client>,
}

impl VerifierBuilder {
    /// Tokens of `issuer`, whose JWKS URL is read from its RFC 8414 metadata on
    /// first use.
    pub fn discover(issuer: impl Into<String>) -> Self {
        Self::with_location(issuer.into(), JwksLocation::Discover)
    }

    /// Tokens of `issuer`, verified with the JWKS at `jwks_uri`.
    pub fn new(issuer: impl Into<String>, jwks_uri: impl Into<String>) -> Self {
        Self::with_location(issuer.into(), JwksLocation::Url(jwks_uri.into()))
    }

    fn with_location(issuer: String, jwks: JwksLocation) -> Self {
        VerifierBuilder {
            issuer: issuer.trim_end_matches('/').to_owned(),
            jwks,
            audience: Audience::Issuer,
            leeway: Duration::from_secs(60),
            refetch_interval: Duration::from_secs(5),
            jwks_max_age: Duration::from_secs(300),
            required_scopes: Vec::new(),
            http: None,
        }
    }

    /// The `aud` tokens must carry. Default: the issuer URL, which is what jwtgrant
    /// puts there unless configured with `access_token_audience`; behind a
    /// [`RequireAccessToken`](crate::RequireAccessToken) that guards a
    /// [`ProtectedResource`](crate::ProtectedResource), that resource. Set here, it
    /// stands for the resource too.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Audience::Exact(audience.into());
        self
    }

    /// Accepts any `aud`. RFC 9068 requires the audience to be checked: use this
    /// only when the caller checks it.
    pub fn any_audience(mut self) -> Self {
        self.audience = Audience::Any;
        self
    }

    /// Clock leeway for `exp`, `nbf` and `iat` (default 60 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// The least time between two JWKS fetches, so tokens with made-up `kid`s
    /// cannot make us hammer the server (default 5 s).
    pub fn refetch_interval(mut self, interval: Duration) -> Self {
        self.refetch_interval = interval;
        self
    }

    /// How long fetched keys are used before the JWKS is fetched again, so removed
    /// keys stop verifying (default 5 minutes).
    pub fn jwks_max_age(mut self, age: Duration) -> Self {
        self.jwks_max_age = age;
        self
    }

    /// Scopes every token must carry for [`Verifier::verify`].
    pub fn require_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.required_scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The HTTP client for the metadata and JWKS requests.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Builds the verifier. No request is made until a token is checked (or
    /// [`Verifier::refresh`] is called).
    pub fn build(self) -> Result<Verifier, VerifyError> {
        let jwks_uri = OnceCell::new();
        match &self.jwks {
            JwksLocation::Url(url) => {
                let parsed = Url::parse(url)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
                    .ok_or_else(|| VerifyError::Config(format!("'{url}' is not a JWKS URL")))?;
                let _ = jwks_uri.set(parsed);
            }
            JwksLocation::Discover => {
                discovery::metadata_url(&self.issuer)
                    .map_err(|e| VerifyError::Config(e.to_string()))?;
            }
        }
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| VerifyError::Config(format!("cannot set up the HTTP client: {e}")))?,
        };
        let audience_chosen = self.audience != Audience::Issuer;
        let audience = match self.audience {
            Audience::Issuer => Some(self.issuer.clone()),
            Audience::Exact(aud) => Some(aud),
            Audience::Any => None,
        };
        Ok(Verifier {
            expect: Arc::new(AccessTokenExpectations {
                issuer: self.issuer.clone(),
                audience,
                leeway_secs: i64::try_from(self.leeway.as_secs()).unwrap_or(i64::MAX),
            }),
            audience_chosen,
            inner: Arc::new(Inner {
                issuer: self.issuer,
                jwks_uri,
                refetch_interval: self.refetch_interval,
                jwks_max_age: self.jwks_max_age,
                required_scopes: self.required_scopes,
                http,
                keys: RwLock::new(None),
                last_fetch: Mutex::new(LastFetch::default()),
            }),
        })
    }
}

/// Checks access tokens of one authorization server; clones share one key cache.
///
/// ```no_run
/// # async fn run(token: &str) -> Result<(), jwtgrant_client::VerifyError> {
/// let verifier = jwtgrant_client::Verifier::discover("https://auth.example.com").build()?;
/// let claims = verifier.verify_with_scopes(token, &["signature"]).await?;
/// println!("{} acting through {}", claims.sub, claims.client_id);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
    /// What a token must say. Beside the shared cache rather than in it, so a
    /// guard of one resource can expect that resource as `aud` with the same keys.
    expect: Arc<AccessTokenExpectations>,
    /// Whether the builder was told the audience (`audience`, `any_audience`);
    /// if not, a protected resource stands in for the issuer default.
    audience_chosen: bool,
}

struct Inner {
    /// The issuer, whose metadata names the JWKS when it is discovered.
    issuer: String,
    /// Set at build, or once discovered.
    jwks_uri: OnceCell<Url>,
    refetch_interval: Duration,
    jwks_max_age: Duration,
    required_scopes: Vec<String>,
    http: reqwest::Client,
    /// The keys last fetched; read without waiting.
    keys: RwLock<Option<Arc<KeySet>>>,
    /// The last JWKS fetch; held while fetching, so one fetch serves every caller
    /// waiting on it.
    last_fetch: Mutex<LastFetch>,
}

/// When the JWKS was last fetched (or tried), and why it failed if it did.
#[derive(Default)]
struct LastFetch {
    at: Option<Instant>,
    error: Option<DiscoveryError>,
}

/// The usable keys of one JWKS fetch.
struct KeySet {
    keys: Vec<(String, PublicKey, Option<JwsAlgorithm>)>,
    fetched_at: Instant,
}

impl KeySet {
    fn find(&self, kid: &str) -> Option<(&PublicKey, Option<JwsAlgorithm>)> {
        self.keys
            .iter()
            .find(|(id, _, _)| id == kid)
            .map(|(_, key, alg)| (key, *alg))
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.expect.issuer)
            .field("audience", &self.expect.audience)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// Starts configuring a verifier whose JWKS URL comes from `issuer`'s metadata.
    pub fn discover(issuer: impl Into<String>) -> VerifierBuilder {
        VerifierBuilder::discover(issuer)
    }

    /// Starts configuring a verifier of `issuer`'s tokens with the JWKS at `jwks_uri`.
    pub fn builder(issuer: impl Into<String>, jwks_uri: impl Into<String>) -> VerifierBuilder {
        VerifierBuilder::new(issuer, jwks_uri)
    }

    /// The issuer whose tokens are accepted.
    pub fn issuer(&self) -> &str {
        &self.expect.issuer
    }

    /// The `aud` tokens must carry; `None` when any is accepted.
    pub fn audience(&self) -> Option<&str> {
        self.expect.audience.as_deref()
    }

    /// This verifier (the same key cache) for the tokens of `resource`: `aud` must
    /// be the resource unless the builder was told an audience, which stands.
    pub(crate) fn for_resource(&self, resource: &str) -> Verifier {
        if self.audience_chosen {
            return self.clone();
        }
        Verifier {
            inner: Arc::clone(&self.inner),
            expect: Arc::new(AccessTokenExpectations {
                audience: Some(resource.to_owned()),
                ..AccessTokenExpectations::clone(&self.expect)
            }),
            audience_chosen: false,
        }
    }

    /// Checks `token` and the scopes the builder required; returns its claims.
    pub async fn verify(&self, token: &str) -> Result<AccessTokenClaims, VerifyError> {
        self.verify_with_scopes(token, &self.inner.required_scopes)
            .await
    }

    /// Checks `token` and that it carries every scope of `scopes`; the scopes the
    /// builder required do not apply to this call.
    pub async fn verify_with_scopes<S: AsRef<str>>(
        &self,
        token: &str,
        scopes: &[S],
    ) -> Result<AccessTokenClaims, VerifyError> {
        let keys = self.current_keys().await?;
        let claims = match self.check(token, &keys) {
            Err(TokenError::UnknownKey) if has_kid(token) => {
                // A key we have not seen: perhaps the server rotated. Refetch, at
                // most once per interval, and try once more.
                match self.fetch_keys(Some(keys.fetched_at)).await {
                    Ok(fresh) => self.check(token, &fresh)?,
                    Err(error) => {
                        tracing::debug!(%error, "JWKS refetch for an unknown kid not done");
                        return Err(TokenError::UnknownKey.into());
                    }
                }
            }
            other => other?,
        };
        let granted: Vec<&str> = claims.scope.split_whitespace().collect();
        if let Some(missing) = scopes
            .iter()
            .map(AsRef::as_ref)
            .find(|scope| !granted.contains(scope))
        {
            return Err(VerifyError::InsufficientScope {
                required: scopes.iter().map(|s| s.as_ref().to_owned()).collect(),
                missing: missing.to_owned(),
            });
        }
        Ok(claims)
    }

    /// Fetches the JWKS now (rate limited like any fetch), e.g. at start-up to fail
    /// early when the server cannot be reached.
    pub async fn refresh(&self) -> Result<(), VerifyError> {
        let known = self.snapshot().map(|keys| keys.fetched_at);
        self.fetch_keys(known).await.map(|_| ())
    }

    fn check(&self, token: &str, keys: &KeySet) -> Result<AccessTokenClaims, TokenError> {
        access_token::verify(token, |kid| keys.find(kid), &self.expect, unix_now())
    }

    fn snapshot(&self) -> Option<Arc<KeySet>> {
        self.inner
            .keys
            .read()
            .map(|keys| keys.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    /// The cached keys, fetched first when there are none or they are too old. Old
    /// keys are still used when a refetch fails.
    async fn current_keys(&self) -> Result<Arc<KeySet>, VerifyError> {
        match self.snapshot() {
            Some(keys) if keys.fetched_at.elapsed() < self.inner.jwks_max_age => Ok(keys),
            Some(stale) => match self.fetch_keys(Some(stale.fetched_at)).await {
                Ok(keys) => Ok(keys),
                Err(error) => {
                    tracing::warn!(%error, "JWKS refetch failed; using the keys fetched before");
                    Ok(stale)
                }
            },
            None => self.fetch_keys(None).await,
        }
    }

    /// Fetches the JWKS unless another caller did since `known` was fetched, or
    /// the last fetch is younger than the refetch interval.
    async fn fetch_keys(&self, known: Option<Instant>) -> Result<Arc<KeySet>, VerifyError> {
        let mut last = self.inner.last_fetch.lock().await;
        let current = self.snapshot();
        if let Some(current) = &current
            && known.is_none_or(|known| current.fetched_at > known)
        {
            return Ok(Arc::clone(current));
        }
        if last
            .at
            .is_some_and(|at| at.elapsed() < self.inner.refetch_interval)
        {
            // Too soon to ask again: the last fetch's outcome stands.
            return match (&last.error, current) {
                (None, Some(current)) => Ok(current),
                (Some(error), _) => Err(VerifyError::KeysUnavailable(error.clone())),
                (None, None) => Err(VerifyError::Config(
                    "the JWKS has not been fetched yet".into(),
                )),
            };
        }
        last.at = Some(Instant::now());
        let fetched = self.fetch_jwks().await;
        last.error = fetched.as_ref().err().cloned();
        let set = fetched.map_err(VerifyError::KeysUnavailable)?;
        let keys = Arc::new(KeySet {
            keys: usable_keys(set),
            fetched_at: Instant::now(),
        });
        tracing::debug!(keys = keys.keys.len(), "fetched the JWKS");
        let mut slot = self
            .inner
            .keys
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *slot = Some(Arc::clone(&keys));
        Ok(keys)
    }

    /// GETs the JWKS, discovering its URL first when needed.
    async fn fetch_jwks(&self) -> Result<JwkSet, DiscoveryError> {
        let inner = &self.inner;
        let url = inner
            .jwks_uri
            .get_or_try_init(|| async {
                let metadata = discovery::discover(&inner.http, &inner.issuer).await?;
                Url::parse(&metadata.jwks_uri).map_err(|_| DiscoveryError::InvalidDocument {
                    url: discovery::metadata_url(&inner.issuer)
                        .map(|u| u.to_string())
                        .unwrap_or_default(),
                    reason: "jwks_uri is not a URL".into(),
                })
            })
            .await?;
        discovery::get_json(&inner.http, url.clone()).await
    }
}

/// The signing keys of a JWKS this crate can use: with a `kid`, `use` absent or
/// `sig`, a supported type, and an `alg` (when given) it knows.
fn usable_keys(set: JwkSet) -> Vec<(String, PublicKey, Option<JwsAlgorithm>)> {
    set.keys
        .into_iter()
        .filter_map(|jwk| {
            let kid = jwk.kid.clone()?;
            if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
                return None;
            }
            let alg = match jwk.alg.as_deref() {
                None => None,
                Some(name) => Some(JwsAlgorithm::from_name(name)?),
            };
            match PublicKey::from_jwk(&jwk) {
                Ok(key) => Some((kid, key, alg)),
                Err(error) => {
                    tracing::debug!(%kid, %error, "skipping a JWKS key");
                    None
                }
            }
        })
        .collect()
}

/// Whether the token's header names a `kid` (only then is a refetch worth it).
fn has_kid(token: &str) -> bool {
    CompactJws::parse(token).is_ok_and(|jws| jws.header().kid.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwtgrant_core::SigningKey;

    #[test]
    fn keeps_only_usable_signing_keys() {
        let key = SigningKey::generate(JwsAlgorithm::Es256, 0).unwrap();
        let public = key.public_key();
        let mut encryption = public.to_jwk(Some("enc"), None);
        encryption.use_ = Some("enc".into());
        let set = JwkSet {
            keys: vec![
                public.to_jwk(Some("a"), Some(JwsAlgorithm::Es256)),
                public.to_jwk(None, None),
                encryption,
                jwtgrant_proto::Jwk {
                    alg: Some("HS256".into()),
                    ..public.to_jwk(Some("hmac"), None)
                },
                jwtgrant_proto::Jwk {
                    kty: "oct".into(),
                    ..public.to_jwk(Some("oct"), None)
                },
            ],
        };
        let keys = usable_keys(set);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].0, "a");
        assert_eq!(keys[0].2, Some(JwsAlgorithm::Es256));
    }
}
