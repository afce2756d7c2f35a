//! Faults under load: a PostgreSQL cluster of the test's own stopped and restarted
//! under two instances, and a `redis-server` of the test's own killed and restarted
//! under two instances using it. While the dependency is down every request gets
//! 503 `temporarily_unavailable` (never a token, never a 500) and `/readyz` fails;
//! afterwards the instances serve again by themselves and nothing is forgotten.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// How long an instance may take to serve again once the dependency is back.
const RECOVERY: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgresql_stopped_under_load_then_restarted() {
    if database_server("postgresql_stopped_under_load_then_restarted").is_none() {
        return;
    }
    let _serial = serial().await;
    let cluster = tokio::task::spawn_blocking(PgCluster::start).await.unwrap();
    let db = TestDatabase::create(&cluster.url()).await;
    let dir = tempfile::tempdir().unwrap();
    let http = http();
    let issuer = PUBLIC_URL.to_owned();
    let aud = issuer.trim_start_matches("http://").to_owned();
    let extra = ["--public-url".to_owned(), issuer.clone()];
    let instances = start_instances(2, &db.url, &extra, &[], dir.path()).await;
    let reg = Arc::new(Registration::create(&db.url, dir.path()).await);
    wait_serving(&http, &instances, &reg, &aud, Duration::from_secs(5)).await;

    // Before the outage: an assertion used once, and what the store holds.
    let used = reg.assertion(&aud);
    assert_eq!(token(&http, &instances[0].url, &used).await.0, 200);
    let before = registry_snapshot(&db.url, &reg).await;

    let mut cluster = cluster;
    let outcome = outage(
        &http,
        &instances,
        &reg,
        &aud,
        &used,
        async move {
            tokio::task::spawn_blocking(move || {
                cluster.stop();
                cluster
            })
            .await
            .unwrap()
        },
        |mut cluster: PgCluster| async move {
            tokio::task::spawn_blocking(move || {
                cluster.restart();
                cluster
            })
            .await
            .unwrap()
        },
    )
    .await;

    // Nothing lost: every registration, key and consent is there, and no used jti is
    // forgotten: neither the one used before the outage nor those of the load.
    let after = registry_snapshot(&db.url, &reg).await;
    assert_eq!(before, after, "the registry changed across the outage");
    outcome.assert_all_refused(&http, &instances, &used).await;
    eprintln!("[PostgreSQL stopped] {}", outcome.summary);
    for mut instance in instances {
        instance.stop();
    }
    drop(db);
    drop(outcome.dependency);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_stopped_under_load_then_restarted() {
    let Some(server) = database_server("redis_stopped_under_load_then_restarted") else {
        return;
    };
    let _serial = serial().await;
    let db = TestDatabase::create(&server).await;
    // Durable (append-only file, fsync on every write): a restart forgets no jti.
    let redis = RedisServer::start(true).await;
    let dir = tempfile::tempdir().unwrap();
    let http = http();
    let issuer = PUBLIC_URL.to_owned();
    let aud = issuer.trim_start_matches("http://").to_owned();
    let extra = [
        "--public-url".to_owned(),
        issuer.clone(),
        "--redis".to_owned(),
        redis.url.clone(),
    ];
    let instances = start_instances(2, &db.url, &extra, &[], dir.path()).await;
    let reg = Arc::new(Registration::create(&db.url, dir.path()).await);
    wait_serving(&http, &instances, &reg, &aud, Duration::from_secs(5)).await;
    let used = reg.assertion(&aud);
    assert_eq!(token(&http, &instances[0].url, &used).await.0, 200);

    let mut redis = redis;
    let outcome = outage(
        &http,
        &instances,
        &reg,
        &aud,
        &used,
        async move {
            redis.kill();
            redis
        },
        |mut redis: RedisServer| async move {
            redis.restart().await;
            redis
        },
    )
    .await;
    outcome.assert_all_refused(&http, &instances, &used).await;
    eprintln!("[Redis killed] {}", outcome.summary);
    for mut instance in instances {
        instance.stop();
    }
}

/// One answer the load got.
#[derive(Debug)]
struct Sample {
    instance: usize,
    sent: Instant,
    answered: Instant,
    status: u16,
    error: String,
    /// The assertion, when it was exchanged for a token.
    accepted: Option<String>,
}

/// Fresh assertions sent continuously to every instance by `per_instance` tasks.
struct Load {
    stop: Arc<AtomicBool>,
    /// When the latest 503 answered was sent (as an offset from `epoch`, in µs,
    /// plus one; 0 while none), so the outage can wait for one sent while down.
    last_refused_sent: Arc<std::sync::atomic::AtomicU64>,
    epoch: Instant,
    tasks: tokio::task::JoinSet<Vec<Sample>>,
}

impl Load {
    fn start(
        http: &reqwest::Client,
        instances: &[Instance],
        reg: &Arc<Registration>,
        aud: &str,
        per_instance: usize,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let last_refused_sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let epoch = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for (index, instance) in instances.iter().enumerate() {
            for _ in 0..per_instance {
                let (http, url, aud) = (http.clone(), instance.url.clone(), aud.to_owned());
                let (reg, stop) = (Arc::clone(reg), Arc::clone(&stop));
                let last_refused_sent = Arc::clone(&last_refused_sent);
                tasks.spawn(async move {
                    let mut samples = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let assertion = reg.assertion(&aud);
                        let sent = Instant::now();
                        let (status, body) = token(&http, &url, &assertion).await;
                        if status == 503 {
                            let at = u64::try_from(sent.duration_since(epoch).as_micros())
                                .unwrap_or(u64::MAX - 1);
                            last_refused_sent.fetch_max(at + 1, Ordering::Relaxed);
                        }
                        samples.push(Sample {
                            instance: index,
                            sent,
                            answered: Instant::now(),
                            status,
                            error: oauth_error(&body).0.to_owned(),
                            accepted: (status == 200).then_some(assertion),
                        });
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    samples
                });
            }
        }
        Load {
            stop,
            last_refused_sent,
            epoch,
            tasks,
        }
    }

    /// Whether a request sent at or after `since` has been answered 503.
    fn refused_since(&self, since: Instant) -> bool {
        let since = u64::try_from(since.duration_since(self.epoch).as_micros()).unwrap_or(0);
        self.last_refused_sent.load(Ordering::Relaxed) > since
    }

    async fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        while let Some(part) = self.tasks.join_next().await {
            all.extend(part.unwrap());
        }
        all.sort_by_key(|s| s.sent);
        all
    }
}

