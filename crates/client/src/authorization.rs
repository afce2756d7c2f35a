//! The authorization request of the code flow (RFC 6749 section 4.1.1) with PKCE
//! (RFC 7636, S256): the URL to send the user to, the `state` and `code_verifier`
//! kept until the user comes back, and the callback read against them.

use aws_lc_rs::constant_time::verify_slices_are_equal;
use zeroize::Zeroizing;

/// Parameters the request sets itself; [`AuthorizationRequest::param`] may not.
const RESERVED: [&str; 8] = [
    "resource",
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];

/// Why an authorization request could not be made, or its callback not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizationError {
    /// The authorization endpoint is not an http(s) URL.
    #[error("'{0}' is not an http(s) authorization endpoint URL")]
    InvalidEndpoint(String),
    /// An extra parameter would replace one the request sets itself.
    #[error("parameter '{0}' is set by the authorization request itself, not as an extra one")]
    ReservedParameter(String),
    /// A `code_verifier` that RFC 7636 section 4.1 does not allow.
    #[error("a PKCE code_verifier is 43 to 128 characters of A-Z, a-z, 0-9, '-', '.', '_' and '~'")]
    InvalidVerifier,
    /// The system's random number generator failed.
    #[error("the system's random number generator failed")]
    Random,
    /// The callback is neither a URL nor a query string, or repeats a parameter.
    #[error("the callback is not a redirect URL or query of the authorization response")]
    InvalidCallback,
    /// The callback's `state` is not the request's: another request's response,
    /// or a forged one (RFC 6749 section 10.12).
    #[error("the callback's state is not this authorization request's")]
    StateMismatch,
    /// The server (or the user) refused, and said why (RFC 6749 section 4.1.2.1).
    #[error("the authorization server answered {error}{}", .error_description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Refused {
        /// The error code, e.g. `access_denied` or `invalid_scope`.
        error: String,
        /// The server's explanation, when it gave one.
        error_description: Option<String>,
    },
    /// The callback carries neither a `code` nor an `error`.
    #[error("the callback carries no authorization code")]
    MissingCode,
}

/// A PKCE pair (RFC 7636): the secret `code_verifier` the client keeps and sends
/// with the code exchange, and its S256 `code_challenge` sent in the authorization
/// request.
#[derive(Clone)]
pub struct Pkce {
    verifier: Zeroizing<String>,
    challenge: String,
}

impl std::fmt::Debug for Pkce {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkce")
            .field("challenge", &self.challenge)
            .finish_non_exhaustive()
    }
}

impl Pkce {
    /// The only `code_challenge_method` made: `S256`.
    pub const METHOD: &str = jwtgrant_core::pkce::S256;

    /// A new pair: a verifier of 32 random bytes (43 characters, as RFC 7636
    /// section 4.1 recommends) and its challenge.
    pub fn generate() -> Result<Pkce, AuthorizationError> {
        Self::from_verifier(random_token::<32>()?)
    }

    /// The pair for a verifier of the caller's (e.g. kept in a session store).
    pub fn from_verifier(verifier: impl Into<String>) -> Result<Pkce, AuthorizationError> {
        let verifier = Zeroizing::new(verifier.into());
        if !jwtgrant_core::pkce::well_formed(&verifier) {
            return Err(AuthorizationError::InvalidVerifier);
        }
        let challenge = jwtgrant_core::pkce::s256_challenge(&verifier);
        Ok(Pkce {
            verifier,
            challenge,
        })
    }

    /// The `code_verifier`, sent only with the code exchange.
    pub fn verifier(&self) -> &str {
        &self.verifier
    }

    /// The S256 `code_challenge`: `BASE64URL(SHA256(verifier))`.
    pub fn challenge(&self) -> &str {
        &self.challenge
    }
}

