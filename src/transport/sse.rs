//! # Server-Sent Events
//!
//! One `GET /api/sse` whose response never ends: `Content-Type: text/event-stream`, and each
//! event as an `id:` / `event:` / `data:` block. The browser's `EventSource` parses it, and when
//! the connection drops it **reconnects by itself** after `retry:` ms, sending the last `id:` it
//! saw as `Last-Event-ID` — so resuming is built into the protocol. Downstream only: clicks go
//! through `POST /api/click`. Over HTTP/1.1 each stream occupies one of the browser's ~6
//! connections per origin; over HTTP/2 they share one, and the keep-alive comment comes every
//! [`H2_PARKED_CHECK`](crate::limits::H2_PARKED_CHECK) at most, because a stream the browser
//! reset is only noticed when we write to it.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, MessageBody};
use actix_web::{http::header, web, web::Bytes, HttpRequest, HttpResponse};
use tokio::time::{Instant, Sleep};

use crate::bell::Subscription;
use crate::error::ApiError;
use crate::game::Transport;
use crate::limits::parked_wait;
use crate::log::WireEvent;
use crate::session::MaybePlayer;
use crate::transport::{method_not_allowed, Connection, ResumePoint};

/// The comment line an idle stream sends so that proxies do not time it out.
const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// How every stream behaves (the defaults are in `config.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseSettings {
    /// The `retry:` line that opens every stream: how long the browser's `EventSource` waits
    /// before it reconnects by itself (`--sse-retry-ms`).
    pub retry_ms: u64,
    /// An idle stream sends a comment line this often (`--sse-heartbeat-ms`).
    pub heartbeat: Duration,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/sse")
            .route(web::get().to(sse))
            .default_service(method_not_allowed("GET")),
    );
}

/// A chunk held back by the simulated delay: its bytes, its events, when it may go.
type Delayed = (Bytes, Vec<Arc<WireEvent>>, Pin<Box<Sleep>>);

/// One open stream, as the body of its response: actix-http's connection task polls it for
/// the next chunk whenever it is woken (by the hub's bell, or the heartbeat timer). Dropping it
/// (the client went away, or the stream ended) drops the connection, which records the close.
///
/// A single event is written as the event's own `sse` block, shared by every stream (no copy,
/// no allocation per recipient); a stream that is behind gets its events in one chunk.
struct Stream {
    conn: Connection,
    resume: ResumePoint,
    /// Rings when the log grows, the lecturer drops all connections, or the server stops.
    bell: Subscription,
    /// The log may hold events this stream has not sent.
    dirty: bool,
    /// The `retry:` line, sent first.
    opening: Option<Bytes>,
    /// When the next keep-alive comment is due, and how often.
    heartbeat: Pin<Box<Sleep>>,
    every: Duration,
    /// A chunk held back by the lecturer's simulated delay (its events, to report when it goes),
    /// and when it may go.
    delayed: Option<Delayed>,
    ended: bool,
}

impl Stream {
    /// The events after the client's resume point, as one chunk, once the log has grown.
    fn poll_events(&mut self, cx: &mut Context<'_>) -> Poll<Option<(Bytes, Vec<Arc<WireEvent>>)>> {
        // Until it says `Pending` (and so will wake this task for the next event).
        while let Poll::Ready(rang) = self.bell.poll_rang(cx) {
            if rang.control {
                // Dropped by the server or shutting down: end the response. EventSource
                // reconnects after `retry:` with Last-Event-ID and resumes.
                self.conn.ended("ended by the server");
                return Poll::Ready(None);
            }
            self.dirty |= rang.news;
        }
        if !self.dirty {
            return Poll::Pending;
        }
        self.dirty = false;
        let batch = self.resume.catch_up_bounded(self.conn.hub());
        let chunk = match batch.events.as_slice() {
            [] => return Poll::Pending,
            [one] => one.sse.clone(),
            many => Bytes::from(
                many.iter()
                    .flat_map(|e| e.sse.iter().copied())
                    .collect::<Vec<u8>>(),
            ),
        };
        self.resume.advance(self.conn.hub(), batch.last_seq);
        Poll::Ready(Some((chunk, batch.events)))
    }

