//! The game core without I/O: what one click, one join and one event cost before any transport
//! is involved. `cargo bench --bench core`; `cargo test --all-targets` runs each once.
//!
//! * `game/*` — `clickgame::game::Game` alone: judging a click (miss, or a hit plus the next
//!   round's start), a join into a game of 100 players.
//! * `hub/*` — the same through `clickgame::hub::Hub`, which is what a transport calls: the core
//!   mutex, numbering, serialising the event once (JSON and SSE frame), the ring buffer, and the
//!   `watch` wake-up. `catch_up` is what every woken connection does per event.
//! * `serialise/*` — one event to JSON with serde, and the SSE frame around it.

use std::hint::black_box;

use clickgame::game::{Click, Event, EventKind, Game, ReactionFrom, Rules, Transport};
use clickgame::hub::{Hub, HubConfig};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

const T0: u64 = 1_764_386_400_000;

fn rules() -> Rules {
    Rules {
        round_pause_ms: 0,
        round_pause_jitter_ms: 0,
        // The benches' fixed rounds must never expire, whatever time they pass in.
        round_timeout_ms: 0,
        ..Rules::default()
    }
}

/// A game with `players` joined and round 1 running.
fn game_with(players: usize) -> (Game, Vec<u64>) {
    let mut game = Game::new(rules(), 7, T0);
    game.tick(T0);
    let ids = (0..players)
        .map(|i| game.join(&format!("player{i}"), T0).unwrap().0)
        .collect();
    (game, ids)
}

fn bench_game(c: &mut Criterion) {
    let mut group = c.benchmark_group("game");
    group.bench_function("click_miss", |b| {
        let (mut game, ids) = game_with(10);
        let round = game.state().round.as_ref().unwrap().number;
        let click = Click {
            round,
            x: 0.0,
            y: 0.0,
        };
        b.iter(|| black_box(game.click(ids[3], black_box(click), T0 + 5).unwrap()));
    });
    group.bench_function("click_hit_then_next_round", |b| {
        let (mut game, ids) = game_with(10);
        let mut now = T0;
        b.iter(|| {
            let round = game.state().round.clone().unwrap();
            let click = Click {
                round: round.number,
                x: f64::from(round.x),
                y: f64::from(round.y),
            };
            now += 1;
            let (outcome, events) = game.click(ids[3], black_box(click), now).unwrap();
            let next = game.tick(now);
            black_box((outcome, events, next))
        });
    });
    group.bench_function("join_into_100", |b| {
        b.iter_batched(
            || game_with(100).0,
            |mut game| black_box(game.join("newcomer", T0).unwrap()),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

fn hub() -> Hub {
    Hub::new(rules(), 7, HubConfig { history: 1024 })
}

fn bench_hub(c: &mut Criterion) {
    let mut group = c.benchmark_group("hub");
    // Hub::contact with a new transport publishes a `player_transport` event: lock, number,
    // serialise (JSON + SSE frame), push to the ring buffer, ring the bell.
    group.bench_function("publish_event", |b| {
        let hub = hub();
        let ada = hub.join("Ada").unwrap().player_id;
        // A subscription lives on a worker's `LocalSet` (`bell.rs`); its thread's ringer is
        // polled once, so every publish wakes it as a worker's would be.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let local = tokio::task::LocalSet::new();
        let _subscriber = local.block_on(&runtime, async {
            let subscriber = hub.subscribe();
            tokio::task::yield_now().await;
            subscriber
        });
        let mut i = 0usize;
        b.iter(|| {
            i += 1;
            hub.contact(ada, Transport::ALL[i % 2]);
        });
    });
    // What each woken connection does: the events after its cursor (here: the last one).
    group.bench_function("catch_up_one", |b| {
        let hub = hub();
        let ada = hub.join("Ada").unwrap().player_id;
        for i in 0..100 {
            hub.contact(ada, Transport::ALL[i % 2]);
        }
        let since = hub.last_seq() - 1;
        let epoch = hub.epoch().to_string();
        b.iter(|| black_box(hub.catch_up(Some(since), Some(&epoch))));
    });
    group.bench_function("snapshot_10_players", |b| {
        let hub = hub();
        for i in 0..10 {
            hub.join(&format!("p{i}")).unwrap();
        }
        b.iter(|| black_box(hub.catch_up(None, None)));
    });
    group.finish();
}

fn bench_serialise(c: &mut Criterion) {
    let mut group = c.benchmark_group("serialise");
    let event = Event {
        seq: 12_345,
        ts: T0,
        kind: EventKind::RoundWon {
            round: 4_321,
            winner: 17,
            name: "Ada Lovelace".into(),
            reaction_ms: 781,
            transport: Transport::Websocket,
            reaction_from: ReactionFrom::RoundStart,
        },
    };
    group.bench_function("round_won_json", |b| {
        b.iter(|| black_box(serde_json::to_string(black_box(&event)).unwrap()))
    });
    let json = serde_json::to_string(&event).unwrap();
    group.bench_function("round_won_sse_frame", |b| {
        b.iter(|| {
            black_box(format!(
                "id: {}\nevent: {}\ndata: {}\n\n",
                event.seq,
                "round_won",
                black_box(&json)
            ))
        })
    });
    group.finish();
}

criterion_group!(benches, bench_game, bench_hub, bench_serialise);
criterion_main!(benches);
