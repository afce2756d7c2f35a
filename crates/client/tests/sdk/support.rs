//! Test support: the real jwtgrant server on port 0 over a temporary SQLite file,
//! fixtures made through the store, and a counting proxy in front of the token
//! endpoint that can play a faulty network.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jwtgrant_client::PrivateKey;
use jwtgrant_core::{JwsAlgorithm, SigningKey};
use jwtgrant_server::{AppState, RawConfig, ServerConfig};
use jwtgrant_store::{
    AccountRecord, IntegrationKeyRecord, NewIntegration, OpenOptions, Store, UserRecord,
};
use tokio::sync::oneshot;

pub fn now() -> i64 {
    jwtgrant_server::clock::now()
}

/// A server running in this process.
pub struct TestServer {
    pub url: String,
    pub store: Arc<dyn Store>,
    pub state: Arc<AppState>,
    _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(RawConfig::default()).await
    }

    pub async fn start_with(raw: RawConfig) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let raw = RawConfig {
            listen: Some("127.0.0.1:0".into()),
            data_dir: Some(dir.path().to_path_buf()),
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
        let state = AppState::new(config, Arc::clone(&store), bound)
            .await
            .expect("state");
        let (stop, stopped) = oneshot::channel::<()>();
        let serving = Arc::clone(&state);
        tokio::spawn(async move {
            let _ = jwtgrant_server::serve(listener, serving, async {
                let _ = stopped.await;
            })
            .await;
        });
        TestServer {
            url: format!("http://{bound}"),
            store,
            state,
            _dir: dir,
            stop: Some(stop),
        }
    }

    /// The bare host:port, as DocuSign's SDKs put it in `aud`.
    pub fn host(&self) -> String {
        self.url.trim_start_matches("http://").to_owned()
    }

    pub fn token_endpoint(&self) -> String {
        format!("{}/oauth/token", self.url)
    }

    /// Makes the server see registry changes now, as its poll would shortly.
    pub async fn refresh(&self) {
        self.state.registry.refresh().await.expect("refresh");
    }

    /// Access tokens the server has issued, from its Prometheus counters.
    pub fn issued(&self) -> u64 {
        self.metric("jwtgrant_grants_issued_total{grant_type=\"jwt-bearer\"}")
    }

    /// Token requests refused with `code`.
    pub fn refused(&self, code: &str) -> u64 {
        self.metric(&format!(
            "jwtgrant_grants_refused_total{{error=\"{code}\"}}"
        ))
    }

    fn metric(&self, series: &str) -> u64 {
        let text = self.state.metrics.render();
        text.lines()
            .find_map(|line| line.strip_prefix(series))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in metrics"))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub struct IntegrationSpec {
    pub allow_application_tokens: bool,
    pub scopes: Vec<String>,
}

impl Default for IntegrationSpec {
    fn default() -> Self {
        IntegrationSpec {
            allow_application_tokens: true,
            scopes: vec!["signature".into(), "impersonation".into()],
        }
    }
}

/// Registers an integration with `key` and returns its integration key and kid.
pub async fn add_integration(
    server: &TestServer,
    spec: IntegrationSpec,
    key: &SigningKey,
) -> (String, String) {
    let integration_key = uuid::Uuid::new_v4().to_string();
    server
        .store
        .create_integration(NewIntegration {
            integration_key: integration_key.clone(),
            name: "SDK test integration".into(),
            scopes: spec.scopes,
            redirect_uris: vec!["http://localhost:9000/callback".into()],
            allow_application_tokens: spec.allow_application_tokens,
            require_jti: true,
            created_at: now(),
        })
        .await
        .expect("integration");
    let kid = add_key(server, &integration_key, key).await;
    (integration_key, kid)
}

pub async fn add_key(server: &TestServer, integration_key: &str, key: &SigningKey) -> String {
    let kid = key.public_key().thumbprint().to_owned();
    let jwk = key.public_key().to_jwk(Some(&kid), None);
    server
        .store
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
    server.refresh().await;
    kid
}

/// A user with an account; consent to `consent_to` when given.
pub async fn add_user(server: &TestServer, consent_to: Option<&str>) -> String {
    let user_id = uuid::Uuid::new_v4().to_string();
    server
        .store
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
    server
        .store
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
    if let Some(integration_key) = consent_to {
        server
            .store
            .grant_consent(
                &user_id,
                integration_key,
                &["signature".to_string(), "impersonation".to_string()],
                now(),
            )
            .await
            .expect("consent");
    }
    server.refresh().await;
    user_id
}

/// The shared test RSA key (generating RSA keys is slow in debug builds).
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
        let (integration_key, _) =
            add_integration(&server, IntegrationSpec::default(), key.signing_key()).await;
        let user_id = add_user(&server, Some(&integration_key)).await;
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
    jwks_requests: AtomicUsize,
    canned: Mutex<VecDeque<Canned>>,
    http: reqwest::Client,
}

impl Proxy {
    pub async fn start(target: &str, canned: Vec<Canned>) -> Proxy {
        let state = Arc::new(ProxyState {
            target: target.to_owned(),
            requests: AtomicUsize::new(0),
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

/// A local address nothing listens on.
pub async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}
