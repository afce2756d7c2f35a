//! The storage suite: every behaviour the trait promises, run against a real SQLite
//! file and, when `JWTGRANT_TEST_DATABASE_URL` is set, PostgreSQL (a schema of each
//! test's own, dropped afterwards). Written against `dyn Store`.

use std::sync::Arc;

use crate::*;

async fn sqlite() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
    let location = StoreLocation::DataDir(dir.path().to_path_buf());
    let store = open(&location, &OpenOptions::default())
        .await
        .unwrap_or_else(|e| unreachable!("{e}"));
    (dir, store)
}

/// The PostgreSQL named by `JWTGRANT_TEST_DATABASE_URL`, in a fresh schema; `None`
/// when the variable is unset (`.ci/run` sets it).
async fn postgres() -> Option<(Schema, Arc<dyn Store>)> {
    let url = std::env::var("JWTGRANT_TEST_DATABASE_URL").ok()?;
    let schema = Schema {
        url: url.clone(),
        name: format!("t_{}", uuid::Uuid::new_v4().simple()),
    };
    let options = OpenOptions {
        schema: Some(schema.name.clone()),
        max_connections: Some(4),
        ..OpenOptions::default()
    };
    let store = open(&StoreLocation::Postgres(url), &options)
        .await
        .unwrap_or_else(|e| unreachable!("{e}"));
    Some((schema, store))
}

/// A test's PostgreSQL schema.
struct Schema {
    url: String,
    name: String,
}

impl Schema {
    /// Drops the schema (the test's store dropped first, so its connections,
    /// rolled back by this runtime, hold no locks); gives up after a few seconds,
    /// leaving it to `.ci/run`'s sweep.
    async fn drop_now(self) {
        if let Ok(pool) = sqlx::PgPool::connect(&self.url).await {
            let _ = sqlx::query("SET lock_timeout = '10s'").execute(&pool).await;
            let drop = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
            let _ = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&pool).await;
            pool.close().await;
        }
    }
}

/// Runs each check against SQLite and, when configured, PostgreSQL.
macro_rules! on_every_backend {
    ($($check:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[tokio::test]
                async fn $check() {
                    let (_dir, store) = super::sqlite().await;
                    super::$check(store).await;
                }
            )*
        }
        mod on_postgres {
            $(
                #[tokio::test]
                async fn $check() {
                    match super::postgres().await {
                        Some((schema, store)) => {
                            // Run apart so that the schema goes even when it fails.
                            let outcome = tokio::spawn(super::$check(store)).await;
                            schema.drop_now().await;
                            if let Err(failed) = outcome {
                                std::panic::resume_unwind(failed.into_panic());
                            }
                        }
                        None => eprintln!("JWTGRANT_TEST_DATABASE_URL unset: PostgreSQL not tested"),
                    }
                }
            )*
        }
    };
}

on_every_backend!(
    audit_events_are_batched_filtered_and_swept,
    integrations_and_keys,
    users_accounts_and_consents,
    jti_is_recorded_once_until_it_expires,
    concurrent_duplicate_jtis_get_exactly_one_recording,
    a_batch_records_each_jti_once_first_copy_wins,
    batches_sharing_jtis_in_opposite_orders_commit_at_once,
    secrets_and_passwords,
    a_code_is_redeemed_once,
    refresh_tokens_rotate_once_and_chains_revoke,
    concurrent_redemptions_of_one_code_succeed_once,
    server_secret_is_created_once,
    signing_keys_round_trip,
    live_jtis_are_the_unexpired_ones,
    a_key_with_a_nul_is_not_found_rather_than_an_error,
    a_remembered_jti_is_found_without_recording_it,
    every_registry_change_bumps_the_version,
    a_closed_store_is_unavailable,
    trusted_issuers_and_external_identities,
    an_update_replaces_only_the_lists_it_names,
    trust_targets_are_one_per_audience_and_integration,
);

fn trust_target(audience: &str, integration_key: &str) -> TrustTargetRecord {
    TrustTargetRecord {
        audience: audience.into(),
        integration_key: integration_key.into(),
        remote_client_id: format!("{integration_key}-there"),
        resources: vec!["https://api.b.example/mcp".into()],
        scopes: vec!["signature".into(), "files.read".into()],
        created_at: 70,
    }
}

fn audit_event(at_ms: i64, client: &str, decision: &str, rule: Option<&str>) -> AuditEvent {
    AuditEvent {
        at_ms,
        instance: "host-1".into(),
        request_id: format!("r-{at_ms}"),
        endpoint: "token".into(),
        grant_type: Some("urn:ietf:params:oauth:grant-type:jwt-bearer".into()),
        client_id: Some(client.into()),
        issuer: Some(client.into()),
        subject: Some("u1".into()),
        scopes: Some("signature impersonation".into()),
        decision: decision.into(),
        rule: rule.map(str::to_owned),
        error: rule.map(|_| "invalid_grant".to_owned()),
        key_id: Some("k1".into()),
        token_id: (decision == "issued").then(|| format!("t-{at_ms}")),
        assertion_jti: None,
        client_addr: Some("127.0.0.1".into()),
    }
}

