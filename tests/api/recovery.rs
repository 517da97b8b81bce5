//! Nothing lost: resuming across dropped connections, graceful stop, restart from saved state.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use awc::ws;
use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::clients::{Downstream, Kind, ALL};
use crate::helpers::TestApp;

/// A bot that wins every round as soon as it opens, until told to stop.
fn spawn_bot(
    app: &TestApp,
    token: String,
) -> (Rc<Cell<bool>>, actix_web::rt::task::JoinHandle<()>) {
    let stop = Rc::new(Cell::new(false));
    let (base, flag) = (app.base.clone(), stop.clone());
    let task = actix_web::rt::spawn(async move {
        let client = awc::Client::default();
        while !flag.get() {
            if let Ok(mut res) = client.get(format!("{base}/api/snapshot")).send().await {
                if let Ok(snap) = res.json::<Value>().limit(1 << 20).await {
                    let r = &snap["round"];
                    if r.is_object() && r["winner"].is_null() {
                        let click = json!({"round": r["number"], "x": r["x"], "y": r["y"]});
                        let _ = client
                            .post(format!("{base}/api/click"))
                            .bearer_auth(&token)
                            .send_json(&click)
                            .await;
                    }
                }
            }
            actix_web::rt::time::sleep(Duration::from_millis(5)).await;
        }
    });
    (stop, task)
}

#[actix_web::test]
async fn every_transport_resumes_across_server_side_drops_with_every_seq_once_in_order() {
    let app = TestApp::spawn_with(|c| c.round_pause_ms = 20).await;
    let bot = app.join("bot").await;
    let (stop, task) = spawn_bot(&app, bot.token.clone());
    for kind in ALL {
        let watcher = app.join(&format!("w-{}", kind.name())).await;
        let mut stream = Downstream::open(&app, kind, Some(&watcher.token), None, None).await;
        let mut seqs = Vec::new();
        for drop_no in 0..4 {
            for _ in 0..8 {
                let v = stream.next().await;
                if v["type"] == "snapshot" {
                    assert!(
                        seqs.is_empty(),
                        "{kind:?}: a resume must not need a snapshot"
                    );
                }
                seqs.push(v["seq"].as_u64().unwrap());
            }
            app.server.hub.disconnect_all();
            // And once, the client drops the connection itself.
            if drop_no == 2 {
                let (since, epoch) = (stream.since, stream.epoch.clone());
                stream =
                    Downstream::open(&app, kind, Some(&watcher.token), since, epoch.as_deref())
                        .await;
            }
        }
        for _ in 0..8 {
            seqs.push(stream.next().await["seq"].as_u64().unwrap());
        }
        let expected: Vec<u64> = (seqs[0]..seqs[0] + seqs.len() as u64).collect();
        assert_eq!(seqs, expected, "{kind:?}: every seq exactly once, in order");
        if matches!(kind, Kind::Sse | Kind::Websocket) {
            assert!(
                stream.reconnects >= 1,
                "{kind:?} was dropped and reconnected"
            );
        }
        if kind == Kind::Websocket {
            assert!(
                stream.close_codes.iter().all(|c| *c == 1012),
                "{:?}",
                stream.close_codes
            );
        }
    }
    stop.set(true);
    task.await.unwrap();
    app.server.stop().await;
}

