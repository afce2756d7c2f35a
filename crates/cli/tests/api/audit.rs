//! The audit trail end to end: the real binary serves with `--log-format json`,
//! every decision becomes an event in the store (written off the request path,
//! the last ones on shutdown) and a JSON log line; `jwtgrant audit list` reads
//! them back with its filters, across two instances one after the other; and no
//! secret, assertion, token or key reaches the store or the log. Then, in process,
//! the introspection, revocation and authorization endpoints' events, the metrics
//! by rule, and a full buffer that drops and counts but refuses nothing.

use std::path::Path;
use std::time::Duration;

use jwtgrant_server::RawConfig;
use jwtgrant_store::AuditQuery;
use serde_json::Value;

use crate::support::*;

/// `jwtgrant audit list --json ARGS` on the store of `dir`: its events.
fn audit_list(dir: &Path, args: &[&str]) -> Vec<Value> {
    let mut command = vec!["audit", "list"];
    command.extend_from_slice(args);
    admin(dir, &command)["events"].as_array().unwrap().clone()
}

/// The events in the store of `server` once at least `count` are written (the
/// writer flushes every 200 ms), newest first; what is there after 5 s otherwise.
async fn written_events(server: &TestServer, count: usize) -> Vec<jwtgrant_store::AuditEvent> {
    let mut events = Vec::new();
    for _ in 0..100 {
        events = server
            .store
            .audit_events(&AuditQuery {
                limit: 100,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        if events.len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    events
}

/// The logs of every `jwtgrant serve` the test ran in `dir` (`serve-N.log`).
fn serve_logs(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("serve-") && name.ends_with(".log") {
            text.push_str(&std::fs::read_to_string(&path).unwrap());
        }
    }
    text
}

/// Every byte under `dir` (the SQLite file, its WAL, the journal, the logs) but
/// the test's own key files, read as text where it is text.
fn everything_under(dir: &Path) -> String {
    let mut text = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if name.ends_with(".pem") || name.ends_with(".jwk.json") {
            // The test's own key files, which `keygen` wrote beside the store.
        } else if let Ok(bytes) = std::fs::read(&path) {
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    text
}

#[tokio::test]
async fn every_decision_is_an_event_in_the_store_and_the_json_log_and_none_holds_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ik, key) = app_integration(dir.path(), &[]);
    let secret = admin(dir.path(), &["integration", "set-secret", &ik])["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();

    let first = serve_store(dir.path(), &["--log-format", "json"]).await;
    let aud = first.host();
    let good = mint(dir.path(), &ik, None, &key, &aud);
    let (status, issued) = first.token(&good).await;
    assert_eq!(status, 200, "{issued}");
    let access_token = issued["access_token"].as_str().unwrap().to_owned();
    let token_jti = jwt_claims(&access_token)["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    let assertion_claims = jwt_claims(&good);

    // Refusals: a replay, a wrong audience, a wrong client secret.
    let (status, replayed) = first.token(&good).await;
    assert_eq!(status, 400);
    assert!(
        oauth_error(&replayed).1.starts_with("jti_replayed: "),
        "{replayed}"
    );
    let elsewhere = mint(dir.path(), &ik, None, &key, "elsewhere.example");
    let (_, wrong_audience) = first.token(&elsewhere).await;
    assert!(
        oauth_error(&wrong_audience)
            .1
            .starts_with("audience_mismatch: "),
        "{wrong_audience}"
    );
    let http = reqwest::Client::new();
    let wrong_secret = http
        .post(format!("{}/oauth/token", first.url))
        .basic_auth(&ik, Some("not the secret"))
        .header("x-request-id", "req-wrong-secret")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_secret.status(), 401);
    assert_eq!(
        wrong_secret.headers()["x-request-id"].to_str().unwrap(),
        "req-wrong-secret",
        "the answer carries the request's id back"
    );
    // Shutdown writes the decisions still waiting.
    assert!(first.terminate().success());
    let log = serve_logs(dir.path());

    let events = audit_list(dir.path(), &[]);
    assert_eq!(events.len(), 4, "{events:#?}");
    let issued_event = events
        .iter()
        .find(|e| e["decision"] == "issued")
        .expect("the grant");
    assert_eq!(issued_event["endpoint"], "token");
    assert_eq!(
        issued_event["grant_type"],
        "urn:ietf:params:oauth:grant-type:jwt-bearer"
    );
    assert_eq!(issued_event["client_id"], ik.as_str());
    assert_eq!(issued_event["issuer"], ik.as_str());
    assert_eq!(issued_event["subject"], ik.as_str(), "an application token");
    assert_eq!(issued_event["token_id"], token_jti.as_str());
    assert_eq!(issued_event["assertion_jti"], assertion_claims["jti"]);
    assert!(
        issued_event["key_id"]
            .as_str()
            .is_some_and(|k| !k.is_empty())
    );
    assert_eq!(issued_event["client_addr"], "127.0.0.1");
    let rules: Vec<&str> = events.iter().filter_map(|e| e["rule"].as_str()).collect();
    assert_eq!(
        rules,
        [
            "client_authentication_failed",
            "audience_mismatch",
            "jti_replayed"
        ],
        "newest first"
    );
    let wrong_secret_event = &events[0];
    assert_eq!(wrong_secret_event["request_id"], "req-wrong-secret");
    assert_eq!(
        wrong_secret_event["client_id"],
        ik.as_str(),
        "the client it named"
    );
    assert_eq!(wrong_secret_event["error"], "invalid_client");

    // One JSON log line per event.
    let logged: Vec<Value> = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["target"] == "jwtgrant::audit")
        .collect();
    assert_eq!(logged.len(), 4, "{log}");
    assert!(
        logged.iter().any(|line| {
            line["fields"]["rule"] == "jti_replayed" && line["fields"]["client_id"] == ik.as_str()
        }),
        "{logged:#?}"
    );

    // A second instance on the same store: its decisions join the same trail.
    let second = serve_store(dir.path(), &["--log-format", "json"]).await;
    let again = mint(dir.path(), &ik, None, &key, &second.host());
    assert_eq!(second.token(&again).await.0, 200);
    let instances = |events: &[Value]| {
        let mut seen: Vec<String> = events
            .iter()
            .map(|e| e["instance"].as_str().unwrap().to_owned())
            .collect();
        seen.sort();
        seen.dedup();
        seen.len()
    };
    let mut events = Vec::new();
    for _ in 0..100 {
        events = audit_list(dir.path(), &["--decision", "issued"]);
        if events.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        events.len(),
        2,
        "written within a few hundred ms: {events:#?}"
    );
    assert_eq!(instances(&events), 2, "{events:#?}");

    // The contract's filters.
    assert_eq!(audit_list(dir.path(), &["--rule", "jti_replayed"]).len(), 1);
    assert_eq!(audit_list(dir.path(), &["--decision", "refused"]).len(), 3);
    assert_eq!(
        audit_list(dir.path(), &["--client", &ik, "--limit", "2"]).len(),
        2
    );
    assert_eq!(
        audit_list(dir.path(), &["--issuer", &ik]).len(),
        4,
        "two grants, the replay and the wrong audience; client authentication has no issuer"
    );
    assert_eq!(audit_list(dir.path(), &["--subject", "nobody"]).len(), 0);
    assert_eq!(audit_list(dir.path(), &["--since", "1h"]).len(), 5);
    assert_eq!(
        audit_list(dir.path(), &["--since", "2000-01-01T00:00:00Z"]).len(),
        5
    );
    assert_eq!(
        audit_list(dir.path(), &["--since", "2999-01-01T00:00:00Z"]).len(),
        0
    );
    let text = Admin::new(&binary(), store_args(dir.path())).run(&["audit", "list"], None);
    assert!(text.contains("token refused jti_replayed"), "{text}");
    let refused = binary()
        .command()
        .args(store_args(dir.path()))
        .args(["audit", "list", "--since", "soon"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--since 'soon'"));

    // No secret, assertion, token or key: not in the store's files, not in what
    // the store holds (PostgreSQL's rows are read back whole), not in the log.
    drop(second);
    let log = serve_logs(dir.path());
    let private_key = std::fs::read_to_string(&key).unwrap();
    let key_line = private_key
        .lines()
        .find(|line| line.len() > 40 && !line.starts_with("-----"))
        .unwrap()
        .to_owned();
    let stored = everything_under(dir.path())
        + &serde_json::to_string(&audit_list(dir.path(), &["--limit", "1000"])).unwrap();
    for (what, secret) in [
        ("the assertion", good.as_str()),
        (
            "the assertion's signature",
            good.rsplit('.').next().unwrap(),
        ),
        ("the other assertion", again.as_str()),
        ("the access token", access_token.as_str()),
        (
            "the access token's signature",
            access_token.rsplit('.').next().unwrap(),
        ),
        ("the client secret", secret.as_str()),
        ("the wrong secret", "not the secret"),
        ("the private key", key_line.as_str()),
    ] {
        assert!(!stored.contains(secret), "{what} is in the store");
        assert!(!log.contains(secret), "{what} is in the log");
    }
}

#[tokio::test]
async fn introspection_revocation_and_authorization_decisions_are_events_and_refusals_are_counted_by_rule()
 {
    let fixture = Fixture::new().await;
    let server = &fixture.server;
    let hash = jwtgrant_server::credentials::hash_secret("rs-secret").unwrap();
    server
        .store
        .set_integration_secret(&fixture.integration_key, Some(&hash))
        .await
        .unwrap();
    server.refresh().await;
    let (status, body) = fixture.token_for(&fixture.claims()).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap();
    let jti = jwt_claims(token)["jti"].as_str().unwrap().to_owned();
    let expired = fixture.claims_with(
        serde_json::json!({"exp": now() - 3600, "iat": now() - 4000}),
        &[],
    );
    assert_eq!(fixture.token_for(&expired).await.0, 400);

    let post = |path: &str, form: Vec<(&'static str, String)>, secret: &'static str| {
        server
            .http
            .post(format!("{}{path}", server.url))
            .basic_auth(&fixture.integration_key, Some(secret))
            .form(&form)
            .send()
    };
    let introspected: Value = post(
        "/oauth/introspect",
        vec![("token", token.to_owned())],
        "rs-secret",
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(introspected["active"], true);
    assert_eq!(
        post(
            "/oauth/introspect",
            vec![("token", token.to_owned())],
            "wrong"
        )
        .await
        .unwrap()
        .status(),
        401
    );
    assert_eq!(
        post(
            "/oauth/revoke",
            vec![("token", token.to_owned())],
            "rs-secret"
        )
        .await
        .unwrap()
        .status(),
        200
    );
    // An authorization request for a client nobody registered.
    let page = server
        .get("/oauth/auth?response_type=code&client_id=nobody&redirect_uri=https%3A%2F%2Fa.example%2Fcb")
        .await;
    assert_eq!(page.status(), 400);

    let events = written_events(server, 6).await;
    let by = |endpoint: &str, decision: &str| {
        events
            .iter()
            .filter(|e| e.endpoint == endpoint && e.decision == decision)
            .collect::<Vec<_>>()
    };
    assert_eq!(events.len(), 6, "{events:#?}");
    let issued = by("token", "issued");
    assert_eq!(issued[0].subject.as_deref(), Some(fixture.user_id.as_str()));
    assert_eq!(issued[0].scopes.as_deref(), Some("signature impersonation"));
    assert_eq!(issued[0].key_id.as_deref(), Some(fixture.kid.as_str()));
    let expired_event = by("token", "refused");
    assert_eq!(expired_event[0].rule.as_deref(), Some("assertion_expired"));
    assert_eq!(
        expired_event[0].subject.as_deref(),
        None,
        "an expired assertion is refused before its subject is trusted"
    );
    let introspections = by("introspect", "issued");
    assert_eq!(introspections[0].token_id.as_deref(), Some(jti.as_str()));
    assert_eq!(
        by("introspect", "refused")[0].rule.as_deref(),
        Some("client_authentication_failed")
    );
    assert_eq!(
        by("revoke", "issued")[0].token_id.as_deref(),
        Some(jti.as_str())
    );
    let authorize = by("authorize", "refused");
    assert_eq!(authorize[0].rule.as_deref(), Some("client_unknown"));
    assert_eq!(authorize[0].client_id.as_deref(), Some("nobody"));

    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("jwtgrant_refusals_total{rule=\"assertion_expired\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("jwtgrant_audit_events_written_total 6"),
        "{metrics}"
    );
    assert!(metrics.contains("jwtgrant_audit_dropped_total{reason=\"buffer_full\"} 0"));
}

/// A NUL in an unverified `iss` (PostgreSQL text cannot hold one) is refused as an
/// unknown issuer, not a 503 from the store's lookup; its event keeps it as U+FFFD
/// and does not fail the batch: the next client's grant is recorded beside it.
#[tokio::test]
async fn a_nul_in_an_unverified_claim_is_an_unknown_issuer_and_costs_no_event() {
    use base64::Engine as _;
    let fixture = Fixture::new().await;
    let server = &fixture.server;
    let part = |json: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
    let forged = format!(
        "{}.{}.AAAA",
        part(r#"{"alg":"RS256"}"#),
        part(r#"{"iss":"evil\u0000issuer","exp":4102444800}"#)
    );
    let (status, body) = server.token(&forged).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("issuer_not_found: "),
        "{body}"
    );
    let (status, body) = fixture.token_for(&fixture.claims()).await;
    assert_eq!(status, 200, "{body}");

    let events = written_events(server, 2).await;
    let issuers: Vec<_> = events.iter().map(|e| e.issuer.as_deref()).collect();
    assert!(issuers.contains(&Some("evil\u{FFFD}issuer")), "{events:#?}");
    assert!(
        issuers.contains(&Some(fixture.integration_key.as_str())),
        "{events:#?}"
    );
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("jwtgrant_audit_dropped_total{reason=\"store_error\"} 0"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_full_audit_buffer_drops_the_oldest_and_counts_but_refuses_no_grant() {
    let server = TestServer::start_with(RawConfig {
        audit_buffer_events: Some(1),
        ..RawConfig::default()
    })
    .await;
    let fixture = Fixture::with(server, IntegrationSpec::default()).await;
    let burst = 30;
    let server = &fixture.server;
    let mut grants = tokio::task::JoinSet::new();
    for _ in 0..burst {
        let (http, url) = (server.http.clone(), server.token_endpoint());
        let assertion = fixture.sign(&fixture.claims());
        grants.spawn(async move {
            http.post(url)
                .form(&[
                    ("grant_type", JWT_BEARER),
                    ("assertion", assertion.as_str()),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    let statuses = grants.join_all().await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let counts = || server.state.audit.counts();
    for _ in 0..100 {
        if counts().written + counts().dropped_full == burst {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let counts = counts();
    assert_eq!(counts.written + counts.dropped_full, burst, "{counts:?}");
    assert!(counts.dropped_full > 0, "{counts:?}");
    let metrics = server.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(&format!(
            "jwtgrant_audit_dropped_total{{reason=\"buffer_full\"}} {}",
            counts.dropped_full
        )),
        "{metrics}"
    );
}

#[tokio::test]
async fn with_no_audit_nothing_is_recorded() {
    let server = TestServer::start_with(RawConfig {
        no_audit: Some(true),
        ..RawConfig::default()
    })
    .await;
    let fixture = Fixture::with(server, IntegrationSpec::default()).await;
    assert_eq!(fixture.token_for(&fixture.claims()).await.0, 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let events = fixture
        .server
        .store
        .audit_events(&AuditQuery {
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(events.is_empty(), "{events:?}");
}