async fn audit_events_are_batched_filtered_and_swept(store: Arc<dyn Store>) {
    // A batch larger than one statement holds, in one call.
    let mut batch: Vec<AuditEvent> = (0..1200)
        .map(|i| audit_event(1_000 + i, "c1", "issued", None))
        .collect();
    batch.push(audit_event(5_000, "c2", "refused", Some("jti_replayed")));
    batch.push(audit_event(
        6_000,
        "c2",
        "refused",
        Some("assertion_expired"),
    ));
    ok(store.record_audit_events(&batch).await);
    ok(store.record_audit_events(&[]).await);

    let all = |limit| AuditQuery {
        limit,
        ..AuditQuery::default()
    };
    let newest = ok(store.audit_events(&all(3)).await);
    assert_eq!(newest.len(), 3);
    assert_eq!(newest[0], batch[1201], "newest first, every field kept");
    assert_eq!(newest[1].rule.as_deref(), Some("jti_replayed"));
    assert_eq!(ok(store.audit_events(&all(5000)).await).len(), 1202);

    let refused = AuditQuery {
        decision: Some("refused".into()),
        ..all(100)
    };
    assert_eq!(ok(store.audit_events(&refused).await).len(), 2);
    let replays = AuditQuery {
        rule: Some("jti_replayed".into()),
        client_id: Some("c2".into()),
        ..all(100)
    };
    assert_eq!(ok(store.audit_events(&replays).await).len(), 1);
    let since = AuditQuery {
        since_ms: Some(2_150),
        client_id: Some("c1".into()),
        ..all(100)
    };
    assert_eq!(ok(store.audit_events(&since).await).len(), 50);
    for (filter, expected) in [
        (
            AuditQuery {
                issuer: Some("c2".into()),
                ..all(100)
            },
            2,
        ),
        (
            AuditQuery {
                subject: Some("nobody".into()),
                ..all(100)
            },
            0,
        ),
        (
            AuditQuery {
                key_id: Some("k1".into()),
                ..all(2000)
            },
            1202,
        ),
    ] {
        assert_eq!(
            ok(store.audit_events(&filter).await).len(),
            expected,
            "{filter:?}"
        );
    }

    assert_eq!(ok(store.sweep_audit_events(2_000).await), 1000);
    assert_eq!(ok(store.sweep_audit_events(2_000).await), 0);
    assert_eq!(ok(store.audit_events(&all(5000)).await).len(), 202);

    // Text the batch encoding must carry as it is (quotes, backslashes, JSON-looking
    // text, non-ASCII), an absent field that stays absent, and a NUL, which a client
    // can put in a claim.
    let odd = AuditEvent {
        subject: Some("quo\"te \\ {\"a\": 1} ü 🚀 \u{0}".into()),
        scopes: None,
        ..audit_event(500, "c3", "refused", Some("consent_required"))
    };
    ok(store.record_audit_events(std::slice::from_ref(&odd)).await);
    let c3 = AuditQuery {
        client_id: Some("c3".into()),
        limit: 10,
        ..AuditQuery::default()
    };
    // A NUL (which PostgreSQL text cannot hold) is kept as U+FFFD, on both stores.
    let kept = AuditEvent {
        subject: Some("quo\"te \\ {\"a\": 1} ü 🚀 \u{FFFD}".into()),
        ..odd
    };
    assert_eq!(ok(store.audit_events(&c3).await), [kept]);
}

