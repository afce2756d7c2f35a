//! Trust taken away through the admin commands is taken away on every instance
//! within the registry poll, and a `jti` is single use across them all: a trusted
//! issuer (its keys on a JWKS server the test runs on loopback) disabled, removed
//! with every key it had, or past `--expires-at`, and one single-use token sent to
//! every instance at once (issue 12); an integration, or one of its keys, disabled
//! for `private_key_jwt`, and one client assertion sent to every instance at once
//! (issue 11). Three instances on one PostgreSQL database, with and without Redis.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jwtgrant_core::jws::{CompactJws, sign_compact};
use jwtgrant_core::{JwsAlgorithm, SigningKey};
use serde_json::{Value, json};

use crate::support::*;

const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The trusted issuer's identifier (`iss`); only its JWKS URL is fetched, on loopback.
const WORKLOADS: &str = "https://workloads.example.test";

/// Another trusted issuer, whose trust ends while the test runs.
const EXPIRING: &str = "https://expiring.example.test";

/// Copies of one request each instance gets at once: 24 in all.
const COPIES: usize = 8;

/// Rounds of [`COPIES`] copies per instance.
const ROUNDS: usize = 10;

#[tokio::test]
async fn a_trusted_issuer_is_refused_everywhere_within_the_poll() {
    let Some(server) = database_server("a_trusted_issuer_is_refused_everywhere_within_the_poll")
    else {
        return;
    };
    trusted_issuer(&server, false).await;
}

#[tokio::test]
async fn a_trusted_issuer_is_refused_everywhere_within_the_poll_with_redis() {
    let Some(server) =
        database_server("a_trusted_issuer_is_refused_everywhere_within_the_poll_with_redis")
    else {
        return;
    };
    trusted_issuer(&server, true).await;
}

#[tokio::test]
async fn a_disabled_client_or_key_stops_authenticating_everywhere() {
    let Some(server) = database_server("a_disabled_client_or_key_stops_authenticating_everywhere")
    else {
        return;
    };
    client_assertions(&server, false).await;
}

#[tokio::test]
async fn a_disabled_client_or_key_stops_authenticating_everywhere_with_redis() {
    let Some(server) =
        database_server("a_disabled_client_or_key_stops_authenticating_everywhere_with_redis")
    else {
        return;
    };
    client_assertions(&server, true).await;
}

/// Three instances on a database of the test's own (and Redis, when asked). The
/// instances come first: dropped first, even when the test fails.
struct Cluster {
    instances: Vec<Instance>,
    http: reqwest::Client,
    label: &'static str,
    db: TestDatabase,
    _redis: Option<TestRedis>,
    dir: tempfile::TempDir,
}

impl Cluster {
    async fn start(server: &str, with_redis: bool, extra: &[&str]) -> Cluster {
        let db = TestDatabase::create(server).await;
        let redis = if with_redis {
            Some(TestRedis::start().await)
        } else {
            None
        };
        let dir = tempfile::tempdir().unwrap();
        let mut flags = vec!["--public-url".to_owned(), PUBLIC_URL.to_owned()];
        flags.extend(extra.iter().map(|&f| f.to_owned()));
        if let Some(redis) = &redis {
            flags.extend(redis.serve_args());
        }
        let instances = start_instances(3, &db.url, &flags, &[], dir.path()).await;
        Cluster {
            instances,
            http: http(),
            label: if with_redis {
                "PostgreSQL + Redis"
            } else {
                "PostgreSQL"
            },
            db,
            _redis: redis,
            dir,
        }
    }

    async fn admin(&self, args: &[&str]) -> Value {
        admin(&self.db.url, args).await
    }

    /// Sends a fresh `request` to each instance once; each must answer as `expect`
    /// says. `what` names the request when one does not.
    async fn each(
        &self,
        what: &str,
        request: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
        expect: impl Fn(u16, &Value) -> bool,
    ) {
        for instance in &self.instances {
            let (status, body) = send(request(&self.http, &instance.url)).await;
            assert!(
                expect(status, &body),
                "{what} at {}: {status} {body}",
                instance.url
            );
        }
    }

    fn stop(mut self) {
        for instance in &mut self.instances {
            instance.stop();
        }
    }
}

/// Refused as a JWT bearer grant with a description that starts so.
fn grant_refused(starts: &'static str) -> impl Fn(u16, &Value) -> bool {
    move |status, body| {
        status == 400
            && oauth_error(body).0 == "invalid_grant"
            && oauth_error(body).1.starts_with(starts)
    }
}

/// Refused as client authentication with a description that says so.
fn client_refused(says: &'static str) -> impl Fn(u16, &Value) -> bool {
    move |status, body| {
        status == 401
            && oauth_error(body).0 == "invalid_client"
            && oauth_error(body).1.contains(says)
    }
}

