//! Test support: a real server on port 0 over a real SQLite file, fixtures made
//! through the store, assertions minted with real keys, and the real binary.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jwtgrant_core::jws::sign_compact;
use jwtgrant_core::{JwsAlgorithm, SigningKey};
use jwtgrant_server::{AppState, RawConfig, ServerConfig};
use jwtgrant_store::{
    AccountRecord, IntegrationKeyRecord, NewIntegration, OpenOptions, Store, UserRecord,
};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

pub fn now() -> i64 {
    jwtgrant_server::clock::now()
}

/// A server running in this process.
pub struct TestServer {
    pub url: String,
    pub dir: tempfile::TempDir,
    pub store: Arc<dyn Store>,
    pub state: Arc<AppState>,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(RawConfig::default()).await
    }

    pub async fn start_with(raw: RawConfig) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(dir, raw).await
    }

    pub async fn start_in(dir: tempfile::TempDir, raw: RawConfig) -> TestServer {
        let database = postgres_url_for(dir.path()).await;
        let raw = RawConfig {
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some(dir.path().to_path_buf()),
            database: database.clone(),
            registry_poll_ms: raw.registry_poll_ms.or(Some(100)),
            ..raw
        };
        let config = ServerConfig::from_raw(raw).expect("config");
        let store = jwtgrant_store::open(&config.store, &OpenOptions::default())
            .await
            .expect("store");
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .expect("bind");
        let bound = listener.local_addr().expect("addr");
        let tls = config.tls.is_some();
        let state = AppState::new(config, Arc::clone(&store), bound)
            .await
            .expect("state");
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = Arc::clone(&state);
        let task = tokio::spawn(async move {
            let _ = jwtgrant_server::serve(listener, serving, async {
                let _ = stopped.await;
            })
            .await;
        });
        let scheme = if tls { "https" } else { "http" };
        TestServer {
            url: format!("{scheme}://{bound}"),
            dir,
            store,
            state,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the server and returns its data directory for a restart.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.store.close().await;
        let dir = tempfile::tempdir().expect("tempdir");
        std::mem::replace(&mut self.dir, dir)
    }

    /// The bare host:port, as DocuSign's SDKs put it in `aud`.
    pub fn host(&self) -> String {
        self.url.split("://").nth(1).unwrap_or_default().to_owned()
    }

    pub async fn post_form(&self, body: &[(&str, &str)]) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/oauth/token", self.url))
            .form(body)
            .send()
            .await
            .expect("send");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn token(&self, assertion: &str) -> (u16, Value) {
        self.post_form(&[("grant_type", JWT_BEARER), ("assertion", assertion)])
            .await
    }

    pub async fn raw_post(
        &self,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.http
            .post(format!("{}/oauth/token", self.url))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("send")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("send")
    }

    /// Makes the server pick up registry changes now, as its poll would shortly.
    pub async fn refresh(&self) {
        self.state.registry.refresh().await.expect("refresh");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// An integration with one registered key, a user with an account and consent.
pub struct Fixture {
    pub server: TestServer,
    pub integration_key: String,
    pub key: Arc<SigningKey>,
    pub kid: String,
    pub user_id: String,
}

pub fn rsa_key() -> Arc<SigningKey> {
    use std::sync::OnceLock;
    static KEY: OnceLock<Arc<SigningKey>> = OnceLock::new();
    Arc::clone(
        KEY.get_or_init(|| Arc::new(SigningKey::generate(JwsAlgorithm::Rs256, 2048).expect("key"))),
    )
}

pub fn other_rsa_key() -> Arc<SigningKey> {
    use std::sync::OnceLock;
    static KEY: OnceLock<Arc<SigningKey>> = OnceLock::new();
    Arc::clone(
        KEY.get_or_init(|| Arc::new(SigningKey::generate(JwsAlgorithm::Rs256, 2048).expect("key"))),
    )
}

pub struct IntegrationSpec {
    pub allow_application_tokens: bool,
    pub require_jti: bool,
    pub scopes: Vec<String>,
}

impl Default for IntegrationSpec {
    fn default() -> Self {
        IntegrationSpec {
            allow_application_tokens: false,
            require_jti: false,
            scopes: vec!["signature".into(), "impersonation".into()],
        }
    }
}

pub async fn add_integration(
    store: &dyn Store,
    spec: IntegrationSpec,
    key: &SigningKey,
) -> (String, String) {
    let integration_key = uuid::Uuid::new_v4().to_string();
    store
        .create_integration(NewIntegration {
            integration_key: integration_key.clone(),
            name: "Test integration".into(),
            scopes: spec.scopes,
            redirect_uris: vec!["http://localhost:9000/callback".into()],
            allow_application_tokens: spec.allow_application_tokens,
            require_jti: spec.require_jti,
            created_at: now(),
        })
        .await
        .expect("integration");
    let kid = add_key(store, &integration_key, key).await;
    (integration_key, kid)
}

pub async fn add_key(store: &dyn Store, integration_key: &str, key: &SigningKey) -> String {
    let kid = key.public_key().thumbprint().to_owned();
    let jwk = key.public_key().to_jwk(Some(&kid), None);
    store
        .add_integration_key(
            integration_key,
            IntegrationKeyRecord {
                kid: kid.clone(),
                public_jwk: serde_json::to_string(&jwk).expect("jwk"),
                active: true,
                created_at: now(),
            },
        )
        .await
        .expect("key");
    kid
}

pub async fn add_user(store: &dyn Store) -> String {
    let user_id = uuid::Uuid::new_v4().to_string();
    store
        .create_user(UserRecord {
            user_id: user_id.clone(),
            email: format!("{user_id}@example.com"),
            name: "Ada Lovelace".into(),
            given_name: "Ada".into(),
            family_name: "Lovelace".into(),
            active: true,
            created_at: 1_700_000_000,
        })
        .await
        .expect("user");
    store
        .create_account(AccountRecord {
            account_id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.clone(),
            account_name: "Ada's account".into(),
            base_uri: "https://demo.example.com".into(),
            is_default: true,
            organization: None,
            created_at: now(),
        })
        .await
        .expect("account");
    user_id
}

impl Fixture {
    pub async fn new() -> Fixture {
        Self::with(TestServer::start().await, IntegrationSpec::default()).await
    }

    pub async fn with(server: TestServer, spec: IntegrationSpec) -> Fixture {
        let key = rsa_key();
        let (integration_key, kid) = add_integration(server.store.as_ref(), spec, &key).await;
        let user_id = add_user(server.store.as_ref()).await;
        let scopes = vec!["signature".to_string(), "impersonation".to_string()];
        server
            .store
            .grant_consent(&user_id, &integration_key, &scopes, now())
            .await
            .expect("consent");
        Fixture {
            server,
            integration_key,
            key,
            kid,
            user_id,
        }
    }

    /// DocuSign-shaped claims for this fixture's integration and user.
    pub fn claims(&self) -> Value {
        let now = now();
        json!({
            "iss": self.integration_key,
            "sub": self.user_id,
            "aud": self.server.host(),
            "iat": now,
            "exp": now + 3600,
            "scope": "signature impersonation",
            "jti": uuid::Uuid::new_v4().to_string(),
        })
    }

    /// The claims with some members replaced (a `null` value removes the member
    /// when `remove` lists it).
    pub fn claims_with(&self, overrides: Value, remove: &[&str]) -> Value {
        let mut claims = self.claims();
        if let (Value::Object(base), Value::Object(over)) = (&mut claims, overrides) {
            base.extend(over);
            for name in remove {
                base.remove(*name);
            }
        }
        claims
    }

    pub fn sign(&self, claims: &Value) -> String {
        sign(&self.key, JwsAlgorithm::Rs256, claims)
    }

    pub async fn token_for(&self, claims: &Value) -> (u16, Value) {
        self.server.token(&self.sign(claims)).await
    }
}

pub fn sign(key: &SigningKey, alg: JwsAlgorithm, claims: &Value) -> String {
    sign_compact(key, alg, Some("JWT"), None, claims).expect("sign")
}

/// The error code and description of an OAuth error body.
pub fn oauth_error(body: &Value) -> (&str, &str) {
    (
        body["error"].as_str().unwrap_or_default(),
        body["error_description"].as_str().unwrap_or_default(),
    )
}

fn postgres_base() -> Option<String> {
    if std::env::var("JWTGRANT_TEST_BACKEND").ok().as_deref() != Some("postgres") {
        return None;
    }
    Some(
        std::env::var("JWTGRANT_TEST_DATABASE_URL")
            .expect("JWTGRANT_TEST_DATABASE_URL with JWTGRANT_TEST_BACKEND=postgres"),
    )
}

/// For the PostgreSQL backend, a database of this test's own (named after its data
/// directory, so a restart finds it again), created if missing.
pub async fn postgres_url_for(dir: &Path) -> Option<String> {
    let base = postgres_base()?;
    let name: String = dir
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
        })
        .unwrap_or_default()
        .to_ascii_lowercase();
    let database = format!("jg_{name}");
    let admin = sqlx::PgPool::connect(&base)
        .await
        .expect("connect to PostgreSQL");
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&database)
        .fetch_optional(&admin)
        .await
        .expect("query");
    if exists.is_none() {
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .execute(&admin)
            .await
            .expect("create database");
    }
    admin.close().await;
    let (prefix, _) = base.rsplit_once('/').expect("database URL");
    Some(format!("{prefix}/{database}"))
}

