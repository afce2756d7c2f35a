//! The replay record of a single instance on its embedded store: the live `jti`s in
//! memory, made durable by an append-only journal file beside the SQLite database.
//! A lookup is a hash-map probe; a write is 24 bytes appended and one `fdatasync`
//! per group of requests (group commit, as the store recorder does), instead of a
//! random-key upsert into SQLite's B-tree. A lock file keeps a second `serve` off the
//! same data directory, since the in-memory set is this process's alone.
//!
//! Format: an 8-byte header, then fixed 24-byte records: the first 16 bytes of
//! SHA-256(issuer || 0 || jti) and the little-endian Unix second until which it is
//! remembered. A record torn by a crash is the file's last and is ignored (its
//! request never got a token, as it was answered only after the sync), and cut off
//! at the next start. The journal is rewritten with the live records when it has
//! grown to twice their number (and past [`COMPACT_AFTER`]), at a start or while
//! running.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lc_rs::digest;
use jwtgrant_core::ReplayGuard;
use jwtgrant_store::{JtiOutcome, JtiRecord, StoreError};
use tokio::sync::{mpsc, oneshot};

use super::ReplayCache;
use crate::telemetry::TARGET;
use tracing::Instrument as _;

const HEADER: &[u8; 8] = b"JGJTI\x00\x00\x01";
const RECORD_LEN: usize = 24;
/// Most records synced at once.
const MAX_BATCH: usize = 1024;
/// At most one sync starts per this interval. Under load the writer waits out the
/// rest of the interval since the last sync began, gathering the requests that arrive
/// meanwhile into the same sync (as PostgreSQL's `commit_delay` does): each
/// `fdatasync` costs about 50 us of CPU on this project's virtual disk whatever it
/// carries, and without the wait a batch held about 6 records at saturation. A
/// request after a quiet spell (none synced within the interval) is synced at once,
/// so a lone request waits for no one. No request is answered before its sync.
const SYNC_INTERVAL: Duration = Duration::from_millis(1);
/// The journal is compacted when it holds this many records and twice the live ones.
const COMPACT_AFTER: u64 = 200_000;

type Key = [u8; 16];

fn key(issuer: &str, jti: &str) -> Key {
    let mut context = digest::Context::new(&digest::SHA256);
    context.update(issuer.as_bytes());
    context.update(&[0]);
    context.update(jti.as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(context.finish().as_ref().get(..16).unwrap_or(&[0u8; 16]));
    key
}

fn unavailable(what: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("replay journal: {what}"))
}

struct Pending {
    key: Key,
    remember_until: i64,
    /// The request's `now` (compaction keeps what is live at the latest of them).
    now: i64,
    reply: oneshot::Sender<Result<(), String>>,
}

/// The in-memory set with its journal.
pub struct JournalReplay {
    live: Arc<Mutex<HashMap<Key, i64>>>,
    queue: mpsc::Sender<Pending>,
    _lock: File,
}

