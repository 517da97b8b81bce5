//! # Attacks 3–6: what a malicious *client* sends, no victim's browser needed
//!
//! Attacks 1 and 2 on the attacker's page run in the visitor's browser: they need the victim's
//! cookie, which only the victim's browser attaches. The other four need nobody: an attacker
//! sends them from a script, like `curl` — so here the attacker's site sends them itself, as an
//! ordinary HTTP and WebSocket client of the game (awc, no `Origin` header: a non-browser
//! client, which the Origin check lets through on purpose, see `docs/security.md` §1). Each
//! attack returns a [`Transcript`]: what it sent, what came back, and whether it worked.
//!
//! 3. **Wrong protocol**: a handshake without `clickgame.v1`, one offering another sub-protocol,
//!    then a message in that foreign format.
//! 4. **Oversized and malformed input**: a 1 MiB frame, a binary frame, invalid UTF-8, a flood of
//!    clicks, a name carrying a script.
//! 5. **Impersonation**: a click that names another player in its `player` field.
//! 6. **Poisoned server data**: a player name with markup, for the other students' pages.
//!
//! Every step is bounded in time ([`STEP_TIMEOUT`]) and the site runs one attack at a time, so
//! the attacker's page cannot be turned into a load generator against the game.
//!
//! Each attack runs against the game's plain listener ([`Game::new`]) or, from the attacker's
//! page opened over `https://`, against its TLS listener ([`Game::over_tls`]): the same
//! messages inside TLS, and the same answers. TLS protects the channel between the two ends;
//! what one end sends, the other still has to judge.

use std::time::Duration;

use actix_web::web::Bytes;
use awc::ws;
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{json, Value};

/// The longest any one step (a request, a handshake, waiting for a frame) may take.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// The oversized frame of attack 4: 1 MiB, 256 times the game's 4 KiB limit.
pub const BIG_FRAME: usize = 1024 * 1024;
/// Clicks attack 4 sends back to back (the limit is 20 a second per player).
pub const FLOOD_CLICKS: usize = 40;
/// Attack 5 clicks at most this many rounds per transport: a round that ended before the click
/// landed (expired, or just won) is followed by the next one, so the attack shows a real hit.
pub const CLAIM_ATTEMPTS: usize = 3;

/// What one attack did.
#[derive(Debug, Clone, Serialize)]
pub struct Transcript {
    pub attack: u8,
    pub title: &'static str,
    /// The defence that stops it.
    pub defence: &'static str,
    /// Where it went: the game's base URL (`http://…` or `https://…`).
    pub target: String,
    pub succeeded: bool,
    /// The defence said no: the attack failed with the defence's own status or close code (not
    /// for some other reason, such as no round to click).
    pub refused: bool,
    pub summary: String,
    pub steps: Vec<Step>,
}

/// One thing the attack sent, and what came back.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub sent: String,
    pub answer: String,
    /// The server refused it.
    pub refused: bool,
}

impl Transcript {
    fn new(attack: u8, title: &'static str, defence: &'static str, game: &Game) -> Transcript {
        Transcript {
            attack,
            title,
            defence,
            target: game.base.clone(),
            succeeded: false,
            refused: false,
            summary: String::new(),
            steps: Vec::new(),
        }
    }

    /// Attacks 3, 4 and 6: it failed because the server refused a step.
    fn settle(&mut self) {
        self.refused = !self.succeeded && self.steps.iter().any(|s| s.refused);
    }

    fn step(&mut self, sent: impl Into<String>, answer: impl Into<String>, refused: bool) {
        self.steps.push(Step {
            sent: sent.into(),
            answer: answer.into(),
            refused,
        });
    }
}

type Socket = actix_codec::Framed<awc::BoxedSocket, ws::Codec>;

/// The game, as any outside client sees it: a base URL.
pub struct Game {
    pub client: awc::Client,
    /// `http://127.0.0.1:8080`, or `https://127.0.0.1:8443`
    pub base: String,
}

