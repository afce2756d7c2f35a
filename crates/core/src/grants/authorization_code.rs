//! The authorization code grant (RFC 6749 section 4.1, PKCE per RFC 7636): checking an
//! authorization request before any page is shown, and deciding a code exchange at
//! the token endpoint. Codes are single use, live ten minutes and are bound to the
//! client, the redirect URI and the PKCE challenge; the adapter stores them. With
//! OpenID Connect's `prompt` and `max_age`, [`next_step`] decides whether the user
//! signs in, is asked for consent, or is sent back with a code.

use jwtgrant_proto::ErrorCode;

use crate::error::GrantError;
use crate::grants::jwt_bearer::{GrantDecision, TokenSubject};
use crate::model::{Integration, User, split_scopes};
use crate::pkce;
use crate::resource::Resources;

/// How long an authorization code may be redeemed (RFC 6749 recommends at most ten
/// minutes).
pub const CODE_LIFETIME_SECS: i64 = 600;

/// The longest `state` echoed back.
const MAX_STATE_LEN: usize = 2048;

/// The parameters of `GET /oauth/auth`, each present at most once. Unknown
/// parameters are ignored (RFC 6749 section 3.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizationRequest {
    /// `response_type`.
    pub response_type: Option<String>,
    /// `client_id`: the integration key.
    pub client_id: Option<String>,
    /// `redirect_uri`.
    pub redirect_uri: Option<String>,
    /// `scope`, space separated.
    pub scope: Option<String>,
    /// `state`, echoed back.
    pub state: Option<String>,
    /// `code_challenge` (PKCE).
    pub code_challenge: Option<String>,
    /// `code_challenge_method` (PKCE).
    pub code_challenge_method: Option<String>,
    /// `resource` (RFC 8707), the one parameter that may be repeated.
    pub resources: Vec<String>,
    /// `nonce` (OpenID Connect): echoed in the ID token.
    pub nonce: Option<String>,
    /// `prompt` (OpenID Connect), space separated.
    pub prompt: Option<String>,
    /// `max_age` (OpenID Connect): seconds since the user last signed in.
    pub max_age: Option<String>,
}

/// Why an authorization request is refused: either on a page of the server's own
/// (the client or its redirect URI cannot be trusted, or the request is malformed)
/// or by redirecting back to the client with an error (RFC 6749 section 4.1.2.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthorizeError {
    /// Shown to the user on an error page; never a redirect.
    #[error("{message}")]
    Page {
        /// The stable rule code, for the audit trail.
        rule: &'static str,
        /// What the page says.
        message: String,
    },
    /// Sent back to the client's (registered) redirect URI.
    #[error("{description}")]
    Redirect {
        /// The redirect URI, already checked against the registration.
        redirect_uri: String,
        /// The OAuth error code.
        error: ErrorCode,
        /// Words for the developer.
        description: String,
        /// The request's `state`, echoed back.
        state: Option<String>,
    },
}

impl AuthorizationRequest {
    /// Reads the query's pairs; a parameter given twice is a malformed request,
    /// except `resource`.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, AuthorizeError> {
        let mut request = AuthorizationRequest::default();
        for (name, value) in pairs {
            if name == "resource" {
                if !value.is_empty() {
                    request.resources.push(value.to_owned());
                }
                continue;
            }
            let slot = match name {
                "response_type" => &mut request.response_type,
                "client_id" => &mut request.client_id,
                "redirect_uri" => &mut request.redirect_uri,
                "scope" => &mut request.scope,
                "state" => &mut request.state,
                "code_challenge" => &mut request.code_challenge,
                "code_challenge_method" => &mut request.code_challenge_method,
                "nonce" => &mut request.nonce,
                "prompt" => &mut request.prompt,
                "max_age" => &mut request.max_age,
                _ => continue,
            };
            if slot.is_some() {
                return Err(AuthorizeError::Page {
                    rule: "parameter_repeated",
                    message: format!(
                        "The parameter '{name}' appears more than once in the request."
                    ),
                });
            }
            // Empty values count as absent (RFC 6749 section 3.1).
            *slot = (!value.is_empty()).then(|| value.to_owned());
        }
        Ok(request)
    }

    /// The request's parameters as pairs, for carrying it through the login and
    /// consent forms.
    pub fn to_pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("response_type", &self.response_type),
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", &self.scope),
            ("state", &self.state),
            ("code_challenge", &self.code_challenge),
            ("code_challenge_method", &self.code_challenge_method),
            ("nonce", &self.nonce),
            ("prompt", &self.prompt),
            ("max_age", &self.max_age),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
        .chain(self.resources.iter().map(|r| ("resource", r.as_str())))
        .collect()
    }
}

