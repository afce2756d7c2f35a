//! The PostgreSQL backend: for several instances sharing one database. Versioned
//! migrations embedded in the binary, a pooled connection with timeouts, and the
//! replay record's uniqueness enforced by the primary key across instances.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
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

/// The store on PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

fn migrator() -> Migrator {
    Migrator::with_migrations(vec![
        Migration::new(
            1,
            "registry".into(),
            MigrationType::Simple,
            SqlStr::from_static(include_str!("../migrations/postgres/0001_registry.sql")),
            false,
        ),
        Migration::new(
            2,
            "authorization".into(),
            MigrationType::Simple,
            SqlStr::from_static(include_str!(
                "../migrations/postgres/0002_authorization.sql"
            )),
            false,
        ),
    ])
}

/// How to reach PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// `postgres://user@host:port/database`.
    pub url: String,
    /// A schema to use (created if missing), e.g. for tests; `None` is the default.
    pub schema: Option<String>,
    /// Pool size.
    pub max_connections: u32,
    /// Whether to run migrations on open.
    pub migrate: bool,
}

impl PostgresOptions {
    /// Defaults for `url`: 16 connections, migrations on.
    pub fn new(url: impl Into<String>) -> Self {
        PostgresOptions {
            url: url.into(),
            schema: None,
            max_connections: 16,
            migrate: true,
        }
    }
}

impl PostgresStore {
    /// Connects, and migrates unless told not to.
    pub async fn open(options: PostgresOptions) -> StoreResult<Self> {
        let mut connect: PgConnectOptions = options
            .url
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
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(Duration::from_secs(3))
            .connect_with(connect)
            .await?;
        let store = PostgresStore { pool };
        if options.migrate {
            store.migrate().await?;
        } else {
            store.check_migrated().await?;
        }
        Ok(store)
    }

    /// With migrations off, refuses a database that lacks some of them, naming the
    /// fix, rather than failing later on a missing table.
    async fn check_migrated(&self) -> StoreResult<()> {
        let recorded: bool =
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                .fetch_one(&self.pool)
                .await?;
        let applied: Vec<i64> = if recorded {
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await?
        } else {
            Vec::new()
        };
        let missing: Vec<String> = migrator()
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

    /// Runs the migrations not yet applied.
    pub async fn migrate(&self) -> StoreResult<()> {
        migrator()
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Unavailable(format!("migration failed: {e}")))
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn integration_keys(
        &self,
        integration_key: &str,
    ) -> StoreResult<Vec<IntegrationKeyRecord>> {
        sqlx::query(
            "SELECT kid, public_jwk, active, created_at FROM integration_keys
             WHERE integration_key = $1 ORDER BY created_at, kid",
        )
        .bind(integration_key)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(key_from_row)
        .collect()
    }
}

const USER_COLUMNS: &str = "user_id, email, name, given_name, family_name, active, created_at";

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn registry_version(&self) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT version FROM registry_version WHERE id = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    async fn create_integration(&self, new: NewIntegration) -> StoreResult<IntegrationRecord> {
        sqlx::query(
            "INSERT INTO integrations (integration_key, name, active, allow_application_tokens, require_jti, scopes, redirect_uris, created_at)
             VALUES ($1, $2, TRUE, $3, $4, $5, $6, $7)",
        )
        .bind(&new.integration_key)
        .bind(&new.name)
        .bind(new.allow_application_tokens)
        .bind(new.require_jti)
        .bind(to_json(&new.scopes))
        .bind(to_json(&new.redirect_uris))
        .bind(new.created_at)
        .execute(&self.pool)
        .await?;
        self.integration(&new.integration_key)
            .await?
            .ok_or(StoreError::NotFound("integration"))
    }

