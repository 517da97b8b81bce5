//! # `Node`: one clickgame process's membership in the cluster
//!
//! The one object phase 2 keeps next to the hub (see the crate map in `mod.rs`). Starting it
//! starts the I/O thread, the health probe, the lease loop, the Pub/Sub listener and the
//! loading of the session key; none of them needs Redis to be up yet, so a node started while
//! Redis is down serves its static files and says `redis: "unreachable"` until it is back.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::checkpoint::{self, Restored};
use super::conn::Redis;
use super::forward::{Authority, IdemKey, Router};
use super::health::{self, RedisHealth};
use super::lease::{Lease, Role};
use super::sessions::Sessions;
use super::stream::{Appender, EventTail};
use super::{hex, random_bytes, ClusterConfig, ClusterError, NodeId};

/// One node. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Node {
    redis: Redis,
    instance: String,
    lease: Arc<Lease>,
    router: Arc<Router>,
    sessions: Arc<Sessions>,
}

impl Node {
    /// Joins the cluster. Fails only on a malformed URL or when no thread can be started.
    pub async fn start(config: ClusterConfig) -> Result<Node, ClusterError> {
        let redis = Redis::open(config).await?;
        // Told apart from another process started with the same --node-id by mistake.
        let instance = hex(&random_bytes::<4>());
        redis.spawn(health::probe(redis.clone()));
        let lease = Lease::start(redis.clone(), &redis.config().node_id, &instance);
        let router = Router::start(redis.clone(), &instance);
        let sessions = Sessions::new(redis.clone());
        redis.spawn(Arc::clone(&sessions).load_until_ready());
        tracing::info!(
            node = %redis.config().node_id,
            instance,
            "cluster node started; contending for the lease"
        );
        Ok(Node {
            redis,
            instance,
            lease,
            router,
            sessions,
        })
    }

    pub fn id(&self) -> &NodeId {
        &self.redis.config().node_id
    }

    /// Random per process: tells two processes with one node id apart.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    pub fn redis(&self) -> &Redis {
        &self.redis
    }

    /// This node's role; `/api/stats` shows `authority: true|false` from it.
    pub fn role(&self) -> watch::Receiver<Role> {
        self.lease.role()
    }

    pub fn is_authority(&self) -> bool {
        self.lease.role().borrow().is_authority()
    }

    /// `ok` / `unreachable`, for `/api/stats` and for refusing commands early.
    pub fn health(&self) -> watch::Receiver<RedisHealth> {
        self.redis.health()
    }

    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// Checkpoint, head, epoch and the entries after the checkpoint (and the last `history`).
    pub async fn restore(&self, history: u64) -> Result<Restored, ClusterError> {
        checkpoint::restore(&self.redis, history).await
    }

    /// A tail of the log after seq `after`.
    pub fn tail(&self, after: u64) -> EventTail {
        EventTail::new(self.redis.clone(), after)
    }

    /// Sends a command to the authority (or runs it through the local inbox if that is us)
    /// and returns its answer. Errors are all `503` + `Retry-After` for the client.
    pub async fn forward(&self, key: &IdemKey, body: String) -> Result<String, ClusterError> {
        self.router.forward(key, body).await
    }

    /// Sends a message to every node (ourselves included): lecturer controls that are about
    /// connections, not game state. At most once, and only to nodes listening right now.
    pub async fn broadcast(&self, message: String) -> Result<(), ClusterError> {
        self.router.broadcast(message).await
    }

    /// What [`Node::broadcast`] sends, as this node receives it.
    pub fn broadcasts(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.router.broadcasts()
    }

    /// The node that holds the lease, as far as this node knows (`None` during a failover or
    /// while Redis is unreachable).
    pub fn authority_id(&self) -> Option<String> {
        match &*self.lease.role().borrow() {
            Role::Authority { .. } => Some(self.id().to_string()),
            Role::Follower { holder } => holder.clone(),
        }
    }

    /// Waits until this node holds the lease, then opens its term: the game's epoch (created
    /// if this is the first term of a new game), an appender writing under the new fencing
    /// token, and the inbox forwarded commands arrive in. Hold on to only one at a time.
    pub async fn authority(&self) -> Authority {
        let mut role = self.lease.role();
        loop {
            let fence = match *role.borrow_and_update() {
                Role::Authority { fence } => Some(fence),
                Role::Follower { .. } => None,
            };
            let Some(fence) = fence else {
                // The sender lives as long as the lease, which lives as long as we do.
                let _ = role.changed().await;
                continue;
            };
            let epoch = match checkpoint::init_epoch(&self.redis, fence).await {
                Ok(epoch) => epoch,
                Err(ClusterError::Fenced) => {
                    let _ = role.changed().await;
                    continue;
                }
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            let lease = Arc::clone(&self.lease);
            let appender = Appender::start(self.redis.clone(), fence, move |_| lease.resign(fence));
            let inbox = self.router.open_inbox();
            // Commands published before the subscription is live find nobody (503, retried);
            // wait for it a moment so that a fresh authority is reachable when this returns.
            let op = self.redis.config().op_timeout;
            if !self.router.commands_heard(op * 4).await {
                tracing::warn!("the command channel is not subscribed yet; forwards get 503");
            }
            return Authority {
                fence,
                epoch,
                redis: self.redis.clone(),
                lease: Arc::clone(&self.lease),
                role: self.lease.role(),
                appender,
                inbox,
                router: Arc::clone(&self.router),
            };
        }
    }

    /// Leaves the cluster: releases the lease if we hold it, so another node takes over now.
    pub async fn shutdown(&self) {
        self.lease.shutdown().await;
    }

    #[cfg(test)]
    pub(crate) fn lease(&self) -> &Lease {
        &self.lease
    }
}

impl Drop for Node {
    /// The loops (lease, Pub/Sub, probe) hold handles on the I/O thread, so it would outlive
    /// the node; stop it. The lease is not released here (that needs a round trip): call
    /// [`Node::shutdown`] first for a quick handover.
    fn drop(&mut self) {
        self.redis.stop();
    }
}
