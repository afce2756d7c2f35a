//! The token endpoint's requests, typed: the form read into one request per grant
//! (as mini-redis reads a frame into a `Command` before applying it), so that the
//! grants take parameters and never see a form or HTTP.

use jwtgrant_core::grants::GrantType;

use crate::error::{RequestError, TokenEndpointError};
use crate::form::Form;

/// The grant a token request asks for; an unknown `grant_type` is refused here.
pub fn grant_type(form: &Form) -> Result<GrantType, TokenEndpointError> {
    let grant_type = form.require("grant_type")?;
    GrantType::from_form(grant_type).ok_or_else(|| {
        TokenEndpointError::UnsupportedGrantType(grant_type.chars().take(64).collect())
    })
}

/// RFC 7523 section 2.1: an assertion, and optionally scopes narrowing it and
/// resources its token is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtBearerRequest<'a> {
    /// The signed assertion, a compact JWS.
    pub assertion: &'a str,
    /// The form's `scope`, which may only narrow the assertion's.
    pub scope: Option<&'a str>,
    /// The form's `resource` values (RFC 8707): the token's audiences.
    pub resources: Vec<&'a str>,
}

impl<'a> JwtBearerRequest<'a> {
    /// Reads the grant's parameters.
    pub fn from_form(form: &'a Form) -> Result<Self, RequestError> {
        Ok(JwtBearerRequest {
            assertion: form.require("assertion")?,
            scope: form.get("scope"),
            resources: form.get_all("resource"),
        })
    }
}

/// RFC 6749 section 4.1.3: the code, and what must match its authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCodeRequest<'a> {
    /// The code the authorization endpoint sent.
    pub code: &'a str,
    /// Must equal the authorization request's, when that carried one.
    pub redirect_uri: Option<&'a str>,
    /// The PKCE verifier (RFC 7636).
    pub code_verifier: Option<&'a str>,
    /// `resource` values, which may only narrow the authorization request's.
    pub resources: Vec<&'a str>,
}

impl<'a> AuthorizationCodeRequest<'a> {
    /// Reads the grant's parameters.
    pub fn from_form(form: &'a Form) -> Result<Self, RequestError> {
        Ok(AuthorizationCodeRequest {
            code: form.require("code")?,
            redirect_uri: form.get("redirect_uri"),
            code_verifier: form.get("code_verifier"),
            resources: form.get_all("resource"),
        })
    }
}

/// RFC 6749 section 6: the refresh token, and optionally scopes narrowing its grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRequest<'a> {
    /// The refresh token presented.
    pub refresh_token: &'a str,
    /// The form's `scope`, which may only narrow the original grant.
    pub scope: Option<&'a str>,
    /// `resource` values, which may only narrow the original grant's.
    pub resources: Vec<&'a str>,
}

impl<'a> RefreshTokenRequest<'a> {
    /// Reads the grant's parameters.
    pub fn from_form(form: &'a Form) -> Result<Self, RequestError> {
        Ok(RefreshTokenRequest {
            refresh_token: form.require("refresh_token")?,
            scope: form.get("scope"),
            resources: form.get_all("resource"),
        })
    }
}

/// RFC 6749 section 4.4: a confidential client's request for a token of its own,
/// optionally with scopes within its integration's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredentialsRequest<'a> {
    /// The form's `scope`.
    pub scope: Option<&'a str>,
    /// The form's `resource` values (RFC 8707).
    pub resources: Vec<&'a str>,
}

impl<'a> ClientCredentialsRequest<'a> {
    /// Reads the grant's parameters.
    pub fn from_form(form: &'a Form) -> Self {
        ClientCredentialsRequest {
            scope: form.get("scope"),
            resources: form.get_all("resource"),
        }
    }
}

/// RFC 8693 section 2.1: the token to exchange, and what for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenExchangeRequest<'a> {
    /// `subject_token`.
    pub subject_token: &'a str,
    /// `subject_token_type`.
    pub subject_token_type: &'a str,
    /// `requested_token_type`.
    pub requested_token_type: Option<&'a str>,
    /// `audience` values.
    pub audiences: Vec<&'a str>,
    /// `resource` values.
    pub resources: Vec<&'a str>,
    /// `scope`.
    pub scope: Option<&'a str>,
    /// Whether an `actor_token` was sent.
    pub actor_token: bool,
}

impl<'a> TokenExchangeRequest<'a> {
    /// Reads the grant's parameters.
    pub fn from_form(form: &'a Form) -> Result<Self, RequestError> {
        Ok(TokenExchangeRequest {
            subject_token: form.require("subject_token")?,
            subject_token_type: form.require("subject_token_type")?,
            requested_token_type: form.get("requested_token_type"),
            audiences: form.get_all("audience"),
            resources: form.get_all("resource"),
            scope: form.get("scope"),
            actor_token: form.get("actor_token").is_some(),
        })
    }
}
