//! The server under test: spawned from `target/release/clickgame` (a fresh process per
//! measurement, so memory starts from the same baseline), or one already running (`--url`).

use std::io::{self, BufRead, BufReader};
use std::path::PathBuf;
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
    },
    /// Use a running server; `/proc` figures only with its pid.
    External { base: String, pid: Option<u32> },
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
            Spec::Spawn { bin, tls, workers } => {
                let mut cmd = Command::new(bin);
                cmd.args([
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
                    &workers.to_string(),
                ]);
                if *tls {
                    let dir = std::env::temp_dir().join("clickgame-load-tls");
                    cmd.args(["--https-addr", "127.0.0.1:0", "--data-dir"]);
                    cmd.arg(dir);
                } else {
                    cmd.arg("--no-tls");
                }
                let mut child = cmd
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .map_err(|e| {
                        io::Error::new(e.kind(), format!("cannot start {}: {e}", bin.display()))
                    })?;
                let pid = child.id();
                let stdout = child
                    .stdout
                    .take()
                    .ok_or_else(|| io::Error::other("no stdout from the server"))?;
                let want = if *tls { "https://" } else { "http://" };
                let mut base = None;
                let mut lines = BufReader::new(stdout).lines();
                for line in lines.by_ref() {
                    let line = line?;
                    if let Some(addr) = line.strip_prefix(&format!("listening on {want}")) {
                        base = Some(format!("{want}{addr}"));
                        break;
                    }
                }
                // Keep reading whatever else the server prints: a closed pipe would make its
                // next `println!` fail, and the server stop.
                std::thread::spawn(move || lines.for_each(drop));
                let Some(base) = base else {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(io::Error::other(
                        "the server exited without printing `listening on ...`",
                    ));
                };
                Ok(Server {
                    base,
                    pid: Some(pid),
                    child: Some(child),
                })
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
