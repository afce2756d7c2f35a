//! Trusted issuers over HTTP: tokens shaped exactly like GitHub Actions OIDC tokens,
//! Kubernetes projected service-account tokens, SPIFFE JWT-SVIDs and a generic OIDC
//! provider's ID tokens, signed by an issuer the test runs on loopback
//! ([`TestIdp`]), registered with `jwtgrant issuer add`, and exchanged at the token
//! endpoint; and every refusal of PROTOCOL.md's "Trusted issuers".

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jwtgrant_core::{JwsAlgorithm, SigningKey};
use jwtgrant_server::RawConfig;
use serde_json::{Value, json};

use crate::support::*;

const GITHUB: &str = "https://token.actions.githubusercontent.com";
const KUBERNETES: &str = "https://kubernetes.default.svc.cluster.local";
const SPIFFE: &str = "https://oidc-discovery.example.org";
const GITHUB_CONDITION: &str =
    r#"assertion.repository_owner == "octo-org" && assertion.ref == "refs/heads/main""#;

/// A server that may fetch from loopback, with one integration allowed
/// application tokens and user tokens.
struct Federation {
    server: TestServer,
    ik: String,
}

impl Federation {
    async fn start() -> Federation {
        Federation::start_with(RawConfig::default()).await
    }

    async fn start_with(raw: RawConfig) -> Federation {
        let server = TestServer::start_with(RawConfig {
            allow_insecure_issuer_urls: Some(true),
            ..raw
        })
        .await;
        let spec = IntegrationSpec {
            allow_application_tokens: true,
            require_jti: false,
            scopes: vec!["signature".into(), "impersonation".into(), "deploy".into()],
        };
        let (ik, _) = server.add_integration(spec, &rsa_key()).await;
        Federation { server, ik }
    }

    /// `jwtgrant issuer add ... --json`: the issuer id.
    fn add_issuer(&self, args: &[&str]) -> String {
        let mut all = vec!["issuer", "add", "--integration", &self.ik];
        all.extend_from_slice(args);
        let added = admin(self.server.dir.path(), &all);
        added["issuer_id"].as_str().unwrap().to_owned()
    }

    /// `jwtgrant issuer add` that must fail: its error text.
    fn add_issuer_error(&self, args: &[&str]) -> String {
        let mut all = vec!["issuer", "add", "--integration", &self.ik];
        all.extend_from_slice(args);
        Admin::new(&binary(), store_args(self.server.dir.path()))
            .try_json(&all)
            .expect_err("issuer add should fail")
    }

    /// The client credentials grant, the client authenticated by `assertion`.
    async fn client_credentials(&self, assertion: &str, client_id: &str) -> (u16, Value) {
        self.server
            .post_form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion),
                ("scope", "signature"),
            ])
            .await
    }

    async fn grant(&self, assertion: &str, scope: Option<&str>) -> (u16, Value) {
        let mut form = vec![("grant_type", JWT_BEARER), ("assertion", assertion)];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        self.server.post_form(&form).await
    }
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn github_claims(owner: &str, git_ref: &str) -> Value {
    let now = now();
    json!({
        "jti": uuid::Uuid::new_v4().to_string(),
        "sub": format!("repo:{owner}/octo-repo:ref:{git_ref}"),
        "aud": format!("https://github.com/{owner}"),
        "ref": git_ref,
        "sha": "example-sha-d6cb4a5b7c2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d",
        "repository": format!("{owner}/octo-repo"),
        "repository_owner": owner,
        "repository_owner_id": "1234567",
        "run_id": "7023571230",
        "run_number": "12",
        "run_attempt": "1",
        "repository_visibility": "private",
        "repository_id": "74",
        "actor_id": "12",
        "actor": "octocat",
        "workflow": "deploy",
        "head_ref": "",
        "base_ref": "",
        "event_name": "push",
        "ref_type": "branch",
        "job_workflow_ref": format!("{owner}/octo-repo/.github/workflows/deploy.yml@{git_ref}"),
        "runner_environment": "github-hosted",
        "iss": GITHUB,
        "nbf": now - 5,
        "iat": now,
        "exp": now + 300,
    })
}

