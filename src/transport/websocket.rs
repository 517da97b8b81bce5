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
//! | a text message over [`WS_MAX_MESSAGE`] bytes | close `1009` (message too big) |
//! | a binary message | close `1003` (unsupported data) |
//! | text that is not valid UTF-8 | close `1007` (invalid payload) |
//! | bad JSON or an unknown `type` | an `{"type":"error"}` reply; the [`WS_MAX_STRIKES`]th: close `1008` |
//! | clicks over the rate limit | an `error` reply `rate_limited` (a strike, so close `1008` if it goes on) |
//! | silence (not even a pong) for [`WS_CLIENT_TIMEOUT`] | close `1008` |
//! | (the server stops) | close `1001` (going away) |
//! | (a lecturer drops all connections) | close `1012` (service restart): reconnect and resume |
//!
//! With `--ws-echo-path`, the same loop serves an echo endpoint for the Autobahn conformance
//! suite: same framing, UTF-8 checks and close codes, but it echoes instead of playing.

use std::time::{Duration, Instant};

use actix_web::{http::header, rt, web, web::Bytes, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, Session};
use tokio::sync::watch;

use crate::error::ApiError;
use crate::game::{Click, PlayerId, Transport};
use crate::hub::Hub;
use crate::protocol::{ClickReply, ClientMessage, ErrorReply, WS_SUBPROTOCOL};
use crate::security::{ConnLimiter, ConnSlot, RateLimiter};
use crate::session::MaybePlayer;
use crate::transport::{method_not_allowed, ResumePoint};

/// The server pings this often...
pub const WS_PING_INTERVAL: Duration = Duration::from_secs(20);
/// ...and drops a socket it has heard nothing from (not even a pong) for this long.
pub const WS_CLIENT_TIMEOUT: Duration = Duration::from_secs(45);
/// Largest text message the game accepts; game messages are under 100 bytes.
pub const WS_MAX_MESSAGE: usize = 4096;
/// Bad or rate-limited messages tolerated on one socket before it is closed with 1008.
pub const WS_MAX_STRIKES: u32 = 10;
/// Largest message on the echo endpoint (Autobahn sends up to 16 MiB in the cases we run).
pub const WS_ECHO_MAX_MESSAGE: usize = 16 * 1024 * 1024;

/// Heartbeat timing; tests shorten it.
#[derive(Debug, Clone, Copy)]
pub struct Heartbeat {
    pub interval: Duration,
    pub timeout: Duration,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            interval: WS_PING_INTERVAL,
            timeout: WS_CLIENT_TIMEOUT,
        }
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/ws")
            .route(web::get().to(upgrade))
            .default_service(method_not_allowed("GET")),
    );
}

/// Mounts the Autobahn echo endpoint at `path` (only with `--ws-echo-path`).
pub fn configure_echo(cfg: &mut web::ServiceConfig, path: &str) {
    cfg.route(path, web::get().to(upgrade_echo));
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
    let (response, session, messages) =
        actix_ws::handle_with_protocols(&req, body, &[WS_SUBPROTOCOL])
            .map_err(|e| ApiError::bad_request("bad_handshake", e.to_string()))?;
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
    rt::spawn(run(mode, session, messages, heartbeat, slot));
    Ok(response)
}

