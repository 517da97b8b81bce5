//! Minimal clients for the four transports, each exposing the same `next()`: the next event, as
//! raw JSON text exactly as it came off the wire.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use actix_web::web::Bytes;
use awc::ws;
use futures_util::{SinkExt, Stream, StreamExt};
use serde_json::Value;

use crate::helpers::TestApp;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Ajax,
    Longpoll,
    Sse,
    Websocket,
}

pub const ALL: [Kind; 4] = [Kind::Ajax, Kind::Longpoll, Kind::Sse, Kind::Websocket];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Ajax => "ajax",
            Kind::Longpoll => "longpoll",
            Kind::Sse => "sse",
            Kind::Websocket => "websocket",
        }
    }
}

type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, awc::error::PayloadError>>>>;
type WsFramed = actix_codec::Framed<awc::BoxedSocket, ws::Codec>;

enum Conn {
    Polling,
    Sse { body: ByteStream, pending: String },
    Ws(Box<WsFramed>),
}

pub struct Downstream {
    pub kind: Kind,
    client: awc::Client,
    base: String,
    token: Option<String>,
    pub since: Option<u64>,
    pub epoch: Option<String>,
    conn: Conn,
    events: VecDeque<String>,
    replies: VecDeque<Value>,
    polled: bool,
    /// Times the server ended the connection and we reconnected (resuming from `since`).
    pub reconnects: u32,
    /// Close codes the server sent on WebSocket closes.
    pub close_codes: Vec<u16>,
    /// In a cluster: the node the stream said it is served by (SSE `event: node`, WebSocket
    /// `{"type":"node"}`); for polling, the `X-Clickgame-Node` of the last answer.
    pub node: Option<String>,
}

impl Downstream {
    /// Opens `kind` as `token`'s player (or a spectator), resuming after `since` of `epoch`.
    pub async fn open(
        app: &TestApp,
        kind: Kind,
        token: Option<&str>,
        since: Option<u64>,
        epoch: Option<&str>,
    ) -> Downstream {
        Downstream::open_via(app.client.clone(), &app.base, kind, token, since, epoch).await
    }

    /// Like `open`, through a given client and base URL (e.g. HTTPS with a pinned certificate).
    pub async fn open_via(
        client: awc::Client,
        base: &str,
        kind: Kind,
        token: Option<&str>,
        since: Option<u64>,
        epoch: Option<&str>,
    ) -> Downstream {
        let mut d = Downstream {
            kind,
            client,
            base: base.to_string(),
            token: token.map(str::to_string),
            since,
            epoch: epoch.map(str::to_string),
            conn: Conn::Polling,
            events: VecDeque::new(),
            replies: VecDeque::new(),
            polled: false,
            reconnects: 0,
            close_codes: Vec::new(),
            node: None,
        };
        d.connect().await;
        d
    }

    fn query(&self) -> String {
        let mut q = Vec::new();
        if let Some(s) = self.since {
            q.push(format!("since={s}"));
        }
        if let Some(e) = &self.epoch {
            q.push(format!("epoch={e}"));
        }
        if q.is_empty() {
            String::new()
        } else {
            format!("?{}", q.join("&"))
        }
    }

    async fn connect(&mut self) {
        match self.kind {
            Kind::Ajax | Kind::Longpoll => self.conn = Conn::Polling,
            Kind::Sse => {
                let mut req = self
                    .client
                    .get(format!("{}/api/sse{}", self.base, self.query()))
                    .timeout(Duration::from_secs(3600));
                if let Some(t) = &self.token {
                    req = req.bearer_auth(t);
                }
                let res = req.send().await.expect("sse connects");
                assert_eq!(res.status().as_u16(), 200);
                assert_eq!(
                    res.headers().get("content-type").unwrap(),
                    "text/event-stream"
                );
                self.conn = Conn::Sse {
                    body: Box::pin(res),
                    pending: String::new(),
                };
            }
            Kind::Websocket => {
                let mut req = self
                    .client
                    .ws(format!("{}/api/ws", self.base))
                    .protocols(["clickgame.v1"]);
                if let Some(t) = &self.token {
                    req = req.bearer_auth(t);
                }
                let (res, mut framed) = req.connect().await.expect("websocket connects");
                assert_eq!(
                    res.headers().get("sec-websocket-protocol").unwrap(),
                    "clickgame.v1"
                );
                let resume =
                    serde_json::json!({"type": "resume", "since": self.since, "epoch": self.epoch});
                framed
                    .send(ws::Message::Text(resume.to_string().into()))
                    .await
                    .expect("resume sent");
                self.conn = Conn::Ws(Box::new(framed));
            }
        }
    }

