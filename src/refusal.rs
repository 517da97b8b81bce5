//! # Refusals, named by the defence that made them
//!
//! Every time the server says no — a `403` for a foreign `Origin`, a `400` for a missing
//! sub-protocol, a `1009` close for an oversized frame, a `429` for a click flood — one of the
//! lecture's defences fired. This module gives each refusal its **rule** ([`Rule`]: `origin`,
//! `subprotocol`, `input`, `auth`, `rate_limit`, `size`, `server_data`), so that the server can
//!
//! * count them, always: `clickgame_refusals_total{rule="…"}` on `/metrics` (`metrics.rs`);
//! * and, with `--lab`, keep the last ones in a [`DefenceLog`] the lecturer watches live
//!   (`GET /api/admin/lab/log`, `lab/`), with the status or close code, the origin and the
//!   client's address.
//!
//! A refusal is recognised by its machine-readable error code (`origin_not_allowed`,
//! `message_too_big`, …), the one every HTTP body and WebSocket `error` reply already carries:
//! [`Rule::of_error`] is the one table. An HTTP refusal announces itself to the middleware that
//! counts them by the [`Refused`] extension [`ApiError`](crate::error::ApiError) puts on its
//! response; the WebSocket reports its closes and `error` replies itself. Answers that are the
//! game's rules rather than a defence (`name_taken`, `round_not_started`, `404`) have no rule
//! and are not counted.
//!
//! A leaf: pure data, no actix, so `metrics`, `error` and `lab` can all use it.

use std::collections::VecDeque;
use std::net::SocketAddr;

use serde::Serialize;

/// The defence a refusal came from. The five WSS best practices of the lecture, plus the two
/// limits that keep one client from exhausting the server (rates, sizes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// Check the Origin header: `403 origin_not_allowed`, `403 cross_site_request`.
    Origin,
    /// Inspect the WebSocket sub-protocol: `400 subprotocol_required`.
    Subprotocol,
    /// Validate client input: `400 bad_json`/`invalid_name`/…, `415`, closes `1002`/`1003`/`1007`.
    Input,
    /// Authenticate and authorise: `401 unauthorized`, `403 impersonation`, `403 admin_required`.
    Auth,
    /// Rate and connection limits: `429`, `503 server_busy`.
    RateLimit,
    /// Size limits: `413 payload_too_large`, close `1009`.
    Size,
    /// Validate server data: a page refused what the server sent (reported by the page).
    ServerData,
}

impl Rule {
    /// Every rule, in [`Rule::index`] order.
    pub const ALL: [Rule; 7] = [
        Rule::Origin,
        Rule::Subprotocol,
        Rule::Input,
        Rule::Auth,
        Rule::RateLimit,
        Rule::Size,
        Rule::ServerData,
    ];

    pub const COUNT: usize = Rule::ALL.len();

    /// Position in [`Rule::ALL`], for per-rule counters.
    pub fn index(self) -> usize {
        match self {
            Rule::Origin => 0,
            Rule::Subprotocol => 1,
            Rule::Input => 2,
            Rule::Auth => 3,
            Rule::RateLimit => 4,
            Rule::Size => 5,
            Rule::ServerData => 6,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Origin => "origin",
            Rule::Subprotocol => "subprotocol",
            Rule::Input => "input",
            Rule::Auth => "auth",
            Rule::RateLimit => "rate_limit",
            Rule::Size => "size",
            Rule::ServerData => "server_data",
        }
    }

    /// The rule behind an error code the server sends (HTTP body, WebSocket `error` reply or
    /// the name of a close), or `None` for an answer that is no defence's refusal.
    pub fn of_error(code: &str) -> Option<Rule> {
        Some(match code {
            "origin_not_allowed" | "cross_site_request" => Rule::Origin,
            "subprotocol_required" => Rule::Subprotocol,
            "bad_json"
            | "bad_query"
            | "bad_message"
            | "bad_handshake"
            | "bad_last_event_id"
            | "invalid_name"
            | "unsupported_media_type"
            | "out_of_board"
            | "bad_interval"
            | "bad_delay"
            | "unsupported_data"
            | "invalid_payload"
            | "protocol_error"
            | "too_many_bad_messages" => Rule::Input,
            "unauthorized" | "impersonation" | "admin_required" => Rule::Auth,
            "rate_limited"
            | "too_many_joins"
            | "too_many_connections"
            | "too_many_tickets"
            | "server_busy" => Rule::RateLimit,
            "payload_too_large" | "message_too_big" => Rule::Size,
            "rendered_as_text" | "event_ignored" => Rule::ServerData,
            _ => return None,
        })
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an error response carries in its extensions so the counting middleware knows it was a
/// refusal: the status and the error code and detail of its JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub status: u16,
    pub error: &'static str,
    pub detail: String,
}

/// `code` of a refusal a page reported: there was no status or close code on the wire, the
/// page itself declined what it received.
pub const NO_WIRE_CODE: u16 = 0;

/// One refusal, as it is counted and logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub rule: Rule,
    /// The HTTP status, the WebSocket close code, the status an in-band `error` reply stands
    /// for (`403` for `impersonation`), or [`NO_WIRE_CODE`] for a page's report.
    pub code: u16,
    /// The machine-readable code (`origin_not_allowed`, `message_too_big`, …).
    pub error: &'static str,
    pub detail: String,
    /// The request's `Origin`, if it sent one.
    pub origin: Option<String>,
    /// The client's address.
    pub peer: Option<SocketAddr>,
}

