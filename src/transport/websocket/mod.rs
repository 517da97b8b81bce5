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
//! | (after any close the server starts) | it waits up to `CLOSE_WAIT` (1 s, `socket.rs`) for the client's close, then closes the TCP connection first (RFC 6455 §7.1.1) |
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
use crate::cluster::IdemKey;
use crate::commands::Commands;
use crate::error::{to_json, ApiError};
use crate::forwarded::client_addr;
use crate::game::{Click, PlayerId, Transport};
use crate::lab::{self, Defence, Lab, LIFTED_WS_MAX_MESSAGE};
use crate::limits::disarm_body_deadline;
use crate::log::WireEvent;
use crate::protocol::{
    decode_client_message, ClickReply, ClientMessage, ErrorReply, WS_SUBPROTOCOL,
};
use crate::refusal::{Refusal, Rule};
use crate::secret::{hex, random_bytes};
use crate::security::{self, ConnLimiter, ConnSlot};
use crate::session::MaybePlayer;
use crate::transport::command::{apply_click, click_identity};
use crate::transport::{method_not_allowed, Connection, ResumePoint};
use frames::{close, guard_frames};
use socket::{Mode, News, Socket, Step};

/// Largest text message the game accepts; game messages are under 100 bytes.
pub const WS_MAX_MESSAGE: usize = 4096;
/// Bad or rate-limited messages tolerated on one socket before it is closed with 1008.
pub const WS_MAX_STRIKES: u32 = 10;
/// The description of the close after [`WS_MAX_STRIKES`] (how the defence log recognises it).
const TOO_MANY_STRIKES: &str = "too many bad messages";
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

/// The sub-protocols the client offered in `Sec-WebSocket-Protocol`, in its order.
fn offered_subprotocols(req: &HttpRequest) -> Vec<&str> {
    req.headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

async fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    commands: web::Data<Commands>,
    player: MaybePlayer,
) -> Result<HttpResponse, ApiError> {
    let start = ResumePoint::from_query(&req)?;
    let lab = req
        .app_data::<web::Data<Lab>>()
        .map(|l| l.get_ref().clone());
    let offered = offered_subprotocols(&req);
    // What we agree to speak: ours. The lab's naive server (`subprotocol` off) takes whatever
    // the client offers — or nothing — and echoes the first offer, so a browser accepts it.
    let inspect = lab::defence_on(req.app_data::<web::Data<Lab>>(), Defence::Subprotocol);
    let speak: Vec<&str> = if inspect {
        vec![WS_SUBPROTOCOL]
    } else {
        offered.clone()
    };
    if inspect && !offered.contains(&WS_SUBPROTOCOL) {
        return Err(ApiError::bad_request(
            "subprotocol_required",
            format!("offer the WebSocket sub-protocol {WS_SUBPROTOCOL:?}"),
        ));
    }
    let admitted = Connection::admit(&req, Transport::Websocket)?;
    check_handshake(&req)?;
    // From here the request "body" is the socket's frames, which never end.
    disarm_body_deadline(&req);
    // With the lab, the frame guard holds the limit (4 KiB, or the lifted ceiling while `input`
    // is off); the socket's own decoder only has to allow the largest the guard lets through.
    let codec_max = if lab.is_some() {
        LIFTED_WS_MAX_MESSAGE
    } else {
        WS_MAX_MESSAGE
    };
    let payload = guard_frames(body, WS_MAX_MESSAGE, lab.clone());
    // The first protocol the client offered that we speak (none: no header in the answer).
    let protocol = offered.iter().copied().find(|p| speak.contains(p));
    let protocol = protocol.map(str::to_owned);
    // Accepted (the 101 is ready): only now is a `?ticket=` spent.
    let conn = admitted.start(player).await?;
    // Streaming starts at once if the URL says where from, otherwise at the first `resume`.
    let resume = (start.since.is_some() || start.epoch.is_some()).then_some(start);
    let heartbeat = req
        .app_data::<web::Data<Heartbeat>>()
        .map(|h| *h.get_ref())
        .unwrap_or_default();
    let game = GameSocket {
        bell: conn.hub().subscribe(),
        greeting: conn.hub().node().map(|n| node_greeting(n.id().as_str())),
        conn,
        commands,
        nonce: hex(&random_bytes::<6>()),
        resume,
        dirty: true,
        delayed: None,
        strikes: 0,
        lab,
        origin: security::origin_of(req.headers()),
        peer: req.peer_addr(),
    };
    let socket = Socket::new(game, payload, heartbeat, codec_max);
    switch(&req, protocol.as_deref(), socket)
}

