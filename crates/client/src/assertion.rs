//! The JWT bearer assertion (RFC 7523 section 3): its claims, built the way DocuSign's
//! SDKs build them (`scope` a space-separated claim, `aud` a string when there is one),
//! and signed with the integration's key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jwtgrant_core::JwsAlgorithm;
use jwtgrant_core::jws::sign_compact;
use jwtgrant_core::keys::KeyError;
use serde_json::{Map, Value};

use crate::keys::PrivateKey;

/// The default assertion lifetime: one hour, the most DocuSign, Google and jwtgrant
/// accept by default.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// The longest lifetime the builder signs unless told the server's own maximum
/// ([`AssertionBuilder::max_lifetime`]): servers refuse longer-lived assertions
/// (jwtgrant's default `max_assertion_lifetime`, DocuSign's and Google's one hour).
pub const MAX_LIFETIME: Duration = Duration::from_secs(3600);

/// Claims the builder sets itself; [`AssertionBuilder::claim`] may not set them.
const REGISTERED: [&str; 7] = ["iss", "sub", "aud", "iat", "exp", "jti", "scope"];

/// Why an assertion could not be built or signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AssertionError {
    /// No `iss`: the integration key (DocuSign) or client id is required.
    #[error("the assertion needs an issuer ('iss'): the integration key")]
    MissingIssuer,
    /// No `aud`.
    #[error("the assertion needs an audience ('aud'): the server's OAuth host or token endpoint")]
    MissingAudience,
    /// An extra claim that would replace one the builder owns.
    #[error("claim '{0}' is set by the builder's own method, not as an extra claim")]
    ReservedClaim(String),
    /// The algorithm does not suit the key.
    #[error("algorithm {alg} cannot sign with this {key_type} key")]
    AlgorithmMismatch {
        /// The algorithm asked for.
        alg: JwsAlgorithm,
        /// The key's type.
        key_type: jwtgrant_core::KeyType,
    },
    /// Signing failed in the crypto library.
    #[error("signing the assertion failed: {0}")]
    Signing(KeyError),
}

/// Builds and signs assertions. Reusable: each [`sign`](Self::sign) makes a new
/// assertion with fresh `iat`, `exp` and `jti`.
///
/// ```
/// # use jwtgrant_client::{AssertionBuilder, PrivateKey};
/// # use jwtgrant_core::{JwsAlgorithm, SigningKey};
/// let key = PrivateKey::new(SigningKey::generate(JwsAlgorithm::Rs256, 2048)?);
/// let assertion = AssertionBuilder::new("my-integration-key")
///     .subject("the-user-id")
///     .audience("account-d.docusign.com")
///     .scopes(["signature", "impersonation"])
///     .sign(&key)?;
/// assert_eq!(assertion.split('.').count(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct AssertionBuilder {
    issuer: String,
    subject: Option<String>,
    audiences: Vec<String>,
    scopes: Vec<String>,
    lifetime: Duration,
    /// The server's maximum; the lifetime signed is capped by it.
    max_lifetime: Duration,
    jti: bool,
    kid: Option<String>,
    algorithm: Option<JwsAlgorithm>,
    typ: Option<String>,
    extra: Map<String, Value>,
}

impl AssertionBuilder {
    /// A builder for assertions issued by `issuer` (the integration key, or client id).
    pub fn new(issuer: impl Into<String>) -> Self {
        AssertionBuilder {
            issuer: issuer.into(),
            subject: None,
            audiences: Vec::new(),
            scopes: Vec::new(),
            lifetime: DEFAULT_LIFETIME,
            max_lifetime: MAX_LIFETIME,
            jti: true,
            kid: None,
            algorithm: None,
            typ: Some("JWT".to_owned()),
            extra: Map::new(),
        }
    }

    /// The issuer (`iss`).
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Replaces the issuer (`iss`).
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    /// The user to act as (`sub`); without one the assertion asks for an
    /// application token.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Removes the subject: an application token.
    pub fn no_subject(mut self) -> Self {
        self.subject = None;
        self
    }

