//! # Configuration
//!
//! Every setting is a command-line flag that also reads a `CLICKGAME_*` environment variable;
//! `clickgame --help` lists them. Defaults are the constants below, so `make run` needs no file.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use crate::game::Rules;
use crate::hub::HubConfig;

pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:8080";
/// Events kept for resuming clients; older gaps are answered with a snapshot.
pub const DEFAULT_HISTORY: usize = 1024;
/// How often AJAX polling clients ask (sent to them in the snapshot).
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 1000;
/// How long a long poll is held before `204 No Content`.
pub const DEFAULT_LONGPOLL_TIMEOUT_MS: u64 = 25_000;
pub const DEFAULT_ROUND_PAUSE_MS: u64 = 1500;
pub const DEFAULT_ROUND_PAUSE_JITTER_MS: u64 = 500;
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
    /// The defaults with a free port: what tests start from.
    pub fn for_tests() -> Config {
        let mut config = Config::parse_from(["clickgame"]);
        config.http_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        config.workers = 2;
        config
    }

    pub fn rules(&self) -> Rules {
        Rules {
            target_radius: self.target_radius,
            round_pause_ms: self.round_pause_ms,
            round_pause_jitter_ms: self.round_pause_jitter_ms,
            idle_timeout_ms: self.player_timeout_ms,
        }
    }

    pub fn hub(&self) -> HubConfig {
        HubConfig {
            history: self.history,
            poll_interval_ms: self.poll_interval_ms,
        }
    }
}