async fn trust_targets_are_one_per_audience_and_integration(store: Arc<dyn Store>) {
    ok(store.create_integration(new_integration("i1")).await);
    ok(store.create_integration(new_integration("i2")).await);
    ok(store
        .add_trust_target(&trust_target("https://b.example", "i1"))
        .await);
    ok(store
        .add_trust_target(&trust_target("https://b.example", "i2"))
        .await);
    ok(store
        .add_trust_target(&trust_target("https://a.example", "i1"))
        .await);
    assert!(matches!(
        store
            .add_trust_target(&trust_target("https://b.example", "i1"))
            .await,
        Err(StoreError::Conflict(message)) if message.contains("https://b.example")
    ));
    assert!(matches!(
        store
            .add_trust_target(&trust_target("https://b.example", "nobody"))
            .await,
        Err(StoreError::NotFound("integration"))
    ));
    assert_eq!(
        ok(store.trust_target("https://b.example", "i1").await),
        Some(trust_target("https://b.example", "i1"))
    );
    assert_eq!(
        ok(store.trust_target("https://c.example", "i1").await),
        None
    );
    let of_i1: Vec<String> = ok(store.trust_targets(Some("i1")).await)
        .into_iter()
        .map(|t| t.audience)
        .collect();
    assert_eq!(of_i1, ["https://a.example", "https://b.example"]);
    assert_eq!(ok(store.trust_targets(None).await).len(), 3);
    ok(store.remove_trust_target("https://b.example", "i1").await);
    assert!(matches!(
        store.remove_trust_target("https://b.example", "i1").await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        ok(store.trust_target("https://b.example", "i1").await),
        None
    );
    assert_eq!(ok(store.trust_targets(None).await).len(), 2);
}

fn trusted_issuer(id: &str, issuer: &str, integration_key: &str) -> TrustedIssuerRecord {
    TrustedIssuerRecord {
        issuer_id: id.into(),
        issuer: issuer.into(),
        integration_key: integration_key.into(),
        active: true,
        policy: r#"{"keys":{"jwks_uri":"https://idp.example/jwks"}}"#.into(),
        created_at: 50,
    }
}

async fn trusted_issuers_and_external_identities(store: Arc<dyn Store>) {
    ok(store.create_integration(new_integration("i1")).await);
    let version = ok(store.registry_version().await);
    ok(store
        .create_trusted_issuer(&trusted_issuer("t1", "https://idp.example", "i1"))
        .await);
    assert!(ok(store.registry_version().await) > version);
    // The issuer identifier is unique as given; another spelling is another issuer.
    assert!(matches!(
        store
            .create_trusted_issuer(&trusted_issuer("t2", "https://idp.example", "i1"))
            .await,
        Err(StoreError::Conflict(message)) if message.contains("https://idp.example")
    ));
    ok(store
        .create_trusted_issuer(&trusted_issuer("t2", "https://idp.example/", "i1"))
        .await);
    assert!(matches!(
        store
            .create_trusted_issuer(&trusted_issuer("t3", "https://other.example", "nobody"))
            .await,
        Err(StoreError::NotFound("integration"))
    ));
    let listed = ok(store.trusted_issuers().await);
    assert_eq!(
        listed
            .iter()
            .map(|r| r.issuer_id.as_str())
            .collect::<Vec<_>>(),
        ["t1", "t2"]
    );
    assert_eq!(
        listed.first(),
        Some(&trusted_issuer("t1", "https://idp.example", "i1"))
    );

    let version = ok(store.registry_version().await);
    ok(store.set_trusted_issuer_active("t1", false).await);
    assert!(ok(store.registry_version().await) > version);
    assert!(
        !ok(store.trusted_issuers().await)
            .iter()
            .any(|r| r.issuer_id == "t1" && r.active)
    );
    assert!(matches!(
        store.set_trusted_issuer_active("missing", true).await,
        Err(StoreError::NotFound(_))
    ));

    ok(store.create_user(user("u1", "Ada@Example.com")).await);
    let link = ExternalIdentityRecord {
        issuer_id: "t1".into(),
        subject: "00u1".into(),
        user_id: "u1".into(),
        created_at: 60,
    };
    let version = ok(store.registry_version().await);
    ok(store.link_external_identity(&link).await);
    assert!(ok(store.registry_version().await) > version);
    assert!(matches!(
        store.link_external_identity(&link).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store
            .link_external_identity(&ExternalIdentityRecord {
                user_id: "nobody".into(),
                subject: "00u2".into(),
                ..link.clone()
            })
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        ok(store.linked_user("t1", "00u1").await).as_deref(),
        Some("u1")
    );
    assert_eq!(ok(store.linked_user("t2", "00u1").await), None);
    assert_eq!(ok(store.external_identities("t1").await), vec![link]);
    assert_eq!(
        ok(store.user_by_email("ada@example.COM").await).map(|u| u.user_id),
        Some("u1".to_owned())
    );
    assert_eq!(ok(store.user_by_email("bob@example.com").await), None);

    // Removing an issuer removes its links.
    ok(store.remove_trusted_issuer("t1").await);
    assert_eq!(ok(store.linked_user("t1", "00u1").await), None);
    assert!(matches!(
        store.remove_trusted_issuer("t1").await,
        Err(StoreError::NotFound(_))
    ));
}

#[test]
fn a_database_url_names_its_backend() {
    let location = |url: &str| StoreLocation::from_url(url);
    assert_eq!(
        location("sqlite://data/jwtgrant.db"),
        Ok(StoreLocation::Sqlite("sqlite://data/jwtgrant.db".into()))
    );
    assert_eq!(
        location("sqlite::memory:"),
        Ok(StoreLocation::Sqlite("sqlite::memory:".into()))
    );
    for url in ["postgres://u@h/db", "postgresql://u@h/db"] {
        assert_eq!(location(url), Ok(StoreLocation::Postgres(url.into())));
    }
    for url in ["mysql://u@h/db", "postgres:/h", "jwtgrant.db", ""] {
        let refused = location(url).map_err(|e| e.to_string());
        assert_eq!(
            refused,
            Err("must be a sqlite:// or postgres:// URL".to_owned()),
            "{url}"
        );
    }
}

#[tokio::test]
async fn only_a_data_dir_store_keeps_the_replay_record_beside_it() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
    let data_dir = dir.path().join("data");
    let store = ok(open(
        &StoreLocation::DataDir(data_dir.clone()),
        &OpenOptions::default(),
    )
    .await);
    assert_eq!(store.replay_journal_dir(), Some(data_dir.as_path()));
    assert!(!store.is_shared());

    let url = format!("sqlite://{}", dir.path().join("by-url.db").display());
    let store = ok(open(&StoreLocation::Sqlite(url), &OpenOptions::default()).await);
    assert_eq!(
        store.replay_journal_dir(),
        None,
        "a URL names no data directory"
    );
    assert!(!store.is_shared());

    match postgres().await {
        Some((schema, store)) => {
            let (journal, shared) = (store.replay_journal_dir().is_none(), store.is_shared());
            drop(store);
            schema.drop_now().await;
            assert!(
                journal && shared,
                "a database is shared and keeps no journal"
            );
        }
        None => eprintln!("JWTGRANT_TEST_DATABASE_URL unset: PostgreSQL not tested"),
    }
}

fn new_integration(key: &str) -> NewIntegration {
    NewIntegration {
        integration_key: key.into(),
        name: "Acme".into(),
        scopes: vec!["signature".into(), "impersonation".into()],
        redirect_uris: vec!["http://localhost/cb".into()],
        resources: Vec::new(),
        default_scopes: Vec::new(),
        allow_application_tokens: false,
        require_jti: true,
        created_at: 10,
    }
}

fn user(id: &str, email: &str) -> UserRecord {
    UserRecord {
        user_id: id.into(),
        email: email.into(),
        name: "Ada Lovelace".into(),
        given_name: "Ada".into(),
        family_name: "Lovelace".into(),
        active: true,
        created_at: 20,
    }
}

fn ok<T>(result: StoreResult<T>) -> T {
    result.unwrap_or_else(|e| unreachable!("{e}"))
}

async fn integrations_and_keys(store: Arc<dyn Store>) {
    let v0 = ok(store.registry_version().await);
    let created = ok(store.create_integration(new_integration("i1")).await);
    assert_eq!(created.scopes, ["signature", "impersonation"]);
    assert!(created.active && created.require_jti);
    assert!(
        ok(store.registry_version().await) > v0,
        "a change bumps the version"
    );

    let key = IntegrationKeyRecord {
        kid: "k1".into(),
        public_jwk: "{}".into(),
        active: true,
        created_at: 11,
    };
    ok(store.add_integration_key("i1", key.clone()).await);
    assert!(matches!(
        store.add_integration_key("i1", key.clone()).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.add_integration_key("nope", key).await,
        Err(StoreError::NotFound(_))
    ));
    ok(store.set_integration_key_active("i1", "k1", false).await);
    let loaded = ok(store.integration("i1").await).map(|i| i.keys);
    assert_eq!(
        loaded.map(|k| k.iter().map(|k| k.active).collect::<Vec<_>>()),
        Some(vec![false])
    );
    ok(store.remove_integration_key("i1", "k1").await);
    assert!(matches!(
        store.remove_integration_key("i1", "k1").await,
        Err(StoreError::NotFound(_))
    ));

    ok(store.set_integration_active("i1", false).await);
    assert_eq!(
        ok(store.integration("i1").await).map(|i| i.active),
        Some(false)
    );
    assert!(matches!(
        store.set_integration_active("nope", false).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(ok(store.list_integrations().await).len(), 1);
    assert!(ok(store.integration("nope").await).is_none());
}

async fn an_update_replaces_only_the_lists_it_names(store: Arc<dyn Store>) {
    let mut new = new_integration("i1");
    new.resources = vec!["https://api.example.com/mcp".into()];
    new.default_scopes = vec!["signature".into()];
    let created = ok(store.create_integration(new).await);
    assert_eq!(created.resources, ["https://api.example.com/mcp"]);
    assert_eq!(created.default_scopes, ["signature"]);

    let v0 = ok(store.registry_version().await);
    let update = IntegrationUpdate {
        resources: Some(vec!["urn:a".into(), "urn:b".into()]),
        default_scopes: Some(Vec::new()),
        ..IntegrationUpdate::default()
    };
    let updated = ok(store.update_integration("i1", update).await);
    assert_eq!(updated.resources, ["urn:a", "urn:b"]);
    assert!(updated.default_scopes.is_empty());
    assert_eq!(updated.scopes, created.scopes, "a list not named stays");
    assert_eq!(updated.redirect_uris, created.redirect_uris);
    assert!(
        ok(store.registry_version().await) > v0,
        "an update bumps the version"
    );
    assert_eq!(ok(store.integration("i1").await), Some(updated));

    let scopes = IntegrationUpdate {
        scopes: Some(vec!["mcp".into()]),
        redirect_uris: Some(vec!["http://127.0.0.1:9/cb".into()]),
        ..IntegrationUpdate::default()
    };
    let updated = ok(store.update_integration("i1", scopes).await);
    assert_eq!(updated.scopes, ["mcp"]);
    assert_eq!(updated.redirect_uris, ["http://127.0.0.1:9/cb"]);
    assert_eq!(updated.resources, ["urn:a", "urn:b"]);
    assert!(matches!(
        store
            .update_integration("nope", IntegrationUpdate::default())
            .await,
        Err(StoreError::NotFound(_))
    ));
}

async fn users_accounts_and_consents(store: Arc<dyn Store>) {
    ok(store.create_integration(new_integration("i1")).await);
    ok(store.create_user(user("u1", "ada@example.com")).await);
    assert!(matches!(
        store.create_user(user("u2", "ADA@example.com")).await,
        Err(StoreError::Conflict(_))
    ));

    let account = |id: &str, is_default| AccountRecord {
        account_id: id.into(),
        user_id: "u1".into(),
        account_name: id.into(),
        base_uri: "https://demo.example.com".into(),
        is_default,
        organization: None,
        created_at: 30,
    };
    assert!(
        ok(store.create_account(account("a1", false)).await).is_default,
        "first account is the default"
    );
    ok(store.create_account(account("a2", false)).await);
    ok(store.create_account(account("a3", true)).await);
    let defaults: Vec<_> = ok(store.accounts("u1").await)
        .into_iter()
        .map(|a| (a.account_id, a.is_default))
        .collect();
    assert_eq!(defaults.first(), Some(&("a3".to_string(), true)));
    assert_eq!(defaults.iter().filter(|(_, d)| *d).count(), 1);
    assert!(matches!(
        store
            .create_account(AccountRecord {
                user_id: "nobody".into(),
                ..account("a4", false)
            })
            .await,
        Err(StoreError::NotFound(_))
    ));

    let scopes = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    ok(store
        .grant_consent("u1", "i1", &scopes(&["signature"]), 40)
        .await);
    let merged = ok(store
        .grant_consent("u1", "i1", &scopes(&["impersonation", "signature"]), 41)
        .await);
    assert_eq!(merged.scopes, ["signature", "impersonation"]);
    assert!(matches!(
        store.grant_consent("u1", "nope", &scopes(&["x"]), 42).await,
        Err(StoreError::NotFound("integration"))
    ));
    assert!(matches!(
        store.grant_consent("nope", "i1", &scopes(&["x"]), 42).await,
        Err(StoreError::NotFound("user"))
    ));
    assert_eq!(ok(store.list_consents(Some("u1"), None).await).len(), 1);
    assert_eq!(ok(store.list_consents(None, Some("other")).await).len(), 0);
    ok(store.revoke_consent("u1", "i1").await);
    assert!(ok(store.consent("u1", "i1").await).is_none());

    ok(store.set_user_active("u1", false).await);
    assert_eq!(ok(store.user("u1").await).map(|u| u.active), Some(false));
}

async fn jti_is_recorded_once_until_it_expires(store: Arc<dyn Store>) {
    assert_eq!(
        ok(store.record_jti("i1", "j", 100, 0).await),
        JtiOutcome::Recorded
    );
    assert_eq!(
        ok(store.record_jti("i1", "j", 100, 50).await),
        JtiOutcome::Replayed
    );
    assert_eq!(
        ok(store.record_jti("i2", "j", 100, 50).await),
        JtiOutcome::Recorded,
        "per issuer"
    );
    assert_eq!(
        ok(store.record_jti("i1", "j", 300, 101).await),
        JtiOutcome::Recorded,
        "expired rows can be reused"
    );
    assert_eq!(ok(store.sweep_jtis(200).await), 1);
}

async fn concurrent_duplicate_jtis_get_exactly_one_recording(store: Arc<dyn Store>) {
    let attempts = (0..16).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.record_jti("i1", "same", 100, 0).await })
    });
    let mut recorded = 0;
    for attempt in attempts {
        if matches!(attempt.await, Ok(Ok(JtiOutcome::Recorded))) {
            recorded += 1;
        }
    }
    assert_eq!(recorded, 1);
}