#[actix_web::test]
async fn a_graceful_stop_ends_every_connection_and_a_restart_restores_players_scores_and_tokens() {
    let app = TestApp::spawn_with(|c| c.no_persist = false).await;
    let ada = app.join("Ada").await;
    let bea = app.join("Bea").await;
    app.win_round(&ada).await;
    app.win_round(&ada).await;
    app.win_round(&bea).await;
    // Wait for the next round to open: from here on nothing happens until the stop.
    app.open_round().await;
    let before: Value = app.get("/api/snapshot").await.1;

    // One connection of each long-lived kind, open during the stop.
    let (_, mut socket) = app
        .client
        .ws(app.url("/api/ws?since=0"))
        .protocols(["clickgame.v1"])
        .connect()
        .await
        .unwrap();
    let sse = app
        .client
        .get(app.url(&format!("/api/sse?since={}", before["seq"])))
        .send()
        .await
        .unwrap();
    let longpoll = {
        let client = app.client.clone();
        let url = app.url(&format!("/api/longpoll?since={}", before["seq"]));
        actix_web::rt::spawn(
            async move { client.get(url).send().await.map(|r| r.status().as_u16()) },
        )
    };
    actix_web::rt::time::sleep(Duration::from_millis(100)).await;

    let data_dir = app.data_dir.path().to_path_buf();
    let stopping = actix_web::rt::spawn(app.server.stop());

    let close = actix_web::rt::time::timeout(Duration::from_secs(5), async {
        while let Some(frame) = socket.next().await {
            if let Ok(ws::Frame::Close(reason)) = frame {
                return reason.map(|r| u16::from(r.code));
            }
        }
        None
    })
    .await
    .expect("the socket is closed promptly");
    assert_eq!(close, Some(1001), "going away");
    let mut sse = Box::pin(sse);
    let ended = actix_web::rt::time::timeout(Duration::from_secs(5), async {
        while let Some(chunk) = sse.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the SSE stream ends");
    assert_eq!(
        longpoll.await.unwrap().unwrap(),
        204,
        "the parked long poll is answered"
    );
    actix_web::rt::time::timeout(Duration::from_secs(10), stopping)
        .await
        .expect("stops in bounded time")
        .unwrap();
    assert!(data_dir.join("state.json").exists());

    // Start again on the same data directory.
    let mut config = clickgame::config::Config::for_tests();
    config.no_persist = false;
    config.data_dir = data_dir.clone();
    config.round_pause_ms = 40;
    let again = clickgame::server::start(config).await.unwrap();
    let base = format!("http://{}", again.http_addr);
    let client = awc::Client::default();
    let after: Value = client
        .get(format!("{base}/api/snapshot"))
        .send()
        .await
        .unwrap()
        .json()
        .limit(1 << 20)
        .await
        .unwrap();
    assert_eq!(
        after["players"], before["players"],
        "players and scores survive"
    );
    assert_eq!(after["transports"], before["transports"]);
    assert_ne!(
        after["epoch"], before["epoch"],
        "a new epoch makes clients resynchronise"
    );
    assert!(
        after["seq"].as_u64() >= before["seq"].as_u64(),
        "seq continues"
    );
    // A client from before the restart resumes into a snapshot, not a wrong picture.
    let mut poll = client
        .get(format!(
            "{base}/api/poll?since={}&epoch={}",
            before["seq"],
            before["epoch"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    let body: Value = poll.json().limit(1 << 20).await.unwrap();
    assert_eq!(body["events"][0]["type"], "snapshot");
    // Ada's token still works.
    let res = client
        .post(format!("{base}/api/click"))
        .bearer_auth(&ada.token)
        .send_json(&json!({"round": 1, "x": 0, "y": 0}))
        .await
        .unwrap();
    assert_ne!(res.status().as_u16(), 401);
    again.stop().await;
    drop(app.data_dir);
}

#[actix_web::test]
async fn a_corrupt_state_file_is_kept_aside_and_the_server_starts_fresh() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("state.json"),
        b"{\"version\":1,\"players\":[",
    )
    .unwrap();
    let mut config = clickgame::config::Config::for_tests();
    config.no_persist = false;
    config.data_dir = dir.path().to_path_buf();
    let server = clickgame::server::start(config).await.unwrap();
    let snap: Value = awc::Client::default()
        .get(format!("http://{}/api/snapshot", server.http_addr))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(snap["players"].as_array().unwrap().is_empty());
    let kept: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("state.json.bad-")
        })
        .collect();
    assert_eq!(kept.len(), 1, "the bad file is kept for inspection");
    server.stop().await;
}

#[actix_web::test]
async fn a_player_who_went_idle_comes_back_with_the_same_token_and_score_within_the_history_window()
{
    let app = TestApp::spawn_with(|c| {
        c.player_timeout_ms = 200;
        c.history = 16;
    })
    .await;
    let ada = app.join("Ada").await;
    app.win_round(&ada).await;
    // Silence: Ada leaves for being idle.
    let mut left = false;
    for _ in 0..100 {
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        let (_, snap) = app.get("/api/snapshot").await;
        if snap["players"].as_array().unwrap().is_empty() {
            left = true;
            break;
        }
    }
    assert!(left, "Ada left after the idle timeout");
    // Her next poll brings her back, score intact.
    let res = app
        .client
        .get(app.url("/api/poll?since=0"))
        .bearer_auth(&ada.token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let (_, snap) = app.get("/api/snapshot").await;
    let me = &snap["players"][0];
    assert_eq!(
        (me["id"].as_u64(), me["score"].as_u64()),
        (Some(ada.id), Some(1)),
        "{snap}"
    );
    assert_eq!(me["transport"], "ajax");

    // Gone idle again, and this time more than the history's worth of events pass.
    let bob = app.join("Bob").await;
    let mut gone = false;
    for _ in 0..100 {
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        // Bob keeps himself present while events pile up.
        let _ = app
            .client
            .get(app.url("/api/poll"))
            .bearer_auth(&bob.token)
            .send()
            .await;
        let (_, snap) = app.get("/api/snapshot").await;
        if snap["players"].as_array().unwrap().len() == 1 {
            gone = true;
            break;
        }
    }
    assert!(gone, "Ada left again");
    for i in 0..20 {
        app.join(&format!("x{i}")).await;
    }
    let (status, body) = app
        .post(
            "/api/click",
            Some(&ada.token),
            &json!({"round": 1, "x": 0, "y": 0}),
        )
        .await;
    assert_eq!(status.as_u16(), 401, "too late to come back: {body}");
    app.server.stop().await;
}
