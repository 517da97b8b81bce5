//! # The server: one `App`, all transports, the web client
//!
//! [`start`] binds the listener (port 0 in tests), builds the hub, spawns its round timer and
//! the actix server (assembled in `listener.rs`, so every connection is counted from accept),
//! and returns a [`RunningServer`] with the bound address. `main` calls [`run`], which also
//! waits for Ctrl-C / SIGTERM itself and then calls [`RunningServer::stop`], the same graceful
//! path tests take: end every stream (WebSocket close 1001, SSE ends, long polls answer), stop
//! accepting, let in-flight requests finish, save the game. actix's own signal handling is off
//! (`listener.rs`): it would stop the server with streams still open and wait out its timeout.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use actix_files::Files;
use actix_web::{
    body::{EitherBody, MessageBody},
    dev::{fn_service, ServerHandle, ServiceRequest, ServiceResponse},
    guard,
    http::header,
    middleware::{from_fn, Next},
    web, App, HttpRequest,
};

use crate::classroom::{self, JoinInfo};
use crate::cluster::Node;
use crate::clustered::ClusterTasks;
use crate::commands::Commands;
use crate::config::Config;
use crate::eavesdrop::{self, Eavesdrop, RelayKind};
use crate::error::ApiError;
use crate::hub::Hub;
use crate::lab::{self, attacker, Lab};
use crate::lan::{self, LanNames};
use crate::lecturer::{self, AdminToken};
use crate::limits::{self, Limits, SocketLimiter};
use crate::listener::{self, HttpSettings, Listeners};
use crate::persist;
use crate::secret;
use crate::security::{self, ConnLimiter, JoinLimiter, OriginPolicy, RateLimiter, RedirectToHttps};
use crate::tickets::Tickets;
use crate::tls::{self, CertInfo};
use crate::tls_info;
use crate::transport::{self, long_polling::LongPollTimeout};

/// Request bodies are tiny JSON objects; anything larger is refused with 413.
pub const MAX_BODY_BYTES: usize = 1024;

/// The response header naming the node that answered, in a cluster.
pub const NODE_HEADER: &str = "X-Clickgame-Node";

/// A server running in the background of the current actix system.
pub struct RunningServer {
    pub http_addr: SocketAddr,
    /// The HTTPS/WSS listener, unless `--no-tls`.
    pub https_addr: Option<SocketAddr>,
    pub cert: Option<CertInfo>,
    /// With `--eavesdrop`: the plain relay (to `http_addr`) and the TLS relay (to `https_addr`).
    pub eavesdrop_addr: Option<SocketAddr>,
    pub eavesdrop_tls_addr: Option<SocketAddr>,
    /// With `--lab`: the attacker's site (another origin of this host).
    pub lab_attacker_addr: Option<SocketAddr>,
    pub hub: Hub,
    /// The lecturer's token for `/api/admin/*`.
    pub admin_token: String,
    /// Where the game is saved on shutdown; `None` with `--no-persist`.
    pub state_file: Option<PathBuf>,
    /// The join URLs and QR code (`/api/join-info`); LAN ones with `--lan`.
    pub join_info: std::sync::Arc<JoinInfo>,
    /// The socket counts every listener shares (tests wait on them: a client's close reaches
    /// the count a moment after the client sees it).
    pub sockets: SocketLimiter,
    /// With `--redis-url`: this process's node of the cluster.
    pub node: Option<Arc<Node>>,
    handle: ServerHandle,
    server: actix_web::rt::task::JoinHandle<io::Result<()>>,
    /// The round timer; in a cluster it runs only on the authority (`clustered.rs`).
    timer: Option<actix_web::rt::task::JoinHandle<()>>,
    relays: Vec<actix_web::rt::task::JoinHandle<()>>,
    cluster: Option<ClusterTasks>,
    /// The attacker's site's own server, with `--lab`.
    attacker: Option<(
        ServerHandle,
        actix_web::rt::task::JoinHandle<io::Result<()>>,
    )>,
}