/// The store arguments for the binary: `--data-dir DIR`, or `--database URL`.
pub fn store_args(dir: &Path) -> Vec<std::ffi::OsString> {
    let dir_owned = dir.to_path_buf();
    let url = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(postgres_url_for(&dir_owned))
    })
    .join()
    .expect("thread");
    match url {
        Some(url) => vec!["--database".into(), url.into()],
        None => vec!["--data-dir".into(), dir.as_os_str().to_owned()],
    }
}

/// The `jwtgrant` binary built for these tests.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_jwtgrant"))
}

/// Runs an admin command on the store of `dir` with `--json`; returns its JSON output.
pub fn admin(dir: &Path, args: &[&str]) -> Value {
    let output = std::process::Command::new(binary())
        .args(store_args(dir))
        .args(args)
        .arg("--json")
        .output()
        .expect("run jwtgrant");
    assert!(
        output.status.success(),
        "jwtgrant {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("json output")
}

// The binary as an operator runs it.

/// The binary with no `JWTGRANT_*` variable from outside, run in `cwd` (so that a
/// wrongly chosen default data directory would land there, not in the checkout).
pub fn jwtgrant(cwd: &Path) -> std::process::Command {
    let mut command = std::process::Command::new(binary());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("JWTGRANT_") {
            command.env_remove(name);
        }
    }
    command.current_dir(cwd).stdin(std::process::Stdio::null());
    command
}

pub fn run(mut command: std::process::Command) -> std::process::Output {
    command.output().expect("run jwtgrant")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `jwtgrant ... serve` process, killed when this goes out of scope.
pub struct Serving(std::process::Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `command serve --listen 127.0.0.1:PORT FLAGS...` and waits for `/readyz`
/// 200; panics with its stderr if it exits or is not ready in time.
pub async fn serve_until_ready(
    mut command: std::process::Command,
    cwd: &Path,
    flags: &[&str],
) -> Serving {
    let port = free_port();
    let log = cwd.join(format!("serve-{port}.log"));
    let child = command
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(flags)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("jwtgrant serve");
    let mut serving = Serving(child);
    let http = reqwest::Client::new();
    let started = std::time::Instant::now();
    loop {
        let ready = http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200);
        if ready {
            return serving;
        }
        let exited = serving.0.try_wait().unwrap();
        if exited.is_some() || started.elapsed() > std::time::Duration::from_secs(30) {
            panic!(
                "serve not ready (exit: {exited:?}); log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
