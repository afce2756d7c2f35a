//! Test support for the page tests: one test at a time, the real `jwtgrant serve`
//! on a loopback port over a SQLite data directory, fixtures made with the real
//! admin commands, a redirect listener standing in for the client application, and
//! the browser (or a skip when there is no `chromedriver`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::webdriver::{Browser, ChromeDriver, Element, Viewport, locate_chromedriver};

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The integration's name, as the consent page must show it.
pub const INTEGRATION_NAME: &str = "Acme Contract Signer";
pub const USER_EMAIL: &str = "ada@example.com";
pub const USER_NAME: &str = "Ada Lovelace";
/// With a space, as people's pass phrases have.
pub const PASSWORD: &str = "correct horse battery staple";
/// The scopes every test asks for (the integration's default ones).
pub const SCOPES: [&str; 2] = ["signature", "impersonation"];

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The `jwtgrant` binary built for these tests.
pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_jwtgrant"))
}

/// A `jwtgrant` command with no `JWTGRANT_*` variable of the test's environment.
fn jwtgrant_command() -> Command {
    let mut command = Command::new(binary());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("JWTGRANT_") {
            command.env_remove(name);
        }
    }
    command
}

/// Runs an admin command on `data_dir` to completion, `stdin` fed to it; panics
/// with its stderr when it fails. Returns stdout.
pub fn run(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = jwtgrant_command()
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
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

/// Runs an admin command with `--json` and parses its one JSON object.
pub fn admin(data_dir: &Path, args: &[&str]) -> Value {
    let mut with_json = args.to_vec();
    with_json.push("--json");
    let stdout = run(data_dir, &with_json, None);
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("jwtgrant {args:?}: not JSON ({e}): {stdout}"))
}

/// `jwtgrant serve` on a loopback port over a data directory of its own.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`, also the public URL.
    pub url: String,
    /// `127.0.0.1:PORT`, the audience assertions name.
    pub host: String,
    log: PathBuf,
}

