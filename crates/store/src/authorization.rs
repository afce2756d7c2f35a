//! What the authorization code flow keeps: client secrets and password hashes,
//! authorization codes, refresh tokens in rotation chains ("families"), revoked
//! access tokens and server secrets, and the SQL that keeps them, written once for
//! both backends over [`SqlStore`].

use async_trait::async_trait;
use sqlx::{Database, Encode, Executor, Type};

use crate::rows::{RecordRow, json_list, require_changed, to_json, user_from_row};
use crate::sql::{Dialect, RowsAffected, SqlStore};
use crate::{StoreResult, UserRecord};

/// An authorization code, kept under the SHA-256 of its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCodeRecord {
    /// SHA-256 of the code, base64url.
    pub code_hash: String,
    /// The integration it was issued to.
    pub integration_key: String,
    /// The user who approved.
    pub user_id: String,
    /// Where it was sent.
    pub redirect_uri: String,
    /// The approved scopes.
    pub scopes: Vec<String>,
    /// The resources (RFC 8707) the authorization request named: the audiences its
    /// tokens may have.
    pub resources: Vec<String>,
    /// The PKCE S256 challenge, if any.
    pub code_challenge: Option<String>,
    /// The OpenID Connect `nonce` of the authorization request, for its ID token.
    pub nonce: Option<String>,
    /// When the user signed in (Unix seconds): the ID token's `auth_time`.
    pub auth_time: Option<i64>,
    /// The chain of refresh tokens its redemption starts.
    pub family_id: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds after which it is refused.
    pub expires_at: i64,
    /// When it was redeemed, if it was.
    pub used_at: Option<i64>,
}

/// A refresh token, kept under the SHA-256 of its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshTokenRecord {
    /// SHA-256 of the token, base64url.
    pub token_hash: String,
    /// Its chain: every refresh token descended from one authorization code.
    pub family_id: String,
    /// The integration it was issued to.
    pub integration_key: String,
    /// The user it acts for.
    pub user_id: String,
    /// The scopes of the grant.
    pub scopes: Vec<String>,
    /// The resources of the grant (RFC 8707), which a refresh may only narrow.
    pub resources: Vec<String>,
    /// When the user signed in for the grant (Unix seconds): the `auth_time` of the
    /// ID tokens its refreshes return.
    pub auth_time: Option<i64>,
    /// The `jti` of the access token issued with it (revoked with the chain).
    pub access_jti: String,
    /// When that access token expires.
    pub access_expires_at: i64,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds after which it is refused.
    pub expires_at: i64,
    /// When it was exchanged for its successor, if it was.
    pub rotated_at: Option<i64>,
    /// When its chain was revoked, if it was.
    pub revoked_at: Option<i64>,
}

/// A revoked access token, by `jti`, in the order revocations were recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedToken {
    /// Increases with every revocation; servers read what is newer than they know.
    pub seq: i64,
    /// The access token's `jti`.
    pub jti: String,
    /// When the token expires anyway (the row may go then).
    pub expires_at: i64,
}

/// A user as the login page needs them: the record and the password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserLogin {
    /// The user.
    pub user: UserRecord,
    /// The argon2id hash (PHC string); `None` when no password was ever set.
    pub password_hash: Option<String>,
}

/// What the authorization code flow keeps; every [`crate::Store`] is one. Each
/// method is atomic: a failure leaves nothing half-written.
#[async_trait::async_trait]
pub trait AuthorizationStore: Send + Sync {
    /// Sets (or, with `None`, removes) an integration's client secret hash.
    async fn set_integration_secret(
        &self,
        integration_key: &str,
        hash: Option<&str>,
    ) -> StoreResult<()>;
    /// Sets (or removes) a user's password hash.
    async fn set_user_password(&self, user_id: &str, hash: Option<&str>) -> StoreResult<()>;
    /// The user with this email (case-insensitive), with their password hash.
    async fn user_login_by_email(&self, email: &str) -> StoreResult<Option<UserLogin>>;
    /// The user with this id, with their password hash.
    async fn user_login(&self, user_id: &str) -> StoreResult<Option<UserLogin>>;

