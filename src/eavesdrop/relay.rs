//! # The relays: byte pumps with an observer attached
//!
//! A relay accepts a TCP connection, opens one to its upstream listener (the server's own HTTP
//! or HTTPS port) and copies bytes both ways. Before forwarding a chunk it shows it to the
//! direction's observer ([`super::http::HttpObserver`] or [`super::tls_records::TlsObserver`])
//! and, in tamper mode, lets Mallory ([`super::tamper`]) change it. TLS is never terminated:
//! the TLS relay holds no key and could not decrypt if it wanted to.
//!
//! Limits, like the main listeners: at most [`MAX_RELAY_CONNS`] connections per relay and
//! `--max-conns-per-ip` per client address; an upstream that refuses (or does not answer within
//! [`CONNECT_TIMEOUT`]) closes the client's connection cleanly; once one direction has ended
//! the other gets [`LINGER`] to finish; and a write that makes no progress for the send timeout
//! (`--ws-send-timeout-ms`, as on the main listeners) ends the connection at once. Without that
//! last one, a client that asked for a lot (pipelined requests for a big file) and never read
//! held its place for good: the server gave up on the relay after its own send timeout, but the
//! relay waited on the client forever, with up to 4 MB of kernel send buffer pinned each (194
//! such connections held a full relay and 1 GB of socket memory for as long as the client
//! liked). Each connection holds one 16 KiB read buffer per direction plus the observers'
//! capped state.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU16;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use super::http::HttpObserver;
use super::tamper::{JoinRewriter, RecordFlipper};
use super::tls_records::TlsObserver;
use super::{Dir, Eavesdrop, RelayKind, Seen};
use crate::security::{ConnLimiter, ConnSlot};

/// Open connections one relay serves at once; more are closed on accept.
pub const MAX_RELAY_CONNS: usize = 256;
/// How long the relay waits for its upstream to accept.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Once one direction is done, how long the other may still run.
pub const LINGER: Duration = Duration::from_secs(10);
const READ_BUFFER: usize = 16 * 1024;

/// Starts a relay on `listener` (already bound, so the caller knows its address) in the current
/// actix system. Aborting the returned task ends the relay and all its connections.
///
/// `send_timeout`: how long a write to either side may make no progress before the connection
/// is ended (the server's `--ws-send-timeout-ms`).
pub fn spawn(
    listener: std::net::TcpListener,
    kind: RelayKind,
    upstream: SocketAddr,
    eavesdrop: Eavesdrop,
    limiter: ConnLimiter,
    send_timeout: Duration,
) -> io::Result<JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    Ok(actix_web::rt::spawn(accept_loop(
        listener,
        Relay {
            kind,
            upstream,
            eavesdrop,
            send_timeout,
        },
        limiter,
    )))
}

/// What every connection of one relay shares.
#[derive(Clone)]
struct Relay {
    kind: RelayKind,
    upstream: SocketAddr,
    eavesdrop: Eavesdrop,
    send_timeout: Duration,
}

