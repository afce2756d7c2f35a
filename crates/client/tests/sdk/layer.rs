//! `RequireAccessToken` in an axum app: 401 without or with a bad token, 403 for a
//! missing scope, 200 with the claims handed to the handler; guarding a protected
//! resource (RFC 9728), its metadata served, named in each challenge, and only
//! tokens whose `aud` is the resource taken.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use axum::{Extension, Router};
use jwtgrant_client::{
    AccessTokenClaims, Jwtgrant, ProtectedResource, ProtectedResourceMetadata, RequireAccessToken,
    TokenSource,
};
use jwtgrant_server::RawConfig;
use tower::ServiceExt as _;

use crate::support::*;

async fn me(Extension(claims): Extension<AccessTokenClaims>) -> String {
    format!("{} via {}", claims.sub, claims.client_id)
}

async fn call(app: &Router, token: Option<&str>, path: &str) -> (StatusCode, String, String) {
    let mut request = Request::get(path);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let challenge = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    (status, challenge, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn guards_routes_with_401_403_and_hands_claims_over() {
    let f = Fixture::new().await;
    let verifier = Jwtgrant::new(&f.server.url)
        .unwrap()
        .verifier()
        .build()
        .unwrap();
    let app = Router::new()
        .route("/me", get(me))
        .route_layer(RequireAccessToken::new(verifier.clone()).scopes(["signature"]))
        .merge(
            Router::new()
                .route("/admin", get(me))
                .route_layer(RequireAccessToken::new(verifier).scopes(["admin"])),
        )
        .route("/open", get(|| async { "open" }));

    let token = TokenSource::builder(&f.integration_key, f.key.clone())
        .server(&f.server.url)
        .subject(&f.user_id)
        .scopes(["signature", "impersonation"])
        .build()
        .unwrap()
        .access_token()
        .await
        .unwrap();

    let (status, challenge, body) = call(&app, Some(&token), "/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(challenge, "");
    assert_eq!(body, format!("{} via {}", f.user_id, f.integration_key));

    let (status, challenge, body) = call(&app, None, "/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(challenge, "Bearer");
    assert_eq!(body, "");

    let (status, challenge, body) = call(&app, Some("garbage"), "/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge,
        "Bearer error=\"invalid_token\", error_description=\"the access token is malformed\""
    );
    assert!(body.contains("\"error\":\"invalid_token\""), "{body}");

    let mut tampered = token.clone();
    tampered.push('A');
    let (status, challenge, _) = call(&app, Some(&tampered), "/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\""),
        "{challenge}"
    );

    let (status, challenge, body) = call(&app, Some(&token), "/admin").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        challenge,
        "Bearer error=\"insufficient_scope\", scope=\"admin\""
    );
    assert!(body.contains("insufficient_scope"), "{body}");

    let (status, _, body) = call(&app, None, "/open").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "open"));
}

const MCP: &str = "https://api.example.test/mcp";
const MCP_METADATA: &str = "https://api.example.test/.well-known/oauth-protected-resource/mcp";
const OTHER: &str = "https://api.example.test/other";
const OTHER_METADATA: &str = "https://api.example.test/.well-known/oauth-protected-resource/other";

