//! Redis for the tests: a `redis-server` of the test's own (which the test may kill
//! and restart), or, for a test that does not stop it, the shared one named by
//! `JWTGRANT_TEST_REDIS_URL` under a key prefix of the test's own.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use jwtgrant_server::RawConfig;

use crate::log::{Gave, Output};
use crate::ports;

/// A `redis-server` of the test's own on a loopback port, killed on drop. `durable`
/// keeps an append-only file fsynced on every write (so a restart forgets nothing);
/// otherwise nothing is written to disk at all.
pub struct RedisServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    durable: bool,
    /// The port it listens on, the same across restarts.
    pub port: u16,
    /// `redis://127.0.0.1:PORT` (`rediss://` with TLS).
    pub url: String,
    /// TLS only, with this certificate chain and key (PEM files).
    tls: Option<(PathBuf, PathBuf)>,
}

/// How a start of `redis-server` ended.
enum Started {
    Ready(Child),
    PortTaken,
}

impl RedisServer {
    /// Starts one on a port of its own (another one when that is taken); returns
    /// once it accepts connections.
    pub async fn start(durable: bool) -> RedisServer {
        Self::start_with(durable, None).await
    }

    /// [`RedisServer::start`] (not durable) taking TLS connections only, with the
    /// certificate chain and key in these PEM files; no plain port.
    pub async fn start_tls(cert: PathBuf, key: PathBuf) -> RedisServer {
        Self::start_with(false, Some((cert, key))).await
    }

    async fn start_with(durable: bool, tls: Option<(PathBuf, PathBuf)>) -> RedisServer {
        let scheme = if tls.is_some() { "rediss" } else { "redis" };
        let mut redis = RedisServer {
            child: None,
            dir: tempfile::tempdir().expect("tempdir"),
            durable,
            port: 0,
            url: String::new(),
            tls,
        };
        for _ in 0..ports::ATTEMPTS {
            redis.port = ports::pick();
            if let Started::Ready(child) = redis.spawn().await {
                redis.child = Some(child);
                redis.url = format!("{scheme}://127.0.0.1:{}", redis.port);
                return redis;
            }
        }
        panic!("redis-server: {} ports tried, all taken", ports::ATTEMPTS);
    }

    /// Starts it again on its port (after [`RedisServer::kill`]); returns once it
    /// accepts connections (with its data loaded, when durable).
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "redis-server already running");
        for _ in 0..ports::ATTEMPTS {
            if let Started::Ready(child) = self.spawn().await {
                self.child = Some(child);
                return;
            }
            // Its clients' URL names this port: wait for whoever took it.
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("redis-server: port {} stayed taken", self.port);
    }

    async fn spawn(&self) -> Started {
        let log = self.dir.path().join("redis.log");
        let output = Output::from_now(&log);
        let appendonly = if self.durable { "yes" } else { "no" };
        let mut command = Command::new("redis-server");
        match &self.tls {
            None => command.args(["--port", &self.port.to_string()]),
            Some((cert, key)) => command
                .args(["--port", "0", "--tls-port", &self.port.to_string()])
                .arg("--tls-cert-file")
                .arg(cert)
                .arg("--tls-key-file")
                .arg(key)
                .args(["--tls-auth-clients", "no"]),
        };
        let mut child = command
            .args([
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
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian's redis-server package)");
        let ready = output
            .wait_for(&mut child, Duration::from_secs(10), |line| {
                line.contains("Ready to accept connections").then_some(())
            })
            .await;
        match ready {
            Ok(()) => Started::Ready(child),
            Err(Gave::Exited(_)) if ports::taken(&output.text()) => Started::PortTaken,
            Err(gave) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "redis-server did not start on port {} ({gave:?}); log:\n{}",
                    self.port,
                    output.text()
                );
            }
        }
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

/// Settings of a server in the test's process using the Redis at `url`.
pub fn with_redis(url: &str) -> RawConfig {
    RawConfig {
        redis: Some(url.to_owned()),
        ..Default::default()
    }
}

/// A Redis for a test that does not stop it: the one named by
/// `JWTGRANT_TEST_REDIS_URL` (as `.ci/run` sets it), or else a `redis-server` of the
/// test's own (not durable). Either way the servers use a key prefix of the test's
/// own, and its keys are deleted at the end.
pub struct TestRedis {
    /// The Redis URL.
    pub url: String,
    /// The test's key prefix (`jgtest:UUID:`).
    pub prefix: String,
    own: Option<RedisServer>,
}

impl TestRedis {
    /// The shared Redis when there is one, else a new `redis-server`.
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

    /// Settings of a server in the test's process using this Redis under this
    /// test's prefix.
    pub fn config(&self) -> RawConfig {
        RawConfig {
            redis_key_prefix: Some(self.prefix.clone()),
            ..with_redis(&self.url)
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
        // Keys of this test only; a Redis of the test's own goes away anyway.
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

#[cfg(test)]
mod tests {
    use super::{RedisServer, Started};

    /// The start is tried again elsewhere only when the port was taken, which
    /// `redis-server`'s own words must show.
    #[tokio::test]
    async fn a_taken_port_is_told_apart() {
        let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let redis = RedisServer {
            child: None,
            dir: tempfile::tempdir().unwrap(),
            durable: false,
            port: holder.local_addr().unwrap().port(),
            url: String::new(),
            tls: None,
        };
        assert!(matches!(redis.spawn().await, Started::PortTaken));
        let mut started = RedisServer::start(false).await;
        assert_ne!(started.port, redis.port);
        started.kill();
        started.restart().await;
        let ping = std::process::Command::new("redis-cli")
            .args(["-u", &started.url, "PING"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&ping.stdout).trim(), "PONG");
    }
}
