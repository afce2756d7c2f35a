//! Trusted issuers' keys by URL: one [`KeyCache`] per issuer, fed by the
//! [`SafeFetcher`], so the grant asks for an issuer's keys and gets the cached ones,
//! or the ones a fetch just gave, or why there are none.
//!
//! - One fetch at a time per issuer: callers that need a fetch while one runs wait
//!   for it and then read what it recorded (the cache's rules then keep them from
//!   fetching again), so concurrent callers share one fetch.
//! - A fetch runs in a task of its own, so it finishes and is recorded even if the
//!   caller that started it goes away; it takes at most the fetcher's timeout,
//!   discovery included. Issuers share no lock that a fetch holds: a hanging JWKS
//!   endpoint delays only its own issuer's requests.
//! - Keys due for refresh are used at once and refreshed in the background.
//! - An issuer's cache is keyed by its source and allowed algorithms too: when
//!   either changes, its keys are fetched afresh. [`IssuerKeys::forget`] and
//!   [`IssuerKeys::retain`] drop issuers that are gone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use jwtgrant_core::JwsAlgorithm;
use jwtgrant_core::jwks::{IssuerKeySet, parse_jwks};
use jwtgrant_core::jwks_cache::{KeyCache, Lookup};

use crate::fetch::SafeFetcher;

/// Where an issuer's keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A JWKS URL.
    JwksUri(String),
    /// The `jwks_uri` of the issuer's OIDC or RFC 8414 metadata.
    Discovery {
        /// The issuer URL, exactly as its metadata must name it.
        issuer: String,
    },
    /// A JWKS given in advance (a file), parsed once by the caller.
    Static(Arc<IssuerKeySet>),
}

/// Why an issuer's keys cannot be had. The reason is short and holds no response
/// body: the grant refuses with `issuer_keys_unavailable: {reason}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerKeysError {
    /// No keys may be used now: the fetch failed, or failed recently and is not
    /// tried again yet.
    #[error("{reason}")]
    Unavailable {
        /// What went wrong, e.g. `jwks fetch: timed out`.
        reason: String,
    },
}

/// The keys of every trusted issuer whose keys come by URL.
#[derive(Debug, Clone)]
pub struct IssuerKeys {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    fetcher: SafeFetcher,
    issuers: Mutex<HashMap<String, Arc<Entry>>>,
}

/// A remote source, as an issuer's cache is keyed by it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Remote {
    JwksUri(String),
    Discovery(String),
}

/// A remote source borrowed from a [`KeySource`]: compared on every call, copied
/// only into a new cache.
#[derive(Debug, Clone, Copy)]
enum RemoteRef<'a> {
    JwksUri(&'a str),
    Discovery(&'a str),
}

impl Remote {
    fn is(&self, other: RemoteRef<'_>) -> bool {
        match (self, other) {
            (Remote::JwksUri(mine), RemoteRef::JwksUri(theirs))
            | (Remote::Discovery(mine), RemoteRef::Discovery(theirs)) => mine == theirs,
            _ => false,
        }
    }
}

impl RemoteRef<'_> {
    fn to_owned(self) -> Remote {
        match self {
            RemoteRef::JwksUri(url) => Remote::JwksUri(url.to_owned()),
            RemoteRef::Discovery(issuer) => Remote::Discovery(issuer.to_owned()),
        }
    }
}

#[derive(Debug)]
struct Entry {
    remote: Remote,
    allowed_algs: Vec<JwsAlgorithm>,
    cache: Mutex<KeyCache>,
    /// Held by the one fetch of this issuer under way.
    fetching: tokio::sync::Mutex<()>,
    /// Whether a background refresh is spawned and not done.
    refreshing: AtomicBool,
}

/// Why a fetch runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// The caller needs it and waits for it.
    Needed,
    /// The keys near their end; nobody waits.
    Ahead,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing panics while holding these locks; a poisoned one holds good state.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn unavailable(reason: impl Into<String>) -> IssuerKeysError {
    IssuerKeysError::Unavailable {
        reason: reason.into(),
    }
}

