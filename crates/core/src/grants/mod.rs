//! The grants the token endpoint knows, one file each, dispatched on [`GrantType`] so
//! that an unknown `grant_type` fails in one place.

pub mod authorization_code;
pub mod jwt_bearer;
pub mod refresh_token;

use jwtgrant_proto::JWT_BEARER_GRANT_TYPE;

/// A `grant_type` the token endpoint implements.
/// Exhaustive on purpose: adding a grant makes every dispatcher handle it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    /// RFC 7523 JWT bearer assertion.
    JwtBearer,
    /// RFC 6749 section 4.1: an authorization code from the consent page.
    AuthorizationCode,
    /// RFC 6749 section 6: a refresh token from an authorization code grant.
    RefreshToken,
}

impl GrantType {
    /// Parses the `grant_type` form value; `None` means `unsupported_grant_type`.
    pub fn from_form(value: &str) -> Option<Self> {
        match value {
            JWT_BEARER_GRANT_TYPE => Some(GrantType::JwtBearer),
            "authorization_code" => Some(GrantType::AuthorizationCode),
            "refresh_token" => Some(GrantType::RefreshToken),
            _ => None,
        }
    }

    /// Every grant type, in the order metrics count them.
    pub const ALL: [GrantType; 3] = [
        GrantType::JwtBearer,
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
    ];

    /// A short label for metrics: `jwt-bearer`, `authorization_code`, `refresh_token`.
    pub fn label(self) -> &'static str {
        match self {
            GrantType::JwtBearer => "jwt-bearer",
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
        }
    }

    /// The grant types, as metadata lists them.
    pub fn supported() -> &'static [&'static str] {
        &[JWT_BEARER_GRANT_TYPE, "authorization_code", "refresh_token"]
    }
}
