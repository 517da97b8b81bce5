//! The same game over each of the four transports.

use serde_json::Value;

use crate::clients::{Downstream, Kind, ALL};
use crate::helpers::TestApp;

fn is_type(t: &'static str) -> impl Fn(&Value) -> bool {
    move |v| v["type"] == t
}

/// The open round in an event: a `round_started`, or a snapshot whose round is not yet won.
fn open_round_in(v: &Value) -> Option<(u64, f64, f64)> {
    let r = match v["type"].as_str() {
        Some("round_started") => {
            return Some((v["round"].as_u64()?, v["x"].as_f64()?, v["y"].as_f64()?))
        }
        Some("snapshot") if v["round"]["winner"].is_null() => &v["round"],
        _ => return None,
    };
    Some((r["number"].as_u64()?, r["x"].as_f64()?, r["y"].as_f64()?))
}

/// Reads the stream until a round is open.
async fn round_from(stream: &mut Downstream) -> (u64, f64, f64) {
    loop {
        if let Some(round) = open_round_in(&stream.next().await) {
            return round;
        }
    }
}

#[actix_web::test]
async fn on_every_transport_a_player_sees_a_round_start_clicks_it_and_sees_the_win() {
    let app = TestApp::spawn_with(|c| c.round_pause_ms = 200).await;
    for kind in ALL {
        let player = app.join(&format!("p-{}", kind.name())).await;
        let mut stream = Downstream::open(&app, kind, Some(&player.token), None, None).await;
        let first = stream.next().await;
        assert_eq!(
            first["type"], "snapshot",
            "{kind:?}: no since means a snapshot first"
        );
        let (round, x, y) = match open_round_in(&first) {
            Some(round) => round,
            None => round_from(&mut stream).await,
        };
        let result = stream.click(round, x, y).await;
        assert_eq!(result["result"], "hit", "{kind:?}: {result}");
        if kind == Kind::Websocket {
            assert_eq!(result["type"], "click_result");
            assert_eq!(result["id"], 99);
        }
        let won = stream.until(is_type("round_won")).await;
        assert_eq!(won["winner"], player.id, "{kind:?}");
        assert_eq!(won["round"], round);
        assert_eq!(
            won["transport"],
            kind.name(),
            "the win is credited to the player's transport"
        );
        assert!(won["reaction_ms"].as_u64().is_some());
    }
    let (_, snap) = app.get("/api/snapshot").await;
    for kind in ALL {
        assert_eq!(snap["transports"][kind.name()]["wins"], 1, "{snap}");
    }
    app.server.stop().await;
}

#[actix_web::test]
async fn every_transport_delivers_byte_identical_event_json() {
    let app = TestApp::spawn().await;
    let ada = app.join("Ada").await;
    app.win_round(&ada).await;
    let mut seen: Vec<Vec<String>> = Vec::new();
    for kind in ALL {
        let mut stream = Downstream::open(&app, kind, None, Some(0), None).await;
        let mut raws = Vec::new();
        for _ in 0..3 {
            raws.push(stream.next_raw().await);
        }
        seen.push(raws);
    }
    assert!(seen[0][0].contains("\"seq\":1"), "{:?}", seen[0]);
    for (kind, raws) in ALL.iter().zip(&seen) {
        assert_eq!(raws, &seen[0], "{kind:?} differs from ajax");
    }
    app.server.stop().await;
}

