//! What federation keeps: trusted issuers (identity providers and workload issuers
//! whose JWTs are accepted as assertions, each bound to an integration, with the
//! policy they are checked under), external identities (an issuer's subject linked
//! to a local user) and trust targets (the other servers this one, as an identity
//! provider, mints ID-JAGs for), and the SQL that keeps them, written once for both
//! backends over [`SqlStore`]. The policy is stored as the JSON document the
//! server reads; the store does not interpret it.

use async_trait::async_trait;
use sqlx::{Database, Encode, Executor, Type};

use crate::rows::{RecordRow, json_list, require_changed, to_json, user_from_row};
use crate::sql::{Dialect, RowsAffected, SqlStore};
use crate::{StoreError, StoreResult, UserRecord};

/// A trusted issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedIssuerRecord {
    /// Its id (a UUID), which the admin commands name it by.
    pub issuer_id: String,
    /// The issuer identifier, exactly as its tokens' `iss` carries it.
    pub issuer: String,
    /// The integration its tokens yield tokens for (their `client_id`).
    pub integration_key: String,
    /// Whether its tokens are accepted.
    pub active: bool,
    /// Its policy, a JSON object (keys, checks, subject mapping, conditions).
    pub policy: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// An issuer's subject linked to a local user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIdentityRecord {
    /// The trusted issuer.
    pub issuer_id: String,
    /// The subject (`sub`) the issuer gives the person.
    pub subject: String,
    /// The local user.
    pub user_id: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// A server this one mints ID-JAGs for, for one client (token exchange, as the
/// enterprise identity provider of cross-app access).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustTargetRecord {
    /// The other server's issuer identifier: the exchange's `audience`, the
    /// ID-JAG's `aud`.
    pub audience: String,
    /// The integration (client) that may ask for them.
    pub integration_key: String,
    /// The client's id at the other server: the ID-JAG's `client_id`.
    pub remote_client_id: String,
    /// The resources the ID-JAG may name; none: it names none.
    pub resources: Vec<String>,
    /// The scopes it may carry; none: the request's pass unnarrowed.
    pub scopes: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// Trusted issuers, external identities and trust targets.
#[async_trait]
pub trait FederationStore: Send + Sync {
    /// Registers a trusted issuer; `Conflict` when one has the same `issuer`,
    /// `NotFound` when the integration does not exist.
    async fn create_trusted_issuer(&self, record: &TrustedIssuerRecord) -> StoreResult<()>;
    /// Every trusted issuer, oldest first.
    async fn trusted_issuers(&self) -> StoreResult<Vec<TrustedIssuerRecord>>;
    /// Enables or disables a trusted issuer.
    async fn set_trusted_issuer_active(&self, issuer_id: &str, active: bool) -> StoreResult<()>;
    /// Removes a trusted issuer and its external identities.
    async fn remove_trusted_issuer(&self, issuer_id: &str) -> StoreResult<()>;
    /// Links an issuer's subject to a user; `Conflict` when the subject is linked
    /// already, `NotFound` when the issuer or the user does not exist.
    async fn link_external_identity(&self, link: &ExternalIdentityRecord) -> StoreResult<()>;
    /// The user an issuer's subject is linked to.
    async fn linked_user(&self, issuer_id: &str, subject: &str) -> StoreResult<Option<String>>;
    /// The subjects linked for one issuer.
    async fn external_identities(
        &self,
        issuer_id: &str,
    ) -> StoreResult<Vec<ExternalIdentityRecord>>;
    /// The user with this email address (compared without case).
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>>;
    /// Adds a trust target; `Conflict` when the integration has one for the same
    /// audience, `NotFound` when the integration does not exist.
    async fn add_trust_target(&self, target: &TrustTargetRecord) -> StoreResult<()>;
    /// The trust target of an integration for an audience.
    async fn trust_target(
        &self,
        audience: &str,
        integration_key: &str,
    ) -> StoreResult<Option<TrustTargetRecord>>;
    /// Every trust target (of one integration, when given), by audience.
    async fn trust_targets(
        &self,
        integration_key: Option<&str>,
    ) -> StoreResult<Vec<TrustTargetRecord>>;
    /// Removes a trust target.
    async fn remove_trust_target(&self, audience: &str, integration_key: &str) -> StoreResult<()>;
}

fn trust_target_from_row(row: &impl RecordRow) -> StoreResult<TrustTargetRecord> {
    Ok(TrustTargetRecord {
        audience: row.text("audience")?,
        integration_key: row.text("integration_key")?,
        remote_client_id: row.text("remote_client_id")?,
        resources: json_list(&row.text("resources")?)?,
        scopes: json_list(&row.text("scopes")?)?,
        created_at: row.int("created_at")?,
    })
}

const TRUST_TARGET_COLUMNS: &str =
    "audience, integration_key, remote_client_id, resources, scopes, created_at";

fn issuer_from_row(row: &impl RecordRow) -> StoreResult<TrustedIssuerRecord> {
    Ok(TrustedIssuerRecord {
        issuer_id: row.text("issuer_id")?,
        issuer: row.text("issuer")?,
        integration_key: row.text("integration_key")?,
        active: row.flag("active")?,
        policy: row.text("policy")?,
        created_at: row.int("created_at")?,
    })
}

fn identity_from_row(row: &impl RecordRow) -> StoreResult<ExternalIdentityRecord> {
    Ok(ExternalIdentityRecord {
        issuer_id: row.text("issuer_id")?,
        subject: row.text("subject")?,
        user_id: row.text("user_id")?,
        created_at: row.int("created_at")?,
    })
}

