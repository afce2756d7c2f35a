//! The authorization code flow over real HTTP: sign-in and consent pages driven like
//! a browser (cookies, CSRF fields, redirects not followed), the code exchange with
//! a client secret or PKCE, refresh rotation and reuse, introspection, revocation,
//! and every refusal the flow defines.

use jwtgrant_core::pkce::s256_challenge;
use jwtgrant_server::credentials::hash_secret;
use jwtgrant_store::{IntegrationUpdate, NewIntegration};
use serde_json::Value;

use crate::support::*;

const REDIRECT: &str = "http://127.0.0.1:9/callback";
const SECRET: &str = "a-client-secret-of-some-length";
const PASSWORD: &str = "correct horse battery staple";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// A server with a confidential and a public integration and a user with a password
/// (and no consent yet).
struct Flow {
    server: TestServer,
    confidential: String,
    public: String,
    user_id: String,
    email: String,
}

async fn integration(server: &TestServer, name: &str, secret: Option<&str>) -> String {
    let key = uuid::Uuid::new_v4().to_string();
    server
        .store
        .create_integration(NewIntegration {
            integration_key: key.clone(),
            name: name.into(),
            scopes: vec![
                "signature".into(),
                "impersonation".into(),
                "extended".into(),
            ],
            redirect_uris: vec![REDIRECT.into()],
            resources: Vec::new(),
            default_scopes: Vec::new(),
            allow_application_tokens: false,
            require_jti: false,
            created_at: now(),
        })
        .await
        .unwrap();
    if let Some(secret) = secret {
        let hash = hash_secret(secret).unwrap();
        server
            .store
            .set_integration_secret(&key, Some(&hash))
            .await
            .unwrap();
    }
    key
}

impl Flow {
    async fn new() -> Flow {
        Flow::on(TestServer::start().await).await
    }

    async fn on(server: TestServer) -> Flow {
        let confidential = integration(&server, "Confidential App", Some(SECRET)).await;
        let public = integration(&server, "Public App", None).await;
        let user_id = add_user(server.store.as_ref()).await;
        let email = format!("{user_id}@example.com");
        let hash = hash_secret(PASSWORD).unwrap();
        server
            .store
            .set_user_password(&user_id, Some(&hash))
            .await
            .unwrap();
        Flow {
            server,
            confidential,
            public,
            user_id,
            email,
        }
    }

    fn auth_url(&self, client_id: &str, extra: &[(&str, &str)]) -> String {
        let mut pairs = vec![
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("scope", "signature impersonation"),
            ("state", "st-123"),
        ];
        for (name, value) in extra {
            pairs.retain(|(n, _)| n != name);
            pairs.push((name, value));
        }
        pairs.retain(|(_, v)| !v.is_empty());
        reqwest::Url::parse_with_params(&format!("{}/oauth/auth", self.server.url), &pairs)
            .unwrap()
            .to_string()
    }

    /// Signs in and allows: the Location the browser is sent to.
    async fn approve(
        &self,
        browser: &mut Browser,
        client_id: &str,
        extra: &[(&str, &str)],
    ) -> String {
        let url = self.auth_url(client_id, extra);
        browser
            .approve(&self.server.url, &url, &self.email, PASSWORD)
            .await
    }

    async fn token(
        &self,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut request = self
            .server
            .http
            .post(format!("{}/oauth/token", self.server.url))
            .form(form);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (
            status,
            response.json().await.unwrap_or(Value::Null),
            headers,
        )
    }

    async fn exchange(&self, code: &str) -> (u16, Value) {
        let (status, body, _) = self
            .token(
                Some((&self.confidential, SECRET)),
                &[("grant_type", "authorization_code"), ("code", code)],
            )
            .await;
        (status, body)
    }