#[actix_web::test]
async fn every_transport_resumes_after_since_in_order_and_from_a_snapshot_when_history_is_gone() {
    let app = TestApp::spawn_with(|c| c.history = 8).await;
    let _ = app.open_round().await; // round 1 started: seq 1
    for i in 0..5 {
        app.join(&format!("early{i}")).await; // seq 2..=6
    }
    let epoch = app.get("/api/snapshot").await.1["epoch"]
        .as_str()
        .unwrap()
        .to_string();
    for kind in ALL {
        let mut stream = Downstream::open(&app, kind, None, Some(3), Some(&epoch)).await;
        for want in 4..=6u64 {
            let v = stream.next().await;
            assert_eq!(v["seq"], want, "{kind:?}");
            assert_eq!(v["type"], "player_joined");
        }
    }
    for i in 0..10 {
        app.join(&format!("late{i}")).await; // seq 7..=16; history keeps 9..=16
    }
    for kind in ALL {
        // Too old for the ring buffer, and a wrong epoch: both start over from a snapshot.
        for (since, epoch) in [
            (Some(2), Some(epoch.as_str())),
            (Some(10), Some("0000000000000000")),
        ] {
            let mut stream = Downstream::open(&app, kind, None, since, epoch).await;
            let v = stream.next().await;
            assert_eq!(v["type"], "snapshot", "{kind:?} since={since:?}");
            assert_eq!(v["seq"], 16);
            assert_eq!(v["players"].as_array().unwrap().len(), 15);
        }
        // Still in the history: plain events.
        let mut stream = Downstream::open(&app, kind, None, Some(12), Some(&epoch)).await;
        assert_eq!(stream.next().await["seq"], 13, "{kind:?}");
    }
    app.server.stop().await;
}

#[actix_web::test]
async fn two_players_racing_on_different_transports_make_exactly_one_winner_and_one_late() {
    let app = TestApp::spawn_with(|c| c.round_pause_ms = 100).await;
    for (a, b) in [
        (Kind::Websocket, Kind::Sse),
        (Kind::Ajax, Kind::Longpoll),
        (Kind::Sse, Kind::Websocket),
    ] {
        let pa = app.join(&format!("a-{}", a.name())).await;
        let pb = app.join(&format!("b-{}", b.name())).await;
        let mut sa = Downstream::open(&app, a, Some(&pa.token), None, None).await;
        let mut sb = Downstream::open(&app, b, Some(&pb.token), None, None).await;
        let (round, x, y) = round_from(&mut sa).await;
        let (round_b, _, _) = round_from(&mut sb).await;
        assert_eq!(round, round_b);
        let (ra, rb) = tokio::join!(sa.click(round, x, y), sb.click(round, x, y));
        let mut results = [
            ra["result"].as_str().unwrap(),
            rb["result"].as_str().unwrap(),
        ];
        results.sort();
        assert_eq!(results, ["hit", "late"], "{ra} {rb}");
        let (winner, loser, late, wkind) = if ra["result"] == "hit" {
            (&pa, &pb, &rb, a)
        } else {
            (&pb, &pa, &ra, b)
        };
        assert_eq!(late["winner"], winner.id, "late names the winner: {late}");
        let won_a = sa.until(is_type("round_won")).await;
        let won_b = sb.until(is_type("round_won")).await;
        assert_eq!(won_a, won_b, "both saw the same win");
        assert_eq!(won_a["winner"], winner.id);
        assert_ne!(won_a["winner"], loser.id);
        assert_eq!(won_a["transport"], wkind.name());
    }
    app.server.stop().await;
}

