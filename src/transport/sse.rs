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
use std::time::Duration;

use actix_web::{http::header, web, web::Bytes, HttpRequest, HttpResponse};
use futures_util::stream;
use tokio::sync::watch;

use crate::error::ApiError;
use crate::game::Transport;
use crate::hub::Control;
use crate::limits::parked_wait;
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

/// Everything one open stream needs between chunks. Dropping it (the client went away, or the
/// stream ended) drops the connection, which records the close.
struct Stream {
    conn: Connection,
    resume: ResumePoint,
    changes: watch::Receiver<u64>,
    control: watch::Receiver<Control>,
    heartbeat: tokio::time::Interval,
}

impl Stream {
    /// The next chunk to write: pending events, or a heartbeat comment when idle.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            self.changes.borrow_and_update();
            let batch = self.resume.catch_up_bounded(self.conn.hub());
            if !batch.events.is_empty() {
                self.conn.simulate_delay().await;
                self.resume.advance(self.conn.hub(), batch.last_seq);
                let chunk: Vec<u8> = batch
                    .events
                    .iter()
                    .flat_map(|e| e.sse.iter().copied())
                    .collect();
                self.conn.delivered(&batch.events, chunk.len());
                return Some(Bytes::from(chunk));
            }
            tokio::select! {
                changed = self.changes.changed() => {
                    changed.ok()?;
                }
                _ = self.heartbeat.tick() => {
                    self.conn.delivered(&[], KEEP_ALIVE.len());
                    return Some(Bytes::from_static(KEEP_ALIVE));
                }
                // Dropped by the server or shutting down: end the response. EventSource
                // reconnects after `retry:` with Last-Event-ID and resumes.
                _ = self.control.changed() => {
                    self.conn.ended("ended by the server");
                    return None;
                }
            }
        }
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
    let mut heartbeat = tokio::time::interval(parked_wait(&req, settings.heartbeat));
    heartbeat.reset(); // the first tick would fire at once; the retry line already opens the stream
    let state = Stream {
        changes: conn.hub().subscribe(),
        control: conn.hub().control(),
        conn,
        resume,
        heartbeat,
    };
    // In a cluster a named `node` event (no `id:`, so `Last-Event-ID` stays the seq) says which
    // node serves this stream: an `EventSource` cannot read response headers.
    let greeting = state.conn.hub().node().map_or_else(String::new, |n| {
        format!("event: node\ndata: {{\"node\":\"{}\"}}\n\n", n.id())
    });
    let opening = Bytes::from(format!("retry: {}\n\n{greeting}", settings.retry_ms));
    let events = stream::unfold(state, |mut s| async move {
        let chunk = s.next_chunk().await?;
        Some((Ok::<_, Infallible>(chunk), s))
    });
    let body = futures_util::StreamExt::chain(stream::once(async move { Ok(opening) }), events);
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}