/// A round as the public snapshot shows it.
#[derive(Debug, Clone, Copy)]
struct Round {
    number: u64,
    x: f64,
    y: f64,
    /// Neither won nor expired when the snapshot was taken.
    open: bool,
}

impl Round {
    fn of(snapshot: &Value) -> Option<Round> {
        let r = &snapshot["round"];
        Some(Round {
            number: r["number"].as_u64()?,
            x: r["x"].as_f64()?,
            y: r["y"].as_f64()?,
            open: r["winner"].is_null() && !r["expired"].as_bool().unwrap_or(false),
        })
    }
}

/// What the next frame from the server was.
enum Heard {
    Text(String),
    Close(Option<u16>),
    Nothing(&'static str),
}

impl Game {
    /// The game's plain listener: `http://…` and `ws://…`.
    pub fn new(base: String) -> Game {
        Game {
            client: awc::Client::builder().timeout(STEP_TIMEOUT).finish(),
            base,
        }
    }

    /// The game's TLS listener: `https://…` and `wss://…`. The attacker does not check the
    /// game's certificate (like `curl -k`): certificate checks protect a client from a
    /// man in the middle, and this client is the attacker. HTTP/1.1 only, as a browser's
    /// WebSocket handshake is (awc has no WebSockets over HTTP/2).
    pub fn over_tls(base: String) -> Result<Game, String> {
        use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
        let mut tls = SslConnector::builder(SslMethod::tls_client()).map_err(|e| e.to_string())?;
        tls.set_verify(SslVerifyMode::NONE);
        tls.set_alpn_protos(b"\x08http/1.1")
            .map_err(|e| e.to_string())?;
        let connector = awc::Connector::new()
            .timeout(STEP_TIMEOUT)
            .openssl(tls.build());
        Ok(Game {
            client: awc::Client::builder()
                .connector(connector)
                .timeout(STEP_TIMEOUT)
                .finish(),
            base,
        })
    }

