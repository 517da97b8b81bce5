//! # Figures and lecturer controls
//!
//! Read-only figures for everyone: `GET /api/stats` (JSON for the pages), `GET /metrics`
//! (Prometheus), `GET /api/time` (server clock, for the pages' NTP-style offset estimate).
//!
//! Controls for the lecturer, behind the admin token (`Authorization: Bearer <token>`, `403`
//! otherwise; the token is `--admin-token` or printed at start-up): pause/resume rounds, reset
//! scores, change the AJAX polling interval for every client, add a simulated network delay to
//! one transport, and drop every open connection to show how clients resume. And, to keep a
//! room of a hundred students civil on the projector: remove a player, rename one (the new name
//! passes the join's checks), and close or reopen joining.

use std::future::{ready, Ready};

use actix_web::{
    dev::Payload, http::header, http::StatusCode, middleware::from_fn, web, FromRequest,
    HttpRequest, HttpResponse,
};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::game::{GameError, PlayerId, Transport, POLL_INTERVAL_MS};
use crate::hub::Hub;
use crate::lab::{Lab, LabStats};
use crate::log::now_ms;
use crate::metrics::TransportStats;
use crate::security::{self, RateLimiter};
use crate::session;
use crate::transport::method_not_allowed;

/// Longest simulated delay a lecturer may set, in ms.
pub const MAX_SIMULATED_DELAY_MS: u64 = 5000;

/// The lecturer's secret.
#[derive(Debug, Clone)]
pub struct AdminToken(pub String);

/// The API's figures and controls, mounted inside the `/api` scope (paths are relative to it).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/stats")
            .route(web::get().to(stats))
            .default_service(method_not_allowed("GET")),
    )
    .service(
        web::resource("/time")
            .route(web::get().to(time))
            .default_service(method_not_allowed("GET")),
    );
    for (path, handler) in [
        ("/admin/pause", Control::Pause),
        ("/admin/resume", Control::Resume),
        ("/admin/reset", Control::Reset),
        ("/admin/disconnect", Control::Disconnect),
    ] {
        cfg.service(
            web::resource(path)
                .route(
                    web::post().to(move |hub: web::Data<Hub>, _: Admin| async move {
                        control(&hub, handler)
                    }),
                )
                .default_service(method_not_allowed("POST")),
        );
    }
    cfg.service(
        web::resource("/admin/poll-interval")
            .route(web::post().to(poll_interval))
            .default_service(method_not_allowed("POST")),
    )
    .service(
        web::resource("/admin/delay")
            .route(web::post().to(delay))
            .default_service(method_not_allowed("POST")),
    )
    .service(
        web::resource("/admin/kick")
            .route(web::post().to(kick))
            .default_service(method_not_allowed("POST")),
    )
    .service(
        web::resource("/admin/rename")
            .route(web::post().to(rename))
            .default_service(method_not_allowed("POST")),
    )
    .service(
        web::resource("/admin/joins")
            .route(web::post().to(joins))
            .default_service(method_not_allowed("POST")),
    );
}

/// `GET /metrics`, outside `/api` where Prometheus expects it. Scrapers send no `Origin`; a
/// browser page of another origin gets the same `403` as on the API (the figures are the ones
/// `/api/stats` serves, so they are guarded alike).
pub fn configure_metrics(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/metrics")
            .wrap(from_fn(security::origin_check))
            .route(web::get().to(prometheus))
            .default_service(method_not_allowed("GET")),
    );
}

/// A request carrying the admin token.
pub struct Admin;

impl FromRequest for Admin {
    type Error = ApiError;
    type Future = Ready<Result<Admin, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let expected = req.app_data::<web::Data<AdminToken>>();
        let given = session::bearer(req);
        let ok = match (expected, given) {
            (Some(expected), Some(given)) => {
                given.len() == expected.0.len()
                    && openssl::memcmp::eq(given.as_bytes(), expected.0.as_bytes())
            }
            _ => false,
        };
        ready(if ok {
            Ok(Admin)
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "admin_required",
                "lecturer controls need the admin token: Authorization: Bearer <admin token>",
            ))
        })
    }
}

#[derive(Debug, Serialize)]
struct Transports {
    ajax: TransportStats,
    longpoll: TransportStats,
    sse: TransportStats,
    websocket: TransportStats,
}

#[derive(Debug, Serialize)]
struct Delays {
    ajax: u64,
    longpoll: u64,
    sse: u64,
    websocket: u64,
}

#[derive(Debug, Serialize)]
struct AdminState {
    paused: bool,
    joins_open: bool,
    poll_interval_ms: u64,
    delay_ms: Delays,
}

#[derive(Debug, Serialize)]
struct Stats {
    uptime_s: u64,
    transports: Transports,
    admin: AdminState,
    /// With `--lab` only: which defences are off, so every page can show the banner.
    #[serde(skip_serializing_if = "Option::is_none")]
    lab: Option<LabStats>,
}

fn admin_state(hub: &Hub) -> AdminState {
    let ms = |t| hub.delay(t).as_millis() as u64;
    AdminState {
        paused: hub.is_paused(),
        joins_open: hub.joins_open(),
        poll_interval_ms: hub.poll_interval_ms(),
        delay_ms: Delays {
            ajax: ms(Transport::Ajax),
            longpoll: ms(Transport::Longpoll),
            sse: ms(Transport::Sse),
            websocket: ms(Transport::Websocket),
        },
    }
}