/// An authorization request that may be shown to the user: the client is known and
/// active, the redirect URI is registered, the scopes are allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidAuthorization {
    /// The integration key.
    pub client_id: String,
    /// Where the user is sent back.
    pub redirect_uri: String,
    /// Whether the request named `redirect_uri` (else the only registered one is used).
    pub redirect_uri_given: bool,
    /// The requested scopes (the integration's default scopes when none were).
    pub scopes: Vec<String>,
    /// The resources (RFC 8707) the tokens will be for, each allowed for the client.
    pub resources: Vec<String>,
    /// Echoed back.
    pub state: Option<String>,
    /// The PKCE S256 challenge, if the client sent one.
    pub code_challenge: Option<String>,
    /// The OpenID Connect `nonce`, bound to the code and echoed in its ID token.
    pub nonce: Option<String>,
    /// What `prompt` asks for.
    pub prompt: Prompt,
    /// `max_age`: the longest the user's sign-in may date back, in seconds.
    pub max_age: Option<i64>,
}

/// The `prompt` values of OpenID Connect Core section 3.1.2.1 that the server
/// honours (`select_account` counts as `login`: a session has one account).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    /// `none`: no page may be shown; an error comes back instead.
    pub none: bool,
    /// `login`: the user signs in again, even with a session.
    pub login: bool,
    /// `consent`: the user is asked again, even with a consent on record.
    pub consent: bool,
}

impl Prompt {
    /// Reads a `prompt` value; `None` when it is not one the server knows, or
    /// combines `none` with another value.
    pub fn parse(value: &str) -> Option<Prompt> {
        let mut prompt = Prompt::default();
        for part in value.split_ascii_whitespace() {
            match part {
                "none" => prompt.none = true,
                "login" | "select_account" => prompt.login = true,
                "consent" => prompt.consent = true,
                _ => return None,
            }
        }
        (!prompt.none || !(prompt.login || prompt.consent)).then_some(prompt)
    }
}

/// The user at the browser, as their session says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignedIn {
    /// When they signed in, Unix seconds.
    pub auth_time: i64,
    /// Whether that sign-in answered this request's demand for a fresh one.
    pub fresh: bool,
}

/// What the authorization endpoint does next with a valid request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Show the sign-in page (a fresh sign-in, for `prompt=login` or `max_age`).
    SignIn,
    /// Show the consent page.
    Consent,
    /// Send the user back with a code.
    IssueCode,
}

/// Decides the next step for `valid`: `signed_in` is the session's user, if any;
/// `consent_covers` whether a consent on record covers the scopes. With
/// `prompt=none` a page that would be needed is an error sent back instead
/// (`login_required`, `consent_required`).
pub fn next_step(
    valid: &ValidAuthorization,
    signed_in: Option<SignedIn>,
    consent_covers: bool,
    now: i64,
) -> Result<NextStep, AuthorizeError> {
    let back = |error: ErrorCode, description: &str| AuthorizeError::Redirect {
        redirect_uri: valid.redirect_uri.clone(),
        error,
        description: description.to_owned(),
        state: valid.state.clone(),
    };
    let must_sign_in = match signed_in {
        None => true,
        Some(user) => {
            !user.fresh
                && (valid.prompt.login
                    || valid
                        .max_age
                        .is_some_and(|max_age| now.saturating_sub(user.auth_time) > max_age))
        }
    };
    if must_sign_in {
        return if valid.prompt.none {
            Err(back(
                ErrorCode::LoginRequired,
                "login_required: prompt=none, and the user must sign in",
            ))
        } else {
            Ok(NextStep::SignIn)
        };
    }
    if valid.prompt.consent || !consent_covers {
        return if valid.prompt.none {
            Err(back(
                ErrorCode::ConsentRequired,
                "consent_required: prompt=none, and the user has not consented to these scopes",
            ))
        } else {
            Ok(NextStep::Consent)
        };
    }
    Ok(NextStep::IssueCode)
}

