//! # Who runs the game: a lease in Redis, with a fencing token
//!
//! One key, `{game}:lease`, holds `"<node> <instance> <fence>"` with a TTL
//! ([`super::ClusterConfig::lease_ttl`], 3 s by default). A node that finds it missing takes it in
//! one Lua script that also `INCR`s `{game}:fence`: the **fencing token**, a number that grows
//! with every new holder. The holder renews the TTL every third of it; the others try again
//! when the lease would expire.
//!
//! A lease alone cannot stop a holder that was paused (a long GC, a stopped VM, `SIGSTOP`) and
//! wakes up believing it still holds it: by then another node may hold it. So every write of
//! the authority (`stream.rs`, `checkpoint.rs`) carries its token, and Redis refuses it inside
//! the same script when the token is no longer the newest (Kleppmann's "fencing token"; the
//! road not taken is Redlock, which needs several independent Redis servers and still no
//! fencing). The lease decides who *should* write; the token decides who *can*.
//!
//! The holder also keeps its own deadline: the lease is taken as valid until `sent + TTL −
//! TTL/10`, measured on the monotonic clock from *before* the request left (Redis started the
//! TTL later than that, so the real expiry is later still; the tenth absorbs clock-rate drift).
//! [`Lease::holds`] says whether that deadline has passed: the authority asks before each
//! command, so a node that was paused stops serving the moment it runs again, before any write.
//!
//! A graceful stop releases the lease (only if it is still ours: compare-and-delete), so the
//! next node takes over at once instead of after a TTL.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::Script;
use tokio::sync::{watch, Notify};

use super::conn::Redis;
use super::{ClusterError, NodeId};

/// Takes the lease if nobody holds it. KEYS: lease, fence. ARGV: "<node> <instance>", ttl ms.
/// Returns `{1, fence, 0}` when taken, `{0, current value, pttl}` when somebody holds it.
const ACQUIRE: &str = r"
local current = redis.call('GET', KEYS[1])
if current then
  return {0, current, redis.call('PTTL', KEYS[1])}
end
local fence = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], string.format('%s %d', ARGV[1], fence), 'PX', ARGV[2])
return {1, string.format('%d', fence), 0}
";

/// Extends the lease if it is still exactly ours. KEYS: lease. ARGV: our value, ttl ms.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
";

/// Deletes the lease if this process holds it. KEYS: lease. ARGV: "<node> <instance> ".
const RELEASE: &str = r"
local current = redis.call('GET', KEYS[1])
if current and string.sub(current, 1, string.len(ARGV[1])) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
";

static ACQUIRE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(ACQUIRE));
static RENEW_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(RENEW));
static RELEASE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(RELEASE));

/// What this node is, as the lease says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Another node (named, when known) runs the game, or nobody does right now.
    Follower { holder: Option<String> },
    /// This node runs the game; its writes carry `fence`.
    Authority { fence: u64 },
}

impl Role {
    pub fn is_authority(&self) -> bool {
        matches!(self, Role::Authority { .. })
    }
}

/// The answer of [`ACQUIRE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Acquire {
    Won { fence: u64 },
    Held { holder: String, pttl_ms: i64 },
}

/// Until when a lease renewed (or taken) by a request sent at `sent` is surely ours.
pub fn valid_until(sent: Instant, ttl: Duration) -> Instant {
    sent + ttl - ttl / 10
}

/// How often the holder renews: three tries before the lease could lapse.
pub fn renew_interval(ttl: Duration) -> Duration {
    ttl / 3
}

/// How long a follower waits before trying to take the lease: until it would expire (plus a
/// few ms), but at least every third of a TTL so a changed TTL or a released lease is seen.
/// A lease without a TTL (`PTTL` −1, set by hand) is looked at again every third of a TTL.
pub fn follower_wait(pttl_ms: i64, ttl: Duration) -> Duration {
    if pttl_ms < 0 {
        return ttl / 3;
    }
    Duration::from_millis(pttl_ms as u64 + 5).min(ttl / 3)
}

