//! The grants the token endpoint knows, one file each, dispatched on [`GrantType`] so
//! that an unknown `grant_type` fails in one place.

pub mod authorization_code;
pub mod client_credentials;
pub mod jwt_bearer;
pub mod refresh_token;

use jwtgrant_proto::{
    CLIENT_CREDENTIALS_GRANT_TYPE, JWT_BEARER_GRANT_TYPE, TOKEN_EXCHANGE_GRANT_TYPE,
};

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
    /// RFC 6749 section 4.4: a confidential client's token for itself.
    ClientCredentials,
    /// RFC 8693: an ID token of this server exchanged for an ID-JAG for another.
    TokenExchange,
}

impl GrantType {
    /// Every grant type, in the order metrics count them and metadata lists them.
    pub const ALL: [GrantType; 5] = [
        GrantType::JwtBearer,
        GrantType::AuthorizationCode,
        GrantType::RefreshToken,
        GrantType::ClientCredentials,
        GrantType::TokenExchange,
    ];

    /// The `grant_type` form value, as metadata lists it.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::JwtBearer => JWT_BEARER_GRANT_TYPE,
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::ClientCredentials => CLIENT_CREDENTIALS_GRANT_TYPE,
            GrantType::TokenExchange => TOKEN_EXCHANGE_GRANT_TYPE,
        }
    }

    /// Parses the `grant_type` form value; `None` means `unsupported_grant_type`.
    pub fn from_form(value: &str) -> Option<Self> {
        GrantType::ALL
            .into_iter()
            .find(|grant| grant.as_str() == value)
    }

    /// A short label for metrics: `jwt-bearer`, `authorization_code`, `refresh_token`,
    /// `client_credentials`, `token-exchange`.
    pub fn label(self) -> &'static str {
        match self {
            GrantType::JwtBearer => "jwt-bearer",
            GrantType::TokenExchange => "token-exchange",
            GrantType::AuthorizationCode
            | GrantType::RefreshToken
            | GrantType::ClientCredentials => self.as_str(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::GrantType;

    #[test]
    fn each_grant_type_reads_back_from_its_form_value() {
        for grant in GrantType::ALL {
            assert_eq!(GrantType::from_form(grant.as_str()), Some(grant));
        }
        assert_eq!(GrantType::from_form("password"), None);
        assert_eq!(GrantType::from_form("jwt-bearer"), None);
    }
}
