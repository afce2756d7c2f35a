//! JWT client authentication (`private_key_jwt`, RFC 7523 section 2.2) over HTTP:
//! a client assertion signed with an integration's registered key authenticates it
//! at the token endpoint (client credentials, authorization code, refresh) and at
//! introspection; every rule of PROTOCOL.md's "Client authentication" refuses with
//! 401 `invalid_client` and says which rule failed.

use jwtgrant_core::JwsAlgorithm;
use jwtgrant_core::jws::sign_compact;
use jwtgrant_server::RawConfig;
use serde_json::{Value, json};

use crate::support::*;

const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct Client {
    server: TestServer,
    ik: String,
    kid: String,
}

impl Client {
    async fn on(server: TestServer) -> Client {
        // `jti` is not required of its grant assertions: client assertions need one
        // all the same.
        let spec = IntegrationSpec {
            require_jti: false,
            ..IntegrationSpec::applications()
        };
        let (ik, kid) = server.add_integration(spec, &rsa_key()).await;
        Client { server, ik, kid }
    }

    /// Claims a well-behaved client signs: iss = sub = the client, aud the issuer.
    fn claims(&self) -> Value {
        let now = now();
        json!({
            "iss": self.ik,
            "sub": self.ik,
            "aud": self.server.url,
            "iat": now,
            "exp": now + 300,
            "jti": uuid::Uuid::new_v4().to_string(),
        })
    }

    fn sign(&self, claims: &Value, typ: Option<&str>) -> String {
        sign_compact(
            &rsa_key(),
            JwsAlgorithm::Rs256,
            typ,
            Some(&self.kid),
            claims,
        )
        .unwrap()
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let response = self
            .server
            .http
            .post(format!("{}{path}", self.server.url))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn client_credentials(&self, assertion: &str) -> (u16, Value) {
        self.post(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_assertion_type", CLIENT_ASSERTION_TYPE),
                ("client_assertion", assertion),
            ],
        )
        .await
    }
}

#[tokio::test]
async fn a_signed_client_assertion_authenticates_the_client() {
    let client = Client::on(TestServer::start().await).await;
    let (status, body) = client
        .client_credentials(&client.sign(&client.claims(), Some("client-authentication+jwt")))
        .await;
    assert_eq!(status, 200, "{body}");
    let access_token = body["access_token"].as_str().unwrap().to_owned();

    // The token endpoint URL as audience, typ JWT, and client_id in the form.
    let mut claims = client.claims();
    claims["aud"] = json!(client.server.token_endpoint());
    let (status, body) = client
        .post(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &client.ik),
                ("client_assertion_type", CLIENT_ASSERTION_TYPE),
                ("client_assertion", &client.sign(&claims, Some("JWT"))),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // Introspection: a private_key_jwt client counts as confidential.
    let (status, introspected) = client
        .post(
            "/oauth/introspect",
            &[
                ("token", &access_token),
                ("client_assertion_type", CLIENT_ASSERTION_TYPE),
                ("client_assertion", &client.sign(&client.claims(), None)),
            ],
        )
        .await;
    assert_eq!(status, 200, "{introspected}");
    assert_eq!(introspected["active"], true);
    assert_eq!(introspected["client_id"], client.ik.as_str());
}

