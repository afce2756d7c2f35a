//! Cross-app access end to end, both ends on jwtgrant: server A is the enterprise
//! identity provider, server B the MCP server's authorization server, trusting A's
//! ID-JAGs (`issuer add --id-jag`, A's keys by its JWKS URL on loopback). A user
//! signs in at A; the agent exchanges the ID token at A for an ID-JAG and presents
//! it at B through the SDK's [`CrossAppAccess`]; the MCP server, guarded by the
//! SDK's layer, takes B's token. The operator's commands are the real binary's.

use axum::routing::get;
use axum::{Extension, Router};
use jwtgrant_client::{
    AccessTokenClaims, ClientAuthentication, CrossAppAccess, ProtectedResource, RequireAccessToken,
    TokenClient, TokenClientError, Verifier,
};
use jwtgrant_server::RawConfig;
use jwtgrant_server::credentials::hash_secret;
use jwtgrant_store::IntegrationUpdate;

use crate::support::*;

const REDIRECT: &str = "http://127.0.0.1:9/callback";
const PASSWORD: &str = "correct horse battery staple";
const SECRET_AT_A: &str = "the agent's secret at the identity provider";
const SECRET_AT_B: &str = "the agent's secret at the MCP authorization server";
const MCP: &str = "https://mcp.example.com/mcp";

async fn confidential(
    server: &TestServer,
    scopes: &[&str],
    update: IntegrationUpdate,
    secret: &str,
) -> String {
    let spec = IntegrationSpec {
        allow_application_tokens: false,
        require_jti: false,
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    };
    let (key, _) = server.add_integration(spec, &rsa_key()).await;
    server
        .store
        .set_integration_secret(&key, Some(&hash_secret(secret).unwrap()))
        .await
        .unwrap();
    server.store.update_integration(&key, update).await.unwrap();
    key
}

async fn whoami(Extension(claims): Extension<AccessTokenClaims>) -> String {
    format!("{} via {}", claims.sub, claims.client_id)
}

