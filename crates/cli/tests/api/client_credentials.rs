//! The client credentials grant (RFC 6749 section 4.4) over HTTP: a confidential
//! integration allowed application tokens gets a token for itself, with a secret by
//! HTTP Basic or in the form; everyone else is refused with the right code.

use jwtgrant_server::credentials::hash_secret;
use serde_json::Value;

use crate::support::*;

const SECRET: &str = "s3cret client credentials";

/// A server with an integration (`scopes` default) given a client secret.
async fn confidential(server: &TestServer, spec: IntegrationSpec) -> String {
    let (integration_key, _) = server.add_integration(spec, &rsa_key()).await;
    let hash = hash_secret(SECRET).unwrap();
    server
        .store
        .set_integration_secret(&integration_key, Some(&hash))
        .await
        .unwrap();
    server.refresh().await;
    integration_key
}

async fn token(
    server: &TestServer,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (u16, Value) {
    let mut request = server.http.post(server.token_endpoint()).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_confidential_integration_gets_a_token_for_itself() {
    let server = TestServer::start().await;
    let ik = confidential(&server, IntegrationSpec::applications()).await;

    let (status, body) = token(
        &server,
        Some((&ik, SECRET)),
        &[("grant_type", "client_credentials"), ("scope", "signature")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "signature");
    assert!(body.get("refresh_token").is_none(), "{body}");
    let access_token = body["access_token"].as_str().unwrap();

    // What the token says, as a resource server learns it by introspection.
    let introspected: Value = server
        .http
        .post(format!("{}/oauth/introspect", server.url))
        .basic_auth(&ik, Some(SECRET))
        .form(&[("token", access_token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], true, "{introspected}");
    assert_eq!(introspected["sub"], ik.as_str());
    assert_eq!(introspected["client_id"], ik.as_str());
    assert_eq!(introspected["scope"], "signature");

    // The secret in the form (client_secret_post) works too; without scope, none.
    let (status, body) = token(
        &server,
        None,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &ik),
            ("client_secret", SECRET),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("scope").is_none_or(Value::is_null), "{body}");
}

#[tokio::test]
async fn clients_that_may_not_use_it_are_refused() {
    let server = TestServer::start().await;
    let ik = confidential(&server, IntegrationSpec::applications()).await;
    let grant = [("grant_type", "client_credentials")];

    // A wrong secret: client authentication fails.
    let (status, body) = token(&server, Some((&ik, "wrong")), &grant).await;
    assert_eq!((status, oauth_error(&body).0), (401, "invalid_client"));

    // No client authentication at all.
    let (status, body) = token(&server, None, &grant).await;
    assert_eq!((status, oauth_error(&body).0), (401, "invalid_client"));

    // A scope beyond the integration's.
    let (status, body) = token(
        &server,
        Some((&ik, SECRET)),
        &[("grant_type", "client_credentials"), ("scope", "admin")],
    )
    .await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (400, "invalid_scope"),
        "{body}"
    );

    // A confidential integration that may not obtain application tokens.
    let users_only = confidential(&server, IntegrationSpec::default()).await;
    let (status, body) = token(&server, Some((&users_only, SECRET)), &grant).await;
    assert_eq!(
        oauth_error(&body),
        (
            "unauthorized_client",
            "application_tokens_not_allowed: this integration may not request application tokens, so it may not use the client_credentials grant"
        )
    );
    assert_eq!(status, 400);

    // A public integration (no secret) naming itself.
    let (public, _) = server
        .add_integration(IntegrationSpec::applications(), &rsa_key())
        .await;
    let (status, body) = token(
        &server,
        None,
        &[("grant_type", "client_credentials"), ("client_id", &public)],
    )
    .await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (400, "unauthorized_client"),
        "{body}"
    );

    // A disabled integration stops authenticating once the registry has seen it.
    server
        .store
        .set_integration_active(&ik, false)
        .await
        .unwrap();
    server.refresh().await;
    let (status, body) = token(&server, Some((&ik, SECRET)), &grant).await;
    assert_eq!((status, oauth_error(&body).0), (401, "invalid_client"));
}

#[tokio::test]
async fn the_metadata_lists_the_grant() {
    let server = TestServer::start().await;
    let meta: Value = server
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    let grants = meta["grant_types_supported"].as_array().unwrap();
    assert!(grants.iter().any(|g| g == "client_credentials"), "{meta}");
}
