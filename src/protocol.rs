//! # Wire types shared by all transports
//!
//! Requests are parsed into these strict types (`deny_unknown_fields`, exact types), so anything
//! unexpected is refused before it reaches the game. Mirrored for the browser in
//! `web/js/protocol.js`; documented with examples in `docs/protocol.md`.

use serde::{Deserialize, Serialize};

use crate::game::{Click, ClickOutcome, PlayerId};
use crate::log::Batch;

/// The WebSocket sub-protocol we speak; a handshake must offer it.
pub const WS_SUBPROTOCOL: &str = "clickgame.v1";

/// `POST /api/join`.
#[derive(Debug, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct JoinRequest {
    pub name: String,
}

/// `POST /api/click`, and the body of a WebSocket `click` message.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(remote = "Self", deny_unknown_fields)]
pub struct ClickRequest {
    pub round: u64,
    pub x: f64,
    pub y: f64,
    /// The player the click claims to come from. Optional, and never needed: who clicks comes
    /// from the session. A click naming anybody else is `403 impersonation`
    /// (`command::click_identity`); only the lab, with its `auth` defence off, trusts it.
    #[serde(default)]
    pub player: Option<PlayerId>,
}

impl From<ClickRequest> for Click {
    fn from(c: ClickRequest) -> Click {
        Click {
            round: c.round,
            x: c.x,
            y: c.y,
        }
    }
}

/// `?since=N&epoch=E` on the downstream GETs.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeQuery {
    pub since: Option<u64>,
    pub epoch: Option<String>,
    /// A one-time ticket from `POST /api/ticket`, authenticating this connection.
    pub ticket: Option<String>,
    /// `1`: watch as a spectator even if a session cookie rides along.
    pub spectate: Option<u8>,
}

/// What a client may send over the WebSocket.
#[derive(Debug, Deserialize)]
#[serde(
    remote = "Self",
    tag = "type",
    rename_all = "snake_case",
    deny_unknown_fields
)]
pub enum ClientMessage {
    /// "I have seen up to `since` of `epoch`": (re)start the event stream from there.
    Resume {
        #[serde(default)]
        since: Option<u64>,
        #[serde(default)]
        epoch: Option<String>,
    },
    Click {
        #[serde(default)]
        id: Option<i64>,
        round: u64,
        x: f64,
        y: f64,
        /// As in [`ClickRequest::player`].
        #[serde(default)]
        player: Option<PlayerId>,
    },
}

/// serde's derived structs also accept an *array* of the field values: `["Ada"]` for
/// `{"name":"Ada"}`, `[5,410.5,99]` for a click, `["click",7,5,410.5,99]` for a WebSocket click.
/// The protocol is JSON objects only, so the request types above derive their deserializer as an
/// inherent function (`#[serde(remote = "Self")]`), and this wraps it to take nothing but an
/// object: anything else is "invalid type: sequence, expected a JSON object".
macro_rules! objects_only {
    ($($ty:ident),*) => {$(
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<$ty, D::Error> {
                struct Object;
                impl<'de> serde::de::Visitor<'de> for Object {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str("a JSON object")
                    }
                    fn visit_map<A>(self, map: A) -> Result<$ty, A::Error>
                    where
                        A: serde::de::MapAccess<'de>,
                    {
                        // The inherent, derived `deserialize`, fed the object's entries.
                        $ty::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    }
                }
                deserializer.deserialize_map(Object)
            }
        }
    )*};
}

objects_only!(JoinRequest, ClickRequest, ClientMessage);

/// Decodes one WebSocket text message, exactly as the socket does; the error is the `detail`
/// of the `bad_message` reply. Pure, so `fuzz/` can hammer it.
pub fn decode_client_message(text: &str) -> Result<ClientMessage, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// The WebSocket reply to a `click`.
#[derive(Debug, Serialize)]
pub struct ClickReply {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: Option<i64>,
    #[serde(flatten)]
    pub outcome: ClickOutcome,
}

/// A WebSocket `error` message; `id` echoes the request it answers.
#[derive(Debug, Serialize)]
pub struct ErrorReply<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: Option<i64>,
    pub error: &'a str,
    pub detail: &'a str,
}

/// `{"events":[...],"last_seq":N}`, assembled from the pre-serialised events so polling sends
/// exactly the bytes the other transports send.
pub fn poll_body(batch: &Batch) -> String {
    let size: usize = batch.events.iter().map(|e| e.json.len() + 1).sum();
    let mut body = String::with_capacity(size + 32);
    body.push_str("{\"events\":[");
    for (i, event) in batch.events.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&event.json);
    }
    body.push_str("],\"last_seq\":");
    body.push_str(&batch.last_seq.to_string());
    body.push('}');
    body
}
