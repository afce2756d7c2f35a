//! `TokenSource` against the real server: user and application tokens, every key
//! type, caching, single flight, refresh near expiry, retries and typed errors.

use std::time::{Duration, Instant};

use jwtgrant_client::token_source::AccessToken;
use jwtgrant_client::{
    BearerAuth as _, Jwtgrant, PrivateKey, RetryPolicy, TokenSource, TokenSourceError, Verifier,
};
use jwtgrant_core::{JwsAlgorithm, SigningKey};
use jwtgrant_proto::{ErrorCode, UserInfo};
use jwtgrant_server::RawConfig;
use serde_json::json;

use crate::support::*;

/// Moves tokio's clock, which the SDK's cache reads, `by` forward at once and lets
/// it run on from there: what sleeping `by` would do, without the wait. (The server
/// in this process reads the system clock, which does not move.)
async fn jump(by: Duration) {
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
}

fn user_source(f: &Fixture) -> TokenSource {
    Jwtgrant::new(&f.server.url)
        .unwrap()
        .token_source(&f.integration_key, f.key.clone())
        .subject(&f.user_id)
        .scopes(["signature", "impersonation"])
        .build()
        .unwrap()
}

#[tokio::test]
async fn user_token_from_discovered_endpoint_verifies_and_calls_userinfo() {
    let f = Fixture::new().await;
    let source = user_source(&f);
    assert_eq!(source.token_endpoint(), None, "discovered on first use");

    let token: AccessToken = source.token().await.unwrap();
    assert_eq!(
        source.token_endpoint(),
        Some(f.server.token_endpoint().as_str())
    );
    assert_eq!(token.scope(), Some("signature impersonation"));
    assert_eq!(token.lifetime(), Duration::from_secs(3600));
    assert!(
        !format!("{token:?}").contains(token.as_str()),
        "Debug hides the token"
    );
    let response = token.to_response();
    assert_eq!(response.token_type, "Bearer");
    assert!(response.expires_in > 3590 && response.expires_in <= 3600);

    let verifier = Verifier::discover(&f.server.url).build().unwrap();
    let claims = verifier.verify(token.as_str()).await.unwrap();
    assert_eq!(claims.sub, f.user_id);
    assert_eq!(claims.client_id, f.integration_key);
    assert_eq!(claims.iss, f.server.url);

    let userinfo: UserInfo = reqwest::Client::new()
        .get(format!("{}/oauth/userinfo", f.server.url))
        .bearer_token_from(&source)
        .await
        .unwrap()
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(userinfo.sub, f.user_id);
    assert_eq!(f.server.issued(), 1, "userinfo reused the cached token");
}

#[tokio::test]
async fn application_token_has_the_integration_as_subject() {
    let f = Fixture::new().await;
    let source = TokenSource::builder(&f.integration_key, f.key.clone())
        .token_endpoint(f.server.token_endpoint())
        .scopes(["signature"])
        .build()
        .unwrap();
    let token = source.access_token().await.unwrap();
    let claims = Verifier::discover(&f.server.url)
        .build()
        .unwrap()
        .verify_with_scopes(&token, &["signature"])
        .await
        .unwrap();
    assert_eq!(claims.sub, f.integration_key);
    assert_eq!(claims.scope, "signature");
}

