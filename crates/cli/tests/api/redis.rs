//! The replay cache and the rate limits in Redis: shared by instances, exactly one
//! token for concurrent copies, and closed (503) when Redis stops. The test that
//! stops Redis runs a redis-server of its own; the others use the Redis named by
//! `JWTGRANT_TEST_REDIS_URL` (as `.ci/run` sets it), each under a key prefix of its
//! own, or else start one too.

use std::time::Duration;

use jwtgrant_server::RawConfig;
use jwtgrant_store::{NewIntegration, Store};
use serde_json::json;

use crate::support::*;

/// The rule `jwtgrant explain` says the server of `f`, with `redis`, refuses
/// `assertion` by (null when it would issue).
fn explained_rule(f: &Fixture, redis: &TestRedis, assertion: &str) -> serde_json::Value {
    let mut args = vec![
        "explain".to_owned(),
        "--json".into(),
        "--public-url".into(),
        f.server.url.clone(),
    ];
    args.extend(redis.serve_args());
    args.push(assertion.into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = run(Admin::new(&binary(), store_args(f.server.dir.path())).command(&args));
    let explanation: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    explanation["rule"].clone()
}

#[tokio::test]
async fn the_jti_is_kept_in_redis_with_its_expiry() {
    let redis = TestRedis::start().await;
    let f = Fixture::with(
        TestServer::start_with(redis.config()).await,
        IntegrationSpec::default(),
    )
    .await;
    let claims = f.claims();
    let assertion = f.sign(&claims);
    // `jwtgrant explain` looks the jti up in the same Redis, recording nothing.
    assert_eq!(explained_rule(&f, &redis, &assertion), json!(null));
    assert_eq!(f.server.token(&assertion).await.0, 200);
    let (status, body) = f.server.token(&assertion).await;
    assert_eq!((status, oauth_error(&body).0), (400, "invalid_grant"));
    assert!(oauth_error(&body).1.contains("already been used"));
    assert_eq!(
        explained_rule(&f, &redis, &assertion),
        json!("jti_replayed")
    );

    // The record is in Redis under the configured prefix (not the store, not the
    // default prefix), and expires after exp plus leeway.
    let key = |prefix: &str| {
        format!(
            "{prefix}jti:{}:{}:{}",
            f.integration_key.len(),
            f.integration_key,
            claims["jti"].as_str().unwrap()
        )
    };
    let ttl_ms: i64 = redis.cli(&["PTTL", &key(&redis.prefix)]).parse().unwrap();
    assert!((3_600_000..=3_661_000).contains(&ttl_ms), "PTTL {ttl_ms}");
    assert_eq!(redis.cli(&["EXISTS", &key("jwtgrant:")]), "0");
    let used = f
        .server
        .store
        .record_jti(
            &f.integration_key,
            claims["jti"].as_str().unwrap(),
            now() + 60,
            now(),
        )
        .await
        .unwrap();
    assert_eq!(
        used,
        jwtgrant_store::JtiOutcome::Recorded,
        "the store did not record it"
    );
    assert_eq!(f.server.get("/readyz").await.status(), 200);
}

#[tokio::test]
async fn concurrent_copies_get_one_token_with_redis() {
    let redis = TestRedis::start().await;
    let f = Fixture::with(
        TestServer::start_with(redis.config()).await,
        IntegrationSpec::default(),
    )
    .await;
    let assertion = f.sign(&f.claims());
    let attempts: Vec<_> = (0..12)
        .map(|_| {
            let http = f.server.http.clone();
            let url = format!("{}/oauth/token", f.server.url);
            let assertion = assertion.clone();
            tokio::spawn(async move {
                http.post(url)
                    .form(&[("grant_type", JWT_BEARER), ("assertion", &assertion)])
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for attempt in attempts {
        statuses.push(attempt.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 400),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn redis_stopped_means_503_never_a_token() {
    let mut redis = RedisServer::start(false).await;
    let f = Fixture::with(
        TestServer::start_with(with_redis(&redis.url)).await,
        IntegrationSpec::default(),
    )
    .await;
    assert_eq!(f.token_for(&f.claims()).await.0, 200);
    redis.kill();
    let (status, body) = f.token_for(&f.claims()).await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (503, "temporarily_unavailable"),
        "{body}"
    );
    assert!(body.get("access_token").is_none());
    assert_eq!(f.server.get("/readyz").await.status(), 503);
}

/// A second server on its own store holding the same integration, key, user and
/// consent as `f`'s, with `raw`: another instance of the same deployment.
async fn second_instance(f: &Fixture, raw: RawConfig) -> TestServer {
    let server = TestServer::start_with(raw).await;
    let integration = f
        .server
        .store
        .integration(&f.integration_key)
        .await
        .unwrap()
        .unwrap();
    let store: &dyn Store = server.store.as_ref();
    store
        .create_integration(NewIntegration {
            integration_key: integration.integration_key.clone(),
            name: integration.name.clone(),
            scopes: integration.scopes.clone(),
            redirect_uris: integration.redirect_uris.clone(),
            resources: Vec::new(),
            default_scopes: Vec::new(),
            allow_application_tokens: integration.allow_application_tokens,
            require_jti: integration.require_jti,
            created_at: integration.created_at,
        })
        .await
        .unwrap();
    for key in integration.keys {
        store
            .add_integration_key(&f.integration_key, key)
            .await
            .unwrap();
    }
    let user = f.server.store.user(&f.user_id).await.unwrap().unwrap();
    store.create_user(user).await.unwrap();
    let scopes = ["signature".to_owned(), "impersonation".to_owned()];
    store
        .grant_consent(&f.user_id, &f.integration_key, &scopes, now())
        .await
        .unwrap();
    server
}

/// Waits until a new second has just begun: the Redis windows are whole seconds.
async fn start_of_a_second() {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let into_second = Duration::from_nanos(u64::from(since_epoch.subsec_nanos()));
    tokio::time::sleep(Duration::from_secs(1) - into_second + Duration::from_millis(20)).await;
}

/// Sends `requests` alternately to `a` and `b` within one one-second window (tried
/// again in the next one if the second turned over); returns each answer's status
/// and `Retry-After`.
async fn alternate(
    a: &TestServer,
    b: &TestServer,
    requests: usize,
    form: impl Fn(&TestServer) -> Vec<(&'static str, String)>,
) -> Vec<(u16, Option<String>)> {
    for _ in 0..3 {
        start_of_a_second().await;
        let window = now();
        let mut answers = Vec::new();
        for i in 0..requests {
            let server = if i % 2 == 0 { a } else { b };
            let response = server
                .http
                .post(format!("{}/oauth/token", server.url))
                .form(&form(server))
                .send()
                .await
                .unwrap();
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let status = response.status().as_u16();
            if status == 429 {
                let body: serde_json::Value = response.json().await.unwrap();
                assert_eq!(oauth_error(&body).0, "slow_down", "{body}");
            }
            answers.push((status, retry_after));
        }
        if now() == window {
            return answers;
        }
    }
    panic!("three tries and never within one second");
}

#[tokio::test]
async fn the_integration_limit_is_shared_by_instances_through_redis() {
    let redis = TestRedis::start().await;
    let raw = RawConfig {
        rate_limit_per_integration: Some(2),
        ..redis.config()
    };
    let f = Fixture::with(
        TestServer::start_with(raw.clone()).await,
        IntegrationSpec::default(),
    )
    .await;
    let other = second_instance(&f, raw).await;
    // Two per second for the integration, counted across both: the third request,
    // the second at the first instance, is refused (each instance alone would allow
    // it), and so is the fourth.
    let answers = alternate(&f.server, &other, 4, |server| {
        let claims = f.claims_with(json!({"aud": server.host()}), &[]);
        vec![
            ("grant_type", JWT_BEARER.to_owned()),
            ("assertion", f.sign(&claims)),
        ]
    })
    .await;
    let one = Some("1".to_owned());
    assert_eq!(
        answers,
        [(200, None), (200, None), (429, one.clone()), (429, one)]
    );
}

#[tokio::test]
async fn the_client_address_limit_is_shared_by_instances_through_redis() {
    let redis = TestRedis::start().await;
    let raw = RawConfig {
        rate_limit_per_client: Some(3),
        ..redis.config()
    };
    let f = Fixture::with(
        TestServer::start_with(raw.clone()).await,
        IntegrationSpec::default(),
    )
    .await;
    let other = second_instance(&f, raw).await;
    // Three per second from 127.0.0.1, counted across both instances: the fourth
    // request (the second at the second instance) is refused.
    let answers = alternate(&f.server, &other, 5, |server| {
        let claims = f.claims_with(json!({"aud": server.host()}), &[]);
        vec![
            ("grant_type", JWT_BEARER.to_owned()),
            ("assertion", f.sign(&claims)),
        ]
    })
    .await;
    let one = Some("1".to_owned());
    assert_eq!(
        answers,
        [
            (200, None),
            (200, None),
            (200, None),
            (429, one.clone()),
            (429, one)
        ]
    );
}
