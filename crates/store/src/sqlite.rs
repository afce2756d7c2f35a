//! The SQLite dialect: one file in WAL mode, a single writer connection, a small
//! pool of read-only readers and a checkpointer beside them, write transactions
//! that take the lock at once, and migrations embedded in the binary, run on open.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};

use crate::sql::{Dialect, RowsAffected, SqlStore, migrate, migrator};
use crate::{JtiOutcome, JtiRecord, OpenOptions, StoreError, StoreResult};

/// What SQLite does its own way.
#[derive(Debug)]
pub(crate) struct SqliteDialect {
    /// Copies the WAL back into the database beside the writer (see `maintain`).
    checkpointer: SqlitePool,
    /// The data directory, when the file is the one in it (see
    /// `Store::replay_journal_dir`).
    data_dir: Option<PathBuf>,
}

impl Dialect for SqliteDialect {
    type Db = Sqlite;

    const BEGIN: &'static str = "BEGIN IMMEDIATE";
    const ROW_LOCK: &'static str = "";
    /// Three parameters a row, far below SQLite's limit.
    const JTI_BATCH: usize = 500;

    /// One multi-row statement, hence one transaction and one WAL sync. Copies of a
    /// pair within it are written once: the later ones meet a live row.
    async fn insert_jtis(
        writer: &SqlitePool,
        batch: &[JtiRecord],
        now: i64,
    ) -> StoreResult<Vec<JtiOutcome>> {
        let mut sql = String::with_capacity(120 + batch.len() * 10);
        sql.push_str("INSERT INTO used_jtis (issuer, jti, expires_at) VALUES ");
        for i in 0..batch.len() {
            sql.push_str(if i == 0 { "(?, ?, ?)" } else { ", (?, ?, ?)" });
        }
        sql.push_str(
            " ON CONFLICT (issuer, jti) DO UPDATE SET expires_at = excluded.expires_at
              WHERE used_jtis.expires_at < ? RETURNING issuer, jti",
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for record in batch {
            query = query
                .bind(record.issuer.as_str())
                .bind(record.jti.as_str())
                .bind(record.remember_until);
        }
        let written = query.bind(now).fetch_all(writer).await?;
        crate::sql::jti_outcomes(batch, &written)
    }

    /// A row of `audit_batches` per (at most) 512 events, in
    /// one statement: a row per event, with its indexes, cost the writer about
    /// 8 us of CPU per event; a batch's JSON text costs about a quarter of that.
    ///
    /// The commit does not wait for the disk (`synchronous = NORMAL` for this
    /// transaction only; the store's own writes keep `FULL`). The audit trail is
    /// not a ledger: its events wait in memory for up to 200 ms before they are
    /// written, and are lost if the process dies meanwhile. NORMAL in WAL mode adds
    /// the commits of the last moments before a power cut to what may be lost; it
    /// never corrupts the file. The fsync it saves was half of the writer's CPU per
    /// event on this machine (the disk's flush is a VM exit).
    async fn insert_audit_events(
        writer: &SqlitePool,
        events: &[crate::AuditEvent],
    ) -> Result<(), sqlx::Error> {
        let mut connection = writer.acquire().await?;
        sqlx::query("PRAGMA synchronous = NORMAL")
            .execute(&mut *connection)
            .await?;
        let written = write_audit_batches(&mut connection, events).await;
        let restored = sqlx::query("PRAGMA synchronous = FULL")
            .execute(&mut *connection)
            .await;
        if restored.is_err() {
            // Never hand the store's own writes a connection that does not sync.
            connection.close_on_drop();
        }
        written.and(restored.map(drop))
    }

    async fn audit_batches_before(
        reader: &SqlitePool,
        query: &crate::AuditQuery,
        before: (i64, i64),
    ) -> StoreResult<Vec<crate::audit::StoredBatch>> {
        let page = sqlx::query(crate::audit::BATCHES_BEFORE)
            .bind(query.since_ms.unwrap_or(i64::MIN))
            .bind(before.0)
            .bind(before.1)
            .bind(crate::audit::BATCHES_PER_PAGE)
            .fetch_all(reader)
            .await?;
        page.iter()
            .map(crate::audit::StoredBatch::from_row)
            .collect()
    }

    async fn rewrite_audit_batch(
        writer: &SqlitePool,
        batch_id: i64,
        kept: crate::audit::TrimmedBatch,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE audit_batches SET first_ms = $2, event_count = $3, events = $4
             WHERE batch_id = $1",
        )
        .bind(batch_id)
        .bind(kept.first_ms)
        .bind(kept.event_count)
        .bind(kept.events)
        .execute(writer)
        .await
        .map(drop)
    }

