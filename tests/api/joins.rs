//! Who may join, how often, and under which name (issue 9, items 3 and 8): joins limited per
//! address and overall, a cap on players, and names that cannot pass for one another.

use std::net::IpAddr;

use serde_json::{json, Value};

use crate::helpers::{assert_error, parse, TestApp};

/// An HTTP client whose connections leave from `source` (any 127.x.y.z reaches the server on
/// 127.0.0.1), so one test can be several client addresses.
fn client_from(source: &str) -> awc::Client {
    let source: IpAddr = source.parse().unwrap();
    awc::Client::builder()
        .connector(awc::Connector::new().local_address(source))
        .finish()
}

/// A join as `name` through `client`: status, `Retry-After` and the body.
async fn join_via(app: &TestApp, client: &awc::Client, name: &str) -> (u16, Option<String>, Value) {
    let mut res = client
        .post(app.url("/api/join"))
        .send_json(&json!({ "name": name }))
        .await
        .expect("request completes");
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    let body = parse(&res.body().limit(1 << 20).await.unwrap());
    (res.status().as_u16(), retry, body)
}

async fn player_count(app: &TestApp) -> usize {
    app.get("/api/snapshot").await.1["players"]
        .as_array()
        .unwrap()
        .len()
}

#[actix_web::test]
async fn joins_beyond_the_per_address_rate_get_429_with_retry_after_while_other_addresses_join() {
    let app = TestApp::spawn_with(|c| c.join_rate = 5).await;
    let flood = client_from("127.0.0.2");
    let mut statuses = Vec::new();
    let mut refusal = None;
    for i in 0..8 {
        let (status, retry, body) = join_via(&app, &flood, &format!("flood{i}")).await;
        statuses.push(status);
        if status == 429 {
            refusal = Some((retry, body));
        }
    }
    assert_eq!(statuses, [201, 201, 201, 201, 201, 429, 429, 429]);
    let (retry, body) = refusal.unwrap();
    // Five a minute: the next token comes in 12 s.
    assert_eq!(retry.as_deref(), Some("12"));
    assert_eq!(body["error"], "too_many_joins", "{body}");
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("at most 5 joins per minute from one address"));
    assert_eq!(player_count(&app).await, 5, "refused joins add nobody");
    // Somebody at another address is not held up by the flood.
    let (status, _, body) = join_via(&app, &client_from("127.0.0.3"), "Ada").await;
    assert_eq!(status, 201, "{body}");
    app.server.stop().await;
}

#[actix_web::test]
async fn the_overall_join_rate_holds_for_every_address_together() {
    let app = TestApp::spawn_with(|c| c.join_rate_total = 3).await;
    for (i, source) in ["127.0.0.2", "127.0.0.3", "127.0.0.4"].iter().enumerate() {
        let (status, _, body) = join_via(&app, &client_from(source), &format!("p{i}")).await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, retry, body) = join_via(&app, &client_from("127.0.0.5"), "late").await;
    assert_eq!((status, retry.as_deref()), (429, Some("20")), "{body}");
    assert_eq!(body["error"], "too_many_joins");
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("the server takes at most 3 joins per minute"));
    app.server.stop().await;
}

/// The attack of issue 9 with the shipped defaults: one address asking for 300 joins at once
/// gets the lecture-hall allowance (120) and no more.
#[actix_web::test]
async fn with_the_default_limits_one_address_gets_a_lecture_halls_worth_of_joins() {
    use clickgame::config::{DEFAULT_JOIN_RATE, DEFAULT_JOIN_RATE_TOTAL, DEFAULT_MAX_PLAYERS};
    let app = TestApp::spawn_with(|c| {
        c.join_rate = DEFAULT_JOIN_RATE;
        c.join_rate_total = DEFAULT_JOIN_RATE_TOTAL;
        c.max_players = DEFAULT_MAX_PLAYERS;
    })
    .await;
    let joins = (0..300).map(|i| {
        let app = &app;
        async move { join_via(app, &app.client, &format!("bot{i}")).await.0 }
    });
    let statuses = futures_util::future::join_all(joins).await;
    let created = statuses.iter().filter(|s| **s == 201).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((created, limited), (120, 180), "{statuses:?}");
    app.server.stop().await;
}

