//! # The attacker's site: another origin, its own permissive CSP, six buttons
//!
//! With `--lab` a second listener (`--lab-attacker-addr`, default `127.0.0.1:8666`) serves a
//! page an attacker controls, `/attacker.html`, which a logged-in student "visits". It is a
//! different **origin** from the game (the port differs) but the same **site** (ports do not
//! count for SameSite), so the student's SameSite=Strict session cookie rides along on every
//! request the page makes to the game: only the game's Origin check stands between the page and
//! the student's session — the lesson of Cross-Site WebSocket Hijacking. (Cookies are not
//! isolated by port at all: this server receives the cookie too when the page is opened. It does
//! not look at it; a real attacker on another port of the game's host could. The page says so.)
//!
//! Every answer carries the attacker's own, deliberately permissive Content-Security-Policy
//! ([`PERMISSIVE_CSP`], the same as the browser tests' attacker fixture, `e2e/attacker.mjs`): the
//! browser's CSP never stops an attack here, so what stops one is the game server.
//!
//! The page's files are compiled into the binary (`site/`), so the game's own `web/` directory
//! never serves them: on the game's origin they would pass the Origin check and prove nothing.
//!
//! | path | what |
//! |---|---|
//! | `GET /`, `/attacker.html`, `/attacker.js`, `/attacker.css` | the page |
//! | `GET /target` | the game's ports on this host, for the page's URLs |
//! | `GET /observe` | the game's public snapshot, fetched by this server like any client |
//! | `POST /attack/{3..6}?victim=ID` | attacks 3–6, run by this server ([`super::attacks`]) |
//!
//! Attacks 1 and 2 run in the visitor's browser (`attacker.js`): they need the victim's cookie.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use actix_server::Server;
use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header,
    middleware::{from_fn, Next},
    web, App, HttpResponse,
};
use serde::{Deserialize, Serialize};

use super::attacks::{self, Game};
use crate::limits::SocketLimiter;
use crate::listener::{HttpSettings, Listeners};

/// The attacker's CSP: everything allowed, so only the game server can refuse an attack. The
/// same string as `PERMISSIVE_CSP` in `e2e/attacker.mjs` (the browser test compares them).
pub const PERMISSIVE_CSP: &str = "default-src * data: blob: 'unsafe-inline' 'unsafe-eval'; \
script-src * data: blob: 'unsafe-inline' 'unsafe-eval'; \
connect-src * ws: wss: http: https: data: blob:; \
img-src * data: blob:; style-src * 'unsafe-inline'; form-action *; frame-src *";

const PAGE: &str = include_str!("site/attacker.html");
const SCRIPT: &str = include_str!("site/attacker.js");
const STYLE: &str = include_str!("site/attacker.css");

/// Where the game is, seen from the attacker's server.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The game's plain-HTTP listener, as this process can dial it.
    pub http: SocketAddr,
    pub https_port: Option<u16>,
}

/// One attack at a time, and a number for the attacker's player names.
#[derive(Debug, Default)]
struct Gate {
    busy: AtomicBool,
    next: AtomicU64,
}

/// Releases the gate when an attack ends, however it ends.
struct Running<'a>(&'a Gate);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Release);
    }
}

/// Starts the attacker's site on `listener`, counted by the same socket limiter as the game's
/// listeners (its connections count toward the per-address and overall caps).
pub fn start(
    listener: TcpListener,
    target: Target,
    settings: HttpSettings,
    sockets: SocketLimiter,
) -> io::Result<Server> {
    let gate = web::Data::new(Gate::default());
    let target = web::Data::new(target);
    let app = move || {
        App::new()
            .wrap(from_fn(site_headers))
            .app_data(gate.clone())
            .app_data(target.clone())
            .route("/", web::get().to(page))
            .route("/attacker.html", web::get().to(page))
            .route("/attacker.js", web::get().to(script))
            .route("/attacker.css", web::get().to(style))
            .route("/target", web::get().to(target_ports))
            .route("/observe", web::get().to(observe))
            .route("/attack/{n}", web::post().to(attack))
            .default_service(web::to(|| async {
                HttpResponse::NotFound()
                    .content_type("text/plain; charset=utf-8")
                    .body("the attacker serves /attacker.html")
            }))
    };
    let settings = HttpSettings {
        workers: 1,
        ..settings
    };
    Ok(Listeners::new(app, settings, sockets)
        .listen(listener)?
        .run())
}

/// The attacker's headers on every answer: its permissive CSP, and no caching.
async fn site_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(PERMISSIVE_CSP),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}

async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(PAGE)
}

async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(SCRIPT)
}

async fn style() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(STYLE)
}

#[derive(Serialize)]
struct Ports {
    http_port: u16,
    https_port: Option<u16>,
}

async fn target_ports(target: web::Data<Target>) -> HttpResponse {
    HttpResponse::Ok().json(Ports {
        http_port: target.http.port(),
        https_port: target.https_port,
    })
}

fn game(target: &Target) -> Game {
    Game::new(format!("http://{}", target.http))
}

/// The game's public snapshot: what any client may read, fetched by this server (the page
/// itself may not read the game's answers: they carry no CORS header).
async fn observe(target: web::Data<Target>) -> HttpResponse {
    match game(&target).snapshot().await {
        Ok(snapshot) => HttpResponse::Ok().json(snapshot),
        Err(e) => HttpResponse::BadGateway()
            .json(serde_json::json!({"error": "game_unreachable", "detail": e})),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AttackQuery {
    victim: Option<u64>,
}

async fn attack(
    path: web::Path<u8>,
    query: web::Query<AttackQuery>,
    gate: web::Data<Gate>,
    target: web::Data<Target>,
) -> HttpResponse {
    let n = path.into_inner();
    if !(3..=6).contains(&n) {
        return HttpResponse::NotFound().json(serde_json::json!({
            "error": "no_such_attack",
            "detail": "attacks 3 to 6 run here; 1 and 2 run in your browser"
        }));
    }
    if gate.busy.swap(true, Ordering::AcqRel) {
        return HttpResponse::Conflict().json(serde_json::json!({
            "error": "busy",
            "detail": "one attack at a time: wait for the running one"
        }));
    }
    let _running = Running(&gate);
    let game = game(&target);
    let k = gate.next.fetch_add(1, Ordering::Relaxed) + 1;
    let attacker = format!("Mallory {k}");
    let transcript = match n {
        3 => attacks::wrong_protocol(&game).await,
        4 => attacks::bad_input(&game, &attacker).await,
        5 => attacks::impersonation(&game, &attacker, query.victim).await,
        _ => attacks::poisoned_name(&game, k).await,
    };
    HttpResponse::Ok().json(transcript)
}
