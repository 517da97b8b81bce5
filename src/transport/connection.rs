//! # One connection, from open to close, the same on every transport
//!
//! Every downstream request — an AJAX poll, a parked long poll, an SSE stream, a WebSocket —
//! is opened through this file, in two steps, and closes by being dropped:
//!
//! 1. [`Connection::admit`] takes what the connection will hold while the handler still checks
//!    the request: a long-lived one takes one of its client's stream slots (`429` / `503` when
//!    none is free, see `limits.rs`); a poll takes nothing.
//! 2. [`Admitted::start`] is called once nothing can refuse the request any more: it spends the
//!    request's one-time ticket, counts the request, counts the connection as open, tells the
//!    hub that the player is connected (so they cannot go idle while it is open), and logs
//!    "connection opened".
//! 3. Dropping the [`Connection`] undoes all of it and logs "connection closed", however the
//!    connection ended (finished, failed, the client went away, the server stopped).
//!
//! In between, a transport reports what it wrote through one method, [`Connection::delivered`]:
//! the figures per transport hang off it, and it is the place that knows *which player's*
//! transport was handed *which* events *when*: a batch carrying the live round's
//! `round_started` is reported to the hub, and the player's reaction time counts from there.
//!
//! What crosses the wire is counted below all of this, at the socket (`listener.rs`): on
//! HTTP/1.1, [`Admitted::start`] points the connection's byte counter at its transport's figure,
//! so the response head, the body, chunked framing, WebSocket frame headers and TLS records all
//! count. HTTP/2 multiplexes every transport over one connection, so there the figure is an
//! estimate built from the payload ([`H2_FRAME_HEADER`] per frame).
//!
//! The type is bookkeeping only: how bytes reach the socket (a response body, an SSE stream, a
//! WebSocket's frames) stays each transport's own, and may be rebuilt without touching this.
//! The shape follows centrifuge's `NewClient` plus a deferred close, shared by every transport
//! handler; the road not taken, each transport holding its own slot, guard and log lines, had
//! written the same bookkeeping three ways.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use actix_web::{http::Version, web, HttpRequest};

use crate::error::ApiError;
use crate::forwarded::client_addr;
use crate::game::{PlayerId, Transport, ROUND_STARTED};
use crate::hub::{Hub, StreamGuard, SNAPSHOT};
use crate::listener::ConnHandle;
use crate::log::WireEvent;
use crate::metrics::OpenConnection;
use crate::security::{ConnLimiter, ConnSlot};
use crate::session::MaybePlayer;

/// How long a transport's connection stays open, which decides what it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Answered at once (an AJAX poll): no stream slot, not counted as open; the player's
    /// contact is refreshed. Logged at debug level (one a second per client).
    Answer,
    /// Held until there is news (a long poll): a slot, counted as open while parked. Logged at
    /// debug level (one per delivery).
    Parked,
    /// Open until it ends (SSE, WebSocket): a slot, counted as open. Logged at info level.
    Stream,
}

impl Hold {
    /// The table to extend for a fifth transport.
    pub fn of(transport: Transport) -> Hold {
        match transport {
            Transport::Ajax => Hold::Answer,
            Transport::Longpoll => Hold::Parked,
            Transport::Sse | Transport::Websocket => Hold::Stream,
        }
    }
}

/// An HTTP/2 frame header (RFC 9113 §4.1): what each HEADERS or DATA frame adds to its payload.
pub const H2_FRAME_HEADER: u64 = 9;

/// How the bytes a connection puts on the wire are counted.
enum Wire {
    /// HTTP/1.1 (and the WebSocket it upgrades to): at the socket, exactly.
    Socket(ConnHandle),
    /// HTTP/2: estimated from the payload, one frame header per chunk.
    Estimated,
    /// No socket to count at (an app served without `listener.rs`, as in some unit tests).
    Uncounted,
}

/// A connection the limits let in, not yet started: the handler may still refuse it.
#[must_use = "call start() once nothing can refuse the request"]
pub struct Admitted {
    hub: Hub,
    transport: Transport,
    peer: Option<SocketAddr>,
    slot: Option<ConnSlot>,
    wire: Wire,
}

/// One open connection of a transport: what it holds, who it serves, what it delivered.
pub struct Connection {
    hub: Hub,
    transport: Transport,
    hold: Hold,
    player: Option<PlayerId>,
    peer: Option<SocketAddr>,
    opened: Instant,
    events: u64,
    bytes: u64,
    /// Served over HTTP/2: every delivery adds an estimate of its frame to the wire bytes.
    estimate_wire: bool,
    /// How it ended, when the transport knows (a WebSocket's close code); for the close line.
    end: Option<String>,
    _stream: Option<StreamGuard>,
    _open: Option<OpenConnection>,
    _slot: Option<ConnSlot>,
}

