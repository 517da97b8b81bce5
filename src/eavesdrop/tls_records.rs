//! # TLS as an eavesdropper reads it: the record layer and the cleartext handshake
//!
//! Everything TLS sends is cut into records (RFC 8446 §5.1): a 5-byte header — content type
//! (20 change_cipher_spec, 21 alert, 22 handshake, 23 application_data), a legacy version, a
//! length — and a payload. That header is never encrypted, so an eavesdropper always learns
//! what kind of record passed, how big it was, and when. The payload is readable only until the
//! keys are in place:
//!
//! * the ClientHello is always in clear: the server name (SNI), the offered ALPN protocols,
//!   versions, cipher suites and key shares;
//! * the ServerHello is in clear: the chosen suite, version (`supported_versions`) and group;
//! * in TLS 1.2 the Certificate and ServerKeyExchange follow in clear too — in TLS 1.3 they
//!   travel encrypted, inside records whose outer type says `application_data`.
//!
//! [`TlsObserver`] follows one direction's records without buffering them (the payload of an
//! application-data record is skipped, not stored; only its first bytes are kept as hex), and
//! reassembles cleartext handshake messages up to [`MAX_HANDSHAKE`] bytes.
//!
//! We wrote this small parser instead of using `tls-parser` (rusticata): we need three message
//! types and four extensions, all length-prefixed, and a streaming record walker either way;
//! tls-parser would add nom and its macro crates to the build for that (see docs/decisions.md).

use std::sync::atomic::{AtomicU16, Ordering};

use super::http::raw_seen;
use super::{hex, keep, Dir, Kind, Seen, TlsSeen, Track, HEX_BYTES};

/// Longest server name kept from a ClientHello: a DNS name has at most 253 characters, and
/// the field (a 16-bit length) could otherwise carry 64 KiB of anything into every feed record.
pub const MAX_SNI: usize = 255;
/// Handshake messages named one by one in a record's `handshake_type`; the rest are counted. A
/// record of 16 KiB holds up to 4,096 empty messages: listed in full, that was 110 KB of names
/// in one feed record.
pub const MAX_LISTED_MESSAGES: usize = 8;

/// TLS 1.3's version number, as `supported_versions` carries it.
pub const TLS13: u16 = 0x0304;
pub const TLS12: u16 = 0x0303;
/// Longest record payload any TLS version allows (2^14 plus expansion).
const MAX_RECORD: u16 = 16_384 + 2048;
/// Longest cleartext handshake message we reassemble (a certificate chain fits easily).
pub const MAX_HANDSHAKE: usize = 64 * 1024;

/// Observes one direction of a TLS connection.
#[derive(Debug, Clone)]
pub struct TlsObserver {
    dir: Dir,
    track: Track,
    header: [u8; 5],
    have: usize,
    record: Option<Record>,
    /// Cleartext handshake bytes not yet parsed into whole messages.
    handshake: Vec<u8>,
    handshake_broken: bool,
    /// This direction sent ChangeCipherSpec: in TLS 1.2 everything after it is encrypted.
    ccs_seen: bool,
    app_records: u64,
    raw: bool,
}

#[derive(Debug, Clone)]
struct Record {
    start: u64,
    content_type: u8,
    version: u16,
    len: u16,
    left: u16,
    cleartext: bool,
    wire: Vec<u8>,
    /// A cleartext alert's two bytes (or a CCS's one).
    small: Vec<u8>,
}

impl TlsObserver {
    pub fn new(dir: Dir) -> TlsObserver {
        TlsObserver {
            dir,
            track: Track::default(),
            header: [0; 5],
            have: 0,
            record: None,
            handshake: Vec::new(),
            handshake_broken: false,
            ccs_seen: false,
            app_records: 0,
            raw: false,
        }
    }

    /// Notes that the relay changed the byte at stream offset `at`.
    pub fn mark_tampered(&mut self, at: u64) {
        self.track.mark(at);
    }

