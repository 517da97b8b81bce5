//! # clickgame
//!
//! One multiplayer Click Game, four transports: AJAX polling, long polling, Server-Sent Events
//! and WebSockets, behind one game core. Read in this order:
//!
//! * [`game`] — the rules. No I/O, no runtime; tested alone.
//! * [`hub`] — the only thing transports talk to: runs commands on the game, numbers events,
//!   keeps the ring buffer, wakes waiting connections.
//! * [`protocol`] — the wire types every transport shares (`docs/protocol.md`).
//! * [`transport`] — the four transports, one file each, plus the HTTP commands.
//! * [`lecturer`] — `/api/stats`, `/metrics`, `/api/time` and the admin-token controls.
//! * [`metrics`] — per-transport counters and delivery-lag histograms (`/api/stats`, `/metrics`).
//! * [`session`] — tokens, cookies and the `Player` extractors.
//! * [`security`] — Origin checks, security headers, click rate limits.
//! * [`limits`] — how many sockets and streams a client may hold, and the deadlines on them.
//! * [`listener`] — from `accept` to the app: every connection counted, TLS and HTTP/2 by ALPN.
//! * [`tls`] — certificates and the openssl acceptor for HTTPS/WSS.
//! * [`tls_info`] — `GET /api/tls`: this connection's handshake and the certificate's anatomy.
//! * [`eavesdrop`] — `--eavesdrop`: relays that show what an attacker on the wire sees.
//! * [`error`] — the one mapping from failures to HTTP statuses and JSON bodies.
//! * [`persist`] — the game saved on shutdown and restored on start.
//! * [`cluster`] — several nodes, one game, through Redis (issue 16; not wired in yet).
//! * [`forwarded`] — the client's address behind a trusted reverse proxy.
//! * [`config`] — flags and environment variables, with their defaults.
//! * [`server`] — builds the app, binds, runs.

// Nothing a client sends may panic the server: no unwrap/expect outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod cluster;
pub mod config;
pub mod eavesdrop;
pub mod error;
pub mod forwarded;
pub mod game;
pub mod hub;
pub mod lecturer;
pub mod limits;
pub mod listener;
pub mod metrics;
pub mod persist;
pub mod protocol;
pub mod security;
pub mod server;
pub mod session;
pub mod tls;
pub mod tls_info;
pub mod transport;