impl RunningServer {
    /// The graceful path, for signals and tests alike: tell every open connection to end
    /// (WebSocket close 1001, SSE streams end, parked long polls answer), stop accepting and
    /// let in-flight requests finish (bounded by [`SHUTDOWN_TIMEOUT_SECS`]), then save the game.
    pub async fn stop(self) {
        self.hub.begin_shutdown();
        for relay in &self.relays {
            relay.abort();
        }
        // In a cluster: stop running the game and hand the lease over at once.
        if let Some(cluster) = self.cluster {
            cluster.stop().await;
        }
        if let Some((handle, server)) = self.attacker {
            handle.stop(false).await;
            let _ = server.await;
        }
        self.handle.stop(true).await;
        if let Some(timer) = &self.timer {
            timer.abort();
        }
        let _ = self.server.await;
        if let Some(path) = &self.state_file {
            let saved = self.hub.export();
            match persist::save(path, &saved) {
                Ok(()) => tracing::info!(
                    file = %path.display(),
                    players = saved.state.players.len(),
                    last_seq = saved.last_seq,
                    "game saved"
                ),
                Err(err) => {
                    tracing::error!(file = %path.display(), %err, "could not save the game")
                }
            }
        }
    }
}

/// How long a graceful stop waits for in-flight requests.
pub const SHUTDOWN_TIMEOUT_SECS: u64 = 5;

/// An idle keep-alive connection is closed after this long (actix-web's default).
pub const KEEP_ALIVE_SECS: u64 = 5;

/// The hub of a cluster node (`--redis-url`): the game lives in Redis, so no state file is read
/// or written. Starting does not wait for Redis: a node started while Redis is down serves its
/// pages and says so in `/api/stats` until it is back.
async fn cluster_hub(
    config: &Config,
    seed: u64,
) -> io::Result<Option<(Hub, Arc<Node>, ClusterReceivers)>> {
    let Some(cluster) = config.cluster() else {
        return Ok(None);
    };
    if !config.no_persist {
        tracing::info!("cluster node: the game lives in Redis; no state file is read or written");
    }
    let node = Arc::new(
        Node::start(cluster)
            .await
            .map_err(|e| io::Error::other(e.to_string()))?,
    );
    let (hub, told) = Hub::clustered(config.rules(), seed, config.hub(), Arc::clone(&node));
    Ok(Some((hub, node, told)))
}

/// What the hub of a cluster node hands its loops (`clustered.rs`): what to tell the authority.
type ClusterReceivers = tokio::sync::mpsc::UnboundedReceiver<crate::hub::Tell>;

/// The hub for this start: restored from the state file when there is a usable one. A file
/// that cannot be read safely, does not parse, or breaks a rule of the game is set aside and
/// the game starts fresh (`persist.rs`).
fn load_hub(config: &Config, seed: u64) -> (Hub, Option<PathBuf>) {
    if config.no_persist {
        return (Hub::new(config.rules(), seed, config.hub()), None);
    }
    let path = persist::state_path(&config.data_dir);
    let limit = persist::max_state_bytes(config.history, config.max_players);
    let restored = persist::load(&path, limit).and_then(|saved| {
        let Some(saved) = saved else { return Ok(None) };
        let (players, last_seq) = (saved.state.players.len(), saved.last_seq);
        Hub::restore(config.rules(), seed, config.hub(), saved)
            .map(|hub| Some((hub, players, last_seq)))
            .map_err(|invalid| persist::set_aside(&path, invalid.0))
    });
    let hub = match restored {
        Ok(Some((hub, players, last_seq))) => {
            tracing::info!(
                file = %path.display(),
                players,
                last_seq,
                "game restored; clients will resynchronise (new epoch)"
            );
            hub
        }
        Ok(None) => Hub::new(config.rules(), seed, config.hub()),
        Err(err) => {
            tracing::warn!(file = %path.display(), %err, "starting a fresh game");
            Hub::new(config.rules(), seed, config.hub())
        }
    };
    (hub, Some(path))
}

/// The teaching features that weaken security on purpose, each behind its own flag: `None`
/// unless it was asked for, and then its endpoints answer 404.
struct Teaching {
    /// `--eavesdrop`: the relays' feed and tamper switch.
    eavesdrop: Option<Eavesdrop>,
    /// `--lab`: the defence switches and the defence log.
    lab: Option<Lab>,
}

