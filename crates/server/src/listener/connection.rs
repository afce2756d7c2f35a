//! One connection, served by hyper under the time limits of [`ConnectionLimits`]:
//! a watchdog that closes it when a request's headers take too long from their
//! first byte or when it carries no request for too long, and around each request
//! a deadline for its body (then 408) and one for its answer (then 503).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use axum::response::IntoResponse as _;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::config::ConnectionLimits;
use crate::error::ConnectionError;

/// The HTTP/1.1 and HTTP/2 settings every connection shares.
pub(super) fn builder() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // The watchdog below times headers from their first byte, apart from the idle
    // time before them (hyper's own timer would count both as one).
    builder.http1().header_read_timeout(None);
    builder
}

/// What a connection task needs besides its socket.
pub(super) struct Connection {
    pub(super) builder: auto::Builder<TokioExecutor>,
    pub(super) router: Router,
    pub(super) limits: ConnectionLimits,
    pub(super) peer: SocketAddr,
    /// Turns true when the server shuts down.
    pub(super) stopping: watch::Receiver<bool>,
}

impl Connection {
    /// Serves the connection until the client closes it, a limit closes it, or
    /// the shutdown has drained it.
    pub(super) async fn run(mut self, tcp: TcpStream, tls: Option<TlsAcceptor>) {
        let activity = Arc::new(Activity::new());
        let Some(acceptor) = tls else {
            return self.serve(tcp, activity).await;
        };
        // The handshake is the first thing a TLS client sends: timed as headers.
        let handshake = tokio::time::timeout(self.limits.header_timeout, acceptor.accept(tcp));
        let stream = tokio::select! {
            done = handshake => match done {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::debug!(peer = %self.peer, %error, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(peer = %self.peer, "closed: TLS handshake not done in time");
                    return;
                }
            },
            _ = self.stopping.wait_for(|stopping| *stopping) => return,
        };
        let protocol = match stream.get_ref().1.alpn_protocol() {
            Some(b"h2") => Protocol::Http2,
            _ => Protocol::Http1,
        };
        activity.protocol.store(protocol as u8, Ordering::Relaxed);
        self.serve(stream, activity).await;
    }

    async fn serve<IO>(self, io: IO, activity: Arc<Activity>)
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            builder,
            router,
            limits,
            peer,
            mut stopping,
        } = self;
        let service = RequestService {
            router,
            limits,
            peer,
            activity: Arc::clone(&activity),
        };
        let watched = Watched {
            io,
            activity: Arc::clone(&activity),
            sniffed: 0,
        };
        let mut conn = pin!(builder.serve_connection(TokioIo::new(watched), service));
        let mut draining = false;
        let mut idle_closing = false;
        loop {
            let check = activity.next_check(&limits, Instant::now());
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(error) = result {
                        tracing::trace!(%peer, %error, "connection ended with an error");
                    }
                    return;
                }
                () = tokio::time::sleep_until(check) => match activity.overdue(&limits, Instant::now()) {
                    Some(Overdue::Headers) => {
                        tracing::debug!(%peer, "closed: request headers not in within the header timeout");
                        return;
                    }
                    // Closed as at shutdown (an HTTP/2 client is told with GOAWAY);
                    // if it is still open at the next check, dropped.
                    Some(Overdue::Idle) if idle_closing => return,
                    Some(Overdue::Idle) => {
                        tracing::trace!(%peer, "closing: idle");
                        conn.as_mut().graceful_shutdown();
                        idle_closing = true;
                    }
                    None => {}
                },
                _ = stopping.wait_for(|stopping| *stopping), if !draining => {
                    // Idle connections close now; a request in flight gets its
                    // answer, then its connection closes.
                    conn.as_mut().graceful_shutdown();
                    draining = true;
                }
            }
        }
    }
}

/// The protocol a connection speaks, once known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Protocol {
    Unknown = 0,
    Http1 = 1,
    Http2 = 2,
}

/// What the watchdog reads of a connection, written by its socket reads and its
/// requests. Times are milliseconds since the connection opened.
struct Activity {
    opened: Instant,
    /// Requests being handled or answered.
    in_flight: AtomicUsize,
    /// When the last request was answered (or the connection opened).
    idle_since: AtomicU64,
    /// When the first byte arrived while no request was in flight: the start of
    /// the next request's headers. [`NOT_STARTED`] when none has.
    head_started: AtomicU64,
    /// A [`Protocol`]: HTTP/2 sends frames between requests, so the header timer
    /// is for HTTP/1 only.
    protocol: AtomicU8,
}

const NOT_STARTED: u64 = u64::MAX;

