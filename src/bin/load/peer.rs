//! `clickgame-load --peer node` (issue 15): the same fan-out and idle measurements against
//! clickgame and against a peer server — `benches/peers/node-ws/`, what a student would write
//! on Node.js and the `ws` library — one after the other in one run, and one table of the
//! figures side by side with the ratio peer ÷ clickgame.
//!
//! Why side by side in one run: the two cores here are shared with the load tool and with
//! other jobs, so absolute times drift by 2× between runs (`docs/results.md` §1); a ratio of
//! two measurements taken minutes apart on the same machine drifts much less. With `--repeat`
//! the pairs run several times, the order of the two servers alternating, and the table gives
//! the median of each figure.
//!
//! The figures, all from measurements the tool already makes:
//!
//! * **time to the last recipient**, p50 and p95: a fan-out step (`scenario::fanout_step`),
//!   click sent → the last of N clients has the event;
//! * **server CPU per delivered event**: the server process's user + system time over the
//!   fan-out window (`/proc/<pid>/stat`, every thread) ÷ events the N clients received;
//! * **RSS per idle connection**: `scenario::idle`, growth of `VmRSS` ÷ connections.

use std::fmt::Write as _;

use serde::Serialize;

use super::client::{Error, Kind, Result};
use super::scenario::{self, Env, FanoutStep, IdleResult};
use super::sys;

/// What to measure against both servers.
#[derive(Debug, Clone)]
pub struct Plan {
    pub transports: Vec<Kind>,
    /// Spectators in the fan-out, and connections held in the idle measurement.
    pub fanout_clients: usize,
    pub idle_clients: usize,
    pub broadcasts: u64,
    pub in_flight: usize,
    pub repeat: usize,
}

/// One server's figures for one transport in one repetition.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Side {
    pub fanout: Option<FanoutStep>,
    pub idle: Option<IdleResult>,
    /// 1-minute load average before its fan-out and before its idle measurement.
    pub load_average: Vec<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Run {
    pub transport: String,
    pub repetition: usize,
    /// Which server went first in this repetition.
    pub first: String,
    pub clickgame: Side,
    pub peer: Side,
}

/// One line of the table: a figure for both servers and their ratio.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub transport: String,
    pub figure: &'static str,
    pub unit: &'static str,
    pub clickgame: Option<f64>,
    pub peer: Option<f64>,
    /// peer ÷ clickgame: above 1, clickgame is faster / cheaper / smaller.
    pub ratio: Option<f64>,
    /// What issue 15 asks of the ratio (and of clickgame's own value), if anything.
    pub target: &'static str,
    pub met: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub peer: String,
    pub fanout_clients: usize,
    pub idle_clients: usize,
    pub broadcasts: u64,
    pub in_flight: usize,
    pub repeat: usize,
    pub rows: Vec<Row>,
    pub runs: Vec<Run>,
    pub errors: Vec<String>,
}

async fn measure_side(env: &Env, kind: Kind, plan: &Plan, errors: &mut Vec<String>) -> Side {
    let name = env.spec.label();
    let mut side = Side::default();
    side.load_average.extend(sys::load_average());
    println!(
        "  {name}: fan-out, {kind}, {} clients …",
        plan.fanout_clients
    );
    match scenario::fanout_step(
        env,
        kind,
        plan.fanout_clients,
        plan.broadcasts,
        plan.in_flight,
    )
    .await
    {
        Ok(step) => {
            println!(
                "    p50 {:.1} ms, p95 {:.1} ms, {} CPU µs per delivery, {} timeouts",
                step.broadcast.p50_ms,
                step.broadcast.p95_ms,
                step.server_cpu_us_per_delivery
                    .map_or("–".into(), |v| format!("{v:.2}")),
                step.timeouts
            );
            side.fanout = Some(step);
        }
        Err(e) => errors.push(format!("{name} fan-out {kind}: {e}")),
    }
    side.load_average.extend(sys::load_average());
    println!(
        "  {name}: idle, {kind}, {} connections …",
        plan.idle_clients
    );
    match scenario::idle(env, kind, plan.idle_clients).await {
        Ok(idle) => {
            println!(
                "    {:.1} KiB per connection",
                idle.server_bytes_per_connection / 1024.0
            );
            side.idle = Some(idle);
        }
        Err(e) => errors.push(format!("{name} idle {kind}: {e}")),
    }
    side
}

