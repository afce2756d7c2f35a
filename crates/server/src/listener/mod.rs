//! The accept loop of every listener, plain and TLS alike: each connection served by
//! [`connection`] under the time limits of [`ConnectionLimits`], at most
//! `max_connections` at once (one more is answered 503 and closed, never left to
//! run the process out of descriptors), and a shutdown that lets requests in flight
//! finish for at most the grace period, then closes what is left.

mod connection;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::config::ConnectionLimits;

/// Descriptors kept back from the connection cap for everything else the process
/// opens: the store's pool, Redis, log and data files, outbound fetches, refusals.
const RESERVED_DESCRIPTORS: u64 = 256;

/// Connections past the cap answered at once; more are closed without an answer.
const REFUSALS_AT_ONCE: usize = 64;

/// How long a refusal may take (TLS handshake, reading the request, the 503).
const REFUSAL_WITHIN: Duration = Duration::from_secs(2);

/// The pause after an accept that failed for want of resources (descriptors,
/// memory), so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The process's open-file limit before and after [`raise_open_file_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFileLimit {
    /// The soft limit found at start.
    pub was: u64,
    /// The soft limit now.
    pub soft: u64,
    /// The hard limit, the most the soft one may be raised to.
    pub hard: Option<u64>,
}

/// Raises the soft open-file limit to the hard one, so that the connection cap,
/// not a low default (often 1,024), decides how many clients are served at once.
#[cfg(unix)]
pub fn raise_open_file_limit() -> std::io::Result<OpenFileLimit> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    let was = current.unwrap_or(u64::MAX);
    let soft = match maximum {
        Some(hard) if hard > was => {
            setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(hard),
                    maximum: Some(hard),
                },
            )?;
            hard
        }
        _ => was,
    };
    Ok(OpenFileLimit {
        was,
        soft,
        hard: maximum,
    })
}

/// The most connections served at once: as configured, unless the open-file limit
/// leaves room for fewer (then a warning says so).
fn connection_cap(configured: usize) -> usize {
    #[cfg(unix)]
    {
        let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
            .current
            .unwrap_or(u64::MAX);
        let room = usize::try_from(soft.saturating_sub(RESERVED_DESCRIPTORS))
            .unwrap_or(usize::MAX)
            .max(1);
        if room < configured {
            tracing::warn!(
                max_connections = configured,
                open_file_limit = soft,
                serving_at_most = room,
                "the open-file limit is too low for max_connections: raise it (ulimit -n, LimitNOFILE=)"
            );
            return room;
        }
    }
    configured
}

/// Accepts connections on `listener` (through `tls` when given) and serves
/// `router` on each until `shutdown` resolves; then stops accepting, lets requests
/// in flight finish for at most `grace`, and closes every connection left.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    limits: ConnectionLimits,
    grace: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let cap = connection_cap(limits.max_connections);
    let permits = Arc::new(Semaphore::new(cap));
    let refusals = Arc::new(Semaphore::new(REFUSALS_AT_ONCE));
    let builder = connection::builder();
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            // Reap finished connections as they end, so the set stays small.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        if !is_connection_error(&error) {
                            tracing::warn!(%error, "accept failed");
                            tokio::time::sleep(ACCEPT_BACKOFF).await;
                        }
                        continue;
                    }
                };
                // Answers are small and latency matters: never wait for Nagle.
                let _ = tcp.set_nodelay(true);
                match Arc::clone(&permits).try_acquire_owned() {
                    Ok(permit) => {
                        let serving = connection::Connection {
                            builder: builder.clone(),
                            router: router.clone(),
                            limits,
                            peer,
                            stopping: stopping.clone(),
                        };
                        let tls = tls.clone();
                        connections.spawn(async move {
                            serving.run(tcp, tls).await;
                            drop(permit);
                        });
                    }
                    Err(_) => refuse(tcp, peer, tls.clone(), &refusals),
                }
            }
        }
    }
    drop(listener);
    let _ = stop.send(true);
    if connections.is_empty() {
        return;
    }
    tracing::info!(
        connections = connections.len(),
        grace_secs = grace.as_secs(),
        "draining connections"
    );
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "shutdown grace period over: closing the connections left"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}

/// Answers a connection past the cap with 503 and closes it, in a task of its
/// own bounded in time; past [`REFUSALS_AT_ONCE`] of those, closes it at once.
fn refuse(tcp: TcpStream, peer: SocketAddr, tls: Option<TlsAcceptor>, refusals: &Arc<Semaphore>) {
    let Ok(permit) = Arc::clone(refusals).try_acquire_owned() else {
        tracing::debug!(%peer, "connection closed unanswered: at the connection cap");
        return;
    };
    tracing::debug!(%peer, "connection refused: at the connection cap");
    tokio::spawn(async move {
        let _ = tokio::time::timeout(REFUSAL_WITHIN, connection::refuse(tcp, tls)).await;
        drop(permit);
    });
}

/// Errors of one connection that the accept loop just skips (as `axum::serve`).
fn is_connection_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}