    /// Stores a new authorization code.
    async fn create_authorization_code(&self, code: &AuthorizationCodeRecord) -> StoreResult<()>;
    /// The authorization code with this hash.
    async fn authorization_code(
        &self,
        code_hash: &str,
    ) -> StoreResult<Option<AuthorizationCodeRecord>>;
    /// Marks the code used and stores the first refresh token of its chain, in one
    /// transaction. `false` (and nothing written) when the code was used already.
    async fn redeem_authorization_code(
        &self,
        code_hash: &str,
        now: i64,
        first: &RefreshTokenRecord,
    ) -> StoreResult<bool>;
    /// The refresh token with this hash.
    async fn refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshTokenRecord>>;
    /// Marks a refresh token rotated and stores its successor, in one transaction.
    /// `false` (and nothing written) when it was rotated or revoked already.
    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        now: i64,
        next: &RefreshTokenRecord,
    ) -> StoreResult<bool>;
    /// Revokes a chain: its refresh tokens, the access tokens issued with them, its
    /// code. Returns how many refresh tokens it revoked.
    async fn revoke_token_family(&self, family_id: &str, now: i64) -> StoreResult<u64>;
    /// Revokes every chain of a user with an integration (consent withdrawn).
    async fn revoke_grants(
        &self,
        user_id: &str,
        integration_key: &str,
        now: i64,
    ) -> StoreResult<u64>;
    /// Records an access token as revoked until it expires.
    async fn revoke_access_token(&self, jti: &str, expires_at: i64) -> StoreResult<()>;
    /// Revocations recorded after `seq`, oldest first (at most 10,000).
    async fn revoked_tokens_since(&self, seq: i64) -> StoreResult<Vec<RevokedToken>>;
    /// Forgets expired codes, refresh tokens and revocations; returns how many.
    async fn sweep_authorizations(&self, now: i64) -> StoreResult<u64>;
    /// The server secret called `name`, storing `candidate` if there is none yet (so
    /// instances starting together agree on one).
    async fn server_secret(&self, name: &str, candidate: &[u8], now: i64) -> StoreResult<Vec<u8>>;
}

/// How long a redeemed or expired code is kept, so a late reuse is still recognised
/// (and revokes what it issued) rather than looking like a code never issued.
const CODE_KEPT_AFTER_EXPIRY_SECS: i64 = 24 * 3600;

fn code_from_row(row: &impl RecordRow) -> StoreResult<AuthorizationCodeRecord> {
    Ok(AuthorizationCodeRecord {
        code_hash: row.text("code_hash")?,
        integration_key: row.text("integration_key")?,
        user_id: row.text("user_id")?,
        redirect_uri: row.text("redirect_uri")?,
        scopes: json_list(&row.text("scopes")?)?,
        resources: json_list(&row.text("resources")?)?,
        code_challenge: row.opt_text("code_challenge")?,
        nonce: row.opt_text("nonce")?,
        auth_time: row.opt_int("auth_time")?,
        family_id: row.text("family_id")?,
        created_at: row.int("created_at")?,
        expires_at: row.int("expires_at")?,
        used_at: row.opt_int("used_at")?,
    })
}

fn refresh_from_row(row: &impl RecordRow) -> StoreResult<RefreshTokenRecord> {
    Ok(RefreshTokenRecord {
        token_hash: row.text("token_hash")?,
        family_id: row.text("family_id")?,
        integration_key: row.text("integration_key")?,
        user_id: row.text("user_id")?,
        scopes: json_list(&row.text("scopes")?)?,
        resources: json_list(&row.text("resources")?)?,
        auth_time: row.opt_int("auth_time")?,
        access_jti: row.text("access_jti")?,
        access_expires_at: row.int("access_expires_at")?,
        created_at: row.int("created_at")?,
        expires_at: row.int("expires_at")?,
        rotated_at: row.opt_int("rotated_at")?,
        revoked_at: row.opt_int("revoked_at")?,
    })
}

const INSERT_REFRESH: &str = "INSERT INTO refresh_tokens (token_hash, family_id, integration_key, user_id, scopes, access_jti, access_expires_at, created_at, expires_at, resources, auth_time)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

/// Which refresh tokens a revocation reaches, with the values its `$2` (and `$3`)
/// stand for (`$1` is the time).
enum Chains<'a> {
    Family(&'a str),
    Grant {
        user_id: &'a str,
        integration_key: &'a str,
    },
}

