//! Wire types of jwtgrant: what crosses the network between a client, the server and
//! a resource server. Shared by the server and the SDK so both speak the same bytes.
//!
//! The request and response names mirror DocuSign's IAM SDK model this project grew
//! from (`JWTGrant`, `JWTGrantResponse`, `OAuthErrorResponse`).
//!
//! Besides the types, the few spellings both sides must agree on byte for byte:
//! the bearer header and its challenge ([`bearer`]), the consent URL and how an error
//! names it ([`consent`]), and the bare host an assertion's `aud` carries ([`host`]).
//! A resource server's own metadata (RFC 9728) is in [`protected_resource`]; JSON
//! strings written fast on the hot paths, in [`json`].

use serde::{Deserialize, Serialize};

pub mod bearer;
pub mod consent;
pub mod host;
pub mod json;
pub mod protected_resource;

pub use bearer::{BARE_BEARER_CHALLENGE, BearerChallenge, bearer_challenge, bearer_token};
pub use consent::{AUTHORIZATION_PATH, CONSENT_URL_MARKER, consent_url, consent_url_in};
pub use host::bare_host;
pub use protected_resource::{PROTECTED_RESOURCE_METADATA_PATH, ProtectedResourceMetadata};

/// The `grant_type` of the JWT bearer grant (RFC 7523 section 2.1).
pub const JWT_BEARER_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The `client_assertion_type` of JWT client authentication (RFC 7523 section 2.2,
/// `private_key_jwt`).
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// The grant type of the client credentials grant (RFC 6749 section 4.4).
pub const CLIENT_CREDENTIALS_GRANT_TYPE: &str = "client_credentials";
/// The `typ` a client assertion may carry (draft-ietf-oauth-rfc7523bis).
pub const CLIENT_ASSERTION_TYP: &str = "client-authentication+jwt";
/// The scopes of a DocuSign eSignature JWT grant: what a client asks for when it
/// names none, and what an integration may request when created without any.
pub const DEFAULT_SCOPES: [&str; 2] = ["signature", "impersonation"];
/// The JOSE `typ` of an RFC 9068 access token.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The JWT bearer grant request: the form a client posts to the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwtGrant {
    /// Always `urn:ietf:params:oauth:grant-type:jwt-bearer`.
    #[serde(default = "jwt_bearer_grant_type")]
    pub grant_type: String,
    /// The signed assertion, a compact JWS.
    pub assertion: String,
    /// Scopes asked for in the form rather than in the assertion's `scope` claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

fn jwt_bearer_grant_type() -> String {
    JWT_BEARER_GRANT_TYPE.to_owned()
}

impl JwtGrant {
    /// A grant request carrying `assertion`, with the JWT bearer `grant_type`.
    pub fn new(assertion: impl Into<String>) -> Self {
        JwtGrant {
            grant_type: jwt_bearer_grant_type(),
            assertion: assertion.into(),
            scope: None,
        }
    }
}

/// A successful token response (RFC 6749 section 5.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwtGrantResponse {
    /// The access token, an RFC 9068 JWT when issued by jwtgrant.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires; always a JSON integer.
    pub expires_in: u64,
    /// The granted scopes, space separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Issued only by the authorization code and refresh token grants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// An OpenID Connect ID token, when the grant's scopes include `openid`
    /// (the authorization code grant, and the refresh token grant after it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// A token exchange response (RFC 8693 section 2.2.1), as the enterprise identity
/// provider answers a request for an ID-JAG.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenExchangeResponse {
    /// The issued token: for an ID-JAG, the signed JWT.
    pub access_token: String,
    /// What `access_token` is: [`ID_JAG_TOKEN_TYPE`].
    pub issued_token_type: String,
    /// `N_A`: an ID-JAG is no access token, but a grant for another server.
    pub token_type: String,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// The scopes it carries, space separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// An OAuth error body (RFC 6749 section 5.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthErrorResponse {
    /// The error code, e.g. `invalid_grant`.
    pub error: String,
    /// What went wrong, in words a developer can act on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// The OAuth error codes jwtgrant answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Malformed request: missing or repeated parameter, wrong content type.
    InvalidRequest,
    /// Client authentication failed (401).
    InvalidClient,
    /// The assertion (or code, or refresh token) is not acceptable.
    InvalidGrant,
    /// The client may not use this grant.
    UnauthorizedClient,
    /// The `grant_type` is not one the server supports.
    UnsupportedGrantType,
    /// A requested scope is unknown or not allowed.
    InvalidScope,
    /// The user has not consented (DocuSign's code).
    ConsentRequired,
    /// A `resource` that is malformed or not allowed (RFC 8707 section 2), or a
    /// token exchange `audience` the server will not issue for (RFC 8693).
    InvalidTarget,
    /// `prompt=none`, and the user would have to sign in (OpenID Connect).
    LoginRequired,
    /// The user or server refused (authorization endpoint).
    AccessDenied,
    /// The authorization endpoint does not offer this `response_type`.
    UnsupportedResponseType,
    /// The access token is invalid (RFC 6750).
    InvalidToken,
    /// Too many requests (429).
    SlowDown,
    /// A dependency (the store) is unavailable (503).
    TemporarilyUnavailable,
    /// An unexpected failure (500).
    ServerError,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::InvalidTarget => "invalid_target",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::InvalidToken => "invalid_token",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::ServerError => "server_error",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The token exchange grant (RFC 8693).
pub const TOKEN_EXCHANGE_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// The token type of an OpenID Connect ID token (RFC 8693 section 3).
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";

/// The token type of an ID-JAG (draft-ietf-oauth-identity-assertion-authz-grant).
pub const ID_JAG_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id-jag";

/// How long an ID-JAG this server mints lives.
pub const ID_JAG_LIFETIME_SECS: i64 = 300;

/// The header `typ` of an Identity Assertion JWT Authorization Grant
/// (draft-ietf-oauth-identity-assertion-authz-grant).
pub const ID_JAG_TYP: &str = "oauth-id-jag+jwt";

/// The grant profile an authorization server that accepts ID-JAGs lists in
/// `authorization_grant_profiles_supported`.
pub const ID_JAG_GRANT_PROFILE: &str = "urn:ietf:params:oauth:grant-profile:id-jag";

/// Authorization server metadata (RFC 8414), also served as OpenID configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationServerMetadata {
    /// The issuer URL; equals the `iss` of every access token.
    pub issuer: String,
    /// `POST` endpoint for every grant.
    pub token_endpoint: String,
    /// The JWKS that verifies access tokens.
    pub jwks_uri: String,
    /// The userinfo endpoint (DocuSign shape).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    /// The browser authorization endpoint, when the server offers one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    /// RFC 7662 introspection endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    /// RFC 7009 revocation endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// The grant types the token endpoint accepts.
    pub grant_types_supported: Vec<String>,
    /// PKCE methods (RFC 7636) the authorization endpoint accepts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub code_challenge_methods_supported: Vec<String>,
    /// How clients authenticate at the introspection endpoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// How clients authenticate at the revocation endpoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// The response types the authorization endpoint accepts.
    #[serde(default)]
    pub response_types_supported: Vec<String>,
    /// How clients authenticate at the token endpoint.
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Signature algorithms accepted on signed client authentication (client JWTs);
    /// absent while the token endpoint takes none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// Scopes the server knows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// OIDC subject types, for clients that read the OpenID configuration.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_types_supported: Vec<String>,
    /// Algorithms of issued ID tokens (OIDC); absent while the server issues none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// The claims the server can put in ID tokens and userinfo (OIDC).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims_supported: Vec<String>,
    /// The `prompt` values the authorization endpoint honours (OIDC).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompt_values_supported: Vec<String>,
    /// Whether a `client_id` may be a client ID metadata document's URL
    /// (draft-ietf-oauth-client-id-metadata-document).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub client_id_metadata_document_supported: bool,
    /// The assertion grant profiles the token endpoint accepts (ID-JAG, for MCP's
    /// enterprise-managed authorization).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_grant_profiles_supported: Vec<String>,
    /// jwtgrant's extension (RFC 8414 section 2 allows additional members): the
    /// longest assertion lifetime (`exp - iat`, in seconds) the token endpoint
    /// accepts, so clients sign no longer-lived assertions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwtgrant_max_assertion_lifetime: Option<u64>,
}