    /// Feeds the next bytes of this direction. `negotiated` is shared by both directions of the
    /// connection: the server's ServerHello sets it, and both sides' records report it.
    pub fn push(&mut self, mut data: &[u8], negotiated: &AtomicU16) -> Vec<Seen> {
        let mut out = Vec::new();
        while !data.is_empty() {
            if self.raw {
                out.push(raw_seen(data, &mut self.track, false));
                break;
            }
            if let Some(rec) = &mut self.record {
                let take = usize::from(rec.left).min(data.len());
                let chunk = &data[..take];
                keep(&mut rec.wire, HEX_BYTES, chunk);
                if rec.content_type == 22 && rec.cleartext && !self.handshake_broken {
                    if self.handshake.len() + chunk.len() > MAX_HANDSHAKE {
                        self.handshake_broken = true;
                        self.handshake = Vec::new();
                    } else {
                        self.handshake.extend_from_slice(chunk);
                    }
                } else if rec.content_type != 23 {
                    keep(&mut rec.small, 2, chunk);
                }
                rec.left -= take as u16;
                self.track.pos += take as u64;
                data = &data[take..];
                if rec.left == 0 {
                    if let Some(rec) = self.record.take() {
                        out.push(self.finish(rec, negotiated));
                    }
                }
                continue;
            }
            let take = (5 - self.have).min(data.len());
            self.header[self.have..self.have + take].copy_from_slice(&data[..take]);
            self.have += take;
            self.track.pos += take as u64;
            data = &data[take..];
            if self.have < 5 {
                continue;
            }
            self.have = 0;
            let h = self.header;
            let version = u16::from_be_bytes([h[1], h[2]]);
            let len = u16::from_be_bytes([h[3], h[4]]);
            if !(20..=24).contains(&h[0]) || h[1] != 3 || len > MAX_RECORD {
                // Not TLS (a plain HTTP request sent to the TLS port, say): show bytes as bytes.
                self.raw = true;
                self.track.pos -= 5;
                let mut rest = h.to_vec();
                rest.extend_from_slice(data);
                out.push(raw_seen(&rest, &mut self.track, false));
                break;
            }
            let tls13 = negotiated.load(Ordering::Relaxed) == TLS13;
            let rec = Record {
                start: self.track.pos - 5,
                content_type: h[0],
                version,
                len,
                left: len,
                // TLS 1.2 encrypts whatever follows this side's ChangeCipherSpec; TLS 1.3 sends
                // its encrypted handshake as application_data, so a handshake record is clear.
                cleartext: !self.ccs_seen || tls13,
                wire: h.to_vec(),
                small: Vec::new(),
            };
            if len == 0 {
                out.push(self.finish(rec, negotiated));
            } else {
                self.record = Some(rec);
            }
        }
        out
    }

    fn finish(&mut self, rec: Record, negotiated: &AtomicU16) -> Seen {
        let mut handshake_type = None;
        let mut sni = None;
        let tls13 = negotiated.load(Ordering::Relaxed) == TLS13;
        let text = match rec.content_type {
            22 if rec.cleartext => {
                let (names, texts, found_sni) = self.handshake_messages(negotiated);
                sni = found_sni;
                if names.is_empty() {
                    "handshake fragment (the message continues in the next record)".to_string()
                } else {
                    handshake_type = Some(list_names(&names));
                    texts.join("\n")
                }
            }
            22 => "encrypted handshake message (Finished): only the two endpoints can read it"
                .to_string(),
            20 => {
                self.ccs_seen = true;
                if tls13 {
                    "change_cipher_spec: a dummy in TLS 1.3, kept so middleboxes let the \
                     connection through"
                        .to_string()
                } else {
                    "change_cipher_spec: from the next record on, this direction is encrypted"
                        .to_string()
                }
            }
            21 if rec.len == 2 && rec.cleartext && rec.small.len() == 2 => format!(
                "alert in clear: {} {}",
                if rec.small[0] == 2 {
                    "fatal"
                } else {
                    "warning"
                },
                alert_name(rec.small[1])
            ),
            21 => "encrypted alert (its level and reason are hidden)".to_string(),
            23 => {
                self.app_records += 1;
                let mut t = format!("{} bytes of ciphertext", rec.len);
                if tls13 && self.app_records == 1 {
                    t.push_str(match self.dir {
                        Dir::ServerToClient => {
                            " — in TLS 1.3 the server's EncryptedExtensions, Certificate, \
                             CertificateVerify and Finished travel in records like this one, \
                             unreadable"
                        }
                        Dir::ClientToServer => {
                            " — in TLS 1.3 the client's Finished travels encrypted like this"
                        }
                    });
                }
                t
            }
            24 => "heartbeat".to_string(),
            other => format!("content type {other}"),
        };
        let negotiated = match negotiated.load(Ordering::Relaxed) {
            0 => None,
            v => Some(version_name(v)),
        };
        let end = self.track.pos;
        Seen {
            kind: Kind::TlsRecord,
            bytes: end - rec.start,
            text: Some(text),
            hex: hex(&rec.wire),
            tls: Some(TlsSeen {
                content_type: content_type_name(rec.content_type).to_string(),
                record_version: version_name(rec.version),
                negotiated,
                length: rec.len,
                handshake_type,
                sni,
            }),
            tampered: self.track.tampered(rec.start, end),
        }
    }

