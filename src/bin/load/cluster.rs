//! Fan-out across a cluster (issue 16): time-to-last over several nodes, from several load
//! processes, and what the Redis hop adds.
//!
//! One process may hold about 20,000 descriptors (the machine's hard limit), so 30,000 clients
//! need several nodes *and* several load processes. The tool runs itself as **workers**
//! (`--worker`, hidden): each opens its share of spectators, spread round robin over the nodes,
//! and prints one line per broadcast when *its* last client has it (`last <misses> <wall µs>`).
//! The **leader** clicks (one player at the corner, every click a `click_missed` broadcast to
//! all, numbered by its `misses`), and a broadcast's time-to-last is the latest of the workers'
//! last arrivals minus the moment the click was sent — wall clock, one machine, one clock.
//!
//! The same run measures, fresh processes each time and the same clients:
//!
//! | setup | what it shows |
//! |---|---|
//! | one process, no Redis | the single node as always |
//! | one node + Redis | the Redis hop alone: append, `XREAD`, the same fan-out |
//! | N nodes + Redis | the fan-out shared by N processes (the click forwarded by a follower) |
//! | N nodes + Redis, more clients | what no single process could hold |
//!
//! `--nodes URL,URL,…` measures a cluster that is already running instead (started with the
//! generous limits `server.rs` lists, e.g. by `make cluster` with `CLUSTER_ARGS`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::client::{self, Error, EventType, Kind, Result, Resume};
use super::scenario::{
    drive_broadcasts, open_observers, wall_us, ClickSource, Env, OnEvent, Percentiles, Pool,
};
use super::server::{Server, Spec};
use super::sys;

/// Which servers a step runs against.
#[derive(Debug, Clone)]
pub enum Setup {
    /// One clickgame process, no Redis: the single node as it has always been.
    Single,
    /// `n` nodes sharing one game through a Redis spawned for the step.
    Cluster(usize),
    /// Nodes already running (`--nodes`).
    External(Vec<String>),
}

impl Setup {
    pub fn label(&self) -> String {
        match self {
            Setup::Single => "1 process, no Redis".into(),
            Setup::Cluster(1) => "1 node + Redis".into(),
            Setup::Cluster(n) => format!("{n} nodes + Redis"),
            Setup::External(bases) => format!("{} running nodes", bases.len()),
        }
    }
}

/// One measured step.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterStep {
    pub setup: String,
    pub transport: String,
    pub clients: usize,
    pub nodes: usize,
    pub load_processes: usize,
    /// The node the clicks went to (in a cluster of several: a follower, so each click is
    /// forwarded to the authority through Redis).
    pub clicks_via: String,
    pub broadcasts: u64,
    pub in_flight: usize,
    pub timeouts: u64,
    /// Click sent → the last of all clients (in all load processes) has the event.
    pub time_to_last: Percentiles,
    /// CPU seconds of all server processes (nodes and Redis) over the measured broadcasts.
    pub server_cpu_seconds: Option<f64>,
    /// Of which Redis.
    pub redis_cpu_seconds: Option<f64>,
}

/// A throw-away `redis-server` on a free port, killed when dropped.
struct Redis {
    child: Child,
    port: u16,
    _dir: PathBuf,
}

