//! # Is Redis there? `redis: "ok" | "unreachable"`
//!
//! Two sources feed one `watch` value: every failed call through [`Redis::run`] marks Redis
//! unreachable at once (no waiting for the next probe), and a probe task `PING`s every
//! [`PROBE_INTERVAL`] and marks it `ok` again when it answers. So a node notices a lost Redis
//! with the first command that fails, and recovers by itself — nobody restarts anything —
//! within one probe interval of Redis coming back. Each change is logged once (a warning when
//! Redis goes, a line when it is back), not once per failed request.
//!
//! `/api/stats` (phase 2) shows [`RedisHealth::as_str`]; handlers may refuse commands early
//! with `503` while it says `unreachable`.

use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use super::conn::Redis;

/// How often the probe asks.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(500);

/// Redis as this node last saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "redis")]
pub enum RedisHealth {
    /// Not asked yet (the first probe is under way).
    Unknown,
    Ok,
    /// Since when (ms since the Unix epoch), and the first error.
    Unreachable {
        since_ms: u64,
        error: String,
    },
}

impl RedisHealth {
    /// The word `/api/stats` shows: `ok`, `unreachable` (or `unknown` in the first moment).
    pub fn as_str(&self) -> &'static str {
        match self {
            RedisHealth::Unknown => "unknown",
            RedisHealth::Ok => "ok",
            RedisHealth::Unreachable { .. } => "unreachable",
        }
    }

    pub fn is_ok(&self) -> bool {
        *self == RedisHealth::Ok
    }
}

pub(crate) fn report_unreachable(health: &watch::Sender<RedisHealth>, why: &str) {
    health.send_if_modified(|h| {
        if matches!(h, RedisHealth::Unreachable { .. }) {
            return false;
        }
        tracing::warn!(error = %why, "Redis is unreachable: commands get 503 until it is back");
        *h = RedisHealth::Unreachable {
            since_ms: super::now_ms(),
            error: why.to_string(),
        };
        true
    });
}

pub(crate) fn report_ok(health: &watch::Sender<RedisHealth>) {
    health.send_if_modified(|h| {
        match h {
            RedisHealth::Ok => return false,
            RedisHealth::Unreachable { since_ms, .. } => {
                let down_ms = super::now_ms().saturating_sub(*since_ms);
                tracing::info!(down_ms, "Redis is reachable again");
            }
            RedisHealth::Unknown => tracing::info!("Redis is reachable"),
        }
        *h = RedisHealth::Ok;
        true
    });
}

/// Probes until the I/O thread stops. Spawned once per node by `Node::start`.
pub(crate) async fn probe(redis: Redis) {
    loop {
        let answer = redis
            .run("PING", |mut c| async move {
                redis::cmd("PING").query_async::<String>(&mut c).await
            })
            .await;
        if answer.is_ok() {
            report_ok(redis.health_sender());
        }
        // Failures were reported by `run` itself.
        tokio::time::sleep(PROBE_INTERVAL).await;
    }
}