    async fn public_exchange(
        &self,
        code: &str,
        verifier: Option<&str>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", self.public.as_str()),
        ];
        if let Some(v) = verifier {
            form.push(("code_verifier", v));
        }
        self.token(None, &form).await
    }

    async fn refresh(&self, refresh_token: &str) -> (u16, Value) {
        let (status, body, _) = self
            .token(
                Some((&self.confidential, SECRET)),
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                ],
            )
            .await;
        (status, body)
    }

    async fn userinfo(&self, access_token: &str) -> u16 {
        self.server
            .http
            .get(format!("{}/oauth/userinfo", self.server.url))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn post(
        &self,
        path: &str,
        basic: Option<(&str, &str)>,
        form: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut request = self
            .server
            .http
            .post(format!("{}{path}", self.server.url))
            .form(form);
        if let Some((id, secret)) = basic {
            request = request.basic_auth(id, Some(secret));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

fn field(body: &Value, name: &str) -> String {
    body[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        .to_owned()
}

#[tokio::test]
async fn code_flow_with_a_client_secret_then_refresh_rotation_and_reuse() {
    let flow = Flow::new().await;
    let mut browser = Browser::new();
    let location = flow.approve(&mut browser, &flow.confidential, &[]).await;
    assert!(location.starts_with(REDIRECT), "{location}");
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-123"));
    let code = query_param(&location, "code").unwrap();

    let (status, first) = flow.exchange(&code).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["token_type"], "Bearer");
    assert!(first["expires_in"].is_u64());
    assert_eq!(first["scope"], "signature impersonation");
    assert_eq!(flow.userinfo(&field(&first, "access_token")).await, 200);

    // The consent the page recorded is the one the JWT grant checks.
    let consent = flow
        .server
        .store
        .consent(&flow.user_id, &flow.confidential)
        .await
        .unwrap();
    assert_eq!(consent.unwrap().scopes, ["signature", "impersonation"]);

    // Rotation: a new refresh token each time; narrowing the scope is allowed.
    let (status, second) = flow.refresh(&field(&first, "refresh_token")).await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    let (status, narrowed, _) = flow
        .token(
            Some((&flow.confidential, SECRET)),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &field(&second, "refresh_token")),
                ("scope", "signature"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{narrowed}");
    assert_eq!(narrowed["scope"], "signature");
    let (status, wider, _) = flow
        .token(
            Some((&flow.confidential, SECRET)),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &field(&narrowed, "refresh_token")),
                ("scope", "signature extended"),
            ],
        )
        .await;
    assert_eq!((status, oauth_error(&wider).0), (400, "invalid_scope"));

    // Reuse of an old refresh token revokes the whole chain: the newest refresh
    // token and every access token issued along it.
    let (status, reused) = flow.refresh(&field(&first, "refresh_token")).await;
    assert_eq!(
        (status, oauth_error(&reused).0),
        (400, "invalid_grant"),
        "{reused}"
    );
    assert!(oauth_error(&reused).1.contains("already used"));
    let (status, newest) = flow.refresh(&field(&narrowed, "refresh_token")).await;
    assert_eq!((status, oauth_error(&newest).0), (400, "invalid_grant"));
    assert!(oauth_error(&newest).1.contains("revoked"), "{newest}");
    for issued in [&first, &second, &narrowed] {
        assert_eq!(flow.userinfo(&field(issued, "access_token")).await, 401);
    }
}

#[tokio::test]
async fn a_code_is_single_use_and_its_reuse_revokes_what_it_issued() {
    let flow = Flow::new().await;
    let mut browser = Browser::new();
    let code = query_param(
        &flow.approve(&mut browser, &flow.confidential, &[]).await,
        "code",
    )
    .unwrap();
    let (status, issued) = flow.exchange(&code).await;
    assert_eq!(status, 200);
    let (status, again) = flow.exchange(&code).await;
    assert_eq!((status, oauth_error(&again).0), (400, "invalid_grant"));
    assert_eq!(flow.userinfo(&field(&issued, "access_token")).await, 401);
    let (status, _) = flow.refresh(&field(&issued, "refresh_token")).await;
    assert_eq!(status, 400);

    // Already consented: the next authorization skips the consent page.
    let url = flow.auth_url(&flow.confidential, &[]);
    let page = browser.get(&url).await;
    assert_eq!(page.status, 303);
    assert!(query_param(&page.location(), "code").is_some());

    // A made-up code, and a code sent to another redirect URI than its own.
    let (status, body) = flow.exchange("not-a-code").await;
    assert_eq!((status, oauth_error(&body).0), (400, "invalid_grant"));
    let code = query_param(&page.location(), "code").unwrap();
    let (status, body, _) = flow
        .token(
            Some((&flow.confidential, SECRET)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:9/other"),
            ],
        )
        .await;
    assert_eq!((status, oauth_error(&body).0), (400, "invalid_grant"));
    assert!(oauth_error(&body).1.contains("redirect_uri"));
    // Sent and matching, with DocuSign's extra `flow` parameter ignored.
    let (status, body, _) = flow
        .token(
            Some((&flow.confidential, SECRET)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("flow", "confidential"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn public_clients_use_pkce() {
    let flow = Flow::new().await;
    let mut browser = Browser::new();
    let challenge = s256_challenge(VERIFIER);
    let pkce = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let code = query_param(
        &flow.approve(&mut browser, &flow.public, &pkce).await,
        "code",
    )
    .unwrap();
    let (status, body, _) = flow.public_exchange(&code, None).await;
    assert_eq!((status, oauth_error(&body).0), (400, "invalid_grant"));
    assert!(oauth_error(&body).1.contains("code_verifier"), "{body}");
    let (status, body, _) = flow
        .public_exchange(
            &code,
            Some("x-wrong-verifier-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
        )
        .await;
    assert_eq!((status, oauth_error(&body).0), (400, "invalid_grant"));
    assert!(oauth_error(&body).1.contains("PKCE"), "{body}");
    let (status, body, _) = flow.public_exchange(&code, Some(VERIFIER)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["refresh_token"].is_string());
    // A public client refreshes with its client_id alone.
    let (status, refreshed, _) = flow
        .token(
            None,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &field(&body, "refresh_token")),
                ("client_id", &flow.public),
            ],
        )
        .await;
    assert_eq!(status, 200, "{refreshed}");

    // Without a challenge, a public client's request is refused on a page.
    let page = browser.get(&flow.auth_url(&flow.public, &[])).await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("id=\"error\"") && page.body.contains("PKCE"));
    // `plain` is not accepted.
    let page = browser
        .get(&flow.auth_url(
            &flow.public,
            &[
                ("code_challenge", VERIFIER),
                ("code_challenge_method", "plain"),
            ],
        ))
        .await;
    assert_eq!(page.status, 400);
}

#[tokio::test]
async fn client_authentication_is_required_and_checked() {
    let flow = Flow::new().await;
    let mut browser = Browser::new();
    let code = query_param(
        &flow.approve(&mut browser, &flow.confidential, &[]).await,
        "code",
    )
    .unwrap();
    let grant = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
    ];

    let (status, body, headers) = flow
        .token(Some((&flow.confidential, "wrong-secret")), &grant)
        .await;
    assert_eq!((status, oauth_error(&body).0), (401, "invalid_client"));
    assert!(
        headers
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    // A confidential client may not pass as a public one.
    let mut public_form = grant.to_vec();
    public_form.push(("client_id", &flow.confidential));
    let (status, body, _) = flow.token(None, &public_form).await;
    assert_eq!((status, oauth_error(&body).0), (401, "invalid_client"));
    // Nothing at all.
    let (status, body, _) = flow.token(None, &grant).await;
    assert_eq!((status, oauth_error(&body).0), (401, "invalid_client"));
    // Two methods at once.
    let mut both = grant.to_vec();
    both.push(("client_secret", SECRET));
    let (status, body, _) = flow.token(Some((&flow.confidential, SECRET)), &both).await;
    assert_eq!((status, oauth_error(&body).0), (400, "invalid_request"));
    // The secret in the form (client_secret_post) works.
    let mut post = grant.to_vec();
    post.push(("client_id", &flow.confidential));
    post.push(("client_secret", SECRET));
    // Another client cannot redeem this client's code.
    let other_secret = "another-secret-for-another-app";
    let other = integration(&flow.server, "Other App", Some(other_secret)).await;
    let (status, body, _) = flow.token(Some((&other, other_secret)), &grant).await;
    assert_eq!((status, oauth_error(&body).0), (400, "invalid_grant"));
    assert!(oauth_error(&body).1.contains("another client"));
    let (status, body, _) = flow.token(None, &post).await;
    assert_eq!(status, 200, "{body}");

    // An integration set up only for the JWT grant (no redirect URI) may not use
    // the code flow.
    let jwt_only = uuid::Uuid::new_v4().to_string();
    flow.server
        .store
        .create_integration(NewIntegration {
            integration_key: jwt_only.clone(),
            name: "JWT only".into(),
            scopes: vec!["signature".into()],
            redirect_uris: vec![],
            resources: Vec::new(),
            default_scopes: Vec::new(),
            allow_application_tokens: true,
            require_jti: false,
            created_at: now(),
        })
        .await
        .unwrap();
    let hash = hash_secret(SECRET).unwrap();
    flow.server
        .store
        .set_integration_secret(&jwt_only, Some(&hash))
        .await
        .unwrap();
    flow.server.refresh().await;
    let (status, body, _) = flow
        .token(
            Some((&jwt_only, SECRET)),
            &[("grant_type", "authorization_code"), ("code", "x")],
        )
        .await;
    assert_eq!((status, oauth_error(&body).0), (400, "unauthorized_client"));
}

#[tokio::test]
async fn the_authorization_endpoint_refuses_without_redirecting_when_it_cannot_trust_the_request() {
    let flow = Flow::new().await;
    let mut browser = Browser::new();
    let unknown = flow.auth_url("no-such-client", &[]);
    let bad_redirect = flow.auth_url(
        &flow.confidential,
        &[("redirect_uri", "https://evil.example/cb")],
    );
    let duplicate = format!("{}&client_id=again", flow.auth_url(&flow.confidential, &[]));
    let no_client = flow.auth_url("", &[]);
    for url in [unknown, bad_redirect, duplicate, no_client] {
        let page = browser.get(&url).await;
        assert_eq!(page.status, 400, "{url}");
        assert!(page.headers.get("location").is_none());
        assert!(page.body.contains("id=\"error\""), "{}", page.body);
    }
    // Trusted client and redirect URI: errors go back to the client.
    let page = browser
        .get(&flow.auth_url(&flow.confidential, &[("response_type", "token")]))
        .await;
    assert_eq!(page.status, 303);
    let location = page.location();
    assert!(location.starts_with(REDIRECT));
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("unsupported_response_type")
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-123"));
    let page = browser
        .get(&flow.auth_url(&flow.confidential, &[("scope", "signature admin")]))
        .await;
    assert_eq!(
        query_param(&page.location(), "error").as_deref(),
        Some("invalid_scope")
    );
}

#[tokio::test]
async fn resources_and_default_scopes_on_the_code_flow_and_refresh() {
    const MCP: &str = "https://mcp.example.com/mcp";
    let flow = Flow::new().await;
    let update = IntegrationUpdate {
        resources: Some(vec![MCP.into(), "https://files.example.com".into()]),
        default_scopes: Some(vec!["signature".into(), "impersonation".into()]),
        ..IntegrationUpdate::default()
    };
    flow.server
        .store
        .update_integration(&flow.confidential, update)
        .await
        .unwrap();
    flow.server.refresh().await;

    // No `scope`: the integration's default scopes; `resource`: the token's audience.
    let mut browser = Browser::new();
    let location = flow
        .approve(
            &mut browser,
            &flow.confidential,
            &[("scope", ""), ("resource", MCP)],
        )
        .await;
    let code = query_param(&location, "code").unwrap_or_else(|| panic!("{location}"));
    let (status, first, _) = flow
        .token(
            Some((&flow.confidential, SECRET)),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("resource", MCP),
            ],
        )
        .await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["scope"], "signature impersonation");
    assert_eq!(jwt_claims(&field(&first, "access_token"))["aud"], MCP);

    // A refresh keeps the resources, or narrows them; it never widens them.
    let (status, second) = flow.refresh(&field(&first, "refresh_token")).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(jwt_claims(&field(&second, "access_token"))["aud"], MCP);
    let (status, wider, _) = flow
        .token(
            Some((&flow.confidential, SECRET)),
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &field(&second, "refresh_token")),
                ("resource", "https://files.example.com"),
            ],
        )
        .await;
    assert_eq!(
        (status, oauth_error(&wider).0),
        (400, "invalid_target"),
        "{wider}"
    );
    assert!(oauth_error(&wider).1.starts_with("resource_beyond_grant:"));
    // The refused refresh rotated nothing: the same token still refreshes.
    let (status, third) = flow.refresh(&field(&second, "refresh_token")).await;
    assert_eq!(status, 200, "{third}");

    // An authorization request for a resource the client may not use goes back to
    // the client as `invalid_target`, before any sign-in.
    let page = Browser::new()
        .get(&flow.auth_url(
            &flow.confidential,
            &[("resource", "https://evil.example.com")],
        ))
        .await;
    assert_eq!(page.status, 303);
    assert_eq!(
        query_param(&page.location(), "error").as_deref(),
        Some("invalid_target")
    );
    let page = Browser::new()
        .get(&flow.auth_url(&flow.confidential, &[("resource", "relative/path")]))
        .await;
    assert_eq!(
        query_param(&page.location(), "error").as_deref(),
        Some("invalid_target")
    );
    // Without default scopes, a request without `scope` is still `invalid_scope`.
    let page = Browser::new()
        .get(&flow.auth_url(
            &flow.public,
            &[
                ("scope", ""),
                ("code_challenge", &s256_challenge(VERIFIER)),
                ("code_challenge_method", "S256"),
            ],
        ))
        .await;
    assert_eq!(
        query_param(&page.location(), "error").as_deref(),
        Some("invalid_scope")
    );
}

