//! When to fetch a trusted issuer's keys again: the caching rules of PROTOCOL.md
//! ("Trusted issuers", keys) as a small state machine that is told the time and
//! what each fetch gave, and answers what to do with the next assertion. It does no
//! IO and reads no clock; the server's adapter fetches (one fetch at a time per
//! issuer) and reports back.
//!
//! The rules, each with a test below:
//! - Keys are cached for the response's `max-age`, bounded to [`MIN_TTL_SECS`] ..
//!   [`MAX_TTL_SECS`]; [`DEFAULT_TTL_SECS`] without one.
//! - From [`REFRESH_AHEAD_PERCENT`] of that life on they are refreshed while still
//!   in use ([`Lookup::Refresh`]), so that an outage is met with keys still good.
//! - A `kid` not among the cached keys causes a fetch at most once per
//!   [`UNKNOWN_KID_REFETCH_SECS`] after the last fetch: within it the cached keys
//!   answer and the verifier refuses the unknown `kid`, so a flood of random `kid`s
//!   is not a flood of fetches.
//! - A failed fetch keeps the last good keys until their cache life ends; then, with
//!   no keys, the issuer is [`Lookup::Unavailable`].
//! - After a failure no fetch is made for a backoff that doubles from
//!   [`BACKOFF_MIN_SECS`] to [`BACKOFF_MAX_SECS`] with each failure in a row.

use std::sync::Arc;

use crate::jwks::IssuerKeySet;

/// The shortest time keys are cached, whatever the response says.
pub const MIN_TTL_SECS: i64 = 5 * 60;
/// The longest time keys are cached, whatever the response says.
pub const MAX_TTL_SECS: i64 = 24 * 60 * 60;
/// How long keys are cached when the response gives no `max-age`.
pub const DEFAULT_TTL_SECS: i64 = 60 * 60;
/// The share of the cache life after which keys in use are refreshed.
pub const REFRESH_AHEAD_PERCENT: i64 = 80;
/// The least time between a fetch and a fetch for an unknown `kid`.
pub const UNKNOWN_KID_REFETCH_SECS: i64 = 60;
/// The backoff after one failed fetch.
pub const BACKOFF_MIN_SECS: i64 = 10;
/// The longest backoff after failed fetches in a row.
pub const BACKOFF_MAX_SECS: i64 = 60;

/// What to do for an assertion, as [`KeyCache::lookup`] decides.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// Verify with these keys.
    Use(Arc<IssuerKeySet>),
    /// Verify with these keys, and refresh them without waiting: they near the end
    /// of their cache life.
    Refresh(Arc<IssuerKeySet>),
    /// Fetch, and verify with what the fetch gives; if it fails, with `fallback`
    /// (keys still in their cache life that lack the asked `kid`), or refuse.
    Fetch {
        /// The keys to use should the fetch fail.
        fallback: Option<Arc<IssuerKeySet>>,
    },
    /// No keys may be used, and no fetch may be made yet: refuse, with the last
    /// failure's reason.
    Unavailable(String),
}

/// The cached keys of one issuer and the history of its fetches.
#[derive(Debug, Clone, Default)]
pub struct KeyCache {
    good: Option<Good>,
    /// When the last fetch, good or failed, was reported: what the unknown-`kid`
    /// refetch interval counts from.
    last_fetch_at: Option<i64>,
    failure: Option<Failure>,
}

#[derive(Debug, Clone)]
struct Good {
    keys: Arc<IssuerKeySet>,
    refresh_at: i64,
    expires_at: i64,
}

#[derive(Debug, Clone)]
struct Failure {
    reason: String,
    in_a_row: u32,
    retry_at: i64,
}

impl KeyCache {
    /// A cache that has fetched nothing: the first lookup says fetch.
    pub fn new() -> Self {
        Self::default()
    }

