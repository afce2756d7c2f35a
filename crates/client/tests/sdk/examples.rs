//! The examples' code against the real server: `protected_api`'s router, served on
//! a loopback port, answers without and with tokens as its doc says.

use axum::http::{StatusCode, header};
use jwtgrant_client::{Jwtgrant, TokenSource};

use crate::protected_api;
use crate::support::*;

#[tokio::test]
async fn protected_api_serves_me_only_with_a_signature_token() {
    let f = Fixture::new().await;
    let verifier = Jwtgrant::new(&f.server.url)
        .unwrap()
        .verifier()
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, protected_api::app(verifier)).await;
    });
    let http = reqwest::Client::new();
    let token = |scope: &str| {
        TokenSource::builder(&f.integration_key, f.key.clone())
            .token_endpoint(f.server.token_endpoint())
            .audience(f.server.host())
            .scopes([scope])
            .build()
            .unwrap()
    };

    let health = http.get(format!("{api}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.text().await.unwrap(), "ok");

    let anonymous = http.get(format!("{api}/me")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.headers()[header::WWW_AUTHENTICATE], "Bearer");

    let signature = token("signature").access_token().await.unwrap();
    let me = http
        .get(format!("{api}/me"))
        .bearer_auth(&signature)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::OK);
    let claims: serde_json::Value = me.json().await.unwrap();
    assert_eq!(claims["sub"], f.integration_key.as_str());
    assert_eq!(claims["scope"], "signature");

    let other = token("impersonation").access_token().await.unwrap();
    let refused = http
        .get(format!("{api}/me"))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        refused.headers()[header::WWW_AUTHENTICATE],
        "Bearer error=\"insufficient_scope\", scope=\"signature\""
    );
}
