//! `TestApp`: a server on port 0 and a few verbs to talk to it.

use awc::http::StatusCode;
use clickgame::config::Config;
use clickgame::server::{self, RunningServer};
use serde_json::Value;

pub struct TestApp {
    pub base: String,
    pub server: RunningServer,
    pub client: awc::Client,
    /// Keeps the data directory (certificate) alive for the test.
    pub data_dir: tempfile::TempDir,
}

pub struct Player {
    pub id: u64,
    pub token: String,
    pub snapshot: Value,
}

impl TestApp {
    /// Fast rounds, no jitter, fixed seed.
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(change: impl FnOnce(&mut Config)) -> TestApp {
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config::for_tests();
        config.data_dir = data_dir.path().to_path_buf();
        config.seed = Some(7);
        config.round_pause_ms = 40;
        config.round_pause_jitter_ms = 0;
        config.log = "warn".into();
        change(&mut config);
        let server = server::start(config).await.expect("server starts");
        TestApp {
            base: format!("http://{}", server.http_addr),
            data_dir,
            server,
            client: awc::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .finish(),
        }
    }

    /// A node of a cluster on `redis_url` (in this process; its own workers and I/O thread).
    /// Short leases, so failovers in tests take about a second.
    pub async fn spawn_node(
        redis_url: &str,
        node: &str,
        change: impl FnOnce(&mut Config),
    ) -> TestApp {
        let (url, node) = (redis_url.to_string(), node.to_string());
        TestApp::spawn_with(move |c| {
            c.redis_url = Some(url);
            c.node_id = Some(node.parse().expect("node id"));
            c.lease_ttl_ms = 1000;
            change(c);
        })
        .await
    }

    /// `/api/stats`'s `node` object.
    pub async fn node_stats(&self) -> Value {
        let (status, stats) = self.get("/api/stats").await;
        assert_eq!(status, StatusCode::OK, "{stats}");
        stats["node"].clone()
    }

    /// The server's own plain-HTTP origin, as a browser on the page would send it.
    pub fn origin(&self) -> String {
        self.base.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn join(&self, name: &str) -> Player {
        let (status, body) = self
            .post("/api/join", None, &serde_json::json!({ "name": name }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "join {name}: {body}");
        Player {
            id: body["player_id"].as_u64().expect("player_id"),
            token: body["token"].as_str().expect("token").to_string(),
            snapshot: body["snapshot"].clone(),
        }
    }

    /// POSTs JSON, optionally as a player; returns status and parsed body (Null if empty).
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
        self.post_raw(path, token, "application/json", body.to_string())
            .await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: String,
    ) -> (StatusCode, Value) {
        let mut req = self
            .client
            .post(self.url(path))
            .insert_header(("Content-Type", content_type));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        let mut res = req.send_body(body).await.expect("request completes");
        let bytes = res.body().await.expect("body");
        (res.status(), parse(&bytes))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let mut res = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request completes");
        let bytes = res.body().await.expect("body");
        (res.status(), parse(&bytes))
    }

    /// The current round and its target centre, waiting for one to be running (not yet won).
    pub async fn open_round(&self) -> (u64, f64, f64) {
        for _ in 0..400 {
            let (_, snap) = self.get("/api/snapshot").await;
            let round = &snap["round"];
            if round.is_object() && round["winner"].is_null() {
                return (
                    round["number"].as_u64().unwrap(),
                    round["x"].as_f64().unwrap(),
                    round["y"].as_f64().unwrap(),
                );
            }
            actix_web::rt::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("no round opened within 4 s");
    }

    /// Wins the current round as `player` through `POST /api/click`.
    pub async fn win_round(&self, player: &Player) -> u64 {
        let (round, x, y) = self.open_round().await;
        let (status, body) = self
            .post(
                "/api/click",
                Some(&player.token),
                &serde_json::json!({"round": round, "x": x, "y": y}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        round
    }
}

pub fn parse(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
    }
}

/// Asserts a JSON error body with the given code.
pub fn assert_error(status: StatusCode, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status.as_u16(), want_status, "status for {body}");
    assert_eq!(body["error"], want_code, "error code in {body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "a human detail in {body}"
    );
}