#[tokio::test]
async fn every_key_type_and_algorithm() {
    let server = TestServer::start().await;
    let first = key_file("rsa-2048-pkcs1.pem");
    let (integration_key, _) = server
        .add_integration(IntegrationSpec::applications(), first.signing_key())
        .await;
    let user_id = server.add_user(Some(&integration_key)).await;

    // A private JWK whose `kid` is the one it is registered under (its thumbprint).
    let ed = SigningKey::generate(JwsAlgorithm::EdDsa, 0).unwrap();
    let ed_jwk = ed
        .to_private_jwk(Some(ed.public_key().thumbprint()), None)
        .unwrap();
    let cases: Vec<(PrivateKey, JwsAlgorithm)> = vec![
        (first.clone(), JwsAlgorithm::Rs256),
        (first, JwsAlgorithm::Rs512),
        (key_file("rsa-2048-pkcs8.pem"), JwsAlgorithm::Ps256),
        (key_file("rsa-2048-pkcs8.pem"), JwsAlgorithm::Rs384),
        (key_file("ec-p256-sec1.pem"), JwsAlgorithm::Es256),
        (key_file("ec-p256-pkcs8.pem"), JwsAlgorithm::Es256),
        (key_file("ec-p384-sec1.pem"), JwsAlgorithm::Es384),
        (key_file("ed25519-pkcs8.pem"), JwsAlgorithm::EdDsa),
        (
            PrivateKey::from_jwk_json(&serde_json::to_string(&ed_jwk).unwrap()).unwrap(),
            JwsAlgorithm::EdDsa,
        ),
    ];
    let mut registered = vec![
        key_file("rsa-2048-pkcs1.pem")
            .public_key()
            .thumbprint()
            .to_owned(),
    ];
    for (key, alg) in cases {
        let kid = key.public_key().thumbprint().to_owned();
        if !registered.contains(&kid) {
            server.add_key(&integration_key, key.signing_key()).await;
            registered.push(kid.clone());
        }
        // Half the cases name their key, half leave the server to try each key.
        let key = if alg == JwsAlgorithm::Es256 || key.kid().is_some() {
            key
        } else {
            key.with_kid(kid)
        };
        let source = TokenSource::builder(&integration_key, key)
            .token_endpoint(server.token_endpoint())
            .audience(server.host())
            .subject(&user_id)
            .scopes(["signature", "impersonation"])
            .assertion(|a| a.algorithm(alg))
            .build()
            .unwrap();
        let token = source.access_token().await;
        assert!(token.is_ok(), "{alg}: {token:?}");
    }
    assert_eq!(server.issued(), 9);
}

#[tokio::test]
async fn cached_token_is_reused() {
    let f = Fixture::new().await;
    let source = user_source(&f);
    let first = source.access_token().await.unwrap();
    for _ in 0..20 {
        assert_eq!(source.clone().access_token().await.unwrap(), first);
    }
    assert_eq!(f.server.issued(), 1);

    source.invalidate().await;
    assert_ne!(source.access_token().await.unwrap(), first);
    assert_eq!(f.server.issued(), 2);
}

#[tokio::test]
async fn a_hundred_concurrent_callers_cause_one_request() {
    let f = Fixture::new().await;
    let proxy = Proxy::start(&f.server.url, Vec::new()).await;
    let source = TokenSource::builder(&f.integration_key, f.key.clone())
        .token_endpoint(proxy.token_endpoint())
        .audience(f.server.host())
        .subject(&f.user_id)
        .scopes(["signature", "impersonation"])
        .build()
        .unwrap();
    let callers: Vec<_> = (0..100)
        .map(|_| {
            let source = source.clone();
            tokio::spawn(async move { source.access_token().await })
        })
        .collect();
    let mut tokens = Vec::new();
    for caller in callers {
        tokens.push(caller.await.unwrap().unwrap());
    }
    assert!(tokens.iter().all(|t| *t == tokens[0]));
    assert_eq!(proxy.requests(), 1);
    assert_eq!(f.server.issued(), 1);
}

#[tokio::test]
async fn concurrent_callers_share_one_refusal() {
    let f = Fixture::new().await;
    let proxy = Proxy::start(&f.server.url, Vec::new()).await;
    let stranger = PrivateKey::new(SigningKey::generate(JwsAlgorithm::Es256, 0).unwrap());
    let source = TokenSource::builder(&f.integration_key, stranger)
        .token_endpoint(proxy.token_endpoint())
        .audience(f.server.host())
        .build()
        .unwrap();
    let callers: Vec<_> = (0..20)
        .map(|_| {
            let source = source.clone();
            tokio::spawn(async move { source.access_token().await })
        })
        .collect();
    for caller in callers {
        let error = caller.await.unwrap().unwrap_err();
        assert!(
            error.oauth().unwrap().is(ErrorCode::InvalidGrant),
            "{error}"
        );
    }
    assert_eq!(proxy.requests(), 1);
}

