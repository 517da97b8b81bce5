//! # An eavesdropper on the wire (`--eavesdrop`, `/eavesdrop.html`)
//!
//! The lecture says WSS "protects against man-in-the-middle attacks — but only the channel".
//! This module makes both halves of that sentence visible. With `--eavesdrop` the server opens
//! two relays on loopback: one in front of the plain HTTP listener, one in front of the HTTPS
//! listener (TLS is **not** terminated there: the relay sees exactly the bytes a router between
//! browser and server would). A browser pointed at a relay plays as usual; every byte passes
//! through and is recorded as what a passive attacker can read:
//!
//! * through the plain relay, HTTP requests and responses, WebSocket frames (unmasked: masking
//!   hides nothing) and SSE events — names, clicks, session tokens, in clear ([`http`], [`ws`]);
//! * through the TLS relay, only TLS records: content type, version, length, the handshake
//!   messages that travel in clear (ClientHello with its SNI and ALPN, ServerHello, and in
//!   TLS 1.2 the certificate), and otherwise ciphertext ([`tls_records`]).
//!
//! With tamper mode on ([`tamper`]) the relays turn from Eve (who listens) into Mallory (who
//! changes things): the plain relay rewrites the name in `POST /api/join` and nobody notices;
//! the TLS relay flips one bit and the connection dies at once — TLS gives integrity, not only
//! secrecy.
//!
//! The parsers are pure (bytes in, observations out) and bounded: a head is buffered up to
//! [`MAX_HEAD`], excerpts are capped, the feed is a ring buffer of [`FEED_CAPACITY`] records,
//! and the relays cap their connections like the main listeners. `GET /api/admin/eavesdrop`
//! and `POST /api/admin/eavesdrop` (admin token) answer 404 when `--eavesdrop` is off.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use actix_web::{http::header, web, FromRequest, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::lecturer::Admin;

#[doc(hidden)]
pub mod check;
pub mod feed;
pub mod http;
pub mod relay;
pub mod tamper;
pub mod tls_records;
pub mod ws;

pub use feed::{Feed, Record};

/// Records kept for `/eavesdrop.html`; older ones fall out of the ring.
pub const FEED_CAPACITY: usize = 2000;
/// At most this many records per `GET /api/admin/eavesdrop` answer (ask again from `last_seq`).
pub const MAX_RECORDS_PER_ANSWER: usize = 500;
/// An HTTP head is buffered up to this many bytes; a longer one is shown as raw bytes.
pub const MAX_HEAD: usize = 16 * 1024;
/// Bytes of a head kept as text in one record.
pub const HEAD_TEXT: usize = 2048;
/// Bytes of a body, a frame's payload or an SSE event kept as text in one record.
pub const BODY_TEXT: usize = 1024;
/// Bytes of a unit shown as hex (its first bytes as they were on the wire).
pub const HEX_BYTES: usize = 48;
/// Longest text one feed record keeps (a head and a body excerpt, or a TLS description whose
/// SNI and ALPN names came from the client): longer text is cut at a character boundary.
pub const MAX_TEXT: usize = HEAD_TEXT + BODY_TEXT + 256;
/// Longest of the other strings a record carries (a TLS record's `handshake_type` and `sni`).
/// Every string of a record is capped, so [`FEED_CAPACITY`] bounds the feed's memory (about
/// 4 KiB a record) and [`MAX_RECORDS_PER_ANSWER`] the size of one answer (about 2 MB).
pub const MAX_FIELD: usize = 256;

/// Which way the bytes went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dir {
    ClientToServer,
    ServerToClient,
}

/// Which relay saw them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RelayKind {
    Plain,
    Tls,
}

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    HttpRequest,
    HttpResponse,
    WsFrame,
    SseEvent,
    TlsRecord,
    Raw,
}

