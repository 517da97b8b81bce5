//! `clickgame-load`: opens many clients on one transport (or all four) against a clickgame
//! server and measures delivery latency, fan-out, memory per idle connection, and requests and
//! bytes per delivered event. See `docs/results.md` for what it measured and how to read it.
//!
//! It is a black-box client of `docs/protocol.md`, so it lives beside the server rather than in
//! the library: it depends on nothing inside the server, and the server does not carry it.
//! By default it spawns `target/release/clickgame` itself — a fresh process per measurement, so
//! every memory figure starts from the same baseline — with the per-IP connection caps and the
//! click rate limit off. `--url` (and `--pid` for the /proc figures) measures a running server
//! instead; that server needs `--max-conns-per-ip 0 --max-sockets-per-ip 0 --max-conns 0`, a
//! high `--click-rate`, `--join-rate 0 --join-rate-total 0` and a `--max-players` above the
//! number of players the run joins.

mod load;
#[cfg(test)]
#[path = "load/peer_tests.rs"]
mod peer_tests;

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use serde::Serialize;

use load::client::Kind;
use load::cluster::{ClusterStep, Setup};
use load::floor::PingPong;
use load::peer;
use load::scenario::{self, Env, FanoutStep, IdleResult, LatencyResult, Percentiles};
use load::server::Spec;
use load::sys;

#[derive(Debug, Parser)]
#[command(
    name = "clickgame-load",
    about = "Load and latency measurements for the clickgame server"
)]
struct Args {
    /// Transports: all, or a comma list of ajax, longpoll, sse, websocket.
    #[arg(long, default_value = "all")]
    transports: String,

    /// Measurements: all, or a comma list of latency, idle, fanout, cluster (cluster is not in
    /// all: it spawns Redis, several nodes and several load processes).
    #[arg(long, default_value = "all")]
    scenarios: String,

    /// A running server (http://127.0.0.1:PORT); default: spawn --server-bin.
    #[arg(long)]
    url: Option<String>,

    /// Pid of the --url server, for its RSS and CPU.
    #[arg(long)]
    pid: Option<u32>,

    /// The server binary to spawn (default: `clickgame` next to this binary).
    #[arg(long)]
    server_bin: Option<PathBuf>,

    /// Spawn the server with TLS and talk HTTPS/WSS to it.
    #[arg(long)]
    tls: bool,

    /// Server worker threads when spawning (0 = one per core).
    #[arg(long, default_value_t = 0)]
    workers: usize,

    /// Latency: clients per transport.
    #[arg(long, default_value_t = 100)]
    clients: usize,

    /// Latency: events per second, on a fixed clock.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,

    /// Latency: seconds of clicking per transport.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,

    /// AJAX polling interval of the clients, ms (the server's default is 1000).
    #[arg(long, default_value_t = 1000)]
    poll_interval_ms: u64,

    /// Idle: connections held per transport (WebSocket, SSE, long poll).
    #[arg(long, default_value_t = 10_000)]
    idle: usize,

