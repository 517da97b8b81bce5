//! Click → `round_won` latency per transport, against the physical floor of this machine.
//!
//! For each scheme (plain HTTP, and HTTPS/WSS when the server has a TLS listener) and each of the
//! four transports, the server runs in-process on loopback (port 0). Player A clicks the target
//! (in-band on a WebSocket, `POST /api/click` for the three HTTP transports) and the timed part
//! ends when a **second** client, B, on that transport has read the bytes of the resulting
//! `round_won`. Server start, handshakes, joins and waiting for the next round stay outside the
//! timed part (`iter_custom`). AJAX polling polls on a fixed [`POLL_INTERVAL`] clock, and its
//! result is set against the theory: mean ≈ interval/2 + one poll round trip.
//!
//! The floor is a raw TCP ping-pong on loopback with `TCP_NODELAY` (64-byte messages, blocking
//! sockets), measured in the same run: a click → event path crosses two one-way legs (A → server
//! → B), like one round trip, so each transport is reported as a ratio to the floor's round trip.
//!
//! `cargo bench --bench transport_latency` (criterion's reports in `target/criterion`); a summary
//! table is printed at the end and written to `target/criterion/transport_latency_summary.md`
//! (and `.json`). `cargo test --all-targets` runs each case once.

#[path = "../src/bin/load/mod.rs"]
#[allow(dead_code)]
mod load;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use actix_web::rt::{System, SystemRunner};
use clickgame::config::Config;
use clickgame::server::{self, RunningServer};
use criterion::Criterion;
use hdrhistogram::Histogram;
use tokio::sync::mpsc;

use load::client::{self, Clicker, Downstream, Event, EventType, Kind, Resume, Target};
use load::floor::{new_histogram, PingPong};
use load::net;

/// The AJAX client's fixed polling clock (the smallest interval the server will advertise).
const POLL_INTERVAL: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