impl Server {
    pub async fn start(data_dir: &Path, log_dir: &Path, http: &reqwest::Client) -> Server {
        let port = free_port();
        let host = format!("127.0.0.1:{port}");
        let url = format!("http://{host}");
        let log = log_dir.join("serve.log");
        let file = std::fs::File::create(&log).expect("log file");
        let child = jwtgrant_command()
            .arg("--data-dir")
            .arg(data_dir)
            .args(["serve", "--listen", &host, "--public-url", &url])
            .args(["--registry-poll-ms", "100"])
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("jwtgrant serve");
        let mut server = Server {
            child: Some(child),
            url,
            host,
            log,
        };
        let start = Instant::now();
        loop {
            let ready = http
                .get(format!("{}/readyz", server.url))
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == 200);
            if ready {
                return server;
            }
            let exited = server
                .child
                .as_mut()
                .is_none_or(|c| c.try_wait().ok().flatten().is_some());
            if exited || start.elapsed() > Duration::from_secs(30) {
                server.stop();
                panic!(
                    "jwtgrant serve not ready (exited: {exited}); log:\n{}",
                    server.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A loopback port nothing listens on (now).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The client application's side of the redirect: answers every GET with a small
/// page and records each request target (path and query) in arrival order.
pub struct RedirectListener {
    /// `http://127.0.0.1:PORT/callback`, the integration's registered redirect URI.
    pub redirect_uri: String,
    /// `http://127.0.0.1:PORT`.
    pub origin: String,
    seen: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RedirectListener {
    pub async fn start() -> RedirectListener {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the redirect listener");
        let origin = format!("http://{}", listener.local_addr().expect("address"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&seen);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(answer(stream, Arc::clone(&recorded)));
            }
        });
        RedirectListener {
            redirect_uri: format!("{origin}/callback"),
            origin,
            seen,
            task,
        }
    }

    /// Every request target received so far (including any `/favicon.ico`).
    pub fn requests(&self) -> Vec<String> {
        self.seen.lock().expect("lock").clone()
    }

    /// The query parameters of the `n`th request to `/callback` (counting from 0),
    /// waiting up to 15 seconds for it.
    pub async fn callback(&self, n: usize) -> Vec<(String, String)> {
        let start = Instant::now();
        loop {
            let callbacks: Vec<String> = self
                .requests()
                .into_iter()
                .filter(|target| target == "/callback" || target.starts_with("/callback?"))
                .collect();
            if let Some(target) = callbacks.get(n) {
                return query_pairs(target);
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "no redirect #{n} to /callback; the listener saw {:?}",
                self.requests()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for RedirectListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request head, records its target, answers 200 and closes.
async fn answer(mut stream: tokio::net::TcpStream, seen: Arc<Mutex<Vec<String>>>) {
    let mut head = Vec::new();
    let mut buffer = [0_u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(buffer.get(..n).unwrap_or_default()),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let mut request_line = head.lines().next().unwrap_or_default().split(' ');
    let (Some(_method), Some(target)) = (request_line.next(), request_line.next()) else {
        return;
    };
    seen.lock().expect("lock").push(target.to_owned());
    let body =
        "<!doctype html><title>Client app</title><p id=\"client\">Back at the client app.</p>";
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The decoded query parameters of a request target or URL.
pub fn query_pairs(target: &str) -> Vec<(String, String)> {
    let url = if target.starts_with('/') {
        format!("http://client.invalid{target}")
    } else {
        target.to_owned()
    };
    reqwest::Url::parse(&url)
        .unwrap_or_else(|e| panic!("{target}: {e}"))
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The one value of `name` in `pairs`.
pub fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// The registry the tests need, made with the admin commands: a confidential
/// integration (a secret and an RS256 key), a user with a password and an account.
pub struct Fixture {
    pub integration_key: String,
    pub client_secret: String,
    pub key_file: PathBuf,
    pub user_id: String,
}

impl Fixture {
    fn create(data_dir: &Path, redirect_uri: &str) -> Fixture {
        let integration = admin(
            data_dir,
            &[
                "integration",
                "create",
                "--name",
                INTEGRATION_NAME,
                "--redirect-uri",
                redirect_uri,
            ],
        );
        let integration_key = integration["integration_key"]
            .as_str()
            .expect("integration_key")
            .to_owned();
        let key_file = data_dir.join("integration.pem");
        admin(
            data_dir,
            &[
                "integration",
                "generate-key",
                &integration_key,
                "--alg",
                "RS256",
                "--out",
                key_file.to_str().expect("UTF-8 path"),
            ],
        );
        let secret = admin(data_dir, &["integration", "set-secret", &integration_key]);
        let client_secret = secret["client_secret"]
            .as_str()
            .expect("client_secret")
            .to_owned();
        let user = admin(
            data_dir,
            &["user", "create", "--email", USER_EMAIL, "--name", USER_NAME],
        );
        let user_id = user["user_id"].as_str().expect("user_id").to_owned();
        run(
            data_dir,
            &["user", "set-password", &user_id],
            Some(&format!("{PASSWORD}\n")),
        );
        admin(
            data_dir,
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
        );
        Fixture {
            integration_key,
            client_secret,
            key_file,
            user_id,
        }
    }
}

/// Everything one page test runs against. Fields drop in order: the browser
/// session, chromedriver, the server, the listener, the data, then the lock.
pub struct Harness {
    pub browser: Browser,
    _driver: ChromeDriver,
    pub server: Server,
    pub listener: RedirectListener,
    pub fixture: Fixture,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

impl Harness {
    /// Waits for the other page tests, then starts the redirect listener, the
    /// server, the fixtures and a browser session. `None` (after a skip line) when
    /// there is no chromedriver and `JWTGRANT_TEST_BROWSER=1` is not set; with it
    /// set, a missing chromedriver fails the test.
    pub async fn start(test: &str, viewport: Viewport) -> Option<Harness> {
        let Some(chromedriver) = locate_chromedriver() else {
            assert!(
                std::env::var("JWTGRANT_TEST_BROWSER").as_deref() != Ok("1"),
                "JWTGRANT_TEST_BROWSER=1 but no chromedriver on PATH (or JWTGRANT_CHROMEDRIVER); \
                 on Debian: apt-get install chromium chromium-driver"
            );
            println!(
                "skip: browser test {test}: no chromedriver (JWTGRANT_CHROMEDRIVER or PATH; on \
                 Debian: apt-get install chromium chromium-driver)"
            );
            return None;
        };
        let serial = SERIAL.lock().await;
        let dir = tempfile::Builder::new()
            .prefix("jg-browser-")
            .tempdir()
            .expect("tempdir");
        let data_dir = dir.path().join("data");
        std::fs::create_dir(&data_dir).expect("data dir");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        let listener = RedirectListener::start().await;
        let server = Server::start(&data_dir, dir.path(), &http).await;
        let fixture = Fixture::create(&data_dir, &listener.redirect_uri);
        let driver = ChromeDriver::start(&chromedriver, dir.path()).await;
        let browser = driver.session(viewport).await;
        println!(
            "{test}: server {}, redirect listener {}",
            server.url, listener.origin
        );
        Some(Harness {
            browser,
            _driver: driver,
            server,
            listener,
            fixture,
            http,
            dir,
            _serial: serial,
        })
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `/oauth/auth` for this integration with `redirect_uri`, the two scopes and
    /// `state`.
    pub fn authorize_url_to(&self, client_id: &str, redirect_uri: &str, state: &str) -> String {
        let mut url = reqwest::Url::parse(&format!("{}/oauth/auth", self.server.url)).expect("URL");
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &SCOPES.join(" "))
            .append_pair("state", state);
        url.to_string()
    }

    /// `/oauth/auth` for the fixture's integration and its registered redirect URI.
    pub fn authorize_url(&self, state: &str) -> String {
        self.authorize_url_to(
            &self.fixture.integration_key,
            &self.listener.redirect_uri,
            state,
        )
    }

    /// Fills in the login form shown now and submits it; returns once the next
    /// page has loaded.
    pub async fn sign_in(&self, password: &str) {
        let b = &self.browser;
        b.wait_for("form#login").await;
        let email = b.wait_for("#email").await;
        b.type_into(&email, USER_EMAIL).await;
        let field = b.wait_for("#password").await;
        b.type_into(&field, password).await;
        let button = b.wait_for("#sign-in").await;
        b.click_and_wait(&button).await;
    }

    /// Loads the authorization URL, signs in and waits for the consent form.
    pub async fn reach_consent(&self, state: &str) -> Element {
        self.browser.goto(&self.authorize_url(state)).await;
        self.sign_in(PASSWORD).await;
        self.browser.wait_for("form#consent").await
    }

    /// A fresh assertion for the fixture's user, minted by `jwtgrant assertion`.
    pub fn assertion(&self) -> String {
        run(
            &self.data_dir(),
            &[
                "assertion",
                "--integration-key",
                &self.fixture.integration_key,
                "--user-id",
                &self.fixture.user_id,
                "--key",
                self.fixture.key_file.to_str().expect("UTF-8 path"),
                "--aud",
                &self.server.host,
            ],
            None,
        )
        .trim()
        .to_owned()
    }

    /// POSTs a form to `/oauth/token`, with HTTP Basic client authentication when
    /// `basic` is set; the status and the JSON body.
    pub async fn token_request(&self, form: &[(&str, &str)], basic: bool) -> (u16, Value) {
        let mut request = self
            .http
            .post(format!("{}/oauth/token", self.server.url))
            .form(form);
        if basic {
            request = request.basic_auth(
                &self.fixture.integration_key,
                Some(&self.fixture.client_secret),
            );
        }
        let response = request.send().await.expect("token request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Trades a fresh assertion for the fixture's user at `/oauth/token`.
    pub async fn jwt_grant(&self) -> (u16, Value) {
        let assertion = self.assertion();
        self.token_request(
            &[("grant_type", JWT_BEARER), ("assertion", &assertion)],
            false,
        )
        .await
    }

    /// Asks for a JWT grant until its answer has status `want` (a page's change to
    /// a consent reaches the grant through the server's registry), at most 3 s;
    /// returns the last answer and how many requests it took.
    pub async fn jwt_grant_until(&self, want: u16) -> ((u16, Value), u32) {
        let start = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let answer = self.jwt_grant().await;
            if answer.0 == want || start.elapsed() > Duration::from_secs(3) {
                return (answer, attempts);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
