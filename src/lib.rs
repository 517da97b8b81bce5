//! # clickgame
//!
//! One multiplayer Click Game, four transports: AJAX polling, long polling, Server-Sent Events
//! and WebSockets, behind one game core. Read in this order:
//!
//! * [`game`] — the rules. No I/O, no runtime; tested alone.
//! * [`log`] — the event log: events serialised once ([`log::WireEvent`]), the ring buffer,
//!   `now_ms`. A leaf: `metrics`, `persist` and `hub` build on it.
//! * [`hub`] — the only thing transports talk to: runs commands on the game, numbers events,
//!   appends them to the log, wakes waiting connections (through the [`bell`]).
//! * [`bell`] — how one event wakes thousands of waiting connections: one wake per worker.
//! * [`protocol`] — the wire types every transport shares (`docs/protocol.md`).
//! * [`transport`] — the four transports of one shape, each opening through one
//!   [`Connection`](transport::Connection); the HTTP commands and the one `apply_click`.
//! * [`lecturer`] — `/api/stats`, `/metrics`, `/api/time` and the admin-token controls.
//! * [`metrics`] — per-transport counters and delivery-lag histograms (`/api/stats`, `/metrics`).
//! * [`session`] — tokens, cookies and the `Player` extractors.
//! * [`tickets`] — one-time `?ticket=`s for connections that cannot send a header.
//! * [`secret`] — random secrets as hex, compared in constant time.
//! * [`security`] — Origin checks, security headers, click rate limits; counting refusals.
//! * [`refusal`] — every refusal named by the defence that made it (`/metrics`, the lab's log).
//! * [`lab`] — `--lab`: switch each defence off and on, an attacker's site, the defence log.
//! * [`limits`] — how many sockets and streams a client may hold, and the deadlines on them.
//! * [`listener`] — from `accept` to the app: every connection counted, TLS and HTTP/2 by ALPN.
//! * [`tls`] — certificates and the openssl acceptor for HTTPS/WSS.
//! * [`ca`] — `make ca`: a local, name-constrained CA that signs the certificate.
//! * [`lan`] — `--lan`: the names students' phones reach this machine by.
//! * [`classroom`] — the join card (`/api/join-info`, the QR code) and the start-up banner.
//! * [`tls_info`] — `GET /api/tls`: this connection's handshake and the certificate's anatomy.
//! * [`eavesdrop`] — `--eavesdrop`: relays that show what an attacker on the wire sees.
//! * [`error`] — the one mapping from failures to HTTP statuses and JSON bodies.
//! * [`persist`] — the game saved on shutdown and restored on start.
//! * [`commands`] — what a client asks of the game, run here or forwarded to the node that
//!   runs it.
//! * [`cluster`] — several nodes, one game, through Redis (issue 16): lease, log, forwarding.
//! * [`clustered`] — a cluster node's loops between the hub and Redis.
//! * [`forwarded`] — the client's address behind a trusted reverse proxy.
//! * [`config`] — flags and environment variables, and every default.
//! * [`server`] — builds the app, binds, runs.

// Nothing a client sends may panic the server: no unwrap/expect outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod bell;
pub mod ca;
pub mod classroom;
pub mod cluster;
pub mod clustered;
pub mod commands;
pub mod config;
pub mod eavesdrop;
pub mod error;
pub mod forwarded;
pub mod game;
pub mod hub;
pub mod lab;
pub mod lan;
pub mod lecturer;
pub mod limits;
pub mod listener;
pub mod log;
pub mod metrics;
pub mod persist;
pub mod protocol;
pub mod refusal;
pub mod secret;
pub mod security;
pub mod server;
pub mod session;
pub mod tickets;
pub mod tls;
pub mod tls_info;
pub mod transport;