/// Runs the plan against both servers: per repetition and transport, clickgame and the peer
/// one after the other (the order alternating between repetitions).
pub async fn compare(clickgame: &Env, peer: &Env, plan: &Plan) -> Comparison {
    let mut runs = Vec::new();
    let mut errors = Vec::new();
    for repetition in 0..plan.repeat.max(1) {
        for &kind in &plan.transports {
            let peer_first = repetition % 2 == 1;
            println!(
                "compare: {kind}, repetition {} of {}",
                repetition + 1,
                plan.repeat.max(1)
            );
            let (cg, pr) = if peer_first {
                let pr = measure_side(peer, kind, plan, &mut errors).await;
                (measure_side(clickgame, kind, plan, &mut errors).await, pr)
            } else {
                let cg = measure_side(clickgame, kind, plan, &mut errors).await;
                (cg, measure_side(peer, kind, plan, &mut errors).await)
            };
            runs.push(Run {
                transport: kind.to_string(),
                repetition: repetition + 1,
                first: if peer_first {
                    peer.spec.label()
                } else {
                    clickgame.spec.label()
                },
                clickgame: cg,
                peer: pr,
            });
        }
    }
    let rows = plan
        .transports
        .iter()
        .flat_map(|kind| rows_for(kind.name(), &runs))
        .collect();
    Comparison {
        peer: peer.spec.label(),
        fanout_clients: plan.fanout_clients,
        idle_clients: plan.idle_clients,
        broadcasts: plan.broadcasts,
        in_flight: plan.in_flight,
        repeat: plan.repeat.max(1),
        rows,
        runs,
        errors,
    }
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

type Read = fn(&Side) -> Option<f64>;

/// One figure of the table: how to read it off one side, and what issue 15 asks of it.
struct Figure {
    name: &'static str,
    unit: &'static str,
    read: Read,
    /// The ratio peer ÷ clickgame must be at least this.
    min_ratio: Option<f64>,
    /// clickgame's own value must be at most this.
    ceiling: Option<f64>,
    target: &'static str,
}

const FIGURES: [Figure; 5] = [
    Figure {
        name: "time to last recipient p50",
        unit: "ms",
        read: |s| s.fanout.as_ref().map(|f| f.broadcast.p50_ms),
        min_ratio: None,
        ceiling: None,
        target: "",
    },
    Figure {
        name: "time to last recipient p95",
        unit: "ms",
        read: |s| s.fanout.as_ref().map(|f| f.broadcast.p95_ms),
        min_ratio: Some(2.0),
        ceiling: None,
        target: "≥ 2",
    },
    Figure {
        name: "server CPU per delivered event",
        unit: "µs",
        read: |s| s.fanout.as_ref().and_then(|f| f.server_cpu_us_per_delivery),
        min_ratio: Some(2.0),
        ceiling: Some(5.0),
        target: "≥ 2, and clickgame ≤ 5 µs",
    },
    Figure {
        name: "mean broadcast time per recipient (goal 5)",
        unit: "µs",
        read: |s| s.fanout.as_ref().map(|f| f.cost_per_recipient_us),
        min_ratio: None,
        ceiling: None,
        target: "",
    },
    Figure {
        name: "RSS per idle connection",
        unit: "KiB",
        read: |s| {
            s.idle
                .as_ref()
                .map(|i| i.server_bytes_per_connection / 1024.0)
        },
        min_ratio: Some(1.0),
        ceiling: None,
        target: "≥ 1",
    },
];

fn rows_for(transport: &str, runs: &[Run]) -> Vec<Row> {
    let mine: Vec<&Run> = runs.iter().filter(|r| r.transport == transport).collect();
    FIGURES
        .iter()
        .map(|f| {
            let clickgame = median(mine.iter().filter_map(|r| (f.read)(&r.clickgame)).collect());
            let peer = median(mine.iter().filter_map(|r| (f.read)(&r.peer)).collect());
            let ratio = clickgame.zip(peer).map(|(c, p)| p / c.max(1e-9));
            let met = f.min_ratio.and_then(|min| {
                let under_ceiling = f.ceiling.is_none_or(|c| clickgame.is_some_and(|v| v <= c));
                Some(ratio? >= min && under_ceiling)
            });
            Row {
                transport: transport.to_string(),
                figure: f.name,
                unit: f.unit,
                clickgame,
                peer,
                ratio,
                target: f.target,
                met,
            }
        })
        .collect()
}

fn num(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.2}"),
    }
}

