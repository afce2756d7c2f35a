//! The JWT bearer grant with client authentication besides its assertion (RFC 7523
//! section 3.1): without credentials it is the DocuSign-shaped grant; with a client
//! assertion, a secret or a bare `client_id`, that client must be the assertion's
//! integration (else `invalid_grant`), and credentials that fail are 401
//! `invalid_client` as on every grant.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwtgrant_core::jws::sign_compact;
use jwtgrant_core::{JwsAlgorithm, SigningKey};
use jwtgrant_server::credentials::hash_secret;
use serde_json::{Value, json};

use crate::support::*;

const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const SECRET: &str = "the-client-secret-of-integration-a";

/// Two integrations on one server: `a`, whose grant assertions are presented, and
/// `b`, another client with a key of its own. `a` also has a client secret.
struct Two {
    server: TestServer,
    a: (String, String),
    b: (String, String),
}

impl Two {
    async fn start() -> Two {
        let server = TestServer::start().await;
        let a = server
            .add_integration(IntegrationSpec::applications(), &rsa_key())
            .await;
        let b = server
            .add_integration(IntegrationSpec::applications(), &other_rsa_key())
            .await;
        let hash = hash_secret(SECRET).unwrap();
        server
            .store
            .set_integration_secret(&a.0, Some(&hash))
            .await
            .unwrap();
        server.refresh().await;
        Two { server, a, b }
    }

    /// An application-token grant assertion of `a`, with a fresh `jti`.
    fn grant_assertion(&self) -> String {
        let now = now();
        let claims = json!({
            "iss": self.a.0,
            "aud": self.server.host(),
            "iat": now,
            "exp": now + 300,
            "scope": "signature",
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        sign(&rsa_key(), JwsAlgorithm::Rs256, &claims)
    }

    /// A client assertion of the client `(ik, kid)`, signed with `key`.
    fn client_assertion(&self, (ik, kid): &(String, String), key: &SigningKey) -> String {
        let now = now();
        let claims = json!({
            "iss": ik,
            "sub": ik,
            "aud": self.server.url,
            "iat": now,
            "exp": now + 60,
            "jti": uuid::Uuid::new_v4().to_string(),
        });
        sign_compact(key, JwsAlgorithm::Rs256, None, Some(kid), &claims).unwrap()
    }

    async fn grant(&self, extra: &[(&str, &str)], basic: Option<(&str, &str)>) -> (u16, Value) {
        let assertion = self.grant_assertion();
        let mut form = vec![("grant_type", JWT_BEARER), ("assertion", &assertion)];
        form.extend_from_slice(extra);
        let mut request = self
            .server
            .http
            .post(self.server.token_endpoint())
            .form(&form);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn the_assertions_own_integration_may_authenticate_beside_it() {
    let two = Two::start().await;

    // No client credentials: the grant as DocuSign's SDKs send it.
    let (status, body) = two.grant(&[], None).await;
    assert_eq!(status, 200, "{body}");

    // The same integration by private_key_jwt, by a secret (Basic and in the form),
    // or naming itself with a bare client_id.
    let client_assertion = two.client_assertion(&two.a, &rsa_key());
    let private_key_jwt = [
        ("client_assertion_type", CLIENT_ASSERTION_TYPE),
        ("client_assertion", client_assertion.as_str()),
    ];
    let (status, body) = two.grant(&private_key_jwt, None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = two.grant(&[], Some((&two.a.0, SECRET))).await;
    assert_eq!(status, 200, "{body}");
    let post = [("client_id", two.a.0.as_str()), ("client_secret", SECRET)];
    let (status, body) = two.grant(&post, None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = two.grant(&[("client_id", two.a.0.as_str())], None).await;
    assert_eq!(status, 200, "{body}");

    // The token is the assertion's integration's, whichever way it came.
    let payload = body["access_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["client_id"], json!(two.a.0));
}

#[tokio::test]
async fn another_client_may_not_spend_the_assertion() {
    let two = Two::start().await;
    let mismatch = "presenting_client_mismatch: the assertion was issued for another client: its integration is not the client that authenticated this request";

    // b authenticates for real with its own key, and presents a's assertion.
    let client_assertion = two.client_assertion(&two.b, &other_rsa_key());
    let form = [
        ("client_assertion_type", CLIENT_ASSERTION_TYPE),
        ("client_assertion", client_assertion.as_str()),
    ];
    let (status, body) = two.grant(&form, None).await;
    assert_eq!(
        (status, oauth_error(&body)),
        (400, ("invalid_grant", mismatch))
    );

    // A bare client_id naming b is refused the same way.
    let (status, body) = two.grant(&[("client_id", two.b.0.as_str())], None).await;
    assert_eq!(
        (status, oauth_error(&body)),
        (400, ("invalid_grant", mismatch))
    );
}

#[tokio::test]
async fn client_credentials_that_fail_are_invalid_client() {
    let two = Two::start().await;

    // A's client assertion signed with b's key: forged.
    let forged = two.client_assertion(&two.a, &other_rsa_key());
    let form = [
        ("client_assertion_type", CLIENT_ASSERTION_TYPE),
        ("client_assertion", forged.as_str()),
    ];
    let (status, body) = two.grant(&form, None).await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (401, "invalid_client"),
        "{body}"
    );

    // A replayed client assertion: the first use succeeds, the second is refused.
    let once = two.client_assertion(&two.a, &rsa_key());
    let form = [
        ("client_assertion_type", CLIENT_ASSERTION_TYPE),
        ("client_assertion", once.as_str()),
    ];
    assert_eq!(two.grant(&form, None).await.0, 200);
    let (status, body) = two.grant(&form, None).await;
    assert_eq!(
        (status, oauth_error(&body)),
        (
            401,
            (
                "invalid_client",
                "jti_replayed: client assertion refused: its 'jti' has already been used"
            )
        )
    );

    // A wrong secret, and two methods at once.
    let (status, body) = two.grant(&[], Some((&two.a.0, "wrong"))).await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (401, "invalid_client"),
        "{body}"
    );
    let fresh = two.client_assertion(&two.a, &rsa_key());
    let both = [
        ("client_assertion_type", CLIENT_ASSERTION_TYPE),
        ("client_assertion", fresh.as_str()),
    ];
    let (status, body) = two.grant(&both, Some((&two.a.0, SECRET))).await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (400, "invalid_request"),
        "{body}"
    );

    // None of these issued a token, and the server still grants.
    let (status, body) = two.grant(&[], None).await;
    assert_eq!(status, 200, "{body}");
}
