//! The one SQL body of the store, over either database: [`SqlStore`] writes every
//! [`Store`] method once, in SQL both SQLite and PostgreSQL accept (`$n`
//! placeholders, `TRUE`/`FALSE`, `ON CONFLICT`), and leaves what really differs
//! (pools, how a write transaction locks, the batched `jti` insert, housekeeping)
//! to a [`Dialect`].

use std::collections::HashSet;
use std::future::Future;
use std::path::Path;

use async_trait::async_trait;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Database, Encode, Executor, IntoArguments, Pool, SqlStr, Type};

use crate::rows::{
    RecordRow, account_from_row, consent_from_row, integration_from_row, json_list, jti_from_row,
    key_from_row, require_changed, signing_key_from_row, to_json, user_from_row,
};
use crate::{
    AccountRecord, ConsentRecord, IntegrationKeyRecord, IntegrationRecord, IntegrationUpdate,
    JtiOutcome, JtiRecord, NewIntegration, SigningKeyRecord, Store, StoreError, StoreResult,
    UserRecord,
};

/// What one database does its own way; everything else is [`SqlStore`]'s.
pub(crate) trait Dialect: Send + Sync + 'static {
    /// The sqlx driver: its rows read through [`RecordRow`], its statements tell
    /// how many rows they changed.
    type Db: Database<Row: RecordRow, Arguments: IntoArguments<Self::Db>, QueryResult: RowsAffected>;

    /// The statement that opens a write transaction (SQLite takes the write lock at
    /// once, so that two writers never deadlock on an upgrade).
    const BEGIN: &'static str;
    /// What a `SELECT` inside a write transaction ends with to lock the rows it read
    /// until the commit (empty where the transaction holds the lock already).
    const ROW_LOCK: &'static str;
    /// The most `jti`s [`Dialect::insert_jtis`] takes at once.
    const JTI_BATCH: usize;

    /// Records a batch of at most [`Dialect::JTI_BATCH`] `jti`s in one transaction:
    /// fresh ones, and those taking over a row whose time has passed by `now`. One
    /// outcome per record, in order, as [`crate::Store::record_jtis`] answers.
    fn insert_jtis(
        writer: &Pool<Self::Db>,
        batch: &[JtiRecord],
        now: i64,
    ) -> impl Future<Output = StoreResult<Vec<JtiOutcome>>> + Send;
    /// Writes a batch of audit events in one transaction, in the statements this
    /// database runs fastest (see [`crate::AuditStore::record_audit_events`]).
    fn insert_audit_events(
        writer: &Pool<Self::Db>,
        events: &[crate::AuditEvent],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    /// A page of [`crate::audit::BATCHES_PER_PAGE`] batches that may hold events
    /// `query` selects, newest first by `(last_ms, batch_id)`, from those before
    /// `before` (see [`crate::audit::newest_in_batches`]).
    fn audit_batches_before(
        reader: &Pool<Self::Db>,
        query: &crate::AuditQuery,
        before: (i64, i64),
    ) -> impl Future<Output = StoreResult<Vec<crate::audit::StoredBatch>>> + Send;
    /// Replaces batch `batch_id` with what the retention sweep kept of it.
    fn rewrite_audit_batch(
        writer: &Pool<Self::Db>,
        batch_id: i64,
        kept: crate::audit::TrimmedBatch,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    /// Housekeeping off the write path (see [`Store::maintain`]).
    fn maintain(&self) -> impl Future<Output = StoreResult<()>> + Send;
    /// Closes what the dialect holds beside the two pools.
    fn close(&self) -> impl Future<Output = ()> + Send;
    /// See [`Store::replay_journal_dir`].
    fn replay_journal_dir(&self) -> Option<&Path>;
    /// See [`Store::is_shared`].
    fn is_shared(&self) -> bool;
}

/// How many rows a statement changed (each driver has its own result type).
pub(crate) trait RowsAffected {
    fn rows_affected(&self) -> u64;
}

/// The store on a SQL database, as its dialect connected it.
#[derive(Debug)]
pub(crate) struct SqlStore<D: Dialect> {
    /// Where every write goes (SQLite: a single connection, so writers queue here
    /// rather than retry on a busy file).
    pub(crate) writer: Pool<D::Db>,
    /// Where reads go (SQLite: read-only connections beside the writer; PostgreSQL:
    /// the writer's pool).
    pub(crate) reader: Pool<D::Db>,
    /// What the database does its own way.
    pub(crate) dialect: D,
}

/// What each migration does, in order; each database's folder has one file for each.
pub(crate) const MIGRATIONS: [&str; 9] = [
    "registry",
    "authorization",
    "trusted issuers",
    "resources",
    "openid",
    "audit",
    "audit batches",
    "shared audit batches",
    "audit lz4",
];

/// The migrations of one database's folder, in order (the same ones on each).
pub(crate) fn migrator(sql: [&'static str; MIGRATIONS.len()]) -> Migrator {
    let migration = |version, description: &str, sql| {
        let sql = SqlStr::from_static(sql);
        Migration::new(
            version,
            description.to_owned().into(),
            MigrationType::Simple,
            sql,
            false,
        )
    };
    Migrator::with_migrations(
        (1..)
            .zip(MIGRATIONS)
            .zip(sql)
            .map(|((version, description), sql)| migration(version, description, sql))
            .collect(),
    )
}

/// Runs the migrations not yet applied.
pub(crate) async fn migrate<DB: Database>(migrator: &Migrator, pool: &Pool<DB>) -> StoreResult<()>
where
    DB::Connection: sqlx::migrate::Migrate,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
{
    migrator
        .run(pool)
        .await
        .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))
}

