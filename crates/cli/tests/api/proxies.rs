//! Behind a proxy: `X-Forwarded-For` and `Forwarded` name the client only when the
//! TCP peer is a `--trusted-proxy`; from any other peer a spoofed header changes
//! nothing. Seen through the per-client rate limit (one request a second), whose
//! bucket is the client's address.

use crate::support::*;

/// POSTs an empty form to `/oauth/token` with `headers`: the status (400 when the
/// client's bucket had room, 429 when not).
async fn status_with(url: &str, headers: &[(&str, &str)]) -> u16 {
    let mut request = reqwest::Client::new()
        .post(format!("{url}/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_store(dir.path(), &["--rate-limit-per-client", "1"]).await;
    assert_eq!(
        status_with(&server.url, &[("x-forwarded-for", "198.51.100.1")]).await,
        400
    );
    // Another "client" by its headers, the same peer: the same bucket.
    assert_eq!(
        status_with(&server.url, &[("x-forwarded-for", "198.51.100.2")]).await,
        429
    );
    assert_eq!(
        status_with(&server.url, &[("forwarded", "for=198.51.100.3")]).await,
        429
    );
}

#[tokio::test]
async fn from_a_trusted_proxy_the_forwarded_client_is_the_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_store(
        dir.path(),
        &[
            "--rate-limit-per-client",
            "1",
            "--trusted-proxy",
            "10.0.0.0/8",
            "--trusted-proxy",
            "127.0.0.1",
        ],
    )
    .await;
    let xff = |client: &'static str| [("x-forwarded-for", client)];
    assert_eq!(status_with(&server.url, &xff("198.51.100.1")).await, 400);
    // Each forwarded client has a bucket of its own.
    assert_eq!(status_with(&server.url, &xff("198.51.100.2")).await, 400);
    assert_eq!(status_with(&server.url, &xff("198.51.100.1")).await, 429);
    // A client that forges an entry before its own is counted as itself: the
    // nearest hop that is not a trusted proxy.
    assert_eq!(
        status_with(&server.url, &xff("198.51.100.2, 198.51.100.9, 10.1.2.3")).await,
        400
    );
    assert_eq!(
        status_with(&server.url, &xff("198.51.100.1, 198.51.100.9")).await,
        429
    );
    // RFC 7239's header, when there is no X-Forwarded-For.
    assert_eq!(
        status_with(&server.url, &[("forwarded", "for=\"[2001:db8::7]:4711\"")]).await,
        400
    );
    assert_eq!(
        status_with(&server.url, &[("forwarded", "for=\"[2001:db8::7]\"")]).await,
        429
    );
    // Nothing forwarded: the proxy itself is the client.
    assert_eq!(status_with(&server.url, &[]).await, 400);
    assert_eq!(status_with(&server.url, &[]).await, 429);
}

#[tokio::test]
async fn a_trusted_proxy_that_is_not_a_range_stops_the_server_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let output = run({
        let mut command = jwtgrant(dir.path());
        command.args(store_args(dir.path())).args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--trusted-proxy",
            "proxy.internal",
        ]);
        command
    });
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("trusted_proxy") && stderr.contains("'proxy.internal'"),
        "{stderr}"
    );
}
