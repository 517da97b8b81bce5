//! Several nodes, one game, through a real Redis (issue 16, `docs/scaling.md`). Every test
//! starts its own `redis-server` on a free port (`test_redis.rs`, never a mock); the nodes are
//! `server::start` instances on port 0 in this process, each with its own workers and Redis
//! thread — except for the SIGKILL test, whose nodes are real `clickgame` processes.

use std::cell::{Cell, RefCell};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use awc::http::StatusCode;
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::clients::{Downstream, Kind, ALL};
use crate::helpers::{parse, Player, TestApp};
use crate::test_redis::TestRedis;

const ADMIN: &str = "cluster-admin-token";

fn sleep(ms: u64) -> actix_web::rt::time::Sleep {
    actix_web::rt::time::sleep(Duration::from_millis(ms))
}

/// `n` nodes on `redis`, once every one of them has read the game and they agree who runs it.
async fn cluster(redis: &TestRedis, n: usize) -> Vec<TestApp> {
    let mut nodes = Vec::new();
    for id in ["a", "b", "c"].into_iter().take(n) {
        nodes.push(
            TestApp::spawn_node(&redis.url(), id, |c| {
                c.admin_token = Some(ADMIN.into());
            })
            .await,
        );
    }
    wait_ready(&nodes).await;
    nodes
}

/// Waits (10 s at most) until every node reaches Redis, has loaded the game, names the same
/// authority and serves the same epoch.
async fn wait_ready(nodes: &[TestApp]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut seen = Vec::new();
        for node in nodes {
            let stats = node.node_stats().await;
            let (_, snap) = node.get("/api/snapshot").await;
            let ready = stats["redis"] == "ok" && node.server.hub.replica_loaded();
            seen.push((
                ready,
                stats["authority_node"].clone(),
                snap["epoch"].clone(),
            ));
        }
        let agree = seen.iter().all(|(ready, authority, epoch)| {
            *ready && authority.is_string() && (authority, epoch) == (&seen[0].1, &seen[0].2)
        });
        if agree {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the nodes never agreed: {seen:?}"
        );
        sleep(20).await;
    }
}

/// The node that runs the game.
async fn authority(nodes: &[TestApp]) -> usize {
    for (i, node) in nodes.iter().enumerate() {
        if node.node_stats().await["authority"] == true {
            return i;
        }
    }
    panic!("no node is the authority");
}