    /// Fan-out: client counts to step through, until p95 passes --p95-limit-ms.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1000,2000,5000,10000,15000"
    )]
    fanout_steps: Vec<usize>,

    /// Fan-out: transports (comma list); default websocket,sse.
    #[arg(long, default_value = "websocket,sse")]
    fanout_transports: String,

    /// Fan-out: broadcasts measured per step.
    #[arg(long, default_value_t = 40)]
    broadcasts: u64,

    /// Fan-out: broadcasts in flight at once.
    #[arg(long, default_value_t = 4)]
    in_flight: usize,

    /// Fan-out: stop stepping once p95 broadcast time passes this.
    #[arg(long, default_value_t = 500.0)]
    p95_limit_ms: f64,

    /// Loopback source addresses (127.0.0.2 upwards) the clients spread over.
    #[arg(long, default_value_t = 16)]
    sources: usize,

    /// Handshakes in progress at once while opening clients.
    #[arg(long, default_value_t = 200)]
    connect_concurrency: usize,

    /// Where load.json and load.md go (with --peer: compare.json and compare.md).
    #[arg(long, default_value = "target/load")]
    out_dir: PathBuf,

    /// Compare with a peer server (issue 15), measured in the same run: `node` is
    /// benches/peers/node-ws (Node.js and the ws library; `make peer-deps` installs it). Runs
    /// the fan-out and idle measurements over --fanout-transports against clickgame and the
    /// peer, one after the other, and prints one table with the ratio peer ÷ clickgame.
    #[arg(long, value_enum)]
    peer: Option<PeerKind>,

    /// With --peer: spectators in the fan-out (and connections held idle, unless --peer-idle).
    #[arg(long, default_value_t = 9_000)]
    peer_clients: usize,

    /// With --peer: idle connections per server and transport (default: --peer-clients).
    #[arg(long)]
    peer_idle: Option<usize>,

    /// With --peer: how many times to run each pair (the order of the servers alternating);
    /// the table gives medians.
    #[arg(long, default_value_t = 1)]
    repeat: usize,

    /// With --peer node: the Node.js binary.
    #[arg(long, default_value = "node")]
    node: PathBuf,

    /// With --peer node: the peer's script (default: benches/peers/node-ws/server.js of this
    /// checkout).
    #[arg(long)]
    peer_script: Option<PathBuf>,

    /// The `cluster` scenario (issue 16) against these running nodes of one cluster instead of
    /// spawning Redis and nodes: clients are spread over them round robin. They need the
    /// generous limits a spawned server gets (see src/bin/load/server.rs).
    #[arg(long, value_delimiter = ',', value_name = "URL")]
    nodes: Vec<String>,

    /// Cluster: nodes to spawn (with a Redis of their own, fresh for every step).
    #[arg(long, default_value_t = 3)]
    cluster_nodes: usize,

    /// Cluster: spectator counts. The smallest is measured on one process without Redis, one
    /// node with Redis and all nodes; the larger ones on all nodes only.
    #[arg(long, value_delimiter = ',', default_value = "10000,30000")]
    cluster_clients: Vec<usize>,

    /// Cluster: spectators one load process holds at most (each is one descriptor, and one
    /// process may open ~20,000); the tool starts as many load processes as that needs.
    #[arg(long, default_value_t = 15_000)]
    clients_per_process: usize,

    /// Internal: run as one load process of the cluster scenario (spawned by the tool itself).
    #[arg(long, hide = true)]
    worker: Option<String>,
}

/// The peer servers `--peer` can compare with.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum PeerKind {
    /// benches/peers/node-ws: Node.js, one process, the `ws` library.
    Node,
}

fn kinds(list: &str) -> Result<Vec<Kind>, String> {
    if list == "all" {
        return Ok(Kind::ALL.to_vec());
    }
    list.split(',')
        .map(|s| Kind::parse(s.trim()).ok_or_else(|| format!("unknown transport {s:?}")))
        .collect()
}

#[derive(Debug, Serialize)]
struct Floor {
    samples: u64,
    p50_us: f64,
    p99_us: f64,
    max_us: f64,
}