    /// The next event as raw JSON text, within 10 s.
    pub async fn next_raw(&mut self) -> String {
        let kind = self.kind;
        actix_web::rt::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(raw) = self.events.pop_front() {
                    let v: Value = serde_json::from_str(&raw).expect("event is JSON");
                    self.since = v["seq"].as_u64();
                    if v["type"] == "snapshot" {
                        self.epoch = v["epoch"].as_str().map(str::to_string);
                    }
                    return raw;
                }
                self.fill().await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{kind:?}: no event within 10 s"))
    }

    pub async fn next(&mut self) -> Value {
        serde_json::from_str(&self.next_raw().await).expect("event is JSON")
    }

    /// Reads events until one matches, returning it.
    pub async fn until(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        loop {
            let v = self.next().await;
            if pred(&v) {
                return v;
            }
        }
    }

    async fn fill(&mut self) {
        match &mut self.conn {
            Conn::Polling => {
                let path = if self.kind == Kind::Ajax {
                    "poll"
                } else {
                    "longpoll"
                };
                if self.kind == Kind::Ajax && self.polled {
                    actix_web::rt::time::sleep(Duration::from_millis(15)).await;
                }
                self.polled = true;
                let mut req = self
                    .client
                    .get(format!("{}/api/{path}{}", self.base, self.query()));
                if let Some(t) = &self.token {
                    req = req.bearer_auth(t);
                }
                let mut res = req.send().await.expect("poll completes");
                if let Some(node) = res.headers().get("x-clickgame-node") {
                    self.node = node.to_str().ok().map(str::to_string);
                }
                let status = res.status().as_u16();
                let body = res.body().await.expect("poll body");
                if status == 204 {
                    assert_eq!(self.kind, Kind::Longpoll);
                    assert!(body.is_empty());
                    return;
                }
                assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                #[derive(serde::Deserialize)]
                struct Poll<'a> {
                    #[serde(borrow)]
                    events: Vec<&'a serde_json::value::RawValue>,
                    last_seq: u64,
                }
                let poll: Poll = serde_json::from_slice(&body).expect("poll body shape");
                if self.kind == Kind::Longpoll {
                    assert!(
                        !poll.events.is_empty(),
                        "a long poll answers 200 only with events"
                    );
                }
                if let Some(last) = poll.events.last() {
                    let v: Value = serde_json::from_str(last.get()).unwrap();
                    assert_eq!(
                        v["seq"].as_u64(),
                        Some(poll.last_seq),
                        "last_seq is the last event's seq"
                    );
                }
                self.events
                    .extend(poll.events.iter().map(|e| e.get().to_string()));
            }
            Conn::Sse { body, pending } => {
                let Some(chunk) = body.next().await else {
                    self.reconnect().await;
                    return;
                };
                let chunk = chunk.expect("sse chunk");
                pending.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
                while let Some(end) = pending.find("\n\n") {
                    let block: String = pending.drain(..end + 2).collect();
                    let mut id = None;
                    let mut event = None;
                    let mut data = None;
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("id: ") {
                            id = Some(v.to_string());
                        } else if let Some(v) = line.strip_prefix("event: ") {
                            event = Some(v.to_string());
                        } else if let Some(v) = line.strip_prefix("data: ") {
                            data = Some(v.to_string());
                        }
                    }
                    if event.as_deref() == Some("node") {
                        let v: Value = serde_json::from_str(data.as_deref().unwrap_or("{}"))
                            .expect("node data is JSON");
                        assert!(id.is_none(), "the node greeting carries no id");
                        self.node = v["node"].as_str().map(str::to_string);
                        continue;
                    }
                    if let Some(data) = data {
                        let v: Value = serde_json::from_str(&data).expect("sse data is JSON");
                        assert_eq!(
                            id.as_deref(),
                            Some(v["seq"].to_string().as_str()),
                            "id: is the seq"
                        );
                        assert_eq!(event.as_deref(), v["type"].as_str(), "event: is the type");
                        self.events.push_back(data);
                    }
                }
            }
            Conn::Ws(framed) => match framed.next().await {
                Some(Ok(ws::Frame::Text(bytes))) => {
                    let text = String::from_utf8(bytes.to_vec()).expect("utf-8");
                    let v: Value = serde_json::from_str(&text).expect("ws text is JSON");
                    if v["type"] == "node" {
                        self.node = v["node"].as_str().map(str::to_string);
                    } else if v.get("seq").is_some() {
                        self.events.push_back(text);
                    } else {
                        self.replies.push_back(v);
                    }
                }
                Some(Ok(ws::Frame::Ping(p))) => {
                    let _ = framed.send(ws::Message::Pong(p)).await;
                }
                Some(Ok(ws::Frame::Close(reason))) => {
                    self.close_codes
                        .push(reason.map_or(1005, |r| u16::from(r.code)));
                    self.reconnect().await;
                }
                other => panic!("websocket failed: {other:?}"),
            },
        }
    }

    /// Reconnects after the server ended the connection, resuming after the last event
    /// received (including those buffered but not yet read).
    async fn reconnect(&mut self) {
        for raw in &self.events {
            let v: Value = serde_json::from_str(raw).expect("event is JSON");
            self.since = v["seq"].as_u64();
            if v["type"] == "snapshot" {
                self.epoch = v["epoch"].as_str().map(str::to_string);
            }
        }
        self.reconnects += 1;
        self.connect().await;
    }

    /// Clicks the way this transport's browser client does: in-band on the WebSocket,
    /// `POST /api/click` otherwise. Returns the result object.
    pub async fn click(&mut self, round: u64, x: f64, y: f64) -> Value {
        if let Conn::Ws(framed) = &mut self.conn {
            let msg =
                serde_json::json!({"type": "click", "id": 99, "round": round, "x": x, "y": y});
            framed
                .send(ws::Message::Text(msg.to_string().into()))
                .await
                .expect("click sent");
            return actix_web::rt::time::timeout(Duration::from_secs(10), async {
                loop {
                    if let Some(reply) = self.replies.pop_front() {
                        return reply;
                    }
                    self.fill().await;
                }
            })
            .await
            .expect("click reply within 10 s");
        }
        let token = self.token.clone().expect("a player clicks");
        let mut res = self
            .client
            .post(format!("{}/api/click", self.base))
            .bearer_auth(&token)
            .send_json(&serde_json::json!({"round": round, "x": x, "y": y}))
            .await
            .expect("click completes");
        let body: Value = res.json().await.expect("click body");
        assert_eq!(res.status().as_u16(), 200, "{body}");
        body
    }

    /// Sends a raw text frame (WebSocket only) and returns the next reply.
    pub async fn ws_send_raw(&mut self, text: &str) -> Value {
        let Conn::Ws(framed) = &mut self.conn else {
            panic!("not a websocket")
        };
        framed
            .send(ws::Message::Text(text.to_string().into()))
            .await
            .expect("sent");
        actix_web::rt::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(reply) = self.replies.pop_front() {
                    return reply;
                }
                self.fill().await;
            }
        })
        .await
        .expect("reply within 10 s")
    }
}
