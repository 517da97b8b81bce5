//! Tests of the cluster layer against a real Redis: each test starts its own `redis-server`
//! (`test_redis.rs`) on a free loopback port and kills it at the end. The nodes are real
//! `Node`s with their I/O threads, two or three per test, talking through that Redis.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;

use super::checkpoint;
use super::conn::Redis;
use super::forward::{Commit, Committed, GameCore, IdemKey};
use super::health::RedisHealth;
use super::lease::Role;
use super::stream::{self, LogEntry, Tailed};
use super::test_redis::TestRedis;
use super::{ClusterConfig, ClusterError, Node};
use crate::error::ApiError;

fn config(redis: &TestRedis, node: &str) -> ClusterConfig {
    let mut config = ClusterConfig::new(redis.url(), node.parse().unwrap());
    // Short, so failovers in tests take a fraction of a second.
    config.lease_ttl = Duration::from_millis(600);
    config.op_timeout = Duration::from_millis(300);
    config.forward_timeout = Duration::from_millis(1000);
    config
}

async fn node(redis: &TestRedis, name: &str) -> Node {
    Node::start(config(redis, name)).await.unwrap()
}

/// Waits (up to `secs`) until `check` holds, polling every 10 ms.
async fn eventually(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "not within {secs} s: {what}");
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
}

fn fence_of(node: &Node) -> Option<u64> {
    match *node.role().borrow() {
        Role::Authority { fence } => Some(fence),
        Role::Follower { .. } => None,
    }
}

/// A JSON event line with the given seq, as the hub would write it.
fn entry(seq: u64) -> LogEntry {
    LogEntry {
        seq,
        json: format!(
            r#"{{"seq":{seq},"ts":{},"type":"game_paused","paused":false}}"#,
            1000 + seq
        ),
    }
}

fn entries(seqs: std::ops::RangeInclusive<u64>) -> Vec<LogEntry> {
    seqs.map(entry).collect()
}

async fn query<T: redis::FromRedisValue>(redis: &TestRedis, cmd: &mut redis::Cmd) -> T {
    let mut c = redis
        .client()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    cmd.query_async(&mut c).await.unwrap()
}

/// A Redis handle with a fencing token set by hand, for testing the scripts alone.
async fn fenced(redis: &TestRedis, fence: u64) -> Redis {
    let handle = Redis::open(config(redis, "t")).await.unwrap();
    let keys = handle.keys().clone();
    query::<()>(redis, redis::cmd("SET").arg(keys.fence()).arg(fence)).await;
    handle
}

// ---- the lease ------------------------------------------------------------------------------

/// Whether `node` holds the lease right now by its own clock: the predicate the authority
/// checks before each command (its role may lag behind when its loop is starved of CPU).
fn holds(node: &Node) -> bool {
    fence_of(node).is_some_and(|f| node.lease().holds(f))
}

#[actix_web::test]
async fn of_two_contenders_exactly_one_holds_the_lease() {
    let redis = TestRedis::start();
    let (a, b) = (node(&redis, "a").await, node(&redis, "b").await);
    eventually(5, "somebody holds the lease", || holds(&a) || holds(&b)).await;
    // Watched over several lease lifetimes: never both at once.
    for _ in 0..60 {
        assert!(!(holds(&a) && holds(&b)), "both hold the lease");
        actix_web::rt::time::sleep(Duration::from_millis(25)).await;
    }
    eventually(5, "one holds the lease", || holds(&a) != holds(&b)).await;
    let (holder, other) = if holds(&a) { (&a, &b) } else { (&b, &a) };
    let fence = fence_of(holder).unwrap();
    eventually(5, "the other names the holder", || {
        *other.role().borrow()
            == Role::Follower {
                holder: Some(holder.id().to_string()),
            }
    })
    .await;
    let keys = holder.redis().keys().clone();
    let value: String = query(&redis, redis::cmd("GET").arg(keys.lease())).await;
    assert_eq!(
        value,
        format!("{} {} {fence}", holder.id(), holder.instance())
    );
}

