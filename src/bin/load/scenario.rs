//! The three measurements. Each starts a fresh server (unless one is given), opens its clients,
//! measures, and closes everything again.
//!
//! Events are caused by one clicking player on a WebSocket of its own, clicking the corner
//! `(0, 0)` — always outside the target — so every click is one `click_missed` that every
//! client receives. The clicker's `misses` counter numbers the clicks: the k-th click after the
//! first is `misses = base + k`, which ties each received event to the moment its click was due.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::rt::task::JoinHandle;
use awc::ws;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::client::{
    self, ClickSink, Clicker, Downstream, Error, Event, EventType, Kind, Result, Resume, Stats,
    Target,
};
use super::floor::new_histogram;
use super::net::{self, Counters, Traffic};
use super::server::{Server, Spec};
use super::sys;

/// Settings shared by every scenario.
#[derive(Debug, Clone)]
pub struct Env {
    pub spec: Spec,
    pub sources: Vec<IpAddr>,
    pub tls: bool,
    pub poll_interval: Duration,
    pub connect_concurrency: usize,
}

/// Percentiles of a histogram of nanoseconds, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        let ms = |ns: u64| ns as f64 / 1e6;
        Percentiles {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: h.mean() / 1e6,
        }
    }
}

/// Server process figures over a phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcFigures {
    pub server_rss_mib: Option<f64>,
    pub server_cpu_percent: Option<f64>,
    pub client_cpu_percent: Option<f64>,
    /// The server's user + system CPU time over the phase, in seconds (all its threads).
    pub server_cpu_seconds: Option<f64>,
}

/// One awc client per source address, all counting into the same [`Counters`].
pub(crate) struct Pool {
    targets: Vec<Target>,
    counters: Arc<Counters>,
}

impl Pool {
    fn new(env: &Env, base: &str) -> Pool {
        Pool::spread(env, &[base.to_string()])
    }

    /// Clients spread over several servers (the nodes of a cluster): client `i` goes to
    /// `bases[i % bases.len()]`, from a source address of its own.
    pub(crate) fn spread(env: &Env, bases: &[String]) -> Pool {
        let counters = Arc::new(Counters::default());
        let mut targets = Vec::new();
        for (i, ip) in env.sources.iter().enumerate() {
            for k in 0..bases.len() {
                targets.push(Target {
                    client: net::client(Some(*ip), counters.clone(), env.tls),
                    base: bases[(i + k) % bases.len()].clone(),
                });
            }
        }
        Pool { targets, counters }
    }

    pub(crate) fn target(&self, i: usize) -> &Target {
        &self.targets[i % self.targets.len()]
    }
}

/// A player clicking at the corner over a WebSocket of its own, with its own byte counters.
pub(crate) struct ClickSource {
    pub(crate) player: u64,
    round: u64,
    /// `misses` after the warm-up click; click k (from 1) arrives as `misses = base + k`.
    pub(crate) base: u64,
    sink: ClickSink,
    replies: JoinHandle<()>,
    reply_errors: Rc<RefCell<Vec<String>>>,
}

