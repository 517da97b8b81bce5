//! # One socket is one response body
//!
//! After the upgrade, a WebSocket *is* the body of the `101` response: actix-http's connection
//! task writes whatever the body yields and hands it the client's bytes as the request payload.
//! So a [`Socket`] is that body. Each time the connection task polls it, it
//!
//! 1. decodes the frames that arrived from the client (RFC 6455 framing by actix-http's codec,
//!    fragments joined here, UTF-8 checked as they come) and lets the [`Mode`] answer them,
//! 2. checks its one timer: the next ping, the silence deadline, the end of a closing wait,
//! 3. yields what is due: replies and control frames first, then the mode's news — for the
//!    game, events from the hub's log, each already a complete frame shared by every socket
//!    (`WireEvent::ws`), so a fan-out to 9,000 sockets encodes nothing and copies no frame.
//!
//! There is no task of our own and no channel per socket: one wake-up of the connection task
//! per event, one timer per socket (not one per frame), and the event's bytes go from the log
//! to the connection's write buffer. A client that stops reading is bounded by the layers below
//! rather than by a per-frame timeout: actix-http stops polling a body whose output it cannot
//! flush (its write buffer holds at most 32 KiB), a socket more than `MAX_BACKLOG` events
//! behind gets one snapshot instead (`transport/mod.rs`), and `listener::Counted` closes a
//! connection whose writes make no progress for `--ws-send-timeout-ms`.
//!
//! The road not taken, and measured: actix-ws's `Session` (this server's socket until issue 15,
//! in the shape of actix/examples' actorless chat). It spawns a task per socket that pushes
//! messages through a channel into a second body task, which encodes each frame: two task
//! wake-ups, a channel send and a timer per delivered event, and 4 KB per socket
//! (`docs/results.md` §10).
//!
//! Closing follows RFC 6455 §7: a client's close is answered with the same code and the body
//! ends (actix-http then closes the TCP connection, the server first, as §7.1.1 asks — see
//! `vendor/README.md`); a close the server starts waits up to [`CLOSE_WAIT`] for the client's
//! close frame, reading and discarding what comes before it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_codec::{Decoder, Encoder};
use actix_http::ws::{CloseCode, CloseReason, Codec, Frame, Item, Message};
use actix_web::body::{BodySize, MessageBody};
use actix_web::error::PayloadError;
use actix_web::web::{Bytes, BytesMut};
use bytestring::ByteString;
use futures_util::Stream;
use tokio::time::{Instant, Sleep};

use super::frames::{close, protocol_error_close, GuardedPayload};
use super::Heartbeat;
use crate::log::WireEvent;

/// How long a close the server started waits for the client's close frame before the
/// connection is closed anyway.
pub const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// Frames waiting to be yielded, above which the socket stops reading the client until they
/// are written: a client that floods pings without reading gets no unbounded pile of pongs.
const OUT_LIMIT: usize = 16 * 1024;

/// What to do after handling one client message.
pub enum Step {
    Continue,
    Send(String),
    SendBinary(Bytes),
    Close(Option<CloseReason>),
}

/// Something other than the client that the socket must act on.
pub enum News {
    /// Events to send, in order, each a complete frame ([`WireEvent::ws`]).
    Events(Vec<Arc<WireEvent>>),
    /// End the socket with this close frame.
    Close(Option<CloseReason>),
}

/// What a socket serves: the game, or the echo endpoint. The socket calls these and nothing
/// else, so it has no `match` on which endpoint it serves.
pub trait Mode: Sized + 'static {
    /// A text message arrived (already checked to be UTF-8 and within the size limit). May
    /// wait (a click in a cluster waits for the node running the game; bounded by the
    /// forwarding timeout): until it is answered the socket reads nothing more from the client
    /// and sends no news, so replies keep the order of the messages.
    async fn on_text(&mut self, text: &str) -> Step;
    /// A binary message arrived; may wait like [`Mode::on_text`].
    async fn on_binary(&mut self, bytes: Bytes) -> Step;
    /// A text message to send before anything else (the game in a cluster: which node this is).
    fn greeting(&mut self) -> Option<String> {
        None
    }
    /// News for the client, or an order to close; `Pending` registers for the next.
    fn poll_news(&mut self, cx: &mut Context<'_>) -> Poll<News>;
    /// The socket is closing with `reason` (`None`: the connection went away without a close
    /// frame: the client vanished, or stopped reading and was cut off).
    fn closing(&mut self, reason: Option<&CloseReason>);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// We sent a close frame and wait for the client's until then.
    Closing {
        until: Instant,
    },
    /// Nothing more to say: the body ends once `out` is yielded.
    Closed,
}