thread_local! {
    /// Every timed sample, per case, in nanoseconds: the percentiles criterion does not print.
    static SAMPLES: RefCell<BTreeMap<String, Histogram<u64>>> = const { RefCell::new(BTreeMap::new()) };
    /// Mean round trip of an empty AJAX poll, per scheme, for the theory line.
    static POLL_RTT: RefCell<BTreeMap<&'static str, Duration>> = const { RefCell::new(BTreeMap::new()) };
    /// Cases that could not run, and why.
    static SKIPPED: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn record(case: &str, d: Duration) {
    SAMPLES.with(|s| {
        let _ = s
            .borrow_mut()
            .entry(case.to_string())
            .or_insert_with(new_histogram)
            .record(d.as_nanos().max(1) as u64);
    });
}

/// A server, a clicking player A and a listening player B on one transport.
struct Rig {
    _server: RunningServer,
    kind: Kind,
    clicker: Clicker,
    events: mpsc::UnboundedReceiver<(Instant, Event)>,
    /// The running round B knows of: number and target centre.
    open: Option<(u64, f64, f64)>,
}

fn config(scheme: Scheme) -> Config {
    let mut config = Config::for_tests();
    config.seed = Some(5);
    config.round_pause_ms = 0;
    config.round_pause_jitter_ms = 0;
    // B holds a round open while A's event travels: it must never expire under the measurement.
    config.round_timeout_ms = 0;
    config.click_rate = u32::MAX;
    config.max_conns_per_ip = 0;
    config.max_sockets_per_ip = 0;
    config.log = "error".into();
    if scheme == Scheme::Https {
        config.no_tls = false;
        config.data_dir = std::env::temp_dir().join("clickgame-bench-tls");
    }
    config
}

impl Rig {
    async fn start(scheme: Scheme, kind: Kind) -> Result<Rig, String> {
        let server = server::start(config(scheme))
            .await
            .map_err(|e| format!("server start: {e}"))?;
        let base = match scheme {
            Scheme::Http => format!("http://{}", server.http_addr),
            Scheme::Https => {
                let addr = server
                    .https_addr
                    .ok_or("the server started without a TLS listener")?;
                format!("https://{addr}")
            }
        };
        let counters = std::sync::Arc::new(net::Counters::default());
        let target = Target {
            client: net::client(None, counters, scheme == Scheme::Https),
            base,
        };
        let a = client::join(&target, "bench-a")
            .await
            .map_err(|e| e.to_string())?;
        let b = client::join(&target, "bench-b")
            .await
            .map_err(|e| e.to_string())?;
        let clicker = Clicker::open(&target, &a, kind == Kind::Websocket)
            .await
            .map_err(|e| e.to_string())?;
        // Nobody clicks yet, so the round in this snapshot is still open when B starts.
        let mut res = target
            .client
            .get(format!("{}/api/snapshot", target.base))
            .send()
            .await
            .map_err(|e| format!("snapshot: {e}"))?;
        let snap: serde_json::Value = res.json().await.map_err(|e| format!("snapshot: {e}"))?;
        let round = &snap["round"];
        let open = match (
            round["number"].as_u64(),
            round["x"].as_f64(),
            round["y"].as_f64(),
        ) {
            (Some(n), Some(x), Some(y)) if round["winner"].is_null() => Some((n, x, y)),
            _ => None,
        };
        let mut b = Downstream::open(
            &target,
            kind,
            Some(&b.token),
            Resume::default(),
            POLL_INTERVAL,
        )
        .await
        .map_err(|e| e.to_string())?;
        let (tx, events) = mpsc::unbounded_channel();
        actix_web::rt::spawn(async move {
            loop {
                match b.next().await {
                    Ok(item) => {
                        if tx.send(item).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        eprintln!("listener: {e}");
                        return;
                    }
                }
            }
        });
        let mut rig = Rig {
            _server: server,
            kind,
            clicker,
            events,
            open,
        };
        // B's first answer (its snapshot) must be in before anyone clicks: a polling client
        // that first asked after the click would get the win inside a snapshot, not as an event.
        let (_, first) = rig.recv().await?;
        if first.kind != EventType::Snapshot {
            return Err(format!("B started with {:?}, not a snapshot", first.kind));
        }
        if kind == Kind::Ajax {
            let rtt = empty_poll_rtt(&target, 200).await?;
            POLL_RTT.with(|p| p.borrow_mut().insert(scheme.name(), rtt));
        }
        Ok(rig)
    }

    /// Reads B's events until a round is open (untimed).
    async fn wait_round(&mut self) -> Result<(u64, f64, f64), String> {
        loop {
            if let Some(open) = self.open {
                return Ok(open);
            }
            let (_, event) = self.recv().await?;
            self.track(&event);
        }
    }

    fn track(&mut self, event: &Event) {
        match (event.kind, event.round, event.x, event.y) {
            (EventType::RoundStarted, Some(n), Some(x), Some(y)) => {
                self.open = Some((n, f64::from(x), f64::from(y)));
            }
            (EventType::RoundWon, Some(n), _, _) if self.open.is_some_and(|o| o.0 == n) => {
                self.open = None;
            }
            _ => {}
        }
    }

    async fn recv(&mut self) -> Result<(Instant, Event), String> {
        actix_web::rt::time::timeout(Duration::from_secs(10), self.events.recv())
            .await
            .map_err(|_| "no event within 10 s".to_string())?
            .ok_or_else(|| "the listener stopped".to_string())
    }

    /// One timed click → `round_won` seen by B.
    async fn once(&mut self) -> Result<Duration, String> {
        let (round, x, y) = self.wait_round().await?;
        if self.kind == Kind::Ajax {
            // B learnt of the round from a poll that just returned: clicking now would always
            // land right after a poll and wait a whole interval. A random pause puts the click
            // at a random phase of the polling clock, as a real player's would be.
            let phase = rand::random::<u64>() % POLL_INTERVAL.as_micros() as u64;
            actix_web::rt::time::sleep(Duration::from_micros(phase)).await;
        }
        let start = Instant::now();
        let reply = self
            .clicker
            .click(round, x, y)
            .await
            .map_err(|e| e.to_string())?;
        if reply["result"] != "hit" {
            return Err(format!("the click did not hit: {reply}"));
        }
        loop {
            let (at, event) = self.recv().await?;
            self.track(&event);
            if event.kind == EventType::RoundWon && event.round == Some(round) {
                return Ok(at.saturating_duration_since(start));
            }
        }
    }
}

/// Mean time of `n` AJAX polls that find nothing new.
async fn empty_poll_rtt(target: &Target, n: u32) -> Result<Duration, String> {
    let (seq, epoch, _) = client::snapshot(target).await.map_err(|e| e.to_string())?;
    let url = format!("{}/api/poll?since={seq}&epoch={epoch}", target.base);
    let start = Instant::now();
    for _ in 0..n {
        let mut res = target
            .client
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("poll: {e}"))?;
        res.body().await.map_err(|e| format!("poll body: {e}"))?;
    }
    Ok(start.elapsed() / n)
}

fn bench_floor(c: &mut Criterion) {
    let mut group = c.benchmark_group("floor");
    let mut pp: Option<PingPong> = None;
    group.bench_function("tcp_pingpong_64B", |b| {
        b.iter_custom(|iters| {
            let pp = match &mut pp {
                Some(pp) => pp,
                None => pp.insert(PingPong::start().expect("loopback echo starts")),
            };
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let rtt = pp.round_trip().expect("loopback round trip");
                record("floor/tcp_pingpong_64B", rtt);
                total += rtt;
            }
            total
        })
    });
    group.finish();
}