#[derive(Debug, Serialize)]
struct FanoutSummary {
    transport: String,
    largest_under_limit: Option<usize>,
    stopped_because: String,
    steps: Vec<FanoutStep>,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: Machine,
    command: String,
    notes: Vec<String>,
    floor: Option<Floor>,
    latency: Vec<LatencyResult>,
    idle: Vec<IdleResult>,
    fanout: Vec<FanoutSummary>,
    cluster: Vec<ClusterStep>,
    errors: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Machine {
    nproc: usize,
    cpu: String,
    kernel: String,
    fd_soft_limit: u64,
    fd_hard_limit: u64,
}

fn floor() -> std::io::Result<Floor> {
    let mut pp = PingPong::start()?;
    let h = pp.measure(1_000, 20_000)?;
    let us = |ns: u64| ns as f64 / 1000.0;
    Ok(Floor {
        samples: h.len(),
        p50_us: us(h.value_at_quantile(0.5)),
        p99_us: us(h.value_at_quantile(0.99)),
        max_us: us(h.max()),
    })
}

fn pct(p: &Percentiles) -> String {
    format!(
        "{:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {}",
        p.p50_ms, p.p90_ms, p.p99_ms, p.p999_ms, p.max_ms, p.count
    )
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("–".into(), |v| format!("{v:.digits$}"))
}

fn markdown(r: &Report) -> String {
    let mut md = String::new();
    let m = &r.machine;
    md += &format!(
        "Machine: {} cores, {}, Linux {}; fd limit {} (hard {}).\n\nCommand: `{}`\n\n",
        m.nproc, m.cpu, m.kernel, m.fd_soft_limit, m.fd_hard_limit, r.command
    );
    for n in &r.notes {
        md += &format!("- {n}\n");
    }
    if let Some(f) = &r.floor {
        md += &format!(
            "\nTCP floor (loopback ping-pong, 64 B, TCP_NODELAY, {} samples): p50 {:.1} µs, \
             p99 {:.1} µs, max {:.1} µs.\n",
            f.samples, f.p50_us, f.p99_us, f.max_us
        );
    }
    if !r.latency.is_empty() {
        md += "\n### Delivery latency at a constant rate\n\n";
        md += "Event `ts` → received (ms; `ts` has 1 ms resolution):\n\n";
        md += "| transport | clients | events/s | p50 | p90 | p99 | p99.9 | max | count | delivered/expected |\n";
        md += "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
        for l in &r.latency {
            md += &format!(
                "| {} | {} | {} | {} | {}/{} |\n",
                l.transport,
                l.clients,
                l.rate_per_s,
                pct(&l.ts_to_received),
                l.deliveries,
                l.deliveries_expected
            );
        }
        md += "\nClick due (fixed schedule) → received (ms; includes the click's way up):\n\n";
        md += "| transport | p50 | p90 | p99 | p99.9 | max | count | × floor p50 |\n";
        md += "|---|---:|---:|---:|---:|---:|---:|---:|\n";
        for l in &r.latency {
            let ratio = r
                .floor
                .as_ref()
                .map(|f| l.scheduled_to_received.p50_ms * 1000.0 / f.p50_us);
            md += &format!(
                "| {} | {} | {} |\n",
                l.transport,
                pct(&l.scheduled_to_received),
                opt(ratio, 1)
            );
        }
        md += "\nRequests and bytes per delivered event (client-side socket counters: TCP \
               payload, HTTP heads and framing included, TCP/IP headers not), with the server's \
               CPU and memory over the run:\n\n";
        md += "| transport | requests/event | bytes in/event | bytes out/event | event JSON bytes | overhead in | server CPU % | server RSS MiB | client CPU % |\n";
        md += "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
        for l in &r.latency {
            md += &format!(
                "| {} | {:.3} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} |\n",
                l.transport,
                l.requests_per_event,
                l.bytes_in_per_event,
                l.bytes_out_per_event,
                l.payload_per_event,
                l.bytes_in_per_event - l.payload_per_event,
                opt(l.proc.server_cpu_percent, 0),
                opt(l.proc.server_rss_mib, 1),
                opt(l.proc.client_cpu_percent, 0),
            );
        }
    }
    if !r.idle.is_empty() {
        md += "\n### Memory per idle connection\n\n";
        md += "| transport | connections | server RSS before MiB | after MiB | server bytes/conn | client bytes/conn | open time s |\n";
        md += "|---|---:|---:|---:|---:|---:|---:|\n";
        for i in &r.idle {
            md += &format!(
                "| {} | {} | {:.1} | {:.1} | {:.0} ({:.1} KiB) | {:.0} | {:.1} |\n",
                i.transport,
                i.connections,
                i.server_rss_before_mib,
                i.server_rss_after_mib,
                i.server_bytes_per_connection,
                i.server_bytes_per_connection / 1024.0,
                i.client_bytes_per_connection,
                i.open_seconds
            );
        }
    }
    for f in &r.fanout {
        md += &format!(
            "\n### Fan-out: {} (largest N with p95 under the limit: {}; stopped: {})\n\n",
            f.transport,
            f.largest_under_limit
                .map_or("none".into(), |n| n.to_string()),
            f.stopped_because
        );
        md += "| clients | broadcasts | in flight | p50 ms | p95 ms | p99 ms | max ms | mean ms | µs per recipient | timeouts | payload B | server CPU % | client CPU % | server RSS MiB |\n";
        md += "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
        for s in &f.steps {
            md += &format!(
                "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {} | {:.0} | {} | {} | {} |\n",
                s.clients,
                s.broadcasts,
                s.in_flight,
                s.broadcast.p50_ms,
                s.broadcast.p95_ms,
                s.broadcast.p99_ms,
                s.broadcast.max_ms,
                s.broadcast.mean_ms,
                s.cost_per_recipient_us,
                s.timeouts,
                s.payload_bytes,
                opt(s.proc.server_cpu_percent, 0),
                opt(s.proc.client_cpu_percent, 0),
                opt(s.proc.server_rss_mib, 1),
            );
        }
    }
    if !r.cluster.is_empty() {
        md += &load::cluster::markdown(&r.cluster);
    }
    if !r.errors.is_empty() {
        md += "\n### Not measured\n\n";
        for e in &r.errors {
            md += &format!("- {e}\n");
        }
    }
    md
}

fn main() {
    let args = Args::parse();
    if let Some(spec) = &args.worker {
        let code = match run_worker(spec) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("clickgame-load worker: {e}");
                1
            }
        };
        std::process::exit(code);
    }
    let code = match run(&args) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("clickgame-load: {e}");
            1
        }
    };
    std::process::exit(code);
}

