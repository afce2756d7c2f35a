//! JWT client authentication (`private_key_jwt`, RFC 7523 section 2.2) over HTTP:
//! a client assertion signed with an integration's registered key authenticates it
//! at the token endpoint (client credentials, authorization code, refresh), at
//! introspection and at revocation; every rule of PROTOCOL.md's "Client
//! authentication" refuses with 401 `invalid_client` and says which rule failed.

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
            "client_assertion_client_id: client assertion refused: 'client_id' in the form must equal its 'iss'"
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

/// The redirect URI the kit registers for its integrations.
const REDIRECT: &str = "http://localhost:9000/callback";
const PASSWORD: &str = "correct horse battery staple";
/// RFC 7636 appendix B's verifier.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

impl Client {
    /// A user with a password, seen by the server: the user's email.
    async fn user(&self) -> String {
        let user_id = self.server.add_user(None).await;
        let hash = jwtgrant_server::credentials::hash_secret(PASSWORD).unwrap();
        self.server
            .store
            .set_user_password(&user_id, Some(&hash))
            .await
            .unwrap();
        self.server.refresh().await;
        format!("{user_id}@example.com")
    }

    /// An authorization code of this client for the user `email`, who signs in and
    /// allows in a browser; PKCE, since the integration has no secret.
    async fn code(&self, email: &str) -> String {
        let challenge = jwtgrant_core::pkce::s256_challenge(VERIFIER);
        let url = reqwest::Url::parse_with_params(
            &format!("{}/oauth/auth", self.server.url),
            &[
                ("response_type", "code"),
                ("client_id", self.ik.as_str()),
                ("redirect_uri", REDIRECT),
                ("scope", "signature impersonation"),
                ("state", "st-1"),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
            ],
        )
        .unwrap();
        let location = Browser::new()
            .approve(&self.server.url, url.as_str(), email, PASSWORD)
            .await;
        assert!(location.starts_with(REDIRECT), "{location}");
        query_param(&location, "code").unwrap()
    }

    /// POSTs `form` with `assertion` as the client authentication.
    async fn with_assertion(
        &self,
        path: &str,
        form: &[(&str, &str)],
        assertion: &str,
    ) -> (u16, Value) {
        let mut form = form.to_vec();
        form.extend([
            ("client_assertion_type", CLIENT_ASSERTION_TYPE),
            ("client_assertion", assertion),
        ]);
        self.post(path, &form).await
    }

    /// POSTs `form` to the token endpoint with `assertion`.
    async fn token(&self, form: &[(&str, &str)], assertion: &str) -> (u16, Value) {
        self.with_assertion("/oauth/token", form, assertion).await
    }

    /// A client assertion as a well-behaved client signs it, new each time.
    fn assertion(&self) -> String {
        self.sign(&self.claims(), Some("client-authentication+jwt"))
    }
}

