//! The PostgreSQL dialect: for several instances sharing one database. One pool
//! with a statement timeout, rows locked with `FOR UPDATE` where two instances
//! could race, the batched `jti` insert as arrays, and versioned migrations that
//! may be left to `jwtgrant migrate`.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgQueryResult, PgRow, Postgres};

use crate::sql::{Dialect, RowsAffected, SqlStore, migrate, migrator};
use crate::{JtiRecord, OpenOptions, StoreError, StoreResult};

/// What PostgreSQL does its own way.
#[derive(Debug)]
pub(crate) struct PostgresDialect;

impl Dialect for PostgresDialect {
    type Db = Postgres;

    const BEGIN: &'static str = "BEGIN";
    const ROW_LOCK: &'static str = " FOR UPDATE";
    /// One statement for any batch: its rows travel as three arrays.
    const JTI_BATCH: usize = usize::MAX;

    /// PostgreSQL refuses to touch one row twice in a statement, so copies within
    /// the batch are settled here: only the first copy is sent.
    async fn insert_jtis(
        writer: &PgPool,
        batch: &[JtiRecord],
        now: i64,
    ) -> Result<Vec<PgRow>, sqlx::Error> {
        let mut seen: HashSet<(&str, &str)> = HashSet::with_capacity(batch.len());
        let mut issuers = Vec::with_capacity(batch.len());
        let mut jtis = Vec::with_capacity(batch.len());
        let mut expiries = Vec::with_capacity(batch.len());
        for record in batch {
            if seen.insert((&record.issuer, &record.jti)) {
                issuers.push(record.issuer.as_str());
                jtis.push(record.jti.as_str());
                expiries.push(record.remember_until);
            }
        }
        sqlx::query(
            "INSERT INTO used_jtis (issuer, jti, expires_at)
             SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BIGINT[])
             ON CONFLICT (issuer, jti) DO UPDATE SET expires_at = EXCLUDED.expires_at
             WHERE used_jtis.expires_at < $4
             RETURNING issuer, jti",
        )
        .bind(&issuers)
        .bind(&jtis)
        .bind(&expiries)
        .bind(now)
        .fetch_all(writer)
        .await
    }

    /// One statement for the whole batch: each column as an array, unnested.
    async fn insert_audit_events(
        writer: &PgPool,
        events: &[crate::AuditEvent],
    ) -> Result<(), sqlx::Error> {
        let text =
            |get: fn(&crate::AuditEvent) -> &str| -> Vec<&str> { events.iter().map(get).collect() };
        let optional = |get: fn(&crate::AuditEvent) -> Option<&str>| -> Vec<Option<&str>> {
            events.iter().map(get).collect()
        };
        let at_ms: Vec<i64> = events.iter().map(|e| e.at_ms).collect();
        sqlx::query(sqlx::AssertSqlSafe(crate::audit::POSTGRES_INSERT))
            .bind(&at_ms)
            .bind(text(|e| &e.instance))
            .bind(text(|e| &e.request_id))
            .bind(text(|e| &e.endpoint))
            .bind(optional(|e| e.grant_type.as_deref()))
            .bind(optional(|e| e.client_id.as_deref()))
            .bind(optional(|e| e.issuer.as_deref()))
            .bind(optional(|e| e.subject.as_deref()))
            .bind(optional(|e| e.scopes.as_deref()))
            .bind(text(|e| &e.decision))
            .bind(optional(|e| e.rule.as_deref()))
            .bind(optional(|e| e.error.as_deref()))
            .bind(optional(|e| e.key_id.as_deref()))
            .bind(optional(|e| e.token_id.as_deref()))
            .bind(optional(|e| e.assertion_jti.as_deref()))
            .bind(optional(|e| e.client_addr.as_deref()))
            .execute(writer)
            .await?;
        Ok(())
    }

    async fn audit_events(
        reader: &PgPool,
        query: &crate::AuditQuery,
    ) -> StoreResult<Vec<crate::AuditEvent>> {
        sqlx::query(sqlx::AssertSqlSafe(crate::audit::postgres_select()))
            .bind(query.since_ms)
            .bind(query.client_id.as_deref())
            .bind(query.issuer.as_deref())
            .bind(query.subject.as_deref())
            .bind(query.decision.as_deref())
            .bind(query.rule.as_deref())
            .bind(query.key_id.as_deref())
            .bind(i64::from(query.limit))
            .fetch_all(reader)
            .await?
            .iter()
            .map(crate::audit::event_from_row)
            .collect()
    }

    async fn sweep_audit_events(writer: &PgPool, before_ms: i64) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM audit_events WHERE at_ms < $1")
            .bind(before_ms)
            .execute(writer)
            .await?;
        Ok(done.rows_affected())
    }

    async fn maintain(&self) -> StoreResult<()> {
        Ok(())
    }

    async fn close(&self) {}

    fn replay_journal_dir(&self) -> Option<&Path> {
        None
    }

    fn is_shared(&self) -> bool {
        true
    }
}