    /// Takes the whole messages off the handshake buffer: their names, descriptions, and a
    /// ClientHello's SNI. A ServerHello's version goes into `negotiated`.
    fn handshake_messages(
        &mut self,
        negotiated: &AtomicU16,
    ) -> (Vec<String>, Vec<String>, Option<String>) {
        let mut names = Vec::new();
        let mut texts = Vec::new();
        let mut sni = None;
        let mut at = 0;
        while self.handshake.len() - at >= 4 {
            let h = &self.handshake[at..];
            let len = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
            if len > MAX_HANDSHAKE {
                self.handshake_broken = true;
                break;
            }
            if h.len() < 4 + len {
                break;
            }
            let (kind, body) = (h[0], &h[4..4 + len]);
            names.push(handshake_name(kind).to_string());
            texts.push(match kind {
                1 => match parse_client_hello(body) {
                    Some(ch) => {
                        sni = ch.sni.clone();
                        ch.describe()
                    }
                    None => "ClientHello (malformed)".to_string(),
                },
                2 => match parse_server_hello(body) {
                    Some(sh) => {
                        negotiated.store(sh.version(), Ordering::Relaxed);
                        sh.describe()
                    }
                    None => "ServerHello (malformed)".to_string(),
                },
                11 => describe_certificates(body),
                12 => describe_server_key_exchange(body),
                other => format!("{} ({len} bytes)", handshake_name(other)),
            });
            at += 4 + len;
        }
        self.handshake.drain(..at);
        if self.handshake_broken {
            self.handshake = Vec::new();
        }
        (names, texts, sni)
    }
}

/// The handshake messages of one record, as `handshake_type` shows them: the first
/// [`MAX_LISTED_MESSAGES`] by name, then how many more there were.
fn list_names(names: &[String]) -> String {
    let mut listed = names
        .iter()
        .take(MAX_LISTED_MESSAGES)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > MAX_LISTED_MESSAGES {
        listed.push_str(&format!(
            " and {} more messages",
            names.len() - MAX_LISTED_MESSAGES
        ));
    }
    listed
}

/// A bounds-checked reader of length-prefixed TLS structures: every getter returns `None`
/// rather than reading past the end.
struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.data.len() < n {
            return None;
        }
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.bytes(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.bytes(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u24(&mut self) -> Option<usize> {
        self.bytes(3)
            .map(|b| (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]))
    }
    /// A vector with a `width`-byte length prefix, as a new reader.
    fn vec(&mut self, width: usize) -> Option<Reader<'a>> {
        let n = match width {
            1 => usize::from(self.u8()?),
            2 => usize::from(self.u16()?),
            _ => self.u24()?,
        };
        self.bytes(n).map(Reader::new)
    }
    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// What a ClientHello gives away in clear.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHello {
    pub legacy_version: u16,
    pub suites: Vec<u16>,
    pub sni: Option<String>,
    pub alpn: Vec<String>,
    pub versions: Vec<u16>,
    pub key_shares: Vec<u16>,
}

