//! One client per transport, speaking `docs/protocol.md` from the outside, with errors reported
//! instead of panics: [`Downstream`] receives events, [`Clicker`] sends clicks.
//!
//! Every event comes back with the [`Instant`] its bytes were read, taken before parsing, so
//! the client's own JSON work is not charged to the transport.

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use awc::ws;
use futures_util::{SinkExt, Stream, StreamExt};
use serde::{de, Deserialize, Deserializer};

/// The four transports, by their protocol names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Ajax,
    Longpoll,
    Sse,
    Websocket,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Ajax, Kind::Longpoll, Kind::Sse, Kind::Websocket];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Ajax => "ajax",
            Kind::Longpoll => "longpoll",
            Kind::Sse => "sse",
            Kind::Websocket => "websocket",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What went wrong with a client, for the report.
#[derive(Debug)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

fn err(context: &str, e: impl fmt::Display) -> Error {
    Error(format!("{context}: {e}"))
}

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    Snapshot,
    PlayerJoined,
    PlayerLeft,
    PlayerTransport,
    RoundStarted,
    ClickMissed,
    RoundWon,
    #[serde(other)]
    Other,
}

/// The fields of an event this tool looks at; everything else is skipped unread.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub seq: u64,
    pub ts: u64,
    #[serde(rename = "type")]
    pub kind: EventType,
    #[serde(default)]
    pub player: Option<u64>,
    #[serde(default)]
    pub misses: Option<u64>,
    /// A number in round events; the snapshot's `round` object gives its `number`.
    #[serde(default, deserialize_with = "round_number")]
    pub round: Option<u64>,
    /// `x`, `y`: the target of a `round_started` (read by the latency bench).
    #[serde(default)]
    #[allow(dead_code)]
    pub x: Option<u32>,
    #[serde(default)]
    #[allow(dead_code)]
    pub y: Option<u32>,
    #[serde(default)]
    pub epoch: Option<String>,
}

fn round_number<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<u64>, D::Error> {
    struct V;
    impl<'de> de::Visitor<'de> for V {
        type Value = Option<u64>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a round number, a round object or null")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Self::Value, E> {
            Ok(Some(v))
        }
        fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D2: Deserializer<'de>>(
            self,
            d: D2,
        ) -> std::result::Result<Self::Value, D2::Error> {
            d.deserialize_any(V)
        }
        fn visit_map<A: de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> std::result::Result<Self::Value, A::Error> {
            let mut number = None;
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if key == "number" {
                    number = Some(map.next_value::<u64>()?);
                } else {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
            Ok(number)
        }
    }
    d.deserialize_any(V)
}

/// Where to reach the server, and with which client (one per source address).
#[derive(Clone)]
pub struct Target {
    pub client: awc::Client,
    /// `http://127.0.0.1:PORT` or `https://...`.
    pub base: String,
}

/// The state a new client resumes from: after `since` of `epoch` (no snapshot first).
#[derive(Debug, Clone, Default)]
pub struct Resume {
    pub since: Option<u64>,
    pub epoch: Option<String>,
}

impl Resume {
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
}

type ByteStream = Pin<Box<dyn Stream<Item = std::result::Result<Bytes, awc::error::PayloadError>>>>;
type WsFramed = actix_codec::Framed<awc::BoxedSocket, ws::Codec>;

enum Conn {
    Polling { next_poll: Option<Instant> },
    Sse { body: ByteStream, pending: Vec<u8> },
    Ws(Box<WsFramed>),
}

/// `{"events":[...],"last_seq":N}`.
#[derive(Deserialize)]
struct PollBody {
    events: Vec<Event>,
    last_seq: u64,
}

/// A receiving client on one transport.
pub struct Downstream {
    pub kind: Kind,
    target: Target,
    token: Option<String>,
    resume: Resume,
    conn: Conn,
    /// AJAX only: polls start on this fixed clock, whatever the answers take.
    poll_interval: Duration,
    queue: VecDeque<(Instant, Event)>,
    /// Counters the caller may clone and read while the client runs in a task of its own.
    pub stats: Rc<Stats>,
}

