//! # From `accept` to the `App`: every connection counted and watched
//!
//! actix-web's `HttpServer` would do all of this for us — accept, TLS, HTTP/1.1 or HTTP/2, the
//! `App` — but it offers no hook between `accept` and HTTP, and its `max_connections` is per
//! worker thread with nothing held back. So we assemble the same parts ourselves, the way
//! `HttpServer::listen` / `listen_openssl` do inside:
//!
//! ```text
//! actix_server (accept loop, workers)
//!   └─ admit: ask the SocketLimiter; over a cap → the socket is dropped (closed) right here
//!        └─ [TLS handshake: actix_tls::accept::openssl::Acceptor, ALPN h2 / http/1.1]
//!             └─ actix_http::HttpService (HTTP/1.1 and HTTP/2) ─ App (routes, middleware)
//! ```
//!
//! The socket is wrapped in a [`Counted`] for its whole life: it carries the
//! [`SocketPermit`], so the per-address and overall counts drop the
//! moment the connection is closed, however that happens; it closes a connection whose writes
//! have made no progress for the send timeout (a client that stopped reading holds no
//! descriptor for long), and an HTTP/1.1 connection whose next request head does not arrive in
//! time (actix bounds only the first); it can be aborted by a handler through its
//! [`ConnHandle`]; and it counts the bytes written to the socket — below TLS, so on HTTPS they
//! include the TLS records — adding them to the counter a handler names
//! ([`ConnHandle::count_writes_into`]: the figures per transport, `transport/connection.rs`).
//!
//! `http_service` is the one place where the `HttpService` is configured, for the plain and
//! the TLS listener alike; its `on_connect_ext` gives handlers each connection's [`ConnHandle`]
//! and, on TLS, its handshake (`tls_info`).
//! [`Listeners`] adds listeners one by one, so more addresses are one more call.
//!
//! The road not taken: patching actix-http for this (`vendor/actix-http` carries a few small
//! changes, none of them here: counting needs none), or counting sockets in
//! `HttpServer::on_connect` (it runs after the TLS handshake and cannot refuse a connection).

use std::cell::{Cell, RefCell};
use std::future::{ready, Future};
use std::io;
use std::marker::PhantomData;
use std::net::{SocketAddr, TcpListener};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use actix_http::{error::DispatchError, HttpService, Protocol};
use actix_server::{GracefulShutdownSignal, Server, ServerBuilder};
use actix_service::{
    fn_service, map_config, IntoServiceFactory, ServiceFactory, ServiceFactoryExt,
};
use actix_tls::accept::openssl::{Acceptor, TlsStream};
use actix_web::{
    body::MessageBody,
    dev::{AppConfig, Extensions},
    rt::net::{ActixStream, Ready, TcpStream},
    HttpRequest,
};
use futures_util::task::AtomicWaker;
use openssl::ssl::{AlpnError, SslAcceptor, SslAcceptorBuilder, SslRef};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::limits::{SocketLimiter, SocketPermit};
use crate::tls_info;

/// How often actix-http refreshes the clock its connection timers start from.
const ACTIX_CLOCK_STEP: Duration = Duration::from_millis(500);

/// A graceful-shutdown future polled only once the shutdown may have begun.
///
/// actix-http polls a connection's graceful-shutdown future on every poll of the connection —
/// for a stream, on every event it sends. actix-server's signal is a tokio `watch`, whose
/// pending `changed()` took its waiter list's lock on every poll: a lock both workers share,
/// 2.4 % of the server's CPU in a fan-out to 9,000 spectators (issue 15). Here the inner future
/// is polled once, to register, with a waker of our own; when the signal fires, that waker
/// sets a flag every connection of the worker shares before waking the task. Until then a poll
/// reads that flag — one line, hot in the cache — and touches nothing of the connection's own
/// but this struct (a flag per connection cost one cache miss per event: 2.5 %).
struct Gated<F> {
    inner: Pin<Box<F>>,
    /// Set once the signal has fired for any connection of this worker.
    fired: Arc<AtomicBool>,
    waker: Waker,
    gate: Arc<Gate>,
    /// The task's waker as registered: a task's waker does not change between polls.
    task: Option<Waker>,
}