/// Builds the URL that sends a user to the authorization endpoint to sign in and
/// consent: `response_type=code`, the client, its redirect URI, the scopes, a fresh
/// `state` and (unless turned off) a PKCE S256 challenge.
///
/// ```
/// # use jwtgrant_client::AuthorizationRequest;
/// let pending = AuthorizationRequest::new(
///     "https://auth.example.com/oauth/auth",
///     "my-integration-key",
///     "https://app.example.com/callback",
/// )
/// .scopes(["signature", "impersonation"])
/// .start()?;
/// assert!(pending.url().starts_with("https://auth.example.com/oauth/auth?response_type=code&"));
/// assert!(pending.url().contains("&code_challenge_method=S256"));
/// // Keep `pending` (its state and code verifier) until the user comes back, then:
/// let callback = format!("https://app.example.com/callback?code=abc&state={}", pending.state());
/// assert_eq!(pending.code_from(&callback)?, "abc");
/// # Ok::<(), jwtgrant_client::AuthorizationError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct AuthorizationRequest {
    endpoint: String,
    client_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    /// Whether to send a PKCE challenge: on by default, as RFC 9700 (OAuth 2.0
    /// security BCP) asks of every client.
    pkce: bool,
    /// RFC 8707 resources, sent here and again with the code.
    resources: Vec<String>,
    params: Vec<(String, String)>,
}

impl AuthorizationRequest {
    /// A request to `authorization_endpoint` (jwtgrant's `/oauth/auth`) for the
    /// client `client_id`, whose user comes back to `redirect_uri` (one registered
    /// with the client).
    pub fn new(
        authorization_endpoint: impl Into<String>,
        client_id: impl Into<String>,
        redirect_uri: impl Into<String>,
    ) -> Self {
        AuthorizationRequest {
            endpoint: authorization_endpoint.into(),
            client_id: client_id.into(),
            redirect_uri: redirect_uri.into(),
            scopes: Vec::new(),
            pkce: true,
            resources: Vec::new(),
            params: Vec::new(),
        }
    }

    /// A resource (RFC 8707, such as an MCP server's URL) the tokens are for;
    /// repeatable. Sent with the authorization request and again with the code (as
    /// MCP asks of its clients), so the access token's `aud` is the resource.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self
    }

    /// The scopes to ask for; each item may itself hold several space-separated ones.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sends no PKCE challenge: only for a confidential client of a server that
    /// does not know PKCE (jwtgrant requires it of public clients, and accepts it
    /// from all).
    pub fn without_pkce(mut self) -> Self {
        self.pkce = false;
        self
    }

    /// Adds a parameter of the server's own or a later specification's (`prompt`,
    /// OpenID Connect's `nonce`). The ones the request sets itself are refused when
    /// it [`start`](Self::start)s.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.push((name.into(), value.into()));
        self
    }

    /// Makes the request: a new `state` and PKCE pair each time, and the URL.
    pub fn start(&self) -> Result<PendingAuthorization, AuthorizationError> {
        if let Some((name, _)) = self
            .params
            .iter()
            .find(|(name, _)| RESERVED.contains(&name.as_str()))
        {
            return Err(AuthorizationError::ReservedParameter(name.clone()));
        }
        let mut url = reqwest::Url::parse(&self.endpoint)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some())
            .ok_or_else(|| AuthorizationError::InvalidEndpoint(self.endpoint.clone()))?;
        let state = random_token::<16>()?;
        let pkce = self.pkce.then(Pkce::generate).transpose()?;
        let scope = self
            .scopes
            .iter()
            .flat_map(|s| s.split_whitespace())
            .collect::<Vec<_>>()
            .join(" ");
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", &self.redirect_uri);
            if !scope.is_empty() {
                query.append_pair("scope", &scope);
            }
            query.append_pair("state", &state);
            if let Some(pkce) = &pkce {
                query
                    .append_pair("code_challenge", pkce.challenge())
                    .append_pair("code_challenge_method", Pkce::METHOD);
            }
            for resource in &self.resources {
                query.append_pair("resource", resource);
            }
            for (name, value) in &self.params {
                query.append_pair(name, value);
            }
        }
        Ok(PendingAuthorization {
            url: url.to_string(),
            state,
            pkce,
            redirect_uri: self.redirect_uri.clone(),
            resources: self.resources.clone(),
        })
    }
}

