//! Integration tests: the real server on port 0 over a real SQLite file, spoken to
//! over HTTP; the real binary for admin commands, restarts and signals.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod admin;
mod audit;
mod authorization;
mod bench;
mod client_auth;
mod client_credentials;
mod client_documents;
mod connections;
mod crash;
mod cross_app;
mod endpoints;
mod explain;
mod id_jag;
mod jwt_bearer_client;
mod limits;
mod master_key;
mod migrate;
mod openid;
mod options;
mod proxies;
mod redis;
mod resources;
mod store_tls;
mod support;
mod tls;
mod token;
mod traces;
mod trusted_issuers;
