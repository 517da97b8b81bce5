//! # The WSS best-practices lab (`--lab`): each attack with the defence off, then on
//!
//! The lecture ends its security half with five WSS best practices: validate client input,
//! inspect the sub-protocol, validate server data, authenticate/authorise, check the Origin.
//! The server enforces all five all the time (`docs/security.md`). A defence that never fires
//! teaches little, so with `--lab` the lecturer can switch each one **off**, let the class watch
//! an attack work against a naive server, switch it back **on** and watch the same attack fail
//! with its exact status or close code — and read the lines of code that made the difference
//! (`docs/lab.md`, the exercise sheet).
//!
//! What `--lab` adds, and nothing of it exists without the flag:
//!
//! * **Defence switches** ([`Defence`]), all **on** at every start: `GET /api/admin/lab` and
//!   `POST /api/admin/lab` (admin token) read and flip them; the public `GET /api/stats` tells
//!   every page which are off (`"lab": {"off": […]}`), so each shows a red banner, and the pages
//!   render player names as HTML while `server_data` is off. The switches are read where each
//!   defence lives: `security::origin_check` (origin), the WebSocket handshake (subprotocol),
//!   the join, the frame guard and binary frames (input), `command::apply_click` (auth).
//! * **The defence log** ([`DefenceLog`]): every refusal with its rule, code, origin and client
//!   address, live on `/lab.html` and `/compare.html` (`GET /api/admin/lab/log?since=N`). The
//!   pages report what *they* refused (`server_data`) through `POST /api/lab/report`.
//! * **The attacker's site** ([`attacker`]), a second listener on another origin with its own
//!   permissive CSP, serving `/attacker.html`: one button per attack.
//!
//! What a switch never turns off: the process's own protections. Connection caps per address
//! and overall, socket deadlines, body sizes, the hard ceiling on WebSocket messages (a lifted
//! limit is [`LIFTED_WS_MAX_MESSAGE`], for at most [`LIFTED_SOCKETS`] sockets at once), the
//! click rate limit, UTF-8 checks done by the WebSocket library, and the crate-wide ban on
//! panicking on client data. The lab runs on loopback unless `--lab-allow-remote` says
//! otherwise, and `--lab` implies `--no-persist` (a lab game holds names a restore would refuse).

pub mod attacker;
pub mod attacks;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use actix_web::{http::header, http::StatusCode, web, FromRequest, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::lecturer::Admin;
use crate::log::now_ms;
use crate::refusal::{DefenceLog, Entry, Refusal, Rule, NO_WIRE_CODE};

/// Refusals the defence log keeps; older ones fall out of the ring.
pub const LOG_CAPACITY: usize = 1000;
/// At most this many entries per `GET /api/admin/lab/log` answer (ask again from `last_seq`).
pub const MAX_ENTRIES_PER_ANSWER: usize = 200;
/// With `input` off, a WebSocket message may be this large instead of 4 KiB: large enough for
/// the lab's 1 MiB frame, small enough that the process survives it.
pub const LIFTED_WS_MAX_MESSAGE: usize = 2 * 1024 * 1024;
/// Sockets that may use the lifted limit at the same time: the hard ceiling on what oversized
/// messages can make the server buffer is `LIFTED_SOCKETS × LIFTED_WS_MAX_MESSAGE` (16 MiB),
/// whoever sends them. Another socket that tries gets `1009` as if `input` were on.
pub const LIFTED_SOCKETS: usize = 8;
/// Reports from pages (`POST /api/lab/report`): a burst of this many...
pub const REPORT_BURST: f64 = 20.0;
/// ...then this many per second, for all pages together.
pub const REPORTS_PER_SEC: f64 = 5.0;

/// The five defences of the lecture's slide that the lab can switch off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Defence {
    Origin,
    Subprotocol,
    Input,
    Auth,
    ServerData,
}

impl Defence {
    pub const ALL: [Defence; 5] = [
        Defence::Origin,
        Defence::Subprotocol,
        Defence::Input,
        Defence::Auth,
        Defence::ServerData,
    ];