impl Redis {
    fn start() -> io::Result<Redis> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = std::env::temp_dir().join(format!("clickgame-load-redis-{port}"));
        std::fs::create_dir_all(&dir)?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("redis-server: {e}")))?;
        let redis = Redis {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(io::Error::other("redis-server did not start"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(redis)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

/// The servers of one step.
struct Servers {
    bases: Vec<String>,
    pids: Vec<u32>,
    redis_pid: Option<u32>,
    _nodes: Vec<Server>,
    _redis: Option<Redis>,
}

async fn get_json(target: &client::Target, path: &str) -> Result<serde_json::Value> {
    let mut res = target
        .client
        .get(format!("{}{path}", target.base))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| Error(format!("{path}: {e}")))?;
    res.json()
        .await
        .map_err(|e| Error(format!("{path} body: {e}")))
}

/// Starts the servers of `setup` and waits until every node has read the game.
async fn start(setup: &Setup, bin: &Path, workers: usize) -> Result<Servers> {
    let probe = |base: &str| client::Target {
        client: super::net::client(None, Default::default(), false),
        base: base.to_string(),
    };
    match setup {
        Setup::External(bases) => Ok(Servers {
            bases: bases.clone(),
            pids: Vec::new(),
            redis_pid: None,
            _nodes: Vec::new(),
            _redis: None,
        }),
        Setup::Single => {
            let server = Server::start(&Spec::Spawn {
                bin: bin.to_path_buf(),
                tls: false,
                workers,
                extra: Vec::new(),
            })
            .map_err(|e| Error(e.to_string()))?;
            Ok(Servers {
                bases: vec![server.base.clone()],
                pids: server.pid.into_iter().collect(),
                redis_pid: None,
                _nodes: vec![server],
                _redis: None,
            })
        }
        Setup::Cluster(n) => {
            let redis = Redis::start().map_err(|e| Error(e.to_string()))?;
            let url = format!("redis://127.0.0.1:{}", redis.port);
            let mut nodes: Vec<Server> = Vec::new();
            for i in 0..*n {
                let id = ((b'a' + i as u8) as char).to_string();
                let node = Server::start(&Spec::Spawn {
                    bin: bin.to_path_buf(),
                    tls: false,
                    workers,
                    extra: vec!["--redis-url".into(), url.clone(), "--node-id".into(), id],
                })
                .map_err(|e| Error(e.to_string()))?;
                // The first node takes the lease before the others start: clicks then go to a
                // follower, and are forwarded.
                if i == 0 {
                    let target = probe(&node.base);
                    let deadline = Instant::now() + Duration::from_secs(10);
                    while get_json(&target, "/api/stats").await?["node"]["authority"] != true {
                        if Instant::now() > deadline {
                            return Err(Error("node a never took the lease".into()));
                        }
                        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                nodes.push(node);
            }
            // Every node has loaded the game when their snapshots agree.
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let mut epochs = Vec::new();
                for node in &nodes {
                    epochs.push(
                        get_json(&probe(&node.base), "/api/snapshot").await?["epoch"].clone(),
                    );
                }
                let loaded = epochs.iter().all(|e| *e == epochs[0]);
                let mut agree = true;
                for node in &nodes {
                    agree &= get_json(&probe(&node.base), "/api/stats").await?["node"]
                        ["authority_node"]
                        == "a";
                }
                if loaded && agree {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(Error(format!("the nodes never agreed: {epochs:?}")));
                }
                actix_web::rt::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(Servers {
                bases: nodes.iter().map(|n| n.base.clone()).collect(),
                pids: nodes.iter().filter_map(|n| n.pid).collect(),
                redis_pid: Some(redis.child.id()),
                _nodes: nodes,
                _redis: Some(redis),
            })
        }
    }
}

/// What a worker is told on its command line.
#[derive(Debug, Clone)]
pub struct WorkerSpec {
    pub kind: Kind,
    pub clients: usize,
    pub bases: Vec<String>,
    pub since: u64,
    pub epoch: String,
    pub player: u64,
    pub first_miss: u64,
    pub sources: usize,
    pub source_offset: usize,
    pub connect_concurrency: usize,
}

impl WorkerSpec {
    fn args(&self) -> Vec<String> {
        vec![
            "--worker".into(),
            format!(
                "{},{},{},{},{},{},{},{},{},{}",
                self.kind,
                self.clients,
                self.since,
                self.epoch,
                self.player,
                self.first_miss,
                self.sources,
                self.source_offset,
                self.connect_concurrency,
                self.bases.join("+")
            ),
        ]
    }

    /// Parses what [`WorkerSpec::args`] wrote.
    pub fn parse(text: &str) -> Result<WorkerSpec> {
        let bad = || Error(format!("bad --worker spec {text:?}"));
        let parts: Vec<&str> = text.split(',').collect();
        let [kind, clients, since, epoch, player, first, sources, offset, concurrency, bases] =
            parts[..]
        else {
            return Err(bad());
        };
        let n = |s: &str| s.parse::<u64>().map_err(|_| bad());
        Ok(WorkerSpec {
            kind: Kind::parse(kind).ok_or_else(bad)?,
            clients: n(clients)? as usize,
            bases: bases.split('+').map(str::to_string).collect(),
            since: n(since)?,
            epoch: epoch.to_string(),
            player: n(player)?,
            first_miss: n(first)?,
            sources: n(sources)? as usize,
            source_offset: n(offset)? as usize,
            connect_concurrency: n(concurrency)? as usize,
        })
    }
}

/// The worker's side: open the spectators, say `ready`, then `last <misses> <µs>` for every
/// broadcast once all of them have it. Runs until its stdin closes (the leader is done).
pub async fn worker(spec: WorkerSpec) -> Result<()> {
    let sources: Vec<_> = sys::source_addresses(spec.sources + spec.source_offset)
        .into_iter()
        .skip(spec.source_offset)
        .collect();
    let env = Env {
        spec: Spec::External {
            base: spec.bases[0].clone(),
            pid: None,
        },
        sources,
        tls: false,
        poll_interval: Duration::from_millis(1000),
        connect_concurrency: spec.connect_concurrency,
    };
    let pool = Pool::spread(&env, &spec.bases);
    let remaining: Rc<RefCell<HashMap<u64, usize>>> = Rc::new(RefCell::new(HashMap::new()));
    let (player, first, n) = (spec.player, spec.first_miss, spec.clients);
    let counts = remaining.clone();
    let on_event: OnEvent = Rc::new(move |at, event| {
        if event.kind != EventType::ClickMissed || event.player != Some(player) {
            return;
        }
        let Some(m) = event.misses.filter(|m| *m > first) else {
            return;
        };
        let mut map = counts.borrow_mut();
        let left = map.entry(m).or_insert(n);
        *left -= 1;
        if *left == 0 {
            map.remove(&m);
            let mut out = io::stdout().lock();
            let _ = writeln!(out, "last {m} {}", wall_us(at));
            let _ = out.flush();
        }
    });
    let resume = Resume {
        since: Some(spec.since),
        epoch: Some(spec.epoch.clone()),
    };
    let observers = open_observers(&env, &pool, spec.kind, spec.clients, &resume, on_event).await?;
    println!("ready {}", spec.clients);
    let _ = io::stdout().flush();
    // Until the leader closes our stdin.
    let (tx, rx) = oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = String::new();
        while io::stdin()
            .read_line(&mut sink)
            .map(|n| n > 0)
            .unwrap_or(false)
        {
            sink.clear();
        }
        let _ = tx.send(());
    });
    let _ = rx.await;
    let failures = observers.failures.borrow().len();
    if failures > 0 {
        eprintln!(
            "worker: {failures} clients failed; first: {}",
            observers.failures.borrow()[0]
        );
    }
    drop(observers);
    Ok(())
}

/// A worker process, seen from the leader (its lines arrive through `spawn_worker`'s thread).
struct Worker {
    child: Child,
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing stdin ends it; kill it if it does not go.
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A line from a worker: a broadcast all its clients have (`misses`, wall µs of the last), or
/// that it is ready or gone.
enum Said {
    Ready,
    Last { misses: u64, us: u64 },
    Gone(usize, String),
}

fn spawn_worker(
    index: usize,
    spec: &WorkerSpec,
    said: mpsc::UnboundedSender<Said>,
) -> Result<Worker> {
    let exe = std::env::current_exe().map_err(|e| Error(e.to_string()))?;
    let mut child = Command::new(exe)
        .args(spec.args())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| Error(format!("worker: {e}")))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error("worker without stdout".into()))?;
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let mut words = line.split_whitespace();
            let message = match (words.next(), words.next(), words.next()) {
                (Some("ready"), _, _) => Said::Ready,
                (Some("last"), Some(m), Some(us)) => match (m.parse(), us.parse()) {
                    (Ok(misses), Ok(us)) => Said::Last { misses, us },
                    _ => continue,
                },
                _ => continue,
            };
            if said.send(message).is_err() {
                return;
            }
        }
        let _ = said.send(Said::Gone(index, "its output ended".into()));
    });
    Ok(Worker { child })
}

