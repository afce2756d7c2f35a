//! The audit trail's storage: [`AuditStore`] writes batches of [`AuditEvent`]s,
//! lists them by the filters of `jwtgrant audit list`, and sweeps those past their
//! retention. On both databases a batch is a row of `audit_batches`, its events one
//! JSON text ([`encode_batch`]), which this module also reads and filters; on
//! PostgreSQL the table is shared by every instance, and a batch also names its
//! clients for an index.

use std::future::Future;

use async_trait::async_trait;
use sqlx::{Database, Encode, Executor, Type};

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
    /// Whether `event` passes every filter that is set.
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

/// Events one row of `audit_batches` holds at most (the server writes at most 512
/// at a time).
pub(crate) const EVENTS_PER_BATCH: usize = 512;
/// Batches a listing reads per statement, newest first.
pub(crate) const BATCHES_PER_PAGE: i64 = 16;
/// A page of batches before `($2, $3)` = `(last_ms, batch_id)`, with events from
/// `$1` on, newest first, at most `$4` of them (both databases' statement).
pub(crate) const BATCHES_BEFORE: &str = "SELECT batch_id, last_ms, events FROM audit_batches
     WHERE last_ms >= $1 AND (last_ms, batch_id) < ($2, $3)
     ORDER BY last_ms DESC, batch_id DESC
     LIMIT $4";

/// A row of `audit_batches` to write: at most [`EVENTS_PER_BATCH`] events.
pub(crate) struct NewBatch<'a> {
    /// The earliest event's time.
    pub first_ms: i64,
    /// The latest event's time.
    pub last_ms: i64,
    pub event_count: i64,
    /// The distinct clients of its events (PostgreSQL indexes them).
    pub client_ids: Vec<&'a str>,
    /// The events, as [`encode_batch`] writes them.
    pub events: String,
}

/// `events` as the rows of `audit_batches` that hold them, in order.
pub(crate) fn new_batches(events: &[AuditEvent]) -> Vec<NewBatch<'_>> {
    events
        .chunks(EVENTS_PER_BATCH)
        .map(|batch| {
            let times = batch.iter().map(|event| event.at_ms);
            let mut client_ids: Vec<&str> = batch
                .iter()
                .filter_map(|e| e.client_id.as_deref())
                .collect();
            client_ids.sort_unstable();
            client_ids.dedup();
            NewBatch {
                first_ms: times.clone().min().unwrap_or_default(),
                last_ms: times.max().unwrap_or_default(),
                event_count: batch.len() as i64,
                client_ids,
                events: encode_batch(batch),
            }
        })
        .collect()
}

/// A row of `audit_batches` as a listing reads it.
pub(crate) struct StoredBatch {
    pub batch_id: i64,
    pub last_ms: i64,
    /// The events, as [`encode_batch`] wrote them.
    pub events: String,
}

impl StoredBatch {
    /// Reads `batch_id`, `last_ms` and `events`.
    pub(crate) fn from_row(row: &impl RecordRow) -> StoreResult<Self> {
        Ok(StoredBatch {
            batch_id: row.int("batch_id")?,
            last_ms: row.int("last_ms")?,
            events: row.text("events")?,
        })
    }
}

/// The newest `query.limit` events that `query` selects, from the batches
/// `page_before((last_ms, batch_id))` returns: at most [`BATCHES_PER_PAGE`] of those
/// that come before that pair, newest first by `(last_ms, batch_id)`. Pages are read
/// until the older batches can hold none of the newest events.
pub(crate) async fn newest_in_batches<Page, Fut>(
    query: &AuditQuery,
    mut page_before: Page,
) -> StoreResult<Vec<AuditEvent>>
where
    Page: FnMut((i64, i64)) -> Fut,
    Fut: Future<Output = StoreResult<Vec<StoredBatch>>>,
{
    let mut newest = NewestEvents::new(query.limit);
    let mut before = (i64::MAX, i64::MAX);
    loop {
        let page = page_before(before).await?;
        if page.is_empty() {
            return Ok(newest.into_events());
        }
        for batch in page {
            if newest.full_before(batch.last_ms) {
                return Ok(newest.into_events());
            }
            for (position, event) in decode_batch(&batch.events)?.into_iter().enumerate() {
                if query.selects(&event) {
                    newest.offer(batch.batch_id, position, event);
                }
            }
            before = (batch.last_ms, batch.batch_id);
        }
    }
}

