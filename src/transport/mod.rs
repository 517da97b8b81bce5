//! # The four transports, side by side
//!
//! Each file is one way to get the same event JSON from the hub to a browser. They share a shape:
//! take a resume point (`since` + `epoch`), open through [`Connection`] (`connection.rs`: the
//! stream slot, the figures, the player's stream, the log lines, the ticket), [`Hub::catch_up`],
//! send, report it with [`Connection::delivered`], wait for the hub's `watch` to change, repeat.
//! Only *how* bytes reach the client differs:
//!
//! | file | request pattern | server → client | client → server |
//! |---|---|---|---|
//! | `ajax_polling.rs` | a GET every interval, answered at once | JSON batch per request | `POST /api/click` |
//! | `long_polling.rs` | a GET held until an event (or 204 on timeout) | JSON batch per request | `POST /api/click` |
//! | `sse.rs` | one GET, response never ends | `text/event-stream` frames | `POST /api/click` |
//! | `websocket/` | one upgrade to a full-duplex socket | text frames | text frames, in-band |
//!
//! `command.rs` holds the POST endpoints the three HTTP transports use upstream, and
//! [`apply_click`](command::apply_click), through which every click reaches the game. What a
//! fifth transport touches: `docs/architecture.md`.

pub mod ajax_polling;
pub mod command;
pub mod connection;
pub mod long_polling;
pub mod sse;
pub mod websocket;

use actix_web::{web, HttpRequest};

use crate::error::ApiError;
use crate::hub::Hub;
use crate::protocol::ResumeQuery;

pub use connection::{Admitted, Connection, Hold};

/// A streaming client further behind than this gets a snapshot instead of the events.
pub const MAX_BACKLOG: usize = 256;

/// Registers every transport's routes, relative to the `/api` scope `server.rs` mounts them in
/// (so `/ws` here is `/api/ws`, behind the scope's Origin check).
pub fn configure(cfg: &mut web::ServiceConfig) {
    command::configure(cfg);
    ajax_polling::configure(cfg);
    long_polling::configure(cfg);
    sse::configure(cfg);
    websocket::configure(cfg);
}

/// Where a client wants to resume: `since` and `epoch`, as parsed from a query string.
#[derive(Debug, Clone, Default)]
pub struct ResumePoint {
    pub since: Option<u64>,
    pub epoch: Option<String>,
    /// `epoch` is known to be this server's (set by [`ResumePoint::advance`]): unless the
    /// server is a cluster node, whose epoch may change, a stream's every catch-up after its
    /// first skips comparing it.
    synced: bool,
}

impl ResumePoint {
    /// Parses `?since=N&epoch=E` strictly: unknown keys or a `since` that is not a whole
    /// number are `400 bad_query`.
    pub fn from_query(req: &HttpRequest) -> Result<ResumePoint, ApiError> {
        let query = web::Query::<ResumeQuery>::from_query(req.query_string())
            .map_err(|e| ApiError::from_query(&e))?
            .into_inner();
        Ok(ResumePoint::new(query.since, query.epoch))
    }

    pub fn new(since: Option<u64>, epoch: Option<String>) -> ResumePoint {
        ResumePoint {
            since,
            epoch,
            synced: false,
        }
    }

    pub fn catch_up(&self, hub: &Hub) -> crate::log::Batch {
        let epoch = if self.synced && hub.epoch_fixed() {
            None
        } else {
            self.epoch.as_deref()
        };
        hub.catch_up(self.since, epoch)
    }

    /// For streams: a client more than [`MAX_BACKLOG`] events behind (it stopped reading, or
    /// its network stalled) gets one snapshot instead of the backlog, so a slow reader costs a
    /// bounded amount to catch up and never a growing queue.
    pub fn catch_up_bounded(&self, hub: &Hub) -> crate::log::Batch {
        let batch = self.catch_up(hub);
        if batch.events.len() > MAX_BACKLOG {
            hub.catch_up(None, None)
        } else {
            batch
        }
    }

    /// After a batch, the client is in step with this server.
    pub fn advance(&mut self, hub: &Hub, last_seq: u64) {
        self.since = Some(last_seq);
        // Once per connection, not once per delivery (in a cluster the epoch may change: every
        // time).
        if !self.synced || !hub.epoch_fixed() {
            self.epoch = Some(hub.epoch().to_string());
            self.synced = true;
        }
    }
}

/// Answers an `/api/...` path with the wrong method: `405` with a JSON body.
pub(crate) fn method_not_allowed(allowed: &'static str) -> actix_web::Route {
    web::route().to(move || async move {
        Err::<actix_web::HttpResponse, _>(ApiError::method_not_allowed(format!("use {allowed}")))
    })
}