    /// Adds an audience (`aud`). One audience is sent as a string, several as an array.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Replaces the audiences.
    pub fn audiences<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.audiences = audiences.into_iter().map(Into::into).collect();
        self
    }

    /// Whether an audience has been set.
    pub fn has_audience(&self) -> bool {
        !self.audiences.is_empty()
    }

    /// Adds a scope to the `scope` claim.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes.push(scope.into());
        self
    }

    /// Replaces the scopes; each item may itself hold several space-separated scopes.
    pub fn scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// How long the assertion is valid (`exp - iat`): default one hour, at least one
    /// second, and capped when signing by [`max_lifetime`](Self::max_lifetime).
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime.max(Duration::from_secs(1));
        self
    }

    /// The longest lifetime the server accepts (jwtgrant publishes it in its metadata
    /// as `jwtgrant_max_assertion_lifetime`): assertions are signed for at most this
    /// long, whatever [`lifetime`](Self::lifetime) asks. Default [`MAX_LIFETIME`].
    pub fn max_lifetime(mut self, max: Duration) -> Self {
        self.max_lifetime = max.max(Duration::from_secs(1));
        self
    }

    /// The lifetime assertions are signed for: the one asked, capped by the maximum.
    pub fn effective_lifetime(&self) -> Duration {
        self.lifetime.min(self.max_lifetime)
    }

    /// Whether to send a fresh `jti` (a UUID) in each assertion; on by default.
    /// Servers use it to refuse a replayed assertion.
    pub fn jti(mut self, enabled: bool) -> Self {
        self.jti = enabled;
        self
    }

    /// The `kid` header; by default the key's own [`kid`](PrivateKey::kid), if any.
    /// DocuSign's assertions carry none: the server then tries each key.
    pub fn kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The signature algorithm; by default the key's
    /// [`default_algorithm`](PrivateKey::default_algorithm).
    pub fn algorithm(mut self, alg: JwsAlgorithm) -> Self {
        self.algorithm = Some(alg);
        self
    }

    /// The `typ` header (`JWT` by default); `None` leaves it out.
    pub fn typ(mut self, typ: Option<&str>) -> Self {
        self.typ = typ.map(str::to_owned);
        self
    }

    /// Adds a claim of the server's own (e.g. Salesforce's or a custom one). The
    /// claims the builder owns (`iss`, `sub`, `aud`, `iat`, `exp`, `jti`, `scope`)
    /// are refused when signing.
    pub fn claim(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extra.insert(name.into(), value.into());
        self
    }

    /// The claims an assertion signed at `now` (Unix seconds) carries.
    pub fn claims(&self, now: i64) -> Result<Map<String, Value>, AssertionError> {
        if self.issuer.is_empty() {
            return Err(AssertionError::MissingIssuer);
        }
        if let Some(name) = self.extra.keys().find(|k| REGISTERED.contains(&k.as_str())) {
            return Err(AssertionError::ReservedClaim(name.clone()));
        }
        let aud = match self.audiences.as_slice() {
            [] => return Err(AssertionError::MissingAudience),
            [one] => Value::String(one.clone()),
            many => Value::from(many.to_vec()),
        };
        let mut claims = Map::new();
        claims.insert("iss".into(), self.issuer.clone().into());
        if let Some(subject) = &self.subject {
            claims.insert("sub".into(), subject.clone().into());
        }
        claims.insert("aud".into(), aud);
        claims.insert("iat".into(), now.into());
        let lifetime = i64::try_from(self.effective_lifetime().as_secs()).unwrap_or(i64::MAX);
        claims.insert("exp".into(), now.saturating_add(lifetime).into());
        let scope = self.scope_string();
        if !scope.is_empty() {
            claims.insert("scope".into(), scope.into());
        }
        if self.jti {
            claims.insert("jti".into(), uuid::Uuid::new_v4().to_string().into());
        }
        claims.extend(self.extra.clone());
        Ok(claims)
    }

    /// The scopes as the `scope` claim spells them: space separated, no duplicates.
    pub fn scope_string(&self) -> String {
        let mut seen: Vec<&str> = Vec::new();
        for scope in self.scopes.iter().flat_map(|s| s.split_whitespace()) {
            if !seen.contains(&scope) {
                seen.push(scope);
            }
        }
        seen.join(" ")
    }

    /// Signs a new assertion with `key`, valid from now.
    pub fn sign(&self, key: &PrivateKey) -> Result<String, AssertionError> {
        self.sign_at(key, unix_now())
    }

    /// Signs a new assertion with `key` as if it were `now` (Unix seconds).
    pub fn sign_at(&self, key: &PrivateKey, now: i64) -> Result<String, AssertionError> {
        let claims = self.claims(now)?;
        let alg = self.algorithm.unwrap_or_else(|| key.default_algorithm());
        if !alg.key_type_allowed(key.key_type()) {
            return Err(AssertionError::AlgorithmMismatch {
                alg,
                key_type: key.key_type(),
            });
        }
        let kid = self.kid.as_deref().or(key.kid());
        sign_compact(key.signing_key(), alg, self.typ.as_deref(), kid, &claims)
            .map_err(AssertionError::Signing)
    }

    /// The user the assertion acts as (`sub`), if any.
    pub fn subject_id(&self) -> Option<&str> {
        self.subject.as_deref()
    }
}

