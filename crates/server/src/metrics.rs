//! Prometheus metrics of one server instance: grants issued, refused by error code
//! and by rule, token endpoint latency, and the audit trail's events written and
//! dropped. Plain atomics rendered as text, so several servers in
//! one process (as in the tests) each count their own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use jwtgrant_core::grants::GrantType;
use jwtgrant_proto::ErrorCode;

use crate::audit::AuditCounts;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Codes a refusal can carry, in the order they are counted.
const REFUSAL_CODES: [ErrorCode; 11] = [
    ErrorCode::InvalidRequest,
    ErrorCode::InvalidClient,
    ErrorCode::InvalidGrant,
    ErrorCode::UnauthorizedClient,
    ErrorCode::UnsupportedGrantType,
    ErrorCode::InvalidScope,
    ErrorCode::ConsentRequired,
    ErrorCode::InvalidTarget,
    ErrorCode::SlowDown,
    ErrorCode::TemporarilyUnavailable,
    ErrorCode::ServerError,
];

/// The counters.
#[derive(Debug, Default)]
pub struct Metrics {
    issued: [AtomicU64; GrantType::ALL.len()],
    refused: [AtomicU64; REFUSAL_CODES.len()],
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_micros: AtomicU64,
    /// Refusals by rule code: the rules are few and fixed, refusals off the fast
    /// path, so a lock is cheap here.
    refused_by_rule: std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>>,
}

impl Metrics {
    /// Counts a token issued by `grant`.
    pub fn grant_issued(&self, grant: GrantType) {
        if let Some(i) = GrantType::ALL.iter().position(|g| *g == grant)
            && let Some(counter) = self.issued.get(i)
        {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a refused token request, by its error code and its rule.
    pub fn grant_refused(&self, code: ErrorCode, rule: &'static str) {
        *self
            .refused_by_rule
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(rule)
            .or_default() += 1;
        if let Some(i) = REFUSAL_CODES.iter().position(|c| *c == code)
            && let Some(counter) = self.refused.get(i)
        {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records one token request's duration.
    pub fn observe_latency(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|bound| secs <= *bound)
            && let Some(bucket) = self.latency_buckets.get(i)
        {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Renders the Prometheus text exposition format, with the audit trail's counts.
    pub fn render(&self, audit: AuditCounts) -> String {
        use std::fmt::Write as _;
        let mut out = String::with_capacity(2048);
        let _ = writeln!(
            out,
            "# HELP jwtgrant_grants_issued_total Access tokens issued."
        );
        let _ = writeln!(out, "# TYPE jwtgrant_grants_issued_total counter");
        for (grant, counter) in GrantType::ALL.iter().zip(&self.issued) {
            let _ = writeln!(
                out,
                "jwtgrant_grants_issued_total{{grant_type=\"{}\"}} {}",
                grant.label(),
                counter.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP jwtgrant_grants_refused_total Token requests refused, by OAuth error code."
        );
        let _ = writeln!(out, "# TYPE jwtgrant_grants_refused_total counter");
        for (code, counter) in REFUSAL_CODES.iter().zip(&self.refused) {
            let _ = writeln!(
                out,
                "jwtgrant_grants_refused_total{{error=\"{}\"}} {}",
                code.as_str(),
                counter.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP jwtgrant_refusals_total Token requests refused, by the rule code their error_description leads with."
        );
        let _ = writeln!(out, "# TYPE jwtgrant_refusals_total counter");
        for (rule, count) in self
            .refused_by_rule
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(out, "jwtgrant_refusals_total{{rule=\"{rule}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "# HELP jwtgrant_audit_events_written_total Audit events written to the store."
        );
        let _ = writeln!(out, "# TYPE jwtgrant_audit_events_written_total counter");
        let _ = writeln!(out, "jwtgrant_audit_events_written_total {}", audit.written);
        let _ = writeln!(
            out,
            "# HELP jwtgrant_audit_dropped_total Audit events lost: the buffer was full (the oldest went), or the store refused their batch."
        );
        let _ = writeln!(out, "# TYPE jwtgrant_audit_dropped_total counter");
        let _ = writeln!(
            out,
            "jwtgrant_audit_dropped_total{{reason=\"buffer_full\"}} {}",
            audit.dropped_full
        );
        let _ = writeln!(
            out,
            "jwtgrant_audit_dropped_total{{reason=\"store_error\"}} {}",
            audit.dropped_failed
        );
        let _ = writeln!(
            out,
            "# HELP jwtgrant_token_request_duration_seconds Token endpoint latency."
        );
        let _ = writeln!(
            out,
            "# TYPE jwtgrant_token_request_duration_seconds histogram"
        );
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS.iter().zip(&self.latency_buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "jwtgrant_token_request_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "jwtgrant_token_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "jwtgrant_token_request_duration_seconds_sum {}",
            self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "jwtgrant_token_request_duration_seconds_count {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let metrics = Metrics::default();
        metrics.grant_issued(GrantType::JwtBearer);
        metrics.grant_issued(GrantType::RefreshToken);
        metrics.grant_issued(GrantType::RefreshToken);
        metrics.grant_refused(ErrorCode::InvalidGrant, "jti_replayed");
        metrics.grant_refused(ErrorCode::InvalidGrant, "assertion_expired");
        metrics.observe_latency(Duration::from_micros(300));
        metrics.observe_latency(Duration::from_millis(3));
        let text = metrics.render(AuditCounts {
            written: 5,
            dropped_full: 2,
            dropped_failed: 0,
        });
        assert!(text.contains("jwtgrant_grants_issued_total{grant_type=\"jwt-bearer\"} 1"));
        assert!(text.contains("jwtgrant_grants_issued_total{grant_type=\"refresh_token\"} 2"));
        assert!(text.contains("jwtgrant_grants_issued_total{grant_type=\"authorization_code\"} 0"));
        assert!(text.contains("jwtgrant_grants_refused_total{error=\"invalid_grant\"} 2"));
        assert!(text.contains("jwtgrant_refusals_total{rule=\"jti_replayed\"} 1"));
        assert!(text.contains("jwtgrant_audit_events_written_total 5"));
        assert!(text.contains("jwtgrant_audit_dropped_total{reason=\"buffer_full\"} 2"));
        assert!(text.contains("jwtgrant_token_request_duration_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(text.contains("jwtgrant_token_request_duration_seconds_bucket{le=\"0.005\"} 2"));
        assert!(text.contains("jwtgrant_token_request_duration_seconds_count 2"));
    }
}