fn run(args: &Args) -> Result<(), String> {
    let transports = kinds(&args.transports)?;
    let fanout_kinds = kinds(&args.fanout_transports)?;
    let scenarios: Vec<&str> = if args.scenarios == "all" {
        vec!["latency", "idle", "fanout"]
    } else {
        args.scenarios.split(',').map(str::trim).collect()
    };
    let (fd_soft, fd_hard) = sys::raise_fd_limit().map_err(|e| format!("fd limit: {e}"))?;
    let (nproc, cpu, kernel) = sys::machine();
    let sources = sys::source_addresses(args.sources);
    let mut notes = vec![
        format!(
            "File descriptors: soft limit raised to the hard limit, {fd_soft} (hard {fd_hard}); \
             the spawned server inherits it. Each connection costs one descriptor on each side."
        ),
        format!(
            "Clients bind to {} loopback source addresses ({}…{}) before connecting, so \
             ephemeral ports never run out; the server listens on 127.0.0.1.",
            sources.len(),
            sources.first().map_or(String::new(), |s| s.to_string()),
            sources.last().map_or(String::new(), |s| s.to_string()),
        ),
        "Every client socket sets TCP_NODELAY. Events come from one player clicking outside the \
         target over a WebSocket of its own: each click is one `click_missed` broadcast to all."
            .to_string(),
    ];
    let spec = match &args.url {
        Some(url) => {
            notes.push(format!("Server: running at {url} (pid {:?}).", args.pid));
            Spec::External {
                base: url.trim_end_matches('/').to_string(),
                pid: args.pid,
            }
        }
        None => {
            let bin = match &args.server_bin {
                Some(b) => b.clone(),
                None => std::env::current_exe()
                    .map_err(|e| e.to_string())?
                    .with_file_name("clickgame"),
            };
            notes.push(format!(
                "Server: {} spawned fresh for every measurement, --workers {} (0 = one per \
                 core), --max-conns-per-ip 0 --max-sockets-per-ip 0 --max-conns 0, no click \
                 rate limit, no join limits, --max-players 1000000, long polls held 10 min.",
                bin.display(),
                args.workers
            ));
            Spec::Spawn {
                bin,
                tls: args.tls,
                workers: args.workers,
                extra: Vec::new(),
            }
        }
    };
    let env = Env {
        spec,
        sources,
        tls: args.tls,
        poll_interval: Duration::from_millis(args.poll_interval_ms),
        connect_concurrency: args.connect_concurrency,
    };
    let mut report = Report {
        machine: Machine {
            nproc,
            cpu,
            kernel,
            fd_soft_limit: fd_soft,
            fd_hard_limit: fd_hard,
        },
        command: std::env::args().collect::<Vec<_>>().join(" "),
        notes,
        floor: None,
        latency: Vec::new(),
        idle: Vec::new(),
        fanout: Vec::new(),
        cluster: Vec::new(),
        errors: Vec::new(),
    };
    for n in &report.notes {
        println!("• {n}");
    }
    match floor() {
        Ok(f) => {
            println!(
                "TCP floor: p50 {:.1} µs p99 {:.1} µs ({} round trips)",
                f.p50_us, f.p99_us, f.samples
            );
            report.floor = Some(f);
        }
        Err(e) => report.errors.push(format!("TCP floor: {e}")),
    }

    let system = actix_web::rt::System::new();
    // Descriptors kept free for the clicker, the pools' spare connections and files.
    let fd_budget = (fd_soft as usize).saturating_sub(200);
    if let Some(PeerKind::Node) = args.peer {
        return compare_with_peer(args, &env, &system, fd_budget, report);
    }
    for scenario in &scenarios {
        match *scenario {
            "latency" => {
                for &kind in &transports {
                    println!("latency: {kind}, {} clients …", args.clients);
                    let res = system.block_on(scenario::latency(
                        &env,
                        kind,
                        args.clients,
                        args.rate,
                        Duration::from_secs_f64(args.duration),
                    ));
                    match res {
                        Ok(r) => report.latency.push(r),
                        Err(e) => report.errors.push(format!("latency {kind}: {e}")),
                    }
                }
            }
            "idle" => {
                for &kind in &transports {
                    if kind == Kind::Ajax {
                        continue; // a polling client holds no connection between polls
                    }
                    let n = args.idle.min(fd_budget);
                    println!("idle: {n} {kind} connections …");
                    match system.block_on(scenario::idle(&env, kind, n)) {
                        Ok(r) => report.idle.push(r),
                        Err(e) => report.errors.push(format!("idle {kind}: {e}")),
                    }
                }
            }
            "fanout" => {
                for &kind in &fanout_kinds {
                    let mut summary = FanoutSummary {
                        transport: kind.to_string(),
                        largest_under_limit: None,
                        stopped_because: "all steps done".into(),
                        steps: Vec::new(),
                    };
                    for &n in &args.fanout_steps {
                        if n > fd_budget {
                            summary.stopped_because = format!(
                                "{n} clients need more than the {fd_soft} file descriptors one \
                                 process may open"
                            );
                            break;
                        }
                        println!("fan-out: {kind}, {n} clients …");
                        let res = system.block_on(scenario::fanout_step(
                            &env,
                            kind,
                            n,
                            args.broadcasts,
                            args.in_flight,
                        ));
                        match res {
                            Ok(step) => {
                                let p95 = step.broadcast.p95_ms;
                                let ok = p95 <= args.p95_limit_ms && step.timeouts == 0;
                                println!(
                                    "  p95 {p95:.1} ms, {:.2} µs per recipient, {} timeouts",
                                    step.cost_per_recipient_us, step.timeouts
                                );
                                summary.steps.push(step);
                                if ok {
                                    summary.largest_under_limit = Some(n);
                                } else {
                                    summary.stopped_because = format!(
                                        "p95 {p95:.0} ms > {} ms at {n} clients",
                                        args.p95_limit_ms
                                    );
                                    break;
                                }
                            }
                            Err(e) => {
                                summary.stopped_because = format!("{n} clients: {e}");
                                break;
                            }
                        }
                    }
                    report.fanout.push(summary);
                }
            }
            "cluster" => {
                let bin = match &args.server_bin {
                    Some(b) => b.clone(),
                    None => std::env::current_exe()
                        .map_err(|e| e.to_string())?
                        .with_file_name("clickgame"),
                };
                for (setup, clients) in cluster_plan(args) {
                    for &kind in &fanout_kinds {
                        let processes = clients.div_ceil(args.clients_per_process.max(1));
                        println!(
                            "cluster: {}, {kind}, {clients} clients in {processes} load processes …",
                            setup.label()
                        );
                        let res = system.block_on(load::cluster::step(
                            &env,
                            &setup,
                            &bin,
                            args.workers,
                            kind,
                            clients,
                            processes,
                            args.broadcasts,
                            args.in_flight,
                        ));
                        match res {
                            Ok(step) => {
                                println!(
                                    "  time to last p50 {:.1} ms, p95 {:.1} ms, {} timeouts",
                                    step.time_to_last.p50_ms,
                                    step.time_to_last.p95_ms,
                                    step.timeouts
                                );
                                report.cluster.push(step);
                            }
                            Err(e) => report.errors.push(format!(
                                "cluster {}, {kind}, {clients} clients: {e}",
                                setup.label()
                            )),
                        }
                    }
                }
            }
            other => report.errors.push(format!("unknown scenario {other:?}")),
        }
    }

    let md = markdown(&report);
    println!("\n{md}");
    std::fs::create_dir_all(&args.out_dir)
        .map_err(|e| format!("{}: {e}", args.out_dir.display()))?;
    let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
    for (name, body) in [("load.json", json.as_str()), ("load.md", md.as_str())] {
        let path = args.out_dir.join(name);
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(body.as_bytes()))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// The steps of the `cluster` scenario: with `--nodes`, each count on those nodes; otherwise
/// the smallest count on one process without Redis, on one node with Redis (the hop alone)
/// and on all nodes, then the larger counts on all nodes.
fn cluster_plan(args: &Args) -> Vec<(Setup, usize)> {
    let mut counts = args.cluster_clients.clone();
    counts.sort_unstable();
    if !args.nodes.is_empty() {
        let nodes: Vec<String> = args
            .nodes
            .iter()
            .map(|u| u.trim_end_matches('/').to_string())
            .collect();
        return counts
            .into_iter()
            .map(|n| (Setup::External(nodes.clone()), n))
            .collect();
    }
    let Some(&small) = counts.first() else {
        return Vec::new();
    };
    let mut plan = vec![
        (Setup::Single, small),
        (Setup::Cluster(1), small),
        (Setup::Cluster(args.cluster_nodes), small),
    ];
    plan.extend(
        counts
            .into_iter()
            .skip(1)
            .map(|n| (Setup::Cluster(args.cluster_nodes), n)),
    );
    plan
}

/// `--worker`: one load process of the cluster scenario.
fn run_worker(spec: &str) -> Result<(), String> {
    let spec = load::cluster::WorkerSpec::parse(spec).map_err(|e| e.to_string())?;
    sys::raise_fd_limit().map_err(|e| format!("fd limit: {e}"))?;
    let system = actix_web::rt::System::new();
    system
        .block_on(load::cluster::worker(spec))
        .map_err(|e| e.to_string())
}

/// `--peer`: both servers, the same measurements, one table (see `load/peer.rs`).
fn compare_with_peer(
    args: &Args,
    env: &Env,
    system: &actix_web::rt::SystemRunner,
    fd_budget: usize,
    mut report: Report,
) -> Result<(), String> {
    if args.url.is_some() || args.tls {
        return Err("--peer spawns both servers itself, over plain HTTP: drop --url/--tls".into());
    }
    let plan = peer::Plan {
        transports: kinds(&args.fanout_transports)?,
        fanout_clients: args.peer_clients,
        idle_clients: args.peer_idle.unwrap_or(args.peer_clients),
        broadcasts: args.broadcasts,
        in_flight: args.in_flight,
        repeat: args.repeat,
    };
    peer::check_fd_budget(&plan, fd_budget).map_err(|e| e.to_string())?;
    let peer_env = Env {
        spec: Spec::Peer {
            node: args.node.clone(),
            script: args
                .peer_script
                .clone()
                .unwrap_or_else(peer::node_ws_script),
        },
        ..env.clone()
    };
    report.notes.push(format!(
        "Peer: `{} {}` spawned fresh for every measurement (one Node.js process, the ws \
         library, permessage-deflate off); clickgame as above.",
        args.node.display(),
        args.peer_script
            .clone()
            .unwrap_or_else(peer::node_ws_script)
            .display()
    ));
    let comparison = system.block_on(peer::compare(env, &peer_env, &plan));
    #[derive(Serialize)]
    struct CompareReport<'a> {
        machine: &'a Machine,
        command: &'a str,
        notes: &'a [String],
        floor: &'a Option<Floor>,
        comparison: &'a peer::Comparison,
        errors: &'a [String],
    }
    let mut md = markdown(&report);
    md += "\n";
    md += &peer::markdown(&comparison);
    println!("\n{md}");
    let json = serde_json::to_string_pretty(&CompareReport {
        machine: &report.machine,
        command: &report.command,
        notes: &report.notes,
        floor: &report.floor,
        comparison: &comparison,
        errors: &report.errors,
    })
    .map_err(|e| e.to_string())?;
    write_outputs(
        &args.out_dir,
        &[("compare.json", &json), ("compare.md", &md)],
    )
}

fn write_outputs(dir: &std::path::Path, files: &[(&str, &str)]) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (name, body) in files {
        let path = dir.join(name);
        std::fs::File::create(&path)
            .and_then(|mut f| f.write_all(body.as_bytes()))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