/// Everything one worker's `App` needs: shared state, extractor limits, routes, static files.
/// Returned as a `configure` closure so each worker builds an identical app.
#[allow(clippy::too_many_arguments)]
fn app_config(
    commands: Commands,
    config: &Config,
    origins: OriginPolicy,
    redirect: RedirectToHttps,
    admin_token: AdminToken,
    join_info: std::sync::Arc<JoinInfo>,
    teaching: Teaching,
) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + 'static {
    let Teaching { eavesdrop, lab } = teaching;
    let hub = web::Data::new(commands.hub().clone());
    let join_info = web::Data::from(join_info);
    let origins = web::Data::new(origins);
    let redirect = web::Data::new(redirect);
    let rate = commands.rate().clone();
    let conns = web::Data::new(ConnLimiter::for_config(config));
    let tickets = web::Data::new(commands.tickets().clone());
    let joins = commands.joins().clone();
    let commands = web::Data::new(commands);
    let trusted = web::Data::new(config.trusted_proxies());
    let heartbeat = web::Data::new(config.heartbeat());
    let admin = web::Data::new(admin_token);
    let echo_path = config.ws_echo_path.clone();
    let longpoll = web::Data::new(LongPollTimeout(Duration::from_millis(
        config.longpoll_timeout_ms,
    )));
    let sse = web::Data::new(config.sse());
    let web_dir = config.web_dir.clone();
    let eavesdrop = eavesdrop.map(web::Data::new);
    // With the lab's `origin` defence off, JSON is also read from a `text/plain` body: what a
    // naive server does, and what lets a cross-site page click without a CORS preflight
    // (a `text/plain` POST is a "simple" request). Always off without --lab.
    let naive_json = lab.clone();
    let accepts_plain_text = move |mime: actix_web::mime::Mime| {
        naive_json
            .as_ref()
            .is_some_and(|lab| !lab.is_on(lab::Defence::Origin))
            && mime.type_() == actix_web::mime::TEXT
            && mime.subtype() == actix_web::mime::PLAIN
    };
    let lab = lab.map(web::Data::new);
    move |cfg: &mut web::ServiceConfig| {
        // Without --eavesdrop there is no Data<Eavesdrop>, and its endpoints answer 404.
        if let Some(e) = &eavesdrop {
            cfg.app_data(e.clone());
        }
        // Likewise without --lab: no Data<Lab>, the lab's endpoints answer 404 and every
        // defence is on (`lab::defence_on`).
        if let Some(l) = &lab {
            cfg.app_data(l.clone());
        }
        cfg.app_data(hub.clone())
            .app_data(commands.clone())
            .app_data(trusted.clone())
            .app_data(origins.clone())
            .app_data(redirect.clone())
            .app_data(rate.clone())
            .app_data(conns.clone())
            .app_data(tickets.clone())
            .app_data(joins.clone())
            .app_data(heartbeat.clone())
            .app_data(admin.clone())
            .app_data(longpoll.clone())
            .app_data(sse.clone())
            .app_data(join_info.clone())
            .app_data(
                web::JsonConfig::default()
                    .limit(MAX_BODY_BYTES)
                    .content_type(accepts_plain_text.clone())
                    .error_handler(|err, _| ApiError::from_json(&err).into()),
            )
            .app_data(
                web::QueryConfig::default()
                    .error_handler(|err, _| ApiError::from_query(&err).into()),
            )
            // Registered before the `/api` scope so that an echo path under `/api` still
            // matches; it carries the Origin check of its own.
            .configure(|cfg| {
                if let Some(path) = &echo_path {
                    transport::websocket::configure_echo(cfg, path);
                }
            })
            // Every API route lives in this one scope, and the Origin check is the scope's
            // middleware: the router decides (on the decoded path) that a request is for the
            // API, and the check runs for exactly those requests. No spelling of a path
            // (`/%61pi/click`, `/api/%63lick`) can reach a handler around it.
            .service(
                web::scope("/api")
                    .wrap(from_fn(security::origin_check))
                    .configure(transport::configure)
                    .configure(lecturer::configure)
                    .configure(tls_info::configure)
                    .configure(eavesdrop::configure)
                    .configure(classroom::configure)
                    .configure(lab::configure)
                    .default_service(web::to(|| async {
                        Err::<actix_web::HttpResponse, _>(ApiError::not_found(
                            "no such API endpoint; see docs/protocol.md",
                        ))
                    })),
            )
            .configure(lecturer::configure_metrics)
            .configure(|cfg| static_files(cfg, &web_dir))
            // Anything else — another method on a page, `/API/click`, `//api/click`,
            // `/./api/click` — names no route and no file.
            .default_service(web::to(|req: HttpRequest| async move {
                Err::<actix_web::HttpResponse, _>(ApiError::not_found(format!(
                    "nothing at {} {}; the API is under /api (docs/protocol.md)",
                    req.method(),
                    req.path()
                )))
            }));
    }
}