/// An authorization request sent on its way: the URL to send the user to, and what
/// to keep until the user comes back (the `state` to check, the PKCE verifier and
/// redirect URI for the code exchange).
#[derive(Debug, Clone)]
pub struct PendingAuthorization {
    url: String,
    state: String,
    pkce: Option<Pkce>,
    redirect_uri: String,
    resources: Vec<String>,
}

impl PendingAuthorization {
    /// Where to send the user (an HTTP redirect, or a link).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The `state` sent, which the callback must carry back.
    pub fn state(&self) -> &str {
        &self.state
    }

    /// The redirect URI sent, which the code exchange repeats.
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }

    /// The resources the request named, which the code exchange names again.
    pub fn resources(&self) -> &[String] {
        &self.resources
    }

    /// The PKCE `code_verifier`, when a challenge was sent.
    pub fn code_verifier(&self) -> Option<&str> {
        self.pkce.as_ref().map(Pkce::verifier)
    }

    /// The authorization code in the callback: the URL the user was sent back to
    /// (or its query). Its `state` must be this request's; an `error` is returned as
    /// [`AuthorizationError::Refused`].
    pub fn code_from(&self, callback: &str) -> Result<String, AuthorizationError> {
        let query = match reqwest::Url::parse(callback) {
            Ok(url) => url.query().unwrap_or_default().to_owned(),
            Err(_) => callback.trim_start_matches('?').to_owned(),
        };
        let mut state = None;
        let mut code = None;
        let mut error = None;
        let mut description = None;
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let slot = match name.as_ref() {
                "state" => &mut state,
                "code" => &mut code,
                "error" => &mut error,
                "error_description" => &mut description,
                _ => continue,
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(AuthorizationError::InvalidCallback);
            }
        }
        if state.is_none() && code.is_none() && error.is_none() {
            return Err(AuthorizationError::InvalidCallback);
        }
        let state_matches = state.is_some_and(|state| {
            verify_slices_are_equal(state.as_bytes(), self.state.as_bytes()).is_ok()
        });
        if !state_matches {
            return Err(AuthorizationError::StateMismatch);
        }
        if let Some(error) = error {
            return Err(AuthorizationError::Refused {
                error,
                error_description: description,
            });
        }
        code.filter(|code| !code.is_empty())
            .ok_or(AuthorizationError::MissingCode)
    }
}

