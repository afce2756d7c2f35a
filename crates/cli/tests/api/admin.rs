//! The binary end to end: admin commands on the store of a running `jwtgrant serve`
//! process, changes taking effect within 5 seconds, SIGTERM, restart, config errors.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

struct ServerProcess {
    child: Child,
    url: String,
}

impl ServerProcess {
    async fn start(dir: &Path, extra: &[&str]) -> ServerProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(binary())
            .args(store_args(dir))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if reqwest::get(format!("{url}/readyz"))
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false)
            {
                return ServerProcess { child, url };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut child = child;
        let _ = child.kill();
        let _ = child.wait();
        panic!("server did not become ready");
    }

    async fn token(&self, assertion: &str) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(format!("{}/oauth/token", self.url))
            .form(&[("grant_type", JWT_BEARER), ("assertion", assertion)])
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mint(dir: &Path, integration_key: &str, user_id: Option<&str>, key: &Path, aud: &str) -> String {
    let mut command = Command::new(binary());
    command
        .args([
            "assertion",
            "--integration-key",
            integration_key,
            "--aud",
            aud,
        ])
        .arg("--key")
        .arg(key);
    if let Some(user) = user_id {
        command.args(["--user-id", user]);
    }
    let output = command.current_dir(dir).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Sends fresh assertions until one is refused, returning how long that took.
async fn seconds_until_refused(server: &ServerProcess, mint: impl Fn() -> String) -> (f64, Value) {
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

#[tokio::test]
async fn readme_flow_then_revocations_within_five_seconds_then_restart() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let server = ServerProcess::start(dir, &[]).await;
    let host = server.url.trim_start_matches("http://").to_owned();

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
    );
    let consents = admin(dir, &["consent", "list", "--user", &user_id]);
    assert_eq!(consents["consents"].as_array().map(Vec::len), Some(1));
    // Consent takes effect within 5 s.
    let start = Instant::now();
    let assertion = loop {
        let assertion = mint(dir, &ik, Some(&user_id), &key_path, &host);
        let (status, _) = server.token(&assertion).await;
        if status == 200 {
            break assertion;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "consent not seen within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let shown = admin(dir, &["integration", "show", &ik]);
    assert_eq!(shown["keys"][0]["kid"], kid.as_str());
    assert_eq!(
        admin(dir, &["user", "list"])["users"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

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

    // SIGTERM stops it cleanly; after a restart the used jti is still refused.
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    let server = ServerProcess::start(dir, &[]).await;
    let (status, body) = server.token(&assertion).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "invalid_grant");
    assert!(server.terminate().success());
}

#[tokio::test]
async fn keys_rotate_publishes_a_new_key() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path();
    let server = ServerProcess::start(dir, &[]).await;
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
        Command::new(binary())
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

#[test]
fn bad_configuration_is_refused_at_start_naming_the_field() {
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("jwtgrant.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nlisten_port = 9\n").unwrap();
    let out = Command::new(binary())
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen_port"));

    std::fs::write(&config, "clock_leeway_secs = 100000\n").unwrap();
    let out = Command::new(binary())
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("clock_leeway_secs"));

    let out = Command::new(binary())
        .arg("--data-dir")
        .arg(data.path())
        .arg("serve")
        .env("JWTGRANT_ACCESS_TOKEN_ALG", "HS256")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("access_token_alg"));

    let out = Command::new(binary())
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--tls-cert", "/nonexistent.pem"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("tls_key"));
}
