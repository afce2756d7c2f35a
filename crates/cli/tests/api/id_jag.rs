//! Cross-app access over HTTP, this server as the MCP server's authorization
//! server: an enterprise IdP (run on loopback by the test) signs ID-JAGs for a user,
//! the agent's confidential client presents them with the JWT bearer grant, and
//! every refusal of PROTOCOL.md's "Cross-app access: ID-JAG" is answered as it says.

use jwtgrant_proto::ID_JAG_TYP;
use jwtgrant_server::RawConfig;
use jwtgrant_server::credentials::hash_secret;
use jwtgrant_store::IntegrationUpdate;
use serde_json::{Value, json};

use crate::support::*;

const SECRET: &str = "the agent's client secret";
const MCP: &str = "https://mcp.example.com/mcp";
const IDP_SUBJECT: &str = "00u1abcd";

/// A server trusting an IdP with `--id-jag` for the agent's integration, whose
/// user is linked to the IdP's subject.
struct CrossApp {
    server: TestServer,
    idp: TestIdp,
    agent: String,
    user_id: String,
}

impl CrossApp {
    async fn start() -> CrossApp {
        let server = TestServer::start_with(RawConfig {
            allow_insecure_issuer_urls: Some(true),
            ..RawConfig::default()
        })
        .await;
        let spec = IntegrationSpec {
            allow_application_tokens: false,
            require_jti: false,
            scopes: vec!["mcp:tools".into(), "files:read".into()],
        };
        let (agent, _) = server.add_integration(spec, &rsa_key()).await;
        let store = &server.store;
        store
            .set_integration_secret(&agent, Some(&hash_secret(SECRET).unwrap()))
            .await
            .unwrap();
        let update = IntegrationUpdate {
            resources: Some(vec![MCP.into(), "https://files.example.com".into()]),
            ..IntegrationUpdate::default()
        };
        store.update_integration(&agent, update).await.unwrap();
        // A user with no consent record: the IdP's policy stands for it.
        let user_id = add_user(store.as_ref()).await;
        let idp = TestIdp::with_rsa_key().await;
        let added = admin(
            server.dir.path(),
            &[
                "issuer",
                "add",
                "--issuer",
                idp.url(),
                "--integration",
                &agent,
                "--jwks-uri",
                &idp.jwks_uri(),
                "--subject",
                "user",
                "--id-jag",
                "--allow-insecure-issuer-urls",
            ],
        );
        let issuer_id = added["issuer_id"].as_str().unwrap().to_owned();
        admin(
            server.dir.path(),
            &[
                "user",
                "link",
                &user_id,
                "--issuer",
                &issuer_id,
                "--subject",
                IDP_SUBJECT,
            ],
        );
        server.refresh().await;
        CrossApp {
            server,
            idp,
            agent,
            user_id,
        }
    }

    /// An ID-JAG's claims as the IdP issues them for this server and the agent.
    fn claims(&self) -> Value {
        let now = now();
        json!({
            "iss": self.idp.url(), "sub": IDP_SUBJECT, "aud": self.server.url,
            "client_id": self.agent, "jti": uuid::Uuid::new_v4().to_string(),
            "iat": now, "exp": now + 300, "scope": "mcp:tools files:read",
            "resource": MCP, "auth_time": now - 30,
        })
    }

    fn with(&self, over: Value) -> Value {
        let mut claims = self.claims();
        for (name, value) in over.as_object().unwrap() {
            if value == "__remove__" {
                claims.as_object_mut().unwrap().remove(name);
            } else {
                claims[name] = value.clone();
            }
        }
        claims
    }

    fn sign(&self, claims: &Value) -> String {
        self.idp.sign("key-1", Some(ID_JAG_TYP), json!({}), claims)
    }

    /// The JWT bearer grant with `id_jag`, the agent authenticated by `basic`.
    async fn present(
        &self,
        id_jag: &str,
        basic: Option<(&str, &str)>,
        extra: &[(&str, &str)],
    ) -> (u16, Value, Option<String>) {
        let mut form = vec![("grant_type", JWT_BEARER), ("assertion", id_jag)];
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
        let challenge = response
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned());
        (
            status,
            response.json().await.unwrap_or(Value::Null),
            challenge,
        )
    }

    async fn as_agent(&self, id_jag: &str, extra: &[(&str, &str)]) -> (u16, Value) {
        let (status, body, _) = self
            .present(id_jag, Some((&self.agent, SECRET)), extra)
            .await;
        (status, body)
    }
}

#[tokio::test]
async fn an_agent_trades_an_id_jag_for_a_token_for_the_mcp_server_again_until_it_expires() {
    let app = CrossApp::start().await;
    let id_jag = app.sign(&app.claims());
    let (status, body) = app.as_agent(&id_jag, &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["scope"], "mcp:tools files:read");
    assert!(
        body.get("refresh_token").is_none(),
        "no refresh token: {body}"
    );
    let claims = jwt_claims(body["access_token"].as_str().unwrap());
    assert_eq!(claims["sub"], app.user_id.as_str());
    assert_eq!(claims["client_id"], app.agent.as_str());
    assert_eq!(claims["aud"], MCP, "the ID-JAG's resource is the audience");

    // The same ID-JAG again, until `exp`; the request's scope narrows, and a scope
    // the ID-JAG lacks is dropped.
    let (status, again) = app.as_agent(&id_jag, &[("scope", "mcp:tools admin")]).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["scope"], "mcp:tools");

    // The metadata says the profile is accepted.
    let metadata: Value = app
        .server
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        metadata["authorization_grant_profiles_supported"],
        json!(["urn:ietf:params:oauth:grant-profile:id-jag"])
    );
}

