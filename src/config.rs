//! # Configuration
//!
//! Every setting is a command-line flag that also reads a `CLICKGAME_*` environment variable;
//! `clickgame --help` lists them. Every default is one of the constants below — this file is
//! the one place a default is written — so `make run` needs no file. The game's rules take
//! theirs from here too ([`Rules::default`] is implemented at the bottom of this file, since the
//! pure game core reads no configuration), and so do the WebSocket's timings
//! ([`Heartbeat::default`]). Limits that are not flags (message sizes, backlogs) are constants
//! of the module they limit.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{parser::ValueSource, CommandFactory, FromArgMatches, Parser};

use crate::classroom::PublicUrl;
use crate::cluster::{ClusterConfig, NodeId, DEFAULT_LEASE_TTL};
use crate::forwarded::{TrustedProxies, TrustedProxy};
use crate::game::{Rules, BOARD_SIZE, POLL_INTERVAL_MS};
use crate::hub::HubConfig;
use crate::lan::Host;
use crate::tls::TlsVersion;
use crate::transport::sse::SseSettings;
use crate::transport::websocket::Heartbeat;

pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_HTTPS_ADDR: &str = "127.0.0.1:8443";
/// With `--lan`: every interface, IPv6 and IPv4 (the `[::]` socket is made dual-stack).
pub const DEFAULT_LAN_HTTP_ADDR: &str = "[::]:8080";
pub const DEFAULT_LAN_HTTPS_ADDR: &str = "[::]:8443";
/// The eavesdropping relays (`--eavesdrop`): loopback, next to the listeners they relay to.
pub const DEFAULT_EAVESDROP_ADDR: &str = "127.0.0.1:8081";
pub const DEFAULT_EAVESDROP_TLS_ADDR: &str = "127.0.0.1:8444";
/// The lab's attacker's site (`--lab`): loopback, another port of the game's host.
pub const DEFAULT_LAB_ATTACKER_ADDR: &str = "127.0.0.1:8666";
/// With `--lan` (and `--lab-allow-remote`): every interface, so students' machines reach it.
pub const DEFAULT_LAN_LAB_ATTACKER_ADDR: &str = "[::]:8666";
/// Where the generated certificate (and, later, saved game state) lives.
pub const DEFAULT_DATA_DIR: &str = "data";
/// Clicks per second a player may send before `429 Too Many Requests`.
pub const DEFAULT_CLICK_RATE: u32 = 20;
/// Long-lived streams (WebSocket, SSE, parked long polls) one IP address may hold. A lecture
/// hall behind one NAT address is a hundred phones with one stream each: 256 leaves room for
/// the lecturer's compare page and for reconnects that overlap the old stream (see
/// `docs/security.md`, "Connection limits").
pub const DEFAULT_MAX_CONNS_PER_IP: u32 = 256;
/// TCP/TLS connections one IP address may hold, counted from accept: the hall's hundred phones
/// hold a stream and a keep-alive connection each (200), plus page loads in flight.
pub const DEFAULT_MAX_SOCKETS_PER_IP: u32 = 512;
/// TCP/TLS connections overall; lowered at start to what the descriptor limit allows.
pub const DEFAULT_MAX_CONNS: u32 = 10_000;
/// A request head or body that takes longer than this to arrive gets `408` and the connection
/// closes.
pub const DEFAULT_BODY_TIMEOUT_MS: u64 = 10_000;
/// Joins one client address may start per minute (a bucket of this size, refilled over a
/// minute): a lecture hall of ~100 phones behind one NAT address joins within a minute, with
/// room for retries. See `docs/security.md`.
pub const DEFAULT_JOIN_RATE: u32 = 120;
/// Joins per minute from all addresses together: bounds the join work a distributed flood
/// causes, and still lets a full game (`DEFAULT_MAX_PLAYERS`) fill within a minute.
pub const DEFAULT_JOIN_RATE_TOTAL: u32 = 1200;
/// Players at once; bounds the snapshot every join carries (~70 bytes per player).
pub const DEFAULT_MAX_PLAYERS: usize = 1000;
/// Events kept for resuming clients; older gaps are answered with a snapshot.
pub const DEFAULT_HISTORY: usize = 1024;
/// How often AJAX polling clients ask (sent to them in the snapshot).
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 1000;
/// How long a long poll is held before `204 No Content`.
pub const DEFAULT_LONGPOLL_TIMEOUT_MS: u64 = 25_000;
/// The pause between a round's win and the next target...
pub const DEFAULT_ROUND_PAUSE_MS: u64 = 1500;
/// ...plus a random extra of up to this, so the next target cannot be timed.
pub const DEFAULT_ROUND_PAUSE_JITTER_MS: u64 = 500;
/// A round nobody hits ends by itself after this long (`round_expired`): long enough for a
/// student to find the target on a phone, short enough that a forgotten target does not turn
/// the next reaction time into minutes.
pub const DEFAULT_ROUND_TIMEOUT_MS: u64 = 10_000;
/// The target's radius in board units (the board is 1000 × 1000).
pub const DEFAULT_TARGET_RADIUS: u32 = 40;
/// A player with no transport contact for this long leaves.
pub const DEFAULT_PLAYER_TIMEOUT_MS: u64 = 60_000;
/// The SSE `retry:` the browser waits before reconnecting.
pub const DEFAULT_SSE_RETRY_MS: u64 = 1000;
/// A comment line on every idle SSE stream this often, so proxies do not time it out.
pub const DEFAULT_SSE_HEARTBEAT_MS: u64 = 15_000;
/// The server pings every WebSocket this often...
pub const DEFAULT_WS_PING_INTERVAL_MS: u64 = 20_000;
/// ...and closes one it has heard nothing from (not even a pong) for this long, with 1008.
pub const DEFAULT_WS_TIMEOUT_MS: u64 = 45_000;
/// A write that waits this long for a client that does not read ends the connection.
pub const DEFAULT_WS_SEND_TIMEOUT_MS: u64 = 10_000;
/// The TLS versions the HTTPS listener accepts (Mozilla's "intermediate" profile).
pub const DEFAULT_TLS_MIN: &str = "1.2";
pub const DEFAULT_TLS_MAX: &str = "1.3";
/// Worker threads of the HTTP server; 0 = one per CPU core.
pub const DEFAULT_WORKERS: usize = 0;
/// The log filter (`tracing` env-filter syntax).
pub const DEFAULT_LOG: &str = "info";