/// `N` random bytes from the system RNG, base64url without padding.
fn random_token<const N: usize>() -> Result<String, AuthorizationError> {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| AuthorizationError::Random)?;
    Ok(jwtgrant_core::b64::encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> AuthorizationRequest {
        AuthorizationRequest::new(
            "https://auth.example.com/oauth/auth",
            "ik",
            "https://app.example.com/cb?x=1",
        )
        .scopes(["signature impersonation", "extended"])
    }

    fn query(url: &str) -> Vec<(String, String)> {
        reqwest::Url::parse(url)
            .unwrap()
            .query_pairs()
            .map(|(n, v)| (n.into_owned(), v.into_owned()))
            .collect()
    }

    #[test]
    fn the_url_carries_the_client_state_and_an_s256_challenge() {
        let pending = request().param("prompt", "login").start().unwrap();
        let pairs = query(pending.url());
        let names: Vec<&str> = pairs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "response_type",
                "client_id",
                "redirect_uri",
                "scope",
                "state",
                "code_challenge",
                "code_challenge_method",
                "prompt"
            ]
        );
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .unwrap()
        };
        assert_eq!(get("response_type"), "code");
        assert_eq!(get("redirect_uri"), "https://app.example.com/cb?x=1");
        assert_eq!(get("scope"), "signature impersonation extended");
        assert!(
            pending
                .url()
                .contains("scope=signature+impersonation+extended")
        );
        assert_eq!(get("state"), pending.state());
        assert_eq!(pending.state().len(), 22, "16 random bytes");
        let verifier = pending.code_verifier().unwrap();
        assert_eq!(verifier.len(), 43);
        assert!(jwtgrant_core::pkce::verify_s256(
            verifier,
            get("code_challenge")
        ));
        assert_eq!(get("code_challenge_method"), "S256");
        assert_eq!(get("prompt"), "login");
        assert_eq!(pending.redirect_uri(), "https://app.example.com/cb?x=1");
    }

    #[test]
    fn every_start_has_a_new_state_and_verifier() {
        let request = request();
        let (a, b) = (request.start().unwrap(), request.start().unwrap());
        assert_ne!(a.state(), b.state());
        assert_ne!(a.code_verifier(), b.code_verifier());
        assert!(!format!("{a:?}").contains(a.code_verifier().unwrap()));
    }

    #[test]
    fn without_pkce_no_scope_and_refusals() {
        let pending =
            AuthorizationRequest::new("http://127.0.0.1:8080/oauth/auth", "ik", "http://x/cb")
                .without_pkce()
                .start()
                .unwrap();
        assert_eq!(pending.code_verifier(), None);
        assert!(!pending.url().contains("code_challenge"));
        assert!(!pending.url().contains("scope="));
        assert_eq!(
            request().param("state", "mine").start().unwrap_err(),
            AuthorizationError::ReservedParameter("state".into())
        );
        for endpoint in ["auth.example.com/oauth/auth", "ftp://x/auth", "not a url"] {
            assert_eq!(
                AuthorizationRequest::new(endpoint, "ik", "http://x/cb")
                    .start()
                    .unwrap_err(),
                AuthorizationError::InvalidEndpoint(endpoint.into())
            );
        }
    }

    #[test]
    fn rfc_7636_appendix_b_pair() {
        let pkce = Pkce::from_verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
        assert_eq!(
            pkce.challenge(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(!format!("{pkce:?}").contains(pkce.verifier()));
        assert_eq!(
            Pkce::from_verifier("too-short").unwrap_err(),
            AuthorizationError::InvalidVerifier
        );
    }

    #[test]
    fn the_callback_gives_the_code_only_with_this_requests_state() {
        let pending = request().start().unwrap();
        let state = pending.state().to_owned();
        let at = |query: &str| pending.code_from(&format!("https://app.example.com/cb?{query}"));
        assert_eq!(at(&format!("code=c%2B1&state={state}")).unwrap(), "c+1");
        assert_eq!(
            pending
                .code_from(&format!("?state={state}&code=c2"))
                .unwrap(),
            "c2",
            "a bare query too"
        );
        assert_eq!(
            at("code=c&state=another"),
            Err(AuthorizationError::StateMismatch)
        );
        assert_eq!(at("code=c"), Err(AuthorizationError::StateMismatch));
        assert_eq!(
            at(&format!(
                "error=access_denied&error_description=the+user+said+no&state={state}"
            )),
            Err(AuthorizationError::Refused {
                error: "access_denied".into(),
                error_description: Some("the user said no".into()),
            })
        );
        assert_eq!(
            at("error=access_denied&state=forged"),
            Err(AuthorizationError::StateMismatch),
            "an error with another state is not this request's either"
        );
        assert_eq!(
            at(&format!("state={state}")),
            Err(AuthorizationError::MissingCode)
        );
        assert_eq!(
            at(&format!("code=a&code=b&state={state}")),
            Err(AuthorizationError::InvalidCallback)
        );
        assert_eq!(at(""), Err(AuthorizationError::InvalidCallback));
        let refused = AuthorizationError::Refused {
            error: "invalid_scope".into(),
            error_description: None,
        };
        assert_eq!(
            refused.to_string(),
            "the authorization server answered invalid_scope"
        );
    }
}