struct Gate {
    fired: Arc<AtomicBool>,
    task: AtomicWaker,
}

impl std::task::Wake for Gate {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl<F: Future> Gated<F> {
    /// `fired` is shared by the connections of one worker (see `http_service`).
    fn new(inner: F, fired: Arc<AtomicBool>) -> Gated<F> {
        let gate = Arc::new(Gate {
            fired: fired.clone(),
            task: AtomicWaker::new(),
        });
        Gated {
            inner: Box::pin(inner),
            fired,
            waker: Waker::from(gate.clone()),
            gate,
            task: None,
        }
    }
}

impl<F: Future> Future for Gated<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let first = match &this.task {
            Some(task) if task.will_wake(cx.waker()) => false,
            other => {
                let first = other.is_none();
                this.gate.task.register(cx.waker());
                this.task = Some(cx.waker().clone());
                first
            }
        };
        if !first && !this.fired.load(Ordering::Acquire) {
            return Poll::Pending;
        }
        this.inner
            .as_mut()
            .poll(&mut Context::from_waker(&this.waker))
    }
}

/// The HTTP settings every listener shares.
#[derive(Debug, Clone, Copy)]
pub struct HttpSettings {
    /// Bounds the arrival of a request head: the first on a connection (actix answers 408),
    /// and every later one (the connection is closed; see [`ConnHandle::request_started`]).
    pub request_timeout: Duration,
    /// Idle time before a keep-alive connection is closed.
    pub keep_alive: Duration,
    /// A connection whose writes make no progress for this long is closed.
    pub send_timeout: Duration,
    /// How long a graceful stop waits for in-flight requests, in seconds.
    pub shutdown_timeout: u64,
    /// Worker threads (`0` = one per core).
    pub workers: usize,
}

/// A handle on one client connection, for its handlers (`req.conn_data::<ConnHandle>()`).
#[derive(Clone)]
pub struct ConnHandle(Rc<Shared>);

#[derive(Default)]
struct Shared {
    aborted: Cell<bool>,
    /// The connection task, to wake when aborted while it waits for the socket.
    wakers: RefCell<[Option<Waker>; 2]>,
    /// HTTP/1.1 requests being handled or answered on this connection (0 or 1).
    in_flight: Cell<u32>,
    /// Since when the connection has been between requests (HTTP/1.1, after the first).
    idle_since: Cell<Option<tokio::time::Instant>>,
    /// A WebSocket took the connection over: no more requests.
    upgraded: Cell<bool>,
    /// Bytes written to the socket so far (on HTTPS: TLS records, the handshake included).
    written: Cell<u64>,
    /// Where the bytes written now count as well: the counter of the transport whose HTTP/1.1
    /// request the connection is serving. Cleared when the next request arrives.
    meter: RefCell<Option<Arc<AtomicU64>>>,
}

impl ConnHandle {
    /// The handle of the connection `req` arrived on.
    pub fn of(req: &HttpRequest) -> Option<ConnHandle> {
        req.conn_data::<ConnHandle>().cloned()
    }

    /// Ends the connection now: its next read or write fails, the HTTP dispatcher drops it, and
    /// the socket is reset (unsent bytes are discarded, not left waiting for a reader).
    pub fn abort(&self) {
        self.0.aborted.set(true);
        for waker in self.0.wakers.borrow_mut().iter_mut() {
            if let Some(w) = waker.take() {
                w.wake();
            }
        }
    }

