//! Test support: the kit's server in this process on port 0 over a temporary
//! SQLite file and its fixtures, the SDK's keys, and a counting proxy in front of
//! the token endpoint that can play a faulty network and shows what was sent.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jwtgrant_client::PrivateKey;
use jwtgrant_core::{JwsAlgorithm, SigningKey};

pub use jwtgrant_testkit::ports::closed_port_url;
pub use jwtgrant_testkit::{IntegrationSpec, TestServer, now};

/// The shared test RSA key as the SDK holds keys (generating RSA keys is slow in
/// debug builds).
pub fn rsa_key() -> PrivateKey {
    use std::sync::OnceLock;
    static KEY: OnceLock<PrivateKey> = OnceLock::new();
    KEY.get_or_init(|| PrivateKey::new(SigningKey::generate(JwsAlgorithm::Rs256, 2048).unwrap()))
        .clone()
}

/// A key file from `tests/data` (made with openssl).
pub fn key_file(name: &str) -> PrivateKey {
    PrivateKey::from_file(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// An integration with the shared RSA key, allowed application tokens, and a user
/// who consented to it.
pub struct Fixture {
    pub server: TestServer,
    pub integration_key: String,
    pub key: PrivateKey,
    pub user_id: String,
}

impl Fixture {
    pub async fn new() -> Fixture {
        Self::on(TestServer::start().await).await
    }

    pub async fn on(server: TestServer) -> Fixture {
        let key = rsa_key();
        let (integration_key, _) = server
            .add_integration(IntegrationSpec::applications(), key.signing_key())
            .await;
        let user_id = server.add_user(Some(&integration_key)).await;
        Fixture {
            server,
            integration_key,
            key,
            user_id,
        }
    }
}

/// One canned answer of the proxy.
#[derive(Clone)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    /// Wait this long before answering.
    pub delay: std::time::Duration,
    /// After the delay, forward to the real server instead of answering.
    pub forward: bool,
}

impl Canned {
    pub fn status(status: u16) -> Canned {
        Canned {
            status,
            headers: Vec::new(),
            body: String::new(),
            delay: std::time::Duration::ZERO,
            forward: false,
        }
    }

    /// A slow network: the request reaches the real server after `delay`.
    pub fn forward_after(delay: std::time::Duration) -> Canned {
        Canned {
            delay,
            forward: true,
            ..Canned::status(0)
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Canned {
        self.headers.push((name, value.to_owned()));
        self
    }

    pub fn json(mut self, body: serde_json::Value) -> Canned {
        self.headers
            .push(("content-type", "application/json".into()));
        self.body = body.to_string();
        self
    }
}

/// A stand-in for a faulty network in front of the token endpoint: it counts
/// every request, answers the canned responses queued first, then forwards to
/// the real server.
#[derive(Clone)]
pub struct Proxy {
    pub url: String,
    state: Arc<ProxyState>,
}

struct ProxyState {
    target: String,
    requests: AtomicUsize,
    /// The body of every token request, in order.
    bodies: Mutex<Vec<String>>,
    jwks_requests: AtomicUsize,
    canned: Mutex<VecDeque<Canned>>,
    http: reqwest::Client,
}

impl Proxy {
    pub async fn start(target: &str, canned: Vec<Canned>) -> Proxy {
        let state = Arc::new(ProxyState {
            target: target.to_owned(),
            requests: AtomicUsize::new(0),
            bodies: Mutex::new(Vec::new()),
            jwks_requests: AtomicUsize::new(0),
            canned: Mutex::new(canned.into()),
            http: reqwest::Client::new(),
        });
        let app = axum::Router::new()
            .route("/oauth/token", axum::routing::post(forward))
            .route("/oauth/jwks", axum::routing::get(forward_jwks))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Proxy { url, state }
    }

    pub fn token_endpoint(&self) -> String {
        format!("{}/oauth/token", self.url)
    }

    /// Queues a canned answer for the next request.
    pub fn push(&self, canned: Canned) {
        self.state.canned.lock().unwrap().push_back(canned);
    }

    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// The form fields of every token request so far, in order.
    pub fn forms(&self) -> Vec<Vec<(String, String)>> {
        let bodies = self.state.bodies.lock().unwrap();
        bodies
            .iter()
            .map(|body| {
                reqwest::Url::parse(&format!("http://x/?{body}"))
                    .unwrap()
                    .query_pairs()
                    .map(|(n, v)| (n.into_owned(), v.into_owned()))
                    .collect()
            })
            .collect()
    }

    pub fn jwks_requests(&self) -> usize {
        self.state.jwks_requests.load(Ordering::SeqCst)
    }
}

async fn forward(
    State(state): State<Arc<ProxyState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    state
        .bodies
        .lock()
        .unwrap()
        .push(String::from_utf8_lossy(&body).into_owned());
    let mut canned = state.canned.lock().unwrap().pop_front();
    if let Some(delay) = canned.as_ref().map(|c| c.delay) {
        tokio::time::sleep(delay).await;
    }
    if canned.as_ref().is_some_and(|c| c.forward) {
        canned = None;
    }
    if let Some(canned) = canned {
        let mut response =
            (StatusCode::from_u16(canned.status).unwrap(), canned.body).into_response();
        for (name, value) in canned.headers {
            response.headers_mut().insert(name, value.parse().unwrap());
        }
        return response;
    }
    let upstream = state
        .http
        .post(format!("{}/oauth/token", state.target))
        .header(
            header::CONTENT_TYPE,
            headers
                .get(header::CONTENT_TYPE)
                .cloned()
                .unwrap_or_else(|| "application/x-www-form-urlencoded".parse().unwrap()),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let status = StatusCode::from_u16(upstream.status().as_u16()).unwrap();
    let body = upstream.bytes().await.unwrap();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn forward_jwks(State(state): State<Arc<ProxyState>>) -> Response {
    state.jwks_requests.fetch_add(1, Ordering::SeqCst);
    let upstream = state
        .http
        .get(format!("{}/oauth/jwks", state.target))
        .send()
        .await
        .unwrap();
    let body = upstream.bytes().await.unwrap();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}
