//! A small W3C WebDriver client over reqwest: a `chromedriver` process of the test's
//! own on a loopback port it picks, one headless Chromium session per test, and the handful
//! of commands the page tests use (navigate, find, type, click, read, screenshot).

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use jwtgrant_testkit::log::Output;
use serde_json::{Value, json};

/// The key W3C WebDriver puts an element reference under.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long a wait for a page or an element lasts before the test fails.
pub const PAGE_WAIT: Duration = Duration::from_secs(15);

/// The `chromedriver` to use: `JWTGRANT_CHROMEDRIVER`, else the first on `PATH`.
pub fn locate_chromedriver() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("JWTGRANT_CHROMEDRIVER").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("chromedriver"))
        .find(|candidate| candidate.is_file())
}

/// The window a session renders into.
#[derive(Clone, Copy, Debug)]
pub enum Viewport {
    /// 1280x900, a laptop browser window.
    Desktop,
    /// 390x844 with Chromium's mobile emulation (device pixel ratio 2, the page's
    /// `<meta name="viewport">` honoured), a current phone.
    Phone,
}

impl Viewport {
    fn chrome_options(self) -> Value {
        let mut args = vec![
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--hide-scrollbars",
        ];
        match self {
            Viewport::Desktop => {
                args.push("--window-size=1280,900");
                json!({"args": args})
            }
            Viewport::Phone => {
                args.push("--window-size=390,844");
                json!({
                    "args": args,
                    "mobileEmulation": {
                        "deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2.0}
                    }
                })
            }
        }
    }
}

/// A `chromedriver` process on a loopback port it picked, killed on drop.
pub struct ChromeDriver {
    child: Option<Child>,
    url: String,
    log: PathBuf,
    http: reqwest::Client,
}

