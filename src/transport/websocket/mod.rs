//! # WebSocket
//!
//! `GET /api/ws` with `Upgrade: websocket` and the sub-protocol `clickgame.v1` turns the HTTP
//! connection into a full-duplex message pipe: events go down as text frames the moment they
//! happen, and clicks come up in-band on the same socket — no request per event, no headers per
//! message, no second connection. The price: a protocol of its own (framing, ping/pong, close
//! codes), and the server keeps per-socket state.
//!
//! Three files, one concern each:
//!
//! * `frames.rs` — RFC 6455 alone: the size guard ([`FrameSizeGuard`](frames::FrameSizeGuard))
//!   and which close code a broken frame gets. Knows nothing of the game.
//! * `socket.rs` — the socket itself, as the body of the `101` response: decodes the client's
//!   frames, answers them through the mode, pings, notices silence, closes by RFC 6455 §7, and
//!   writes the mode's news — for the game, each event's frame straight from the log.
//! * this file — the handlers, the constants, and the two things a socket can serve, each a
//!   type of its own: `GameSocket` (events down, clicks and resumes up) and `EchoSocket`.
//!
//! Everything a client sends is checked, and protocol violations end with the close code
//! RFC 6455 assigns:
//!
//! | what the client did | answer |
//! |---|---|
//! | handshake without sub-protocol `clickgame.v1` | `400 subprotocol_required`, no upgrade |
//! | foreign `Origin` (see `security.rs`) | `403 origin_not_allowed`, no upgrade |
//! | a text message over [`WS_MAX_MESSAGE`] bytes | close `1009` (message too big), as soon as a frame header announces it ([`FrameSizeGuard`](frames::FrameSizeGuard)) |
//! | a frame RFC 6455 forbids (unmasked, reserved bits or opcode, bad close payload, ...) | close `1002` (protocol error) |
//! | a binary message | close `1003` (unsupported data) |
//! | text that is not valid UTF-8 | close `1007` (invalid payload), as soon as the bytes that break it arrive (even mid-frame) |
//! | bad JSON or an unknown `type` | an `{"type":"error"}` reply; the [`WS_MAX_STRIKES`]th: close `1008` |
//! | clicks over the rate limit | an `error` reply `rate_limited` (a strike, so close `1008` if it goes on) |
//! | silence (not even a pong) for `--ws-timeout-ms` ([45 s](crate::config::DEFAULT_WS_TIMEOUT_MS)) | close `1008`, at that moment (not at the next ping) |
//! | not reading: nothing we send (event, reply, pong, ping) makes progress for `--ws-send-timeout-ms` ([10 s](crate::config::DEFAULT_WS_SEND_TIMEOUT_MS)) | the TCP connection is reset (`listener.rs`: a close frame could not reach a client that reads nothing) |
//! | (the server stops) | close `1001` (going away) |
//! | (a lecturer drops all connections) | close `1012` (service restart): reconnect and resume |
//! | (after any close the server starts) | it waits up to [`CLOSE_WAIT`](socket::CLOSE_WAIT) for the client's close, then closes the TCP connection first (RFC 6455 §7.1.1) |
//!
//! | a presented but invalid ticket or `Authorization` header | `401 unauthorized`, no upgrade (`session.rs`) |
//!
//! With `--ws-echo-path`, the same loop serves an echo endpoint for the Autobahn conformance
//! suite: same framing, UTF-8 checks and close codes, but it echoes instead of playing.

pub mod frames;
mod socket;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_http::ws::{CloseCode, CloseReason};
use actix_web::body::MessageBody;
use actix_web::{http::header, web, web::Bytes, HttpRequest, HttpResponse};

use crate::bell::Subscription;
use crate::error::{to_json, ApiError};
use crate::game::{Click, Transport};
use crate::limits::disarm_body_deadline;
use crate::log::WireEvent;
use crate::protocol::{
    decode_client_message, ClickReply, ClientMessage, ErrorReply, WS_SUBPROTOCOL,
};
use crate::security::{ConnLimiter, ConnSlot, RateLimiter};
use crate::session::MaybePlayer;
use crate::transport::command::apply_click;
use crate::transport::{method_not_allowed, Connection, ResumePoint};
use frames::{close, guard_frames};
use socket::{Mode, News, Socket, Step};

/// Largest text message the game accepts; game messages are under 100 bytes.
pub const WS_MAX_MESSAGE: usize = 4096;
/// Bad or rate-limited messages tolerated on one socket before it is closed with 1008.
pub const WS_MAX_STRIKES: u32 = 10;
/// Largest message on the echo endpoint (Autobahn sends up to 16 MiB in the cases we run).
pub const WS_ECHO_MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// A socket's timings (`--ws-ping-interval-ms`, `--ws-timeout-ms`, `--ws-send-timeout-ms`; the
/// defaults are in `config.rs`); tests shorten them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// The server pings this often...
    pub interval: Duration,
    /// ...and closes a socket it has heard nothing from (not even a pong) for this long.
    pub timeout: Duration,
    /// How long one frame (event, reply, pong, ping, the close) may wait for a client that
    /// does not read before the socket is closed.
    pub send_timeout: Duration,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/ws")
            .route(web::get().to(upgrade))
            .default_service(method_not_allowed("GET")),
    );
}

