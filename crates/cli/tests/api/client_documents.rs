//! Client ID metadata documents over HTTP (`--client-metadata-documents`): an MCP
//! client known only by the URL of its document, served by a host the test runs on
//! loopback, signs a user in with PKCE and gets tokens under the template
//! integration; every document that cannot be trusted is refused on a page.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use jwtgrant_core::pkce::s256_challenge;
use jwtgrant_server::RawConfig;
use jwtgrant_server::credentials::hash_secret;
use jwtgrant_store::NewIntegration;
use serde_json::{Value, json};

use crate::support::*;

const TEMPLATE: &str = "mcp-clients";
const MCP: &str = "https://mcp.example.com/mcp";
const CALLBACK: &str = "http://127.0.0.1:33418/callback";
const PASSWORD: &str = "correct horse battery staple";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// What the document host answers at `/client.json`.
#[derive(Clone)]
enum Answer {
    Document(Value),
    Redirect,
    Large,
}

/// The MCP client's own web host, on loopback.
struct DocumentHost {
    url: String,
    answer: Arc<Mutex<Answer>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for DocumentHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DocumentHost {
    async fn start() -> DocumentHost {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let url = format!("{base}/client.json");
        let answer = Arc::new(Mutex::new(Answer::Document(json!({}))));
        let shared = Arc::clone(&answer);
        let app = Router::new()
            .route(
                "/client.json",
                get(move || {
                    let answer = shared.lock().unwrap().clone();
                    async move { respond(answer) }
                }),
            )
            .route("/other.json", get(|| async { "{}" }))
            .route(
                "/jwks.json",
                get(|| async {
                    let jwk = rsa_key().public_key().to_jwk(Some("client-key-1"), None);
                    axum::Json(json!({ "keys": [jwk] }))
                }),
            );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let host = DocumentHost { url, answer, task };
        host.serve(host.document());
        host
    }

    fn document(&self) -> Value {
        json!({
            "client_id": self.url,
            "client_name": "Example MCP Client",
            "redirect_uris": [CALLBACK],
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        })
    }

    fn serve(&self, document: Value) {
        *self.answer.lock().unwrap() = Answer::Document(document);
    }

    fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }
}

fn respond(answer: Answer) -> Response {
    match answer {
        Answer::Document(document) => (
            [(header::CONTENT_TYPE, "application/json")],
            document.to_string(),
        )
            .into_response(),
        Answer::Redirect => {
            (StatusCode::FOUND, [(header::LOCATION, "/other.json")]).into_response()
        }
        Answer::Large => (
            [(header::CONTENT_TYPE, "application/json")],
            format!("{{\"pad\":\"{}\"}}", "x".repeat(64 * 1024)),
        )
            .into_response(),
    }
}

/// A server taking documents, with the template integration and a user.
async fn server(allow_insecure: bool) -> (TestServer, String) {
    let server = TestServer::start_with(RawConfig {
        allow_insecure_issuer_urls: Some(allow_insecure),
        client_metadata_documents: Some(true),
        client_metadata_template: Some(TEMPLATE.into()),
        ..RawConfig::default()
    })
    .await;
    server
        .store
        .create_integration(NewIntegration {
            integration_key: TEMPLATE.into(),
            name: "MCP clients".into(),
            scopes: vec!["mcp:tools".into()],
            redirect_uris: vec![],
            resources: vec![MCP.into()],
            default_scopes: vec!["mcp:tools".into()],
            allow_application_tokens: false,
            require_jti: false,
            created_at: now(),
        })
        .await
        .unwrap();
    let user_id = add_user(server.store.as_ref()).await;
    server
        .store
        .set_user_password(&user_id, Some(&hash_secret(PASSWORD).unwrap()))
        .await
        .unwrap();
    server.refresh().await;
    (server, format!("{user_id}@example.com"))
}

fn auth_url(server: &TestServer, client_id: &str) -> String {
    reqwest::Url::parse_with_params(
        &format!("{}/oauth/auth", server.url),
        &[
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", CALLBACK),
            ("state", "st"),
            ("code_challenge", &s256_challenge(VERIFIER)),
            ("code_challenge_method", "S256"),
            ("resource", MCP),
        ],
    )
    .unwrap()
    .to_string()
}