    /// An HTTP/1.1 request has arrived (its head is complete); the connection is busy until
    /// the returned guard is dropped with the response body.
    ///
    /// Between requests, the next head must be complete within the request timeout. actix-http
    /// bounds only the *first* head on a connection: after one request, a client could send
    /// `GET / HTTP/1.1\r\n` and nothing more, and the connection stayed open for good (its
    /// keep-alive timer stops at the first byte).
    pub fn request_started(&self) -> RequestGuard {
        self.0.in_flight.set(self.0.in_flight.get() + 1);
        self.0.idle_since.set(None);
        // A new request: whatever it writes is not the last one's (its handler may claim it).
        self.0.meter.replace(None);
        RequestGuard(self.clone())
    }

    /// From now until the next request arrives on this connection (for a WebSocket: for good),
    /// every byte written to the socket is added to `meter` too — heads, bodies, chunk and
    /// frame headers, and on HTTPS the TLS records around them.
    ///
    /// Meant for HTTP/1.1, which serves one request at a time: the bytes written while a
    /// request is being answered are that request's (a browser does not pipeline). The meter
    /// stays set after the response, because the last bytes reach the socket only after the
    /// handler and the body are done; the next request clears it. Over HTTP/2 one connection
    /// carries many requests at once, so a handler must not call this there.
    pub fn count_writes_into(&self, meter: Arc<AtomicU64>) {
        self.0.meter.replace(Some(meter));
    }

    /// Bytes written to this connection's socket so far.
    pub fn bytes_written(&self) -> u64 {
        self.0.written.get()
    }

    fn wrote(&self, n: usize) {
        let shared = &self.0;
        shared.written.set(shared.written.get() + n as u64);
        if let Some(meter) = &*shared.meter.borrow() {
            meter.fetch_add(n as u64, Ordering::Relaxed);
        }
    }

    /// The connection became a stream of its own (a WebSocket): no more request heads.
    pub fn upgraded(&self) {
        self.0.upgraded.set(true);
        self.0.idle_since.set(None);
    }

    fn remember(&self, slot: usize, cx: &Context<'_>) {
        let mut wakers = self.0.wakers.borrow_mut();
        match &mut wakers[slot] {
            Some(w) if w.will_wake(cx.waker()) => {}
            other => *other = Some(cx.waker().clone()),
        }
    }
}

/// Held while an HTTP/1.1 request is handled and answered; see [`ConnHandle::request_started`].
pub struct RequestGuard(ConnHandle);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let shared = &self.0 .0;
        shared
            .in_flight
            .set(shared.in_flight.get().saturating_sub(1));
        if shared.in_flight.get() == 0 && !shared.upgraded.get() {
            shared.idle_since.set(Some(tokio::time::Instant::now()));
            // The connection task waits on the socket: let it start the head deadline.
            if let Some(w) = &shared.wakers.borrow()[0] {
                w.wake_by_ref();
            }
        }
    }
}

/// An accepted TCP connection, counted until it closes, with a send timeout and an abort switch.
pub struct Counted {
    io: TcpStream,
    peer: SocketAddr,
    handle: ConnHandle,
    send_timeout: Duration,
    /// Started when a write finds the socket full; cleared by any progress.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
    head_timeout: Duration,
    /// The deadline for the next request head, with the `idle_since` it was started from.
    head: Option<(tokio::time::Instant, Pin<Box<tokio::time::Sleep>>)>,
    _permit: SocketPermit,
}