impl<D: Dialect> SqlStore<D>
where
    for<'c> &'c mut <D::Db as Database>::Connection: Executor<'c, Database = D::Db>,
    for<'q> &'q str: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> Option<&'q str>: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> Option<i64>: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> String: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> i64: Encode<'q, D::Db> + Type<D::Db>,
{
    async fn user_login_where(
        &self,
        email: Option<&str>,
        user_id: Option<&str>,
    ) -> StoreResult<Option<UserLogin>> {
        let row = sqlx::query(
            "SELECT user_id, email, name, given_name, family_name, active, created_at, password_hash
             FROM users WHERE ($1 IS NULL OR lower(email) = lower($1)) AND ($2 IS NULL OR user_id = $2)
             LIMIT 1",
        )
        .bind(email)
        .bind(user_id)
        .fetch_optional(&self.reader)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(UserLogin {
            user: user_from_row(&row)?,
            password_hash: row.opt_text("password_hash")?,
        }))
    }

    /// Marks one row used (`mark`, binding `now` as `$1` and `hash` as `$2`) and,
    /// when it changed, stores `next`, in one transaction.
    async fn mark_and_insert_refresh(
        &self,
        mark: &'static str,
        hash: &str,
        now: i64,
        next: &RefreshTokenRecord,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin_with(D::BEGIN).await?;
        let done = sqlx::query(mark)
            .bind(now)
            .bind(hash)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query(INSERT_REFRESH)
            .bind(next.token_hash.as_str())
            .bind(next.family_id.as_str())
            .bind(next.integration_key.as_str())
            .bind(next.user_id.as_str())
            .bind(to_json(&next.scopes))
            .bind(next.access_jti.as_str())
            .bind(next.access_expires_at)
            .bind(next.created_at)
            .bind(next.expires_at)
            .bind(to_json(&next.resources))
            .bind(next.auth_time)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Revokes the refresh tokens of `chains`, the access tokens issued with them,
    /// and the unredeemed codes of the same grants.
    async fn revoke_chains(&self, chains: Chains<'_>, now: i64) -> StoreResult<u64> {
        let (filter, first, second) = match chains {
            Chains::Family(family_id) => ("family_id = $2", family_id, None),
            Chains::Grant {
                user_id,
                integration_key,
            } => (
                "user_id = $2 AND integration_key = $3",
                user_id,
                Some(integration_key),
            ),
        };
        let mut tx = self.writer.begin_with(D::BEGIN).await?;
        let bind = |sql: String| {
            let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now).bind(first);
            match second {
                Some(value) => query.bind(value),
                None => query,
            }
        };
        bind(format!(
            "INSERT INTO revoked_tokens (jti, expires_at)
             SELECT access_jti, access_expires_at FROM refresh_tokens
             WHERE {filter} AND access_expires_at > $1
             ON CONFLICT (jti) DO NOTHING"
        ))
        .execute(&mut *tx)
        .await?;
        let done = bind(format!(
            "UPDATE refresh_tokens SET revoked_at = $1 WHERE {filter} AND revoked_at IS NULL"
        ))
        .execute(&mut *tx)
        .await?;
        bind(format!(
            "UPDATE authorization_codes SET used_at = $1 WHERE {filter} AND used_at IS NULL"
        ))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl<D: Dialect> AuthorizationStore for SqlStore<D>
where
    for<'c> &'c mut <D::Db as Database>::Connection: Executor<'c, Database = D::Db>,
    for<'q> &'q str: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> Option<&'q str>: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> Option<i64>: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> &'q [u8]: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> String: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> i64: Encode<'q, D::Db> + Type<D::Db>,
{
    async fn set_integration_secret(
        &self,
        integration_key: &str,
        hash: Option<&str>,
    ) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE integrations SET client_secret_hash = $1 WHERE integration_key = $2",
        )
        .bind(hash)
        .bind(integration_key)
        .execute(&self.writer)
        .await?;
        require_changed(done.rows_affected(), "integration")
    }

    async fn set_user_password(&self, user_id: &str, hash: Option<&str>) -> StoreResult<()> {
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE user_id = $2")
            .bind(hash)
            .bind(user_id)
            .execute(&self.writer)
            .await?;
        require_changed(done.rows_affected(), "user")
    }

    async fn user_login_by_email(&self, email: &str) -> StoreResult<Option<UserLogin>> {
        if !crate::sql::storable_key(email) {
            return Ok(None);
        }
        self.user_login_where(Some(email), None).await
    }

    async fn user_login(&self, user_id: &str) -> StoreResult<Option<UserLogin>> {
        self.user_login_where(None, Some(user_id)).await
    }

    async fn create_authorization_code(&self, code: &AuthorizationCodeRecord) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO authorization_codes (code_hash, integration_key, user_id, redirect_uri, scopes, code_challenge, family_id, created_at, expires_at, resources, nonce, auth_time)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(code.code_hash.as_str())
        .bind(code.integration_key.as_str())
        .bind(code.user_id.as_str())
        .bind(code.redirect_uri.as_str())
        .bind(to_json(&code.scopes))
        .bind(code.code_challenge.as_deref())
        .bind(code.family_id.as_str())
        .bind(code.created_at)
        .bind(code.expires_at)
        .bind(to_json(&code.resources))
        .bind(code.nonce.as_deref())
        .bind(code.auth_time)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn authorization_code(
        &self,
        code_hash: &str,
    ) -> StoreResult<Option<AuthorizationCodeRecord>> {
        // From the writer: a code is read right after it was written, and a reuse
        // must see the first redemption.
        sqlx::query(
            "SELECT code_hash, integration_key, user_id, redirect_uri, scopes, resources, code_challenge, nonce, auth_time, family_id, created_at, expires_at, used_at
             FROM authorization_codes WHERE code_hash = $1",
        )
        .bind(code_hash)
        .fetch_optional(&self.writer)
        .await?
        .as_ref()
        .map(code_from_row)
        .transpose()
    }

    async fn redeem_authorization_code(
        &self,
        code_hash: &str,
        now: i64,
        first: &RefreshTokenRecord,
    ) -> StoreResult<bool> {
        self.mark_and_insert_refresh(
            "UPDATE authorization_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL",
            code_hash,
            now,
            first,
        )
        .await
    }

    async fn refresh_token(&self, token_hash: &str) -> StoreResult<Option<RefreshTokenRecord>> {
        sqlx::query(
            "SELECT token_hash, family_id, integration_key, user_id, scopes, resources, auth_time, access_jti, access_expires_at, created_at, expires_at, rotated_at, revoked_at
             FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.writer)
        .await?
        .as_ref()
        .map(refresh_from_row)
        .transpose()
    }

    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        now: i64,
        next: &RefreshTokenRecord,
    ) -> StoreResult<bool> {
        self.mark_and_insert_refresh(
            "UPDATE refresh_tokens SET rotated_at = $1
             WHERE token_hash = $2 AND rotated_at IS NULL AND revoked_at IS NULL",
            old_hash,
            now,
            next,
        )
        .await
    }

    async fn revoke_token_family(&self, family_id: &str, now: i64) -> StoreResult<u64> {
        self.revoke_chains(Chains::Family(family_id), now).await
    }

    async fn revoke_grants(
        &self,
        user_id: &str,
        integration_key: &str,
        now: i64,
    ) -> StoreResult<u64> {
        let chains = Chains::Grant {
            user_id,
            integration_key,
        };
        self.revoke_chains(chains, now).await
    }

    async fn revoke_access_token(&self, jti: &str, expires_at: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(expires_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn revoked_tokens_since(&self, seq: i64) -> StoreResult<Vec<RevokedToken>> {
        let rows = sqlx::query(
            "SELECT seq, jti, expires_at FROM revoked_tokens WHERE seq > $1 ORDER BY seq LIMIT 10000",
        )
        .bind(seq)
        .fetch_all(&self.reader)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RevokedToken {
                    seq: row.int("seq")?,
                    jti: row.text("jti")?,
                    expires_at: row.int("expires_at")?,
                })
            })
            .collect()
    }

    async fn sweep_authorizations(&self, now: i64) -> StoreResult<u64> {
        let codes = sqlx::query("DELETE FROM authorization_codes WHERE expires_at < $1")
            .bind(now - CODE_KEPT_AFTER_EXPIRY_SECS)
            .execute(&self.writer)
            .await?;
        let refresh = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
            .bind(now)
            .execute(&self.writer)
            .await?;
        let revoked = sqlx::query("DELETE FROM revoked_tokens WHERE expires_at < $1")
            .bind(now)
            .execute(&self.writer)
            .await?;
        Ok(codes.rows_affected() + refresh.rows_affected() + revoked.rows_affected())
    }

    async fn server_secret(&self, name: &str, candidate: &[u8], now: i64) -> StoreResult<Vec<u8>> {
        sqlx::query(
            "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .bind(now)
        .execute(&self.writer)
        .await?;
        let row = sqlx::query("SELECT value FROM server_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(&self.writer)
            .await?;
        Ok(row.bytes("value")?)
    }
}
