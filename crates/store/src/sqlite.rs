//! The SQLite dialect: one file in WAL mode, a single writer connection, a small
//! pool of read-only readers and a checkpointer beside them, write transactions
//! that take the lock at once, and migrations embedded in the binary, run on open.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    Sqlite, SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteQueryResult, SqliteRow,
    SqliteSynchronous,
};

use crate::sql::{Dialect, RowsAffected, SqlStore, migrate, migrator};
use crate::{JtiRecord, OpenOptions, StoreError, StoreResult};

/// Audit events one insert statement takes: 16 parameters each, 1,024 in all, far
/// below SQLite's limit (the same statement for every full chunk, prepared once).
const AUDIT_ROWS_PER_INSERT: usize = 64;

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
    ) -> Result<Vec<SqliteRow>, sqlx::Error> {
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
        query.bind(now).fetch_all(writer).await
    }

    /// Multi-row inserts of [`AUDIT_ROWS_PER_INSERT`] events each, in one
    /// transaction: a statement per event was a round trip to sqlx's SQLite thread
    /// each, and a batch bound as JSON was parsed again for every column.
    async fn insert_audit_events(
        writer: &SqlitePool,
        events: &[crate::AuditEvent],
    ) -> Result<(), sqlx::Error> {
        let mut tx = writer.begin_with(Self::BEGIN).await?;
        for chunk in events.chunks(AUDIT_ROWS_PER_INSERT) {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(crate::audit::sqlite_insert(
                chunk.len(),
            )));
            for event in chunk {
                query = query
                    .bind(event.at_ms)
                    .bind(event.instance.as_str())
                    .bind(event.request_id.as_str())
                    .bind(event.endpoint.as_str())
                    .bind(event.grant_type.as_deref())
                    .bind(event.client_id.as_deref())
                    .bind(event.issuer.as_deref())
                    .bind(event.subject.as_deref())
                    .bind(event.scopes.as_deref())
                    .bind(event.decision.as_str())
                    .bind(event.rule.as_deref())
                    .bind(event.error.as_deref())
                    .bind(event.key_id.as_deref())
                    .bind(event.token_id.as_deref())
                    .bind(event.assertion_jti.as_deref())
                    .bind(event.client_addr.as_deref());
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await
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
    migrate(
        &migrator([
            include_str!("../migrations/sqlite/0001_registry.sql"),
            include_str!("../migrations/sqlite/0002_authorization.sql"),
            include_str!("../migrations/sqlite/0003_trusted_issuers.sql"),
            include_str!("../migrations/sqlite/0004_resources.sql"),
            include_str!("../migrations/sqlite/0005_openid.sql"),
            include_str!("../migrations/sqlite/0006_audit.sql"),
        ]),
        &writer,
    )
    .await?;
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
