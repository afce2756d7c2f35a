//! The audit trail's storage: [`AuditStore`] writes batches of [`AuditEvent`]s,
//! lists them by the filters of `jwtgrant audit list`, and sweeps those past their
//! retention, on both databases (one table, `audit_events`, shared by every
//! instance of a PostgreSQL deployment).

use async_trait::async_trait;
use sqlx::{Database, Encode, Executor, Type};

use crate::StoreResult;
use crate::rows::RecordRow;
use crate::sql::{Dialect, RowsAffected, SqlStore};

/// One decision of an endpoint, as the audit trail keeps it. It names who and what
/// (client, issuer, subject, key id, token id) and never holds a secret, an
/// assertion, a token or key material.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditEvent {
    /// When the decision was made, in Unix milliseconds.
    pub at_ms: i64,
    /// The instance that decided (its host name and process id).
    pub instance: String,
    /// The request's id (its `X-Request-Id`, or one the server made).
    pub request_id: String,
    /// `token`, `introspect`, `revoke` or `authorize`.
    pub endpoint: String,
    /// The grant type of a token request.
    pub grant_type: Option<String>,
    /// The client: the one that authenticated, or else the one the request named.
    pub client_id: Option<String>,
    /// The assertion's issuer (an integration key or a trusted issuer's `iss`).
    pub issuer: Option<String>,
    /// The subject the token is (or would have been) for.
    pub subject: Option<String>,
    /// The scopes, space separated.
    pub scopes: Option<String>,
    /// `issued` or `refused` (for introspection and revocation, `issued` means the
    /// request was answered as asked).
    pub decision: String,
    /// The rule code of a refusal, as its `error_description` leads with.
    pub rule: Option<String>,
    /// The OAuth error code of a refusal.
    pub error: Option<String>,
    /// The `kid` of the client's key that verified the assertion.
    pub key_id: Option<String>,
    /// The `jti` of the access token issued, introspected or revoked.
    pub token_id: Option<String>,
    /// The assertion's `jti`.
    pub assertion_jti: Option<String>,
    /// The client's address.
    pub client_addr: Option<String>,
}

/// Which events `jwtgrant audit list` shows: every filter set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only events at or after this time (Unix milliseconds).
    pub since_ms: Option<i64>,
    /// Only this client's.
    pub client_id: Option<String>,
    /// Only this issuer's.
    pub issuer: Option<String>,
    /// Only for this subject.
    pub subject: Option<String>,
    /// Only `issued` or only `refused`.
    pub decision: Option<String>,
    /// Only refusals by this rule.
    pub rule: Option<String>,
    /// Only assertions verified by this key id.
    pub key_id: Option<String>,
    /// At most this many, newest first.
    pub limit: u32,
}

/// The audit trail's table.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Writes a batch of events in one transaction.
    async fn record_audit_events(&self, events: &[AuditEvent]) -> StoreResult<()>;
    /// The events `query` selects, newest first.
    async fn audit_events(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEvent>>;
    /// Forgets the events older than `before_ms`; returns how many.
    async fn sweep_audit_events(&self, before_ms: i64) -> StoreResult<u64>;
}

/// The columns an event is read back from.
const COLUMNS: &str = "at_ms, instance, request_id, endpoint, grant_type, client_id, issuer, \
     subject, scopes, decision, rule, error, key_id, token_id, assertion_jti, client_addr";
/// SQLite's insert of `rows` events.
pub(crate) fn sqlite_insert(rows: usize) -> String {
    let mut sql = String::with_capacity(200 + rows * 36);
    sql.push_str(
        "INSERT INTO audit_events (at_ms, instance, request_id, endpoint, grant_type, \
         client_id, issuer, subject, scopes, decision, rule, error, key_id, token_id, \
         assertion_jti, client_addr) VALUES ",
    );
    for i in 0..rows {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    }
    sql
}

/// PostgreSQL's insert of a whole batch, each column an array.
pub(crate) const POSTGRES_INSERT: &str = "INSERT INTO audit_events (at_ms, instance, request_id, \
     endpoint, grant_type, client_id, issuer, subject, scopes, decision, rule, error, key_id, \
     token_id, assertion_jti, client_addr) \
     SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], \
     $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::TEXT[], $11::TEXT[], $12::TEXT[], \
     $13::TEXT[], $14::TEXT[], $15::TEXT[], $16::TEXT[])";

