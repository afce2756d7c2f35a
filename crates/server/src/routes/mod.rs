//! The HTTP endpoints, one file per concern.

pub mod authorize;
pub mod discovery;
pub mod introspect;
pub mod ops;
pub mod token;
pub mod userinfo;