#[tokio::test]
async fn github_actions_tokens_are_accepted_on_their_condition() {
    let fed = Federation::start().await;
    let idp = TestIdp::with_rsa_key().await;
    let jwks_uri = idp.jwks_uri();
    let github_args = [
        "--issuer",
        GITHUB,
        "--jwks-uri",
        &jwks_uri,
        "--audience",
        "https://github.com/octo-org",
        "--subject",
        "workload",
        "--subject-expr",
        r#""repo:" + assertion.repository"#,
        "--condition",
        GITHUB_CONDITION,
        "--scope",
        "deploy",
        "--allow-insecure-issuer-urls",
    ];
    let issuer_id = fed.add_issuer(&github_args);
    fed.server.refresh().await;

    let token = idp.sign(
        "key-1",
        Some("JWT"),
        json!({"x5t": "not-followed"}),
        &github_claims("octo-org", "refs/heads/main"),
    );
    let (status, body) = fed.grant(&token, None).await;
    assert_eq!(status, 200, "{body}");
    let access = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(access["sub"], "repo:octo-org/octo-repo");
    assert_eq!(access["client_id"], json!(fed.ik));
    assert_eq!(access["scope"], "deploy");
    assert!(body.get("refresh_token").is_none(), "{body}");

    // GitHub tokens carry a jti: single use by default.
    let (status, body) = fed.grant(&token, None).await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (400, "invalid_grant"),
        "{body}"
    );
    assert!(oauth_error(&body).1.contains("already been used"), "{body}");
    // Still used after the issuer is removed and added again.
    admin(fed.server.dir.path(), &["issuer", "remove", &issuer_id]);
    fed.add_issuer(&github_args);
    fed.server.refresh().await;
    let (status, body) = fed.grant(&token, None).await;
    assert!(
        oauth_error(&body).1.contains("already been used"),
        "{status} {body}"
    );

    // Another owner (with its own audience), or another branch: the condition fails,
    // and the refusal names only the rule.
    let condition_not_met =
        "condition_not_met: the token does not meet the trusted issuer's condition";
    let mut other_owner = github_claims("evil-org", "refs/heads/main");
    other_owner["aud"] = json!("https://github.com/octo-org");
    for claims in [other_owner, github_claims("octo-org", "refs/heads/feature")] {
        let mut claims = claims;
        claims["aud"] = json!("https://github.com/octo-org");
        let (status, body) = fed
            .grant(&idp.sign("key-1", Some("JWT"), json!({}), &claims), None)
            .await;
        assert_eq!(
            (status, oauth_error(&body)),
            (400, ("invalid_grant", condition_not_met))
        );
    }

    // A condition that fails at run time (the claim it reads is absent) refuses
    // the same way, never with a 5xx.
    let mut no_ref = github_claims("octo-org", "refs/heads/main");
    no_ref.as_object_mut().unwrap().remove("ref");
    let (status, body) = fed
        .grant(&idp.sign("key-1", None, json!({}), &no_ref), None)
        .await;
    assert_eq!(
        (status, oauth_error(&body)),
        (400, ("invalid_grant", condition_not_met))
    );

    // A scope beyond the issuer's cap.
    let token = idp.sign(
        "key-1",
        None,
        json!({}),
        &github_claims("octo-org", "refs/heads/main"),
    );
    let (status, body) = fed.grant(&token, Some("signature")).await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (400, "invalid_scope"),
        "{body}"
    );

    // The keys were fetched once for each registration of the issuer.
    assert_eq!(idp.jwks_hits(), 2);
}

