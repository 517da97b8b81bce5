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
//! | `GET /target` | the game's ports on this host (and this site's HTTPS port), for the page |
//! | `GET /observe` | the game's public snapshot, fetched by this server like any client |
//! | `POST /attack/{3..6}?victim=ID&tls=true` | attacks 3–6, run by this server ([`super::attacks`]) |
//!
//! Attacks 1 and 2 run in the visitor's browser (`attacker.js`): they need the victim's cookie.
//!
//! **Over TLS.** When the game has its HTTPS/WSS listener, the site serves the same page over
//! HTTPS too, on a second port of the same address (the game's certificate, which names this
//! host), and the page opened as `https://…` attacks the game's `https://`/`wss://` listener:
//! attacks 1 and 2 from the browser, 3–6 from this server (`tls=true`). It has to be a page of
//! its own: browsers count the *scheme* in SameSite too (Chromium since version 89, "schemeful
//! same-site"), so from `http://127.0.0.1:8666` a `wss://127.0.0.1:8443` handshake is
//! cross-site and the victim's SameSite=Strict cookie stays home — the hijack would read the
//! game but not act as the victim, and prove nothing about TLS. From `https://127.0.0.1:<port>`
//! it is same-site again, and the attack works exactly as over `ws://`: TLS secures the
//! channel, not what travels in it (the lecture's WSS slide).

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use actix_server::Server;
use actix_web::{
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::{header, StatusCode},
    middleware::{from_fn, Next},
    web, App, HttpResponse, ResponseError,
};
use openssl::ssl::SslAcceptorBuilder;
use serde::{Deserialize, Serialize};

use super::attacks::{self, Game};
use crate::error::ApiError;
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

/// Where the site itself listens once started.
#[derive(Debug, Clone, Copy)]
struct Site {
    http_port: u16,
    /// This site over HTTPS (with the game's TLS listener only).
    https_port: Option<u16>,
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
/// listeners (its connections count toward the per-address and overall caps). With `tls` (the
/// game's certificate, when the game has its TLS listener) the site also serves HTTPS, on a
/// free port of the same address — as reachable as the plain one, and no further. Returns the
/// server and the HTTPS address.
pub fn start(
    listener: TcpListener,
    target: Target,
    settings: HttpSettings,
    sockets: SocketLimiter,
    tls: Option<SslAcceptorBuilder>,
) -> io::Result<(Server, Option<SocketAddr>)> {
    let tls = match tls {
        Some(acceptor) => {
            let at = SocketAddr::new(listener.local_addr()?.ip(), 0);
            let tls_listener = TcpListener::bind(at)?;
            Some((tls_listener, acceptor))
        }
        None => None,
    };
    let https_addr = tls.as_ref().map(|(l, _)| l.local_addr()).transpose()?;
    let gate = web::Data::new(Gate::default());
    let target = web::Data::new(target);
    let site = web::Data::new(Site {
        http_port: listener.local_addr()?.port(),
        https_port: https_addr.map(|a| a.port()),
    });
    let app = move || {
        App::new()
            .wrap(from_fn(site_headers))
            .app_data(gate.clone())
            .app_data(target.clone())
            .app_data(site.clone())
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
    let mut server = Listeners::new(app, settings, sockets).listen(listener)?;
    if let Some((tls_listener, acceptor)) = tls {
        server = server.listen_tls(tls_listener, acceptor)?;
    }
    Ok((server.run(), https_addr))
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
    /// The game's plain and TLS listeners.
    http_port: u16,
    https_port: Option<u16>,
    /// This page over plain HTTP, and over HTTPS (to attack the game's TLS listener from).
    attacker_http_port: u16,
    attacker_https_port: Option<u16>,
}

async fn target_ports(target: web::Data<Target>, site: web::Data<Site>) -> HttpResponse {
    HttpResponse::Ok().json(Ports {
        http_port: target.http.port(),
        https_port: target.https_port,
        attacker_http_port: site.http_port,
        attacker_https_port: site.https_port,
    })
}

fn game(target: &Target) -> Game {
    Game::new(format!("http://{}", target.http))
}

/// The game's TLS listener, on the address this process dials the plain one at.
fn game_over_tls(target: &Target) -> Result<Game, ApiError> {
    let Some(port) = target.https_port else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no_tls",
            "the game runs without its TLS listener (--no-tls): nothing to attack over TLS",
        ));
    };
    let at = SocketAddr::new(target.http.ip(), port);
    Game::over_tls(format!("https://{at}"))
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "tls_client", e))
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
    /// Attack the game's `https://`/`wss://` listener instead of its plain one.
    #[serde(default)]
    tls: bool,
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
    let game = if query.tls {
        match game_over_tls(&target) {
            Ok(game) => game,
            Err(refusal) => return refusal.error_response(),
        }
    } else {
        game(&target)
    };
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