impl Counted {
    fn new(io: TcpStream, peer: SocketAddr, permit: SocketPermit, settings: &HttpSettings) -> Self {
        // Small writes (one event, one frame) must leave at once: without TCP_NODELAY, Nagle's
        // algorithm meets the peer's delayed ACK and single events wait ~40 ms on loopback.
        let _ = io.set_nodelay(true);
        Counted {
            io,
            peer,
            handle: ConnHandle(Rc::default()),
            send_timeout: settings.send_timeout,
            stalled: None,
            head_timeout: settings.request_timeout,
            head: None,
            _permit: permit,
        }
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub fn handle(&self) -> ConnHandle {
        self.handle.clone()
    }

    /// After an abort or a send timeout: reset instead of an orderly close, so the kernel does
    /// not keep the unread bytes (and the socket) around for a client that never reads.
    fn fail(&self, kind: io::ErrorKind, why: &str) -> io::Error {
        let _ = self.io.set_zero_linger();
        io::Error::new(kind, why.to_string())
    }

    fn aborted(&self) -> Option<io::Error> {
        self.handle
            .0
            .aborted
            .get()
            .then(|| self.fail(io::ErrorKind::ConnectionAborted, "aborted by the server"))
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(err) = this.aborted() {
            return Poll::Ready(Err(err));
        }
        match (this.handle.0.idle_since.get(), &this.head) {
            (None, _) => this.head = None,
            (Some(since), Some((from, _))) if *from == since => {}
            (Some(since), _) => {
                let deadline = since + this.head_timeout;
                this.head = Some((since, Box::pin(tokio::time::sleep_until(deadline))));
            }
        }
        let poll = Pin::new(&mut this.io).poll_read(cx, buf);
        if poll.is_pending() {
            this.handle.remember(0, cx);
            if let Some((_, timer)) = &mut this.head {
                if timer.as_mut().poll(cx).is_ready() {
                    tracing::debug!(peer = %this.peer, "no complete request head in time; connection closed");
                    return Poll::Ready(Err(this.fail(
                        io::ErrorKind::TimedOut,
                        "the request head did not arrive in time",
                    )));
                }
            }
        }
        poll
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(err) = this.aborted() {
            return Poll::Ready(Err(err));
        }
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Pending => {
                this.handle.remember(1, cx);
                let timeout = this.send_timeout;
                let stalled = this
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                if stalled.as_mut().poll(cx).is_ready() {
                    tracing::info!(peer = %this.peer, "client stopped reading; connection closed");
                    return Poll::Ready(Err(this.fail(
                        io::ErrorKind::TimedOut,
                        "no write progress within the send timeout",
                    )));
                }
                Poll::Pending
            }
            done => {
                this.stalled = None;
                if let Poll::Ready(Ok(n)) = done {
                    this.handle.wrote(n);
                }
                done
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl ActixStream for Counted {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        ActixStream::poll_read_ready(&self.io, cx)
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        ActixStream::poll_write_ready(&self.io, cx)
    }
}

/// What HTTP runs on: a [`Counted`] socket, maybe inside TLS.
pub trait ClientIo: AsyncRead + AsyncWrite + Unpin + 'static {
    fn counted(&self) -> &Counted;

    /// The TLS session, on an HTTPS connection.
    fn tls_session(&self) -> Option<&SslRef> {
        None
    }
}

impl ClientIo for Counted {
    fn counted(&self) -> &Counted {
        self
    }
}

impl ClientIo for TlsStream<Counted> {
    fn counted(&self) -> &Counted {
        self.get_ref()
    }

    fn tls_session(&self) -> Option<&SslRef> {
        Some(std::ops::Deref::deref(self).ssl())
    }
}

/// Per-connection data handlers can read with `req.conn_data::<T>()`.
fn on_connect<T: ClientIo>(io: &T, data: &mut Extensions) {
    data.insert(io.counted().handle());
    // A TLS connection's handshake (protocol, cipher, ALPN, SNI, certificate), for /api/tls.
    if let Some(ssl) = io.tls_session() {
        tls_info::capture(ssl, data);
    }
}

/// The one place where the `HttpService` is configured, for every listener: HTTP/1.1 on plain
/// sockets, HTTP/1.1 or HTTP/2 (by ALPN) on TLS.
fn http_service<T, F, I, S, B>(
    settings: &HttpSettings,
    app: &F,
    app_config: AppConfig,
    shutdown: GracefulShutdownSignal,
) -> impl ServiceFactory<
    (T, Protocol, Option<SocketAddr>),
    Config = (),
    Response = (),
    Error = DispatchError,
    InitError = (),
>
where
    T: ClientIo,
    F: Fn() -> I,
    I: IntoServiceFactory<S, actix_http::Request>,
    S: ServiceFactory<
            actix_http::Request,
            Config = AppConfig,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    let factory = app()
        .into_factory()
        .map_err(|err| actix_web::ResponseError::error_response(err.as_response_error()));
    HttpService::build()
        .keep_alive(settings.keep_alive)
        // actix computes its deadlines from a clock it refreshes every 500 ms, so a deadline can
        // fall up to 0.5 s early (a 300 ms timeout could fire at once): add the half second.
        .client_request_timeout(settings.request_timeout + ACTIX_CLOCK_STEP)
        .client_disconnect_timeout(Duration::from_secs(1))
        // A client that closes its side is gone: end its request now (a parked long poll or an
        // SSE stream would otherwise keep its slot until the server next writes). Clients that
        // half-close on purpose after sending a request are not a use case here.
        .h1_allow_half_closed(false)
        .local_addr(app_config.local_addr())
        .graceful_shutdown_signal({
            let fired = Arc::new(AtomicBool::new(false));
            move || {
                let signal = shutdown.clone();
                Gated::new(async move { signal.notified().await }, fired.clone())
            }
        })
        .on_connect_ext(on_connect::<T>)
        .finish(map_config(factory, move |()| app_config.clone()))
}

/// Pending connections the kernel queues for `accept` (actix-server's own default). A flood
/// connects faster than anyone accepts: with std's 128, the queue overflowed and a newcomer's
/// SYN was dropped (answered only after the client's 1 s retransmission).
pub const BACKLOG: u32 = 2048;

/// Binds a listening socket with [`BACKLOG`] (std's `TcpListener::bind` uses 128); `[::]`
/// dual-stack.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    if let std::net::IpAddr::V6(v6) = addr.ip() {
        if v6.is_unspecified() {
            // `[::]` serves IPv4 too (as `::ffff:a.b.c.d`), whatever the system's default
            // (`net.ipv6.bindv6only` on Linux; off on Windows and the BSDs).
            socket2::SockRef::from(&socket).set_only_v6(false)?;
        }
    }
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)?.into_std()
}