/// The web client: `GET`/`HEAD` only (other methods fall through to the app's JSON 404), with
/// every refusal of `actix-files` turned into a JSON 404 too. `actix-files` answers a path it
/// will not serve (`/./x`, `/a%2Fb`, a hidden file) with `400 text/plain` and a wrong method with
/// `405 text/plain`; for a static path "this names no file" is the whole truth, and a client
/// probing spellings gets the same answer for all of them.
fn static_files(cfg: &mut web::ServiceConfig, web_dir: &std::path::Path) {
    cfg.service(
        web::scope("")
            .guard(guard::Any(guard::Get()).or(guard::Head()))
            .wrap(from_fn(files_refusals_as_json))
            .service(
                Files::new("", web_dir)
                    .index_file("index.html")
                    .default_handler(fn_service(|req: ServiceRequest| async move {
                        let (req, _) = req.into_parts();
                        let res = actix_web::ResponseError::error_response(&ApiError::not_found(
                            format!("no file at {}", req.path()),
                        ));
                        Ok(ServiceResponse::new(req, res))
                    })),
            ),
    );
}

async fn files_refusals_as_json(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let res = next.call(req).await?;
    let json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"application/json"));
    // 400 is its "this path cannot name a file" (`UriSegmentError`); 412/416 and the like are
    // real answers about a file that exists and stay as they are.
    if res.status() != actix_web::http::StatusCode::BAD_REQUEST || json {
        return Ok(res.map_into_left_body());
    }
    let detail = format!("no file at {}", res.request().path());
    Ok(res
        .into_response(actix_web::ResponseError::error_response(
            &ApiError::not_found(detail),
        ))
        .map_into_right_body())
}