struct Pending {
    sent_us: u64,
    latest_us: u64,
    workers_left: usize,
    done: Option<oneshot::Sender<Duration>>,
}

/// One step: fresh servers of `setup`, `clients` spectators of `kind` in `processes` worker
/// processes, `broadcasts` measured (`in_flight` at a time, after as many to warm up).
#[allow(clippy::too_many_arguments)]
pub async fn step(
    env: &Env,
    setup: &Setup,
    bin: &Path,
    workers: usize,
    kind: Kind,
    clients: usize,
    processes: usize,
    broadcasts: u64,
    in_flight: usize,
) -> Result<ClusterStep> {
    let servers = start(setup, bin, workers).await?;
    let nodes = servers.bases.len();
    // Clicks through the last node: in a cluster of several, a follower.
    let clicks_via = servers.bases[nodes - 1].clone();
    let clicks = ClickSource::open(&clicks_via, false).await?;
    let probe = client::Target {
        client: super::net::client(None, Default::default(), false),
        base: clicks_via.clone(),
    };
    // The clicker's warm-up miss must be in every node's log before the spectators start after
    // it: read the resume point from the node that took the click, and let the others catch up.
    let (since, epoch, _) = client::snapshot(&probe).await?;
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let processes = processes.max(1);
    let per_source = env.sources.len() / processes;
    let (said_tx, mut said) = mpsc::unbounded_channel();
    let mut procs = Vec::new();
    for i in 0..processes {
        let share = clients / processes + usize::from(i < clients % processes);
        let spec = WorkerSpec {
            kind,
            clients: share,
            bases: servers.bases.clone(),
            since,
            epoch: epoch.clone(),
            player: clicks.player,
            first_miss: clicks.base,
            sources: per_source.max(1),
            source_offset: i * per_source,
            connect_concurrency: env.connect_concurrency,
        };
        procs.push(spawn_worker(i, &spec, said_tx.clone())?);
    }
    drop(said_tx);
    let mut ready = 0;
    let deadline = Instant::now() + Duration::from_secs(300);
    while ready < processes {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, said.recv()).await {
            Ok(Some(Said::Ready)) => ready += 1,
            Ok(Some(Said::Gone(i, why))) => {
                return Err(Error(format!(
                    "load process {i} ended before it was ready: {why}"
                )))
            }
            Ok(Some(Said::Last { .. })) => {}
            Ok(None) | Err(_) => return Err(Error("the load processes never got ready".into())),
        }
    }
    actix_web::rt::time::sleep(Duration::from_millis(500)).await;

    let pending: Rc<RefCell<HashMap<u64, Pending>>> = Rc::new(RefCell::new(HashMap::new()));
    // Workers' reports → broadcasts done.
    let reports = {
        let pending = pending.clone();
        actix_web::rt::spawn(async move {
            while let Some(message) = said.recv().await {
                let Said::Last { misses, us, .. } = message else {
                    continue;
                };
                let mut map = pending.borrow_mut();
                let Some(p) = map.get_mut(&misses) else {
                    continue;
                };
                p.latest_us = p.latest_us.max(us);
                p.workers_left -= 1;
                if p.workers_left == 0 {
                    if let Some(done) = p.done.take() {
                        let _ =
                            done.send(Duration::from_micros(p.latest_us.saturating_sub(p.sent_us)));
                    }
                    map.remove(&misses);
                }
            }
        })
    };
    // One task owns the clicking socket, so that clicks (and their misses) stay in order.
    let (req_tx, mut req_rx) = mpsc::unbounded_channel::<oneshot::Sender<Duration>>();
    let sender = {
        let pending = pending.clone();
        let mut clicks = clicks;
        actix_web::rt::spawn(async move {
            let mut next = clicks.base;
            let mut id = 0;
            while let Some(done) = req_rx.recv().await {
                next += 1;
                id += 1;
                pending.borrow_mut().insert(
                    next,
                    Pending {
                        sent_us: wall_us(Instant::now()),
                        latest_us: 0,
                        workers_left: processes,
                        done: Some(done),
                    },
                );
                if clicks.send(id).await.is_err() {
                    return;
                }
            }
        })
    };
    let cpu = |pids: &[u32]| -> Option<f64> {
        pids.iter()
            .map(|p| sys::sample(*p).ok().map(|s| s.cpu_s))
            .sum()
    };
    let mut all_pids = servers.pids.clone();
    all_pids.extend(servers.redis_pid);
    let cpu0 = cpu(&all_pids);
    let redis0 = servers.redis_pid.and_then(|p| sys::sample(p).ok());
    let (hist, timeouts) = drive_broadcasts(&req_tx, in_flight, in_flight as u64, broadcasts).await;
    let server_cpu_seconds = cpu0.zip(cpu(&all_pids)).map(|(a, b)| b - a);
    let redis_cpu_seconds = redis0
        .zip(servers.redis_pid.and_then(|p| sys::sample(p).ok()))
        .map(|(a, b)| b.cpu_s - a.cpu_s);
    sender.abort();
    reports.abort();
    drop(procs);
    let time_to_last = Percentiles::of(&hist);
    let clicks_via = if nodes > 1 {
        format!("node {} (a follower)", (b'a' + (nodes - 1) as u8) as char)
    } else {
        "the only node".into()
    };
    Ok(ClusterStep {
        setup: setup.label(),
        transport: kind.to_string(),
        clients,
        nodes,
        load_processes: processes,
        clicks_via,
        broadcasts,
        in_flight,
        timeouts,
        time_to_last,
        server_cpu_seconds,
        redis_cpu_seconds,
    })
}

/// The table of a cluster run.
pub fn markdown(steps: &[ClusterStep]) -> String {
    let mut md = String::from(
        "\n### Fan-out across nodes (issue 16)\n\n\
         Time to last: click sent → the last of all clients (all load processes) has the event.\n\n\
         | setup | transport | clients | load processes | clicks via | p50 ms | p95 ms | p99 ms | max ms | timeouts | server CPU s | of which Redis |\n\
         |---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let opt = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.2}"));
    for s in steps {
        let t = &s.time_to_last;
        md += &format!(
            "| {} | {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} |\n",
            s.setup,
            s.transport,
            s.clients,
            s.load_processes,
            s.clicks_via,
            t.p50_ms,
            t.p95_ms,
            t.p99_ms,
            t.max_ms,
            s.timeouts,
            opt(s.server_cpu_seconds),
            opt(s.redis_cpu_seconds),
        );
    }
    md
}
