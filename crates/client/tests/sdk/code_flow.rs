//! The authorization code flow with the SDK against the real server: a user signs
//! in and consents on the server's pages over HTTP (the test kit's browser), then
//! the SDK's `TokenClient` exchanges the code, refreshes, introspects and revokes,
//! authenticating the client with `private_key_jwt`, `client_secret_basic` or as a
//! public client with PKCE; the server's refusals come back as its OAuth errors.

use jwtgrant_client::{
    AuthorizationError, ClientAssertionBuilder, ClientAuthentication, Jwtgrant,
    PendingAuthorization, PrivateKey, TokenClient, TokenClientError, TokenTypeHint, Verifier,
};
use jwtgrant_core::jws::CompactJws;
use jwtgrant_core::{JwsAlgorithm, SigningKey};
use jwtgrant_proto::ErrorCode;
use jwtgrant_server::credentials::hash_secret;
use jwtgrant_store::NewIntegration;
use jwtgrant_testkit::Browser;

use crate::support::*;

/// The redirect URI the kit registers for its integrations.
const REDIRECT: &str = "http://localhost:9000/callback";
const PASSWORD: &str = "correct horse battery staple";
const SECRET: &str = "a-client-secret-of-some-length";

/// A server with an integration that has the shared RSA key registered (and no
/// secret), and a user with a password who has not consented yet.
struct Flow {
    server: TestServer,
    integration_key: String,
    key: PrivateKey,
    user_id: String,
    email: String,
}

impl Flow {
    async fn new() -> Flow {
        let server = TestServer::start().await;
        let key = rsa_key();
        let (integration_key, _) = server
            .add_integration(IntegrationSpec::default(), key.signing_key())
            .await;
        let user_id = server.add_user(None).await;
        let hash = hash_secret(PASSWORD).unwrap();
        server
            .store
            .set_user_password(&user_id, Some(&hash))
            .await
            .unwrap();
        server.refresh().await;
        Flow {
            email: format!("{user_id}@example.com"),
            server,
            integration_key,
            key,
            user_id,
        }
    }

    /// The SDK's client of this server for `auth`, from discovery.
    async fn client(&self, auth: ClientAuthentication) -> TokenClient {
        Jwtgrant::new(&self.server.url)
            .unwrap()
            .token_client(auth)
            .await
            .unwrap()
    }

    fn private_key_jwt(&self) -> ClientAuthentication {
        ClientAuthentication::private_key_jwt(&self.integration_key, self.key.clone())
    }

    /// An authorization request of `client` for the default scopes, started.
    fn start(&self, client: &TokenClient) -> PendingAuthorization {
        client
            .authorization_request(REDIRECT)
            .unwrap()
            .scopes(["signature", "impersonation"])
            .start()
            .unwrap()
    }

    /// The user signs in and allows in `browser`: the URL they are sent back to.
    async fn approve(&self, browser: &mut Browser, pending: &PendingAuthorization) -> String {
        let callback = browser
            .approve(&self.server.url, pending.url(), &self.email, PASSWORD)
            .await;
        assert!(callback.starts_with(REDIRECT), "{callback}");
        callback
    }

    /// A public integration (no key, no secret) with the kit's redirect URI.
    async fn public_integration(&self) -> String {
        let key = uuid::Uuid::new_v4().to_string();
        self.server
            .store
            .create_integration(NewIntegration {
                integration_key: key.clone(),
                name: "Public App".into(),
                scopes: vec!["signature".into(), "impersonation".into()],
                redirect_uris: vec![REDIRECT.into()],
                resources: Vec::new(),
                default_scopes: Vec::new(),
                allow_application_tokens: false,
                require_jti: false,
                created_at: now(),
            })
            .await
            .unwrap();
        self.server.refresh().await;
        key
    }
}

/// The server's OAuth error of a failed call.
fn refused(error: &TokenClientError) -> (u16, &str, &str) {
    let oauth = error
        .oauth()
        .unwrap_or_else(|| panic!("not an OAuth error: {error:?}"));
    (
        oauth.status,
        oauth.error.as_str(),
        oauth.error_description.as_deref().unwrap_or_default(),
    )
}

