//! The replay record in Redis: `SET key 1 NX PX ttl` per `jti`, so every instance
//! sharing the Redis sees it and Redis forgets it when the assertion could no longer
//! be used anyway. A Redis that does not answer refuses the grant.

use std::time::Duration;

use async_trait::async_trait;
use jwtgrant_core::ReplayGuard;
use jwtgrant_store::{JtiOutcome, StoreError};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::ReplayCache;
use crate::telemetry::TARGET;
use tracing::Instrument as _;

/// The replay record on a Redis server (or a Redis-compatible one).
#[derive(Clone)]
pub struct RedisReplay {
    connection: ConnectionManager,
    /// The start of every key (`redis_key_prefix`, default `jwtgrant:`).
    prefix: String,
}

fn unavailable(error: redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {error}"))
}

/// Connects to `url` (`redis://host:port/db`) with short timeouts; the connection
/// reconnects by itself after Redis comes back.
pub async fn redis_connection(url: &str) -> Result<ConnectionManager, StoreError> {
    let client = redis::Client::open(url).map_err(unavailable)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(1)))
        .set_response_timeout(Some(Duration::from_secs(1)))
        .set_number_of_retries(1);
    ConnectionManager::new_with_config(client, config)
        .await
        .map_err(unavailable)
}

impl RedisReplay {
    /// Keeps the replay record on this Redis connection, under keys starting with
    /// `prefix`.
    pub fn new(connection: ConnectionManager, prefix: &str) -> Self {
        RedisReplay {
            connection,
            prefix: prefix.to_owned(),
        }
    }

    /// Whether the guard's `jti` is remembered, without recording it (for `jwtgrant
    /// explain`).
    pub async fn is_used(&self, guard: &ReplayGuard) -> Result<bool, StoreError> {
        let exists: i64 = redis::cmd("EXISTS")
            .arg(self.key(guard))
            .query_async(&mut self.connection.clone())
            .await
            .map_err(unavailable)?;
        Ok(exists > 0)
    }

    /// The key of a `jti`: issuer and `jti` length-prefixed so no two pairs collide.
    fn key(&self, guard: &ReplayGuard) -> String {
        format!(
            "{}jti:{}:{}:{}",
            self.prefix,
            guard.issuer.len(),
            guard.issuer,
            guard.jti
        )
    }
}

#[async_trait]
impl ReplayCache for RedisReplay {
    async fn record(&self, guard: &ReplayGuard, now: i64) -> Result<JtiOutcome, StoreError> {
        let ttl_ms = (guard.remember_until - now).max(1) * 1000;
        let set: Option<String> = redis::cmd("SET")
            .arg(self.key(guard))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms)
            .query_async(&mut self.connection.clone())
            .instrument(tracing::trace_span!(target: TARGET, "store", jwtgrant.store = "redis"))
            .await
            .map_err(unavailable)?;
        Ok(if set.is_some() {
            JtiOutcome::Recorded
        } else {
            JtiOutcome::Replayed
        })
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let _: String = redis::cmd("PING")
            .query_async(&mut self.connection.clone())
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn sweep(&self, _now: i64) -> Result<u64, StoreError> {
        Ok(0) // Redis expires the keys itself.
    }
}
