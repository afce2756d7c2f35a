//! The SQLite backend: one file in WAL mode, a single writer connection and a small
//! pool of readers, migrations embedded in the binary and run on open.

use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, SqlStr};

use crate::authorization::authorization_methods;
use crate::rows::{
    account_from_row, consent_from_row, integration_from_row, json_list, key_from_row,
    require_changed, to_json, user_from_row,
};
use crate::{
    AccountRecord, ConsentRecord, IntegrationKeyRecord, IntegrationRecord, JtiOutcome, JtiRecord,
    NewIntegration, SigningKeyRecord, Store, StoreError, StoreResult, UserRecord,
};

/// The store on a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    /// All writes go through this single connection: SQLite has one writer anyway,
    /// and queueing here avoids busy retries.
    writer: SqlitePool,
    /// Reads run concurrently beside the writer (WAL).
    reader: SqlitePool,
    /// Copies the WAL back into the database beside the writer (see `maintain`).
    checkpointer: SqlitePool,
}

fn migrator() -> Migrator {
    Migrator::with_migrations(vec![
        Migration::new(
            1,
            "registry".into(),
            MigrationType::Simple,
            SqlStr::from_static(include_str!("../migrations/sqlite/0001_registry.sql")),
            false,
        ),
        Migration::new(
            2,
            "authorization".into(),
            MigrationType::Simple,
            SqlStr::from_static(include_str!("../migrations/sqlite/0002_authorization.sql")),
            false,
        ),
    ])
}

/// Rows per multi-row insert (three parameters each, far below SQLite's limit).
const MAX_JTI_BATCH: usize = 500;