fn ok(status: u16, body: &Value) -> bool {
    status == 200 && body["access_token"].is_string()
}

fn es256_key() -> Arc<SigningKey> {
    Arc::new(SigningKey::generate(JwsAlgorithm::Es256, 0).unwrap())
}

/// The claims of the access token in a token response.
fn access_claims(body: &Value) -> Value {
    let token = body["access_token"].as_str().unwrap();
    Value::Object(CompactJws::parse(token).unwrap().payload().clone())
}

/// A workload's token from the issuer `iss`: a fresh `jti`, five minutes' life.
fn workload_token(iss: &str, kid: &str, key: &SigningKey) -> String {
    let now = now();
    let claims = json!({
        "iss": iss,
        "sub": "spiffe://example.test/ns/payments/sa/api",
        "aud": PUBLIC_URL,
        "iat": now,
        "exp": now + 300,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    sign_with_header(
        key,
        JwsAlgorithm::Es256,
        Some(kid),
        None,
        json!({}),
        &claims,
    )
}

async fn trusted_issuer(server: &str, with_redis: bool) {
    let _serial = serial().await;
    let cluster = Cluster::start(server, with_redis, &["--allow-insecure-issuer-urls"]).await;
    let label = cluster.label;
    let created = cluster
        .admin(&[
            "integration",
            "create",
            "--name",
            "Workloads",
            "--allow-application-tokens",
        ])
        .await;
    let ik = created["integration_key"].as_str().unwrap().to_owned();

    // The issuer's JWKS on loopback, two keys in it.
    let (key_1, key_2) = (es256_key(), es256_key());
    let idp = TestIdp::start(vec![
        ("key-1".into(), Arc::clone(&key_1)),
        ("key-2".into(), Arc::clone(&key_2)),
    ])
    .await;
    let jwks_uri = idp.jwks_uri();
    let add = async |iss: &str, extra: &[&str]| -> String {
        let mut args = vec![
            "--allow-insecure-issuer-urls",
            "issuer",
            "add",
            "--issuer",
            iss,
            "--integration",
            &ik,
            "--jwks-uri",
            &jwks_uri,
            "--audience",
            PUBLIC_URL,
            "--subject",
            "workload",
        ];
        args.extend_from_slice(extra);
        cluster.admin(&args).await["issuer_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let signed_by = |kid: &'static str, key: &Arc<SigningKey>| {
        let key = Arc::clone(key);
        move |http: &reqwest::Client, url: &str| {
            jwt_bearer(http, url, &workload_token(WORKLOADS, kid, &key))
        }
    };
    let (by_key_1, by_key_2) = (signed_by("key-1", &key_1), signed_by("key-2", &key_2));

    // Added after the instances started: a token at each, with either key, and the
    // workload's own application token.
    let id = add(WORKLOADS, &[]).await;
    let added = Instant::now();
    let seen = times_until(&cluster.instances, &cluster.http, &by_key_1, ok).await;
    let added_after = added.elapsed();
    cluster.each("key-2 token", &by_key_2, ok).await;
    let (status, body) = send(by_key_1(&cluster.http, &cluster.instances[0].url)).await;
    assert_eq!(status, 200, "{body}");
    let access = access_claims(&body);
    assert_eq!(
        (access["sub"].as_str(), access["client_id"].as_str()),
        (
            Some("spiffe://example.test/ns/payments/sa/api"),
            Some(ik.as_str())
        ),
        "{access}"
    );

    // Disabled: every instance refuses it, whichever of its keys signed.
    let disabled_says = "issuer_not_found: the trusted issuer named by 'iss' is disabled";
    let command = Instant::now();
    cluster.admin(&["issuer", "disable", &id]).await;
    let disable_command = command.elapsed();
    let disabled = times_until(
        &cluster.instances,
        &cluster.http,
        &by_key_1,
        grant_refused(disabled_says),
    )
    .await;
    cluster
        .each(
            "key-2 token, disabled",
            &by_key_2,
            grant_refused(disabled_says),
        )
        .await;

    // Enabled again: accepted again, with both keys.
    cluster.admin(&["issuer", "enable", &id]).await;
    let enabled = times_until(&cluster.instances, &cluster.http, &by_key_1, ok).await;
    cluster.each("key-2 token, enabled", &by_key_2, ok).await;

    // Removed: unknown everywhere, whichever key signed.
    let command = Instant::now();
    let removed_json = cluster.admin(&["issuer", "remove", &id]).await;
    let remove_command = command.elapsed();
    assert_eq!(removed_json["removed"], true, "{removed_json}");
    let removed = times_until(
        &cluster.instances,
        &cluster.http,
        &by_key_1,
        grant_refused("issuer_not_found"),
    )
    .await;
    cluster
        .each(
            "key-2 token, removed",
            &by_key_2,
            grant_refused("issuer_not_found"),
        )
        .await;

    // The same issuer added again, its JWKS (at the same URL) now a new key-1 and a
    // key-3: its new keys work everywhere, and none of the keys it had before is
    // used by any instance (not the old key-1 under its kid, not key-2).
    let (new_key_1, key_3) = (es256_key(), es256_key());
    idp.set_keys(vec![
        ("key-1".into(), Arc::clone(&new_key_1)),
        ("key-3".into(), Arc::clone(&key_3)),
    ]);
    add(WORKLOADS, &[]).await;
    let by_new_key_1 = signed_by("key-1", &new_key_1);
    let readded = times_until(&cluster.instances, &cluster.http, &by_new_key_1, ok).await;
    cluster
        .each("key-3 token", signed_by("key-3", &key_3), ok)
        .await;
    let old_keys_refused = grant_refused("no_valid_keys_or_signatures");
    cluster
        .each("old key-1 token, re-added", &by_key_1, &old_keys_refused)
        .await;
    cluster
        .each("old key-2 token, re-added", &by_key_2, &old_keys_refused)
        .await;

    // Single use (the default) across instances: one token, 24 copies at once spread
    // over the three, one access token.
    warm(&cluster.http, &cluster.instances, COPIES).await;
    let mut winners = vec![0_usize; cluster.instances.len()];
    for round in 0..ROUNDS {
        let token = workload_token(WORKLOADS, "key-1", &new_key_1);
        let outcomes = race(&cluster.http, &cluster.instances, COPIES, |http, url| {
            jwt_bearer(http, url, &token)
        })
        .await;
        winners[one_winner(
            round,
            &outcomes,
            grant_refused("jti_replayed: 'jti' has already been used"),
        )] += 1;
    }

    // Past --expires-at: another issuer whose trust ends a few seconds from now,
    // accepted everywhere until then and refused everywhere after.
    let expires_at = now() + PROPAGATION.as_secs() as i64 + 1;
    let expires = jwtgrant_server::clock::rfc3339(expires_at);
    add(EXPIRING, &["--expires-at", &expires]).await;
    let expiring = |http: &reqwest::Client, url: &str| {
        jwt_bearer(http, url, &workload_token(EXPIRING, "key-3", &key_3))
    };
    times_until(&cluster.instances, &cluster.http, expiring, ok).await;
    let until_expiry = UNIX_EPOCH + Duration::from_secs(expires_at as u64);
    if let Ok(left) = until_expiry.duration_since(SystemTime::now()) {
        tokio::time::sleep(left).await;
    }
    let expired = times_until(
        &cluster.instances,
        &cluster.http,
        expiring,
        grant_refused("issuer_not_found: the trust in the issuer named by 'iss' has expired"),
    )
    .await;

    eprintln!(
        "[{label}] trusted issuer added: accepted by the instances after {} ({added_after:?} for all)\n\
         [{label}] issuer disable command took {disable_command:?}; refused (both keys) by the instances after {}\n\
         [{label}] issuer enable: accepted again after {}\n\
         [{label}] issuer remove command took {remove_command:?}; refused (both keys) by the instances after {}\n\
         [{label}] re-added with new keys at the same JWKS URL: new keys accepted after {}; old keys refused by all\n\
         [{label}] single-use token x{} at once, {ROUNDS} rounds: exactly one 200 each; winners per instance {winners:?}\n\
         [{label}] past --expires-at: refused by the instances {} after it",
        show(&seen),
        show(&disabled),
        show(&enabled),
        show(&removed),
        show(&readded),
        COPIES * cluster.instances.len(),
        show(&expired),
    );
    drop(idp);
    cluster.stop();
}

/// An integration that authenticates with `private_key_jwt`: two registered keys.
struct Client {
    ik: String,
    keys: Vec<(String, Arc<SigningKey>)>,
}

impl Client {
    async fn register(cluster: &Cluster) -> Client {
        let created = cluster
            .admin(&[
                "integration",
                "create",
                "--name",
                "Service",
                "--allow-application-tokens",
            ])
            .await;
        let ik = created["integration_key"].as_str().unwrap().to_owned();
        let mut keys = Vec::new();
        for n in 1..=2 {
            let path = cluster.dir.path().join(format!("client-{n}.pem"));
            let generated = cluster
                .admin(&[
                    "integration",
                    "generate-key",
                    &ik,
                    "--alg",
                    "ES256",
                    "--out",
                    path.to_str().unwrap(),
                ])
                .await;
            let kid = generated["kid"].as_str().unwrap().to_owned();
            let pem = std::fs::read_to_string(&path).unwrap();
            keys.push((kid, Arc::new(SigningKey::from_pem(&pem).unwrap())));
        }
        Client { ik, keys }
    }

    /// A client assertion signed with key `n` (0 or 1), as a well-behaved client
    /// signs it: iss = sub = the client, aud the issuer, a fresh `jti`.
    fn assertion(&self, n: usize) -> String {
        let (kid, key) = &self.keys[n];
        let now = now();
        let claims = json!({
            "iss": self.ik,
            "sub": self.ik,
            "aud": PUBLIC_URL,
            "iat": now,
            "exp": now + 300,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        sign_compact(
            key,
            JwsAlgorithm::Es256,
            Some("client-authentication+jwt"),
            Some(kid),
            &claims,
        )
        .unwrap()
    }

    /// The client credentials grant with a fresh client assertion signed by key `n`.
    fn fresh(&self, n: usize) -> impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder + '_ {
        move |http, url| client_credentials(http, url, &self.assertion(n))
    }
}

/// The client credentials grant, the client authenticated by `assertion`.
fn client_credentials(
    http: &reqwest::Client,
    base: &str,
    assertion: &str,
) -> reqwest::RequestBuilder {
    http.post(format!("{base}/oauth/token")).form(&[
        ("grant_type", "client_credentials"),
        ("client_assertion_type", CLIENT_ASSERTION_TYPE),
        ("client_assertion", assertion),
    ])
}

async fn client_assertions(server: &str, with_redis: bool) {
    let _serial = serial().await;
    let cluster = Cluster::start(server, with_redis, &[]).await;
    let label = cluster.label;
    let client = Client::register(&cluster).await;
    let (kid_a, _) = &client.keys[0];

    // Registered after the instances started: each authenticates it, with either key.
    let registered = times_until(&cluster.instances, &cluster.http, client.fresh(0), ok).await;
    cluster.each("key B", client.fresh(1), ok).await;
    let (status, body) = send(client.fresh(0)(&cluster.http, &cluster.instances[0].url)).await;
    assert_eq!(status, 200, "{body}");
    let access = access_claims(&body);
    assert_eq!(
        (access["sub"].as_str(), access["client_id"].as_str()),
        (Some(client.ik.as_str()), Some(client.ik.as_str())),
        "{access}"
    );

    // One key disabled: it stops authenticating everywhere; the other still does.
    let command = Instant::now();
    cluster
        .admin(&["integration", "disable-key", &client.ik, kid_a])
        .await;
    let disable_key_command = command.elapsed();
    let key_disabled = times_until(
        &cluster.instances,
        &cluster.http,
        client.fresh(0),
        client_refused("no active key of this integration has kid"),
    )
    .await;
    cluster
        .each("key B, key A disabled", client.fresh(1), ok)
        .await;
    cluster
        .admin(&["integration", "enable-key", &client.ik, kid_a])
        .await;
    let key_enabled = times_until(&cluster.instances, &cluster.http, client.fresh(0), ok).await;

    // The integration disabled: neither key authenticates it anywhere.
    let disabled_says = "unknown or disabled client";
    let command = Instant::now();
    cluster.admin(&["integration", "disable", &client.ik]).await;
    let disable_command = command.elapsed();
    let disabled = times_until(
        &cluster.instances,
        &cluster.http,
        client.fresh(0),
        client_refused(disabled_says),
    )
    .await;
    cluster
        .each(
            "key B, integration disabled",
            client.fresh(1),
            client_refused(disabled_says),
        )
        .await;
    cluster.admin(&["integration", "enable", &client.ik]).await;
    let enabled = times_until(&cluster.instances, &cluster.http, client.fresh(1), ok).await;

    // One client assertion, 24 copies at once spread over the three: one token.
    warm(&cluster.http, &cluster.instances, COPIES).await;
    let mut winners = vec![0_usize; cluster.instances.len()];
    for round in 0..ROUNDS {
        let assertion = client.assertion(round % 2);
        let outcomes = race(&cluster.http, &cluster.instances, COPIES, |http, url| {
            client_credentials(http, url, &assertion)
        })
        .await;
        winners[one_winner(round, &outcomes, client_refused("already been used"))] += 1;
    }

    eprintln!(
        "[{label}] private_key_jwt client registered: authenticated by the instances after {}\n\
         [{label}] integration disable-key command took {disable_key_command:?}; key refused by the instances after {} (the other key still accepted)\n\
         [{label}] integration enable-key: accepted again after {}\n\
         [{label}] integration disable command took {disable_command:?}; refused (both keys) by the instances after {}\n\
         [{label}] integration enable: accepted again after {}\n\
         [{label}] one client assertion x{} at once, {ROUNDS} rounds: exactly one 200 each; winners per instance {winners:?}",
        show(&registered),
        show(&key_disabled),
        show(&key_enabled),
        show(&disabled),
        show(&enabled),
        COPIES * cluster.instances.len(),
    );
    cluster.stop();
}