/// Binds and starts the server inside the current actix system.
pub async fn start(mut config: Config) -> io::Result<RunningServer> {
    check_lab_alone(&config)?;
    check_lab_reach(&config)?;
    if config.lab {
        // A lab game holds names a normal restore would refuse; it is never saved.
        config.no_persist = true;
    }
    let descriptors = limits::fit_descriptor_limit(&mut config);
    let seed = config.seed.unwrap_or_else(rand::random);
    let (hub, state_file, cluster) = match cluster_hub(&config, seed).await? {
        Some((hub, node, told)) => (hub, None, Some((node, told))),
        None => {
            let (hub, state_file) = load_hub(&config, seed);
            (hub, state_file, None)
        }
    };
    let commands = Commands::new(
        hub.clone(),
        web::Data::new(RateLimiter::new(config.click_rate)),
        web::Data::new(JoinLimiter::new(config.join_rate, config.join_rate_total)),
        Tickets::default(),
    );
    let listener = bind_listener("--http-addr", config.http_addr)?;
    let http_addr = listener.local_addr()?;
    let lan_names = lan_names(&config, http_addr);
    let (tls_listener, cert) = if config.no_tls {
        (None, None)
    } else {
        let extra: Vec<String> = lan_names
            .iter()
            .flat_map(|n| n.hosts.iter().map(lan::Host::san))
            .collect();
        let (cert, key, info) = tls::load_or_create_for(
            config.cert.as_deref(),
            config.key.as_deref(),
            &config.data_dir,
            &extra,
        )?;
        log_certificate(&info);
        if !extra.is_empty() && !info.generated && config.cert.is_some() {
            let missing: Vec<&String> = extra.iter().filter(|n| !info.names.contains(n)).collect();
            if !missing.is_empty() {
                tracing::warn!(
                    ?missing,
                    "--cert does not name these LAN names: HTTPS under them fails the name check"
                );
            }
        }
        let listener = bind_listener("--https-addr", config.https_addr)?;
        let options = tls::TlsOptions {
            min: config.tls_min,
            max: config.tls_max,
            keylog: config.tls_keylog.clone(),
        };
        let acceptor = tls::acceptor(&cert, &info.chain, &key, &options)?;
        // With --lab the attacker's site serves its page over HTTPS too, with this certificate.
        let lab_acceptor = if config.lab {
            Some(tls::acceptor(&cert, &info.chain, &key, &options)?)
        } else {
            None
        };
        (Some((listener, acceptor)), Some((info, lab_acceptor)))
    };
    let (cert, lab_acceptor) = match cert {
        Some((info, lab_acceptor)) => (Some(info), lab_acceptor),
        None => (None, None),
    };
    let https_addr = tls_listener
        .as_ref()
        .map(|(l, _)| l.local_addr())
        .transpose()?;

    if let (Some(path), Some(addr)) = (&config.tls_keylog, https_addr) {
        tls::warn_keylog(path, &format!("https://{addr}"));
    }

    let mut own = security::own_origins("http", http_addr);
    if let Some(addr) = https_addr {
        own.extend(security::own_origins("https", addr));
    }
    if let Some(names) = &lan_names {
        own.extend(names.origins("http", http_addr.port()));
        if let Some(addr) = https_addr {
            own.extend(names.origins("https", addr.port()));
        }
    }
    // The pages students load through `--public-url` call the API from its origin.
    own.extend(config.public_urls.iter().map(|u| u.origin()));
    let relays = bind_relays(&config, http_addr, https_addr)?;
    if let Some(r) = &relays {
        own.extend(r.origins.iter().cloned());
    }
    // The attacker's site is bound here, but its origin is deliberately *not* added to `own`:
    // it is the attacker.
    let attacker_listener = if config.lab {
        Some(bind_listener(
            "--lab-attacker-addr",
            config.lab_attacker_addr,
        )?)
    } else {
        None
    };
    let lab_attacker_addr = attacker_listener
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()?;
    let lab = config.lab.then(|| Lab::new(lab_attacker_addr));
    let origins = OriginPolicy::new(own, &config.allowed_origins);
    let redirect = match (https_addr, &cert) {
        (Some(addr), Some(cert)) if config.redirect_http => {
            RedirectToHttps::new(addr, &cert.names, &config.allowed_origins)
        }
        _ => RedirectToHttps::off(),
    };
    let admin_token = AdminToken(
        config
            .admin_token
            .clone()
            .unwrap_or_else(|| secret::hex(&secret::random_bytes::<16>())),
    );
    let join_info = std::sync::Arc::new(JoinInfo::new(
        lan_names
            .as_ref()
            .unwrap_or(&classroom::local_names(http_addr)),
        lan_names.is_some(),
        http_addr.port(),
        https_addr.map(|a| a.port()),
        cert.as_ref().map(|c| c.sha256.clone()),
        &config.public_urls,
    ));
    let configure = app_config(
        commands.clone(),
        &config,
        origins,
        redirect,
        admin_token.clone(),
        join_info.clone(),
        Teaching {
            eavesdrop: relays.as_ref().map(|r| r.eavesdrop.clone()),
            lab,
        },
    );
    let body_timeout = Duration::from_millis(config.body_timeout_ms);
    // In a cluster every response says which node answered (`/compare.html` shows it).
    let node_id = cluster.as_ref().map(|(node, _)| node.id().to_string());
    let app = move || {
        App::new()
            .wrap(actix_web::middleware::Condition::new(
                node_id.is_some(),
                actix_web::middleware::DefaultHeaders::new()
                    .add((NODE_HEADER, node_id.clone().unwrap_or_default())),
            ))
            // Innermost of the app-wide layers: sees every response, refusals included.
            .wrap(actix_web::middleware::from_fn(security::record_refusals))
            .wrap(actix_web::middleware::from_fn(security::guard))
            // Outermost: every request body gets its deadline before anything reads it.
            .wrap(actix_web::middleware::from_fn(move |req, next| {
                limits::body_deadline(body_timeout, req, next)
            }))
            .configure(configure.clone())
    };
    let limits = Limits::from_config(&config);
    let settings = HttpSettings {
        // Long polls and SSE streams hold requests open; this only bounds reading the request
        // head (the body has its own deadline, `limits::body_deadline`).
        request_timeout: body_timeout,
        keep_alive: Duration::from_secs(KEEP_ALIVE_SECS),
        send_timeout: Duration::from_millis(config.ws_send_timeout_ms),
        shutdown_timeout: SHUTDOWN_TIMEOUT_SECS,
        workers: config.workers,
    };
    let sockets = SocketLimiter::new(limits).trusting(config.trusted_proxies());
    let mut server = Listeners::new(app, settings, sockets.clone()).listen(listener)?;
    if let Some((listener, acceptor)) = tls_listener {
        server = server.listen_tls(listener, acceptor)?;
    }
    let server = server.run();
    let handle = server.handle();
    let (timer, node, cluster) = match cluster {
        None => (
            Some(actix_web::rt::spawn(hub.clone().run_timer())),
            None,
            None,
        ),
        Some((node, told)) => {
            let tasks = ClusterTasks::start(Arc::clone(&node), hub.clone(), commands, told);
            (None, Some(node), Some(tasks))
        }
    };
    let server = actix_web::rt::spawn(server);
    let attacker = match (attacker_listener, lab_attacker_addr) {
        (Some(listener), Some(addr)) => {
            let (site, https) = attacker::start(
                listener,
                attacker::Target {
                    http: dialable(http_addr),
                    https_port: https_addr.map(|a| a.port()),
                },
                settings,
                sockets.clone(),
                lab_acceptor,
            )?;
            lab::log_start(addr, https, http_addr);
            Some((site.handle(), actix_web::rt::spawn(site)))
        }
        _ => None,
    };
    let (mut eavesdrop_addr, mut eavesdrop_tls_addr, mut relay_tasks) = (None, None, Vec::new());
    if let Some(r) = relays {
        let limiter = ConnLimiter::new(config.max_conns_per_ip);
        eavesdrop_addr = Some(r.plain.local_addr()?);
        relay_tasks.push(eavesdrop::relay::spawn(
            r.plain,
            RelayKind::Plain,
            dialable(http_addr),
            r.eavesdrop.clone(),
            limiter.clone(),
            settings.send_timeout,
        )?);
        if let (Some(tls), Some(upstream)) = (r.tls, https_addr) {
            eavesdrop_tls_addr = Some(tls.local_addr()?);
            relay_tasks.push(eavesdrop::relay::spawn(
                tls,
                RelayKind::Tls,
                dialable(upstream),
                r.eavesdrop,
                limiter,
                settings.send_timeout,
            )?);
        }
    }
    tracing::info!(%http_addr, ?https_addr, seed, web_dir = %config.web_dir.display(), "clickgame started");
    if let Some(node) = &node {
        tracing::info!(
            node = %node.id(),
            redis = config.redis_url.as_deref().unwrap_or_default(),
            lease_ttl_ms = config.lease_ttl_ms,
            trusted_proxies = ?config.trusted_proxies,
            "CLUSTER NODE: this process serves one game with every node of this Redis \
             (docs/scaling.md); the game lives in Redis"
        );
    }
    tracing::info!(
        sockets = limits.sockets,
        sockets_per_ip = limits.sockets_per_ip,
        streams = limits.streams,
        streams_per_ip = limits.streams_per_ip,
        body_timeout_ms = config.body_timeout_ms,
        descriptors,
        "connection limits (0 = none per address; see docs/security.md)"
    );
    if let Some(names) = &lan_names {
        tracing::warn!(
            names = %names.describe(),
            "CLASSROOM MODE (--lan): listening on {http_addr}{}; these names are allowed \
             origins{}; {}",
            https_addr.map_or(String::new(), |a| format!(" and {a}")),
            if config.no_tls { "" } else { " and in the certificate" },
            if http_addr.ip().is_loopback() {
                "the listener is on loopback, though: only this machine can connect"
            } else {
                "anyone on these networks can reach the game"
            },
        );
        classroom::log_caps(&limits, &config);
    }
    Ok(RunningServer {
        sockets,
        node,
        cluster,
        http_addr,
        https_addr,
        cert,
        eavesdrop_addr,
        eavesdrop_tls_addr,
        lab_attacker_addr,
        hub,
        admin_token: admin_token.0,
        state_file,
        join_info,
        handle,
        server,
        timer,
        relays: relay_tasks,
        attacker,
    })
}