#[tokio::test]
async fn data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
    let location = StoreLocation::DataDir(dir.path().join("nested"));
    {
        let store = ok(open(&location, &OpenOptions::default()).await);
        ok(store.record_jti("i1", "j", 100, 0).await);
        ok(store
            .add_signing_key(SigningKeyRecord {
                kid: "s1".into(),
                alg: "ES256".into(),
                private_key_pkcs8: vec![1, 2],
                created_at: 0,
                activates_at: 0,
            })
            .await);
        store.close().await;
    }
    let store = ok(open(&location, &OpenOptions::default()).await);
    assert_eq!(
        ok(store.record_jti("i1", "j", 100, 1).await),
        JtiOutcome::Replayed
    );
    assert_eq!(ok(store.signing_keys().await).len(), 1);
}

async fn a_batch_records_each_jti_once_first_copy_wins(store: Arc<dyn Store>) {
    ok(store.record_jti("i1", "old", 100, 0).await);
    ok(store.record_jti("i1", "stale", 10, 0).await);
    let record = |jti: &str| JtiRecord {
        issuer: "i1".into(),
        jti: jti.into(),
        remember_until: 200,
    };
    let batch = [
        record("a"),
        record("b"),
        record("a"),
        record("old"),
        record("stale"),
        record("b"),
    ];
    let outcomes = ok(store.record_jtis(&batch, 50).await);
    use JtiOutcome::{Recorded as R, Replayed as X};
    assert_eq!(outcomes, [R, R, X, X, R, X]);
    assert_eq!(ok(store.record_jti("i1", "a", 200, 60).await), X, "durable");
    // Every one fresh but for a copy within the batch (PostgreSQL's plain INSERT).
    let fresh = [record("c"), record("d"), record("c")];
    assert_eq!(ok(store.record_jtis(&fresh, 50).await), [R, R, X]);
    let many: Vec<_> = (0..1200).map(|i| record(&format!("m{i}"))).collect();
    assert!(
        ok(store.record_jtis(&many, 50).await)
            .iter()
            .all(|o| *o == R),
        "chunks beyond one statement"
    );
}