fn kubernetes_claims(namespace: &str, account: &str, audience: &str) -> Value {
    let now = now();
    json!({
        "aud": [audience],
        "exp": now + 3600,
        "iat": now,
        "iss": KUBERNETES,
        "jti": uuid::Uuid::new_v4().to_string(),
        "kubernetes.io": {
            "namespace": namespace,
            "node": {"name": "node-1", "uid": "e1d2c3b4-a596-4788-9a0b-1c2d3e4f5a6b"},
            "pod": {"name": format!("{account}-7d9f8c6b5-x2x4z"), "uid": "5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e"},
            "serviceaccount": {"name": account, "uid": "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"},
        },
        "nbf": now,
        "sub": format!("system:serviceaccount:{namespace}:{account}"),
    })
}

#[tokio::test]
async fn kubernetes_service_account_tokens_and_a_static_jwks_file() {
    let fed = Federation::start().await;
    let key = Arc::new(SigningKey::generate(JwsAlgorithm::Rs256, 2048).unwrap());
    let idp = TestIdp::start(vec![("sa-key".into(), Arc::clone(&key))]).await;
    // The cluster's keys as `kubectl get --raw /openid/v1/jwks` prints them.
    let jwks_file = fed.server.dir.path().join("cluster-jwks.json");
    std::fs::write(&jwks_file, idp.jwks().to_string()).unwrap();
    fed.add_issuer(&[
        "--issuer",
        KUBERNETES,
        "--jwks-file",
        jwks_file.to_str().unwrap(),
        "--audience",
        "jwtgrant",
        "--alg",
        "RS256",
        "--subject",
        "workload",
        "--condition",
        r#"assertion["kubernetes.io"].namespace == "payments""#,
    ]);
    fed.server.refresh().await;

    let token = idp.sign(
        "sa-key",
        None,
        json!({}),
        &kubernetes_claims("payments", "api", "jwtgrant"),
    );
    let (status, body) = fed.grant(&token, Some("signature")).await;
    assert_eq!(status, 200, "{body}");
    let access = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(access["sub"], "system:serviceaccount:payments:api");
    // A static JWKS file is never fetched.
    assert_eq!(idp.jwks_hits(), 0);

    // A workload subject spelt like a local user's id (or an integration key) is
    // refused: it could pass for them at a resource server.
    let user_id = fed.server.add_user(None).await;
    let (other_ik, _) = fed
        .server
        .add_integration(IntegrationSpec::applications(), &other_rsa_key())
        .await;
    for posing_as in [user_id, other_ik] {
        let mut posing = kubernetes_claims("payments", "api", "jwtgrant");
        posing["sub"] = json!(posing_as);
        let token = idp.sign("sa-key", None, json!({}), &posing);
        let (status, body) = fed.grant(&token, Some("signature")).await;
        assert_eq!(
            (status, oauth_error(&body).0),
            (400, "invalid_grant"),
            "{body}"
        );
        assert!(
            oauth_error(&body).1.contains("names a local user"),
            "{body}"
        );
    }

    for (claims, rule) in [
        (
            kubernetes_claims("default", "api", "jwtgrant"),
            "condition_not_met",
        ),
        (
            kubernetes_claims("payments", "api", "other-audience"),
            "'aud'",
        ),
    ] {
        let (status, body) = fed
            .grant(&idp.sign("sa-key", None, json!({}), &claims), None)
            .await;
        assert_eq!(
            (status, oauth_error(&body).0),
            (400, "invalid_grant"),
            "{body}"
        );
        assert!(oauth_error(&body).1.contains(rule), "{rule}: {body}");
    }
}

