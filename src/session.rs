//! # Player sessions
//!
//! `POST /api/join` hands out a token and sets it as an HttpOnly, SameSite=Strict cookie:
//! browsers attach it to `EventSource` and `WebSocket` requests, which cannot carry custom
//! headers. Non-browser clients send `Authorization: Bearer <token>` instead. The extractors
//! here turn either into a player id.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, http::header, web, FromRequest, HttpRequest};

use crate::error::ApiError;
use crate::game::PlayerId;
use crate::hub::Hub;

pub const SESSION_COOKIE: &str = "clickgame_session";

/// The session token a request carries, Bearer header first.
pub fn token(req: &HttpRequest) -> Option<String> {
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    bearer.or_else(|| req.cookie(SESSION_COOKIE).map(|c| c.value().to_string()))
}

fn player_of(req: &HttpRequest) -> Option<PlayerId> {
    let hub = req.app_data::<web::Data<Hub>>()?;
    hub.authenticate(&token(req)?)
}

/// Who a downstream request watches as. An explicit `?ticket=` wins over the page's cookie (a
/// page holding several players, like the compare page's race bots, shares one cookie jar);
/// `?spectate=1` watches anonymously even when a session cookie rides along (the compare page's
/// spectator panes must not count as the page's player).
fn viewer(req: &HttpRequest) -> Option<PlayerId> {
    let query =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .ok();
    if let Some(ticket) = query.as_ref().and_then(|q| q.get("ticket")) {
        return req.app_data::<web::Data<Hub>>()?.redeem_ticket(ticket);
    }
    let spectate = query.as_ref().and_then(|q| q.get("spectate"));
    if spectate.is_some_and(|v| v == "1" || v == "true") {
        return None;
    }
    player_of(req)
}

/// A player if the request carries a valid session (cookie, Bearer, or a one-time `?ticket=`),
/// otherwise a spectator. Downstream GETs use this: anyone may watch.
#[derive(Debug, Clone, Copy)]
pub struct MaybePlayer(pub Option<PlayerId>);

impl FromRequest for MaybePlayer {
    type Error = ApiError;
    type Future = Ready<Result<MaybePlayer, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(MaybePlayer(viewer(req))))
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