#[derive(Debug, Clone, Copy)]
struct Held {
    fence: u64,
    valid_until: Instant,
    renew_due: Instant,
}

/// One node's side of the lease: a loop on the I/O thread plus what it has learnt.
pub struct Lease {
    redis: Redis,
    /// `"<node> <instance> "`: the prefix of our lease value.
    me: String,
    role: watch::Sender<Role>,
    held: Mutex<Option<Held>>,
    resign_fence: Mutex<Option<u64>>,
    wake: Notify,
    stopping: AtomicBool,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Lease {
    /// Starts contending for the lease.
    pub fn start(redis: Redis, node: &NodeId, instance: &str) -> Arc<Lease> {
        let (role, _) = watch::channel(Role::Follower { holder: None });
        let lease = Arc::new(Lease {
            me: format!("{node} {instance} "),
            redis: redis.clone(),
            role,
            held: Mutex::new(None),
            resign_fence: Mutex::new(None),
            wake: Notify::new(),
            stopping: AtomicBool::new(false),
            task: Mutex::new(None),
        });
        let task = redis.spawn(Arc::clone(&lease).run());
        *lease.task.lock().unwrap_or_else(PoisonError::into_inner) = Some(task);
        lease
    }

    /// Watches this node's role; changes only when the role or the known holder changes.
    pub fn role(&self) -> watch::Receiver<Role> {
        self.role.subscribe()
    }

    /// Whether this node holds the lease under `fence` by its own clock, right now. Asked by
    /// the authority before each command: false as soon as the local deadline has passed,
    /// even if the loop that would notice has not run yet (a paused process, just woken).
    pub fn holds(&self, fence: u64) -> bool {
        self.held()
            .is_some_and(|h| h.fence == fence && Instant::now() < h.valid_until)
    }

    /// Gives the lease up because writing under `fence` failed (`stream.rs`): our in-memory
    /// game may be ahead of the log, so another term must start from what Redis has.
    pub fn resign(&self, fence: u64) {
        *self
            .resign_fence
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(fence);
        self.wake.notify_one();
    }

    /// Stops contending and releases the lease if we hold it: a graceful stop hands over at
    /// once instead of after a TTL.
    pub async fn shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(task) = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
        let _ = self.release().await;
        self.step_down(None, "the node is stopping");
    }

    /// Test only: the loop stops dead, as in a paused or killed process; nothing is released.
    #[cfg(test)]
    pub(crate) fn freeze(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(task) = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }

