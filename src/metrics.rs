//! # Server-side figures per transport
//!
//! What the compare page and `GET /metrics` show next to the browser's own figures: open
//! connections, HTTP requests (a WebSocket upgrade and an SSE stream count once), events
//! delivered, bytes, clicks accepted and rejected, and the delivery lag: event created → handed
//! to the connection, in ms, in an HdrHistogram. Counters are atomics; the histogram sits
//! behind a mutex taken once per batch.
//!
//! Bytes come twice. **Wire bytes** are what crosses the wire: counted at the socket
//! (`listener.rs`), so they include response heads, chunked framing, WebSocket frame headers
//! and, on HTTPS, the TLS records — exact for HTTP/1.1 and WebSockets. Over HTTP/2 one
//! connection carries every transport's requests at once and the socket cannot tell them
//! apart, so there they are an **estimate**: payload plus 9 B per frame header, without the
//! HPACK-compressed heads (`wire_estimated`, reported apart). **Payload bytes** are bodies and
//! frame payloads as we hand them to actix: the figure the wire bytes are compared with.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::game::Transport;
use crate::log::{now_ms, WireEvent};
use crate::refusal::Rule;

/// Counters of one transport.
#[derive(Debug)]
pub struct TransportMetrics {
    open: AtomicI64,
    requests: AtomicU64,
    events: AtomicU64,
    /// Bodies and frame payloads.
    payload: AtomicU64,
    /// Bytes written to sockets while serving this transport (HTTP/1.1, WebSockets): exact.
    wire: Arc<AtomicU64>,
    /// The HTTP/2 part, estimated.
    wire_estimated: AtomicU64,
    clicks_accepted: AtomicU64,
    clicks_rejected: AtomicU64,
    lag: Mutex<Histogram<u64>>,
}

/// 1 ms .. 1 h at 2 significant digits: a few KiB, fixed size.
#[allow(clippy::expect_used)] // constant, valid bounds: this cannot fail at run time
fn lag_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000, 2).expect("valid histogram bounds")
}

impl Default for TransportMetrics {
    fn default() -> Self {
        TransportMetrics {
            open: AtomicI64::new(0),
            requests: AtomicU64::new(0),
            events: AtomicU64::new(0),
            payload: AtomicU64::new(0),
            wire: Arc::default(),
            wire_estimated: AtomicU64::new(0),
            clicks_accepted: AtomicU64::new(0),
            clicks_rejected: AtomicU64::new(0),
            lag: Mutex::new(lag_histogram()),
        }
    }
}

/// Summary of a lag histogram, in ms.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LagSummary {
    pub count: u64,
    pub mean: f64,
    pub p50: u64,
    pub p95: u64,
    pub p99: u64,
    pub max: u64,
}

/// One transport's figures, as `GET /api/stats` sends them.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TransportStats {
    pub open_connections: i64,
    pub requests: u64,
    pub events_delivered: u64,
    /// What crossed the wire: heads and framing included (see the module's paragraph).
    pub bytes_written: u64,
    /// The part of `bytes_written` that is estimated (served over HTTP/2); 0 on HTTP/1.1.
    pub bytes_estimated: u64,
    /// Bodies and frame payloads only.
    pub payload_bytes: u64,
    pub clicks_accepted: u64,
    pub clicks_rejected: u64,
    pub delivery_lag_ms: LagSummary,
}

/// All transports' counters. Cheap to clone (an `Arc`).
#[derive(Debug, Clone)]
pub struct Metrics {
    inner: Arc<MetricsInner>,
}

#[derive(Debug)]
struct MetricsInner {
    started: Instant,
    by: [TransportMetrics; Transport::COUNT],
    /// Refusals per defence (`refusal.rs`), counted with or without `--lab`.
    refusals: [AtomicU64; Rule::COUNT],
}