impl IssuerKeys {
    /// Keys fetched with `fetcher`, none cached yet.
    pub fn new(fetcher: SafeFetcher) -> Self {
        IssuerKeys {
            inner: Arc::new(Inner {
                fetcher,
                issuers: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The keys to verify an assertion of `issuer_id` that names `kid` (or none) at
    /// `now` (Unix seconds): the cached ones, or, when the cache says so, what a
    /// fetch from `source` gives, read under `allowed_algs`. An unknown `kid` may
    /// get keys without it: the verifier then refuses it.
    pub async fn keys(
        &self,
        issuer_id: &str,
        source: &KeySource,
        allowed_algs: &[JwsAlgorithm],
        kid: Option<&str>,
        now: i64,
    ) -> Result<Arc<IssuerKeySet>, IssuerKeysError> {
        let remote = match source {
            KeySource::Static(keys) => return Ok(Arc::clone(keys)),
            KeySource::JwksUri(url) => RemoteRef::JwksUri(url),
            KeySource::Discovery { issuer } => RemoteRef::Discovery(issuer),
        };
        let entry = self.entry(issuer_id, remote, allowed_algs);
        let lookup = lock(&entry.cache).lookup(kid, now);
        match lookup {
            Lookup::Use(keys) => Ok(keys),
            Lookup::Unavailable(reason) => Err(unavailable(reason)),
            Lookup::Refresh(keys) => {
                // One refresh in the background at a time, however many callers see
                // the keys due.
                if !entry.refreshing.swap(true, Ordering::AcqRel) {
                    let refresh =
                        self.fetch(issuer_id, Arc::clone(&entry), kid, now, Trigger::Ahead);
                    tokio::spawn(async move {
                        let _ = refresh.await;
                        entry.refreshing.store(false, Ordering::Release);
                    });
                }
                Ok(keys)
            }
            Lookup::Fetch { .. } => {
                let fetch = self.fetch(issuer_id, entry, kid, now, Trigger::Needed);
                tokio::spawn(fetch)
                    .await
                    .unwrap_or_else(|_| Err(unavailable("key fetch failed")))
            }
        }
    }

    /// Drops what is cached for `issuer_id` (removed, or its source changed).
    pub fn forget(&self, issuer_id: &str) {
        lock(&self.inner.issuers).remove(issuer_id);
    }

    /// Drops every issuer for which `keep` is false: the registry's reload.
    pub fn retain(&self, mut keep: impl FnMut(&str) -> bool) {
        lock(&self.inner.issuers).retain(|issuer_id, _| keep(issuer_id));
    }

    /// The issuer's cache for this source and these algorithms; a fresh one when
    /// they changed.
    fn entry(
        &self,
        issuer_id: &str,
        remote: RemoteRef<'_>,
        allowed_algs: &[JwsAlgorithm],
    ) -> Arc<Entry> {
        let mut issuers = lock(&self.inner.issuers);
        match issuers.get(issuer_id) {
            Some(entry) if entry.remote.is(remote) && entry.allowed_algs == allowed_algs => {
                Arc::clone(entry)
            }
            _ => {
                let entry = Arc::new(Entry {
                    remote: remote.to_owned(),
                    allowed_algs: allowed_algs.to_vec(),
                    cache: Mutex::new(KeyCache::new()),
                    fetching: tokio::sync::Mutex::new(()),
                    refreshing: AtomicBool::new(false),
                });
                issuers.insert(issuer_id.to_owned(), Arc::clone(&entry));
                entry
            }
        }
    }

    /// One fetch for `entry`, once no other runs, if the cache still wants one
    /// then; records what it gives. A future of its own ('static), to be spawned.
    fn fetch(
        &self,
        issuer_id: &str,
        entry: Arc<Entry>,
        kid: Option<&str>,
        now: i64,
        trigger: Trigger,
    ) -> impl Future<Output = Result<Arc<IssuerKeySet>, IssuerKeysError>> + Send + 'static {
        let inner = Arc::clone(&self.inner);
        let issuer_id = issuer_id.to_owned();
        let kid = kid.map(str::to_owned);
        async move {
            let _fetching = entry.fetching.lock().await;
            // Another caller's fetch may have answered while this one waited.
            let lookup = lock(&entry.cache).lookup(kid.as_deref(), now);
            let fallback = match (lookup, trigger) {
                (Lookup::Use(keys), _) | (Lookup::Refresh(keys), Trigger::Needed) => {
                    return Ok(keys);
                }
                (Lookup::Unavailable(reason), _) => return Err(unavailable(reason)),
                (Lookup::Refresh(keys), Trigger::Ahead) => Some(keys),
                (Lookup::Fetch { fallback }, _) => fallback,
            };
            let fetcher = &inner.fetcher;
            let fetched = tokio::time::timeout(
                fetcher.policy().timeout,
                fetch_keys(fetcher, &entry.remote, &entry.allowed_algs),
            )
            .await
            .unwrap_or_else(|_| Err("jwks fetch: timed out".to_owned()));
            match fetched {
                Ok((keys, max_age)) => {
                    if !keys.skipped.is_empty() {
                        tracing::warn!(issuer = %issuer_id, skipped = ?keys.skipped, "issuer keys skipped");
                    }
                    let keys = Arc::new(keys);
                    lock(&entry.cache).record_success(Arc::clone(&keys), max_age, now);
                    Ok(keys)
                }
                Err(reason) => {
                    tracing::warn!(issuer = %issuer_id, %reason, "issuer keys fetch failed");
                    lock(&entry.cache).record_failure(reason.clone(), now);
                    fallback.ok_or_else(|| unavailable(reason))
                }
            }
        }
    }
}

/// Fetches and reads the keys of `remote`: the key set and its `max-age`, or a
/// short reason.
async fn fetch_keys(
    fetcher: &SafeFetcher,
    remote: &Remote,
    allowed_algs: &[JwsAlgorithm],
) -> Result<(IssuerKeySet, Option<u64>), String> {
    let jwks_uri = match remote {
        Remote::JwksUri(url) => url.clone(),
        Remote::Discovery(issuer) => fetcher.discover_jwks_uri(issuer).await.map_err(|error| {
            tracing::debug!(?error, "issuer discovery failed");
            format!("discovery: {error}")
        })?,
    };
    let fetched = fetcher.get(&jwks_uri).await.map_err(|error| {
        tracing::debug!(?error, "issuer jwks fetch failed");
        format!("jwks fetch: {error}")
    })?;
    let keys = parse_jwks(&fetched.body, allowed_algs).map_err(|error| {
        tracing::debug!(?error, "issuer jwks unusable");
        error.to_string()
    })?;
    Ok((keys, fetched.max_age))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use axum::Router;
    use axum::http::{StatusCode, header};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use jwtgrant_core::SigningKey;
    use serde_json::{Value, json};

    use super::*;
    use crate::fetch::FetchPolicy;
    use crate::test_servers::{Hits, Then, raw, serve};

    const T0: i64 = 1_700_000_000;

    /// What the JWKS server answers, changed by the test as it goes.
    #[derive(Debug, Clone)]
    struct Reply {
        status: StatusCode,
        body: String,
        cache_control: Option<&'static str>,
        delay: Duration,
    }

    /// A JWKS server on 127.0.0.1: its `/jwks` answers the current [`Reply`].
    struct JwksServer {
        url: String,
        port: u16,
        hits: Hits,
        reply: Arc<Mutex<Reply>>,
    }

    impl JwksServer {
        async fn start(body: String, cache_control: Option<&'static str>) -> Self {
            let reply = Arc::new(Mutex::new(Reply {
                status: StatusCode::OK,
                body,
                cache_control,
                delay: Duration::ZERO,
            }));
            let hits = Hits::default();
            let (shared, counter) = (Arc::clone(&reply), hits.clone());
            let app = Router::new().route(
                "/jwks",
                get(move || {
                    let (shared, counter) = (Arc::clone(&shared), counter.clone());
                    async move {
                        counter.hit();
                        let reply = lock(&shared).clone();
                        tokio::time::sleep(reply.delay).await;
                        let mut response: Response = (reply.status, reply.body).into_response();
                        if let Some(value) = reply.cache_control {
                            response
                                .headers_mut()
                                .insert(header::CACHE_CONTROL, value.parse().unwrap());
                        }
                        response
                    }
                }),
            );
            let port = serve(app).await;
            JwksServer {
                url: format!("http://127.0.0.1:{port}/jwks"),
                port,
                hits,
                reply,
            }
        }

        fn source(&self) -> KeySource {
            KeySource::JwksUri(self.url.clone())
        }

        fn set(&self, change: impl FnOnce(&mut Reply)) {
            change(&mut lock(&self.reply));
        }

        /// Waits (a few seconds at most) until the server has had `count` requests.
        async fn wait_for_hits(&self, count: usize) {
            let started = Instant::now();
            while self.hits.get() < count && started.elapsed() < Duration::from_secs(5) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(self.hits.get(), count);
            // Let the fetch record what it got.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn jwk(alg: JwsAlgorithm, kid: &str) -> Value {
        let key = SigningKey::generate(alg, 2048).unwrap();
        serde_json::to_value(key.public_key().to_jwk(Some(kid), Some(alg))).unwrap()
    }

    fn jwks(keys: &[Value]) -> String {
        json!({ "keys": keys }).to_string()
    }

    fn good_jwks(kids: &[&str]) -> String {
        let keys: Vec<Value> = kids
            .iter()
            .map(|kid| jwk(JwsAlgorithm::Es256, kid))
            .collect();
        jwks(&keys)
    }

    fn issuer_keys(timeout: Duration) -> IssuerKeys {
        IssuerKeys::new(
            SafeFetcher::new(FetchPolicy {
                allow_insecure: true,
                timeout,
                ..FetchPolicy::default()
            })
            .unwrap(),
        )
    }

    fn kids(keys: &IssuerKeySet) -> Vec<&str> {
        keys.keys.iter().map(|key| key.kid.as_str()).collect()
    }

    fn reason(result: Result<Arc<IssuerKeySet>, IssuerKeysError>) -> String {
        match result {
            Err(IssuerKeysError::Unavailable { reason }) => reason,
            Ok(keys) => panic!("keys {:?}", kids(&keys)),
        }
    }

    #[tokio::test]
    async fn keys_are_cached_for_their_max_age() {
        let server = JwksServer::start(good_jwks(&["k1"]), Some("max-age=600")).await;
        let keys = issuer_keys(Duration::from_secs(5));
        let source = server.source();
        let first = keys
            .keys("iss", &source, &[], Some("k1"), T0)
            .await
            .unwrap();
        assert_eq!(kids(&first), ["k1"]);
        for at in [T0 + 1, T0 + 100, T0 + 479] {
            let again = keys
                .keys("iss", &source, &[], Some("k1"), at)
                .await
                .unwrap();
            assert!(Arc::ptr_eq(&first, &again));
            keys.keys("iss", &source, &[], None, at).await.unwrap();
        }
        assert_eq!(server.hits.get(), 1);
        // Past their life the keys are fetched again, and the caller waits for them.
        server.set(|reply| reply.body = good_jwks(&["k2"]));
        let later = keys
            .keys("iss", &source, &[], Some("k2"), T0 + 600)
            .await
            .unwrap();
        assert_eq!(kids(&later), ["k2"]);
        assert_eq!(server.hits.get(), 2);
    }

    #[tokio::test]
    async fn keys_due_for_refresh_are_used_while_they_are_refreshed() {
        let server = JwksServer::start(good_jwks(&["k1"]), Some("max-age=600")).await;
        let keys = issuer_keys(Duration::from_secs(5));
        let source = server.source();
        keys.keys("iss", &source, &[], Some("k1"), T0)
            .await
            .unwrap();
        // From 80% of the life on, a slow endpoint does not hold the caller up.
        server.set(|reply| {
            reply.body = good_jwks(&["k1", "k2"]);
            reply.delay = Duration::from_millis(500);
        });
        let started = Instant::now();
        for _ in 0..5 {
            let due = keys
                .keys("iss", &source, &[], Some("k1"), T0 + 480)
                .await
                .unwrap();
            assert_eq!(kids(&due), ["k1"]);
        }
        assert!(started.elapsed() < Duration::from_millis(400));
        server.wait_for_hits(2).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        let fresh = keys
            .keys("iss", &source, &[], Some("k2"), T0 + 481)
            .await
            .unwrap();
        assert_eq!(kids(&fresh), ["k1", "k2"]);
        assert_eq!(server.hits.get(), 2, "one background refresh");
    }

    #[tokio::test]
    async fn a_static_source_is_never_fetched() {
        let set =
            Arc::new(jwtgrant_core::jwks::parse_jwks(good_jwks(&["s"]).as_bytes(), &[]).unwrap());
        let keys = issuer_keys(Duration::from_secs(5));
        let got = keys
            .keys(
                "iss",
                &KeySource::Static(Arc::clone(&set)),
                &[],
                Some("other"),
                T0,
            )
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&got, &set));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_callers_share_one_fetch() {
        let server = JwksServer::start(good_jwks(&["k1"]), None).await;
        server.set(|reply| reply.delay = Duration::from_millis(300));
        let keys = issuer_keys(Duration::from_secs(5));
        let mut callers = tokio::task::JoinSet::new();
        for i in 0..16 {
            let (keys, source) = (keys.clone(), server.source());
            callers.spawn(async move {
                let kid = if i % 2 == 0 { Some("k1") } else { None };
                keys.keys("iss", &source, &[], kid, T0).await
            });
        }
        while let Some(result) = callers.join_next().await {
            assert_eq!(kids(&result.unwrap().unwrap()), ["k1"]);
        }
        assert_eq!(server.hits.get(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hanging_endpoint_delays_only_its_own_issuer() {
        let timeout = Duration::from_secs(1);
        let keys = issuer_keys(timeout);
        let (hanging_port, connections) = raw(Vec::new(), Then::Stall).await;
        let hanging = KeySource::JwksUri(format!("http://127.0.0.1:{hanging_port}/jwks"));
        let good = JwksServer::start(good_jwks(&["k1"]), None).await;

        let started = Instant::now();
        let mut waiting = tokio::task::JoinSet::new();
        for _ in 0..3 {
            let (keys, hanging) = (keys.clone(), hanging.clone());
            waiting.spawn(async move { keys.keys("stuck", &hanging, &[], Some("k"), T0).await });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Meanwhile another issuer is served at once.
        let served = Instant::now();
        let other = keys
            .keys("fine", &good.source(), &[], Some("k1"), T0)
            .await
            .unwrap();
        assert_eq!(kids(&other), ["k1"]);
        assert!(
            served.elapsed() < Duration::from_millis(500),
            "{:?}",
            served.elapsed()
        );
        assert!(!waiting.is_empty() && started.elapsed() < timeout);

        while let Some(result) = waiting.join_next().await {
            assert_eq!(reason(result.unwrap()), "jwks fetch: timed out");
        }
        let elapsed = started.elapsed();
        assert!(elapsed >= timeout && elapsed < timeout * 4, "{elapsed:?}");
        assert_eq!(connections.get(), 1, "the waiting callers shared one fetch");
    }

    #[tokio::test]
    async fn a_flood_of_unknown_kids_is_at_most_one_fetch_a_minute() {
        let server = JwksServer::start(good_jwks(&["k1"]), Some("max-age=3600")).await;
        let keys = issuer_keys(Duration::from_secs(5));
        let source = server.source();
        keys.keys("iss", &source, &[], Some("k1"), T0)
            .await
            .unwrap();
        for i in 0..120 {
            let at = T0 + i / 2;
            let got = keys
                .keys("iss", &source, &[], Some(&format!("random-{i}")), at)
                .await
                .unwrap();
            assert_eq!(kids(&got), ["k1"], "the verifier refuses the unknown kid");
        }
        assert_eq!(server.hits.get(), 1, "no fetch within the minute");
        for i in 0..120 {
            let at = T0 + 60 + i / 2;
            keys.keys("iss", &source, &[], Some(&format!("again-{i}")), at)
                .await
                .unwrap();
        }
        assert_eq!(server.hits.get(), 2, "one fetch in the next minute");
        // A kid the issuer has just published is found by that once-a-minute fetch.
        server.set(|reply| reply.body = good_jwks(&["k1", "new"]));
        let found = keys
            .keys("iss", &source, &[], Some("new"), T0 + 120)
            .await
            .unwrap();
        assert!(found.contains_kid("new"));
        assert_eq!(server.hits.get(), 3);
    }

    #[tokio::test]
    async fn an_outage_keeps_the_good_keys_for_their_cache_life_then_refuses() {
        let server = JwksServer::start(good_jwks(&["k1"]), Some("max-age=600")).await;
        let keys = issuer_keys(Duration::from_secs(5));
        let source = server.source();
        keys.keys("iss", &source, &[], Some("k1"), T0)
            .await
            .unwrap();
        server.set(|reply| reply.status = StatusCode::SERVICE_UNAVAILABLE);

        // An unknown kid's refetch fails: the good keys answer.
        let kept = keys
            .keys("iss", &source, &[], Some("new"), T0 + 100)
            .await
            .unwrap();
        assert_eq!(kids(&kept), ["k1"]);
        assert_eq!(server.hits.get(), 2);
        // The refresh ahead of the end fails too: still the good keys.
        let kept = keys
            .keys("iss", &source, &[], Some("k1"), T0 + 500)
            .await
            .unwrap();
        assert_eq!(kids(&kept), ["k1"]);
        server.wait_for_hits(3).await;
        assert_eq!(
            kids(
                &keys
                    .keys("iss", &source, &[], Some("k1"), T0 + 599)
                    .await
                    .unwrap()
            ),
            ["k1"]
        );
        // Their life over, the keys are gone; the fetch fails, and so does the caller.
        assert_eq!(
            reason(keys.keys("iss", &source, &[], Some("k1"), T0 + 600).await),
            "jwks fetch: HTTP status 503"
        );
        assert_eq!(server.hits.get(), 4);
        // Within the backoff nobody fetches: refused at once.
        assert_eq!(
            reason(keys.keys("iss", &source, &[], Some("k1"), T0 + 601).await),
            "jwks fetch: HTTP status 503"
        );
        assert_eq!(server.hits.get(), 4);
        // The endpoint back, the keys are back after the backoff.
        server.set(|reply| reply.status = StatusCode::OK);
        let back = keys
            .keys("iss", &source, &[], Some("k1"), T0 + 700)
            .await
            .unwrap();
        assert_eq!(kids(&back), ["k1"]);
        assert_eq!(server.hits.get(), 5);
    }

    #[tokio::test]
    async fn weak_and_symmetric_keys_are_skipped_and_the_usable_one_used() {
        let weak: Value = serde_json::from_str(include_str!(
            "../../core/testdata/keys/rsa-1024-public.jwk.json"
        ))
        .unwrap();
        let oct = json!({ "kty": "oct", "kid": "hmac", "k": "c2VjcmV0LXNlY3JldA", "alg": "HS256" });
        let body = jwks(&[oct, weak, jwk(JwsAlgorithm::Rs256, "good")]);
        let server = JwksServer::start(body, None).await;
        let keys = issuer_keys(Duration::from_secs(5));
        let got = keys
            .keys("iss", &server.source(), &[], Some("hmac"), T0)
            .await
            .unwrap();
        assert_eq!(kids(&got), ["good"]);
        let skipped: Vec<_> = got.skipped.iter().map(|s| s.kid.as_deref()).collect();
        assert_eq!(skipped, [Some("hmac"), Some("weak-1024")]);
    }

    #[tokio::test]
    async fn unusable_documents_are_refused_and_never_replace_good_keys() {
        let keys = issuer_keys(Duration::from_secs(5));
        for (body, expected) in [
            ("<html>oops</html>".to_owned(), "JWKS is not JSON"),
            (r#"{"keys":[]}"#.to_owned(), "JWKS has no keys"),
            (r#"{"issuer":"x"}"#.to_owned(), "JWKS has no keys array"),
            (
                jwks(&[json!({ "kty": "oct", "k": "c2VjcmV0" })]),
                "JWKS has no usable key (1 skipped)",
            ),
        ] {
            let server = JwksServer::start(body, None).await;
            let result = keys
                .keys(&server.url, &server.source(), &[], None, T0)
                .await;
            assert_eq!(reason(result), expected);
        }

        // Good keys, then a document of nothing usable: the good keys stay.
        let server = JwksServer::start(good_jwks(&["k1"]), None).await;
        keys.keys("iss", &server.source(), &[], None, T0)
            .await
            .unwrap();
        server.set(|reply| reply.body = r#"{"keys":[]}"#.to_owned());
        let kept = keys
            .keys("iss", &server.source(), &[], Some("new"), T0 + 60)
            .await
            .unwrap();
        assert_eq!(kids(&kept), ["k1"]);
        assert_eq!(server.hits.get(), 2);
    }

    #[tokio::test]
    async fn the_allowed_algorithms_decide_which_keys_are_used() {
        let body = jwks(&[
            jwk(JwsAlgorithm::Rs256, "rsa"),
            jwk(JwsAlgorithm::Es256, "ec"),
        ]);
        let server = JwksServer::start(body, None).await;
        let keys = issuer_keys(Duration::from_secs(5));
        let es = keys
            .keys("iss", &server.source(), &[JwsAlgorithm::Es256], None, T0)
            .await
            .unwrap();
        assert_eq!(kids(&es), ["ec"]);
        // Other algorithms for the same issuer are another reading: fetched afresh.
        let rs = keys
            .keys("iss", &server.source(), &[JwsAlgorithm::Rs256], None, T0)
            .await
            .unwrap();
        assert_eq!(kids(&rs), ["rsa"]);
        assert_eq!(server.hits.get(), 2);
    }

    #[tokio::test]
    async fn a_forgotten_issuer_or_a_new_source_is_fetched_afresh() {
        let first = JwksServer::start(good_jwks(&["a"]), None).await;
        let second = JwksServer::start(good_jwks(&["b"]), None).await;
        let keys = issuer_keys(Duration::from_secs(5));
        keys.keys("iss", &first.source(), &[], None, T0)
            .await
            .unwrap();
        keys.keys("iss", &first.source(), &[], None, T0)
            .await
            .unwrap();
        assert_eq!(first.hits.get(), 1);
        keys.forget("iss");
        keys.keys("iss", &first.source(), &[], None, T0)
            .await
            .unwrap();
        assert_eq!(first.hits.get(), 2);
        let moved = keys
            .keys("iss", &second.source(), &[], None, T0)
            .await
            .unwrap();
        assert_eq!(kids(&moved), ["b"]);
        keys.keys("other", &first.source(), &[], None, T0)
            .await
            .unwrap();
        keys.retain(|issuer_id| issuer_id == "iss");
        keys.keys("other", &first.source(), &[], None, T0)
            .await
            .unwrap();
        keys.keys("iss", &second.source(), &[], None, T0)
            .await
            .unwrap();
        assert_eq!((first.hits.get(), second.hits.get()), (4, 1));
    }

    /// A discovery server: `/.well-known/openid-configuration` names `claimed` (the
    /// base URL and this suffix) as issuer and its `/jwks` as `jwks_uri`.
    async fn discovery_server(jwks_body: String, claimed_suffix: &'static str) -> (String, Hits) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let metadata = json!({ "issuer": format!("{base}{claimed_suffix}"), "jwks_uri": format!("{base}/jwks") });
        let hits = Hits::default();
        let counter = hits.clone();
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(move || async move { axum::Json(metadata) }),
            )
            .route(
                "/jwks",
                get(move || {
                    counter.hit();
                    let body = jwks_body.clone();
                    async move { body }
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        (base, hits)
    }

    #[tokio::test]
    async fn discovery_finds_the_jwks_and_refuses_another_issuers_metadata() {
        let keys = issuer_keys(Duration::from_secs(5));
        let (base, jwks_hits) = discovery_server(good_jwks(&["d1"]), "").await;
        let source = KeySource::Discovery { issuer: base };
        let got = keys
            .keys("iss", &source, &[], Some("d1"), T0)
            .await
            .unwrap();
        assert_eq!(kids(&got), ["d1"]);
        assert_eq!(jwks_hits.get(), 1);

        let (base, jwks_hits) = discovery_server(good_jwks(&["d1"]), "/").await;
        let source = KeySource::Discovery { issuer: base };
        assert_eq!(
            reason(keys.keys("other", &source, &[], Some("d1"), T0).await),
            "discovery: metadata issuer does not match"
        );
        assert_eq!(jwks_hits.get(), 0);
    }

    #[tokio::test]
    async fn without_allow_insecure_loopback_is_refused_with_a_reason() {
        let server = JwksServer::start(good_jwks(&["k1"]), None).await;
        let keys = IssuerKeys::new(SafeFetcher::new(FetchPolicy::default()).unwrap());
        assert_eq!(
            reason(keys.keys("a", &server.source(), &[], None, T0).await),
            "jwks fetch: URL is not https"
        );
        let https = KeySource::JwksUri(format!("https://127.0.0.1:{}/jwks", server.port));
        assert_eq!(
            reason(keys.keys("b", &https, &[], None, T0).await),
            "jwks fetch: address not allowed (loopback, link-local, private or reserved)"
        );
        assert_eq!(server.hits.get(), 0);
    }
}