    /// What to do for an assertion naming `kid` (or none) at `now`.
    pub fn lookup(&self, kid: Option<&str>, now: i64) -> Lookup {
        let may_fetch = self.failure.as_ref().is_none_or(|f| now >= f.retry_at);
        match &self.good {
            Some(good) if now < good.expires_at => {
                let keys = Arc::clone(&good.keys);
                let known = kid.is_none_or(|kid| keys.contains_kid(kid));
                if !known {
                    let interval_over = self
                        .last_fetch_at
                        .is_none_or(|at| now >= at.saturating_add(UNKNOWN_KID_REFETCH_SECS));
                    if may_fetch && interval_over {
                        Lookup::Fetch {
                            fallback: Some(keys),
                        }
                    } else {
                        Lookup::Use(keys)
                    }
                } else if may_fetch && now >= good.refresh_at {
                    Lookup::Refresh(keys)
                } else {
                    Lookup::Use(keys)
                }
            }
            _ => match &self.failure {
                Some(failure) if !may_fetch => Lookup::Unavailable(failure.reason.clone()),
                _ => Lookup::Fetch { fallback: None },
            },
        }
    }

    /// Reports a good fetch at `now` whose response said `max_age` (seconds).
    pub fn record_success(&mut self, keys: Arc<IssuerKeySet>, max_age: Option<u64>, now: i64) {
        let ttl = cache_life(max_age);
        self.good = Some(Good {
            keys,
            refresh_at: now.saturating_add(ttl * REFRESH_AHEAD_PERCENT / 100),
            expires_at: now.saturating_add(ttl),
        });
        self.last_fetch_at = Some(now);
        self.failure = None;
    }

    /// Reports a failed fetch at `now`; `reason` is what [`Lookup::Unavailable`]
    /// says once the good keys, if any, have run out.
    pub fn record_failure(&mut self, reason: impl Into<String>, now: i64) {
        let in_a_row = self.failure.as_ref().map_or(0, |f| f.in_a_row) + 1;
        self.failure = Some(Failure {
            reason: reason.into(),
            in_a_row,
            retry_at: now.saturating_add(backoff(in_a_row)),
        });
        self.last_fetch_at = Some(now);
    }

    /// When the cached keys stop being used; `None` with none.
    pub fn expires_at(&self) -> Option<i64> {
        self.good.as_ref().map(|good| good.expires_at)
    }
}

/// How long keys are cached for a response's `max-age`.
pub fn cache_life(max_age: Option<u64>) -> i64 {
    match max_age {
        None => DEFAULT_TTL_SECS,
        Some(secs) => i64::try_from(secs)
            .unwrap_or(MAX_TTL_SECS)
            .clamp(MIN_TTL_SECS, MAX_TTL_SECS),
    }
}