/// Counts an open connection until dropped.
#[derive(Debug)]
pub struct OpenConnection {
    metrics: Metrics,
    transport: Transport,
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.metrics
            .of(self.transport)
            .open
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            inner: Arc::new(MetricsInner {
                started: Instant::now(),
                by: Default::default(),
                refusals: Default::default(),
            }),
        }
    }
}

impl Metrics {
    fn of(&self, t: Transport) -> &TransportMetrics {
        &self.inner.by[t.index()]
    }

    pub fn uptime_s(&self) -> u64 {
        self.inner.started.elapsed().as_secs()
    }

    /// One HTTP request (or upgrade, or stream) on `t`.
    pub fn request(&self, t: Transport) {
        self.of(t).requests.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection that stays open (SSE, WebSocket, parked long poll) until the guard drops.
    pub fn open(&self, t: Transport) -> OpenConnection {
        self.of(t).open.fetch_add(1, Ordering::Relaxed);
        OpenConnection {
            metrics: self.clone(),
            transport: t,
        }
    }

    /// The counter of `t`'s wire bytes, for a socket to add what it writes while it serves a
    /// request of `t` (`ConnHandle::count_writes_into`).
    pub fn wire_meter(&self, t: Transport) -> Arc<AtomicU64> {
        self.of(t).wire.clone()
    }

    /// `bytes` that an HTTP/2 request of `t` put on the wire, by estimate.
    pub fn wire_estimated(&self, t: Transport, bytes: u64) {
        self.of(t)
            .wire_estimated
            .fetch_add(bytes, Ordering::Relaxed);
    }

    /// `events` (perhaps none: a heartbeat) were written to one connection of `t` as `bytes`
    /// bytes of payload. Transports report through `Connection::delivered`, which calls this.
    pub fn delivered(&self, t: Transport, events: &[Arc<WireEvent>], bytes: usize) {
        let m = self.of(t);
        m.events.fetch_add(events.len() as u64, Ordering::Relaxed);
        m.payload.fetch_add(bytes as u64, Ordering::Relaxed);
        if events.is_empty() {
            return;
        }
        let now = now_ms();
        let mut lag = m.lag.lock().unwrap_or_else(PoisonError::into_inner);
        for e in events.iter().filter(|e| e.kind != "snapshot") {
            let _ = lag.record(now.saturating_sub(e.ts).max(1));
        }
    }

    pub fn click(&self, t: Transport, accepted: bool) {
        let m = self.of(t);
        if accepted {
            &m.clicks_accepted
        } else {
            &m.clicks_rejected
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// One refusal by the defence `rule`.
    pub fn refused(&self, rule: Rule) {
        self.inner.refusals[rule.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Refusals by the defence `rule` since the start.
    pub fn refusals(&self, rule: Rule) -> u64 {
        self.inner.refusals[rule.index()].load(Ordering::Relaxed)
    }

    pub fn stats(&self, t: Transport) -> TransportStats {
        let m = self.of(t);
        let lag = m.lag.lock().unwrap_or_else(PoisonError::into_inner);
        let estimated = m.wire_estimated.load(Ordering::Relaxed);
        TransportStats {
            open_connections: m.open.load(Ordering::Relaxed),
            requests: m.requests.load(Ordering::Relaxed),
            events_delivered: m.events.load(Ordering::Relaxed),
            bytes_written: m.wire.load(Ordering::Relaxed) + estimated,
            bytes_estimated: estimated,
            payload_bytes: m.payload.load(Ordering::Relaxed),
            clicks_accepted: m.clicks_accepted.load(Ordering::Relaxed),
            clicks_rejected: m.clicks_rejected.load(Ordering::Relaxed),
            delivery_lag_ms: LagSummary {
                count: lag.len(),
                mean: if lag.is_empty() {
                    0.0
                } else {
                    (lag.mean() * 10.0).round() / 10.0
                },
                p50: lag.value_at_quantile(0.5),
                p95: lag.value_at_quantile(0.95),
                p99: lag.value_at_quantile(0.99),
                max: lag.max(),
            },
        }
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn prometheus(&self) -> String {
        self.prometheus_labelled("")
    }

    /// The same, every series labelled `node="<id>"` (a cluster node: Prometheus scrapes each
    /// node and the figures add up, or are compared, per node).
    pub fn prometheus_for_node(&self, node: &str) -> String {
        self.prometheus_labelled(&format!("node=\"{node}\","))
    }

    /// `extra`: labels put before each series' own, each followed by a comma.
    fn prometheus_labelled(&self, extra: &str) -> String {
        let mut out = String::new();
        type Get = fn(&TransportStats) -> f64;
        let counters: [(&str, &str, Get); 8] = [
            (
                "clickgame_open_connections",
                "Open long-lived connections (gauge).",
                |s| s.open_connections as f64,
            ),
            (
                "clickgame_http_requests_total",
                "HTTP requests, upgrades and streams.",
                |s| s.requests as f64,
            ),
            (
                "clickgame_events_delivered_total",
                "Events written to clients.",
                |s| s.events_delivered as f64,
            ),
            (
                "clickgame_bytes_written_total",
                "Bytes written to the wire: heads, framing and TLS records included.",
                |s| s.bytes_written as f64,
            ),
            (
                "clickgame_bytes_estimated_total",
                "The part of bytes_written estimated (served over HTTP/2).",
                |s| s.bytes_estimated as f64,
            ),
            (
                "clickgame_payload_bytes_total",
                "Bodies and frame payloads written (no heads, no framing).",
                |s| s.payload_bytes as f64,
            ),
            (
                "clickgame_clicks_accepted_total",
                "Clicks judged (hit, miss or late).",
                |s| s.clicks_accepted as f64,
            ),
            (
                "clickgame_clicks_rejected_total",
                "Clicks refused (bad, unauthorised, rate-limited).",
                |s| s.clicks_rejected as f64,
            ),
        ];
        let stats: Vec<(Transport, TransportStats)> = Transport::ALL
            .iter()
            .map(|t| (*t, self.stats(*t)))
            .collect();
        for (name, help, get) in counters {
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for (t, s) in &stats {
                let _ = writeln!(out, "{name}{{{extra}transport=\"{t}\"}} {}", get(s));
            }
        }
        let name = "clickgame_delivery_lag_ms";
        let _ = writeln!(
            out,
            "# HELP {name} Event created to written, in ms.\n# TYPE {name} summary"
        );
        for (t, s) in &stats {
            let l = &s.delivery_lag_ms;
            for (q, v) in [("0.5", l.p50), ("0.95", l.p95), ("0.99", l.p99)] {
                let _ = writeln!(
                    out,
                    "{name}{{{extra}transport=\"{t}\",quantile=\"{q}\"}} {v}"
                );
            }
            let _ = writeln!(
                out,
                "{name}_sum{{{extra}transport=\"{t}\"}} {}",
                l.mean * l.count as f64
            );
            let _ = writeln!(out, "{name}_count{{{extra}transport=\"{t}\"}} {}", l.count);
        }
        let name = "clickgame_refusals_total";
        let _ = writeln!(
            out,
            "# HELP {name} Requests, messages and sockets refused, by the defence that refused them.\n# TYPE {name} counter"
        );
        for rule in Rule::ALL {
            let _ = writeln!(
                out,
                "{name}{{{extra}rule=\"{rule}\"}} {}",
                self.refusals(rule)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_transport_counts_in_a_slot_of_its_own() {
        for (i, t) in Transport::ALL.iter().enumerate() {
            assert_eq!(t.index(), i, "{t}: index() follows ALL");
        }
        let metrics = Metrics::default();
        for (n, t) in Transport::ALL.iter().enumerate() {
            for _ in 0..=n {
                metrics.request(*t);
            }
        }
        let counts: Vec<u64> = Transport::ALL
            .iter()
            .map(|t| metrics.stats(*t).requests)
            .collect();
        assert_eq!(counts, (1..=Transport::COUNT as u64).collect::<Vec<_>>());
    }
}
