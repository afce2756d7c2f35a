//! The SDK against the real jwtgrant server, started in this process on port 0
//! over a temporary SQLite file: token sources, the authorization code flow's token
//! client, presets, the verifier and its layer (and the protected resource it
//! guards), and the examples' code.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod client_credentials;
mod code_flow;
mod examples;
mod layer;
mod presets;
mod support;
mod token_source;
mod verifier;

#[path = "../../examples/mcp_server.rs"]
#[allow(dead_code)]
mod mcp_server;
/// The examples' sources, so their routers are tested as written.
#[path = "../../examples/protected_api.rs"]
#[allow(dead_code)]
mod protected_api;