/// The shortest timer a flag accepts, in ms: shorter ones would only measure the scheduler.
const MIN_TIMER_MS: u64 = 10;
/// The longest timeout a flag accepts, in ms (ten minutes).
const MAX_TIMEOUT_MS: u64 = 600_000;
/// The most players, or history events, a flag may ask for.
const MAX_COUNT: u64 = 1_000_000;
/// The shortest lease a flag accepts: renewals every third of it must fit several Redis round
/// trips (each bounded by 500 ms at most).
const MIN_LEASE_TTL_MS: u64 = 300;

/// The web client shipped with this crate, found next to the sources at build time.
const DEFAULT_WEB_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/web");

#[derive(Debug, Clone, Parser)]
#[command(
    name = "clickgame",
    version,
    about = "The Click Game over AJAX polling, long polling, SSE and WebSockets"
)]
pub struct Config {
    /// Address of the plain HTTP listener (port 0 picks a free port).
    #[arg(long, env = "CLICKGAME_HTTP_ADDR", default_value = DEFAULT_HTTP_ADDR)]
    pub http_addr: SocketAddr,

    /// Address of the HTTPS/WSS listener (port 0 picks a free port).
    #[arg(long, env = "CLICKGAME_HTTPS_ADDR", default_value = DEFAULT_HTTPS_ADDR)]
    pub https_addr: SocketAddr,

    /// Serve plain HTTP only: no HTTPS/WSS listener, no certificate.
    #[arg(long, env = "CLICKGAME_NO_TLS")]
    pub no_tls: bool,

    /// PEM certificate (chain) for HTTPS; with --key. Default: a self-signed one in --data-dir.
    #[arg(long, env = "CLICKGAME_CERT", requires = "key")]
    pub cert: Option<PathBuf>,