/// The table, and one line per run with the load average it ran at.
pub fn markdown(c: &Comparison) -> String {
    let mut md = format!(
        "### clickgame against {} (fan-out to {} spectators, {} broadcasts + {} warm-up, {} in \
         flight; {} idle connections; median of {} repetition{})\n\n",
        c.peer,
        c.fanout_clients,
        c.broadcasts,
        c.in_flight,
        c.in_flight,
        c.idle_clients,
        c.repeat,
        if c.repeat == 1 { "" } else { "s" },
    );
    let _ = writeln!(
        md,
        "| transport | figure | clickgame | {} | {} ÷ clickgame | issue 15 wants | met |",
        c.peer, c.peer
    );
    md += "|---|---|---:|---:|---:|---|---|\n";
    for r in &c.rows {
        let _ = writeln!(
            md,
            "| {} | {} ({}) | {} | {} | {} | {} | {} |",
            r.transport,
            r.figure,
            r.unit,
            num(r.clickgame),
            num(r.peer),
            r.ratio.map_or("–".into(), |v| format!("{v:.2}×")),
            r.target,
            match r.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            }
        );
    }
    md += "\nRuns (load average before each fan-out and idle measurement):\n\n";
    for r in &c.runs {
        let la = |s: &Side| {
            s.load_average
                .iter()
                .map(|l| format!("{l:.1}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            md,
            "- {} #{} ({} first): clickgame p95 {} ms, {} CPU µs/delivery, {} KiB/conn \
             (load {}); {} p95 {} ms, {} CPU µs/delivery, {} KiB/conn (load {})",
            r.transport,
            r.repetition,
            r.first,
            num(r.clickgame.fanout.as_ref().map(|f| f.broadcast.p95_ms)),
            num(r
                .clickgame
                .fanout
                .as_ref()
                .and_then(|f| f.server_cpu_us_per_delivery)),
            num(r
                .clickgame
                .idle
                .as_ref()
                .map(|i| i.server_bytes_per_connection / 1024.0)),
            la(&r.clickgame),
            c.peer,
            num(r.peer.fanout.as_ref().map(|f| f.broadcast.p95_ms)),
            num(r
                .peer
                .fanout
                .as_ref()
                .and_then(|f| f.server_cpu_us_per_delivery)),
            num(r
                .peer
                .idle
                .as_ref()
                .map(|i| i.server_bytes_per_connection / 1024.0)),
            la(&r.peer),
        );
    }
    if !c.errors.is_empty() {
        md += "\nNot measured:\n\n";
        for e in &c.errors {
            let _ = writeln!(md, "- {e}");
        }
    }
    md
}

/// Where the Node peer lives in this repository.
pub fn node_ws_script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers/node-ws/server.js")
}

/// Refuses a plan the descriptor limit cannot hold: each connection is one descriptor in the
/// load tool (and one in the server, which inherits the same limit).
pub fn check_fd_budget(plan: &Plan, fd_budget: usize) -> Result<()> {
    let n = plan.fanout_clients.max(plan.idle_clients);
    if n > fd_budget {
        return Err(Error(format!(
            "{n} connections need more than the {fd_budget} file descriptors this process may \
             use"
        )));
    }
    Ok(())
}