/// Where the client's next frame starts after one we refused (see [`Socket::fail`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rest {
    /// The client has closed: nothing more to read.
    Nothing,
    /// The bad frame was consumed: the next one is next in line.
    Frames,
    /// The bad frame is still at the head of what arrived: skip it by its length.
    SkipFrame,
    /// No boundary is known (the size guard stopped scanning): drop everything.
    Drop,
}

/// The length of the frame at the head of `b` (header and payload), once its header is in.
fn frame_extent(b: &[u8]) -> Option<u64> {
    let second = *b.get(1)?;
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    let (len, at) = match second & 0x7f {
        126 => (u64::from(u16::from_be_bytes([*b.get(2)?, *b.get(3)?])), 4),
        127 => {
            let mut n = [0u8; 8];
            n.copy_from_slice(b.get(2..10)?);
            (u64::from_be_bytes(n), 10)
        }
        n => (u64::from(n), 2),
    };
    len.checked_add(at + mask)
}

/// A message arriving in fragments.
struct Partial {
    text: bool,
    data: BytesMut,
    /// How far `data` is known to be valid UTF-8 (text only).
    checked: usize,
}

/// A client message being answered: the mode is inside until the answer is ready.
type Answering<M> = Pin<Box<dyn Future<Output = (M, Step)>>>;

/// One WebSocket, as the body of its `101` response.
pub struct Socket<M: Mode> {
    /// `None` while a message is being answered (it is inside `answering`).
    mode: Option<M>,
    answering: Option<Answering<M>>,
    /// The client's bytes (the request payload, seen through the frame size guard).
    payload: GuardedPayload,
    /// Bytes of the client not yet decoded.
    inbox: BytesMut,
    codec: Codec,
    max_message: usize,
    partial: Option<Partial>,
    /// How much of a text frame still arriving is known to be valid UTF-8 (see
    /// [`Socket::peek_utf8`]).
    peeked: usize,
    /// Bytes of the client's to read and drop before decoding again (a refused frame's rest).
    skip: u64,
    /// The client's side ended (it closed the TCP connection, or the payload failed).
    input_ended: bool,
    /// Replies and control frames to yield before anything else.
    out: BytesMut,
    /// The events being yielded, one frame per poll (the connection task writes them together).
    events: std::vec::IntoIter<Arc<WireEvent>>,
    heartbeat: Heartbeat,
    /// The one timer: the next ping, the silence deadline, or the end of a closing wait.
    timer: Pin<Box<Sleep>>,
    next_ping: Instant,
    last_heard: Instant,
    state: State,
    /// `Mode::closing` was called.
    told: bool,
    /// Why the socket is closing, for the mode once it is back from answering a message.
    untold: Option<Option<CloseReason>>,
}

impl<M: Mode> Socket<M> {
    pub fn new(
        mut mode: M,
        payload: GuardedPayload,
        heartbeat: Heartbeat,
        max_message: usize,
    ) -> Socket<M> {
        let now = Instant::now();
        let next_ping = now + heartbeat.interval;
        let silence = now + heartbeat.timeout;
        let greeting = mode.greeting();
        let mut socket = Socket {
            mode: Some(mode),
            answering: None,
            payload,
            inbox: BytesMut::new(),
            codec: Codec::new().max_size(max_message),
            max_message,
            partial: None,
            peeked: 0,
            skip: 0,
            input_ended: false,
            out: BytesMut::new(),
            events: Vec::new().into_iter(),
            heartbeat,
            timer: Box::pin(tokio::time::sleep_until(next_ping.min(silence))),
            next_ping,
            last_heard: now,
            state: State::Open,
            told: false,
            untold: None,
        };
        if let Some(greeting) = greeting {
            socket.send(Message::Text(greeting.into()));
        }
        socket
    }

    fn send(&mut self, message: Message) {
        // Encoding a message we built cannot fail (only misordered continuations can).
        let _ = self.codec.encode(message, &mut self.out);
    }

    /// Starts the closing handshake from our side.
    fn begin_close(&mut self, reason: Option<CloseReason>) {
        if self.state != State::Open {
            return;
        }
        self.tell(reason.as_ref());
        self.send(Message::Close(reason));
        let until = Instant::now() + CLOSE_WAIT;
        self.state = State::Closing { until };
        self.timer.as_mut().reset(until);
    }

