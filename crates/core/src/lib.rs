//! The sans-IO core of jwtgrant: it parses a JWT bearer assertion, checks every rule
//! of PROTOCOL.md, decides the grant and signs the access token. It reads no clock,
//! no database and no global: the caller passes the registry records, the policy
//! and `now`, so every rule can be tested with vectors and fuzzed.
//!
//! The flow an adapter follows:
//! 1. [`UnverifiedAssertion::parse`] the assertion; look up the integration named by
//!    its `iss`.
//! 2. [`UnverifiedAssertion::verify`] it against that integration: a
//!    [`VerifiedAssertion`].
//! 3. Look up the user and consent for its `sub`, then [`grants::jwt_bearer::decide`]:
//!    a [`GrantDecision`].
//! 4. Record the decision's replay guard (the `jti`) durably, then
//!    [`access_token::issue`].

pub mod access_token;
pub mod alg;
pub mod assertion;
pub mod b64;
pub mod client_auth;
pub mod client_metadata;
pub mod condition;
mod der;
pub mod error;
pub mod explain;
pub mod grants;
pub mod id_jag;
pub mod id_token;
pub mod jwks;
pub mod jwks_cache;
pub mod jws;
pub mod keyring;
pub mod keys;
pub mod model;
pub mod pkce;
pub mod resource;
#[cfg(test)]
mod rule_tests;
pub mod token_exchange;
pub mod trusted_issuer;

pub use alg::{JwsAlgorithm, KeyType};
pub use assertion::{AssertionPolicy, UnverifiedAssertion, VerifiedAssertion};
pub use error::GrantError;
pub use grants::jwt_bearer::{GrantDecision, ReplayGuard, SubjectRecords, TokenSubject};
pub use keys::{KeyError, PublicKey, SigningKey};
pub use model::{Consent, Integration, IntegrationKey, User};