    /// A request's status and JSON body (or the error that stopped it, as the answer text).
    async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Result<(u16, Value), String> {
        let mut req = self.client.post(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let mut res = req.send_json(body).await.map_err(|e| e.to_string())?;
        let bytes = res.body().await.map_err(|e| e.to_string())?;
        Ok((res.status().as_u16(), parse(&bytes)))
    }

    pub async fn snapshot(&self) -> Result<Value, String> {
        let mut res = self
            .client
            .get(format!("{}/api/snapshot", self.base))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let bytes = res
            .body()
            .limit(4 * 1024 * 1024)
            .await
            .map_err(|e| e.to_string())?;
        Ok(parse(&bytes))
    }

    /// A round to click after round `after`: the running one if it is open; else the next one
    /// to start, within `wait` (it may have ended already when seen: a click on it still shows
    /// whose identity the server takes). At `wait`'s end, with no newer round (the game is
    /// paused), the last one however it ended; `None` without any round above `after`.
    async fn round_after(&self, after: u64, wait: Duration) -> Option<Round> {
        let until = tokio::time::Instant::now() + wait;
        // The newest round seen that is not live; the next one to start is what we wait for.
        let mut ended: Option<Round> = None;
        loop {
            if let Some(round) = self.snapshot().await.ok().as_ref().and_then(Round::of) {
                let newer = ended.map_or(round.number > after, |e| round.number > e.number);
                if newer && (round.open || ended.is_some()) {
                    return Some(round);
                }
                if round.number > after && ended.is_none() {
                    ended = Some(round);
                }
            }
            if tokio::time::Instant::now() >= until {
                return ended;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A WebSocket to `/api/ws` offering `protocols`; the refusal's status as `Err` text. Also
    /// returns the sub-protocol the server chose.
    async fn socket(
        &self,
        protocols: &[&str],
        token: Option<&str>,
    ) -> Result<(Socket, Option<String>), String> {
        let mut req = self
            .client
            .ws(format!("{}/api/ws", self.base))
            .max_frame_size(64 * 1024);
        if !protocols.is_empty() {
            req = req.protocols(protocols);
        }
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        match tokio::time::timeout(STEP_TIMEOUT, req.connect()).await {
            Ok(Ok((res, socket))) => {
                let chosen = res
                    .headers()
                    .get("sec-websocket-protocol")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                Ok((socket, chosen))
            }
            Ok(Err(awc::error::WsClientError::InvalidResponseStatus(status))) => {
                Err(format!("HTTP {} before any upgrade", status.as_u16()))
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer within 5 s".into()),
        }
    }

    /// Joins under `name`: `Ok((id, token))`, or the refusal as text.
    async fn join(&self, name: &str) -> Result<(u64, String), String> {
        match self
            .post("/api/join", None, &json!({ "name": name }))
            .await?
        {
            (201, body) => Ok((
                body["player_id"].as_u64().unwrap_or(0),
                body["token"].as_str().unwrap_or("").to_string(),
            )),
            (status, body) => Err(status_text(status, &body)),
        }
    }

    async fn leave(&self, token: &str) {
        let _ = self.post("/api/leave", Some(token), &json!({})).await;
    }
}

/// The next frame worth telling about (pings are answered, pongs skipped), within the timeout.
async fn hear(socket: &mut Socket, within: Duration) -> Heard {
    let until = tokio::time::Instant::now() + within;
    loop {
        let next = tokio::time::timeout_at(until, socket.next()).await;
        match next {
            Err(_) => return Heard::Nothing("no answer"),
            Ok(None) => return Heard::Nothing("the connection ended without a close frame"),
            Ok(Some(Err(_))) => return Heard::Nothing("the connection failed"),
            Ok(Some(Ok(ws::Frame::Text(t)))) => {
                return Heard::Text(String::from_utf8_lossy(&t).into_owned())
            }
            Ok(Some(Ok(ws::Frame::Close(reason)))) => {
                return Heard::Close(reason.map(|r| u16::from(r.code)))
            }
            Ok(Some(Ok(ws::Frame::Ping(p)))) => {
                let _ = socket.send(ws::Message::Pong(p)).await;
            }
            Ok(Some(Ok(_))) => {}
        }
    }
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

fn status_text(status: u16, body: &Value) -> String {
    match body["error"].as_str() {
        Some(code) => format!(
            "{status} {code}: {}",
            body["detail"].as_str().unwrap_or_default()
        ),
        None => format!("{status} {body}"),
    }
}

fn close_text(code: Option<u16>) -> String {
    let name = match code {
        Some(1002) => " (protocol error)",
        Some(1003) => " (unsupported data)",
        Some(1007) => " (invalid payload: not UTF-8)",
        Some(1008) => " (policy violation)",
        Some(1009) => " (message too big)",
        _ => "",
    };
    code.map_or_else(
        || "closed without a code".to_string(),
        |c| format!("closed with {c}{name}"),
    )
}

/// Cuts a long answer for display.
fn short(text: &str) -> String {
    const MAX: usize = 240;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Attack 3: wrong protocol.
pub async fn wrong_protocol(game: &Game) -> Transcript {
    let mut t = Transcript::new(3, "Wrong protocol", "sub-protocol inspection", game);
    match game.socket(&[], None).await {
        Ok((mut s, _)) => {
            t.step(
                "WebSocket handshake offering no sub-protocol",
                "101: upgraded",
                false,
            );
            t.succeeded = true;
            let _ = s.close().await;
        }
        Err(e) => t.step("WebSocket handshake offering no sub-protocol", e, true),
    }
    match game.socket(&["stomp.v12"], None).await {
        Ok((mut s, chosen)) => {
            t.succeeded = true;
            t.step(
                "WebSocket handshake offering only the sub-protocol stomp.v12",
                format!(
                    "101: upgraded, the server answered Sec-WebSocket-Protocol: {}",
                    chosen.as_deref().unwrap_or("(none)")
                ),
                false,
            );
            let frame = "SEND\ndestination:/queue/score\n\n{\"points\":1000}\u{0}";
            let answer = match s.send(ws::Message::Text(frame.into())).await {
                Err(e) => format!("could not send: {e}"),
                Ok(()) => match hear(&mut s, STEP_TIMEOUT).await {
                    Heard::Text(text) => format!(
                        "the server read it as clickgame.v1 and answered {}",
                        short(&text)
                    ),
                    Heard::Close(code) => close_text(code),
                    Heard::Nothing(why) => why.to_string(),
                },
            };
            t.step(
                "a STOMP frame: SEND /queue/score {\"points\":1000}",
                answer,
                false,
            );
            let _ = s.close().await;
        }
        Err(e) => t.step(
            "WebSocket handshake offering only the sub-protocol stomp.v12",
            e,
            true,
        ),
    }
    t.summary = if t.succeeded {
        "The server upgraded a connection that does not speak clickgame.v1: from here it reads \
         another protocol's messages as its own."
            .into()
    } else {
        "Refused before the upgrade: 400 subprotocol_required (see the defence log).".into()
    };
    t.settle();
    t
}

/// Attack 4: oversized and malformed input.
pub async fn bad_input(game: &Game, attacker: &str) -> Transcript {
    let mut t = Transcript::new(4, "Oversized and malformed input", "input validation", game);
    // 1. A 1 MiB frame: a `resume` message padded with an unknown field.
    let what = format!("one text frame of {} KiB on /api/ws", BIG_FRAME / 1024);
    match game.socket(&["clickgame.v1"], None).await {
        Err(e) => t.step(what, e, true),
        Ok((mut s, _)) => {
            let head = "{\"type\":\"resume\",\"pad\":\"";
            let mut big = String::with_capacity(BIG_FRAME);
            big.push_str(head);
            big.extend(std::iter::repeat_n('a', BIG_FRAME - head.len() - 2));
            big.push_str("\"}");
            let heard = match s.send(ws::Message::Text(big.into())).await {
                Err(_) => Heard::Nothing("could not send the frame"),
                Ok(()) => hear(&mut s, STEP_TIMEOUT).await,
            };
            match heard {
                Heard::Text(text) => {
                    t.succeeded = true;
                    t.step(
                        what,
                        format!(
                            "accepted: the server buffered and parsed all of it, then answered {}",
                            short(&text)
                        ),
                        false,
                    );
                }
                Heard::Close(code) => t.step(what, close_text(code), true),
                Heard::Nothing(why) => t.step(what, why, true),
            }
            let _ = s.close().await;
        }
    }
    // 2. A binary frame (JSON inside).
    let what = "a binary frame holding {\"type\":\"resume\"}";
    match game.socket(&["clickgame.v1"], None).await {
        Err(e) => t.step(what, e, true),
        Ok((mut s, _)) => {
            let _ = s
                .send(ws::Message::Binary(Bytes::from_static(
                    b"{\"type\":\"resume\"}",
                )))
                .await;
            match hear(&mut s, STEP_TIMEOUT).await {
                Heard::Text(text) => t.step(
                    what,
                    format!("read as text: the stream started with {}", short(&text)),
                    false,
                ),
                Heard::Close(code) => t.step(what, close_text(code), true),
                Heard::Nothing(why) => t.step(what, why, true),
            }
            let _ = s.close().await;
        }
    }
    // 3. Invalid UTF-8 in a text message (two fragments: a client library will not send it whole).
    let what = "a text message of invalid UTF-8 (0xC3 0x28)";
    match game.socket(&["clickgame.v1"], None).await {
        Err(e) => t.step(what, e, true),
        Ok((mut s, _)) => {
            let _ = s
                .send(ws::Message::Continuation(actix_http::ws::Item::FirstText(
                    Bytes::from_static(b"\xc3"),
                )))
                .await;
            let _ = s
                .send(ws::Message::Continuation(actix_http::ws::Item::Last(
                    Bytes::from_static(b"\x28"),
                )))
                .await;
            match hear(&mut s, STEP_TIMEOUT).await {
                Heard::Text(text) => t.step(what, format!("answered {}", short(&text)), false),
                Heard::Close(code) => t.step(what, close_text(code), true),
                Heard::Nothing(why) => t.step(what, why, true),
            }
        }
    }
    // 4. A flood of clicks from one player.
    let what = format!("{FLOOD_CLICKS} clicks back to back from one player on one WebSocket");
    match game.join(attacker).await {
        Err(e) => t.step(format!("join as {attacker}, to flood"), e, true),
        Ok((_, token)) => {
            match game.socket(&["clickgame.v1"], Some(&token)).await {
                Err(e) => t.step(what, e, true),
                Ok((mut s, _)) => {
                    // A round far ahead: each click is a fair "round not started" answer, so the
                    // flood fills nobody's screen with misses; the limit counts it all the same.
                    for id in 0..FLOOD_CLICKS {
                        let msg = json!({"type": "click", "id": id, "round": 1_000_000_000u64, "x": 1, "y": 1});
                        if s.send(ws::Message::Text(msg.to_string().into()))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                    let (mut judged, mut limited, mut closed) = (0, 0, None);
                    for _ in 0..FLOOD_CLICKS {
                        match hear(&mut s, STEP_TIMEOUT).await {
                            Heard::Text(text) if text.contains("\"rate_limited\"") => limited += 1,
                            Heard::Text(_) => judged += 1,
                            Heard::Close(code) => {
                                closed = Some(close_text(code));
                                break;
                            }
                            Heard::Nothing(_) => break,
                        }
                    }
                    let answer = format!(
                        "{judged} answered, {limited} refused rate_limited (429){}",
                        closed.map_or(String::new(), |c| format!(", then {c}"))
                    );
                    t.step(what, answer, limited > 0);
                }
            }
            game.leave(&token).await;
        }
    }
    // 5. A name carrying a script.
    let name = "<script>alert('lab')</script>";
    let what = format!("POST /api/join {{\"name\": \"{name}\"}}");
    match game.join(name).await {
        Ok((id, token)) => {
            t.step(
                what,
                format!("201: stored as player {id} (and removed again at once)"),
                false,
            );
            game.leave(&token).await;
        }
        Err(e) => t.step(what, e, true),
    }
    t.summary = if t.succeeded {
        "The 1 MiB frame went through: with input validation off the server buffers and parses \
         what it should have refused from the frame header (its hard ceiling is 2 MiB)."
            .into()
    } else {
        "The 1 MiB frame was refused with close 1009 as soon as its header announced the size."
            .into()
    };
    t.settle();
    t
}

/// How the server took one click that claimed to be another player.
enum Claim {
    /// Answered as a click of that player (any result: hit, miss, late, expired): the server
    /// believed the message's `player` field. The result, as the server named it.
    Taken(String),
    /// Refused `403 impersonation` (an `error` reply on the WebSocket): the `auth` defence.
    Impersonation,
    /// Anything else: another refusal, or no answer. The attack says what, and stops.
    Other,
}

impl Claim {
    /// A result that scored nothing because the round was no longer live: worth a retry.
    fn too_late(&self) -> bool {
        matches!(self, Claim::Taken(r) if r == "expired" || r == "late")
    }
}

fn claim_of_http(status: u16, body: &Value) -> Claim {
    match (status, body["error"].as_str()) {
        (200, _) => Claim::Taken(body["result"].as_str().unwrap_or("?").to_string()),
        (403, Some("impersonation")) => Claim::Impersonation,
        _ => Claim::Other,
    }
}

fn claim_of_reply(text: &str) -> Claim {
    let reply: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    match (reply["type"].as_str(), reply["error"].as_str()) {
        (Some("click_result"), _) => {
            Claim::Taken(reply["result"].as_str().unwrap_or("?").to_string())
        }
        (Some("error"), Some("impersonation")) => Claim::Impersonation,
        _ => Claim::Other,
    }
}

/// The next reply to a command on `socket` (the stream's events skipped), within the timeout.
async fn hear_reply(socket: &mut Socket) -> Heard {
    let until = tokio::time::Instant::now() + STEP_TIMEOUT;
    loop {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        match hear(socket, left).await {
            Heard::Text(text)
                if !text.contains("\"type\":\"click_result\"")
                    && !text.contains("\"type\":\"error\"") => {}
            heard => return heard,
        }
    }
}

/// Attack 5: impersonation. `victim`: the player to click as (the first other one if `None`).
///
/// The verdict comes from the server's answers, never from the score alone: a click answered as
/// the victim's — `200` over HTTP, a `click_result` on the WebSocket, whatever its result — means
/// the server believed the message. A round that ended before the click landed is followed by
/// the next one (up to [`CLAIM_ATTEMPTS`]), so the attack normally shows a real hit.
pub async fn impersonation(game: &Game, attacker: &str, victim: Option<u64>) -> Transcript {
    let mut t = Transcript::new(5, "Impersonation", "authentication / authorisation", game);
    let score_of = |snap: &Value, id: u64| {
        snap["players"]
            .as_array()
            .and_then(|ps| ps.iter().find(|p| p["id"].as_u64() == Some(id)))
            .and_then(|p| p["score"].as_u64())
    };
    let snap = game.snapshot().await.unwrap_or(Value::Null);
    let victim = victim
        .filter(|id| score_of(&snap, *id).is_some())
        .or_else(|| {
            snap["players"].as_array().and_then(|ps| {
                ps.iter()
                    .filter(|p| {
                        p["name"]
                            .as_str()
                            .is_some_and(|n| !n.starts_with("Mallory") && !n.contains('<'))
                    })
                    .find_map(|p| p["id"].as_u64())
            })
        });
    let Some(victim) = victim else {
        t.summary = "Nobody to impersonate: join the game in another tab first.".into();
        return t;
    };
    let before = score_of(&snap, victim).unwrap_or(0);
    let (me, token) = match game.join(attacker).await {
        Ok(joined) => joined,
        Err(e) => {
            t.step(format!("join as {attacker}"), e, false);
            t.summary = "Could not join to attack.".into();
            return t;
        }
    };
    t.step(
        format!("join as {attacker}"),
        format!("201: player {me}"),
        false,
    );
    let mut claims = Vec::new();

    // Over HTTP: POST /api/click with the attacker's token and the victim's id. `spent`: the
    // round a click came too late for; a retry waits for a newer one.
    let mut spent = 0;
    for _ in 0..CLAIM_ATTEMPTS {
        let Some(round) = game.round_after(spent, STEP_TIMEOUT).await else {
            t.step(
                "wait for a round to click",
                "no round within 5 s (is the game paused?)",
                false,
            );
            break;
        };
        spent = round.number;
        let what = format!(
            "POST /api/click as {attacker}, on round {}'s target, with \"player\": {victim}",
            round.number
        );
        let click = json!({"round": round.number, "x": round.x, "y": round.y, "player": victim});
        let claim = match game.post("/api/click", Some(&token), &click).await {
            Ok((status, body)) => {
                let claim = claim_of_http(status, &body);
                let answer = match claim {
                    Claim::Taken(_) => format!("200 {body}"),
                    _ => status_text(status, &body),
                };
                t.step(what, answer, !matches!(claim, Claim::Taken(_)));
                claim
            }
            Err(e) => {
                t.step(what, e, false);
                Claim::Other
            }
        };
        let again = claim.too_late();
        claims.push(claim);
        if !again {
            break;
        }
    }

    // On a WebSocket: the same click as a `click` message.
    let what = format!("a WebSocket as {attacker}");
    match game.socket(&["clickgame.v1"], Some(&token)).await {
        Err(e) => t.step(what, e, true),
        Ok((mut s, _)) => {
            let mut spent = 0;
            for id in 1..=CLAIM_ATTEMPTS {
                let Some(round) = game.round_after(spent, STEP_TIMEOUT).await else {
                    t.step(
                        "wait for a round to click",
                        "no round within 5 s (is the game paused?)",
                        false,
                    );
                    break;
                };
                spent = round.number;
                let what = format!(
                    "a click message on the WebSocket, on round {}'s target, with \"player\": {victim}",
                    round.number
                );
                let msg = json!({"type": "click", "id": id, "round": round.number,
                                 "x": round.x, "y": round.y, "player": victim});
                let claim = match s.send(ws::Message::Text(msg.to_string().into())).await {
                    Err(e) => {
                        t.step(what, format!("could not send: {e}"), false);
                        Claim::Other
                    }
                    Ok(()) => match hear_reply(&mut s).await {
                        Heard::Text(text) => {
                            let claim = claim_of_reply(&text);
                            t.step(what, short(&text), !matches!(claim, Claim::Taken(_)));
                            claim
                        }
                        Heard::Close(code) => {
                            t.step(what, close_text(code), true);
                            Claim::Other
                        }
                        Heard::Nothing(why) => {
                            t.step(what, why, false);
                            Claim::Other
                        }
                    },
                };
                let again = claim.too_late();
                claims.push(claim);
                if !again {
                    break;
                }
            }
            let _ = s.close().await;
        }
    }

    let after = game
        .snapshot()
        .await
        .ok()
        .and_then(|s| score_of(&s, victim))
        .unwrap_or(before);
    game.leave(&token).await;
    let taken: Vec<&str> = claims
        .iter()
        .filter_map(|c| match c {
            Claim::Taken(result) => Some(result.as_str()),
            _ => None,
        })
        .collect();
    t.succeeded = !taken.is_empty();
    t.refused = !t.succeeded && claims.iter().any(|c| matches!(c, Claim::Impersonation));
    t.summary = if t.succeeded && after > before {
        format!(
            "Player {victim}'s score went {before} → {after}: a win they never clicked, because \
             the server believed the message."
        )
    } else if t.succeeded {
        format!(
            "The server answered the click as player {victim}'s ({}): it believed the message. \
             No round was live when it landed, so nothing was scored — press again while a \
             target is up.",
            taken.join(", ")
        )
    } else if t.refused {
        format!(
            "403 impersonation. Player {victim}'s score stayed {before}; identity comes from the \
             session only."
        )
    } else {
        "No click reached a verdict (see the steps).".into()
    };
    t
}

/// Attack 6: a name with markup, for every other page to display. `n` keeps names apart.
pub async fn poisoned_name(game: &Game, n: u64) -> Transcript {
    let mut t = Transcript::new(
        6,
        "Poisoned server data",
        "validate server data (and input validation)",
        game,
    );
    let name = format!("<mark data-testid=\"lab-marker\">hacked {n}</mark>");
    let what = format!("POST /api/join {{\"name\": {}}}", json!(name));
    match game.join(&name).await {
        Ok((id, _)) => {
            t.succeeded = true;
            t.step(what, format!("201: stored as player {id}"), false);
            t.summary = "Stored: the markup is now in every page's scoreboard data. A page with \
                         server_data on shows it as text; with server_data off it renders a \
                         highlighted element — the injection. (It leaves after a minute idle.)"
                .into();
        }
        Err(e) => {
            t.step(what, e, true);
            t.summary = "Refused by input validation (400 invalid_name): the name never reached \
                         anyone. Either defence alone stops this attack."
                .into();
        }
    }
    t.settle();
    t
}
