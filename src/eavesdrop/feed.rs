//! # The feed: what the relays saw, numbered, in a ring buffer
//!
//! Every observation gets the next `seq`; the lecturer's page asks for everything after the
//! last `seq` it has (`?since=N`), like the game's own AJAX polling. The ring keeps the newest
//! [`super::FEED_CAPACITY`] records: a page that falls further behind simply misses the oldest,
//! and the server never holds more than that, however much traffic passes.

use std::collections::VecDeque;

use serde::Serialize;

use super::{Dir, Kind, RelayKind, Seen, TlsSeen};

/// One record as `GET /api/admin/eavesdrop` sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Record {
    pub seq: u64,
    /// The relay connection it belongs to (numbered per server start).
    pub conn: u64,
    pub relay: RelayKind,
    pub dir: Dir,
    pub bytes: u64,
    pub kind: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub hex: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSeen>,
    pub tampered: bool,
}

#[derive(Debug)]
pub struct Feed {
    records: VecDeque<Record>,
    capacity: usize,
    last_seq: u64,
}

impl Feed {
    pub fn new(capacity: usize) -> Feed {
        Feed {
            records: VecDeque::with_capacity(capacity.min(4096)),
            capacity: capacity.max(1),
            last_seq: 0,
        }
    }

    pub fn push(&mut self, conn: u64, relay: RelayKind, dir: Dir, seen: Seen) {
        self.last_seq += 1;
        if self.records.len() == self.capacity {
            self.records.pop_front();
        }
        self.records.push_back(Record {
            seq: self.last_seq,
            conn,
            relay,
            dir,
            bytes: seen.bytes,
            kind: seen.kind,
            text: seen.text.map(super::cap_text),
            hex: seen.hex,
            // Whatever a parser put there, a record stays small: the ring's capacity is what
            // bounds the feed's memory only if every record is bounded too.
            tls: seen.tls.map(|mut tls| {
                tls.handshake_type = tls
                    .handshake_type
                    .map(|t| super::cap_field(t, super::MAX_FIELD));
                tls.sni = tls.sni.map(|t| super::cap_field(t, super::MAX_FIELD));
                tls
            }),
            tampered: seen.tampered,
        });
    }

    /// Up to `max` records with `seq > since`, oldest first, and the seq to continue from:
    /// the last one returned, or the newest there is when nothing is new.
    pub fn since(&self, since: u64, max: usize) -> (Vec<Record>, u64) {
        // Seqs are consecutive, so the first wanted record's index is arithmetic.
        let first_seq = self.records.front().map_or(self.last_seq + 1, |r| r.seq);
        let skip = since.saturating_add(1).saturating_sub(first_seq);
        let out: Vec<Record> = self
            .records
            .iter()
            .skip(usize::try_from(skip).unwrap_or(usize::MAX))
            .take(max)
            .cloned()
            .collect();
        let last = out.last().map_or(self.last_seq, |r| r.seq);
        (out, last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(n: u64) -> Seen {
        Seen {
            kind: Kind::Raw,
            bytes: n,
            text: None,
            hex: String::new(),
            tls: None,
            tampered: false,
        }
    }

    #[test]
    fn a_record_cut_to_size_keeps_no_more_memory_than_it_shows() {
        // The attack session's TLS flood: descriptions of 160 KB cut to 3 KiB kept their whole
        // allocation, so 1,600 connections grew the server to 212 MB with the feed "capped".
        let mut feed = Feed::new(2);
        let mut big = seen(1);
        big.text = Some("x".repeat(160_000));
        big.tls = Some(TlsSeen {
            content_type: "handshake".into(),
            record_version: "TLS 1.0".into(),
            negotiated: None,
            length: 0,
            handshake_type: Some("y".repeat(100_000)),
            sni: Some("z".repeat(60_000)),
        });
        feed.push(1, RelayKind::Tls, Dir::ClientToServer, big);
        let r = &feed.records[0];
        let text = r.text.as_ref().unwrap();
        assert!(
            text.capacity() <= super::super::MAX_TEXT + 8,
            "{}",
            text.capacity()
        );
        let tls = r.tls.as_ref().unwrap();
        for field in [&tls.handshake_type, &tls.sni].into_iter().flatten() {
            assert!(
                field.capacity() <= super::super::MAX_FIELD + 8,
                "{}",
                field.capacity()
            );
        }
    }

    #[test]
    fn the_ring_keeps_the_newest_records_and_since_pages_through_them() {
        let mut feed = Feed::new(3);
        for n in 1..=5 {
            feed.push(1, RelayKind::Plain, Dir::ClientToServer, seen(n));
        }
        let (all, last) = feed.since(0, 10);
        assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(last, 5);
        let (page, last) = feed.since(3, 1);
        assert_eq!(page.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![4]);
        assert_eq!(last, 4);
        let (none, last) = feed.since(5, 10);
        assert!(none.is_empty());
        assert_eq!(last, 5);
        let (none, last) = feed.since(99, 10);
        assert!(none.is_empty());
        assert_eq!(last, 5, "a cursor from the future is brought back");
    }
}
