//! Test support for the page tests: one test at a time, the real `jwtgrant serve`
//! (the kit's: on a port it picks) over a SQLite data directory, fixtures made with the real
//! admin commands, a redirect listener standing in for the client application, and
//! the browser (or a skip when there is no `chromedriver`).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jwtgrant_testkit::{Admin, Jwtgrant, Serving, serve_until_ready};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::webdriver::{Browser, ChromeDriver, Element, Viewport, locate_chromedriver};

pub use jwtgrant_testkit::JWT_BEARER;

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
pub fn binary() -> Jwtgrant {
    Jwtgrant::at(env!("CARGO_BIN_EXE_jwtgrant"))
}

/// The admin commands on `data_dir`.
fn admin_on(data_dir: &Path) -> Admin {
    let mut store = vec![OsString::from("--data-dir")];
    store.push(data_dir.into());
    Admin::new(&binary(), store)
}

/// Runs an admin command with `--json` and parses its one JSON object.
pub fn admin(data_dir: &Path, args: &[&str]) -> Value {
    admin_on(data_dir).json(args)
}

/// `jwtgrant serve` on a port of its own over `data_dir`, its log in `log_dir`;
/// its public URL is the one it listens on.
async fn serve(data_dir: &Path, log_dir: &Path) -> Serving {
    let mut command = binary().command();
    command.arg("--data-dir").arg(data_dir);
    serve_until_ready(command, log_dir, &["--registry-poll-ms", "100"]).await
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
        let admin = admin_on(data_dir);
        let integration_key =
            admin.create_integration(&["--name", INTEGRATION_NAME, "--redirect-uri", redirect_uri]);
        let key_file = data_dir.join("integration.pem");
        admin.generate_key(&integration_key, Some("RS256"), &key_file);
        let secret = admin.json(&["integration", "set-secret", &integration_key]);
        let client_secret = secret["client_secret"]
            .as_str()
            .expect("client_secret")
            .to_owned();
        let user_id = admin.create_user(USER_EMAIL, USER_NAME);
        admin.run(
            &["user", "set-password", &user_id],
            Some(&format!("{PASSWORD}\n")),
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
    pub server: Serving,
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
        let server = serve(&data_dir, dir.path()).await;
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
        binary().mint(
            &self.data_dir(),
            &self.fixture.integration_key,
            Some(&self.fixture.user_id),
            &self.fixture.key_file,
            &self.server.host(),
            &[],
        )
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
