//! # Long polling ("Comet")
//!
//! Like polling, but the server **holds** `GET /api/longpoll?since=N` until an event after N
//! exists, then answers; the browser asks again immediately. An event therefore leaves as soon
//! as it happens, at the cost of one full request/response (headers and all) per delivery and a
//! parked request per client. With nothing to say for `--longpoll-timeout-ms`, the server answers
//! `204 No Content` so proxies and browsers never see a request hang forever. Over HTTP/2 the
//! hold is at most [`H2_PARKED_CHECK`](crate::limits::H2_PARKED_CHECK): actix does not tell a
//! handler that the client reset its stream, so answering is how we find out.

use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::ApiError;
use crate::game::Transport;
use crate::limits::parked_wait;
use crate::protocol::poll_body;
use crate::session::MaybePlayer;
use crate::transport::{method_not_allowed, Connection, ResumePoint};

/// How long a long poll may be held; set from `--longpoll-timeout-ms`.
#[derive(Debug, Clone, Copy)]
pub struct LongPollTimeout(pub Duration);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/longpoll")
            .route(web::get().to(longpoll))
            .default_service(method_not_allowed("GET")),
    );
}

async fn longpoll(
    req: HttpRequest,
    timeout: web::Data<LongPollTimeout>,
    player: MaybePlayer,
) -> Result<HttpResponse, ApiError> {
    let resume = ResumePoint::from_query(&req)?;
    let admitted = Connection::admit(&req, Transport::Longpoll)?;
    // Accepted: only now is a `?ticket=` spent (a refusal above leaves it for the retry).
    // While parked, the request counts as an open connection: the player is not idle. If the
    // client goes away, actix drops this future (on HTTP/1.1 as soon as the socket closes, see
    // `listener.rs`) and the connection records the close and frees the slot.
    let mut conn = admitted.start(player).await?;
    let hub = conn.hub().clone();
    // Subscribed before the first read of the log: an event published after it rings.
    let mut bell = hub.subscribe();
    // On HTTP/2 the hold is short: a reset stream is only noticed when we answer.
    let deadline = tokio::time::sleep(parked_wait(&req, timeout.0));
    tokio::pin!(deadline);
    loop {
        let batch = resume.catch_up(&hub);
        if !batch.events.is_empty() {
            let body = poll_body(&batch);
            conn.simulate_delay().await;
            conn.delivered(&batch.events, body.len());
            return Ok(HttpResponse::Ok()
                .content_type("application/json")
                .insert_header(("Cache-Control", "no-store"))
                .body(body));
        }
        tokio::select! {
            rang = bell.rang() => {
                // Dropped by the server or shutting down: answer now, the client asks again.
                if rang.control {
                    break;
                }
            }
            _ = &mut deadline => break,
        }
    }
    conn.simulate_delay().await;
    Ok(HttpResponse::NoContent()
        .insert_header(("Cache-Control", "no-store"))
        .finish())
}