#[tokio::test]
async fn every_rule_refuses_with_invalid_client() {
    let client = Client::on(TestServer::start().await).await;
    let other_key = other_rsa_key();
    let refused = |assertion: String, says: &'static str| {
        let client = &client;
        async move {
            let response = client
                .server
                .http
                .post(client.server.token_endpoint())
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", CLIENT_ASSERTION_TYPE),
                    ("client_assertion", assertion.as_str()),
                ])
                .send()
                .await
                .unwrap();
            // No Basic challenge: the client did not try Basic.
            let challenge = response.headers().get("www-authenticate").cloned();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            assert_eq!(status, 401, "{says}: {body}");
            assert!(challenge.is_none(), "{says}: {challenge:?}");
            let (code, description) = oauth_error(&body);
            assert_eq!(code, "invalid_client", "{says}: {body}");
            assert!(description.contains(says), "{says}: {description}");
        }
    };
    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = client.claims();
        change(&mut claims);
        client.sign(&claims, None)
    };

    // Forged: signed by a key the integration never registered, under its kid.
    let forged = sign_compact(
        &other_key,
        JwsAlgorithm::Rs256,
        None,
        Some(&client.kid),
        &client.claims(),
    )
    .unwrap();
    refused(forged, "signature").await;
    refused("not.a.jws".into(), "client assertion refused").await;
    refused(
        with(&|c| c["sub"] = json!("someone-else")),
        "'sub' must equal 'iss'",
    )
    .await;
    refused(
        with(&|c| c["aud"] = json!("https://elsewhere.example")),
        "aud",
    )
    .await;
    refused(
        with(&|c| {
            c["iat"] = json!(now() - 600);
            c["exp"] = json!(now() - 300);
        }),
        "expired",
    )
    .await;
    refused(with(&|c| c["exp"] = json!(now() + 7200)), "lifetime").await;
    refused(
        with(&|c| {
            c.as_object_mut().unwrap().remove("jti");
        }),
        "'jti' is required",
    )
    .await;
    refused(
        client.sign(&client.claims(), Some("at+jwt")),
        "'typ' must be client-authentication+jwt or JWT",
    )
    .await;
    let once = client.sign(&client.claims(), None);
    assert_eq!(client.client_credentials(&once).await.0, 200);
    refused(once, "already been used").await;
    // An unknown client.
    let mut stranger = client.claims();
    stranger["iss"] = json!("no-such-integration");
    stranger["sub"] = json!("no-such-integration");
    refused(client.sign(&stranger, None), "client authentication failed").await;

    // A disabled key stops authenticating once the registry has seen it.
    client
        .server
        .store
        .set_integration_key_active(&client.ik, &client.kid, false)
        .await
        .unwrap();
    client.server.refresh().await;
    refused(
        client.sign(&client.claims(), None),
        "client assertion refused",
    )
    .await;
}

#[tokio::test]
async fn two_methods_or_a_wrong_type_are_refused() {
    let client = Client::on(TestServer::start().await).await;
    let assertion = client.sign(&client.claims(), None);
    let (status, body) = client
        .post(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_secret", "also a secret"),
                ("client_id", &client.ik),
                ("client_assertion_type", CLIENT_ASSERTION_TYPE),
                ("client_assertion", &assertion),
            ],
        )
        .await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (400, "invalid_request"),
        "{body}"
    );
    let (status, body) = client
        .post(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", "another-client"),
                ("client_assertion_type", CLIENT_ASSERTION_TYPE),
                ("client_assertion", &assertion),
            ],
        )
        .await;
    // A failed client assertion rule, like every other: 401 invalid_client.
    assert_eq!(
        oauth_error(&body),
        (
            "invalid_client",
            "client assertion refused: 'client_id' in the form must equal its 'iss'"
        )
    );
    assert_eq!(status, 401);
    let (status, body) = client
        .post(
            "/oauth/token",
            &[
                ("grant_type", "client_credentials"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
                ),
                ("client_assertion", &assertion),
            ],
        )
        .await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (401, "invalid_client"),
        "{body}"
    );
    // The assertion was never accepted, so it still works once.
    assert_eq!(client.client_credentials(&assertion).await.0, 200);
}

#[tokio::test]
async fn the_token_endpoint_audience_is_refused_when_strict() {
    let server = TestServer::start_with(RawConfig {
        strict_client_assertion_audience: Some(true),
        ..Default::default()
    })
    .await;
    let client = Client::on(server).await;
    let mut claims = client.claims();
    claims["aud"] = json!(client.server.token_endpoint());
    let (status, body) = client.client_credentials(&client.sign(&claims, None)).await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (401, "invalid_client"),
        "{body}"
    );
    assert_eq!(
        client
            .client_credentials(&client.sign(&client.claims(), None))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn concurrent_copies_of_one_client_assertion_give_one_token() {
    let client = Client::on(TestServer::start().await).await;
    let assertion = client.sign(&client.claims(), None);
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..24 {
        let http = client.server.http.clone();
        let url = client.server.token_endpoint();
        let assertion = assertion.clone();
        attempts.spawn(async move {
            http.post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", CLIENT_ASSERTION_TYPE),
                    ("client_assertion", &assertion),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    let statuses: Vec<u16> = attempts.join_all().await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        23,
        "{statuses:?}"
    );
}