/// Mounts the Autobahn echo endpoint at `path` (only with `--ws-echo-path`). Test-only, but a
/// socket all the same: a page of another origin may not open it either.
pub fn configure_echo(cfg: &mut web::ServiceConfig, path: &str) {
    cfg.service(
        web::resource(path)
            .wrap(actix_web::middleware::from_fn(
                crate::security::origin_check,
            ))
            .route(web::get().to(upgrade_echo)),
    );
}

/// True when the client offered our sub-protocol among those in `Sec-WebSocket-Protocol`.
fn offers_subprotocol(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == WS_SUBPROTOCOL)
}

/// The `101 Switching Protocols` answer to a valid handshake, with `body` as the socket.
fn switch(
    req: &HttpRequest,
    protocol: Option<&'static str>,
    body: impl MessageBody + 'static,
) -> Result<HttpResponse, ApiError> {
    let mut response = actix_http::ws::handshake(req.head())
        .map_err(|e| ApiError::bad_request("bad_handshake", e.to_string()))?;
    if let Some(protocol) = protocol {
        response.insert_header((header::SEC_WEBSOCKET_PROTOCOL, protocol));
    }
    let response = response
        .message_body(body)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(HttpResponse::from(response.map_into_boxed_body()))
}

/// Checks the handshake without answering it: the `101` is built once nothing else can
/// refuse the request.
fn check_handshake(req: &HttpRequest) -> Result<(), ApiError> {
    actix_http::ws::verify_handshake(req.head())
        .map_err(|e| ApiError::bad_request("bad_handshake", e.to_string()))
}

async fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    limiter: web::Data<RateLimiter>,
    player: MaybePlayer,
) -> Result<HttpResponse, ApiError> {
    let start = ResumePoint::from_query(&req)?;
    if !offers_subprotocol(&req) {
        return Err(ApiError::bad_request(
            "subprotocol_required",
            format!("offer the WebSocket sub-protocol {WS_SUBPROTOCOL:?}"),
        ));
    }
    let admitted = Connection::admit(&req, Transport::Websocket)?;
    check_handshake(&req)?;
    // From here the request "body" is the socket's frames, which never end.
    disarm_body_deadline(&req);
    // Accepted: only now is a `?ticket=` spent.
    let conn = admitted.start(player)?;
    // Streaming starts at once if the URL says where from, otherwise at the first `resume`.
    let resume = (start.since.is_some() || start.epoch.is_some()).then_some(start);
    let heartbeat = req
        .app_data::<web::Data<Heartbeat>>()
        .map(|h| *h.get_ref())
        .unwrap_or_default();
    let game = GameSocket {
        bell: conn.hub().subscribe(),
        conn,
        limiter,
        resume,
        dirty: true,
        delayed: None,
        strikes: 0,
    };
    let socket = Socket::new(
        game,
        guard_frames(body, WS_MAX_MESSAGE),
        heartbeat,
        WS_MAX_MESSAGE,
    );
    switch(&req, Some(WS_SUBPROTOCOL), socket)
}

async fn upgrade_echo(
    req: HttpRequest,
    body: web::Payload,
    conns: web::Data<ConnLimiter>,
) -> Result<HttpResponse, ApiError> {
    let slot = conns.acquire(req.peer_addr())?;
    check_handshake(&req)?;
    disarm_body_deadline(&req);
    tracing::info!(peer = ?req.peer_addr(), "echo socket opened");
    let echo = EchoSocket { _slot: slot };
    let socket = Socket::new(
        echo,
        guard_frames(body, WS_ECHO_MAX_MESSAGE),
        Heartbeat::default(),
        WS_ECHO_MAX_MESSAGE,
    );
    switch(&req, None, socket)
}

/// Events held back by the lecturer's simulated delay, and when they may go.
type Delayed = (Vec<Arc<WireEvent>>, Pin<Box<tokio::time::Sleep>>);

/// A game socket: events down from the client's resume point, clicks and resumes up.
struct GameSocket {
    /// The bookkeeping every transport shares: slot, figures, the player's stream, log lines.
    conn: Connection,
    limiter: web::Data<RateLimiter>,
    /// `None` until the client says where it is.
    resume: Option<ResumePoint>,
    /// Rings when the log grows, or when the lecturer drops all connections or the server
    /// stops.
    bell: Subscription,
    /// The log may hold events this socket has not sent (set by the bell and by a `resume`).
    dirty: bool,
    /// Events held back by the lecturer's simulated delay, and when they may go.
    delayed: Option<Delayed>,
    /// Bad or rate-limited messages so far.
    strikes: u32,
}

