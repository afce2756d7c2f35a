//! Test support: the kit's PostgreSQL (a database of the test's own, a throwaway
//! cluster), its `redis-server`s and its `jwtgrant serve` processes (each on a port
//! it picks), admin commands through the real binary, assertions signed with a
//! registered key, how long a change takes to reach every instance, and one request
//! sent to all of them at once.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jwtgrant_core::jws::CompactJws;
use jwtgrant_core::{JwsAlgorithm, SigningKey};
use serde_json::Value;

pub use jwtgrant_testkit::token_request as token;
pub use jwtgrant_testkit::*;

/// Every admin change must reach every instance within this (the bound).
pub const PROPAGATION: Duration = Duration::from_secs(5);

/// The public URL every instance is given: the load balancer's in front of them,
/// so one issuer whichever instance answers.
pub const PUBLIC_URL: &str = "http://jwtgrant.test";

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One test at a time: each runs several server processes, and the time bounds they
/// check are measured on a shared machine with few cores.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

/// The `jwtgrant` binary built for these tests.
pub fn binary() -> Jwtgrant {
    Jwtgrant::at(env!("CARGO_BIN_EXE_jwtgrant"))
}

/// One `jwtgrant serve` process, its log in a file.
pub type Instance = Serving;

/// Starts `n` instances of `jwtgrant --database URL serve EXTRA...` at once, with
/// these `JWTGRANT_*` variables (and no others), their logs in `log_dir`; returns
/// once each is ready (each within 60 s).
pub async fn start_instances(
    n: usize,
    database_url: &str,
    extra: &[String],
    env: &[(&str, &str)],
    log_dir: &Path,
) -> Vec<Instance> {
    let flags: Vec<&str> = extra.iter().map(String::as_str).collect();
    let starting: Vec<Starting> = (0..n)
        .map(|_| {
            let mut command = binary().command();
            command
                .args(["--database", database_url])
                .envs(env.iter().copied());
            spawn_serve(command, log_dir, &flags)
        })
        .collect();
    let mut instances = Vec::with_capacity(n);
    for instance in starting {
        instances.push(instance.ready(Duration::from_secs(60)).await);
    }
    instances
}

/// Runs an admin command of the real binary on `database_url` with `--json`.
pub async fn admin(database_url: &str, args: &[&str]) -> Value {
    admin_with_env(database_url, &[], args).await
}

/// Runs an admin command on `database_url` with `--json` and these variables
/// (e.g. `JWTGRANT_MASTER_KEY`); the output, or the failure's stderr.
pub async fn try_admin(
    database_url: &str,
    env: &[(&str, &str)],
    args: &[&str],
) -> Result<Value, String> {
    let admin = admin_on(database_url, env);
    let args: Vec<String> = args.iter().map(|&a| a.to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        admin.try_json(&args)
    })
    .await
    .unwrap()
}

/// [`admin`] with these variables (e.g. `JWTGRANT_MASTER_KEY`).
pub async fn admin_with_env(database_url: &str, env: &[(&str, &str)], args: &[&str]) -> Value {
    try_admin(database_url, env, args)
        .await
        .unwrap_or_else(|stderr| panic!("jwtgrant {args:?} failed: {stderr}"))
}

fn admin_on(database_url: &str, env: &[(&str, &str)]) -> Admin {
    env.iter().fold(
        Admin::new(&binary(), ["--database", database_url]),
        |admin, (name, value)| admin.with_env(name, value),
    )
}

/// An integration with a generated ES256 key, a user with an account and the
/// user's consent, all made with the admin commands.
pub struct Registration {
    pub integration_key: String,
    pub user_id: String,
    key: SigningKey,
}

impl Registration {
    pub async fn create(database_url: &str, dir: &Path) -> Registration {
        let admin = admin_on(database_url, &[]);
        let dir = dir.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let integration_key = admin.create_integration(&[
                "--name",
                "Scale-out test",
                "--redirect-uri",
                "http://localhost:9000/callback",
            ]);
            let key_path = dir.join(format!("{integration_key}.pem"));
            admin.generate_key(&integration_key, Some("ES256"), &key_path);
            let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
            let user_id = admin.create_user(&email, "Ada Lovelace");
            admin.grant_consent(&user_id, &integration_key);
            let pem = std::fs::read_to_string(&key_path).expect("private key");
            Registration {
                integration_key,
                user_id,
                key: SigningKey::from_pem(&pem).expect("private key"),
            }
        })
        .await
        .unwrap()
    }

    /// DocuSign-shaped claims with a fresh `jti`.
    pub fn claims(&self, aud: &str) -> Value {
        docusign_claims(&self.integration_key, &self.user_id, aud, 600)
    }

    /// A fresh assertion (new `jti`) for `aud`.
    pub fn assertion(&self, aud: &str) -> String {
        self.sign(&self.claims(aud))
    }

    pub fn sign(&self, claims: &Value) -> String {
        sign(&self.key, JwsAlgorithm::Es256, claims)
    }
}

