//! The audit trail as the server keeps it: what a request learned on its way
//! ([`Facts`], noted where each fact is learned), the one [`AuditEvent`] each
//! decision of the token, introspection, revocation and authorization endpoints
//! becomes, and [`AuditTrail`], the bounded buffer a task drains into the store in
//! batches, off the request path. A full buffer drops its oldest event and counts
//! it; it never holds a request back. Events name clients, issuers, subjects, key
//! ids and token ids, never a secret, an assertion, a token or key material.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::HeaderMap;
use jwtgrant_store::{AuditEvent, Store};

use crate::clock::Clock;

/// The endpoints whose decisions are audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /oauth/token`.
    Token,
    /// `POST /oauth/introspect`.
    Introspect,
    /// `POST /oauth/revoke`.
    Revoke,
    /// `GET`/`POST /oauth/auth`: a code issued, or the request refused or denied.
    Authorize,
}

impl Endpoint {
    /// Its name in an event.
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Token => "token",
            Endpoint::Introspect => "introspect",
            Endpoint::Revoke => "revoke",
            Endpoint::Authorize => "authorize",
        }
    }
}

/// What a request learned about who asked for what, noted by the code that learns
/// it (the client once it authenticates, the issuer once the assertion parses, the
/// key once it verifies, the token once it is signed).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The grant type of a token request.
    pub grant_type: Option<&'static str>,
    /// The client: authenticated, or else named.
    pub client_id: Option<String>,
    /// The assertion's issuer.
    pub issuer: Option<String>,
    /// The subject of the token.
    pub subject: Option<String>,
    /// The scopes, space separated.
    pub scopes: Option<String>,
    /// The kid of the client key that verified the assertion.
    pub key_id: Option<String>,
    /// The `jti` of the token issued, introspected or revoked.
    pub token_id: Option<String>,
    /// The assertion's `jti`.
    pub assertion_jti: Option<String>,
    /// What a page of the authorization endpoint decided, when it decided: a code
    /// issued (`Ok`), or the request refused or denied; `None` while it only shows
    /// a sign-in or consent page.
    pub decision: Option<Result<(), Refusal>>,
}

tokio::task_local! {
    static FACTS: RefCell<Facts>;
}

/// Notes what the running request has learned, for its audit event. Outside a
/// request that is audited (a background task, a test calling a grant alone) it
/// does nothing.
pub fn note(learn: impl FnOnce(&mut Facts)) {
    let _ = FACTS.try_with(|facts| learn(&mut facts.borrow_mut()));
}

/// Notes the assertion's issuer, once it parses.
pub fn note_issuer(issuer: &str) {
    note(|facts| facts.issuer = Some(bounded(issuer)));
}

/// Notes what a verified assertion says: the client it yields tokens for, the key
/// that verified it, its subject and its `jti`.
pub fn note_verified(verified: &jwtgrant_core::VerifiedAssertion, client_id: &str) {
    note(|facts| {
        facts.client_id = Some(client_id.to_owned());
        facts.key_id = Some(bounded(verified.kid()));
        facts.subject = verified.subject().map(bounded);
        facts.assertion_jti = verified.jti().map(bounded);
    });
}

/// Notes the token a decision issued: its client, subject, scopes and `jti`.
pub fn note_issued(client_id: &str, subject: &str, scopes: &[String], token_id: &str) {
    note(|facts| {
        facts.client_id = Some(client_id.to_owned());
        facts.subject = Some(subject.to_owned());
        facts.scopes = (!scopes.is_empty()).then(|| scopes.join(" "));
        facts.token_id = Some(token_id.to_owned());
    });
}

/// A value a client chose (its `client_id`, an `iss`, a `sub`), cut to 256 bytes
/// for the trail.
pub fn bounded(value: &str) -> String {
    let mut end = value.len().min(256);
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value.get(..end).unwrap_or_default().to_owned()
}

/// Runs a request's handling, collecting the facts it notes.
pub async fn gathering<F: Future>(handling: F) -> (F::Output, Facts) {
    FACTS
        .scope(RefCell::new(Facts::default()), async {
            let output = handling.await;
            let facts = FACTS.with(|facts| facts.take());
            (output, facts)
        })
        .await
}

/// The request an event belongs to: its id and the client's address.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    /// The `X-Request-Id` the request carried (when it is a short printable token),
    /// or a fresh one (this process's random prefix and a count); the answer
    /// carries it back.
    pub request_id: String,
    /// The client's address.
    pub client_addr: Option<IpAddr>,
}

impl RequestMeta {
    /// Reads (or makes) the request id.
    pub fn new(headers: &HeaderMap, client_addr: Option<IpAddr>) -> Self {
        let given = headers
            .get("x-request-id")
            .and_then(|value| value.to_str().ok())
            .filter(|id| {
                !id.is_empty()
                    && id.len() <= 64
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
            });
        let request_id = match given {
            Some(id) => id.to_owned(),
            None => fresh_request_id(),
        };
        RequestMeta {
            request_id,
            client_addr,
        }
    }
}

