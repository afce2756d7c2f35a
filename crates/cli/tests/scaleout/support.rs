//! Test support: a database of the test's own, a throwaway PostgreSQL cluster,
//! `redis-server` processes, `jwtgrant serve` processes on loopback ports, admin
//! commands through the real binary, and assertions signed with a registered key.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jwtgrant_core::jws::{CompactJws, sign_compact};
use jwtgrant_core::{JwsAlgorithm, SigningKey};
use serde_json::{Value, json};

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The PostgreSQL server the tests create their databases on, or `None` (after a
/// note on stderr) when `JWTGRANT_TEST_DATABASE_URL` is not set.
pub fn database_server(test: &str) -> Option<String> {
    match std::env::var("JWTGRANT_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            eprintln!(
                "note: {test} not run: set JWTGRANT_TEST_DATABASE_URL=postgres://... (as .ci/run does)"
            );
            None
        }
    }
}

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// One test at a time: each runs several server processes, and the time bounds they
/// check are measured on a shared machine with few cores.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    SERIAL.lock().await
}

/// A loopback port nothing listens on (now).
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// `n` distinct loopback ports nothing listens on (now).
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

pub fn now() -> i64 {
    jwtgrant_server::clock::now()
}

/// The `jwtgrant` binary built for these tests.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_jwtgrant"))
}

/// `server` (a `postgres://` URL) naming the database `name` instead.
pub fn with_database(server: &str, name: &str) -> String {
    let (scheme, rest) = server.split_once("://").expect("a postgres:// URL");
    let (rest, query) = match rest.split_once('?') {
        Some((rest, query)) => (rest, format!("?{query}")),
        None => (rest, String::new()),
    };
    let authority = rest.split('/').next().unwrap_or_default();
    format!("{scheme}://{authority}/{name}{query}")
}

/// A database of this test's own, dropped when this goes out of scope.
pub struct TestDatabase {
    pub url: String,
    server: String,
    name: String,
}

impl TestDatabase {
    pub async fn create(server: &str) -> TestDatabase {
        let name = format!("jg_scale_{}", uuid::Uuid::new_v4().simple());
        let admin = sqlx::PgPool::connect(server)
            .await
            .expect("connect to PostgreSQL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("create database");
        admin.close().await;
        TestDatabase {
            url: with_database(server, &name),
            server: server.to_owned(),
            name,
        }
    }

    /// A pool on the test database, for looking at what the servers wrote.
    pub async fn pool(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&self.url).await.expect("connect")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let server = self.server.clone();
        let name = self.name.clone();
        // A runtime of its own: this may run inside (or after) the test's runtime.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                let connect = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(Duration::from_secs(3))
                    .connect(&server);
                if let Ok(Ok(pool)) = tokio::time::timeout(Duration::from_secs(5), connect).await {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&pool)
                    .await;
                    pool.close().await;
                }
            });
        })
        .join();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Where `initdb` and `pg_ctl` are: `JWTGRANT_TEST_PG_BIN`, the newest
/// `/usr/lib/postgresql/<major>/bin` (Debian, Ubuntu), `pg_config --bindir`, `PATH`.
fn postgres_bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("JWTGRANT_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .collect();
    debian.sort();
    if let Some((_, bin)) = debian.pop() {
        return bin;
    }
    if let Ok(output) = Command::new("pg_config").arg("--bindir").output() {
        let bin = PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
        if bin.join("initdb").exists() {
            return bin;
        }
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists())
        .expect(
            "PostgreSQL's initdb and pg_ctl (the server binaries) for the fault tests; \
             or set JWTGRANT_TEST_PG_BIN",
        )
}

/// A PostgreSQL cluster of the test's own, in a temporary directory, on its own
/// loopback port: the test may stop and restart it. PostgreSQL refuses to run as
/// root, so as root `initdb` and `pg_ctl` run as the `postgres` user.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    pub port: u16,
    running: bool,
}

