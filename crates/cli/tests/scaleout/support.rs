//! Test support: the kit's PostgreSQL (a database of the test's own, a throwaway
//! cluster), its `redis-server`s and its `jwtgrant serve` processes (each on a port
//! it picks), admin commands through the real binary, and assertions signed with a
//! registered key.

use std::path::Path;
use std::time::Duration;

use jwtgrant_core::jws::CompactJws;
use jwtgrant_core::{JwsAlgorithm, SigningKey};
use serde_json::Value;

pub use jwtgrant_testkit::token_request as token;
pub use jwtgrant_testkit::*;

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