/// A request id unique across instances and restarts without a random draw per
/// request: a random prefix drawn once per process, and a counter.
fn fresh_request_id() -> String {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        let random = uuid::Uuid::new_v4().simple().to_string();
        random.get(..12).unwrap_or_default().to_owned()
    });
    format!("{prefix}-{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// A refusal as an event records it: its rule code and OAuth error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The rule code (`jti_replayed`, ...).
    pub rule: &'static str,
    /// The OAuth error code (`invalid_grant`, ...).
    pub error: &'static str,
}

/// A decision waiting in the buffer: what the request knew, moved there as it was.
#[derive(Debug)]
struct PendingEvent {
    at_ms: i64,
    endpoint: Endpoint,
    meta: RequestMeta,
    facts: Facts,
    refusal: Option<Refusal>,
}

impl PendingEvent {
    /// The event as the store keeps it, decided by instance `instance`.
    fn into_event(self, instance: &str) -> AuditEvent {
        let PendingEvent {
            at_ms,
            endpoint,
            meta,
            facts,
            refusal,
        } = self;
        AuditEvent {
            at_ms,
            instance: instance.to_owned(),
            request_id: meta.request_id,
            endpoint: endpoint.as_str().to_owned(),
            grant_type: facts.grant_type.map(str::to_owned),
            client_id: facts.client_id,
            issuer: facts.issuer,
            subject: facts.subject,
            scopes: facts.scopes,
            decision: if refusal.is_some() {
                "refused"
            } else {
                "issued"
            }
            .to_owned(),
            rule: refusal.map(|r| r.rule.to_owned()),
            error: refusal.map(|r| r.error.to_owned()),
            key_id: facts.key_id,
            token_id: facts.token_id,
            assertion_jti: facts.assertion_jti,
            client_addr: meta.client_addr.map(|ip| ip.to_string()),
        }
    }
}

/// How many events one write takes at most.
const BATCH: usize = 512;
/// How long an event waits, at most, before its batch is written.
const FLUSH_INTERVAL: Duration = Duration::from_millis(200);
/// How often events past their retention are swept.
const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// The audit trail of one server instance.
#[derive(Debug)]
pub struct AuditTrail {
    enabled: bool,
    instance: String,
    capacity: usize,
    retention_ms: i64,
    log_json: bool,
    buffer: Mutex<VecDeque<PendingEvent>>,
    wake: tokio::sync::Notify,
    written: AtomicU64,
    dropped_full: AtomicU64,
    dropped_failed: AtomicU64,
    stopping: std::sync::atomic::AtomicBool,
}

/// What `/metrics` shows of the trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditCounts {
    /// Events written to the store.
    pub written: u64,
    /// Events dropped because the buffer was full.
    pub dropped_full: u64,
    /// Events dropped because the store refused their batch.
    pub dropped_failed: u64,
}

impl AuditTrail {
    /// A trail that keeps at most `capacity` events waiting, writes them kept for
    /// `retention_days`, and logs each as a JSON line when `log_json`. When not
    /// `enabled` it records nothing.
    pub fn new(enabled: bool, capacity: usize, retention_days: u64, log_json: bool) -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|name| name.trim().to_owned())
            .unwrap_or_else(|_| "localhost".to_owned());
        AuditTrail {
            enabled,
            instance: format!("{host}:{}", std::process::id()),
            capacity: capacity.max(1),
            retention_ms: i64::try_from(retention_days)
                .unwrap_or(i64::MAX / 86_400_000)
                .saturating_mul(86_400_000),
            log_json,
            buffer: Mutex::new(VecDeque::new()),
            wake: tokio::sync::Notify::new(),
            written: AtomicU64::new(0),
            dropped_full: AtomicU64::new(0),
            dropped_failed: AtomicU64::new(0),
            stopping: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether decisions are recorded.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Records one decision: `refusal` is `None` when the endpoint did what was
    /// asked. Never waits for the store.
    pub fn decided(
        &self,
        endpoint: Endpoint,
        meta: RequestMeta,
        facts: Facts,
        refusal: Option<Refusal>,
        at_ms: i64,
    ) {
        if !self.enabled {
            return;
        }
        // The event is made by the writer task, off the request path: here the
        // request's facts only move into the buffer.
        let event = PendingEvent {
            at_ms,
            endpoint,
            meta,
            facts,
            refusal,
        };
        let waiting = {
            let mut buffer = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
            if buffer.len() >= self.capacity {
                buffer.pop_front();
                self.dropped_full.fetch_add(1, Ordering::Relaxed);
            }
            buffer.push_back(event);
            buffer.len()
        };
        if waiting >= BATCH {
            self.wake.notify_one();
        }
    }

    /// The counters.
    pub fn counts(&self) -> AuditCounts {
        AuditCounts {
            written: self.written.load(Ordering::Relaxed),
            dropped_full: self.dropped_full.load(Ordering::Relaxed),
            dropped_failed: self.dropped_failed.load(Ordering::Relaxed),
        }
    }

    /// Writes what waits, a batch at a time, until the buffer is empty.
    pub async fn flush(&self, store: &dyn Store) {
        loop {
            let pending: Vec<PendingEvent> = {
                let mut buffer = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
                let take = buffer.len().min(BATCH);
                buffer.drain(..take).collect()
            };
            let batch: Vec<AuditEvent> = pending
                .into_iter()
                .map(|event| event.into_event(&self.instance))
                .collect();
            if batch.is_empty() {
                return;
            }
            if self.log_json {
                for event in &batch {
                    log_event(event);
                }
            }
            match store.record_audit_events(&batch).await {
                Ok(()) => {
                    self.written
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                }
                Err(error) => {
                    self.dropped_failed
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    tracing::warn!(%error, events = batch.len(), "audit events could not be written");
                    return;
                }
            }
        }
    }

    /// Asks [`AuditTrail::run`] to write what waits and return.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Drains the buffer into the store for as long as the server runs: a batch
    /// when one is full, else every [`FLUSH_INTERVAL`]; sweeps events past their
    /// retention every hour.
    pub async fn run(self: Arc<Self>, store: Arc<dyn Store>, clock: Clock) {
        if !self.enabled {
            return;
        }
        let mut last_sweep: Option<tokio::time::Instant> = None;
        loop {
            let _ = tokio::time::timeout(FLUSH_INTERVAL, self.wake.notified()).await;
            self.flush(store.as_ref()).await;
            if self.stopping.load(Ordering::Acquire) {
                // What came in meanwhile, then stop.
                self.flush(store.as_ref()).await;
                return;
            }
            if last_sweep.is_none_or(|at| at.elapsed() >= SWEEP_INTERVAL) {
                last_sweep = Some(tokio::time::Instant::now());
                let before = clock.now_ms().saturating_sub(self.retention_ms);
                match store.sweep_audit_events(before).await {
                    Ok(swept) if swept > 0 => tracing::debug!(swept, "forgot old audit events"),
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "audit sweep failed"),
                }
            }
        }
    }
}