/// A batch that straddles the retention limit, as the sweep rewrites it: its
/// events from the limit on.
pub(crate) struct TrimmedBatch {
    /// The earliest time left (the limit, when nothing is).
    pub first_ms: i64,
    pub event_count: i64,
    pub client_ids: Vec<String>,
    pub events: String,
    /// How many events were taken out.
    pub forgotten: u64,
}

/// The batch `stored` (as [`encode_batch`] wrote it) without its events before
/// `before_ms`.
pub(crate) fn trim_batch(stored: &str, before_ms: i64) -> StoreResult<TrimmedBatch> {
    let events = decode_batch(stored)?;
    let count = events.len();
    let kept: Vec<AuditEvent> = events
        .into_iter()
        .filter(|event| event.at_ms >= before_ms)
        .collect();
    let forgotten = (count - kept.len()) as u64;
    // A stored batch holds at most EVENTS_PER_BATCH events, so what is kept is one row.
    Ok(match new_batches(&kept).into_iter().next() {
        Some(row) => TrimmedBatch {
            first_ms: row.first_ms,
            event_count: row.event_count,
            client_ids: row.client_ids.into_iter().map(str::to_owned).collect(),
            events: row.events,
            forgotten,
        },
        None => TrimmedBatch {
            first_ms: before_ms,
            event_count: 0,
            client_ids: Vec::new(),
            events: encode_batch(&[]),
            forgotten,
        },
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

/// An event as a batch holds it: an array in the columns' order of migration 6
/// (what [`encode_batch`] writes).
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

/// A batch: a JSON array of events, each an array in the columns' order of
/// migration 6 (`at_ms`, `instance`, ... `client_addr`). Written by hand rather
/// than through serde: most texts need no escaping and are copied as they are,
/// which halves what the writer task spends per event; one that does goes through
/// `serde_json`.
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
        Some(text) if jwtgrant_proto::json::is_plain(text.as_bytes()) => {
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

/// The newest `limit` events offered: by time, then by the order they were written
/// in (batch, then position), newest first.
struct NewestEvents {
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
    for<'q> i64: Encode<'q, D::Db> + Type<D::Db>,
{
    async fn record_audit_events(&self, events: &[AuditEvent]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        Ok(D::insert_audit_events(&self.writer, &storable(events)).await?)
    }

    async fn audit_events(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEvent>> {
        newest_in_batches(query, |before| {
            D::audit_batches_before(&self.reader, query, before)
        })
        .await
    }

    /// Drops the batches wholly older than `before_ms`, and rewrites those that
    /// straddle it with their newer events only. Each statement stands alone, so
    /// that SQLite's write lock is never held across an `await`. Batches written
    /// meanwhile are newer, and never touched; instances of a shared database that
    /// sweep at once drop and trim the same batches alike.
    async fn sweep_audit_events(&self, before_ms: i64) -> StoreResult<u64> {
        let whole =
            sqlx::query("DELETE FROM audit_batches WHERE last_ms < $1 RETURNING event_count")
                .bind(before_ms)
                .fetch_all(&self.writer)
                .await?;
        let straddling =
            sqlx::query("SELECT batch_id, events FROM audit_batches WHERE first_ms < $1")
                .bind(before_ms)
                .fetch_all(&self.writer)
                .await?;
        let mut forgotten = 0;
        for row in &whole {
            forgotten += u64::try_from(row.int("event_count")?).unwrap_or(0);
        }
        for row in &straddling {
            let trimmed = trim_batch(&row.text("events")?, before_ms)?;
            forgotten += trimmed.forgotten;
            D::rewrite_audit_batch(&self.writer, row.int("batch_id")?, trimmed).await?;
        }
        Ok(forgotten)
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