impl GameSocket {
    /// A click message: the same [`apply_click`] as `POST /api/click`, answered in-band.
    fn click(&mut self, id: Option<i64>, click: Click) -> Result<String, ApiError> {
        let Some(player) = self.conn.player() else {
            // A spectator's click: a fair answer, not abuse.
            return Ok(error_reply(id, &ApiError::unauthorized()));
        };
        let hub = self.conn.hub();
        match apply_click(
            hub,
            &self.limiter,
            player,
            Some(Transport::Websocket),
            click,
        ) {
            Ok(outcome) => {
                let reply = ClickReply {
                    kind: "click_result",
                    id,
                    outcome,
                };
                Ok(to_json(&reply, "a click reply").unwrap_or_else(|e| error_reply(id, &e)))
            }
            // A rule refusal (late round, off the board) is a fair answer, not abuse.
            Err(e) if e.code != "rate_limited" => Ok(error_reply(id, &e)),
            Err(e) => Err(e),
        }
    }
}

impl Mode for GameSocket {
    fn on_text(&mut self, text: &str) -> Step {
        let (id, err) = match decode_client_message(text) {
            Ok(ClientMessage::Resume { since, epoch }) => {
                self.resume = Some(ResumePoint::new(since, epoch));
                self.dirty = true;
                return Step::Continue;
            }
            Ok(ClientMessage::Click { id, round, x, y }) => {
                match self.click(id, Click { round, x, y }) {
                    Ok(reply) => return Step::Send(reply),
                    Err(e) => (id, e),
                }
            }
            Err(detail) => (None, ApiError::bad_request("bad_message", detail)),
        };
        self.strikes += 1;
        if self.strikes >= WS_MAX_STRIKES {
            return Step::Close(close(CloseCode::Policy, "too many bad messages"));
        }
        Step::Send(error_reply(id, &err))
    }

    fn on_binary(&mut self, _: Bytes) -> Step {
        Step::Close(close(
            CloseCode::Unsupported,
            "binary messages are not part of clickgame.v1",
        ))
    }

    /// The events after the client's resume point once the log has grown, or the lecturer's
    /// or the shutdown's close.
    fn poll_news(&mut self, cx: &mut Context<'_>) -> Poll<News> {
        if let Some((_, wait)) = self.delayed.as_mut() {
            if wait.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if let Some((events, _)) = self.delayed.take() {
                return Poll::Ready(News::Events(self.hand_over(events)));
            }
        }
        // Until it says `Pending` (and so will wake this task for the next event).
        while let Poll::Ready(rang) = self.bell.poll_rang(cx) {
            if rang.control {
                return Poll::Ready(News::Close(if self.conn.hub().control().shutting_down {
                    close(CloseCode::Away, "server shutting down")
                } else {
                    close(
                        CloseCode::Restart,
                        "dropped by the server; reconnect and resume",
                    )
                }));
            }
            self.dirty |= rang.news;
        }
        let Some(point) = self.resume.as_mut().filter(|_| self.dirty) else {
            return Poll::Pending;
        };
        self.dirty = false;
        let hub = self.conn.hub();
        let batch = point.catch_up_bounded(hub);
        if batch.events.is_empty() {
            return Poll::Pending;
        }
        point.advance(hub, batch.last_seq);
        let delay = hub.delay(Transport::Websocket);
        if !delay.is_zero() {
            self.delayed = Some((batch.events, Box::pin(tokio::time::sleep(delay))));
            return self.poll_news(cx);
        }
        Poll::Ready(News::Events(self.hand_over(batch.events)))
    }

    fn closing(&mut self, reason: Option<&CloseReason>) {
        let code = reason.map_or_else(
            || "none, connection lost".to_string(),
            |r| u16::from(r.code).to_string(),
        );
        self.conn.ended(format!("close {code}"));
    }
}

impl GameSocket {
    /// Reports `events` as delivered: from here they are the socket's to write.
    fn hand_over(&mut self, events: Vec<Arc<WireEvent>>) -> Vec<Arc<WireEvent>> {
        let bytes = events.iter().map(|e| e.json.len()).sum();
        self.conn.delivered(&events, bytes);
        events
    }
}

/// Autobahn's echo: every text and binary message back as it came. Holds a stream slot like
/// any socket, and nothing of the game.
struct EchoSocket {
    _slot: ConnSlot,
}

impl Mode for EchoSocket {
    fn on_text(&mut self, text: &str) -> Step {
        Step::Send(text.to_string())
    }

    fn on_binary(&mut self, bytes: Bytes) -> Step {
        Step::SendBinary(bytes)
    }

    fn poll_news(&mut self, _: &mut Context<'_>) -> Poll<News> {
        Poll::Pending
    }

    fn closing(&mut self, reason: Option<&CloseReason>) {
        tracing::info!(close = ?reason.map(|r| r.code), "echo socket closed");
    }
}

fn error_reply(id: Option<i64>, err: &ApiError) -> String {
    let reply = ErrorReply {
        kind: "error",
        id,
        error: err.code,
        detail: &err.detail,
    };
    to_json(&reply, "an error reply").unwrap_or_else(|_| {
        let id = id.map_or_else(|| "null".to_string(), |id| id.to_string());
        format!(r#"{{"type":"error","id":{id},"error":"internal","detail":"(not encoded)"}}"#)
    })
}