/// What one downstream client did, readable from outside its task.
#[derive(Debug, Default)]
pub struct Stats {
    /// Downstream HTTP requests made (the opening one included).
    pub requests: Cell<u64>,
    /// Of those, answered with no event (empty poll, or long poll 204).
    pub empty_requests: Cell<u64>,
    /// Bytes of event JSON received (WebSocket frame payloads, SSE `data:`); for polling the
    /// whole response body.
    pub payload_bytes: Cell<u64>,
}

fn bump(cell: &Cell<u64>, by: u64) {
    cell.set(cell.get() + by);
}

impl Downstream {
    /// Connects (SSE, WebSocket) or prepares to poll. With a `resume` point the stream starts
    /// after it; without one it starts with a snapshot.
    pub async fn open(
        target: &Target,
        kind: Kind,
        token: Option<&str>,
        resume: Resume,
        poll_interval: Duration,
    ) -> Result<Downstream> {
        let mut d = Downstream {
            kind,
            target: target.clone(),
            token: token.map(str::to_string),
            resume,
            conn: Conn::Polling { next_poll: None },
            poll_interval,
            queue: VecDeque::new(),
            stats: Rc::new(Stats::default()),
        };
        d.connect().await?;
        Ok(d)
    }

    async fn connect(&mut self) -> Result<()> {
        match self.kind {
            Kind::Ajax | Kind::Longpoll => {}
            Kind::Sse => {
                let mut req = self
                    .target
                    .client
                    .get(format!(
                        "{}/api/sse{}",
                        self.target.base,
                        self.resume.query()
                    ))
                    .timeout(Duration::from_secs(30));
                if let Some(t) = &self.token {
                    req = req.bearer_auth(t);
                }
                bump(&self.stats.requests, 1);
                let res = req.send().await.map_err(|e| err("sse connect", e))?;
                if res.status().as_u16() != 200 {
                    return Err(Error(format!("sse: status {}", res.status())));
                }
                self.conn = Conn::Sse {
                    body: Box::pin(res),
                    pending: Vec::new(),
                };
            }
            Kind::Websocket => {
                let mut req = self
                    .target
                    .client
                    .ws(format!("{}/api/ws", self.target.base))
                    .protocols(["clickgame.v1"]);
                if let Some(t) = &self.token {
                    req = req.bearer_auth(t);
                }
                bump(&self.stats.requests, 1);
                let (_, mut framed) = req.connect().await.map_err(|e| err("ws connect", e))?;
                let resume = serde_json::json!({
                    "type": "resume", "since": self.resume.since, "epoch": self.resume.epoch
                });
                framed
                    .send(ws::Message::Text(resume.to_string().into()))
                    .await
                    .map_err(|e| err("ws resume", e))?;
                self.conn = Conn::Ws(Box::new(framed));
            }
        }
        Ok(())
    }

