//! PostgreSQL for the tests: the server named by `JWTGRANT_TEST_DATABASE_URL`, a
//! database of a test's own on it, and a throwaway cluster a test may stop and
//! restart.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::log::Output;
use crate::ports;

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

/// An empty database of this test's own, dropped when this goes out of scope.
pub struct TestDatabase {
    /// The database's URL.
    pub url: String,
    server: String,
    name: String,
}

impl TestDatabase {
    /// Creates one on the PostgreSQL server `server` (a `postgres://` URL).
    pub async fn create(server: &str) -> TestDatabase {
        let name = format!("jg_test_{}", uuid::Uuid::new_v4().simple());
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

    /// The migration versions recorded as applied.
    pub async fn applied(&self) -> Vec<i64> {
        let pool = self.pool().await;
        let recorded: bool =
            sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
                .fetch_one(&pool)
                .await
                .unwrap();
        let applied = if recorded {
            sqlx::query_scalar(
                "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
            )
            .fetch_all(&pool)
            .await
            .unwrap()
        } else {
            Vec::new()
        };
        pool.close().await;
        applied
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

/// A PostgreSQL cluster of the test's own, in a temporary directory, on a loopback
/// port of its own (another one when the first is taken): the test may stop and
/// restart it, on the same port. PostgreSQL refuses to run as root, so as root
/// `initdb` and `pg_ctl` run as the `postgres` user.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    /// The port it listens on, the same across restarts.
    pub port: u16,
    running: bool,
    /// Whether it takes TLS connections only.
    tls: bool,
}

impl PgCluster {
    /// Creates the cluster and starts it; returns once it accepts connections.
    pub fn start() -> PgCluster {
        Self::create(None)
    }

    /// [`PgCluster::start`] with `ssl = on` and this certificate chain and key
    /// (PEM), taking TLS connections only: one without TLS is refused.
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> PgCluster {
        Self::create(Some((cert_pem, key_pem)))
    }

    fn create(tls: Option<(&str, &str)>) -> PgCluster {
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
            port: 0,
            running: false,
            tls: tls.is_some(),
        };
        let data = cluster.data_dir();
        cluster
            .run(
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
            )
            .unwrap_or_else(|failure| panic!("{failure}"));
        if let Some((cert, key)) = tls {
            cluster.install_tls(cert, key);
        }
        for _ in 0..ports::ATTEMPTS {
            cluster.port = ports::pick();
            if cluster.try_start().is_ok() {
                return cluster;
            }
        }
        panic!("PostgreSQL: {} ports tried, all taken", ports::ATTEMPTS);
    }

    /// Writes the certificate and key where the server reads them (the key
    /// readable by its owner only, as PostgreSQL demands) and a `pg_hba.conf` that
    /// takes TCP connections over TLS only.
    fn install_tls(&self, cert: &str, key: &str) {
        use std::os::unix::fs::PermissionsExt as _;
        let data = self.dir.path().join("data");
        std::fs::write(data.join("server.crt"), cert).expect("server.crt");
        std::fs::write(data.join("server.key"), key).expect("server.key");
        std::fs::set_permissions(
            data.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("server.key mode");
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl all all 127.0.0.1/32 trust\n\
             hostnossl all all 0.0.0.0/0 reject\n",
        )
        .expect("pg_hba.conf");
        if self.as_postgres {
            for file in ["server.crt", "server.key", "pg_hba.conf"] {
                let status = Command::new("chown")
                    .arg("postgres:postgres")
                    .arg(data.join(file))
                    .status()
                    .expect("chown");
                assert!(status.success(), "chown of {file} failed");
            }
        }
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// The server URL (its `postgres` database).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Runs a PostgreSQL program to completion (as `postgres` when we are root);
    /// when it fails, what it and the server said.
    fn run(&self, program: &str, args: &[&str]) -> Result<(), String> {
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
        let server_log = Output::from_now(&self.dir.path().join("server.log"));
        let status = command
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program_path.display()));
        if status.success() {
            return Ok(());
        }
        Err(format!(
            "{program} {args:?} failed ({status}):\n{}\nserver log:\n{}",
            std::fs::read_to_string(&out_path).unwrap_or_default(),
            server_log.text()
        ))
    }

    /// `pg_ctl start` on the cluster's port; `Err` with what was said when it did
    /// not start because the port is taken (panics on any other failure).
    fn try_start(&mut self) -> Result<(), String> {
        let data = self.data_dir();
        let log = self.dir.path().join("server.log").display().to_string();
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        if self.tls {
            options.push_str(" -c ssl=on");
        }
        match self.run(
            "pg_ctl",
            &[
                "-D", &data, "-l", &log, "-o", &options, "-w", "-t", "60", "start",
            ],
        ) {
            Ok(()) => {
                self.running = true;
                Ok(())
            }
            Err(failure) if ports::taken(&failure) => Err(failure),
            Err(failure) => panic!("{failure}"),
        }
    }

    /// Starts the cluster again on its port; returns once it accepts connections.
    pub fn restart(&mut self) {
        let mut last = String::new();
        for _ in 0..ports::ATTEMPTS {
            match self.try_start() {
                Ok(()) => return,
                // Its clients' URL names this port: wait for whoever took it.
                Err(failure) => last = failure,
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("PostgreSQL: port {} stayed taken: {last}", self.port);
    }

    /// Stops the cluster (`pg_ctl stop -m fast`: sessions are cut, a clean
    /// shutdown); returns once the server has exited.
    pub fn stop(&mut self) {
        let data = self.data_dir();
        self.run(
            "pg_ctl",
            &["-D", &data, "-m", "fast", "-w", "-t", "60", "stop"],
        )
        .unwrap_or_else(|failure| panic!("{failure}"));
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