async fn upgrade_echo(
    req: HttpRequest,
    body: web::Payload,
    conns: web::Data<ConnLimiter>,
) -> Result<HttpResponse, ApiError> {
    let slot = conns.acquire(req.peer_addr())?;
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
        let (id, err) = match serde_json::from_str::<ClientMessage>(text) {
            Ok(ClientMessage::Resume { since, epoch }) => {
                *resume = Some(ResumePoint { since, epoch });
                return Step::Continue;
            }
            Ok(ClientMessage::Click { id, round, x, y }) => {
                let Some(player) = *player else {
                    return Step::Send(error_reply(id, &ApiError::unauthorized()));
                };
                let result = limiter.check(player).and_then(|()| {
                    hub.click(player, Click { round, x, y })
                        .map_err(ApiError::from)
                });
                match result {
                    Ok(outcome) => {
                        let reply = ClickReply {
                            kind: "click_result",
                            id,
                            outcome,
                        };
                        return Step::Send(serde_json::to_string(&reply).unwrap_or_default());
                    }
                    // A rule refusal (late round, off the board) is a fair answer, not abuse.
                    Err(e) if e.code != "rate_limited" => return Step::Send(error_reply(id, &e)),
                    Err(e) => (id, e),
                }
            }
            Err(e) => (None, ApiError::bad_request("bad_message", e.to_string())),
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

/// Sends the events after the client's resume point, if it has one.
async fn send_pending(
    mode: &mut Mode,
    session: &mut Session,
    changes: &mut watch::Receiver<u64>,
) -> bool {
    let Mode::Game {
        hub,
        resume: Some(point),
        ..
    } = mode
    else {
        return true;
    };
    changes.borrow_and_update();
    let batch = point.catch_up(hub);
    if batch.events.is_empty() {
        return true;
    }
    point.advance(hub, batch.last_seq);
    for event in &batch.events {
        if session.text(event.json.clone()).await.is_err() {
            return false;
        }
    }
    true
}

async fn run(
    mut mode: Mode,
    mut session: Session,
    mut messages: AggregatedMessageStream,
    heartbeat: Heartbeat,
    _slot: ConnSlot,
) {
    let player = mode.player();
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
    let mut last_heard = Instant::now();

    let reason = loop {
        if let Some(changes) = changes.as_mut() {
            if !send_pending(&mut mode, &mut session, changes).await {
                break None;
            }
        }
        let is_streaming = streaming(&mode);
        tokio::select! {
            msg = messages.recv() => {
                last_heard = Instant::now();
                let step = match msg {
                    Some(Ok(AggregatedMessage::Text(text))) => mode.on_text(&text),
                    Some(Ok(AggregatedMessage::Binary(bytes))) => mode.on_binary(bytes),
                    Some(Ok(AggregatedMessage::Ping(bytes))) => {
                        if session.pong(&bytes).await.is_err() {
                            break None;
                        }
                        Step::Continue
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => Step::Continue,
                    // Echo the client's close code, as RFC 6455 §5.5.1 suggests.
                    Some(Ok(AggregatedMessage::Close(reason))) => {
                        Step::Close(reason.map(|r| CloseReason { code: r.code, description: None }))
                    }
                    Some(Err(e)) => Step::Close(protocol_error_close(&e)),
                    None => break None,
                };
                match step {
                    Step::Continue => {}
                    Step::Send(text) => {
                        if session.text(text).await.is_err() {
                            break None;
                        }
                    }
                    Step::SendBinary(bytes) => {
                        if session.binary(bytes).await.is_err() {
                            break None;
                        }
                    }
                    Step::Close(reason) => break reason,
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
            _ = ticks.tick() => {
                if last_heard.elapsed() > heartbeat.timeout {
                    break close(CloseCode::Policy, "no pong within the client timeout");
                }
                if session.ping(b"").await.is_err() {
                    break None;
                }
            }
        }
    };
    tracing::info!(transport = "websocket", ?player, close = ?reason.as_ref().map(|r| r.code), "connection closed");
    let _ = session.close(reason).await;
}

/// The close frame for a frame the codec refused.
fn protocol_error_close(e: &actix_ws::ProtocolError) -> Option<CloseReason> {
    use actix_ws::ProtocolError;
    match e {
        ProtocolError::Overflow => close(CloseCode::Size, "message too large"),
        ProtocolError::Io(io) if io.kind() == std::io::ErrorKind::InvalidData => {
            close(CloseCode::Invalid, "text message is not valid UTF-8")
        }
        other => {
            tracing::debug!(error = %other, "websocket protocol error");
            close(CloseCode::Protocol, "protocol error")
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
    serde_json::to_string(&reply).unwrap_or_default()
}