impl ClientHello {
    fn describe(&self) -> String {
        let mut parts = vec!["ClientHello".to_string()];
        parts.push(match &self.sni {
            Some(s) => format!("SNI (server name, in clear): {s}"),
            None => "no SNI (an IP address was dialled)".to_string(),
        });
        if !self.alpn.is_empty() {
            parts.push(format!("ALPN offered: {}", self.alpn.join(", ")));
        }
        let versions: Vec<String> = self
            .versions
            .iter()
            .filter(|v| !is_grease(**v))
            .map(|v| version_name(*v))
            .collect();
        if !versions.is_empty() {
            parts.push(format!("versions offered: {}", versions.join(", ")));
        }
        parts.push(format!(
            "{} cipher suites offered",
            self.suites.iter().filter(|s| !is_grease(**s)).count()
        ));
        let shares: Vec<String> = self
            .key_shares
            .iter()
            .filter(|g| !is_grease(**g))
            .map(|g| crate::tls_info::group_by_tls_id(*g))
            .collect();
        if !shares.is_empty() {
            parts.push(format!("key shares: {}", shares.join(", ")));
        }
        parts.join(" · ")
    }
}

/// Parses a ClientHello body (after the 4-byte handshake header).
pub fn parse_client_hello(body: &[u8]) -> Option<ClientHello> {
    let mut r = Reader::new(body);
    let mut ch = ClientHello {
        legacy_version: r.u16()?,
        ..ClientHello::default()
    };
    r.bytes(32)?; // random
    r.vec(1)?; // legacy session id
    let mut suites = r.vec(2)?;
    while !suites.is_empty() {
        ch.suites.push(suites.u16()?);
    }
    r.vec(1)?; // compression methods
    if r.is_empty() {
        return Some(ch);
    }
    let mut exts = r.vec(2)?;
    while !exts.is_empty() {
        let kind = exts.u16()?;
        let mut ext = exts.vec(2)?;
        match kind {
            0 => {
                let mut list = ext.vec(2)?;
                while !list.is_empty() {
                    let name_type = list.u8()?;
                    let name = list.vec(2)?;
                    if name_type == 0 {
                        ch.sni = Some(super::cap_field(
                            String::from_utf8_lossy(name.data).into_owned(),
                            MAX_SNI,
                        ));
                    }
                }
            }
            16 => {
                let mut list = ext.vec(2)?;
                while !list.is_empty() {
                    let proto = list.vec(1)?;
                    ch.alpn
                        .push(String::from_utf8_lossy(proto.data).into_owned());
                }
            }
            43 => {
                let mut list = ext.vec(1)?;
                while !list.is_empty() {
                    ch.versions.push(list.u16()?);
                }
            }
            51 => {
                let mut list = ext.vec(2)?;
                while !list.is_empty() {
                    ch.key_shares.push(list.u16()?);
                    list.vec(2)?;
                }
            }
            _ => {}
        }
    }
    Some(ch)
}

/// What a ServerHello says in clear.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerHello {
    pub legacy_version: u16,
    pub retry_request: bool,
    pub suite: u16,
    pub selected_version: Option<u16>,
    pub key_share: Option<u16>,
    pub alpn: Option<String>,
}

/// SHA-256("HelloRetryRequest"): a ServerHello with this random is a HelloRetryRequest.
const HRR_RANDOM: [u8; 32] = [
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
];

impl ServerHello {
    /// The version the server chose: `supported_versions` (TLS 1.3) or the legacy field.
    pub fn version(&self) -> u16 {
        self.selected_version.unwrap_or(self.legacy_version)
    }

    fn describe(&self) -> String {
        let mut parts = vec![if self.retry_request {
            "ServerHello (HelloRetryRequest: send another key share)".to_string()
        } else {
            "ServerHello".to_string()
        }];
        parts.push(format!("version chosen: {}", version_name(self.version())));
        parts.push(format!("cipher suite: {}", suite_name(self.suite)));
        if let Some(g) = self.key_share {
            parts.push(format!(
                "key share: {}",
                crate::tls_info::group_by_tls_id(g)
            ));
        }
        if let Some(a) = &self.alpn {
            parts.push(format!("ALPN chosen: {a}"));
        }
        if self.version() == TLS13 {
            parts.push("everything after this is encrypted".to_string());
        }
        parts.join(" · ")
    }
}