/// Builds the server listener by listener.
pub struct Listeners<F, S, B> {
    builder: ServerBuilder,
    app: F,
    settings: HttpSettings,
    sockets: SocketLimiter,
    /// The app's service and body types, fixed by `F` (as in actix-web's `HttpServer`).
    _types: PhantomData<fn() -> (S, B)>,
}

impl<F, I, S, B> Listeners<F, S, B>
where
    F: Fn() -> I + Send + Clone + 'static,
    I: IntoServiceFactory<S, actix_http::Request>,
    S: ServiceFactory<
            actix_http::Request,
            Config = AppConfig,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    /// `app` builds one worker's `App`; `sockets` counts every listener's connections.
    pub fn new(app: F, settings: HttpSettings, sockets: SocketLimiter) -> Self {
        let mut builder = ServerBuilder::default()
            .shutdown_timeout(settings.shutdown_timeout)
            // Signals are ours (see `server::run`): the hub must end streams and save before
            // the server stops.
            .disable_signals();
        if settings.workers > 0 {
            builder = builder.workers(settings.workers);
        }
        Listeners {
            builder,
            app,
            settings,
            sockets,
            _types: PhantomData,
        }
    }

    /// Serves plain HTTP/1.1 on `listener`.
    pub fn listen(mut self, listener: TcpListener) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let (app, settings, sockets) = (self.app.clone(), self.settings, self.sockets.clone());
        let shutdown = self.builder.graceful_shutdown_signal();
        self.builder = self
            .builder
            .listen(format!("http-{addr}"), listener, move || {
                let config = app_config(false, addr);
                let http =
                    http_service::<Counted, _, _, _, _>(&settings, &app, config, shutdown.clone());
                admit(sockets.clone(), settings)
                    .map(|io: Counted| {
                        let peer = io.peer();
                        (io, Protocol::Http1, Some(peer))
                    })
                    .and_then(
                        http.map_err(|err| tracing::debug!(%err, "connection ended with an error")),
                    )
            })?;
        Ok(self)
    }

    /// Serves HTTPS on `listener`: TLS with `acceptor`, then HTTP/2 or HTTP/1.1 as ALPN agreed.
    pub fn listen_tls(
        mut self,
        listener: TcpListener,
        acceptor: SslAcceptorBuilder,
    ) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let acceptor = with_alpn(acceptor)?;
        let (app, settings, sockets) = (self.app.clone(), self.settings, self.sockets.clone());
        let shutdown = self.builder.graceful_shutdown_signal();
        self.builder = self
            .builder
            .listen(format!("https-{addr}"), listener, move || {
                let config = app_config(true, addr);
                let http = http_service::<TlsStream<Counted>, _, _, _, _>(
                    &settings,
                    &app,
                    config,
                    shutdown.clone(),
                );
                admit_proxied(sockets.clone(), settings)
                    .and_then(
                        Acceptor::new(acceptor.clone())
                            .map_err(|err| tracing::debug!(?err, "TLS handshake failed")),
                    )
                    .map(|io: TlsStream<Counted>| {
                        let h2 = io.ssl().selected_alpn_protocol() == Some(b"h2");
                        let peer = io.counted().peer();
                        (
                            io,
                            if h2 { Protocol::Http2 } else { Protocol::Http1 },
                            Some(peer),
                        )
                    })
                    .and_then(
                        http.map_err(|err| tracing::debug!(%err, "connection ended with an error")),
                    )
            })?;
        Ok(self)
    }

    pub fn run(self) -> Server {
        self.builder.run()
    }
}