/// `--lab` is one laptop's exercise: with `--redis-url` every node would have its own defence
/// switches (a defence off on one node only), its own attacker's site and its own banner
/// (flickering as the entry point sends requests to different nodes). Refused, rather than
/// sharing the switches through Redis: a lab that needs a cluster teaches nothing more.
fn check_lab_alone(config: &Config) -> io::Result<()> {
    if config.lab && config.redis_url.is_some() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--lab cannot be used with --redis-url: the lab is a single-laptop exercise, and in \
             a cluster every node would have its own defence switches, attacker's site and \
             banner; run the lab on one server without --redis-url (docs/lab.md)",
        ));
    }
    Ok(())
}

/// `--lab` only on loopback, unless `--lab-allow-remote` says otherwise (and then loudly): a
/// switched-off defence makes the server vulnerable to whoever can reach it.
fn check_lab_reach(config: &Config) -> io::Result<()> {
    if !config.lab {
        return Ok(());
    }
    let mut listeners = vec![
        ("--http-addr", config.http_addr),
        ("--lab-attacker-addr", config.lab_attacker_addr),
    ];
    if !config.no_tls {
        listeners.push(("--https-addr", config.https_addr));
    }
    let remote: Vec<String> = listeners
        .iter()
        .filter(|(_, addr)| !addr.ip().is_loopback())
        .map(|(flag, addr)| format!("{flag} {addr}"))
        .collect();
    if remote.is_empty() {
        return Ok(());
    }
    if !config.lab_allow_remote {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "--lab on a listener other than loopback ({}{}) would let anyone who can reach it \
                 attack this server once a defence is switched off; add --lab-allow-remote if \
                 that is the exercise (students attacking each other's pages on the room's \
                 network)",
                remote.join(", "),
                if config.lan { ", from --lan" } else { "" }
            ),
        ));
    }
    tracing::warn!(
        listeners = %remote.join(", "),
        "LAB ON THE NETWORK (--lab-allow-remote): every switched-off defence is open to anyone \
         who can reach these listeners, and so is the attacker's site"
    );
    Ok(())
}

