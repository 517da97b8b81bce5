//! # Configuration
//!
//! Every setting is a command-line flag that also reads a `CLICKGAME_*` environment variable;
//! `clickgame --help` lists them. Defaults are the constants below, so `make run` needs no file.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::game::Rules;
use crate::hub::HubConfig;
use crate::tls::TlsVersion;

pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";
pub const DEFAULT_HTTPS_ADDR: &str = "127.0.0.1:8443";
/// The eavesdropping relays (`--eavesdrop`): loopback, next to the listeners they relay to.
pub const DEFAULT_EAVESDROP_ADDR: &str = "127.0.0.1:8081";
pub const DEFAULT_EAVESDROP_TLS_ADDR: &str = "127.0.0.1:8444";
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
pub const DEFAULT_ROUND_PAUSE_MS: u64 = 1500;
pub const DEFAULT_ROUND_PAUSE_JITTER_MS: u64 = 500;
/// A round nobody hits ends by itself after this long (`round_expired`): long enough for a
/// student to find the target on a phone, short enough that a forgotten target does not turn
/// the next reaction time into minutes.
pub const DEFAULT_ROUND_TIMEOUT_MS: u64 = 10_000;
pub const DEFAULT_TARGET_RADIUS: u32 = 40;
/// A player with no transport contact for this long leaves.
pub const DEFAULT_PLAYER_TIMEOUT_MS: u64 = 60_000;
/// The SSE `retry:` the browser waits before reconnecting.
pub const DEFAULT_SSE_RETRY_MS: u64 = 1000;

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

    /// Directory for the generated certificate and key.
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

    /// Make the plain HTTP port answer every request with a redirect to HTTPS.
    #[arg(long, env = "CLICKGAME_REDIRECT_HTTP")]
    pub redirect_http: bool,

    /// Lowest TLS version the HTTPS listener accepts (1.2 or 1.3).
    #[arg(long, env = "CLICKGAME_TLS_MIN", value_enum, default_value = "1.2")]
    pub tls_min: TlsVersion,

    /// Highest TLS version the HTTPS listener accepts (1.2 or 1.3). `--tls-max 1.2` shows a
    /// TLS 1.2 handshake, certificate in clear, next to a 1.3 one.
    #[arg(long, env = "CLICKGAME_TLS_MAX", value_enum, default_value = "1.3")]
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

    /// Another origin (scheme://host[:port]) allowed to use the API, besides the server's own.
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
          value_parser = clap::value_parser!(u64).range(10..=600_000))]
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
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub max_players: usize,

    /// Milliseconds between server pings on a WebSocket.
    #[arg(long, env = "CLICKGAME_WS_PING_INTERVAL_MS", default_value_t = 20_000,
          value_parser = clap::value_parser!(u64).range(10..))]
    pub ws_ping_interval_ms: u64,

    /// A WebSocket silent (not even a pong) for this long is closed with 1008.
    #[arg(long, env = "CLICKGAME_WS_TIMEOUT_MS", default_value_t = 45_000,
          value_parser = clap::value_parser!(u64).range(10..))]
    pub ws_timeout_ms: u64,

    /// A client that stops reading is disconnected once a write has waited this long: on a
    /// WebSocket any frame (event, reply, pong, ping, close) and the socket is closed after a
    /// 1008; on any other connection (SSE, HTTP/2, responses) the socket is closed.
    #[arg(long, env = "CLICKGAME_WS_SEND_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(10..))]
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
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1_000_000))]
    pub history: usize,

    /// Interval between AJAX polls, told to clients.
    #[arg(long, env = "CLICKGAME_POLL_INTERVAL_MS", default_value_t = DEFAULT_POLL_INTERVAL_MS,
          value_parser = clap::value_parser!(u64).range(50..=60_000))]
    pub poll_interval_ms: u64,

    /// How long a long poll waits for an event before answering 204.
    #[arg(long, env = "CLICKGAME_LONGPOLL_TIMEOUT_MS", default_value_t = DEFAULT_LONGPOLL_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
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
          value_parser = clap::value_parser!(u32).range(1..=500))]
    pub target_radius: u32,

    /// A player with no transport contact for this long leaves.
    #[arg(long, env = "CLICKGAME_PLAYER_TIMEOUT_MS", default_value_t = DEFAULT_PLAYER_TIMEOUT_MS)]
    pub player_timeout_ms: u64,

    /// The SSE `retry:` value sent to browsers.
    #[arg(long, env = "CLICKGAME_SSE_RETRY_MS", default_value_t = DEFAULT_SSE_RETRY_MS)]
    pub sse_retry_ms: u64,

    /// A comment line on every SSE stream at least this often, so proxies keep it open.
    #[arg(long, env = "CLICKGAME_SSE_HEARTBEAT_MS", default_value_t = 15_000,
          value_parser = clap::value_parser!(u64).range(10..))]
    pub sse_heartbeat_ms: u64,

    /// Directory of the web client.
    #[arg(long, env = "CLICKGAME_WEB_DIR", default_value = DEFAULT_WEB_DIR)]
    pub web_dir: PathBuf,

    /// Worker threads of the HTTP server (0 = one per CPU core).
    #[arg(long, env = "CLICKGAME_WORKERS", default_value_t = 0)]
    pub workers: usize,

    /// Log filter, in `tracing` env-filter syntax (e.g. `info`, `clickgame=debug`).
    #[arg(long, env = "CLICKGAME_LOG", default_value = "info")]
    pub log: String,
}

impl Config {
    /// The defaults with a free port: what tests start from. Tests join many players from
    /// 127.0.0.1, so the join limits are off and the player cap is high; a test about a limit
    /// sets it back explicitly.
    pub fn for_tests() -> Config {
        let mut config = Config::parse_from(["clickgame"]);
        config.http_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        config.https_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        config.eavesdrop_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        config.eavesdrop_tls_addr = SocketAddr::from(([127, 0, 0, 1], 0));
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

    pub fn heartbeat(&self) -> crate::transport::websocket::Heartbeat {
        crate::transport::websocket::Heartbeat {
            interval: std::time::Duration::from_millis(self.ws_ping_interval_ms),
            timeout: std::time::Duration::from_millis(self.ws_timeout_ms),
            send_timeout: std::time::Duration::from_millis(self.ws_send_timeout_ms),
        }
    }

    pub fn hub(&self) -> HubConfig {
        HubConfig {
            history: self.history,
        }
    }
}
