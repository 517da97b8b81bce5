//! # Player sessions
//!
//! `POST /api/join` hands out a token and sets it as an HttpOnly, SameSite=Strict cookie:
//! browsers attach it to `EventSource` and `WebSocket` requests, which cannot carry custom
//! headers. Non-browser clients send `Authorization: Bearer <token>` instead (the scheme in any
//! case, as RFC 7235 says). The extractors here turn either into a player id.
//!
//! Which credential counts, and when a request gets `401`, is one rule for every transport and
//! command: `identify` below (and `docs/protocol.md`, "Credentials").
//!
//! A one-time `?ticket=` is *checked* by the extractor but *spent* only by
//! [`MaybePlayer::commit`], which a handler calls once it has accepted the request: a request
//! refused for a reason of its own (no sub-protocol, the connection cap) leaves the ticket for
//! its retry. Spending it in the extractor, as we first did, let every refusal burn it.
//!
//! In a cluster (`--redis-url`) the extractors stay synchronous and read the node's local
//! replica: a token is checked against the game's key (`cluster/sessions.rs`) and the replica
//! of the game (`hub/replica.rs`), without asking Redis. Only spending a ticket asks Redis
//! (`SET NX` of its nonce, so it is spent once on whichever node), which is why `commit` is
//! `async`.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};

use crate::error::ApiError;
use crate::game::PlayerId;
use crate::hub::Hub;
use crate::log::now_ms;
use crate::tickets::Tickets;

pub const SESSION_COOKIE: &str = "clickgame_session";

/// The credentials of `Authorization: Bearer <token>`. The scheme is matched without regard
/// to case (RFC 7235 §2.1: `bearer` and `BEARER` are the same scheme) and may be followed by
/// more than one space; anything else (`Basic …`, a bare token) is no Bearer credential.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim_start().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Whether a request may be served as a spectator when it presents no usable session: the
/// downstream GETs (anyone may watch), not the commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// `POST /api/click`, `/leave`, `/ticket`: a player or `401`.
    Player,
    /// `GET /api/poll`, `/longpoll`, `/sse`, `/ws`: a player, or else a spectator.
    Viewer,
}

/// A ticket that was valid when the request arrived, not yet spent.
struct Pending {
    hub: Hub,
    tickets: Tickets,
    ticket: String,
}

/// Who a request comes from: **the one credential rule**, the same on every transport.
///
/// 1. `?ticket=` (downstream only) wins over everything else — a page holding several players,
///    like the compare page's race bots, shares one cookie jar. Valid and unspent: that player
///    (spent later, by [`MaybePlayer::commit`]); otherwise `401`.
/// 2. `?spectate=1` (downstream only) watches anonymously and reads no other credential — the
///    compare page's spectator panes must not count as the page's player.
/// 3. An `Authorization` header must be `Bearer <a valid session token>`; anything else —
///    an unknown or stale token, another scheme — is `401`. A program sent it on purpose.
/// 4. The session cookie: valid, that player. A cookie that is no longer valid (the player
///    left, was forgotten after going idle, the server started afresh) is `401` on the
///    commands but only *not a session* on the downstream GETs: the page cannot delete an
///    HttpOnly cookie, so answering 401 would lock it out of watching until it joined again.
///    It watches as a spectator, and its next click's `401` sends it back to the join form.
/// 5. Nothing: a spectator downstream, `401` on the commands.
///
/// Every `401` comes before a stream starts: the extractor runs before the handler.
fn identify(
    req: &HttpRequest,
    need: Need,
) -> Result<(Option<PlayerId>, Option<Pending>), ApiError> {
    let hub = req
        .app_data::<web::Data<Hub>>()
        .ok_or_else(|| ApiError::internal("no hub in this app"))?;
    if need == Need::Viewer {
        let query =
            web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
                .ok();
        if let Some(ticket) = query.as_ref().and_then(|q| q.get("ticket")) {
            let tickets = req
                .app_data::<web::Data<Tickets>>()
                .ok_or_else(|| ApiError::internal("no ticket store in this app"))?;
            let player = match hub.node() {
                None => tickets.check(ticket, |p| hub.has_session(p)),
                Some(node) => node
                    .sessions()
                    .check_ticket(ticket, now_ms())
                    .ok()
                    .flatten()
                    .filter(|p| hub.has_session(*p)),
            }
            .ok_or_else(|| ApiError::bad_credential(BAD_TICKET))?;
            let pending = Pending {
                hub: hub.get_ref().clone(),
                tickets: tickets.get_ref().clone(),
                ticket: ticket.clone(),
            };
            return Ok((Some(player), Some(pending)));
        }
        let spectate = query.as_ref().and_then(|q| q.get("spectate"));
        if spectate.is_some_and(|v| v == "1" || v == "true") {
            return Ok((None, None));
        }
    }
    if req.headers().contains_key(header::AUTHORIZATION) {
        let player = bearer(req).and_then(|token| hub.authenticate(token));
        return player.map(|p| (Some(p), None)).ok_or_else(|| {
            ApiError::bad_credential(
                "this Authorization header is no `Bearer <token>` of a live session (another scheme, a forged token, or the player left, was kicked or the game was reset): join again",
            )
        });
    }
    let from_cookie = req
        .cookie(SESSION_COOKIE)
        .and_then(|c| hub.authenticate(c.value()));
    match (from_cookie, need) {
        (Some(player), _) => Ok((Some(player), None)),
        (None, Need::Viewer) => Ok((None, None)),
        (None, Need::Player) => Err(ApiError::unauthorized()),
    }
}