/// The first step after `accept`: count the socket, or close it.
fn admit(
    sockets: SocketLimiter,
    settings: HttpSettings,
) -> impl ServiceFactory<TcpStream, Config = (), Response = Counted, Error = (), InitError = ()> {
    fn_service(move |io: TcpStream| {
        let peer = io.peer_addr().ok();
        // On refusal `io` is dropped here: the client sees its connection closed at once.
        ready(sockets.admit(peer).map_err(drop).and_then(|permit| {
            peer.map(|p| Counted::new(io, p, permit, &settings))
                .ok_or(())
        }))
    })
}

/// The first step on the TLS port: a connection from a `--trusted-proxy` may begin with a PROXY
/// protocol v2 header (haproxy's `send-proxy-v2`: TLS passes through the proxy untouched, so
/// there is no HTTP header to carry the client's address). It is read before anything else and
/// the socket is counted under the client's address it names, so the per-address caps see the
/// real client from the first byte. From anybody else the bytes are TLS and nothing is read.
fn admit_proxied(
    sockets: SocketLimiter,
    settings: HttpSettings,
) -> impl ServiceFactory<TcpStream, Config = (), Response = Counted, Error = (), InitError = ()> {
    fn_service(move |mut io: TcpStream| {
        let sockets = sockets.clone();
        async move {
            let mut peer = io.peer_addr().ok();
            if let Some(proxy) = peer.filter(|p| sockets.trusts(p.ip())) {
                let header = tokio::time::timeout(settings.request_timeout, proxy_header(&mut io));
                match header.await {
                    Ok(Ok(Some(client))) => peer = Some(client),
                    // A direct connection from the proxy's host, or its LOCAL health check.
                    Ok(Ok(None)) => {}
                    Ok(Err(err)) => {
                        tracing::warn!(%proxy, %err, "a bad PROXY protocol header: connection closed");
                        return Err(());
                    }
                    Err(_) => return Err(()),
                }
            }
            sockets.admit(peer).map_err(drop).and_then(|permit| {
                peer.map(|p| Counted::new(io, p, permit, &settings))
                    .ok_or(())
            })
        }
    })
}

/// The PROXY protocol v2 signature every header starts with.
const PROXY_V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";

