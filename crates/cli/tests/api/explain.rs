//! `jwtgrant explain` with the real binary beside a running server: for each
//! assertion its first failing rule is the one the server's refusal leads with, it
//! passes what the server issues, it consumes no `jti` (the server still issues
//! after it) and says when one is used; a client assertion's rules too. Then a
//! trusted issuer's token, its keys fetched from an issuer on loopback, and a
//! failed condition explained with the reason the client is not told.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::*;

/// `jwtgrant explain --json ARGS` on the store of `dir`: its output and whether it
/// exited with success.
fn explain(dir: &Path, args: &[&str]) -> (Value, bool) {
    let mut all = vec!["explain", "--json"];
    all.extend_from_slice(args);
    let output = run(Admin::new(&binary(), store_args(dir)).command(&all));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "explain printed no JSON ({e}): {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (value, output.status.success())
}

/// The check `part.name` of an explanation.
fn check<'a>(explanation: &'a Value, part: &str, name: &str) -> &'a Value {
    explanation["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["part"] == part && c["name"] == name)
        .unwrap_or_else(|| panic!("no check {part}.{name} in {explanation}"))
}

/// POSTs `form` to `url`: the status and the JSON answer.
async fn post_form(url: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .form(form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// The rule code an `error_description` leads with.
fn rule_of(body: &Value) -> &str {
    let description = body["error_description"].as_str().unwrap();
    description.split(':').next().unwrap()
}

#[tokio::test]
async fn explain_names_the_rule_the_server_refuses_by_and_consumes_no_jti() {
    let dir = tempfile::tempdir().unwrap();
    let admin_cli = Admin::new(&binary(), store_args(dir.path()));
    let ik = admin_cli.create_integration(&[
        "--name",
        "Explained",
        "--resource",
        "https://api.example.test/",
    ]);
    let key = dir.path().join("explained.pem");
    admin_cli.generate_key(&ik, None, &key);
    let user = admin_cli.create_user("ada@example.com", "Ada");
    let stranger = admin_cli.create_user("bob@example.com", "Bob");
    admin_cli.grant_consent(&user, &ik);

    let server = serve_store(dir.path(), &[]).await;
    let host = server.host();
    let public_url = format!("http://{host}");
    let as_served = ["--public-url", public_url.as_str()];
    let explained = |assertion: &str| {
        let mut args = as_served.to_vec();
        args.push(assertion);
        explain(dir.path(), &args)
    };

    let good = mint(dir.path(), &ik, Some(&user), &key, &host);
    let (explanation, ok) = explained(&good);
    assert!(ok, "{explanation}");
    assert_eq!(explanation["outcome"], "issued", "{explanation}");
    assert_eq!(explanation["issuer"], json!(public_url));
    for (part, name) in [
        ("assertion", "signature"),
        ("assertion", "audience"),
        ("assertion", "expiry"),
        ("decision", "subject"),
        ("decision", "jti_unused"),
    ] {
        assert_eq!(
            check(&explanation, part, name)["verdict"],
            "pass",
            "{part}.{name}"
        );
    }
    // Twice: explaining recorded nothing, so the server still issues.
    assert!(explained(&good).1);
    let (status, body) = server.token(&good).await;
    assert_eq!(status, 200, "{body}");
    // Now it is used: explain says so, by the server's rule.
    let (status, body) = server.token(&good).await;
    assert_eq!(status, 400);
    let (explanation, ok) = explained(&good);
    assert!(!ok);
    assert_eq!(explanation["rule"], json!(rule_of(&body)), "{explanation}");
    assert_eq!(explanation["rule"], "jti_replayed");
    assert_eq!(
        check(&explanation, "decision", "jti_unused")["verdict"],
        "fail"
    );

    // Each refusal: the first failing rule is the server's, with its description.
    let other_key = dir.path().join("other.pem");
    let other = admin_cli.create_integration(&["--name", "Other"]);
    admin_cli.generate_key(&other, None, &other_key);
    let refused = [
        mint(
            dir.path(),
            &ik,
            Some(&user),
            &key,
            "https://elsewhere.example",
        ),
        mint(dir.path(), &ik, None, &key, &host),
        mint(dir.path(), &ik, Some(&stranger), &key, &host),
        mint(dir.path(), &ik, Some(&user), &other_key, &host),
        mint(dir.path(), "no-such-integration", Some(&user), &key, &host),
        "not.a-jwt".to_owned(),
    ];
    let mut rules = Vec::new();
    for assertion in &refused {
        let (status, body) = server.token(assertion).await;
        assert_eq!(status, 400, "{body}");
        let (explanation, ok) = explained(assertion);
        assert!(!ok, "{explanation}");
        let failure = explanation["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["verdict"] == "fail")
            .unwrap();
        assert_eq!(explanation["rule"], json!(rule_of(&body)), "{explanation}");
        assert_eq!(
            failure["reason"], body["error_description"],
            "{explanation}"
        );
        rules.push(rule_of(&body).to_owned());
    }
    assert_eq!(
        rules,
        [
            "audience_mismatch",
            "application_tokens_not_allowed",
            "consent_required",
            "no_valid_keys_or_signatures",
            "issuer_not_found",
            "assertion_malformed"
        ]
    );
    // Every rule is shown even after one fails: a wrong audience, and the times hold.
    let (explanation, _) = explained(&refused[0]);
    assert_eq!(
        check(&explanation, "assertion", "audience")["verdict"],
        "fail"
    );
    assert_eq!(
        check(&explanation, "assertion", "expiry")["verdict"],
        "pass"
    );

    // A client assertion (private_key_jwt) is explained with the assertion: its
    // `sub` must be its `iss`, and its audience the issuer.
    let client_assertion = mint(dir.path(), &ik, Some(&ik), &key, &public_url);
    let fresh = mint(dir.path(), &ik, Some(&user), &key, &host);
    let mut args = as_served.to_vec();
    args.extend(["--client-assertion", &client_assertion, &fresh]);
    let (explanation, ok) = explain(dir.path(), &args);
    assert!(ok, "{explanation}");
    assert_eq!(
        check(&explanation, "client_assertion", "subject")["verdict"],
        "pass"
    );
    assert_eq!(
        check(&explanation, "client_assertion", "jti_unused")["verdict"],
        "pass"
    );
    assert_eq!(
        check(&explanation, "assertion", "presenting_client")["verdict"],
        "pass"
    );
    let other_client = mint(dir.path(), &other, Some(&other), &other_key, &public_url);
    let mut args = as_served.to_vec();
    args.extend(["--client-assertion", &other_client, &fresh]);
    let (explanation, ok) = explain(dir.path(), &args);
    assert!(!ok);
    assert_eq!(
        explanation["rule"], "presenting_client_mismatch",
        "{explanation}"
    );
    let not_for_us = mint(
        dir.path(),
        &ik,
        Some(&ik),
        &key,
        "https://elsewhere.example",
    );
    let mut args = as_served.to_vec();
    args.extend(["--client-assertion", &not_for_us, &fresh]);
    let (explanation, _) = explain(dir.path(), &args);
    assert_eq!(
        check(&explanation, "client_assertion", "audience")["rule"],
        "audience_mismatch"
    );
    assert!(
        check(&explanation, "client_assertion", "audience")["reason"]
            .as_str()
            .unwrap()
            .contains("client assertion refused"),
        "{explanation}"
    );

    // Without `--public-url` explain takes serve's default address, whose audience
    // this assertion does not name: the options shape the rules.
    let (explanation, _) = explain(dir.path(), &[fresh.as_str()]);
    assert_eq!(explanation["rule"], "audience_mismatch", "{explanation}");

    // A `resource` the integration does not have, as the server refuses it.
    let (status, body) = post_form(
        &format!("{public_url}/oauth/token"),
        &[
            ("grant_type", JWT_BEARER),
            ("assertion", fresh.as_str()),
            ("resource", "https://other.example.test/"),
        ],
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let mut args = as_served.to_vec();
    args.extend(["--resource", "https://other.example.test/", &fresh]);
    let (explanation, _) = explain(dir.path(), &args);
    assert_eq!(explanation["rule"], json!(rule_of(&body)), "{explanation}");
    assert_eq!(
        check(&explanation, "decision", "resources")["reason"],
        body["error_description"]
    );
    let mut args = as_served.to_vec();
    args.extend(["--resource", "https://api.example.test/", &fresh]);
    assert!(explain(dir.path(), &args).1);

    // And the server issues the fresh one: nothing explain did consumed it.
    let (status, body) = server.token(&fresh).await;
    assert_eq!(status, 200, "{body}");
}

// Two workers: the issuer and the server answer while the test waits for the binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_issuers_token_is_explained_with_its_fetched_keys_and_condition() {
    let server = TestServer::start_with(jwtgrant_server::RawConfig {
        allow_insecure_issuer_urls: Some(true),
        ..Default::default()
    })
    .await;
    let spec = IntegrationSpec {
        allow_application_tokens: true,
        require_jti: false,
        scopes: vec!["deploy".into()],
    };
    let (ik, _) = server.add_integration(spec, &rsa_key()).await;
    let idp = TestIdp::with_rsa_key().await;
    let issuer = "https://ci.example.test";
    let added = admin(
        server.dir.path(),
        &[
            "issuer",
            "add",
            "--integration",
            &ik,
            "--issuer",
            issuer,
            "--jwks-uri",
            &idp.jwks_uri(),
            "--audience",
            "jwtgrant",
            "--subject",
            "workload",
            "--condition",
            r#"assertion.branch == "main""#,
            "--scope",
            "deploy",
            "--allow-insecure-issuer-urls",
        ],
    );
    server.refresh().await;
    let now = jwtgrant_server::clock::now();
    let claims = |branch: &str, jti: &str| {
        json!({
            "iss": issuer, "sub": "pipeline-7", "aud": "jwtgrant", "branch": branch,
            "jti": jti, "iat": now, "exp": now + 300,
        })
    };
    let on_main = idp.sign("key-1", None, json!({}), &claims("main", "run-1"));
    let on_feature = idp.sign("key-1", None, json!({}), &claims("feature", "run-2"));
    let args = |assertion: &str| -> Vec<String> {
        vec![
            "--public-url".into(),
            server.url.clone(),
            "--allow-insecure-issuer-urls".into(),
            assertion.into(),
        ]
    };
    let explain_token = |assertion: &str| {
        let args = args(assertion);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        explain(server.dir.path(), &args)
    };

    let (explanation, ok) = explain_token(&on_main);
    assert!(ok, "{explanation}");
    assert_eq!(
        check(&explanation, "assertion", "issuer_keys")["verdict"],
        "pass"
    );
    assert_eq!(
        check(&explanation, "assertion", "signature")["verdict"],
        "pass"
    );
    assert_eq!(
        check(&explanation, "decision", "condition")["verdict"],
        "pass"
    );
    assert_eq!(
        check(&explanation, "decision", "jti_unused")["verdict"],
        "pass"
    );
    assert!(idp.jwks_hits() >= 1, "explain fetched the issuer's keys");

    // The server refuses the feature branch naming only the rule; explain says why.
    let (status, body) = server.token(&on_feature).await;
    assert_eq!(
        (status, rule_of(&body)),
        (400, "condition_not_met"),
        "{body}"
    );
    let (explanation, ok) = explain_token(&on_feature);
    assert!(!ok);
    assert_eq!(explanation["rule"], "condition_not_met");
    let reason = check(&explanation, "decision", "condition")["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        reason.starts_with(body["error_description"].as_str().unwrap())
            && reason.contains(r#"`assertion.branch == "main"` is false"#),
        "{reason}"
    );

    // The token on main is issued once, then explain sees its jti used.
    let (status, body) = server.token(&on_main).await;
    assert_eq!(status, 200, "{body}");
    let (explanation, _) = explain_token(&on_main);
    assert_eq!(explanation["rule"], "jti_replayed", "{explanation}");

    // A token of an issuer nobody trusts.
    let mut stranger = claims("main", "run-3");
    stranger["iss"] = json!("https://stranger.example.test");
    let (explanation, _) = explain_token(&idp.sign("key-1", None, json!({}), &stranger));
    assert_eq!(explanation["rule"], "issuer_not_found");

    // A disabled trust is refused first, before its keys are fetched, as the server does.
    let issuer_id = added["issuer_id"].as_str().unwrap();
    admin(server.dir.path(), &["issuer", "disable", issuer_id]);
    server.refresh().await;
    let fresh = idp.sign("key-1", None, json!({}), &claims("main", "run-4"));
    let (status, body) = server.token(&fresh).await;
    let (explanation, _) = explain_token(&fresh);
    assert_eq!(status, 400);
    assert_eq!(explanation["rule"], json!(rule_of(&body)));
    assert_eq!(
        check(&explanation, "assertion", "issuer")["reason"],
        body["error_description"]
    );
}
