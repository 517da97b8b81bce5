//! # WebSocket
//!
//! `GET /api/ws` with `Upgrade: websocket` and the sub-protocol `clickgame.v1` turns the HTTP
//! connection into a full-duplex message pipe: events go down as text frames the moment they
//! happen, and clicks come up in-band on the same socket — no request per event, no headers per
//! message, no second connection. The price: a protocol of its own (framing, ping/pong, close
//! codes), and the server keeps per-socket state.
//!
//! Each socket is one task running one `select!` loop over: frames from the client, new events
//! in the hub, and a heartbeat tick (the shape of actix/examples' actorless chat). Everything a
//! client sends is checked, and protocol violations end with the close code RFC 6455 assigns:
//!
//! | what the client did | answer |
//! |---|---|
//! | handshake without sub-protocol `clickgame.v1` | `400 subprotocol_required`, no upgrade |
//! | foreign `Origin` (see `security.rs`) | `403 origin_not_allowed`, no upgrade |
//! | a text message over [`WS_MAX_MESSAGE`] bytes | close `1009` (message too big), as soon as a frame header announces it ([`FrameSizeGuard`]) |
//! | a frame RFC 6455 forbids (unmasked, reserved bits or opcode, bad close payload, ...) | close `1002` (protocol error) |
//! | a binary message | close `1003` (unsupported data) |
//! | text that is not valid UTF-8 | close `1007` (invalid payload) |
//! | bad JSON or an unknown `type` | an `{"type":"error"}` reply; the [`WS_MAX_STRIKES`]th: close `1008` |
//! | clicks over the rate limit | an `error` reply `rate_limited` (a strike, so close `1008` if it goes on) |
//! | silence (not even a pong) for `--ws-timeout-ms` ([45 s](crate::config::DEFAULT_WS_TIMEOUT_MS)) | close `1008`, at that moment (not at the next ping) |
//! | not reading: any frame we send (event, reply, pong, ping) waits longer than `--ws-send-timeout-ms` ([10 s](crate::config::DEFAULT_WS_SEND_TIMEOUT_MS)) | close `1008`; one more send timeout later the TCP connection is reset |
//! | (the server stops) | close `1001` (going away) |
//! | (a lecturer drops all connections) | close `1012` (service restart): reconnect and resume |
//!
//! With `--ws-echo-path`, the same loop serves an echo endpoint for the Autobahn conformance
//! suite: same framing, UTF-8 checks and close codes, but it echoes instead of playing.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::error::PayloadError;
use actix_web::{dev, http::header, rt, web, web::Bytes, FromRequest, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, Session};
use futures_util::{FutureExt as _, Stream};
use tokio::sync::watch;

use crate::error::{to_json, ApiError};
use crate::game::{Click, PlayerId, Transport};
use crate::hub::Hub;
use crate::limits::disarm_body_deadline;
use crate::listener::ConnHandle;
use crate::protocol::{
    decode_client_message, ClickReply, ClientMessage, ErrorReply, WS_SUBPROTOCOL,
};
use crate::security::{ConnLimiter, ConnSlot, RateLimiter};
use crate::session::MaybePlayer;
use crate::transport::command::apply_click;
use crate::transport::{method_not_allowed, ResumePoint};

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

/// What the socket loop does with the messages it receives.
enum Mode {
    /// The game: events down, clicks and resumes up.
    Game {
        hub: Hub,
        player: Option<PlayerId>,
        limiter: web::Data<RateLimiter>,
        /// `None` until the client says where it is.
        resume: Option<ResumePoint>,
        strikes: u32,
    },
    /// Autobahn's echo: every text and binary message back as it came.
    Echo,
}

async fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    hub: web::Data<Hub>,
    limiter: web::Data<RateLimiter>,
    conns: web::Data<ConnLimiter>,
    player: MaybePlayer,
) -> Result<HttpResponse, ApiError> {
    let start = ResumePoint::from_query(&req)?;
    if !offers_subprotocol(&req) {
        return Err(ApiError::bad_request(
            "subprotocol_required",
            format!("offer the WebSocket sub-protocol {WS_SUBPROTOCOL:?}"),
        ));
    }
    let slot = conns.acquire(req.peer_addr())?;
    hub.metrics().request(Transport::Websocket);
    // From here the request "body" is the socket's frames, which never end.
    disarm_body_deadline(&req);
    let conn = ConnHandle::of(&req);
    let body = guard_frames(&req, body, WS_MAX_MESSAGE).await?;
    let (response, session, messages) =
        actix_ws::handle_with_protocols(&req, body, &[WS_SUBPROTOCOL])
            .map_err(|e| ApiError::bad_request("bad_handshake", e.to_string()))?;
    // Accepted (the 101 is ready): only now is a `?ticket=` spent.
    let player = player.commit()?;
    let messages = messages
        .max_frame_size(WS_MAX_MESSAGE)
        .aggregate_continuations()
        .max_continuation_size(WS_MAX_MESSAGE);
    // Streaming starts at once if the URL says where from, otherwise at the first `resume`.
    let resume = (start.since.is_some() || start.epoch.is_some()).then_some(start);
    let heartbeat = req
        .app_data::<web::Data<Heartbeat>>()
        .map(|h| *h.get_ref())
        .unwrap_or_default();
    let mode = Mode::Game {
        hub: hub.get_ref().clone(),
        player: player.0,
        limiter,
        resume,
        strikes: 0,
    };
    rt::spawn(run(mode, session, messages, heartbeat, slot, conn));
    Ok(response)
}

async fn upgrade_echo(
    req: HttpRequest,
    body: web::Payload,
    conns: web::Data<ConnLimiter>,
) -> Result<HttpResponse, ApiError> {
    let slot = conns.acquire(req.peer_addr())?;
    disarm_body_deadline(&req);
    let conn = ConnHandle::of(&req);
    let body = guard_frames(&req, body, WS_ECHO_MAX_MESSAGE).await?;
    let (response, session, messages) = actix_ws::handle(&req, body)
        .map_err(|e| ApiError::bad_request("bad_handshake", e.to_string()))?;
    let messages = messages
        .max_frame_size(WS_ECHO_MAX_MESSAGE)
        .aggregate_continuations()
        .max_continuation_size(WS_ECHO_MAX_MESSAGE);
    rt::spawn(run(
        Mode::Echo,
        session,
        messages,
        Heartbeat::default(),
        slot,
        conn,
    ));
    Ok(response)
}

fn close(code: CloseCode, description: &str) -> Option<CloseReason> {
    Some(CloseReason {
        code,
        description: Some(description.to_string()),
    })
}

/// What to do after handling one client message.
enum Step {
    Continue,
    Send(String),
    SendBinary(Bytes),
    Pong(Bytes),
    Close(Option<CloseReason>),
}

impl Mode {
    fn on_text(&mut self, text: &str) -> Step {
        let Mode::Game {
            hub,
            player,
            limiter,
            resume,
            strikes,
        } = self
        else {
            return Step::Send(text.to_string());
        };
        let (id, err) = match decode_client_message(text) {
            Ok(ClientMessage::Resume { since, epoch }) => {
                *resume = Some(ResumePoint { since, epoch });
                return Step::Continue;
            }
            Ok(ClientMessage::Click { id, round, x, y }) => {
                let Some(player) = *player else {
                    return Step::Send(error_reply(id, &ApiError::unauthorized()));
                };
                let click = Click { round, x, y };
                let result = apply_click(hub, limiter, player, Some(Transport::Websocket), click);
                match result {
                    Ok(outcome) => {
                        let reply = ClickReply {
                            kind: "click_result",
                            id,
                            outcome,
                        };
                        return Step::Send(
                            to_json(&reply, "a click reply")
                                .unwrap_or_else(|e| error_reply(id, &e)),
                        );
                    }
                    // A rule refusal (late round, off the board) is a fair answer, not abuse.
                    Err(e) if e.code != "rate_limited" => return Step::Send(error_reply(id, &e)),
                    Err(e) => (id, e),
                }
            }
            Err(detail) => (None, ApiError::bad_request("bad_message", detail)),
        };
        *strikes += 1;
        if *strikes >= WS_MAX_STRIKES {
            return Step::Close(close(CloseCode::Policy, "too many bad messages"));
        }
        Step::Send(error_reply(id, &err))
    }