#[tokio::test]
async fn the_code_flow_with_private_key_jwt_exchange_refresh_introspect_revoke() {
    let flow = Flow::new().await;
    let client = flow.client(flow.private_key_jwt()).await;
    assert_eq!(client.issuer(), Some(flow.server.url.as_str()));
    let pending = flow.start(&client);
    let mut browser = Browser::new();
    let callback = flow.approve(&mut browser, &pending).await;

    let tokens = client
        .finish_authorization(&pending, &callback)
        .await
        .unwrap();
    assert_eq!(tokens.scope.as_deref(), Some("signature impersonation"));
    let first_refresh = tokens.refresh_token.clone().unwrap();
    let claims = Verifier::discover(&flow.server.url)
        .build()
        .unwrap()
        .verify(&tokens.access_token)
        .await
        .unwrap();
    assert_eq!(claims.sub, flow.user_id);
    assert_eq!(claims.client_id, flow.integration_key);

    // Introspection with a client assertion: a private_key_jwt client may.
    let info = client.introspect(&tokens.access_token, None).await.unwrap();
    assert!(info.active);
    assert_eq!(
        info.client_id.as_deref(),
        Some(flow.integration_key.as_str())
    );
    assert_eq!(info.sub.as_deref(), Some(flow.user_id.as_str()));
    assert_eq!(info.username.as_deref(), Some(flow.email.as_str()));
    assert_eq!(info.scope.as_deref(), Some("signature impersonation"));

    // Refresh, narrowing the scope: a new access token and the next refresh token.
    let refreshed = client
        .refresh(&first_refresh, Some("signature"))
        .await
        .unwrap();
    assert_eq!(refreshed.scope.as_deref(), Some("signature"));
    let next_refresh = refreshed.refresh_token.clone().unwrap();
    assert_ne!(next_refresh, first_refresh);
    let info = client
        .introspect(&next_refresh, Some(TokenTypeHint::RefreshToken))
        .await
        .unwrap();
    assert!(info.active);
    assert_eq!(info.token_type.as_deref(), Some("refresh_token"));
    assert_eq!(info.scope.as_deref(), Some("signature"));

    // Revoking the refresh token ends its chain, access tokens included.
    client
        .revoke(&next_refresh, Some(TokenTypeHint::RefreshToken))
        .await
        .unwrap();
    for token in [&next_refresh, &refreshed.access_token, &tokens.access_token] {
        let info = client.introspect(token, None).await.unwrap();
        assert!(!info.active, "{info:?}");
        assert_eq!(info.client_id, None, "an inactive token says nothing more");
    }
    let error = client.refresh(&next_refresh, None).await.unwrap_err();
    let (status, code, description) = refused(&error);
    assert_eq!((status, code), (400, "invalid_grant"), "{error}");
    assert!(description.contains("revoked"), "{description}");
    assert!(error.oauth().unwrap().is(ErrorCode::InvalidGrant));
}

#[tokio::test]
async fn the_code_flow_with_client_secret_basic() {
    let flow = Flow::new().await;
    let hash = hash_secret(SECRET).unwrap();
    flow.server
        .store
        .set_integration_secret(&flow.integration_key, Some(&hash))
        .await
        .unwrap();
    flow.server.refresh().await;
    let client = flow
        .client(ClientAuthentication::client_secret_basic(
            &flow.integration_key,
            SECRET,
        ))
        .await;
    let pending = flow.start(&client);
    let callback = flow.approve(&mut Browser::new(), &pending).await;
    let tokens = client
        .finish_authorization(&pending, &callback)
        .await
        .unwrap();
    let refreshed = client
        .refresh(tokens.refresh_token.as_deref().unwrap(), None)
        .await
        .unwrap();
    assert_eq!(refreshed.scope.as_deref(), Some("signature impersonation"));
    assert!(
        client
            .introspect(&refreshed.access_token, Some(TokenTypeHint::AccessToken))
            .await
            .unwrap()
            .active
    );
    client.revoke(&refreshed.access_token, None).await.unwrap();
    assert!(
        !client
            .introspect(&refreshed.access_token, None)
            .await
            .unwrap()
            .active
    );

    // The wrong secret: 401 invalid_client.
    let wrong = flow
        .client(ClientAuthentication::client_secret_basic(
            &flow.integration_key,
            "not-the-secret",
        ))
        .await;
    let error = wrong
        .refresh(refreshed.refresh_token.as_deref().unwrap(), None)
        .await
        .unwrap_err();
    assert_eq!(refused(&error).0, 401, "{error}");
    assert_eq!(refused(&error).1, "invalid_client", "{error}");
}