    /// PEM private key for --cert.
    #[arg(long, env = "CLICKGAME_KEY", requires = "cert")]
    pub key: Option<PathBuf>,

    /// Directory for the generated certificate and key, the local CA (--init-ca) and the saved
    /// game (state.json).
    #[arg(long, env = "CLICKGAME_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,

    /// The lecturer's admin token (for /api/admin/*); a random one is printed at start-up
    /// when not given.
    #[arg(long, env = "CLICKGAME_ADMIN_TOKEN")]
    pub admin_token: Option<String>,

    /// Do not save the game on shutdown nor restore it on start.
    #[arg(long, env = "CLICKGAME_NO_PERSIST")]
    pub no_persist: bool,

    /// Create (or renew) the self-signed certificate in --data-dir, print its fingerprint, exit.
    #[arg(long)]
    pub init_certs: bool,

    /// Classroom mode: listen on every interface, IPv4 and IPv6 (HTTP port 8080, HTTPS port 8443,
    /// unless --http-addr/--https-addr say otherwise), allow this machine's LAN addresses and
    /// host name as origins, put them into the certificate, and print the join URL with a QR
    /// code (docs/classroom.md).
    #[arg(long, env = "CLICKGAME_LAN")]
    pub lan: bool,

    /// With --lan or --init-ca: an address or host name students reach this machine by, used
    /// instead of detecting the interfaces (repeat the flag, or separate with commas in the
    /// environment variable; the first is the QR code's).
    #[arg(
        long = "lan-addr",
        env = "CLICKGAME_LAN_ADDRS",
        value_delimiter = ',',
        value_name = "ADDR"
    )]
    pub lan_addrs: Vec<Host>,

    /// Where students reach this server from outside it — a reverse proxy, a port forward, the
    /// cluster's entry point: `http(s)://host[:port]/`, nothing after the `/`. Listed first in
    /// /api/join-info and on the join card, carried by the QR code, and its origin is allowed.
    /// Repeat the flag, or separate with commas in the environment variable.
    #[arg(
        long = "public-url",
        env = "CLICKGAME_PUBLIC_URL",
        value_delimiter = ',',
        value_name = "URL"
    )]
    pub public_urls: Vec<PublicUrl>,

    /// Create (or keep) a local CA in --data-dir (ca.pem; ca-key.pem mode 0600), name-constrained
    /// to loopback and this machine's LAN names and networks (or --lan-addr), sign the
    /// certificate with it, print both fingerprints, exit. Install ca.pem on the projector
    /// laptop only (docs/classroom.md).
    #[arg(long, conflicts_with_all = ["cert", "key", "init_certs"])]
    pub init_ca: bool,

    /// Make the plain HTTP port answer every request with a redirect to HTTPS.
    #[arg(long, env = "CLICKGAME_REDIRECT_HTTP")]
    pub redirect_http: bool,

    /// Lowest TLS version the HTTPS listener accepts (1.2 or 1.3).
    #[arg(long, env = "CLICKGAME_TLS_MIN", value_enum, default_value = DEFAULT_TLS_MIN)]
    pub tls_min: TlsVersion,

    /// Highest TLS version the HTTPS listener accepts (1.2 or 1.3). `--tls-max 1.2` shows a
    /// TLS 1.2 handshake, certificate in clear, next to a 1.3 one.
    #[arg(long, env = "CLICKGAME_TLS_MAX", value_enum, default_value = DEFAULT_TLS_MAX)]
    pub tls_max: TlsVersion,

    /// Teaching only, weakens secrecy: append every TLS connection's secrets to FILE in the NSS
    /// key-log format (created mode 0600), so Wireshark can decrypt a capture.
    #[arg(long, env = "CLICKGAME_TLS_KEYLOG", value_name = "FILE")]
    pub tls_keylog: Option<PathBuf>,

    /// Teaching only: start two relays that show a lecturer (/eavesdrop.html) every byte a
    /// passive attacker between browser and server would see, and can tamper with them.
    #[arg(long, env = "CLICKGAME_EAVESDROP")]
    pub eavesdrop: bool,

    /// With --eavesdrop: the plain relay's address (relays to --http-addr).
    #[arg(long, env = "CLICKGAME_EAVESDROP_ADDR", default_value = DEFAULT_EAVESDROP_ADDR)]
    pub eavesdrop_addr: SocketAddr,

    /// With --eavesdrop: the TLS relay's address (relays to --https-addr, TLS not terminated).
    #[arg(long, env = "CLICKGAME_EAVESDROP_TLS_ADDR", default_value = DEFAULT_EAVESDROP_TLS_ADDR)]
    pub eavesdrop_tls_addr: SocketAddr,

    /// Teaching only, weakens security on request: the WSS best-practices lab (docs/lab.md).
    /// Adds an attacker's site on another origin (--lab-attacker-addr), switches that let the
    /// lecturer turn each defence off and on again (/lab.html, admin token; all start on), and a
    /// live log of every refusal. Implies --no-persist; one laptop's exercise, so not with
    /// --redis-url.
    #[arg(long, env = "CLICKGAME_LAB")]
    pub lab: bool,

    /// With --lab: the attacker's site's address (another port of this host: another origin,
    /// the same site). With --lan: every interface, port 8666.
    #[arg(long, env = "CLICKGAME_LAB_ATTACKER_ADDR", default_value = DEFAULT_LAB_ATTACKER_ADDR)]
    pub lab_attacker_addr: SocketAddr,

    /// With --lab: allow the lab on listeners other than loopback (e.g. with --lan, where
    /// students attack each other's pages as an exercise). Without it, --lab refuses to start
    /// on such a listener.
    #[arg(long, env = "CLICKGAME_LAB_ALLOW_REMOTE", requires = "lab")]
    pub lab_allow_remote: bool,

    /// Another origin (`scheme://host[:port]`) allowed to use the API, besides the server's own.
    /// Repeat the flag, or separate with commas in the environment variable.
    #[arg(
        long = "allowed-origin",
        env = "CLICKGAME_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// Clicks per second per player before 429 (WebSocket: an error, then close 1008).
    #[arg(long, env = "CLICKGAME_CLICK_RATE", default_value_t = DEFAULT_CLICK_RATE,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub click_rate: u32,

    /// Long-lived streams (WebSocket, SSE, parked long polls) per client IP; over it, 429
    /// (0 = no per-address limit; the overall stream cap still applies).
    #[arg(long, env = "CLICKGAME_MAX_CONNS_PER_IP", default_value_t = DEFAULT_MAX_CONNS_PER_IP)]
    pub max_conns_per_ip: u32,

    /// TCP/TLS connections per client IP, counted from accept; over it, a new connection is
    /// closed at once (0 = no per-address limit).
    #[arg(long, env = "CLICKGAME_MAX_SOCKETS_PER_IP", default_value_t = DEFAULT_MAX_SOCKETS_PER_IP)]
    pub max_sockets_per_ip: u32,

    /// TCP/TLS connections overall; the last eighth is a reserve that long-lived streams and
    /// busy addresses cannot take. Lowered to fit the descriptor limit (0 = as many as it allows).
    #[arg(long, env = "CLICKGAME_MAX_CONNS", default_value_t = DEFAULT_MAX_CONNS)]
    pub max_conns: u32,

    /// A request head, or a request body, that has not fully arrived after this long gets 408
    /// and its connection is closed. Between requests on a keep-alive connection the next head
    /// must be complete within this too (an idle connection closes after 5 s anyway).
    #[arg(long, env = "CLICKGAME_BODY_TIMEOUT_MS", default_value_t = DEFAULT_BODY_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(MIN_TIMER_MS..=MAX_TIMEOUT_MS))]
    pub body_timeout_ms: u64,

    /// Joins per minute per client address (bursts up to this many at once; 0 = no limit).
    /// Over it: 429 with Retry-After. IPv6 addresses count per /64.
    #[arg(long, env = "CLICKGAME_JOIN_RATE", default_value_t = DEFAULT_JOIN_RATE)]
    pub join_rate: u32,

    /// Joins per minute from all addresses together (bursts up to this many; 0 = no limit).
    #[arg(long, env = "CLICKGAME_JOIN_RATE_TOTAL", default_value_t = DEFAULT_JOIN_RATE_TOTAL)]
    pub join_rate_total: u32,

    /// Players in the game at once; a join beyond it gets 409 game_full.
    #[arg(long, env = "CLICKGAME_MAX_PLAYERS", default_value_t = DEFAULT_MAX_PLAYERS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_COUNT))]
    pub max_players: usize,

    /// Milliseconds between server pings on a WebSocket.
    #[arg(long, env = "CLICKGAME_WS_PING_INTERVAL_MS", default_value_t = DEFAULT_WS_PING_INTERVAL_MS,
          value_parser = clap::value_parser!(u64).range(MIN_TIMER_MS..))]
    pub ws_ping_interval_ms: u64,

    /// A WebSocket silent (not even a pong) for this long is closed with 1008.
    #[arg(long, env = "CLICKGAME_WS_TIMEOUT_MS", default_value_t = DEFAULT_WS_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(MIN_TIMER_MS..))]
    pub ws_timeout_ms: u64,

    /// A client that stops reading is disconnected once a write has waited this long: on a
    /// WebSocket any frame (event, reply, pong, ping, close) and the socket is closed after a
    /// 1008; on any other connection (SSE, HTTP/2, responses) the socket is closed.
    #[arg(long, env = "CLICKGAME_WS_SEND_TIMEOUT_MS", default_value_t = DEFAULT_WS_SEND_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(MIN_TIMER_MS..))]
    pub ws_send_timeout_ms: u64,

    /// Test only: serve a WebSocket echo endpoint at this path (for Autobahn|Testsuite). It
    /// shares the game socket's framing, UTF-8 checks and close codes.
    #[arg(long, env = "CLICKGAME_WS_ECHO_PATH")]
    pub ws_echo_path: Option<String>,

    /// Seed of the target positions; random when not given.
    #[arg(long, env = "CLICKGAME_SEED")]
    pub seed: Option<u64>,

    /// Number of recent events kept for resuming clients.
    #[arg(long, env = "CLICKGAME_HISTORY", default_value_t = DEFAULT_HISTORY,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_COUNT))]
    pub history: usize,

    /// Interval between AJAX polls, told to clients (the lecturer's control takes the same range).
    #[arg(long, env = "CLICKGAME_POLL_INTERVAL_MS", default_value_t = DEFAULT_POLL_INTERVAL_MS,
          value_parser = clap::value_parser!(u64).range(POLL_INTERVAL_MS))]
    pub poll_interval_ms: u64,

    /// How long a long poll waits for an event before answering 204.
    #[arg(long, env = "CLICKGAME_LONGPOLL_TIMEOUT_MS", default_value_t = DEFAULT_LONGPOLL_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_MS))]
    pub longpoll_timeout_ms: u64,

    /// Pause between a round's win and the next target.
    #[arg(long, env = "CLICKGAME_ROUND_PAUSE_MS", default_value_t = DEFAULT_ROUND_PAUSE_MS)]
    pub round_pause_ms: u64,

    /// Random extra pause, 0 up to this, so the next target cannot be timed.
    #[arg(long, env = "CLICKGAME_ROUND_PAUSE_JITTER_MS", default_value_t = DEFAULT_ROUND_PAUSE_JITTER_MS)]
    pub round_pause_jitter_ms: u64,

    /// A round nobody hits ends by itself this long after it started (a `round_expired` event;
    /// the next round follows the usual pause). 0 = rounds wait for a winner for ever.
    #[arg(long, env = "CLICKGAME_ROUND_TIMEOUT_MS", default_value_t = DEFAULT_ROUND_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub round_timeout_ms: u64,

    /// Radius of the target in board units (board is 1000 × 1000).
    #[arg(long, env = "CLICKGAME_TARGET_RADIUS", default_value_t = DEFAULT_TARGET_RADIUS,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(BOARD_SIZE / 2)))]
    pub target_radius: u32,

    /// A player with no transport contact for this long leaves.
    #[arg(long, env = "CLICKGAME_PLAYER_TIMEOUT_MS", default_value_t = DEFAULT_PLAYER_TIMEOUT_MS)]
    pub player_timeout_ms: u64,

    /// The SSE `retry:` value sent to browsers.
    #[arg(long, env = "CLICKGAME_SSE_RETRY_MS", default_value_t = DEFAULT_SSE_RETRY_MS)]
    pub sse_retry_ms: u64,

    /// A comment line on every SSE stream at least this often, so proxies keep it open.
    #[arg(long, env = "CLICKGAME_SSE_HEARTBEAT_MS", default_value_t = DEFAULT_SSE_HEARTBEAT_MS,
          value_parser = clap::value_parser!(u64).range(MIN_TIMER_MS..))]
    pub sse_heartbeat_ms: u64,

    /// Directory of the web client.
    #[arg(long, env = "CLICKGAME_WEB_DIR", default_value = DEFAULT_WEB_DIR)]
    pub web_dir: PathBuf,

    /// Worker threads of the HTTP server (0 = one per CPU core).
    #[arg(long, env = "CLICKGAME_WORKERS", default_value_t = DEFAULT_WORKERS)]
    pub workers: usize,

    /// Log filter, in `tracing` env-filter syntax (e.g. `info`, `clickgame=debug`).
    #[arg(long, env = "CLICKGAME_LOG", default_value = DEFAULT_LOG)]
    pub log: String,

    /// Serve one game together with every other node started with the same Redis
    /// (`redis://host:port[/db]`; docs/scaling.md). Without it this process is the whole game,
    /// as always. Needs --node-id.
    #[arg(
        long,
        env = "CLICKGAME_REDIS_URL",
        value_name = "URL",
        requires = "node_id"
    )]
    pub redis_url: Option<String>,

    /// With --redis-url: this node's name (1 to 32 of a-z, 0-9, - and _), shown in /api/stats,
    /// /metrics and on /compare.html.
    #[arg(
        long,
        env = "CLICKGAME_NODE_ID",
        value_name = "ID",
        requires = "redis_url"
    )]
    pub node_id: Option<NodeId>,

    /// With --redis-url: how long the lease of the node running the game lives without being
    /// renewed, i.e. the longest a dead node stops the game (docs/scaling.md, "Failover").
    #[arg(long, env = "CLICKGAME_LEASE_TTL_MS", default_value_t = DEFAULT_LEASE_TTL.as_millis() as u64,
          value_parser = clap::value_parser!(u64).range(MIN_LEASE_TTL_MS..=MAX_TIMEOUT_MS))]
    pub lease_ttl_ms: u64,

    /// A reverse proxy (an address, or a network like 10.0.0.0/8) whose word about the client's
    /// address is believed: its X-Forwarded-For on plain HTTP, its PROXY protocol v2 header on
    /// the TLS port; its own sockets are exempt from --max-sockets-per-ip. Repeat the flag, or
    /// separate with commas in the environment variable. None by default.
    #[arg(
        long = "trusted-proxy",
        env = "CLICKGAME_TRUSTED_PROXIES",
        value_delimiter = ',',
        value_name = "ADDR"
    )]
    pub trusted_proxies: Vec<TrustedProxy>,
}