/// Longest detail or origin a log entry keeps, in bytes: they may quote what a client sent.
pub const MAX_ENTRY_TEXT: usize = 300;

/// One entry of `GET /api/admin/lab/log`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub seq: u64,
    /// When, in ms since the Unix epoch.
    pub ts: u64,
    pub rule: Rule,
    pub code: u16,
    pub error: &'static str,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// `address:port`, or `unknown`.
    pub peer: String,
}

/// The last refusals, numbered, in a ring buffer: a page asks for everything after the last
/// `seq` it has (`?since=N`), like the game's own polling. However many refusals a flood
/// causes, the server holds at most `capacity` of them.
#[derive(Debug)]
pub struct DefenceLog {
    entries: VecDeque<Entry>,
    capacity: usize,
    last_seq: u64,
}

impl DefenceLog {
    pub fn new(capacity: usize) -> DefenceLog {
        DefenceLog {
            entries: VecDeque::with_capacity(capacity.min(1024)),
            capacity: capacity.max(1),
            last_seq: 0,
        }
    }

    pub fn push(&mut self, refusal: Refusal, ts: u64) -> u64 {
        self.last_seq += 1;
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
        }
        self.entries.push_back(Entry {
            seq: self.last_seq,
            ts,
            rule: refusal.rule,
            code: refusal.code,
            error: refusal.error,
            detail: cut(refusal.detail),
            origin: refusal.origin.map(cut),
            peer: refusal
                .peer
                .map_or_else(|| "unknown".to_string(), |p| p.to_string()),
        });
        self.last_seq
    }

    /// Up to `max` entries with `seq > since`, oldest first, and the seq to ask from next: the
    /// last one returned, or the newest there is when nothing is new.
    pub fn since(&self, since: u64, max: usize) -> (Vec<Entry>, u64) {
        let out: Vec<Entry> = self
            .entries
            .iter()
            .filter(|e| e.seq > since)
            .take(max)
            .cloned()
            .collect();
        let last = out.last().map_or(self.last_seq, |e| e.seq);
        (out, last)
    }

    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }
}

/// Cuts text to [`MAX_ENTRY_TEXT`] bytes at a character boundary.
fn cut(mut text: String) -> String {
    if text.len() > MAX_ENTRY_TEXT {
        let mut end = MAX_ENTRY_TEXT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
        // Without this the entry keeps the whole allocation (a 30 KB `Origin` header, quoted).
        text.shrink_to_fit();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(n: u16) -> Refusal {
        Refusal {
            rule: Rule::Origin,
            code: n,
            error: "origin_not_allowed",
            detail: "é".repeat(400),
            origin: None,
            peer: Some("127.0.0.1:9".parse().unwrap()),
        }
    }

    #[test]
    fn every_rule_has_its_own_slot_and_name() {
        for (i, rule) in Rule::ALL.iter().enumerate() {
            assert_eq!(rule.index(), i);
            assert_eq!(
                serde_json::to_value(rule).unwrap(),
                serde_json::json!(rule.as_str())
            );
        }
        assert_eq!(Rule::of_error("origin_not_allowed"), Some(Rule::Origin));
        assert_eq!(Rule::of_error("message_too_big"), Some(Rule::Size));
        assert_eq!(Rule::of_error("impersonation"), Some(Rule::Auth));
        assert_eq!(
            Rule::of_error("name_taken"),
            None,
            "a game rule, not a defence"
        );
    }

    #[test]
    fn the_log_keeps_the_newest_and_answers_after_a_seq() {
        let mut log = DefenceLog::new(3);
        for n in 1..=5 {
            assert_eq!(log.push(refusal(n), 1000 + u64::from(n)), u64::from(n));
        }
        let (all, last) = log.since(0, 100);
        assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4, 5]);
        assert_eq!(last, 5);
        let (some, last) = log.since(3, 1);
        assert_eq!((some.len(), some[0].seq, last), (1, 4, 4));
        let (none, last) = log.since(5, 10);
        assert!(none.is_empty());
        assert_eq!(last, 5);
        assert!(all[0].detail.len() <= MAX_ENTRY_TEXT + '…'.len_utf8());
        // The stored entry, not only its copy, is small (`since` clones to the exact length).
        let stored = log.entries.back().unwrap();
        assert!(
            stored.detail.capacity() <= MAX_ENTRY_TEXT + 8,
            "{}",
            stored.detail.capacity()
        );
        assert_eq!(all[0].peer, "127.0.0.1:9");
    }
}