/// Starts the server and runs it until SIGINT (Ctrl-C) or SIGTERM, then stops it gracefully.
pub async fn run(config: Config) -> io::Result<()> {
    let running = start(config).await?;
    // The one line tools and the end-to-end tests read to find the port.
    println!("listening on http://{}", running.http_addr);
    if let Some(addr) = running.https_addr {
        println!("listening on https://{addr}");
    }
    if let Some(addr) = running.eavesdrop_addr {
        println!("eavesdrop relay on http://{addr}");
    }
    if let Some(addr) = running.eavesdrop_tls_addr {
        println!("eavesdrop relay on https://{addr}");
    }
    if let Some(addr) = running.lab_attacker_addr {
        println!("lab attacker site on http://{addr}/attacker.html");
    }
    if running.join_info.lan {
        use std::io::IsTerminal;
        print!(
            "{}",
            running.join_info.banner(std::io::stdout().is_terminal())
        );
    }
    if let Some(node) = &running.node {
        println!("cluster node {}", node.id());
    }
    println!("admin token: {}", running.admin_token);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
    }
    running.stop().await;
    Ok(())
}

/// Tells the operator which certificate is served and how to make a browser trust it.
pub fn log_certificate(info: &CertInfo) {
    match &info.ca {
        Some(ca) => tracing::info!(
            cert = %info.cert_path.display(),
            generated = info.generated,
            not_after = %info.not_after,
            sha256 = %info.sha256,
            ca = %ca.path.display(),
            ca_sha256 = %ca.sha256,
            "TLS certificate signed by the local CA; a machine that installed {} trusts it \
             (install it on the projector laptop only; students compare the certificate's \
             fingerprint instead, docs/classroom.md)",
            ca.path.display()
        ),
        None => tracing::info!(
            cert = %info.cert_path.display(),
            generated = info.generated,
            not_after = %info.not_after,
            sha256 = %info.sha256,
            "TLS certificate; to trust it, import {} into the browser's certificate store (or accept it once after comparing this fingerprint)",
            info.cert_path.display()
        ),
    }
}

