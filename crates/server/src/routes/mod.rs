//! The HTTP endpoints, one file per concern.

pub mod discovery;
pub mod ops;
pub mod token;
pub mod userinfo;