async fn upgrade_echo(
    req: HttpRequest,
    body: web::Payload,
    conns: web::Data<ConnLimiter>,
) -> Result<HttpResponse, ApiError> {
    let slot = conns.acquire(client_addr(&req).map(|ip| std::net::SocketAddr::new(ip, 0)))?;
    check_handshake(&req)?;
    disarm_body_deadline(&req);
    tracing::info!(peer = ?req.peer_addr(), "echo socket opened");
    let echo = EchoSocket { _slot: slot };
    let socket = Socket::new(
        echo,
        guard_frames(body, WS_ECHO_MAX_MESSAGE, None),
        Heartbeat::default(),
        WS_ECHO_MAX_MESSAGE,
    );
    switch(&req, None, socket)
}

/// The `101 Switching Protocols` answer to a valid handshake, with `body` as the socket.
fn switch(
    req: &HttpRequest,
    protocol: Option<&str>,
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

/// Events held back by the lecturer's simulated delay, and when they may go.
type Delayed = (Vec<Arc<WireEvent>>, Pin<Box<tokio::time::Sleep>>);

/// A game socket: events down from the client's resume point, clicks and resumes up.
struct GameSocket {
    /// The bookkeeping every transport shares: slot, figures, the player's stream, log lines.
    conn: Connection,
    commands: web::Data<Commands>,
    /// Random per socket: a click's idempotency key is `<player>:ws:<nonce>:<id>`, so that in a
    /// cluster a click the socket repeats with the same `id` runs once, and ids that restart
    /// at 1 on another socket (a reloaded page) are other clicks.
    nonce: String,
    /// In a cluster: `{"type":"node","node":"a"}`, sent first, so a page can show which node
    /// it is connected to (a WebSocket cannot read response headers).
    greeting: Option<String>,
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
    /// With `--lab`: its switches, and its defence log.
    lab: Option<Lab>,
    /// For the defence log: who opened the socket.
    origin: Option<String>,
    peer: Option<std::net::SocketAddr>,
}

impl GameSocket {
    /// Counts (and with `--lab` logs) a refusal on this socket, if it is a defence's.
    fn refused(&self, error: &'static str, code: u16, detail: &str) {
        let Some(rule) = Rule::of_error(error) else {
            return;
        };
        security::record_refusal(
            Some(self.conn.hub()),
            self.lab.as_ref(),
            Refusal {
                rule,
                code,
                error,
                detail: format!("WebSocket: {detail}"),
                origin: self.origin.clone(),
                peer: self.peer,
            },
        );
    }

    /// An `error` reply to `id`, noted in the defence log if a defence refused.
    fn error_reply(&self, id: Option<i64>, err: &ApiError) -> String {
        self.refused(err.code, err.status.as_u16(), &err.detail);
        error_reply(id, err)
    }

    /// A click message: the same [`apply_click`] as `POST /api/click`, answered in-band.
    async fn click(
        &mut self,
        id: Option<i64>,
        click: Click,
        claimed: Option<PlayerId>,
    ) -> Result<String, ApiError> {
        let auth_on = self.lab.as_ref().is_none_or(|l| l.is_on(Defence::Auth));
        let player = match click_identity(self.conn.player(), claimed, auth_on) {
            Ok(player) => player,
            // A spectator's click, or one claiming to be somebody else: an answer, not a strike.
            Err(e) => return Ok(self.error_reply(id, &e)),
        };
        let key = id.and_then(|id| IdemKey::new(format!("{player}:ws:{}:{id}", self.nonce)).ok());
        let clicked = apply_click(
            &self.commands,
            player,
            Some(Transport::Websocket),
            click,
            key,
        );
        match clicked.await {
            Ok(outcome) => {
                let reply = ClickReply {
                    kind: "click_result",
                    id,
                    outcome,
                };
                Ok(to_json(&reply, "a click reply").unwrap_or_else(|e| error_reply(id, &e)))
            }
            // A rule refusal (late round, off the board) is a fair answer, not abuse.
            Err(e) if e.code != "rate_limited" => Ok(self.error_reply(id, &e)),
            Err(e) => Err(e),
        }
    }
}

impl Mode for GameSocket {
    async fn on_text(&mut self, text: &str) -> Step {
        let (id, err) = match decode_client_message(text) {
            Ok(ClientMessage::Resume { since, epoch }) => {
                self.resume = Some(ResumePoint::new(since, epoch));
                self.dirty = true;
                return Step::Continue;
            }
            Ok(ClientMessage::Click {
                id,
                round,
                x,
                y,
                player,
            }) => match self.click(id, Click { round, x, y }, player).await {
                Ok(reply) => return Step::Send(reply),
                Err(e) => (id, e),
            },
            Err(detail) => (None, ApiError::bad_request("bad_message", detail)),
        };
        self.strikes += 1;
        if self.strikes >= WS_MAX_STRIKES {
            self.refused(err.code, err.status.as_u16(), &err.detail);
            return Step::Close(close(CloseCode::Policy, TOO_MANY_STRIKES));
        }
        Step::Send(self.error_reply(id, &err))
    }

    async fn on_binary(&mut self, bytes: Bytes) -> Step {
        // The lab's naive server (`input` off) reads a binary frame as if it were text.
        let naive = self.lab.as_ref().is_some_and(|l| !l.is_on(Defence::Input));
        if let (true, Ok(text)) = (naive, std::str::from_utf8(&bytes)) {
            return self.on_text(text).await;
        }
        Step::Close(close(
            CloseCode::Unsupported,
            "binary messages are not part of clickgame.v1",
        ))
    }

    fn greeting(&mut self) -> Option<String> {
        self.greeting.take()
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
        // Our own closes carry a description (the client's, echoed back, do not): those that
        // refuse what the client sent go into the defence log.
        if let Some((code, description)) =
            reason.and_then(|r| Some((u16::from(r.code), r.description.as_deref()?)))
        {
            let error = match code {
                1009 => Some("message_too_big"),
                1003 => Some("unsupported_data"),
                1007 => Some("invalid_payload"),
                1002 => Some("protocol_error"),
                1008 if description == TOO_MANY_STRIKES => Some("too_many_bad_messages"),
                _ => None,
            };
            if let Some(error) = error {
                self.refused(error, code, &format!("closed {code}: {description}"));
            }
        }
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
    async fn on_text(&mut self, text: &str) -> Step {
        Step::Send(text.to_string())
    }

    async fn on_binary(&mut self, bytes: Bytes) -> Step {
        Step::SendBinary(bytes)
    }

    fn poll_news(&mut self, _: &mut Context<'_>) -> Poll<News> {
        Poll::Pending
    }

    fn closing(&mut self, reason: Option<&CloseReason>) {
        tracing::info!(close = ?reason.map(|r| r.code), "echo socket closed");
    }
}

/// The first message of a game socket in a cluster: which node this is.
fn node_greeting(node: &str) -> String {
    serde_json::json!({"type": "node", "node": node}).to_string()
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