    /// The next event and when its bytes arrived.
    pub async fn next(&mut self) -> Result<(Instant, Event)> {
        loop {
            if let Some(item) = self.queue.pop_front() {
                if item.1.kind == EventType::Snapshot {
                    self.resume.epoch = item.1.epoch.clone();
                }
                self.resume.since = Some(item.1.seq);
                return Ok(item);
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> Result<()> {
        match &mut self.conn {
            Conn::Polling { next_poll } => {
                let ajax = self.kind == Kind::Ajax;
                if ajax {
                    let now = Instant::now();
                    let at = next_poll.unwrap_or(now);
                    if at > now {
                        actix_web::rt::time::sleep_until(tokio::time::Instant::from_std(at)).await;
                    }
                    // A fixed clock: a slow answer does not push the later polls back.
                    let mut next = at + self.poll_interval;
                    if next < Instant::now() {
                        next = Instant::now();
                    }
                    *next_poll = Some(next);
                }
                let path = if ajax { "poll" } else { "longpoll" };
                let mut req = self
                    .target
                    .client
                    .get(format!(
                        "{}/api/{path}{}",
                        self.target.base,
                        self.resume.query()
                    ))
                    .timeout(Duration::from_secs(700));
                if let Some(t) = &self.token {
                    req = req.bearer_auth(t);
                }
                bump(&self.stats.requests, 1);
                let mut res = req.send().await.map_err(|e| err(path, e))?;
                let status = res.status().as_u16();
                let body = res.body().limit(16 << 20).await.map_err(|e| err(path, e))?;
                let at = Instant::now();
                bump(&self.stats.payload_bytes, body.len() as u64);
                if status == 204 {
                    bump(&self.stats.empty_requests, 1);
                    return Ok(());
                }
                if status != 200 {
                    return Err(Error(format!(
                        "{path}: status {status}: {}",
                        String::from_utf8_lossy(&body)
                    )));
                }
                let poll: PollBody =
                    serde_json::from_slice(&body).map_err(|e| err("poll body", e))?;
                if poll.events.is_empty() {
                    bump(&self.stats.empty_requests, 1);
                }
                self.resume.since = Some(poll.last_seq);
                self.queue.extend(poll.events.into_iter().map(|e| (at, e)));
            }
            Conn::Sse { body, pending } => {
                let chunk = body
                    .next()
                    .await
                    .ok_or_else(|| Error("sse: stream ended".into()))?
                    .map_err(|e| err("sse read", e))?;
                let at = Instant::now();
                pending.extend_from_slice(&chunk);
                while let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
                    let block: Vec<u8> = pending.drain(..end + 2).collect();
                    // A cluster node names itself first (`event: node`, no seq): not an event.
                    if block.starts_with(b"event: node\n") {
                        continue;
                    }
                    for line in block.split(|&b| b == b'\n') {
                        if let Some(data) = line.strip_prefix(b"data: ") {
                            bump(&self.stats.payload_bytes, data.len() as u64);
                            let event: Event =
                                serde_json::from_slice(data).map_err(|e| err("sse data", e))?;
                            self.queue.push_back((at, event));
                        }
                    }
                }
            }
            Conn::Ws(framed) => match framed.next().await {
                Some(Ok(ws::Frame::Text(bytes))) => {
                    let at = Instant::now();
                    bump(&self.stats.payload_bytes, bytes.len() as u64);
                    // Replies (`click_result`, `error`) have no seq; this client only listens.
                    if let Ok(event) = serde_json::from_slice::<Event>(&bytes) {
                        self.queue.push_back((at, event));
                    }
                }
                Some(Ok(ws::Frame::Ping(p))) => {
                    framed
                        .send(ws::Message::Pong(p))
                        .await
                        .map_err(|e| err("ws pong", e))?;
                }
                Some(Ok(ws::Frame::Close(reason))) => {
                    return Err(Error(format!("ws closed by server: {reason:?}")))
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(err("ws read", e)),
                None => return Err(Error("ws: connection ended".into())),
            },
        }
        Ok(())
    }
}

/// A joined player.
#[derive(Debug, Clone)]
pub struct Player {
    pub id: u64,
    pub token: String,
}

pub async fn join(target: &Target, name: &str) -> Result<Player> {
    let mut res = target
        .client
        .post(format!("{}/api/join", target.base))
        .timeout(Duration::from_secs(10))
        .send_json(&serde_json::json!({ "name": name }))
        .await
        .map_err(|e| err("join", e))?;
    let body: serde_json::Value = res.json().await.map_err(|e| err("join body", e))?;
    if res.status().as_u16() != 201 {
        return Err(Error(format!("join: status {}: {body}", res.status())));
    }
    let id = body["player_id"]
        .as_u64()
        .ok_or_else(|| Error(format!("join: no player_id in {body}")))?;
    let token = body["token"]
        .as_str()
        .ok_or_else(|| Error(format!("join: no token in {body}")))?
        .to_string();
    Ok(Player { id, token })
}

/// The current state: `(seq, epoch, round number if a round exists)`.
pub async fn snapshot(target: &Target) -> Result<(u64, String, Option<u64>)> {
    let mut res = target
        .client
        .get(format!("{}/api/snapshot", target.base))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|e| err("snapshot", e))?;
    let snap: Event = res.json().await.map_err(|e| err("snapshot body", e))?;
    let epoch = snap
        .epoch
        .ok_or_else(|| Error("snapshot without epoch".into()))?;
    Ok((snap.seq, epoch, snap.round))
}

pub type ClickSink = futures_util::stream::SplitSink<WsFramed, ws::Message>;
pub type ReplyStream = futures_util::stream::SplitStream<WsFramed>;

/// Sends clicks as `player`: in-band on a WebSocket of its own, or `POST /api/click`.
pub enum Clicker {
    Http { target: Target, player: Player },
    Ws(Box<WsFramed>),
}

impl Clicker {
    /// A clicking connection for `player`. The WebSocket one never sends `resume`, so it receives
    /// only replies to its clicks.
    pub async fn open(target: &Target, player: &Player, in_band: bool) -> Result<Clicker> {
        if !in_band {
            return Ok(Clicker::Http {
                target: target.clone(),
                player: player.clone(),
            });
        }
        let (_, framed) = target
            .client
            .ws(format!("{}/api/ws", target.base))
            .protocols(["clickgame.v1"])
            .bearer_auth(&player.token)
            .connect()
            .await
            .map_err(|e| err("clicker ws connect", e))?;
        Ok(Clicker::Ws(Box::new(framed)))
    }

    /// Splits a WebSocket clicker into its sending and receiving halves, so clicks can go out
    /// on a clock while another task reads the replies.
    pub fn split(self) -> Result<(ClickSink, ReplyStream)> {
        match self {
            Clicker::Ws(framed) => Ok((*framed).split()),
            Clicker::Http { .. } => Err(Error("split: not a WebSocket clicker".into())),
        }
    }

    pub fn click_json(id: u64, round: u64, x: f64, y: f64) -> String {
        format!(r#"{{"type":"click","id":{id},"round":{round},"x":{x},"y":{y}}}"#)
    }

    /// Sends one click without waiting for its answer (WebSocket only).
    pub async fn send(&mut self, id: u64, round: u64, x: f64, y: f64) -> Result<()> {
        match self {
            Clicker::Ws(framed) => framed
                .send(ws::Message::Text(Self::click_json(id, round, x, y).into()))
                .await
                .map_err(|e| err("click send", e)),
            Clicker::Http { .. } => Err(Error("send: not a WebSocket clicker".into())),
        }
    }

    /// The next reply on the WebSocket (`click_result` or `error`), answering pings.
    pub async fn reply(&mut self) -> Result<serde_json::Value> {
        let Clicker::Ws(framed) = self else {
            return Err(Error("reply: not a WebSocket clicker".into()));
        };
        loop {
            match framed.next().await {
                Some(Ok(ws::Frame::Text(bytes))) => {
                    let reply: serde_json::Value =
                        serde_json::from_slice(&bytes).map_err(|e| err("click reply", e))?;
                    // A cluster node names itself first: not a reply.
                    if reply["type"] != "node" {
                        return Ok(reply);
                    }
                }
                Some(Ok(ws::Frame::Ping(p))) => framed
                    .send(ws::Message::Pong(p))
                    .await
                    .map_err(|e| err("ws pong", e))?,
                Some(Ok(ws::Frame::Close(reason))) => {
                    return Err(Error(format!("clicker closed by server: {reason:?}")))
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(err("clicker read", e)),
                None => return Err(Error("clicker: connection ended".into())),
            }
        }
    }

    /// Clicks and waits for the result object.
    pub async fn click(&mut self, round: u64, x: f64, y: f64) -> Result<serde_json::Value> {
        match self {
            Clicker::Http { target, player } => {
                let mut res = target
                    .client
                    .post(format!("{}/api/click", target.base))
                    .bearer_auth(&player.token)
                    .timeout(Duration::from_secs(10))
                    .send_json(&serde_json::json!({"round": round, "x": x, "y": y}))
                    .await
                    .map_err(|e| err("click", e))?;
                let body: serde_json::Value = res.json().await.map_err(|e| err("click body", e))?;
                if res.status().as_u16() != 200 {
                    return Err(Error(format!("click: status {}: {body}", res.status())));
                }
                Ok(body)
            }
            Clicker::Ws(_) => {
                self.send(0, round, x, y).await?;
                self.reply().await
            }
        }
    }
}