/// Two instances commit batches that share `jti`s, in opposite orders, at the same
/// time (a replay sent to both): each `jti` is recorded by exactly one of them, and
/// neither fails. On PostgreSQL, rows locked in the order they came would deadlock.
async fn batches_sharing_jtis_in_opposite_orders_commit_at_once(store: Arc<dyn Store>) {
    let record = |jti: String| JtiRecord {
        issuer: "i1".into(),
        jti,
        remember_until: 200,
    };
    for round in 0..20 {
        let forward: Vec<_> = (0..64).map(|i| record(format!("r{round}-{i}"))).collect();
        let backward: Vec<_> = forward.iter().rev().cloned().collect();
        let (a, b) = tokio::join!(
            store.record_jtis(&forward, 50),
            store.record_jtis(&backward, 50)
        );
        let (a, b) = (ok(a), ok(b));
        for (i, outcome) in a.iter().enumerate() {
            let other = b[b.len() - 1 - i];
            assert_ne!(*outcome, other, "round {round}, jti {i}: recorded once");
        }
    }
}

fn refresh(hash: &str, family: &str, jti: &str) -> RefreshTokenRecord {
    RefreshTokenRecord {
        token_hash: hash.into(),
        family_id: family.into(),
        integration_key: "ik".into(),
        user_id: "u1".into(),
        scopes: vec!["signature".into()],
        resources: vec!["https://api.example.com/mcp".into()],
        auth_time: Some(90),
        access_jti: jti.into(),
        access_expires_at: 5_000,
        created_at: 100,
        expires_at: 10_000,
        rotated_at: None,
        revoked_at: None,
    }
}

