//! The replay cache in Redis: shared by instances, exactly one token for concurrent
//! copies, and closed (503) when Redis stops. Each test runs a redis-server of its own.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use jwtgrant_server::RawConfig;

use crate::support::*;

pub(crate) struct RedisServer {
    child: Child,
    pub(crate) url: String,
}

impl RedisServer {
    pub(crate) async fn start() -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian's redis-server package)");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return RedisServer {
                    child,
                    url: format!("redis://127.0.0.1:{port}"),
                };
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut child = child;
        let _ = child.kill();
        let _ = child.wait();
        panic!("redis-server did not start");
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

pub(crate) fn with_redis(url: &str) -> RawConfig {
    RawConfig {
        redis: Some(url.to_owned()),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_jti_is_kept_in_redis_with_its_expiry() {
    let redis = RedisServer::start().await;
    let f = Fixture::with(
        TestServer::start_with(with_redis(&redis.url)).await,
        IntegrationSpec::default(),
    )
    .await;
    let claims = f.claims();
    let assertion = f.sign(&claims);
    assert_eq!(f.server.token(&assertion).await.0, 200);
    let (status, body) = f.server.token(&assertion).await;
    assert_eq!((status, oauth_error(&body).0), (400, "invalid_grant"));
    assert!(oauth_error(&body).1.contains("already been used"));

    // The record is in Redis (not the store), and expires after exp plus leeway.
    let port = redis.url.rsplit(':').next().unwrap();
    let key = format!(
        "jwtgrant:jti:{}:{}:{}",
        f.integration_key.len(),
        f.integration_key,
        claims["jti"].as_str().unwrap()
    );
    let ttl = Command::new("redis-cli")
        .args(["-p", port, "PTTL", &key])
        .output()
        .unwrap();
    let ttl_ms: i64 = String::from_utf8_lossy(&ttl.stdout).trim().parse().unwrap();
    assert!((3_600_000..=3_661_000).contains(&ttl_ms), "PTTL {ttl_ms}");
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
    let redis = RedisServer::start().await;
    let f = Fixture::with(
        TestServer::start_with(with_redis(&redis.url)).await,
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
    let mut redis = RedisServer::start().await;
    let f = Fixture::with(
        TestServer::start_with(with_redis(&redis.url)).await,
        IntegrationSpec::default(),
    )
    .await;
    assert_eq!(f.token_for(&f.claims()).await.0, 200);
    redis.stop();
    let (status, body) = f.token_for(&f.claims()).await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (503, "temporarily_unavailable"),
        "{body}"
    );
    assert!(body.get("access_token").is_none());
    assert_eq!(f.server.get("/readyz").await.status(), 503);
}

#[tokio::test]
async fn rate_limits_are_shared_through_redis() {
    let redis = RedisServer::start().await;
    let raw = RawConfig {
        rate_limit_per_integration: Some(2),
        ..with_redis(&redis.url)
    };
    let f = Fixture::with(
        TestServer::start_with(raw.clone()).await,
        IntegrationSpec::default(),
    )
    .await;
    assert_eq!(f.token_for(&f.claims()).await.0, 200);
    assert_eq!(f.token_for(&f.claims()).await.0, 200);
    let (status, body) = f.token_for(&f.claims()).await;
    if status == 200 {
        // The one-second window turned over between requests; the next two must hit it.
        assert_eq!(f.token_for(&f.claims()).await.0, 200);
        assert_eq!(f.token_for(&f.claims()).await.0, 429);
    } else {
        assert_eq!((status, oauth_error(&body).0), (429, "slow_down"));
    }
}
