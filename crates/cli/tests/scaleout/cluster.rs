//! Three `jwtgrant serve` processes on three ports sharing one PostgreSQL database
//! (and, in the second test, one Redis), all with one public URL (a load balancer's),
//! as instances behind it would be: one issuer, one
//! replay record, one registry, one set of signing keys, kept encrypted in the
//! database under the master key every instance is given.

use std::time::{Duration, Instant};

use jwtgrant_client::Verifier;
use serde_json::Value;

use crate::support::*;

/// The master key every instance (and the admin commands on keys) is given.
const MASTER_KEY: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";

#[tokio::test]
async fn three_instances_share_postgresql() {
    let Some(server) = database_server("three_instances_share_postgresql") else {
        return;
    };
    three_instances(&server, false).await;
}

#[tokio::test]
async fn three_instances_share_postgresql_and_redis() {
    let Some(server) = database_server("three_instances_share_postgresql_and_redis") else {
        return;
    };
    three_instances(&server, true).await;
}

async fn three_instances(server: &str, with_redis: bool) {
    let _serial = serial().await;
    let label = if with_redis {
        "PostgreSQL + Redis"
    } else {
        "PostgreSQL"
    };
    let db = TestDatabase::create(server).await;
    let redis = if with_redis {
        Some(TestRedis::start().await)
    } else {
        None
    };
    let dir = tempfile::tempdir().unwrap();
    let http = http();
    let issuer = PUBLIC_URL.to_owned();
    let aud = issuer.trim_start_matches("http://").to_owned();
    let mut extra = vec!["--public-url".to_owned(), issuer.clone()];
    if let Some(redis) = &redis {
        extra.extend(redis.serve_args());
    }
    let sealed = [("JWTGRANT_MASTER_KEY", MASTER_KEY)];

    // All three at once on the empty database, as a fresh deployment starts them.
    let started = Instant::now();
    let instances = start_instances(3, &db.url, &extra, &sealed, dir.path()).await;
    let ready_after = started.elapsed();

    // Registered through the admin commands after the instances started.
    let reg = Registration::create(&db.url, dir.path()).await;
    let registered = Instant::now();
    for instance in &instances {
        loop {
            let (status, body) = token(&http, &instance.url, &reg.assertion(&aud)).await;
            if status == 200 {
                break;
            }
            assert!(
                registered.elapsed() < PROPAGATION,
                "{} does not serve the new registration after {:?}: {status} {body}",
                instance.url,
                registered.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let registration_seen_after = registered.elapsed();

    // Every instance publishes the same signing keys.
    let keys_since = Instant::now();
    let kids = loop {
        let mut sets = Vec::new();
        for instance in &instances {
            sets.push(published_kids(&http, &instance.url).await);
        }
        if sets.iter().all(|s| *s == sets[0]) {
            break sets.swap_remove(0);
        }
        assert!(
            keys_since.elapsed() < PROPAGATION,
            "the instances publish different keys: {sets:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let stored_keys = admin_with_env(&db.url, &sealed, &["keys", "list"]).await["keys"]
        .as_array()
        .map(Vec::len)
        .unwrap_or_default();
    // Started together on an empty database, they agreed on one key.
    assert_eq!(
        stored_keys, 1,
        "several signing keys after a simultaneous start"
    );
    assert_eq!(kids.len(), 1, "{kids:?}");

    // 1. A token from each instance verifies with every instance's JWKS.
    let mut first_tokens = Vec::new();
    for instance in &instances {
        let (status, body) = token(&http, &instance.url, &reg.assertion(&aud)).await;
        assert_eq!(status, 200, "{}: {body}", instance.url);
        let access = body["access_token"].as_str().unwrap().to_owned();
        verify_everywhere(&access, &issuer, &instances, &reg).await;
        first_tokens.push(access);
    }

    // 2. A jti used on one instance is refused by every instance, that one included.
    let mut last_claims = Value::Null;
    for first in 0..instances.len() {
        let claims = reg.claims(&aud);
        let assertion = reg.sign(&claims);
        let (status, body) = token(&http, &instances[first].url, &assertion).await;
        assert_eq!(status, 200, "{body}");
        for other in &instances {
            let (status, body) = token(&http, &other.url, &assertion).await;
            let (code, description) = oauth_error(&body);
            assert_eq!(
                (status, code),
                (400, "invalid_grant"),
                "replay at {} of a jti used at {}: {body}",
                other.url,
                instances[first].url
            );
            assert!(description.contains("already been used"), "{body}");
        }
        last_claims = claims;
    }
    // ...and it is recorded where it should be: Redis with --redis, else the database.
    let jti = last_claims["jti"].as_str().unwrap();
    let pool = db.pool().await;
    let rows: i64 =
        sqlx::query_scalar("SELECT count(*) FROM used_jtis WHERE issuer = $1 AND jti = $2")
            .bind(&reg.integration_key)
            .bind(jti)
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    match &redis {
        Some(redis) => {
            let key = format!(
                "{}jti:{}:{}:{jti}",
                redis.prefix,
                reg.integration_key.len(),
                reg.integration_key
            );
            assert_eq!(redis.cli(&["EXISTS", &key]), "1", "the jti is not in Redis");
            assert_eq!(
                rows, 0,
                "with --redis the jti should not be in the database"
            );
        }
        None => assert_eq!(rows, 1, "the jti is not in used_jtis"),
    }

    // 3. The same assertion sent to all three at once (two copies each): one token.
    let rounds = 20;
    let copies = 2;
    warm(&http, &instances, copies).await;
    let mut winners = vec![0_usize; instances.len()];
    for round in 0..rounds {
        let assertion = reg.assertion(&aud);
        let outcomes = race(&http, &instances, copies, |http, url| {
            jwt_bearer(http, url, &assertion)
        })
        .await;
        let winner = one_winner(round, &outcomes, |status, body| {
            status == 400 && oauth_error(body).0 == "invalid_grant"
        });
        winners[winner] += 1;
    }

    // 4. An integration disabled through the admin command: refused by all three
    //    within 5 s (and accepted again by all within 5 s of `enable`).
    let command = Instant::now();
    admin(&db.url, &["integration", "disable", &reg.integration_key]).await;
    let disable_command = command.elapsed();
    let fresh = |http: &reqwest::Client, url: &str| jwt_bearer(http, url, &reg.assertion(&aud));
    let disabled = times_until(&instances, &http, fresh, |status, body| {
        status == 400 && oauth_error(body).1.starts_with("issuer_not_found")
    })
    .await;
    admin(&db.url, &["integration", "enable", &reg.integration_key]).await;
    let enabled = times_until(&instances, &http, fresh, |status, _| status == 200).await;

    // 5. A key rotated with `keys rotate --activate-after 0`: published by all three
    //    within 5 s; each then signs with it, and its tokens verify everywhere.
    let rotated = admin_with_env(
        &db.url,
        &sealed,
        &["keys", "rotate", "--activate-after", "0"],
    )
    .await;
    let rotated_at = Instant::now();
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    let mut published = vec![None; instances.len()];
    while published.iter().any(Option::is_none) {
        for (index, instance) in instances.iter().enumerate() {
            if published[index].is_none()
                && published_kids(&http, &instance.url)
                    .await
                    .contains(&new_kid)
            {
                published[index] = Some(rotated_at.elapsed());
            }
        }
        assert!(
            rotated_at.elapsed() < PROPAGATION,
            "rotated key {new_kid} not published by all within 5 s: {published:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for instance in &instances {
        let kids_now = published_kids(&http, &instance.url).await;
        for kid in &kids {
            assert!(
                kids_now.contains(kid),
                "{} stopped publishing {kid}, which signed live tokens",
                instance.url
            );
        }
        let (status, body) = token(&http, &instance.url, &reg.assertion(&aud)).await;
        assert_eq!(status, 200, "{body}");
        let access = body["access_token"].as_str().unwrap();
        assert_eq!(
            token_kid(access),
            new_kid,
            "{} does not sign with the rotated key",
            instance.url
        );
        verify_everywhere(access, &issuer, &instances, &reg).await;
    }
    // Tokens signed before the rotation still verify everywhere.
    for access in &first_tokens {
        verify_everywhere(access, &issuer, &instances, &reg).await;
    }

    // 6. Both signing keys (the one the instances agreed on, the rotated one) are
    //    stored sealed under the master key, not as PKCS#8, and are unreadable
    //    without it.
    let pool = db.pool().await;
    let stored: Vec<(String, Vec<u8>)> =
        sqlx::query_as("SELECT kid, private_key FROM signing_keys ORDER BY kid")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert_eq!(
        stored.len(),
        2,
        "{:?}",
        stored.iter().map(|k| &k.0).collect::<Vec<_>>()
    );
    for (kid, private_key) in &stored {
        assert!(
            private_key.starts_with(b"JGK1"),
            "signing key {kid} is stored unsealed"
        );
        // PKCS#8 is a DER SEQUENCE (0x30); a sealed record does not parse as one.
        assert!(
            jwtgrant_core::SigningKey::from_pkcs8_der(private_key).is_err(),
            "signing key {kid} is readable without the master key"
        );
    }
    let without_key = try_admin(&db.url, &[], &["keys", "list"]).await;
    assert!(
        without_key
            .as_ref()
            .is_err_and(|stderr| stderr.contains("JWTGRANT_MASTER_KEY")),
        "keys list without the master key: {without_key:?}"
    );

    eprintln!(
        "[{label}] 3 instances ready {ready_after:?} after a simultaneous start; registration served by all after {registration_seen_after:?}\n\
         [{label}] signing keys after the simultaneous start: {stored_keys} stored, {} published (same set on all); all {} sealed (JGK1) under the master key\n\
         [{label}] same assertion x{} at once, {rounds} rounds: exactly one 200 each; winners per instance {winners:?}\n\
         [{label}] disable command took {disable_command:?}; refused by the instances after {} (each counted after the command returned)\n\
         [{label}] enable: accepted again after {}\n\
         [{label}] keys rotate --activate-after 0: published after {}",
        kids.len(),
        stored.len(),
        instances.len() * copies,
        show(&disabled),
        show(&enabled),
        show(&published.into_iter().flatten().collect::<Vec<_>>()),
    );
    for mut instance in instances {
        instance.stop();
    }
}

/// The token verifies with a verifier on each instance's JWKS (a fresh verifier
/// each time: nothing cached across instances).
async fn verify_everywhere(access: &str, issuer: &str, instances: &[Instance], reg: &Registration) {
    for instance in instances {
        let verifier = Verifier::builder(issuer, format!("{}/oauth/jwks", instance.url))
            .build()
            .unwrap();
        let claims = verifier.verify(access).await.unwrap_or_else(|e| {
            panic!(
                "token (kid {}) does not verify with the JWKS of {}: {e}",
                token_kid(access),
                instance.url
            )
        });
        assert_eq!(claims.iss, issuer);
        assert_eq!(claims.sub, reg.user_id);
        assert_eq!(claims.client_id, reg.integration_key);
    }
}
