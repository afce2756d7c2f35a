//! The real server run in the test's process on port 0, over a real SQLite file
//! (or, with `JWTGRANT_TEST_BACKEND=postgres`, a PostgreSQL database of the test's
//! own), with the requests the tests make of it and the registry fixtures made
//! through its store.

use std::sync::Arc;

use jwtgrant_core::SigningKey;
use jwtgrant_server::{AppState, RawConfig, ServerConfig};
use jwtgrant_store::{OpenOptions, Store};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::fixtures::{self, IntegrationSpec, JWT_BEARER};
use crate::postgres::postgres_url_for;

/// A server running in this process.
pub struct TestServer {
    /// `http://127.0.0.1:PORT` (`https://` with TLS).
    pub url: String,
    /// The data directory (on PostgreSQL, its database is named after it).
    pub dir: tempfile::TempDir,
    /// The store the server runs on, for fixtures and for looking.
    pub store: Arc<dyn Store>,
    /// The server's state (registry, metrics, config).
    pub state: Arc<AppState>,
    /// The client the request helpers use (a test may replace it, e.g. for TLS).
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// A server with default settings.
    pub async fn start() -> TestServer {
        Self::start_with(RawConfig::default()).await
    }

    /// A server with these settings (its listen address and store are the kit's).
    pub async fn start_with(raw: RawConfig) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::start_in(dir, raw).await
    }

    /// [`TestServer::start_with`] on the data directory `dir` (e.g. one returned
    /// by [`TestServer::stop`]).
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

    /// `URL/oauth/token`.
    pub fn token_endpoint(&self) -> String {
        format!("{}/oauth/token", self.url)
    }

    /// POSTs a form to the token endpoint: the status and the JSON body (`null`
    /// when it is not JSON).
    pub async fn post_form(&self, body: &[(&str, &str)]) -> (u16, Value) {
        let response = self
            .http
            .post(self.token_endpoint())
            .form(body)
            .send()
            .await
            .expect("send");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Trades an assertion at the token endpoint.
    pub async fn token(&self, assertion: &str) -> (u16, Value) {
        self.post_form(&[("grant_type", JWT_BEARER), ("assertion", assertion)])
            .await
    }

    /// POSTs `body` as `content_type` to the token endpoint.
    pub async fn raw_post(
        &self,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.http
            .post(self.token_endpoint())
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("send")
    }

    /// GETs `path` on the server.
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

    /// [`fixtures::add_integration`] on this server's store, seen by the server at
    /// once; the integration key and the key's kid.
    pub async fn add_integration(
        &self,
        spec: IntegrationSpec,
        key: &SigningKey,
    ) -> (String, String) {
        let added = fixtures::add_integration(self.store.as_ref(), spec, key).await;
        self.refresh().await;
        added
    }

    /// [`fixtures::add_key`] on this server's store, seen by the server at once.
    pub async fn add_key(&self, integration_key: &str, key: &SigningKey) -> String {
        let kid = fixtures::add_key(self.store.as_ref(), integration_key, key).await;
        self.refresh().await;
        kid
    }

    /// [`fixtures::add_user`] on this server's store, with consent to `consent_to`
    /// when given, seen by the server at once.
    pub async fn add_user(&self, consent_to: Option<&str>) -> String {
        let user_id = fixtures::add_user(self.store.as_ref()).await;
        if let Some(integration_key) = consent_to {
            fixtures::grant_consent(self.store.as_ref(), &user_id, integration_key).await;
        }
        self.refresh().await;
        user_id
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
        let text = self.state.metrics.render(self.state.audit.counts());
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