    fn index(self) -> usize {
        match self {
            Defence::Origin => 0,
            Defence::Subprotocol => 1,
            Defence::Input => 2,
            Defence::Auth => 3,
            Defence::ServerData => 4,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Defence::Origin => "origin",
            Defence::Subprotocol => "subprotocol",
            Defence::Input => "input",
            Defence::Auth => "auth",
            Defence::ServerData => "server_data",
        }
    }

    /// What the naive server does while this defence is off (for the start-up log and the
    /// warning when it is switched off).
    pub fn when_off(self) -> &'static str {
        match self {
            Defence::Origin => {
                "any Origin is accepted (cross-site WebSocket hijacking and cross-site clicks \
                 work), and JSON is also read from a text/plain body"
            }
            Defence::Subprotocol => {
                "a WebSocket handshake without clickgame.v1, or with another sub-protocol, is \
                 upgraded (the first offered protocol is echoed)"
            }
            Defence::Input => {
                "join names are stored as sent (markup too), WebSocket messages may be 2 MiB \
                 instead of 4 KiB (at most 8 sockets at once), and binary frames are read as text"
            }
            Defence::Auth => "a click's `player` field is trusted: anyone can click as anyone",
            Defence::ServerData => "the pages render player names as HTML",
        }
    }
}

impl std::fmt::Display for Defence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The lab's state: the switches, the defence log, the report bucket. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Lab {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    on: [AtomicBool; 5],
    log: Mutex<DefenceLog>,
    reports: Mutex<(f64, Instant)>,
    lifted_sockets: AtomicUsize,
    attacker_port: Option<u16>,
}

impl Lab {
    /// Every defence on. `attacker`: where the attacker's site listens, for the pages' links.
    pub fn new(attacker: Option<SocketAddr>) -> Lab {
        Lab {
            inner: Arc::new(Inner {
                on: Default::default(),
                log: Mutex::new(DefenceLog::new(LOG_CAPACITY)),
                reports: Mutex::new((REPORT_BURST, Instant::now())),
                lifted_sockets: AtomicUsize::new(0),
                attacker_port: attacker.map(|a| a.port()),
            }),
        }
        .with_all_on()
    }

    fn with_all_on(self) -> Lab {
        for d in Defence::ALL {
            self.inner.on[d.index()].store(true, Ordering::Relaxed);
        }
        self
    }

    pub fn is_on(&self, defence: Defence) -> bool {
        self.inner.on[defence.index()].load(Ordering::Relaxed)
    }

    /// Switches `defence`; says loudly when one goes off. Returns whether it changed.
    pub fn set(&self, defence: Defence, on: bool) -> bool {
        let was = self.inner.on[defence.index()].swap(on, Ordering::Relaxed);
        if was != on {
            if on {
                tracing::info!(defence = %defence, "LAB: defence back ON");
            } else {
                tracing::warn!(
                    defence = %defence,
                    "LAB: defence OFF — {}",
                    defence.when_off()
                );
            }
        }
        was != on
    }

    /// The defences that are off, in the order of [`Defence::ALL`].
    pub fn off(&self) -> Vec<Defence> {
        Defence::ALL
            .into_iter()
            .filter(|d| !self.is_on(*d))
            .collect()
    }

    /// Adds a refusal to the defence log (counting it is the caller's: see `security.rs`).
    pub fn record(&self, refusal: Refusal) {
        self.inner
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(refusal, now_ms());
    }

    /// Log entries after `since`, at most `max`, and the seq to continue from.
    pub fn log_since(&self, since: u64, max: usize) -> (Vec<Entry>, u64) {
        self.inner
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .since(since, max)
    }

    /// A place among the [`LIFTED_SOCKETS`] that may receive messages above the normal limit,
    /// held until dropped; `None` when all are taken.
    pub fn lift_socket(&self) -> Option<LiftedSocket> {
        let taken =
            self.inner
                .lifted_sockets
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < LIFTED_SOCKETS).then_some(n + 1)
                });
        taken.ok().map(|_| LiftedSocket(self.clone()))
    }

    /// One token of the report bucket, or how many seconds until the next.
    fn take_report_token(&self) -> Result<(), u64> {
        let mut bucket = self
            .inner
            .reports
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let (tokens, at) = *bucket;
        let tokens =
            (tokens + now.duration_since(at).as_secs_f64() * REPORTS_PER_SEC).min(REPORT_BURST);
        if tokens < 1.0 {
            *bucket = (tokens, now);
            return Err(((1.0 - tokens) / REPORTS_PER_SEC).ceil().max(1.0) as u64);
        }
        *bucket = (tokens - 1.0, now);
        Ok(())
    }

    /// What `GET /api/stats` says about the lab.
    pub fn stats(&self) -> LabStats {
        LabStats {
            off: self.off(),
            attacker_port: self.inner.attacker_port,
        }
    }
}

