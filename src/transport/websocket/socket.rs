//! # One socket, one task, one `select!` loop
//!
//! After the upgrade, each socket is a task running [`run`]: one loop over frames from the
//! client, the [`Mode`]'s own wake-ups (new events in the hub, an order to close), the silence
//! deadline and the ping tick — the shape of actix/examples' actorless chat. The loop knows
//! frames and timers; what a message *means* is the mode's business (`mod.rs`: the game, or
//! Autobahn's echo), so the loop has no `match` on which endpoint it serves.
//!
//! Every frame the server sends goes through [`Out`], which bounds each write by the send
//! timeout: a client that stops reading is closed with `1008`, and reset one more send timeout
//! later if it does not even take the close.

use std::future::Future;
use std::time::Duration;

use actix_web::{rt, web::Bytes};
use actix_ws::{AggregatedMessage, AggregatedMessageStream, CloseCode, CloseReason, Session};
use futures_util::FutureExt as _;

use super::frames::{close, protocol_error_close, refused_by_header};
use super::Heartbeat;
use crate::listener::ConnHandle;

/// What to do after handling one client message.
pub enum Step {
    Continue,
    Send(String),
    SendBinary(Bytes),
    Pong(Bytes),
    Close(Option<CloseReason>),
}

/// Why the loop woke up for something other than the client.
pub enum Wake {
    /// There may be something to send: the loop calls [`Mode::flush`].
    News,
    /// End the socket with this close frame.
    Close(Option<CloseReason>),
}

/// What a socket serves: the game, or the echo endpoint. The loop calls these and nothing else.
pub trait Mode {
    /// A text message arrived (already checked to be UTF-8 and within the size limit). May
    /// wait (a click in a cluster waits for the node running the game; bounded by the
    /// forwarding timeout).
    async fn on_text(&mut self, text: &str) -> Step;
    /// A binary message arrived.
    async fn on_binary(&mut self, bytes: Bytes) -> Step;
    /// Sends whatever is due now (the game: the events after the client's resume point).
    async fn flush(&mut self, out: &mut Out) -> Result<(), SendError>;
    /// Resolves when something other than the client needs the loop: news to send, or an order
    /// to close. Must be cancel-safe: the loop drops it whenever another branch fires first.
    async fn wake(&mut self) -> Wake;
    /// The loop is ending with `reason` (`stalled`: because the client stopped reading).
    fn closing(&mut self, reason: Option<&CloseReason>, stalled: bool);
}

/// Why a frame could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The connection is gone.
    Closed,
    /// The frame waited longer than the send timeout: the client stopped reading.
    Stalled,
}

/// The sending half of a socket: every frame the server sends goes through here, bounded by
/// the send timeout.
///
/// A client that stops reading fills the socket, then the session's queue of 32 frames; from
/// then on a send waits for room that never comes. Before every send had this bound, a client
/// that flooded pings and read nothing kept its socket for good: the loop sat waiting to queue
/// a pong and never reached its timeouts.
pub struct Out {
    session: Session,
    timeout: Duration,
}

impl Out {
    pub async fn text(&mut self, text: impl Into<bytestring::ByteString>) -> Result<(), SendError> {
        bounded(self.session.text(text), self.timeout).await
    }

    pub async fn binary(&mut self, bytes: Bytes) -> Result<(), SendError> {
        bounded(self.session.binary(bytes), self.timeout).await
    }

    async fn pong(&mut self, bytes: &[u8]) -> Result<(), SendError> {
        bounded(self.session.pong(bytes), self.timeout).await
    }

    async fn ping(&mut self) -> Result<(), SendError> {
        bounded(self.session.ping(b""), self.timeout).await
    }

    /// Sends what a [`Step`] asks for; `Ok(Some(reason))` when it asks to close.
    async fn step(&mut self, step: Step) -> Result<Option<Option<CloseReason>>, SendError> {
        match step {
            Step::Continue => Ok(None),
            Step::Send(text) => self.text(text).await.map(|()| None),
            Step::SendBinary(bytes) => self.binary(bytes).await.map(|()| None),
            Step::Pong(bytes) => self.pong(&bytes).await.map(|()| None),
            Step::Close(reason) => Ok(Some(reason)),
        }
    }

