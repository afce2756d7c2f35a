//! `RequireAccessToken` in an axum app: 401 without or with a bad token, 403 for a
//! missing scope, 200 with the claims handed to the handler.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use axum::{Extension, Router};
use jwtgrant_client::{AccessTokenClaims, Jwtgrant, RequireAccessToken, TokenSource};
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