/// A socket's place among the [`LIFTED_SOCKETS`]; given back when dropped with the socket.
#[derive(Debug)]
pub struct LiftedSocket(Lab);

impl Drop for LiftedSocket {
    fn drop(&mut self) {
        self.0.inner.lifted_sockets.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The lab in `GET /api/stats`: public, so every page can show the banner.
#[derive(Debug, Clone, Serialize)]
pub struct LabStats {
    pub off: Vec<Defence>,
    /// The attacker's site, on this host (the pages link to it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attacker_port: Option<u16>,
}

/// Whether `defence` is on for a request served with `lab` (the app's `Data<Lab>`, if any).
/// Without `--lab` every defence is on, always.
pub fn defence_on(lab: Option<&web::Data<Lab>>, defence: Defence) -> bool {
    lab.is_none_or(|lab| lab.is_on(defence))
}

/// Registers `/admin/lab`, `/admin/lab/log` and `/lab/report` inside the `/api` scope. They
/// answer 404 unless the server runs with `--lab` (the `web::Data<Lab>` is there).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/admin/lab")
            .route(web::get().to(get_switches))
            .route(web::post().to(set_switches))
            .default_service(web::to(|req: HttpRequest| async move {
                enabled(&req)?;
                Err::<HttpResponse, _>(ApiError::method_not_allowed("use GET or POST"))
            })),
    )
    .service(
        web::resource("/admin/lab/log")
            .route(web::get().to(log_since))
            .default_service(web::to(|req: HttpRequest| async move {
                enabled(&req)?;
                Err::<HttpResponse, _>(ApiError::method_not_allowed("use GET"))
            })),
    )
    .service(
        web::resource("/lab/report")
            .route(web::post().to(report))
            .default_service(web::to(|req: HttpRequest| async move {
                enabled(&req)?;
                Err::<HttpResponse, _>(ApiError::method_not_allowed("use POST"))
            })),
    );
}

/// The lab, or 404 when `--lab` is off: the endpoints do not exist then.
fn enabled(req: &HttpRequest) -> Result<web::Data<Lab>, ApiError> {
    req.app_data::<web::Data<Lab>>()
        .cloned()
        .ok_or_else(|| ApiError::not_found("the lab is off: start the server with --lab"))
}

/// `{"defences": {"origin": true, …}}`: every defence, on or off.
#[derive(Debug, Serialize)]
struct SwitchesAnswer {
    defences: Switches,
}

#[derive(Debug, Serialize)]
struct Switches {
    origin: bool,
    subprotocol: bool,
    input: bool,
    auth: bool,
    server_data: bool,
}

fn answer(lab: &Lab) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(SwitchesAnswer {
            defences: Switches {
                origin: lab.is_on(Defence::Origin),
                subprotocol: lab.is_on(Defence::Subprotocol),
                input: lab.is_on(Defence::Input),
                auth: lab.is_on(Defence::Auth),
                server_data: lab.is_on(Defence::ServerData),
            },
        })
}

async fn get_switches(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let lab = enabled(&req)?;
    Admin::extract(&req).await?;
    Ok(answer(&lab))
}

/// `POST /api/admin/lab`: a flat object naming any of the defences; the others stay as they are.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SwitchRequest {
    origin: Option<bool>,
    subprotocol: Option<bool>,
    input: Option<bool>,
    auth: Option<bool>,
    server_data: Option<bool>,
}

