//! The registry the tests need, made through the store: an integration with a
//! registered key, a user with an account and consent; DocuSign-shaped claims and
//! assertions signed with real keys.

use std::sync::{Arc, OnceLock};

use jwtgrant_core::jws::sign_compact;
use jwtgrant_core::{JwsAlgorithm, SigningKey};
use jwtgrant_store::{AccountRecord, IntegrationKeyRecord, NewIntegration, Store, UserRecord};
use serde_json::{Value, json};

use crate::server::TestServer;

/// The `grant_type` of RFC 7523's JWT bearer grant.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The scopes an integration gets and a user consents to unless a test says
/// otherwise.
pub const DEFAULT_SCOPES: [&str; 2] = ["signature", "impersonation"];

/// Now, in seconds since the epoch, as the server reads it.
pub fn now() -> i64 {
    jwtgrant_server::clock::now()
}

/// The error code and description of an OAuth error body.
pub fn oauth_error(body: &Value) -> (&str, &str) {
    (
        body["error"].as_str().unwrap_or_default(),
        body["error_description"].as_str().unwrap_or_default(),
    )
}

fn default_scopes() -> Vec<String> {
    DEFAULT_SCOPES.map(str::to_owned).to_vec()
}

/// The shared test RSA key (generating RSA keys is slow in debug builds).
pub fn rsa_key() -> Arc<SigningKey> {
    static KEY: OnceLock<Arc<SigningKey>> = OnceLock::new();
    Arc::clone(
        KEY.get_or_init(|| Arc::new(SigningKey::generate(JwsAlgorithm::Rs256, 2048).expect("key"))),
    )
}

/// A second shared RSA key, registered nowhere unless a test does it.
pub fn other_rsa_key() -> Arc<SigningKey> {
    static KEY: OnceLock<Arc<SigningKey>> = OnceLock::new();
    Arc::clone(
        KEY.get_or_init(|| Arc::new(SigningKey::generate(JwsAlgorithm::Rs256, 2048).expect("key"))),
    )
}

/// `claims` as a compact JWS (`typ: JWT`) signed by `key` with `alg`.
pub fn sign(key: &SigningKey, alg: JwsAlgorithm, claims: &Value) -> String {
    sign_compact(key, alg, Some("JWT"), None, claims).expect("sign")
}

/// DocuSign-shaped claims: `iss`, `sub`, `aud`, `iat` now, `exp` after `lifetime`
/// seconds, the default scopes, a fresh `jti`.
pub fn docusign_claims(iss: &str, sub: &str, aud: &str, lifetime: i64) -> Value {
    let now = now();
    json!({
        "iss": iss,
        "sub": sub,
        "aud": aud,
        "iat": now,
        "exp": now + lifetime,
        "scope": DEFAULT_SCOPES.join(" "),
        "jti": uuid::Uuid::new_v4().to_string(),
    })
}

/// The claims of a compact JWT, read without checking its signature (`null` when
/// it is not one): what a test asserts about a token the server issued.
pub fn jwt_claims(token: &str) -> Value {
    token
        .split('.')
        .nth(1)
        .and_then(jwtgrant_core::b64::decode)
        .and_then(|payload| serde_json::from_slice(&payload).ok())
        .unwrap_or(Value::Null)
}

/// What kind of integration [`add_integration`] registers.
pub struct IntegrationSpec {
    /// Whether assertions without `sub` (application tokens) are accepted.
    pub allow_application_tokens: bool,
    /// Whether assertions must carry a `jti`.
    pub require_jti: bool,
    /// The scopes it may be granted.
    pub scopes: Vec<String>,
}

impl Default for IntegrationSpec {
    /// User tokens only, `jti` optional, the default scopes.
    fn default() -> Self {
        IntegrationSpec {
            allow_application_tokens: false,
            require_jti: false,
            scopes: default_scopes(),
        }
    }
}