#[tokio::test]
async fn spiffe_jwt_svids_need_no_jti() {
    let fed = Federation::start().await;
    let key = Arc::new(SigningKey::generate(JwsAlgorithm::Es256, 0).unwrap());
    let idp = TestIdp::start(vec![("spire-1".into(), key)]).await;
    let jwks_uri = idp.jwks_uri();
    fed.add_issuer(&[
        "--issuer",
        SPIFFE,
        "--jwks-uri",
        &jwks_uri,
        "--audience",
        "spiffe://example.org/jwtgrant",
        "--max-lifetime-secs",
        "300",
        "--replay",
        "none",
        "--subject",
        "workload",
        "--condition",
        r#"assertion.sub.startsWith("spiffe://example.org/ns/prod/")"#,
        "--allow-insecure-issuer-urls",
    ]);
    fed.server.refresh().await;

    let now = now();
    let svid = json!({
        "aud": ["spiffe://example.org/jwtgrant"],
        "exp": now + 300,
        "iat": now,
        "iss": SPIFFE,
        "sub": "spiffe://example.org/ns/prod/sa/api",
    });
    let token = idp.sign("spire-1", Some("JWT"), json!({}), &svid);
    // `--replay none`: the same SVID works while it lives.
    for _ in 0..2 {
        let (status, body) = fed.grant(&token, Some("signature")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            claims_of(body["access_token"].as_str().unwrap())["sub"],
            "spiffe://example.org/ns/prod/sa/api"
        );
    }
    // Longer than the issuer's --max-lifetime-secs.
    let mut long = svid.clone();
    long["exp"] = json!(now + 3600);
    let (status, body) = fed
        .grant(&idp.sign("spire-1", None, json!({}), &long), None)
        .await;
    assert_eq!((status, oauth_error(&body).0), (400, "invalid_grant"));
    assert!(oauth_error(&body).1.contains("lifetime"), "{body}");
}

