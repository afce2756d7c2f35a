//! The `jwtgrant` binary as an operator runs it: one environment scrub, `serve`
//! on port 0 with the address read from its log, one log file convention, admin
//! commands with `--json`, and assertions minted by `jwtgrant assertion`.
//!
//! Only the cli crate's tests know where the binary is
//! (`env!("CARGO_BIN_EXE_jwtgrant")`); they hand its path to [`Jwtgrant::at`].

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::log::{Gave, Output};

/// How long [`serve_until_ready`] waits.
pub const READY_WITHIN: Duration = Duration::from_secs(30);

/// The `jwtgrant` binary built for the tests.
#[derive(Clone, Debug)]
pub struct Jwtgrant {
    path: PathBuf,
}

impl Jwtgrant {
    /// The binary at `path` (the cli tests' `env!("CARGO_BIN_EXE_jwtgrant")`).
    pub fn at(path: impl Into<PathBuf>) -> Jwtgrant {
        Jwtgrant { path: path.into() }
    }

    /// Where the binary is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The binary with none of the test's `JWTGRANT_*` variables (a test gives the
    /// ones it means with `.env`), stdin closed, no colours in its output.
    pub fn command(&self) -> Command {
        let mut command = Command::new(&self.path);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("JWTGRANT_") {
                command.env_remove(name);
            }
        }
        command.env("NO_COLOR", "1").stdin(Stdio::null());
        command
    }

    /// `jwtgrant assertion` for `integration_key` (and `user_id`, else an
    /// application assertion) signed with the private key file `key`, for `aud`,
    /// with more `flags` (`--lifetime`, `--no-jti`, ...), run in `cwd`; the
    /// assertion. Panics with stderr when it fails.
    pub fn mint(
        &self,
        cwd: &Path,
        integration_key: &str,
        user_id: Option<&str>,
        key: &Path,
        aud: &str,
        flags: &[&str],
    ) -> String {
        let mut command = self.command();
        command
            .args([
                "assertion",
                "--integration-key",
                integration_key,
                "--aud",
                aud,
            ])
            .arg("--key")
            .arg(key);
        if let Some(user) = user_id {
            command.args(["--user-id", user]);
        }
        let output = command.args(flags).current_dir(cwd).output().unwrap();
        assert!(
            output.status.success(),
            "jwtgrant assertion failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }
}

/// Starts `COMMAND serve --listen 127.0.0.1:0 FLAGS...` without waiting for it.
/// `command` comes from [`Jwtgrant::command`] with the global options and variables
/// the test wants; the child's stderr (its log) goes to a new `serve-N.log` in
/// `log_dir`. The child picks its own port and says which in its log.
pub fn spawn_serve(mut command: Command, log_dir: &Path, flags: &[&str]) -> Starting {
    static SPAWNED: AtomicUsize = AtomicUsize::new(0);
    let n = SPAWNED.fetch_add(1, Ordering::Relaxed) + 1;
    let log = log_dir.join(format!("serve-{n}.log"));
    let file = std::fs::File::create(&log).expect("log file");
    let child = command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(flags)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("jwtgrant serve");
    Starting {
        child,
        log: Output::from_now(&log),
    }
}

/// [`spawn_serve`], then [`Starting::ready`] within [`READY_WITHIN`].
pub async fn serve_until_ready(command: Command, log_dir: &Path, flags: &[&str]) -> Serving {
    spawn_serve(command, log_dir, flags)
        .ready(READY_WITHIN)
        .await
}

/// A `jwtgrant serve` process started, its address not known yet.
pub struct Starting {
    child: Child,
    log: Output,
}

impl Starting {
    /// Waits until the child's log names the address it listens on (its
    /// `jwtgrant serving` line) and `/readyz` there answers 200; panics with the log
    /// when the child exits first or is not ready within `within`.
    pub async fn ready(self, within: Duration) -> Serving {
        let Starting { mut child, log } = self;
        let start = Instant::now();
        let addr = match log.wait_for(&mut child, within, serving_address).await {
            Ok(addr) => addr,
            Err(gave) => fail(child, &log, &gave),
        };
        let mut serving = Serving {
            child: Some(child),
            addr,
            url: format!("http://{addr}"),
            log,
            http: crate::http::http(),
        };
        loop {
            if crate::http::get_status(&serving.http, &format!("{}/readyz", serving.url)).await
                == 200
            {
                return serving;
            }
            let exited = serving
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                panic!(
                    "jwtgrant serve exited ({status}) before /readyz said 200; log:\n{}",
                    serving.log_text()
                );
            }
            if start.elapsed() > within {
                serving.stop();
                panic!(
                    "jwtgrant serve at {} not ready after {within:?}; log:\n{}",
                    serving.url,
                    serving.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn fail(mut child: Child, log: &Output, gave: &Gave) -> ! {
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "jwtgrant serve reported no address ({gave:?}); log {}:\n{}",
        log.path().display(),
        log.text()
    );
}

/// The address in a `jwtgrant serving` log line: `listen=ADDR` in the text format,
/// `"listen":"ADDR"` in JSON.
fn serving_address(line: &str) -> Option<SocketAddr> {
    if !line.contains("jwtgrant serving") {
        return None;
    }
    if let Ok(json) = serde_json::from_str::<Value>(line) {
        return json["fields"]["listen"].as_str()?.parse().ok();
    }
    line.split_whitespace()
        .find_map(|field| field.strip_prefix("listen="))?
        .parse()
        .ok()
}

/// A `jwtgrant serve` process that said where it listens and is ready; killed when
/// this goes out of scope.
pub struct Serving {
    child: Option<Child>,
    /// The address the child bound.
    pub addr: SocketAddr,
    /// `http://ADDR`.
    pub url: String,
    log: Output,
    http: reqwest::Client,
}

impl Serving {
    /// `127.0.0.1:PORT`, the audience assertions name when no public URL is set.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The child's log so far.
    pub fn log_text(&self) -> String {
        self.log.text()
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("running")
    }

    /// Sends `signal` (`-TERM`, `-INT`, ...) with `kill`.
    pub fn signal(&self, signal: &str) {
        let pid = self.pid().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(status.success(), "kill {signal} {pid}: {status}");
    }

    /// Waits for the child to exit; its status.
    pub fn wait(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        child.wait().unwrap()
    }

    /// SIGTERM, then waits for the exit; its status.
    pub fn terminate(mut self) -> ExitStatus {
        self.signal("-TERM");
        self.wait()
    }

    /// Kills the process and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Trades an assertion at `/oauth/token` (see [`crate::token_request`]).
    pub async fn token(&self, assertion: &str) -> (u16, Value) {
        crate::http::token_request(&self.http, &self.url, assertion).await
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The admin commands of the binary on one store.
#[derive(Clone, Debug)]
pub struct Admin {
    jwtgrant: Jwtgrant,
    store: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
}

impl Admin {
    /// Admin commands with these global options naming the store (`--data-dir DIR`,
    /// `--database URL`).
    pub fn new<I, S>(jwtgrant: &Jwtgrant, store: I) -> Admin
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Admin {
            jwtgrant: jwtgrant.clone(),
            store: store.into_iter().map(Into::into).collect(),
            env: Vec::new(),
        }
    }

    /// These commands with a `JWTGRANT_*` variable (e.g. `JWTGRANT_MASTER_KEY`).
    pub fn with_env(mut self, name: impl Into<OsString>, value: impl Into<OsString>) -> Admin {
        self.env.push((name.into(), value.into()));
        self
    }

    /// `jwtgrant STORE... ARGS...` with this admin's variables.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = self.jwtgrant.command();
        command
            .args(&self.store)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }

    /// Runs `args` to completion, `stdin` fed to it; panics with its stderr when it
    /// fails. Its stdout.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> String {
        let mut command = self.command(args);
        if stdin.is_some() {
            command.stdin(Stdio::piped());
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run jwtgrant");
        if let Some(input) = stdin {
            use std::io::Write as _;
            let mut pipe = child.stdin.take().expect("stdin");
            pipe.write_all(input.as_bytes()).expect("write stdin");
        }
        let output = child.wait_with_output().expect("jwtgrant output");
        assert!(
            output.status.success(),
            "jwtgrant {args:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs `args --json`: its JSON output, or its stderr when it fails.
    pub fn try_json(&self, args: &[&str]) -> Result<Value, String> {
        let output = self
            .command(args)
            .arg("--json")
            .output()
            .expect("run jwtgrant");
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        Ok(serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("jwtgrant {args:?}: not JSON ({e}): {stdout}")))
    }

    /// [`Admin::try_json`], panicking with the stderr of a failure.
    pub fn json(&self, args: &[&str]) -> Value {
        self.try_json(args)
            .unwrap_or_else(|stderr| panic!("jwtgrant {args:?} failed: {stderr}"))
    }

    /// `integration create ARGS...`; the new integration key.
    pub fn create_integration(&self, args: &[&str]) -> String {
        let mut create = vec!["integration", "create"];
        create.extend_from_slice(args);
        self.json(&create)["integration_key"]
            .as_str()
            .expect("integration_key")
            .to_owned()
    }

    /// `integration generate-key` for `integration_key` (of kind `alg`, else the
    /// default), the private key written to `out`.
    pub fn generate_key(&self, integration_key: &str, alg: Option<&str>, out: &Path) -> Value {
        let out = out.to_str().expect("UTF-8 path");
        let mut args = vec!["integration", "generate-key", integration_key, "--out", out];
        if let Some(alg) = alg {
            args.extend(["--alg", alg]);
        }
        self.json(&args)
    }

    /// `user create` with an email and a name, and a default account for the user
    /// (Ada's, on `https://demo.example.com`); the user id.
    pub fn create_user(&self, email: &str, name: &str) -> String {
        let user = self.json(&["user", "create", "--email", email, "--name", name]);
        let user_id = user["user_id"].as_str().expect("user_id").to_owned();
        self.json(&[
            "account",
            "create",
            "--user",
            &user_id,
            "--name",
            "Ada's account",
            "--base-uri",
            "https://demo.example.com",
            "--default",
        ]);
        user_id
    }

    /// `consent grant`: the user's consent to the integration's default scopes.
    pub fn grant_consent(&self, user_id: &str, integration_key: &str) -> Value {
        let mut args = vec![
            "consent",
            "grant",
            "--user",
            user_id,
            "--integration",
            integration_key,
            "--scope",
        ];
        args.extend(crate::DEFAULT_SCOPES);
        self.json(&args)
    }
}

#[cfg(test)]
mod tests {
    use super::serving_address;

    #[test]
    fn the_address_is_read_from_either_log_format() {
        let text = "2026-12-01T20:00:06.622250Z  INFO jwtgrant: jwtgrant serving \
                    listen=127.0.0.1:42589 issuer=http://127.0.0.1:42589 tls=false ready_ms=113";
        assert_eq!(
            serving_address(text),
            Some("127.0.0.1:42589".parse().unwrap())
        );
        let json = r#"{"timestamp":"2026-12-01T20:00:10.089353Z","level":"INFO","fields":{"message":"jwtgrant serving","listen":"127.0.0.1:33943","issuer":"http://127.0.0.1:33943","tls":false,"ready_ms":62},"target":"jwtgrant"}"#;
        assert_eq!(
            serving_address(json),
            Some("127.0.0.1:33943".parse().unwrap())
        );
        assert_eq!(
            serving_address("INFO jwtgrant_server::signing: generated listen=1.2.3.4:5"),
            None
        );
    }
}