impl JournalReplay {
    /// Opens (or creates) the journal in `dir`, taking the directory's lock, loading
    /// the live records, and adding `imported` (the `jti`s an older version kept in
    /// the store) when the journal is new. Starts the writer thread.
    pub fn open(dir: &Path, imported: &[JtiRecord], now: i64) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(unavailable)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("replay.lock"))
            .map_err(unavailable)?;
        // A server of this process that is shutting down may hold it a moment longer.
        let mut attempts = 0;
        while lock.try_lock().is_err() {
            attempts += 1;
            if attempts > 40 {
                return Err(unavailable(format!(
                    "another jwtgrant serve is using {} (one server per data directory; use PostgreSQL for several)",
                    dir.display()
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let path = dir.join("replay.journal");
        if !path.exists() {
            let mut live = HashMap::new();
            for record in imported.iter().filter(|r| r.remember_until >= now) {
                live.insert(key(&record.issuer, &record.jti), record.remember_until);
            }
            let file = rewrite(&path, &live)?;
            let records = live.len() as u64;
            return Self::start(path, file, live, records, lock);
        }
        let contents = read_journal(&path, now)?;
        let live_count = contents.live.len() as u64;
        if contents.records >= COMPACT_AFTER && contents.records >= 2 * live_count {
            // Grown past the writer's own compaction point: the live records only.
            let file = rewrite(&path, &contents.live)?;
            return Self::start(path, file, contents.live, live_count, lock);
        }
        // Appended to as it is: a start reads the file but does not rewrite it (at
        // 290,000 live records the rewrite and its syncs were most of the start).
        // A record torn by a crash is cut off first, so the next append starts on a
        // record's boundary.
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(unavailable)?;
        if contents.torn {
            let whole = HEADER.len() as u64 + contents.records * RECORD_LEN as u64;
            file.set_len(whole).map_err(unavailable)?;
            file.sync_data().map_err(unavailable)?;
        }
        Self::start(path, file, contents.live, contents.records, lock)
    }

    /// Starts the writer thread appending to `file` (the journal at `path`, holding
    /// `records` whole records, those of `live` among them).
    fn start(
        path: PathBuf,
        file: File,
        live: HashMap<Key, i64>,
        records: u64,
        lock: File,
    ) -> Result<Self, StoreError> {
        let live = Arc::new(Mutex::new(live));
        let (queue, incoming) = mpsc::channel(4 * MAX_BATCH);
        let writer = Writer {
            path,
            file: BufWriter::with_capacity(MAX_BATCH * RECORD_LEN, file),
            records,
            live: Arc::clone(&live),
        };
        std::thread::Builder::new()
            .name("jwtgrant-replay-journal".into())
            .spawn(move || writer.run(incoming))
            .map_err(unavailable)?;
        Ok(JournalReplay {
            live,
            queue,
            _lock: lock,
        })
    }

    /// How many `jti`s are remembered.
    pub fn len(&self) -> usize {
        self.live.lock().map(|l| l.len()).unwrap_or(0)
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whether the journal in `dir` remembers the guard's `jti` at `now`, read without
/// the directory's lock (for `jwtgrant explain` beside a running server: records
/// are appended whole and synced before their request is answered).
pub fn journal_remembers(dir: &Path, guard: &ReplayGuard, now: i64) -> Result<bool, StoreError> {
    let path = dir.join("replay.journal");
    if !path.exists() {
        return Ok(false);
    }
    Ok(read_journal(&path, now)?
        .live
        .contains_key(&key(&guard.issuer, &guard.jti)))
}

/// What a journal file holds.
struct JournalContents {
    /// The records live at `now` (the latest expiry of a key written twice).
    live: HashMap<Key, i64>,
    /// Whole records in the file, live or not.
    records: u64,
    /// Whether a partial record ends the file (a crash in the middle of an append).
    torn: bool,
}

fn read_journal(path: &Path, now: i64) -> Result<JournalContents, StoreError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(unavailable)?;
    let body = bytes.strip_prefix(HEADER.as_slice()).ok_or_else(|| {
        unavailable(format!(
            "{} is not a jwtgrant replay journal",
            path.display()
        ))
    })?;
    let mut live = HashMap::with_capacity(body.len() / RECORD_LEN);
    for record in body.chunks_exact(RECORD_LEN) {
        let (k, until) = record.split_at(16);
        let mut key = [0u8; 16];
        key.copy_from_slice(k);
        let mut until_bytes = [0u8; 8];
        until_bytes.copy_from_slice(until);
        let until = i64::from_le_bytes(until_bytes);
        if until >= now {
            let slot = live.entry(key).or_insert(until);
            *slot = (*slot).max(until);
        }
    }
    Ok(JournalContents {
        live,
        records: (body.len() / RECORD_LEN) as u64,
        torn: body.len() % RECORD_LEN != 0,
    })
}

/// Writes `live` to a fresh file and puts it in place of the journal atomically;
/// returns the new file, open for appending.
fn rewrite(path: &Path, live: &HashMap<Key, i64>) -> Result<File, StoreError> {
    let tmp: PathBuf = path.with_extension("journal.tmp");
    {
        let mut out = BufWriter::new(File::create(&tmp).map_err(unavailable)?);
        out.write_all(HEADER).map_err(unavailable)?;
        for (key, until) in live {
            out.write_all(key).map_err(unavailable)?;
            out.write_all(&until.to_le_bytes()).map_err(unavailable)?;
        }
        let file = out.into_inner().map_err(unavailable)?;
        file.sync_all().map_err(unavailable)?;
    }
    std::fs::rename(&tmp, path).map_err(unavailable)?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(unavailable)?;
    }
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(unavailable)
}

struct Writer {
    path: PathBuf,
    file: BufWriter<File>,
    /// Records in the file.
    records: u64,
    live: Arc<Mutex<HashMap<Key, i64>>>,
}

impl Writer {
    fn run(mut self, mut incoming: mpsc::Receiver<Pending>) {
        let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
        let mut last_sync: Option<Instant> = None;
        while let Some(first) = incoming.blocking_recv() {
            batch.push(first);
            if let Some(wait) = last_sync.and_then(|at| SYNC_INTERVAL.checked_sub(at.elapsed())) {
                std::thread::sleep(wait);
            }
            last_sync = Some(Instant::now());
            while batch.len() < MAX_BATCH {
                match incoming.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            let result = self.append(&batch).map_err(|e| e.to_string());
            let now = batch.iter().map(|p| p.now).max().unwrap_or_default();
            for pending in batch.drain(..) {
                let _ = pending.reply.send(result.clone());
            }
            if result.is_ok() {
                self.maybe_compact(now);
            }
        }
    }

    fn append(&mut self, batch: &[Pending]) -> Result<(), StoreError> {
        for pending in batch {
            self.file.write_all(&pending.key).map_err(unavailable)?;
            self.file
                .write_all(&pending.remember_until.to_le_bytes())
                .map_err(unavailable)?;
        }
        self.file.flush().map_err(unavailable)?;
        self.file.get_ref().sync_data().map_err(unavailable)?;
        self.records += batch.len() as u64;
        Ok(())
    }

    fn maybe_compact(&mut self, now: i64) {
        let live_count = self.live.lock().map(|l| l.len() as u64).unwrap_or(0);
        if self.records < COMPACT_AFTER || self.records < 2 * live_count {
            return;
        }
        let snapshot: HashMap<Key, i64> = match self.live.lock() {
            Ok(live) => live
                .iter()
                .filter(|(_, until)| **until >= now)
                .map(|(k, v)| (*k, *v))
                .collect(),
            Err(_) => return,
        };
        match rewrite(&self.path, &snapshot) {
            Ok(file) => {
                self.records = snapshot.len() as u64;
                self.file = BufWriter::with_capacity(MAX_BATCH * RECORD_LEN, file);
            }
            // The old file is still in place and complete; appends go on to it.
            Err(error) => tracing::warn!(%error, "replay journal compaction failed"),
        }
    }
}

#[async_trait]
impl ReplayCache for JournalReplay {
    async fn record(&self, guard: &ReplayGuard, now: i64) -> Result<JtiOutcome, StoreError> {
        let key = key(&guard.issuer, &guard.jti);
        {
            let mut live = self
                .live
                .lock()
                .map_err(|_| unavailable("the in-memory set is poisoned"))?;
            match live.get(&key) {
                Some(until) if *until >= now => return Ok(JtiOutcome::Replayed),
                _ => {
                    live.insert(key, guard.remember_until);
                }
            }
        }
        // Fail closed: when the sync fails the entry stays, so the jti is refused
        // from now on, and this request gets no token either.
        let durable = async {
            let (reply, answer) = oneshot::channel();
            self.queue
                .send(Pending {
                    key,
                    remember_until: guard.remember_until,
                    now,
                    reply,
                })
                .await
                .map_err(|_| unavailable("the writer has stopped"))?;
            answer
                .await
                .map_err(|_| unavailable("the writer dropped a request"))?
                .map_err(StoreError::Unavailable)
        };
        durable
            .instrument(tracing::trace_span!(target: TARGET, "store", jwtgrant.store = "journal"))
            .await?;
        Ok(JtiOutcome::Recorded)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        if self.queue.is_closed() {
            return Err(unavailable("the writer has stopped"));
        }
        Ok(())
    }

    async fn sweep(&self, now: i64) -> Result<u64, StoreError> {
        let mut live = self
            .live
            .lock()
            .map_err(|_| unavailable("the in-memory set is poisoned"))?;
        let before = live.len();
        live.retain(|_, until| *until >= now);
        Ok((before - live.len()) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock;

    fn guard(jti: &str, until: i64) -> ReplayGuard {
        ReplayGuard {
            issuer: "integration".into(),
            jti: jti.into(),
            remember_until: until,
        }
    }

    #[tokio::test]
    async fn a_jti_is_recorded_once_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let far = clock::now() + 3600;
        {
            let journal = JournalReplay::open(dir.path(), &[], clock::now()).unwrap();
            assert_eq!(
                journal
                    .record(&guard("a", far), clock::now())
                    .await
                    .unwrap(),
                JtiOutcome::Recorded
            );
            assert_eq!(
                journal
                    .record(&guard("a", far), clock::now())
                    .await
                    .unwrap(),
                JtiOutcome::Replayed
            );
            assert_eq!(
                journal
                    .record(&guard("b", far), clock::now())
                    .await
                    .unwrap(),
                JtiOutcome::Recorded
            );
            // Another issuer's jti of the same value is another record.
            let other = ReplayGuard {
                issuer: "other".into(),
                ..guard("a", far)
            };
            assert_eq!(
                journal.record(&other, clock::now()).await.unwrap(),
                JtiOutcome::Recorded
            );
            // A second server on the same directory is refused while this one runs.
            assert!(JournalReplay::open(dir.path(), &[], clock::now()).is_err());
        }
        // The lock goes with the first server (dropped here); the records stay.
        let reopened = JournalReplay::open(dir.path(), &[], clock::now()).unwrap();
        assert_eq!(reopened.len(), 3);
        assert_eq!(
            reopened
                .record(&guard("a", far), clock::now())
                .await
                .unwrap(),
            JtiOutcome::Replayed
        );
        assert_eq!(
            reopened
                .record(&guard("c", far), clock::now())
                .await
                .unwrap(),
            JtiOutcome::Recorded
        );
    }

    #[tokio::test]
    async fn expired_records_are_forgotten_and_a_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let now = clock::now();
        {
            let journal = JournalReplay::open(dir.path(), &[], now).unwrap();
            journal
                .record(&guard("old", now + 1), clock::now())
                .await
                .unwrap();
            journal
                .record(&guard("new", now + 3600), clock::now())
                .await
                .unwrap();
            assert_eq!(journal.sweep(now + 2).await.unwrap(), 1);
            // Expired: accepted again.
            assert_eq!(
                journal
                    .record(&guard("old", now + 3600), clock::now())
                    .await
                    .unwrap(),
                JtiOutcome::Recorded
            );
        }
        // A crash in the middle of an append leaves a partial record at the end.
        let path = dir.path().join("replay.journal");
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&[7u8; 10]).unwrap();
        drop(file);
        {
            let reopened = JournalReplay::open(dir.path(), &[], now + 2).unwrap();
            assert_eq!(reopened.len(), 2);
            assert_eq!(
                reopened
                    .record(&guard("new", now + 3600), clock::now())
                    .await
                    .unwrap(),
                JtiOutcome::Replayed
            );
            // Appended after the tear was cut off: on a record's boundary.
            assert_eq!(
                reopened
                    .record(&guard("after", now + 3600), clock::now())
                    .await
                    .unwrap(),
                JtiOutcome::Recorded
            );
        }
        let len = std::fs::metadata(&path).unwrap().len() as usize;
        assert_eq!((len - HEADER.len()) % RECORD_LEN, 0, "{len} bytes");
        let again = JournalReplay::open(dir.path(), &[], now + 2).unwrap();
        assert_eq!(again.len(), 3);
        assert_eq!(
            again
                .record(&guard("after", now + 3600), clock::now())
                .await
                .unwrap(),
            JtiOutcome::Replayed
        );
    }

    /// A start appends to the journal as it is, unless it has grown past the
    /// compaction point (then only the live records are kept).
    #[tokio::test]
    async fn a_start_rewrites_the_journal_only_when_it_needs_compacting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replay.journal");
        let now = clock::now();
        let record = |i: u64, until: i64| {
            let mut bytes = key("integration", &format!("j{i}")).to_vec();
            bytes.extend_from_slice(&until.to_le_bytes());
            bytes
        };
        // Ten live records and ten expired ones: kept as they are.
        let mut body = HEADER.to_vec();
        for i in 0..20 {
            body.extend(record(i, if i < 10 { now + 600 } else { now - 1 }));
        }
        std::fs::write(&path, &body).unwrap();
        drop(JournalReplay::open(dir.path(), &[], now).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), body, "not rewritten");
        // Past COMPACT_AFTER records, most of them expired: rewritten at start.
        let mut body = HEADER.to_vec();
        for i in 0..COMPACT_AFTER {
            body.extend(record(i, if i < 10 { now + 600 } else { now - 1 }));
        }
        std::fs::write(&path, &body).unwrap();
        let journal = JournalReplay::open(dir.path(), &[], now).unwrap();
        assert_eq!(journal.len(), 10);
        let len = std::fs::metadata(&path).unwrap().len() as usize;
        assert_eq!(len, HEADER.len() + 10 * RECORD_LEN);
        assert_eq!(
            journal
                .record(&guard("j3", now + 600), clock::now())
                .await
                .unwrap(),
            JtiOutcome::Replayed
        );
    }

    #[tokio::test]
    async fn a_journal_that_cannot_be_written_fails_closed() {
        // /dev/full refuses every write with ENOSPC, as a full disk does.
        let Ok(full) = OpenOptions::new().append(true).open("/dev/full") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let lock = File::create(dir.path().join("replay.lock")).unwrap();
        let journal = JournalReplay::start(
            dir.path().join("replay.journal"),
            full,
            HashMap::new(),
            0,
            lock,
        )
        .unwrap();
        let far = clock::now() + 3600;
        // The request whose record could not be made durable gets no token...
        assert!(matches!(
            journal.record(&guard("a", far), clock::now()).await,
            Err(StoreError::Unavailable(_))
        ));
        // ...and the jti is never accepted afterwards (closed, never open).
        assert_eq!(
            journal
                .record(&guard("a", far), clock::now())
                .await
                .unwrap(),
            JtiOutcome::Replayed
        );
        assert!(
            journal
                .record(&guard("b", far), clock::now())
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn jtis_kept_in_the_store_are_imported_into_a_new_journal() {
        let dir = tempfile::tempdir().unwrap();
        let now = clock::now();
        let imported = [JtiRecord {
            issuer: "integration".into(),
            jti: "from-sqlite".into(),
            remember_until: now + 600,
        }];
        let journal = JournalReplay::open(dir.path(), &imported, now).unwrap();
        assert_eq!(
            journal
                .record(&guard("from-sqlite", now + 600), clock::now())
                .await
                .unwrap(),
            JtiOutcome::Replayed
        );
    }

    #[tokio::test]
    async fn concurrent_duplicates_get_one_recording() {
        let dir = tempfile::tempdir().unwrap();
        let journal = Arc::new(JournalReplay::open(dir.path(), &[], clock::now()).unwrap());
        let far = clock::now() + 3600;
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let journal = Arc::clone(&journal);
            tasks.push(tokio::spawn(async move {
                journal.record(&guard("same", far), clock::now()).await
            }));
        }
        let mut recorded = 0;
        for task in tasks {
            if task.await.unwrap().unwrap() == JtiOutcome::Recorded {
                recorded += 1;
            }
        }
        assert_eq!(recorded, 1);
    }
}
