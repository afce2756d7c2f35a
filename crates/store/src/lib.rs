//! Storage for jwtgrant: the [`Store`] trait every backend implements, the records
//! it holds, and its two backends: SQLite (one instance, embedded) and PostgreSQL
//! (several instances sharing one database), one SQL body over both. [`open`] opens
//! either from a [`StoreLocation`]; domain code holds the `Arc<dyn Store>` it returns
//! and never asks which backend it runs on, only what the store allows
//! ([`Store::replay_journal_dir`], [`Store::is_shared`]).

mod audit;
mod authorization;
mod federation;
mod open;
mod postgres;
mod rows;
mod sql;
mod sqlite;

use std::path::Path;

use async_trait::async_trait;

pub use audit::{AuditEvent, AuditQuery, AuditStore};
pub use authorization::{
    AuthorizationCodeRecord, AuthorizationStore, RefreshTokenRecord, RevokedToken, UserLogin,
};
pub use federation::{
    ExternalIdentityRecord, FederationStore, TrustTargetRecord, TrustedIssuerRecord,
};
pub use open::{OpenOptions, StoreLocation, UnsupportedUrl, open};

/// The versions of every migration the store applies, in order (what `_sqlx_migrations`
/// lists once a database is migrated).
pub fn migration_versions() -> Vec<i64> {
    (1..).take(sql::MIGRATIONS.len()).collect()
}

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend cannot be reached or failed; the caller answers 503.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The named record does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The record would duplicate one that exists.
    #[error("{0}")]
    Conflict(String),
    /// A stored value could not be read back.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict("a record with this identity already exists".into())
            }
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                StoreError::NotFound("referenced record")
            }
            sqlx::Error::RowNotFound => StoreError::NotFound("record"),
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                StoreError::Corrupt(error.to_string())
            }
            _ => StoreError::Unavailable(error.to_string()),
        }
    }
}

/// Result of a storage operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// A registered integration (client application).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IntegrationRecord {
    /// The integration key (a UUID): `client_id` and assertion `iss`.
    pub integration_key: String,
    /// Display name.
    pub name: String,
    /// Whether assertions from it are accepted.
    pub active: bool,
    /// Whether it may obtain tokens without `sub`.
    pub allow_application_tokens: bool,
    /// Whether its assertions must carry `jti`.
    pub require_jti: bool,
    /// Scopes it may request.
    pub scopes: Vec<String>,
    /// Registered redirect URIs.
    pub redirect_uris: Vec<String>,
    /// The resources (RFC 8707, absolute URIs) it may ask tokens for.
    pub resources: Vec<String>,
    /// The scopes an authorization request without `scope` gets.
    pub default_scopes: Vec<String>,
    /// The argon2id hash of its client secret, if it has one (a confidential client).
    #[serde(skip)]
    pub client_secret_hash: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Its public keys.
    pub keys: Vec<IntegrationKeyRecord>,
}

/// What `create_integration` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIntegration {
    /// The integration key to use (a fresh UUID).
    pub integration_key: String,
    /// Display name.
    pub name: String,
    /// Scopes it may request.
    pub scopes: Vec<String>,
    /// Registered redirect URIs.
    pub redirect_uris: Vec<String>,
    /// The resources it may ask tokens for.
    pub resources: Vec<String>,
    /// The scopes an authorization request without `scope` gets.
    pub default_scopes: Vec<String>,
    /// Whether it may obtain application tokens.
    pub allow_application_tokens: bool,
    /// Whether its assertions must carry `jti`.
    pub require_jti: bool,
    /// Unix seconds.
    pub created_at: i64,
}

/// What `update_integration` changes: each list given replaces the stored one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrationUpdate {
    /// Scopes it may request.
    pub scopes: Option<Vec<String>>,
    /// Registered redirect URIs.
    pub redirect_uris: Option<Vec<String>>,
    /// The resources it may ask tokens for.
    pub resources: Option<Vec<String>>,
    /// The scopes an authorization request without `scope` gets.
    pub default_scopes: Option<Vec<String>>,
}