#[tokio::test]
async fn without_client_authentication_an_id_jag_is_invalid_client() {
    let app = CrossApp::start().await;
    let id_jag = app.sign(&app.claims());
    let (status, body, challenge) = app.present(&id_jag, None, &[]).await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (401, "invalid_client"),
        "{body}"
    );
    assert!(
        oauth_error(&body)
            .1
            .starts_with("client_authentication_required:")
    );
    // As for any request that needs a client and names none: how to authenticate.
    assert_eq!(challenge.as_deref(), Some("Basic realm=\"jwtgrant\""));
    // A public client's `client_id` alone authenticates nothing.
    let (status, body, _) = app
        .present(&id_jag, None, &[("client_id", app.agent.as_str())])
        .await;
    assert_eq!(status, 401, "{body}");
    // A wrong secret is refused as every wrong secret is.
    let (status, _, challenge) = app.present(&id_jag, Some((&app.agent, "wrong")), &[]).await;
    assert_eq!(status, 401);
    assert!(challenge.is_some_and(|c| c.starts_with("Basic")));
}

#[tokio::test]
async fn every_bad_id_jag_is_refused_and_none_issues_anything() {
    let app = CrossApp::start().await;
    let issued_before = app.server.issued();
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "wrong typ",
            app.idp.sign("key-1", Some("JWT"), json!({}), &app.claims()),
            "invalid_grant",
            "",
        ),
        (
            "no typ",
            app.idp.sign("key-1", None, json!({}), &app.claims()),
            "invalid_grant",
            "",
        ),
        (
            "a foreign client_id",
            app.sign(&app.with(json!({ "client_id": "someone-else" }))),
            "invalid_grant",
            "id_jag_client_mismatch:",
        ),
        (
            "an extra audience",
            app.sign(
                &app.with(json!({ "aud": [app.server.url.as_str(), "https://other.example"] })),
            ),
            "invalid_grant",
            "id_jag_audience:",
        ),
        (
            "the token endpoint as audience",
            app.sign(&app.with(json!({ "aud": app.server.token_endpoint() }))),
            "invalid_grant",
            "id_jag_audience:",
        ),
        (
            "expired",
            app.sign(&app.with(json!({ "iat": now() - 900, "exp": now() - 600 }))),
            "invalid_grant",
            "",
        ),
        (
            "not yet valid",
            app.sign(&app.with(json!({ "nbf": now() + 600 }))),
            "invalid_grant",
            "",
        ),
        (
            "a resource the integration may not use",
            app.sign(&app.with(json!({ "resource": "https://evil.example.com" }))),
            "invalid_target",
            "resource_not_allowed:",
        ),
        (
            "a subject linked to nobody",
            app.sign(&app.with(json!({ "sub": "00u-unknown" }))),
            "invalid_grant",
            "subject_not_mapped:",
        ),
    ];
    for (why, id_jag, code, rule) in &cases {
        let (status, body) = app.as_agent(id_jag, &[]).await;
        assert_eq!(
            (status, oauth_error(&body).0),
            (400, *code),
            "{why}: {body}"
        );
        assert!(oauth_error(&body).1.starts_with(rule), "{why}: {body}");
    }
    // A request for a resource beyond the ID-JAG's.
    let (status, body) = app
        .as_agent(
            &app.sign(&app.claims()),
            &[("resource", "https://files.example.com")],
        )
        .await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (400, "invalid_target"),
        "{body}"
    );
    assert_eq!(app.server.issued(), issued_before, "nothing was issued");

    // A disabled user gets nothing, consent or not.
    app.server
        .store
        .set_user_active(&app.user_id, false)
        .await
        .unwrap();
    app.server.refresh().await;
    let (status, body) = app.as_agent(&app.sign(&app.claims()), &[]).await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (400, "invalid_grant"),
        "{body}"
    );
}

#[tokio::test]
async fn issuer_add_id_jag_sets_an_id_jags_policy_and_refuses_what_contradicts_it() {
    let app = CrossApp::start().await;
    let listed = admin(app.server.dir.path(), &["issuer", "list"]);
    let policy = &listed["issuers"][0]["policy"];
    assert_eq!(policy["id_jag"], true, "{listed}");
    assert_eq!(policy["typs"], json!([ID_JAG_TYP]));
    assert_eq!(policy["replay"], "until-exp");
    let admin = Admin::new(&binary(), store_args(app.server.dir.path()));
    for (extra, says) in [
        (vec!["--subject", "workload"], "--subject user"),
        (
            vec!["--subject", "user", "--replay", "single-use"],
            "until-exp",
        ),
        (
            vec!["--subject", "user", "--typ", "JWT"],
            "oauth-id-jag+jwt",
        ),
    ] {
        let mut args = vec![
            "issuer",
            "add",
            "--issuer",
            "http://127.0.0.1:9/other",
            "--integration",
            &app.agent,
            "--jwks-uri",
            "http://127.0.0.1:9/jwks",
            "--id-jag",
            "--allow-insecure-issuer-urls",
        ];
        args.extend(extra.iter().copied());
        let error = admin.try_json(&args).expect_err("refused");
        assert!(error.contains(says), "{extra:?}: {error}");
    }
}
