//! # WebSocket
//!
//! `GET /api/ws` with `Upgrade: websocket` and the sub-protocol `clickgame.v1` turns the HTTP
//! connection into a full-duplex message pipe: events go down as text frames the moment they
//! happen, and clicks come up in-band on the same socket — no request per event, no headers per
//! message, no second connection. The price: a protocol of its own (framing, ping/pong, close
//! codes), and the server must keep the socket state.
//!
//! Each socket is one task running one `select!` loop over: frames from the client, new events
//! in the hub, and a heartbeat tick (the shape of actix/examples' actorless chat).

use std::time::{Duration, Instant};

use actix_web::{http::header, rt, web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, Session};
use tokio::sync::watch;

use crate::error::ApiError;
use crate::game::{PlayerId, Transport};
use crate::hub::Hub;
use crate::protocol::{ClickReply, ClientMessage, ErrorReply, WS_SUBPROTOCOL};
use crate::session::MaybePlayer;
use crate::transport::{method_not_allowed, ResumePoint};

/// The server pings this often...
pub const WS_PING_INTERVAL: Duration = Duration::from_secs(20);
/// ...and drops a socket it has heard nothing from (not even a pong) for this long.
pub const WS_CLIENT_TIMEOUT: Duration = Duration::from_secs(45);
/// Largest text message we accept; game messages are under 100 bytes.
pub const WS_MAX_MESSAGE: usize = 4096;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/api/ws")
            .route(web::get().to(upgrade))
            .default_service(method_not_allowed("GET")),
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

async fn upgrade(
    req: HttpRequest,
    body: web::Payload,
    hub: web::Data<Hub>,
    player: MaybePlayer,
) -> Result<HttpResponse, ApiError> {
    let start = ResumePoint::from_query(&req)?;
    if !offers_subprotocol(&req) {
        return Err(ApiError::bad_request(
            "subprotocol_required",
            format!("offer the WebSocket sub-protocol {WS_SUBPROTOCOL:?}"),
        ));
    }
    let (response, session, messages) =
        actix_ws::handle_with_protocols(&req, body, &[WS_SUBPROTOCOL])
            .map_err(|e| ApiError::bad_request("bad_handshake", e.to_string()))?;
    let messages = messages
        .max_frame_size(WS_MAX_MESSAGE)
        .aggregate_continuations()
        .max_continuation_size(WS_MAX_MESSAGE);
    // Streaming starts at once if the URL says where from, otherwise at the first `resume`.
    let start = (start.since.is_some() || start.epoch.is_some()).then_some(start);
    rt::spawn(run(
        hub.get_ref().clone(),
        player.0,
        session,
        messages,
        start,
    ));
    Ok(response)
}

/// Why a socket loop ended, and the close frame that says so.
fn close(code: CloseCode, description: &str) -> Option<CloseReason> {
    Some(CloseReason {
        code,
        description: Some(description.to_string()),
    })
}

async fn run(
    hub: Hub,
    player: Option<PlayerId>,
    mut session: Session,
    mut messages: AggregatedMessageStream,
    mut resume: Option<ResumePoint>,
) {
    let _guard = player.and_then(|p| hub.open_stream(p, Transport::Websocket));
    tracing::info!(transport = "websocket", player = ?player, "connection opened");
    let mut changes: watch::Receiver<u64> = hub.subscribe();
    let mut heartbeat = tokio::time::interval(WS_PING_INTERVAL);
    heartbeat.reset();
    let mut last_heard = Instant::now();

    let reason = loop {
        if let Some(point) = resume.as_mut() {
            changes.borrow_and_update();
            let batch = point.catch_up(&hub);
            if !batch.events.is_empty() {
                point.advance(&hub, batch.last_seq);
                let mut sent = true;
                for event in &batch.events {
                    if session.text(event.json.clone()).await.is_err() {
                        sent = false;
                        break;
                    }
                }
                if !sent {
                    break None;
                }
            }
        }
        tokio::select! {
            msg = messages.recv() => {
                last_heard = Instant::now();
                match msg {
                    Some(Ok(AggregatedMessage::Text(text))) => {
                        match serde_json::from_str::<ClientMessage>(&text) {
                            Ok(ClientMessage::Resume { since, epoch }) => {
                                resume = Some(ResumePoint { since, epoch });
                            }
                            Ok(ClientMessage::Click { id, round, x, y }) => {
                                let reply = click(&hub, player, id, round, x, y);
                                if session.text(reply).await.is_err() {
                                    break None;
                                }
                            }
                            Err(e) => {
                                let reply = error_reply(None, &ApiError::bad_request("bad_message", e.to_string()));
                                if session.text(reply).await.is_err() {
                                    break None;
                                }
                            }
                        }
                    }
                    Some(Ok(AggregatedMessage::Binary(_))) => {
                        break close(CloseCode::Unsupported, "binary messages are not part of clickgame.v1");
                    }
                    Some(Ok(AggregatedMessage::Ping(bytes))) => {
                        if session.pong(&bytes).await.is_err() {
                            break None;
                        }
                    }
                    Some(Ok(AggregatedMessage::Pong(_))) => {}
                    Some(Ok(AggregatedMessage::Close(reason))) => break reason,
                    Some(Err(actix_ws::ProtocolError::Overflow)) => {
                        break close(CloseCode::Size, "message too large");
                    }
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "websocket protocol error");
                        break close(CloseCode::Protocol, "protocol error");
                    }
                    None => break None,
                }
            }
            changed = changes.changed(), if resume.is_some() => {
                if changed.is_err() {
                    break close(CloseCode::Away, "server shutting down");
                }
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > WS_CLIENT_TIMEOUT {
                    break close(CloseCode::Policy, "no pong within the client timeout");
                }
                if session.ping(b"").await.is_err() {
                    break None;
                }
            }
        }
    };
    tracing::info!(transport = "websocket", player = ?player, close = ?reason.as_ref().map(|r| r.code), "connection closed");
    let _ = session.close(reason).await;
}

fn error_reply(id: Option<i64>, err: &ApiError) -> String {
    serde_json::to_string(&ErrorReply {
        kind: "error",
        id,
        error: err.code,
        detail: &err.detail,
    })
    .unwrap_or_default()
}

/// A click sent in-band: the same hub call as `POST /api/click`, answered on the socket.
fn click(
    hub: &Hub,
    player: Option<PlayerId>,
    id: Option<i64>,
    round: u64,
    x: f64,
    y: f64,
) -> String {
    let Some(player) = player else {
        return error_reply(id, &ApiError::unauthorized());
    };
    match hub.click(player, crate::game::Click { round, x, y }) {
        Ok(outcome) => serde_json::to_string(&ClickReply {
            kind: "click_result",
            id,
            outcome,
        })
        .unwrap_or_default(),
        Err(e) => error_reply(id, &ApiError::from(e)),
    }
}
