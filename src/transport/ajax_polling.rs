//! # AJAX (short) polling
//!
//! The oldest trick: the browser asks `GET /api/poll?since=N` every `poll_interval_ms`, and the
//! server answers **at once** with whatever happened since N — often nothing. Simple, works
//! through every proxy, but an event waits on average half an interval before anyone asks for it,
//! and most requests carry no news (watch the network tab fill up with them).

use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::ApiError;
use crate::game::Transport;
use crate::protocol::poll_body;
use crate::session::MaybePlayer;
use crate::transport::{method_not_allowed, Connection, ResumePoint};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/poll")
            .route(web::get().to(poll))
            .default_service(method_not_allowed("GET")),
    );
}

async fn poll(req: HttpRequest, player: MaybePlayer) -> Result<HttpResponse, ApiError> {
    let resume = ResumePoint::from_query(&req)?;
    // Accepted: only now is a `?ticket=` spent (a refusal above leaves it for the retry).
    let mut conn = Connection::admit(&req, Transport::Ajax)?
        .start(player)
        .await?;
    let batch = resume.catch_up(conn.hub());
    let body = poll_body(&batch);
    conn.simulate_delay().await;
    conn.delivered(&batch.events, body.len());
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header(("Cache-Control", "no-store"))
        .body(body))
}
