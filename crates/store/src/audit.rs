//! The audit trail's storage: [`AuditStore`] writes batches of [`AuditEvent`]s,
//! lists them by the filters of `jwtgrant audit list`, and sweeps those past their
//! retention. On PostgreSQL an event is a row of `audit_events`, one table shared by
//! every instance; on SQLite a batch is a row of `audit_batches`, its events one
//! JSON text ([`encode_batch`]), which this module also reads and filters.

use async_trait::async_trait;
use sqlx::{Database, Executor};

use crate::rows::RecordRow;
use crate::sql::{Dialect, SqlStore};
use crate::{StoreError, StoreResult};

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

impl AuditQuery {
    /// Whether `event` passes every filter that is set (what PostgreSQL's `WHERE`
    /// says, for the embedded store's batches).
    pub(crate) fn selects(&self, event: &AuditEvent) -> bool {
        let same = |wanted: &Option<String>, value: Option<&str>| {
            wanted.as_deref().is_none_or(|wanted| value == Some(wanted))
        };
        self.since_ms.is_none_or(|since| event.at_ms >= since)
            && same(&self.client_id, event.client_id.as_deref())
            && same(&self.issuer, event.issuer.as_deref())
            && same(&self.subject, event.subject.as_deref())
            && same(&self.decision, Some(event.decision.as_str()))
            && same(&self.rule, event.rule.as_deref())
            && same(&self.key_id, event.key_id.as_deref())
    }
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

/// The columns an event is read back from (PostgreSQL's table; on SQLite, also the
/// order of an event's array in a batch).
const COLUMNS: &str = "at_ms, instance, request_id, endpoint, grant_type, client_id, issuer, \
     subject, scopes, decision, rule, error, key_id, token_id, assertion_jti, client_addr";
/// PostgreSQL's insert of a whole batch, each column an array.
pub(crate) const POSTGRES_INSERT: &str = "INSERT INTO audit_events (at_ms, instance, request_id, \
     endpoint, grant_type, client_id, issuer, subject, scopes, decision, rule, error, key_id, \
     token_id, assertion_jti, client_addr) \
     SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], \
     $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::TEXT[], $11::TEXT[], $12::TEXT[], \
     $13::TEXT[], $14::TEXT[], $15::TEXT[], $16::TEXT[])";

/// PostgreSQL's listing, newest first: every filter that is set must match.
pub(crate) fn postgres_select() -> String {
    format!(
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
    )
}

pub(crate) fn event_from_row(row: &impl RecordRow) -> StoreResult<AuditEvent> {
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

/// An event as a batch of the embedded store holds it: an array in [`COLUMNS`]'
/// order (what [`encode_batch`] writes).
type EventColumns = (
    i64,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// A batch of the embedded store: a JSON array of events, each an array in
/// [`COLUMNS`]' order. Written by hand rather than through serde: most texts need no
/// escaping and are copied as they are, which halves what the writer task spends
/// per event; one that does goes through `serde_json`.
pub(crate) fn encode_batch(events: &[AuditEvent]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(2 + events.len() * 400);
    out.push('[');
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "[{}", e.at_ms);
        for text in [
            Some(e.instance.as_str()),
            Some(e.request_id.as_str()),
            Some(e.endpoint.as_str()),
            e.grant_type.as_deref(),
            e.client_id.as_deref(),
            e.issuer.as_deref(),
            e.subject.as_deref(),
            e.scopes.as_deref(),
            Some(e.decision.as_str()),
            e.rule.as_deref(),
            e.error.as_deref(),
            e.key_id.as_deref(),
            e.token_id.as_deref(),
            e.assertion_jti.as_deref(),
            e.client_addr.as_deref(),
        ] {
            out.push(',');
            push_json_text(&mut out, text);
        }
        out.push(']');
    }
    out.push(']');
    out
}

/// `text` as a JSON string (or `null`).
fn push_json_text(out: &mut String, text: Option<&str>) {
    match text {
        None => out.push_str("null"),
        Some(text) if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') => {
            out.push('"');
            out.push_str(text);
            out.push('"');
        }
        // A string always serializes.
        Some(text) => out.push_str(&serde_json::to_string(text).unwrap_or_default()),
    }
}