    async fn close(self, reason: Option<CloseReason>) {
        let _ = bounded(self.session.close(reason), self.timeout).await;
    }
}

async fn bounded(
    frame: impl Future<Output = Result<(), actix_ws::Closed>>,
    timeout: Duration,
) -> Result<(), SendError> {
    match tokio::time::timeout(timeout, frame).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(SendError::Closed),
        Err(_) => Err(SendError::Stalled),
    }
}

/// How the loop ends after a failed send.
fn after_send_error(err: SendError) -> Option<CloseReason> {
    match err {
        SendError::Closed => None,
        SendError::Stalled => close(CloseCode::Policy, "client stopped reading"),
    }
}

/// Runs one socket until it closes. `conn` is the TCP connection's handle, to reset a client
/// that does not even take the close frame.
pub async fn run(
    mut mode: impl Mode,
    session: Session,
    mut messages: AggregatedMessageStream,
    heartbeat: Heartbeat,
    conn: Option<ConnHandle>,
) {
    let mut out = Out {
        session,
        timeout: heartbeat.send_timeout,
    };
    let mut ticks = tokio::time::interval(heartbeat.interval);
    ticks.reset();
    // The silence deadline is a timer of its own, pushed back by every frame we receive: a
    // check on the ping tick alone would close a silent socket only at the first tick after
    // the timeout (60 s instead of 45 s with the defaults).
    let silence = tokio::time::sleep(heartbeat.timeout);
    tokio::pin!(silence);
    let mut stalled = false;

    let reason = loop {
        if let Err(err) = mode.flush(&mut out).await {
            stalled = err == SendError::Stalled;
            break after_send_error(err);
        }
        let sent = tokio::select! {
            msg = messages.recv() => {
                silence.as_mut().reset(tokio::time::Instant::now() + heartbeat.timeout);
                let step = match msg {
                    Some(Ok(AggregatedMessage::Text(text))) => mode.on_text(&text).await,
                    Some(Ok(AggregatedMessage::Binary(bytes))) => mode.on_binary(bytes).await,
                    Some(Ok(AggregatedMessage::Ping(bytes))) => Step::Pong(bytes),
                    Some(Ok(AggregatedMessage::Pong(_))) => Step::Continue,
                    // Echo the client's close code, as RFC 6455 §5.5.1 suggests.
                    Some(Ok(AggregatedMessage::Close(reason))) => {
                        Step::Close(reason.map(|r| CloseReason { code: r.code, description: None }))
                    }
                    Some(Err(e)) => {
                        if refused_by_header(&e)
                            && !answer_queued(&mut mode, &mut out, &mut messages).await
                        {
                            break None;
                        }
                        Step::Close(protocol_error_close(&e))
                    }
                    None => break None,
                };
                out.step(step).await
            }
            wake = mode.wake() => match wake {
                Wake::News => Ok(None),
                Wake::Close(reason) => break reason,
            },
            () = &mut silence => {
                break close(CloseCode::Policy, "no pong within the client timeout");
            }
            _ = ticks.tick() => out.ping().await.map(|()| None),
        };
        match sent {
            Ok(None) => {}
            Ok(Some(reason)) => break reason,
            Err(err) => {
                stalled = err == SendError::Stalled;
                break after_send_error(err);
            }
        }
    };
    mode.closing(reason.as_ref(), stalled);
    let send_timeout = out.timeout;
    out.close(reason).await;
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
    mode: &mut impl Mode,
    out: &mut Out,
    messages: &mut AggregatedMessageStream,
) -> bool {
    while let Some(Some(Ok(msg))) = messages.recv().now_or_never() {
        let step = match msg {
            AggregatedMessage::Text(text) => mode.on_text(&text).await,
            AggregatedMessage::Binary(bytes) => mode.on_binary(bytes).await,
            // Pings, pongs and closes ahead of the bad frame need no answer: the close follows.
            _ => Step::Continue,
        };
        // Every write keeps its send timeout, these too.
        match out.step(step).await {
            Ok(None) => {}
            // Too many strikes: the protocol error's close is sent next anyway.
            Ok(Some(_)) => return true,
            Err(_) => return false,
        }
    }
    true
}