/// The default client assertion lifetime: two minutes. A client assertion is signed
/// for one request, so it needs to outlive only the request and the clock skew
/// between client and server (draft-ietf-oauth-rfc7523bis asks for short lifetimes).
pub const DEFAULT_CLIENT_ASSERTION_LIFETIME: Duration = Duration::from_secs(120);

/// Builds and signs client assertions: the JWT a client authenticates itself with
/// (`private_key_jwt`, RFC 7523 section 2.2) at the token endpoint for any grant,
/// at introspection and at revocation. Its claims are fixed by the RFC: `iss` and
/// `sub` the client id (the integration key), `aud` the server's issuer identifier,
/// `iat`, a short `exp` and a fresh `jti`; the header has the key's `alg`, its `kid`
/// when known, and `typ: client-authentication+jwt`.
///
/// It signs with the grant assertion's [`AssertionBuilder`], kept to this shape;
/// each [`sign`](Self::sign) or [`form_fields`](Self::form_fields) makes a new one.
///
/// ```
/// # use jwtgrant_client::{ClientAssertionBuilder, PrivateKey};
/// # use jwtgrant_core::{JwsAlgorithm, SigningKey};
/// let key = PrivateKey::new(SigningKey::generate(JwsAlgorithm::Es256, 0)?).with_kid("k1");
/// let fields = ClientAssertionBuilder::new("my-integration-key")
///     .audience("https://auth.example.com")
///     .form_fields(&key)?;
/// let form: Vec<(&str, &str)> = [("grant_type", "client_credentials")]
///     .into_iter()
///     .chain(fields.pairs())
///     .collect();
/// assert_eq!(form.len(), 4);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ClientAssertionBuilder {
    /// The grant assertion's builder, kept to the client assertion's shape: `sub` =
    /// `iss`, no scope, no extra claims, always a `jti`.
    inner: AssertionBuilder,
}

impl ClientAssertionBuilder {
    /// A builder for client assertions of the client `client_id` (the integration key).
    pub fn new(client_id: impl Into<String>) -> Self {
        let client_id = client_id.into();
        ClientAssertionBuilder {
            inner: AssertionBuilder::new(client_id.clone())
                .subject(client_id)
                .lifetime(DEFAULT_CLIENT_ASSERTION_LIFETIME)
                .typ(Some(jwtgrant_proto::CLIENT_ASSERTION_TYP)),
        }
    }

    /// The client id (`iss` and `sub`).
    pub fn client_id(&self) -> &str {
        self.inner.issuer()
    }