    /// Hands `chunk` to the connection and reports its events delivered (after any simulated
    /// delay: a player's reaction time counts from here).
    fn deliver(&mut self, chunk: Bytes, events: &[Arc<WireEvent>]) -> Bytes {
        self.conn.delivered(events, chunk.len());
        chunk
    }
}

impl MessageBody for Stream {
    type Error = Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Infallible>>> {
        let this = self.get_mut();
        if let Some(opening) = this.opening.take() {
            return Poll::Ready(Some(Ok(opening)));
        }
        if this.ended {
            return Poll::Ready(None);
        }
        if let Some((_, _, wait)) = this.delayed.as_mut() {
            if wait.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if let Some((chunk, events, _)) = this.delayed.take() {
                return Poll::Ready(Some(Ok(this.deliver(chunk, &events))));
            }
        }
        match this.poll_events(cx) {
            Poll::Ready(Some((chunk, events))) => {
                let delay = this.conn.hub().delay(Transport::Sse);
                if delay.is_zero() {
                    return Poll::Ready(Some(Ok(this.deliver(chunk, &events))));
                }
                this.delayed = Some((chunk, events, Box::pin(tokio::time::sleep(delay))));
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Poll::Ready(None) => {
                this.ended = true;
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        if this.heartbeat.as_mut().poll(cx).is_ready() {
            let next = Instant::now() + this.every;
            this.heartbeat.as_mut().reset(next);
            this.conn.delivered(&[], KEEP_ALIVE.len());
            return Poll::Ready(Some(Ok(Bytes::from_static(KEEP_ALIVE))));
        }
        Poll::Pending
    }
}

/// `Last-Event-ID` (sent by a reconnecting `EventSource`) wins over `?since=`.
fn last_event_id(req: &HttpRequest) -> Result<Option<u64>, ApiError> {
    parse_last_event_id(req.headers().get("Last-Event-ID"))
}

/// The seq in a `Last-Event-ID` header: `None` when absent, blank or not visible ASCII;
/// `400 bad_last_event_id` when it is not a whole number. Pure, so `fuzz/` can hammer it.
pub fn parse_last_event_id(value: Option<&header::HeaderValue>) -> Result<Option<u64>, ApiError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or_default().trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        ApiError::bad_request(
            "bad_last_event_id",
            format!("Last-Event-ID must be a whole number, got {text:?}"),
        )
    })
}

async fn sse(
    req: HttpRequest,
    settings: web::Data<SseSettings>,
    player: MaybePlayer,
) -> Result<HttpResponse, ApiError> {
    let mut resume = ResumePoint::from_query(&req)?;
    let admitted = Connection::admit(&req, Transport::Sse)?;
    if let Some(id) = last_event_id(&req)? {
        resume.since = Some(id);
    }
    // Accepted: only now is a `?ticket=` spent (a refusal above leaves it for the retry).
    let conn = admitted.start(player).await?;
    // On HTTP/2 the heartbeat is frequent: a reset stream is only noticed when we write.
    let every = parked_wait(&req, settings.heartbeat);
    // In a cluster a named `node` event (no `id:`, so `Last-Event-ID` stays the seq) says which
    // node serves this stream: an `EventSource` cannot read response headers.
    let greeting = conn.hub().node().map_or_else(String::new, |n| {
        format!("event: node\ndata: {{\"node\":\"{}\"}}\n\n", n.id())
    });
    let body = Stream {
        bell: conn.hub().subscribe(),
        conn,
        resume,
        dirty: true,
        opening: Some(Bytes::from(format!(
            "retry: {}\n\n{greeting}",
            settings.retry_ms
        ))),
        // The retry line already opens the stream: the first comment is one period away.
        heartbeat: Box::pin(tokio::time::sleep(every)),
        every,
        delayed: None,
        ended: false,
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .body(body))
}