#[actix_web::test]
async fn a_client_switching_through_all_four_transports_while_rounds_run_sees_every_seq_once_in_order(
) {
    let app = TestApp::spawn_with(|c| c.round_pause_ms = 20).await;
    let bot = app.join("bot").await;
    let watcher = app.join("watcher").await;
    let stop = std::rc::Rc::new(std::cell::Cell::new(false));
    let bot_task = {
        let (base, token, stop) = (app.base.clone(), bot.token.clone(), stop.clone());
        actix_web::rt::spawn(async move {
            let client = awc::Client::default();
            while !stop.get() {
                let mut res = client
                    .get(format!("{base}/api/snapshot"))
                    .send()
                    .await
                    .unwrap();
                let snap: Value = res.json().limit(1 << 20).await.unwrap();
                let r = &snap["round"];
                if r.is_object() && r["winner"].is_null() {
                    let click = serde_json::json!({"round": r["number"], "x": r["x"], "y": r["y"]});
                    let _ = client
                        .post(format!("{base}/api/click"))
                        .bearer_auth(&token)
                        .send_json(&click)
                        .await;
                }
                actix_web::rt::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
    };
    let mut seqs = Vec::new();
    let first = Downstream::open(&app, Kind::Websocket, Some(&watcher.token), None, None).await;
    let (mut since, mut epoch) = (None, None);
    let mut stream = first;
    for lap in 0..2 {
        for kind in [Kind::Websocket, Kind::Ajax, Kind::Sse, Kind::Longpoll] {
            if lap > 0 || kind != Kind::Websocket {
                stream =
                    Downstream::open(&app, kind, Some(&watcher.token), since, epoch.as_deref())
                        .await;
            }
            for _ in 0..12 {
                let v = stream.next().await;
                if v["type"] == "snapshot" {
                    assert!(
                        seqs.is_empty(),
                        "only the very first connect needs a snapshot"
                    );
                }
                seqs.push(v["seq"].as_u64().unwrap());
            }
            since = stream.since;
            epoch = stream.epoch.clone();
        }
    }
    stop.set(true);
    bot_task.await.unwrap();
    let expected: Vec<u64> = (seqs[0]..seqs[0] + seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "every seq exactly once, in order");
    let (_, snap) = app.get("/api/snapshot").await;
    assert!(
        snap["transports"]["ajax"]["wins"].as_u64().unwrap() > 0,
        "rounds were played: {snap}"
    );
    app.server.stop().await;
}

#[actix_web::test]
async fn a_players_downstream_sets_their_transport_on_the_scoreboard() {
    let app = TestApp::spawn().await;
    let ada = app.join("Ada").await;
    assert!(ada.snapshot["players"][0]["transport"].is_null());
    for kind in ALL {
        let mut stream = Downstream::open(&app, kind, Some(&ada.token), None, None).await;
        let snap = stream.next().await;
        assert_eq!(snap["type"], "snapshot");
        let me = snap["players"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == ada.id)
            .unwrap()
            .clone();
        assert_eq!(me["transport"], kind.name(), "{kind:?}: {snap}");
    }
    app.server.stop().await;
}

#[actix_web::test]
async fn a_long_poll_with_nothing_new_answers_204_after_its_timeout() {
    let app = TestApp::spawn_with(|c| c.longpoll_timeout_ms = 150).await;
    let _ = app.open_round().await;
    let last = app.get("/api/snapshot").await.1["seq"].as_u64().unwrap();
    let started = std::time::Instant::now();
    let res = app
        .client
        .get(app.url(&format!("/api/longpoll?since={last}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 204);
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(140),
        "held until the timeout"
    );
    app.server.stop().await;
}

#[actix_web::test]
async fn a_parked_long_poll_is_answered_as_soon_as_an_event_exists() {
    let app = TestApp::spawn().await;
    let _ = app.open_round().await;
    let last = app.get("/api/snapshot").await.1["seq"].as_u64().unwrap();
    let url = app.url(&format!("/api/longpoll?since={last}"));
    let client = app.client.clone();
    let parked = actix_web::rt::spawn(async move {
        let mut res = client.get(url).send().await.unwrap();
        (res.status().as_u16(), res.json::<Value>().await.unwrap())
    });
    actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
    app.join("Zed").await;
    let (status, body) = parked.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body["events"][0]["type"], "player_joined");
    assert_eq!(body["events"][0]["name"], "Zed");
    app.server.stop().await;
}

#[actix_web::test]
async fn sse_resumes_from_last_event_id_and_starts_with_a_retry_line() {
    let app = TestApp::spawn().await;
    let _ = app.open_round().await;
    for n in ["a", "b", "c"] {
        app.join(n).await;
    }
    let res = app
        .client
        .get(app.url("/api/sse?since=0"))
        .insert_header(("Last-Event-ID", "3"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers().get("cache-control").unwrap(), "no-cache");
    assert_eq!(res.headers().get("x-accel-buffering").unwrap(), "no");
    let mut body = Box::pin(res);
    let mut text = String::new();
    while !text.contains("id: 4\n") {
        use futures_util::StreamExt;
        let chunk = body.next().await.unwrap().unwrap();
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    assert!(text.starts_with("retry: "), "{text}");
    assert!(
        !text.contains("id: 3\n"),
        "Last-Event-ID wins over since: {text}"
    );
    app.server.stop().await;
}