    fn on_binary(&mut self, bytes: Bytes) -> Step {
        match self {
            Mode::Echo => Step::SendBinary(bytes),
            Mode::Game { .. } => Step::Close(close(
                CloseCode::Unsupported,
                "binary messages are not part of clickgame.v1",
            )),
        }
    }

    fn player(&self) -> Option<PlayerId> {
        match self {
            Mode::Game { player, .. } => *player,
            Mode::Echo => None,
        }
    }
}

/// Why a frame could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SendError {
    /// The connection is gone.
    Closed,
    /// The frame waited longer than the send timeout: the client stopped reading.
    Stalled,
}

/// Every frame the server sends goes through here, bounded by the send timeout.
///
/// A client that stops reading fills the socket, then the session's queue of 32 frames; from
/// then on a send waits for room that never comes. Before every send had this bound, a client
/// that flooded pings and read nothing kept its socket for good: the loop sat waiting to queue
/// a pong and never reached its timeouts.
async fn send(
    frame: impl Future<Output = Result<(), actix_ws::Closed>>,
    timeout: Duration,
) -> Result<(), SendError> {
    match tokio::time::timeout(timeout, frame).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(SendError::Closed),
        Err(_) => Err(SendError::Stalled),
    }
}

/// Sends the events after the client's resume point, if it has one.
async fn send_pending(
    mode: &mut Mode,
    session: &mut Session,
    changes: &mut watch::Receiver<u64>,
    send_timeout: Duration,
) -> Result<(), SendError> {
    let Mode::Game {
        hub,
        resume: Some(point),
        ..
    } = mode
    else {
        return Ok(());
    };
    changes.borrow_and_update();
    let batch = point.catch_up_bounded(hub);
    if batch.events.is_empty() {
        return Ok(());
    }
    hub.simulate_delay(Transport::Websocket).await;
    point.advance(hub, batch.last_seq);
    let mut bytes = 0;
    for event in &batch.events {
        bytes += event.json.len();
        send(session.text(event.json.clone()), send_timeout).await?;
    }
    hub.metrics()
        .delivered(Transport::Websocket, &batch.events, bytes);
    Ok(())
}

/// How the loop ends after a failed send.
fn after_send_error(err: SendError) -> Option<CloseReason> {
    match err {
        SendError::Closed => None,
        SendError::Stalled => close(CloseCode::Policy, "client stopped reading"),
    }
}

