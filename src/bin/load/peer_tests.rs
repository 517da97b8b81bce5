//! The Node peer's smoke test (`cargo test --bin clickgame-load`): spawned with its npm
//! dependencies installed (`make peer-deps`), it must serve a small fan-out over both streams
//! and send clickgame's bytes, so `--peer node` cannot rot unnoticed. Declared from
//! `clickgame-load.rs` only: the latency bench includes `load/` too and has no test harness.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use awc::ws;
use futures_util::{SinkExt, StreamExt};

use crate::load::client::Kind;
use crate::load::client::{self, Target};
use crate::load::net::{self, Counters};
use crate::load::peer::node_ws_script;
use crate::load::scenario::{self, Env};
use crate::load::server::{Server, Spec};

fn peer_env() -> Env {
    Env {
        spec: Spec::Peer {
            node: PathBuf::from("node"),
            script: node_ws_script(),
        },
        sources: vec![IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))],
        tls: false,
        poll_interval: Duration::from_secs(1),
        connect_concurrency: 20,
    }
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    actix_web::rt::System::new().block_on(f)
}

#[test]
fn the_node_peer_fans_every_broadcast_out_to_every_websocket_and_sse_client() {
    for kind in [Kind::Websocket, Kind::Sse] {
        let step = run(scenario::fanout_step(&peer_env(), kind, 20, 5, 2))
            .unwrap_or_else(|e| panic!("{kind} fan-out against the peer: {e}"));
        assert_eq!(step.timeouts, 0, "{kind}: a broadcast never reached all 20");
        assert_eq!(step.broadcast.count, 5, "{kind}: measured broadcasts");
        assert_eq!(step.deliveries, 20 * (5 + 2), "{kind}: events received");
        assert!(
            step.server_cpu_us_per_delivery.is_some(),
            "{kind}: the peer's CPU is read from /proc"
        );
    }
}

#[test]
fn the_node_peer_sends_events_in_clickgames_exact_bytes() {
    run(async {
        let server = Server::start(&peer_env().spec).expect("the peer starts");
        let target = Target {
            client: net::client(None, Arc::new(Counters::default()), false),
            base: server.base.clone(),
        };
        let ada = client::join(&target, "Ada").await.expect("join");
        let (seq, epoch, round) = client::snapshot(&target).await.expect("snapshot");
        assert_eq!(round, Some(1), "round 1 starts with the server");
        assert_eq!(seq, 2, "round_started, player_joined");

        let (_, mut spectator) = target
            .client
            .ws(format!("{}/api/ws", target.base))
            .protocols(["clickgame.v1"])
            .connect()
            .await
            .expect("spectator connects");
        let resume = format!(r#"{{"type":"resume","since":0,"epoch":"{epoch}"}}"#);
        spectator
            .send(ws::Message::Text(resume.into()))
            .await
            .expect("resume");
        let mut clicker = client::Clicker::open(&target, &ada, true)
            .await
            .expect("clicker connects");
        let reply = clicker.click(1, 0.0, 0.0).await.expect("click");
        assert_eq!(reply["result"], "miss");
        assert_eq!(reply["misses"], 1);

        // round_started, player_joined, player_transport, click_missed: each must be what
        // clickgame's own types serialise to, byte for byte.
        for expected_type in [
            "round_started",
            "player_joined",
            "player_transport",
            "click_missed",
        ] {
            let frame = actix_web::rt::time::timeout(Duration::from_secs(5), spectator.next())
                .await
                .expect("an event within 5 s")
                .expect("the socket stays open")
                .expect("a valid frame");
            let ws::Frame::Text(bytes) = frame else {
                panic!("expected a text frame, got {frame:?}");
            };
            let text = std::str::from_utf8(&bytes).expect("UTF-8");
            let event: clickgame::game::Event =
                serde_json::from_str(text).expect("clickgame's event type parses it");
            assert_eq!(event.kind.type_name(), expected_type);
            assert_eq!(
                serde_json::to_string(&event).expect("serialises"),
                text,
                "the peer's {expected_type} differs from clickgame's serialisation"
            );
        }

        // The same event as an SSE block, after a resume point.
        let mut res = target
            .client
            .get(format!("{}/api/sse?since=3&epoch={epoch}", target.base))
            .send()
            .await
            .expect("sse");
        assert_eq!(res.status().as_u16(), 200);
        assert_eq!(
            res.headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("text/event-stream")
        );
        let mut body = Vec::new();
        // The `retry:` block, then the one event after seq 3.
        while body.windows(2).filter(|w| *w == b"\n\n").count() < 2 {
            let chunk = actix_web::rt::time::timeout(Duration::from_secs(5), res.next())
                .await
                .expect("SSE bytes within 5 s")
                .expect("the stream stays open")
                .expect("a chunk");
            body.extend_from_slice(&chunk);
        }
        let body = String::from_utf8(body).expect("UTF-8");
        let (retry, block) = body.split_once("\n\n").expect("retry line first");
        assert_eq!(retry, "retry: 1000");
        let data = block
            .strip_prefix("id: 4\nevent: click_missed\ndata: ")
            .and_then(|rest| rest.strip_suffix("\n\n"))
            .unwrap_or_else(|| panic!("not clickgame's SSE framing: {block:?}"));
        let event: clickgame::game::Event = serde_json::from_str(data).expect("parses");
        assert_eq!(serde_json::to_string(&event).expect("serialises"), data);
    });
}

#[test]
fn the_spawner_passes_only_the_limit_flags_a_server_lists() {
    use crate::load::server::limit_flags_listed_in;
    let today = "      --max-conns-per-ip <MAX_CONNS_PER_IP>\n          Long-lived connections";
    assert!(limit_flags_listed_in(today).is_empty());
    let later = "      --max-conns <MAX_CONNS>\n      --max-conns-per-ip <N>\n      \
                 --round-timeout-ms <MS>\n      --join-rate=<N>";
    assert_eq!(
        limit_flags_listed_in(later),
        [
            "--max-conns",
            "1000000",
            "--join-rate",
            "1000000",
            "--round-timeout-ms",
            "0"
        ]
    );
}
