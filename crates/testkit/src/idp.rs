//! A trusted issuer of the test's own, on loopback: it signs tokens shaped like an
//! identity provider's or a workload issuer's with real keys, and serves its JWKS
//! (and OpenID Connect metadata) over HTTP, counting the requests, so a test can
//! rotate its keys, make it fail or hang, and see what the server fetched.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jwtgrant_core::{JwsAlgorithm, SigningKey, b64};
use serde_json::{Value, json};

/// What the JWKS endpoint answers.
#[derive(Debug, Clone)]
pub enum JwksBehavior {
    /// The current keys, with `Cache-Control: max-age`.
    Serve {
        /// Seconds.
        max_age: u64,
    },
    /// This status and body.
    Fail(u16, Vec<u8>),
    /// This body as JSON, status 200.
    Body(Vec<u8>),
    /// A redirect to this URL.
    Redirect(String),
    /// Never answer.
    Hang,
}

struct Shared {
    url: String,
    keys: Mutex<Vec<(String, Arc<SigningKey>)>>,
    behavior: Mutex<JwksBehavior>,
    jwks_hits: AtomicUsize,
    metadata_hits: AtomicUsize,
}

/// The issuer: `url` is its issuer identifier when discovery is used.
pub struct TestIdp {
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestIdp {
    /// Starts on 127.0.0.1, port 0, serving `keys` (kid, key).
    pub async fn start(keys: Vec<(String, Arc<SigningKey>)>) -> TestIdp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the issuer");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let shared = Arc::new(Shared {
            url,
            keys: Mutex::new(keys),
            behavior: Mutex::new(JwksBehavior::Serve { max_age: 300 }),
            jwks_hits: AtomicUsize::new(0),
            metadata_hits: AtomicUsize::new(0),
        });
        let app = Router::new()
            .route("/jwks", get(jwks))
            .route("/.well-known/openid-configuration", get(metadata))
            .with_state(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestIdp { shared, server }
    }

    /// Starts with one new RSA key under kid `key-1`.
    pub async fn with_rsa_key() -> TestIdp {
        let key = SigningKey::generate(JwsAlgorithm::Rs256, 2048).expect("RSA key");
        TestIdp::start(vec![("key-1".into(), Arc::new(key))]).await
    }

    /// `http://127.0.0.1:PORT`: the issuer identifier for discovery.
    pub fn url(&self) -> &str {
        &self.shared.url
    }

    /// The JWKS URL.
    pub fn jwks_uri(&self) -> String {
        format!("{}/jwks", self.shared.url)
    }

    /// Requests the JWKS endpoint has had.
    pub fn jwks_hits(&self) -> usize {
        self.shared.jwks_hits.load(Ordering::SeqCst)
    }

    /// Requests the metadata endpoint has had.
    pub fn metadata_hits(&self) -> usize {
        self.shared.metadata_hits.load(Ordering::SeqCst)
    }

    /// Sets what the JWKS endpoint answers from now on.
    pub fn set_behavior(&self, behavior: JwksBehavior) {
        *self.shared.behavior.lock().unwrap() = behavior;
    }

    /// Replaces the keys it serves and signs with.
    pub fn set_keys(&self, keys: Vec<(String, Arc<SigningKey>)>) {
        *self.shared.keys.lock().unwrap() = keys;
    }

    /// The JWKS document it serves now.
    pub fn jwks(&self) -> Value {
        jwks_of(&self.shared.keys.lock().unwrap())
    }

    /// Signs `claims` with its key `kid`, under a header of `alg` (the key's
    /// default), `kid`, `typ` (when given) and any `extra` members.
    pub fn sign(&self, kid: &str, typ: Option<&str>, extra: Value, claims: &Value) -> String {
        let key = self
            .shared
            .keys
            .lock()
            .unwrap()
            .iter()
            .find(|(k, _)| k == kid)
            .map(|(_, key)| Arc::clone(key))
            .unwrap_or_else(|| panic!("the issuer has no key {kid}"));
        sign_with_header(&key, key.default_algorithm(), Some(kid), typ, extra, claims)
    }
}

/// Signs `claims` with `key` under a header with any members a test needs
/// (`jku`, `x5u`, `jwk`, `x5c` included).
pub fn sign_with_header(
    key: &SigningKey,
    alg: JwsAlgorithm,
    kid: Option<&str>,
    typ: Option<&str>,
    extra: Value,
    claims: &Value,
) -> String {
    let mut header = json!({"alg": alg.as_str()});
    if let Some(kid) = kid {
        header["kid"] = json!(kid);
    }
    if let Some(typ) = typ {
        header["typ"] = json!(typ);
    }
    if let Value::Object(extra) = extra {
        for (name, value) in extra {
            header[name] = value;
        }
    }
    let mut token = b64::encode(serde_json::to_vec(&header).unwrap());
    token.push('.');
    token.push_str(&b64::encode(serde_json::to_vec(claims).unwrap()));
    let signature = key.sign(alg, token.as_bytes()).expect("sign");
    token.push('.');
    token.push_str(&b64::encode(signature));
    token
}

fn jwks_of(keys: &[(String, Arc<SigningKey>)]) -> Value {
    let keys: Vec<Value> = keys
        .iter()
        .map(|(kid, key)| {
            let mut jwk = serde_json::to_value(
                key.public_key()
                    .to_jwk(Some(kid), Some(key.default_algorithm())),
            )
            .unwrap();
            jwk["use"] = json!("sig");
            jwk
        })
        .collect();
    json!({ "keys": keys })
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    shared.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let behavior = shared.behavior.lock().unwrap().clone();
    match behavior {
        JwksBehavior::Serve { max_age } => {
            let body = jwks_of(&shared.keys.lock().unwrap()).to_string();
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
            headers.insert(
                header::CACHE_CONTROL,
                format!("public, max-age={max_age}").parse().unwrap(),
            );
            (headers, body).into_response()
        }
        JwksBehavior::Fail(status, body) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            body,
        )
            .into_response(),
        JwksBehavior::Body(body) => {
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        JwksBehavior::Redirect(to) => (StatusCode::FOUND, [(header::LOCATION, to)]).into_response(),
        JwksBehavior::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
    }
}

async fn metadata(State(shared): State<Arc<Shared>>) -> Response {
    shared.metadata_hits.fetch_add(1, Ordering::SeqCst);
    axum::Json(json!({
        "issuer": shared.url,
        "jwks_uri": format!("{}/jwks", shared.url),
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
    }))
    .into_response()
}
