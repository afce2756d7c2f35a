//! Crash and replay: the real binary killed with SIGKILL while grants are under way,
//! then restarted on the same store; every assertion it had accepted is refused as
//! used. What held before the connection limits came must keep holding with them.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jwtgrant_core::{JwsAlgorithm, SigningKey};

use crate::support::*;

const PUBLIC: [&str; 2] = ["--public-url", "http://jwtgrant.test"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_then_restart_refuses_every_accepted_assertion() {
    let dir = tempfile::tempdir().unwrap();
    let admin = Admin::new(&binary(), store_args(dir.path()));
    let ik = admin.create_integration(&[
        "--name",
        "Load",
        "--allow-application-tokens",
        "--require-jti",
    ]);
    let key_path = dir.path().join("load.pem");
    admin.generate_key(&ik, Some("ES256"), &key_path);
    let key = SigningKey::from_pem(&std::fs::read_to_string(&key_path).unwrap()).unwrap();
    // Application assertions (no `sub`), each with a jti of its own.
    let assertions: Vec<String> = (0..3000)
        .map(|_| {
            let mut claims = docusign_claims(&ik, "", "jwtgrant.test", 600);
            claims.as_object_mut().unwrap().remove("sub");
            sign(&key, JwsAlgorithm::Es256, &claims)
        })
        .collect();

    for round in 0..2 {
        let mut server = serve_store(dir.path(), &PUBLIC).await;
        let queue = Arc::new(Mutex::new(
            assertions[round * 1500..(round + 1) * 1500].to_vec(),
        ));
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let workers: Vec<_> = (0..8)
            .map(|_| {
                let (queue, accepted, url) = (
                    Arc::clone(&queue),
                    Arc::clone(&accepted),
                    server.url.clone(),
                );
                tokio::spawn(async move {
                    let http = reqwest::Client::new();
                    loop {
                        let Some(assertion) = queue.lock().unwrap().pop() else {
                            return;
                        };
                        match token_request(&http, &url, &assertion).await {
                            (200, _) => accepted.lock().unwrap().push(assertion),
                            (0, _) => return,
                            (status, body) => panic!("{status}: {body}"),
                        }
                    }
                })
            })
            .collect();
        // Killed mid-load: once some grants are through, with others in flight.
        while accepted.lock().unwrap().len() < 150 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        server.stop();
        for worker in workers {
            worker.await.unwrap();
        }
        let accepted = accepted.lock().unwrap().clone();
        assert!(
            !queue.lock().unwrap().is_empty(),
            "the kill came after the load had ended"
        );

        let restarted = serve_store(dir.path(), &PUBLIC).await;
        for assertion in &accepted {
            let (status, body) = restarted.token(assertion).await;
            assert_eq!(
                (status, body["error"].as_str()),
                (400, Some("invalid_grant")),
                "an accepted assertion was accepted again after SIGKILL: {body}"
            );
        }
        eprintln!(
            "round {round}: {} accepted before SIGKILL, each refused after the restart",
            accepted.len()
        );
    }
}