    fn held(&self) -> Option<Held> {
        *self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_held(&self, held: Option<Held>) {
        *self.held.lock().unwrap_or_else(PoisonError::into_inner) = held;
    }

    fn ttl(&self) -> Duration {
        self.redis.config().lease_ttl
    }

    fn value(&self, fence: u64) -> String {
        format!("{}{fence}", self.me)
    }

    fn step_down(&self, holder: Option<String>, why: &str) {
        let was = self.held();
        self.set_held(None);
        if let Some(h) = was {
            tracing::warn!(fence = h.fence, why, "this node is no longer the authority");
        }
        self.role.send_if_modified(|role| {
            let new = Role::Follower { holder };
            if *role == new {
                return false;
            }
            *role = new;
            true
        });
    }

    pub(crate) async fn try_acquire(&self) -> Result<Acquire, ClusterError> {
        let keys = self.redis.keys();
        let (lease, fence) = (keys.lease(), keys.fence());
        let me = self.me.trim_end().to_string();
        let ttl_ms = self.ttl().as_millis() as u64;
        let (won, value, pttl_ms): (i64, String, i64) = self
            .redis
            .run("lease acquire", move |mut c| async move {
                ACQUIRE_SCRIPT
                    .key(lease)
                    .key(fence)
                    .arg(me)
                    .arg(ttl_ms)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        if won == 1 {
            let fence = value
                .parse()
                .map_err(|_| ClusterError::Protocol(format!("fence {value:?}")))?;
            Ok(Acquire::Won { fence })
        } else {
            let holder = value.split(' ').next().unwrap_or_default().to_string();
            Ok(Acquire::Held { holder, pttl_ms })
        }
    }

    pub(crate) async fn renew(&self, fence: u64) -> Result<bool, ClusterError> {
        let lease = self.redis.keys().lease();
        let value = self.value(fence);
        let ttl_ms = self.ttl().as_millis() as u64;
        let renewed: i64 = self
            .redis
            .run("lease renew", move |mut c| async move {
                RENEW_SCRIPT
                    .key(lease)
                    .arg(value)
                    .arg(ttl_ms)
                    .invoke_async(&mut c)
                    .await
            })
            .await?;
        Ok(renewed == 1)
    }

    async fn release(&self) -> Result<bool, ClusterError> {
        let lease = self.redis.keys().lease();
        let me = self.me.clone();
        let released: i64 = self
            .redis
            .run("lease release", move |mut c| async move {
                RELEASE_SCRIPT.key(lease).arg(me).invoke_async(&mut c).await
            })
            .await?;
        Ok(released == 1)
    }

    async fn run(self: Arc<Self>) {
        let ttl = self.ttl();
        while !self.stopping.load(Ordering::SeqCst) {
            let Some(held) = self.held() else {
                let sent = Instant::now();
                let wait = match self.try_acquire().await {
                    Ok(Acquire::Won { fence }) => {
                        let valid_until = valid_until(sent, ttl);
                        self.set_held(Some(Held {
                            fence,
                            valid_until,
                            renew_due: sent + renew_interval(ttl),
                        }));
                        tracing::info!(fence, "this node holds the lease: it is the authority");
                        self.role.send_replace(Role::Authority { fence });
                        continue;
                    }
                    Ok(Acquire::Held { holder, pttl_ms }) => {
                        self.step_down(Some(holder), "");
                        follower_wait(pttl_ms, ttl)
                    }
                    // Health has logged it; the holder is unknown while Redis is away.
                    Err(_) => {
                        self.step_down(None, "Redis is unreachable");
                        ttl / 3
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.wake.notified() => {}
                }
                continue;
            };
            let wake_at = held.renew_due.min(held.valid_until);
            tokio::select! {
                _ = tokio::time::sleep_until(wake_at.into()) => {}
                _ = self.wake.notified() => {}
            }
            let resign = self
                .resign_fence
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if resign == Some(held.fence) {
                let _ = self.release().await;
                self.step_down(None, "a write under its fencing token failed");
                continue;
            }
            let now = Instant::now();
            if now >= held.valid_until {
                self.step_down(None, "the lease ran out before it could be renewed");
                continue;
            }
            if now < held.renew_due {
                continue;
            }
            match self.renew(held.fence).await {
                Ok(true) => self.set_held(Some(Held {
                    fence: held.fence,
                    valid_until: valid_until(now, ttl),
                    renew_due: now + renew_interval(ttl),
                })),
                Ok(false) => self.step_down(None, "the lease expired and was taken or lost"),
                // Try again soon; the deadline above decides when to give up.
                Err(_) => self.set_held(Some(Held {
                    renew_due: Instant::now() + ttl / 10,
                    ..held
                })),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_trusted_for_less_than_its_ttl_from_before_the_request() {
        let sent = Instant::now();
        let ttl = Duration::from_millis(3000);
        assert_eq!(valid_until(sent, ttl), sent + Duration::from_millis(2700));
        assert!(renew_interval(ttl) * 3 <= ttl - ttl / 10 + renew_interval(ttl));
    }

    #[test]
    fn a_follower_tries_again_when_the_lease_would_expire_but_at_least_every_third_ttl() {
        let ttl = Duration::from_millis(3000);
        assert_eq!(follower_wait(200, ttl), Duration::from_millis(205));
        assert_eq!(follower_wait(2900, ttl), Duration::from_millis(1000));
        assert_eq!(follower_wait(0, ttl), Duration::from_millis(5));
        // A lease set by hand without a TTL: no busy loop.
        assert_eq!(follower_wait(-1, ttl), Duration::from_millis(1000));
    }
}