fn field(body: &Value, name: &str) -> String {
    body[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        .to_owned()
}

#[tokio::test]
async fn the_code_and_refresh_grants_authenticate_with_a_client_assertion() {
    let client = Client::on(TestServer::start().await).await;
    let email = client.user().await;
    let code = client.code(&email).await;

    let (status, issued) = client
        .token(
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", VERIFIER),
            ],
            &client.assertion(),
        )
        .await;
    assert_eq!(status, 200, "{issued}");
    assert_eq!(issued["scope"], "signature impersonation");
    let refresh = field(&issued, "refresh_token");

    // The refresh grant with a client assertion: rotated.
    let used = client.assertion();
    let (status, refreshed) = client
        .token(
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
            &used,
        )
        .await;
    assert_eq!(status, 200, "{refreshed}");
    let next = field(&refreshed, "refresh_token");
    assert_ne!(next, refresh);

    // A replayed client assertion is refused before the grant is looked at: the
    // refresh token is not used up, and a fresh assertion then refreshes it.
    let next_grant = [
        ("grant_type", "refresh_token"),
        ("refresh_token", next.as_str()),
    ];
    let (status, body) = client.token(&next_grant, &used).await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (401, "invalid_client"),
        "{body}"
    );
    assert!(oauth_error(&body).1.contains("already been used"), "{body}");
    let (status, body) = client.token(&next_grant, &client.assertion()).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn another_integrations_client_assertion_cannot_redeem_this_ones_code() {
    let client = Client::on(TestServer::start().await).await;
    let email = client.user().await;
    let code = client.code(&email).await;
    // Another integration, authenticating as itself with its own key.
    let other_key = other_rsa_key();
    let (other_ik, other_kid) = client
        .server
        .add_integration(IntegrationSpec::default(), &other_key)
        .await;
    let other_assertion = || {
        let now = now();
        sign_compact(
            &other_key,
            JwsAlgorithm::Rs256,
            None,
            Some(&other_kid),
            &json!({
                "iss": other_ik, "sub": other_ik, "aud": client.server.url,
                "iat": now, "exp": now + 300, "jti": uuid::Uuid::new_v4().to_string(),
            }),
        )
        .unwrap()
    };
    let grant = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let (status, body) = client
        .with_assertion("/oauth/token", &grant, &other_assertion())
        .await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (400, "invalid_grant"),
        "{body}"
    );
    assert!(oauth_error(&body).1.contains("another client"), "{body}");
    // Nor may it pass as this integration: its key is not this one's.
    let forged = sign_compact(
        &other_key,
        JwsAlgorithm::Rs256,
        None,
        Some(&other_kid),
        &client.claims(),
    )
    .unwrap();
    let (status, body) = client.with_assertion("/oauth/token", &grant, &forged).await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (401, "invalid_client"),
        "{body}"
    );

    // The code is still this integration's, and so are its refresh tokens.
    let (status, issued) = client
        .with_assertion("/oauth/token", &grant, &client.assertion())
        .await;
    assert_eq!(status, 200, "{issued}");
    let refresh = field(&issued, "refresh_token");
    let (status, body) = client
        .with_assertion(
            "/oauth/token",
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
            &other_assertion(),
        )
        .await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (400, "invalid_grant"),
        "{body}"
    );
}

#[tokio::test]
async fn revocation_with_a_client_assertion() {
    let client = Client::on(TestServer::start().await).await;
    let email = client.user().await;
    let code = client.code(&email).await;
    let (status, issued) = client
        .with_assertion(
            "/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", VERIFIER),
            ],
            &client.assertion(),
        )
        .await;
    assert_eq!(status, 200, "{issued}");
    let access = field(&issued, "access_token");
    let refresh = field(&issued, "refresh_token");
    let introspect = |token: String| {
        let client = &client;
        async move {
            client
                .with_assertion(
                    "/oauth/introspect",
                    &[("token", &token)],
                    &client.assertion(),
                )
                .await
        }
    };
    let (status, info) = introspect(access.clone()).await;
    assert_eq!(
        (status, info["active"].clone()),
        (200, json!(true)),
        "{info}"
    );

    // Revoking the access token: inactive at introspection.
    let (status, body) = client
        .with_assertion("/oauth/revoke", &[("token", &access)], &client.assertion())
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, info) = introspect(access.clone()).await;
    assert_eq!((status, info), (200, json!({"active": false})));
    // The refresh token lives on until it is revoked too.
    let (_, info) = introspect(refresh.clone()).await;
    assert_eq!(info["active"], true, "{info}");
    let (status, _) = client
        .with_assertion(
            "/oauth/revoke",
            &[("token", &refresh), ("token_type_hint", "refresh_token")],
            &client.assertion(),
        )
        .await;
    assert_eq!(status, 200);
    let (_, info) = introspect(refresh.clone()).await;
    assert_eq!(info, json!({"active": false}));
    let (status, body) = client
        .with_assertion(
            "/oauth/token",
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
            &client.assertion(),
        )
        .await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (400, "invalid_grant"),
        "{body}"
    );

    // A refused client assertion revokes nothing.
    let (status, body) = client
        .with_assertion("/oauth/revoke", &[("token", &access)], "not.a.jws")
        .await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (401, "invalid_client"),
        "{body}"
    );
}
