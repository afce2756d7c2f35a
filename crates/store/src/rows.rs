//! The record shapes both SQL backends read and write: row mapping over a small
//! column-reading trait, and the JSON columns (scope and redirect URI lists).

use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::{
    AccountRecord, ConsentRecord, IntegrationKeyRecord, IntegrationRecord, JtiRecord,
    SigningKeyRecord, StoreError, StoreResult, UserRecord,
};

/// Reads a column of one of the types the records use, whatever the backend.
pub(crate) trait RecordRow {
    fn text(&self, column: &str) -> Result<String, sqlx::Error>;
    fn opt_text(&self, column: &str) -> Result<Option<String>, sqlx::Error>;
    fn flag(&self, column: &str) -> Result<bool, sqlx::Error>;
    fn int(&self, column: &str) -> Result<i64, sqlx::Error>;
    fn opt_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error>;
    fn bytes(&self, column: &str) -> Result<Vec<u8>, sqlx::Error>;
}

impl<R: Row> RecordRow for R
where
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> bool: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
    for<'c> &'c str: ColumnIndex<R>,
{
    fn text(&self, column: &str) -> Result<String, sqlx::Error> {
        self.try_get(column)
    }
    fn opt_text(&self, column: &str) -> Result<Option<String>, sqlx::Error> {
        self.try_get(column)
    }
    fn flag(&self, column: &str) -> Result<bool, sqlx::Error> {
        self.try_get(column)
    }
    fn int(&self, column: &str) -> Result<i64, sqlx::Error> {
        self.try_get(column)
    }
    fn opt_int(&self, column: &str) -> Result<Option<i64>, sqlx::Error> {
        self.try_get(column)
    }
    fn bytes(&self, column: &str) -> Result<Vec<u8>, sqlx::Error> {
        self.try_get(column)
    }
}

pub(crate) fn json_list(text: &str) -> StoreResult<Vec<String>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn to_json(list: &[String]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".to_owned())
}

pub(crate) fn integration_from_row(row: &impl RecordRow) -> StoreResult<IntegrationRecord> {
    Ok(IntegrationRecord {
        integration_key: row.text("integration_key")?,
        name: row.text("name")?,
        active: row.flag("active")?,
        allow_application_tokens: row.flag("allow_application_tokens")?,
        require_jti: row.flag("require_jti")?,
        scopes: json_list(&row.text("scopes")?)?,
        redirect_uris: json_list(&row.text("redirect_uris")?)?,
        resources: json_list(&row.text("resources")?)?,
        default_scopes: json_list(&row.text("default_scopes")?)?,
        client_secret_hash: row.opt_text("client_secret_hash")?,
        created_at: row.int("created_at")?,
        keys: Vec::new(),
    })
}

pub(crate) fn key_from_row(row: &impl RecordRow) -> StoreResult<IntegrationKeyRecord> {
    Ok(IntegrationKeyRecord {
        kid: row.text("kid")?,
        public_jwk: row.text("public_jwk")?,
        active: row.flag("active")?,
        created_at: row.int("created_at")?,
    })
}

pub(crate) fn user_from_row(row: &impl RecordRow) -> StoreResult<UserRecord> {
    Ok(UserRecord {
        user_id: row.text("user_id")?,
        email: row.text("email")?,
        name: row.text("name")?,
        given_name: row.text("given_name")?,
        family_name: row.text("family_name")?,
        active: row.flag("active")?,
        created_at: row.int("created_at")?,
    })
}

pub(crate) fn account_from_row(row: &impl RecordRow) -> StoreResult<AccountRecord> {
    Ok(AccountRecord {
        account_id: row.text("account_id")?,
        user_id: row.text("user_id")?,
        account_name: row.text("account_name")?,
        base_uri: row.text("base_uri")?,
        is_default: row.flag("is_default")?,
        organization: row.opt_text("organization")?,
        created_at: row.int("created_at")?,
    })
}

pub(crate) fn consent_from_row(row: &impl RecordRow) -> StoreResult<ConsentRecord> {
    Ok(ConsentRecord {
        user_id: row.text("user_id")?,
        integration_key: row.text("integration_key")?,
        scopes: json_list(&row.text("scopes")?)?,
        granted_at: row.int("granted_at")?,
    })
}

pub(crate) fn jti_from_row(row: &impl RecordRow) -> StoreResult<JtiRecord> {
    Ok(JtiRecord {
        issuer: row.text("issuer")?,
        jti: row.text("jti")?,
        remember_until: row.int("expires_at")?,
    })
}

pub(crate) fn signing_key_from_row(row: &impl RecordRow) -> StoreResult<SigningKeyRecord> {
    Ok(SigningKeyRecord {
        kid: row.text("kid")?,
        alg: row.text("alg")?,
        private_key_pkcs8: row.bytes("private_key")?,
        created_at: row.int("created_at")?,
        activates_at: row.int("activates_at")?,
    })
}

pub(crate) fn require_changed(rows: u64, what: &'static str) -> StoreResult<()> {
    if rows == 0 {
        Err(StoreError::NotFound(what))
    } else {
        Ok(())
    }
}
