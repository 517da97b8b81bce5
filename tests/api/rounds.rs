//! The round timeout over real sockets: a round nobody hits ends by itself on every transport,
//! and a click that comes after it is told so.

use std::time::{Duration, Instant};

use awc::http::StatusCode;
use serde_json::json;

use crate::clients::{Downstream, ALL};
use crate::helpers::TestApp;

#[actix_web::test]
async fn a_round_nobody_hits_expires_on_every_transport_and_the_next_follows_the_pause() {
    let app = TestApp::spawn_with(|c| {
        c.round_timeout_ms = 300;
        c.round_pause_ms = 200;
    })
    .await;
    let mut streams = Vec::new();
    for kind in ALL {
        streams.push(Downstream::open(&app, kind, None, Some(0), None).await);
    }
    let (round, _, _) = app.open_round().await;
    for (kind, stream) in ALL.iter().zip(&mut streams) {
        let expired = stream
            .until(|v| v["type"] == "round_expired" && v["round"] == round)
            .await;
        assert_eq!(
            expired.as_object().map(|o| o.len()),
            Some(4),
            "{kind:?}: seq, ts, type, round and nothing else: {expired}"
        );
        let next = stream.until(|v| v["type"] == "round_started").await;
        assert_eq!(next["round"], round + 1, "{kind:?}");
        let gap = next["ts"].as_u64().unwrap() - expired["ts"].as_u64().unwrap();
        assert!(gap >= 200, "{kind:?}: the usual pause, got {gap} ms");
    }
    app.server.stop().await;
}

#[actix_web::test]
async fn a_click_on_an_expired_round_is_answered_expired_and_scores_nothing() {
    let app = TestApp::spawn_with(|c| {
        c.round_timeout_ms = 200;
        c.round_pause_ms = 60_000;
    })
    .await;
    let ada = app.join("Ada").await;
    let (round, x, y) = app.open_round().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, snap) = app.get("/api/snapshot").await;
        if snap["round"]["expired"] == true {
            assert!(snap["round"]["winner"].is_null(), "{snap}");
            break;
        }
        assert!(Instant::now() < deadline, "round never expired: {snap}");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, body) = app
        .post(
            "/api/click",
            Some(&ada.token),
            &json!({"round": round, "x": x, "y": y}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"result": "expired", "round": round}));
    let (_, snap) = app.get("/api/snapshot").await;
    assert_eq!(snap["players"][0]["score"], 0, "{snap}");
    app.server.stop().await;
}