#[tokio::test]
async fn guards_a_protected_resource_with_its_metadata_and_audience() {
    // The server issues tokens for the MCP resource, as `--access-token-audience`
    // makes it; the app guards that resource and another one.
    let server = TestServer::start_with(RawConfig {
        access_token_audience: Some(MCP.into()),
        ..RawConfig::default()
    })
    .await;
    let f = Fixture::on(server).await;
    let verifier = Jwtgrant::new(&f.server.url)
        .unwrap()
        .verifier()
        .build()
        .unwrap();
    let mcp = RequireAccessToken::new(verifier.clone())
        .scopes(["signature"])
        .resource(ProtectedResource::new(MCP).unwrap());
    let other = RequireAccessToken::new(verifier).resource(ProtectedResource::new(OTHER).unwrap());
    let app = Router::new()
        .route("/mcp", get(me))
        .route_layer(mcp.clone())
        .merge(mcp.metadata_router())
        .merge(
            Router::new()
                .route("/other", get(me))
                .route_layer(other.clone())
                .merge(other.metadata_router()),
        );

    // (a) The metadata document, outside the guard, names the server.
    let (status, _, body) = call(&app, None, "/.well-known/oauth-protected-resource/mcp").await;
    assert_eq!(status, StatusCode::OK);
    let metadata: ProtectedResourceMetadata = serde_json::from_str(&body).unwrap();
    assert_eq!(metadata.resource, MCP);
    assert_eq!(
        metadata.authorization_servers,
        std::slice::from_ref(&f.server.url)
    );
    assert_eq!(metadata.scopes_supported, ["signature"]);
    assert_eq!(metadata.bearer_methods_supported, ["header"]);
    let (status, _, body) = call(&app, None, "/.well-known/oauth-protected-resource/other").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains(&format!("\"resource\":\"{OTHER}\"")),
        "{body}"
    );

    // (b) No token: 401 naming the document and the scope to ask for.
    let (status, challenge, _) = call(&app, None, "/mcp").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge,
        format!("Bearer scope=\"signature\", resource_metadata=\"{MCP_METADATA}\"")
    );

    // (c) A token of the real server, for this resource, is taken.
    let token = TokenSource::builder(&f.integration_key, f.key.clone())
        .server(&metadata.authorization_servers[0])
        .subject(&f.user_id)
        .scopes(["signature", "impersonation"])
        .build()
        .unwrap()
        .access_token()
        .await
        .unwrap();
    let (status, _, body) = call(&app, Some(&token), "/mcp").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, format!("{} via {}", f.user_id, f.integration_key));

    // (d) The same token at another resource is for another audience: 401.
    let (status, challenge, body) = call(&app, Some(&token), "/other").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        challenge,
        format!(
            "Bearer error=\"invalid_token\", error_description=\"the access token is for another \
             audience\", resource_metadata=\"{OTHER_METADATA}\""
        )
    );
    assert!(body.contains("\"error\":\"invalid_token\""), "{body}");

    // A bad token and a missing scope name the document too.
    let (status, challenge, _) = call(&app, Some("garbage"), "/mcp").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        challenge.ends_with(&format!("resource_metadata=\"{MCP_METADATA}\"")),
        "{challenge}"
    );
    let narrow = RequireAccessToken::new(
        Jwtgrant::new(&f.server.url)
            .unwrap()
            .verifier()
            .build()
            .unwrap(),
    )
    .scopes(["admin"])
    .resource(ProtectedResource::new(MCP).unwrap());
    let admin = Router::new().route("/mcp", get(me)).route_layer(narrow);
    let (status, challenge, _) = call(&admin, Some(&token), "/mcp").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        challenge,
        format!(
            "Bearer error=\"insufficient_scope\", scope=\"admin\", resource_metadata=\"{MCP_METADATA}\""
        )
    );
}

#[tokio::test]
async fn an_audience_set_on_the_verifier_stands_for_the_resource() {
    let server = TestServer::start_with(RawConfig {
        access_token_audience: Some(MCP.into()),
        ..RawConfig::default()
    })
    .await;
    let f = Fixture::on(server).await;
    let token = TokenSource::builder(&f.integration_key, f.key.clone())
        .server(&f.server.url)
        .subject(&f.user_id)
        .scopes(["signature", "impersonation"])
        .build()
        .unwrap()
        .access_token()
        .await
        .unwrap();
    let verifier = |audience: &str| {
        Jwtgrant::new(&f.server.url)
            .unwrap()
            .verifier()
            .audience(audience)
            .build()
            .unwrap()
    };
    let guarded = |verifier| {
        let guard =
            RequireAccessToken::new(verifier).resource(ProtectedResource::new(OTHER).unwrap());
        Router::new().route("/other", get(me)).route_layer(guard)
    };

    let (status, _, _) = call(&guarded(verifier(MCP)), Some(&token), "/other").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the verifier's audience is the one checked"
    );
    let (status, challenge, _) = call(&guarded(verifier(OTHER)), Some(&token), "/other").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(challenge.contains("another audience"), "{challenge}");
}
