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

use crate::cluster::IdemKey;
use crate::commands::{player_key, Command, Commands, Reply};
use crate::error::ApiError;
use crate::forwarded::client_addr;
use crate::game::{Click, ClickOutcome, PlayerId, Transport};
use crate::hub::Hub;
use crate::lab::{self, Defence, Lab};
use crate::protocol::{ClickRequest, JoinRequest};
use crate::session::{AuthPlayer, SESSION_COOKIE};
use crate::tickets::TICKET_TTL;
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
/// ([`JoinLimiter`](crate::security::JoinLimiter), on the node that runs the game). The address
/// is the TCP peer, or what a `--trusted-proxy` says it is (`forwarded.rs`).
async fn join(
    req: HttpRequest,
    commands: web::Data<Commands>,
    body: web::Json<JoinRequest>,
) -> Result<HttpResponse, ApiError> {
    let name = body.into_inner().name;
    let addr = client_addr(&req);
    // The lab's input switch: a naive server stores whatever name it is sent.
    let naive = !lab::defence_on(req.app_data::<web::Data<Lab>>(), Defence::Input);
    let cmd = Command::Join { name, addr, naive };
    let Reply::Joined { token, body, .. } = commands.run(cmd, None).await? else {
        return Err(ApiError::internal("a join answered with something else"));
    };
    Ok(HttpResponse::Created()
        .cookie(session_cookie(&req, token))
        .content_type("application/json")
        .body(body))
}

/// The `Idempotency-Key` a client sent with a command, scoped to its player: a retry with the
/// same key (after a `503` during a failover, say) is answered, never run twice. None sent:
/// the command runs at most once, and a retry is a new command.
fn idempotency_key(req: &HttpRequest, player: PlayerId) -> Result<Option<IdemKey>, ApiError> {
    let Some(value) = req.headers().get("Idempotency-Key") else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| {
        ApiError::bad_request("bad_idempotency_key", "the Idempotency-Key must be ASCII")
    })?;
    player_key(player, text).map(Some)
}

/// The one way a click reaches the game, whichever way it came (`POST /api/click` or a
/// WebSocket message): the player's rate limit and the game's judgement (on the node that runs
/// the game), and the figures of the transport it is credited to here — `via`, or for an
/// upstream POST the transport the player was last seen on (AJAX before any). A refusal is an
/// [`ApiError`] the caller sends its own way: a JSON body with a status, or an `error` message
/// on the socket.
pub async fn apply_click(
    commands: &Commands,
    player: PlayerId,
    via: Option<Transport>,
    click: Click,
    key: Option<IdemKey>,
) -> Result<ClickOutcome, ApiError> {
    let hub = commands.hub();
    let transport = via
        .or_else(|| hub.transport_of(player))
        .unwrap_or(Transport::Ajax);
    let cmd = Command::Click {
        player,
        round: click.round,
        x: click.x,
        y: click.y,
    };
    let outcome = match commands.run(cmd, key).await {
        Ok(Reply::Click { outcome }) => Ok(outcome),
        Ok(_) => Err(ApiError::internal("a click answered with something else")),
        Err(e) => Err(e),
    };
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
    commands: web::Data<Commands>,
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
    let key = idempotency_key(&req, player)?;
    let outcome = apply_click(&commands, player, None, body.into(), key).await?;
    Ok(HttpResponse::Ok().json(outcome))
}

async fn leave(
    req: HttpRequest,
    commands: web::Data<Commands>,
    player: AuthPlayer,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&req, player.0)?;
    commands
        .run(Command::Leave { player: player.0 }, key)
        .await?;
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
async fn ticket(
    commands: web::Data<Commands>,
    player: AuthPlayer,
) -> Result<HttpResponse, ApiError> {
    let Reply::Ticket { ticket } = commands
        .run(Command::Ticket { player: player.0 }, None)
        .await?
    else {
        return Err(ApiError::internal(
            "a ticket request answered with something else",
        ));
    };
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "ticket": ticket,
        "expires_in_ms": TICKET_TTL.as_millis() as u64,
    })))
}

async fn snapshot(hub: web::Data<Hub>) -> HttpResponse {
    HttpResponse::Ok().json(hub.snapshot())
}