impl<D: Dialect> SqlStore<D>
where
    for<'c> &'c mut <D::Db as Database>::Connection: Executor<'c, Database = D::Db>,
    for<'q> &'q str: Encode<'q, D::Db> + Type<D::Db>,
{
    async fn integration_keys(
        &self,
        integration_key: &str,
    ) -> StoreResult<Vec<IntegrationKeyRecord>> {
        sqlx::query(
            "SELECT kid, public_jwk, active, created_at FROM integration_keys
             WHERE integration_key = $1 ORDER BY created_at, kid",
        )
        .bind(integration_key)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(key_from_row)
        .collect()
    }
}

/// Of a batch, which records were written: each pair the database returned goes to
/// the first record that carries it; the rest are replays.
/// Whether a key a client sent can name a row at all: no row holds a NUL (PostgreSQL
/// text cannot), so a lookup of one is "not found" on both stores, never a store
/// error (which would answer 503 to anyone who sends `%00`).
pub(crate) fn storable_key(key: &str) -> bool {
    !key.contains('\0')
}

pub(crate) fn jti_outcomes(
    batch: &[JtiRecord],
    written: &[impl RecordRow],
) -> StoreResult<Vec<JtiOutcome>> {
    let mut recorded: HashSet<(String, String)> = HashSet::with_capacity(written.len());
    for row in written {
        recorded.insert((row.text("issuer")?, row.text("jti")?));
    }
    Ok(batch
        .iter()
        .map(|record| {
            if recorded.remove(&(record.issuer.clone(), record.jti.clone())) {
                JtiOutcome::Recorded
            } else {
                JtiOutcome::Replayed
            }
        })
        .collect())
}

/// Maps a unique violation to `conflict`'s message, leaving other errors as they are.
fn conflict_as(conflict: impl FnOnce() -> String) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |error| match StoreError::from(error) {
        StoreError::Conflict(_) => StoreError::Conflict(conflict()),
        other => other,
    }
}

