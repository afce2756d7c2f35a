//! Several `jwtgrant serve` processes sharing PostgreSQL (and Redis): being written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing, missing_docs)]