#[tokio::test]
async fn deny_wrong_password_throttling_and_csrf() {
    let flow = Flow::new().await;
    let mut browser = Browser::new();
    let url = flow.auth_url(&flow.confidential, &[]);
    let login = browser.get(&url).await;
    let wrong = browser
        .sign_in(&flow.server.url, &login, &flow.email, "not the password")
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("id=\"error\""));
    assert!(wrong.headers.get("location").is_none());
    // A forged form (no CSRF token of this session) does not sign in.
    let mut forged = Browser::new();
    let _ = forged.get(&url).await;
    let forged_form = vec![
        ("csrf".to_owned(), "forged".to_owned()),
        ("return_to".to_owned(), login.field("return_to")),
        ("email".to_owned(), flow.email.clone()),
        ("password".to_owned(), PASSWORD.to_owned()),
    ];
    let refused = forged
        .post(&format!("{}/login", flow.server.url), &forged_form)
        .await;
    assert_eq!(refused.status, 400);

    // Sign in, then Deny.
    let signed_in = browser
        .sign_in(&flow.server.url, &wrong, &flow.email, PASSWORD)
        .await;
    assert_eq!(signed_in.status, 303);
    let cookie = signed_in
        .headers
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let consent = browser.get(&url).await;
    assert!(consent.body.contains("Confidential App"));
    assert!(consent.body.contains("class=\"scope\""));
    // A decision without the session's CSRF token is refused.
    let mut tampered = consent.hidden_fields();
    tampered.retain(|(n, _)| n != "csrf");
    tampered.push(("csrf".into(), "nope".into()));
    tampered.push(("decision".into(), "allow".into()));
    let refused = browser
        .post(
            &format!("{}/oauth/auth/decision", flow.server.url),
            &tampered,
        )
        .await;
    assert_eq!(refused.status, 400);
    assert!(refused.headers.get("location").is_none());
    let denied = browser.decide(&flow.server.url, &consent, "deny").await;
    assert_eq!(denied.status, 303);
    let location = denied.location();
    assert_eq!(
        query_param(&location, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query_param(&location, "state").as_deref(), Some("st-123"));
    assert!(
        flow.server
            .store
            .consent(&flow.user_id, &flow.confidential)
            .await
            .unwrap()
            .is_none()
    );

    // Wrong passwords for one account are throttled.
    let mut attacker = Browser::new();
    let mut page = attacker.get(&url).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        page = attacker
            .sign_in(&flow.server.url, &page, &flow.email, "guess")
            .await;
        statuses.push(page.status);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);
    assert!(page.headers.get("retry-after").is_some());
}