impl RowsAffected for PgQueryResult {
    fn rows_affected(&self) -> u64 {
        PgQueryResult::rows_affected(self)
    }
}

fn postgres_migrator() -> Migrator {
    migrator([
        include_str!("../migrations/postgres/0001_registry.sql"),
        include_str!("../migrations/postgres/0002_authorization.sql"),
        include_str!("../migrations/postgres/0003_trusted_issuers.sql"),
        include_str!("../migrations/postgres/0004_resources.sql"),
        include_str!("../migrations/postgres/0005_openid.sql"),
        include_str!("../migrations/postgres/0006_audit.sql"),
        include_str!("../migrations/postgres/0007_audit_batches.sql"),
    ])
}

/// Connects to `url`, and migrates unless told not to.
pub(crate) async fn open(
    url: &str,
    options: &OpenOptions,
) -> StoreResult<SqlStore<PostgresDialect>> {
    let mut connect: PgConnectOptions = url
        .parse()
        .map_err(|e: sqlx::Error| StoreError::Unavailable(format!("bad database URL: {e}")))?;
    if let Some(schema) = &options.schema {
        if !schema
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(StoreError::Unavailable(format!("bad schema name {schema}")));
        }
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(connect.clone())
            .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "CREATE SCHEMA IF NOT EXISTS {schema}"
        )))
        .execute(&admin)
        .await?;
        admin.close().await;
        connect = connect.options([("search_path", schema.as_str())]);
    }
    // A database that stops answering (rather than refusing) must not hold token
    // requests: statements give up after 5 s, and the request gets a 503.
    let connect = connect.options([("statement_timeout", "5s")]);
    let max_connections = options.max_connections.unwrap_or(16);
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy_with(connect);
    open_connections_at_once(&pool, max_connections.min(3)).await?;
    if options.migrate {
        migrate(&postgres_migrator(), &pool).await?;
    } else {
        check_migrated(&pool).await?;
    }
    Ok(SqlStore {
        writer: pool.clone(),
        reader: pool,
        dialect: PostgresDialect,
    })
}

/// Opens `count` (1 to 3) connections at once and waits until they are idle in the pool.
///
/// sqlx gives a connection back to its pool from a task of its own, after pinging
/// it, so a query that follows another at once finds none idle and opens one more,
/// and the start runs some of its queries two at a time. With one connection open,
/// the start paid for one or two more handshakes (about 90 ms each with TLS) one
/// after the other; opened side by side they cost one.
async fn open_connections_at_once(pool: &PgPool, count: u32) -> StoreResult<()> {
    match count {
        0 | 1 => drop(pool.acquire().await?),
        2 => drop(tokio::try_join!(pool.acquire(), pool.acquire())?),
        _ => drop(tokio::try_join!(
            pool.acquire(),
            pool.acquire(),
            pool.acquire()
        )?),
    }
    // They go back to the pool in tasks of their own, after a ping each: wait for
    // that (a round trip), but never long.
    let deadline = tokio::time::Instant::now() + Duration::from_millis(250);
    while pool.num_idle() < count as usize && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

/// With migrations off, refuses a database that lacks some of them, naming the
/// fix, rather than failing later on a missing table.
async fn check_migrated(pool: &PgPool) -> StoreResult<()> {
    let recorded: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(pool)
        .await?;
    let applied: Vec<i64> = if recorded {
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
            .fetch_all(pool)
            .await?
    } else {
        Vec::new()
    };
    let missing: Vec<String> = postgres_migrator()
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .map(|m| format!("{} {}", m.version, m.description))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(StoreError::Unavailable(format!(
        "the database is not migrated (not applied: {}): run `jwtgrant migrate` first, \
         or start without --no-migrate",
        missing.join(", ")
    )))
}