#[actix_web::test]
async fn a_full_game_answers_409_game_full_and_has_room_again_when_somebody_leaves() {
    let app = TestApp::spawn_with(|c| c.max_players = 3).await;
    let ada = app.join("Ada").await;
    app.join("Bob").await;
    let cy = app.join("Cy").await;
    assert_eq!(cy.snapshot["players"].as_array().unwrap().len(), 3);
    let (status, body) = app.post("/api/join", None, &json!({"name": "Dee"})).await;
    assert_error(status, &body, 409, "game_full");
    assert_eq!(player_count(&app).await, 3);
    let (status, _) = app.post("/api/leave", Some(&ada.token), &json!({})).await;
    assert_eq!(status.as_u16(), 200);
    let dee = app.join("Dee").await;
    assert_eq!(
        dee.snapshot["players"].as_array().unwrap().len(),
        3,
        "the snapshot a join carries never holds more than the cap"
    );
    app.server.stop().await;
}

#[actix_web::test]
async fn look_alike_names_are_refused_or_taken_and_the_normal_form_is_what_everybody_sees() {
    let app = TestApp::spawn().await;
    app.join("Ada").await;
    app.join("Straße").await;
    let cases: [(&str, u16, &str); 9] = [
        ("\u{410}da", 400, "invalid_name"), // Cyrillic А + Latin da
        ("ＡＤＡ", 409, "name_taken"),      // full-width
        ("Ａｄａ", 409, "name_taken"),
        ("\u{3164}\u{3164}\u{3164}", 400, "invalid_name"), // three Hangul fillers
        ("Ada\u{3164}", 400, "invalid_name"),
        ("STRASSE", 409, "name_taken"),
        ("strasse", 409, "name_taken"),
        ("B0b\u{301}", 400, "invalid_name"), // a combining mark, refused before normalising
        ("A\u{200B}da", 400, "invalid_name"),
    ];
    for (name, status, code) in cases {
        let (got, body) = app.post("/api/join", None, &json!({ "name": name })).await;
        assert_error(got, &body, status, code);
    }
    assert_eq!(player_count(&app).await, 2, "none of them joined");

    // Runs of spaces collapse; the game shows the normal form, and it is taken from then on.
    let lovelace = app.join("  Ada    Lovelace ").await;
    let me = lovelace.snapshot["players"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == lovelace.id)
        .unwrap()
        .clone();
    assert_eq!(me["name"], "Ada Lovelace");
    let (got, body) = app
        .post("/api/join", None, &json!({"name": "ADA LOVELACE"}))
        .await;
    assert_error(got, &body, 409, "name_taken");
    app.server.stop().await;
}

#[actix_web::test]
async fn an_idle_player_finding_the_game_full_keeps_her_token_and_comes_back_when_there_is_room() {
    let app = TestApp::spawn_with(|c| {
        c.max_players = 1;
        c.player_timeout_ms = 200;
    })
    .await;
    let ada = app.join("Ada").await;
    let mut gone = false;
    for _ in 0..100 {
        actix_web::rt::time::sleep(std::time::Duration::from_millis(20)).await;
        if player_count(&app).await == 0 {
            gone = true;
            break;
        }
    }
    assert!(gone, "Ada left after the idle timeout");
    let bob = app.join("Bob").await;
    // A click needs a session (a poll would just watch as a spectator): 401 or not.
    let click_as_ada = || async {
        let click = json!({"round": 1, "x": 0, "y": 0});
        app.post("/api/click", Some(&ada.token), &click)
            .await
            .0
            .as_u16()
    };
    assert_eq!(click_as_ada().await, 401, "no room while Bob plays");
    let (status, _) = app.post("/api/leave", Some(&bob.token), &json!({})).await;
    assert_eq!(status.as_u16(), 200);
    assert_ne!(
        click_as_ada().await,
        401,
        "her token still works once there is room"
    );
    let (_, snap) = app.get("/api/snapshot").await;
    assert_eq!(snap["players"][0]["id"], ada.id, "{snap}");
    app.server.stop().await;
}