    async fn maintain(&self) -> StoreResult<()> {
        // PASSIVE: copies what it can without waiting for, or blocking, the writer.
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&self.checkpointer)
            .await?;
        Ok(())
    }

    async fn close(&self) {
        self.checkpointer.close().await;
    }

    fn replay_journal_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    fn is_shared(&self) -> bool {
        false
    }
}

impl RowsAffected for SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        SqliteQueryResult::rows_affected(self)
    }
}

/// Writes `events` as rows of `audit_batches`, in one statement: the write lock is
/// held only while SQLite runs it, never across an `await` (a transaction of several
/// statements would hold it while the task waits to be polled again).
async fn write_audit_batches(
    connection: &mut sqlx::SqliteConnection,
    events: &[crate::AuditEvent],
) -> Result<(), sqlx::Error> {
    let batches = crate::audit::new_batches(events);
    let mut sql =
        String::from("INSERT INTO audit_batches (first_ms, last_ms, event_count, events) VALUES ");
    for i in 0..batches.len() {
        sql.push_str(if i == 0 {
            "(?, ?, ?, ?)"
        } else {
            ", (?, ?, ?, ?)"
        });
    }
    let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
    for batch in batches {
        insert = insert
            .bind(batch.first_ms)
            .bind(batch.last_ms)
            .bind(batch.event_count)
            .bind(batch.events);
    }
    insert.execute(connection).await.map(drop)
}

/// Puts the file in WAL mode unless it is there already. WAL is a property of the
/// file, so this is a change made once, when the file is new: asking for it on every
/// connection (as `SqliteConnectOptions::journal_mode` does) takes a lock that the
/// busy timeout does not wait for, and refuses an admin command that opens the store
/// while a server is writing to it with "database is locked".
async fn use_write_ahead_log(writer: &SqlitePool) -> StoreResult<()> {
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(writer)
        .await?;
    if !mode.eq_ignore_ascii_case("wal") {
        sqlx::query("PRAGMA journal_mode = WAL")
            .execute(writer)
            .await?;
    }
    Ok(())
}

/// Opens (creating if needed) `<dir>/jwtgrant.db` and migrates it.
pub(crate) async fn open_data_dir(
    dir: &Path,
    options: &OpenOptions,
) -> StoreResult<SqlStore<SqliteDialect>> {
    if !dir.as_os_str().is_empty() {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
        })?;
    }
    let file = SqliteConnectOptions::new().filename(dir.join("jwtgrant.db"));
    connect(file, Some(dir.to_path_buf()), options).await
}

/// Opens a `sqlite:` URL and migrates it.
pub(crate) async fn open_url(
    url: &str,
    options: &OpenOptions,
) -> StoreResult<SqlStore<SqliteDialect>> {
    let file =
        SqliteConnectOptions::from_str(url).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    connect(file, None, options).await
}

/// Each migration's SQL, in order.
const MIGRATIONS: [&str; crate::sql::MIGRATIONS.len()] = [
    include_str!("../migrations/sqlite/0001_registry.sql"),
    include_str!("../migrations/sqlite/0002_authorization.sql"),
    include_str!("../migrations/sqlite/0003_trusted_issuers.sql"),
    include_str!("../migrations/sqlite/0004_resources.sql"),
    include_str!("../migrations/sqlite/0005_openid.sql"),
    include_str!("../migrations/sqlite/0006_audit.sql"),
    include_str!("../migrations/sqlite/0007_audit_batches.sql"),
    include_str!("../migrations/sqlite/0008_shared_audit_batches.sql"),
    include_str!("../migrations/sqlite/0009_audit_lz4.sql"),
];