impl Config {
    /// The configuration of this process: flags, then environment variables, then defaults —
    /// and with `--lan`, the all-interfaces addresses for any listener address not given.
    pub fn from_args() -> Config {
        Config::from_arg_list(std::env::args_os()).unwrap_or_else(|err| err.exit())
    }

    /// [`Config::from_args`] for a given argument list (the first is the program name).
    pub fn from_arg_list<I, T>(args: I) -> Result<Config, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Config::command().try_get_matches_from(args)?;
        let mut config = Config::from_arg_matches(&matches)?;
        if config.lan {
            let defaulted = |id| matches.value_source(id) == Some(ValueSource::DefaultValue);
            if defaulted("http_addr") {
                config.http_addr = lan_default(DEFAULT_LAN_HTTP_ADDR);
            }
            if defaulted("https_addr") {
                config.https_addr = lan_default(DEFAULT_LAN_HTTPS_ADDR);
            }
            if defaulted("lab_attacker_addr") {
                config.lab_attacker_addr = lan_default(DEFAULT_LAN_LAB_ATTACKER_ADDR);
            }
        }
        if config.lab {
            // A lab game holds names a normal restore would refuse: it is never saved.
            config.no_persist = true;
        }
        if !config.lan_addrs.is_empty() && !config.lan && !config.init_ca {
            return Err(Config::command().error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "--lan-addr is for --lan or --init-ca",
            ));
        }
        Ok(config)
    }

    /// The defaults with a free port: what tests start from. Tests join many players from
    /// 127.0.0.1, so the join limits are off and the player cap is high; a test about a limit
    /// sets it back explicitly.
    pub fn for_tests() -> Config {
        let mut config = Config::parse_from(["clickgame"]);
        config.http_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        config.https_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        config.eavesdrop_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        config.eavesdrop_tls_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        config.lab_attacker_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        config.no_tls = true;
        config.no_persist = true;
        config.workers = 2;
        config.join_rate = 0;
        config.join_rate_total = 0;
        config.max_players = 100_000;
        // Tests drive their rounds themselves and some hold one open for long; a test about
        // the round timeout sets it.
        config.round_timeout_ms = 0;
        config
    }

    pub fn rules(&self) -> Rules {
        Rules {
            target_radius: self.target_radius,
            round_pause_ms: self.round_pause_ms,
            round_pause_jitter_ms: self.round_pause_jitter_ms,
            idle_timeout_ms: self.player_timeout_ms,
            poll_interval_ms: self.poll_interval_ms,
            max_players: self.max_players,
            round_timeout_ms: self.round_timeout_ms,
        }
    }

    pub fn heartbeat(&self) -> Heartbeat {
        Heartbeat {
            interval: Duration::from_millis(self.ws_ping_interval_ms),
            timeout: Duration::from_millis(self.ws_timeout_ms),
            send_timeout: Duration::from_millis(self.ws_send_timeout_ms),
        }
    }

    pub fn sse(&self) -> SseSettings {
        SseSettings {
            retry_ms: self.sse_retry_ms,
            heartbeat: Duration::from_millis(self.sse_heartbeat_ms),
        }
    }

    pub fn hub(&self) -> HubConfig {
        HubConfig {
            history: self.history,
        }
    }

    /// The cluster layer's settings, with `--redis-url`.
    pub fn cluster(&self) -> Option<ClusterConfig> {
        let (url, node) = (self.redis_url.as_ref()?, self.node_id.as_ref()?);
        let mut cluster = ClusterConfig::new(url.clone(), node.clone());
        cluster.lease_ttl = Duration::from_millis(self.lease_ttl_ms);
        Some(cluster)
    }

    /// The `--trusted-proxy` list.
    pub fn trusted_proxies(&self) -> TrustedProxies {
        TrustedProxies(self.trusted_proxies.clone())
    }
}

