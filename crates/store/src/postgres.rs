//! The PostgreSQL dialect: for several instances sharing one database. One pool
//! with a statement timeout, rows locked with `FOR UPDATE` where two instances
//! could race, the batched `jti` insert as arrays, the audit trail as batches that
//! name their clients, and versioned migrations that may be left to
//! `jwtgrant migrate`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgQueryResult, Postgres};

use crate::sql::{Dialect, RowsAffected, SqlStore, migrate, migrator};
use crate::{JtiOutcome, JtiRecord, OpenOptions, StoreError, StoreResult};

/// The outcomes of a batch whose every `jti` was fresh: each first copy is
/// recorded, a later copy of the same `jti` in the batch is a replay of it.
fn first_copies_recorded(batch: &[JtiRecord]) -> Vec<JtiOutcome> {
    let mut seen = std::collections::HashSet::with_capacity(batch.len());
    batch
        .iter()
        .map(|record| {
            if seen.insert((record.issuer.as_str(), record.jti.as_str())) {
                JtiOutcome::Recorded
            } else {
                JtiOutcome::Replayed
            }
        })
        .collect()
}

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
    ///
    /// A plain `INSERT` first, which fails whole if any `jti` has a row already; only
    /// then the `ON CONFLICT` statement, which takes over rows whose time has passed
    /// and leaves live ones alone. `ON CONFLICT` probes the unique index for every
    /// row before inserting it (speculative insertion) and so finds each row's place
    /// twice: with 18 random `jti`s per statement it cost PostgreSQL 35-41 us of CPU
    /// per row here against 25-33 us for the plain `INSERT`. Replays are rare, so
    /// the batch that holds one pays for two statements; a failed statement writes
    /// nothing (its rows are dead tuples for `VACUUM`).
    async fn insert_jtis(
        writer: &PgPool,
        batch: &[JtiRecord],
        now: i64,
    ) -> StoreResult<Vec<JtiOutcome>> {
        // In (issuer, jti) order, once each: two instances committing at once lock
        // the rows their batches share in the same order, so neither waits for the
        // other in a cycle (PostgreSQL would fail one batch, every grant in it, after
        // its one-second deadlock timeout). A `jti` replayed at two instances at
        // once is a case of that.
        let mut rows: Vec<&JtiRecord> = batch.iter().collect();
        rows.sort_by(|a, b| (&a.issuer, &a.jti).cmp(&(&b.issuer, &b.jti)));
        rows.dedup_by(|a, b| a.issuer == b.issuer && a.jti == b.jti);
        let issuers: Vec<&str> = rows.iter().map(|r| r.issuer.as_str()).collect();
        let jtis: Vec<&str> = rows.iter().map(|r| r.jti.as_str()).collect();
        let expiries: Vec<i64> = rows.iter().map(|r| r.remember_until).collect();
        let all_fresh = sqlx::query(
            "INSERT INTO used_jtis (issuer, jti, expires_at)
             SELECT issuer, jti, expires_at
             FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BIGINT[]) WITH ORDINALITY AS t(issuer, jti, expires_at, n)
             ORDER BY n",
        )
        .bind(&issuers)
        .bind(&jtis)
        .bind(&expiries)
        .execute(writer)
        .await;
        match all_fresh {
            Ok(_) => return Ok(first_copies_recorded(batch)),
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {}
            Err(error) => return Err(error.into()),
        }
        let written = sqlx::query(
            "INSERT INTO used_jtis (issuer, jti, expires_at)
             SELECT issuer, jti, expires_at
             FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BIGINT[]) WITH ORDINALITY AS t(issuer, jti, expires_at, n)
             ORDER BY n
             ON CONFLICT (issuer, jti) DO UPDATE SET expires_at = EXCLUDED.expires_at
             WHERE used_jtis.expires_at < $4
             RETURNING issuer, jti",
        )
        .bind(&issuers)
        .bind(&jtis)
        .bind(&expiries)
        .bind(now)
        .fetch_all(writer)
        .await?;
        crate::sql::jti_outcomes(batch, &written)
    }

    /// A row of `audit_batches` per (at most) 512 events, in one statement. A row
    /// per event, with its three index entries, cost the backend 11-12 us of CPU
    /// per event, a batch 6-7 us. A batch names its clients, for the GIN index that
    /// `audit list --client` reads.
    async fn insert_audit_events(
        writer: &PgPool,
        events: &[crate::AuditEvent],
    ) -> Result<(), sqlx::Error> {
        let batches = crate::audit::new_batches(events);
        let mut sql = String::from(
            "INSERT INTO audit_batches (first_ms, last_ms, event_count, client_ids, events) VALUES ",
        );
        for i in 0..batches.len() {
            let n = 5 * i;
            let _ = write!(
                sql,
                "{}(${}, ${}, ${}, ${}, ${})",
                if i == 0 { "" } else { ", " },
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5
            );
        }
        let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql));
        for batch in batches {
            insert = insert
                .bind(batch.first_ms)
                .bind(batch.last_ms)
                .bind(batch.event_count)
                .bind(batch.client_ids)
                .bind(batch.events);
        }
        insert.execute(writer).await.map(drop)
    }

    /// With a client filter, only the batches whose `client_ids` name it (a
    /// statement of its own, so that its plan can use the GIN index).
    async fn audit_batches_before(
        reader: &PgPool,
        query: &crate::AuditQuery,
        before: (i64, i64),
    ) -> StoreResult<Vec<crate::audit::StoredBatch>> {
        let sql = match query.client_id {
            None => crate::audit::BATCHES_BEFORE,
            Some(_) => {
                "SELECT batch_id, last_ms, events FROM audit_batches
                 WHERE last_ms >= $1 AND (last_ms, batch_id) < ($2, $3)
                   AND client_ids @> ARRAY[$5::TEXT]
                 ORDER BY last_ms DESC, batch_id DESC
                 LIMIT $4"
            }
        };
        let mut page = sqlx::query(sql)
            .bind(query.since_ms.unwrap_or(i64::MIN))
            .bind(before.0)
            .bind(before.1)
            .bind(crate::audit::BATCHES_PER_PAGE);
        if let Some(client_id) = &query.client_id {
            page = page.bind(client_id.as_str());
        }
        let page = page.fetch_all(reader).await?;
        page.iter()
            .map(crate::audit::StoredBatch::from_row)
            .collect()
    }

    /// The batch's client list is rewritten too: a client whose events all went is
    /// no longer named.
    async fn rewrite_audit_batch(
        writer: &PgPool,
        batch_id: i64,
        kept: crate::audit::TrimmedBatch,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE audit_batches
             SET first_ms = $2, event_count = $3, client_ids = $4, events = $5
             WHERE batch_id = $1",
        )
        .bind(batch_id)
        .bind(kept.first_ms)
        .bind(kept.event_count)
        .bind(kept.client_ids)
        .bind(kept.events)
        .execute(writer)
        .await
        .map(drop)
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
        include_str!("../migrations/postgres/0008_shared_audit_batches.sql"),
        include_str!("../migrations/postgres/0009_audit_lz4.sql"),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AuditEvent, AuditQuery, AuditStore as _};

    /// A schema of the test's own in `JWTGRANT_TEST_DATABASE_URL`, with no migration
    /// applied, and a connection whose `search_path` is it; `None` when the variable
    /// is unset.
    struct BareSchema {
        admin: PgPool,
        pool: PgPool,
        schema: String,
    }

    impl BareSchema {
        async fn create() -> Option<Self> {
            let Ok(url) = std::env::var("JWTGRANT_TEST_DATABASE_URL") else {
                eprintln!("JWTGRANT_TEST_DATABASE_URL unset: PostgreSQL not tested");
                return None;
            };
            let fail = |e: sqlx::Error| -> ! { unreachable!("{e}") };
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            let admin = PgPool::connect(&url).await.unwrap_or_else(|e| fail(e));
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&admin)
                .await
                .unwrap_or_else(|e| fail(e));
            let connect: PgConnectOptions = url.parse().unwrap_or_else(|e| fail(e));
            let pool = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(connect.options([("search_path", schema.as_str())]))
                .await
                .unwrap_or_else(|e| fail(e));
            Some(BareSchema {
                admin,
                pool,
                schema,
            })
        }

        /// Runs `sql` (one statement or several) in the schema.
        async fn run(&self, sql: &str) {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(&self.pool)
                .await
                .unwrap_or_else(|e| unreachable!("{e}"));
        }

        /// Applies the migrations at `positions` in [`postgres_migrator`]'s order
        /// (0 is migration 1), as `jwtgrant migrate` would one after another.
        async fn migrate(&self, positions: impl std::ops::RangeBounds<usize>) {
            let migrator = postgres_migrator();
            let migrations: Vec<_> = migrator.iter().collect();
            let range = (
                positions.start_bound().cloned(),
                positions.end_bound().cloned(),
            );
            for migration in migrations.get(range).unwrap_or_default() {
                self.run(migration.sql.as_str()).await;
            }
        }

        /// Closes the connection and drops the schema.
        async fn remove(self) {
            self.pool.close().await;
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP SCHEMA {} CASCADE",
                self.schema
            )))
            .execute(&self.admin)
            .await;
        }
    }

    /// Migration 8 moves the events 6 kept a row each into batches of 512, in their
    /// order, every field kept, each naming its clients; the view shows them as rows
    /// again, `audit list --client` finds them through the batches that name it, the
    /// sweep trims them, and an older instance's insert still lands.
    #[tokio::test]
    async fn audit_events_of_migration_six_become_batches_and_stay_listed() {
        let Some(bare) = BareSchema::create().await else {
            return;
        };
        let fail = |e: sqlx::Error| -> ! { unreachable!("{e}") };
        let pool = bare.pool.clone();
        bare.migrate(0..6).await;
        // 600 events: 599 of client c1 at 1000.., and the 301st of c2, a refusal.
        bare.run(
            "INSERT INTO audit_events (at_ms, instance, request_id, endpoint, grant_type,
                 client_id, subject, decision, rule, error)
             SELECT 1000 + g, 'h:1', 'r' || g, 'token', 'jwt-bearer',
                    CASE WHEN g = 300 THEN 'c2' ELSE 'c1' END, 'quo\"te',
                    CASE WHEN g = 300 THEN 'refused' ELSE 'issued' END,
                    CASE WHEN g = 300 THEN 'jti_replayed' END,
                    CASE WHEN g = 300 THEN 'invalid_grant' END
             FROM generate_series(0, 599) AS g",
        )
        .await;
        bare.migrate(6..).await;

        let batches: Vec<(i64, i64, i64, Vec<String>)> = sqlx::query_as(
            "SELECT first_ms, last_ms, event_count, client_ids FROM audit_batches
             ORDER BY batch_id",
        )
        .fetch_all(&pool)
        .await
        .unwrap_or_else(|e| fail(e));
        assert_eq!(
            batches,
            [
                (1000, 1511, 512, vec!["c1".to_owned(), "c2".to_owned()]),
                (1512, 1599, 88, vec!["c1".to_owned()]),
            ]
        );
        let by_view: Vec<(i64, String, Option<String>, Option<String>)> = sqlx::query_as(
            "SELECT at_ms, request_id, rule, subject FROM audit_events
             WHERE client_id = 'c2' OR at_ms = 1599",
        )
        .fetch_all(&pool)
        .await
        .unwrap_or_else(|e| fail(e));
        assert_eq!(
            by_view,
            [
                (
                    1300,
                    "r300".to_owned(),
                    Some("jti_replayed".to_owned()),
                    Some("quo\"te".to_owned())
                ),
                (1599, "r599".to_owned(), None, Some("quo\"te".to_owned())),
            ]
        );

        let store = SqlStore {
            writer: pool.clone(),
            reader: pool.clone(),
            dialect: PostgresDialect,
        };
        let query = |client: &str, limit| AuditQuery {
            client_id: Some(client.to_owned()),
            limit,
            ..AuditQuery::default()
        };
        let c2 = store
            .audit_events(&query("c2", 10))
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        let expected = AuditEvent {
            at_ms: 1300,
            instance: "h:1".into(),
            request_id: "r300".into(),
            endpoint: "token".into(),
            grant_type: Some("jwt-bearer".into()),
            client_id: Some("c2".into()),
            subject: Some("quo\"te".into()),
            decision: "refused".into(),
            rule: Some("jti_replayed".into()),
            error: Some("invalid_grant".into()),
            ..AuditEvent::default()
        };
        assert_eq!(c2, [expected]);
        let c1 = store
            .audit_events(&query("c1", 3))
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        let times: Vec<i64> = c1.iter().map(|e| e.at_ms).collect();
        assert_eq!(times, [1599, 1598, 1597]);

        // The sweep trims the first batch to its events from 1400 on: c2's event goes,
        // and so does the batch's claim to name c2.
        assert_eq!(
            store
                .sweep_audit_events(1400)
                .await
                .unwrap_or_else(|e| unreachable!("{e}")),
            400
        );
        let first: (i64, i64, Vec<String>) = sqlx::query_as(
            "SELECT first_ms, event_count, client_ids FROM audit_batches ORDER BY batch_id LIMIT 1",
        )
        .fetch_one(&pool)
        .await
        .unwrap_or_else(|e| fail(e));
        assert_eq!(first, (1400, 112, vec!["c1".to_owned()]));
        assert!(
            store
                .audit_events(&query("c2", 10))
                .await
                .unwrap_or_else(|e| unreachable!("{e}"))
                .is_empty()
        );

        // An instance of the version before, in a rolling upgrade: its row insert
        // lands as a batch of one, and its listing (by `event_id`) still reads.
        sqlx::query(
            "INSERT INTO audit_events (at_ms, instance, request_id, endpoint, grant_type,
                 client_id, issuer, subject, scopes, decision, rule, error, key_id, token_id,
                 assertion_jti, client_addr)
             SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[],
                 $5::TEXT[], $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::TEXT[],
                 $11::TEXT[], $12::TEXT[], $13::TEXT[], $14::TEXT[], $15::TEXT[], $16::TEXT[])",
        )
        .bind([2000_i64])
        .bind(["h:old"])
        .bind(["r-old"])
        .bind(["token"])
        .bind([None::<&str>])
        .bind([Some("c2")])
        .bind([None::<&str>; 1])
        .bind([None::<&str>; 1])
        .bind([None::<&str>; 1])
        .bind(["issued"])
        .bind([None::<&str>; 1])
        .bind([None::<&str>; 1])
        .bind([None::<&str>; 1])
        .bind([None::<&str>; 1])
        .bind([None::<&str>; 1])
        .bind([Some("::1")])
        .execute(&pool)
        .await
        .unwrap_or_else(|e| fail(e));
        let from_old = store
            .audit_events(&query("c2", 10))
            .await
            .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            from_old
                .iter()
                .map(|e| (e.at_ms, e.instance.as_str(), e.client_addr.as_deref()))
                .collect::<Vec<_>>(),
            [(2000, "h:old", Some("::1"))]
        );
        let old_listing: Vec<(i64, String)> = sqlx::query_as(
            "SELECT at_ms, request_id FROM audit_events ORDER BY at_ms DESC, event_id DESC LIMIT 2",
        )
        .fetch_all(&pool)
        .await
        .unwrap_or_else(|e| fail(e));
        assert_eq!(
            old_listing,
            [(2000, "r-old".to_owned()), (1599, "r599".to_owned())]
        );

        bare.remove().await;
    }

    /// Migration 9: a batch written afterwards is compressed with lz4 where the
    /// server has it, and one written before (pglz) still reads as it was.
    #[tokio::test]
    async fn audit_batches_are_compressed_with_lz4_where_the_server_has_it() {
        let Some(bare) = BareSchema::create().await else {
            return;
        };
        let fail = |e: sqlx::Error| -> ! { unreachable!("{e}") };
        let pool = bare.pool.clone();
        // A batch's text: far past the 2 KB at which PostgreSQL compresses a value.
        let insert = |events: &str| {
            format!(
                "INSERT INTO audit_batches (first_ms, last_ms, event_count, client_ids, events)
                 SELECT 1, 2, 300, ARRAY['c1'], string_agg('[\"{events}\",' || g || ']', ',')
                 FROM generate_series(1, 300) AS g"
            )
        };
        bare.migrate(0..8).await;
        bare.run(&insert("before")).await;
        bare.migrate(8..).await;
        bare.run(&insert("after")).await;

        let has_lz4: bool = sqlx::query_scalar(
            "SELECT 'lz4' = ANY (enumvals) FROM pg_settings WHERE name = 'default_toast_compression'",
        )
        .fetch_one(&pool)
        .await
        .unwrap_or_else(|e| fail(e));
        let stored: Vec<(String, i64, i32)> = sqlx::query_as(
            "SELECT pg_column_compression(events)::TEXT, octet_length(events)::BIGINT,
                    pg_column_size(events)
             FROM audit_batches ORDER BY batch_id",
        )
        .fetch_all(&pool)
        .await
        .unwrap_or_else(|e| fail(e));
        let methods: Vec<&str> = stored.iter().map(|(m, _, _)| m.as_str()).collect();
        assert_eq!(
            methods,
            ["pglz", if has_lz4 { "lz4" } else { "pglz" }],
            "{stored:?}"
        );
        assert!(
            stored
                .iter()
                .all(|(_, text, size)| i64::from(*size) < *text / 2),
            "compressed: {stored:?}"
        );
        let first: String = sqlx::query_scalar(
            "SELECT left(events, 13) FROM audit_batches ORDER BY batch_id LIMIT 1",
        )
        .fetch_one(&pool)
        .await
        .unwrap_or_else(|e| fail(e));
        assert_eq!(first, "[\"before\",1],");
        bare.remove().await;
    }
}
