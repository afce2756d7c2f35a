//! Connections under hostile clients, against the real binary on loopback: slow
//! headers, stalled bodies and idle connections closed after their (short,
//! configured) limits while other clients are served, over plain HTTP and TLS; the
//! connection cap answered with 503; SIGTERM draining a request in flight within
//! the grace period while a stalled client is held open; the open-file limit
//! raised at start.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::support::*;

/// Reads until the server closes the connection (EOF or a reset) or `within`
/// passes: what was read, and when it closed (`None`: still open).
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> (String, Option<Instant>) {
    let deadline = tokio::time::Instant::now() + within;
    let mut read = Vec::new();
    let mut buf = [0_u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&read).into_owned(), None),
            Ok(Ok(0) | Err(_)) => {
                return (
                    String::from_utf8_lossy(&read).into_owned(),
                    Some(Instant::now()),
                );
            }
            Ok(Ok(n)) => read.extend_from_slice(&buf[..n]),
        }
    }
}

/// A JWT bearer grant's form for `assertion`, URL-encoded.
fn grant_form(assertion: &str) -> String {
    format!(
        "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
    )
}

/// A token request's head for a body of `length` bytes.
fn token_head(host: &str, length: usize) -> String {
    format!(
        "POST /oauth/token HTTP/1.1\r\nHost: {host}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {length}\r\n\r\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_stalled_bodies_and_idle_connections_are_closed_while_others_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ik, key) = app_integration(dir.path(), &[]);
    let server = serve_store(
        dir.path(),
        &[
            "--header-timeout-secs",
            "2",
            "--body-timeout-secs",
            "3",
            "--idle-timeout-secs",
            "5",
        ],
    )
    .await;
    let host = server.host();

    // A slowloris: a request head one byte every 200 ms, never finished.
    let slow = TcpStream::connect(server.addr).await.unwrap();
    let slow_started = Instant::now();
    let slow_writer = {
        let (mut reader, mut writer) = slow.into_split();
        let task = tokio::spawn(async move {
            for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "
                .iter()
                .cycle()
            {
                if writer.write_all(&[*byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        let closed = tokio::spawn(async move {
            let mut buf = [0_u8; 1024];
            let mut read = Vec::new();
            loop {
                match tokio::time::timeout(Duration::from_secs(20), reader.read(&mut buf)).await {
                    Err(_) => return (read, None),
                    Ok(Ok(0) | Err(_)) => return (read, Some(Instant::now())),
                    Ok(Ok(n)) => read.extend_from_slice(&buf[..n]),
                }
            }
        });
        (task, closed)
    };

    // A stalled body: the head, 10 of 200 bytes, then nothing.
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    stalled
        .write_all(format!("{}{}", token_head(&host, 200), "grant_type").as_bytes())
        .await
        .unwrap();
    let stalled_started = Instant::now();
    let stalled_closed =
        tokio::spawn(async move { read_until_closed(&mut stalled, Duration::from_secs(20)).await });

    // An idle connection: nothing sent at all.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    let idle_started = Instant::now();
    let idle_closed =
        tokio::spawn(async move { read_until_closed(&mut idle, Duration::from_secs(20)).await });

    // Meanwhile other clients get their tokens, on new connections and on one kept
    // alive across the stalls.
    let http = reqwest::Client::new();
    for _ in 0..3 {
        let assertion = mint(dir.path(), &ik, None, &key, &host);
        let (status, body) = token_request(&http, &server.url, &assertion).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = server
            .token(&mint(dir.path(), &ik, None, &key, &host))
            .await;
        assert_eq!(status, 200, "{body}");
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }

    let (slow_task, slow_closed) = slow_writer;
    let (read, closed) = slow_closed.await.unwrap();
    let after = closed
        .expect("the slow-header client is closed")
        .duration_since(slow_started);
    assert!(read.is_empty(), "{}", String::from_utf8_lossy(&read));
    assert!(
        after >= Duration::from_millis(1900) && after < Duration::from_secs(6),
        "slow headers closed after {after:?}"
    );
    slow_task.abort();

    let (answer, closed) = stalled_closed.await.unwrap();
    let after = closed
        .expect("the stalled-body client is closed")
        .duration_since(stalled_started);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("body_timeout"), "{answer}");
    assert!(
        after >= Duration::from_millis(2900) && after < Duration::from_secs(7),
        "stalled body closed after {after:?}"
    );

    // Idle: not at the header timeout (no byte of a request came), at the idle one.
    let (read, closed) = idle_closed.await.unwrap();
    let after = closed
        .expect("the idle client is closed")
        .duration_since(idle_started);
    assert!(read.is_empty(), "{read}");
    assert!(
        after >= Duration::from_millis(4900) && after < Duration::from_secs(9),
        "idle connection closed after {after:?}"
    );

    // And the server still serves.
    let (status, body) = server
        .token(&mint(dir.path(), &ik, None, &key, &host))
        .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_a_new_connection_gets_503_and_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_store(dir.path(), &["--max-connections", "2"]).await;
    // The readiness check's connection may still be open; wait for it to close by
    // holding two of our own and seeing a third refused.
    let held = [
        TcpStream::connect(server.addr).await.unwrap(),
        TcpStream::connect(server.addr).await.unwrap(),
    ];
    let mut refused = None;
    for _ in 0..50 {
        let mut third = TcpStream::connect(server.addr).await.unwrap();
        third
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let (answer, closed) = read_until_closed(&mut third, Duration::from_secs(5)).await;
        if answer.starts_with("HTTP/1.1 503") {
            assert!(closed.is_some(), "refused but left open");
            refused = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answer = refused.expect("a connection past the cap is refused");
    let lower = answer.to_ascii_lowercase();
    assert!(lower.contains("retry-after: 1"), "{answer}");
    assert!(lower.contains("connection: close"), "{answer}");
    assert!(answer.contains("\"temporarily_unavailable\""), "{answer}");
    assert!(answer.contains("too_many_connections"), "{answer}");

    // One held connection closes: a new one is served again.
    drop(held);
    let http = reqwest::Client::new();
    let mut status = 0;
    for _ in 0..50 {
        status = get_status(&http, &format!("{}/healthz", server.url)).await;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_the_request_in_flight_then_exits_within_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let (_, ik, key) = app_integration(dir.path(), &[]);
    // Limits far away, so that only the shutdown's grace period ends the stalls.
    let mut server = serve_store(
        dir.path(),
        &[
            "--shutdown-grace-secs",
            "3",
            "--header-timeout-secs",
            "120",
            "--body-timeout-secs",
            "120",
            "--idle-timeout-secs",
            "120",
        ],
    )
    .await;
    let host = server.host();
    let form = grant_form(&mint(dir.path(), &ik, None, &key, &host));
    let (first_half, second_half) = form.split_at(form.len() / 2);

    // In flight: the head and half the body of a real grant.
    let mut in_flight = TcpStream::connect(server.addr).await.unwrap();
    in_flight
        .write_all(format!("{}{first_half}", token_head(&host, form.len())).as_bytes())
        .await
        .unwrap();
    // Stalled: half a request head, held open.
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    stalled
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: ")
        .await
        .unwrap();
    // Idle, after a request: closed at once by the shutdown.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0_u8; 1024];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let signalled = Instant::now();
    server.signal("-TERM");
    let (read, closed) = read_until_closed(&mut idle, Duration::from_secs(2)).await;
    assert!(closed.is_some(), "the idle connection is closed at once");
    assert!(read.is_empty(), "{read}");

    // The request in flight gets its answer, a token.
    tokio::time::sleep(Duration::from_millis(500)).await;
    in_flight.write_all(second_half.as_bytes()).await.unwrap();
    let (answer, _) = read_until_closed(&mut in_flight, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"access_token\""), "{answer}");

    // No new connection is taken.
    assert!(
        TcpStream::connect(server.addr).await.is_err(),
        "the listener is closed"
    );

    // The stalled client is cut at the end of the grace period; exit 0.
    let (_, stalled_closed) = read_until_closed(&mut stalled, Duration::from_secs(10)).await;
    let status = server.wait();
    let exited = signalled.elapsed();
    assert!(status.success(), "exit status {status:?}");
    let stalled_after = stalled_closed
        .expect("the stalled client is closed")
        .duration_since(signalled);
    assert!(
        stalled_after >= Duration::from_millis(2900) && exited < Duration::from_secs(8),
        "stalled client closed after {stalled_after:?}, exit after {exited:?}"
    );
    let log = server.log_text();
    assert!(
        log.contains("shutdown grace period over"),
        "the log says the grace ran out:\n{log}"
    );
}

#[tokio::test]
async fn the_open_file_limit_is_raised_to_the_hard_limit_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let hard = String::from_utf8(
        std::process::Command::new("sh")
            .args(["-c", "ulimit -Hn"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let hard = hard.trim();
    if hard == "unlimited" || hard.parse::<u64>().unwrap() <= 256 {
        eprintln!("note: hard open-file limit {hard}: nothing to raise");
        return;
    }
    // The binary started under a soft limit of 256, as a shell would.
    let mut command = std::process::Command::new("sh");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("JWTGRANT_") {
            command.env_remove(name);
        }
    }
    command
        .args(["-c", "ulimit -Sn 256 && exec \"$0\" \"$@\""])
        .arg(binary().path())
        .args(store_args(dir.path()))
        .current_dir(dir.path())
        .stdin(std::process::Stdio::null());
    let server = serve_until_ready(command, dir.path(), &[]).await;
    let log = server.log_text();
    assert!(
        log.contains("raised the open-file limit to its hard limit")
            && log.contains("from=256")
            && log.contains(&format!("to={hard}")),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_a_silent_handshake_and_slow_headers_are_closed_too() {
    use std::sync::Arc;
    use tokio_rustls::rustls;

    let dir = tempfile::tempdir().unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    // In this process: the kit's readiness check for the binary speaks plain HTTP.
    let server = TestServer::start_with(jwtgrant_server::RawConfig {
        tls_cert: Some(cert),
        tls_key: Some(key),
        header_timeout_secs: Some(2),
        ..Default::default()
    })
    .await;
    let addr: std::net::SocketAddr = server.host().parse().unwrap();

    // A TCP connection that never says hello.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    let silent_started = Instant::now();
    let silent_closed =
        tokio::spawn(async move { read_until_closed(&mut silent, Duration::from_secs(20)).await });

    // A TLS client that sends half a request head, then nothing.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut tls = connector
        .connect("localhost".try_into().unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: ")
        .await
        .unwrap();
    tls.flush().await.unwrap();
    let slow_started = Instant::now();

    // Meanwhile HTTPS clients are served.
    let https = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap(),
        )
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/healthz", addr.port());
    assert_eq!(https.get(&url).send().await.unwrap().status(), 200);

    let mut buf = [0_u8; 1024];
    let closed = match tokio::time::timeout(Duration::from_secs(20), tls.read(&mut buf)).await {
        Ok(Ok(0) | Err(_)) => Instant::now(),
        other => panic!("the slow TLS client was not closed: {other:?}"),
    };
    let after = closed.duration_since(slow_started);
    assert!(
        after >= Duration::from_millis(1900) && after < Duration::from_secs(6),
        "slow headers over TLS closed after {after:?}"
    );
    let (read, closed) = silent_closed.await.unwrap();
    let after = closed
        .expect("the silent client is closed")
        .duration_since(silent_started);
    assert!(read.is_empty(), "{read}");
    assert!(
        after >= Duration::from_millis(1900) && after < Duration::from_secs(6),
        "a silent handshake closed after {after:?}"
    );
    assert_eq!(https.get(&url).send().await.unwrap().status(), 200);
}
