//! The client credentials token source against the real server: the client's own
//! token, the client authenticated by a client assertion (`private_key_jwt`) the
//! source signs for every request; caching, single flight, refresh, the audience a
//! strict server asks for, and the server's refusals typed.

use std::time::Duration;

use jwtgrant_client::{Jwtgrant, PrivateKey, TokenSource, TokenSourceError, Verifier};
use jwtgrant_core::{JwsAlgorithm, SigningKey};
use jwtgrant_proto::ErrorCode;
use jwtgrant_server::RawConfig;

use crate::support::*;

/// Client credentials tokens the server has issued, from its metrics.
fn issued(server: &TestServer) -> u64 {
    let series = "jwtgrant_grants_issued_total{grant_type=\"client_credentials\"}";
    server
        .state
        .metrics
        .render(server.state.audit.counts())
        .lines()
        .find_map(|line| line.strip_prefix(series))
        .and_then(|value| value.trim().parse().ok())
        .unwrap()
}

async fn jump(by: Duration) {
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
}

#[tokio::test]
async fn the_clients_own_token_from_the_discovered_endpoint() {
    let f = Fixture::new().await;
    let source = Jwtgrant::new(&f.server.url)
        .unwrap()
        .client_credentials(&f.integration_key, f.key.clone())
        .scopes(["signature"])
        .build()
        .unwrap();
    let token = source.token().await.unwrap();
    assert_eq!(token.scope(), Some("signature"));
    assert_eq!(token.to_response().refresh_token, None);
    let claims = Verifier::discover(&f.server.url)
        .build()
        .unwrap()
        .verify_with_scopes(token.as_str(), &["signature"])
        .await
        .unwrap();
    assert_eq!(claims.sub, f.integration_key);
    assert_eq!(claims.client_id, f.integration_key);

    assert_eq!(source.access_token().await.unwrap(), token.as_str());
    assert_eq!(issued(&f.server), 1, "the second call came from the cache");
    assert_eq!(f.server.issued(), 0, "no JWT bearer grant was used");
}

#[tokio::test]
async fn many_callers_one_request_and_a_fresh_assertion_for_each_refresh() {
    let f = Fixture::new().await;
    let proxy = Proxy::start(&f.server.url, vec![]).await;
    // The token endpoint URL as the audience, which a server that is not strict
    // accepts.
    let source = TokenSource::client_credentials(&f.integration_key, f.key.clone())
        .token_endpoint(proxy.token_endpoint())
        .audience(f.server.token_endpoint())
        .refresh_margin(Duration::from_secs(60))
        .build()
        .unwrap();
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let source = source.clone();
            tokio::spawn(async move { source.access_token().await })
        })
        .collect();
    let mut tokens = Vec::new();
    for call in calls {
        tokens.push(call.await.unwrap().unwrap());
    }
    assert!(tokens.windows(2).all(|pair| pair[0] == pair[1]));
    assert_eq!(proxy.requests(), 1);

    // Past the refresh point: a new request, with a new client assertion (the
    // server refuses a `jti` it has seen).
    jump(Duration::from_secs(3600 - 59)).await;
    let _still_valid = source.access_token().await.unwrap();
    for _ in 0..100 {
        if issued(&f.server) == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(issued(&f.server), 2);
    assert_eq!(proxy.requests(), 2);
    assert_ne!(source.access_token().await.unwrap(), tokens[0]);
}

#[tokio::test]
async fn a_transient_failure_is_retried() {
    let f = Fixture::new().await;
    let proxy = Proxy::start(&f.server.url, vec![Canned::status(503)]).await;
    let source = TokenSource::client_credentials(&f.integration_key, f.key.clone())
        .token_endpoint(proxy.token_endpoint())
        .audience(&f.server.url)
        .build()
        .unwrap();
    source.access_token().await.unwrap();
    assert_eq!(proxy.requests(), 2);
    assert_eq!(issued(&f.server), 1);
}