#[tokio::test]
async fn refreshes_near_expiry() {
    let server = TestServer::start_with(RawConfig {
        access_token_lifetime_secs: Some(4),
        ..RawConfig::default()
    })
    .await;
    let f = Fixture::on(server).await;
    let source = user_source(&f);
    let first = source.token().await.unwrap();
    assert_eq!(first.lifetime(), Duration::from_secs(4));
    // The default margin (5 minutes) is capped at half the lifetime: 2 s.
    assert_eq!(source.access_token().await.unwrap(), first.as_str());
    assert_eq!(f.server.issued(), 1);

    jump(Duration::from_millis(2200)).await;
    // Inside the margin the still-valid token comes back at once while a refresh runs.
    assert_eq!(source.access_token().await.unwrap(), first.as_str());
    let second = new_token_within(&source, first.as_str(), Duration::from_secs(1)).await;
    assert_eq!(f.server.issued(), 2);
    assert_eq!(source.access_token().await.unwrap(), second);
    assert_eq!(f.server.issued(), 2);
}

/// Polls `source` until it hands out another token than `old`, at most `within`.
async fn new_token_within(source: &TokenSource, old: &str, within: Duration) -> String {
    let started = Instant::now();
    loop {
        let token = source.access_token().await.unwrap();
        if token != old {
            return token;
        }
        assert!(started.elapsed() < within, "no new token after {within:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_valid_token_is_handed_out_at_once_while_a_slow_refresh_runs() {
    let server = TestServer::start_with(RawConfig {
        access_token_lifetime_secs: Some(6),
        ..RawConfig::default()
    })
    .await;
    let f = Fixture::on(server).await;
    let proxy = Proxy::start(&f.server.url, Vec::new()).await;
    let source = TokenSource::builder(&f.integration_key, f.key.clone())
        .token_endpoint(proxy.token_endpoint())
        .audience(f.server.host())
        .subject(&f.user_id)
        .scopes(["signature", "impersonation"])
        .build()
        .unwrap();
    let first = source.access_token().await.unwrap();
    // Inside the refresh margin (3 s of 6), the refresh takes 1.5 s.
    proxy.push(Canned::forward_after(Duration::from_millis(1500)));
    jump(Duration::from_millis(3200)).await;
    let callers: Vec<_> = (0..50)
        .map(|_| {
            let source = source.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let token = source.access_token().await.unwrap();
                (token, started.elapsed())
            })
        })
        .collect();
    for caller in callers {
        let (token, waited) = caller.await.unwrap();
        assert_eq!(token, first);
        assert!(waited < Duration::from_millis(500), "waited {waited:?}");
    }
    let second = new_token_within(&source, &first, Duration::from_secs(3)).await;
    assert_ne!(second, first);
    assert_eq!(proxy.requests(), 2, "one refresh for all the callers");
    assert_eq!(f.server.issued(), 2);
}