async fn run(
    mut mode: Mode,
    mut session: Session,
    mut messages: AggregatedMessageStream,
    heartbeat: Heartbeat,
    _slot: ConnSlot,
    conn: Option<ConnHandle>,
) {
    let player = mode.player();
    let _open = match &mode {
        Mode::Game { hub, .. } => Some(hub.metrics().open(Transport::Websocket)),
        Mode::Echo => None,
    };
    let (_guard, mut changes, mut control) = match &mode {
        Mode::Game { hub, player, .. } => (
            player.and_then(|p| hub.open_stream(p, Transport::Websocket)),
            Some(hub.subscribe()),
            Some(hub.control()),
        ),
        Mode::Echo => (None, None, None),
    };
    let streaming = |mode: &Mode| {
        matches!(
            mode,
            Mode::Game {
                resume: Some(_),
                ..
            }
        )
    };
    tracing::info!(transport = "websocket", ?player, "connection opened");
    let mut ticks = tokio::time::interval(heartbeat.interval);
    ticks.reset();
    // The silence deadline is a timer of its own, pushed back by every frame we receive: a
    // check on the ping tick alone would close a silent socket only at the first tick after
    // the timeout (60 s instead of 45 s with the defaults).
    let silence = tokio::time::sleep(heartbeat.timeout);
    tokio::pin!(silence);
    let send_timeout = heartbeat.send_timeout;
    let mut stalled = false;

    let reason = loop {
        if let Some(changes) = changes.as_mut() {
            if let Err(err) = send_pending(&mut mode, &mut session, changes, send_timeout).await {
                stalled = err == SendError::Stalled;
                break after_send_error(err);
            }
        }
        let is_streaming = streaming(&mode);
        tokio::select! {
            msg = messages.recv() => {
                silence.as_mut().reset(tokio::time::Instant::now() + heartbeat.timeout);
                let step = match msg {
                    Some(Ok(AggregatedMessage::Text(text))) => mode.on_text(&text),
                    Some(Ok(AggregatedMessage::Binary(bytes))) => mode.on_binary(bytes),
                    Some(Ok(AggregatedMessage::Ping(bytes))) => Step::Pong(bytes),
                    Some(Ok(AggregatedMessage::Pong(_))) => Step::Continue,
                    // Echo the client's close code, as RFC 6455 §5.5.1 suggests.
                    Some(Ok(AggregatedMessage::Close(reason))) => {
                        Step::Close(reason.map(|r| CloseReason { code: r.code, description: None }))
                    }
                    Some(Err(e)) => {
                        if refused_by_header(&e)
                            && !answer_queued(&mut mode, &mut session, &mut messages, send_timeout).await
                        {
                            break None;
                        }
                        Step::Close(protocol_error_close(&e))
                    }
                    None => break None,
                };
                let sent = match step {
                    Step::Continue => Ok(()),
                    Step::Send(text) => send(session.text(text), send_timeout).await,
                    Step::SendBinary(bytes) => send(session.binary(bytes), send_timeout).await,
                    Step::Pong(bytes) => send(session.pong(&bytes), send_timeout).await,
                    Step::Close(reason) => break reason,
                };
                if let Err(err) = sent {
                    stalled = err == SendError::Stalled;
                    break after_send_error(err);
                }
            }
            changed = async { changes.as_mut()?.changed().await.ok() }, if is_streaming => {
                if changed.is_none() {
                    break close(CloseCode::Away, "server shutting down");
                }
            }
            // The lecturer dropped all connections, or the server is stopping.
            Some(shutting_down) = async { control.as_mut()?.changed().await.ok()?; control.as_ref().map(|c| c.borrow().shutting_down) } => {
                break if shutting_down {
                    close(CloseCode::Away, "server shutting down")
                } else {
                    close(CloseCode::Restart, "dropped by the server; reconnect and resume")
                };
            }
            () = &mut silence => {
                break close(CloseCode::Policy, "no pong within the client timeout");
            }
            _ = ticks.tick() => {
                if let Err(err) = send(session.ping(b""), send_timeout).await {
                    stalled = err == SendError::Stalled;
                    break after_send_error(err);
                }
            }
        }
    };
    tracing::info!(transport = "websocket", ?player, close = ?reason.as_ref().map(|r| r.code), stalled, "connection closed");
    let _ = send(session.close(reason), send_timeout).await;
    if let (true, Some(conn)) = (stalled, conn) {
        // The close frame had its chance (one more send timeout); a client that still reads
        // nothing gets its connection reset, so the socket does not wait for it either.
        rt::spawn(async move {
            tokio::time::sleep(send_timeout).await;
            conn.abort();
        });
    }
}

