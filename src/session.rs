//! # Player sessions
//!
//! `POST /api/join` hands out a token and sets it as an HttpOnly, SameSite=Strict cookie:
//! browsers attach it to `EventSource` and `WebSocket` requests, which cannot carry custom
//! headers. Non-browser clients send `Authorization: Bearer <token>` instead (the scheme in any
//! case, as RFC 7235 says). The extractors here turn either into a player id.
//!
//! A one-time `?ticket=` is *checked* by the extractor but *spent* only by
//! [`MaybePlayer::commit`], which a handler calls once it has accepted the request: a request
//! refused for a reason of its own (no sub-protocol, the connection cap) leaves the ticket for
//! its retry. Spending it in the extractor, as we first did, let every refusal burn it.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};

use crate::error::ApiError;
use crate::game::PlayerId;
use crate::hub::Hub;
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

/// The session token a request carries, Bearer header first.
pub fn token(req: &HttpRequest) -> Option<String> {
    bearer(req)
        .map(str::to_string)
        .or_else(|| req.cookie(SESSION_COOKIE).map(|c| c.value().to_string()))
}

fn player_of(req: &HttpRequest) -> Option<PlayerId> {
    let hub = req.app_data::<web::Data<Hub>>()?;
    hub.authenticate(&token(req)?)
}

/// A ticket that was valid when the request arrived, not yet spent.
struct Pending {
    hub: Hub,
    tickets: Tickets,
    ticket: String,
}

/// Who a downstream request watches as. An explicit `?ticket=` wins over the page's cookie (a
/// page holding several players, like the compare page's race bots, shares one cookie jar);
/// `?spectate=1` watches anonymously even when a session cookie rides along (the compare page's
/// spectator panes must not count as the page's player).
fn viewer(req: &HttpRequest) -> (Option<PlayerId>, Option<Pending>) {
    let query =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .ok();
    if let Some(ticket) = query.as_ref().and_then(|q| q.get("ticket")) {
        let (Some(hub), Some(tickets)) = (
            req.app_data::<web::Data<Hub>>(),
            req.app_data::<web::Data<Tickets>>(),
        ) else {
            return (None, None);
        };
        return match tickets.check(ticket, |p| hub.has_session(p)) {
            Some(player) => (
                Some(player),
                Some(Pending {
                    hub: hub.get_ref().clone(),
                    tickets: tickets.get_ref().clone(),
                    ticket: ticket.clone(),
                }),
            ),
            None => (None, None),
        };
    }
    let spectate = query.as_ref().and_then(|q| q.get("spectate"));
    if spectate.is_some_and(|v| v == "1" || v == "true") {
        return (None, None);
    }
    (player_of(req), None)
}

/// A player if the request carries a valid session (cookie, Bearer, or a one-time `?ticket=`),
/// otherwise a spectator. Downstream GETs use this: anyone may watch.
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
    pub fn commit(self) -> Result<MaybePlayer, ApiError> {
        let Some(pending) = self.1 else {
            return Ok(self);
        };
        let hub = &pending.hub;
        match pending
            .tickets
            .redeem(&pending.ticket, |p| hub.has_session(p))
        {
            Some(player) if Some(player) == self.0 => Ok(MaybePlayer(Some(player), None)),
            _ => Err(ApiError::unauthorized()),
        }
    }
}

impl FromRequest for MaybePlayer {
    type Error = ApiError;
    type Future = Ready<Result<MaybePlayer, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let (player, pending) = viewer(req);
        ready(Ok(MaybePlayer(player, pending)))
    }
}

/// A request that must come from a player: `401` otherwise.
#[derive(Debug, Clone, Copy)]
pub struct AuthPlayer(pub PlayerId);

impl FromRequest for AuthPlayer {
    type Error = ApiError;
    type Future = Ready<Result<AuthPlayer, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            player_of(req)
                .map(AuthPlayer)
                .ok_or_else(ApiError::unauthorized),
        )
    }
}