fn code(hash: &str, family: &str) -> AuthorizationCodeRecord {
    AuthorizationCodeRecord {
        code_hash: hash.into(),
        integration_key: "ik".into(),
        user_id: "u1".into(),
        redirect_uri: "http://localhost/cb".into(),
        scopes: vec!["signature".into()],
        resources: vec![
            "https://api.example.com/mcp".into(),
            "urn:example:files".into(),
        ],
        code_challenge: Some("c".repeat(43)),
        nonce: Some("n-0S6_WzA2Mj".into()),
        auth_time: Some(90),
        family_id: family.into(),
        created_at: 100,
        expires_at: 700,
        used_at: None,
    }
}

async fn secrets_and_passwords(store: Arc<dyn Store>) {
    ok(store.create_integration(new_integration("ik")).await);
    assert_eq!(
        ok(store.integration("ik").await).and_then(|i| i.client_secret_hash),
        None
    );
    ok(store
        .set_integration_secret("ik", Some("$argon2id$x"))
        .await);
    assert_eq!(
        ok(store.integration("ik").await)
            .and_then(|i| i.client_secret_hash)
            .as_deref(),
        Some("$argon2id$x")
    );
    assert!(matches!(
        store.set_integration_secret("nope", Some("h")).await,
        Err(StoreError::NotFound(_))
    ));
    ok(store.create_user(user("u1", "Ada@Example.com")).await);
    let login = ok(store.user_login_by_email("ada@example.COM").await)
        .map(|l| (l.user.user_id, l.password_hash));
    assert_eq!(login, Some(("u1".to_owned(), None)));
    ok(store.set_user_password("u1", Some("$argon2id$p")).await);
    let login = ok(store.user_login("u1").await).and_then(|l| l.password_hash);
    assert_eq!(login.as_deref(), Some("$argon2id$p"));
    assert!(ok(store.user_login_by_email("bob@example.com").await).is_none());
}

async fn a_code_is_redeemed_once(store: Arc<dyn Store>) {
    ok(store.create_authorization_code(&code("c1", "f1")).await);
    let stored = ok(store.authorization_code("c1").await);
    assert_eq!(stored, Some(code("c1", "f1")));
    assert!(ok(store
        .redeem_authorization_code("c1", 200, &refresh("r1", "f1", "j1"))
        .await));
    assert_eq!(
        ok(store.authorization_code("c1").await).and_then(|c| c.used_at),
        Some(200)
    );
    // A second redemption writes nothing.
    assert!(!ok(store
        .redeem_authorization_code("c1", 201, &refresh("r2", "f1", "j2"))
        .await));
    assert!(ok(store.refresh_token("r2").await).is_none());
    assert_eq!(
        ok(store.refresh_token("r1").await),
        Some(refresh("r1", "f1", "j1"))
    );
    assert!(!ok(store
        .redeem_authorization_code("missing", 201, &refresh("r3", "f9", "j3"))
        .await));
}