/// Before failing the connection for a bad frame header, answers the messages that arrived
/// ahead of it. actix-ws decodes a whole read at once and reports the bad frame first, while
/// the good messages before it are still queued; without this their replies (or echoes) were
/// lost, and Autobahn|Testsuite flags cases 3.2, 3.3 and 4.1.3–4.2.4 NON-STRICT. Only what is
/// already decoded is taken (`now_or_never`), so this never waits on the client. Returns false
/// if the session is gone.
async fn answer_queued(
    mode: &mut Mode,
    session: &mut Session,
    messages: &mut AggregatedMessageStream,
    send_timeout: Duration,
) -> bool {
    while let Some(Some(Ok(msg))) = messages.recv().now_or_never() {
        let step = match msg {
            AggregatedMessage::Text(text) => mode.on_text(&text),
            AggregatedMessage::Binary(bytes) => mode.on_binary(bytes),
            // Pings, pongs and closes ahead of the bad frame need no answer: the close follows.
            _ => Step::Continue,
        };
        // Every write keeps its send timeout, these too.
        let sent = match step {
            Step::Send(reply) => send(session.text(reply), send_timeout).await.is_ok(),
            Step::SendBinary(bytes) => send(session.binary(bytes), send_timeout).await.is_ok(),
            Step::Pong(bytes) => send(session.pong(&bytes), send_timeout).await.is_ok(),
            // Too many strikes: the protocol error's close is sent next anyway.
            Step::Close(_) => return true,
            Step::Continue => true,
        };
        if !sent {
            return false;
        }
    }
    true
}

/// Errors actix-http's frame parser raises from a frame's header *without consuming the
/// frame*: decoding again hits the same error, so [`answer_queued`] gets exactly the messages
/// that came before it. Other errors (a continuation out of place, invalid UTF-8) come after
/// the frame was consumed, and what decodes next came *after* the bad frame; those close at
/// once, and Autobahn's case 5.15 stays NON-STRICT (see docs/security.md).
fn refused_by_header(e: &actix_ws::ProtocolError) -> bool {
    use actix_ws::ProtocolError;
    match e {
        ProtocolError::UnmaskedFrame | ProtocolError::InvalidOpcode(_) => true,
        // Non-zero reserved bits (actix reports them as `InvalidData`, like invalid UTF-8).
        ProtocolError::Io(io) => {
            io.kind() == std::io::ErrorKind::InvalidData
                && !is_invalid_utf8(io)
                && !is_payload_overflow(io)
        }
        _ => false,
    }
}

/// The close frame for a frame the codec refused.
fn protocol_error_close(e: &actix_ws::ProtocolError) -> Option<CloseReason> {
    use actix_ws::ProtocolError;
    match e {
        ProtocolError::Overflow => close(CloseCode::Size, "message too large"),
        // [`FrameSizeGuard`]'s refusal, passed through actix-ws as a payload error.
        ProtocolError::Io(io) if is_payload_overflow(io) => {
            close(CloseCode::Size, "message too large")
        }
        // actix reports invalid UTF-8 *and* non-zero RSV bits as `InvalidData`; only the first
        // is 1007 (RFC 6455 §8.1), the second is a protocol error like any other (§5.2).
        ProtocolError::Io(io) if is_invalid_utf8(io) => {
            close(CloseCode::Invalid, "text message is not valid UTF-8")
        }
        other => {
            tracing::debug!(error = %other, "websocket protocol error");
            close(CloseCode::Protocol, "protocol error")
        }
    }
}

/// actix-ws's invalid UTF-8: a whole text frame (a `Utf8Error` inside), or the end of a
/// fragmented one (the `Utf8Error`'s text inside).
fn is_invalid_utf8(io: &std::io::Error) -> bool {
    io.kind() == std::io::ErrorKind::InvalidData
        && io.get_ref().is_some_and(|inner| {
            inner.is::<std::str::Utf8Error>() || inner.to_string().contains("utf-8")
        })
}