#[tokio::test]
async fn an_agent_gets_an_mcp_token_at_b_for_a_user_signed_in_at_a() {
    let a = TestServer::start().await;
    let b = TestServer::start_with(RawConfig {
        allow_insecure_issuer_urls: Some(true),
        ..RawConfig::default()
    })
    .await;

    // A: the agent's client, and the user who signs in.
    let agent_at_a = confidential(
        &a,
        &["openid", "signature"],
        IntegrationUpdate {
            redirect_uris: Some(vec![REDIRECT.into()]),
            ..IntegrationUpdate::default()
        },
        SECRET_AT_A,
    )
    .await;
    let user_at_a = add_user(a.store.as_ref()).await;
    a.store
        .set_user_password(&user_at_a, Some(&hash_secret(PASSWORD).unwrap()))
        .await
        .unwrap();

    // B: the agent's client there, the MCP server as its resource, and the same
    // person as B knows them, linked to A's subject.
    let agent_at_b = confidential(
        &b,
        &["mcp:tools", "mcp:admin"],
        IntegrationUpdate {
            resources: Some(vec![MCP.into()]),
            ..IntegrationUpdate::default()
        },
        SECRET_AT_B,
    )
    .await;
    let user_at_b = add_user(b.store.as_ref()).await;
    let issuer = admin(
        b.dir.path(),
        &[
            "issuer",
            "add",
            "--issuer",
            &a.url,
            "--integration",
            &agent_at_b,
            "--jwks-uri",
            &format!("{}/oauth/jwks", a.url),
            "--subject",
            "user",
            "--id-jag",
            "--allow-insecure-issuer-urls",
        ],
    );
    let issuer_id = issuer["issuer_id"].as_str().unwrap();
    admin(
        b.dir.path(),
        &[
            "user",
            "link",
            &user_at_b,
            "--issuer",
            issuer_id,
            "--subject",
            &user_at_a,
        ],
    );
    b.refresh().await;

    // A's operator lets the agent get ID-JAGs for B, as B's client, for the MCP
    // server, with one scope.
    let target = admin(
        a.dir.path(),
        &[
            "trust-target",
            "add",
            "--audience",
            &b.url,
            "--integration",
            &agent_at_a,
            "--remote-client-id",
            &agent_at_b,
            "--resource",
            MCP,
            "--scope",
            "mcp:tools",
        ],
    );
    assert_eq!(target["remote_client_id"], agent_at_b.as_str());
    // Refused when added: a public client (no secret, no key), an audience that is
    // no absolute URL, a resource with a fragment, the same target twice.
    let public = admin(a.dir.path(), &["integration", "create", "--name", "Public"]);
    let public = public["integration_key"].as_str().unwrap();
    let a_admin = Admin::new(&binary(), store_args(a.dir.path()));
    let b_url = b.url.as_str();
    for (args, says) in [
        (
            vec!["--audience", b_url, "--integration", public],
            "confidential",
        ),
        (
            vec!["--audience", "not-a-url", "--integration", &agent_at_a],
            "absolute URL",
        ),
        (
            vec![
                "--audience",
                b_url,
                "--integration",
                &agent_at_a,
                "--resource",
                "https://x.example/#f",
            ],
            "resource_malformed",
        ),
        (
            vec!["--audience", b_url, "--integration", &agent_at_a],
            "already",
        ),
    ] {
        let mut command = vec!["trust-target", "add"];
        command.extend(args);
        let refused = a_admin.try_json(&command).unwrap_err();
        assert!(refused.contains(says), "{command:?}: {refused}");
    }
    let listed = admin(
        a.dir.path(),
        &["trust-target", "list", "--integration", &agent_at_a],
    );
    assert_eq!(listed["trust_targets"].as_array().unwrap().len(), 1);

    // The MCP server: the SDK's layer, taking B's tokens for MCP.
    let verifier = Verifier::builder(b.url.clone(), format!("{}/oauth/jwks", b.url))
        .build()
        .unwrap();
    let guard = RequireAccessToken::new(verifier).resource(ProtectedResource::new(MCP).unwrap());
    let app = Router::new()
        .route("/mcp", get(whoami))
        .route_layer(guard.clone())
        .merge(guard.metadata_router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mcp_url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // The user signs in at A; the agent redeems the code for an ID token.
    let idp = TokenClient::discover(
        &a.url,
        ClientAuthentication::client_secret_basic(&agent_at_a, SECRET_AT_A),
    )
    .await
    .unwrap();
    let request = idp
        .authorization_request(REDIRECT)
        .unwrap()
        .scopes(["openid", "signature"]);
    let pending = request.start().unwrap();
    let mut browser = Browser::new();
    let callback = browser
        .approve(
            &a.url,
            pending.url(),
            &format!("{user_at_a}@example.com"),
            PASSWORD,
        )
        .await;
    let signed_in = idp.finish_authorization(&pending, &callback).await.unwrap();
    let id_token = signed_in.id_token.expect("an ID token for openid");

    // The two calls as one: exchange at A, then the JWT bearer grant at B.
    let mcp_auth = TokenClient::discover(
        &b.url,
        ClientAuthentication::client_secret_basic(&agent_at_b, SECRET_AT_B),
    )
    .await
    .unwrap();
    let access = CrossAppAccess::new(idp.clone(), mcp_auth.clone())
        .resource(MCP)
        .scope("mcp:tools mcp:admin");
    let token = access.access_token(&id_token).await.unwrap();
    assert_eq!(token.scope.as_deref(), Some("mcp:tools"), "narrowed at A");
    assert!(token.refresh_token.is_none());
    let claims = jwt_claims(&token.access_token);
    assert_eq!(claims["aud"], MCP);
    assert_eq!(claims["sub"], user_at_b.as_str());

    let http = reqwest::Client::new();
    let answer = http
        .get(&mcp_url)
        .bearer_auth(&token.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(
        answer.text().await.unwrap(),
        format!("{user_at_b} via {agent_at_b}")
    );
    let refused = http.get(&mcp_url).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 401);

    // Once A's operator removes the trust target, the agent gets nothing more.
    admin(
        a.dir.path(),
        &[
            "trust-target",
            "remove",
            "--audience",
            &b.url,
            "--integration",
            &agent_at_a,
        ],
    );
    match access.access_token(&id_token).await {
        Err(TokenClientError::OAuth(error)) => {
            assert_eq!(error.error, "invalid_target", "{error:?}")
        }
        other => panic!("expected invalid_target, got {other:?}"),
    }
}