    /// Sets the audience (`aud`), replacing any set before: the server's issuer
    /// identifier (jwtgrant's public URL). Servers that are not strict about it also
    /// accept their token endpoint URL.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.inner = self.inner.audiences([audience.into()]);
        self
    }

    /// Whether an audience has been set.
    pub fn has_audience(&self) -> bool {
        self.inner.has_audience()
    }

    /// How long each assertion is valid (`exp - iat`): default
    /// [`DEFAULT_CLIENT_ASSERTION_LIFETIME`], at least one second, at most
    /// [`MAX_LIFETIME`] (jwtgrant's default `--max-client-assertion-lifetime-secs`).
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.inner = self.inner.lifetime(lifetime);
        self
    }

    /// The lifetime assertions are signed for.
    pub fn effective_lifetime(&self) -> Duration {
        self.inner.effective_lifetime()
    }

    /// The `kid` header; by default the key's own [`kid`](PrivateKey::kid), if any
    /// (without one the server tries each of the client's keys).
    pub fn kid(mut self, kid: impl Into<String>) -> Self {
        self.inner = self.inner.kid(kid);
        self
    }

    /// The signature algorithm; by default the key's
    /// [`default_algorithm`](PrivateKey::default_algorithm).
    pub fn algorithm(mut self, alg: JwsAlgorithm) -> Self {
        self.inner = self.inner.algorithm(alg);
        self
    }

    /// The `typ` header: `client-authentication+jwt` by default; `None` leaves it
    /// out, for a server that knows only RFC 7523.
    pub fn typ(mut self, typ: Option<&str>) -> Self {
        self.inner = self.inner.typ(typ);
        self
    }

    /// The claims a client assertion signed at `now` (Unix seconds) carries.
    pub fn claims(&self, now: i64) -> Result<Map<String, Value>, AssertionError> {
        self.inner.claims(now)
    }

    /// Signs a new client assertion with `key`, valid from now.
    pub fn sign(&self, key: &PrivateKey) -> Result<String, AssertionError> {
        self.inner.sign(key)
    }

    /// Signs a new client assertion with `key` as if it were `now` (Unix seconds).
    pub fn sign_at(&self, key: &PrivateKey, now: i64) -> Result<String, AssertionError> {
        self.inner.sign_at(key, now)
    }

    /// The form fields of `private_key_jwt` client authentication, with a newly
    /// signed assertion: add them to a token, introspection or revocation request.
    pub fn form_fields(&self, key: &PrivateKey) -> Result<ClientAssertionFields, AssertionError> {
        self.form_fields_at(key, unix_now())
    }

    /// [`form_fields`](Self::form_fields), the assertion naming `default_audience`
    /// in `aud` unless an [`audience`](Self::audience) was set: what a client that
    /// knows the server's issuer (or only its token endpoint) sends by default.
    pub fn form_fields_for(
        &self,
        key: &PrivateKey,
        default_audience: &str,
    ) -> Result<ClientAssertionFields, AssertionError> {
        if self.has_audience() {
            self.form_fields(key)
        } else {
            self.clone().audience(default_audience).form_fields(key)
        }
    }

    /// [`form_fields`](Self::form_fields) as if it were `now` (Unix seconds).
    pub fn form_fields_at(
        &self,
        key: &PrivateKey,
        now: i64,
    ) -> Result<ClientAssertionFields, AssertionError> {
        Ok(ClientAssertionFields {
            client_id: self.client_id().to_owned(),
            client_assertion_type: jwtgrant_proto::CLIENT_ASSERTION_TYPE,
            client_assertion: self.sign_at(key, now)?,
        })
    }
}

/// The form fields that authenticate a client with `private_key_jwt` (RFC 7523
/// section 2.2): serialize it as a form of its own, or add its [`pairs`](Self::pairs)
/// to a request's other fields. Its assertion is good for one request.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClientAssertionFields {
    /// The client id: optional in RFC 7523, sent because some servers look the
    /// client up by it before they read the assertion.
    pub client_id: String,
    /// Always `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    pub client_assertion_type: &'static str,
    /// The signed client assertion.
    pub client_assertion: String,
}

