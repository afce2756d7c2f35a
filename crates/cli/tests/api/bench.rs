//! `jwtgrant bench` against `jwtgrant serve` on loopback: an integration's own
//! application assertions (also with the GitHub claims added), and a trusted
//! issuer's GitHub Actions-shaped tokens (`--issuer`), each accepted on every
//! request; the tokens carry the claims the issuer's condition reads; and the flags
//! that do not go together.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::*;

const GITHUB: &str = "https://token.actions.githubusercontent.com";
const AUDIENCE: &str = "https://github.com/octo-org";

/// `jwtgrant bench --json` with `args` against `server`, on the store of `dir`: its
/// report.
async fn bench(dir: &Path, server: &Serving, args: &[&str]) -> Value {
    let mut command = jwtgrant(dir);
    command
        .args(store_args(dir))
        .args(["bench", "--server"])
        .arg(format!("http://{}", server.host()))
        .args(["--server-pid", &server.pid().to_string()])
        .args(["--requests", "40", "--warmup", "5", "--concurrency", "4"])
        .args(args)
        .arg("--json");
    let output = tokio::task::spawn_blocking(move || run(command))
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "jwtgrant bench failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// `jwtgrant keygen` of an RS256 pair at `dir/NAME`: its kid and a JWKS file with
/// its public JWK.
fn issuer_key_pair(dir: &Path, name: &str) -> (String, std::path::PathBuf) {
    let generated = Admin::new(&binary(), store_args(dir)).json(&[
        "keygen",
        "--out",
        dir.join(name).to_str().unwrap(),
    ]);
    let jwk: Value = serde_json::from_str(
        &std::fs::read_to_string(generated["jwk_file"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let jwks = dir.join(format!("{name}.jwks.json"));
    std::fs::write(&jwks, json!({"keys": [jwk]}).to_string()).unwrap();
    (generated["kid"].as_str().unwrap().to_owned(), jwks)
}

fn github_issuer(dir: &Path, issuer: &str, ik: &str, jwks: &Path, condition: &str) {
    admin(
        dir,
        &[
            "issuer",
            "add",
            "--issuer",
            issuer,
            "--jwks-file",
            jwks.to_str().unwrap(),
            "--integration",
            ik,
            "--audience",
            AUDIENCE,
            "--subject",
            "workload",
            "--subject-expr",
            r#""repo:" + assertion.repository"#,
            "--condition",
            condition,
        ],
    );
}

/// A bench run of application tokens (scope `signature`) of a new integration,
/// against a server of its own, with `args` added.
async fn bench_application_tokens(args: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let (_, ik, key) = app_integration(path, &[]);
    let server = serve_store(path, &[]).await;
    let mut all = vec!["--integration-key", &ik, "--key", key.to_str().unwrap()];
    all.extend(["--scope", "signature"]);
    all.extend_from_slice(args);
    bench(path, &server, &all).await
}

fn assert_all_issued(report: &Value) {
    assert_eq!(report["errors"], json!({}), "{report}");
    assert_eq!(report["requests"], 45, "{report}");
    assert_eq!(report["ok"], 40.0, "{report}");
    assert!(
        report["server_cpu_us_per_request"].as_f64().unwrap() > 0.0,
        "{report}"
    );
}

/// `--floor` measures, in the same run, the crypto-only cost of the grant (RS256
/// verify, and the ES256 signature the server's JWKS names) and the server CPU of
/// its cheapest request (`/healthz`: without a user there is no userinfo run), and
/// reports the run's CPU as a ratio to their sum, and to the sum with the cheapest
/// request run again at the grant's own rate; `--no-jti` sends assertions without
/// one, which an integration that does not require it accepts.
#[tokio::test]
async fn bench_measures_its_floor_and_sends_assertions_without_jti() {
    let report = bench_application_tokens(&["--no-jti", "--floor", "--floor-requests", "50"]).await;
    assert_all_issued(&report);
    assert_eq!(report["access_token_header"]["typ"], "at+jwt", "{report}");
    let floor = &report["floor"];
    assert_eq!(floor["verify_alg"], "RS256", "{report}");
    assert_eq!(floor["sign_alg"], "ES256", "{report}");
    assert_eq!(floor["cheapest"], "healthz", "{report}");
    assert_eq!(floor["requests"].as_object().unwrap().len(), 1, "{report}");
    let crypto = floor["crypto_cpu_us"].as_f64().unwrap();
    let cheapest = floor["cheapest_cpu_us"].as_f64().unwrap();
    let sum = floor["floor_us"].as_f64().unwrap();
    assert!(crypto > 0.0 && cheapest >= 0.0, "{report}");
    assert!((sum - (crypto + cheapest)).abs() < 1e-9, "{report}");
    let cpu = report["server_cpu_us_per_request"].as_f64().unwrap();
    let ratio = floor["server_cpu_over_floor"].as_f64().unwrap();
    assert!((ratio - cpu / sum).abs() < 1e-9, "{report}");
    // Beside it, the cheapest request once more, open loop at this run's rate.
    let at_rate = &floor["at_rate"];
    assert_eq!(at_rate["rate"], report["per_second"], "{report}");
    let cheapest_at_rate = at_rate["cheapest_cpu_us"].as_f64().unwrap();
    let floor_at_rate = at_rate["floor_us"].as_f64().unwrap();
    assert!(cheapest_at_rate >= 0.0, "{report}");
    assert!(
        (floor_at_rate - (crypto + cheapest_at_rate)).abs() < 1e-9,
        "{report}"
    );
    let ratio_at_rate = at_rate["server_cpu_over_floor"].as_f64().unwrap();
    assert!(
        (ratio_at_rate - cpu / floor_at_rate).abs() < 1e-9,
        "{report}"
    );
}

/// Open loop (`--rate`): every request is sent, none before its scheduled time
/// (`index / rate` after the start), and the run ends when the last is answered,
/// with more connections than requests left to send.
#[tokio::test]
async fn bench_open_loop_sends_each_request_at_its_time() {
    let report = bench_application_tokens(&["--rate", "150"]).await;
    assert_all_issued(&report);
    assert_eq!(report["mode"], "open-loop", "{report}");
    // The 45th request is due 44/150 s after the start.
    let seconds = report["seconds"].as_f64().unwrap();
    assert!(seconds >= 44.0 / 150.0, "{report}");
}

#[tokio::test]
async fn bench_sends_an_integrations_and_a_trusted_issuers_grants() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let (_, ik, key) = app_integration(path, &["--require-jti"]);
    let (kid, jwks) = issuer_key_pair(path, "issuer");
    github_issuer(
        path,
        GITHUB,
        &ik,
        &jwks,
        r#"assertion.repository_owner == "octo-org" && assertion.ref == "refs/heads/main""#,
    );
    // The same key under an issuer whose condition the tokens do not meet: they
    // carry the claims the condition reads, and it is evaluated.
    github_issuer(
        path,
        "https://other-ci.example",
        &ik,
        &jwks,
        r#"assertion.repository_owner == "octo-org" && assertion.ref == "refs/heads/release""#,
    );
    let server = serve_store(path, &[]).await;
    let issuer_key = path.join("issuer.pem");
    let issuer_key = issuer_key.to_str().unwrap();

    // The integration's own assertions, without --user-id: application tokens.
    let report = bench(
        path,
        &server,
        &[
            "--integration-key",
            &ik,
            "--key",
            key.to_str().unwrap(),
            "--scope",
            "signature",
        ],
    )
    .await;
    assert_all_issued(&report);
    assert_eq!(report["issuer"], Value::Null);
    // And with the GitHub claims added (the control as long as the issuer's tokens).
    let report = bench(
        path,
        &server,
        &[
            "--integration-key",
            &ik,
            "--key",
            key.to_str().unwrap(),
            "--scope",
            "signature",
            "--github-claims",
        ],
    )
    .await;
    assert_all_issued(&report);

    // The trusted issuer's tokens: kid by default the key's thumbprint, which is
    // the kid `jwtgrant keygen` puts in the JWK; each jti fresh (single use).
    // (A thumbprint may start with '-'.)
    for kid_flags in [vec![], vec!["--issuer-kid", kid.as_str()]] {
        let mut args = vec![
            "--issuer",
            GITHUB,
            "--issuer-key",
            issuer_key,
            "--aud",
            AUDIENCE,
        ];
        args.extend(kid_flags);
        let report = bench(path, &server, &args).await;
        assert_all_issued(&report);
        assert_eq!(report["issuer"], GITHUB);
    }
    // With a form scope beyond the integration's: refused on every request.
    let report = bench(
        path,
        &server,
        &[
            "--issuer",
            GITHUB,
            "--issuer-key",
            issuer_key,
            "--aud",
            AUDIENCE,
            "--scope",
            "deploy",
        ],
    )
    .await;
    assert_eq!(
        report["errors"],
        json!({"400 invalid_scope": 40}),
        "{report}"
    );

    for (issuer, kid, aud) in [
        // The condition is false for the bench's claims.
        ("https://other-ci.example", kid.as_str(), AUDIENCE),
        // A kid the JWKS does not have.
        (GITHUB, "not-the-kid", AUDIENCE),
        // An audience the issuer does not accept.
        (GITHUB, kid.as_str(), "https://github.com/evil-org"),
    ] {
        let report = bench(
            path,
            &server,
            &[
                "--issuer",
                issuer,
                "--issuer-key",
                issuer_key,
                "--issuer-kid",
                kid,
                "--aud",
                aud,
            ],
        )
        .await;
        assert_eq!(
            report["errors"],
            json!({"400 invalid_grant": 40}),
            "{issuer} {kid} {aud}: {report}"
        );
    }
}

#[test]
fn bench_issuer_flags_that_do_not_go_together_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(&key, "").unwrap();
    let key = key.to_str().unwrap();
    for (args, says) in [
        (vec!["--issuer", GITHUB], "--issuer-key"),
        (vec!["--issuer-key", key], "--issuer"),
        (vec!["--issuer-kid", "k"], "--issuer"),
        (
            vec![
                "--issuer",
                GITHUB,
                "--issuer-key",
                key,
                "--integration-key",
                "ik",
                "--key",
                key,
            ],
            "cannot be used with",
        ),
        (
            vec![
                "--issuer",
                GITHUB,
                "--issuer-key",
                key,
                "--endpoint",
                "userinfo",
            ],
            "--issuer sends JWT bearer grants",
        ),
        (vec!["--integration-key", "ik"], "--key"),
        (vec!["--rate", "0"], "--rate must be"),
        (vec!["--rate=-5"], "--rate must be"),
        (vec!["--rate", "inf"], "--rate must be"),
        (vec!["--user-id", "u"], "--integration-key"),
        (
            vec!["--issuer", GITHUB, "--issuer-key", key, "--github-claims"],
            "cannot be used with",
        ),
    ] {
        let mut command = jwtgrant(dir.path());
        command
            .args(store_args(dir.path()))
            .args(["bench", "--server", "http://127.0.0.1:9", "--requests", "1"])
            .args(&args);
        let output = run(command);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
