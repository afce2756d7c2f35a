//! The presets against the real server: DocuSign's shape (jwtgrant emulating its
//! account server) and a Google-style service-account key file.

use jwtgrant_client::{DocuSign, Jwtgrant, ServiceAccountKey, TokenSourceBuilder, Verifier};
use jwtgrant_proto::ErrorCode;
use jwtgrant_server::RawConfig;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn docusign_preset_gets_a_user_token() {
    let f = Fixture::new().await;
    let docusign = DocuSign::at(&f.server.url).unwrap();
    assert_eq!(docusign.oauth_host(), f.server.host());
    let source = docusign
        .token_source(&f.integration_key, &f.user_id, f.key.clone())
        .build()
        .unwrap();
    let token = source.access_token().await.unwrap();
    let claims = Verifier::discover(&f.server.url)
        .build()
        .unwrap()
        .verify_with_scopes(&token, &["signature", "impersonation"])
        .await
        .unwrap();
    assert_eq!(claims.sub, f.user_id);
}

#[tokio::test]
async fn docusign_consent_required_without_url_gets_the_presets() {
    // DocuSign answers a bare `consent_required`; the preset supplies the URL.
    let proxy = Proxy::start(
        "http://127.0.0.1:9",
        vec![Canned::status(400).json(json!({"error": "consent_required"}))],
    )
    .await;
    let docusign = DocuSign::at(&proxy.url)
        .unwrap()
        .redirect_uri("https://localhost:3000/callback");
    let source = docusign
        .token_source("ik", "user", rsa_key())
        .build()
        .unwrap();
    let error = source.access_token().await.unwrap_err();
    assert!(error.oauth().unwrap().is(ErrorCode::ConsentRequired));
    assert_eq!(
        error.consent_url(),
        Some(docusign.consent_url("ik").as_str())
    );
    assert_eq!(proxy.requests(), 1);
}

#[tokio::test]
async fn service_account_key_file_gets_an_application_token() {
    let f = Fixture::new().await;
    let kid = f.key.public_key().thumbprint().to_owned();
    let pem = f.key.signing_key().to_pkcs8_pem().unwrap();
    let file = json!({
        "type": "service_account",
        "project_id": "sdk-tests",
        "private_key_id": kid,
        "private_key": *pem,
        "client_email": f.integration_key,
        "client_id": "1234567890",
        "token_uri": f.server.token_endpoint(),
    });
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("service-account.json");
    std::fs::write(&path, file.to_string()).unwrap();

    let account = ServiceAccountKey::from_file(&path).unwrap();
    let source = account
        .token_source(["signature"])
        .unwrap()
        .build()
        .unwrap();
    let token = source.access_token().await.unwrap();
    let claims = Verifier::discover(&f.server.url)
        .build()
        .unwrap()
        .verify(&token)
        .await
        .unwrap();
    assert_eq!(claims.sub, f.integration_key);
    assert_eq!(claims.scope, "signature");
}

#[tokio::test]
async fn a_public_url_with_its_default_port_names_one_audience_for_client_and_server() {
    // The operator wrote the port out; the presets' `aud` and the server's accepted
    // bare host must still be the same string.
    let public_url = "https://auth.example.com:443";
    let server = TestServer::start_with(RawConfig {
        public_url: Some(public_url.into()),
        ..RawConfig::default()
    })
    .await;
    let f = Fixture::on(server).await;
    let jwtgrant = Jwtgrant::new(public_url).unwrap();
    let docusign = DocuSign::at(public_url).unwrap();
    assert_eq!(jwtgrant.audience(), "auth.example.com");
    assert_eq!(docusign.oauth_host(), "auth.example.com");
    for assertion in [
        jwtgrant.assertion(&f.integration_key).scopes(["signature"]),
        docusign
            .assertion(&f.integration_key, &f.user_id)
            .scopes(["signature", "impersonation"]),
    ] {
        // The public URL is not served here: the token endpoint is the loopback one.
        let source = TokenSourceBuilder::from_assertion(assertion, f.key.clone())
            .token_endpoint(f.server.token_endpoint())
            .build()
            .unwrap();
        let token = source.access_token().await;
        assert!(token.is_ok(), "{token:?}");
    }
    assert_eq!(f.server.issued(), 2);
}