/// One account of a user, as DocuSign's userinfo lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfoAccount {
    /// The account's id (UUID).
    pub account_id: String,
    /// Whether this is the user's default account.
    pub is_default: bool,
    /// The account's display name.
    pub account_name: String,
    /// The base URI of the account's API.
    pub base_uri: String,
    /// The organization the account belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<serde_json::Value>,
}

/// The userinfo response, in DocuSign's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// The user's id.
    pub sub: String,
    /// Full name.
    pub name: String,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// When the user was created, RFC 3339.
    pub created: String,
    /// The user's email address.
    pub email: String,
    /// The user's accounts.
    pub accounts: Vec<UserInfoAccount>,
}

/// A JSON Web Key (RFC 7517) as published in a JWKS: public parameters only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// `RSA`, `EC` or `OKP`.
    pub kty: String,
    /// Key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// Intended use; `sig` for signing keys.
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    /// The algorithm this key is used with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// RSA modulus, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// RSA public exponent, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    /// Curve of an EC or OKP key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// EC x coordinate or OKP public key, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// EC y coordinate, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    /// Private exponent or scalar, base64url; present only in private JWKs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub d: Option<String>,
}

/// A JSON Web Key Set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JwkSet {
    /// The keys.
    pub keys: Vec<Jwk>,
}
