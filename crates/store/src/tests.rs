//! The storage suite: every behaviour the trait promises, run against a real SQLite
//! file. Written against `dyn Store` so other backends can run the same checks.

use std::sync::Arc;

use crate::*;

async fn sqlite() -> (tempfile::TempDir, Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
    let store = SqliteStore::open(&dir.path().join("jwtgrant.db"))
        .await
        .unwrap_or_else(|e| unreachable!("{e}"));
    (dir, Arc::new(store))
}

/// The PostgreSQL named by `JWTGRANT_TEST_DATABASE_URL`, in a fresh schema; `None`
/// when the variable is unset (`.ci/run` sets it).
async fn postgres() -> Option<Arc<dyn Store>> {
    let url = std::env::var("JWTGRANT_TEST_DATABASE_URL").ok()?;
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let options = PostgresOptions {
        schema: Some(schema),
        max_connections: 4,
        ..PostgresOptions::new(url)
    };
    Some(Arc::new(
        PostgresStore::open(options)
            .await
            .unwrap_or_else(|e| unreachable!("{e}")),
    ))
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
                        Some(store) => super::$check(store).await,
                        None => eprintln!("JWTGRANT_TEST_DATABASE_URL unset: PostgreSQL not tested"),
                    }
                }
            )*
        }
    };
}

on_every_backend!(
    integrations_and_keys,
    users_accounts_and_consents,
    jti_is_recorded_once_until_it_expires,
    concurrent_duplicate_jtis_get_exactly_one_recording,
    a_batch_records_each_jti_once_first_copy_wins,
);

fn new_integration(key: &str) -> NewIntegration {
    NewIntegration {
        integration_key: key.into(),
        name: "Acme".into(),
        scopes: vec!["signature".into(), "impersonation".into()],
        redirect_uris: vec!["http://localhost/cb".into()],
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
    let path = dir.path().join("nested/jwtgrant.db");
    {
        let store = ok(SqliteStore::open(&path).await);
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
    let store = ok(SqliteStore::open(&path).await);
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
    let many: Vec<_> = (0..1200).map(|i| record(&format!("m{i}"))).collect();
    assert!(
        ok(store.record_jtis(&many, 50).await)
            .iter()
            .all(|o| *o == R),
        "chunks beyond one statement"
    );
}