    fn tell(&mut self, reason: Option<&CloseReason>) {
        if self.told {
            return;
        }
        match self.mode.as_mut() {
            Some(mode) => {
                self.told = true;
                mode.closing(reason);
            }
            None => self.untold = Some(reason.cloned()),
        }
    }

    /// Answers `message` through the mode; [`Socket::read`] polls the answer.
    fn answer(&mut self, message: Result<ByteString, Bytes>) {
        let Some(mut mode) = self.mode.take() else {
            return;
        };
        self.answering = Some(Box::pin(async move {
            let step = match message {
                Ok(text) => mode.on_text(&text).await,
                Err(bytes) => mode.on_binary(bytes).await,
            };
            (mode, step)
        }));
    }

    /// Polls the answer to a client message; `false` while it is not ready.
    fn poll_answer(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(answering) = self.answering.as_mut() else {
            return true;
        };
        let Poll::Ready((mode, step)) = answering.as_mut().poll(cx) else {
            return false;
        };
        self.answering = None;
        self.mode = Some(mode);
        if let Some(reason) = self.untold.take() {
            self.tell(reason.as_ref());
        }
        if self.state == State::Open {
            self.step(step);
        }
        true
    }

    fn step(&mut self, step: Step) {
        match step {
            Step::Continue => {}
            Step::Send(text) => self.send(Message::Text(text.into())),
            Step::SendBinary(bytes) => self.send(Message::Binary(bytes)),
            Step::Close(reason) => self.begin_close(reason),
        }
    }