async fn click_on(node: &TestApp, player: &Player, round: u64, x: f64, y: f64) -> Value {
    let (status, body) = node
        .post(
            "/api/click",
            Some(&player.token),
            &json!({"round": round, "x": x, "y": y}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[actix_web::test]
async fn three_nodes_send_every_event_with_the_same_seq_and_bytes_on_all_four_transports() {
    let redis = TestRedis::start();
    let nodes = cluster(&redis, 3).await;
    let (_, snap) = nodes[0].get("/api/snapshot").await;
    let (seq, epoch) = (
        snap["seq"].as_u64(),
        snap["epoch"].as_str().map(str::to_string),
    );
    // A spectator on every transport of every node: twelve streams.
    let mut streams = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        for kind in ALL {
            let d = Downstream::open(node, kind, None, seq, epoch.as_deref()).await;
            streams.push((i, d));
        }
    }
    // Players join on different nodes and play on others.
    let ada = nodes[0].join("Ada").await;
    let bob = nodes[1].join("Bob").await;
    let cy = nodes[2].join("Cy").await;
    let (round, x, y) = nodes[1].open_round().await;
    assert_eq!(
        click_on(&nodes[2], &ada, round, 1.0, 1.0).await["result"],
        "miss"
    );
    assert_eq!(
        click_on(&nodes[0], &bob, round, 999.0, 1.0).await["result"],
        "miss"
    );
    assert_eq!(click_on(&nodes[1], &cy, round, x, y).await["result"], "hit");
    // A lecturer control through yet another node.
    let (status, body) = nodes[2]
        .post("/api/admin/pause", Some(ADMIN), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["paused"], true,
        "the answer has the game as it is after the control"
    );

    // The first stream up to the pause, then every other stream: the same seqs, the same bytes.
    let mut reference = Vec::new();
    loop {
        let raw = streams[0].1.next_raw().await;
        let v: Value = serde_json::from_str(&raw).unwrap();
        reference.push(raw);
        if v["type"] == "game_paused" {
            break;
        }
    }
    let kinds: Vec<String> = reference
        .iter()
        .map(|r| serde_json::from_str::<Value>(r).unwrap()["type"].to_string())
        .collect();
    for want in ["player_joined", "click_missed", "round_won", "game_paused"] {
        assert!(
            kinds.iter().any(|k| k.contains(want)),
            "{want} in {kinds:?}"
        );
    }
    for (n, (i, stream)) in streams.iter_mut().enumerate() {
        if n > 0 {
            let mut got = Vec::new();
            for _ in 0..reference.len() {
                got.push(stream.next_raw().await);
            }
            assert_eq!(got, reference, "{:?} on node {i}", stream.kind);
        }
        let name = ["a", "b", "c"][*i];
        assert_eq!(
            stream.node.as_deref(),
            Some(name),
            "{:?} says which node serves it",
            stream.kind
        );
    }
    // The log in Redis holds exactly these bytes under these seqs.
    let mut conn = redis.client().get_connection().unwrap();
    let first: u64 = serde_json::from_str::<Value>(&reference[0]).unwrap()["seq"]
        .as_u64()
        .unwrap();
    let last = first + reference.len() as u64 - 1;
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg("{clickgame}:events")
        .arg(format!("{first}-0"))
        .arg(format!("{last}-0"))
        .query(&mut conn)
        .unwrap();
    let logged: Vec<String> = entries.into_iter().map(|(_, f)| f[1].clone()).collect();
    assert_eq!(logged, reference);
}

#[actix_web::test]
async fn a_player_on_node_b_clicks_while_their_stream_is_on_node_c_and_their_token_works_on_every_node(
) {
    let redis = TestRedis::start();
    let nodes = cluster(&redis, 3).await;
    let ada = nodes[0].join("Ada").await;
    let (seq, epoch) = (ada.snapshot["seq"].as_u64(), ada.snapshot["epoch"].as_str());
    // Her stream is on C, opened with her token straight after the join on A: C may not have
    // read the join yet, and must let her in all the same.
    let mut stream = Downstream::open(&nodes[2], Kind::Sse, Some(&ada.token), seq, epoch).await;
    for node in &nodes {
        let res = node
            .client
            .get(node.url("/api/poll"))
            .bearer_auth(&ada.token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "her token on {}", node.base);
        let forged = format!("{}.{}", ada.id, "0".repeat(32));
        let (status, _) = node
            .post(
                "/api/click",
                Some(&forged),
                &json!({"round": 1, "x": 1, "y": 1}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "a forged token on {}",
            node.base
        );
    }
    // She clicks on B.
    let (round, x, y) = nodes[1].open_round().await;
    let hit = click_on(&nodes[1], &ada, round, x, y).await;
    assert_eq!(hit["result"], "hit", "{hit}");
    let won = stream
        .until(|v| v["type"] == "round_won" && v["round"] == round)
        .await;
    assert_eq!(won["winner"], ada.id);
    // And over a WebSocket on A, in-band.
    let mut ws = Downstream::open(&nodes[0], Kind::Websocket, Some(&ada.token), None, None).await;
    let (round, x, y) = nodes[0].open_round().await;
    let reply = ws.click(round, x, y).await;
    assert_eq!(reply["type"], "click_result", "{reply}");
    assert_eq!(reply["result"], "hit", "{reply}");
    let won = stream
        .until(|v| v["type"] == "round_won" && v["round"] == round)
        .await;
    assert_eq!(won["winner"], ada.id);
    // Every node's snapshot has her two points (once its tail has read them).
    for node in &nodes {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (_, snap) = node.get("/api/snapshot").await;
            if snap["players"][0]["score"] == 2 {
                break;
            }
            assert!(Instant::now() < deadline, "{}: {snap}", node.base);
            sleep(10).await;
        }
    }
    // Leaving on C ends her session everywhere.
    let (status, _) = nodes[2]
        .post("/api/leave", Some(&ada.token), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    stream
        .until(|v| v["type"] == "player_left" && v["player"] == ada.id)
        .await;
    for node in &nodes {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (status, _) = node
                .post(
                    "/api/click",
                    Some(&ada.token),
                    &json!({"round": 1, "x": 1, "y": 1}),
                )
                .await;
            if status == StatusCode::UNAUTHORIZED {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "her token still works on {}",
                node.base
            );
            sleep(10).await;
        }
    }
}

#[actix_web::test]
async fn two_players_racing_on_different_nodes_have_exactly_one_winner() {
    let redis = TestRedis::start();
    let nodes = cluster(&redis, 3).await;
    let ada = nodes[0].join("Ada").await;
    let bob = nodes[1].join("Bob").await;
    let (seq, epoch) = (bob.snapshot["seq"].as_u64(), bob.snapshot["epoch"].as_str());
    let mut watch = Downstream::open(&nodes[0], Kind::Websocket, None, seq, epoch).await;
    for _ in 0..8 {
        let (round, x, y) = nodes[0].open_round().await;
        let (a, b) = tokio::join!(
            click_on(&nodes[1], &ada, round, x, y),
            click_on(&nodes[2], &bob, round, x, y)
        );
        let results = [a["result"].clone(), b["result"].clone()];
        let hits = results.iter().filter(|r| **r == "hit").count();
        assert_eq!(hits, 1, "round {round}: {a} / {b}");
        let (winner, loser) = if a["result"] == "hit" {
            (&ada, &b)
        } else {
            (&bob, &a)
        };
        assert_eq!(loser["result"], "late", "{loser}");
        assert_eq!(
            loser["winner"], winner.id,
            "the late click names the winner"
        );
        let won = watch
            .until(|v| v["type"] == "round_won" || v["type"] == "round_started")
            .await;
        assert_eq!(won["type"], "round_won", "one round_won per round: {won}");
        assert_eq!(won["winner"], winner.id);
        let next = watch.until(|v| v["type"] != "player_transport").await;
        assert_eq!(next["type"], "round_started", "and no second one: {next}");
    }
}

/// A POST with its status, `Retry-After` and body.
async fn post_with_headers(
    node: &TestApp,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> (StatusCode, Option<String>, Value) {
    let mut req = node.client.post(node.url(path));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let mut res = req.send_json(body).await.expect("request completes");
    let retry = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = res.body().await.unwrap();
    (res.status(), retry, parse(&bytes))
}

#[actix_web::test]
async fn with_redis_away_nodes_answer_503_with_retry_after_say_so_and_recover_by_themselves() {
    let mut redis = TestRedis::start();
    let nodes = cluster(&redis, 2).await;
    let ada = nodes[0].join("Ada").await;
    let leader = authority(&nodes).await;
    let follower = 1 - leader;

    redis.kill();
    for (node, path, token, body) in [
        (
            &nodes[follower],
            "/api/click",
            Some(ada.token.as_str()),
            json!({"round": 1, "x": 1, "y": 1}),
        ),
        (
            &nodes[leader],
            "/api/click",
            Some(ada.token.as_str()),
            json!({"round": 1, "x": 1, "y": 1}),
        ),
        (&nodes[follower], "/api/join", None, json!({"name": "Bob"})),
    ] {
        let asked = Instant::now();
        let (status, retry, body) = post_with_headers(node, path, token, &body).await;
        let waited = asked.elapsed();
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{path} on {}: {body}",
            node.base
        );
        assert_eq!(retry.as_deref(), Some("1"), "{body}");
        assert!(
            ["cluster_unavailable", "no_authority", "authority_timeout"]
                .contains(&body["error"].as_str().unwrap_or_default()),
            "{body}"
        );
        // Refused, not left hanging: within the forwarding timeout (2 s) and then some.
        assert!(waited < Duration::from_secs(5), "{path} took {waited:?}");
    }
    for node in &nodes {
        let deadline = Instant::now() + Duration::from_secs(5);
        while node.node_stats().await["redis"] != "unreachable" {
            assert!(
                Instant::now() < deadline,
                "{} never said unreachable",
                node.base
            );
            sleep(20).await;
        }
        // What it has, it still serves.
        let (status, snap) = node.get("/api/snapshot").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(snap["players"][0]["name"], "Ada");
    }

    // Back, empty (this Redis keeps nothing): the nodes find it by themselves and start a new
    // game under a new epoch.
    let old_epoch = ada.snapshot["epoch"].clone();
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    for node in &nodes {
        while node.get("/api/snapshot").await.1["epoch"] == old_epoch {
            assert!(
                Instant::now() < deadline,
                "{} never found the new game",
                node.base
            );
            sleep(20).await;
        }
    }
    wait_ready(&nodes).await;
    let (_, snap) = nodes[follower].get("/api/snapshot").await;
    let mut stream = Downstream::open(
        &nodes[leader],
        Kind::Sse,
        None,
        snap["seq"].as_u64(),
        snap["epoch"].as_str(),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let bob = loop {
        let (status, _, body) =
            post_with_headers(&nodes[follower], "/api/join", None, &json!({"name": "Bob"})).await;
        if status == StatusCode::CREATED {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "joins never worked again: {body}"
        );
        sleep(50).await;
    };
    let joined = stream
        .until(|v| v["type"] == "player_joined" && v["name"] == "Bob")
        .await;
    assert_eq!(joined["player"], bob["player_id"]);
    for node in &nodes {
        assert_eq!(node.node_stats().await["redis"], "ok");
    }
    // The old token belonged to the old game.
    let (status, _, _) = post_with_headers(
        &nodes[leader],
        "/api/click",
        Some(&ada.token),
        &json!({"round": 1, "x": 1, "y": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn the_stats_and_metrics_of_a_node_say_which_node_and_whether_it_runs_the_game() {
    let redis = TestRedis::start();
    let nodes = cluster(&redis, 2).await;
    let leader = authority(&nodes).await;
    for (i, node) in nodes.iter().enumerate() {
        let stats = node.node_stats().await;
        let id = ["a", "b"][i];
        assert_eq!(stats["id"], id);
        assert_eq!(stats["authority"], i == leader, "{stats}");
        assert_eq!(stats["authority_node"], ["a", "b"][leader]);
        let res = node.client.get(node.url("/metrics")).send().await.unwrap();
        assert_eq!(
            res.headers()
                .get("x-clickgame-node")
                .unwrap()
                .to_str()
                .unwrap(),
            id
        );
        let mut res = res;
        let text = String::from_utf8(res.body().await.unwrap().to_vec()).unwrap();
        assert!(
            text.contains(&format!(
                "clickgame_open_connections{{node=\"{id}\",transport=\"sse\"}}"
            )),
            "{text}"
        );
        assert!(text.contains(&format!(
            "clickgame_node_authority{{node=\"{id}\"}} {}",
            u8::from(i == leader)
        )));
        assert!(text.contains(&format!("clickgame_redis_up{{node=\"{id}\"}} 1")));
    }
}

#[actix_web::test]
async fn a_lecturer_drop_on_one_node_drops_every_nodes_connections() {
    let redis = TestRedis::start();
    let nodes = cluster(&redis, 2).await;
    let (_, snap) = nodes[0].get("/api/snapshot").await;
    let (seq, epoch) = (snap["seq"].as_u64(), snap["epoch"].as_str());
    let mut on_b = Downstream::open(&nodes[1], Kind::Websocket, None, seq, epoch).await;
    let (status, _) = nodes[0]
        .post("/api/admin/disconnect", Some(ADMIN), &json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    // The socket on B is closed with 1012 and reconnects; the next event still arrives.
    nodes[0].join("Ada").await;
    on_b.until(|v| v["type"] == "player_joined").await;
    assert_eq!(on_b.close_codes, vec![1012]);
}

// ---- the client behind a trusted proxy ------------------------------------------------------

#[actix_web::test]
async fn behind_a_trusted_proxy_the_join_limit_counts_the_client_it_names() {
    let behind = TestApp::spawn_with(|c| {
        c.join_rate = 1;
        c.max_sockets_per_ip = 1;
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let join = |app: &TestApp, name: &'static str, from: &'static str| {
        let req = app
            .client
            .post(app.url("/api/join"))
            .insert_header(("X-Forwarded-For", from));
        async move {
            let mut res = req.send_json(&json!({ "name": name })).await.unwrap();
            // Read to the end, so the keep-alive connection is reused (a second one would be
            // over the socket cap of one).
            let _ = res.body().await;
            res.status()
        }
    };
    assert_eq!(
        join(&behind, "Ada", "198.51.100.1").await,
        StatusCode::CREATED
    );
    assert_eq!(
        join(&behind, "Bob", "198.51.100.1").await,
        StatusCode::TOO_MANY_REQUESTS,
        "the same client, named twice"
    );
    assert_eq!(
        join(&behind, "Cy", "198.51.100.2").await,
        StatusCode::CREATED
    );
    // Without --trusted-proxy the header is anybody's word: ignored, everyone is 127.0.0.1.
    let open = TestApp::spawn_with(|c| {
        c.join_rate = 1;
        c.max_sockets_per_ip = 1;
    })
    .await;
    assert_eq!(
        join(&open, "Ada", "198.51.100.1").await,
        StatusCode::CREATED
    );
    assert_eq!(
        join(&open, "Bob", "198.51.100.2").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The proxy's sockets carry many clients: exempt from the per-address socket cap (one
    // here), where an ordinary address gets its second socket closed at accept.
    // (Both servers have answered above, so they run while a thread blocks this runtime.)
    let (trusted, untrusted) = (behind.server.http_addr, open.server.http_addr);
    let (kept, second, refused) = std::thread::spawn(move || {
        let held = TcpStream::connect(trusted).unwrap();
        let second = time_on(TcpStream::connect(trusted).unwrap());
        let _held = TcpStream::connect(untrusted).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let refused = closed_soon(&mut TcpStream::connect(untrusted).unwrap());
        (held, second, refused)
    })
    .join()
    .unwrap();
    drop(kept);
    assert_eq!(second, "HTTP/1.1 200 OK");
    assert!(refused, "an ordinary address's second socket is closed");
}

/// A PROXY protocol v2 header naming `client` (as haproxy's `send-proxy-v2` sends it).
fn proxy_header(client: &str, server: SocketAddr) -> Vec<u8> {
    let client: SocketAddr = client.parse().unwrap();
    ppp::v2::Builder::with_addresses(
        ppp::v2::Version::Two | ppp::v2::Command::Proxy,
        ppp::v2::Protocol::Stream,
        (client, server),
    )
    .build()
    .unwrap()
}

/// Whether the server closed `stream` within a second (EOF or reset, not a read timeout).
fn closed_soon(stream: &mut TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    match stream.read(&mut [0u8; 1]) {
        Ok(0) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        Ok(_) => false,
    }
}

/// A whole `GET /api/time` on a connection of its own: the status line.
fn time_on(mut stream: TcpStream) -> String {
    stream
        .write_all(b"GET /api/time HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.lines().next().unwrap_or_default().to_string()
}

#[actix_web::test]
async fn on_the_tls_port_a_trusted_proxys_header_names_the_client_the_socket_cap_counts() {
    let app = TestApp::spawn_with(|c| {
        c.no_tls = false;
        c.max_sockets_per_ip = 1;
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let https = app.server.https_addr.unwrap();
    // The server runs on this test's runtime: let it start before a thread blocks on it (with
    // a connection of its own that closes, so that only the proxied sockets are counted).
    let res = app
        .client
        .get(app.url("/api/time"))
        .insert_header(("Connection", "close"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    drop(res);
    let sockets = app.server.sockets.clone();
    let deadline = Instant::now() + Duration::from_secs(5);
    while sockets.open() != 0 {
        assert!(
            Instant::now() < deadline,
            "the first connection stayed open"
        );
        sleep(10).await;
    }
    let (refused, counted, answer) = std::thread::spawn(move || {
        let wait_for = |n: u32| {
            let deadline = Instant::now() + Duration::from_secs(5);
            while sockets.open() != n {
                assert!(
                    Instant::now() < deadline,
                    "open sockets: {}",
                    sockets.open()
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        let mut ada = TcpStream::connect(https).unwrap();
        ada.write_all(&proxy_header("198.51.100.7:5555", https))
            .unwrap();
        wait_for(1);
        let mut bob = TcpStream::connect(https).unwrap();
        bob.write_all(&proxy_header("198.51.100.8:5555", https))
            .unwrap();
        // Two clients, one socket each, though both came through the proxy's one address.
        wait_for(2);
        // Ada again, from another port: over her cap of one, closed at once.
        let mut again = TcpStream::connect(https).unwrap();
        again
            .write_all(&proxy_header("198.51.100.7:6666", https))
            .unwrap();
        let refused = closed_soon(&mut again);
        let counted = sockets.open();
        // And TLS goes on right after the header: a whole HTTPS request on Ada's socket.
        let mut connector =
            openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls()).unwrap();
        connector.set_verify(openssl::ssl::SslVerifyMode::NONE);
        let mut tls = connector
            .build()
            .connect("localhost", ada)
            .expect("TLS after the PROXY header");
        tls.write_all(b"GET /api/time HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        let _ = tls.read_to_string(&mut answer);
        drop(bob);
        (refused, counted, answer)
    })
    .join()
    .unwrap();
    assert!(
        refused,
        "a second socket for the same proxied client is refused"
    );
    assert_eq!(counted, 2, "and not counted");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

// ---- failover with real processes -----------------------------------------------------------

/// The lease TTL of the SIGKILL test's nodes: 1 s keeps the test short; set
/// `CLICKGAME_TEST_LEASE_TTL_MS=3000` to measure the failover with the default lease
/// (`docs/scaling.md` quotes both).
fn test_lease_ms() -> String {
    std::env::var("CLICKGAME_TEST_LEASE_TTL_MS").unwrap_or_else(|_| "1000".into())
}

/// A `clickgame` process of a cluster, killed with the test.
struct Process {
    child: Child,
    base: String,
}

impl Process {
    fn spawn(redis: &TestRedis, node: &str) -> Process {
        let mut command = Command::new(env!("CARGO_BIN_EXE_clickgame"));
        // SAFETY: prctl only concerns the child being set up.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = command
            .args(["--redis-url", &redis.url(), "--node-id", node])
            .args(["--http-addr", "127.0.0.1:0", "--no-tls", "--no-persist"])
            .args(["--lease-ttl-ms", &test_lease_ms(), "--click-rate", "1000"])
            .args(["--round-timeout-ms", "0", "--round-pause-ms", "50"])
            .args(["--round-pause-jitter-ms", "0", "--log", "warn"])
            .args(["--admin-token", ADMIN, "--workers", "1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("target/debug/clickgame runs");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix("listening on ").map(str::to_string))
            .expect("the node prints its address");
        std::thread::spawn(move || lines.for_each(drop));
        Process { child, base }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// An SSE reader that, whenever its node goes away, reconnects to the next one and resumes
/// after the last seq it got — what a browser does through the entry point.
struct Reader {
    /// Each event's JSON, and when it arrived.
    events: Rc<RefCell<Vec<(Instant, String)>>>,
    reconnects: Rc<Cell<u32>>,
    task: actix_web::rt::task::JoinHandle<()>,
}

impl Reader {
    fn start(bases: Vec<String>, since: u64, epoch: String) -> Reader {
        let events = Rc::new(RefCell::new(Vec::new()));
        let reconnects = Rc::new(Cell::new(0));
        let (out, count) = (events.clone(), reconnects.clone());
        let task = actix_web::rt::spawn(async move {
            let client = awc::Client::builder()
                .timeout(Duration::from_secs(3600))
                .finish();
            let mut since = since;
            for base in bases.iter().cycle() {
                let url = format!("{base}/api/sse?since={since}&epoch={epoch}");
                if let Ok(mut res) = client.get(url).send().await {
                    let mut pending = String::new();
                    while let Some(Ok(chunk)) = res.next().await {
                        pending.push_str(std::str::from_utf8(&chunk).unwrap());
                        while let Some(end) = pending.find("\n\n") {
                            let block: String = pending.drain(..end + 2).collect();
                            let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: "))
                            else {
                                continue;
                            };
                            let v: Value = serde_json::from_str(data).unwrap();
                            if let Some(seq) = v["seq"].as_u64() {
                                assert_ne!(
                                    v["type"], "snapshot",
                                    "resumed without a snapshot: {base} since {since}: {v}"
                                );
                                since = seq;
                                out.borrow_mut().push((Instant::now(), data.to_string()));
                            }
                        }
                    }
                }
                count.set(count.get() + 1);
                actix_web::rt::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Reader {
            events,
            reconnects,
            task,
        }
    }

    fn parsed(&self) -> Vec<Value> {
        self.events
            .borrow()
            .iter()
            .map(|(_, e)| serde_json::from_str(e).unwrap())
            .collect()
    }

    fn raw(&self) -> Vec<String> {
        self.events
            .borrow()
            .iter()
            .map(|(_, e)| e.clone())
            .collect()
    }
}

/// Every seq once, in order, none left out.
fn assert_consecutive(events: &[Value], what: &str) {
    for pair in events.windows(2) {
        assert_eq!(
            pair[1]["seq"].as_u64(),
            pair[0]["seq"].as_u64().map(|s| s + 1),
            "{what}: {} then {}",
            pair[0],
            pair[1]
        );
    }
}

#[actix_web::test]
async fn the_authority_killed_mid_game_leaves_the_log_whole_and_its_clients_resume_elsewhere() {
    let redis = TestRedis::start();
    let mut procs = vec![Process::spawn(&redis, "a")];
    let http = awc::Client::builder()
        .timeout(Duration::from_secs(10))
        .finish();
    let get = |url: String| {
        let http = http.clone();
        async move {
            let mut res = http.get(url).send().await.expect("GET completes");
            parse(&res.body().await.unwrap())
        }
    };
    // a first, so that it runs the game; then b and c.
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(format!("{}/api/stats", procs[0].base)).await["node"]["authority"] != true {
        assert!(Instant::now() < deadline, "a never took the lease");
        sleep(20).await;
    }
    procs.push(Process::spawn(&redis, "b"));
    procs.push(Process::spawn(&redis, "c"));
    let bases: Vec<String> = procs.iter().map(|p| p.base.clone()).collect();
    for base in &bases[1..] {
        let deadline = Instant::now() + Duration::from_secs(10);
        while get(format!("{base}/api/stats")).await["node"]["authority_node"] != "a" {
            assert!(Instant::now() < deadline, "{base} never heard of a");
            sleep(20).await;
        }
    }
    let join = http
        .post(format!("{}/api/join", bases[1]))
        .send_json(&json!({"name": "Ada"}))
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let token = join["token"].as_str().unwrap().to_string();
    let click = |base: String, key: String, round: u64, x: f64, y: f64| {
        let (http, token) = (http.clone(), token.clone());
        async move {
            http.post(format!("{base}/api/click"))
                .bearer_auth(&token)
                .insert_header(("Idempotency-Key", key))
                .send_json(&json!({"round": round, "x": x, "y": y}))
                .await
        }
    };
    // A point before the failover.
    let snap = loop {
        let snap = get(format!("{}/api/snapshot", bases[2])).await;
        if snap["round"]["winner"].is_null() && snap["round"].is_object() {
            break snap;
        }
        sleep(10).await;
    };
    let round = snap["round"]["number"].as_u64().unwrap();
    let (x, y) = (
        snap["round"]["x"].as_f64().unwrap(),
        snap["round"]["y"].as_f64().unwrap(),
    );
    let mut hit = click(bases[2].clone(), "hit".into(), round, x, y)
        .await
        .unwrap();
    assert_eq!(hit.json::<Value>().await.unwrap()["result"], "hit");
    let next = round + 1;
    loop {
        let snap = get(format!("{}/api/snapshot", bases[2])).await;
        if snap["round"]["number"] == next {
            break;
        }
        sleep(10).await;
    }
    // One reader on a (to be killed), one on b; both from the join on.
    let since = join["snapshot"]["seq"].as_u64().unwrap();
    let epoch = join["snapshot"]["epoch"].as_str().unwrap().to_string();
    let on_a = Reader::start(bases.clone(), since, epoch.clone());
    let on_b = Reader::start(bases[1..].to_vec(), since, epoch.clone());
    sleep(300).await;

    // Clicks at the corner (misses) through c, each with its own Idempotency-Key, retried with
    // the same key after a 503 or a lost connection: each must count exactly once.
    const CLICKS: u64 = 60;
    let mut killed_at = None;
    for k in 1..=CLICKS {
        if k == 25 {
            procs[0].kill();
            killed_at = Some(Instant::now());
        }
        let key = format!("miss-{k}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match click(bases[2].clone(), key.clone(), next, 0.0, 0.0).await {
                Ok(mut res) if res.status() == StatusCode::OK => {
                    let body: Value = res.json().await.unwrap();
                    assert_eq!(body["result"], "miss", "{body}");
                    break;
                }
                Ok(res) => assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE),
                Err(_) => {}
            }
            assert!(Instant::now() < deadline, "click {k} never went through");
            sleep(50).await;
        }
        sleep(20).await;
    }
    let killed_at = killed_at.unwrap();

    // Both readers get to the last miss.
    let deadline = Instant::now() + Duration::from_secs(20);
    let done = |r: &Reader| {
        r.parsed()
            .iter()
            .any(|e| e["type"] == "click_missed" && e["misses"] == CLICKS)
    };
    while !(done(&on_a) && done(&on_b)) {
        assert!(
            Instant::now() < deadline,
            "the readers did not get every miss"
        );
        sleep(20).await;
    }
    on_a.task.abort();
    on_b.task.abort();
    let (a, b) = (on_a.parsed(), on_b.parsed());
    assert_consecutive(&a, "the reader that lost its node");
    assert_consecutive(&b, "the reader on b");
    assert!(
        on_a.reconnects.get() >= 1,
        "the reader on a had to reconnect"
    );
    // The same events, byte for byte, from the join on.
    let end = a.iter().position(|e| e["misses"] == CLICKS).unwrap();
    let end_b = b.iter().position(|e| e["misses"] == CLICKS).unwrap();
    assert_eq!(on_a.raw()[..=end], on_b.raw()[..=end_b]);
    // Every click counted exactly once: misses 1, 2, ..., 60, each once.
    let misses: Vec<u64> = a
        .iter()
        .filter(|e| e["type"] == "click_missed")
        .map(|e| e["misses"].as_u64().unwrap())
        .collect();
    assert_eq!(misses, (1..=CLICKS).collect::<Vec<_>>());
    // Scores intact on the new authority's game.
    let snap = get(format!("{}/api/snapshot", bases[1])).await;
    assert_eq!(
        snap["epoch"],
        epoch.as_str(),
        "the same game, the same epoch"
    );
    assert_eq!(snap["players"][0]["score"], 1, "{snap}");
    assert_eq!(snap["players"][0]["misses"], CLICKS, "{snap}");
    let stats = get(format!("{}/api/stats", bases[1])).await;
    assert_ne!(stats["node"]["authority_node"], "a");
    // The measured pause: SIGKILL → the first event after it at the reader on b (the 25th
    // click was sent right after the kill), and at the reader that had to find a new node.
    let arrival = |r: &Reader| {
        let at = r.parsed().iter().position(|e| e["misses"] == 25).unwrap();
        r.events.borrow()[at]
            .0
            .duration_since(killed_at)
            .as_millis()
    };
    println!(
        "failover with a {} ms lease: the first event after the SIGKILL reached the reader \
         on b {} ms after it, the reader that lost its node {} ms after it",
        test_lease_ms(),
        arrival(&on_b),
        arrival(&on_a)
    );
}