fn is_payload_overflow(io: &std::io::Error) -> bool {
    io.get_ref()
        .and_then(|inner| inner.downcast_ref::<PayloadError>())
        .is_some_and(|e| matches!(e, PayloadError::Overflow))
}

/// Puts a [`FrameSizeGuard`] between the connection and actix's WebSocket codec.
async fn guard_frames(
    req: &HttpRequest,
    body: web::Payload,
    max: usize,
) -> Result<web::Payload, ApiError> {
    let guarded = GuardedPayload {
        inner: body.into_inner(),
        guard: FrameSizeGuard::new(max),
        refused: false,
    };
    let mut payload: dev::Payload = dev::Payload::Stream {
        payload: Box::pin(guarded),
    };
    web::Payload::from_request(req, &mut payload)
        .await
        .map_err(|e| ApiError::bad_request("bad_handshake", e.to_string()))
}

/// Refuses a message that is too large as soon as a frame header announces it.
///
/// actix-http's codec compares a frame's length with `max_frame_size` only once the *whole*
/// frame has arrived: a client announcing a 1 GiB frame made the server buffer it all first
/// (measured before this guard: 200 MiB streamed into one socket of the 4 KiB game endpoint
/// grew the server by 200 MiB). This follows the frame boundaries in the raw byte stream and
/// reads only the lengths: a frame longer than the limit, or a fragmented message whose
/// fragments add up to more, is refused when its header is in. Everything else (masking,
/// opcodes, UTF-8, close payloads) is left to actix's codec.
#[derive(Debug, Clone)]
pub struct FrameSizeGuard {
    max: u64,
    /// The header of the next frame, as far as it has arrived (at most 14 bytes).
    header: [u8; 14],
    have: usize,
    /// Payload bytes of the current frame still to come.
    payload_left: u64,
    /// Payload bytes of the data message in progress, over all its fragments.
    message: u64,
}

/// A frame header announced more than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

impl FrameSizeGuard {
    pub fn new(max: usize) -> FrameSizeGuard {
        FrameSizeGuard {
            max: u64::try_from(max).unwrap_or(u64::MAX),
            header: [0; 14],
            have: 0,
            payload_left: 0,
            message: 0,
        }
    }

    /// Follows the next bytes of the stream; chunk boundaries may fall anywhere.
    pub fn scan(&mut self, mut bytes: &[u8]) -> Result<(), TooLarge> {
        while let Some((&first, rest)) = bytes.split_first() {
            if self.payload_left > 0 {
                let n = usize::try_from(self.payload_left)
                    .map_or(bytes.len(), |left| left.min(bytes.len()));
                bytes = &bytes[n..];
                self.payload_left -= n as u64;
                continue;
            }
            if let Some(slot) = self.header.get_mut(self.have) {
                *slot = first;
                self.have += 1;
            }
            bytes = rest;
            if let Some(len) = self.header_complete() {
                self.frame(len)?;
            }
        }
        Ok(())
    }

    /// The payload length, once the whole header (lengths and mask key) is in.
    fn header_complete(&self) -> Option<u64> {
        if self.have < 2 {
            return None;
        }
        let b1 = self.header[1];
        let (extended, len7) = match b1 & 0x7f {
            126 => (2, None),
            127 => (8, None),
            n => (0, Some(u64::from(n))),
        };
        let mask = if b1 & 0x80 != 0 { 4 } else { 0 };
        if self.have < 2 + extended + mask {
            return None;
        }
        Some(len7.unwrap_or_else(|| {
            self.header[2..2 + extended]
                .iter()
                .fold(0u64, |n, &b| (n << 8) | u64::from(b))
        }))
    }