/// What an outage showed, and the dependency, running again.
struct Outcome<D> {
    dependency: D,
    accepted: Vec<String>,
    summary: String,
}

impl<D> Outcome<D> {
    /// The assertion used before the outage and the assertions the load had
    /// exchanged (all those of the outage window, a sample of the rest) are refused
    /// as replays everywhere.
    async fn assert_all_refused(&self, http: &reqwest::Client, instances: &[Instance], used: &str) {
        let used = used.to_owned();
        for instance in instances {
            for assertion in std::iter::once(&used).chain(&self.accepted) {
                let (status, body) = token(http, &instance.url, assertion).await;
                assert_eq!(
                    (status, oauth_error(&body).0),
                    (400, "invalid_grant"),
                    "a jti accepted earlier was not refused by {}: {body}",
                    instance.url
                );
            }
        }
    }
}

/// Runs load, stops the dependency, checks what the instances answer while it is
/// down, starts it again, checks they serve again; returns what was seen.
async fn outage<D, S, R, RF>(
    http: &reqwest::Client,
    instances: &[Instance],
    reg: &Arc<Registration>,
    aud: &str,
    used: &str,
    stop: S,
    restart: R,
) -> Outcome<D>
where
    S: std::future::Future<Output = D>,
    R: FnOnce(D) -> RF,
    RF: std::future::Future<Output = D>,
{
    let load = Load::start(http, instances, reg, aud, 4);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let stop_began = Instant::now();
    let dependency = stop.await;
    let stopped = Instant::now();

    // While it is down: /readyz fails on every instance...
    let unready_after = wait_readyz(http, instances, 503, Duration::from_secs(10)).await;
    // ...the assertion used before is not answered with a token (nor judged without
    // the record: 503)...
    for instance in instances {
        let (status, body) = token(http, &instance.url, used).await;
        assert_eq!(
            (status, oauth_error(&body).0),
            (503, "temporarily_unavailable"),
            "{} while the dependency is down: {body}",
            instance.url
        );
    }
    // ...a burst of fresh assertions, ten at once per instance, gets 503 each...
    let mut burst = tokio::task::JoinSet::new();
    for instance in instances {
        for _ in 0..10 {
            let (http, url, assertion) = (http.clone(), instance.url.clone(), reg.assertion(aud));
            burst.spawn(async move {
                let sent = Instant::now();
                let (status, body) = token(&http, &url, &assertion).await;
                (url, status, body, sent.elapsed())
            });
        }
    }
    let mut burst_count = 0;
    let mut slowest_503 = Duration::ZERO;
    while let Some(answer) = burst.join_next().await {
        let (url, status, body, took) = answer.unwrap();
        assert_eq!(
            (status, oauth_error(&body).0),
            (503, "temporarily_unavailable"),
            "{url} while the dependency is down: {body}"
        );
        burst_count += 1;
        slowest_503 = slowest_503.max(took);
    }
    // ...and so does an assertion without `jti`, which needs no replay record and
    // whose registration is cached: no grant while the dependency does not answer
    // (with PostgreSQL, refused once the registry poll has failed; with Redis, the
    // rate limiter cannot count it).
    let mut no_jti_claims = reg.claims(aud);
    if let Value::Object(map) = &mut no_jti_claims {
        map.remove("jti");
    }
    let no_jti_assertion = reg.sign(&no_jti_claims);
    let mut no_jti = Vec::new();
    for instance in instances {
        let (status, body) = token(http, &instance.url, &no_jti_assertion).await;
        assert_eq!(
            (status, oauth_error(&body).0),
            (503, "temporarily_unavailable"),
            "{}: an assertion without jti while the dependency is down: {body}",
            instance.url
        );
        assert!(body.get("access_token").is_none(), "{body}");
        no_jti.push(status);
    }
    let down_for = Duration::from_secs(4).saturating_sub(stopped.elapsed());
    tokio::time::sleep(down_for).await;
    // Stay down until the load itself has seen a refusal for a request sent after the
    // stop was confirmed (a slow machine may still have every such request waiting
    // for a connection when the four seconds are over).
    let waiting_since = Instant::now();
    while !load.refused_since(stopped) {
        assert!(
            waiting_since.elapsed() < Duration::from_secs(30),
            "the load got no 503 in 30 s of outage"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let restart_began = Instant::now();
    let dependency = restart(dependency).await;
    let restarted = Instant::now();
    let ready_again = wait_readyz(http, instances, 200, RECOVERY).await;
    let serving_again = wait_serving(http, instances, reg, aud, RECOVERY).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let samples = load.finish().await;

    // Never a 500, never a failed connection; every 503 says temporarily_unavailable.
    for s in &samples {
        assert!(
            matches!(s.status, 200 | 503),
            "instance {} answered {} {} (sent {:?} after the stop began)",
            s.instance,
            s.status,
            s.error,
            s.sent.saturating_duration_since(stop_began)
        );
        if s.status == 503 {
            assert_eq!(s.error, "temporarily_unavailable");
        }
    }
    let phase = |from: Instant, to: Option<Instant>| {
        let in_phase: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.sent >= from && to.is_none_or(|to| s.sent < to))
            .collect();
        let ok = in_phase.iter().filter(|s| s.status == 200).count();
        (ok, in_phase.len() - ok)
    };
    let first = samples.first().map(|s| s.sent).unwrap_or(stop_began);
    let (before_ok, before_refused) = phase(first, Some(stop_began));
    let (during_stop_ok, during_stop_refused) = phase(stop_began, Some(stopped));
    let (down_ok, down_refused) = phase(stopped, Some(restart_began));
    let (after_ok, after_refused) = phase(restarted, None);
    // Sent after the stop was confirmed: no token while the dependency was down. A
    // request still waiting for it when it came back may get one then, its jti
    // recorded (checked below with the others).
    let issued_while_down: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.sent >= stopped && s.status == 200 && s.answered < restart_began)
        .collect();
    assert!(
        issued_while_down.is_empty(),
        "tokens issued while the dependency was down: {issued_while_down:?}"
    );
    let held_until_restart = down_ok;
    let longest_wait = samples
        .iter()
        .filter(|s| s.sent >= stopped && s.sent < restart_began)
        .map(|s| s.answered - s.sent)
        .max()
        .unwrap_or_default();
    assert!(before_ok > 0, "the load got no token before the outage");
    assert!(down_refused > 0, "no request was refused during the outage");
    assert!(after_ok > 0, "no token after the restart");
    for instance in 0..instances.len() {
        assert!(
            samples
                .iter()
                .any(|s| s.instance == instance && s.sent >= restarted && s.status == 200),
            "instance {instance} issued nothing after the restart"
        );
    }
    let secs = |d: &[Duration]| {
        d.iter()
            .map(|t| format!("{:.2} s", t.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let summary = format!(
        "load: {} requests over {} instances\n  before the stop: {before_ok} x 200, {before_refused} x 503\n  \
         while stopping ({:.2} s): {during_stop_ok} x 200, {during_stop_refused} x 503\n  \
         sent after the stop was confirmed, until the restart ({:.2} s): {down_refused} x 503 temporarily_unavailable, \
         0 x 200 answered while down, {held_until_restart} x 200 answered after the restart (held waiting; longest wait {:.2} s)\n  \
         sent after the restart: {after_ok} x 200, {after_refused} x 503\n  \
         /readyz 503 on the instances {} after the stop; 200 again {} after the restart; tokens again {} after the restart\n  \
         while down: the used jti 503 on each instance; a burst of {burst_count} fresh assertions all 503 (slowest answer {:.2} s); \
         an assertion without jti: {no_jti:?} temporarily_unavailable",
        samples.len(),
        instances.len(),
        (stopped - stop_began).as_secs_f64(),
        (restart_began - stopped).as_secs_f64(),
        longest_wait.as_secs_f64(),
        secs(&unready_after),
        secs(&ready_again),
        secs(&serving_again),
        slowest_503.as_secs_f64(),
    );
    // Replay checks afterwards: every token the outage window produced, and a sample
    // of the rest.
    let (window, rest): (Vec<&Sample>, Vec<&Sample>) = samples
        .iter()
        .filter(|s| s.accepted.is_some())
        .partition(|s| s.sent >= stop_began && s.sent < restarted);
    let step = (rest.len() / 40).max(1);
    let accepted = window
        .into_iter()
        .chain(rest.iter().copied().step_by(step))
        .chain(rest.iter().rev().take(5).copied())
        .filter_map(|s| s.accepted.clone())
        .collect();
    Outcome {
        dependency,
        accepted,
        summary,
    }
}

/// Waits until `/readyz` answers `status` on every instance (asked concurrently);
/// how long each took.
async fn wait_readyz(
    http: &reqwest::Client,
    instances: &[Instance],
    status: u16,
    within: Duration,
) -> Vec<Duration> {
    let start = Instant::now();
    let mut waits = tokio::task::JoinSet::new();
    for (index, instance) in instances.iter().enumerate() {
        let (http, url) = (http.clone(), format!("{}/readyz", instance.url));
        waits.spawn(async move {
            loop {
                let got = get_status(&http, &url).await;
                if got == status {
                    return (index, Ok(start.elapsed()));
                }
                if start.elapsed() > within {
                    return (index, Err(format!("{url} still {got} after {within:?}")));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    }
    let mut took = vec![Duration::ZERO; instances.len()];
    while let Some(done) = waits.join_next().await {
        let (index, result) = done.unwrap();
        took[index] = result.unwrap_or_else(|e| panic!("/readyz not {status}: {e}"));
    }
    took
}

/// Waits until every instance issues a token for a fresh assertion; how long each
/// took.
async fn wait_serving(
    http: &reqwest::Client,
    instances: &[Instance],
    reg: &Registration,
    aud: &str,
    within: Duration,
) -> Vec<Duration> {
    let start = Instant::now();
    let mut took = Vec::new();
    for instance in instances {
        loop {
            let (status, body) = token(http, &instance.url, &reg.assertion(aud)).await;
            if status == 200 {
                took.push(start.elapsed());
                break;
            }
            assert!(
                matches!(status, 400 | 503),
                "{}: {status} {body}",
                instance.url
            );
            assert!(
                start.elapsed() < within,
                "{} issues no token after {within:?}: {status} {body}\nlog:\n{}",
                instance.url,
                instance.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    took
}

/// What the admin commands show of the registration and the signing keys.
async fn registry_snapshot(database_url: &str, reg: &Registration) -> Vec<Value> {
    vec![
        admin(database_url, &["integration", "show", &reg.integration_key]).await,
        admin(database_url, &["integration", "list"]).await,
        admin(database_url, &["user", "show", &reg.user_id]).await,
        admin(database_url, &["consent", "list", "--user", &reg.user_id]).await,
        admin(database_url, &["keys", "list"]).await,
    ]
}
