//! # The event log: numbered events, serialised once, in a ring buffer
//!
//! What every transport sends is an event of this log: a [`WireEvent`] holds one event already
//! serialised in the forms the transports write (its JSON, a ready SSE block and a ready
//! WebSocket frame), so all four send the same bytes, nobody serialises an event twice, and a
//! fan-out to thousands of sockets hands each the same shared buffer instead of encoding it
//! thousands of times. The hub appends to a [`Log`] and
//! keeps the last `--history` of them; a client that reconnects asks for "everything after seq N"
//! ([`Log::after`]) and gets a [`Batch`].
//!
//! This module is a leaf: it knows nothing of the game's rules, the hub or any transport, so
//! `metrics` and `persist` can use it without reaching back into the hub. (The road not taken:
//! these types lived in `hub.rs`, and `metrics` and `persist` imported the hub that imported
//! them.) The ring buffer is one process's memory; a server sharing one game between several
//! processes would keep the same interface over a shared log (a Redis Stream, say).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use actix_web::web::Bytes;
use bytestring::ByteString;

/// Milliseconds since the Unix epoch, the clock of every `ts`.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One event, serialised once, in the forms the transports send.
#[derive(Debug)]
pub struct WireEvent {
    pub seq: u64,
    /// When the event happened (server ms); delivery lag is measured from here.
    pub ts: u64,
    /// The `type` tag; the SSE `event:` name.
    pub kind: &'static str,
    /// The event's JSON: a WebSocket text frame, an element of a poll's `events` array.
    pub json: ByteString,
    /// `id: <seq>\nevent: <type>\ndata: <json>\n\n`.
    pub sse: Bytes,
    /// The JSON as a complete server-to-client WebSocket text frame (header + payload).
    pub ws: Bytes,
}

impl WireEvent {
    pub fn new(seq: u64, ts: u64, kind: &'static str, json: String) -> WireEvent {
        let sse = format!("id: {seq}\nevent: {kind}\ndata: {json}\n\n");
        WireEvent {
            seq,
            ts,
            kind,
            ws: text_frame(json.as_bytes()),
            json: ByteString::from(json),
            sse: Bytes::from(sse),
        }
    }
}

/// An unmasked, final WebSocket text frame carrying `payload` (RFC 6455 §5.2): the opcode
/// byte, the length in 7, 7+16 or 7+64 bits, the payload. Servers never mask.
pub fn text_frame(payload: &[u8]) -> Bytes {
    const FIN_TEXT: u8 = 0x81;
    let len = payload.len();
    let mut frame = Vec::with_capacity(len + 10);
    frame.push(FIN_TEXT);
    match u16::try_from(len) {
        Ok(n) if n < 126 => frame.push(n as u8),
        Ok(n) => {
            frame.push(126);
            frame.extend_from_slice(&n.to_be_bytes());
        }
        Err(_) => {
            frame.push(127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(payload);
    Bytes::from(frame)
}

/// What a client needs to catch up: possibly a snapshot, then events, in order.
#[derive(Debug)]
pub struct Batch {
    pub events: Vec<Arc<WireEvent>>,
    /// The seq the client is at after applying `events`.
    pub last_seq: u64,
}

/// The ring buffer of recent events: at most `capacity`, consecutive, ending at `last_seq`.
#[derive(Debug)]
pub struct Log {
    events: VecDeque<Arc<WireEvent>>,
    capacity: usize,
    last_seq: u64,
}

impl Log {
    /// A log holding `history` (oldest first, the newest ones kept if there are more than
    /// `capacity`), whose last seq is `last_seq` — which may lie beyond the history when the
    /// events before it are gone.
    pub fn new(capacity: usize, history: Vec<Arc<WireEvent>>, last_seq: u64) -> Log {
        let capacity = capacity.max(1);
        let mut log = Log {
            events: VecDeque::with_capacity(capacity),
            capacity,
            last_seq,
        };
        for event in history {
            log.push(event);
        }
        log.last_seq = last_seq;
        log
    }

    /// The seq of the newest event (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Events after `since`, or `None` when they are no longer (or not yet) all here.
    pub fn after(&self, since: u64) -> Option<Vec<Arc<WireEvent>>> {
        if since > self.last_seq {
            return None;
        }
        let first = self.events.front().map_or(self.last_seq + 1, |e| e.seq);
        if since + 1 < first {
            return None;
        }
        let skip = (since + 1 - first) as usize;
        Some(self.events.iter().skip(skip).cloned().collect())
    }

    /// Appends the next event, dropping the oldest when full.
    pub fn push(&mut self, event: Arc<WireEvent>) {
        if self.events.len() == self.capacity {
            self.events.pop_front();
        }
        self.last_seq = event.seq;
        self.events.push_back(event);
    }

    /// The events held, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<WireEvent>> {
        self.events.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: u64) -> Arc<WireEvent> {
        Arc::new(WireEvent::new(
            seq,
            1,
            "scores_reset",
            format!(r#"{{"seq":{seq},"ts":1,"type":"scores_reset"}}"#),
        ))
    }

    #[test]
    fn the_log_answers_after_since_only_while_it_holds_every_event_after_it() {
        let mut log = Log::new(3, Vec::new(), 0);
        assert_eq!(log.after(0).map(|v| v.len()), Some(0));
        for seq in 1..=5 {
            log.push(event(seq));
        }
        let seqs = |v: Option<Vec<Arc<WireEvent>>>| v.map(|v| v.iter().map(|e| e.seq).collect());
        assert_eq!(seqs(log.after(2)), Some(vec![3, 4, 5]));
        assert_eq!(seqs(log.after(5)), Some(vec![]));
        assert_eq!(seqs(log.after(1)), None, "seq 2 fell out of the ring");
        assert_eq!(seqs(log.after(6)), None, "ahead of the log");
        assert_eq!(log.last_seq(), 5);
    }

    #[test]
    fn a_restored_log_keeps_its_last_seq_and_the_newest_history() {
        let log = Log::new(2, (8..=10).map(event).collect(), 10);
        assert_eq!(log.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![9, 10]);
        assert_eq!(log.last_seq(), 10);
        let empty = Log::new(2, Vec::new(), 41);
        assert_eq!(empty.after(41).map(|v| v.len()), Some(0));
        assert!(empty.after(40).is_none(), "the events before 41 are gone");
    }

    #[test]
    fn a_text_frame_is_what_a_websocket_client_decodes_whatever_the_length() {
        use actix_codec::Decoder;
        use actix_http::ws::{Codec, Frame};
        for len in [0, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            let payload = "x".repeat(len);
            let mut wire = actix_web::web::BytesMut::from(&text_frame(payload.as_bytes())[..]);
            let mut client = Codec::new().client_mode().max_size(1 << 20);
            let frame = client.decode(&mut wire).expect("a valid frame");
            assert_eq!(
                frame,
                Some(Frame::Text(Bytes::from(payload))),
                "length {len}"
            );
            assert!(wire.is_empty(), "length {len}: nothing left over");
        }
    }

    #[test]
    fn an_event_is_serialised_once_into_json_and_an_sse_block() {
        let e = event(7);
        assert_eq!(&*e.json, r#"{"seq":7,"ts":1,"type":"scores_reset"}"#);
        assert_eq!(
            &e.sse[..],
            b"id: 7\nevent: scores_reset\ndata: {\"seq\":7,\"ts\":1,\"type\":\"scores_reset\"}\n\n"
        );
    }
}
