//! The examples' code against the real server: `protected_api`'s and
//! `mcp_server`'s routers, served on a loopback port, answer without and with
//! tokens as their docs say.

use axum::http::{StatusCode, header};
use jwtgrant_client::{Jwtgrant, ProtectedResource, TokenSource};
use jwtgrant_server::RawConfig;
use serde_json::{Value, json};

use crate::support::*;
use crate::{mcp_server, protected_api};

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

#[tokio::test]
async fn mcp_server_is_found_from_its_challenge_and_answers_with_a_token_for_it() {
    // The resource's URL is its loopback address, so bind first; the server then
    // issues tokens for it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let resource = format!("{base}/mcp");
    let server = TestServer::start_with(RawConfig {
        access_token_audience: Some(resource.clone()),
        ..RawConfig::default()
    })
    .await;
    let key = rsa_key();
    let (integration_key, _) = server
        .add_integration(
            IntegrationSpec {
                scopes: vec![mcp_server::SCOPE.into(), "other".into()],
                ..IntegrationSpec::applications()
            },
            key.signing_key(),
        )
        .await;
    let verifier = Jwtgrant::new(&server.url)
        .unwrap()
        .verifier()
        .build()
        .unwrap();
    let app = mcp_server::app(verifier, ProtectedResource::new(&resource).unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let http = reqwest::Client::new();
    let rpc = |token: Option<String>, body: Value| {
        let mut request = http.post(&resource).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };

    // What an MCP client does first: call, be refused, follow the challenge.
    let refused = rpc(
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize"}),
    )
    .await
    .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let metadata_url = format!("{base}/.well-known/oauth-protected-resource/mcp");
    assert_eq!(
        refused.headers()[header::WWW_AUTHENTICATE],
        format!("Bearer scope=\"mcp:tools\", resource_metadata=\"{metadata_url}\"").as_str()
    );
    let metadata: Value = http
        .get(&metadata_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        metadata,
        json!({
            "resource": resource,
            "authorization_servers": [server.url],
            "scopes_supported": ["mcp:tools"],
            "bearer_methods_supported": ["header"],
            "resource_name": "jwtgrant example MCP server",
        })
    );

    let token = |scope: &str| {
        TokenSource::builder(&integration_key, key.clone())
            .server(metadata["authorization_servers"][0].as_str().unwrap())
            .scopes([scope])
            .build()
            .unwrap()
    };
    let tools = token(mcp_server::SCOPE).access_token().await.unwrap();
    let answer = |response: reqwest::Response| async move {
        assert_eq!(response.status(), StatusCode::OK);
        response.json::<Value>().await.unwrap()
    };

    let initialized = answer(
        rpc(
            Some(tools.clone()),
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(initialized["id"], 1);
    assert_eq!(
        initialized["result"]["protocolVersion"],
        mcp_server::PROTOCOL_VERSION
    );
    let notified = rpc(
        Some(tools.clone()),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await
    .unwrap();
    assert_eq!(notified.status(), StatusCode::ACCEPTED);

    let listed = answer(
        rpc(
            Some(tools.clone()),
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(listed["result"]["tools"][0]["name"], "whoami");
    let called = answer(
        rpc(
            Some(tools.clone()),
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "whoami"}}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(
        called["result"]["content"][0]["text"],
        format!("{integration_key} via {integration_key} (mcp:tools)")
    );
    let unknown = answer(
        rpc(
            Some(tools),
            json!({"jsonrpc": "2.0", "id": 4, "method": "resources/list"}),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(unknown["error"]["code"], -32601);

    // A token without the scope: 403, still naming the document.
    let other = token("other").access_token().await.unwrap();
    let forbidden = rpc(
        Some(other),
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/list"}),
    )
    .await
    .unwrap();
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        forbidden.headers()[header::WWW_AUTHENTICATE],
        format!(
            "Bearer error=\"insufficient_scope\", scope=\"mcp:tools\", resource_metadata=\"{metadata_url}\""
        )
        .as_str()
    );
}
