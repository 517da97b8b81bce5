//! # A cluster node at work: four loops between the hub and Redis
//!
//! With `--redis-url`, `server::start` starts a [`Node`] (`cluster/`) and a hub in cluster mode
//! (`hub/replica.rs`), and this module runs what connects them, all on the node's own I/O
//! thread (a lease renewal never waits behind a worker busy with a fan-out):
//!
//! * **follow** — every node: load the game from Redis (checkpoint + events), then tail the
//!   log into the hub's ring and replica. After a gap, or when Redis was away (a restarted
//!   Redis may hold a new game, under a new epoch), load again.
//! * **lead** — wait for the lease; then restore the game from Redis (read *after* winning, so
//!   it is final), run it — forwarded commands through [`Commands`] as the [`GameCore`], the
//!   round timer — until the term ends; then drop that game (it may be ahead of Redis) and wait
//!   again. So the timer runs only on the authority.
//! * **presence** — tell the authority about this node's players' contacts
//!   ([`Command::Contact`]), and renew them while they hold a stream here.
//! * **control** — lecturer controls that are about connections, not game state (drop every
//!   connection, a simulated delay), broadcast to every node.
//!
//! [`GameCore`]: crate::cluster::GameCore

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::cluster::{ClusterError, Node, Tailed};
use crate::commands::{Command, Commands};
use crate::error::{to_json, ApiError};
use crate::game::Transport;
use crate::hub::{Hub, Tell};

/// How long a loop waits before asking Redis again after a failure.
const RETRY: Duration = Duration::from_millis(200);

/// A lecturer control every node carries out on its own connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "control", rename_all = "snake_case", deny_unknown_fields)]
pub enum Broadcast {
    /// End every open connection once (clients reconnect and resume).
    Disconnect,
    /// A simulated network delay on one transport.
    Delay { transport: Transport, ms: u64 },
}

impl Broadcast {
    fn apply(&self, hub: &Hub) {
        match self {
            Broadcast::Disconnect => hub.disconnect_all(),
            Broadcast::Delay { transport, ms } => hub.set_delay(*transport, *ms),
        }
    }
}

/// Carries out `control` on every node (this one included): through Redis in a cluster, here
/// alone otherwise.
pub async fn broadcast(hub: &Hub, control: Broadcast) -> Result<(), ApiError> {
    let Some(node) = hub.node() else {
        control.apply(hub);
        return Ok(());
    };
    let message = to_json(&control, "a broadcast")?;
    node.broadcast(message).await.map_err(ApiError::from)
}

/// The loops of one node; dropping this stops them (the lease is released by
/// [`ClusterTasks::stop`]).
pub struct ClusterTasks {
    node: Arc<Node>,
    tasks: Vec<JoinHandle<()>>,
}

impl ClusterTasks {
    /// Starts the four loops on the node's I/O thread.
    pub fn start(
        node: Arc<Node>,
        hub: Hub,
        commands: Commands,
        told: mpsc::UnboundedReceiver<Tell>,
    ) -> ClusterTasks {
        let io = node.redis().clone();
        let tasks = vec![
            io.spawn(follow(hub.clone(), Arc::clone(&node))),
            io.spawn(lead(hub.clone(), Arc::clone(&node), commands.clone())),
            io.spawn(presence(hub.clone(), commands, told)),
            io.spawn(control(hub, node.broadcasts())),
        ];
        ClusterTasks { node, tasks }
    }

    /// Stops the loops and releases the lease if this node holds it, so that another node
    /// takes over at once instead of after the lease's TTL.
    pub async fn stop(self) {
        for task in &self.tasks {
            task.abort();
        }
        self.node.shutdown().await;
    }
}