#[async_trait]
impl<D: Dialect> FederationStore for SqlStore<D>
where
    for<'c> &'c mut <D::Db as Database>::Connection: Executor<'c, Database = D::Db>,
    for<'q> &'q str: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> Option<&'q str>: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> String: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> i64: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> bool: Encode<'q, D::Db> + Type<D::Db>,
{
    async fn create_trusted_issuer(&self, record: &TrustedIssuerRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO trusted_issuers (issuer_id, issuer, integration_key, active, policy, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(record.issuer_id.as_str())
        .bind(record.issuer.as_str())
        .bind(record.integration_key.as_str())
        .bind(record.active)
        .bind(record.policy.as_str())
        .bind(record.created_at)
        .execute(&self.writer)
        .await
        .map_err(|error| match StoreError::from(error) {
            StoreError::Conflict(_) => StoreError::Conflict(format!(
                "a trusted issuer with issuer '{}' already exists",
                record.issuer
            )),
            StoreError::NotFound(_) => StoreError::NotFound("integration"),
            other => other,
        })?;
        Ok(())
    }

    async fn trusted_issuers(&self) -> StoreResult<Vec<TrustedIssuerRecord>> {
        sqlx::query(
            "SELECT issuer_id, issuer, integration_key, active, policy, created_at
             FROM trusted_issuers ORDER BY created_at, issuer_id",
        )
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(issuer_from_row)
        .collect()
    }

    async fn set_trusted_issuer_active(&self, issuer_id: &str, active: bool) -> StoreResult<()> {
        let done = sqlx::query("UPDATE trusted_issuers SET active = $1 WHERE issuer_id = $2")
            .bind(active)
            .bind(issuer_id)
            .execute(&self.writer)
            .await?;
        require_changed(done.rows_affected(), "trusted issuer")
    }

    async fn remove_trusted_issuer(&self, issuer_id: &str) -> StoreResult<()> {
        let done = sqlx::query("DELETE FROM trusted_issuers WHERE issuer_id = $1")
            .bind(issuer_id)
            .execute(&self.writer)
            .await?;
        require_changed(done.rows_affected(), "trusted issuer")
    }

    async fn link_external_identity(&self, link: &ExternalIdentityRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO external_identities (issuer_id, subject, user_id, created_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(link.issuer_id.as_str())
        .bind(link.subject.as_str())
        .bind(link.user_id.as_str())
        .bind(link.created_at)
        .execute(&self.writer)
        .await
        .map_err(|error| match StoreError::from(error) {
            StoreError::Conflict(_) => StoreError::Conflict(format!(
                "subject '{}' of this issuer is linked to a user already",
                link.subject
            )),
            StoreError::NotFound(_) => StoreError::NotFound("trusted issuer or user"),
            other => other,
        })?;
        Ok(())
    }

    async fn linked_user(&self, issuer_id: &str, subject: &str) -> StoreResult<Option<String>> {
        if !crate::sql::storable_key(issuer_id) || !crate::sql::storable_key(subject) {
            return Ok(None);
        }
        let row = sqlx::query(
            "SELECT user_id FROM external_identities WHERE issuer_id = $1 AND subject = $2",
        )
        .bind(issuer_id)
        .bind(subject)
        .fetch_optional(&self.reader)
        .await?;
        Ok(row.map(|row| row.text("user_id")).transpose()?)
    }

    async fn external_identities(
        &self,
        issuer_id: &str,
    ) -> StoreResult<Vec<ExternalIdentityRecord>> {
        sqlx::query(
            "SELECT issuer_id, subject, user_id, created_at FROM external_identities
             WHERE issuer_id = $1 ORDER BY created_at, subject",
        )
        .bind(issuer_id)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(identity_from_row)
        .collect()
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        if !crate::sql::storable_key(email) {
            return Ok(None);
        }
        sqlx::query(
            "SELECT user_id, email, name, given_name, family_name, active, created_at
             FROM users WHERE lower(email) = lower($1)",
        )
        .bind(email)
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(user_from_row)
        .transpose()
    }

    async fn add_trust_target(&self, target: &TrustTargetRecord) -> StoreResult<()> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO trust_targets ({TRUST_TARGET_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
        )))
        .bind(target.audience.as_str())
        .bind(target.integration_key.as_str())
        .bind(target.remote_client_id.as_str())
        .bind(to_json(&target.resources))
        .bind(to_json(&target.scopes))
        .bind(target.created_at)
        .execute(&self.writer)
        .await
        .map_err(|error| match StoreError::from(error) {
            StoreError::Conflict(_) => StoreError::Conflict(format!(
                "integration '{}' has a trust target for '{}' already",
                target.integration_key, target.audience
            )),
            StoreError::NotFound(_) => StoreError::NotFound("integration"),
            other => other,
        })?;
        Ok(())
    }

    async fn trust_target(
        &self,
        audience: &str,
        integration_key: &str,
    ) -> StoreResult<Option<TrustTargetRecord>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TRUST_TARGET_COLUMNS} FROM trust_targets
             WHERE audience = $1 AND integration_key = $2"
        )))
        .bind(audience)
        .bind(integration_key)
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(trust_target_from_row)
        .transpose()
    }

    async fn trust_targets(
        &self,
        integration_key: Option<&str>,
    ) -> StoreResult<Vec<TrustTargetRecord>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {TRUST_TARGET_COLUMNS} FROM trust_targets
             WHERE $1 IS NULL OR integration_key = $1 ORDER BY audience, integration_key"
        )))
        .bind(integration_key)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(trust_target_from_row)
        .collect()
    }

    async fn remove_trust_target(&self, audience: &str, integration_key: &str) -> StoreResult<()> {
        let done =
            sqlx::query("DELETE FROM trust_targets WHERE audience = $1 AND integration_key = $2")
                .bind(audience)
                .bind(integration_key)
                .execute(&self.writer)
                .await?;
        require_changed(done.rows_affected(), "trust target")
    }
}