#[actix_web::test]
async fn a_frozen_authority_loses_the_lease_to_a_node_with_a_higher_fence() {
    let redis = TestRedis::start();
    let a = node(&redis, "a").await;
    eventually(5, "a holds the lease", || a.is_authority()).await;
    let old = fence_of(&a).unwrap();
    let b = node(&redis, "b").await;
    // a stops dead, as a paused or killed process: nothing released, nothing renewed.
    a.lease().freeze();
    let frozen_at = Instant::now();
    eventually(5, "b takes over", || b.is_authority()).await;
    // A figure for docs/scaling.md, not a target: TTL 600 ms here.
    eprintln!(
        "takeover {} ms after the holder froze",
        frozen_at.elapsed().as_millis()
    );
    let new = fence_of(&b).unwrap();
    assert!(new > old, "fence {new} after {old}");
    // a's own clock tells it too, though its (frozen) role still says authority.
    assert!(!a.lease().holds(old));
}

#[actix_web::test]
async fn a_node_that_shuts_down_hands_the_lease_over_without_waiting_for_its_ttl() {
    let redis = TestRedis::start();
    let mut config_a = config(&redis, "a");
    let mut config_b = config(&redis, "b");
    // A long TTL: only a release explains a takeover before it would have run out.
    config_a.lease_ttl = Duration::from_secs(6);
    config_b.lease_ttl = Duration::from_secs(6);
    let a = Node::start(config_a).await.unwrap();
    eventually(5, "a holds the lease", || a.is_authority()).await;
    let b = Node::start(config_b).await.unwrap();
    eventually(5, "b sees a as the holder", || {
        *b.role().borrow()
            == Role::Follower {
                holder: Some("a".into()),
            }
    })
    .await;
    // The lease was renewed just now, at the latest a third of a TTL ago.
    a.shutdown().await;
    let released = Instant::now();
    assert!(!a.is_authority());
    // b looks again every third of its TTL (2 s) at the latest.
    eventually(5, "b takes over after the release", || b.is_authority()).await;
    assert!(
        released.elapsed() < Duration::from_secs(4),
        "{:?}: the lease ran out rather than being released",
        released.elapsed()
    );
}

// ---- the log ----------------------------------------------------------------------------------

#[actix_web::test]
async fn appends_with_a_gap_a_duplicate_or_a_stale_fence_are_refused_and_write_nothing() {
    let redis = TestRedis::start();
    let handle = fenced(&redis, 7).await;
    let ttl = Duration::from_secs(60);
    assert_eq!(
        stream::append(&handle, 7, &entries(1..=3), &[], ttl).await,
        Ok(3)
    );
    let cases = [
        (
            "a gap",
            7,
            entries(5..=6),
            ClusterError::SeqMismatch {
                expected: 4,
                got: 5,
            },
        ),
        (
            "a duplicate",
            7,
            entries(3..=4),
            ClusterError::SeqMismatch {
                expected: 4,
                got: 3,
            },
        ),
        (
            "a restart from 1",
            7,
            entries(1..=1),
            ClusterError::SeqMismatch {
                expected: 4,
                got: 1,
            },
        ),
        ("an older fence", 6, entries(4..=4), ClusterError::Fenced),
        (
            "a newer fence than issued",
            8,
            entries(4..=4),
            ClusterError::Fenced,
        ),
    ];
    let keys = handle.keys().clone();
    for (what, fence, batch, expected) in cases {
        let refused = stream::append(&handle, fence, &batch, &[], ttl).await;
        assert_eq!(refused, Err(expected), "{what}");
        let len: u64 = query(&redis, redis::cmd("XLEN").arg(keys.events())).await;
        let head: u64 = query(&redis, redis::cmd("GET").arg(keys.head())).await;
        assert_eq!((len, head), (3, 3), "{what} wrote something");
    }
    // A batch that is not consecutive in itself never reaches Redis.
    let holes = vec![entry(4), entry(6)];
    assert!(matches!(
        stream::append(&handle, 7, &holes, &[], ttl).await,
        Err(ClusterError::SeqMismatch { .. })
    ));
    assert_eq!(
        stream::append(&handle, 7, &entries(4..=4), &[], ttl).await,
        Ok(4)
    );
    // Entry IDs are the seqs, and each entry names the fence that wrote it.
    let ids: Vec<(String, Vec<String>)> = query(
        &redis,
        redis::cmd("XRANGE").arg(keys.events()).arg("-").arg("+"),
    )
    .await;
    assert_eq!(
        ids.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
        ["1-0", "2-0", "3-0", "4-0"]
    );
    assert_eq!(ids[3].1, ["e", &entry(4).json, "f", "7"]);
}

