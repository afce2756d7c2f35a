//! HTTP servers the unit tests start on 127.0.0.1 (never any other address), to
//! be fetched from: an axum app, and a raw one that writes fixed bytes and then
//! stalls, for the responses axum would not send (a lying `Content-Length`, a
//! body that stops half way, no answer at all). Each counts what reached it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A counter shared by a test and its server.
#[derive(Debug, Clone, Default)]
pub struct Hits(Arc<AtomicUsize>);

impl Hits {
    /// Counts one.
    pub fn hit(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    /// How many so far.
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

async fn loopback() -> (TcpListener, u16) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

/// Serves `app` on 127.0.0.1; its port.
pub async fn serve(app: Router) -> u16 {
    let (listener, port) = loopback().await;
    tokio::spawn(async move { axum::serve(listener, app).await });
    port
}

/// What a raw server does after writing its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// Closes the connection.
    Close,
    /// Keeps it open and says nothing more.
    Stall,
}

/// A server on 127.0.0.1 that, on each connection, reads the request head, writes
/// `reply` (nothing, for a server that never answers) and then does `then`; its
/// port and the count of connections it accepted.
pub async fn raw(reply: Vec<u8>, then: Then) -> (u16, Hits) {
    let (listener, port) = loopback().await;
    let connections = Hits::default();
    let counter = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.hit();
            let reply = reply.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match socket.read(&mut byte).await {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                if socket.write_all(&reply).await.is_err() {
                    return;
                }
                if then == Then::Stall {
                    std::future::pending::<()>().await;
                }
            });
        }
    });
    (port, connections)
}

/// A `200` head with these extra header lines (each ending in `\r\n`).
pub fn head(extra: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{extra}\r\n").into_bytes()
}