impl SqliteStore {
    /// Records a batch in one statement, hence one transaction and one WAL sync.
    /// `RETURNING` names the rows that were inserted or took over an expired row.
    async fn record_jti_chunk(
        &self,
        chunk: &[JtiRecord],
        now: i64,
    ) -> StoreResult<Vec<JtiOutcome>> {
        let mut sql = String::with_capacity(120 + chunk.len() * 10);
        sql.push_str("INSERT INTO used_jtis (issuer, jti, expires_at) VALUES ");
        for i in 0..chunk.len() {
            sql.push_str(if i == 0 { "(?, ?, ?)" } else { ", (?, ?, ?)" });
        }
        sql.push_str(
            " ON CONFLICT (issuer, jti) DO UPDATE SET expires_at = excluded.expires_at
              WHERE used_jtis.expires_at < ? RETURNING issuer, jti",
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for record in chunk {
            query = query
                .bind(&record.issuer)
                .bind(&record.jti)
                .bind(record.remember_until);
        }
        let rows = query.bind(now).fetch_all(&self.writer).await?;
        let mut recorded: HashSet<(String, String)> = HashSet::with_capacity(rows.len());
        for row in &rows {
            recorded.insert((row.try_get("issuer")?, row.try_get("jti")?));
        }
        // Each recorded pair goes to the first record that carries it.
        Ok(chunk
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

    /// Opens (creating if needed) the database file at `path` and migrates it.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Unavailable(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        Self::connect(options).await
    }

    /// Opens a `sqlite://` URL.
    pub async fn open_url(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        Self::connect(options).await
    }

    async fn connect(options: SqliteConnectOptions) -> StoreResult<Self> {
        // The writer never checkpoints: a checkpoint inside a commit would stall
        // every token request queued behind it. `maintain` checkpoints instead, from
        // a connection of its own, without blocking the writer.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.clone().pragma("wal_autocheckpoint", "0"))
            .await?;
        migrator()
            .run(&writer)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))?;
        let checkpointer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.clone())
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.read_only(true))
            .await?;
        Ok(SqliteStore {
            writer,
            reader,
            checkpointer,
        })
    }

    /// Closes both pools, waiting for connections to finish.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
        self.checkpointer.close().await;
    }

    async fn integration_keys(
        &self,
        integration_key: &str,
    ) -> StoreResult<Vec<IntegrationKeyRecord>> {
        let rows = sqlx::query(
            "SELECT kid, public_jwk, active, created_at FROM integration_keys
             WHERE integration_key = ? ORDER BY created_at, kid",
        )
        .bind(integration_key)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(key_from_row).collect()
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }

    async fn registry_version(&self) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT version FROM registry_version WHERE id = 1")
                .fetch_one(&self.reader)
                .await?,
        )
    }

    async fn create_integration(&self, new: NewIntegration) -> StoreResult<IntegrationRecord> {
        sqlx::query(
            "INSERT INTO integrations (integration_key, name, active, allow_application_tokens, require_jti, scopes, redirect_uris, created_at)
             VALUES (?, ?, 1, ?, ?, ?, ?, ?)",
        )
        .bind(&new.integration_key)
        .bind(&new.name)
        .bind(new.allow_application_tokens)
        .bind(new.require_jti)
        .bind(to_json(&new.scopes))
        .bind(to_json(&new.redirect_uris))
        .bind(new.created_at)
        .execute(&self.writer)
        .await?;
        self.integration(&new.integration_key)
            .await?
            .ok_or(StoreError::NotFound("integration"))
    }

    async fn integration(&self, integration_key: &str) -> StoreResult<Option<IntegrationRecord>> {
        let Some(row) = sqlx::query(INTEGRATION_BY_KEY)
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
        let rows = sqlx::query(ALL_INTEGRATIONS)
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
        let done = sqlx::query("UPDATE integrations SET active = ? WHERE integration_key = ?")
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
             SELECT integration_key, ?, ?, ?, ? FROM integrations WHERE integration_key = ?",
        )
        .bind(&key.kid)
        .bind(&key.public_jwk)
        .bind(key.active)
        .bind(key.created_at)
        .bind(integration_key)
        .execute(&self.writer)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!(
                "the integration already has a key with kid '{}'",
                key.kid
            )),
            other => other,
        })?;
        require_changed(result.rows_affected(), "integration")
    }

    async fn set_integration_key_active(
        &self,
        integration_key: &str,
        kid: &str,
        active: bool,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE integration_keys SET active = ? WHERE integration_key = ? AND kid = ?",
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
            sqlx::query("DELETE FROM integration_keys WHERE integration_key = ? AND kid = ?")
                .bind(integration_key)
                .bind(kid)
                .execute(&self.writer)
                .await?;
        require_changed(done.rows_affected(), "integration key")
    }

    async fn create_user(&self, user: UserRecord) -> StoreResult<UserRecord> {
        sqlx::query(
            "INSERT INTO users (user_id, email, name, given_name, family_name, active, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&user.user_id)
        .bind(&user.email)
        .bind(&user.name)
        .bind(&user.given_name)
        .bind(&user.family_name)
        .bind(user.active)
        .bind(user.created_at)
        .execute(&self.writer)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict(format!("a user with email '{}' already exists", user.email))
            }
            other => other,
        })?;
        Ok(user)
    }

    async fn user(&self, user_id: &str) -> StoreResult<Option<UserRecord>> {
        sqlx::query("SELECT user_id, email, name, given_name, family_name, active, created_at FROM users WHERE user_id = ?")
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
        let done = sqlx::query("UPDATE users SET active = ? WHERE user_id = ?")
            .bind(active)
            .bind(user_id)
            .execute(&self.writer)
            .await?;
        require_changed(done.rows_affected(), "user")
    }

    async fn create_account(&self, account: AccountRecord) -> StoreResult<AccountRecord> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let owner: Option<String> =
            sqlx::query_scalar("SELECT user_id FROM users WHERE user_id = ?")
                .bind(&account.user_id)
                .fetch_optional(&mut *tx)
                .await?;
        if owner.is_none() {
            return Err(StoreError::NotFound("user"));
        }
        let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE user_id = ?")
            .bind(&account.user_id)
            .fetch_one(&mut *tx)
            .await?;
        // The first account is the default whatever was asked; a new default
        // replaces the old one.
        let is_default = account.is_default || existing == 0;
        if is_default {
            sqlx::query("UPDATE accounts SET is_default = 0 WHERE user_id = ?")
                .bind(&account.user_id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO accounts (account_id, user_id, account_name, base_uri, is_default, organization, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&account.account_id)
        .bind(&account.user_id)
        .bind(&account.account_name)
        .bind(&account.base_uri)
        .bind(is_default)
        .bind(&account.organization)
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
             FROM accounts WHERE user_id = ? ORDER BY is_default DESC, created_at, account_id",
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
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let user: Option<String> =
            sqlx::query_scalar("SELECT user_id FROM users WHERE user_id = ?")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        if user.is_none() {
            return Err(StoreError::NotFound("user"));
        }
        let integration: Option<String> = sqlx::query_scalar(
            "SELECT integration_key FROM integrations WHERE integration_key = ?",
        )
        .bind(integration_key)
        .fetch_optional(&mut *tx)
        .await?;
        if integration.is_none() {
            return Err(StoreError::NotFound("integration"));
        }
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT scopes FROM consents WHERE user_id = ? AND integration_key = ?",
        )
        .bind(user_id)
        .bind(integration_key)
        .fetch_optional(&mut *tx)
        .await?;
        let mut merged = match existing {
            Some(text) => json_list(&text)?,
            None => Vec::new(),
        };
        for scope in scopes {
            if !merged.contains(scope) {
                merged.push(scope.clone());
            }
        }
        sqlx::query(
            "INSERT INTO consents (user_id, integration_key, scopes, granted_at) VALUES (?, ?, ?, ?)
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
        let done = sqlx::query("DELETE FROM consents WHERE user_id = ? AND integration_key = ?")
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
        sqlx::query("SELECT user_id, integration_key, scopes, granted_at FROM consents WHERE user_id = ? AND integration_key = ?")
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
             WHERE (?1 IS NULL OR user_id = ?1) AND (?2 IS NULL OR integration_key = ?2)
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
            "INSERT INTO used_jtis (issuer, jti, expires_at) VALUES (?, ?, ?)
             ON CONFLICT (issuer, jti) DO UPDATE SET expires_at = excluded.expires_at
             WHERE used_jtis.expires_at < ?",
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
        for chunk in records.chunks(MAX_JTI_BATCH) {
            outcomes.extend(self.record_jti_chunk(chunk, now).await?);
        }
        Ok(outcomes)
    }

    async fn maintain(&self) -> StoreResult<()> {
        // PASSIVE: copies what it can without waiting for, or blocking, the writer.
        sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&self.checkpointer)
            .await?;
        Ok(())
    }

    async fn sweep_jtis(&self, now: i64) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM used_jtis WHERE expires_at < ?")
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }

    async fn live_jtis(&self, now: i64) -> StoreResult<Vec<JtiRecord>> {
        let rows =
            sqlx::query("SELECT issuer, jti, expires_at FROM used_jtis WHERE expires_at >= ?")
                .bind(now)
                .fetch_all(&self.reader)
                .await?;
        rows.iter()
            .map(|row| {
                Ok(JtiRecord {
                    issuer: row.try_get("issuer")?,
                    jti: row.try_get("jti")?,
                    remember_until: row.try_get("expires_at")?,
                })
            })
            .collect()
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        let rows = sqlx::query("SELECT kid, alg, private_key, created_at, activates_at FROM signing_keys ORDER BY activates_at, kid")
            .fetch_all(&self.reader)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(SigningKeyRecord {
                    kid: row.try_get("kid")?,
                    alg: row.try_get("alg")?,
                    private_key_pkcs8: row.try_get("private_key")?,
                    created_at: row.try_get("created_at")?,
                    activates_at: row.try_get("activates_at")?,
                })
            })
            .collect()
    }

    async fn add_signing_key(&self, key: SigningKeyRecord) -> StoreResult<()> {
        sqlx::query("INSERT INTO signing_keys (kid, alg, private_key, created_at, activates_at) VALUES (?, ?, ?, ?, ?)")
            .bind(&key.kid)
            .bind(&key.alg)
            .bind(&key.private_key_pkcs8)
            .bind(key.created_at)
            .bind(key.activates_at)
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}

authorization_methods!(SqliteStore, db: sqlx::Sqlite, writer: writer, reader: reader, begin: |s| s.writer.begin_with("BEGIN IMMEDIATE"));

const INTEGRATION_BY_KEY: &str = "SELECT integration_key, name, active, allow_application_tokens, require_jti, scopes, redirect_uris, client_secret_hash, created_at
     FROM integrations WHERE integration_key = ?";

const ALL_INTEGRATIONS: &str = "SELECT integration_key, name, active, allow_application_tokens, require_jti, scopes, redirect_uris, client_secret_hash, created_at
     FROM integrations ORDER BY created_at, integration_key";
