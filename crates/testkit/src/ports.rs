//! Ports for the programs that are not ours and must be told one (`redis-server`,
//! PostgreSQL): one is picked, and the start tried again with another when the
//! program says it was taken. Nothing binds a port to release it for another
//! process (the race that would leave open). Our own binary binds port 0 instead.

use std::hash::{BuildHasher as _, Hasher as _};

/// How many ports a start tries before it gives up.
pub const ATTEMPTS: usize = 20;

/// A loopback port to try: random in 20000-32767, below Linux's ephemeral range
/// (32768-60999) so no port the kernel hands out on its own (a port 0 bind, an
/// outgoing connection) is likely to hold it.
pub fn pick() -> u16 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    20_000 + u16::try_from(hasher.finish() % 12_768).unwrap_or(0)
}

/// Whether a program's output says the port it was given is taken.
pub fn taken(output: &str) -> bool {
    output.contains("Address already in use") || output.contains("address already in use")
}

/// `http://127.0.0.1:PORT` where nothing listens, and nothing will: the port is
/// bound by a socket that never listens (so a connection is refused) and is kept
/// for the rest of the test process, so no other program can take it meanwhile.
pub async fn closed_port_url() -> String {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind");
    let addr = socket.local_addr().expect("address");
    // Held, never listened on, until the test process exits.
    std::mem::forget(socket);
    format!("http://{addr}")
}
