//! This server as an OpenID Connect provider and the enterprise identity provider of
//! cross-app access, over real HTTP: ID tokens on the code flow (`nonce`,
//! `auth_time`, `at_hash`, verified against the published JWKS), `prompt` and
//! `max_age` honoured, a fresh ID token on refresh; and the token exchange of an ID
//! token for an ID-JAG under the operator's trust targets, with every refusal the
//! issue lists answered 4xx and nothing issued.

use jwtgrant_core::JwsAlgorithm;
use jwtgrant_core::id_token::{at_hash, verify_subject_token};
use jwtgrant_core::jwks::parse_jwks;
use jwtgrant_core::jws::{CompactJws, sign_compact};
use jwtgrant_proto::{ID_JAG_TOKEN_TYPE, ID_JAG_TYP, ID_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT_TYPE};
use jwtgrant_server::credentials::hash_secret;
use jwtgrant_store::{IntegrationUpdate, TrustTargetRecord};
use serde_json::{Value, json};

use crate::support::*;

const REDIRECT: &str = "http://127.0.0.1:9/callback";
const SECRET: &str = "the agent's client secret, long enough";
const PASSWORD: &str = "correct horse battery staple";
const B: &str = "https://b.example.com";
const MCP: &str = "https://mcp.b.example.com/mcp";
const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct Provider {
    server: TestServer,
    /// The agent: a confidential client with a secret and an RSA key.
    agent: String,
    agent_kid: String,
    /// Another confidential client.
    other: String,
    user_id: String,
    email: String,
}

async fn client(server: &TestServer) -> (String, String) {
    let spec = IntegrationSpec {
        allow_application_tokens: false,
        require_jti: false,
        scopes: vec!["openid".into(), "signature".into()],
    };
    let (key, kid) = server.add_integration(spec, &rsa_key()).await;
    let store = &server.store;
    store
        .set_integration_secret(&key, Some(&hash_secret(SECRET).unwrap()))
        .await
        .unwrap();
    let update = IntegrationUpdate {
        redirect_uris: Some(vec![REDIRECT.into()]),
        ..IntegrationUpdate::default()
    };
    store.update_integration(&key, update).await.unwrap();
    (key, kid)
}

impl Provider {
    async fn start() -> Provider {
        let server = TestServer::start().await;
        let (agent, agent_kid) = client(&server).await;
        let (other, _) = client(&server).await;
        let user_id = add_user(server.store.as_ref()).await;
        server
            .store
            .set_user_password(&user_id, Some(&hash_secret(PASSWORD).unwrap()))
            .await
            .unwrap();
        for integration_key in [&agent, &other] {
            server
                .store
                .add_trust_target(&TrustTargetRecord {
                    audience: B.into(),
                    integration_key: integration_key.clone(),
                    remote_client_id: format!("{integration_key}@b"),
                    resources: vec![MCP.into()],
                    scopes: vec!["mcp:tools".into(), "files:read".into()],
                    created_at: now(),
                })
                .await
                .unwrap();
        }
        server.refresh().await;
        let email = format!("{user_id}@example.com");
        Provider {
            server,
            agent,
            agent_kid,
            other,
            user_id,
            email,
        }
    }

    fn auth_url(&self, client_id: &str, extra: &[(&str, &str)]) -> String {
        let mut pairs = vec![
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("scope", "openid signature"),
            ("state", "st-1"),
        ];
        for (name, value) in extra {
            pairs.retain(|(n, _)| n != name);
            pairs.push((name, value));
        }
        reqwest::Url::parse_with_params(&format!("{}/oauth/auth", self.server.url), &pairs)
            .unwrap()
            .to_string()
    }

