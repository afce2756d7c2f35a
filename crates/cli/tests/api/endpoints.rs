//! Userinfo, discovery, health, metrics and signing-key rotation.

use jwtgrant_proto::{AuthorizationServerMetadata, JwkSet, UserInfo};
use jwtgrant_server::RawConfig;
use serde_json::{Value, json};

use crate::support::*;

async fn access_token(f: &Fixture) -> String {
    let (status, body) = f.token_for(&f.claims()).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn userinfo_in_docusign_shape() {
    let f = Fixture::new().await;
    let token = access_token(&f).await;
    let response = f
        .server
        .http
        .get(format!("{}/oauth/userinfo", f.server.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let info: UserInfo = response.json().await.unwrap();
    assert_eq!(info.sub, f.user_id);
    assert_eq!(
        (
            info.name.as_str(),
            info.given_name.as_str(),
            info.family_name.as_str()
        ),
        ("Ada Lovelace", "Ada", "Lovelace")
    );
    assert_eq!(info.created, "2023-11-14T22:13:20Z");
    assert_eq!(info.accounts.len(), 1);
    assert!(info.accounts[0].is_default);
    assert_eq!(info.accounts[0].base_uri, "https://demo.example.com");
}

#[tokio::test]
async fn userinfo_refuses_bad_tokens_with_401_and_challenge() {
    let f = Fixture::new().await;
    let token = access_token(&f).await;
    let url = format!("{}/oauth/userinfo", f.server.url);

    let response = f.server.http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");

    let mut tampered = token.clone();
    tampered.replace_range(tampered.len() - 4.., "AAAA");
    for bad in ["not-a-jwt", tampered.as_str(), &f.sign(&f.claims())] {
        let response = f
            .server
            .http
            .get(&url)
            .bearer_auth(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{bad}");
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            challenge.starts_with("Bearer error=\"invalid_token\""),
            "{challenge}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_token");
    }

    // A disabled user's token stops working.
    f.server
        .store
        .set_user_active(&f.user_id, false)
        .await
        .unwrap();
    f.server.refresh().await;
    let response = f
        .server
        .http
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn expired_access_tokens_are_refused() {
    let server = TestServer::start_with(RawConfig {
        // Long enough that a loaded machine still uses it before it expires; the
        // server's clock is then moved past it.
        access_token_lifetime_secs: Some(60),
        clock_leeway_secs: Some(0),
        ..Default::default()
    })
    .await;
    let f = Fixture::with(server, IntegrationSpec::default()).await;
    let token = access_token(&f).await;
    // Verified once (and cached), then expired: the cache honours expiry.
    let response = f
        .server
        .http
        .get(format!("{}/oauth/userinfo", f.server.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // 61 seconds later by the server's clock: past the 60-second lifetime.
    f.server.state.clock.advance(61);
    let response = f
        .server
        .http
        .get(format!("{}/oauth/userinfo", f.server.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("expired")
    );
}

#[tokio::test]
async fn metadata_jwks_health_and_metrics() {
    let f = Fixture::new().await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let metadata: AuthorizationServerMetadata = f.server.get(path).await.json().await.unwrap();
        assert_eq!(metadata.issuer, f.server.url);
        assert_eq!(
            metadata.token_endpoint,
            format!("{}/oauth/token", f.server.url)
        );
        assert_eq!(metadata.jwks_uri, format!("{}/oauth/jwks", f.server.url));
        assert!(
            metadata
                .grant_types_supported
                .contains(&JWT_BEARER.to_string())
        );
    }
    let jwks: JwkSet = f.server.get("/oauth/jwks").await.json().await.unwrap();
    assert_eq!(jwks.keys.len(), 1);
    assert!(jwks.keys.iter().all(|k| k.d.is_none() && k.kid.is_some()));

    assert_eq!(f.server.get("/healthz").await.status(), 200);
    assert_eq!(f.server.get("/readyz").await.status(), 200);

    assert_eq!(f.token_for(&f.claims()).await.0, 200);
    assert_eq!(
        f.token_for(&f.claims_with(json!({"aud": "nope"}), &[]))
            .await
            .0,
        400
    );
    let metrics = f.server.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("jwtgrant_grants_issued_total{grant_type=\"jwt-bearer\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("jwtgrant_grants_refused_total{error=\"invalid_grant\"} 1"));
    assert!(metrics.contains("jwtgrant_token_request_duration_seconds_count 2"));
}

#[tokio::test]
async fn metadata_claims_only_what_works() {
    let f = Fixture::new().await;
    let spec = |scopes: &[&str]| IntegrationSpec {
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        ..IntegrationSpec::default()
    };
    let store = f.server.store.as_ref();
    add_integration(
        store,
        spec(&["extended", "admin_read", "signature"]),
        &f.key,
    )
    .await;
    let (disabled, _) = add_integration(store, spec(&["only_when_enabled"]), &f.key).await;
    store
        .set_integration_active(&disabled, false)
        .await
        .unwrap();
    f.server.refresh().await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let metadata: Value = f.server.get(path).await.json().await.unwrap();
        assert_eq!(
            metadata["scopes_supported"],
            json!(["admin_read", "extended", "impersonation", "signature"]),
            "{path}: the default scopes and the active integrations', sorted"
        );
        // ID tokens are signed by the server's own key (ES256 by default), and the
        // OpenID parameters the authorization endpoint honours are listed.
        assert_eq!(
            metadata["id_token_signing_alg_values_supported"],
            json!(["ES256"]),
            "{path}"
        );
        assert_eq!(
            metadata["prompt_values_supported"],
            json!(["none", "login", "consent", "select_account"]),
            "{path}"
        );
        for claim in ["nonce", "auth_time", "at_hash"] {
            assert!(
                metadata["claims_supported"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c == claim),
                "{path} {claim}"
            );
        }
        assert!(
            metadata["grant_types_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|g| g == "urn:ietf:params:oauth:grant-type:token-exchange"),
            "{path}"
        );
        // private_key_jwt, with asymmetric algorithms.
        let algs = metadata["token_endpoint_auth_signing_alg_values_supported"]
            .as_array()
            .unwrap();
        assert!(algs.iter().any(|a| a == "RS256") && algs.iter().any(|a| a == "ES256"));
        assert!(
            algs.iter().all(|a| !a.as_str().unwrap().starts_with("HS")),
            "{path}"
        );
        for methods in [
            "token_endpoint_auth_methods_supported",
            "introspection_endpoint_auth_methods_supported",
            "revocation_endpoint_auth_methods_supported",
        ] {
            let listed = metadata[methods].as_array().unwrap();
            assert!(
                listed.iter().any(|m| m == "private_key_jwt"),
                "{path} {methods}"
            );
            assert!(
                listed.iter().all(|m| m != "client_secret_jwt"),
                "{path} {methods}"
            );
        }
        assert_eq!(metadata["subject_types_supported"], json!(["public"]));
    }
}

#[tokio::test]
async fn configured_algorithms_sign_access_tokens() {
    for alg in ["RS256", "EdDSA"] {
        let server = TestServer::start_with(RawConfig {
            access_token_alg: Some(alg.into()),
            ..Default::default()
        })
        .await;
        let f = Fixture::with(server, IntegrationSpec::default()).await;
        let token = access_token(&f).await;
        let header = token.split('.').next().unwrap();
        let header: Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(header["alg"], alg);
        let response = f
            .server
            .http
            .get(format!("{}/oauth/userinfo", f.server.url))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
}

#[tokio::test]
async fn rotated_key_is_published_at_once_and_signs_after_its_delay() {
    let f = Fixture::new().await;
    let old_token = access_token(&f).await;
    let kid_of = |token: &str| -> String {
        let header = token.split('.').next().unwrap();
        let header: Value = serde_json::from_slice(
            &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, header)
                .unwrap(),
        )
        .unwrap();
        header["kid"].as_str().unwrap().to_owned()
    };
    let old_kid = kid_of(&old_token);

    let now = now();
    let new_kid = jwtgrant_server::signing::add_signing_key(
        f.server.store.as_ref(),
        &f.server.state.sealer,
        jwtgrant_core::JwsAlgorithm::Es256,
        now + 2,
        now,
    )
    .await
    .unwrap();
    f.server.refresh().await;
    let jwks: JwkSet = f.server.get("/oauth/jwks").await.json().await.unwrap();
    let kids: Vec<_> = jwks.keys.iter().filter_map(|k| k.kid.clone()).collect();
    assert!(
        kids.contains(&old_kid) && kids.contains(&new_kid),
        "both published: {kids:?}"
    );
    assert_eq!(
        kid_of(&access_token(&f).await),
        old_kid,
        "not signing before its time"
    );

    // Three seconds later by the server's clock: past the new key's delay.
    f.server.state.clock.advance(3);
    assert_eq!(kid_of(&access_token(&f).await), new_kid);
    let response = f
        .server
        .http
        .get(format!("{}/oauth/userinfo", f.server.url))
        .bearer_auth(&old_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "tokens of the old key stay valid");
}

#[tokio::test]
async fn userinfo_caches_verified_tokens() {
    let f = Fixture::new().await;
    let token = access_token(&f).await;
    assert!(f.server.state.registry.verified_token(&token).is_none());
    f.server.refresh().await;
    let v1 = f.server.store.registry_version().await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let v2 = f.server.store.registry_version().await.unwrap();
    assert_eq!(v1, v2, "registry version is stable");
    let url = format!("{}/oauth/userinfo", f.server.url);
    let response = f
        .server
        .http
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        f.server.state.registry.verified_token(&token).is_some(),
        "verified once, then cached"
    );
}

#[tokio::test]
async fn signing_keys_are_encrypted_at_rest_with_a_master_key() {
    let master = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let raw = RawConfig {
        master_key: Some(master.into()),
        ..Default::default()
    };
    let f = Fixture::with(
        TestServer::start_with(raw).await,
        IntegrationSpec::default(),
    )
    .await;
    let token = access_token(&f).await;
    let stored = f.server.store.signing_keys().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert!(
        stored[0].private_key_pkcs8.starts_with(b"JGK1"),
        "sealed, not PKCS#8"
    );
    let response = f
        .server
        .http
        .get(format!("{}/oauth/userinfo", f.server.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // The same store without the master key cannot load its keys: start fails.
    let Fixture { server, .. } = f;
    let dir = server.stop().await;
    let config = jwtgrant_server::ServerConfig::from_raw(RawConfig {
        data_dir: Some(dir.path().to_path_buf()),
        database: postgres_url_for(dir.path()).await,
        ..Default::default()
    })
    .unwrap();
    let store = jwtgrant_store::open(&config.store, &Default::default())
        .await
        .unwrap();
    let refused =
        jwtgrant_server::AppState::new(config, store, "127.0.0.1:0".parse().unwrap()).await;
    let error = refused.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(error.contains("JWTGRANT_MASTER_KEY"), "{error}");
}