/// Parses a ServerHello body.
pub fn parse_server_hello(body: &[u8]) -> Option<ServerHello> {
    let mut r = Reader::new(body);
    let mut sh = ServerHello {
        legacy_version: r.u16()?,
        ..ServerHello::default()
    };
    sh.retry_request = r.bytes(32)? == HRR_RANDOM;
    r.vec(1)?;
    sh.suite = r.u16()?;
    r.u8()?;
    if r.is_empty() {
        return Some(sh);
    }
    let mut exts = r.vec(2)?;
    while !exts.is_empty() {
        let kind = exts.u16()?;
        let mut ext = exts.vec(2)?;
        match kind {
            43 => sh.selected_version = Some(ext.u16()?),
            51 => sh.key_share = Some(ext.u16()?),
            16 => {
                let mut list = ext.vec(2)?;
                let proto = list.vec(1)?;
                sh.alpn = Some(String::from_utf8_lossy(proto.data).into_owned());
            }
            _ => {}
        }
    }
    Some(sh)
}

/// TLS 1.2's Certificate message, readable by anyone on the path.
fn describe_certificates(body: &[u8]) -> String {
    let mut r = Reader::new(body);
    let Some(mut list) = r.vec(3) else {
        return "Certificate (malformed)".to_string();
    };
    let mut ders = Vec::new();
    while !list.is_empty() {
        match list.vec(3) {
            Some(c) => ders.push(c.data),
            None => break,
        }
    }
    let Some(leaf) = ders.first() else {
        return "Certificate (empty)".to_string();
    };
    let detail = match openssl::x509::X509::from_der(leaf) {
        Ok(cert) => {
            let subject = crate::tls_info::describe_certificate(&cert, &[], 0)
                .map(|d| {
                    format!(
                        "subject {}; issuer {}; SAN {}; SHA-256 {}",
                        d.subject,
                        d.issuer,
                        d.san.join(", "),
                        d.sha256
                    )
                })
                .unwrap_or_else(|_| "unreadable".to_string());
            subject
        }
        Err(_) => "not a certificate openssl can read".to_string(),
    };
    format!(
        "Certificate, in clear (TLS 1.2): {} certificate(s); leaf: {detail}",
        ders.len()
    )
}

/// TLS 1.2's ServerKeyExchange for ECDHE: the group is in clear.
fn describe_server_key_exchange(body: &[u8]) -> String {
    let mut r = Reader::new(body);
    match (r.u8(), r.u16()) {
        (Some(3), Some(group)) => format!(
            "ServerKeyExchange: ephemeral ECDHE key on {} (signed with the certificate's key)",
            crate::tls_info::group_by_tls_id(group)
        ),
        _ => "ServerKeyExchange".to_string(),
    }
}

/// GREASE values (RFC 8701) are random placeholders clients sprinkle in to keep servers honest.
fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

pub fn version_name(v: u16) -> String {
    match v {
        0x0300 => "SSL 3.0".into(),
        0x0301 => "TLS 1.0".into(),
        0x0302 => "TLS 1.1".into(),
        TLS12 => "TLS 1.2".into(),
        TLS13 => "TLS 1.3".into(),
        v if is_grease(v) => "GREASE".into(),
        v => format!("0x{v:04x}"),
    }
}

pub fn content_type_name(t: u8) -> &'static str {
    match t {
        20 => "change_cipher_spec",
        21 => "alert",
        22 => "handshake",
        23 => "application_data",
        24 => "heartbeat",
        _ => "unknown",
    }
}

pub fn handshake_name(t: u8) -> &'static str {
    match t {
        0 => "HelloRequest",
        1 => "ClientHello",
        2 => "ServerHello",
        4 => "NewSessionTicket",
        5 => "EndOfEarlyData",
        8 => "EncryptedExtensions",
        11 => "Certificate",
        12 => "ServerKeyExchange",
        13 => "CertificateRequest",
        14 => "ServerHelloDone",
        15 => "CertificateVerify",
        16 => "ClientKeyExchange",
        20 => "Finished",
        24 => "KeyUpdate",
        _ => "unknown handshake message",
    }
}