// The bounds below say the driver executes on its connections and encodes each
// type the SQL binds. Rust does not carry them over from `Dialect` (they bound
// other types than its own), so each impl names those it uses; both drivers meet
// them all.
#[async_trait]
impl<D: Dialect> Store for SqlStore<D>
where
    for<'c> &'c mut <D::Db as Database>::Connection: Executor<'c, Database = D::Db>,
    for<'q> &'q str: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> Option<&'q str>: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> Option<i64>: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> &'q [u8]: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> String: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> i64: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> bool: Encode<'q, D::Db> + Type<D::Db>,
{
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn registry_version(&self) -> StoreResult<i64> {
        let row = sqlx::query("SELECT version FROM registry_version WHERE id = 1")
            .fetch_one(&self.reader)
            .await?;
        Ok(row.int("version")?)
    }

    async fn create_integration(&self, new: NewIntegration) -> StoreResult<IntegrationRecord> {
        sqlx::query(
            "INSERT INTO integrations (integration_key, name, active, allow_application_tokens, require_jti, scopes, redirect_uris, created_at, resources, default_scopes)
             VALUES ($1, $2, TRUE, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(new.integration_key.as_str())
        .bind(new.name.as_str())
        .bind(new.allow_application_tokens)
        .bind(new.require_jti)
        .bind(to_json(&new.scopes))
        .bind(to_json(&new.redirect_uris))
        .bind(new.created_at)
        .bind(to_json(&new.resources))
        .bind(to_json(&new.default_scopes))
        .execute(&self.writer)
        .await?;
        self.integration(&new.integration_key)
            .await?
            .ok_or(StoreError::NotFound("integration"))
    }

    async fn update_integration(
        &self,
        integration_key: &str,
        update: IntegrationUpdate,
    ) -> StoreResult<IntegrationRecord> {
        let json = |list: &Option<Vec<String>>| list.as_ref().map(|l| to_json(l));
        let done = sqlx::query(
            "UPDATE integrations SET scopes = COALESCE($1, scopes), redirect_uris = COALESCE($2, redirect_uris),
                 resources = COALESCE($3, resources), default_scopes = COALESCE($4, default_scopes)
             WHERE integration_key = $5",
        )
        .bind(json(&update.scopes).as_deref())
        .bind(json(&update.redirect_uris).as_deref())
        .bind(json(&update.resources).as_deref())
        .bind(json(&update.default_scopes).as_deref())
        .bind(integration_key)
        .execute(&self.writer)
        .await?;
        require_changed(done.rows_affected(), "integration")?;
        self.integration(integration_key)
            .await?
            .ok_or(StoreError::NotFound("integration"))
    }

    async fn integration(&self, integration_key: &str) -> StoreResult<Option<IntegrationRecord>> {
        if !storable_key(integration_key) {
            return Ok(None);
        }
        let Some(row) = sqlx::query(
            "SELECT integration_key, name, active, allow_application_tokens, require_jti, scopes, redirect_uris, resources, default_scopes, client_secret_hash, created_at
             FROM integrations WHERE integration_key = $1",
        )
            .bind(integration_key)
            .fetch_optional(&self.reader)
            .await?
        else {
            return Ok(None);
        };
        let mut record = integration_from_row(&row)?;
        record.keys = self.integration_keys(integration_key).await?;
        Ok(Some(record))
    }

    async fn list_integrations(&self) -> StoreResult<Vec<IntegrationRecord>> {
        let rows = sqlx::query(
            "SELECT integration_key, name, active, allow_application_tokens, require_jti, scopes, redirect_uris, resources, default_scopes, client_secret_hash, created_at
             FROM integrations ORDER BY created_at, integration_key",
        )
            .fetch_all(&self.reader)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut record = integration_from_row(row)?;
            record.keys = self.integration_keys(&record.integration_key).await?;
            out.push(record);
        }
        Ok(out)
    }

    async fn set_integration_active(&self, integration_key: &str, active: bool) -> StoreResult<()> {
        let done = sqlx::query("UPDATE integrations SET active = $1 WHERE integration_key = $2")
            .bind(active)
            .bind(integration_key)
            .execute(&self.writer)
            .await?;
        require_changed(done.rows_affected(), "integration")
    }

    async fn add_integration_key(
        &self,
        integration_key: &str,
        key: IntegrationKeyRecord,
    ) -> StoreResult<()> {
        let result = sqlx::query(
            "INSERT INTO integration_keys (integration_key, kid, public_jwk, active, created_at)
             SELECT integration_key, $1, $2, $3, $4 FROM integrations WHERE integration_key = $5",
        )
        .bind(key.kid.as_str())
        .bind(key.public_jwk.as_str())
        .bind(key.active)
        .bind(key.created_at)
        .bind(integration_key)
        .execute(&self.writer)
        .await
        .map_err(conflict_as(|| {
            format!("the integration already has a key with kid '{}'", key.kid)
        }))?;
        require_changed(result.rows_affected(), "integration")
    }

    async fn set_integration_key_active(
        &self,
        integration_key: &str,
        kid: &str,
        active: bool,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE integration_keys SET active = $1 WHERE integration_key = $2 AND kid = $3",
        )
        .bind(active)
        .bind(integration_key)
        .bind(kid)
        .execute(&self.writer)
        .await?;
        require_changed(done.rows_affected(), "integration key")
    }

    async fn remove_integration_key(&self, integration_key: &str, kid: &str) -> StoreResult<()> {
        let done =
            sqlx::query("DELETE FROM integration_keys WHERE integration_key = $1 AND kid = $2")
                .bind(integration_key)
                .bind(kid)
                .execute(&self.writer)
                .await?;
        require_changed(done.rows_affected(), "integration key")
    }

    async fn create_user(&self, user: UserRecord) -> StoreResult<UserRecord> {
        sqlx::query(
            "INSERT INTO users (user_id, email, name, given_name, family_name, active, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(user.user_id.as_str())
        .bind(user.email.as_str())
        .bind(user.name.as_str())
        .bind(user.given_name.as_str())
        .bind(user.family_name.as_str())
        .bind(user.active)
        .bind(user.created_at)
        .execute(&self.writer)
        .await
        .map_err(conflict_as(|| {
            format!("a user with email '{}' already exists", user.email)
        }))?;
        Ok(user)
    }

    async fn user(&self, user_id: &str) -> StoreResult<Option<UserRecord>> {
        if !storable_key(user_id) {
            return Ok(None);
        }
        sqlx::query("SELECT user_id, email, name, given_name, family_name, active, created_at FROM users WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(user_from_row)
            .transpose()
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        sqlx::query("SELECT user_id, email, name, given_name, family_name, active, created_at FROM users ORDER BY created_at, email")
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(user_from_row)
            .collect()
    }

    async fn set_user_active(&self, user_id: &str, active: bool) -> StoreResult<()> {
        let done = sqlx::query("UPDATE users SET active = $1 WHERE user_id = $2")
            .bind(active)
            .bind(user_id)
            .execute(&self.writer)
            .await?;
        require_changed(done.rows_affected(), "user")
    }

    async fn create_account(&self, account: AccountRecord) -> StoreResult<AccountRecord> {
        let mut tx = self.writer.begin_with(D::BEGIN).await?;
        // Lock the owner so two new default accounts cannot both win.
        let owner = format!(
            "SELECT user_id FROM users WHERE user_id = $1{}",
            D::ROW_LOCK
        );
        let owner = sqlx::query(sqlx::AssertSqlSafe(owner))
            .bind(account.user_id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if owner.is_none() {
            return Err(StoreError::NotFound("user"));
        }
        let existing = sqlx::query("SELECT COUNT(*) AS n FROM accounts WHERE user_id = $1")
            .bind(account.user_id.as_str())
            .fetch_one(&mut *tx)
            .await?
            .int("n")?;
        // The first account is the default whatever was asked; a new default
        // replaces the old one.
        let is_default = account.is_default || existing == 0;
        if is_default {
            sqlx::query("UPDATE accounts SET is_default = FALSE WHERE user_id = $1")
                .bind(account.user_id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO accounts (account_id, user_id, account_name, base_uri, is_default, organization, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
            .bind(account.account_id.as_str())
            .bind(account.user_id.as_str())
            .bind(account.account_name.as_str())
            .bind(account.base_uri.as_str())
            .bind(is_default)
            .bind(account.organization.as_deref())
            .bind(account.created_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(AccountRecord {
            is_default,
            ..account
        })
    }

    async fn accounts(&self, user_id: &str) -> StoreResult<Vec<AccountRecord>> {
        sqlx::query(
            "SELECT account_id, user_id, account_name, base_uri, is_default, organization, created_at
             FROM accounts WHERE user_id = $1 ORDER BY is_default DESC, created_at, account_id",
        )
            .bind(user_id)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(account_from_row)
            .collect()
    }

    async fn grant_consent(
        &self,
        user_id: &str,
        integration_key: &str,
        scopes: &[String],
        now: i64,
    ) -> StoreResult<ConsentRecord> {
        let mut tx = self.writer.begin_with(D::BEGIN).await?;
        let user = sqlx::query("SELECT user_id FROM users WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&mut *tx)
            .await?;
        if user.is_none() {
            return Err(StoreError::NotFound("user"));
        }
        let integration =
            sqlx::query("SELECT integration_key FROM integrations WHERE integration_key = $1")
                .bind(integration_key)
                .fetch_optional(&mut *tx)
                .await?;
        if integration.is_none() {
            return Err(StoreError::NotFound("integration"));
        }
        let existing = format!(
            "SELECT scopes FROM consents WHERE user_id = $1 AND integration_key = $2{}",
            D::ROW_LOCK
        );
        let existing = sqlx::query(sqlx::AssertSqlSafe(existing))
            .bind(user_id)
            .bind(integration_key)
            .fetch_optional(&mut *tx)
            .await?;
        let mut merged = match existing {
            Some(row) => json_list(&row.text("scopes")?)?,
            None => Vec::new(),
        };
        for scope in scopes {
            if !merged.contains(scope) {
                merged.push(scope.clone());
            }
        }
        sqlx::query(
            "INSERT INTO consents (user_id, integration_key, scopes, granted_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, integration_key) DO UPDATE SET scopes = excluded.scopes, granted_at = excluded.granted_at",
        )
        .bind(user_id)
        .bind(integration_key)
        .bind(to_json(&merged))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ConsentRecord {
            user_id: user_id.to_owned(),
            integration_key: integration_key.to_owned(),
            scopes: merged,
            granted_at: now,
        })
    }

    async fn revoke_consent(&self, user_id: &str, integration_key: &str) -> StoreResult<()> {
        let done = sqlx::query("DELETE FROM consents WHERE user_id = $1 AND integration_key = $2")
            .bind(user_id)
            .bind(integration_key)
            .execute(&self.writer)
            .await?;
        require_changed(done.rows_affected(), "consent")
    }

    async fn consent(
        &self,
        user_id: &str,
        integration_key: &str,
    ) -> StoreResult<Option<ConsentRecord>> {
        if !storable_key(user_id) || !storable_key(integration_key) {
            return Ok(None);
        }
        sqlx::query("SELECT user_id, integration_key, scopes, granted_at FROM consents WHERE user_id = $1 AND integration_key = $2")
            .bind(user_id)
            .bind(integration_key)
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(consent_from_row)
            .transpose()
    }

    async fn list_consents(
        &self,
        user_id: Option<&str>,
        integration_key: Option<&str>,
    ) -> StoreResult<Vec<ConsentRecord>> {
        sqlx::query(
            "SELECT user_id, integration_key, scopes, granted_at FROM consents
             WHERE ($1 IS NULL OR user_id = $1) AND ($2 IS NULL OR integration_key = $2)
             ORDER BY granted_at, user_id, integration_key",
        )
        .bind(user_id)
        .bind(integration_key)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(consent_from_row)
        .collect()
    }

    async fn record_jti(
        &self,
        issuer: &str,
        jti: &str,
        remember_until: i64,
        now: i64,
    ) -> StoreResult<JtiOutcome> {
        // Inserts a fresh jti, or takes over a row whose time has passed; a live row
        // is left alone and the statement changes nothing.
        let done = sqlx::query(
            "INSERT INTO used_jtis (issuer, jti, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (issuer, jti) DO UPDATE SET expires_at = excluded.expires_at
             WHERE used_jtis.expires_at < $4",
        )
        .bind(issuer)
        .bind(jti)
        .bind(remember_until)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(if done.rows_affected() == 0 {
            JtiOutcome::Replayed
        } else {
            JtiOutcome::Recorded
        })
    }

    async fn record_jtis(&self, records: &[JtiRecord], now: i64) -> StoreResult<Vec<JtiOutcome>> {
        let mut outcomes = Vec::with_capacity(records.len());
        for batch in records.chunks(D::JTI_BATCH) {
            outcomes.extend(D::insert_jtis(&self.writer, batch, now).await?);
        }
        Ok(outcomes)
    }

    async fn maintain(&self) -> StoreResult<()> {
        self.dialect.maintain().await
    }

    async fn sweep_jtis(&self, now: i64) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM used_jtis WHERE expires_at < $1")
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }

    async fn jti_remembered(&self, issuer: &str, jti: &str, now: i64) -> StoreResult<bool> {
        let found = sqlx::query(
            "SELECT 1 FROM used_jtis WHERE issuer = $1 AND jti = $2 AND expires_at >= $3",
        )
        .bind(issuer)
        .bind(jti)
        .bind(now)
        .fetch_optional(&self.reader)
        .await?;
        Ok(found.is_some())
    }

    async fn live_jtis(&self, now: i64) -> StoreResult<Vec<JtiRecord>> {
        sqlx::query("SELECT issuer, jti, expires_at FROM used_jtis WHERE expires_at >= $1")
            .bind(now)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(jti_from_row)
            .collect()
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        sqlx::query("SELECT kid, alg, private_key, created_at, activates_at FROM signing_keys ORDER BY activates_at, kid")
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(signing_key_from_row)
            .collect()
    }

    async fn add_signing_key(&self, key: SigningKeyRecord) -> StoreResult<()> {
        sqlx::query("INSERT INTO signing_keys (kid, alg, private_key, created_at, activates_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(key.kid.as_str())
            .bind(key.alg.as_str())
            .bind(key.private_key_pkcs8.as_slice())
            .bind(key.created_at)
            .bind(key.activates_at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    fn replay_journal_dir(&self) -> Option<&Path> {
        self.dialect.replay_journal_dir()
    }

    fn is_shared(&self) -> bool {
        self.dialect.is_shared()
    }

    async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
        self.dialect.close().await;
    }
}