/// One public key of an integration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IntegrationKeyRecord {
    /// Key id.
    pub kid: String,
    /// The public JWK, as JSON text.
    pub public_jwk: String,
    /// Whether it may verify assertions.
    pub active: bool,
    /// Unix seconds.
    pub created_at: i64,
}

/// A person in the directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserRecord {
    /// The user id (a UUID): assertion `sub`.
    pub user_id: String,
    /// Email address (unique).
    pub email: String,
    /// Full name.
    pub name: String,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// Whether tokens may be issued for this user.
    pub active: bool,
    /// Unix seconds.
    pub created_at: i64,
}

/// An account of a user (listed by userinfo).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AccountRecord {
    /// The account id (a UUID).
    pub account_id: String,
    /// Owner.
    pub user_id: String,
    /// Display name.
    pub account_name: String,
    /// Base URI of the account's API.
    pub base_uri: String,
    /// Whether it is the user's default account.
    pub is_default: bool,
    /// Organization as a JSON object, if any.
    pub organization: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// A user's consent that an integration may act for them.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConsentRecord {
    /// The user.
    pub user_id: String,
    /// The integration.
    pub integration_key: String,
    /// Scopes consented to.
    pub scopes: Vec<String>,
    /// Unix seconds of the last grant.
    pub granted_at: i64,
}

/// One of the server's own signing keys.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// Key id.
    pub kid: String,
    /// JWS algorithm name.
    pub alg: String,
    /// The private key, PKCS#8 DER.
    pub private_key_pkcs8: Vec<u8>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds from which it signs.
    pub activates_at: i64,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("activates_at", &self.activates_at)
            .finish_non_exhaustive()
    }
}

/// One `jti` to remember as used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JtiRecord {
    /// The integration key that issued the assertion.
    pub issuer: String,
    /// The assertion's `jti`.
    pub jti: String,
    /// Unix seconds until which it must be remembered.
    pub remember_until: i64,
}

/// Whether a `jti` was fresh or had been used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JtiOutcome {
    /// First use: recorded, and durable when this returns.
    Recorded,
    /// Already recorded for this issuer and not yet expired.
    Replayed,
}

