//! The replay record in the store, with group commit: concurrent token requests hand their `jti` to
//! one task, which writes everything queued in one store transaction and answers
//! each request only once its `jti` is durable. While one commit runs, the next batch
//! gathers, so batches grow with load and a lone request waits for no one.

use std::sync::Arc;

use async_trait::async_trait;
use jwtgrant_core::ReplayGuard;
use jwtgrant_store::{JtiOutcome, JtiRecord, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

use super::ReplayCache;
use crate::telemetry::TARGET;
use tracing::Instrument as _;

/// Most records written in one commit.
const MAX_BATCH: usize = 512;

struct Pending {
    record: JtiRecord,
    /// The request's `now`: a row past it may be taken over.
    now: i64,
    reply: oneshot::Sender<Result<JtiOutcome, StoreError>>,
}

/// The replay record kept in the store (the default).
#[derive(Clone)]
pub struct StoreReplay {
    queue: mpsc::Sender<Pending>,
    store: Arc<dyn Store>,
}

impl StoreReplay {
    /// Starts the committing task on the current runtime.
    pub fn spawn(store: Arc<dyn Store>) -> Self {
        let (queue, incoming) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(commit_loop(Arc::clone(&store), incoming));
        StoreReplay { queue, store }
    }
}

#[async_trait]
impl ReplayCache for StoreReplay {
    async fn record(&self, guard: &ReplayGuard, now: i64) -> Result<JtiOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            record: JtiRecord {
                issuer: guard.issuer.clone(),
                jti: guard.jti.clone(),
                remember_until: guard.remember_until,
            },
            now,
            reply,
        };
        let committed = async {
            self.queue
                .send(pending)
                .await
                .map_err(|_| StoreError::Unavailable("the replay recorder has stopped".into()))?;
            answer.await.map_err(|_| {
                StoreError::Unavailable("the replay recorder dropped a request".into())
            })?
        };
        committed
            .instrument(tracing::trace_span!(target: TARGET, "store", jwtgrant.store = "database"))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }

    async fn sweep(&self, now: i64) -> Result<u64, StoreError> {
        self.store.sweep_jtis(now).await
    }
}

async fn commit_loop(store: Arc<dyn Store>, mut incoming: mpsc::Receiver<Pending>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = incoming.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match incoming.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let records: Vec<JtiRecord> = batch.iter().map(|p| p.record.clone()).collect();
        // One statement for the group: the latest of its requests' clocks.
        let now = batch.iter().map(|p| p.now).max().unwrap_or_default();
        match store.record_jtis(&records, now).await {
            Ok(outcomes) if outcomes.len() == batch.len() => {
                for (pending, outcome) in batch.drain(..).zip(outcomes) {
                    let _ = pending.reply.send(Ok(outcome));
                }
            }
            Ok(_) => fail_all(
                &mut batch,
                "the store answered a different number of records",
            ),
            Err(error) => fail_all(&mut batch, &error.to_string()),
        }
    }
}

fn fail_all(batch: &mut Vec<Pending>, reason: &str) {
    for pending in batch.drain(..) {
        let _ = pending
            .reply
            .send(Err(StoreError::Unavailable(reason.to_owned())));
    }
}