/// Reads a PROXY protocol v2 header if the connection starts with one (a TLS connection starts
/// with `0x16`, a header with `\r`): the client's address for a PROXY command, `None` for a
/// LOCAL one (a health check) or no header at all. Reads exactly the header's bytes, so the TLS
/// handshake that follows is untouched. Parsed with the `ppp` crate.
pub async fn proxy_header(io: &mut TcpStream) -> io::Result<Option<SocketAddr>> {
    use tokio::io::AsyncReadExt;
    let mut first = [0u8; 1];
    if io.peek(&mut first).await? == 0 || first[0] != b'\r' {
        return Ok(None);
    }
    let mut head = [0u8; 16];
    io.read_exact(&mut head).await?;
    if &head[..12] != PROXY_V2_SIGNATURE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a PROXY protocol v2 header",
        ));
    }
    let len = usize::from(u16::from_be_bytes([head[14], head[15]]));
    let mut header = Vec::with_capacity(16 + len);
    header.extend_from_slice(&head);
    header.resize(16 + len, 0);
    io.read_exact(&mut header[16..]).await?;
    let parsed = ppp::v2::Header::try_from(header.as_slice())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    if parsed.command == ppp::v2::Command::Local {
        return Ok(None);
    }
    Ok(match parsed.addresses {
        ppp::v2::Addresses::IPv4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        ppp::v2::Addresses::IPv6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        _ => None,
    })
}

/// What the `App` learns about its listener: `secure` decides HSTS and `Secure` cookies.
///
/// `AppConfig` has no public constructor besides `Default`; `__priv_test_new` is the one
/// actix-web's own test server uses (doc-hidden, "semver exempt"). See `docs/decisions.md`.
fn app_config(secure: bool, addr: SocketAddr) -> AppConfig {
    AppConfig::__priv_test_new(secure, addr.to_string(), addr)
}