#[tokio::test]
async fn an_outage_at_refresh_time_keeps_the_still_valid_token() {
    let server = TestServer::start_with(RawConfig {
        access_token_lifetime_secs: Some(6),
        ..RawConfig::default()
    })
    .await;
    let f = Fixture::on(server).await;
    let proxy = Proxy::start(&f.server.url, Vec::new()).await;
    let source = TokenSource::builder(&f.integration_key, f.key.clone())
        .token_endpoint(proxy.token_endpoint())
        .audience(f.server.host())
        .subject(&f.user_id)
        .scopes(["signature", "impersonation"])
        .retry(RetryPolicy {
            deadline: Duration::from_millis(800),
            initial_backoff: Duration::from_millis(100),
            ..RetryPolicy::default()
        })
        .build()
        .unwrap();
    let first = source.access_token().await.unwrap();
    for _ in 0..50 {
        proxy.push(Canned::status(503));
    }
    // Inside the refresh margin (3 s of 6) the token comes back at once, while the
    // refresh fails in the background until its deadline...
    jump(Duration::from_millis(3200)).await;
    let started = Instant::now();
    assert_eq!(source.access_token().await.unwrap(), first);
    assert!(started.elapsed() < Duration::from_millis(300));
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let attempts = proxy.requests();
    assert!(attempts >= 3, "{attempts}");
    // ...and the token is used without new attempts for a while.
    assert_eq!(source.access_token().await.unwrap(), first);
    assert_eq!(proxy.requests(), attempts);
    assert_eq!(f.server.issued(), 1);
}

#[tokio::test]
async fn retries_503_then_succeeds() {
    let f = Fixture::new().await;
    let proxy = Proxy::start(
        &f.server.url,
        vec![
            Canned::status(503).json(json!({
                "error": "temporarily_unavailable",
                "error_description": "the store is unavailable"
            })),
            Canned::status(502),
        ],
    )
    .await;
    let source = TokenSource::builder(&f.integration_key, f.key.clone())
        .token_endpoint(proxy.token_endpoint())
        .audience(f.server.host())
        .subject(&f.user_id)
        .scopes(["signature", "impersonation"])
        .build()
        .unwrap();
    let token = source.access_token().await.unwrap();
    assert!(!token.is_empty());
    assert_eq!(proxy.requests(), 3);
    assert_eq!(
        f.server.issued(),
        1,
        "a fresh assertion (new jti) per attempt"
    );
}

#[tokio::test]
async fn honours_retry_after_on_429() {
    let f = Fixture::new().await;
    let proxy = Proxy::start(
        &f.server.url,
        vec![
            Canned::status(429)
                .header("retry-after", "1")
                .json(json!({"error": "slow_down"})),
        ],
    )
    .await;
    let source = TokenSource::builder(&f.integration_key, f.key.clone())
        .token_endpoint(proxy.token_endpoint())
        .audience(f.server.host())
        .subject(&f.user_id)
        .scopes(["signature", "impersonation"])
        .build()
        .unwrap();
    let started = Instant::now();
    source.access_token().await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited Retry-After"
    );
    assert_eq!(proxy.requests(), 2);
}