#[tokio::test]
async fn a_public_client_with_pkce() {
    let flow = Flow::new().await;
    let public = flow.public_integration().await;
    let client = flow.client(ClientAuthentication::none(&public)).await;
    let pending = flow.start(&client);
    assert!(pending.url().contains("code_challenge="));
    let callback = flow.approve(&mut Browser::new(), &pending).await;
    let code = pending.code_from(&callback).unwrap();

    // The code is bound to the request's challenge: another verifier is refused,
    // and the code stays good for the right one.
    let other = jwtgrant_client::Pkce::generate().unwrap();
    let error = client
        .exchange_code(&code, Some(REDIRECT), Some(other.verifier()))
        .await
        .unwrap_err();
    let (status, code_name, description) = refused(&error);
    assert_eq!((status, code_name), (400, "invalid_grant"), "{error}");
    assert!(description.contains("PKCE"), "{description}");
    let tokens = client
        .finish_authorization(&pending, &callback)
        .await
        .unwrap();
    let refreshed = client
        .refresh(tokens.refresh_token.as_deref().unwrap(), None)
        .await
        .unwrap();
    assert!(refreshed.refresh_token.is_some());
    // A public client may revoke its own token, but not introspect.
    client.revoke(&refreshed.access_token, None).await.unwrap();
    let error = client
        .introspect(&refreshed.access_token, None)
        .await
        .unwrap_err();
    assert_eq!(refused(&error).1, "invalid_client", "{error}");
}