impl IntegrationSpec {
    /// Application tokens allowed and `jti` required, the default scopes: the SDK
    /// tests' integration.
    pub fn applications() -> Self {
        IntegrationSpec {
            allow_application_tokens: true,
            require_jti: true,
            ..IntegrationSpec::default()
        }
    }
}

/// Registers an integration with `key`; its integration key and the key's kid.
pub async fn add_integration(
    store: &dyn Store,
    spec: IntegrationSpec,
    key: &SigningKey,
) -> (String, String) {
    let integration_key = uuid::Uuid::new_v4().to_string();
    store
        .create_integration(NewIntegration {
            integration_key: integration_key.clone(),
            name: "Test integration".into(),
            scopes: spec.scopes,
            redirect_uris: vec!["http://localhost:9000/callback".into()],
            resources: Vec::new(),
            default_scopes: Vec::new(),
            allow_application_tokens: spec.allow_application_tokens,
            require_jti: spec.require_jti,
            created_at: now(),
        })
        .await
        .expect("integration");
    let kid = add_key(store, &integration_key, key).await;
    (integration_key, kid)
}

/// Registers `key`'s public half for the integration, under its thumbprint; the kid.
pub async fn add_key(store: &dyn Store, integration_key: &str, key: &SigningKey) -> String {
    let kid = key.public_key().thumbprint().to_owned();
    let jwk = key.public_key().to_jwk(Some(&kid), None);
    store
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
    kid
}

/// A user (Ada Lovelace) with a default account; the user id.
pub async fn add_user(store: &dyn Store) -> String {
    let user_id = uuid::Uuid::new_v4().to_string();
    store
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
    store
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
    user_id
}

/// The user's consent to the integration's default scopes.
pub async fn grant_consent(store: &dyn Store, user_id: &str, integration_key: &str) {
    store
        .grant_consent(user_id, integration_key, &default_scopes(), now())
        .await
        .expect("consent");
}

/// An integration with one registered key (the shared RSA key), a user with an
/// account and consent, on a server of the test's own.
pub struct Fixture {
    /// The server the registry is on.
    pub server: TestServer,
    /// The integration's key (`iss` of its assertions).
    pub integration_key: String,
    /// The private half of its registered key.
    pub key: Arc<SigningKey>,
    /// The registered key's kid.
    pub kid: String,
    /// The user who consented (`sub`).
    pub user_id: String,
}

impl Fixture {
    /// The fixture on a new server with default settings.
    pub async fn new() -> Fixture {
        Self::with(TestServer::start().await, IntegrationSpec::default()).await
    }

    /// The fixture, its integration as `spec` says, on `server`.
    pub async fn with(server: TestServer, spec: IntegrationSpec) -> Fixture {
        let key = rsa_key();
        let (integration_key, kid) = add_integration(server.store.as_ref(), spec, &key).await;
        let user_id = add_user(server.store.as_ref()).await;
        grant_consent(server.store.as_ref(), &user_id, &integration_key).await;
        Fixture {
            server,
            integration_key,
            key,
            kid,
            user_id,
        }
    }

    /// DocuSign-shaped claims for this fixture's integration and user.
    pub fn claims(&self) -> Value {
        docusign_claims(
            &self.integration_key,
            &self.user_id,
            &self.server.host(),
            3600,
        )
    }

    /// The claims with some members replaced (a `null` value removes the member
    /// when `remove` lists it).
    pub fn claims_with(&self, overrides: Value, remove: &[&str]) -> Value {
        let mut claims = self.claims();
        if let (Value::Object(base), Value::Object(over)) = (&mut claims, overrides) {
            base.extend(over);
            for name in remove {
                base.remove(*name);
            }
        }
        claims
    }

    /// `claims` signed with the fixture's key (RS256).
    pub fn sign(&self, claims: &Value) -> String {
        sign(&self.key, JwsAlgorithm::Rs256, claims)
    }

    /// Trades `claims`, signed with the fixture's key, at the token endpoint.
    pub async fn token_for(&self, claims: &Value) -> (u16, Value) {
        self.server.token(&self.sign(claims)).await
    }
}
