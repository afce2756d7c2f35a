//! The binary end to end: admin commands on the store of a running `jwtgrant serve`
//! process, changes taking effect within 5 seconds, SIGTERM, restart, config errors.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::*;

/// Sends fresh assertions until one is refused, returning how long that took.
async fn seconds_until_refused(server: &Serving, mint: impl Fn() -> String) -> (f64, Value) {
    let start = Instant::now();
    loop {
        let (status, body) = server.token(&mint()).await;
        if status != 200 {
            return (start.elapsed().as_secs_f64(), body);
        }
        assert!(
            start.elapsed() < Duration::from_secs(6),
            "still accepted after 6 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends fresh assertions until one is accepted (a change undone within 5 s).
async fn until_accepted(server: &Serving, mint: impl Fn() -> String) -> String {
    let start = Instant::now();
    loop {
        let assertion = mint();
        if server.token(&assertion).await.0 == 200 {
            return assertion;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "not accepted within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn get_json(url: String, bearer: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn readme_flow_then_revocations_within_five_seconds_then_restart() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    // A fixed public URL, so that assertions minted before a restart (on another
    // port) still name an accepted audience.
    const PUBLIC: [&str; 2] = ["--public-url", "http://jwtgrant.test"];
    let server = serve_store(dir, &PUBLIC).await;
    let host = "jwtgrant.test".to_owned();

    let integration = admin(
        dir,
        &[
            "integration",
            "create",
            "--name",
            "Demo",
            "--redirect-uri",
            "http://localhost:9000/cb",
        ],
    );
    let ik = integration["integration_key"].as_str().unwrap().to_owned();
    assert_eq!(
        integration["scopes"],
        serde_json::json!(["signature", "impersonation"])
    );
    let key_path = dir.join("demo.pem");
    let generated = admin(
        dir,
        &[
            "integration",
            "generate-key",
            &ik,
            "--out",
            key_path.to_str().unwrap(),
        ],
    );
    let kid = generated["kid"].as_str().unwrap().to_owned();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // Without --out, generate-key prints the private key once and keeps only the
    // public half.
    let printed = admin(dir, &["integration", "generate-key", &ik, "--alg", "EdDSA"]);
    let ed_kid = printed["kid"].as_str().unwrap().to_owned();
    let ed_pem = printed["private_key_pem"].as_str().unwrap().to_owned();
    assert!(
        ed_pem.starts_with("-----BEGIN PRIVATE KEY-----"),
        "{ed_pem}"
    );
    assert_ne!(ed_kid, kid);
    let ed_path = dir.join("ed.pem");
    std::fs::write(&ed_path, &ed_pem).unwrap();
    let pem_body: String = ed_pem.lines().filter(|l| !l.starts_with("-----")).collect();
    for file in ["jwtgrant.db", "jwtgrant.db-wal"] {
        let bytes = std::fs::read(dir.join(file)).unwrap_or_default();
        assert!(
            !bytes
                .windows(pem_body.len())
                .any(|w| w == pem_body.as_bytes()),
            "the private key is in {file}"
        );
    }
    let user = admin(
        dir,
        &[
            "user",
            "create",
            "--email",
            "ada@example.com",
            "--name",
            "Ada Lovelace",
        ],
    );
    let user_id = user["user_id"].as_str().unwrap().to_owned();
    let account = admin(
        dir,
        &[
            "account",
            "create",
            "--user",
            &user_id,
            "--name",
            "Ada's account",
            "--base-uri",
            "https://demo.example.com",
            "--default",
        ],
    );
    assert_eq!(account["is_default"], true);

    // Before consent: consent_required.
    let (status, body) = server
        .token(&mint(dir, &ik, Some(&user_id), &key_path, &host))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("consent_required")),
        "{body}"
    );

    let grant_consent = || {
        admin(
            dir,
            &[
                "consent",
                "grant",
                "--user",
                &user_id,
                "--integration",
                &ik,
                "--scope",
                "signature",
                "impersonation",
            ],
        )
    };
    grant_consent();
    let consents = admin(dir, &["consent", "list", "--user", &user_id]);
    assert_eq!(consents["consents"].as_array().map(Vec::len), Some(1));
    // Consent takes effect within 5 s.
    until_accepted(&server, || mint(dir, &ik, Some(&user_id), &key_path, &host)).await;

    // The printed EdDSA key is the one registered: its assertions are accepted.
    let used = mint(dir, &ik, Some(&user_id), &ed_path, &host);
    let (status, body) = server.token(&used).await;
    assert_eq!(status, 200, "{body}");
    let access_token = body["access_token"].as_str().unwrap().to_owned();

    let shown = admin(dir, &["integration", "show", &ik]);
    let mut kids: Vec<&str> = shown["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    kids.sort_unstable();
    let mut expected = vec![kid.as_str(), ed_kid.as_str()];
    expected.sort_unstable();
    assert_eq!(kids, expected);
    let listed = admin(dir, &["integration", "list"]);
    assert_eq!(listed["integrations"][0]["integration_key"], ik.as_str());
    assert_eq!(
        admin(dir, &["user", "list"])["users"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let shown_user = admin(dir, &["user", "show", &user_id]);
    assert_eq!(shown_user["email"], "ada@example.com");
    assert_eq!(shown_user["accounts"][0]["account_name"], "Ada's account");

    let fresh = || mint(dir, &ik, Some(&user_id), &key_path, &host);
    // A disabled user is refused within 5 s, and accepted again once enabled.
    admin(dir, &["user", "disable", &user_id]);
    let (secs, body) = seconds_until_refused(&server, fresh).await;
    assert!(secs <= 5.0, "took {secs} s");
    assert_eq!(
        body["error_description"],
        "user_not_found: the user named by 'sub' is disabled"
    );
    admin(dir, &["user", "enable", &user_id]);
    until_accepted(&server, fresh).await;

    // A withdrawn consent likewise.
    let revoked = admin(
        dir,
        &[
            "consent",
            "revoke",
            "--user",
            &user_id,
            "--integration",
            &ik,
        ],
    );
    assert_eq!(revoked["revoked"], true);
    let (secs, body) = seconds_until_refused(&server, fresh).await;
    assert!(secs <= 5.0, "took {secs} s");
    assert_eq!(body["error"], "consent_required", "{body}");
    grant_consent();
    until_accepted(&server, fresh).await;

    // Disabling the integration is refused by the running server within 5 s.
    admin(dir, &["integration", "disable", &ik]);
    let (secs, body) =
        seconds_until_refused(&server, || mint(dir, &ik, Some(&user_id), &key_path, &host)).await;
    assert!(secs <= 5.0, "took {secs} s");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("issuer_not_found"),
        "{body}"
    );
    admin(dir, &["integration", "enable", &ik]);

    // Removing the key likewise.
    let start = Instant::now();
    while server
        .token(&mint(dir, &ik, Some(&user_id), &key_path, &host))
        .await
        .0
        != 200
    {
        assert!(start.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    admin(dir, &["integration", "remove-key", &ik, &kid]);
    let (secs, body) =
        seconds_until_refused(&server, || mint(dir, &ik, Some(&user_id), &key_path, &host)).await;
    assert!(secs <= 5.0, "took {secs} s");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("no_valid_keys_or_signatures"),
        "{body}"
    );

    // SIGTERM stops it cleanly. After a restart the used jti is still refused, the
    // signing key is the same and a token issued before the restart still works.
    let jwks_before = get_json(format!("{}/oauth/jwks", server.url), None).await.1;
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    let server = serve_store(dir, &PUBLIC).await;
    let (status, body) = server.token(&used).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("already been used"),
        "{body}"
    );
    let jwks_after = get_json(format!("{}/oauth/jwks", server.url), None).await.1;
    assert_eq!(jwks_before, jwks_after);
    let (status, me) = get_json(
        format!("{}/oauth/userinfo", server.url),
        Some(&access_token),
    )
    .await;
    assert_eq!((status, me["sub"].as_str()), (200, Some(user_id.as_str())));
    assert!(server.terminate().success());
}

#[tokio::test]
async fn require_jti_from_the_command_line() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let server = serve_store(dir, &["--public-url", "http://jwtgrant.test"]).await;
    let (created, ik, key) = app_integration(dir, &["--require-jti"]);
    assert_eq!(created["require_jti"], true);
    let mint = |extra: &[&str]| mint_with(dir, &ik, None, &key, "jwtgrant.test", extra);
    let (status, body) = server.token(&mint(&["--no-jti"])).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert!(
        body["error_description"].as_str().unwrap().contains("jti"),
        "{body}"
    );
    let (status, body) = server.token(&mint(&[])).await;
    assert_eq!(status, 200, "{body}");
}

/// The `kid` in an access token's header.
fn token_kid(token: &str) -> String {
    use base64::Engine as _;
    let header = token.split('.').next().unwrap();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .unwrap(),
    )
    .unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn keys_rotate_keeps_the_servers_algorithm_and_signs_after_the_delay() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let server = serve_store(
        dir,
        &[
            "--access-token-alg",
            "RS256",
            "--public-url",
            "http://jwtgrant.test",
        ],
    )
    .await;
    let (_, ik, key) = app_integration(dir, &[]);
    let signed_by = || async {
        let (status, body) = server
            .token(&mint(dir, &ik, None, &key, "jwtgrant.test"))
            .await;
        assert_eq!(status, 200, "{body}");
        token_kid(body["access_token"].as_str().unwrap())
    };
    let first = signed_by().await;

    // No --alg: the kind of the key signing now. The delay from the environment.
    // The server reads whole seconds: a key made at second S with a delay of 3
    // signs from second S + 3 on, and S is no earlier than the second before the
    // command started.
    let started = Instant::now();
    let started_second = now();
    let output = binary()
        .command()
        .args(store_args(dir))
        .args(["keys", "rotate", "--json"])
        .env("JWTGRANT_KEY_ROTATION_DELAY_SECS", "3")
        .output()
        .unwrap();
    assert!(output.status.success());
    let rotated: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(rotated["alg"], "RS256");
    let second = rotated["kid"].as_str().unwrap().to_owned();
    let signs_from = std::time::UNIX_EPOCH + Duration::from_secs((started_second + 3) as u64);
    // Published at once, but the old key signs until the delay has passed.
    let mut saw_new = false;
    while started.elapsed() < Duration::from_secs(8) {
        let kid = signed_by().await;
        if std::time::SystemTime::now() < signs_from {
            assert_eq!(kid, first, "the new key signed before its delay");
        }
        if kid == second {
            saw_new = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(saw_new, "the rotated key never signed");
    assert!(started.elapsed() >= Duration::from_secs(2));
}

#[tokio::test]
async fn sigterm_and_ctrl_c_let_the_request_in_flight_finish() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let (_, ik, key) = app_integration(dir, &[]);
    for signal in ["-TERM", "-INT"] {
        let server = serve_store(dir, &["--public-url", "http://jwtgrant.test"]).await;
        let assertion = mint(dir, &ik, None, &key, "jwtgrant.test");
        let body = format!("grant_type={JWT_BEARER}&assertion={assertion}");
        let (head, tail) = body.split_at(body.len() / 2);
        let mut stream = tokio::net::TcpStream::connect(server.url.trim_start_matches("http://"))
            .await
            .unwrap();
        stream
            .write_all(
                format!(
                    "POST /oauth/token HTTP/1.1\r\nHost: jwtgrant.test\r\n\
                     Content-Type: application/x-www-form-urlencoded\r\n\
                     Content-Length: {}\r\n\r\n{head}",
                    body.len()
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        // The request is in flight (half its body sent) when the signal comes.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let pid = server.pid().to_string();
        assert!(
            Command::new("kill")
                .args([signal, &pid])
                .status()
                .unwrap()
                .success()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        stream.write_all(tail.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let mut buffer = [0u8; 4096];
        // Read until the JSON body is complete or the server closes.
        while !answer.ends_with(b"}") {
            let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
                .await
                .unwrap()
                .unwrap();
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buffer[..n]);
        }
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{signal}: {answer}");
        assert!(answer.contains("\"access_token\""), "{signal}: {answer}");
        drop(stream);
        let mut server = server;
        let status = server.wait();
        assert!(status.success(), "{signal}: exit status {status:?}");
    }
}

#[tokio::test]
async fn keys_rotate_publishes_a_new_key() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let server = serve_store(dir, &[]).await;
    let jwks = || async {
        reqwest::get(format!("{}/oauth/jwks", server.url))
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    assert_eq!(jwks().await["keys"].as_array().map(Vec::len), Some(1));
    let rotated = admin(dir, &["keys", "rotate", "--activate-after", "60"]);
    let kid = rotated["kid"].as_str().unwrap().to_owned();
    let start = Instant::now();
    while !jwks().await["keys"]
        .as_array()
        .unwrap()
        .iter()
        .any(|k| k["kid"] == kid.as_str())
    {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "rotated key not published within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        admin(dir, &["keys", "list"])["keys"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}

#[test]
fn admin_errors_are_clear_and_change_nothing() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let run = |args: &[&str]| {
        binary()
            .command()
            .args(store_args(dir))
            .args(args)
            .output()
            .unwrap()
    };

    let out = run(&["integration", "show", "no-such-key"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no integration has key"));

    let ik = admin(dir, &["integration", "create", "--name", "X"])["integration_key"]
        .as_str()
        .unwrap()
        .to_owned();
    // A 1024-bit RSA key is refused.
    let small = "-----BEGIN RSA PUBLIC KEY-----\nMIGJAoGBAMvZcMixkQdHrfvT2C7xKqxoEM2N0v4l5gh2b4cUqc9JN0O0qkwKl2VN\nSiGxS6VzF/cuqjtTQWWlodhZs3u3eQPzcAjiONWLsMzMKGfmcTD+8wsp9Eb9CfrS\nUc4a8Z7KJbTnZPmpAqG2xP+K8+jdgd9pNa0q5N1zX2kzmm8tN4sTAgMBAAE=\n-----END RSA PUBLIC KEY-----\n";
    let small_path = dir.join("small.pem");
    std::fs::write(&small_path, small).unwrap();
    let out = run(&[
        "integration",
        "add-key",
        &ik,
        "--public-key",
        small_path.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("at least 2048 bits"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        admin(dir, &["integration", "show", &ik])["keys"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );

    let out = run(&[
        "consent",
        "grant",
        "--user",
        "nobody",
        "--integration",
        &ik,
        "--scope",
        "signature",
    ]);
    assert!(!out.status.success());
    let out = run(&[
        "consent",
        "grant",
        "--user",
        "nobody",
        "--integration",
        &ik,
        "--scope",
        "admin",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not allowed"));
    admin(
        dir,
        &["user", "create", "--email", "a@example.com", "--name", "A"],
    );
    let out = run(&["user", "create", "--email", "A@example.com", "--name", "B"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
}

#[tokio::test]
async fn flags_win_over_the_environment_which_wins_over_the_config_file() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let config = dir.join("jwtgrant.toml");
    std::fs::write(
        &config,
        "public_url = \"http://file.example\"\n\
         accept_audience = [\"extra.example\"]\n\
         body_limit_bytes = 3000\n\
         access_token_lifetime_secs = 600\n\
         max_assertion_lifetime_secs = 600\n",
    )
    .unwrap();
    let (_, ik, key) = app_integration(dir, &[]);
    let server = serve_store_with_env(
        dir,
        &[
            "--config",
            config.to_str().unwrap(),
            "--public-url",
            "http://flag.example",
        ],
        &[
            ("JWTGRANT_PUBLIC_URL", "http://env.example"),
            ("JWTGRANT_ACCESS_TOKEN_LIFETIME_SECS", "120"),
        ],
    )
    .await;
    // The flag beats the environment and the file.
    let metadata = reqwest::get(format!(
        "{}/.well-known/oauth-authorization-server",
        server.url
    ))
    .await
    .unwrap()
    .json::<Value>()
    .await
    .unwrap();
    assert_eq!(metadata["issuer"], "http://flag.example");
    // The file's extra audience is accepted; the environment's lifetime beats the file's.
    let mint_for =
        |aud: &str, lifetime: &str| mint_with(dir, &ik, None, &key, aud, &["--lifetime", lifetime]);
    let (status, body) = server.token(&mint_for("extra.example", "300")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], 120);
    // The file's body limit: 413 above 3000 bytes.
    let response = reqwest::Client::new()
        .post(format!("{}/oauth/token", server.url))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=x&assertion={}", "a".repeat(4000)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    // The file's max assertion lifetime: 3600 s is refused.
    let (status, body) = server.token(&mint_for("flag.example", "3600")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("at most 600 seconds"),
        "{body}"
    );
}

#[test]
fn bad_configuration_is_refused_at_start_naming_the_field() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("jwtgrant.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nlisten_port = 9\n").unwrap();
    let out = binary()
        .command()
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen_port"));

    std::fs::write(&config, "clock_leeway_secs = 100000\n").unwrap();
    let out = binary()
        .command()
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("clock_leeway_secs"));

    let out = binary()
        .command()
        .arg("--data-dir")
        .arg(data.path())
        .arg("serve")
        .env("JWTGRANT_ACCESS_TOKEN_ALG", "HS256")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("access_token_alg"));

    let out = binary()
        .command()
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--tls-cert", "/nonexistent.pem"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("tls_key"));
}

#[test]
fn integration_show_says_which_client_authentication_methods_it_can_use() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let shown = |ik: &str| {
        let json = admin(dir, &["integration", "show", ik]);
        let text = binary()
            .command()
            .args(store_args(dir))
            .args(["integration", "show", ik])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&text.stdout).into_owned();
        (
            json["client_authentication_methods"].clone(),
            json["client_credentials"].clone(),
            json["client_type"].clone(),
            text,
        )
    };
    let create = |extra: &[&str]| {
        let mut args = vec!["integration", "create", "--name", "X"];
        args.extend(extra);
        admin(dir, &args)["integration_key"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    // Public, then with a key: confidential through private_key_jwt (`none` is
    // still accepted without a secret); no client credentials without
    // application tokens.
    let users_only = create(&[]);
    let (methods, cc, kind, text) = shown(&users_only);
    assert_eq!(methods, json!(["none"]));
    assert_eq!(cc, json!(false));
    assert_eq!(kind, json!("public"));
    assert!(text.contains("client: public (PKCE)"), "{text}");
    assert!(
        text.contains("client authentication: none  client credentials grant: no"),
        "{text}"
    );
    admin(
        dir,
        &["integration", "generate-key", &users_only, "--alg", "EdDSA"],
    );
    let (methods, cc, kind, text) = shown(&users_only);
    assert_eq!(methods, json!(["private_key_jwt", "none"]));
    assert_eq!(cc, json!(false));
    assert_eq!(kind, json!("confidential"));
    assert!(
        text.contains("client: confidential (private_key_jwt)"),
        "{text}"
    );

    // Application tokens and an active key: client credentials; a disabled key
    // takes private_key_jwt and with it the grant and confidentiality away; a
    // secret gives them back.
    let apps = create(&["--allow-application-tokens"]);
    let generated = admin(
        dir,
        &["integration", "generate-key", &apps, "--alg", "EdDSA"],
    );
    let kid = generated["kid"].as_str().unwrap().to_owned();
    let (methods, cc, kind, text) = shown(&apps);
    assert_eq!(methods, json!(["private_key_jwt", "none"]));
    assert_eq!(cc, json!(true));
    assert_eq!(kind, json!("confidential"));
    assert!(text.contains("client credentials grant: yes"), "{text}");
    admin(dir, &["integration", "disable-key", &apps, &kid]);
    let (methods, cc, kind, text) = shown(&apps);
    assert_eq!(methods, json!(["none"]));
    assert_eq!(cc, json!(false));
    assert_eq!(kind, json!("public"));
    assert!(text.contains("client: public (PKCE)"), "{text}");
    admin(dir, &["integration", "set-secret", &apps]);
    let (methods, cc, kind, text) = shown(&apps);
    assert_eq!(
        methods,
        json!(["client_secret_basic", "client_secret_post"])
    );
    assert_eq!(cc, json!(true));
    assert_eq!(kind, json!("confidential"));
    assert!(
        text.contains(
            "client authentication: client_secret_basic client_secret_post  client credentials grant: yes"
        ),
        "{text}"
    );
    // A secret and an active key: every confidential method.
    admin(dir, &["integration", "enable-key", &apps, &kid]);
    let (methods, _, kind, text) = shown(&apps);
    assert_eq!(
        methods,
        json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt"
        ])
    );
    assert_eq!(kind, json!("confidential"));
    assert!(
        text.contains(
            "client: confidential (client_secret_basic client_secret_post private_key_jwt)"
        ),
        "{text}"
    );
}