#[actix_web::test]
async fn tailing_from_any_seq_gives_every_later_entry_once_in_order() {
    let redis = TestRedis::start();
    let handle = fenced(&redis, 1).await;
    let ttl = Duration::from_secs(60);
    stream::append(&handle, 1, &entries(1..=40), &[], ttl)
        .await
        .unwrap();
    // Tails from the start, the middle and the end, reading while more is appended.
    let starts = [0u64, 17, 40];
    let mut readers = Vec::new();
    for from in starts {
        let mut tail = super::EventTail::new(handle.clone(), from);
        readers.push(actix_web::rt::spawn(async move {
            let mut seen = Vec::new();
            while tail.position() < 300 {
                match tail.next_batch().await.unwrap() {
                    Tailed::Events(batch) => seen.extend(batch),
                    gap => panic!("{gap:?}"),
                }
            }
            seen
        }));
    }
    let mut next = 41;
    while next <= 300 {
        let last = (next + 9).min(300);
        stream::append(&handle, 1, &entries(next..=last), &[], ttl)
            .await
            .unwrap();
        next = last + 1;
    }
    for (from, reader) in starts.into_iter().zip(readers) {
        let seen = reader.await.unwrap();
        assert_eq!(seen, entries(from + 1..=300), "tail from {from}");
    }
}