fn suite_name(s: u16) -> String {
    match s {
        0x1301 => "TLS_AES_128_GCM_SHA256".into(),
        0x1302 => "TLS_AES_256_GCM_SHA384".into(),
        0x1303 => "TLS_CHACHA20_POLY1305_SHA256".into(),
        0xc02b => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into(),
        0xc02c => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".into(),
        0xc02f => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into(),
        0xc030 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384".into(),
        0xcca8 => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256".into(),
        0xcca9 => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256".into(),
        0x002f => "TLS_RSA_WITH_AES_128_CBC_SHA (RSA key transport)".into(),
        s => format!("0x{s:04x}"),
    }
}

fn alert_name(d: u8) -> String {
    match d {
        0 => "close_notify".into(),
        10 => "unexpected_message".into(),
        20 => "bad_record_mac".into(),
        40 => "handshake_failure".into(),
        42 => "bad_certificate".into(),
        43 => "unsupported_certificate".into(),
        44 => "certificate_revoked".into(),
        45 => "certificate_expired".into(),
        46 => "certificate_unknown".into(),
        47 => "illegal_parameter".into(),
        48 => "unknown_ca".into(),
        50 => "decode_error".into(),
        51 => "decrypt_error".into(),
        70 => "protocol_version".into(),
        71 => "insufficient_security".into(),
        80 => "internal_error".into(),
        86 => "inappropriate_fallback".into(),
        90 => "user_canceled".into(),
        109 => "missing_extension".into(),
        110 => "unsupported_extension".into(),
        112 => "unrecognized_name".into(),
        116 => "certificate_required".into(),
        120 => "no_application_protocol".into(),
        d => format!("alert {d}"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A ClientHello record as a TLS 1.3 client sends it, built field by field.
    pub fn client_hello(sni: &str) -> Vec<u8> {
        let mut exts = Vec::new();
        let name = sni.as_bytes();
        let mut sni_ext = Vec::new();
        sni_ext.extend(((name.len() + 3) as u16).to_be_bytes());
        sni_ext.push(0);
        sni_ext.extend((name.len() as u16).to_be_bytes());
        sni_ext.extend(name);
        exts.extend(0u16.to_be_bytes());
        exts.extend((sni_ext.len() as u16).to_be_bytes());
        exts.extend(sni_ext);
        let alpn = b"\x00\x0c\x02h2\x08http/1.1";
        exts.extend(16u16.to_be_bytes());
        exts.extend((alpn.len() as u16).to_be_bytes());
        exts.extend(alpn);
        exts.extend([0, 43, 0, 5, 4, 0x03, 0x04, 0x03, 0x03]);
        exts.extend([0, 51, 0, 6, 0, 4, 0, 0x1d, 0, 0]);
        let mut body = vec![3, 3];
        body.extend([7u8; 32]);
        body.push(0);
        body.extend([0, 4, 0x13, 0x01, 0xc0, 0x2b]);
        body.extend([1, 0]);
        body.extend((exts.len() as u16).to_be_bytes());
        body.extend(exts);
        let mut hs = vec![1];
        hs.extend(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend(body);
        let mut rec = vec![22, 3, 1];
        rec.extend((hs.len() as u16).to_be_bytes());
        rec.extend(hs);
        rec
    }

    fn server_hello_13() -> Vec<u8> {
        let mut body = vec![3, 3];
        body.extend([9u8; 32]);
        body.push(0);
        body.extend([0x13, 0x01, 0]);
        let exts = [0, 43, 0, 2, 3, 4, 0, 51, 0, 4, 0, 0x1d, 0, 0];
        body.extend((exts.len() as u16).to_be_bytes());
        body.extend(exts);
        let mut hs = vec![2, 0];
        hs.extend((body.len() as u16).to_be_bytes());
        hs.extend(body);
        let mut rec = vec![22, 3, 3];
        rec.extend((hs.len() as u16).to_be_bytes());
        rec.extend(hs);
        rec
    }

    #[test]
    fn the_client_hello_gives_away_sni_alpn_and_versions_even_split_into_single_bytes() {
        let rec = client_hello("game.example");
        let neg = AtomicU16::new(0);
        let mut o = TlsObserver::new(Dir::ClientToServer);
        let mut seen = Vec::new();
        for b in &rec {
            seen.extend(o.push(std::slice::from_ref(b), &neg));
        }
        assert_eq!(seen.len(), 1);
        let tls = seen[0].tls.as_ref().unwrap();
        assert_eq!(tls.content_type, "handshake");
        assert_eq!(tls.record_version, "TLS 1.0");
        assert_eq!(tls.handshake_type.as_deref(), Some("ClientHello"));
        assert_eq!(tls.sni.as_deref(), Some("game.example"));
        let text = seen[0].text.as_deref().unwrap();
        assert!(text.contains("ALPN offered: h2, http/1.1"), "{text}");
        assert!(
            text.contains("versions offered: TLS 1.3, TLS 1.2"),
            "{text}"
        );
        assert!(text.contains("key shares: X25519"), "{text}");
        assert_eq!(seen[0].bytes, rec.len() as u64);
    }

    #[test]
    fn a_record_packed_with_empty_messages_or_a_huge_server_name_gives_a_small_record() {
        // The attack session's feed flood: 18 KiB of 4-byte messages named one by one was a
        // 124 KB `handshake_type`; a 16 KiB server name was kept whole.
        let neg = AtomicU16::new(0);
        let mut o = TlsObserver::new(Dir::ClientToServer);
        let payload = [0xee, 0, 0, 0].repeat(18_432 / 4);
        let mut rec = vec![22, 3, 1];
        rec.extend((payload.len() as u16).to_be_bytes());
        rec.extend(&payload);
        let seen = o.push(&rec, &neg);
        assert_eq!(seen.len(), 1);
        let named = seen[0]
            .tls
            .as_ref()
            .unwrap()
            .handshake_type
            .clone()
            .unwrap();
        assert!(named.len() < 300, "{named}");
        assert!(named.ends_with(" and 4600 more messages"), "{named}");

        let long = "a".repeat(16_000);
        let seen = TlsObserver::new(Dir::ClientToServer).push(&client_hello(&long), &neg);
        let sni = seen[0].tls.as_ref().unwrap().sni.clone().unwrap();
        assert_eq!(sni, format!("{} …", &long[..MAX_SNI]));
    }

    #[test]
    fn the_server_hello_sets_the_negotiated_version_for_both_directions() {
        let neg = AtomicU16::new(0);
        let mut down = TlsObserver::new(Dir::ServerToClient);
        let mut stream = server_hello_13();
        stream.extend([20, 3, 3, 0, 1, 1]);
        stream.extend([23, 3, 3, 0, 40]);
        stream.extend([0xee; 40]);
        let seen = down.push(&stream, &neg);
        assert_eq!(neg.load(Ordering::Relaxed), TLS13);
        assert_eq!(seen.len(), 3);
        assert!(seen[0]
            .text
            .as_deref()
            .unwrap()
            .contains("version chosen: TLS 1.3"));
        assert_eq!(
            seen[2].tls.as_ref().unwrap().content_type,
            "application_data"
        );
        assert_eq!(seen[2].tls.as_ref().unwrap().record_version, "TLS 1.2");
        assert_eq!(
            seen[2].tls.as_ref().unwrap().negotiated.as_deref(),
            Some("TLS 1.3")
        );
        assert!(seen[2].text.as_deref().unwrap().contains("Certificate"));
        assert_eq!(seen[2].hex, format!("1703030028{}", "ee".repeat(40)));
    }

    #[test]
    fn bytes_that_are_not_tls_are_shown_raw_without_text() {
        let neg = AtomicU16::new(0);
        let seen = TlsObserver::new(Dir::ClientToServer).push(b"GET / HTTP/1.1\r\n\r\n", &neg);
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].kind, Kind::Raw);
        assert_eq!(seen[0].text, None);
        assert_eq!(seen[0].bytes, 18);
    }

    #[test]
    fn truncated_hellos_are_refused_by_the_reader_not_read_past_their_end() {
        let rec = client_hello("x");
        for cut in 0..rec.len() - 5 {
            let _ = parse_client_hello(&rec[9..9 + cut.min(rec.len() - 9)]);
        }
        assert!(parse_client_hello(&rec[9..20]).is_none());
        assert!(parse_server_hello(&[3, 3]).is_none());
        assert!(is_grease(0x1a1a) && !is_grease(0x1a2a));
    }
}