impl ClientAssertionFields {
    /// The fields as `(name, value)` pairs, in the order they are sent.
    pub fn pairs(&self) -> [(&'static str, &str); 3] {
        [
            ("client_id", self.client_id.as_str()),
            ("client_assertion_type", self.client_assertion_type),
            ("client_assertion", self.client_assertion.as_str()),
        ]
    }
}

impl std::fmt::Debug for ClientAssertionFields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientAssertionFields")
            .field("client_id", &self.client_id)
            .field("client_assertion_type", &self.client_assertion_type)
            .finish_non_exhaustive()
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwtgrant_core::SigningKey;
    use jwtgrant_core::jws::CompactJws;

    fn key(alg: JwsAlgorithm) -> PrivateKey {
        PrivateKey::new(SigningKey::generate(alg, 2048).unwrap())
    }

    fn decode(token: &str) -> (jwtgrant_core::jws::JoseHeader, Map<String, Value>) {
        let jws = CompactJws::parse(token).unwrap();
        (jws.header().clone(), jws.payload().clone())
    }

    #[test]
    fn docusign_shape() {
        let key = key(JwsAlgorithm::Rs256);
        let token = AssertionBuilder::new("ik")
            .subject("user")
            .audience("account-d.docusign.com")
            .scopes(["signature impersonation"])
            .sign_at(&key, 1_700_000_000)
            .unwrap();
        let (header, claims) = decode(&token);
        assert_eq!(header.alg, JwsAlgorithm::Rs256);
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!(header.kid, None);
        assert_eq!(claims["iss"], "ik");
        assert_eq!(claims["sub"], "user");
        assert_eq!(claims["aud"], "account-d.docusign.com");
        assert_eq!(claims["iat"], 1_700_000_000);
        assert_eq!(claims["exp"], 1_700_003_600);
        assert_eq!(claims["scope"], "signature impersonation");
        assert!(claims["jti"].as_str().is_some_and(|j| j.len() == 36));
    }

    #[test]
    fn several_audiences_no_subject_no_jti_and_extras() {
        let key = key(JwsAlgorithm::Es256).with_kid("k1");
        let token = AssertionBuilder::new("ik")
            .audiences(["a", "b"])
            .jti(false)
            .lifetime(Duration::from_secs(86_400))
            .claim("tenant", "t1")
            .sign_at(&key, 100)
            .unwrap();
        let (header, claims) = decode(&token);
        assert_eq!(header.kid.as_deref(), Some("k1"));
        assert_eq!(claims["aud"], serde_json::json!(["a", "b"]));
        assert_eq!(claims["exp"], 3700, "lifetime capped at one hour");
        assert_eq!(claims["tenant"], "t1");
        for absent in ["sub", "jti", "scope"] {
            assert!(!claims.contains_key(absent), "{absent}");
        }
    }

    #[test]
    fn the_servers_maximum_caps_the_lifetime_in_either_order() {
        let key = key(JwsAlgorithm::EdDsa);
        let exp = |builder: AssertionBuilder| {
            let (_, claims) = decode(&builder.audience("a").sign_at(&key, 1000).unwrap());
            claims["exp"].as_i64().unwrap()
        };
        let base = AssertionBuilder::new("ik");
        assert_eq!(exp(base.clone()), 4600, "default one hour");
        assert_eq!(
            exp(base.clone().max_lifetime(Duration::from_secs(120))),
            1120
        );
        assert_eq!(
            exp(base
                .clone()
                .max_lifetime(Duration::from_secs(120))
                .lifetime(Duration::from_secs(600))),
            1120
        );
        assert_eq!(
            exp(base
                .clone()
                .lifetime(Duration::from_secs(60))
                .max_lifetime(Duration::from_secs(120))),
            1060
        );
        // A server that accepts more lets a longer lifetime through.
        assert_eq!(
            exp(base
                .max_lifetime(Duration::from_secs(7200))
                .lifetime(Duration::from_secs(5400))),
            6400
        );
    }