async fn set_switches(req: HttpRequest, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let lab = enabled(&req)?;
    Admin::extract(&req).await?;
    let body = web::Json::<SwitchRequest>::from_request(&req, &mut payload.into_inner())
        .await
        .map_err(api_error)?;
    let SwitchRequest {
        origin,
        subprotocol,
        input,
        auth,
        server_data,
    } = body.into_inner();
    for (defence, on) in [
        (Defence::Origin, origin),
        (Defence::Subprotocol, subprotocol),
        (Defence::Input, input),
        (Defence::Auth, auth),
        (Defence::ServerData, server_data),
    ] {
        if let Some(on) = on {
            lab.set(defence, on);
        }
    }
    Ok(answer(&lab))
}

fn api_error(e: actix_web::Error) -> ApiError {
    match e.as_error::<ApiError>() {
        Some(api) => api.clone(),
        None => ApiError::bad_request("bad_json", e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SinceQuery {
    since: Option<u64>,
}

#[derive(Debug, Serialize)]
struct LogAnswer {
    entries: Vec<Entry>,
    last_seq: u64,
}

async fn log_since(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let lab = enabled(&req)?;
    Admin::extract(&req).await?;
    let query = web::Query::<SinceQuery>::from_query(req.query_string())
        .map_err(|e| ApiError::from_query(&e))?;
    let (entries, last_seq) = lab.log_since(query.since.unwrap_or(0), MAX_ENTRIES_PER_ANSWER);
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(LogAnswer { entries, last_seq }))
}

/// What a page refused of the server's data, for the defence log.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Report {
    /// `rendered_as_text` (a name carrying markup, shown as text) or `event_ignored` (an event
    /// that failed the page's own checks).
    code: String,
    detail: String,
}

/// `POST /api/lab/report`: a page tells the defence log that *it* refused something (rule
/// `server_data`). Public like the pages, behind the Origin check like every API route, and
/// rate-limited for all pages together ([`REPORT_BURST`], [`REPORTS_PER_SEC`]): a report is a
/// log line, not a command, so one bucket is enough.
async fn report(req: HttpRequest, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let lab = enabled(&req)?;
    let body = web::Json::<Report>::from_request(&req, &mut payload.into_inner())
        .await
        .map_err(api_error)?;
    let error = match body.code.as_str() {
        "rendered_as_text" => "rendered_as_text",
        "event_ignored" => "event_ignored",
        other => {
            return Err(ApiError::bad_request(
                "bad_json",
                format!("unknown report code {other:?}; use rendered_as_text or event_ignored"),
            ))
        }
    };
    lab.take_report_token().map_err(|wait| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("at most {REPORTS_PER_SEC} reports per second from all pages"),
        )
        .retry_after(wait)
    })?;
    let refusal = Refusal {
        rule: Rule::ServerData,
        code: NO_WIRE_CODE,
        error,
        detail: format!("a page: {}", body.detail),
        origin: req
            .headers()
            .get(header::ORIGIN)
            .map(|o| String::from_utf8_lossy(o.as_bytes()).into_owned()),
        peer: req.peer_addr(),
    };
    if let Some(hub) = req.app_data::<web::Data<crate::hub::Hub>>() {
        hub.metrics().refused(Rule::ServerData);
    }
    lab.record(refusal);
    Ok(HttpResponse::NoContent().finish())
}

/// With `--lab`: says at start-up what the lab is and what its switches would turn off.
/// `attacker_tls`: the attacker's page over HTTPS (when the game has its TLS listener).
pub fn log_start(attacker: SocketAddr, attacker_tls: Option<SocketAddr>, game: SocketAddr) {
    let defences: Vec<String> = Defence::ALL
        .iter()
        .map(|d| format!("{d}: {}", d.when_off()))
        .collect();
    let over_tls = attacker_tls.map_or(String::new(), |a| {
        format!(" (and on https://{a}/attacker.html, to attack the game's TLS listener)")
    });
    tracing::warn!(
        attacker = %format!("http://{attacker}/attacker.html"),
        "LAB MODE (--lab): an attacker's site listens on http://{attacker}/attacker.html{over_tls} \
         (another origin than the game's {game}; NOT on the Origin allow-list), and the \
         lecturer can switch defences OFF at /lab.html or /compare.html (admin token). All \
         start ON. Switched off, each makes this server deliberately vulnerable — {}. The \
         game is not saved (--lab implies --no-persist). Connection caps, deadlines, body \
         sizes, the click rate limit and the hard ceiling on WebSocket messages stay on.",
        defences.join("; ")
    );
}