#[tokio::test]
async fn consent_given_on_the_page_lets_the_jwt_grant_act_for_the_user() {
    let flow = Flow::new().await;
    let key = rsa_key();
    add_key(flow.server.store.as_ref(), &flow.confidential, &key).await;
    let assertion = || {
        let now = now();
        sign(
            &key,
            jwtgrant_core::JwsAlgorithm::Rs256,
            &serde_json::json!({
                "iss": flow.confidential, "sub": flow.user_id, "aud": flow.server.host(),
                "iat": now, "exp": now + 600, "scope": "signature impersonation",
                "jti": uuid::Uuid::new_v4().to_string(),
            }),
        )
    };
    let (status, body) = flow.server.token(&assertion()).await;
    assert_eq!((status, oauth_error(&body).0), (400, "consent_required"));
    let consent_url = oauth_error(&body).1.rsplit(' ').next().unwrap().to_owned();
    assert!(consent_url.contains("/oauth/auth?response_type=code"));

    let mut browser = Browser::new();
    let _ = flow.approve(&mut browser, &flow.confidential, &[]).await;
    flow.server.refresh().await;
    let (status, body) = flow.server.token(&assertion()).await;
    assert_eq!(status, 200, "{body}");

    // Withdrawn on the consents page: the JWT grant is refused again and refresh
    // chains end.
    let page = browser
        .get(&format!("{}/account/consents", flow.server.url))
        .await;
    assert!(page.body.contains("Confidential App"), "{}", page.body);
    let form = vec![
        ("csrf".to_owned(), page.field("csrf")),
        ("integration_key".to_owned(), page.field("integration_key")),
    ];
    let revoked = browser
        .post(
            &format!("{}/account/consents/revoke", flow.server.url),
            &form,
        )
        .await;
    assert_eq!(revoked.status, 303);
    flow.server.refresh().await;
    let (status, body) = flow.server.token(&assertion()).await;
    assert_eq!((status, oauth_error(&body).0), (400, "consent_required"));
}