    #[test]
    fn every_algorithm_signs_with_a_suitable_key() {
        for (alg, key_alg) in [
            (JwsAlgorithm::Rs256, JwsAlgorithm::Rs256),
            (JwsAlgorithm::Rs384, JwsAlgorithm::Rs256),
            (JwsAlgorithm::Rs512, JwsAlgorithm::Rs256),
            (JwsAlgorithm::Ps256, JwsAlgorithm::Rs256),
            (JwsAlgorithm::Es256, JwsAlgorithm::Es256),
            (JwsAlgorithm::Es384, JwsAlgorithm::Es384),
            (JwsAlgorithm::EdDsa, JwsAlgorithm::EdDsa),
        ] {
            let key = key(key_alg);
            let token = AssertionBuilder::new("ik")
                .audience("a")
                .algorithm(alg)
                .sign(&key)
                .unwrap();
            let jws = CompactJws::parse(&token).unwrap();
            assert_eq!(jws.header().alg, alg);
            assert!(
                key.public_key()
                    .verify(alg, jws.signing_input(), jws.signature())
            );
        }
    }

    #[test]
    fn refuses_what_no_server_accepts() {
        let key = key(JwsAlgorithm::EdDsa);
        let base = AssertionBuilder::new("ik").audience("a");
        assert_eq!(
            AssertionBuilder::new("ik").sign(&key),
            Err(AssertionError::MissingAudience)
        );
        assert_eq!(
            AssertionBuilder::new("").audience("a").sign(&key),
            Err(AssertionError::MissingIssuer)
        );
        assert_eq!(
            base.clone().claim("exp", 1).sign(&key),
            Err(AssertionError::ReservedClaim("exp".into()))
        );
        assert!(matches!(
            base.algorithm(JwsAlgorithm::Rs256).sign(&key),
            Err(AssertionError::AlgorithmMismatch { .. })
        ));
    }

    /// The integration `ik` with `key` registered under `kid`, as the server holds it.
    fn registered(key: &PrivateKey, kid: &str) -> jwtgrant_core::model::Integration {
        jwtgrant_core::model::Integration {
            key: "ik".into(),
            name: "Test".into(),
            active: true,
            allow_application_tokens: true,
            require_jti: false,
            scopes: vec![],
            redirect_uris: vec![],
            resources: Vec::new(),
            default_scopes: Vec::new(),
            client_secret_hash: None,
            keys: vec![jwtgrant_core::model::IntegrationKey {
                kid: kid.into(),
                public_key: key.public_key().clone(),
                active: true,
            }],
        }
    }

    fn policy(audience: &str) -> jwtgrant_core::assertion::AssertionPolicy {
        jwtgrant_core::assertion::AssertionPolicy {
            accepted_audiences: vec![audience.into()],
            leeway_secs: 30,
            max_lifetime_secs: 3600,
        }
    }

    #[test]
    fn a_client_assertion_passes_the_cores_client_authentication() {
        let now = 1_700_000_000;
        for alg in [
            JwsAlgorithm::Rs256,
            JwsAlgorithm::Es256,
            JwsAlgorithm::EdDsa,
        ] {
            let key = key(alg).with_kid("k1");
            let fields = ClientAssertionBuilder::new("ik")
                .audience("https://auth.example.com")
                .form_fields_at(&key, now)
                .unwrap();
            assert_eq!(fields.client_id, "ik");
            assert_eq!(
                fields.client_assertion_type,
                jwtgrant_proto::CLIENT_ASSERTION_TYPE
            );
            let (header, claims) = decode(&fields.client_assertion);
            assert_eq!(header.alg, alg);
            assert_eq!(header.kid.as_deref(), Some("k1"));
            assert_eq!(
                header.typ.as_deref(),
                Some(jwtgrant_proto::CLIENT_ASSERTION_TYP)
            );
            assert_eq!(claims["iss"], "ik");
            assert_eq!(claims["sub"], "ik");
            assert_eq!(claims["aud"], "https://auth.example.com");
            assert_eq!(claims["iat"], now);
            assert_eq!(claims["exp"], now + 120, "two minutes by default");
            assert!(!claims.contains_key("scope"));

            let integration = registered(&key, "k1");
            let (client, guard) = jwtgrant_core::client_auth::authenticate_assertion(
                &fields.client_assertion,
                Some(&integration),
                &policy("https://auth.example.com"),
                now + 1,
            )
            .unwrap();
            assert_eq!(client.client_id, "ik");
            assert!(client.confidential);
            assert_eq!(Some(guard.jti.as_str()), claims["jti"].as_str());
            // The same assertion, by the time it has expired, is refused.
            assert!(
                jwtgrant_core::client_auth::authenticate_assertion(
                    &fields.client_assertion,
                    Some(&integration),
                    &policy("https://auth.example.com"),
                    now + 120 + 31,
                )
                .is_err()
            );
        }
    }