#[tokio::test]
async fn refusals_come_back_as_the_servers_oauth_errors() {
    let flow = Flow::new().await;
    let client = flow.client(flow.private_key_jwt()).await;
    let pending = flow.start(&client);
    let mut browser = Browser::new();
    let callback = flow.approve(&mut browser, &pending).await;
    let code = pending.code_from(&callback).unwrap();
    let exchange = |client: TokenClient| {
        let code = code.clone();
        let verifier = pending.code_verifier().map(str::to_owned);
        async move {
            client
                .exchange_code(&code, Some(REDIRECT), verifier.as_deref())
                .await
        }
    };

    // Signed by a key the integration never registered.
    let stranger = PrivateKey::new(SigningKey::generate(JwsAlgorithm::EdDsa, 0).unwrap());
    let error = exchange(
        flow.client(ClientAuthentication::private_key_jwt(
            &flow.integration_key,
            stranger,
        ))
        .await,
    )
    .await
    .unwrap_err();
    assert_eq!(refused(&error).0, 401, "{error}");
    assert_eq!(refused(&error).1, "invalid_client", "{error}");

    // An audience set explicitly, and wrong.
    let elsewhere = flow
        .client(ClientAuthentication::private_key_jwt_with(
            ClientAssertionBuilder::new(&flow.integration_key)
                .audience("https://elsewhere.example"),
            flow.key.clone(),
        ))
        .await;
    let error = exchange(elsewhere).await.unwrap_err();
    let (status, code_name, description) = refused(&error);
    assert_eq!((status, code_name), (401, "invalid_client"), "{error}");
    assert!(description.contains("aud"), "{description}");

    // Neither refusal used the code up.
    let tokens = exchange(client.clone()).await.unwrap();
    assert!(tokens.refresh_token.is_some());
    // Now it is: a second exchange is invalid_grant.
    let error = exchange(client.clone()).await.unwrap_err();
    assert_eq!(refused(&error).1, "invalid_grant", "{error}");

    // The callback of a request is checked against that request: another
    // request's state, and a denial, never reach the token endpoint.
    let other = flow.start(&client);
    let error = client
        .finish_authorization(&other, &callback)
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            TokenClientError::Authorization(AuthorizationError::StateMismatch)
        ),
        "{error:?}"
    );
    // A scope the integration may not have: the server sends the user back with
    // `invalid_scope`, which the SDK returns with its description.
    let wider = client
        .authorization_request(REDIRECT)
        .unwrap()
        .scopes(["signature", "admin"])
        .start()
        .unwrap();
    let page = browser.get(wider.url()).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let error = client
        .finish_authorization(&wider, &page.location())
        .await
        .unwrap_err();
    assert!(
        matches!(
            &error,
            TokenClientError::Authorization(AuthorizationError::Refused { error, .. })
                if error == "invalid_scope"
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn every_request_carries_a_new_client_assertion_for_the_issuer() {
    let flow = Flow::new().await;
    let proxy = Proxy::start(&flow.server.url, vec![]).await;
    let client = TokenClient::builder(flow.private_key_jwt())
        .token_endpoint(proxy.token_endpoint())
        .issuer(&flow.server.url)
        .build()
        .unwrap();
    // Two calls the server authenticates, then refuses for their made-up code:
    // had the second repeated the first's `jti`, it would be invalid_client.
    for code in ["made-up-1", "made-up-2"] {
        let error = client.exchange_code(code, None, None).await.unwrap_err();
        assert_eq!(refused(&error).1, "invalid_grant", "{error}");
    }
    let claims: Vec<_> = proxy
        .forms()
        .iter()
        .map(|form| {
            let field = |name: &str| {
                form.iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .unwrap()
            };
            assert_eq!(field("client_id"), flow.integration_key);
            assert_eq!(
                field("client_assertion_type"),
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            );
            CompactJws::parse(&field("client_assertion"))
                .unwrap()
                .payload()
                .clone()
        })
        .collect();
    assert_eq!(claims.len(), 2);
    for claims in &claims {
        assert_eq!(claims["aud"], flow.server.url.as_str());
        assert_eq!(claims["iss"], flow.integration_key.as_str());
        assert_eq!(claims["sub"], flow.integration_key.as_str());
    }
    assert_ne!(claims[0]["jti"], claims[1]["jti"]);
}

#[tokio::test]
async fn an_mcp_client_names_its_server_as_the_resource_in_both_requests() {
    const MCP: &str = "https://mcp.example.com/mcp";
    let flow = Flow::new().await;
    let public = flow.public_integration().await;
    let update = jwtgrant_store::IntegrationUpdate {
        resources: Some(vec![MCP.into()]),
        default_scopes: Some(vec!["signature".into(), "impersonation".into()]),
        ..Default::default()
    };
    flow.server
        .store
        .update_integration(&public, update)
        .await
        .unwrap();
    flow.server.refresh().await;
    let client = flow.client(ClientAuthentication::none(&public)).await;
    // As MCP clients do: no scope (the integration's defaults), the resource named.
    let pending = client
        .authorization_request(REDIRECT)
        .unwrap()
        .resource(MCP)
        .start()
        .unwrap();
    assert_eq!(pending.resources(), [MCP]);
    let callback = flow.approve(&mut Browser::new(), &pending).await;
    let tokens = client
        .finish_authorization(&pending, &callback)
        .await
        .unwrap();
    assert_eq!(tokens.scope.as_deref(), Some("signature impersonation"));
    let claims = jwtgrant_client::Verifier::discover(&flow.server.url)
        .audience(MCP)
        .build()
        .unwrap()
        .verify(&tokens.access_token)
        .await
        .unwrap();
    assert_eq!(claims.client_id, public);
    // `resource` is the request's own: not a free parameter.
    let reserved = client
        .authorization_request(REDIRECT)
        .unwrap()
        .param("resource", MCP)
        .start();
    assert!(reserved.is_err());
}
