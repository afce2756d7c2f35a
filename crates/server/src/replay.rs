//! The replay record's group commit: concurrent token requests hand their `jti` to
//! one task, which writes everything queued in one store transaction and answers
//! each request only once its `jti` is durable. While one commit runs, the next batch
//! gathers, so batches grow with load and a lone request waits for no one.

use std::sync::Arc;

use jwtgrant_core::ReplayGuard;
use jwtgrant_store::{JtiOutcome, JtiRecord, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

use crate::clock;

/// Most records written in one commit.
const MAX_BATCH: usize = 512;

struct Pending {
    record: JtiRecord,
    reply: oneshot::Sender<Result<JtiOutcome, StoreError>>,
}

/// The handle requests use to record their `jti`.
#[derive(Clone)]
pub struct ReplayRecorder {
    queue: mpsc::Sender<Pending>,
}

impl ReplayRecorder {
    /// Starts the committing task on the current runtime.
    pub fn spawn(store: Arc<dyn Store>) -> Self {
        let (queue, incoming) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(commit_loop(store, incoming));
        ReplayRecorder { queue }
    }

    /// Records the guard's `jti`; returns once it is durable (or refused as a replay).
    pub async fn record(&self, guard: &ReplayGuard) -> Result<JtiOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            record: JtiRecord {
                issuer: guard.issuer.clone(),
                jti: guard.jti.clone(),
                remember_until: guard.remember_until,
            },
            reply,
        };
        self.queue
            .send(pending)
            .await
            .map_err(|_| StoreError::Unavailable("the replay recorder has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the replay recorder dropped a request".into()))?
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
        match store.record_jtis(&records, clock::now()).await {
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