/// Offers HTTP/2 and HTTP/1.1 by ALPN, preferring HTTP/2, as `HttpServer::listen_openssl` does.
fn with_alpn(mut builder: SslAcceptorBuilder) -> io::Result<SslAcceptor> {
    const PROTOCOLS: &[u8] = b"\x02h2\x08http/1.1";
    builder.set_alpn_select_callback(|_, offered| {
        openssl::ssl::select_next_proto(PROTOCOLS, offered).ok_or(AlpnError::NOACK)
    });
    builder
        .set_alpn_protos(PROTOCOLS)
        .map_err(io::Error::other)?;
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::config::Config;
    use crate::limits::Limits;

    /// A connected pair: a client with a small receive buffer, and the server side counted.
    async fn pair(send_timeout: Duration) -> (TcpStream, Counted, SocketLimiter) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let client = socket
            .connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (io, peer) = listener.accept().await.unwrap();
        let limiter = SocketLimiter::new(Limits::from_config(&Config::for_tests()));
        let permit = limiter.admit(Some(peer)).unwrap();
        let settings = HttpSettings {
            request_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(5),
            send_timeout,
            shutdown_timeout: 1,
            workers: 1,
        };
        (client, Counted::new(io, peer, permit, &settings), limiter)
    }

    #[actix_web::test]
    async fn a_write_that_makes_no_progress_for_the_send_timeout_fails_and_frees_the_socket() {
        let (mut client, mut server, limiter) = pair(Duration::from_millis(200)).await;
        assert_eq!(limiter.open(), 1);
        let chunk = vec![b'x'; 64 * 1024];
        let started = Instant::now();
        let mut written = 0;
        let err = loop {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "never timed out"
            );
            match server.write(&chunk).await {
                Ok(n) => written += n,
                Err(err) => break err,
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(200));
        drop(server);
        assert_eq!(limiter.open(), 0, "the permit went with the socket");
        // The client gets what the buffers held, then a reset: no orderly close that would
        // wait for it to read everything.
        let mut received = 0;
        let mut buf = vec![0u8; 1 << 16];
        let end = loop {
            match client.read(&mut buf).await {
                Ok(0) => break None,
                Ok(n) => received += n,
                Err(err) => break Some(err.kind()),
            }
        };
        assert_eq!(
            end,
            Some(io::ErrorKind::ConnectionReset),
            "after {received} of {written} bytes"
        );
        assert!(received < written);
    }

    #[actix_web::test]
    async fn a_gated_future_is_polled_again_only_after_it_woke_its_task() {
        let notify = Arc::new(tokio::sync::Notify::new());
        let polls = Rc::new(Cell::new(0));
        let (n, p) = (notify.clone(), polls.clone());
        let fired = Arc::new(AtomicBool::new(false));
        let mut gated = Gated::new(
            async move {
                p.set(p.get() + 1);
                n.notified().await;
                p.set(p.get() + 1);
                "woken"
            },
            fired.clone(),
        );
        for _ in 0..5 {
            let poll = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut gated).poll(cx))).await;
            assert!(poll.is_pending());
        }
        assert_eq!(polls.get(), 1, "registered once, then left alone");
        notify.notify_one();
        let done = actix_web::rt::time::timeout(Duration::from_secs(5), gated).await;
        assert_eq!(
            done,
            Ok("woken"),
            "the wake went through to the inner future"
        );
        assert_eq!(polls.get(), 2);
        assert!(
            fired.load(Ordering::Acquire),
            "and told the worker's other connections"
        );
    }

    #[actix_web::test]
    async fn bytes_written_count_into_the_named_meter_until_the_next_request() {
        let (_client, mut server, _limiter) = pair(Duration::from_secs(10)).await;
        let handle = server.handle();
        let meter = Arc::new(AtomicU64::new(0));
        server.write_all(b"unclaimed").await.unwrap();
        handle.count_writes_into(meter.clone());
        server.write_all(b"hello, world").await.unwrap();
        assert_eq!(meter.load(Ordering::Relaxed), 12);
        let _next = handle.request_started();
        server.write_all(b"the next request's").await.unwrap();
        assert_eq!(
            meter.load(Ordering::Relaxed),
            12,
            "not the next request's bytes"
        );
        assert_eq!(handle.bytes_written(), 9 + 12 + 18);
    }

    #[actix_web::test]
    async fn an_abort_wakes_a_waiting_read_with_an_error() {
        let (_client, mut server, limiter) = pair(Duration::from_secs(10)).await;
        let handle = server.handle();
        let reader = actix_web::rt::spawn(async move {
            let mut buf = [0u8; 16];
            server.read(&mut buf).await
        });
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        handle.abort();
        let read = actix_web::rt::time::timeout(Duration::from_secs(5), reader)
            .await
            .expect("woken by the abort")
            .unwrap();
        assert_eq!(read.unwrap_err().kind(), io::ErrorKind::ConnectionAborted);
        assert_eq!(limiter.open(), 0);
    }
}

#[cfg(test)]
mod proxy_tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[actix_web::test]
    async fn a_proxy_header_names_the_client_and_leaves_what_follows_unread() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = listener.local_addr().unwrap();
        let mut client = tokio::net::TcpStream::connect(server).await.unwrap();
        let (mut io, _) = listener.accept().await.unwrap();
        let header = ppp::v2::Builder::with_addresses(
            ppp::v2::Version::Two | ppp::v2::Command::Proxy,
            ppp::v2::Protocol::Stream,
            ("198.51.100.7:5555".parse::<SocketAddr>().unwrap(), server),
        )
        .build()
        .unwrap();
        client.write_all(&header).await.unwrap();
        client.write_all(b"\x16rest").await.unwrap();
        let named = proxy_header(&mut io).await.unwrap();
        assert_eq!(named, Some("198.51.100.7:5555".parse().unwrap()));
        let mut rest = [0u8; 5];
        tokio::io::AsyncReadExt::read_exact(&mut io, &mut rest)
            .await
            .unwrap();
        assert_eq!(&rest, b"\x16rest");
    }
}