async fn stats(req: HttpRequest, hub: web::Data<Hub>) -> HttpResponse {
    let lab = req.app_data::<web::Data<Lab>>();
    let m = hub.metrics();
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(Stats {
            uptime_s: m.uptime_s(),
            transports: Transports {
                ajax: m.stats(Transport::Ajax),
                longpoll: m.stats(Transport::Longpoll),
                sse: m.stats(Transport::Sse),
                websocket: m.stats(Transport::Websocket),
            },
            admin: admin_state(&hub),
            lab: lab.map(|l| l.stats()),
        })
}

async fn prometheus(hub: web::Data<Hub>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(hub.metrics().prometheus())
}

async fn time() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "ts": now_ms() }))
}

#[derive(Debug, Clone, Copy)]
enum Control {
    Pause,
    Resume,
    Reset,
    Disconnect,
}

fn control(hub: &Hub, what: Control) -> Result<HttpResponse, ApiError> {
    match what {
        Control::Pause => hub.set_paused(true),
        Control::Resume => hub.set_paused(false),
        Control::Reset => hub.reset_scores(),
        Control::Disconnect => hub.disconnect_all(),
    }
    tracing::info!(control = ?what, "lecturer control");
    Ok(HttpResponse::Ok().json(admin_state(hub)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PollInterval {
    ms: u64,
}

async fn poll_interval(
    hub: web::Data<Hub>,
    _: Admin,
    body: web::Json<PollInterval>,
) -> Result<HttpResponse, ApiError> {
    if !POLL_INTERVAL_MS.contains(&body.ms) {
        return Err(ApiError::bad_request(
            "bad_interval",
            format!(
                "the polling interval must be {} to {} ms",
                POLL_INTERVAL_MS.start(),
                POLL_INTERVAL_MS.end()
            ),
        ));
    }
    hub.set_poll_interval(body.ms);
    Ok(HttpResponse::Ok().json(admin_state(&hub)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Delay {
    transport: Transport,
    ms: u64,
}

async fn delay(
    hub: web::Data<Hub>,
    _: Admin,
    body: web::Json<Delay>,
) -> Result<HttpResponse, ApiError> {
    if body.ms > MAX_SIMULATED_DELAY_MS {
        return Err(ApiError::bad_request(
            "bad_delay",
            format!("the simulated delay must be 0 to {MAX_SIMULATED_DELAY_MS} ms"),
        ));
    }
    hub.set_delay(body.transport, body.ms);
    tracing::info!(transport = %body.transport, ms = body.ms, "lecturer set a simulated delay");
    Ok(HttpResponse::Ok().json(admin_state(&hub)))
}

/// The game's refusals, as a lecturer control answers them: a player who is not (or no longer)
/// in the game is `404 no_such_player` here, not the `401` a player's own request gets.
fn admin_error(err: GameError) -> ApiError {
    match err {
        GameError::UnknownPlayer(id) => ApiError::new(
            StatusCode::NOT_FOUND,
            "no_such_player",
            format!("player {id} is not in the game"),
        ),
        other => ApiError::from(other),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kick {
    player: PlayerId,
}

/// `POST /api/admin/kick {"player": id}`: the player leaves with reason `kicked`, and their
/// session token dies (a kicked player who wants back in must join anew — which the lecturer
/// can stop by closing joining).
async fn kick(
    hub: web::Data<Hub>,
    limiter: web::Data<RateLimiter>,
    _: Admin,
    body: web::Json<Kick>,
) -> Result<HttpResponse, ApiError> {
    hub.kick(body.player).map_err(admin_error)?;
    limiter.forget(body.player);
    tracing::info!(player = body.player, "lecturer removed a player");
    Ok(HttpResponse::Ok().json(serde_json::json!({ "player": body.player, "kicked": true })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rename {
    player: PlayerId,
    name: String,
}

/// `POST /api/admin/rename {"player": id, "name": "…"}`: the name goes through the join's
/// validation and uniqueness (`400 invalid_name`, `409 name_taken`); answers the name as stored.
async fn rename(
    hub: web::Data<Hub>,
    _: Admin,
    body: web::Json<Rename>,
) -> Result<HttpResponse, ApiError> {
    let name = hub.rename(body.player, &body.name).map_err(admin_error)?;
    tracing::info!(player = body.player, name, "lecturer renamed a player");
    Ok(HttpResponse::Ok().json(serde_json::json!({ "player": body.player, "name": name })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Joins {
    open: bool,
}

/// `POST /api/admin/joins {"open": bool}`: while closed, `POST /api/join` is `403 joins_closed`.
async fn joins(
    hub: web::Data<Hub>,
    _: Admin,
    body: web::Json<Joins>,
) -> Result<HttpResponse, ApiError> {
    hub.set_joins_open(body.open);
    tracing::info!(
        open = body.open,
        "lecturer {} joining",
        if body.open { "opened" } else { "closed" }
    );
    Ok(HttpResponse::Ok().json(admin_state(&hub)))
}