#[tokio::test]
async fn gives_up_at_the_deadline_when_the_server_is_down() {
    let url = closed_port_url().await;
    let source = TokenSource::builder("ik", rsa_key())
        .token_endpoint(format!("{url}/oauth/token"))
        .retry(RetryPolicy {
            deadline: Duration::from_millis(1500),
            initial_backoff: Duration::from_millis(100),
            ..RetryPolicy::default()
        })
        .build()
        .unwrap();
    let started = Instant::now();
    let error = source.access_token().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3));
    match &error {
        TokenSourceError::RetriesExhausted { attempts, last } => {
            assert!(*attempts >= 3, "{attempts}");
            assert!(
                matches!(**last, TokenSourceError::Transport { .. }),
                "{last}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn invalid_grant_is_not_retried() {
    let f = Fixture::new().await;
    let proxy = Proxy::start(&f.server.url, Vec::new()).await;
    let source = TokenSource::builder(&f.integration_key, f.key.clone())
        .token_endpoint(proxy.token_endpoint())
        .audience(f.server.host())
        .subject(uuid::Uuid::new_v4().to_string())
        .scopes(["signature", "impersonation"])
        .build()
        .unwrap();
    let started = Instant::now();
    let error = source.access_token().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    let oauth = error.oauth().unwrap();
    assert_eq!(oauth.status, 400);
    assert!(oauth.is(ErrorCode::InvalidGrant));
    assert_eq!(oauth.short_code(), Some("user_not_found"));
    assert_eq!(
        error.to_string(),
        "invalid_grant: user_not_found: no active user has this id"
    );
    assert_eq!(proxy.requests(), 1);
    assert_eq!(f.server.refused("invalid_grant"), 1);

    // The next call tries again (the error is not cached), once.
    let _ = source.access_token().await.unwrap_err();
    assert_eq!(proxy.requests(), 2);
}

#[tokio::test]
async fn consent_required_carries_the_consent_url() {
    let f = Fixture::new().await;
    let stranger = f.server.add_user(None).await;
    let source = Jwtgrant::new(&f.server.url)
        .unwrap()
        .token_source(&f.integration_key, f.key.clone())
        .subject(&stranger)
        .scopes(["signature", "impersonation"])
        .build()
        .unwrap();
    let error = source.access_token().await.unwrap_err();
    let oauth = error.oauth().unwrap();
    assert!(oauth.is(ErrorCode::ConsentRequired), "{error}");
    let url = error.consent_url().unwrap();
    assert!(
        url.starts_with(&format!(
            "{}/oauth/auth?response_type=code&scope=signature+impersonation&client_id={}",
            f.server.url, f.integration_key
        )),
        "{url}"
    );
    assert!(url.contains("redirect_uri=http%3A%2F%2Flocalhost%3A9000%2Fcallback"));
    assert!(
        error.to_string().starts_with("consent_required: "),
        "{error}"
    );
}

#[tokio::test]
async fn consent_required_for_a_missing_impersonation_scope_carries_the_consent_url() {
    let f = Fixture::new().await;
    let source = Jwtgrant::new(&f.server.url)
        .unwrap()
        .token_source(&f.integration_key, f.key.clone())
        .subject(&f.user_id)
        .scopes(["signature"])
        .build()
        .unwrap();
    let error = source.access_token().await.unwrap_err();
    assert!(
        error.oauth().unwrap().is(ErrorCode::ConsentRequired),
        "{error}"
    );
    assert!(error.to_string().contains("'impersonation'"), "{error}");
    // The page asks for what the next assertion must ask for: impersonation too.
    let url = error.consent_url().unwrap();
    assert!(
        url.starts_with(&format!(
            "{}/oauth/auth?response_type=code&scope=signature+impersonation&client_id={}",
            f.server.url, f.integration_key
        )),
        "{url}"
    );
}

#[tokio::test]
async fn assertions_are_capped_by_the_maximum_the_server_publishes() {
    let server = TestServer::start_with(RawConfig {
        max_assertion_lifetime_secs: Some(120),
        ..RawConfig::default()
    })
    .await;
    let f = Fixture::on(server).await;
    let metadata = jwtgrant_client::discover(&reqwest::Client::new(), &f.server.url)
        .await
        .unwrap();
    assert_eq!(metadata.jwtgrant_max_assertion_lifetime, Some(120));

    // The jwtgrant preset reads it from the metadata: its one-hour default would be
    // refused (120 s plus 60 s leeway), the capped assertion is accepted.
    user_source(&f).access_token().await.unwrap();

    // A token endpoint set directly: the builder option says it.
    let direct = |max: Option<u64>| {
        let builder = TokenSource::builder(&f.integration_key, f.key.clone())
            .token_endpoint(f.server.token_endpoint())
            .audience(f.server.host())
            .subject(&f.user_id)
            .scopes(["signature", "impersonation"]);
        match max {
            Some(secs) => builder.max_assertion_lifetime(Duration::from_secs(secs)),
            None => builder,
        }
        .build()
        .unwrap()
    };
    let error = direct(None).access_token().await.unwrap_err();
    assert!(
        error.oauth().unwrap().is(ErrorCode::InvalidGrant),
        "{error}"
    );
    direct(Some(120)).access_token().await.unwrap();
    assert_eq!(f.server.issued(), 2);
}
