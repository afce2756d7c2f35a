//! Scale-out proof on one machine: several real `jwtgrant serve` processes sharing
//! one PostgreSQL database (and, in a second run, one Redis), spoken to over HTTP on
//! loopback; faults made by stopping a PostgreSQL cluster and a `redis-server` of the
//! test's own. Runs only when `JWTGRANT_TEST_DATABASE_URL` names a PostgreSQL server
//! (`.ci/run` sets it); each test then creates a database of its own and drops it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod cluster;
mod faults;
mod support;
mod trust;