/// Everything jwtgrant keeps. Implementations must make each method atomic: a
/// failure leaves nothing half-written.
#[async_trait]
pub trait Store: AuthorizationStore + FederationStore + AuditStore + Send + Sync + 'static {
    /// Checks that the backend answers.
    async fn ping(&self) -> StoreResult<()>;
    /// A number that changes whenever anything a server caches changes.
    async fn registry_version(&self) -> StoreResult<i64>;

    /// Registers an integration.
    async fn create_integration(&self, new: NewIntegration) -> StoreResult<IntegrationRecord>;
    /// Replaces the lists `update` names, leaving the others; returns the
    /// integration as it now is.
    async fn update_integration(
        &self,
        integration_key: &str,
        update: IntegrationUpdate,
    ) -> StoreResult<IntegrationRecord>;
    /// One integration with its keys.
    async fn integration(&self, integration_key: &str) -> StoreResult<Option<IntegrationRecord>>;
    /// Every integration with its keys.
    async fn list_integrations(&self) -> StoreResult<Vec<IntegrationRecord>>;
    /// Enables or disables an integration.
    async fn set_integration_active(&self, integration_key: &str, active: bool) -> StoreResult<()>;
    /// Adds a public key to an integration.
    async fn add_integration_key(
        &self,
        integration_key: &str,
        key: IntegrationKeyRecord,
    ) -> StoreResult<()>;
    /// Enables or disables one key.
    async fn set_integration_key_active(
        &self,
        integration_key: &str,
        kid: &str,
        active: bool,
    ) -> StoreResult<()>;
    /// Removes one key.
    async fn remove_integration_key(&self, integration_key: &str, kid: &str) -> StoreResult<()>;

    /// Adds a user.
    async fn create_user(&self, user: UserRecord) -> StoreResult<UserRecord>;
    /// One user.
    async fn user(&self, user_id: &str) -> StoreResult<Option<UserRecord>>;
    /// Every user.
    async fn list_users(&self) -> StoreResult<Vec<UserRecord>>;
    /// Enables or disables a user.
    async fn set_user_active(&self, user_id: &str, active: bool) -> StoreResult<()>;

    /// Adds an account to a user; a new default account clears the old default.
    async fn create_account(&self, account: AccountRecord) -> StoreResult<AccountRecord>;
    /// A user's accounts, default first.
    async fn accounts(&self, user_id: &str) -> StoreResult<Vec<AccountRecord>>;

    /// Records consent for `scopes`, adding to what was consented before.
    async fn grant_consent(
        &self,
        user_id: &str,
        integration_key: &str,
        scopes: &[String],
        now: i64,
    ) -> StoreResult<ConsentRecord>;
    /// Withdraws a user's consent for an integration.
    async fn revoke_consent(&self, user_id: &str, integration_key: &str) -> StoreResult<()>;
    /// One consent.
    async fn consent(
        &self,
        user_id: &str,
        integration_key: &str,
    ) -> StoreResult<Option<ConsentRecord>>;
    /// Consents, optionally for one user or one integration.
    async fn list_consents(
        &self,
        user_id: Option<&str>,
        integration_key: Option<&str>,
    ) -> StoreResult<Vec<ConsentRecord>>;

    /// Records `jti` as used by `issuer` until `remember_until`; durable on return.
    async fn record_jti(
        &self,
        issuer: &str,
        jti: &str,
        remember_until: i64,
        now: i64,
    ) -> StoreResult<JtiOutcome>;
    /// Records many `jti`s at once (a group commit): one outcome per record, in order;
    /// of several copies of one `jti` in the batch, the first is recorded and the rest
    /// are replays. Durable when this returns. Backends override this to write the
    /// whole batch in one transaction.
    async fn record_jtis(&self, records: &[JtiRecord], now: i64) -> StoreResult<Vec<JtiOutcome>> {
        let mut outcomes = Vec::with_capacity(records.len());
        for record in records {
            outcomes.push(
                self.record_jti(&record.issuer, &record.jti, record.remember_until, now)
                    .await?,
            );
        }
        Ok(outcomes)
    }
    /// Housekeeping the server runs about once a second (SQLite: a WAL checkpoint
    /// off the write path). Nothing by default.
    async fn maintain(&self) -> StoreResult<()> {
        Ok(())
    }
    /// Forgets `jti`s whose time has passed; returns how many.
    async fn sweep_jtis(&self, now: i64) -> StoreResult<u64>;
    /// The `jti`s still remembered at `now` (to carry them over into another replay
    /// record).
    async fn live_jtis(&self, now: i64) -> StoreResult<Vec<JtiRecord>>;
    /// Whether `issuer`'s `jti` is remembered as used at `now` (for `jwtgrant
    /// explain`, which records nothing).
    async fn jti_remembered(&self, issuer: &str, jti: &str, now: i64) -> StoreResult<bool>;

    /// The server's signing keys.
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;
    /// Adds a signing key.
    async fn add_signing_key(&self, key: SigningKeyRecord) -> StoreResult<()>;

    /// Where a single instance may keep the replay record in memory, with its
    /// journal: the data directory of a store that no other instance opens. `None`:
    /// the replay record stays in the store.
    fn replay_journal_dir(&self) -> Option<&Path>;
    /// Whether several instances may share this store, so that what it holds (the
    /// signing keys among it) reaches all of them.
    fn is_shared(&self) -> bool;
    /// Closes the store, waiting for its connections to finish; every later call
    /// fails as unavailable.
    async fn close(&self);
}

#[cfg(test)]
mod tests;