/// The backoff after `in_a_row` failed fetches (1 or more).
fn backoff(in_a_row: u32) -> i64 {
    let doublings = in_a_row.saturating_sub(1).min(8);
    BACKOFF_MIN_SECS
        .saturating_mul(1 << doublings)
        .min(BACKOFF_MAX_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::JwsAlgorithm;
    use crate::keys::SigningKey;
    use crate::model::IntegrationKey;

    const T0: i64 = 1_700_000_000;

    fn key_set(kids: &[&str]) -> Arc<IssuerKeySet> {
        let key = SigningKey::generate(JwsAlgorithm::EdDsa, 0).unwrap();
        Arc::new(IssuerKeySet::from_keys(
            kids.iter()
                .map(|kid| IntegrationKey {
                    kid: (*kid).to_owned(),
                    public_key: key.public_key().clone(),
                    active: true,
                })
                .collect(),
        ))
    }

    fn kids(lookup: &Lookup) -> Vec<String> {
        match lookup {
            Lookup::Use(keys) | Lookup::Refresh(keys) => {
                keys.keys.iter().map(|k| k.kid.clone()).collect()
            }
            other => panic!("no keys in {other:?}"),
        }
    }

    fn is_use(lookup: &Lookup) -> bool {
        matches!(lookup, Lookup::Use(_))
    }

    fn is_fetch(lookup: &Lookup, with_fallback: bool) -> bool {
        matches!(lookup, Lookup::Fetch { fallback } if fallback.is_some() == with_fallback)
    }

    /// A cache that fetched `["a"]` at T0 with this `max-age`.
    fn fetched(max_age: Option<u64>) -> KeyCache {
        let mut cache = KeyCache::new();
        cache.record_success(key_set(&["a"]), max_age, T0);
        cache
    }

    #[test]
    fn nothing_cached_means_fetch() {
        let cache = KeyCache::new();
        assert!(is_fetch(&cache.lookup(None, T0), false));
        assert!(is_fetch(&cache.lookup(Some("a"), T0), false));
        assert_eq!(cache.expires_at(), None);
    }

    #[test]
    fn keys_live_for_max_age_within_bounds() {
        for (max_age, life) in [
            (Some(600), 600),
            (Some(0), MIN_TTL_SECS),
            (Some(60), MIN_TTL_SECS),
            (Some(7 * 86_400), MAX_TTL_SECS),
            (Some(u64::MAX), MAX_TTL_SECS),
            (None, DEFAULT_TTL_SECS),
        ] {
            let cache = fetched(max_age);
            assert_eq!(cache.expires_at(), Some(T0 + life), "{max_age:?}");
            assert!(!is_fetch(&cache.lookup(Some("a"), T0 + life - 1), false));
            assert!(
                is_fetch(&cache.lookup(Some("a"), T0 + life), false),
                "{max_age:?}: expired keys are not a fallback"
            );
        }
    }

    #[test]
    fn keys_are_refreshed_ahead_of_their_end() {
        let cache = fetched(Some(1000));
        assert!(is_use(&cache.lookup(Some("a"), T0 + 799)));
        assert!(is_use(&cache.lookup(None, T0 + 799)));
        assert_eq!(kids(&cache.lookup(Some("a"), T0 + 800)), ["a"]);
        assert!(matches!(
            cache.lookup(Some("a"), T0 + 800),
            Lookup::Refresh(_)
        ));
        assert!(matches!(cache.lookup(None, T0 + 999), Lookup::Refresh(_)));
    }

    #[test]
    fn a_refresh_moves_the_cache_life() {
        let mut cache = fetched(Some(1000));
        cache.record_success(key_set(&["b"]), Some(1000), T0 + 900);
        assert_eq!(cache.expires_at(), Some(T0 + 1900));
        assert_eq!(kids(&cache.lookup(Some("b"), T0 + 1500)), ["b"]);
        assert!(is_use(&cache.lookup(Some("b"), T0 + 1500)));
    }

    #[test]
    fn an_unknown_kid_refetches_at_most_once_a_minute() {
        let mut cache = fetched(Some(3600));
        // Within a minute of the fetch, the cache answers: the verifier refuses.
        for second in 0..UNKNOWN_KID_REFETCH_SECS {
            let lookup = cache.lookup(Some(&format!("random-{second}")), T0 + second);
            assert!(is_use(&lookup), "second {second}");
        }
        // A minute on, one unknown kid may fetch, with the cached keys to fall back on.
        let lookup = cache.lookup(Some("random"), T0 + UNKNOWN_KID_REFETCH_SECS);
        assert!(is_fetch(&lookup, true));
        // It fetched and the kid is still unknown: another minute before the next.
        let at = T0 + UNKNOWN_KID_REFETCH_SECS;
        cache.record_success(key_set(&["a"]), Some(3600), at);
        assert!(is_use(&cache.lookup(Some("other"), at + 59)));
        assert!(is_fetch(&cache.lookup(Some("other"), at + 60), true));
        // A known kid never fetches.
        assert!(is_use(&cache.lookup(Some("a"), at + 60)));
    }

    #[test]
    fn an_unknown_kid_found_by_the_refetch_is_used() {
        let mut cache = fetched(Some(3600));
        let at = T0 + 120;
        assert!(is_fetch(&cache.lookup(Some("new"), at), true));
        cache.record_success(key_set(&["a", "new"]), Some(3600), at);
        assert!(is_use(&cache.lookup(Some("new"), at)));
    }

    #[test]
    fn a_failed_refresh_keeps_the_keys_until_their_life_ends() {
        let mut cache = fetched(Some(1000));
        // The refresh ahead of the end fails: the keys stay in use.
        assert!(matches!(
            cache.lookup(Some("a"), T0 + 800),
            Lookup::Refresh(_)
        ));
        cache.record_failure("HTTP status 503", T0 + 800);
        assert!(is_use(&cache.lookup(Some("a"), T0 + 805)));
        assert_eq!(kids(&cache.lookup(Some("a"), T0 + 999)), ["a"]);
        cache.record_failure("HTTP status 503", T0 + 990);
        assert!(is_use(&cache.lookup(Some("a"), T0 + 999)));
        // Their life over, and the backoff not, the issuer is unavailable.
        match cache.lookup(Some("a"), T0 + 1000) {
            Lookup::Unavailable(reason) => assert_eq!(reason, "HTTP status 503"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            cache.lookup(None, T0 + 1000),
            Lookup::Unavailable(_)
        ));
    }

    #[test]
    fn a_failure_with_no_keys_is_unavailable_until_the_backoff_ends() {
        let mut cache = KeyCache::new();
        cache.record_failure("timed out", T0);
        for second in 0..BACKOFF_MIN_SECS {
            assert!(
                matches!(cache.lookup(Some("a"), T0 + second), Lookup::Unavailable(ref r) if r == "timed out"),
                "second {second}"
            );
        }
        assert!(is_fetch(
            &cache.lookup(Some("a"), T0 + BACKOFF_MIN_SECS),
            false
        ));
    }

    #[test]
    fn the_backoff_doubles_up_to_its_bound_and_a_success_resets_it() {
        let mut cache = KeyCache::new();
        let mut at = T0;
        for expected in [10, 20, 40, 60, 60, 60] {
            cache.record_failure("connection failed", at);
            assert!(matches!(
                cache.lookup(None, at + expected - 1),
                Lookup::Unavailable(_)
            ));
            assert!(
                is_fetch(&cache.lookup(None, at + expected), false),
                "{expected}"
            );
            at += expected;
        }
        cache.record_success(key_set(&["a"]), Some(300), at);
        // Expired again, the first failure in a new row waits the shortest backoff.
        let later = at + 300;
        cache.record_failure("connection failed", later);
        assert!(matches!(
            cache.lookup(None, later + 9),
            Lookup::Unavailable(_)
        ));
        assert!(is_fetch(&cache.lookup(None, later + 10), false));
    }

    #[test]
    fn no_unknown_kid_refetch_during_a_backoff() {
        let mut cache = fetched(Some(3600));
        let at = T0 + 600;
        cache.record_failure("HTTP status 500", at);
        // More than a minute after the last good fetch, but within the backoff.
        assert!(is_use(&cache.lookup(Some("random"), at + 9)));
        // The backoff over, the minute since the failed fetch is still running.
        assert!(is_use(&cache.lookup(Some("random"), at + 10)));
        assert!(is_fetch(&cache.lookup(Some("random"), at + 60), true));
    }

    #[test]
    fn no_refresh_ahead_during_a_backoff() {
        let mut cache = fetched(Some(1000));
        cache.record_failure("timed out", T0 + 850);
        assert!(is_use(&cache.lookup(Some("a"), T0 + 855)));
        assert!(matches!(
            cache.lookup(Some("a"), T0 + 860),
            Lookup::Refresh(_)
        ));
    }

    #[test]
    fn time_going_back_is_harmless() {
        // A caller that waited for another's fetch reports an earlier `now`.
        let mut cache = fetched(Some(600));
        assert!(is_use(&cache.lookup(Some("random"), T0 - 5)));
        cache.record_failure("timed out", T0 + 700);
        assert!(matches!(
            cache.lookup(Some("a"), T0 + 690),
            Lookup::Unavailable(_)
        ));
    }
}
