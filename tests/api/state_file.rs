//! The data folder is input too (issue 9, item 7): saving never writes through what it finds
//! there, and a state file is read safely and restored only if it obeys the game's rules.
//! Otherwise it is kept aside as `state.json.bad-<time>` and the server starts fresh.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::TestApp;

/// A server on `dir` that saves and restores.
async fn start_on(dir: &Path) -> clickgame::server::RunningServer {
    let mut config = clickgame::config::Config::for_tests();
    config.no_persist = false;
    config.data_dir = dir.to_path_buf();
    config.log = "error".into();
    actix_web::rt::time::timeout(Duration::from_secs(10), clickgame::server::start(config))
        .await
        .expect("starts within 10 s")
        .expect("starts")
}

async fn players(server: &clickgame::server::RunningServer) -> Vec<Value> {
    let snap: Value = awc::Client::default()
        .get(format!("http://{}/api/snapshot", server.http_addr))
        .send()
        .await
        .unwrap()
        .json()
        .limit(1 << 20)
        .await
        .unwrap();
    snap["players"].as_array().unwrap().clone()
}

fn kept_aside(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("state.json.bad-"))
        .collect()
}

/// The state file a real game leaves: Ada won a round, Bob joined, the next round runs.
async fn a_saved_game() -> Value {
    let app = TestApp::spawn_with(|c| c.no_persist = false).await;
    let ada = app.join("Ada").await;
    app.join("Bob").await;
    app.win_round(&ada).await;
    app.open_round().await;
    let dir = app.data_dir.path().to_path_buf();
    app.server.stop().await;
    serde_json::from_slice(&std::fs::read(dir.join("state.json")).unwrap()).unwrap()
}

#[actix_web::test]
async fn a_planted_temp_symlink_is_not_written_through_when_the_game_is_saved() {
    let app = TestApp::spawn_with(|c| c.no_persist = false).await;
    let elsewhere = tempfile::tempdir().unwrap();
    let victim = elsewhere.path().join("victim.txt");
    std::fs::write(&victim, b"not yours").unwrap();
    let dir = app.data_dir.path().to_path_buf();
    std::os::unix::fs::symlink(&victim, dir.join("state.json.tmp")).unwrap();
    app.join("Ada").await;
    app.server.stop().await;
    assert_eq!(std::fs::read(&victim).unwrap(), b"not yours");
    let saved = std::fs::symlink_metadata(dir.join("state.json")).unwrap();
    assert!(saved.file_type().is_file());
    assert_eq!(saved.permissions().mode() & 0o777, 0o600);
    let again = start_on(&dir).await;
    assert_eq!(players(&again).await[0]["name"], "Ada", "and it restores");
    again.stop().await;
    drop(app.data_dir);
}

#[actix_web::test]
async fn a_planted_world_readable_temp_file_does_not_leave_the_secrets_readable() {
    let app = TestApp::spawn_with(|c| c.no_persist = false).await;
    let dir = app.data_dir.path().to_path_buf();
    let tmp = dir.join("state.json.tmp");
    std::fs::write(&tmp, b"").unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644)).unwrap();
    app.join("Ada").await;
    app.server.stop().await;
    let mode = std::fs::metadata(dir.join("state.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "session secrets stay private");
    drop(app.data_dir);
}

#[actix_web::test]
async fn a_state_file_linked_to_dev_zero_is_set_aside_unread_and_the_game_starts_fresh() {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("state.json")).unwrap();
    let server = start_on(dir.path()).await;
    assert!(players(&server).await.is_empty());
    let kept = kept_aside(dir.path());
    assert_eq!(kept.len(), 1);
    assert!(std::fs::symlink_metadata(&kept[0])
        .unwrap()
        .file_type()
        .is_symlink());
    server.stop().await;
}

#[actix_web::test]
async fn a_state_file_that_breaks_a_rule_of_the_game_is_set_aside_and_the_game_starts_fresh() {
    let good = a_saved_game().await;
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit); 9] = [
        ("unchanged (the control)", |_| {}),
        ("poll interval 0", |s| {
            s["state"]["poll_interval_ms"] = json!(0)
        }),
        ("markup in a name", |s| {
            s["state"]["players"][1]["name"] = json!("<img src=x onerror=alert(1)>")
        }),
        ("two names that look the same", |s| {
            s["state"]["players"][1]["name"] = json!("ADA")
        }),
        ("a round at x 5000 with radius 0", |s| {
            s["state"]["round"]["x"] = json!(5000);
            s["state"]["round"]["r"] = json!(0);
        }),
        ("next_player_id 2^64 - 1 (ids wrap)", |s| {
            s["next_player_id"] = json!(u64::MAX)
        }),
        ("two players with one id", |s| {
            let first = s["state"]["players"][0].clone();
            s["state"]["players"][1] = first;
        }),
        ("a session secret that is not hex", |s| {
            s["secrets"][0][1] = json!("not-a-secret")
        }),
        ("markup in a history event", |s| {
            let history = s["history"].as_array_mut().unwrap();
            let joined = history
                .iter_mut()
                .find(|e| e.as_str().unwrap().contains(r#""name":"Ada""#))
                .unwrap();
            *joined = json!(joined.as_str().unwrap().replace("Ada", "<b>Ada</b>"));
        }),
    ];
    let mut wrong = Vec::new();
    for (what, edit) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut saved = good.clone();
        edit(&mut saved);
        std::fs::write(dir.path().join("state.json"), saved.to_string()).unwrap();
        let server = start_on(dir.path()).await;
        let restored = !players(&server).await.is_empty();
        let kept = kept_aside(dir.path()).len();
        server.stop().await;
        let control = what.starts_with("unchanged");
        let want = if control { (true, 0) } else { (false, 1) };
        if (restored, kept) != want {
            wrong.push(format!(
                "{what}: restored {restored}, files kept aside {kept}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
