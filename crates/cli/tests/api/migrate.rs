//! Migrations from the command line, on fresh PostgreSQL databases: `serve
//! --no-migrate` refuses an unmigrated database and says what to run, `jwtgrant
//! migrate` applies the migrations, and the database is chosen by `--database`,
//! `JWTGRANT_DATABASE_URL` or a config file's `database =`. Runs only when
//! `JWTGRANT_TEST_DATABASE_URL` names a PostgreSQL server (as `.ci/run` sets it).

use std::time::{Duration, Instant};

use crate::support::{TestDatabase, database_server, jwtgrant, run, serve_until_ready};

#[tokio::test]
async fn serve_no_migrate_refuses_a_fresh_database_until_migrate_runs() {
    let Some(server) = database_server("serve_no_migrate_refuses_a_fresh_database") else {
        return;
    };
    let db = TestDatabase::create(&server).await;
    let dir = tempfile::tempdir().unwrap();

    // Not migrated, migrations off: serve stops at once and says what to run.
    let mut command = jwtgrant(dir.path());
    command.args(["--database", &db.url, "serve", "--no-migrate", "--listen"]);
    command.arg("127.0.0.1:0");
    let started = Instant::now();
    let refused = tokio::task::spawn_blocking(move || run(command))
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "served an unmigrated database");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?} to refuse",
        started.elapsed()
    );
    assert!(
        stderr.contains("not migrated") && stderr.contains("jwtgrant migrate"),
        "{stderr}"
    );
    assert!(db.applied().await.is_empty(), "--no-migrate migrated");

    // `jwtgrant migrate` applies every migration, and says so.
    let mut command = jwtgrant(dir.path());
    command.args(["--database", &db.url, "migrate", "--json"]);
    let migrated = run(command);
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let said: serde_json::Value = serde_json::from_slice(&migrated.stdout).unwrap();
    assert_eq!(said, serde_json::json!({"migrated": true}));
    assert_eq!(db.applied().await, jwtgrant_store::migration_versions());

    // Now `serve --no-migrate` serves it.
    let mut command = jwtgrant(dir.path());
    command.args(["--database", &db.url]);
    let serving = serve_until_ready(command, dir.path(), &["--no-migrate"]).await;
    drop(serving);
    // Migrating again is a no-op.
    let mut command = jwtgrant(dir.path());
    command.args(["--database", &db.url, "migrate"]);
    assert!(run(command).status.success());
    assert!(
        !dir.path().join("jwtgrant-data").exists(),
        "a data directory was made"
    );
}

#[tokio::test]
async fn the_database_comes_from_the_environment() {
    let Some(server) = database_server("the_database_comes_from_the_environment") else {
        return;
    };
    let db = TestDatabase::create(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let mut command = jwtgrant(dir.path());
    command.env("JWTGRANT_DATABASE_URL", &db.url).arg("migrate");
    let migrated = run(command);
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    assert_eq!(
        db.applied().await,
        jwtgrant_store::migration_versions(),
        "migrated another database"
    );

    let mut command = jwtgrant(dir.path());
    command
        .env("JWTGRANT_DATABASE_URL", &db.url)
        .env("JWTGRANT_NO_MIGRATE", "true");
    let serving = serve_until_ready(command, dir.path(), &[]).await;
    drop(serving);
    assert!(
        !dir.path().join("jwtgrant-data").exists(),
        "the embedded store was used instead"
    );
}

#[tokio::test]
async fn the_database_comes_from_the_config_file() {
    let Some(server) = database_server("the_database_comes_from_the_config_file") else {
        return;
    };
    let db = TestDatabase::create(&server).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("jwtgrant.toml");
    std::fs::write(
        &config,
        format!("database = \"{}\"\nmigrate_on_start = false\n", db.url),
    )
    .unwrap();

    // migrate_on_start = false in the file: serve refuses the fresh database.
    let mut command = jwtgrant(dir.path());
    command
        .arg("--config")
        .arg(&config)
        .args(["serve", "--listen", "127.0.0.1:0"]);
    let refused = run(command);
    assert!(!refused.status.success(), "served an unmigrated database");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("jwtgrant migrate"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    let mut command = jwtgrant(dir.path());
    command.arg("--config").arg(&config).arg("migrate");
    let migrated = run(command);
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    assert_eq!(
        db.applied().await,
        jwtgrant_store::migration_versions(),
        "migrated another database"
    );

    let mut command = jwtgrant(dir.path());
    command.env("JWTGRANT_CONFIG", &config);
    let serving = serve_until_ready(command, dir.path(), &[]).await;
    drop(serving);
    assert!(
        !dir.path().join("jwtgrant-data").exists(),
        "the embedded store was used instead"
    );
}
