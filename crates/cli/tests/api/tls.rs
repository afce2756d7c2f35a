//! Native TLS: the token endpoint over HTTPS with a real certificate.

use jwtgrant_server::RawConfig;

use crate::support::*;

#[tokio::test]
async fn token_endpoint_over_native_tls() {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, certified.cert.pem()).unwrap();
    std::fs::write(&key_path, certified.signing_key.serialize_pem()).unwrap();

    let mut server = TestServer::start_with(RawConfig {
        tls_cert: Some(cert_path),
        tls_key: Some(key_path),
        ..Default::default()
    })
    .await;
    assert!(server.url.starts_with("https://"));
    let ca = reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap();
    server.http = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();

    let f = Fixture::with(server, IntegrationSpec::default()).await;
    let (status, body) = f.token_for(&f.claims()).await;
    assert_eq!(status, 200, "{body}");
    let metadata: serde_json::Value = f
        .server
        .get("/.well-known/oauth-authorization-server")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        metadata["token_endpoint"]
            .as_str()
            .unwrap()
            .starts_with("https://")
    );

    // Under TLS the sign-in page's session cookie is Secure (and still HttpOnly,
    // SameSite=Lax).
    let page = f
        .server
        .get(&format!(
            "/oauth/auth?response_type=code&client_id={}&scope=signature&state=s&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
            f.integration_key
        ))
        .await;
    assert_eq!(page.status(), 200);
    let cookie = page
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(cookie.starts_with("jwtgrant_session="), "{cookie}");
    for attribute in ["; Secure", "; HttpOnly", "; SameSite=Lax"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }

    // Plain HTTP to the TLS port gets no token.
    let plain = f.server.url.replace("https://", "http://");
    let response = reqwest::Client::new()
        .get(format!("{plain}/healthz"))
        .send()
        .await;
    assert!(response.map(|r| !r.status().is_success()).unwrap_or(true));
}
