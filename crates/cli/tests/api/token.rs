//! `POST /oauth/token` with the JWT bearer grant: the happy paths, the interop
//! details real clients rely on, and every bad input of the issue with its error.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwtgrant_core::access_token::{self, AccessTokenExpectations};
use jwtgrant_core::jws::sign_compact;
use jwtgrant_core::{JwsAlgorithm, PublicKey, SigningKey};
use jwtgrant_proto::JwkSet;
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test]
async fn user_token_happy_path_with_exact_headers_and_body() {
    let f = Fixture::new().await;
    let response = f
        .server
        .raw_post(
            "application/x-www-form-urlencoded;charset=UTF-8",
            format!(
                "grant_type={}&assertion={}",
                JWT_BEARER.replace(':', "%3A"),
                f.sign(&f.claims())
            ),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains("\"expires_in\":3600"),
        "expires_in is a JSON integer: {text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "signature impersonation");
    assert!(body.get("refresh_token").is_none());

    // The access token verifies against the published JWKS, as RFC 9068 says.
    let token = body["access_token"].as_str().unwrap();
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    let jwks: JwkSet = f.server.get("/oauth/jwks").await.json().await.unwrap();
    let jwk = jwks
        .keys
        .iter()
        .find(|k| k.kid.as_deref() == header["kid"].as_str())
        .expect("kid in JWKS");
    let key = PublicKey::from_jwk(&jwtgrant_proto::Jwk {
        use_: None,
        alg: None,
        kid: None,
        ..jwk.clone()
    })
    .unwrap();
    let expect = AccessTokenExpectations {
        issuer: f.server.url.clone(),
        audience: Some(f.server.url.clone()),
        leeway_secs: 0,
    };
    let claims = access_token::verify(
        token,
        |_| Some((&key, Some(JwsAlgorithm::Es256))),
        &expect,
        now(),
    )
    .unwrap();
    assert_eq!(claims.sub, f.user_id);
    assert_eq!(claims.client_id, f.integration_key);
    assert_eq!(claims.scope, "signature impersonation");
    assert_eq!(claims.exp - claims.iat, 3600);
}

#[tokio::test]
async fn application_tokens_need_the_flag_and_sub_null_means_none() {
    let f = Fixture::new().await;
    let (status, body) = f.token_for(&f.claims_with(json!({"sub": null}), &[])).await;
    assert_eq!((status, oauth_error(&body).0), (400, "invalid_grant"));
    assert!(oauth_error(&body).1.contains("application tokens"));

    let spec = IntegrationSpec {
        allow_application_tokens: true,
        ..Default::default()
    };
    let (app_key, _) = add_integration(f.server.store.as_ref(), spec, &f.key).await;
    for claims in [
        f.claims_with(
            json!({"iss": app_key, "sub": null, "scope": "signature"}),
            &[],
        ),
        f.claims_with(json!({"iss": app_key, "scope": "signature"}), &["sub"]),
    ] {
        let (status, body) = f.token_for(&claims).await;
        assert_eq!(status, 200, "{body}");
        let payload = body["access_token"]
            .as_str()
            .unwrap()
            .split('.')
            .nth(1)
            .unwrap()
            .to_owned();
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(
            claims["sub"],
            app_key.as_str(),
            "application token's sub is the integration key"
        );
    }
}

#[tokio::test]
async fn every_key_type_and_algorithm_is_accepted() {
    let f = Fixture::new().await;
    for (alg, bits) in [
        (JwsAlgorithm::Rs256, 2048),
        (JwsAlgorithm::Rs384, 3072),
        (JwsAlgorithm::Rs512, 2048),
        (JwsAlgorithm::Ps256, 2048),
        (JwsAlgorithm::Ps384, 2048),
        (JwsAlgorithm::Ps512, 4096),
        (JwsAlgorithm::Es256, 0),
        (JwsAlgorithm::Es384, 0),
        (JwsAlgorithm::EdDsa, 0),
    ] {
        let key = SigningKey::generate(alg, bits).unwrap();
        add_key(f.server.store.as_ref(), &f.integration_key, &key).await;
        f.server.refresh().await;
        let (status, body) = f.server.token(&sign(&key, alg, &f.claims())).await;
        assert_eq!(status, 200, "{alg}: {body}");
    }
}

#[tokio::test]
async fn interop_details_padding_aud_array_and_kid() {
    let f = Fixture::new().await;
    // Padded segments, signed over the bytes as sent.
    let pad = |s: String| {
        let mut s = s;
        while !s.len().is_multiple_of(4) {
            s.push('=');
        }
        s
    };
    let header = pad(URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#));
    let payload = pad(URL_SAFE_NO_PAD.encode(serde_json::to_vec(&f.claims()).unwrap()));
    let input = format!("{header}.{payload}");
    let signature = f.key.sign(JwsAlgorithm::Rs256, input.as_bytes()).unwrap();
    let (status, body) = f
        .server
        .token(&format!(
            "{input}.{}",
            pad(URL_SAFE_NO_PAD.encode(signature))
        ))
        .await;
    assert_eq!(status, 200, "{body}");

    let aud = json!([
        "https://elsewhere.example",
        format!("{}/oauth/token", f.server.url)
    ]);
    assert_eq!(
        f.token_for(&f.claims_with(json!({"aud": aud}), &[]))
            .await
            .0,
        200
    );
    assert_eq!(
        f.token_for(&f.claims_with(json!({"aud": f.server.url}), &[]))
            .await
            .0,
        200
    );

    let with_kid =
        sign_compact(&f.key, JwsAlgorithm::Rs256, None, Some(&f.kid), &f.claims()).unwrap();
    assert_eq!(
        f.server.token(&with_kid).await.0,
        200,
        "kid present and typ absent"
    );
    let wrong_kid = sign_compact(
        &f.key,
        JwsAlgorithm::Rs256,
        None,
        Some("unknown"),
        &f.claims(),
    )
    .unwrap();
    let (status, body) = f.server.token(&wrong_kid).await;
    assert_eq!((status, oauth_error(&body).0), (400, "invalid_grant"));
    assert!(
        oauth_error(&body)
            .1
            .starts_with("no_valid_keys_or_signatures")
    );

    // The scope may come from the form instead of the claim.
    let no_scope = f.sign(&f.claims_with(json!({}), &["scope"]));
    let (status, body) = f
        .server
        .post_form(&[
            ("grant_type", JWT_BEARER),
            ("assertion", &no_scope),
            ("scope", "signature impersonation"),
        ])
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn malformed_requests_are_invalid_request() {
    let f = Fixture::new().await;
    let assertion = f.sign(&f.claims());
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "application/json",
            format!(r#"{{"grant_type":"{JWT_BEARER}","assertion":"{assertion}"}}"#).into_bytes(),
            400,
            "invalid_request",
        ),
        (
            "application/x-www-form-urlencoded",
            format!("assertion={assertion}").into_bytes(),
            400,
            "invalid_request",
        ),
        (
            "application/x-www-form-urlencoded",
            format!("grant_type={JWT_BEARER}").into_bytes(),
            400,
            "invalid_request",
        ),
        (
            "application/x-www-form-urlencoded",
            format!("grant_type={JWT_BEARER}&assertion=").into_bytes(),
            400,
            "invalid_request",
        ),
        (
            // Percent-encoded bytes that are not UTF-8.
            "application/x-www-form-urlencoded",
            format!("grant_type={JWT_BEARER}&assertion=%FF%FE{assertion}").into_bytes(),
            400,
            "invalid_request",
        ),
        (
            "application/x-www-form-urlencoded",
            format!("grant_type={JWT_BEARER}&grant_type={JWT_BEARER}&assertion={assertion}")
                .into_bytes(),
            400,
            "invalid_request",
        ),
        (
            "application/x-www-form-urlencoded",
            format!("grant_type={JWT_BEARER}&assertion={assertion}&assertion={assertion}")
                .into_bytes(),
            400,
            "invalid_request",
        ),
        (
            "application/x-www-form-urlencoded",
            [
                format!("grant_type={JWT_BEARER}&assertion=").into_bytes(),
                vec![0xff, 0xfe],
            ]
            .concat(),
            400,
            "invalid_request",
        ),
        (
            "application/x-www-form-urlencoded",
            format!("grant_type=password&assertion={assertion}").into_bytes(),
            400,
            "unsupported_grant_type",
        ),
        (
            "application/x-www-form-urlencoded",
            vec![b'a'; 70 * 1024],
            413,
            "invalid_request",
        ),
    ];
    for (content_type, body, status, code) in cases {
        let response = f.server.raw_post(content_type, body).await;
        assert_eq!(response.status().as_u16(), status);
        let json: Value = response.json().await.expect("JSON error body");
        assert_eq!(oauth_error(&json).0, code, "{json}");
        assert!(!oauth_error(&json).1.is_empty());
    }
    // No content type at all.
    let response = f
        .server
        .http
        .post(format!("{}/oauth/token", f.server.url))
        .body("grant_type=x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    // Still serving.
    assert_eq!(f.token_for(&f.claims()).await.0, 200);
}

fn b64(json: &str) -> String {
    URL_SAFE_NO_PAD.encode(json)
}

#[tokio::test]
async fn structurally_bad_assertions_are_invalid_grant() {
    let f = Fixture::new().await;
    let claims = b64(&f.claims().to_string());
    let good_header = b64(r#"{"alg":"RS256"}"#);
    let hmac_header = b64(r#"{"alg":"HS256","typ":"JWT"}"#);
    let secret = f.key.public_key().to_pem();
    let hmac_input = format!("{hmac_header}.{claims}");
    let mac = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes()),
        hmac_input.as_bytes(),
    );
    let cases: Vec<(String, &str)> = vec![
        (format!("{}.{claims}.c2ln", "a".repeat(17 * 1024)), "16384"),
        ("onlyone".into(), "three"),
        (format!("{good_header}.{claims}"), "three"),
        (format!("{good_header}.{claims}.x.y.z"), "JWE"),
        (format!("{good_header}.{claims}.sig.extra"), "three"),
        (format!("***.{claims}.c2ln"), "base64url"),
        (
            format!("{}.{claims}.c2ln", b64("[1,2]")),
            "header is not a JSON object",
        ),
        (
            format!("{good_header}.{}.c2ln", b64("\"text\"")),
            "payload is not a JSON object",
        ),
        (format!("{}.{claims}.", b64(r#"{"alg":"none"}"#)), "none"),
        (
            format!("{hmac_input}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref())),
            "HMAC",
        ),
        (
            format!("{}.{claims}.c2ln", b64(r#"{"alg":"XS512"}"#)),
            "not supported",
        ),
        (
            format!("{}.{claims}.c2ln", b64(r#"{"alg":"RS256","crit":["b64"]}"#)),
            "crit",
        ),
        (
            format!("{}.{claims}.c2ln", b64(r#"{"alg":"ES256"}"#)),
            "no_valid_keys_or_signatures",
        ),
        (
            format!("{good_header}.{claims}.c2ln"),
            "no_valid_keys_or_signatures",
        ),
    ];
    for (assertion, needle) in cases {
        let (status, body) = f.server.token(&assertion).await;
        assert_eq!(
            (status, oauth_error(&body).0),
            (400, "invalid_grant"),
            "{body}"
        );
        assert!(
            oauth_error(&body).1.contains(needle),
            "wanted {needle:?} in {body}"
        );
    }
    // A valid signature by another (registered, active) integration's key, with
    // `iss` naming this integration: with and without that key's kid.
    let other = other_rsa_key();
    let (_, other_kid) =
        add_integration(f.server.store.as_ref(), IntegrationSpec::default(), &other).await;
    let foreign = sign(&other, JwsAlgorithm::Rs256, &f.claims());
    let (status, body) = f.server.token(&foreign).await;
    assert_eq!(status, 400);
    assert!(
        oauth_error(&body)
            .1
            .starts_with("no_valid_keys_or_signatures"),
        "{body}"
    );
    let foreign_with_kid = jwtgrant_core::jws::sign_compact(
        &other,
        JwsAlgorithm::Rs256,
        Some("JWT"),
        Some(&other_kid),
        &f.claims(),
    )
    .unwrap();
    let (status, body) = f.server.token(&foreign_with_kid).await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (400, "invalid_grant"),
        "{body}"
    );
}

#[tokio::test]
async fn claim_failures_are_invalid_grant_with_actionable_text() {
    let f = Fixture::new().await;
    let now = now();
    let cases: Vec<(Value, &[&str], &str)> = vec![
        (
            json!({"iss": uuid::Uuid::new_v4().to_string()}),
            &[],
            "issuer_not_found:",
        ),
        (json!({}), &["aud"], "no 'aud'"),
        (
            json!({"aud": "account.docusign.com"}),
            &[],
            "'aud' must contain",
        ),
        (json!({"aud": 42}), &[], "'aud' must be"),
        (json!({}), &["exp"], "no 'exp'"),
        (
            json!({"exp": (now + 60).to_string()}),
            &[],
            "'exp' must be a number",
        ),
        (json!({"iat": now - 4000, "exp": now - 300}), &[], "expired"),
        (json!({"exp": now + 7200}), &[], "lifetime too long"),
        (json!({"nbf": now + 600}), &[], "not yet valid"),
        (
            json!({"iat": now + 600, "exp": now + 1200}),
            &[],
            "'iat' is in the future",
        ),
        (
            json!({"sub": uuid::Uuid::new_v4().to_string()}),
            &[],
            "user_not_found:",
        ),
    ];
    for (overrides, remove, needle) in cases {
        let (status, body) = f.token_for(&f.claims_with(overrides.clone(), remove)).await;
        assert_eq!(
            (status, oauth_error(&body).0),
            (400, "invalid_grant"),
            "{overrides}: {body}"
        );
        let description = oauth_error(&body).1;
        assert!(
            description.starts_with(needle) || description.contains(needle),
            "wanted {needle:?}: {body}"
        );
        assert!(!description.contains("BEGIN"), "never echoes key material");
    }
}

#[tokio::test]
async fn scope_and_consent_failures() {
    let f = Fixture::new().await;
    let (status, body) = f
        .token_for(&f.claims_with(json!({"scope": "signature impersonation admin"}), &[]))
        .await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (400, "invalid_scope"),
        "{body}"
    );

    let other_user = add_user(f.server.store.as_ref()).await;
    let (status, body) = f
        .token_for(&f.claims_with(json!({"sub": other_user}), &[]))
        .await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (400, "consent_required"),
        "{body}"
    );
    let description = oauth_error(&body).1;
    assert!(description.starts_with("consent_required:"));
    let consent_url = format!(
        "{}/oauth/auth?response_type=code&scope=signature+impersonation&client_id={}",
        f.server.url, f.integration_key
    );
    assert!(description.contains(&consent_url), "{description}");

    let (status, body) = f
        .token_for(&f.claims_with(json!({"scope": "signature"}), &[]))
        .await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (400, "consent_required"),
        "no impersonation: {body}"
    );
}

#[tokio::test]
async fn disabled_user_integration_and_key_are_refused() {
    let f = Fixture::new().await;
    f.server
        .store
        .set_user_active(&f.user_id, false)
        .await
        .unwrap();
    f.server.refresh().await;
    let (_, body) = f.token_for(&f.claims()).await;
    assert!(oauth_error(&body).1.starts_with("user_not_found"), "{body}");
    f.server
        .store
        .set_user_active(&f.user_id, true)
        .await
        .unwrap();

    f.server
        .store
        .set_integration_key_active(&f.integration_key, &f.kid, false)
        .await
        .unwrap();
    f.server.refresh().await;
    let (_, body) = f.token_for(&f.claims()).await;
    assert_eq!(oauth_error(&body).0, "invalid_grant");
    assert!(
        oauth_error(&body)
            .1
            .starts_with("no_valid_keys_or_signatures"),
        "{body}"
    );
    f.server
        .store
        .set_integration_key_active(&f.integration_key, &f.kid, true)
        .await
        .unwrap();
    f.server.refresh().await;
    assert_eq!(f.token_for(&f.claims()).await.0, 200);

    f.server
        .store
        .set_integration_active(&f.integration_key, false)
        .await
        .unwrap();
    f.server.refresh().await;
    let (_, body) = f.token_for(&f.claims()).await;
    assert!(
        oauth_error(&body).1.starts_with("issuer_not_found"),
        "{body}"
    );
}

#[tokio::test]
async fn jti_is_accepted_once_and_required_when_flagged() {
    let f = Fixture::new().await;
    let assertion = f.sign(&f.claims());
    assert_eq!(f.server.token(&assertion).await.0, 200);
    let (status, body) = f.server.token(&assertion).await;
    assert_eq!((status, oauth_error(&body).0), (400, "invalid_grant"));
    assert!(oauth_error(&body).1.contains("already been used"));

    let spec = IntegrationSpec {
        require_jti: true,
        allow_application_tokens: true,
        ..Default::default()
    };
    let (strict, _) = add_integration(f.server.store.as_ref(), spec, &f.key).await;
    let no_jti = f.claims_with(json!({"iss": strict, "sub": null}), &["jti"]);
    let (status, body) = f.token_for(&no_jti).await;
    assert_eq!(status, 400);
    assert!(oauth_error(&body).1.contains("requires a 'jti'"), "{body}");
}

#[tokio::test]
async fn concurrent_copies_of_one_assertion_get_exactly_one_token() {
    let f = Fixture::new().await;
    let assertion = f.sign(&f.claims());
    let attempts = (0..12).map(|_| {
        let http = f.server.http.clone();
        let url = format!("{}/oauth/token", f.server.url);
        let assertion = assertion.clone();
        tokio::spawn(async move {
            let response = http
                .post(url)
                .form(&[("grant_type", JWT_BEARER), ("assertion", &assertion)])
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        })
    });
    let mut ok = 0;
    for attempt in attempts {
        let (status, body) = attempt.await.unwrap();
        match status {
            200 => ok += 1,
            400 => assert_eq!(oauth_error(&body).0, "invalid_grant"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn a_failing_store_gives_503_and_no_token() {
    let f = Fixture::new().await;
    // Warm the registry cache, then take the store away. The replay journal still
    // works, but once the poll has seen the store fail, no token is issued from
    // cached data: with a jti or without.
    assert_eq!(f.token_for(&f.claims()).await.0, 200);
    f.server.store.close().await;
    assert!(f.server.state.registry.refresh().await.is_err());
    let (status, body) = f.token_for(&f.claims()).await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (503, "temporarily_unavailable"),
        "{body}"
    );
    assert!(body.get("access_token").is_none());
    // An assertion without jti needs no write at all: refused too.
    let (status, body) = f.token_for(&f.claims_with(json!({}), &["jti"])).await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (503, "temporarily_unavailable"),
        "{body}"
    );
    // An issuer not in the cache needs the registry: also 503.
    let (status, body) = f
        .token_for(&f.claims_with(json!({"iss": uuid::Uuid::new_v4().to_string()}), &[]))
        .await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (503, "temporarily_unavailable")
    );
    assert_eq!(f.server.get("/readyz").await.status(), 503);
    assert_eq!(
        f.server.get("/healthz").await.status(),
        200,
        "the server stays up"
    );
}

#[tokio::test]
async fn used_jti_is_refused_after_a_restart() {
    let f = Fixture::new().await;
    let assertion = f.sign(&f.claims());
    assert_eq!(f.server.token(&assertion).await.0, 200);
    let Fixture { server, .. } = f;
    // The restarted server listens elsewhere but keeps its public URL, so the
    // assertion's audience still holds and only the jti can refuse it.
    let public_url = server.url.clone();
    let dir = server.stop().await;
    let raw = jwtgrant_server::RawConfig {
        public_url: Some(public_url),
        ..Default::default()
    };
    let server = TestServer::start_in(dir, raw).await;
    let (status, body) = server.token(&assertion).await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (400, "invalid_grant"),
        "{body}"
    );
    assert!(oauth_error(&body).1.contains("already been used"));
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let raw = jwtgrant_server::RawConfig {
        rate_limit_per_client: Some(3),
        ..Default::default()
    };
    let f = Fixture::with(
        TestServer::start_with(raw).await,
        IntegrationSpec::default(),
    )
    .await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let response = f
            .server
            .http
            .post(format!("{}/oauth/token", f.server.url))
            .form(&[
                ("grant_type", JWT_BEARER),
                ("assertion", &f.sign(&f.claims())),
            ])
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert_eq!(response.headers()["retry-after"], "1");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"], "slow_down");
        }
    }
    assert_eq!(statuses, [200, 200, 200, 429]);

    let raw = jwtgrant_server::RawConfig {
        rate_limit_per_integration: Some(2),
        ..Default::default()
    };
    let f = Fixture::with(
        TestServer::start_with(raw).await,
        IntegrationSpec::default(),
    )
    .await;
    // Refused assertions (bad signature) do not spend the integration's quota.
    let foreign = sign(&other_rsa_key(), JwsAlgorithm::Rs256, &f.claims());
    assert_eq!(f.server.token(&foreign).await.0, 400);
    assert_eq!(f.token_for(&f.claims()).await.0, 200);
    assert_eq!(f.token_for(&f.claims()).await.0, 200);
    let (status, body) = f.token_for(&f.claims()).await;
    assert_eq!((status, oauth_error(&body).0), (429, "slow_down"));
}