impl ClickSource {
    pub(crate) async fn open(base_url: &str, tls: bool) -> Result<ClickSource> {
        let target = Target {
            client: net::client(None, Arc::new(Counters::default()), tls),
            base: base_url.to_string(),
        };
        let name = format!("load-{}", std::process::id() % 100_000);
        let player = client::join(&target, &name).await?;
        let (_, _, round) = client::snapshot(&target).await?;
        let round = round.ok_or_else(|| Error("no round has started".into()))?;
        let mut clicker = Clicker::open(&target, &player, true).await?;
        let reply = clicker.click(round, 0.0, 0.0).await?;
        let base = reply["misses"]
            .as_u64()
            .ok_or_else(|| Error(format!("warm-up click was not a miss: {reply}")))?;
        let (sink, mut stream) = clicker.split()?;
        let reply_errors = Rc::new(RefCell::new(Vec::new()));
        let errors = reply_errors.clone();
        let replies = actix_web::rt::spawn(async move {
            while let Some(frame) = stream.next().await {
                match frame {
                    Ok(ws::Frame::Text(bytes)) => {
                        if !bytes.windows(14).any(|w| w == b"\"click_result\"") {
                            errors
                                .borrow_mut()
                                .push(String::from_utf8_lossy(&bytes).into_owned());
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        errors.borrow_mut().push(e.to_string());
                        return;
                    }
                }
            }
        });
        Ok(ClickSource {
            player: player.id,
            round,
            base,
            sink,
            replies,
            reply_errors,
        })
    }

    pub(crate) async fn send(&mut self, id: u64) -> Result<()> {
        self.sink
            .send(ws::Message::Text(
                Clicker::click_json(id, self.round, 0.0, 0.0).into(),
            ))
            .await
            .map_err(|e| Error(format!("click send: {e}")))
    }
}

impl Drop for ClickSource {
    fn drop(&mut self) {
        self.replies.abort();
    }
}

/// What an observer does with each event and the moment its bytes arrived.
pub(crate) type OnEvent = Rc<dyn Fn(Instant, &Event)>;

/// Observers running in tasks of their own; dropping this closes them all.
pub(crate) struct Observers {
    tasks: Vec<JoinHandle<()>>,
    stats: Vec<Rc<Stats>>,
    pub(crate) failures: Rc<RefCell<Vec<String>>>,
}

impl Observers {
    fn requests(&self) -> u64 {
        self.stats.iter().map(|s| s.requests.get()).sum()
    }
    fn payload_bytes(&self) -> u64 {
        self.stats.iter().map(|s| s.payload_bytes.get()).sum()
    }
}

impl Drop for Observers {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Opens `n` clients of `kind` (spectators, resuming after `resume`), at most
/// `env.connect_concurrency` handshakes at a time, each handing its events to `on_event`.
pub(crate) async fn open_observers(
    env: &Env,
    pool: &Pool,
    kind: Kind,
    n: usize,
    resume: &Resume,
    on_event: OnEvent,
) -> Result<Observers> {
    let gate = Rc::new(Semaphore::new(env.connect_concurrency.max(1)));
    let failures: Rc<RefCell<Vec<String>>> = Rc::new(RefCell::new(Vec::new()));
    let opened: Rc<RefCell<Vec<Rc<Stats>>>> = Rc::new(RefCell::new(Vec::new()));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let target = pool.target(i).clone();
        let resume = resume.clone();
        let on_event = on_event.clone();
        let gate = gate.clone();
        let failures = failures.clone();
        let opened = opened.clone();
        let poll_interval = env.poll_interval;
        tasks.push(actix_web::rt::spawn(async move {
            let permit = gate.acquire().await;
            let mut ds =
                match Downstream::open(&target, kind, None, resume.clone(), poll_interval).await {
                    Ok(ds) => ds,
                    Err(e) => {
                        failures.borrow_mut().push(e.to_string());
                        return;
                    }
                };
            drop(permit);
            opened.borrow_mut().push(ds.stats.clone());
            let mut last_seq = resume.since;
            loop {
                match ds.next().await {
                    Ok((at, event)) => {
                        if let Some(last) = last_seq {
                            if event.kind != EventType::Snapshot && event.seq != last + 1 {
                                failures
                                    .borrow_mut()
                                    .push(format!("seq jump {last} → {}", event.seq));
                            }
                        }
                        last_seq = Some(event.seq);
                        on_event(at, &event);
                    }
                    Err(e) => {
                        failures.borrow_mut().push(e.to_string());
                        return;
                    }
                }
            }
        }));
    }
    // Wait until every client is connected (SSE/WebSocket) or has its client ready (polling).
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let done = opened.borrow().len() + failures.borrow().len();
        if done >= n {
            break;
        }
        if Instant::now() > deadline {
            return Err(Error(format!(
                "only {} of {n} {kind} clients opened within 120 s",
                opened.borrow().len()
            )));
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    if !failures.borrow().is_empty() {
        let f = failures.borrow();
        return Err(Error(format!(
            "{} of {n} {kind} clients failed to open; first: {}",
            f.len(),
            f[0]
        )));
    }
    let stats = opened.borrow().clone();
    Ok(Observers {
        tasks,
        stats,
        failures,
    })
}

fn proc_figures(
    pid: Option<u32>,
    before: Option<sys::ProcSample>,
    me_before: Option<sys::ProcSample>,
) -> ProcFigures {
    let after = pid.and_then(|p| sys::sample(p).ok());
    let me_after = sys::sample(std::process::id()).ok();
    ProcFigures {
        server_rss_mib: after.map(|a| a.rss_kib as f64 / 1024.0),
        server_cpu_percent: before.zip(after).map(|(b, a)| sys::cpu_percent(&b, &a)),
        client_cpu_percent: me_before
            .zip(me_after)
            .map(|(b, a)| sys::cpu_percent(&b, &a)),
        server_cpu_seconds: before.zip(after).map(|(b, a)| a.cpu_s - b.cpu_s),
    }
}

pub(crate) fn wall_us(at: Instant) -> u64 {
    let now_wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    now_wall.saturating_sub(Instant::now().saturating_duration_since(at).as_micros() as u64)
}

// ---- delivery latency at a constant rate ----------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct LatencyResult {
    pub transport: String,
    pub clients: usize,
    pub rate_per_s: f64,
    pub duration_s: f64,
    pub events_sent: u64,
    pub deliveries: u64,
    pub deliveries_expected: u64,
    /// Event's server `ts` (ms resolution, truncated) → bytes received. Same clock, same host.
    pub ts_to_received: Percentiles,
    /// The click's scheduled send time → bytes received: µs resolution, and free of coordinated
    /// omission because clicks are scheduled on a fixed clock whatever the server does.
    pub scheduled_to_received: Percentiles,
    /// Downstream HTTP requests per delivered event (polling: one per poll; streams: ~0).
    pub requests_per_event: f64,
    /// Client ← server bytes per delivered event: TCP payload, HTTP heads and framing included.
    pub bytes_in_per_event: f64,
    /// Client → server bytes per delivered event (polling requests; WebSocket pongs).
    pub bytes_out_per_event: f64,
    /// Mean bytes of event JSON per delivered event (polling: whole body per event).
    pub payload_per_event: f64,
    pub proc: ProcFigures,
    pub failures: Vec<String>,
}

struct LatencyShared {
    player: u64,
    base: u64,
    scheduled: RefCell<Vec<Option<Instant>>>,
    ts_hist: RefCell<Histogram<u64>>,
    sched_hist: RefCell<Histogram<u64>>,
    delivered: Cell<u64>,
}

pub async fn latency(
    env: &Env,
    kind: Kind,
    clients: usize,
    rate: f64,
    duration: Duration,
) -> Result<LatencyResult> {
    let server = Server::start(&env.spec).map_err(|e| Error(e.to_string()))?;
    let pool = Pool::new(env, &server.base);
    let mut clicks = ClickSource::open(&server.base, env.tls).await?;
    let (seq, epoch, _) = client::snapshot(pool.target(0)).await?;
    let total = (rate * duration.as_secs_f64()).round().max(1.0) as u64;
    let shared = Rc::new(LatencyShared {
        player: clicks.player,
        base: clicks.base,
        scheduled: RefCell::new(vec![None; total as usize]),
        ts_hist: RefCell::new(new_histogram()),
        sched_hist: RefCell::new(new_histogram()),
        delivered: Cell::new(0),
    });
    let s = shared.clone();
    let on_event: OnEvent = Rc::new(move |at, event| {
        if event.kind != EventType::ClickMissed || event.player != Some(s.player) {
            return;
        }
        let Some(k) = event.misses.and_then(|m| m.checked_sub(s.base + 1)) else {
            return;
        };
        if let Some(Some(due)) = s.scheduled.borrow().get(k as usize) {
            let _ = s
                .sched_hist
                .borrow_mut()
                .record(at.saturating_duration_since(*due).as_nanos().max(1) as u64);
        }
        let lat_us = wall_us(at).saturating_sub(event.ts * 1000);
        let _ = s.ts_hist.borrow_mut().record((lat_us * 1000).max(1));
        s.delivered.set(s.delivered.get() + 1);
    });
    let resume = Resume {
        since: Some(seq),
        epoch: Some(epoch),
    };
    let observers = open_observers(env, &pool, kind, clients, &resume, on_event).await?;
    // Let first polls and stream openings settle before counting.
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let traffic0 = pool.counters.read();
    let requests0 = observers.requests();
    let payload0 = observers.payload_bytes();
    let cpu0 = server.pid.and_then(|p| sys::sample(p).ok());
    let me0 = sys::sample(std::process::id()).ok();

    let start = Instant::now() + Duration::from_millis(10);
    let period = Duration::from_secs_f64(1.0 / rate);
    for k in 0..total {
        let due = start + period.mul_f64(k as f64);
        actix_web::rt::time::sleep_until(tokio::time::Instant::from_std(due)).await;
        if let Some(slot) = shared.scheduled.borrow_mut().get_mut(k as usize) {
            *slot = Some(due);
        }
        clicks.send(k).await?;
    }
    let expected = total * clients as u64;
    let drain = Instant::now() + Duration::from_secs(5) + env.poll_interval * 2;
    while shared.delivered.get() < expected && Instant::now() < drain {
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    let proc = proc_figures(server.pid, cpu0, me0);
    let traffic: Traffic = pool.counters.read() - traffic0;
    let delivered = shared.delivered.get();
    let per = |x: u64| x as f64 / delivered.max(1) as f64;
    let mut failures: Vec<String> = observers
        .failures
        .borrow()
        .iter()
        .take(5)
        .cloned()
        .collect();
    failures.extend(clicks.reply_errors.borrow().iter().take(5).cloned());
    let result = LatencyResult {
        transport: kind.to_string(),
        clients,
        rate_per_s: rate,
        duration_s: duration.as_secs_f64(),
        events_sent: total,
        deliveries: delivered,
        deliveries_expected: expected,
        ts_to_received: Percentiles::of(&shared.ts_hist.borrow()),
        scheduled_to_received: Percentiles::of(&shared.sched_hist.borrow()),
        requests_per_event: per(observers.requests() - requests0),
        bytes_in_per_event: per(traffic.bytes_in),
        bytes_out_per_event: per(traffic.bytes_out),
        payload_per_event: per(observers.payload_bytes() - payload0),
        proc,
        failures,
    };
    drop(observers);
    Ok(result)
}

// ---- memory per idle connection -------------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct IdleResult {
    pub transport: String,
    pub connections: usize,
    pub server_rss_before_mib: f64,
    pub server_rss_after_mib: f64,
    pub server_bytes_per_connection: f64,
    pub client_bytes_per_connection: f64,
    pub open_seconds: f64,
}

pub async fn idle(env: &Env, kind: Kind, n: usize) -> Result<IdleResult> {
    let server = Server::start(&env.spec).map_err(|e| Error(e.to_string()))?;
    let pid = server
        .pid
        .ok_or_else(|| Error("memory per connection needs the server's pid".into()))?;
    let pool = Pool::new(env, &server.base);
    let (seq, epoch, _) = client::snapshot(pool.target(0)).await?;
    let resume = Resume {
        since: Some(seq),
        epoch: Some(epoch),
    };
    // Warm the server's allocator and worker state with a few connections first.
    {
        let warm = open_observers(env, &pool, kind, 20, &resume, Rc::new(|_, _| {})).await?;
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
        drop(warm);
    }
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;
    let before = sys::sample(pid).map_err(|e| Error(e.to_string()))?;
    let me_before = sys::sample(std::process::id()).map_err(|e| Error(e.to_string()))?;
    let started = Instant::now();
    let observers = open_observers(env, &pool, kind, n, &resume, Rc::new(|_, _| {})).await?;
    // Long polls are sent from their tasks: wait until all are out, then let the server park
    // them and settle.
    let deadline = Instant::now() + Duration::from_secs(60);
    while (observers.requests() as usize) < n && Instant::now() < deadline {
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let open_seconds = started.elapsed().as_secs_f64();
    actix_web::rt::time::sleep(Duration::from_secs(2)).await;
    let failures = observers.failures.borrow().len();
    if failures > 0 {
        return Err(Error(format!(
            "{failures} {kind} connections failed while idle; first: {}",
            observers.failures.borrow()[0]
        )));
    }
    let after = sys::sample(pid).map_err(|e| Error(e.to_string()))?;
    let me_after = sys::sample(std::process::id()).map_err(|e| Error(e.to_string()))?;
    let per = |b: &sys::ProcSample, a: &sys::ProcSample| {
        (a.rss_kib as f64 - b.rss_kib as f64) * 1024.0 / n as f64
    };
    drop(observers);
    Ok(IdleResult {
        transport: kind.to_string(),
        connections: n,
        server_rss_before_mib: before.rss_kib as f64 / 1024.0,
        server_rss_after_mib: after.rss_kib as f64 / 1024.0,
        server_bytes_per_connection: per(&before, &after),
        client_bytes_per_connection: per(&me_before, &me_after),
        open_seconds,
    })
}

// ---- fan-out, websocket-shootout style ------------------------------------------------------

#[derive(Debug, Clone, Serialize)]
pub struct FanoutStep {
    pub transport: String,
    pub clients: usize,
    pub broadcasts: u64,
    pub in_flight: usize,
    pub timeouts: u64,
    /// Click sent → the last of the N clients has the event.
    pub broadcast: Percentiles,
    /// Mean broadcast time ÷ N.
    pub cost_per_recipient_us: f64,
    pub payload_bytes: f64,
    pub proc: ProcFigures,
    /// Events received by the N clients over the measured window (warm-up broadcasts
    /// included, as they are in the CPU window): N × (broadcasts + in flight) if none was lost.
    pub deliveries: u64,
    /// Server CPU (user + system, `/proc/<pid>/stat`) over the window ÷ `deliveries`, µs.
    pub server_cpu_us_per_delivery: Option<f64>,
}

struct Pending {
    start: Instant,
    remaining: usize,
    done: Option<oneshot::Sender<Duration>>,
}

pub async fn fanout_step(
    env: &Env,
    kind: Kind,
    n: usize,
    broadcasts: u64,
    in_flight: usize,
) -> Result<FanoutStep> {
    let server = Server::start(&env.spec).map_err(|e| Error(e.to_string()))?;
    let pool = Pool::new(env, &server.base);
    let clicks = ClickSource::open(&server.base, env.tls).await?;
    let (seq, epoch, _) = client::snapshot(pool.target(0)).await?;
    let player = clicks.player;
    let pending: Rc<RefCell<HashMap<u64, Pending>>> = Rc::new(RefCell::new(HashMap::new()));
    let received = Rc::new(Cell::new(0u64));
    let p = pending.clone();
    let r = received.clone();
    let first_click = clicks.base;
    let on_event: OnEvent = Rc::new(move |at, event| {
        if event.kind != EventType::ClickMissed || event.player != Some(player) {
            return;
        }
        let Some(m) = event.misses else { return };
        if m > first_click {
            r.set(r.get() + 1);
        }
        let mut map = p.borrow_mut();
        let finished = match map.get_mut(&m) {
            Some(entry) => {
                entry.remaining = entry.remaining.saturating_sub(1);
                if entry.remaining == 0 {
                    if let Some(done) = entry.done.take() {
                        let _ = done.send(at.saturating_duration_since(entry.start));
                    }
                    true
                } else {
                    false
                }
            }
            None => false,
        };
        if finished {
            map.remove(&m);
        }
    });
    let resume = Resume {
        since: Some(seq),
        epoch: Some(epoch),
    };
    let observers = open_observers(env, &pool, kind, n, &resume, on_event).await?;
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;

    // One task owns the clicking socket: requests arrive in order, so misses number them.
    let (req_tx, mut req_rx) = mpsc::unbounded_channel::<oneshot::Sender<Duration>>();
    let p = pending.clone();
    let mut clicks = clicks;
    let sender = actix_web::rt::spawn(async move {
        let mut next = clicks.base;
        let mut id = 0;
        while let Some(done) = req_rx.recv().await {
            next += 1;
            id += 1;
            p.borrow_mut().insert(
                next,
                Pending {
                    start: Instant::now(),
                    remaining: n,
                    done: Some(done),
                },
            );
            if clicks.send(id).await.is_err() {
                return;
            }
        }
    });

    let cpu0 = server.pid.and_then(|p| sys::sample(p).ok());
    let me0 = sys::sample(std::process::id()).ok();
    let warmup = in_flight as u64;
    let (hist, timeouts) = drive_broadcasts(&req_tx, in_flight, warmup, broadcasts).await;
    let proc = proc_figures(server.pid, cpu0, me0);
    sender.abort();
    let broadcast = Percentiles::of(&hist);
    let delivered_payload = observers.payload_bytes();
    let deliveries = (broadcasts + warmup) * n as u64;
    let received = received.get();
    let server_cpu_us_per_delivery = proc
        .server_cpu_seconds
        .map(|s| s * 1e6 / received.max(1) as f64);
    drop(observers);
    Ok(FanoutStep {
        transport: kind.to_string(),
        clients: n,
        broadcasts,
        in_flight,
        timeouts,
        cost_per_recipient_us: broadcast.mean_ms * 1000.0 / n as f64,
        broadcast,
        payload_bytes: delivered_payload as f64 / deliveries.max(1) as f64,
        proc,
        deliveries: received,
        server_cpu_us_per_delivery,
    })
}

/// Asks the clicking task (`req_tx`) for `broadcasts` broadcasts, `in_flight` at a time, after
/// `warmup` unrecorded ones; each waits up to 30 s for its answer (the moment its last
/// recipient had it). The recorded times, and how many timed out. Shared by the fan-out and the
/// cluster scenario.
pub(crate) async fn drive_broadcasts(
    req_tx: &mpsc::UnboundedSender<oneshot::Sender<Duration>>,
    in_flight: usize,
    warmup: u64,
    broadcasts: u64,
) -> (Histogram<u64>, u64) {
    let hist = Rc::new(RefCell::new(new_histogram()));
    let issued = Rc::new(Cell::new(0u64));
    let timeouts = Rc::new(Cell::new(0u64));
    let slots = (0..in_flight.max(1)).map(|_| {
        let req_tx = req_tx.clone();
        let hist = hist.clone();
        let issued = issued.clone();
        let timeouts = timeouts.clone();
        async move {
            loop {
                let k = issued.get();
                if k >= broadcasts + warmup {
                    return;
                }
                issued.set(k + 1);
                let (tx, rx) = oneshot::channel();
                if req_tx.send(tx).is_err() {
                    return;
                }
                match actix_web::rt::time::timeout(Duration::from_secs(30), rx).await {
                    Ok(Ok(d)) if k >= warmup => {
                        let _ = hist.borrow_mut().record(d.as_nanos().max(1) as u64);
                    }
                    Ok(Ok(_)) => {}
                    _ => timeouts.set(timeouts.get() + 1),
                }
            }
        }
    });
    futures_util::future::join_all(slots).await;
    // Every slot has ended and dropped its handle: the histogram is ours alone.
    let hist = Rc::try_unwrap(hist).map_or_else(|h| h.borrow().clone(), RefCell::into_inner);
    (hist, timeouts.get())
}
