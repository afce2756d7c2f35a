//! TLS to PostgreSQL (`sslmode` and `sslrootcert` in the URL) and to Redis
//! (`rediss://`, the CA by `SSL_CERT_FILE`): a PostgreSQL cluster and a
//! `redis-server` of the test's own on loopback, each taking TLS connections only,
//! with a certificate from a CA the test makes; the admin commands and the server
//! work over them, and an untrusted certificate is refused.

use std::path::Path;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use crate::support::*;

/// A CA and a certificate it signed for `localhost` and `127.0.0.1`, as PEM files
/// in `dir`: `(ca, cert, key)` paths.
fn certificates(dir: &Path) -> (String, String, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "jwtgrant test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "localhost");
    let cert = params.signed_by(&key, &ca).unwrap();
    let write = |name: &str, pem: String| {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path.display().to_string()
    };
    (
        write("ca.pem", ca.pem()),
        write("cert.pem", cert.pem()),
        write("key.pem", key.serialize_pem()),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_and_redis_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let cert_pem = std::fs::read_to_string(&cert).unwrap();
    let key_pem = std::fs::read_to_string(&key).unwrap();
    let pg = tokio::task::spawn_blocking(move || PgCluster::start_tls(&cert_pem, &key_pem))
        .await
        .unwrap();
    let redis = RedisServer::start_tls(cert.clone().into(), key.clone().into()).await;
    assert!(redis.url.starts_with("rediss://"), "{}", redis.url);

    // Neither takes a plain connection.
    let server = format!("postgres://postgres@127.0.0.1:{}/postgres", pg.port);
    let plain = sqlx::PgPool::connect(&format!("{server}?sslmode=disable")).await;
    assert!(plain.is_err(), "a connection without TLS is refused");
    let plain_redis = std::process::Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &redis.port.to_string(), "PING"])
        .output()
        .unwrap();
    assert_ne!(String::from_utf8_lossy(&plain_redis.stdout).trim(), "PONG");

    // A certificate the client does not trust is refused: TLS verifies.
    let untrusted = format!("{server}?sslmode=verify-full");
    let output = run({
        let mut command = jwtgrant(dir.path());
        command.args(["--database", &untrusted, "migrate"]);
        command
    });
    assert!(
        !output.status.success(),
        "an untrusted certificate was accepted: {}",
        String::from_utf8_lossy(&output.stdout)
    );

    // With the CA: the admin commands and the server, over TLS to both.
    let database = format!("{server}?sslmode=verify-full&sslrootcert={ca}");
    let admin = Admin::new(&binary(), ["--database", database.as_str()]);
    let ik = admin.create_integration(&["--name", "App", "--allow-application-tokens"]);
    let key_file = dir.path().join("app.pem");
    admin.generate_key(&ik, None, &key_file);
    let mut command = binary().command();
    command
        .args(["--database", &database])
        .env("SSL_CERT_FILE", &ca)
        .current_dir(dir.path());
    let serving = serve_until_ready(command, dir.path(), &["--redis", &redis.url]).await;
    let assertion = mint(dir.path(), &ik, None, &key_file, &serving.host());
    let (status, body) = serving.token(&assertion).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = serving.token(&assertion).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // The jti is in Redis, read over TLS; the server's connections to PostgreSQL
    // are TLS ones.
    let keys = std::process::Command::new("redis-cli")
        .args(["--tls", "--cacert", &ca, "-h", "127.0.0.1"])
        .args([
            "-p",
            &redis.port.to_string(),
            "--scan",
            "--pattern",
            "jwtgrant:*",
        ])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&keys.stdout).trim().is_empty(),
        "no jwtgrant key in Redis: {}",
        String::from_utf8_lossy(&keys.stderr)
    );
    let pool = sqlx::PgPool::connect(&database).await.unwrap();
    let (tls, plain): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl) \
         FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.client_addr IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(
        tls >= 2 && plain == 0,
        "{tls} TLS and {plain} plain connections"
    );
    pool.close().await;
}
