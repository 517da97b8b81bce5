//! Sockets the way a load test needs them, under awc.
//!
//! awc's own TCP connector does not set `TCP_NODELAY`, cannot count bytes, and binds every
//! connection to one source address. [`Connector`] replaces it:
//!
//! * **`TCP_NODELAY`** on every socket: without it a small write that follows another one waits
//!   for the peer's (delayed, up to 40 ms) ACK — Nagle's algorithm — and loopback latencies pick
//!   up tens of milliseconds that have nothing to do with the transport.
//! * **bind before connect** to a chosen source address (`127.0.0.x`): one source address has
//!   only ~28k ephemeral ports toward one server port, so many connections spread over several.
//! * **byte counters** ([`Counters`]): every byte read from and written to the socket, i.e. TCP
//!   payload — HTTP request and response heads, chunk framing, WebSocket frame headers, TLS
//!   records — but not TCP/IP headers.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_tls::connect::{ConnectError, ConnectInfo, Connection};
use actix_web::dev::Service;
use actix_web::http::Uri;
use actix_web::rt::net::{ActixStream, TcpSocket, TcpStream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, Ready};

/// Bytes and connections through one [`Connector`], shared by all its sockets.
#[derive(Debug, Default)]
pub struct Counters {
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub connects: AtomicU64,
}

/// A point-in-time copy of [`Counters`], so phases can be measured as differences.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub connects: u64,
}

impl Counters {
    pub fn read(&self) -> Traffic {
        Traffic {
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            connects: self.connects.load(Ordering::Relaxed),
        }
    }
}

impl std::ops::Sub for Traffic {
    type Output = Traffic;
    fn sub(self, earlier: Traffic) -> Traffic {
        Traffic {
            bytes_in: self.bytes_in.saturating_sub(earlier.bytes_in),
            bytes_out: self.bytes_out.saturating_sub(earlier.bytes_out),
            connects: self.connects.saturating_sub(earlier.connects),
        }
    }
}

impl std::ops::Add for Traffic {
    type Output = Traffic;
    fn add(self, other: Traffic) -> Traffic {
        Traffic {
            bytes_in: self.bytes_in + other.bytes_in,
            bytes_out: self.bytes_out + other.bytes_out,
            connects: self.connects + other.connects,
        }
    }
}

/// A TCP stream that counts what passes through it.
pub struct CountingStream {
    inner: TcpStream,
    counters: Arc<Counters>,
}

impl fmt::Debug for CountingStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CountingStream")
            .field("inner", &self.inner)
            .finish()
    }
}

impl AsyncRead for CountingStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len().saturating_sub(before) as u64;
        self.counters.bytes_in.fetch_add(read, Ordering::Relaxed);
        res
    }
}

impl AsyncWrite for CountingStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = res {
            self.counters
                .bytes_out
                .fetch_add(n as u64, Ordering::Relaxed);
        }
        res
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = res {
            self.counters
                .bytes_out
                .fetch_add(n as u64, Ordering::Relaxed);
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl ActixStream for CountingStream {
    fn poll_read_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        ActixStream::poll_read_ready(&self.inner, cx)
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<Ready>> {
        ActixStream::poll_write_ready(&self.inner, cx)
    }
}

/// awc's TCP connector replacement: source address, `TCP_NODELAY`, byte counting.
/// Hosts must be IP literals (this tool only talks to loopback).
#[derive(Clone)]
pub struct Connector {
    pub local: Option<IpAddr>,
    pub counters: Arc<Counters>,
}

/// Opens a TCP connection from `local` (any port) to `addr`, with `TCP_NODELAY` set.
pub async fn connect(local: Option<IpAddr>, addr: SocketAddr) -> io::Result<TcpStream> {
    let socket = match addr {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(ip) = local {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl Service<ConnectInfo<Uri>> for Connector {
    type Response = Connection<Uri, CountingStream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>>>>;

    fn poll_ready(&self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&self, req: ConnectInfo<Uri>) -> Self::Future {
        let local = self.local;
        let counters = self.counters.clone();
        Box::pin(async move {
            let host = req.hostname().trim_start_matches('[').trim_end_matches(']');
            let ip: IpAddr = host.parse().map_err(|_| ConnectError::Unresolved)?;
            let addr = SocketAddr::new(ip, req.port());
            let inner = connect(local, addr).await.map_err(ConnectError::Io)?;
            counters.connects.fetch_add(1, Ordering::Relaxed);
            let uri = req.request().clone();
            Ok(Connection::new(uri, CountingStream { inner, counters }))
        })
    }
}

/// An awc client whose connections come from `local`, counted into `counters`. `tls` accepts
/// the server's (self-signed) certificate without checking it: this tool measures, it does not
/// authenticate, and it only talks to loopback.
pub fn client(local: Option<IpAddr>, counters: Arc<Counters>, tls: bool) -> awc::Client {
    let mut connector = awc::Connector::new()
        .connector(Connector { local, counters })
        .timeout(Duration::from_secs(10))
        // No cap on simultaneous connections: every long poll parks one.
        .limit(0);
    if tls {
        if let Ok(mut builder) = openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls())
        {
            builder.set_verify(openssl::ssl::SslVerifyMode::NONE);
            // HTTP/1.1 only, as the plain listener: the comparison stays like for like.
            let _ = builder.set_alpn_protos(b"\x08http/1.1");
            connector = connector.openssl(builder.build());
        }
    }
    awc::Client::builder()
        .connector(connector)
        .timeout(Duration::from_secs(3600))
        .disable_redirects()
        .finish()
}