fn event_from_row(row: &impl RecordRow) -> StoreResult<AuditEvent> {
    Ok(AuditEvent {
        at_ms: row.int("at_ms")?,
        instance: row.text("instance")?,
        request_id: row.text("request_id")?,
        endpoint: row.text("endpoint")?,
        grant_type: row.opt_text("grant_type")?,
        client_id: row.opt_text("client_id")?,
        issuer: row.opt_text("issuer")?,
        subject: row.opt_text("subject")?,
        scopes: row.opt_text("scopes")?,
        decision: row.text("decision")?,
        rule: row.opt_text("rule")?,
        error: row.opt_text("error")?,
        key_id: row.opt_text("key_id")?,
        token_id: row.opt_text("token_id")?,
        assertion_jti: row.opt_text("assertion_jti")?,
        client_addr: row.opt_text("client_addr")?,
    })
}

/// The events with every NUL replaced by U+FFFD, on both databases alike. PostgreSQL
/// text cannot hold a NUL, and a client can put one in a claim (an `iss`, read
/// before any signature is checked). Kept as it is, that one event would fail its
/// whole batch, and take other clients' events with it.
fn storable(events: &[AuditEvent]) -> std::borrow::Cow<'_, [AuditEvent]> {
    fn has_nul(event: &AuditEvent) -> bool {
        text_fields(event).any(|text| text.contains('\0'))
    }
    if !events.iter().any(has_nul) {
        return std::borrow::Cow::Borrowed(events);
    }
    let clean = |text: &mut String| {
        if text.contains('\0') {
            *text = text.replace('\0', "\u{FFFD}");
        }
    };
    let mut events = events.to_vec();
    for event in &mut events {
        for text in [
            &mut event.instance,
            &mut event.request_id,
            &mut event.endpoint,
            &mut event.decision,
        ] {
            clean(text);
        }
        for text in [
            &mut event.grant_type,
            &mut event.client_id,
            &mut event.issuer,
            &mut event.subject,
            &mut event.scopes,
            &mut event.rule,
            &mut event.error,
            &mut event.key_id,
            &mut event.token_id,
            &mut event.assertion_jti,
            &mut event.client_addr,
        ]
        .into_iter()
        .flatten()
        {
            clean(text);
        }
    }
    std::borrow::Cow::Owned(events)
}

/// Every text of an event.
fn text_fields(event: &AuditEvent) -> impl Iterator<Item = &str> {
    [
        Some(event.instance.as_str()),
        Some(event.request_id.as_str()),
        Some(event.endpoint.as_str()),
        Some(event.decision.as_str()),
        event.grant_type.as_deref(),
        event.client_id.as_deref(),
        event.issuer.as_deref(),
        event.subject.as_deref(),
        event.scopes.as_deref(),
        event.rule.as_deref(),
        event.error.as_deref(),
        event.key_id.as_deref(),
        event.token_id.as_deref(),
        event.assertion_jti.as_deref(),
        event.client_addr.as_deref(),
    ]
    .into_iter()
    .flatten()
}

#[async_trait]
impl<D: Dialect> AuditStore for SqlStore<D>
where
    for<'c> &'c mut <D::Db as Database>::Connection: Executor<'c, Database = D::Db>,
    for<'q> &'q str: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> Option<&'q str>: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> i64: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> Option<i64>: Encode<'q, D::Db> + Type<D::Db>,
{
    async fn record_audit_events(&self, events: &[AuditEvent]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        Ok(D::insert_audit_events(&self.writer, &storable(events)).await?)
    }

    async fn audit_events(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM audit_events
             WHERE ($1 IS NULL OR at_ms >= $1)
               AND ($2 IS NULL OR client_id = $2)
               AND ($3 IS NULL OR issuer = $3)
               AND ($4 IS NULL OR subject = $4)
               AND ($5 IS NULL OR decision = $5)
               AND ($6 IS NULL OR rule = $6)
               AND ($7 IS NULL OR key_id = $7)
             ORDER BY at_ms DESC, event_id DESC
             LIMIT $8"
        )))
        .bind(query.since_ms)
        .bind(query.client_id.as_deref())
        .bind(query.issuer.as_deref())
        .bind(query.subject.as_deref())
        .bind(query.decision.as_deref())
        .bind(query.rule.as_deref())
        .bind(query.key_id.as_deref())
        .bind(i64::from(query.limit))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(event_from_row)
        .collect()
    }

    async fn sweep_audit_events(&self, before_ms: i64) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM audit_events WHERE at_ms < $1")
            .bind(before_ms)
            .execute(&self.writer)
            .await?;
        Ok(done.rows_affected())
    }
}