async fn refresh_tokens_rotate_once_and_chains_revoke(store: Arc<dyn Store>) {
    ok(store.create_authorization_code(&code("c1", "f1")).await);
    assert!(ok(store
        .redeem_authorization_code("c1", 200, &refresh("r1", "f1", "j1"))
        .await));
    assert!(ok(store
        .rotate_refresh_token("r1", 300, &refresh("r2", "f1", "j2"))
        .await));
    assert!(!ok(store
        .rotate_refresh_token("r1", 301, &refresh("r3", "f1", "j3"))
        .await));
    assert!(ok(store.refresh_token("r3").await).is_none());
    assert_eq!(
        ok(store.refresh_token("r1").await).and_then(|r| r.rotated_at),
        Some(300)
    );
    // Another chain of the same grant, and one of another user.
    ok(store.create_authorization_code(&code("c2", "f2")).await);
    assert!(ok(store
        .redeem_authorization_code("c2", 200, &refresh("r4", "f2", "j4"))
        .await));
    let other = RefreshTokenRecord {
        user_id: "u2".into(),
        ..refresh("r5", "f3", "j5")
    };
    ok(store
        .create_authorization_code(&AuthorizationCodeRecord {
            user_id: "u2".into(),
            ..code("c3", "f3")
        })
        .await);
    assert!(ok(store.redeem_authorization_code("c3", 200, &other).await));

    let before = ok(store.revoked_tokens_since(0).await).len();
    assert_eq!(before, 0);
    assert_eq!(ok(store.revoke_token_family("f1", 400).await), 2);
    let revoked: Vec<String> = ok(store.revoked_tokens_since(0).await)
        .into_iter()
        .map(|r| r.jti)
        .collect();
    assert_eq!(revoked, ["j1", "j2"]);
    assert_eq!(
        ok(store.refresh_token("r2").await).and_then(|r| r.revoked_at),
        Some(400)
    );
    assert!(!ok(store
        .rotate_refresh_token("r2", 401, &refresh("r6", "f1", "j6"))
        .await));
    // Revoking again changes nothing and records nothing twice.
    assert_eq!(ok(store.revoke_token_family("f1", 402).await), 0);
    let all = ok(store.revoked_tokens_since(0).await);
    assert_eq!(all.len(), 2);
    let last_seq = all.last().map(|r| r.seq).unwrap_or_default();

    // Consent withdrawn: every chain of u1 with ik, none of u2's.
    assert_eq!(ok(store.revoke_grants("u1", "ik", 500).await), 1);
    let newer: Vec<String> = ok(store.revoked_tokens_since(last_seq).await)
        .into_iter()
        .map(|r| r.jti)
        .collect();
    assert_eq!(newer, ["j4"]);
    assert_eq!(
        ok(store.refresh_token("r5").await).and_then(|r| r.revoked_at),
        None
    );

    ok(store.revoke_access_token("jx", 9_000).await);
    ok(store.revoke_access_token("jx", 9_000).await);
    assert_eq!(ok(store.revoked_tokens_since(0).await).len(), 4);
    // Sweeping at 6,000: revocations of tokens expired by then go (j1, j2, j4 expire
    // at 5,000); refresh tokens (10,000) stay; codes (700 + a day) stay.
    ok(store.sweep_authorizations(6_000).await);
    let left: Vec<String> = ok(store.revoked_tokens_since(0).await)
        .into_iter()
        .map(|r| r.jti)
        .collect();
    assert_eq!(left, ["jx"]);
    assert!(ok(store.refresh_token("r1").await).is_some());
    assert!(ok(store.authorization_code("c1").await).is_some());
    ok(store.sweep_authorizations(700 + 24 * 3600 + 1).await);
    assert!(ok(store.authorization_code("c1").await).is_none());
}

async fn concurrent_redemptions_of_one_code_succeed_once(store: Arc<dyn Store>) {
    ok(store.create_authorization_code(&code("c1", "f1")).await);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store
                .redeem_authorization_code(
                    "c1",
                    200,
                    &refresh(&format!("r{i}"), "f1", &format!("j{i}")),
                )
                .await
        }));
    }
    let mut redeemed = 0;
    for task in tasks {
        if ok(task.await.unwrap_or_else(|e| unreachable!("{e}"))) {
            redeemed += 1;
        }
    }
    assert_eq!(redeemed, 1);
}

async fn server_secret_is_created_once(store: Arc<dyn Store>) {
    let first = ok(store.server_secret("session", b"one", 1).await);
    let second = ok(store.server_secret("session", b"two", 2).await);
    assert_eq!(first, b"one");
    assert_eq!(second, b"one");
}

fn signing_key(kid: &str, activates_at: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.into(),
        alg: "ES256".into(),
        private_key_pkcs8: format!("private {kid}").into_bytes(),
        created_at: 5,
        activates_at,
    }
}

