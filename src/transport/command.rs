//! # Upstream commands over plain HTTP
//!
//! Polling, long polling and SSE only carry events *down*; clicks go *up* through these POSTs
//! (the pattern of SignalR and Centrifugo for unidirectional transports). The WebSocket carries
//! the same commands in-band and calls the same hub methods.

use actix_web::{
    cookie::{time::Duration as CookieDuration, Cookie, SameSite},
    http::StatusCode,
    web, HttpRequest, HttpResponse,
};

use crate::error::ApiError;
use crate::game::{GameError, Transport};
use crate::hub::{Hub, TicketRefusal, MAX_OUTSTANDING_TICKETS, TICKET_BURST, TICKET_RATE_PER_SEC};
use crate::protocol::{ClickRequest, JoinRequest};
use crate::security::{JoinLimiter, RateLimiter};
use crate::session::{AuthPlayer, SESSION_COOKIE};
use crate::transport::method_not_allowed;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/join")
            .route(web::post().to(join))
            .default_service(method_not_allowed("POST")),
    )
    .service(
        web::resource("/click")
            .route(web::post().to(click))
            .default_service(method_not_allowed("POST")),
    )
    .service(
        web::resource("/leave")
            .route(web::post().to(leave))
            .default_service(method_not_allowed("POST")),
    )
    .service(
        web::resource("/ticket")
            .route(web::post().to(ticket))
            .default_service(method_not_allowed("POST")),
    )
    .service(
        web::resource("/snapshot")
            .route(web::get().to(snapshot))
            .default_service(method_not_allowed("GET")),
    );
}

/// HttpOnly (no script can read it), SameSite=Strict (no other site's page can make the
/// browser send it), and Secure on HTTPS (never sent over plain HTTP once set over TLS).
fn session_cookie(req: &HttpRequest, token: String) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, token)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(req.app_config().secure())
        .finish()
}

/// Joins are limited per client address and overall before the game sees them
/// ([`JoinLimiter`]). The address is the TCP peer; behind a reverse proxy that is the proxy,
/// so every client shares one bucket there (trusted-proxy handling is a later issue).
async fn join(
    req: HttpRequest,
    hub: web::Data<Hub>,
    joins: web::Data<JoinLimiter>,
    body: web::Json<JoinRequest>,
) -> Result<HttpResponse, ApiError> {
    let peer = req.peer_addr().map(|a| a.ip());
    joins.check(peer)?;
    let joined = hub.join(&body.name).inspect_err(|err| {
        if let GameError::GameFull { max } = err {
            joins.note_game_full(peer, *max);
        }
    })?;
    let name = joined
        .snapshot
        .players
        .iter()
        .find(|p| p.id == joined.player_id)
        .map_or("", |p| p.name.as_str());
    tracing::info!(player = joined.player_id, name, "player joined");
    Ok(HttpResponse::Created()
        .cookie(session_cookie(&req, joined.token.clone()))
        .json(joined))
}

async fn click(
    hub: web::Data<Hub>,
    limiter: web::Data<RateLimiter>,
    player: AuthPlayer,
    body: web::Json<ClickRequest>,
) -> Result<HttpResponse, ApiError> {
    let transport = hub.transport_of(player.0).unwrap_or(Transport::Ajax);
    let outcome = limiter.check(player.0).and_then(|()| {
        hub.click(player.0, body.into_inner().into())
            .map_err(ApiError::from)
    });
    hub.metrics().click(transport, outcome.is_ok());
    Ok(HttpResponse::Ok().json(outcome?))
}

async fn leave(
    req: HttpRequest,
    hub: web::Data<Hub>,
    limiter: web::Data<RateLimiter>,
    player: AuthPlayer,
) -> Result<HttpResponse, ApiError> {
    hub.leave(player.0)?;
    limiter.forget(player.0);
    let mut gone = session_cookie(&req, String::new());
    gone.set_max_age(CookieDuration::ZERO);
    Ok(HttpResponse::Ok()
        .cookie(gone)
        .json(serde_json::json!({"left": true})))
}

/// A one-time ticket for `?ticket=` on one downstream connection: how a page holding several
/// players (the compare page's race bots) authenticates EventSource and WebSocket, which
/// cannot send headers, without putting the long-lived token in a URL. Bounded per player (a
/// few unspent at a time, a token bucket for the rate): `429` with `Retry-After` beyond.
async fn ticket(hub: web::Data<Hub>, player: AuthPlayer) -> Result<HttpResponse, ApiError> {
    let ticket = hub.issue_ticket(player.0).map_err(|refusal| match refusal {
        TicketRefusal::TooManyOutstanding { retry_after_s } => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_tickets",
            format!(
                "at most {MAX_OUTSTANDING_TICKETS} unspent tickets per player; \
                 spend one or wait for one to expire"
            ),
        )
        .retry_after(retry_after_s),
        TicketRefusal::TooFast { retry_after_s } => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("at most {TICKET_RATE_PER_SEC} tickets per second after a burst of {TICKET_BURST}"),
        )
        .retry_after(retry_after_s),
    })?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "ticket": ticket,
        "expires_in_ms": crate::hub::TICKET_TTL.as_millis() as u64,
    })))
}

async fn snapshot(hub: web::Data<Hub>) -> HttpResponse {
    HttpResponse::Ok().json(hub.snapshot())
}