#[tokio::test]
async fn an_oidc_providers_users_by_linked_subject_or_verified_email() {
    let fed = Federation::start().await;
    let idp = TestIdp::with_rsa_key().await;
    let issuer = idp.url().to_owned();
    let by_sub = fed.add_issuer(&[
        "--issuer",
        &issuer,
        "--discovery",
        "--audience",
        "jwtgrant-client",
        "--subject",
        "user",
        "--allow-insecure-issuer-urls",
    ]);
    let user_id = fed.server.add_user(None).await;
    let id_token = |sub: &str, extra: Value| {
        let now = now();
        let mut claims = json!({
            "iss": issuer, "sub": sub, "aud": "jwtgrant-client",
            "iat": now, "exp": now + 600, "jti": uuid::Uuid::new_v4().to_string(),
        });
        if let Value::Object(extra) = extra {
            for (k, v) in extra {
                claims[k] = v;
            }
        }
        idp.sign("key-1", Some("JWT"), json!({}), &claims)
    };

    // Not linked yet.
    let (status, body) = fed
        .grant(
            &id_token("00u1abcd", json!({})),
            Some("signature impersonation"),
        )
        .await;
    assert_eq!((status, oauth_error(&body).0), (400, "invalid_grant"));
    assert!(
        oauth_error(&body).1.starts_with("subject_not_mapped:"),
        "{body}"
    );

    admin(
        fed.server.dir.path(),
        &[
            "user",
            "link",
            &user_id,
            "--issuer",
            &by_sub,
            "--subject",
            "00u1abcd",
        ],
    );
    fed.server.refresh().await;
    // Linked: consent applies as for integrations.
    let (status, body) = fed
        .grant(
            &id_token("00u1abcd", json!({})),
            Some("signature impersonation"),
        )
        .await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (400, "consent_required"),
        "{body}"
    );
    grant_consent(fed.server.store.as_ref(), &user_id, &fed.ik).await;
    fed.server.refresh().await;
    let (status, body) = fed
        .grant(
            &id_token("00u1abcd", json!({})),
            Some("signature impersonation"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["sub"],
        json!(user_id)
    );
    // Discovery read the metadata once, then the JWKS.
    assert_eq!((idp.metadata_hits(), idp.jwks_hits()), (1, 1));

    // By verified email, through a second issuer identifier of the same provider.
    let user = fed.server.store.user(&user_id).await.unwrap().unwrap();
    let email_issuer = format!("{}/tenant-b", idp.url());
    fed.add_issuer(&[
        "--issuer",
        &email_issuer,
        "--jwks-uri",
        &idp.jwks_uri(),
        "--audience",
        "jwtgrant-client",
        "--subject",
        "user",
        "--user-claim",
        "email",
        "--allow-insecure-issuer-urls",
    ]);
    fed.server.refresh().await;
    let email_token = |verified: bool| {
        let now = now();
        let claims = json!({
            "iss": email_issuer, "sub": "someone-else", "aud": "jwtgrant-client",
            "iat": now, "exp": now + 600, "jti": uuid::Uuid::new_v4().to_string(),
            "email": user.email.to_uppercase(), "email_verified": verified,
        });
        idp.sign("key-1", None, json!({}), &claims)
    };
    let (status, body) = fed
        .grant(&email_token(false), Some("signature impersonation"))
        .await;
    assert_eq!((status, oauth_error(&body).0), (400, "invalid_grant"));
    assert!(oauth_error(&body).1.contains("not verified"), "{body}");
    let (status, body) = fed
        .grant(&email_token(true), Some("signature impersonation"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["sub"],
        json!(user_id)
    );
}

#[tokio::test]
async fn header_keys_are_never_followed_and_unknown_kids_do_not_flood_the_issuer() {
    let fed = Federation::start().await;
    let idp = TestIdp::with_rsa_key().await;
    let elsewhere = TestIdp::with_rsa_key().await;
    fed.add_issuer(&[
        "--issuer",
        GITHUB,
        "--jwks-uri",
        &idp.jwks_uri(),
        "--audience",
        "https://github.com/octo-org",
        "--subject",
        "workload",
        "--allow-insecure-issuer-urls",
    ]);
    fed.server.refresh().await;
    let claims = github_claims("octo-org", "refs/heads/main");

    // Signed by a key of another issuer that the header points at, or carries.
    let foreign = SigningKey::generate(JwsAlgorithm::Rs256, 2048).unwrap();
    let foreign_jwk =
        serde_json::to_value(foreign.public_key().to_jwk(Some("key-1"), None)).unwrap();
    for extra in [
        json!({"jku": elsewhere.jwks_uri()}),
        json!({"x5u": format!("{}/cert.pem", elsewhere.url())}),
        json!({"jwk": foreign_jwk}),
        json!({"x5c": ["MIIBfake"]}),
    ] {
        let token = sign_with_header(
            &foreign,
            JwsAlgorithm::Rs256,
            Some("key-1"),
            None,
            extra.clone(),
            &claims,
        );
        let (status, body) = fed.grant(&token, None).await;
        assert_eq!(
            (status, oauth_error(&body).0),
            (400, "invalid_grant"),
            "{extra}"
        );
        assert!(
            oauth_error(&body)
                .1
                .starts_with("no_valid_keys_or_signatures"),
            "{body}"
        );
    }
    assert_eq!(elsewhere.jwks_hits(), 0, "a header URL was followed");

    // A flood of unknown kids: at most one refetch, not one per token.
    let before = idp.jwks_hits();
    for i in 0..40 {
        let token = sign_with_header(
            &foreign,
            JwsAlgorithm::Rs256,
            Some(&format!("random-{i}")),
            None,
            json!({}),
            &github_claims("octo-org", "refs/heads/main"),
        );
        let (status, _) = fed.grant(&token, None).await;
        assert_eq!(status, 400);
    }
    assert!(
        idp.jwks_hits() - before <= 1,
        "{} fetches",
        idp.jwks_hits() - before
    );
}

#[tokio::test]
async fn a_bad_or_hanging_jwks_refuses_that_issuer_only() {
    let fed = Federation::start_with(RawConfig {
        issuer_fetch_timeout_secs: Some(1),
        ..RawConfig::default()
    })
    .await;
    let fixture_user = fed.server.add_user(Some(&fed.ik)).await;
    let idp = TestIdp::with_rsa_key().await;
    fed.add_issuer(&[
        "--issuer",
        GITHUB,
        "--jwks-uri",
        &idp.jwks_uri(),
        "--audience",
        "https://github.com/octo-org",
        "--subject",
        "workload",
        "--allow-insecure-issuer-urls",
    ]);
    fed.server.refresh().await;

    let weak = SigningKey::generate(JwsAlgorithm::Rs256, 1024).ok();
    let mut bodies: Vec<(&str, JwksBehavior)> = vec![
        ("not JSON", JwksBehavior::Body(b"<html>sign in</html>".to_vec())),
        ("empty", JwksBehavior::Body(b"{\"keys\":[]}".to_vec())),
        (
            "symmetric",
            JwksBehavior::Body(
                br#"{"keys":[{"kty":"oct","kid":"key-1","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}]}"#
                    .to_vec(),
            ),
        ),
        ("too big", JwksBehavior::Body(vec![b' '; 600 * 1024])),
        ("server error", JwksBehavior::Fail(503, b"down".to_vec())),
        (
            "redirect to another host",
            JwksBehavior::Redirect(format!(
                "http://localhost:{}/jwks",
                idp.url().rsplit(':').next().unwrap()
            )),
        ),
    ];
    if let Some(weak) = weak {
        let jwk = serde_json::to_value(weak.public_key().to_jwk(Some("key-1"), None)).unwrap();
        bodies.push((
            "1024-bit RSA",
            JwksBehavior::Body(json!({"keys": [jwk]}).to_string().into_bytes()),
        ));
    }
    for (what, behavior) in bodies {
        // A fresh issuer each time, so nothing good is cached.
        let issuer = format!("https://issuer.example/{}", what.replace(' ', "-"));
        fed.add_issuer(&[
            "--issuer",
            &issuer,
            "--jwks-uri",
            &idp.jwks_uri(),
            "--audience",
            "https://github.com/octo-org",
            "--subject",
            "workload",
            "--allow-insecure-issuer-urls",
        ]);
        fed.server.refresh().await;
        idp.set_behavior(behavior);
        let mut claims = github_claims("octo-org", "refs/heads/main");
        claims["iss"] = json!(issuer);
        let (status, body) = fed
            .grant(&idp.sign("key-1", None, json!({}), &claims), None)
            .await;
        assert_eq!(
            (status, oauth_error(&body).0),
            (400, "invalid_grant"),
            "{what}: {body}"
        );
        assert!(
            oauth_error(&body).1.starts_with("issuer_keys_unavailable")
                || oauth_error(&body)
                    .1
                    .starts_with("no_valid_keys_or_signatures"),
            "{what}: {body}"
        );
    }

    // While one issuer's JWKS hangs, other grants are served at once.
    idp.set_behavior(JwksBehavior::Hang);
    let hanging_issuer = "https://issuer.example/hanging";
    fed.add_issuer(&[
        "--issuer",
        hanging_issuer,
        "--jwks-uri",
        &idp.jwks_uri(),
        "--audience",
        "https://github.com/octo-org",
        "--subject",
        "workload",
        "--allow-insecure-issuer-urls",
    ]);
    fed.server.refresh().await;
    let mut claims = github_claims("octo-org", "refs/heads/main");
    claims["iss"] = json!(hanging_issuer);
    let hanging_token = idp.sign("key-1", None, json!({}), &claims);
    let hanging = fed.grant(&hanging_token, None);
    let other = async {
        let user_claims = docusign_claims(&fed.ik, &fixture_user, &fed.server.host(), 300);
        let started = std::time::Instant::now();
        let answer = fed
            .server
            .token(&sign(&rsa_key(), JwsAlgorithm::Rs256, &user_claims))
            .await;
        (answer, started.elapsed())
    };
    let ((status, body), ((other_status, other_body), other_took)) = tokio::join!(hanging, other);
    assert_eq!(
        (status, oauth_error(&body).0),
        (400, "invalid_grant"),
        "{body}"
    );
    assert!(
        oauth_error(&body).1.starts_with("issuer_keys_unavailable"),
        "{body}"
    );
    assert_eq!(other_status, 200, "{other_body}");
    assert!(
        other_took < std::time::Duration::from_secs(1),
        "{other_took:?}"
    );
}

#[tokio::test]
async fn the_trust_itself_is_checked_exact_issuer_disable_expiry_removal() {
    let fed = Federation::start().await;
    let idp = TestIdp::with_rsa_key().await;
    let id = fed.add_issuer(&[
        "--issuer",
        GITHUB,
        "--jwks-uri",
        &idp.jwks_uri(),
        "--audience",
        "https://github.com/octo-org",
        "--subject",
        "workload",
        "--replay",
        "until-exp",
        "--allow-insecure-issuer-urls",
    ]);
    fed.server.refresh().await;
    let token = idp.sign(
        "key-1",
        None,
        json!({}),
        &github_claims("octo-org", "refs/heads/main"),
    );
    let (status, body) = fed.grant(&token, None).await;
    assert_eq!(status, 200, "{body}");

    // The issuer identifier is compared exactly.
    for iss in [format!("{GITHUB}/"), GITHUB.to_uppercase()] {
        let mut claims = github_claims("octo-org", "refs/heads/main");
        claims["iss"] = json!(iss);
        let (status, body) = fed
            .grant(&idp.sign("key-1", None, json!({}), &claims), None)
            .await;
        assert_eq!(
            (status, oauth_error(&body).0),
            (400, "invalid_grant"),
            "{iss}: {body}"
        );
        assert!(
            oauth_error(&body).1.starts_with("issuer_not_found"),
            "{body}"
        );
    }

    // Disabled: refused (until-exp would otherwise accept the same token again).
    admin(fed.server.dir.path(), &["issuer", "disable", &id]);
    fed.server.refresh().await;
    let (status, body) = fed.grant(&token, None).await;
    assert_eq!(
        (status, oauth_error(&body)),
        (
            400,
            (
                "invalid_grant",
                "issuer_not_found: the trusted issuer named by 'iss' is disabled"
            )
        )
    );
    admin(fed.server.dir.path(), &["issuer", "enable", &id]);
    fed.server.refresh().await;
    assert_eq!(fed.grant(&token, None).await.0, 200);

    let listed = admin(fed.server.dir.path(), &["issuer", "list"]);
    assert_eq!(listed["issuers"][0]["issuer"], GITHUB);
    let shown = admin(fed.server.dir.path(), &["issuer", "show", &id]);
    assert_eq!(shown["policy"]["replay"], "until-exp");

    // Removed: unknown.
    admin(fed.server.dir.path(), &["issuer", "remove", &id]);
    fed.server.refresh().await;
    let (status, body) = fed.grant(&token, None).await;
    assert_eq!((status, oauth_error(&body).0), (400, "invalid_grant"));
    assert!(
        oauth_error(&body).1.starts_with("issuer_not_found"),
        "{body}"
    );

    // Expired: a trust with --expires-at in the past.
    let past = "2020-01-01T00:00:00Z";
    fed.add_issuer(&[
        "--issuer",
        GITHUB,
        "--jwks-uri",
        &idp.jwks_uri(),
        "--audience",
        "https://github.com/octo-org",
        "--subject",
        "workload",
        "--expires-at",
        past,
        "--allow-insecure-issuer-urls",
    ]);
    fed.server.refresh().await;
    let (status, body) = fed.grant(&token, None).await;
    assert_eq!(
        (status, oauth_error(&body)),
        (
            400,
            (
                "invalid_grant",
                "issuer_not_found: the trust in the issuer named by 'iss' has expired"
            )
        )
    );
}

#[tokio::test]
async fn issuer_add_refuses_what_cannot_work() {
    let fed = Federation::start().await;
    let base = ["--issuer", GITHUB, "--subject", "workload"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--jwks-uri", "http://127.0.0.1:9/jwks"],
            "must be https",
        ),
        (
            vec!["--jwks-uri", "ftp://example.org/jwks"],
            "cannot be fetched",
        ),
        // A private address is refused when the issuer is added, before any fetch.
        (
            vec!["--jwks-uri", "https://10.0.0.1/jwks"],
            "cannot be fetched",
        ),
        (
            vec![
                "--jwks-uri",
                "https://example.org/jwks",
                "--condition",
                "assertion.ref == ",
            ],
            "--condition",
        ),
        (
            vec![
                "--jwks-uri",
                "https://example.org/jwks",
                "--subject-expr",
                "assertion.(",
            ],
            "--subject-expr",
        ),
        (
            vec![
                "--jwks-uri",
                "https://example.org/jwks",
                "--scope",
                "not-the-integrations",
            ],
            "--scope",
        ),
        (
            vec![
                "--jwks-uri",
                "https://example.org/jwks",
                "--expires-at",
                "tomorrow",
            ],
            "--expires-at",
        ),
        (
            vec![
                "--jwks-uri",
                "https://example.org/jwks",
                "--max-lifetime-secs",
                "0",
            ],
            "--max-lifetime-secs",
        ),
    ];
    for (extra, says) in cases {
        let mut args = base.to_vec();
        args.extend(extra.iter().copied());
        let error = fed.add_issuer_error(&args);
        assert!(error.contains(says), "{extra:?}: {error}");
    }
    // The same issuer twice.
    let args = [&base[..], &["--jwks-uri", "https://example.org/jwks"]].concat();
    fed.add_issuer(&args);
    let error = fed.add_issuer_error(&args);
    assert!(error.contains("already exists"), "{error}");
}