impl Drop for ClusterTasks {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Every node: the log in Redis → the hub's ring and replica.
async fn follow(hub: Hub, node: Arc<Node>) {
    let history = hub.config().history as u64;
    let mut epoch: Option<String> = None;
    loop {
        let restored = match node.restore(history).await {
            // Nobody has started the game yet (the first authority creates the epoch before
            // it appends anything): look again very soon, clients are waiting for it.
            Ok(r) if r.epoch.is_none() => {
                tokio::time::sleep(RETRY / 4).await;
                continue;
            }
            Ok(r) => r,
            Err(_) => {
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        if epoch != restored.epoch {
            if epoch.is_some() {
                tracing::warn!(
                    epoch = ?restored.epoch,
                    "Redis holds a new game (it was emptied): clients resynchronise, old tokens \
                     are void"
                );
            }
            // A new game has a new session key.
            if node.sessions().load().await.is_err() {
                tokio::time::sleep(RETRY).await;
                continue;
            }
            epoch.clone_from(&restored.epoch);
        }
        if let Err(why) = hub.load_replica(&restored) {
            tracing::error!(
                why,
                "the game in Redis cannot be read; trying again in a second"
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let mut tail = node.tail(restored.head);
        loop {
            match tail.next_batch().await {
                Ok(Tailed::Events(entries)) => {
                    if let Err(why) = hub.apply_log(&entries) {
                        tracing::warn!(why, "the log did not continue the ring; reloading");
                        break;
                    }
                }
                Ok(Tailed::Gap {
                    after,
                    first_available,
                }) => {
                    tracing::warn!(
                        after,
                        first_available,
                        "events were trimmed before this node read them; reloading"
                    );
                    break;
                }
                // Redis went away (the tail has waited a moment). Load again once it answers:
                // a restarted Redis may hold another game.
                Err(ClusterError::Unavailable(_)) => break,
                Err(err) => {
                    tracing::warn!(%err, "reading the log failed; reloading");
                    break;
                }
            }
        }
    }
}

/// The node holding the lease runs the game; the others wait for their turn.
async fn lead(hub: Hub, node: Arc<Node>, commands: Commands) {
    let history = hub.config().history as u64;
    loop {
        let mut authority = node.authority().await;
        let restored = loop {
            match node.restore(history).await {
                Ok(restored) => break Some(restored),
                Err(_) if authority.holds() => tokio::time::sleep(RETRY).await,
                Err(_) => break None,
            }
        };
        let Some(restored) = restored else {
            continue;
        };
        // The key of *this* game (Redis may have started a new one since we last read it).
        if let Err(err) = node.sessions().load().await {
            tracing::warn!(%err, "the session key could not be read; stepping down");
            authority.resign();
            continue;
        }
        if let Err(why) = hub.begin_term(authority.appender().clone(), authority.epoch(), &restored)
        {
            tracing::error!(
                why,
                "the game in Redis does not restore; giving the lease up for another node"
            );
            authority.resign();
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        let timer = tokio::spawn(hub.clone().run_timer());
        authority.serve(&commands).await;
        timer.abort();
        hub.end_term();
        tracing::info!("this node's term as the authority ended");
    }
}

/// Tells the authority about this node's players (see `hub/replica.rs`, "Presence").
async fn presence(hub: Hub, commands: Commands, mut told: mpsc::UnboundedReceiver<Tell>) {
    let Some(refresh) = hub.presence_refresh() else {
        return;
    };
    let mut renew = tokio::time::interval(refresh / 2);
    loop {
        tokio::select! {
            tell = told.recv() => {
                let cmd = match tell {
                    None => return,
                    Some(Tell::Contact(player, transport)) => Command::Contact { player, transport },
                    Some(Tell::Delivered {
                        player,
                        round,
                        at,
                        via,
                        delay_ms,
                    }) => Command::Delivered {
                        player,
                        round,
                        at,
                        via,
                        delay_ms,
                    },
                };
                let commands = commands.clone();
                // Nobody waits for it; a lost contact is renewed at the next interval, a lost
                // delivery counts the reaction from the round's start, as before any report.
                tokio::spawn(async move {
                    let _ = commands.run(cmd, None).await;
                });
            }
            _ = renew.tick() => hub.renew_presence(),
        }
    }
}

/// Lecturer controls broadcast by any node, carried out here.
async fn control(hub: Hub, mut broadcasts: broadcast::Receiver<String>) {
    loop {
        match broadcasts.recv().await {
            Ok(message) => match serde_json::from_str::<Broadcast>(&message) {
                Ok(control) => {
                    tracing::info!(?control, "lecturer control (broadcast)");
                    control.apply(&hub);
                }
                Err(e) => tracing::warn!(%e, "a broadcast that does not parse was ignored"),
            },
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}