#[actix_web::test]
async fn a_game_shorter_than_the_window_checkpoints_from_its_first_seq_and_trims_nothing() {
    let redis = TestRedis::start();
    let handle = fenced(&redis, 1).await;
    // A new game checkpoints before its first event (seq 0), and again a few events in: the
    // first seq kept is 1 (the window is 10,000); a negative "first kept" once stepped the
    // authority down on its first write.
    assert_eq!(checkpoint::save(&handle, 1, 0, "game@0").await, Ok(1));
    stream::append(&handle, 1, &entries(1..=5), &[], Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(checkpoint::save(&handle, 1, 5, "game@5").await, Ok(1));
    let len: u64 = query(&redis, redis::cmd("XLEN").arg(handle.keys().events())).await;
    assert_eq!(len, 5);
}

#[actix_web::test]
async fn a_checkpoint_trims_the_log_and_a_tail_behind_it_hears_of_the_gap() {
    let redis = TestRedis::start();
    let mut cfg = config(&redis, "t");
    cfg.stream_window = 10;
    let handle = Redis::open(cfg).await.unwrap();
    let keys = handle.keys().clone();
    query::<()>(&redis, redis::cmd("SET").arg(keys.fence()).arg(3)).await;
    let ttl = Duration::from_secs(60);
    stream::append(&handle, 3, &entries(1..=50), &[], ttl)
        .await
        .unwrap();
    // Checkpoints that would name events the log lacks, or go back in time, are refused.
    assert_eq!(
        checkpoint::save(&handle, 3, 51, "{}").await,
        Err(ClusterError::SeqMismatch {
            expected: 50,
            got: 51
        })
    );
    assert_eq!(checkpoint::save(&handle, 3, 44, "game@44").await, Ok(41));
    assert_eq!(
        checkpoint::save(&handle, 3, 43, "older").await,
        Err(ClusterError::SeqMismatch {
            expected: 44,
            got: 43
        })
    );
    // Kept: the last 10 (41..=50), which covers everything after the checkpoint (45..).
    let len: u64 = query(&redis, redis::cmd("XLEN").arg(keys.events())).await;
    assert_eq!(len, 10);

    let mut behind = super::EventTail::new(handle.clone(), 5);
    assert_eq!(
        behind.next_batch().await.unwrap(),
        Tailed::Gap {
            after: 5,
            first_available: 41
        }
    );
    let restored = checkpoint::restore(&handle, 4).await.unwrap();
    assert_eq!(restored.head, 50);
    assert_eq!(
        restored.checkpoint,
        Some(super::Checkpoint {
            seq: 44,
            data: "game@44".into()
        })
    );
    assert_eq!(restored.after_checkpoint(), &entries(45..=50)[..]);
    assert_eq!(restored.last(4), &entries(47..=50)[..]);
    behind.reset(restored.head);
    stream::append(&handle, 3, &entries(51..=51), &[], ttl)
        .await
        .unwrap();
    assert_eq!(
        behind.next_batch().await.unwrap(),
        Tailed::Events(entries(51..=51))
    );
}

#[actix_web::test]
async fn a_paused_ex_authority_can_neither_append_nor_checkpoint() {
    let redis = TestRedis::start();
    let a = node(&redis, "a").await;
    let authority_a = a.authority().await;
    let written = authority_a.appender().push(entries(1..=2)).await;
    assert_eq!(written, Ok(()));
    let b = node(&redis, "b").await;
    a.lease().freeze();
    let authority_b = b.authority().await;
    assert!(authority_b.fence() > authority_a.fence());
    assert_eq!(
        authority_b.epoch(),
        authority_a.epoch(),
        "the same game goes on"
    );
    // a wakes up and writes as if nothing happened: Redis refuses, and a's appender stops.
    assert!(!authority_a.holds());
    assert_eq!(
        authority_a.appender().push(entries(3..=3)).await,
        Err(ClusterError::Fenced)
    );
    assert_eq!(
        authority_a.appender().checkpoint(2, "stale".into()).await,
        Err(ClusterError::Fenced)
    );
    assert_eq!(
        checkpoint::save(a.redis(), authority_a.fence(), 2, "stale").await,
        Err(ClusterError::Fenced)
    );
    // b continues the log where it is.
    assert_eq!(authority_b.appender().push(entries(3..=3)).await, Ok(()));
    let restored = b.restore(10).await.unwrap();
    assert_eq!(restored.head, 3);
    assert_eq!(restored.checkpoint, None);
    assert_eq!(restored.entries, entries(1..=3));
}

#[actix_web::test]
async fn the_appender_writes_pushes_in_order_sharing_round_trips() {
    let redis = TestRedis::start();
    let a = node(&redis, "a").await;
    let authority = a.authority().await;
    query::<()>(
        &redis,
        &mut redis::cmd("CONFIG").arg("RESETSTAT").to_owned(),
    )
    .await;
    let pushes: Vec<_> = (1..=500)
        .map(|seq| authority.appender().push(vec![entry(seq)]))
        .collect();
    for durable in pushes {
        assert_eq!(durable.await, Ok(()));
    }
    let restored = a.restore(1000).await.unwrap();
    assert_eq!(restored.entries, entries(1..=500));
    // Group commit: far fewer script calls than pushes.
    let stats: String = query(&redis, redis::cmd("INFO").arg("commandstats")).await;
    let calls: u64 = stats
        .lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    eprintln!("{calls} script calls for 500 pushes");
    assert!(
        calls > 0 && calls < 500,
        "{calls} script calls for 500 pushes"
    );
}

// ---- forwarded commands -------------------------------------------------------------------

/// A game core that counts what it runs and logs one event per command.
struct Counter {
    runs: AtomicU64,
    seq: std::sync::Mutex<u64>,
}

impl Counter {
    fn new(after: u64) -> Counter {
        Counter {
            runs: AtomicU64::new(0),
            seq: std::sync::Mutex::new(after),
        }
    }
}

impl GameCore for Counter {
    fn execute(&self, body: &str, commit: Commit) -> Committed {
        let run = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        let mut seq = self.seq.lock().unwrap();
        *seq += 1;
        commit.finish(
            vec![entry(*seq)],
            format!("{body} → run {run} at seq {seq}"),
        )
    }
}

/// Runs `authority.serve(core)` in the background until the test ends.
fn serve(mut authority: super::Authority, core: Arc<Counter>) {
    actix_web::rt::spawn(async move { authority.serve(&*core).await });
}

#[actix_web::test]
async fn a_forwarded_command_runs_once_even_when_retried_with_the_same_key() {
    let redis = TestRedis::start();
    let a = node(&redis, "a").await;
    let authority = a.authority().await;
    let core = Arc::new(Counter::new(0));
    serve(authority, Arc::clone(&core));
    let b = node(&redis, "b").await;
    let key = IdemKey::new("7:click-1").unwrap();
    let first = b.forward(&key, "click".into()).await.unwrap();
    assert_eq!(first, "click → run 1 at seq 1");
    // Retried, one after another and several at once, from both nodes.
    assert_eq!(b.forward(&key, "click".into()).await.unwrap(), first);
    let (r1, r2, r3) = tokio::join!(
        b.forward(&key, "click".into()),
        b.forward(&key, "click".into()),
        a.forward(&key, "click".into()),
    );
    assert_eq!(
        [r1.unwrap(), r2.unwrap(), r3.unwrap()],
        [first.clone(), first.clone(), first]
    );
    assert_eq!(core.runs.load(Ordering::SeqCst), 1);
    // Another key is another command.
    let other = IdemKey::new("7:click-2").unwrap();
    assert_eq!(
        b.forward(&other, "click".into()).await.unwrap(),
        "click → run 2 at seq 2"
    );
    assert_eq!(a.restore(10).await.unwrap().entries, entries(1..=2));
}

#[actix_web::test]
async fn a_retry_after_a_failover_gets_the_stored_answer_and_runs_nothing() {
    let redis = TestRedis::start();
    let a = node(&redis, "a").await;
    let authority = a.authority().await;
    let b = node(&redis, "b").await;
    let core_a = Arc::new(Counter::new(0));
    serve(authority, Arc::clone(&core_a));
    let key = IdemKey::new("3:click-9").unwrap();
    let answer = b.forward(&key, "click".into()).await.unwrap();
    // a's reply got lost, say, and a dies; b takes over and the client retries.
    a.lease().freeze();
    let authority_b = b.authority().await;
    let core_b = Arc::new(Counter::new(authority_b_head(&b).await));
    serve(authority_b, Arc::clone(&core_b));
    assert_eq!(b.forward(&key, "click".into()).await.unwrap(), answer);
    assert_eq!(core_b.runs.load(Ordering::SeqCst), 0, "not run again");
    assert_eq!(b.restore(10).await.unwrap().entries, entries(1..=1));
}

async fn authority_b_head(node: &Node) -> u64 {
    node.restore(0).await.unwrap().head
}

#[actix_web::test]
async fn without_an_authority_a_forward_fails_at_once_with_a_503_to_retry() {
    let redis = TestRedis::start();
    // Somebody else holds the lease for a minute and never listens.
    let keys = config(&redis, "x").keys();
    query::<()>(
        &redis,
        redis::cmd("SET")
            .arg(keys.lease())
            .arg("ghost 0 99")
            .arg("PX")
            .arg(60_000),
    )
    .await;
    let b = node(&redis, "b").await;
    eventually(5, "b sees the ghost", || {
        *b.role().borrow()
            == Role::Follower {
                holder: Some("ghost".into()),
            }
    })
    .await;
    let started = Instant::now();
    let refused = b.forward(&IdemKey::random(), "join".into()).await;
    assert_eq!(refused, Err(ClusterError::NoAuthority));
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "answered without waiting"
    );
    let api = ApiError::from(refused.unwrap_err());
    assert_eq!(api.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!((api.code, api.retry_after), ("no_authority", Some(1)));
}

#[actix_web::test]
async fn an_authority_that_does_not_answer_makes_the_forward_time_out() {
    let redis = TestRedis::start();
    let a = node(&redis, "a").await;
    // a listens for commands but never runs them.
    let _silent = a.authority().await;
    let b = node(&redis, "b").await;
    // Subscribing takes a moment: until then the forward finds nobody.
    let deadline = Instant::now() + Duration::from_secs(5);
    let timed_out = loop {
        match b.forward(&IdemKey::random(), "click".into()).await {
            Err(ClusterError::NoAuthority) if Instant::now() < deadline => {
                actix_web::rt::time::sleep(Duration::from_millis(20)).await
            }
            other => break other,
        }
    };
    assert_eq!(timed_out, Err(ClusterError::Timeout { waited_ms: 1000 }));
    let api = ApiError::from(timed_out.unwrap_err());
    assert_eq!((api.status.as_u16(), api.code), (503, "authority_timeout"));
}

// ---- health -----------------------------------------------------------------------------------

#[actix_web::test]
async fn with_redis_restarted_mid_run_a_node_says_unreachable_refuses_commands_and_recovers() {
    let mut redis = TestRedis::start();
    let a = node(&redis, "a").await;
    let health = a.health();
    eventually(5, "health ok", || health.borrow().is_ok()).await;
    eventually(5, "a holds the lease", || a.is_authority()).await;

    redis.kill();
    eventually(5, "health says unreachable", || {
        matches!(*health.borrow(), RedisHealth::Unreachable { .. })
    })
    .await;
    assert_eq!(health.borrow().as_str(), "unreachable");
    // Commands are refused within the timeouts, not left hanging.
    let started = Instant::now();
    let refused = a.forward(&IdemKey::random(), "click".into()).await;
    assert!(refused.is_err(), "{refused:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
    eventually(5, "a is no longer the authority", || !a.is_authority()).await;

    redis.restart();
    eventually(10, "health ok again", || health.borrow().is_ok()).await;
    // Nothing was persisted: a takes the lease of the new, empty Redis.
    eventually(10, "a holds the lease again", || a.is_authority()).await;
    let restored = a.restore(10).await.unwrap();
    assert_eq!((restored.head, restored.epoch), (0, None));
}

// ---- sessions ---------------------------------------------------------------------------------

#[actix_web::test]
async fn a_token_made_on_one_node_is_valid_on_every_node_and_a_forgery_on_none() {
    let redis = TestRedis::start();
    let (a, b) = (node(&redis, "a").await, node(&redis, "b").await);
    eventually(5, "keys loaded", || {
        a.sessions().ready() && b.sessions().ready()
    })
    .await;
    let token = a.sessions().token_for(42).unwrap();
    assert_eq!(b.sessions().verify(&token), Ok(Some(42)));
    assert_eq!(a.sessions().verify(&token), Ok(Some(42)));
    let (id, mac) = token.split_once('.').unwrap();
    let flipped = format!(
        "{id}.{}{}",
        if mac.starts_with('0') { "1" } else { "0" },
        &mac[1..]
    );
    for forged in [
        format!("43.{mac}"),
        format!("042.{mac}"),
        flipped,
        mac.to_uppercase(),
        "42".into(),
        "".into(),
        format!("{token}0"),
    ] {
        assert_eq!(b.sessions().verify(&forged), Ok(None), "{forged}");
    }
    // Another game (another Redis) has another key.
    let elsewhere = TestRedis::start();
    let c = node(&elsewhere, "c").await;
    eventually(5, "c's key loaded", || c.sessions().ready()).await;
    assert_eq!(c.sessions().verify(&token), Ok(None));
}

#[actix_web::test]
async fn of_nodes_racing_to_spend_one_ticket_exactly_one_wins() {
    let redis = TestRedis::start();
    let nodes = [
        node(&redis, "a").await,
        node(&redis, "b").await,
        node(&redis, "c").await,
    ];
    eventually(5, "keys loaded", || {
        nodes.iter().all(|n| n.sessions().ready())
    })
    .await;
    let now = super::now_ms();
    for round in 0..10 {
        let ticket = nodes[0].sessions().ticket_for(5, now).unwrap();
        assert_eq!(nodes[2].sessions().check_ticket(&ticket, now), Ok(Some(5)));
        let spends = nodes.iter().flat_map(|n| {
            [
                n.sessions().spend_ticket(&ticket, now),
                n.sessions().spend_ticket(&ticket, now),
            ]
        });
        let results = futures_util::future::join_all(spends).await;
        let winners = results.iter().filter(|r| **r == Ok(Some(5))).count();
        assert_eq!(winners, 1, "round {round}: {results:?}");
        assert!(results.iter().all(|r| matches!(r, Ok(Some(5)) | Ok(None))));
    }
    // Expired, or tampered with: refused without asking Redis.
    let ticket = nodes[0].sessions().ticket_for(5, now).unwrap();
    let later = now + super::sessions::TICKET_TTL.as_millis() as u64;
    assert_eq!(nodes[1].sessions().check_ticket(&ticket, later), Ok(None));
    let other_player = ticket.replacen("t5.", "t6.", 1);
    assert_eq!(
        nodes[1].sessions().check_ticket(&other_player, now),
        Ok(None)
    );
    let extended = ticket.replacen(
        &format!(".{}", now + 30_000),
        &format!(".{}", now + 90_000),
        1,
    );
    assert_ne!(extended, ticket);
    assert_eq!(nodes[1].sessions().check_ticket(&extended, now), Ok(None));
}

// ---- the entry point ----------------------------------------------------------------------

#[test]
fn the_entry_point_config_renders_to_a_config_haproxy_accepts() {
    let checked = std::process::Command::new("scripts/cluster.sh")
        .arg("--check-config")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("bash runs scripts/cluster.sh");
    assert!(
        checked.status.success(),
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}