/// The rules at their defaults: the game `make run` plays, and the one tests start from.
impl Default for Rules {
    fn default() -> Self {
        Rules {
            target_radius: DEFAULT_TARGET_RADIUS,
            round_pause_ms: DEFAULT_ROUND_PAUSE_MS,
            round_pause_jitter_ms: DEFAULT_ROUND_PAUSE_JITTER_MS,
            idle_timeout_ms: DEFAULT_PLAYER_TIMEOUT_MS,
            poll_interval_ms: DEFAULT_POLL_INTERVAL_MS,
            max_players: DEFAULT_MAX_PLAYERS,
            round_timeout_ms: DEFAULT_ROUND_TIMEOUT_MS,
        }
    }
}

/// The WebSocket's timings at their defaults (the echo endpoint's, and the game's without flags).
impl Default for Heartbeat {
    fn default() -> Self {
        Heartbeat {
            interval: Duration::from_millis(DEFAULT_WS_PING_INTERVAL_MS),
            timeout: Duration::from_millis(DEFAULT_WS_TIMEOUT_MS),
            send_timeout: Duration::from_millis(DEFAULT_WS_SEND_TIMEOUT_MS),
        }
    }
}

fn lan_default(addr: &str) -> SocketAddr {
    addr.parse()
        .unwrap_or(SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flags_defaults_are_the_rules_and_timings_defaults() {
        let config = Config::parse_from(["clickgame"]);
        let (rules, default) = (config.rules(), Rules::default());
        assert_eq!(
            (
                rules.target_radius,
                rules.round_pause_ms,
                rules.round_pause_jitter_ms,
                rules.idle_timeout_ms,
                rules.poll_interval_ms,
                rules.max_players
            ),
            (
                default.target_radius,
                default.round_pause_ms,
                default.round_pause_jitter_ms,
                default.idle_timeout_ms,
                default.poll_interval_ms,
                default.max_players
            )
        );
        assert_eq!(config.heartbeat(), Heartbeat::default());
        assert!(POLL_INTERVAL_MS.contains(&config.poll_interval_ms));
    }

    #[test]
    fn the_poll_interval_flag_takes_exactly_the_games_range() {
        let parse =
            |ms: u64| Config::try_parse_from(["clickgame", "--poll-interval-ms", &ms.to_string()]);
        assert!(parse(*POLL_INTERVAL_MS.start()).is_ok());
        assert!(parse(*POLL_INTERVAL_MS.end()).is_ok());
        assert!(parse(POLL_INTERVAL_MS.start() - 1).is_err());
        assert!(parse(POLL_INTERVAL_MS.end() + 1).is_err());
    }

    #[test]
    fn lan_listens_on_every_interface_unless_an_address_is_given() {
        let c = Config::from_arg_list(["clickgame", "--lan"]).unwrap();
        assert_eq!(c.http_addr.to_string(), "[::]:8080");
        assert_eq!(c.https_addr.to_string(), "[::]:8443");
        let c =
            Config::from_arg_list(["clickgame", "--lan", "--http-addr", "127.0.0.1:9000"]).unwrap();
        assert_eq!(c.http_addr.to_string(), "127.0.0.1:9000");
        assert_eq!(c.https_addr.to_string(), "[::]:8443");
        let c = Config::from_arg_list(["clickgame"]).unwrap();
        assert_eq!(c.http_addr.to_string(), DEFAULT_HTTP_ADDR);
        assert!(!c.lan);
    }

    #[test]
    fn lab_implies_no_persist_and_allow_remote_needs_lab() {
        let c = Config::from_arg_list(["clickgame", "--lab"]).unwrap();
        assert!(c.lab && c.no_persist);
        assert_eq!(c.lab_attacker_addr.to_string(), DEFAULT_LAB_ATTACKER_ADDR);
        let c = Config::from_arg_list(["clickgame"]).unwrap();
        assert!(!c.lab && !c.no_persist);
        assert!(Config::from_arg_list(["clickgame", "--lab-allow-remote"]).is_err());
        let c =
            Config::from_arg_list(["clickgame", "--lab", "--lan", "--lab-allow-remote"]).unwrap();
        assert_eq!(c.lab_attacker_addr.to_string(), "[::]:8666");
    }

    #[test]
    fn lan_addr_takes_addresses_and_names_and_needs_lan_or_init_ca() {
        let c = Config::from_arg_list([
            "clickgame",
            "--lan",
            "--lan-addr",
            "192.0.2.10",
            "--lan-addr",
            "[2001:db8::10]",
        ])
        .unwrap();
        assert_eq!(
            c.lan_addrs,
            vec![
                Host::Ip("192.0.2.10".parse().unwrap()),
                Host::Ip("2001:db8::10".parse().unwrap())
            ]
        );
        assert!(Config::from_arg_list(["clickgame", "--lan-addr", "192.0.2.10"]).is_err());
        assert!(
            Config::from_arg_list(["clickgame", "--init-ca", "--lan-addr", "pc.local"]).is_ok()
        );
        assert!(Config::from_arg_list(["clickgame", "--lan", "--lan-addr", "a,b c"]).is_err());
    }
}