impl ChromeDriver {
    /// Starts `path --port=0`, reads the port it took from what it prints, and waits
    /// until `/status` says it is ready.
    pub async fn start(path: &Path, log_dir: &Path) -> ChromeDriver {
        let log = log_dir.join("chromedriver.log");
        let said = log_dir.join("chromedriver.out");
        let file = std::fs::File::create(&log).expect("chromedriver log file");
        let out = std::fs::File::create(&said).expect("chromedriver output file");
        let mut child = Command::new(path)
            .arg("--port=0")
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
        let start = Instant::now();
        let said = Output::from_now(&said);
        let port = said
            .wait_for(&mut child, Duration::from_secs(20), |line| {
                line.strip_prefix("ChromeDriver was started successfully on port ")?
                    .trim_end_matches('.')
                    .parse::<u16>()
                    .ok()
            })
            .await;
        let mut driver = ChromeDriver {
            child: Some(child),
            url: String::new(),
            log,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(90))
                .build()
                .expect("HTTP client"),
        };
        match port {
            Ok(port) => driver.url = format!("http://127.0.0.1:{port}"),
            Err(gave) => {
                driver.stop();
                panic!(
                    "chromedriver said no port ({gave:?}): {}\nlog:\n{}",
                    said.text(),
                    driver.log_text()
                );
            }
        }
        loop {
            if driver.ready().await {
                return driver;
            }
            let exited = driver
                .child
                .as_mut()
                .is_none_or(|c| c.try_wait().ok().flatten().is_some());
            if exited || start.elapsed() > Duration::from_secs(20) {
                let log = driver.log_text();
                driver.stop();
                panic!("chromedriver did not get ready (exited: {exited}); log:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether `/status` answers `ready: true`.
    async fn ready(&self) -> bool {
        let Ok(response) = self.http.get(format!("{}/status", self.url)).send().await else {
            return false;
        };
        let body: Value = response.json().await.unwrap_or(Value::Null);
        body["value"]["ready"] == json!(true)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A new headless Chromium session rendering into `viewport`.
    pub async fn session(&self, viewport: Viewport) -> Browser {
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "pageLoadStrategy": "normal",
                    "goog:chromeOptions": viewport.chrome_options(),
                }
            }
        });
        let response = self
            .http
            .post(format!("{}/session", self.url))
            .json(&capabilities)
            .send()
            .await
            .expect("new session request");
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let Some(id) = body["value"]["sessionId"].as_str() else {
            panic!(
                "chromedriver refused a session ({status}): {body}\nlog tail:\n{}",
                tail(&self.log_text(), 40)
            );
        };
        let browser = Browser {
            http: self.http.clone(),
            session: format!("{}/session/{id}", self.url),
        };
        browser
            .command(
                reqwest::Method::POST,
                "timeouts",
                Some(json!({"pageLoad": 30_000, "script": 10_000, "implicit": 0})),
            )
            .await
            .expect("set timeouts");
        browser
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        self.stop();
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A WebDriver error: the W3C error code (`no such element`, ...) and message.
#[derive(Debug)]
pub struct WebDriverError {
    pub code: String,
    pub message: String,
}

/// A reference to an element of the current page.
#[derive(Clone, Debug)]
pub struct Element(String);

/// One browser session; deleted (and its Chromium closed) on drop.
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`.
    session: String,
}

impl Browser {
    /// One WebDriver command; the `value` of a success, the error of a failure.
    async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WebDriverError> {
        let url = if path.is_empty() {
            self.session.clone()
        } else {
            format!("{}/{path}", self.session)
        };
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| WebDriverError {
            code: "transport".into(),
            message: e.to_string(),
        })?;
        let ok = response.status().is_success();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let value = body.get("value").cloned().unwrap_or(Value::Null);
        if ok {
            Ok(value)
        } else {
            Err(WebDriverError {
                code: value["error"].as_str().unwrap_or("unknown").to_owned(),
                message: value["message"].as_str().unwrap_or_default().to_owned(),
            })
        }
    }

    async fn ok(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        match self.command(method, path, body).await {
            Ok(value) => value,
            Err(e) => panic!("WebDriver {path}: {}: {}", e.code, e.message),
        }
    }

    /// Loads `url` and waits for the page (normal page-load strategy).
    pub async fn goto(&self, url: &str) {
        self.ok(reqwest::Method::POST, "url", Some(json!({"url": url})))
            .await;
    }

    /// The URL of the page shown now.
    pub async fn current_url(&self) -> String {
        self.ok(reqwest::Method::GET, "url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The first element matching a CSS selector, if any.
    pub async fn find(&self, css: &str) -> Option<Element> {
        let body = json!({"using": "css selector", "value": css});
        match self
            .command(reqwest::Method::POST, "element", Some(body))
            .await
        {
            Ok(value) => Some(element_of(&value)),
            Err(e) if e.code == "no such element" => None,
            Err(e) => panic!("find {css}: {}: {}", e.code, e.message),
        }
    }

    /// Every element matching a CSS selector.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let body = json!({"using": "css selector", "value": css});
        let value = self.ok(reqwest::Method::POST, "elements", Some(body)).await;
        value
            .as_array()
            .map(|all| all.iter().map(element_of).collect())
            .unwrap_or_default()
    }

    /// Every element matching a CSS selector inside `parent`.
    pub async fn find_all_in(&self, parent: &Element, css: &str) -> Vec<Element> {
        let body = json!({"using": "css selector", "value": css});
        let value = self
            .ok(
                reqwest::Method::POST,
                &format!("element/{}/elements", parent.0),
                Some(body),
            )
            .await;
        value
            .as_array()
            .map(|all| all.iter().map(element_of).collect())
            .unwrap_or_default()
    }

    /// The element matching `css`, waiting for it up to [`PAGE_WAIT`]; fails the
    /// test with the page's URL and text when it does not appear.
    pub async fn wait_for(&self, css: &str) -> Element {
        let start = Instant::now();
        loop {
            if let Some(element) = self.find(css).await {
                return element;
            }
            if start.elapsed() > PAGE_WAIT {
                panic!(
                    "no {css} after {PAGE_WAIT:?} on {}; page text:\n{}",
                    self.current_url().await,
                    self.page_text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The rendered text of an element.
    pub async fn text(&self, element: &Element) -> String {
        self.ok(
            reqwest::Method::GET,
            &format!("element/{}/text", element.0),
            None,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// An attribute as written in the HTML, `None` when absent.
    pub async fn attribute(&self, element: &Element, name: &str) -> Option<String> {
        self.ok(
            reqwest::Method::GET,
            &format!("element/{}/attribute/{name}", element.0),
            None,
        )
        .await
        .as_str()
        .map(str::to_owned)
    }

    /// Clears a text field and types `text` into it.
    pub async fn type_into(&self, element: &Element, text: &str) {
        self.ok(
            reqwest::Method::POST,
            &format!("element/{}/clear", element.0),
            Some(json!({})),
        )
        .await;
        self.ok(
            reqwest::Method::POST,
            &format!("element/{}/value", element.0),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// Clicks an element that submits a form, and waits until the browser has left
    /// the current document and the next one has loaded (whatever redirects lie
    /// between).
    pub async fn click_and_wait(&self, element: &Element) {
        self.execute("window.__jwtgrantOldPage = true; return null;", json!([]))
            .await
            .expect("mark the current page");
        self.ok(
            reqwest::Method::POST,
            &format!("element/{}/click", element.0),
            Some(json!({})),
        )
        .await;
        let start = Instant::now();
        loop {
            let script = "return window.__jwtgrantOldPage === undefined \
                          && document.readyState === 'complete';";
            // While the navigation runs a script may fail; that only means "not yet".
            if self.execute(script, json!([])).await.ok() == Some(json!(true)) {
                return;
            }
            if start.elapsed() > PAGE_WAIT {
                panic!(
                    "the click did not lead to a new page within {PAGE_WAIT:?}; still on {}:\n{}",
                    self.current_url().await,
                    self.page_text().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs a script in the page and returns its result.
    pub async fn execute(&self, script: &str, args: Value) -> Result<Value, WebDriverError> {
        self.command(
            reqwest::Method::POST,
            "execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// The text of the whole page (`body`), for assertions and failure messages.
    pub async fn page_text(&self) -> String {
        match self.find("body").await {
            Some(body) => self.text(&body).await,
            None => String::new(),
        }
    }

    /// A cookie of the current page's origin, as the browser stored it.
    pub async fn cookie(&self, name: &str) -> Option<Value> {
        self.command(reqwest::Method::GET, &format!("cookie/{name}"), None)
            .await
            .ok()
    }

    /// A PNG of the viewport. Written to `$JWTGRANT_SCREENSHOTS_DIR/NAME.png` when
    /// that is set (the committed ones are in docs/screenshots).
    pub async fn screenshot(&self, name: &str) -> Vec<u8> {
        let value = self.ok(reqwest::Method::GET, "screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().unwrap_or_default())
            .expect("base64 PNG");
        assert!(
            png.starts_with(b"\x89PNG"),
            "screenshot {name} is not a PNG"
        );
        if let Some(dir) = std::env::var_os("JWTGRANT_SCREENSHOTS_DIR").filter(|d| !d.is_empty()) {
            let dir = PathBuf::from(dir);
            std::fs::create_dir_all(&dir).expect("screenshots directory");
            let path = dir.join(format!("{name}.png"));
            std::fs::write(&path, &png).expect("write screenshot");
            println!("screenshot: {}", path.display());
        }
        png
    }
}

fn element_of(value: &Value) -> Element {
    Element(
        value[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("not an element reference: {value}"))
            .to_owned(),
    )
}

impl Drop for Browser {
    /// `DELETE /session/ID` over a plain blocking socket (no runtime needed here),
    /// so Chromium is closed even when the test panicked.
    fn drop(&mut self) {
        let Some(rest) = self.session.strip_prefix("http://") else {
            return;
        };
        let Some((authority, path)) = rest.split_once('/') else {
            return;
        };
        let Ok(mut stream) = std::net::TcpStream::connect(authority) else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
        let request = format!(
            "DELETE /{path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        if stream.write_all(request.as_bytes()).is_ok() {
            // chromedriver keeps the connection open: read up to the end of the body.
            let mut response = Vec::new();
            let mut buffer = [0_u8; 4096];
            while !http_response_complete(&response) {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => response.extend_from_slice(buffer.get(..n).unwrap_or_default()),
                }
            }
        }
    }
}

/// Whether `bytes` hold a whole HTTP/1.1 response with a `Content-Length` body.
fn http_response_complete(bytes: &[u8]) -> bool {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(bytes.get(..end).unwrap_or_default()).to_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse::<usize>().ok())
        .unwrap_or(0);
    bytes.len() >= end + 4 + length
}
