//! The SDK against the real jwtgrant server, started in this process on port 0
//! over a temporary SQLite file: token sources, presets, the verifier and its layer.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod layer;
mod presets;
mod support;
mod token_source;
mod verifier;
