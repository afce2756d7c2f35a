//! The replay record: every `jti` accepted once, across restarts and instances. Kept
//! in memory with an append-only journal on the embedded store (one instance), in
//! the shared store with PostgreSQL (group commit), or in Redis with `--redis`. Either way a
//! failure to record refuses the grant (503): replay checks fail closed.

mod journal;
mod redis;
mod store;

use async_trait::async_trait;
use jwtgrant_core::ReplayGuard;
use jwtgrant_store::{JtiOutcome, StoreError};

pub use self::journal::{JournalReplay, journal_remembers};
pub use self::redis::{RedisReplay, redis_connection};
pub use self::store::StoreReplay;

/// Where used `jti`s are remembered.
#[async_trait]
pub trait ReplayCache: Send + Sync + 'static {
    /// Records the guard's `jti` until its `remember_until`; returns once the record
    /// is durable, or [`JtiOutcome::Replayed`] when it was already there and not yet
    /// past at `now` (the app state's clock).
    async fn record(&self, guard: &ReplayGuard, now: i64) -> Result<JtiOutcome, StoreError>;
    /// Checks that the cache answers (for readiness).
    async fn ping(&self) -> Result<(), StoreError>;
    /// Forgets expired records where that needs doing by hand.
    async fn sweep(&self, now: i64) -> Result<u64, StoreError>;
}
