//! The grants the token endpoint knows, one file each, dispatched on [`GrantType`] so
//! that an unknown `grant_type` fails in one place.

pub mod jwt_bearer;

use jwtgrant_proto::JWT_BEARER_GRANT_TYPE;

/// A `grant_type` the token endpoint implements.
/// Exhaustive on purpose: adding a grant makes every dispatcher handle it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantType {
    /// RFC 7523 JWT bearer assertion.
    JwtBearer,
}

impl GrantType {
    /// Parses the `grant_type` form value; `None` means `unsupported_grant_type`.
    pub fn from_form(value: &str) -> Option<Self> {
        match value {
            JWT_BEARER_GRANT_TYPE => Some(GrantType::JwtBearer),
            _ => None,
        }
    }

    /// The grant types, as metadata lists them.
    pub fn supported() -> &'static [&'static str] {
        &[JWT_BEARER_GRANT_TYPE]
    }
}