#[tokio::test]
async fn an_mcp_client_known_by_its_document_signs_a_user_in_and_refreshes() {
    let host = DocumentHost::start().await;
    let (server, email) = server(true).await;
    let metadata: Value = server
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["client_id_metadata_document_supported"], true);

    // The consent page names the client by its document and its host.
    let mut browser = Browser::new();
    let login = browser.get(&auth_url(&server, &host.url)).await;
    assert_eq!(login.status, 200, "{}", login.body);
    browser.sign_in(&server.url, &login, &email, PASSWORD).await;
    let consent = browser.get(&auth_url(&server, &host.url)).await;
    assert!(
        consent.body.contains("Example MCP Client (127.0.0.1:"),
        "{}",
        consent.body
    );
    let location = browser
        .decide(&server.url, &consent, "allow")
        .await
        .location();
    assert!(location.starts_with(CALLBACK), "{location}");
    let code = query_param(&location, "code").unwrap();

    let (status, tokens) = server
        .post_form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", &host.url),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
            ("resource", MCP),
        ])
        .await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        tokens["scope"], "mcp:tools",
        "the template's default scopes"
    );
    let claims = jwt_claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], MCP);
    assert_eq!(claims["client_id"], host.url.as_str());

    // No consent record: the next authorization asks again.
    let again = browser.get(&auth_url(&server, &host.url)).await;
    assert!(again.body.contains("id=\"consent\""), "{}", again.body);
    // The refresh chain stands for the consent given.
    let (status, refreshed) = server
        .post_form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", &host.url),
        ])
        .await;
    assert_eq!(status, 200, "{refreshed}");
}

#[tokio::test]
async fn a_document_client_with_private_key_jwt_signs_with_the_keys_of_its_jwks_uri() {
    let host = DocumentHost::start().await;
    let mut document = host.document();
    document["token_endpoint_auth_method"] = json!("private_key_jwt");
    document["jwks_uri"] = json!(host.url.replace("client.json", "jwks.json"));
    host.serve(document);
    let (server, email) = server(true).await;
    let location = Browser::new()
        .approve(&server.url, &auth_url(&server, &host.url), &email, PASSWORD)
        .await;
    let code = query_param(&location, "code").unwrap_or_else(|| panic!("{location}"));
    let client_assertion = |key: &jwtgrant_core::SigningKey| {
        let now = now();
        sign(
            key,
            jwtgrant_core::JwsAlgorithm::Rs256,
            &json!({
                "iss": host.url, "sub": host.url, "aud": server.url,
                "iat": now, "exp": now + 60, "jti": uuid::Uuid::new_v4().to_string(),
            }),
        )
    };
    let exchange = |assertion: String| {
        let server = &server;
        let code = code.clone();
        async move {
            server
                .post_form(&[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", CALLBACK),
                    ("code_verifier", VERIFIER),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &assertion),
                ])
                .await
        }
    };
    // Signed with a key its JWKS does not publish: not this client.
    let (status, body) = exchange(client_assertion(&other_rsa_key())).await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (401, "invalid_client"),
        "{body}"
    );
    let (status, tokens) = exchange(client_assertion(&rsa_key())).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        jwt_claims(tokens["access_token"].as_str().unwrap())["client_id"],
        host.url.as_str()
    );
}

#[tokio::test]
async fn a_document_that_cannot_be_trusted_is_refused_on_a_page() {
    let host = DocumentHost::start().await;
    let (server, _) = server(true).await;
    let refused = |why: &'static str| {
        let server = &server;
        let url = auth_url(server, &host.url);
        async move {
            let page = Browser::new().get(&url).await;
            assert_eq!(page.status, 400, "{why}: {}", page.body);
            assert!(
                page.headers.get("location").is_none(),
                "{why}: never a redirect"
            );
            page.body
        }
    };
    let mut other = host.document();
    other["client_id"] = json!(format!("{}/", host.url));
    host.serve(other);
    assert!(
        refused("another client_id")
            .await
            .contains("client_id is not the URL")
    );

    host.answer(Answer::Redirect);
    assert!(refused("a redirect").await.contains("could not be fetched"));

    host.answer(Answer::Large);
    assert!(refused("too large").await.contains("could not be fetched"));

    let mut secret = host.document();
    secret["client_secret"] = json!("s3cret");
    host.serve(secret);
    assert!(refused("a secret").await.contains("client_secret"));

    // A redirect URI the document does not list is refused as for any client.
    host.serve(host.document());
    let url = auth_url(&server, &host.url).replace("33418", "9");
    let page = Browser::new().get(&url).await;
    assert_eq!(page.status, 400, "{}", page.body);
    // The good document is then accepted (nothing bad was cached).
    let page = Browser::new().get(&auth_url(&server, &host.url)).await;
    assert_eq!(page.status, 200, "{}", page.body);
}

#[tokio::test]
async fn a_document_url_that_is_not_https_is_refused() {
    let host = DocumentHost::start().await;
    // Without --allow-insecure-issuer-urls: http (and loopback) is refused.
    let (server, _) = server(false).await;
    let page = Browser::new().get(&auth_url(&server, &host.url)).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("could not be fetched"), "{}", page.body);
    // And at the token endpoint it names no client.
    let (status, body) = server
        .post_form(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("client_id", &host.url),
            ("code_verifier", VERIFIER),
        ])
        .await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (401, "invalid_client"),
        "{body}"
    );
}