    /// A whole header is in: check the frame and its message, then pass its payload.
    fn frame(&mut self, len: u64) -> Result<(), TooLarge> {
        let b0 = self.header[0];
        self.have = 0;
        let fin = b0 & 0x80 != 0;
        match b0 & 0x0f {
            // Continuation: adds to the message in progress.
            0x0 => self.message = self.message.saturating_add(len),
            // Text or binary: starts a message.
            0x1 | 0x2 => self.message = len,
            // Control (or reserved) frames stand alone, between fragments too.
            _ if len > self.max => return Err(TooLarge),
            _ => {
                self.payload_left = len;
                return Ok(());
            }
        }
        if self.message > self.max {
            return Err(TooLarge);
        }
        if fin {
            self.message = 0;
        }
        self.payload_left = len;
        Ok(())
    }
}

/// The request body seen through a [`FrameSizeGuard`]: a refusal is a
/// `PayloadError::Overflow`, which actix-ws hands on as a protocol error (close `1009`).
struct GuardedPayload {
    inner: dev::Payload,
    guard: FrameSizeGuard,
    refused: bool,
}

impl Stream for GuardedPayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.refused {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                if this.guard.scan(&bytes).is_err() {
                    this.refused = true;
                    return Poll::Ready(Some(Err(PayloadError::Overflow)));
                }
                Poll::Ready(Some(Ok(bytes)))
            }
            other => other,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame header (payload not included) announcing `len` bytes.
    fn header(first: u8, len: u64) -> Vec<u8> {
        let mut h = vec![first];
        match len {
            0..=125 => h.push(0x80 | len as u8),
            126..=0xffff => {
                h.push(0x80 | 126);
                h.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                h.push(0x80 | 127);
                h.extend_from_slice(&len.to_be_bytes());
            }
        }
        h.extend_from_slice(&[1, 2, 3, 4]);
        h
    }

    fn frame(first: u8, len: usize) -> Vec<u8> {
        let mut f = header(first, len as u64);
        f.resize(f.len() + len, b'a');
        f
    }

    #[test]
    fn a_frame_over_the_limit_is_refused_by_its_header_alone() {
        let mut guard = FrameSizeGuard::new(4096);
        assert_eq!(guard.scan(&frame(0x81, 4096)), Ok(()));
        assert_eq!(guard.scan(&header(0x81, 1 << 30)), Err(TooLarge));
        let mut guard = FrameSizeGuard::new(4096);
        assert_eq!(guard.scan(&header(0x82, u64::MAX)), Err(TooLarge));
    }

    #[test]
    fn fragments_add_up_and_control_frames_between_them_do_not_count() {
        let mut guard = FrameSizeGuard::new(100);
        let mut bytes = frame(0x01, 60);
        bytes.extend(frame(0x89, 20)); // a ping between the fragments
        bytes.extend(frame(0x80, 40)); // the last fragment: 100 in all
        bytes.extend(frame(0x81, 100)); // a new message starts from zero
        assert_eq!(guard.scan(&bytes), Ok(()));
        assert_eq!(guard.scan(&frame(0x01, 60)), Ok(()));
        assert_eq!(guard.scan(&frame(0x00, 41)), Err(TooLarge));
    }

    #[test]
    fn chunk_boundaries_do_not_matter() {
        let mut bytes = Vec::new();
        for len in [0, 1, 125, 126, 300, 4096] {
            bytes.extend(frame(0x81, len));
        }
        bytes.extend(header(0x81, 4097));
        for size in [1, 2, 3, 7, 13, 1000] {
            let mut guard = FrameSizeGuard::new(4096);
            let verdict = bytes.chunks(size).try_for_each(|c| guard.scan(c));
            assert_eq!(verdict, Err(TooLarge), "chunks of {size}");
            let mut guard = FrameSizeGuard::new(4096);
            let whole = bytes.len() - header(0x81, 4097).len();
            assert_eq!(
                bytes[..whole].chunks(size).try_for_each(|c| guard.scan(c)),
                Ok(())
            );
        }
    }
}