/// The `401` detail for a `?ticket=` that cannot be (or can no longer be) spent.
const BAD_TICKET: &str =
    "this ticket is unknown, already spent or expired (tickets are good for one request, 30 s): ask POST /api/ticket for a new one";

/// A player if the request carries a valid session (cookie, Bearer, or a one-time `?ticket=`),
/// otherwise a spectator; `401` for a presented credential that is not valid (the rule is
/// `identify`'s, above). Downstream GETs use this: anyone may watch.
///
/// With a ticket, `.0` is the player the ticket was issued to, but the ticket is still unspent:
/// the handler calls [`MaybePlayer::commit`] once nothing can refuse the request any more.
pub struct MaybePlayer(pub Option<PlayerId>, Option<Pending>);

impl std::fmt::Debug for MaybePlayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("MaybePlayer")
            .field(&self.0)
            .field(&self.1.as_ref().map(|_| "ticket not yet spent"))
            .finish()
    }
}

impl MaybePlayer {
    /// Spends the request's one-time ticket, if it presented one; a no-op otherwise. Call it
    /// after the last check that can refuse the request (query, sub-protocol, connection cap,
    /// handshake), right before the request is served. The spending is atomic: of two requests
    /// racing with one ticket, exactly one gets the player and the other `401`.
    pub async fn commit(self) -> Result<MaybePlayer, ApiError> {
        let Some(pending) = self.1 else {
            return Ok(self);
        };
        let hub = &pending.hub;
        let spent = match hub.node() {
            None => pending
                .tickets
                .redeem(&pending.ticket, |p| hub.has_session(p)),
            Some(node) => node
                .sessions()
                .spend_ticket(&pending.ticket, now_ms())
                .await
                .map_err(ApiError::from)?
                .filter(|p| hub.has_session(*p)),
        };
        match spent {
            Some(player) if Some(player) == self.0 => Ok(MaybePlayer(Some(player), None)),
            _ => Err(ApiError::bad_credential(BAD_TICKET)),
        }
    }
}

impl FromRequest for MaybePlayer {
    type Error = ApiError;
    type Future = Ready<Result<MaybePlayer, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(identify(req, Need::Viewer).map(|(player, pending)| MaybePlayer(player, pending)))
    }
}

/// A request that must come from a player (Bearer or cookie): `401` otherwise.
#[derive(Debug, Clone, Copy)]
pub struct AuthPlayer(pub PlayerId);

impl FromRequest for AuthPlayer {
    type Error = ApiError;
    type Future = Ready<Result<AuthPlayer, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            identify(req, Need::Player)
                .and_then(|(player, _)| player.map(AuthPlayer).ok_or_else(ApiError::unauthorized)),
        )
    }
}