async fn connect(
    file: SqliteConnectOptions,
    data_dir: Option<PathBuf>,
    options: &OpenOptions,
) -> StoreResult<SqlStore<SqliteDialect>> {
    let file = file
        .create_if_missing(true)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
    let pool = |connections: u32, connect: SqliteConnectOptions| {
        SqlitePoolOptions::new()
            .max_connections(connections)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(connect)
    };
    // The writer never checkpoints: a checkpoint inside a commit would stall every
    // token request queued behind it. `maintain` checkpoints instead, from a
    // connection of its own, without blocking the writer.
    let writer = pool(1, file.clone().pragma("wal_autocheckpoint", "0")).await?;
    use_write_ahead_log(&writer).await?;
    migrate(&migrator(MIGRATIONS), &writer).await?;
    let checkpointer = pool(1, file.clone()).await?;
    let readers = options.max_connections.unwrap_or(4);
    let reader = pool(readers, file.read_only(true)).await?;
    Ok(SqlStore {
        writer,
        reader,
        dialect: SqliteDialect {
            checkpointer,
            data_dir,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::RecordRow as _;

    /// The audit's commit skips the fsync, and the store's own writes keep it.
    #[tokio::test]
    async fn the_writer_syncs_every_commit_again_after_an_audit_batch() {
        use crate::AuditStore as _;
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let store = open_data_dir(dir.path(), &OpenOptions::default())
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        let synchronous = || async {
            sqlx::query_scalar::<_, i64>("PRAGMA synchronous")
                .fetch_one(&store.writer)
                .await
                .unwrap_or_else(|e| unreachable!("{e}"))
        };
        assert_eq!(synchronous().await, 2, "FULL");
        let event = crate::AuditEvent {
            at_ms: 1,
            decision: "issued".into(),
            ..crate::AuditEvent::default()
        };
        store
            .record_audit_events(&[event])
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            synchronous().await,
            2,
            "FULL again after the audit's commit"
        );
    }

    /// Migration 7 moves the events 6 kept a row each into one batch, in their order,
    /// every field kept, and the view shows them as rows again.
    #[tokio::test]
    async fn audit_events_of_migration_six_become_a_batch_and_stay_listed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
        let file = SqliteConnectOptions::new()
            .filename(dir.path().join("old.db"))
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(file)
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        let run = |sql: &'static str| sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&pool);
        run(MIGRATIONS[5])
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        run("INSERT INTO audit_events (at_ms, instance, request_id, endpoint, grant_type,
                 client_id, subject, decision, rule, error)
             VALUES (20, 'h:1', 'r1', 'token', 'jwt-bearer', 'c1', 'quo\"te', 'issued', NULL, NULL),
                    (10, 'h:1', 'r2', 'token', NULL, 'c2', NULL, 'refused', 'jti_replayed', 'invalid_grant')")
        .await
        .unwrap_or_else(|e| unreachable!("{e}"));
        run(MIGRATIONS[6])
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));

        let batch = sqlx::query("SELECT first_ms, last_ms, event_count, events FROM audit_batches")
            .fetch_one(&pool)
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        let events = crate::audit::decode_batch(&batch.text("events").unwrap_or_default())
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            (
                batch.int("first_ms").ok(),
                batch.int("last_ms").ok(),
                batch.int("event_count").ok()
            ),
            (Some(10), Some(20), Some(2))
        );
        let first = crate::AuditEvent {
            at_ms: 20,
            instance: "h:1".into(),
            request_id: "r1".into(),
            endpoint: "token".into(),
            grant_type: Some("jwt-bearer".into()),
            client_id: Some("c1".into()),
            subject: Some("quo\"te".into()),
            decision: "issued".into(),
            ..crate::AuditEvent::default()
        };
        assert_eq!(events.first(), Some(&first));
        assert_eq!(
            events.get(1).map(|e| (
                e.request_id.as_str(),
                e.rule.as_deref(),
                e.grant_type.as_deref()
            )),
            Some(("r2", Some("jti_replayed"), None))
        );

        let by_view: Vec<(i64, String, Option<String>)> =
            sqlx::query_as("SELECT at_ms, request_id, rule FROM audit_events ORDER BY position")
                .fetch_all(&pool)
                .await
                .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            by_view,
            [
                (20, "r1".to_owned(), None),
                (10, "r2".to_owned(), Some("jti_replayed".to_owned()))
            ]
        );
    }
}