    /// Decodes and answers the client's frames until none is complete, the payload has nothing
    /// more for now, or enough output is waiting.
    fn read(&mut self, cx: &mut Context<'_>) {
        while self.state != State::Closed && self.out.len() < OUT_LIMIT {
            if !self.poll_answer(cx) {
                return;
            }
            if self.skip > 0 {
                // The rest of a frame we refused, read and dropped (see `Rest`).
                let n = usize::try_from(self.skip)
                    .map_or(self.inbox.len(), |s| s.min(self.inbox.len()));
                let _ = self.inbox.split_to(n);
                self.skip -= n as u64;
            }
            let before = (self.inbox.first().map(|b| b & 0x0f), self.inbox.len());
            match self.codec.decode(&mut self.inbox) {
                _ if self.skip > 0 => {}
                Ok(Some(frame)) => {
                    self.peeked = 0;
                    self.last_heard = Instant::now();
                    self.on_frame(frame);
                    continue;
                }
                Ok(None) => {
                    if !self.peek_utf8() {
                        self.fail(invalid_utf8(), Rest::SkipFrame);
                        continue;
                    }
                }
                Err(e) => {
                    let rest = match before {
                        // A close frame with a bad payload: the client has closed its side.
                        (Some(0x8), _) => Rest::Nothing,
                        // Refused by its header, not consumed: skip it by its length.
                        (_, len) if len == self.inbox.len() => Rest::SkipFrame,
                        _ => Rest::Frames,
                    };
                    self.fail(protocol_error_close(&e), rest);
                    continue;
                }
            }
            if self.input_ended {
                return;
            }
            match Pin::new(&mut self.payload).poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => {
                    if self.inbox.is_empty() {
                        self.inbox = BytesMut::from(bytes);
                    } else {
                        self.inbox.extend_from_slice(&bytes);
                    }
                }
                // The frame size guard refused a frame by its header; what follows is unscanned,
                // so no frame boundary is to be trusted any more.
                Poll::Ready(Some(Err(PayloadError::Overflow))) => {
                    self.fail(close(CloseCode::Size, "message too large"), Rest::Drop);
                }
                Poll::Ready(Some(Err(_))) => {
                    // The connection failed (an EOF inside a frame, a reset): nobody to send a
                    // close frame to, and nothing refused — a phone off the Wi-Fi is no entry
                    // in the defence log (`ws_close.rs`).
                    self.input_ended = true;
                    self.end();
                    return;
                }
                Poll::Ready(None) => {
                    // The client closed its side without a close frame.
                    self.input_ended = true;
                    self.end();
                    return;
                }
                Poll::Pending => {
                    if self.inbox.is_empty() {
                        // Let go of the last chunk's allocation while the client is quiet.
                        self.inbox = BytesMut::new();
                    }
                    return;
                }
            }
        }
    }

    /// A protocol violation: "fail the WebSocket connection" (RFC 6455 §7.1.7) — send a close
    /// frame with `reason`, then close the TCP connection as soon as the client has had its
    /// say: at once if its close frame was what broke the rule, otherwise after its close frame
    /// (or `CLOSE_WAIT`), reading and dropping what it still sends — closing with its bytes
    /// unread would reset the connection, and the reset can overtake our close frame. `rest`
    /// says where the client's next frame starts. While closing already, it just ends.
    fn fail(&mut self, reason: Option<CloseReason>, rest: Rest) {
        if self.state != State::Open {
            return self.end();
        }
        self.begin_close(reason);
        match rest {
            Rest::Nothing => self.state = State::Closed,
            Rest::Frames => {}
            Rest::SkipFrame => {
                self.skip = frame_extent(&self.inbox).unwrap_or(u64::MAX);
                self.partial = None;
                self.peeked = 0;
            }
            Rest::Drop => self.skip = u64::MAX,
        }
    }

    /// Ends without (further) ado.
    fn end(&mut self) {
        self.tell(None);
        self.state = State::Closed;
    }

    fn on_frame(&mut self, frame: Frame) {
        let open = self.state == State::Open;
        match frame {
            // Once closing, data is read and dropped until the client's close arrives.
            Frame::Text(_) | Frame::Binary(_) | Frame::Continuation(_) | Frame::Ping(_)
                if !open => {}
            Frame::Text(bytes) => self.on_message(true, bytes),
            Frame::Binary(bytes) => self.on_message(false, bytes),
            Frame::Continuation(item) => self.on_fragment(item),
            Frame::Ping(bytes) => self.send(Message::Pong(bytes)),
            Frame::Pong(_) => {}
            Frame::Close(reason) => {
                if open {
                    // Echo the client's code, as RFC 6455 §5.5.1 suggests.
                    let reason = reason.map(|r| CloseReason {
                        code: r.code,
                        description: None,
                    });
                    self.tell(reason.as_ref());
                    self.send(Message::Close(reason));
                }
                self.state = State::Closed;
            }
        }
    }

    fn on_message(&mut self, text: bool, bytes: Bytes) {
        if !text {
            return self.answer(Err(bytes));
        }
        match ByteString::try_from(bytes) {
            Ok(text) => self.answer(Ok(text)),
            Err(_) => self.fail(invalid_utf8(), Rest::Frames),
        }
    }

    /// Joins fragments, refusing a message over the limit or with invalid UTF-8 as soon as the
    /// fragment that breaks it arrives (not at the end of the message).
    fn on_fragment(&mut self, item: Item) {
        let (first, last, bytes) = match item {
            Item::FirstText(b) => (Some(true), false, b),
            Item::FirstBinary(b) => (Some(false), false, b),
            Item::Continue(b) => (None, false, b),
            Item::Last(b) => (None, true, b),
        };
        if let Some(text) = first {
            self.partial = Some(Partial {
                text,
                data: BytesMut::new(),
                checked: 0,
            });
        }
        // The codec refuses a continuation without a start, so `partial` is there.
        let Some(partial) = self.partial.as_mut() else {
            return self.fail(close(CloseCode::Protocol, "protocol error"), Rest::Frames);
        };
        if partial.data.len() + bytes.len() > self.max_message {
            self.partial = None;
            return self.fail(close(CloseCode::Size, "message too large"), Rest::Frames);
        }
        partial.data.extend_from_slice(&bytes);
        if partial.text && !utf8_so_far(partial, last) {
            self.partial = None;
            return self.fail(invalid_utf8(), Rest::Frames);
        }
        if last {
            if let Some(partial) = self.partial.take() {
                self.on_message(partial.text, partial.data.freeze());
            }
        }
    }

    /// Fails fast inside a frame: checks the UTF-8 of a text frame (or of a continuation of a
    /// text message) as far as it has arrived, before actix-http's codec has the whole frame.
    /// False if it is invalid already. Each byte is checked once (a character cut at the end
    /// of what arrived is checked again with its rest), so a frame trickling in byte by byte
    /// costs no more than one arriving whole; nothing is kept but the offset.
    fn peek_utf8(&mut self) -> bool {
        let b = &self.inbox[..];
        if b.len() < 2 || b[1] & 0x80 == 0 {
            // No header yet, or unmasked (the codec refuses that itself).
            return true;
        }
        let opcode = b[0] & 0x0f;
        let continued = self.partial.as_ref().filter(|p| opcode == 0 && p.text);
        if opcode != 0x1 && continued.is_none() {
            return true;
        }
        let (len, at) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u64::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 if b.len() >= 10 => {
                let mut n = [0u8; 8];
                n.copy_from_slice(&b[2..10]);
                (u64::from_be_bytes(n), 10)
            }
            126 | 127 => return true,
            n => (u64::from(n), 2),
        };
        let start = at + 4;
        if b.len() <= start {
            return true;
        }
        let mask = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        let here = usize::try_from(len).map_or(b.len() - start, |l| l.min(b.len() - start));
        let (from, end) = (start + self.peeked, start + here);
        if from >= end {
            return true;
        }
        // The start of a character cut by the previous fragment's end.
        let carry = match continued {
            Some(p) if self.peeked == 0 => &p.data[p.checked..],
            _ => &[][..],
        };
        let mut text = Vec::with_capacity(carry.len() + end - from);
        text.extend_from_slice(carry);
        text.extend((from..end).map(|i| b[i] ^ mask[(i - start) % 4]));
        match std::str::from_utf8(&text) {
            Ok(_) => {
                self.peeked = here;
                true
            }
            Err(e) if e.error_len().is_none() => {
                self.peeked += e.valid_up_to().saturating_sub(carry.len());
                true
            }
            Err(_) => false,
        }
    }

    /// Fires what is due: a ping, the silence deadline, the end of a closing wait.
    fn poll_timer(&mut self, cx: &mut Context<'_>) {
        while self.timer.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            let next = match self.state {
                State::Closed => return,
                State::Closing { until } if now >= until => {
                    self.state = State::Closed;
                    return;
                }
                State::Closing { until } => until,
                State::Open => {
                    if now >= self.last_heard + self.heartbeat.timeout {
                        self.begin_close(close(
                            CloseCode::Policy,
                            "no pong within the client timeout",
                        ));
                        continue;
                    }
                    if now >= self.next_ping {
                        self.send(Message::Ping(Bytes::new()));
                        self.next_ping = now + self.heartbeat.interval;
                    }
                    self.next_ping.min(self.last_heard + self.heartbeat.timeout)
                }
            };
            self.timer.as_mut().reset(next);
        }
    }

    /// The next event frame of the batch being sent.
    fn next_event(&mut self) -> Option<Bytes> {
        let frame = self.events.next().map(|e| e.ws.clone());
        if frame.is_none() && self.events.len() == 0 {
            // Drop the batch's allocation.
            self.events = Vec::new().into_iter();
        }
        frame
    }
}