impl PgCluster {
    pub fn start() -> PgCluster {
        let bin = postgres_bin_dir();
        let dir = tempfile::Builder::new()
            .prefix("jg-pg-")
            .tempdir()
            .expect("tempdir");
        let as_postgres = is_root();
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown of the cluster directory failed");
        }
        let mut cluster = PgCluster {
            dir,
            bin,
            as_postgres,
            port: free_port(),
            running: false,
        };
        let data = cluster.data_dir();
        cluster.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "--encoding=UTF8",
            ],
        );
        cluster.restart();
        cluster
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// The server URL (its `postgres` database).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs a PostgreSQL program to completion (as `postgres` when we are root);
    /// panics with its output when it fails.
    fn run(&self, program: &str, args: &[&str]) {
        let out_path = self.dir.path().join(format!("{program}.out"));
        let out = std::fs::File::create(&out_path).expect("output file");
        let err = out.try_clone().expect("output file");
        let program_path = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program_path);
            command
        } else {
            Command::new(&program_path)
        };
        let status = command
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program_path.display()));
        if !status.success() {
            let log =
                std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
            panic!(
                "{program} {args:?} failed ({status}):\n{}\nserver log:\n{log}",
                std::fs::read_to_string(&out_path).unwrap_or_default()
            );
        }
    }

    /// Starts (or starts again) the cluster on its port; returns once it accepts
    /// connections.
    pub fn restart(&mut self) {
        let data = self.data_dir();
        let log = self.dir.path().join("server.log").display().to_string();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-o", &options, "-w", "-t", "60", "start",
            ],
        );
        self.running = true;
    }

    /// Stops the cluster (`pg_ctl stop -m fast`: sessions are cut, a clean
    /// shutdown); returns once the server has exited.
    pub fn stop(&mut self) {
        let data = self.data_dir();
        self.run(
            "pg_ctl",
            &["-D", &data, "-m", "fast", "-w", "-t", "60", "stop"],
        );
        self.running = false;
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.running {
            let data = self.data_dir();
            let mut command = if self.as_postgres {
                let mut command = Command::new("runuser");
                command
                    .args(["-u", "postgres", "--"])
                    .arg(self.bin.join("pg_ctl"));
                command
            } else {
                Command::new(self.bin.join("pg_ctl"))
            };
            let _ = command
                .args(["-D", &data, "-m", "immediate", "-w", "stop"])
                .current_dir(self.dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A `redis-server` of the test's own on a loopback port. `durable` keeps an
/// append-only file fsynced on every write (so a restart forgets nothing);
/// otherwise nothing is written to disk at all.
pub struct RedisServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    durable: bool,
    pub port: u16,
    pub url: String,
}

impl RedisServer {
    pub async fn start(durable: bool) -> RedisServer {
        let port = free_port();
        let mut redis = RedisServer {
            child: None,
            dir: tempfile::tempdir().expect("tempdir"),
            durable,
            port,
            url: format!("redis://127.0.0.1:{port}"),
        };
        redis.restart().await;
        redis
    }

    /// Starts it (again) on its port; returns once it answers PING.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "redis-server already running");
        let appendonly = if self.durable { "yes" } else { "no" };
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                appendonly,
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian's redis-server package)");
        self.child = Some(child);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            let ping = Command::new("redis-cli")
                .args(["-p", &self.port.to_string(), "PING"])
                .output();
            if ping.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.kill();
        panic!("redis-server did not start on port {}", self.port);
    }

    /// SIGKILL, as a crash would; returns once the process is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A Redis for a test that does not stop it: the one named by
/// `JWTGRANT_TEST_REDIS_URL` (as `.ci/run` sets it), or else a `redis-server` of the
/// test's own (not durable). Either way the instances use a key prefix of the test's
/// own (`--redis-key-prefix`), and its keys are deleted at the end.
pub struct TestRedis {
    pub url: String,
    pub prefix: String,
    own: Option<RedisServer>,
}

impl TestRedis {
    pub async fn start() -> TestRedis {
        let prefix = format!("jgtest:{}:", uuid::Uuid::new_v4().simple());
        match std::env::var("JWTGRANT_TEST_REDIS_URL") {
            Ok(url) if !url.trim().is_empty() => TestRedis {
                url,
                prefix,
                own: None,
            },
            _ => {
                let own = RedisServer::start(false).await;
                TestRedis {
                    url: own.url.clone(),
                    prefix,
                    own: Some(own),
                }
            }
        }
    }

    /// The `serve` flags that use this Redis under this test's prefix.
    pub fn serve_args(&self) -> [String; 4] {
        [
            "--redis".to_owned(),
            self.url.clone(),
            "--redis-key-prefix".to_owned(),
            self.prefix.clone(),
        ]
    }

    /// Runs a redis-cli command against it; returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-u", &self.url])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        if self.own.is_none() {
            self.cli(&[
                "EVAL",
                "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end",
                "0",
                &format!("{}*", self.prefix),
            ]);
        }
    }
}

/// One `jwtgrant serve` process on a loopback port, its log in a file.
pub struct Instance {
    child: Option<Child>,
    pub url: String,
    log: PathBuf,
}

impl Instance {
    /// Starts `jwtgrant --database URL serve --listen 127.0.0.1:PORT EXTRA...`
    /// without waiting for it.
    pub fn spawn(database_url: &str, port: u16, extra: &[String], log_dir: &Path) -> Instance {
        Self::spawn_with_env(database_url, port, extra, &[], log_dir)
    }