/// One event as a JSON log line (under `--log-format json`), target
/// `jwtgrant::audit`.
fn log_event(event: &AuditEvent) {
    tracing::info!(
        target: "jwtgrant::audit",
        at_ms = event.at_ms,
        instance = %event.instance,
        request_id = %event.request_id,
        endpoint = %event.endpoint,
        grant_type = event.grant_type.as_deref(),
        client_id = event.client_id.as_deref(),
        issuer = event.issuer.as_deref(),
        subject = event.subject.as_deref(),
        scopes = event.scopes.as_deref(),
        decision = %event.decision,
        rule = event.rule.as_deref(),
        error = event.error.as_deref(),
        key_id = event.key_id.as_deref(),
        token_id = event.token_id.as_deref(),
        assertion_jti = event.assertion_jti.as_deref(),
        client_addr = event.client_addr.as_deref(),
        "audit"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> RequestMeta {
        RequestMeta {
            request_id: "r".into(),
            client_addr: None,
        }
    }

    #[test]
    fn a_full_buffer_drops_the_oldest_and_counts() {
        let trail = AuditTrail::new(true, 3, 30, false);
        for i in 0..5 {
            trail.decided(Endpoint::Token, meta(), Facts::default(), None, i);
        }
        let buffer = trail.buffer.lock().unwrap();
        let kept: Vec<i64> = buffer.iter().map(|e| e.at_ms).collect();
        assert_eq!(kept, [2, 3, 4]);
        assert_eq!(trail.counts().dropped_full, 2);
    }

    #[test]
    fn a_disabled_trail_keeps_nothing() {
        let trail = AuditTrail::new(false, 3, 30, false);
        trail.decided(Endpoint::Token, meta(), Facts::default(), None, 1);
        assert!(trail.buffer.lock().unwrap().is_empty());
    }

    #[test]
    fn a_request_id_is_taken_only_when_it_is_a_short_token() {
        let mut headers = HeaderMap::new();
        headers.insert("x-request-id", "abc-123".parse().unwrap());
        assert_eq!(RequestMeta::new(&headers, None).request_id, "abc-123");
        headers.insert("x-request-id", "a b\"c".parse().unwrap());
        let made = RequestMeta::new(&headers, None).request_id;
        let next = RequestMeta::new(&headers, None).request_id;
        assert_ne!(made, next);
        assert_eq!(
            made.split_once('-').map(|(prefix, _)| prefix.len()),
            Some(12),
            "{made}"
        );
    }

    #[tokio::test]
    async fn facts_are_gathered_from_the_request_only() {
        note(|facts| facts.issuer = Some("outside".into()));
        let ((), facts) = gathering(async {
            note(|facts| facts.issuer = Some("iss".into()));
            tokio::task::yield_now().await;
            note(|facts| facts.key_id = Some("k".into()));
        })
        .await;
        assert_eq!(facts.issuer.as_deref(), Some("iss"));
        assert_eq!(facts.key_id.as_deref(), Some("k"));
    }
}