async fn signing_keys_round_trip(store: Arc<dyn Store>) {
    assert!(ok(store.signing_keys().await).is_empty());
    ok(store.add_signing_key(signing_key("s2", 200)).await);
    ok(store
        .add_signing_key(SigningKeyRecord {
            alg: "RS256".into(),
            private_key_pkcs8: vec![0, 159, 255, 1],
            ..signing_key("s1", 100)
        })
        .await);
    assert!(matches!(
        store.add_signing_key(signing_key("s1", 300)).await,
        Err(StoreError::Conflict(_))
    ));
    let keys = ok(store.signing_keys().await);
    let fields: Vec<_> = keys
        .into_iter()
        .map(|k| {
            (
                k.kid,
                k.alg,
                k.private_key_pkcs8,
                k.created_at,
                k.activates_at,
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            ("s1".into(), "RS256".into(), vec![0, 159, 255, 1], 5, 100),
            ("s2".into(), "ES256".into(), b"private s2".to_vec(), 5, 200),
        ],
        "every field back, bytes exact, in activation order"
    );
}

async fn a_remembered_jti_is_found_without_recording_it(store: Arc<dyn Store>) {
    ok(store.record_jti("i1", "used", 150, 0).await);
    assert!(ok(store.jti_remembered("i1", "used", 150).await));
    assert!(
        !ok(store.jti_remembered("i1", "used", 151).await),
        "past its time"
    );
    assert!(
        !ok(store.jti_remembered("i2", "used", 100).await),
        "another issuer's"
    );
    assert!(!ok(store.jti_remembered("i1", "fresh", 100).await));
    // Looking did not record it: the first use is still fresh.
    assert_eq!(
        ok(store.record_jti("i1", "fresh", 200, 100).await),
        JtiOutcome::Recorded
    );
}

async fn a_key_with_a_nul_is_not_found_rather_than_an_error(store: Arc<dyn Store>) {
    ok(store.create_integration(new_integration("i1")).await);
    let nul = "i1\0";
    assert!(ok(store.integration(nul).await).is_none());
    assert!(ok(store.user(nul).await).is_none());
    assert!(ok(store.consent(nul, "i1").await).is_none());
    assert!(ok(store.linked_user("issuer", nul).await).is_none());
    assert!(ok(store.user_by_email(nul).await).is_none());
    assert!(ok(store.user_login_by_email(nul).await).is_none());
    assert!(ok(store.integration("i1").await).is_some());
}

async fn live_jtis_are_the_unexpired_ones(store: Arc<dyn Store>) {
    ok(store.record_jti("i1", "gone", 100, 0).await);
    ok(store.record_jti("i1", "edge", 150, 0).await);
    ok(store.record_jti("i1", "live", 200, 0).await);
    ok(store.record_jti("i2", "live", 300, 0).await);
    let live = |now: i64| {
        let store = Arc::clone(&store);
        async move {
            let mut live: Vec<_> = ok(store.live_jtis(now).await)
                .into_iter()
                .map(|r| (r.issuer, r.jti, r.remember_until))
                .collect();
            live.sort();
            live
        }
    };
    let owned = |rows: &[(&str, &str, i64)]| {
        rows.iter()
            .map(|(i, j, t)| (i.to_string(), j.to_string(), *t))
            .collect::<Vec<_>>()
    };
    // Remembered through its `remember_until` (a replay then is still refused).
    assert_eq!(
        live(150).await,
        owned(&[
            ("i1", "edge", 150),
            ("i1", "live", 200),
            ("i2", "live", 300)
        ])
    );
    assert_eq!(live(201).await, owned(&[("i2", "live", 300)]));
    assert_eq!(live(301).await, owned(&[]));
}

async fn every_registry_change_bumps_the_version(store: Arc<dyn Store>) {
    let mut last = ok(store.registry_version().await);
    let mut moved = |what: &str, now: i64| {
        assert!(now > last, "{what} did not bump the registry version");
        last = now;
    };
    ok(store.create_integration(new_integration("i1")).await);
    moved("create_integration", ok(store.registry_version().await));
    let key = IntegrationKeyRecord {
        kid: "k1".into(),
        public_jwk: "{}".into(),
        active: true,
        created_at: 11,
    };
    ok(store.add_integration_key("i1", key).await);
    moved("add_integration_key", ok(store.registry_version().await));
    ok(store.set_integration_key_active("i1", "k1", false).await);
    moved(
        "set_integration_key_active",
        ok(store.registry_version().await),
    );
    ok(store.remove_integration_key("i1", "k1").await);
    moved("remove_integration_key", ok(store.registry_version().await));
    ok(store.set_integration_active("i1", false).await);
    moved("set_integration_active", ok(store.registry_version().await));
    ok(store.create_user(user("u1", "ada@example.com")).await);
    moved("create_user", ok(store.registry_version().await));
    ok(store.set_user_active("u1", false).await);
    moved("set_user_active", ok(store.registry_version().await));
    ok(store
        .create_account(AccountRecord {
            account_id: "a1".into(),
            user_id: "u1".into(),
            account_name: "a1".into(),
            base_uri: "https://demo.example.com".into(),
            is_default: true,
            organization: None,
            created_at: 30,
        })
        .await);
    moved("create_account", ok(store.registry_version().await));
    ok(store
        .grant_consent("u1", "i1", &["signature".to_owned()], 40)
        .await);
    moved("grant_consent", ok(store.registry_version().await));
    ok(store.revoke_consent("u1", "i1").await);
    moved("revoke_consent", ok(store.registry_version().await));
    ok(store.add_signing_key(signing_key("s1", 0)).await);
    moved("add_signing_key", ok(store.registry_version().await));
}

async fn a_closed_store_is_unavailable(store: Arc<dyn Store>) {
    ok(store.ping().await);
    store.close().await;
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.record_jti("i1", "j", 100, 0).await,
        Err(StoreError::Unavailable(_))
    ));
}