/// Checks an authorization request against the integration its `client_id` names
/// (`None` when there is none). A public client (one without a secret) must send a
/// PKCE challenge.
pub fn validate_request(
    request: &AuthorizationRequest,
    integration: Option<&Integration>,
) -> Result<ValidAuthorization, AuthorizeError> {
    let page = |rule: &'static str, text: &str| AuthorizeError::Page {
        rule,
        message: text.to_owned(),
    };
    let client_id = request
        .client_id
        .as_deref()
        .ok_or_else(|| page("client_id_missing", "The request has no client_id: the application that sent you here did not say who it is."))?;
    let integration = integration.filter(|i| i.key == client_id).ok_or_else(|| {
        page(
            "client_unknown",
            "No application is registered with this client_id.",
        )
    })?;
    if !integration.active {
        return Err(page(
            "client_disabled",
            "This application has been disabled.",
        ));
    }
    let (redirect_uri, redirect_uri_given) = match request.redirect_uri.as_deref() {
        Some(uri) if integration.redirect_uris.iter().any(|r| r == uri) => (uri.to_owned(), true),
        Some(_) => {
            return Err(page(
                "redirect_uri_not_registered",
                "The redirect_uri is not registered for this application, so you will not be sent there.",
            ));
        }
        None => match integration.redirect_uris.as_slice() {
            [only] => (only.clone(), false),
            [] => {
                return Err(page(
                    "redirect_uri_missing",
                    "This application has no registered redirect URI.",
                ));
            }
            _ => {
                return Err(page(
                    "redirect_uri_missing",
                    "The request has no redirect_uri and this application has several registered.",
                ));
            }
        },
    };
    let state = request.state.clone();
    if state.as_ref().is_some_and(|s| s.len() > MAX_STATE_LEN) {
        return Err(page("state_too_long", "The state parameter is too long."));
    }
    let redirect = |error: ErrorCode, description: &str| AuthorizeError::Redirect {
        redirect_uri: redirect_uri.clone(),
        error,
        description: description.to_owned(),
        state: state.clone(),
    };

    // PKCE: malformed parameters are a malformed request, shown on a page.
    let code_challenge = match (
        request.code_challenge.as_deref(),
        request.code_challenge_method.as_deref(),
    ) {
        (_, Some(method)) if method != pkce::S256 => {
            return Err(page(
                "pkce_method_unsupported",
                "Only the S256 code_challenge_method is accepted ('plain' is not).",
            ));
        }
        (Some(challenge), Some(_)) if pkce::well_formed(challenge) => Some(challenge.to_owned()),
        (Some(_), Some(_)) => {
            return Err(page(
                "pkce_challenge_malformed",
                "The code_challenge is malformed: it must be 43 to 128 characters of A-Z, a-z, 0-9, '-', '.', '_' and '~'.",
            ));
        }
        (Some(_), None) => {
            return Err(page(
                "pkce_method_missing",
                "The code_challenge_method is missing: only S256 is accepted, and it must be named.",
            ));
        }
        (None, Some(_)) => {
            return Err(page(
                "pkce_challenge_missing",
                "A code_challenge_method was sent without a code_challenge.",
            ));
        }
        (None, None) if integration.client_secret_hash.is_none() => {
            return Err(page(
                "pkce_required",
                "This application is a public client: its request must carry a PKCE code_challenge (S256).",
            ));
        }
        (None, None) => None,
    };

    match request.response_type.as_deref() {
        Some("code") => {}
        None => {
            return Err(page(
                "response_type_missing",
                "The request has no response_type; it must be 'code'.",
            ));
        }
        Some(_) => {
            return Err(redirect(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported (no implicit grant)",
            ));
        }
    }
    let mut scopes = request
        .scope
        .as_deref()
        .map(split_scopes)
        .unwrap_or_default();
    if scopes.is_empty() {
        scopes = integration.default_scopes.clone();
    }
    if scopes.is_empty() {
        return Err(redirect(
            ErrorCode::InvalidScope,
            "the request names no scope and this application has no default scopes",
        ));
    }
    if let Some(scope) = scopes.iter().find(|s| !integration.scopes.contains(s)) {
        return Err(redirect(
            ErrorCode::InvalidScope,
            &format!(
                "scope '{}' is not allowed for this application",
                crate::jws::truncate(scope)
            ),
        ));
    }
    let requested: Vec<&str> = request.resources.iter().map(String::as_str).collect();
    let resources = Resources::for_integration(&requested, integration)
        .map_err(|error| redirect(error.code(), &error.to_string()))?;
    let prompt = match request.prompt.as_deref() {
        None => Prompt::default(),
        Some(value) => Prompt::parse(value).ok_or_else(|| {
            redirect(
                ErrorCode::InvalidRequest,
                "prompt_invalid: 'prompt' takes none, login, consent or select_account, and none alone",
            )
        })?,
    };
    let max_age = match request.max_age.as_deref() {
        None => None,
        Some(value) => Some(value.parse::<u32>().map(i64::from).map_err(|_| {
            redirect(
                ErrorCode::InvalidRequest,
                "max_age_invalid: 'max_age' must be a whole number of seconds",
            )
        })?),
    };
    if request
        .nonce
        .as_ref()
        .is_some_and(|n| n.len() > MAX_STATE_LEN)
    {
        return Err(redirect(
            ErrorCode::InvalidRequest,
            "nonce_too_long: 'nonce' may be at most 2048 bytes",
        ));
    }
    Ok(ValidAuthorization {
        client_id: integration.key.clone(),
        redirect_uri,
        redirect_uri_given,
        scopes,
        resources: resources.as_slice().to_vec(),
        state,
        code_challenge,
        nonce: request.nonce.clone(),
        prompt,
        max_age,
    })
}

