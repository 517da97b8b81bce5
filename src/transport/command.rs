//! # Upstream commands over plain HTTP
//!
//! Polling, long polling and SSE only carry events *down*; clicks go *up* through these POSTs
//! (the pattern of SignalR and Centrifugo for unidirectional transports). The WebSocket carries
//! the same commands in-band, and a click from either way goes through [`apply_click`].

use actix_web::{
    cookie::{time::Duration as CookieDuration, Cookie, SameSite},
    http::StatusCode,
    web, HttpRequest, HttpResponse,
};

use crate::error::ApiError;
use crate::game::{Click, ClickOutcome, GameError, NameCheck, PlayerId, Transport};
use crate::hub::Hub;
use crate::lab::{self, Defence, Lab};
use crate::protocol::{ClickRequest, JoinRequest};
use crate::security::{JoinLimiter, RateLimiter};
use crate::session::{AuthPlayer, SESSION_COOKIE};
use crate::tickets::{
    TicketRefusal, Tickets, MAX_OUTSTANDING_TICKETS, TICKET_BURST, TICKET_RATE_PER_SEC, TICKET_TTL,
};
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
    // The lab's input switch: a naive server stores whatever name it is sent.
    let check = if lab::defence_on(req.app_data::<web::Data<Lab>>(), Defence::Input) {
        NameCheck::Validate
    } else {
        NameCheck::Naive
    };
    let joined = hub.join_with(&body.name, check).inspect_err(|err| {
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

/// The one way a click reaches the game, whichever way it came (`POST /api/click` or a
/// WebSocket message): the player's rate limit, the game's judgement, and the figures of the
/// transport it is credited to — `via`, or for an upstream POST the transport the player was
/// last seen on (AJAX before any). A refusal is an [`ApiError`] the caller sends its own way:
/// a JSON body with a status, or an `error` message on the socket.
pub fn apply_click(
    hub: &Hub,
    limiter: &RateLimiter,
    player: PlayerId,
    via: Option<Transport>,
    click: Click,
) -> Result<ClickOutcome, ApiError> {
    let transport = via
        .or_else(|| hub.transport_of(player))
        .unwrap_or(Transport::Ajax);
    let outcome = limiter
        .check(player)
        .and_then(|()| hub.click(player, click).map_err(ApiError::from));
    hub.metrics().click(transport, outcome.is_ok());
    outcome
}

/// The player a click counts for: **the session's, never the message's**. A click may name a
/// `player` (`claimed`); if that is anybody but the session's player it is refused
/// `403 impersonation`, and without a session it is `401` as always. Only with the lab's `auth`
/// defence off (`auth_on` false) does the server trust the message, like a naive server:
/// whoever a click names, it counts for — session or not.
pub fn click_identity(
    session: Option<PlayerId>,
    claimed: Option<PlayerId>,
    auth_on: bool,
) -> Result<PlayerId, ApiError> {
    match (claimed, session) {
        (Some(claimed), _) if !auth_on => Ok(claimed),
        (Some(claimed), Some(session)) if claimed != session => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "impersonation",
            format!(
                "this session is player {session}; a click cannot claim to be player {claimed} \
                 (who clicks comes from the session, never from the message)"
            ),
        )),
        (_, Some(session)) => Ok(session),
        (_, None) => Err(ApiError::unauthorized()),
    }
}

/// `POST /api/click`. The session is checked first (a `401` comes before the body is looked
/// at), except with the lab's `auth` defence off, where the body's `player` may stand in for it.
async fn click(
    req: HttpRequest,
    hub: web::Data<Hub>,
    limiter: web::Data<RateLimiter>,
    session: Result<AuthPlayer, ApiError>,
    body: Result<web::Json<ClickRequest>, actix_web::Error>,
) -> Result<HttpResponse, actix_web::Error> {
    let auth_on = lab::defence_on(req.app_data::<web::Data<Lab>>(), Defence::Auth);
    let session = match session {
        Ok(player) => Some(player.0),
        Err(err) if auth_on => return Err(err.into()),
        Err(_) => None,
    };
    let body = body?.into_inner();
    let player = click_identity(session, body.player, auth_on)?;
    let outcome = apply_click(&hub, &limiter, player, None, body.into())?;
    Ok(HttpResponse::Ok().json(outcome))
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
async fn ticket(tickets: web::Data<Tickets>, player: AuthPlayer) -> Result<HttpResponse, ApiError> {
    let ticket = tickets.issue(player.0).map_err(|refusal| match refusal {
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
            format!(
                "at most {TICKET_RATE_PER_SEC} tickets per second after a burst of {TICKET_BURST}"
            ),
        )
        .retry_after(retry_after_s),
    })?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "ticket": ticket,
        "expires_in_ms": TICKET_TTL.as_millis() as u64,
    })))
}

async fn snapshot(hub: web::Data<Hub>) -> HttpResponse {
    HttpResponse::Ok().json(hub.snapshot())
}