/// Which limit a connection is past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Overdue {
    Headers,
    Idle,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            opened: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(NOT_STARTED),
            protocol: AtomicU8::new(Protocol::Unknown as u8),
        }
    }

    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.duration_since(self.opened).as_millis()).unwrap_or(u64::MAX - 1)
    }

    fn at(&self, millis: u64) -> Instant {
        self.opened + std::time::Duration::from_millis(millis)
    }

    fn http2(&self) -> bool {
        self.protocol.load(Ordering::Relaxed) == Protocol::Http2 as u8
    }

    /// Bytes arrived from the client.
    fn received(&self) {
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.head_started.load(Ordering::Relaxed) == NOT_STARTED
        {
            let now = self.millis(Instant::now());
            let _ = self.head_started.compare_exchange(
                NOT_STARTED,
                now,
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    /// A request's headers are in: it is handled now.
    fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_started.store(NOT_STARTED, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// When the next request's headers started arriving, if they have. On HTTP/2
    /// never: frames between requests (pings, window updates) are not headers, and
    /// hyper's HTTP/2 bounds a stream's headers itself.
    fn head_started(&self) -> Option<Instant> {
        match self.head_started.load(Ordering::Relaxed) {
            NOT_STARTED => None,
            _ if self.http2() => None,
            started => Some(self.at(started)),
        }
    }

    fn idle_since(&self) -> Instant {
        self.at(self.idle_since.load(Ordering::Relaxed))
    }

    /// The moment a limit could next be passed. With a request in flight, its own
    /// deadlines bound it; the connection is looked at again within a header
    /// timeout anyway, so that headers started meanwhile are timed from their first
    /// byte.
    fn next_check(&self, limits: &ConnectionLimits, now: Instant) -> Instant {
        let soon = now + limits.header_timeout;
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return soon;
        }
        match self.head_started() {
            Some(started) => started + limits.header_timeout,
            None => soon.min(self.idle_since() + limits.idle_timeout),
        }
    }

    /// The limit the connection is past at `now`, if any.
    fn overdue(&self, limits: &ConnectionLimits, now: Instant) -> Option<Overdue> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        match self.head_started() {
            Some(started) => (now >= started + limits.header_timeout).then_some(Overdue::Headers),
            None => (now >= self.idle_since() + limits.idle_timeout).then_some(Overdue::Idle),
        }
    }
}

/// One request in flight, until its answer has been handed to hyper whole.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            let now = self.0.millis(Instant::now());
            self.0.idle_since.store(now, Ordering::Relaxed);
        }
    }
}

/// The socket, telling the watchdog when bytes arrive and, from the first of them,
/// whether the client speaks HTTP/2 (its preface starts `PRI`).
struct Watched<IO> {
    io: IO,
    activity: Arc<Activity>,
    /// How many bytes of `PRI` the client's first bytes matched so far.
    sniffed: usize,
}

const HTTP2_PREFACE_START: &[u8] = b"PRI";