fn bench_transports(c: &mut Criterion, sys: &SystemRunner, scheme: Scheme) {
    let mut group = c.benchmark_group(format!("click_to_round_won/{}", scheme.name()));
    group.sample_size(20);
    group.warm_up_time(Duration::from_millis(500));
    for kind in Kind::ALL {
        let case = format!("click_to_round_won/{}/{}", scheme.name(), kind);
        if kind == Kind::Ajax {
            group.measurement_time(Duration::from_secs(8));
        } else {
            group.measurement_time(Duration::from_secs(3));
        }
        let mut rig: Option<Rig> = None;
        let mut failed = false;
        group.bench_function(kind.name(), |b| {
            b.iter_custom(|iters| {
                if failed {
                    return Duration::from_nanos(iters);
                }
                let result = sys.block_on(async {
                    let rig = match &mut rig {
                        Some(rig) => rig,
                        None => rig.insert(Rig::start(scheme, kind).await?),
                    };
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let d = rig.once().await?;
                        record(&case, d);
                        total += d;
                    }
                    Ok::<_, String>(total)
                });
                result.unwrap_or_else(|e| {
                    SKIPPED.with(|s| s.borrow_mut().push(format!("{case}: {e}")));
                    eprintln!("{case}: {e}");
                    failed = true;
                    Duration::from_nanos(iters)
                })
            })
        });
        // Stop this case's server before the next one starts.
        sys.block_on(async { drop(rig.take()) });
    }
    group.finish();
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

/// The table at the end: percentiles per case and the ratio of each p50 to the floor's p50.
fn summary() {
    let samples = SAMPLES.with(|s| s.borrow().clone());
    let Some(floor) = samples.get("floor/tcp_pingpong_64B") else {
        return;
    };
    let floor_p50 = floor.value_at_quantile(0.5).max(1) as f64;
    let floor_mean = floor.mean().max(1.0);
    let mut md = String::new();
    let _ = writeln!(
        md,
        "| case | n | p50 µs | mean µs | p99 µs | max µs | p50 ÷ floor p50 | mean ÷ floor mean |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut json = Vec::new();
    for (case, h) in &samples {
        let p50 = h.value_at_quantile(0.5);
        let _ = writeln!(
            md,
            "| {case} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1}× | {:.1}× |",
            h.len(),
            us(p50),
            h.mean() / 1000.0,
            us(h.value_at_quantile(0.99)),
            us(h.max()),
            p50 as f64 / floor_p50,
            h.mean() / floor_mean,
        );
        json.push(serde_json::json!({
            "case": case, "n": h.len(), "p50_us": us(p50), "mean_us": h.mean() / 1000.0,
            "p99_us": us(h.value_at_quantile(0.99)), "max_us": us(h.max()),
            "ratio_p50": p50 as f64 / floor_p50, "ratio_mean": h.mean() / floor_mean,
        }));
    }
    let mut notes = String::new();
    POLL_RTT.with(|p| {
        for (scheme, rtt) in p.borrow().iter() {
            let case = format!("click_to_round_won/{scheme}/ajax");
            let measured = samples.get(&case).map(|h| h.mean() / 1000.0);
            let theory = POLL_INTERVAL.as_secs_f64() * 1e6 / 2.0 + rtt.as_secs_f64() * 1e6;
            let _ = writeln!(
                notes,
                "AJAX ({scheme}, {} ms fixed interval): theory interval/2 + poll RTT = {:.0} µs \
                 (poll RTT {:.0} µs); measured mean {}",
                POLL_INTERVAL.as_millis(),
                theory,
                rtt.as_secs_f64() * 1e6,
                measured.map_or("n/a".into(), |m| format!("{m:.0} µs")),
            );
        }
    });
    SKIPPED.with(|s| {
        for skipped in s.borrow().iter() {
            let _ = writeln!(notes, "not measured: {skipped}");
        }
    });
    println!("\nclick → round_won seen by a second client, vs the TCP floor (round trip, 64 B, TCP_NODELAY)\n");
    println!("{md}");
    println!("{notes}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/criterion");
    if std::fs::create_dir_all(&dir).is_ok() {
        let _ = std::fs::write(
            dir.join("transport_latency_summary.md"),
            format!("{md}\n{notes}"),
        );
        let _ = std::fs::write(
            dir.join("transport_latency_summary.json"),
            serde_json::to_string_pretty(&json).unwrap_or_default(),
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let sys = System::new();
    bench_floor(&mut c);
    for scheme in [Scheme::Http, Scheme::Https] {
        bench_transports(&mut c, &sys, scheme);
    }
    c.final_summary();
    summary();
}
