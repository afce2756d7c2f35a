//! The test kit jwtgrant's test binaries (api, browser, scaleout, sdk) share: the
//! binary spawned on port 0 and waited for, the server run in the test's process,
//! Redis and PostgreSQL of a test's own, the fixtures, and a cookie-jar browser for
//! the authorization code flow's pages.
//!
//! Dev only (`publish = false`). A helper that cannot do its job panics with what
//! it saw, as a test would: that is how a test kit fails, so the workspace's lints
//! against `unwrap`, `expect`, `panic` and indexing are lifted for this crate.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod binary;
mod browser;
mod fixtures;
mod http;
pub mod idp;
pub mod log;
pub mod ports;
mod postgres;
mod redis;
mod server;

pub use binary::{
    Admin, Jwtgrant, READY_WITHIN, Serving, Starting, serve_until_ready, spawn_serve,
};
pub use browser::{Browser, Page, query_param};
pub use fixtures::{
    DEFAULT_SCOPES, Fixture, IntegrationSpec, JWT_BEARER, add_integration, add_key, add_user,
    docusign_claims, grant_consent, jwt_claims, now, oauth_error, other_rsa_key, rsa_key, sign,
};
pub use http::{get_status, http, token_request};
pub use idp::{JwksBehavior, TestIdp, sign_with_header};
pub use postgres::{PgCluster, TestDatabase, database_server, postgres_url_for, with_database};
pub use redis::{RedisServer, TestRedis, with_redis};
pub use server::TestServer;