#[tokio::test]
async fn federated_client_authentication_with_service_account_tokens() {
    let fed = Federation::start().await;
    let idp = TestIdp::with_rsa_key().await;
    fed.add_issuer(&[
        "--issuer",
        KUBERNETES,
        "--jwks-uri",
        &idp.jwks_uri(),
        "--audience",
        &fed.server.url,
        "--subject",
        "workload",
        "--client-authentication",
        "--condition",
        r#"assertion.sub == "system:serviceaccount:payments:api""#,
        "--allow-insecure-issuer-urls",
    ]);
    fed.server.refresh().await;
    let pod_token = |account: &str| {
        idp.sign(
            "key-1",
            None,
            json!({}),
            &kubernetes_claims("payments", account, &fed.server.url),
        )
    };

    // The pod's token authenticates the bound integration: its own application token.
    let token = pod_token("api");
    let (status, body) = fed.client_credentials(&token, &fed.ik).await;
    assert_eq!(status, 200, "{body}");
    let access = claims_of(body["access_token"].as_str().unwrap());
    assert_eq!(
        (access["sub"].clone(), access["client_id"].clone()),
        (json!(fed.ik), json!(fed.ik))
    );

    // Its jti is single use as a client assertion too.
    let (status, body) = fed.client_credentials(&token, &fed.ik).await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (401, "invalid_client"),
        "{body}"
    );
    assert!(oauth_error(&body).1.contains("already been used"), "{body}");

    // Another service account: the condition refuses it, with 401.
    let (status, body) = fed.client_credentials(&pod_token("batch"), &fed.ik).await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (401, "invalid_client"),
        "{body}"
    );
    assert!(oauth_error(&body).1.contains("condition_not_met"), "{body}");

    // Another integration named as the client: the issuer is not bound to it.
    let (other, _) = fed
        .server
        .add_integration(IntegrationSpec::applications(), &other_rsa_key())
        .await;
    let (status, body) = fed.client_credentials(&pod_token("api"), &other).await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (401, "invalid_client"),
        "{body}"
    );

    // An issuer trusted for grants only does not authenticate clients.
    let grants_only = TestIdp::with_rsa_key().await;
    fed.add_issuer(&[
        "--issuer",
        SPIFFE,
        "--jwks-uri",
        &grants_only.jwks_uri(),
        "--audience",
        &fed.server.url,
        "--subject",
        "workload",
        "--allow-insecure-issuer-urls",
    ]);
    fed.server.refresh().await;
    let mut claims = kubernetes_claims("payments", "api", &fed.server.url);
    claims["iss"] = json!(SPIFFE);
    let spiffe_token = grants_only.sign("key-1", None, json!({}), &claims);
    let (status, body) = fed.client_credentials(&spiffe_token, &fed.ik).await;
    assert_eq!(
        (status, oauth_error(&body).0),
        (401, "invalid_client"),
        "{body}"
    );
}