async fn accept_loop(listener: TcpListener, relay: Relay, limiter: ConnLimiter) {
    let kind = relay.kind;
    // Connections live in this set: when the relay's task is aborted, the set is dropped and
    // every connection with it.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    if conns.len() >= MAX_RELAY_CONNS {
                        tracing::warn!(?kind, %peer, "eavesdrop relay full; connection closed");
                        continue;
                    }
                    let Ok(slot) = limiter.acquire(Some(peer)) else {
                        tracing::debug!(?kind, %peer, "eavesdrop relay: too many connections from this address");
                        continue;
                    };
                    let conn = relay.eavesdrop.next_conn();
                    conns.spawn_local(relay_one(client, relay.clone(), conn, slot));
                }
                Err(err) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(?kind, %err, "eavesdrop relay: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// What one direction does to the bytes it carries.
enum Side {
    Plain {
        observer: HttpObserver,
        mallory: Option<JoinRewriter>,
    },
    Tls {
        observer: TlsObserver,
        mallory: Option<RecordFlipper>,
    },
}

impl Side {
    fn new(kind: RelayKind, dir: Dir) -> Side {
        let upstream = dir == Dir::ClientToServer;
        match kind {
            RelayKind::Plain => Side::Plain {
                observer: HttpObserver::new(dir),
                mallory: upstream.then(JoinRewriter::new),
            },
            RelayKind::Tls => Side::Tls {
                observer: TlsObserver::new(dir),
                mallory: upstream.then(RecordFlipper::new),
            },
        }
    }

    /// Observes (and in tamper mode changes) one chunk; returns the bytes to forward.
    fn pass(
        &mut self,
        chunk: &mut [u8],
        tamper: bool,
        negotiated: &AtomicU16,
        seen: &mut Vec<Seen>,
    ) -> Option<Vec<u8>> {
        match self {
            Side::Plain { observer, mallory } => {
                let changed = mallory.as_mut().map(|m| m.push(chunk, tamper));
                match changed {
                    Some(fwd) => {
                        for at in fwd.tampered_at {
                            observer.mark_tampered(at);
                        }
                        seen.extend(observer.push(&fwd.bytes));
                        Some(fwd.bytes)
                    }
                    None => {
                        seen.extend(observer.push(chunk));
                        None
                    }
                }
            }
            Side::Tls { observer, mallory } => {
                if let Some(at) = mallory.as_mut().and_then(|m| m.push(chunk, tamper)) {
                    observer.mark_tampered(at);
                    tracing::warn!("eavesdrop relay: flipped one bit of a TLS record");
                }
                seen.extend(observer.push(chunk, negotiated));
                None
            }
        }
    }

    /// The source closed: bytes still held for rewriting, and a message left unfinished.
    fn finish(&mut self, seen: &mut Vec<Seen>) -> Vec<u8> {
        match self {
            Side::Plain { observer, mallory } => {
                let held = mallory
                    .as_mut()
                    .map(JoinRewriter::finish)
                    .unwrap_or_default();
                seen.extend(observer.push(&held));
                seen.extend(observer.finish());
                held
            }
            Side::Tls { .. } => Vec::new(),
        }
    }
}

async fn relay_one(client: TcpStream, relay: Relay, conn: u64, _slot: ConnSlot) {
    let Relay {
        kind,
        upstream,
        eavesdrop,
        send_timeout,
    } = relay;
    let server = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(upstream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(err)) => {
            tracing::warn!(?kind, %upstream, %err, "eavesdrop relay: upstream refused; closing the client's connection");
            return;
        }
        Err(_) => {
            tracing::warn!(?kind, %upstream, "eavesdrop relay: upstream did not answer; closing the client's connection");
            return;
        }
    };
    // Small writes (one frame, one event) must leave at once, as on the main listeners.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // The ServerHello's version, shared by both directions' records. Both pumps run in this
    // one task, so a plain borrow does.
    let negotiated = AtomicU16::new(0);
    let ctx = Pump {
        eavesdrop: &eavesdrop,
        conn,
        kind,
        negotiated: &negotiated,
        send_timeout,
    };
    let up = ctx.run(client_read, server_write, Dir::ClientToServer);
    let down = ctx.run(server_read, client_write, Dir::ServerToClient);
    tokio::pin!(up, down);
    // A stalled side ends the connection at once: its peer is not reading, so nothing the
    // other direction still carries would reach anybody.
    tokio::select! {
        end = &mut up => if end == End::Closed { let _ = tokio::time::timeout(LINGER, down).await; },
        end = &mut down => if end == End::Closed { let _ = tokio::time::timeout(LINGER, up).await; },
    }
}

/// How one direction of a relay connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Its source closed (or failed): the other direction may still finish.
    Closed,
    /// A write made no progress for the send timeout.
    Stalled,
}

struct Pump<'a> {
    eavesdrop: &'a Eavesdrop,
    conn: u64,
    kind: RelayKind,
    negotiated: &'a AtomicU16,
    send_timeout: Duration,
}

impl Pump<'_> {
    /// Writes `bytes`, failing when the reader takes none of them for the send timeout.
    async fn send(&self, to: &mut OwnedWriteHalf, mut bytes: &[u8]) -> Result<(), End> {
        while !bytes.is_empty() {
            match tokio::time::timeout(self.send_timeout, to.write(bytes)).await {
                Ok(Ok(0) | Err(_)) => return Err(End::Closed),
                Ok(Ok(n)) => bytes = &bytes[n..],
                Err(_) => {
                    tracing::info!(kind = ?self.kind, conn = self.conn, "eavesdrop relay: a side stopped reading; connection reset");
                    // Reset, not close: a closed socket with unread data queued becomes the
                    // kernel's orphan, still holding its send buffer (megabytes) while it
                    // probes a zero window; a reset discards it, as the main listeners do.
                    let _ = socket2::SockRef::from(to.as_ref()).set_linger(Some(Duration::ZERO));
                    return Err(End::Stalled);
                }
            }
        }
        Ok(())
    }

    async fn run(&self, mut from: OwnedReadHalf, mut to: OwnedWriteHalf, dir: Dir) -> End {
        let mut side = Side::new(self.kind, dir);
        let mut buf = vec![0u8; READ_BUFFER];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut seen = Vec::new();
            let chunk = &mut buf[..n];
            let replaced = side.pass(chunk, self.eavesdrop.tamper(), self.negotiated, &mut seen);
            self.eavesdrop.record(self.conn, self.kind, dir, seen);
            let out: &[u8] = replaced.as_deref().unwrap_or(chunk);
            match self.send(&mut to, out).await {
                Ok(()) => {}
                Err(End::Stalled) => return End::Stalled,
                Err(End::Closed) => break,
            }
        }
        let mut seen = Vec::new();
        let held = side.finish(&mut seen);
        self.eavesdrop.record(self.conn, self.kind, dir, seen);
        if self.send(&mut to, &held).await == Err(End::Stalled) {
            return End::Stalled;
        }
        // Half-close: the other side learns this direction is over, the other may go on.
        let _ = tokio::time::timeout(self.send_timeout, to.shutdown()).await;
        End::Closed
    }
}