/// The TLS record layer's view of one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsSeen {
    /// `handshake`, `change_cipher_spec`, `alert`, `application_data`.
    pub content_type: String,
    /// As the record header says (TLS 1.3 records still say TLS 1.2, the first ClientHello
    /// often TLS 1.0: the field is frozen for middleboxes).
    pub record_version: String,
    /// The version the ServerHello chose (its `supported_versions`), once seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub negotiated: Option<String>,
    /// Payload length from the header.
    pub length: u16,
    /// The cleartext handshake messages in this record, e.g. `ClientHello`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handshake_type: Option<String>,
    /// The server name from a ClientHello: sent in clear, before any encryption.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
}

/// One thing the eavesdropper saw, before the feed numbers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub kind: Kind,
    /// Bytes on the wire this unit took (head + body, whole frame, whole record).
    pub bytes: u64,
    pub text: Option<String>,
    /// The unit's first [`HEX_BYTES`] bytes as they crossed the wire, lowercase hex.
    pub hex: String,
    pub tls: Option<TlsSeen>,
    pub tampered: bool,
}

/// Lowercase hex, no separators (the page groups it for reading).
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Where a parser is in its direction's byte stream, and which offsets the tamperer changed:
/// a unit covering a changed offset is reported as tampered.
#[derive(Debug, Default, Clone)]
pub struct Track {
    pub pos: u64,
    marks: Vec<u64>,
}

impl Track {
    /// Notes that the byte at stream offset `at` was changed by the relay.
    pub fn mark(&mut self, at: u64) {
        // Only a handful are ever pending (one per tampered request); a cap keeps it so.
        if self.marks.len() < 64 {
            self.marks.push(at);
        }
    }

    /// Whether `[start, end)` holds a changed byte; forgets marks before `end`.
    pub fn tampered(&mut self, start: u64, end: u64) -> bool {
        let hit = self.marks.iter().any(|m| (start..end).contains(m));
        self.marks.retain(|m| *m >= end);
        hit
    }
}

/// Appends to a capped excerpt; returns how many bytes did not fit.
pub(crate) fn keep(into: &mut Vec<u8>, cap: usize, data: &[u8]) {
    let room = cap.saturating_sub(into.len());
    into.extend_from_slice(&data[..data.len().min(room)]);
}

/// Cuts `text` to at most [`MAX_TEXT`] bytes (plus a marker), at a character boundary.
pub(crate) fn cap_text(text: String) -> String {
    cap_field(text, MAX_TEXT)
}

/// Cuts `text` to at most `max` bytes (plus a marker), at a character boundary.
pub(crate) fn cap_field(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str(" …");
        // `truncate` keeps the allocation: a 160 KB description cut to 3 KiB still held its
        // 160 KB in the feed, and 2,000 of them are 320 MB.
        text.shrink_to_fit();
    }
    text
}

/// Text of an excerpt, with a note of what was cut.
pub(crate) fn excerpt_text(bytes: &[u8], total: u64) -> String {
    let mut s = String::from_utf8_lossy(bytes).into_owned();
    if total > bytes.len() as u64 {
        s.push_str(&format!(" … [{} more bytes]", total - bytes.len() as u64));
    }
    s
}

/// The relays' shared state: the feed and the tamper switch. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Eavesdrop {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    feed: Mutex<Feed>,
    tamper: AtomicBool,
    next_conn: AtomicU64,
}

impl Default for Eavesdrop {
    fn default() -> Self {
        Eavesdrop::new(FEED_CAPACITY)
    }
}

impl Eavesdrop {
    pub fn new(capacity: usize) -> Eavesdrop {
        Eavesdrop {
            inner: Arc::new(Inner {
                feed: Mutex::new(Feed::new(capacity)),
                tamper: AtomicBool::new(false),
                next_conn: AtomicU64::new(1),
            }),
        }
    }

    pub fn tamper(&self) -> bool {
        self.inner.tamper.load(Ordering::Relaxed)
    }

    pub fn set_tamper(&self, on: bool) {
        self.inner.tamper.store(on, Ordering::Relaxed);
    }