/// Whether `partial`'s data is valid UTF-8 so far; a character cut by the fragment boundary is
/// fine unless this was the last fragment. Each byte is checked once.
fn utf8_so_far(partial: &mut Partial, last: bool) -> bool {
    match std::str::from_utf8(&partial.data[partial.checked..]) {
        Ok(_) => {
            partial.checked = partial.data.len();
            true
        }
        Err(e) => {
            partial.checked += e.valid_up_to();
            e.error_len().is_none() && !last
        }
    }
}

fn invalid_utf8() -> Option<CloseReason> {
    close(CloseCode::Invalid, "text message is not valid UTF-8")
}

impl<M: Mode + Unpin> MessageBody for Socket<M> {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        if this.state != State::Closed {
            this.read(cx);
        }
        if this.state != State::Closed {
            this.poll_timer(cx);
        }
        if !this.out.is_empty() {
            return Poll::Ready(Some(Ok(std::mem::take(&mut this.out).freeze())));
        }
        // News waits while a client message is being answered (the mode is busy with it).
        if this.state == State::Open && this.mode.is_some() {
            if let Some(frame) = this.next_event() {
                return Poll::Ready(Some(Ok(frame)));
            }
            let news = match this.mode.as_mut() {
                Some(mode) => mode.poll_news(cx),
                None => Poll::Pending,
            };
            match news {
                Poll::Ready(News::Events(events)) => {
                    this.events = events.into_iter();
                    if let Some(frame) = this.next_event() {
                        return Poll::Ready(Some(Ok(frame)));
                    }
                    // An empty batch: look again at once.
                    cx.waker().wake_by_ref();
                }
                Poll::Ready(News::Close(reason)) => {
                    this.begin_close(reason);
                    return Poll::Ready(Some(Ok(std::mem::take(&mut this.out).freeze())));
                }
                Poll::Pending => {}
            }
        }
        if this.state == State::Closed {
            return Poll::Ready(None);
        }
        Poll::Pending
    }
}

impl<M: Mode> Drop for Socket<M> {
    /// The connection task dropped the body: the client went away or was cut off (a write
    /// that made no progress for the send timeout), unless a close came first.
    fn drop(&mut self) {
        self.tell(None);
    }
}