impl<IO> Watched<IO> {
    fn sniff(&mut self, bytes: &[u8]) {
        if self.activity.protocol.load(Ordering::Relaxed) != Protocol::Unknown as u8 {
            return;
        }
        for byte in bytes {
            if HTTP2_PREFACE_START.get(self.sniffed) != Some(byte) {
                self.activity
                    .protocol
                    .store(Protocol::Http1 as u8, Ordering::Relaxed);
                return;
            }
            self.sniffed += 1;
            if self.sniffed == HTTP2_PREFACE_START.len() {
                self.activity
                    .protocol
                    .store(Protocol::Http2 as u8, Ordering::Relaxed);
                return;
            }
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Watched<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled
            && let Some(new) = buf.filled().get(before..)
            && !new.is_empty()
        {
            self.sniff(new);
            self.activity.received();
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Watched<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Each request of a connection: the router under the body and request deadlines,
/// with the peer's address for the routes (see [`crate::client_addr`]).
#[derive(Clone)]
struct RequestService {
    router: Router,
    limits: ConnectionLimits,
    peer: SocketAddr,
    activity: Arc<Activity>,
}

impl hyper::service::Service<Request<Incoming>> for RequestService {
    type Response = Response<Tracked>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Tracked>, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        let in_flight = self.activity.begin();
        let started = Instant::now();
        let body_timed_out = Arc::new(AtomicBool::new(false));
        let limits = self.limits;
        let mut request = request.map(|body| {
            Body::new(DeadlineBody {
                inner: body,
                deadline: started + limits.body_timeout,
                timer: None,
                timed_out: Arc::clone(&body_timed_out),
            })
        });
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let router = self.router.clone();
        Box::pin(async move {
            let answer =
                tokio::time::timeout_at(started + limits.request_timeout, router.oneshot(request))
                    .await;
            let response = match answer {
                Ok(Ok(response)) if !body_timed_out.load(Ordering::Relaxed) => response,
                Ok(Ok(_)) => {
                    ConnectionError::BodyTimeout(limits.body_timeout.as_secs()).into_response()
                }
                Ok(Err(infallible)) => match infallible {},
                Err(_) => ConnectionError::RequestTimeout(limits.request_timeout.as_secs())
                    .into_response(),
            };
            Ok(response.map(|body| Tracked {
                body,
                _in_flight: in_flight,
            }))
        })
    }
}

/// A request body that fails once its deadline passes with bytes still to come.
struct DeadlineBody {
    inner: Incoming,
    deadline: Instant,
    /// Armed the first time the body has to wait.
    timer: Option<Pin<Box<Sleep>>>,
    timed_out: Arc<AtomicBool>,
}

/// The error a [`DeadlineBody`] ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
struct BodyTimedOut;

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        let deadline = self.deadline;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.as_mut().poll(cx).is_ready() {
            self.timed_out.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(BodyTimedOut.into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An answer's body, which keeps its request counted in flight until hyper is done
/// with it.
struct Tracked {
    body: Body,
    _in_flight: InFlight,
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Answers a connection past the cap: one request read (so the client sees the
/// answer, not a reset), 503 with `Connection: close`, closed.
pub(super) async fn refuse(tcp: TcpStream, tls: Option<TlsAcceptor>) {
    let service = hyper::service::service_fn(|_request: Request<Incoming>| async {
        Ok::<_, Infallible>(ConnectionError::TooManyConnections.into_response())
    });
    let mut http1 = hyper::server::conn::http1::Builder::new();
    http1.keep_alive(false);
    match tls {
        None => {
            let _ = http1.serve_connection(TokioIo::new(tcp), service).await;
        }
        Some(acceptor) => {
            if let Ok(stream) = acceptor.accept(tcp).await {
                let _ = http1.serve_connection(TokioIo::new(stream), service).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn limits() -> ConnectionLimits {
        ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(60),
            max_connections: 10,
        }
    }

    const SEC: u64 = 1000;

    #[test]
    fn an_idle_connection_is_overdue_after_the_idle_timeout() {
        let activity = Arc::new(Activity::new());
        let opened = activity.opened;
        assert_eq!(activity.overdue(&limits(), opened), None);
        // Looked at again within a header timeout, in case headers start.
        assert_eq!(
            activity.next_check(&limits(), opened),
            opened + Duration::from_secs(10)
        );
        assert_eq!(
            activity.overdue(&limits(), opened + Duration::from_secs(59)),
            None
        );
        assert_eq!(
            activity.overdue(&limits(), opened + Duration::from_secs(60)),
            Some(Overdue::Idle)
        );
    }

    #[test]
    fn headers_are_timed_from_their_first_byte_not_from_the_idle_start() {
        let activity = Arc::new(Activity::new());
        let opened = activity.opened;
        // The first byte of a request, 50 s after the connection opened.
        activity.head_started.store(50 * SEC, Ordering::Relaxed);
        let started = opened + Duration::from_secs(50);
        assert_eq!(
            activity.next_check(&limits(), started),
            started + Duration::from_secs(10)
        );
        // Past the idle timeout, but headers are arriving: only their limit counts.
        assert_eq!(
            activity.overdue(&limits(), opened + Duration::from_secs(59)),
            None
        );
        assert_eq!(
            activity.overdue(&limits(), opened + Duration::from_secs(60)),
            Some(Overdue::Headers)
        );
        // Once the headers are in, the request is in flight: no connection limit.
        let in_flight = activity.begin();
        assert_eq!(
            activity.overdue(&limits(), opened + Duration::from_secs(1000)),
            None
        );
        // Answered: idle from then on, until the next request's first byte.
        drop(in_flight);
        let answered = activity.at(activity.idle_since.load(Ordering::Relaxed));
        assert_eq!(activity.head_started(), None);
        assert_eq!(
            activity.overdue(&limits(), answered + Duration::from_secs(59)),
            None
        );
        assert_eq!(
            activity.overdue(&limits(), answered + Duration::from_secs(60)),
            Some(Overdue::Idle)
        );
        activity.received();
        assert!(activity.head_started().is_some());
    }

    #[test]
    fn bytes_during_a_request_do_not_start_the_next_ones_headers() {
        let activity = Arc::new(Activity::new());
        let in_flight = activity.begin();
        activity.received();
        assert_eq!(activity.head_started(), None);
        drop(in_flight);
    }

    #[test]
    fn http2_frames_between_requests_are_not_headers() {
        let activity = Arc::new(Activity::new());
        let mut watched = Watched {
            io: tokio::io::empty(),
            activity: Arc::clone(&activity),
            sniffed: 0,
        };
        watched.sniff(b"PR");
        assert!(!activity.http2());
        watched.sniff(b"I * HTTP/2.0");
        assert!(activity.http2());
        activity.received();
        let opened = activity.opened;
        assert_eq!(
            activity.overdue(&limits(), opened + Duration::from_secs(30)),
            None
        );
        assert_eq!(
            activity.overdue(&limits(), opened + Duration::from_secs(60)),
            Some(Overdue::Idle)
        );

        let http1 = Arc::new(Activity::new());
        let mut watched = Watched {
            io: tokio::io::empty(),
            activity: Arc::clone(&http1),
            sniffed: 0,
        };
        watched.sniff(b"POST /oauth/token");
        assert_eq!(
            http1.protocol.load(Ordering::Relaxed),
            Protocol::Http1 as u8
        );
    }
}