    /// A number for a new relay connection, shown as `conn` in the feed.
    pub fn next_conn(&self) -> u64 {
        self.inner.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Numbers and stores what a relay saw.
    pub fn record(&self, conn: u64, relay: RelayKind, dir: Dir, seen: Vec<Seen>) {
        if seen.is_empty() {
            return;
        }
        let mut feed = self
            .inner
            .feed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for s in seen {
            feed.push(conn, relay, dir, s);
        }
    }

    /// Records after `since`, oldest first, at most `max`; and the seq to ask from next.
    pub fn since(&self, since: u64, max: usize) -> (Vec<Record>, u64) {
        self.inner
            .feed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .since(since, max)
    }
}

/// Where the relays listen, once bound (`RunningServer::eavesdrop_*`).
#[derive(Debug, Clone, Copy)]
pub struct RelayAddrs {
    pub plain: SocketAddr,
    pub tls: Option<SocketAddr>,
}

/// Registers `GET`/`POST /api/admin/eavesdrop`. Mount it with the other `/api` routes; it
/// answers 404 unless the server runs with `--eavesdrop` (the `web::Data<Eavesdrop>` is there).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin/eavesdrop")
            .route(web::get().to(feed_since))
            .route(web::post().to(set_tamper))
            .default_service(web::to(|req: HttpRequest| async move {
                enabled(&req)?;
                Err::<HttpResponse, _>(ApiError::method_not_allowed("use GET or POST"))
            })),
    );
}

/// The relays' state, or 404 when `--eavesdrop` is off: the endpoint does not exist then.
fn enabled(req: &HttpRequest) -> Result<web::Data<Eavesdrop>, ApiError> {
    req.app_data::<web::Data<Eavesdrop>>()
        .cloned()
        .ok_or_else(|| {
            ApiError::not_found("the eavesdropper is off: start the server with --eavesdrop")
        })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SinceQuery {
    since: Option<u64>,
}

#[derive(Debug, Serialize)]
struct FeedAnswer {
    records: Vec<Record>,
    last_seq: u64,
    /// Whether tamper mode is on now (so a reloaded page shows the switch as it is).
    tamper: bool,
}

async fn feed_since(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let eavesdrop = enabled(&req)?;
    Admin::extract(&req).await?;
    let query = web::Query::<SinceQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::from_query(&e))?;
    let (records, last_seq) = eavesdrop.since(query.since.unwrap_or(0), MAX_RECORDS_PER_ANSWER);
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(FeedAnswer {
            records,
            last_seq,
            tamper: eavesdrop.tamper(),
        }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TamperRequest {
    tamper: bool,
}

async fn set_tamper(req: HttpRequest, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let eavesdrop = enabled(&req)?;
    Admin::extract(&req).await?;
    let body = web::Json::<TamperRequest>::from_request(&req, &mut payload.into_inner())
        .await
        .map_err(|e| match e.as_error::<ApiError>() {
            Some(api) => api.clone(),
            None => ApiError::bad_request("bad_json", e.to_string()),
        })?;
    eavesdrop.set_tamper(body.tamper);
    if body.tamper {
        tracing::warn!("eavesdropper: TAMPER MODE ON — the plain relay rewrites join names, the TLS relay flips a bit");
    } else {
        tracing::info!("eavesdropper: tamper mode off");
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "tamper": body.tamper })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tampered_offset_marks_only_the_unit_that_covers_it() {
        let mut t = Track::default();
        t.mark(10);
        assert!(!t.tampered(0, 10));
        assert!(t.tampered(10, 20));
        assert!(!t.tampered(10, 20), "a mark is reported once");
    }

    #[test]
    fn excerpts_are_capped_and_say_what_was_cut() {
        let mut v = Vec::new();
        keep(&mut v, 4, b"abcdef");
        assert_eq!(v, b"abcd");
        assert_eq!(excerpt_text(&v, 6), "abcd … [2 more bytes]");
        assert_eq!(hex(b"Ada"), "416461");
    }
}
