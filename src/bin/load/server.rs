//! The server under test: spawned from `target/release/clickgame` (a fresh process per
//! measurement, so memory starts from the same baseline), the Node.js peer of issue 15
//! (`benches/peers/node-ws/server.js`, spawned the same way), or one already running (`--url`).

use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// How to get a server.
#[derive(Debug, Clone)]
pub enum Spec {
    /// Spawn this binary with settings fit for load: no per-address socket or stream cap and as
    /// many sockets overall as the descriptor limit allows, no click rate limit, no join limits
    /// and room for 1,000,000 players (all clients come from loopback), long polls held 10 min,
    /// warnings only in the log.
    Spawn {
        bin: PathBuf,
        tls: bool,
        workers: usize,
        /// More flags (a cluster node's `--redis-url` and `--node-id`).
        extra: Vec<String>,
    },
    /// Spawn `node <script> --port 0`: the peer server of `benches/peers/` (plain HTTP only).
    Peer { node: PathBuf, script: PathBuf },
    /// Use a running server; `/proc` figures only with its pid.
    External { base: String, pid: Option<u32> },
}

impl Spec {
    /// The name a report gives this server.
    pub fn label(&self) -> String {
        match self {
            Spec::Spawn { .. } => "clickgame".into(),
            Spec::Peer { script, .. } => script
                .parent()
                .and_then(Path::file_name)
                .map_or("peer".into(), |d| d.to_string_lossy().into_owned()),
            Spec::External { base, .. } => base.clone(),
        }
    }
}

/// Limits that other branches add to the server (issue 15 was measured while they were being
/// written). A spawned clickgame gets each only if its `--help` lists it, so this tool runs
/// against servers from before and after them: values that switch the limit off (or make it
/// far larger than any load here) for a load test from 16 loopback addresses.
const GENEROUS_LIMITS: [(&str, &str); 5] = [
    ("--max-sockets-per-ip", "1000000"),
    ("--max-conns", "1000000"),
    ("--join-rate", "1000000"),
    ("--max-players", "1000000"),
    ("--round-timeout-ms", "0"),
];

/// The flags among [`GENEROUS_LIMITS`] that `bin --help` lists, with their values.
fn optional_limit_flags(bin: &Path) -> Vec<&'static str> {
    let help = Command::new(bin)
        .arg("--help")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    limit_flags_listed_in(&help)
}

/// The flags among [`GENEROUS_LIMITS`] that a `--help` text lists (as whole words: a listed
/// `--max-conns-per-ip` does not count as `--max-conns`), each followed by its value.
pub fn limit_flags_listed_in(help: &str) -> Vec<&'static str> {
    let listed: Vec<&str> = help
        .split(|c: char| c.is_whitespace() || c == ',' || c == '=')
        .collect();
    GENEROUS_LIMITS
        .iter()
        .filter(|(flag, _)| listed.contains(flag))
        .flat_map(|(flag, value)| [*flag, *value])
        .collect()
}

pub struct Server {
    pub base: String,
    pub pid: Option<u32>,
    child: Option<Child>,
}

impl Server {
    pub fn start(spec: &Spec) -> io::Result<Server> {
        match spec {
            Spec::External { base, pid } => Ok(Server {
                base: base.clone(),
                pid: *pid,
                child: None,
            }),
            Spec::Spawn {
                bin,
                tls,
                workers,
                extra,
            } => {
                let mut cmd = Command::new(bin);
                let workers = workers.to_string();
                let base = [
                    "--http-addr",
                    "127.0.0.1:0",
                    "--max-conns-per-ip",
                    "0",
                    "--max-sockets-per-ip",
                    "0",
                    "--max-conns",
                    "0",
                    "--click-rate",
                    "1000000000",
                    "--join-rate",
                    "0",
                    "--join-rate-total",
                    "0",
                    "--max-players",
                    "1000000",
                    "--longpoll-timeout-ms",
                    "600000",
                    "--player-timeout-ms",
                    "600000",
                    "--log",
                    "warn",
                    "--workers",
                    &workers,
                ];
                cmd.args(base);
                // Only those not given above: clap refuses a flag given twice (the server would
                // exit at once).
                for pair in optional_limit_flags(bin).chunks(2) {
                    if !base.contains(&pair[0]) {
                        cmd.args(pair);
                    }
                }
                cmd.args(extra);
                if *tls {
                    let dir = std::env::temp_dir().join("clickgame-load-tls");
                    cmd.args(["--https-addr", "127.0.0.1:0", "--data-dir"]);
                    cmd.arg(dir);
                } else {
                    cmd.arg("--no-tls");
                }
                let want = if *tls { "https://" } else { "http://" };
                spawn(cmd, &bin.display().to_string(), want)
            }
            Spec::Peer { node, script } => {
                let dir = script.parent().unwrap_or(Path::new("."));
                if !dir.join("node_modules").join("ws").is_dir() {
                    return Err(io::Error::other(format!(
                        "the peer's dependencies are not installed: run `make peer-deps` \
                         (npm ci in {})",
                        dir.display()
                    )));
                }
                let mut cmd = Command::new(node);
                cmd.arg(script).args(["--port", "0", "--host", "127.0.0.1"]);
                spawn(
                    cmd,
                    &format!("{} {}", node.display(), script.display()),
                    "http://",
                )
            }
        }
    }
}

/// Starts `cmd` and waits for its `listening on <want>HOST:PORT` line.
fn spawn(mut cmd: Command, what: &str, want: &str) -> io::Result<Server> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot start {what}: {e}")))?;
    let pid = child.id();
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("no stdout from the server"))?;
    let mut base = None;
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line?;
        if let Some(addr) = line.strip_prefix(&format!("listening on {want}")) {
            base = Some(format!("{want}{addr}"));
            break;
        }
    }
    // Keep reading whatever else the server prints: a closed pipe would make its next
    // `println!` fail, and the server stop.
    std::thread::spawn(move || lines.for_each(drop));
    let Some(base) = base else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(io::Error::other(format!(
            "{what} exited without printing `listening on ...`"
        )));
    };
    Ok(Server {
        base,
        pid: Some(pid),
        child: Some(child),
    })
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