    async fn integration(&self, integration_key: &str) -> StoreResult<Option<IntegrationRecord>> {
        let Some(row) = sqlx::query(
            "SELECT integration_key, name, active, allow_application_tokens, require_jti, scopes, redirect_uris, client_secret_hash, created_at
             FROM integrations WHERE integration_key = $1",
        )
        .bind(integration_key)
        .fetch_optional(&self.pool)
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
            "SELECT integration_key, name, active, allow_application_tokens, require_jti, scopes, redirect_uris, client_secret_hash, created_at
             FROM integrations ORDER BY created_at, integration_key",
        )
        .fetch_all(&self.pool)
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
            .execute(&self.pool)
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
        .bind(&key.kid)
        .bind(&key.public_jwk)
        .bind(key.active)
        .bind(key.created_at)
        .bind(integration_key)
        .execute(&self.pool)
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
            "UPDATE integration_keys SET active = $1 WHERE integration_key = $2 AND kid = $3",
        )
        .bind(active)
        .bind(integration_key)
        .bind(kid)
        .execute(&self.pool)
        .await?;
        require_changed(done.rows_affected(), "integration key")
    }

    async fn remove_integration_key(&self, integration_key: &str, kid: &str) -> StoreResult<()> {
        let done =
            sqlx::query("DELETE FROM integration_keys WHERE integration_key = $1 AND kid = $2")
                .bind(integration_key)
                .bind(kid)
                .execute(&self.pool)
                .await?;
        require_changed(done.rows_affected(), "integration key")
    }

    async fn create_user(&self, user: UserRecord) -> StoreResult<UserRecord> {
        sqlx::query(
            "INSERT INTO users (user_id, email, name, given_name, family_name, active, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&user.user_id)
        .bind(&user.email)
        .bind(&user.name)
        .bind(&user.given_name)
        .bind(&user.family_name)
        .bind(user.active)
        .bind(user.created_at)
        .execute(&self.pool)
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
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users WHERE user_id = $1"
        )))
        .bind(user_id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(user_from_row)
        .transpose()
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {USER_COLUMNS} FROM users ORDER BY created_at, email"
        )))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(user_from_row)
        .collect()
    }

    async fn set_user_active(&self, user_id: &str, active: bool) -> StoreResult<()> {
        let done = sqlx::query("UPDATE users SET active = $1 WHERE user_id = $2")
            .bind(active)
            .bind(user_id)
            .execute(&self.pool)
            .await?;
        require_changed(done.rows_affected(), "user")
    }

    async fn create_account(&self, account: AccountRecord) -> StoreResult<AccountRecord> {
        let mut tx = self.pool.begin().await?;
        // Lock the owner so two new default accounts cannot both win.
        let owner: Option<String> =
            sqlx::query_scalar("SELECT user_id FROM users WHERE user_id = $1 FOR UPDATE")
                .bind(&account.user_id)
                .fetch_optional(&mut *tx)
                .await?;
        if owner.is_none() {
            return Err(StoreError::NotFound("user"));
        }
        let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM accounts WHERE user_id = $1")
            .bind(&account.user_id)
            .fetch_one(&mut *tx)
            .await?;
        let is_default = account.is_default || existing == 0;
        if is_default {
            sqlx::query("UPDATE accounts SET is_default = FALSE WHERE user_id = $1")
                .bind(&account.user_id)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "INSERT INTO accounts (account_id, user_id, account_name, base_uri, is_default, organization, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
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
             FROM accounts WHERE user_id = $1 ORDER BY is_default DESC, created_at, account_id",
        )
        .bind(user_id)
        .fetch_all(&self.pool)
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
        let mut tx = self.pool.begin().await?;
        let user: Option<String> =
            sqlx::query_scalar("SELECT user_id FROM users WHERE user_id = $1")
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
        if user.is_none() {
            return Err(StoreError::NotFound("user"));
        }
        let integration: Option<String> = sqlx::query_scalar(
            "SELECT integration_key FROM integrations WHERE integration_key = $1",
        )
        .bind(integration_key)
        .fetch_optional(&mut *tx)
        .await?;
        if integration.is_none() {
            return Err(StoreError::NotFound("integration"));
        }
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT scopes FROM consents WHERE user_id = $1 AND integration_key = $2 FOR UPDATE",
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
            "INSERT INTO consents (user_id, integration_key, scopes, granted_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (user_id, integration_key) DO UPDATE SET scopes = EXCLUDED.scopes, granted_at = EXCLUDED.granted_at",
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
            .execute(&self.pool)
            .await?;
        require_changed(done.rows_affected(), "consent")
    }

    async fn consent(
        &self,
        user_id: &str,
        integration_key: &str,
    ) -> StoreResult<Option<ConsentRecord>> {
        sqlx::query("SELECT user_id, integration_key, scopes, granted_at FROM consents WHERE user_id = $1 AND integration_key = $2")
            .bind(user_id)
            .bind(integration_key)
            .fetch_optional(&self.pool)
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
             WHERE ($1::TEXT IS NULL OR user_id = $1) AND ($2::TEXT IS NULL OR integration_key = $2)
             ORDER BY granted_at, user_id, integration_key",
        )
        .bind(user_id)
        .bind(integration_key)
        .fetch_all(&self.pool)
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
        let record = JtiRecord {
            issuer: issuer.to_owned(),
            jti: jti.to_owned(),
            remember_until,
        };
        let outcomes = self.record_jtis(std::slice::from_ref(&record), now).await?;
        Ok(outcomes.first().copied().unwrap_or(JtiOutcome::Replayed))
    }

    async fn record_jtis(&self, records: &[JtiRecord], now: i64) -> StoreResult<Vec<JtiOutcome>> {
        // PostgreSQL refuses to touch one row twice in a statement, so copies within
        // the batch are settled here: only the first copy is sent.
        let mut seen: HashSet<(&str, &str)> = HashSet::with_capacity(records.len());
        let mut issuers = Vec::with_capacity(records.len());
        let mut jtis = Vec::with_capacity(records.len());
        let mut expiries = Vec::with_capacity(records.len());
        let mut first_copy = Vec::with_capacity(records.len());
        for record in records {
            let first = seen.insert((&record.issuer, &record.jti));
            first_copy.push(first);
            if first {
                issuers.push(record.issuer.as_str());
                jtis.push(record.jti.as_str());
                expiries.push(record.remember_until);
            }
        }
        let rows = sqlx::query(
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
        .fetch_all(&self.pool)
        .await?;
        let mut recorded: HashSet<(String, String)> = HashSet::with_capacity(rows.len());
        for row in &rows {
            recorded.insert((row.try_get("issuer")?, row.try_get("jti")?));
        }
        Ok(records
            .iter()
            .zip(first_copy)
            .map(|(record, first)| {
                if first && recorded.contains(&(record.issuer.clone(), record.jti.clone())) {
                    JtiOutcome::Recorded
                } else {
                    JtiOutcome::Replayed
                }
            })
            .collect())
    }

    async fn sweep_jtis(&self, now: i64) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM used_jtis WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }

    async fn live_jtis(&self, now: i64) -> StoreResult<Vec<JtiRecord>> {
        let rows =
            sqlx::query("SELECT issuer, jti, expires_at FROM used_jtis WHERE expires_at >= $1")
                .bind(now)
                .fetch_all(&self.pool)
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
        sqlx::query("SELECT kid, alg, private_key, created_at, activates_at FROM signing_keys ORDER BY activates_at, kid")
            .fetch_all(&self.pool)
            .await?
            .iter()
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
        sqlx::query("INSERT INTO signing_keys (kid, alg, private_key, created_at, activates_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&key.kid)
            .bind(&key.alg)
            .bind(&key.private_key_pkcs8)
            .bind(key.created_at)
            .bind(key.activates_at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

authorization_methods!(PostgresStore, db: sqlx::Postgres, writer: pool, reader: pool, begin: |s| s.pool.begin());