#[tokio::test]
async fn introspection_and_revocation() {
    let flow = Flow::new().await;
    let mut browser = Browser::new();
    let code = query_param(
        &flow.approve(&mut browser, &flow.confidential, &[]).await,
        "code",
    )
    .unwrap();
    let (_, issued) = flow.exchange(&code).await;
    let access = field(&issued, "access_token");
    let refresh = field(&issued, "refresh_token");
    let me = Some((flow.confidential.as_str(), SECRET));

    let (status, info) = flow
        .post("/oauth/introspect", me, &[("token", &access)])
        .await;
    assert_eq!(status, 200);
    assert_eq!(info["active"], true);
    assert_eq!(info["client_id"], flow.confidential.as_str());
    assert_eq!(info["sub"], flow.user_id.as_str());
    assert_eq!(info["scope"], "signature impersonation");
    assert_eq!(info["username"], flow.email.as_str());
    let (_, info) = flow
        .post("/oauth/introspect", me, &[("token", &refresh)])
        .await;
    assert_eq!(
        (info["active"].clone(), info["token_type"].clone()),
        (Value::Bool(true), "refresh_token".into())
    );
    let (_, info) = flow
        .post("/oauth/introspect", me, &[("token", "garbage")])
        .await;
    assert_eq!(info, serde_json::json!({"active": false}));
    // Only authenticated confidential clients may introspect.
    let (status, body) = flow
        .post(
            "/oauth/introspect",
            None,
            &[("token", &access), ("client_id", &flow.public)],
        )
        .await;
    assert_eq!((status, oauth_error(&body).0), (401, "invalid_client"));
    let (status, _) = flow
        .post(
            "/oauth/introspect",
            Some((&flow.confidential, "wrong")),
            &[("token", &access)],
        )
        .await;
    assert_eq!(status, 401);

    // Another client may not revoke this client's token.
    let other_secret = "another-secret-for-another-app";
    let other = integration(&flow.server, "Other App", Some(other_secret)).await;
    let (status, body) = flow
        .post(
            "/oauth/revoke",
            Some((&other, other_secret)),
            &[("token", &access)],
        )
        .await;
    assert_eq!((status, oauth_error(&body).0), (400, "unauthorized_client"));
    // Revoking the access token: userinfo refuses it, introspection says inactive.
    let (status, _) = flow.post("/oauth/revoke", me, &[("token", &access)]).await;
    assert_eq!(status, 200);
    assert_eq!(flow.userinfo(&access).await, 401);
    let (_, info) = flow
        .post("/oauth/introspect", me, &[("token", &access)])
        .await;
    assert_eq!(info["active"], false);
    // Revoking the refresh token ends the chain.
    let (status, _) = flow
        .post(
            "/oauth/revoke",
            me,
            &[("token", &refresh), ("token_type_hint", "refresh_token")],
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = flow.refresh(&refresh).await;
    assert_eq!(status, 400);
    // Unknown tokens: 200, as RFC 7009 says.
    let (status, _) = flow
        .post("/oauth/revoke", me, &[("token", "unknown")])
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn metadata_lists_the_flow() {
    let flow = Flow::new().await;
    let meta: Value = flow
        .server
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    let url = &flow.server.url;
    assert_eq!(meta["authorization_endpoint"], format!("{url}/oauth/auth"));
    assert_eq!(
        meta["introspection_endpoint"],
        format!("{url}/oauth/introspect")
    );
    assert_eq!(meta["revocation_endpoint"], format!("{url}/oauth/revoke"));
    assert_eq!(
        meta["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        meta["response_types_supported"],
        serde_json::json!(["code"])
    );
    let grants = meta["grant_types_supported"].as_array().unwrap();
    for grant in ["authorization_code", "refresh_token", JWT_BEARER] {
        assert!(grants.iter().any(|g| g == grant), "{grant}");
    }
}

#[tokio::test]
async fn with_redis_failed_sign_ins_are_counted_where_every_instance_sees_them() {
    let redis = TestRedis::start().await;
    let flow = Flow::on(TestServer::start_with(redis.config()).await).await;
    let mut browser = Browser::new();
    let mut page = browser.get(&flow.auth_url(&flow.confidential, &[])).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        page = browser
            .sign_in(&flow.server.url, &page, &flow.email, "guess")
            .await;
        statuses.push(page.status);
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429]);
    let counted = redis.cli(&[
        "GET",
        &format!(
            "{}login-failures:account:{}",
            redis.prefix,
            flow.email.to_lowercase()
        ),
    ]);
    assert_eq!(counted, "5");
    // A right password after the lockout is still refused until the window ends.
    let refused = browser
        .sign_in(&flow.server.url, &page, &flow.email, PASSWORD)
        .await;
    assert_eq!(refused.status, 429);
}