    /// [`Instance::spawn`] with these `JWTGRANT_*` variables (and no others).
    pub fn spawn_with_env(
        database_url: &str,
        port: u16,
        extra: &[String],
        env: &[(&str, &str)],
        log_dir: &Path,
    ) -> Instance {
        let log = log_dir.join(format!("serve-{port}.log"));
        let file = std::fs::File::create(&log).expect("log file");
        let mut command = Command::new(binary());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("JWTGRANT_") {
                command.env_remove(name);
            }
        }
        let child = command
            .args(["--database", database_url, "serve", "--listen"])
            .arg(format!("127.0.0.1:{port}"))
            .args(extra)
            .envs(env.iter().copied())
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("jwtgrant serve");
        Instance {
            child: Some(child),
            url: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// Waits until `/readyz` answers 200; panics with the log if it does not in time
    /// or the process exits.
    pub async fn wait_ready(&mut self, http: &reqwest::Client, within: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if get_status(http, &format!("{}/readyz", self.url)).await == 200 {
                return start.elapsed();
            }
            let exited = self
                .child
                .as_mut()
                .map(|c| c.try_wait().ok().flatten().is_some())
                .unwrap_or(true);
            if exited || start.elapsed() > within {
                self.stop();
                panic!(
                    "{} not ready after {:?} (exited: {exited}); log:\n{}",
                    self.url,
                    start.elapsed(),
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the process and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.stop();
    }
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
    let output = tokio::process::Command::new(binary())
        .args(["--database", database_url])
        .args(args)
        .arg("--json")
        .env_remove("JWTGRANT_DATA_DIR")
        .env_remove("JWTGRANT_CONFIG")
        .env_remove("JWTGRANT_MASTER_KEY")
        .envs(env.iter().copied())
        .output()
        .await
        .expect("run jwtgrant");
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&output.stdout).expect("json output"))
}

/// [`admin`] with these variables (e.g. `JWTGRANT_MASTER_KEY`).
pub async fn admin_with_env(database_url: &str, env: &[(&str, &str)], args: &[&str]) -> Value {
    try_admin(database_url, env, args)
        .await
        .unwrap_or_else(|stderr| panic!("jwtgrant {args:?} failed: {stderr}"))
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
        let integration = admin(
            database_url,
            &[
                "integration",
                "create",
                "--name",
                "Scale-out test",
                "--redirect-uri",
                "http://localhost:9000/callback",
            ],
        )
        .await;
        let integration_key = integration["integration_key"].as_str().unwrap().to_owned();
        let key_path = dir.join(format!("{integration_key}.pem"));
        admin(
            database_url,
            &[
                "integration",
                "generate-key",
                &integration_key,
                "--alg",
                "ES256",
                "--out",
                key_path.to_str().unwrap(),
            ],
        )
        .await;
        let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
        let user = admin(
            database_url,
            &[
                "user",
                "create",
                "--email",
                &email,
                "--name",
                "Ada Lovelace",
            ],
        )
        .await;
        let user_id = user["user_id"].as_str().unwrap().to_owned();
        admin(
            database_url,
            &[
                "account",
                "create",
                "--user",
                &user_id,
                "--name",
                "Ada's account",
                "--base-uri",
                "https://demo.example.com",
                "--default",
            ],
        )
        .await;
        admin(
            database_url,
            &[
                "consent",
                "grant",
                "--user",
                &user_id,
                "--integration",
                &integration_key,
                "--scope",
                "signature",
                "impersonation",
            ],
        )
        .await;
        let pem = std::fs::read_to_string(&key_path).expect("private key");
        Registration {
            integration_key,
            user_id,
            key: SigningKey::from_pem(&pem).expect("private key"),
        }
    }

    /// DocuSign-shaped claims with a fresh `jti`.
    pub fn claims(&self, aud: &str) -> Value {
        let now = now();
        json!({
            "iss": self.integration_key,
            "sub": self.user_id,
            "aud": aud,
            "iat": now,
            "exp": now + 600,
            "scope": "signature impersonation",
            "jti": uuid::Uuid::new_v4().to_string(),
        })
    }

    /// A fresh assertion (new `jti`) for `aud`.
    pub fn assertion(&self, aud: &str) -> String {
        self.sign(&self.claims(aud))
    }

    pub fn sign(&self, claims: &Value) -> String {
        sign_compact(&self.key, JwsAlgorithm::Es256, Some("JWT"), None, claims).expect("sign")
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("HTTP client")
}

/// Trades an assertion at `base`; status 0 with the error text when the request
/// itself failed.
pub async fn token(http: &reqwest::Client, base: &str, assertion: &str) -> (u16, Value) {
    match http
        .post(format!("{base}/oauth/token"))
        .form(&[("grant_type", JWT_BEARER), ("assertion", assertion)])
        .send()
        .await
    {
        Ok(response) => {
            let status = response.status().as_u16();
            (status, response.json().await.unwrap_or(Value::Null))
        }
        Err(error) => (
            0,
            json!({"error": "transport", "error_description": error.to_string()}),
        ),
    }
}

/// The status of a GET, 0 when the request failed.
pub async fn get_status(http: &reqwest::Client, url: &str) -> u16 {
    http.get(url)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
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

/// The error code and description of an OAuth error body.
pub fn oauth_error(body: &Value) -> (&str, &str) {
    (
        body["error"].as_str().unwrap_or_default(),
        body["error_description"].as_str().unwrap_or_default(),
    )
}
