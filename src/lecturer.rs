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

use crate::clustered::{self, Broadcast};
use crate::commands::{Command, Commands, Reply};
use crate::error::ApiError;
use crate::game::{PlayerId, Transport, POLL_INTERVAL_MS};
use crate::hub::Hub;
use crate::lab::{Lab, LabStats};
use crate::log::now_ms;
use crate::metrics::TransportStats;
use crate::security;
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
                    web::post().to(move |commands: web::Data<Commands>, _: Admin| async move {
                        control(&commands, handler).await
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

/// In a cluster: which node answered, whether it runs the game, and whether it reaches Redis.
#[derive(Debug, Serialize)]
struct NodeStats {
    id: String,
    authority: bool,
    /// `ok`, `unreachable` (or `unknown` in the first moment after start).
    redis: &'static str,
    /// The node that runs the game, as far as this node knows (`null` during a failover).
    authority_node: Option<String>,
}

#[derive(Debug, Serialize)]
struct Stats {
    uptime_s: u64,
    /// Only in a cluster (`--redis-url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<NodeStats>,
    transports: Transports,
    admin: AdminState,
    /// With `--lab` only: which defences are off, so every page can show the banner.
    #[serde(skip_serializing_if = "Option::is_none")]
    lab: Option<LabStats>,
}

fn node_stats(hub: &Hub) -> Option<NodeStats> {
    let node = hub.node()?;
    let redis = node.health().borrow().as_str();
    Some(NodeStats {
        id: node.id().to_string(),
        authority: node.is_authority(),
        redis,
        authority_node: node.authority_id(),
    })
}

fn admin_state(hub: &Hub) -> AdminState {
    admin_state_with(
        hub,
        hub.is_paused(),
        hub.joins_open(),
        hub.poll_interval_ms(),
    )
}

/// The game's switches as given (after a control: as the game that ran it has them, which in a
/// cluster may be ahead of this node's replica), with this node's simulated delays.
fn admin_state_with(
    hub: &Hub,
    paused: bool,
    joins_open: bool,
    poll_interval_ms: u64,
) -> AdminState {
    let ms = |t| hub.delay(t).as_millis() as u64;
    AdminState {
        paused,
        joins_open,
        poll_interval_ms,
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
            node: node_stats(&hub),
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
    let body = match node_stats(&hub) {
        None => hub.metrics().prometheus(),
        Some(node) => {
            let mut body = hub.metrics().prometheus_for_node(&node.id);
            let id = &node.id;
            body.push_str(&format!(
                "# HELP clickgame_node_authority Whether this node runs the game (holds the lease).\n\
                 # TYPE clickgame_node_authority gauge\n\
                 clickgame_node_authority{{node=\"{id}\"}} {}\n\
                 # HELP clickgame_redis_up Whether this node reaches Redis.\n\
                 # TYPE clickgame_redis_up gauge\n\
                 clickgame_redis_up{{node=\"{id}\"}} {}\n",
                u8::from(node.authority),
                u8::from(node.redis == "ok"),
            ));
            body
        }
    };
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(body)
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

/// Runs a control that changes the game on the game (here, or the authority's in a cluster)
/// and answers with the switches as the game has them afterwards.
async fn game_control(commands: &Commands, cmd: Command) -> Result<HttpResponse, ApiError> {
    let hub = commands.hub();
    match commands.run(cmd, None).await? {
        Reply::Game {
            paused,
            joins_open,
            poll_interval_ms,
        } => Ok(HttpResponse::Ok().json(admin_state_with(
            hub,
            paused,
            joins_open,
            poll_interval_ms,
        ))),
        _ => Err(ApiError::internal("a control answered with something else")),
    }
}

async fn control(commands: &Commands, what: Control) -> Result<HttpResponse, ApiError> {
    tracing::info!(control = ?what, "lecturer control");
    match what {
        Control::Pause => game_control(commands, Command::Paused { paused: true }).await,
        Control::Resume => game_control(commands, Command::Paused { paused: false }).await,
        Control::Reset => game_control(commands, Command::Reset).await,
        Control::Disconnect => {
            // Every node's connections, in a cluster.
            clustered::broadcast(commands.hub(), Broadcast::Disconnect).await?;
            Ok(HttpResponse::Ok().json(admin_state(commands.hub())))
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PollInterval {
    ms: u64,
}

async fn poll_interval(
    commands: web::Data<Commands>,
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
    game_control(&commands, Command::PollInterval { ms: body.ms }).await
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
    tracing::info!(transport = %body.transport, ms = body.ms, "lecturer set a simulated delay");
    // On every node, in a cluster: the delay is the network's, whichever node a client is on.
    let control = Broadcast::Delay {
        transport: body.transport,
        ms: body.ms,
    };
    clustered::broadcast(&hub, control.clone()).await?;
    // Our own copy of the broadcast may still be on its way: answer with the delay in place.
    hub.set_delay(body.transport, body.ms);
    Ok(HttpResponse::Ok().json(admin_state(&hub)))
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
    commands: web::Data<Commands>,
    _: Admin,
    body: web::Json<Kick>,
) -> Result<HttpResponse, ApiError> {
    commands
        .run(
            Command::Kick {
                player: body.player,
            },
            None,
        )
        .await?;
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
    commands: web::Data<Commands>,
    _: Admin,
    body: web::Json<Rename>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let cmd = Command::Rename {
        player: body.player,
        name: body.name,
    };
    let Reply::Renamed { name } = commands.run(cmd, None).await? else {
        return Err(ApiError::internal("a rename answered with something else"));
    };
    Ok(HttpResponse::Ok().json(serde_json::json!({ "player": body.player, "name": name })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Joins {
    open: bool,
}

/// `POST /api/admin/joins {"open": bool}`: while closed, `POST /api/join` is `403 joins_closed`.
async fn joins(
    commands: web::Data<Commands>,
    _: Admin,
    body: web::Json<Joins>,
) -> Result<HttpResponse, ApiError> {
    tracing::info!(
        open = body.open,
        "lecturer {} joining",
        if body.open { "opened" } else { "closed" }
    );
    game_control(&commands, Command::Joins { open: body.open }).await
}
