//! The token endpoint's grants, one file each: each runs the core's decision with
//! what it needs from the store.

pub mod jwt_bearer;