/// With `--lan`: the names the room reaches us by (`--lan-addr`, or detected and reachable
/// through the listener at `http_addr`). Says so when there are none.
fn lan_names(config: &Config, http_addr: SocketAddr) -> Option<LanNames> {
    if !config.lan {
        return None;
    }
    let names = if config.lan_addrs.is_empty() {
        lan::detect()
    } else {
        LanNames::given(&config.lan_addrs)
    }
    .reachable_through(http_addr);
    if names.hosts.is_empty() {
        tracing::warn!(
            "--lan found no address on a network students can reach (only loopback, container \
             or VPN interfaces?); name one with --lan-addr"
        );
    }
    Some(names)
}

/// Binds a listener; `[::]` is made dual-stack (IPv4 too). On a machine without IPv6, `[::]`
/// falls back to `0.0.0.0` on the same port, with a warning. A failure names the address and
/// the flag that set it.
fn bind_listener(flag: &str, addr: SocketAddr) -> io::Result<TcpListener> {
    let bound = match listener::bind(addr) {
        Err(err)
            if addr.ip() == std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
                && err.raw_os_error() == Some(libc::EAFNOSUPPORT) =>
        {
            let v4 = SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, addr.port()));
            tracing::warn!(%addr, %v4, "no IPv6 on this machine; listening on IPv4 only");
            listener::bind(v4)
        }
        other => other,
    };
    bound.map_err(|e| cannot_listen(flag, addr, e))
}

/// "cannot listen on 127.0.0.1:8080 (--http-addr): Address already in use …", with what to do
/// when the port is taken (most often: the server is already running, in another terminal).
fn cannot_listen(flag: &str, addr: SocketAddr, err: io::Error) -> io::Error {
    let hint = if err.kind() == io::ErrorKind::AddrInUse {
        format!("; is clickgame already running? Stop it, or choose another port with {flag}")
    } else {
        String::new()
    };
    io::Error::new(
        err.kind(),
        format!("cannot listen on {addr} ({flag}): {err}{hint}"),
    )
}

/// The relays' listeners, bound before the app is built so their origins can join the
/// allow-list.
struct Relays {
    eavesdrop: Eavesdrop,
    plain: TcpListener,
    tls: Option<TcpListener>,
    origins: Vec<String>,
}

/// With `--eavesdrop`: binds both relays and says loudly what that turns on.
fn bind_relays(
    config: &Config,
    http_addr: SocketAddr,
    https_addr: Option<SocketAddr>,
) -> io::Result<Option<Relays>> {
    if !config.eavesdrop {
        return Ok(None);
    }
    let plain = TcpListener::bind(config.eavesdrop_addr)
        .map_err(|e| cannot_listen("--eavesdrop-addr", config.eavesdrop_addr, e))?;
    let plain_addr = plain.local_addr()?;
    let mut origins = security::own_origins("http", plain_addr);
    let tls = match https_addr {
        Some(_) => {
            let l = TcpListener::bind(config.eavesdrop_tls_addr)
                .map_err(|e| cannot_listen("--eavesdrop-tls-addr", config.eavesdrop_tls_addr, e))?;
            origins.extend(security::own_origins("https", l.local_addr()?));
            Some(l)
        }
        None => {
            tracing::warn!("--eavesdrop with --no-tls: only the plain relay runs");
            None
        }
    };
    let tls_addr = tls.as_ref().map(TcpListener::local_addr).transpose()?;
    for addr in std::iter::once(plain_addr).chain(tls_addr) {
        if !addr.ip().is_loopback() {
            tracing::warn!(%addr, "EAVESDROP RELAY NOT ON LOOPBACK: anyone who can reach {addr} can use it");
        }
    }
    tracing::warn!(
        plain = %format!("http://{plain_addr} -> {http_addr}"),
        tls = ?tls_addr.map(|a| format!("https://{a} -> {}", https_addr.map_or(String::new(), |h| h.to_string()))),
        "EAVESDROPPER ON (--eavesdrop): two relays record every byte that passes through them \
         (names, clicks, session tokens in clear on the plain one) for the lecturer's \
         /eavesdrop.html, and can tamper with them on request; their origins are added to the \
         Origin allow-list: {}",
        origins.join(", ")
    );
    Ok(Some(Relays {
        eavesdrop: Eavesdrop::default(),
        plain,
        tls,
        origins,
    }))
}

/// An address a relay can connect to: a listener on 0.0.0.0 / [::] is reached on loopback.
fn dialable(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, addr.port()))
        }
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port()))
        }
        _ => addr,
    }
}
