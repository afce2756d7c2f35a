//! Rate limits on the token endpoint, per client address and per integration: token
//! buckets in this process, or fixed one-second windows in Redis shared by every
//! instance. Past the limit the answer is 429 with `Retry-After`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;
use jwtgrant_store::StoreError;
use redis::aio::ConnectionManager;

/// What a limiter says about one more request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allowed,
    /// Too many: retry after this many seconds.
    Limited {
        /// Seconds to wait.
        retry_after_secs: u64,
    },
}

/// Counts requests per key (`client:<addr>`, `integration:<key>`).
#[async_trait]
pub trait RateLimiter: Send + Sync + 'static {
    /// Counts one request for `key` against `per_second`; 0 means no limit.
    async fn check(&self, key: &str, per_second: u32) -> Result<Decision, StoreError>;
    /// Drops state of keys not seen for a while (bounded memory).
    fn forget_idle(&self) {}
}

struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    /// Refills the bucket for the time since it was last seen, then takes a token.
    fn take(&mut self, rate: f64, now: Instant) -> Decision {
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(rate);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Decision::Allowed
        } else {
            let wait = ((1.0 - self.tokens) / rate).ceil().max(1.0);
            Decision::Limited {
                retry_after_secs: wait as u64,
            }
        }
    }
}

/// Token buckets in this process: a burst of one second's worth, refilled steadily.
#[derive(Default)]
pub struct LocalRateLimiter {
    buckets: Mutex<HashMap<String, Bucket>>,
}

#[async_trait]
impl RateLimiter for LocalRateLimiter {
    async fn check(&self, key: &str, per_second: u32) -> Result<Decision, StoreError> {
        if per_second == 0 {
            return Ok(Decision::Allowed);
        }
        let rate = f64::from(per_second);
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .map_err(|_| StoreError::Unavailable("rate limiter poisoned".into()))?;
        // A known key is found without allocating its copy.
        if let Some(bucket) = buckets.get_mut(key) {
            return Ok(bucket.take(rate, now));
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: rate,
            refilled: now,
        });
        Ok(bucket.take(rate, now))
    }

    fn forget_idle(&self) {
        if let Ok(mut buckets) = self.buckets.lock() {
            let now = Instant::now();
            buckets.retain(|_, bucket| now.duration_since(bucket.refilled).as_secs() < 60);
        }
    }
}

/// Fixed one-second windows in Redis (`INCR` + `EXPIRE`), shared by every instance.
pub struct RedisRateLimiter {
    connection: ConnectionManager,
    /// The start of every key (`redis_key_prefix`, default `jwtgrant:`).
    prefix: String,
}

impl RedisRateLimiter {
    /// Uses an existing Redis connection, with keys starting with `prefix`.
    pub fn new(connection: ConnectionManager, prefix: &str) -> Self {
        RedisRateLimiter {
            connection,
            prefix: prefix.to_owned(),
        }
    }
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(&self, key: &str, per_second: u32) -> Result<Decision, StoreError> {
        if per_second == 0 {
            return Ok(Decision::Allowed);
        }
        let window = crate::clock::now();
        let redis_key = format!("{}rl:{key}:{window}", self.prefix);
        let (count,): (u64,) = redis::pipe()
            .atomic()
            .incr(&redis_key, 1)
            .expire(&redis_key, 2)
            .ignore()
            .query_async(&mut self.connection.clone())
            .await
            .map_err(|e| StoreError::Unavailable(format!("redis: {e}")))?;
        Ok(if count > u64::from(per_second) {
            Decision::Limited {
                retry_after_secs: 1,
            }
        } else {
            Decision::Allowed
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bucket_allows_its_burst_then_limits_then_refills() {
        let limiter = LocalRateLimiter::default();
        for _ in 0..5 {
            assert_eq!(limiter.check("k", 5).await.ok(), Some(Decision::Allowed));
        }
        assert_eq!(
            limiter.check("k", 5).await.ok(),
            Some(Decision::Limited {
                retry_after_secs: 1
            })
        );
        assert_eq!(
            limiter.check("other", 5).await.ok(),
            Some(Decision::Allowed),
            "per key"
        );
        assert_eq!(
            limiter.check("k", 0).await.ok(),
            Some(Decision::Allowed),
            "0 is no limit"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        assert_eq!(
            limiter.check("k", 5).await.ok(),
            Some(Decision::Allowed),
            "refilled"
        );
    }
}