#[tokio::test]
async fn a_strict_server_wants_the_issuer_as_audience() {
    let server = TestServer::start_with(RawConfig {
        strict_client_assertion_audience: Some(true),
        ..RawConfig::default()
    })
    .await;
    let f = Fixture::on(server).await;
    // Discovered: the client assertion names the issuer.
    let discovered = Jwtgrant::new(&f.server.url)
        .unwrap()
        .client_credentials(&f.integration_key, f.key.clone())
        .build()
        .unwrap();
    discovered.access_token().await.unwrap();
    // Given only the token endpoint, the default audience is that URL: refused.
    let endpoint_only = TokenSource::client_credentials(&f.integration_key, f.key.clone())
        .token_endpoint(f.server.token_endpoint())
        .build()
        .unwrap();
    let error = endpoint_only.access_token().await.unwrap_err();
    let oauth = error.oauth().unwrap();
    assert_eq!(oauth.status, 401);
    assert!(oauth.is(ErrorCode::InvalidClient), "{oauth}");
    // Told the issuer, it is accepted.
    TokenSource::client_credentials(&f.integration_key, f.key.clone())
        .token_endpoint(f.server.token_endpoint())
        .audience(&f.server.url)
        .build()
        .unwrap()
        .access_token()
        .await
        .unwrap();
}

#[tokio::test]
async fn refusals_are_typed_and_not_retried() {
    let server = TestServer::start().await;
    let key = rsa_key();
    let (users_only, _) = server
        .add_integration(IntegrationSpec::default(), key.signing_key())
        .await;
    let (applications, _) = server
        .add_integration(IntegrationSpec::applications(), key.signing_key())
        .await;
    let proxy = Proxy::start(&server.url, vec![]).await;
    let source = |client: &str, key: PrivateKey| {
        TokenSource::client_credentials(client, key)
            .token_endpoint(proxy.token_endpoint())
            .audience(&server.url)
            .build()
            .unwrap()
    };

    let error = source(&users_only, key.clone())
        .access_token()
        .await
        .unwrap_err();
    assert!(
        error.oauth().unwrap().is(ErrorCode::UnauthorizedClient),
        "{error}"
    );

    let stranger = PrivateKey::new(SigningKey::generate(JwsAlgorithm::EdDsa, 0).unwrap());
    let error = source(&applications, stranger)
        .access_token()
        .await
        .unwrap_err();
    let oauth = error.oauth().unwrap();
    assert_eq!(oauth.status, 401);
    assert!(oauth.is(ErrorCode::InvalidClient), "{oauth}");
    assert_eq!(proxy.requests(), 2, "neither refusal was retried");

    let error = TokenSource::client_credentials(&applications, key)
        .token_endpoint(proxy.token_endpoint())
        .subject("a-user")
        .build()
        .unwrap_err();
    assert!(matches!(
        error,
        TokenSourceError::SubjectWithClientCredentials
    ));
}

#[tokio::test]
async fn a_jwt_bearer_source_may_authenticate_the_client_too() {
    let f = Fixture::new().await;
    let source = Jwtgrant::new(&f.server.url)
        .unwrap()
        .token_source(&f.integration_key, f.key.clone())
        .subject(&f.user_id)
        .scopes(["signature", "impersonation"])
        .client_assertion(|client| client.lifetime(Duration::from_secs(60)))
        .build()
        .unwrap();
    let token = source.token().await.unwrap();
    assert_eq!(token.scope(), Some("signature impersonation"));
    assert_eq!(f.server.issued(), 1);
}

#[tokio::test]
async fn a_source_asks_for_its_resource_and_the_token_is_for_it() {
    const MCP: &str = "https://mcp.example.com/mcp";
    let f = Fixture::new().await;
    let update = jwtgrant_store::IntegrationUpdate {
        resources: Some(vec![MCP.into()]),
        ..Default::default()
    };
    f.server
        .store
        .update_integration(&f.integration_key, update)
        .await
        .unwrap();
    f.server.refresh().await;
    let source = Jwtgrant::new(&f.server.url)
        .unwrap()
        .client_credentials(&f.integration_key, f.key.clone())
        .resource(MCP)
        .build()
        .unwrap();
    let token = source.access_token().await.unwrap();
    // The resource server (an MCP server) checks the token is for it.
    let for_mcp = Verifier::discover(&f.server.url)
        .audience(MCP)
        .build()
        .unwrap();
    let claims = for_mcp.verify(&token).await.unwrap();
    assert_eq!(claims.client_id, f.integration_key);
    let for_issuer = Verifier::discover(&f.server.url).build().unwrap();
    assert!(
        for_issuer.verify(&token).await.is_err(),
        "aud is the resource only"
    );

    let elsewhere = Jwtgrant::new(&f.server.url)
        .unwrap()
        .client_credentials(&f.integration_key, f.key.clone())
        .resource("https://evil.example.com")
        .build()
        .unwrap();
    let refused = elsewhere.access_token().await.unwrap_err();
    let oauth = refused.oauth().unwrap();
    assert!(oauth.is(ErrorCode::InvalidTarget), "{refused}");
}
