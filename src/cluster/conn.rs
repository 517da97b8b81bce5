//! # One thread for all Redis I/O, and one gate every command goes through
//!
//! [`Redis`] is a cheap-to-clone handle. It owns a thread with its own single-threaded tokio
//! runtime, and every future that touches a Redis connection is spawned onto that runtime —
//! [`Redis::run`] is the gate. Two reasons:
//!
//! * redis-rs spawns each connection's driver task (and a reconnection) on whatever runtime
//!   asks first. actix runs one single-threaded runtime per worker thread; a driver spawned on
//!   one worker would be one more task behind that worker's thousands of sockets.
//! * The lease must be renewed on time (`lease.rs`). On its own thread, a renewal never waits
//!   for a worker that is busy writing a fan-out.
//!
//! The futures this module hands out only pass messages to that thread (tokio's `JoinHandle`
//! and channels work across runtimes), so a handler on any worker can await them.
//!
//! Connections: one `ConnectionManager` (redis-rs's multiplexed connection that reconnects by
//! itself) for short commands; the blocking tail (`XREAD BLOCK`) and Pub/Sub each get their own
//! connection, because a blocked or subscribed connection cannot carry other commands. Every
//! call here has a deadline ([`ClusterConfig::op_timeout`]): when Redis is away, callers get a
//! [`ClusterError::Unavailable`] within that time instead of hanging, and the health state
//! turns `unreachable` at once (the probe in `health.rs` turns it back).

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError, RedisResult};
use tokio::sync::{oneshot, watch};

use super::health::RedisHealth;
use super::{ClusterConfig, ClusterError, Keys};

/// The thread running the cluster layer's runtime. Stops when the last [`Redis`] handle goes.
struct IoThread {
    handle: tokio::runtime::Handle,
    stop: Mutex<Option<oneshot::Sender<()>>>,
}

impl IoThread {
    fn start(name: String) -> std::io::Result<IoThread> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new().name(name).spawn(move || {
            runtime.block_on(async {
                let _ = stopped.await;
            });
            // Dropping the runtime cancels what is still spawned on it (loops, connections).
        })?;
        Ok(IoThread {
            handle,
            stop: Mutex::new(Some(stop)),
        })
    }

    /// Ends the runtime and with it every task on it. Not joined: this may run on the I/O
    /// thread itself.
    fn stop(&self) {
        if let Some(stop) = self
            .stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = stop.send(());
        }
    }
}

impl Drop for IoThread {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Inner {
    client: Client,
    manager: ConnectionManager,
    config: ClusterConfig,
    keys: Keys,
    health: watch::Sender<RedisHealth>,
    // Last, so that everything above is dropped before the runtime stops.
    io: IoThread,
}

/// A handle on Redis for one node. Clone it freely.
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

impl Redis {
    /// Starts the I/O thread and a connection that is opened on first use, so a node starts
    /// even while Redis is down (its health then says so). Fails only on a malformed URL or
    /// when no thread can be started.
    pub async fn open(config: ClusterConfig) -> Result<Redis, ClusterError> {
        let client = Client::open(config.redis_url.as_str())
            .map_err(|e| ClusterError::Unavailable(format!("bad Redis URL: {e}")))?;
        let io = IoThread::start(format!("cluster-{}", config.node_id))
            .map_err(|e| ClusterError::Unavailable(format!("no I/O thread: {e}")))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.op_timeout))
            .set_response_timeout(Some(config.op_timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(200));
        // Created on the I/O thread, like everything that may spawn a connection's task.
        let for_io = client.clone();
        let manager = io
            .handle
            .spawn(async move { ConnectionManager::new_lazy_with_config(for_io, manager_config) })
            .await
            .map_err(|e| ClusterError::Unavailable(format!("I/O thread: {e}")))?
            .map_err(|e| ClusterError::Unavailable(e.to_string()))?;
        let (health, _) = watch::channel(RedisHealth::Unknown);
        Ok(Redis {
            inner: Arc::new(Inner {
                keys: config.keys(),
                client,
                manager,
                config,
                health,
                io,
            }),
        })
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.inner.config
    }

    pub fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    /// A new client for a connection of its own (the tail, Pub/Sub).
    pub(crate) fn client(&self) -> &Client {
        &self.inner.client
    }

    pub(crate) fn health_sender(&self) -> &watch::Sender<RedisHealth> {
        &self.inner.health
    }

    /// Watches Redis's reachability as this node sees it.
    pub fn health(&self) -> watch::Receiver<RedisHealth> {
        self.inner.health.subscribe()
    }

    /// Stops the I/O thread: every loop and connection of this node ends, and later calls
    /// fail with `Unavailable`. The node's loops hold handles too, so dropping handles alone
    /// would never get here; `Node`'s drop calls this.
    pub(crate) fn stop(&self) {
        self.inner.io.stop();
    }

    /// Runs a long-lived task (a loop of this layer) on the I/O thread.
    pub(crate) fn spawn<F>(&self, task: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.io.handle.spawn(task)
    }

    /// The gate: runs `op` on the shared connection, on the I/O thread, within the operation
    /// timeout. I/O failures and timeouts mark Redis unreachable; Redis's own error replies
    /// (a script error) do not — Redis answered.
    pub async fn run<T, F>(
        &self,
        what: &'static str,
        op: impl FnOnce(ConnectionManager) -> F,
    ) -> Result<T, ClusterError>
    where
        F: Future<Output = RedisResult<T>> + Send + 'static,
        T: Send + 'static,
    {
        let timeout = self.inner.config.op_timeout;
        let future = op(self.inner.manager.clone());
        let joined = self
            .inner
            .io
            .handle
            .spawn(async move { tokio::time::timeout(timeout, future).await })
            .await;
        match joined {
            Err(e) => Err(ClusterError::Unavailable(format!(
                "{what}: the I/O thread stopped ({e})"
            ))),
            Ok(Err(_)) => {
                let why = format!("{what}: no answer within {} ms", timeout.as_millis());
                self.mark_unreachable(&why);
                Err(ClusterError::Unavailable(why))
            }
            Ok(Ok(Err(e))) => Err(self.classify(what, e)),
            Ok(Ok(Ok(value))) => Ok(value),
        }
    }

    /// Turns a redis-rs error into ours, noting when it means Redis is out of reach.
    pub(crate) fn classify(&self, what: &str, e: RedisError) -> ClusterError {
        let why = format!("{what}: {e}");
        if unreachable(&e) {
            self.mark_unreachable(&why);
            ClusterError::Unavailable(why)
        } else {
            ClusterError::Protocol(why)
        }
    }

    pub(crate) fn mark_unreachable(&self, why: &str) {
        super::health::report_unreachable(&self.inner.health, why);
    }
}

/// Errors that say "could not talk to Redis", as opposed to "Redis said no".
pub(crate) fn unreachable(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
        || matches!(
            e.code(),
            Some("LOADING") | Some("MASTERDOWN") | Some("READONLY") | Some("TRYAGAIN")
        )
}