/// The events of a batch [`encode_batch`] wrote.
pub(crate) fn decode_batch(text: &str) -> StoreResult<Vec<AuditEvent>> {
    let rows: Vec<EventColumns> = serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("an audit batch does not decode: {e}")))?;
    Ok(rows
        .into_iter()
        .map(
            |(
                at_ms,
                instance,
                request_id,
                endpoint,
                grant_type,
                client_id,
                issuer,
                subject,
                scopes,
                decision,
                rule,
                error,
                key_id,
                token_id,
                assertion_jti,
                client_addr,
            )| AuditEvent {
                at_ms,
                instance,
                request_id,
                endpoint,
                grant_type,
                client_id,
                issuer,
                subject,
                scopes,
                decision,
                rule,
                error,
                key_id,
                token_id,
                assertion_jti,
                client_addr,
            },
        )
        .collect())
}

/// The newest `limit` events offered, in the order PostgreSQL lists them: by time,
/// then by the order they were written in (batch, then position), newest first.
pub(crate) struct NewestEvents {
    limit: usize,
    found: Vec<((i64, i64, usize), AuditEvent)>,
}

impl NewestEvents {
    pub(crate) fn new(limit: u32) -> Self {
        NewestEvents {
            limit: limit as usize,
            found: Vec::new(),
        }
    }

    /// Offers the event at `position` of batch `batch_id`.
    pub(crate) fn offer(&mut self, batch_id: i64, position: usize, event: AuditEvent) {
        self.found.push(((event.at_ms, batch_id, position), event));
        if self.found.len() >= 2 * self.limit + 1024 {
            self.keep_newest();
        }
    }

    /// Whether a batch whose latest event is at `last_ms` can hold none of the
    /// newest `limit`: there are `limit` already, all later.
    pub(crate) fn full_before(&mut self, last_ms: i64) -> bool {
        if self.limit == 0 {
            return true;
        }
        self.keep_newest();
        self.found
            .get(self.limit - 1)
            .is_some_and(|((at_ms, _, _), _)| *at_ms > last_ms)
    }

    pub(crate) fn into_events(mut self) -> Vec<AuditEvent> {
        self.keep_newest();
        self.found.into_iter().map(|(_, event)| event).collect()
    }

    fn keep_newest(&mut self) {
        self.found
            .sort_unstable_by_key(|found| std::cmp::Reverse(found.0));
        self.found.truncate(self.limit);
    }
}

#[async_trait]
impl<D: Dialect> AuditStore for SqlStore<D>
where
    for<'c> &'c mut <D::Db as Database>::Connection: Executor<'c, Database = D::Db>,
{
    async fn record_audit_events(&self, events: &[AuditEvent]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        Ok(D::insert_audit_events(&self.writer, &storable(events)).await?)
    }

    async fn audit_events(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
        D::audit_events(&self.reader, query).await
    }

    async fn sweep_audit_events(&self, before_ms: i64) -> StoreResult<u64> {
        D::sweep_audit_events(&self.writer, before_ms).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the batch encoder writes is JSON that reads back as the same events,
    /// whatever their text holds.
    #[test]
    fn a_batch_reads_back_as_it_was_written() {
        let odd = "quo\"te \\ {\"a\": 1} \u{1} \t\n ü 🚀 \u{2028} \u{7f} \u{0}";
        let events = [
            AuditEvent {
                at_ms: -5,
                instance: "h:1".into(),
                request_id: odd.into(),
                endpoint: "token".into(),
                grant_type: Some("urn:ietf:params:oauth:grant-type:jwt-bearer".into()),
                subject: Some(odd.into()),
                decision: "refused".into(),
                rule: Some("jti_replayed".into()),
                ..AuditEvent::default()
            },
            AuditEvent {
                at_ms: i64::MAX,
                client_addr: Some("::1".into()),
                ..AuditEvent::default()
            },
        ];
        let text = encode_batch(&events);
        assert!(
            serde_json::from_str::<serde_json::Value>(&text).is_ok(),
            "{text}"
        );
        assert_eq!(decode_batch(&text).ok().as_deref(), Some(&events[..]));
        assert_eq!(decode_batch(&encode_batch(&[])).ok(), Some(Vec::new()));
    }
}