/// An authorization code as the store keeps it (under the hash of the code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    /// The integration it was issued to.
    pub client_id: String,
    /// The user who approved.
    pub user_id: String,
    /// The redirect URI it was sent to.
    pub redirect_uri: String,
    /// The approved scopes.
    pub scopes: Vec<String>,
    /// The resources the authorization request named.
    pub resources: Vec<String>,
    /// The PKCE S256 challenge, if any.
    pub code_challenge: Option<String>,
    /// Unix seconds after which it is refused.
    pub expires_at: i64,
    /// Whether it has been redeemed already.
    pub used: bool,
}

/// What the token request says about the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeExchange<'a> {
    /// `redirect_uri`, when sent (DocuSign's SDK sends none).
    pub redirect_uri: Option<&'a str>,
    /// `code_verifier`, when sent.
    pub code_verifier: Option<&'a str>,
    /// `resource` values, which may only narrow the code's (RFC 8707 section 2.2).
    pub resources: &'a [&'a str],
}

/// Decides a code exchange by the authenticated client `client_id`.
///
/// `code` is the stored code found under the presented code's hash. A code redeemed
/// before is refused with [`GrantError::CodeReused`], whereupon the adapter revokes
/// what the first redemption issued (RFC 6749 section 4.1.2).
pub fn decide(
    code: Option<&AuthorizationCode>,
    exchange: CodeExchange<'_>,
    client_id: &str,
    user: Option<&User>,
    now: i64,
) -> Result<GrantDecision, GrantError> {
    let code = code.ok_or(GrantError::CodeInvalid)?;
    if code.used {
        return Err(GrantError::CodeReused);
    }
    if now >= code.expires_at {
        return Err(GrantError::CodeExpired);
    }
    if code.client_id != client_id {
        return Err(GrantError::CodeClientMismatch);
    }
    if exchange
        .redirect_uri
        .is_some_and(|uri| uri != code.redirect_uri)
    {
        return Err(GrantError::RedirectUriMismatch);
    }
    match (code.code_challenge.as_deref(), exchange.code_verifier) {
        (Some(challenge), Some(verifier)) => {
            if !pkce::verify_s256(verifier, challenge) {
                return Err(GrantError::PkceMismatch);
            }
        }
        (Some(_), None) => return Err(GrantError::PkceVerifierMissing),
        (None, Some(_)) => return Err(GrantError::PkceVerifierUnexpected),
        (None, None) => {}
    }
    let user = user
        .filter(|u| u.id == code.user_id)
        .ok_or(GrantError::UserNotFound)?;
    if !user.active {
        return Err(GrantError::UserDisabled);
    }
    let resources = Resources::narrowing(exchange.resources, &code.resources)?;
    Ok(GrantDecision::new(
        client_id.to_owned(),
        TokenSubject::User(user.id.clone()),
        code.scopes.clone(),
    )
    .for_resources(resources))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn integration() -> Integration {
        Integration {
            key: "client".into(),
            name: "App".into(),
            active: true,
            allow_application_tokens: false,
            require_jti: false,
            scopes: vec!["signature".into(), "impersonation".into()],
            redirect_uris: vec!["https://app.example/cb".into()],
            resources: Vec::new(),
            default_scopes: Vec::new(),
            client_secret_hash: Some("hash".into()),
            keys: vec![],
        }
    }

    fn request(pairs: &[(&str, &str)]) -> AuthorizationRequest {
        let mut all = vec![
            ("response_type", "code"),
            ("client_id", "client"),
            ("redirect_uri", "https://app.example/cb"),
            ("scope", "signature impersonation"),
            ("state", "xyz"),
        ];
        for (name, value) in pairs {
            all.retain(|(n, _)| n != name);
            all.push((name, value));
        }
        AuthorizationRequest::from_pairs(all).unwrap()
    }

    fn is_page(result: Result<ValidAuthorization, AuthorizeError>) -> bool {
        matches!(result, Err(AuthorizeError::Page { .. }))
    }

    fn redirect_error(result: Result<ValidAuthorization, AuthorizeError>) -> Option<ErrorCode> {
        match result {
            Err(AuthorizeError::Redirect { error, state, .. }) => {
                assert_eq!(state.as_deref(), Some("xyz"));
                Some(error)
            }
            _ => None,
        }
    }

    #[test]
    fn a_good_request_is_valid() {
        let valid = validate_request(&request(&[]), Some(&integration())).unwrap();
        assert_eq!(valid.scopes, ["signature", "impersonation"]);
        assert!(valid.redirect_uri_given);
        assert_eq!(valid.state.as_deref(), Some("xyz"));
    }

    #[test]
    fn untrusted_client_or_redirect_uri_shows_a_page() {
        let i = integration();
        assert!(is_page(validate_request(&request(&[]), None)));
        assert!(is_page(validate_request(
            &request(&[("redirect_uri", "https://evil.example/cb")]),
            Some(&i),
        )));
        // A prefix or a longer URI is not a match: comparison is exact.
        assert!(is_page(validate_request(
            &request(&[("redirect_uri", "https://app.example/cb/x")]),
            Some(&i),
        )));
        let disabled = Integration {
            active: false,
            ..integration()
        };
        assert!(is_page(validate_request(&request(&[]), Some(&disabled))));
        assert!(matches!(
            AuthorizationRequest::from_pairs([("client_id", "a"), ("client_id", "b")]),
            Err(AuthorizeError::Page { .. })
        ));
    }

    #[test]
    fn the_only_registered_redirect_uri_is_the_default() {
        let mut r = request(&[]);
        r.redirect_uri = None;
        let valid = validate_request(&r, Some(&integration())).unwrap();
        assert_eq!(valid.redirect_uri, "https://app.example/cb");
        assert!(!valid.redirect_uri_given);
    }

    #[test]
    fn implicit_grant_and_bad_scopes_redirect_with_an_error() {
        let i = integration();
        assert_eq!(
            redirect_error(validate_request(
                &request(&[("response_type", "token")]),
                Some(&i)
            )),
            Some(ErrorCode::UnsupportedResponseType)
        );
        assert_eq!(
            redirect_error(validate_request(
                &request(&[("scope", "signature admin")]),
                Some(&i)
            )),
            Some(ErrorCode::InvalidScope)
        );
    }

    #[test]
    fn pkce_parameters_are_checked() {
        let i = integration();
        let public_i = Integration {
            client_secret_hash: None,
            ..integration()
        };
        let with = |pairs: &[(&str, &str)], public: bool| {
            validate_request(&request(pairs), Some(if public { &public_i } else { &i }))
        };
        assert!(is_page(with(&[], true)), "a public client must use PKCE");
        assert!(is_page(with(
            &[
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "plain")
            ],
            false
        )));
        assert!(is_page(with(&[("code_challenge", CHALLENGE)], false)));
        assert!(is_page(with(
            &[
                ("code_challenge", "short"),
                ("code_challenge_method", "S256")
            ],
            false
        )));
        let valid = with(
            &[
                ("code_challenge", CHALLENGE),
                ("code_challenge_method", "S256"),
            ],
            true,
        )
        .unwrap();
        assert_eq!(valid.code_challenge.as_deref(), Some(CHALLENGE));
    }

    #[test]
    fn prompt_values_are_read_and_none_stands_alone() {
        assert_eq!(Prompt::parse(""), Some(Prompt::default()));
        assert_eq!(
            Prompt::parse("login consent"),
            Some(Prompt {
                none: false,
                login: true,
                consent: true
            })
        );
        assert_eq!(Prompt::parse("select_account").map(|p| p.login), Some(true));
        assert_eq!(Prompt::parse("none").map(|p| p.none), Some(true));
        assert_eq!(Prompt::parse("none login"), None);
        assert_eq!(Prompt::parse("create"), None);
    }

    #[test]
    fn openid_parameters_are_checked_and_kept() {
        let i = integration();
        let valid = validate_request(
            &request(&[
                ("nonce", "n-0S6_WzA2Mj"),
                ("prompt", "consent"),
                ("max_age", "60"),
            ]),
            Some(&i),
        )
        .unwrap();
        assert_eq!(valid.nonce.as_deref(), Some("n-0S6_WzA2Mj"));
        assert!(valid.prompt.consent && !valid.prompt.login);
        assert_eq!(valid.max_age, Some(60));
        for bad in [
            ("prompt", "none consent"),
            ("prompt", "bogus"),
            ("max_age", "-1"),
            ("max_age", "soon"),
        ] {
            assert_eq!(
                redirect_error(validate_request(&request(&[bad]), Some(&i))),
                Some(ErrorCode::InvalidRequest),
                "{bad:?}"
            );
        }
        let long = "n".repeat(MAX_STATE_LEN + 1);
        assert_eq!(
            redirect_error(validate_request(&request(&[("nonce", &long)]), Some(&i))),
            Some(ErrorCode::InvalidRequest)
        );
        // Carried through the sign-in and consent forms.
        let carried = request(&[("nonce", "n"), ("prompt", "login"), ("max_age", "0")]);
        let back = AuthorizationRequest::from_pairs(carried.to_pairs()).unwrap();
        assert_eq!(back, carried);
    }

    #[test]
    fn the_next_step_honours_prompt_and_max_age() {
        let i = integration();
        let with = |pairs: &[(&str, &str)]| validate_request(&request(pairs), Some(&i)).unwrap();
        let old = Some(SignedIn {
            auth_time: NOW - 600,
            fresh: false,
        });
        let fresh = Some(SignedIn {
            auth_time: NOW - 600,
            fresh: true,
        });
        let plain = with(&[]);
        assert_eq!(next_step(&plain, None, true, NOW), Ok(NextStep::SignIn));
        assert_eq!(next_step(&plain, old, false, NOW), Ok(NextStep::Consent));
        assert_eq!(next_step(&plain, old, true, NOW), Ok(NextStep::IssueCode));

        let login = with(&[("prompt", "login")]);
        assert_eq!(next_step(&login, old, true, NOW), Ok(NextStep::SignIn));
        assert_eq!(next_step(&login, fresh, true, NOW), Ok(NextStep::IssueCode));

        let consent = with(&[("prompt", "consent")]);
        assert_eq!(next_step(&consent, old, true, NOW), Ok(NextStep::Consent));

        let max_age = with(&[("max_age", "300")]);
        assert_eq!(next_step(&max_age, old, true, NOW), Ok(NextStep::SignIn));
        assert_eq!(
            next_step(&max_age, fresh, true, NOW),
            Ok(NextStep::IssueCode)
        );
        let recent = Some(SignedIn {
            auth_time: NOW - 300,
            fresh: false,
        });
        assert_eq!(
            next_step(&max_age, recent, true, NOW),
            Ok(NextStep::IssueCode)
        );

        let none = with(&[("prompt", "none")]);
        let error = |step| match step {
            Err(AuthorizeError::Redirect { error, state, .. }) => {
                assert_eq!(state.as_deref(), Some("xyz"));
                Some(error)
            }
            _ => None,
        };
        assert_eq!(
            error(next_step(&none, None, true, NOW)),
            Some(ErrorCode::LoginRequired)
        );
        assert_eq!(
            error(next_step(&none, old, false, NOW)),
            Some(ErrorCode::ConsentRequired)
        );
        assert_eq!(next_step(&none, old, true, NOW), Ok(NextStep::IssueCode));
        let none_max_age = with(&[("prompt", "none"), ("max_age", "60")]);
        assert_eq!(
            error(next_step(&none_max_age, old, true, NOW)),
            Some(ErrorCode::LoginRequired)
        );
    }

    fn code(challenge: Option<&str>) -> AuthorizationCode {
        AuthorizationCode {
            client_id: "client".into(),
            user_id: "user".into(),
            redirect_uri: "https://app.example/cb".into(),
            scopes: vec!["signature".into()],
            resources: Vec::new(),
            code_challenge: challenge.map(str::to_owned),
            expires_at: NOW + CODE_LIFETIME_SECS,
            used: false,
        }
    }

    fn user() -> User {
        User {
            id: "user".into(),
            active: true,
        }
    }

    fn exchange(
        redirect_uri: Option<&'static str>,
        verifier: Option<&'static str>,
    ) -> CodeExchange<'static> {
        CodeExchange {
            redirect_uri,
            code_verifier: verifier,
            resources: &[],
        }
    }

    #[test]
    fn a_good_exchange_grants_the_approved_scopes() {
        let decision = decide(
            Some(&code(Some(CHALLENGE))),
            exchange(None, Some(VERIFIER)),
            "client",
            Some(&user()),
            NOW,
        )
        .unwrap();
        assert_eq!(decision.subject_claim(), "user");
        assert_eq!(decision.scopes(), ["signature"]);
        assert!(decision.replay_guard().is_none());
    }

    #[test]
    fn every_code_rule_refuses() {
        let u = user();
        let c = code(Some(CHALLENGE));
        let run = |c: &AuthorizationCode, e: CodeExchange<'static>, client: &str, now: i64| {
            decide(Some(c), e, client, Some(&u), now).unwrap_err()
        };
        assert_eq!(
            decide(None, exchange(None, None), "client", Some(&u), NOW).unwrap_err(),
            GrantError::CodeInvalid
        );
        let used = AuthorizationCode {
            used: true,
            ..c.clone()
        };
        assert_eq!(
            run(&used, exchange(None, Some(VERIFIER)), "client", NOW),
            GrantError::CodeReused
        );
        assert_eq!(
            run(
                &c,
                exchange(None, Some(VERIFIER)),
                "client",
                NOW + CODE_LIFETIME_SECS
            ),
            GrantError::CodeExpired
        );
        assert_eq!(
            run(&c, exchange(None, Some(VERIFIER)), "other", NOW),
            GrantError::CodeClientMismatch
        );
        assert_eq!(
            run(
                &c,
                exchange(Some("https://app.example/other"), Some(VERIFIER)),
                "client",
                NOW
            ),
            GrantError::RedirectUriMismatch
        );
        assert_eq!(
            run(&c, exchange(None, None), "client", NOW),
            GrantError::PkceVerifierMissing
        );
        assert_eq!(
            run(
                &c,
                exchange(None, Some("x".repeat(43).leak())),
                "client",
                NOW
            ),
            GrantError::PkceMismatch
        );
        assert_eq!(
            run(&code(None), exchange(None, Some(VERIFIER)), "client", NOW),
            GrantError::PkceVerifierUnexpected
        );
        let disabled = User {
            active: false,
            ..user()
        };
        assert_eq!(
            decide(
                Some(&code(None)),
                exchange(Some("https://app.example/cb"), None),
                "client",
                Some(&disabled),
                NOW
            )
            .unwrap_err(),
            GrantError::UserDisabled
        );
        assert_eq!(
            decide(Some(&code(None)), exchange(None, None), "client", None, NOW).unwrap_err(),
            GrantError::UserNotFound
        );
    }
}