/// The `kid`s an instance publishes at `/oauth/jwks`.
pub async fn published_kids(http: &reqwest::Client, base: &str) -> Vec<String> {
    let jwks: Value = http
        .get(format!("{base}/oauth/jwks"))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("jwks json");
    let mut kids: Vec<String> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str().map(str::to_owned))
        .collect();
    kids.sort();
    kids
}

/// The `kid` in an access token's header.
pub fn token_kid(token: &str) -> String {
    CompactJws::parse(token)
        .expect("compact JWS")
        .header()
        .kid
        .clone()
        .expect("kid")
}

/// The JWT bearer grant for `assertion` at `base`'s token endpoint.
pub fn jwt_bearer(http: &reqwest::Client, base: &str, assertion: &str) -> reqwest::RequestBuilder {
    http.post(format!("{base}/oauth/token"))
        .form(&[("grant_type", JWT_BEARER), ("assertion", assertion)])
}

/// Sends `request`: the status and the JSON body (`null` when it is not JSON);
/// status 0, with the error as the body's `error_description`, when the request
/// itself failed (as [`token`]).
pub async fn send(request: reqwest::RequestBuilder) -> (u16, Value) {
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            (status, response.json().await.unwrap_or(Value::Null))
        }
        Err(error) => (
            0,
            serde_json::json!({"error": "transport", "error_description": error.to_string()}),
        ),
    }
}

/// Sends a fresh request (`request` builds one for an instance's base URL, called
/// anew each time, so it may sign a new assertion) to every instance until each
/// answers as `done` says;
/// returns how long each took, counted from the call. An instance that answered so
/// must keep doing so; none may take longer than [`PROPAGATION`].
pub async fn times_until(
    instances: &[Instance],
    http: &reqwest::Client,
    request: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
    done: impl Fn(u16, &Value) -> bool,
) -> Vec<Duration> {
    let start = Instant::now();
    let mut took: Vec<Option<Duration>> = vec![None; instances.len()];
    loop {
        for (index, instance) in instances.iter().enumerate() {
            let (status, body) = send(request(http, &instance.url)).await;
            let now_done = done(status, &body);
            match took[index] {
                None if now_done => took[index] = Some(start.elapsed()),
                Some(_) => assert!(
                    now_done,
                    "{} went back to the old answer: {status} {body}",
                    instance.url
                ),
                None => assert!(
                    (200..500).contains(&status),
                    "{}: {status} {body}",
                    instance.url
                ),
            }
        }
        if took.iter().all(Option::is_some) {
            return took.into_iter().flatten().collect();
        }
        assert!(
            start.elapsed() < PROPAGATION,
            "not every instance changed its answer within {PROPAGATION:?}: {took:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Opens `copies` connections to each instance (concurrent requests, one connection
/// each), so that the copies a [`race`] sends leave together.
pub async fn warm(http: &reqwest::Client, instances: &[Instance], copies: usize) {
    let mut warm = tokio::task::JoinSet::new();
    for instance in instances {
        for _ in 0..copies {
            let (http, url) = (http.clone(), format!("{}/healthz", instance.url));
            warm.spawn(async move { get_status(&http, &url).await });
        }
    }
    while let Some(status) = warm.join_next().await {
        assert_eq!(status.unwrap(), 200);
    }
}

/// Sends `copies` copies of one request to each instance at once (each built by
/// `request`, so it must carry the same assertion each time); each answer with the
/// index of the instance that gave it.
pub async fn race(
    http: &reqwest::Client,
    instances: &[Instance],
    copies: usize,
    request: impl Fn(&reqwest::Client, &str) -> reqwest::RequestBuilder,
) -> Vec<(usize, u16, Value)> {
    let barrier = Arc::new(tokio::sync::Barrier::new(instances.len() * copies));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, instance) in instances.iter().enumerate() {
        for _ in 0..copies {
            let request = request(http, &instance.url);
            let barrier = Arc::clone(&barrier);
            tasks.spawn(async move {
                barrier.wait().await;
                let (status, body) = send(request).await;
                (index, status, body)
            });
        }
    }
    let mut outcomes = Vec::new();
    while let Some(outcome) = tasks.join_next().await {
        outcomes.push(outcome.unwrap());
    }
    outcomes
}

/// The instance that gave the one 200 among a [`race`]'s answers (of its round
/// `round`); every other answer must be `refused`.
pub fn one_winner(
    round: usize,
    outcomes: &[(usize, u16, Value)],
    refused: impl Fn(u16, &Value) -> bool,
) -> usize {
    let ok: Vec<usize> = outcomes
        .iter()
        .filter(|(_, status, _)| *status == 200)
        .map(|(index, _, _)| *index)
        .collect();
    assert_eq!(ok.len(), 1, "round {round}: {outcomes:?}");
    for (_, status, body) in outcomes {
        assert!(
            *status == 200 || refused(*status, body),
            "round {round}: {status} {body}"
        );
    }
    ok[0]
}

/// Durations as `0.42 s, 0.51 s, ...`.
pub fn show(times: &[Duration]) -> String {
    times
        .iter()
        .map(|t| format!("{:.2} s", t.as_secs_f64()))
        .collect::<Vec<_>>()
        .join(", ")
}