impl Connection {
    /// Step 1: a connection of `transport` for `req`, holding a stream slot if it stays open.
    /// The hub and the stream limiter are the app's (`server.rs` registers them).
    pub fn admit(req: &HttpRequest, transport: Transport) -> Result<Admitted, ApiError> {
        let hub = req
            .app_data::<web::Data<Hub>>()
            .ok_or_else(|| ApiError::internal("no hub in this app"))?
            .get_ref()
            .clone();
        let slot = match Hold::of(transport) {
            Hold::Answer => None,
            // Counted under the client's address, as a trusted proxy names it.
            Hold::Parked | Hold::Stream => Some(
                req.app_data::<web::Data<ConnLimiter>>()
                    .ok_or_else(|| ApiError::internal("no connection limiter in this app"))?
                    .acquire(client_addr(req).map(|ip| SocketAddr::new(ip, 0)))?,
            ),
        };
        let wire = match (req.version(), ConnHandle::of(req)) {
            (Version::HTTP_2, _) => Wire::Estimated,
            (_, Some(handle)) => Wire::Socket(handle),
            (_, None) => Wire::Uncounted,
        };
        Ok(Admitted {
            hub,
            transport,
            peer: req.peer_addr(),
            slot,
            wire,
        })
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// The player this connection serves; `None` for a spectator.
    pub fn player(&self) -> Option<PlayerId> {
        self.player
    }

    /// **Every transport reports what it wrote here**: `events` (none for a heartbeat or a
    /// poll that found nothing) as `bytes` bytes of payload (bodies and frame payloads as
    /// handed to actix; the socket counts the heads and framing around them). Call it once
    /// the bytes are handed to the connection: for a poll, when its answer is ready to go.
    ///
    /// It feeds the per-transport figures (events, payload bytes, delivery lag), and it tells
    /// the hub when the live round's `round_started` reached *this* player's transport — the
    /// moment their reaction time counts from. One pass over the batch's type tags decides
    /// that; the game's lock is taken only for a batch that holds a `round_started` or a
    /// snapshot (about once per round per connection), never for the ordinary event.
    pub fn delivered(&mut self, events: &[Arc<WireEvent>], bytes: usize) {
        self.events += events.len() as u64;
        self.bytes += bytes as u64;
        let metrics = self.hub.metrics();
        metrics.delivered(self.transport, events, bytes);
        if self.estimate_wire && bytes > 0 {
            metrics.wire_estimated(self.transport, bytes as u64 + H2_FRAME_HEADER);
        }
        if let Some(player) = self.player {
            if events
                .iter()
                .any(|e| e.kind == ROUND_STARTED || e.kind == SNAPSHOT)
            {
                self.hub.round_delivered(player, events, self.transport);
            }
        }
    }

    /// Waits for the lecturer's simulated network delay of this transport, if any.
    pub async fn simulate_delay(&self) {
        self.hub.simulate_delay(self.transport).await;
    }

    /// How the connection ended, for its close line (e.g. a WebSocket close code).
    pub fn ended(&mut self, how: impl Into<String>) {
        self.end = Some(how.into());
    }
}

impl Admitted {
    /// Step 2, once nothing can refuse the request: spends its ticket (`401` if another request
    /// spent it first), counts it, and marks the player connected.
    pub async fn start(self, viewer: MaybePlayer) -> Result<Connection, ApiError> {
        let player = viewer.commit().await?.0;
        let Admitted {
            hub,
            transport,
            peer,
            slot,
            wire,
        } = self;
        let hold = Hold::of(transport);
        hub.metrics().request(transport);
        // From here the socket's writes are this transport's: the response head, the body, the
        // frames. Over HTTP/2 the response's HEADERS frame is estimated by its frame header
        // (its HPACK block, a few bytes to a few dozen, is not known here).
        let estimate_wire = match wire {
            Wire::Socket(handle) => {
                handle.count_writes_into(hub.metrics().wire_meter(transport));
                false
            }
            Wire::Estimated => {
                hub.metrics().wire_estimated(transport, H2_FRAME_HEADER);
                true
            }
            Wire::Uncounted => false,
        };
        let (open, stream) = match hold {
            Hold::Answer => {
                if let Some(p) = player {
                    hub.contact(p, transport);
                }
                (None, None)
            }
            Hold::Parked | Hold::Stream => (
                Some(hub.metrics().open(transport)),
                player.and_then(|p| hub.open_stream(p, transport)),
            ),
        };
        let conn = Connection {
            hub,
            transport,
            hold,
            player,
            peer,
            opened: Instant::now(),
            events: 0,
            bytes: 0,
            estimate_wire,
            end: None,
            _stream: stream,
            _open: open,
            _slot: slot,
        };
        if hold == Hold::Stream {
            tracing::info!(transport = %transport, ?player, ?peer, "connection opened");
        } else {
            tracing::debug!(transport = %transport, ?player, ?peer, "connection opened");
        }
        Ok(conn)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let ms = self.opened.elapsed().as_millis() as u64;
        let (transport, player, peer, end) = (self.transport, self.player, self.peer, &self.end);
        let (events, bytes) = (self.events, self.bytes);
        if self.hold == Hold::Stream {
            tracing::info!(%transport, ?player, ?peer, ms, events, bytes, ?end, "connection closed");
        } else {
            tracing::debug!(%transport, ?player, ?peer, ms, events, bytes, ?end, "connection closed");
        }
    }
}