    #[test]
    fn every_client_assertion_has_a_fresh_jti() {
        let key = key(JwsAlgorithm::EdDsa);
        let builder = ClientAssertionBuilder::new("ik").audience("a");
        let jtis: std::collections::HashSet<String> = (0..50)
            .map(|_| {
                let (_, claims) = decode(&builder.sign_at(&key, 1000).unwrap());
                claims["jti"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(jtis.len(), 50);
    }

    #[test]
    fn client_assertion_lifetime_audience_and_header() {
        let key = key(JwsAlgorithm::Es256);
        let signed =
            |builder: ClientAssertionBuilder| decode(&builder.sign_at(&key, 1000).unwrap());
        let base = ClientAssertionBuilder::new("ik").audience("first");
        let (_, claims) = signed(base.clone().lifetime(Duration::from_secs(60)));
        assert_eq!(claims["exp"], 1060);
        let (_, claims) = signed(base.clone().lifetime(Duration::from_secs(86_400)));
        assert_eq!(claims["exp"], 4600, "capped at the one-hour maximum");
        let (_, claims) = signed(base.clone().audience("second"));
        assert_eq!(claims["aud"], "second", "audience replaces, never adds");
        let (header, _) = signed(base.clone().typ(None).kid("k9"));
        assert_eq!(header.typ, None);
        assert_eq!(header.kid.as_deref(), Some("k9"));
        assert_eq!(
            ClientAssertionBuilder::new("ik").sign(&key),
            Err(AssertionError::MissingAudience)
        );
        assert!(matches!(
            base.algorithm(JwsAlgorithm::Rs256).sign(&key),
            Err(AssertionError::AlgorithmMismatch { .. })
        ));
    }

    #[test]
    fn the_default_audience_applies_only_when_none_was_set() {
        let key = key(JwsAlgorithm::EdDsa);
        let aud = |builder: &ClientAssertionBuilder| {
            let fields = builder
                .form_fields_for(&key, "https://issuer.example")
                .unwrap();
            let (_, claims) = decode(&fields.client_assertion);
            claims["aud"].clone()
        };
        let unset = ClientAssertionBuilder::new("ik");
        assert_eq!(aud(&unset), "https://issuer.example");
        assert!(
            !unset.has_audience(),
            "the builder itself is left as it was"
        );
        let set = unset.audience("https://issuer.example/oauth/token");
        assert_eq!(aud(&set), "https://issuer.example/oauth/token");
    }

    #[test]
    fn client_assertion_fields_as_a_form() {
        let key = key(JwsAlgorithm::EdDsa);
        let fields = ClientAssertionBuilder::new("ik")
            .audience("a")
            .form_fields(&key)
            .unwrap();
        let pairs = fields.pairs();
        assert_eq!(pairs[0], ("client_id", "ik"));
        assert_eq!(
            pairs[1],
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            )
        );
        assert_eq!(
            pairs[2],
            ("client_assertion", fields.client_assertion.as_str())
        );
        assert!(!format!("{fields:?}").contains(&fields.client_assertion));
    }

    #[test]
    fn scopes_are_deduplicated_and_split() {
        let builder = AssertionBuilder::new("ik").scopes(["signature impersonation", "signature"]);
        assert_eq!(builder.scope_string(), "signature impersonation");
    }
}