    async fn token(&self, basic: Option<&str>, form: &[(&str, &str)]) -> (u16, Value) {
        let mut request = self
            .server
            .http
            .post(self.server.token_endpoint())
            .form(form);
        if let Some(client) = basic {
            request = request.basic_auth(client, Some(SECRET));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Signs in (if asked), consents, and redeems the code: the token response.
    async fn sign_in(&self, browser: &mut Browser, client: &str, extra: &[(&str, &str)]) -> Value {
        let location = browser
            .approve(
                &self.server.url,
                &self.auth_url(client, extra),
                &self.email,
                PASSWORD,
            )
            .await;
        let code = query_param(&location, "code").unwrap_or_else(|| panic!("{location}"));
        let (status, body) = self
            .token(
                Some(client),
                &[("grant_type", "authorization_code"), ("code", &code)],
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Verifies an ID token with the keys the server publishes, for `client`.
    async fn verify_id_token(&self, token: &str, client: &str) -> Value {
        let jwks = self.server.get("/oauth/jwks").await.bytes().await.unwrap();
        let set = parse_jwks(&jwks, &JwsAlgorithm::ALL).unwrap();
        verify_subject_token(
            token,
            |kid| {
                set.keys
                    .iter()
                    .find(|k| k.kid == kid)
                    .map(|k| (&k.public_key, None))
            },
            &self.server.url,
            client,
            0,
            now(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        jwt_claims(token)
    }

    fn client_assertion(&self) -> String {
        let now = now();
        let claims = json!({
            "iss": self.agent, "sub": self.agent, "aud": self.server.url,
            "iat": now, "exp": now + 300, "jti": uuid::Uuid::new_v4().to_string(),
        });
        sign_compact(
            &rsa_key(),
            JwsAlgorithm::Rs256,
            None,
            Some(&self.agent_kid),
            &claims,
        )
        .unwrap()
    }
}

fn exchange_form<'a>(id_token: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut form = vec![
        ("grant_type", TOKEN_EXCHANGE_GRANT_TYPE),
        ("requested_token_type", ID_JAG_TOKEN_TYPE),
        ("subject_token", id_token),
        ("subject_token_type", ID_TOKEN_TYPE),
        ("audience", B),
        ("resource", MCP),
        ("scope", "mcp:tools admin"),
    ];
    for (name, value) in extra {
        form.retain(|(n, _)| n != name);
        if !value.is_empty() {
            form.push((name, value));
        }
    }
    form
}

#[tokio::test]
async fn the_code_flow_with_openid_returns_an_id_token_bound_to_the_nonce() {
    let p = Provider::start().await;
    let mut browser = Browser::new();
    let before = now();
    let first = p
        .sign_in(&mut browser, &p.agent, &[("nonce", "n-0S6_WzA2Mj")])
        .await;
    let id_token = first["id_token"].as_str().unwrap();
    let claims = p.verify_id_token(id_token, &p.agent).await;
    assert_eq!(claims["iss"], p.server.url.as_str());
    assert_eq!(claims["sub"], p.user_id.as_str());
    assert_eq!(claims["aud"], p.agent.as_str());
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    let auth_time = claims["auth_time"].as_i64().unwrap();
    assert!(auth_time >= before - 1 && auth_time <= now(), "{claims}");
    assert_eq!(
        claims["at_hash"],
        at_hash(first["access_token"].as_str().unwrap(), JwsAlgorithm::Es256).as_str()
    );
    let header = CompactJws::parse(id_token).unwrap().header().clone();
    assert_eq!(header.typ.as_deref(), Some("JWT"));

    // The refresh grant returns a fresh ID token of the same sign-in, with no nonce.
    let (status, refreshed) = p
        .token(
            Some(&p.agent),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", first["refresh_token"].as_str().unwrap()),
            ],
        )
        .await;
    assert_eq!(status, 200, "{refreshed}");
    let again = p
        .verify_id_token(refreshed["id_token"].as_str().unwrap(), &p.agent)
        .await;
    assert_eq!(again["auth_time"].as_i64(), Some(auth_time));
    assert!(again.get("nonce").is_none(), "{again}");
    assert_eq!(
        again["at_hash"],
        at_hash(
            refreshed["access_token"].as_str().unwrap(),
            JwsAlgorithm::Es256
        )
        .as_str()
    );

    // Without `openid`, no ID token.
    let plain = p
        .sign_in(&mut browser, &p.agent, &[("scope", "signature")])
        .await;
    assert!(plain.get("id_token").is_none(), "{plain}");
}

#[tokio::test]
async fn prompt_none_login_consent_and_max_age_are_honoured() {
    let p = Provider::start().await;
    let mut browser = Browser::new();
    let error_of = |page: &Page| {
        let location = page.location();
        assert_eq!(page.status, 303, "{}", page.body);
        assert!(location.starts_with(REDIRECT), "{location}");
        assert_eq!(query_param(&location, "state").as_deref(), Some("st-1"));
        query_param(&location, "error")
    };
    // prompt=none: no page; signed out it is login_required.
    let none = p.auth_url(&p.agent, &[("prompt", "none")]);
    assert_eq!(
        error_of(&browser.get(&none).await).as_deref(),
        Some("login_required")
    );
    // A bad prompt is a malformed request, sent back.
    let bad = browser
        .get(&p.auth_url(&p.agent, &[("prompt", "none login")]))
        .await;
    assert_eq!(error_of(&bad).as_deref(), Some("invalid_request"));

    // Signed in but without consent: consent_required.
    let login = browser.get(&p.auth_url(&p.agent, &[])).await;
    let signed_in = browser
        .sign_in(&p.server.url, &login, &p.email, PASSWORD)
        .await;
    assert_eq!(signed_in.status, 303);
    assert_eq!(
        error_of(&browser.get(&none).await).as_deref(),
        Some("consent_required")
    );
    // Consent given once: prompt=none is answered with a code.
    let first = p.sign_in(&mut browser, &p.agent, &[]).await;
    let first_auth_time = jwt_claims(first["id_token"].as_str().unwrap())["auth_time"]
        .as_i64()
        .unwrap();
    let page = browser.get(&none).await;
    assert!(
        query_param(&page.location(), "code").is_some(),
        "{}",
        page.location()
    );

    // prompt=consent: the consent page again, though consent is on record.
    let page = browser
        .get(&p.auth_url(&p.agent, &[("prompt", "consent")]))
        .await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"consent\""), "{}", page.body);

    // prompt=login: the sign-in page though signed in; asking again without
    // signing in is the sign-in page again (the demand is not dropped); after
    // signing in, a code whose ID token has the new sign-in's time.
    let url = p.auth_url(&p.agent, &[("prompt", "login")]);
    let page = browser.get(&url).await;
    assert!(page.body.contains("id=\"login\""), "{}", page.body);
    assert!(
        browser.get(&url).await.body.contains("id=\"login\""),
        "prompt=login skipped"
    );
    p.server.state.clock.advance(5);
    let renewed = p
        .sign_in(&mut browser, &p.agent, &[("prompt", "login")])
        .await;
    let renewed_auth_time = jwt_claims(renewed["id_token"].as_str().unwrap())["auth_time"]
        .as_i64()
        .unwrap();
    assert!(renewed_auth_time > first_auth_time, "{renewed}");

    // max_age: a sign-in older than it means signing in again.
    p.server.state.clock.advance(120);
    let page = browser
        .get(&p.auth_url(&p.agent, &[("max_age", "60")]))
        .await;
    assert!(page.body.contains("id=\"login\""), "{}", page.body);
    let page = browser
        .get(&p.auth_url(&p.agent, &[("max_age", "600")]))
        .await;
    assert!(
        query_param(&page.location(), "code").is_some(),
        "{}",
        page.location()
    );
    let page = browser
        .get(&p.auth_url(&p.agent, &[("max_age", "60"), ("prompt", "none")]))
        .await;
    assert_eq!(error_of(&page).as_deref(), Some("login_required"));
    let page = browser
        .get(&p.auth_url(&p.agent, &[("max_age", "soon")]))
        .await;
    assert_eq!(error_of(&page).as_deref(), Some("invalid_request"));
}

#[tokio::test]
async fn an_id_token_is_exchanged_for_an_id_jag_within_the_trust_target() {
    let p = Provider::start().await;
    let mut browser = Browser::new();
    let signed_in = p.sign_in(&mut browser, &p.agent, &[]).await;
    let id_token = signed_in["id_token"].as_str().unwrap();
    let auth_time = jwt_claims(id_token)["auth_time"].clone();

    let (status, body) = p.token(Some(&p.agent), &exchange_form(id_token, &[])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["issued_token_type"], ID_JAG_TOKEN_TYPE);
    assert_eq!(body["token_type"], "N_A");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["scope"], "mcp:tools");
    let id_jag = body["access_token"].as_str().unwrap();
    let jws = CompactJws::parse(id_jag).unwrap();
    assert_eq!(jws.header().typ.as_deref(), Some(ID_JAG_TYP));
    let claims = jwt_claims(id_jag);
    assert_eq!(claims["iss"], p.server.url.as_str());
    assert_eq!(claims["sub"], p.user_id.as_str());
    assert_eq!(claims["aud"], B);
    assert_eq!(claims["client_id"], format!("{}@b", p.agent));
    assert_eq!(claims["resource"], MCP);
    assert_eq!(claims["scope"], "mcp:tools");
    assert_eq!(claims["auth_time"], auth_time);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    // The ID-JAG is no access token here.
    let userinfo = p
        .server
        .http
        .get(format!("{}/oauth/userinfo", p.server.url))
        .bearer_auth(id_jag)
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status().as_u16(), 401);

    // private_key_jwt authenticates the exchange too.
    let assertion = p.client_assertion();
    let mut form = exchange_form(id_token, &[]);
    form.extend([
        ("client_assertion_type", CLIENT_ASSERTION_TYPE),
        ("client_assertion", assertion.as_str()),
    ]);
    let (status, body) = p.token(None, &form).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn every_bad_exchange_is_refused_and_issues_nothing() {
    let p = Provider::start().await;
    let mut browser = Browser::new();
    let id_token = p.sign_in(&mut browser, &p.agent, &[]).await["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let others = p.sign_in(&mut browser, &p.other, &[]).await["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // An ID token of the right shape signed by a key that is not this server's.
    let mut claims = jwt_claims(&id_token);
    claims["jti"] = json!("forged");
    let header = CompactJws::parse(&id_token).unwrap().header().clone();
    let foreign = sign_compact(
        &jwtgrant_core::SigningKey::generate(JwsAlgorithm::Es256, 0).unwrap(),
        JwsAlgorithm::Es256,
        Some("JWT"),
        header.kid.as_deref(),
        &claims,
    )
    .unwrap();
    let access_token = p.sign_in(&mut browser, &p.agent, &[]).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // What is sent, the form, the error and the rule its description leads with.
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            "another client's ID token",
            exchange_form(&others, &[]),
            "invalid_grant",
            "subject_token_client_mismatch:",
        ),
        (
            "a foreign ID token",
            exchange_form(&foreign, &[]),
            "invalid_grant",
            "subject_token_invalid:",
        ),
        (
            "an access token as the subject token",
            exchange_form(&access_token, &[]),
            "invalid_grant",
            "subject_token_invalid:",
        ),
        (
            "an audience without a trust target",
            exchange_form(&id_token, &[("audience", "https://c.example.com")]),
            "invalid_target",
            "audience_not_trusted:",
        ),
        (
            "a resource not in the trust target",
            exchange_form(
                &id_token,
                &[("resource", "https://mcp.b.example.com/other")],
            ),
            "invalid_target",
            "resource_not_allowed:",
        ),
        (
            "only scopes the trust target lacks",
            exchange_form(&id_token, &[("scope", "admin")]),
            "invalid_scope",
            "scope_not_in_trust_target:",
        ),
        (
            "a subject token type that is not supported",
            exchange_form(
                &id_token,
                &[(
                    "subject_token_type",
                    "urn:ietf:params:oauth:token-type:access_token",
                )],
            ),
            "invalid_request",
            "subject_token_type_unsupported:",
        ),
        (
            "no requested token type",
            exchange_form(&id_token, &[("requested_token_type", "")]),
            "invalid_request",
            "requested_token_type_unsupported:",
        ),
        (
            "no audience",
            exchange_form(&id_token, &[("audience", "")]),
            "invalid_request",
            "audience_required:",
        ),
        (
            "an actor token",
            exchange_form(&id_token, &[("actor_token", "x")]),
            "invalid_request",
            "actor_token_unsupported:",
        ),
    ];
    for (what, form, error, rule) in cases {
        let (status, body) = p.token(Some(&p.agent), &form).await;
        assert_eq!(status, 400, "{what}: {body}");
        let (code, description) = oauth_error(&body);
        assert_eq!(code, error, "{what}: {body}");
        assert!(description.starts_with(rule), "{what}: {body}");
    }

    // Two audiences in one request.
    let mut form = exchange_form(&id_token, &[]);
    form.push(("audience", "https://c.example.com"));
    let (status, body) = p.token(Some(&p.agent), &form).await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (400, "invalid_request"),
        "{body}"
    );

    // No client authentication, or a public client's bare client_id: 401.
    let (status, body) = p.token(None, &exchange_form(&id_token, &[])).await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (401, "invalid_client"),
        "{body}"
    );
    let mut form = exchange_form(&id_token, &[]);
    form.push(("client_id", &p.agent));
    let (status, body) = p.token(None, &form).await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (401, "invalid_client"),
        "{body}"
    );

    // A replayed request (the same client assertion again) is refused.
    let assertion = p.client_assertion();
    let mut form = exchange_form(&id_token, &[]);
    form.extend([
        ("client_assertion_type", CLIENT_ASSERTION_TYPE),
        ("client_assertion", assertion.as_str()),
    ]);
    let (status, body) = p.token(None, &form).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = p.token(None, &form).await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (401, "invalid_client"),
        "{body}"
    );

    // An expired ID token.
    p.server.state.clock.advance(7200);
    let (status, body) = p
        .token(Some(&p.agent), &exchange_form(&id_token, &[]))
        .await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (400, "invalid_grant"),
        "{body}"
    );
    assert!(
        oauth_error(&body).1.starts_with("subject_token_expired:"),
        "{body}"
    );
    // A removed trust target gets nothing more.
    p.server.state.clock.advance(-7200);
    p.server
        .store
        .remove_trust_target(B, &p.agent)
        .await
        .unwrap();
    let (status, body) = p
        .token(Some(&p.agent), &exchange_form(&id_token, &[]))
        .await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (400, "invalid_target"),
        "{body}"
    );
    assert_eq!(p.server.refused("server_error"), 0);
}
