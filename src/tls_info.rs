//! # This connection's TLS, and the certificate's anatomy (`GET /api/tls`)
//!
//! The lecture's slide shows a handshake and a certificate in general; this module shows *the*
//! handshake and *the* certificate of the connection a page is loaded over. When a TLS
//! connection is accepted, [`capture`] copies what the handshake settled from the connection's
//! own `SslRef` — protocol version, cipher suite, key-exchange group, ALPN, resumption, SNI and
//! the certificate served — into the connection's extensions, once. Every request on that
//! connection (HTTP/1.1 keep-alive or all the streams of an HTTP/2 connection) then reads it
//! with `req.conn_data::<ConnTls>()`; `GET /api/tls` turns it into JSON for the page's
//! "Connection security" panel. A plain-HTTP request gets `{"tls": false}`.
//!
//! Why capture at accept time and not look at the socket in the handler: an actix handler never
//! sees the socket, and by the time a request runs the TLS stream belongs to the HTTP
//! dispatcher. The `HttpService`'s `on_connect_ext` (in `listener.rs`, the one place the HTTP
//! service is configured) is the one moment both are in reach.
//!
//! Nothing secret leaves here: no keys, no master secret, no session ticket — only what either
//! side could print after the handshake (and most of which a passive observer of a TLS 1.2
//! handshake sees anyway, see `src/eavesdrop/`).

use actix_web::{dev::Extensions, http::header, http::StatusCode, web, HttpRequest, HttpResponse};
use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{Id, PKeyRef, Public};
use openssl::ssl::{NameType, SslRef};
use openssl::x509::{X509NameRef, X509Ref, X509};
use serde::Serialize;

use crate::error::{to_json, ApiError};
use crate::transport::method_not_allowed;

/// What one TLS connection's handshake settled, copied from its `SslRef` when it was accepted.
#[derive(Debug, Clone)]
pub struct ConnTls {
    protocol: String,
    cipher: String,
    cipher_iana: Option<String>,
    /// OpenSSL's one-line description (`Kx=… Au=… Enc=… Mac=…`), split up by [`cipher_parts`].
    description: String,
    /// The suite's handshake (PRF/HKDF) hash, e.g. `SHA256`.
    hash: Option<String>,
    group: Option<String>,
    alpn: Option<String>,
    resumed: bool,
    sni: Option<String>,
    /// The certificate this connection was served (reference-counted copies, not re-parsed
    /// until someone asks for `/api/tls`).
    certificate: Option<X509>,
    chain: Vec<X509>,
}

/// For the listener's `on_connect_ext` (`src/listener.rs`): records the handshake of a TLS
/// connection in its extensions. Plain TCP connections get nothing, which is how the handler
/// tells them apart.
pub fn capture(ssl: &SslRef, ext: &mut Extensions) {
    ext.insert(ConnTls::from_ssl(ssl));
}

impl ConnTls {
    /// Reads the finished handshake. Called once per connection, so it only copies.
    pub fn from_ssl(ssl: &SslRef) -> ConnTls {
        let cipher = ssl.current_cipher();
        ConnTls {
            protocol: ssl.version_str().to_string(),
            cipher: cipher.map(|c| c.name().to_string()).unwrap_or_default(),
            cipher_iana: cipher.and_then(|c| c.standard_name()).map(str::to_string),
            description: cipher.map(|c| c.description()).unwrap_or_default(),
            hash: cipher
                .and_then(|c| c.handshake_digest())
                .and_then(|d| d.type_().short_name().ok())
                .map(str::to_string),
            group: negotiated_group(ssl),
            alpn: ssl
                .selected_alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            resumed: ssl.session_reused(),
            sni: ssl.servername(NameType::HOST_NAME).map(str::to_string),
            certificate: ssl.certificate().map(X509Ref::to_owned),
            chain: crate::tls::chain_index()
                .ok()
                .and_then(|i| ssl.ssl_context().ex_data(i))
                .cloned()
                .unwrap_or_default(),
        }
    }

    /// The JSON `GET /api/tls` answers with, dates relative to `now` (Unix seconds).
    pub fn describe(&self, now: i64) -> Result<Described, ErrorStack> {
        let certificate = self
            .certificate
            .as_ref()
            .map(|c| describe_certificate(c, &self.chain, now))
            .transpose()?;
        let auth = certificate
            .as_ref()
            .map(|c| signature_scheme_family(&c.public_key));
        Ok(Described {
            tls: true,
            protocol: self.protocol.clone(),
            cipher: self.cipher.clone(),
            cipher_iana: self.cipher_iana.clone(),
            cipher_parts: cipher_parts(
                &self.description,
                self.hash.as_deref(),
                self.group.as_deref(),
                auth,
            ),
            group: self.group.clone(),
            alpn: self.alpn.clone(),
            resumed: self.resumed,
            sni: self.sni.clone(),
            certificate,
        })
    }
}

/// OpenSSL's `SSL_CTRL_GET_NEGOTIATED_GROUP` (the `SSL_get_negotiated_group` macro, OpenSSL 3.0).
const SSL_CTRL_GET_NEGOTIATED_GROUP: std::os::raw::c_int = 134;
/// OpenSSL marks a group it has no NID for (e.g. a post-quantum hybrid) with this bit and the
/// TLS group id below it.
const NID_UNKNOWN_GROUP_BIT: i32 = 0x0100_0000;

/// The key-exchange group, as OpenSSL reports it. The openssl crate wraps only `SSL_get_tmp_key`,
/// which OpenSSL frees after a TLS 1.2 handshake; `SSL_get_negotiated_group` works for both
/// versions, so we call the macro's `SSL_ctrl` ourselves. On an OpenSSL that does not know the
/// control it returns 0 and we report no group.
fn negotiated_group(ssl: &SslRef) -> Option<String> {
    use foreign_types_shared::ForeignTypeRef;
    // SAFETY: `ssl.as_ptr()` is a live SSL for the duration of the borrow; this control reads
    // two integers from it and writes nothing (parg is unused and may be null).
    let nid = unsafe {
        openssl_sys::SSL_ctrl(
            ssl.as_ptr(),
            SSL_CTRL_GET_NEGOTIATED_GROUP,
            0,
            std::ptr::null_mut(),
        )
    };
    let nid = i32::try_from(nid).ok().filter(|n| *n > 0)?;
    if nid & NID_UNKNOWN_GROUP_BIT != 0 {
        return Some(group_by_tls_id((nid & 0xffff) as u16));
    }
    Some(curve_name(Nid::from_raw(nid)))
}

/// A TLS "supported group" id by its IANA name (also used by the relay's ServerHello parser).
pub fn group_by_tls_id(id: u16) -> String {
    match id {
        0x0017 => "P-256".into(),
        0x0018 => "P-384".into(),
        0x0019 => "P-521".into(),
        0x001d => "X25519".into(),
        0x001e => "X448".into(),
        0x0100 => "ffdhe2048".into(),
        0x0101 => "ffdhe3072".into(),
        0x11ec => "X25519MLKEM768".into(),
        0x6399 => "X25519Kyber768Draft00".into(),
        other => format!("group 0x{other:04x}"),
    }
}

/// Curves by their NIST names (`P-256`, as browsers and the issue say), others by OpenSSL's.
pub fn curve_name(nid: Nid) -> String {
    match nid {
        Nid::X9_62_PRIME256V1 => "P-256".into(),
        Nid::SECP384R1 => "P-384".into(),
        Nid::SECP521R1 => "P-521".into(),
        other => other
            .short_name()
            .map_or_else(|_| format!("nid {}", other.as_raw()), str::to_string),
    }
}

/// `GET /api/tls` for a TLS connection.
#[derive(Debug, Clone, Serialize)]
pub struct Described {
    pub tls: bool,
    /// `TLSv1.3` or `TLSv1.2`, as OpenSSL names them.
    pub protocol: String,
    /// OpenSSL's name of the suite (for TLS 1.3 the same as the IANA name).
    pub cipher: String,
    /// The IANA/RFC name (`TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256`), as browsers show it.
    pub cipher_iana: Option<String>,
    pub cipher_parts: CipherParts,
    /// The key-exchange group (`X25519`, `P-256`, …).
    pub group: Option<String>,
    pub alpn: Option<String>,
    pub resumed: bool,
    /// The server name the client asked for in its ClientHello (browsers send none for an IP).
    pub sni: Option<String>,
    pub certificate: Option<CertificateInfo>,
}

/// A cipher suite spelled out: what each of its four jobs is done with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CipherParts {
    /// How both sides agree on the secret: `ECDHE` (ephemeral, forward secret) — or, as on the
    /// lecture's slide, `RSA key transport` (the browser encrypts the secret to the server's key).
    pub key_exchange: String,
    /// How the server proves it holds the certificate's key (`ECDSA`, `RSA`).
    pub authentication: String,
    /// What encrypts the records (`AES-128-GCM`, `ChaCha20-Poly1305`).
    pub bulk_cipher: String,
    /// True when the cipher authenticates each record itself (GCM, Poly1305): no separate MAC.
    pub aead: bool,
    /// Record integrity: `AEAD` or an HMAC.
    pub mac: String,
    /// The hash of the handshake's key derivation (PRF in TLS 1.2, HKDF in TLS 1.3).
    pub hash: Option<String>,
    /// OpenSSL's own words, e.g. `Kx=ECDH Au=ECDSA Enc=AESGCM(128) Mac=AEAD`.
    pub openssl: String,
}

/// Splits OpenSSL's cipher description into its parts. TLS 1.3 suites name only the record
/// protection (`Kx=any Au=any`): key exchange and authentication are negotiated separately
/// there, so we fill them in from the group and the certificate's key.
pub fn cipher_parts(
    description: &str,
    hash: Option<&str>,
    group: Option<&str>,
    cert_auth: Option<&str>,
) -> CipherParts {
    let field = |key: &str| {
        description
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .unwrap_or("")
            .to_string()
    };
    let (kx, au, enc, mac_raw) = (field("Kx="), field("Au="), field("Enc="), field("Mac="));
    let key_exchange = match kx.as_str() {
        "ECDH" => "ECDHE".to_string(),
        "DH" => "DHE".to_string(),
        "RSA" => "RSA key transport".to_string(),
        "any" => match group {
            Some(g) if g.starts_with("ffdhe") => "DHE".to_string(),
            Some(g) if g.contains("MLKEM") || g.contains("Kyber") => "hybrid ECDHE + ML-KEM".into(),
            Some(_) => "ECDHE".to_string(),
            None => "(EC)DHE".to_string(),
        },
        "" => "unknown".to_string(),
        other => other.to_string(),
    };
    let authentication = match au.as_str() {
        "any" => cert_auth.unwrap_or("certificate").to_string(),
        "None" => "none (anonymous)".to_string(),
        "" => "unknown".to_string(),
        other => other.to_string(),
    };
    let bulk_cipher = bulk_cipher_name(&enc);
    let aead = mac_raw == "AEAD";
    let mac = match mac_raw.as_str() {
        "AEAD" => "AEAD".to_string(),
        "" => "unknown".to_string(),
        other => format!("HMAC-{}", hash_name(other)),
    };
    CipherParts {
        key_exchange,
        authentication,
        bulk_cipher,
        aead,
        mac,
        hash: hash.map(hash_name),
        openssl: [
            ("Kx=", &kx),
            ("Au=", &au),
            ("Enc=", &enc),
            ("Mac=", &mac_raw),
        ]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}{v}"))
        .collect::<Vec<_>>()
        .join(" "),
    }
}

/// `AESGCM(128)` → `AES-128-GCM`, `CHACHA20/POLY1305(256)` → `ChaCha20-Poly1305`.
fn bulk_cipher_name(enc: &str) -> String {
    let (algo, bits) = match enc.split_once('(') {
        Some((a, rest)) => (a, rest.trim_end_matches(')')),
        None => (enc, ""),
    };
    match algo {
        "AESGCM" => format!("AES-{bits}-GCM"),
        "AESCCM" => format!("AES-{bits}-CCM"),
        "AESCCM8" => format!("AES-{bits}-CCM-8"),
        "AES" => format!("AES-{bits}-CBC"),
        "CHACHA20/POLY1305" => "ChaCha20-Poly1305".to_string(),
        "ARIAGCM" => format!("ARIA-{bits}-GCM"),
        "" => "unknown".to_string(),
        _ => enc.to_string(),
    }
}

/// `SHA256` → `SHA-256` (OpenSSL's short names to the way the RFCs write them).
fn hash_name(h: &str) -> String {
    let upper = h.to_ascii_uppercase();
    match upper.strip_prefix("SHA") {
        Some(bits) if bits.len() == 3 && bits.bytes().all(|b| b.is_ascii_digit()) => {
            format!("SHA-{bits}")
        }
        Some("1") => "SHA-1".to_string(),
        _ => h.to_string(),
    }
}

/// The certificate's anatomy, as the lecture's slide draws it.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateInfo {
    /// `CN=localhost, O=…`, in the certificate's own order.
    pub subject: String,
    pub issuer: String,
    /// Colon-separated hex, as browsers show it.
    pub serial: String,
    /// RFC 3339, UTC.
    pub not_before: String,
    pub not_after: String,
    /// Whole days until `not_after` (negative once expired).
    pub days_left: i64,
    /// Subject alternative names, `DNS:localhost`, `IP:127.0.0.1`: what browsers check the
    /// address bar against (the common name is ignored by them since 2017).
    pub san: Vec<String>,
    pub public_key: PublicKeyInfo,
    pub signature_algorithm: String,
    /// SHA-256 over the DER encoding, colon-separated hex (the "fingerprint").
    pub sha256: String,
    /// Issued by itself: no CA vouches for it, so a browser asks the user.
    pub self_signed: bool,
    /// The intermediates sent after the leaf, leaf's issuer first (empty for a self-signed one).
    pub chain: Vec<CertificateInfo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PublicKeyInfo {
    /// `EC`, `RSA`, `Ed25519`, …
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub curve: Option<String>,
    pub bits: u32,
}

/// How this key signs, for TLS 1.3's `Au=any`.
fn signature_scheme_family(key: &PublicKeyInfo) -> &'static str {
    match key.kind.as_str() {
        "EC" => "ECDSA",
        "RSA" => "RSA",
        "Ed25519" => "Ed25519",
        "Ed448" => "Ed448",
        _ => "certificate",
    }
}

/// Describes `cert` (and the `chain` that follows it) relative to `now` (Unix seconds).
pub fn describe_certificate(
    cert: &X509Ref,
    chain: &[X509],
    now: i64,
) -> Result<CertificateInfo, ErrorStack> {
    let mut info = describe_one(cert, now)?;
    for c in chain {
        info.chain.push(describe_one(c, now)?);
    }
    Ok(info)
}

fn describe_one(cert: &X509Ref, now: i64) -> Result<CertificateInfo, ErrorStack> {
    let key = cert.public_key()?;
    // Self-issued (issuer = subject) and signed by its own key. Not `X509_check_issued`: that
    // also demands the keyCertSign usage, which a leaf that signs nothing rightly lacks.
    let (subject, issuer) = (
        name_text(cert.subject_name()),
        name_text(cert.issuer_name()),
    );
    let self_signed = subject == issuer && cert.verify(&key).unwrap_or(false);
    let not_after = unix_seconds(cert.not_after())?;
    Ok(CertificateInfo {
        subject,
        issuer,
        serial: colon_hex(&cert.serial_number().to_bn()?.to_vec()),
        not_before: rfc3339(unix_seconds(cert.not_before())?),
        not_after: rfc3339(not_after),
        days_left: (not_after - now).div_euclid(86_400),
        san: subject_alt_names(cert),
        public_key: public_key_info(&key),
        signature_algorithm: {
            let nid = cert.signature_algorithm().object().nid();
            nid.long_name().map_or_else(
                |_| cert.signature_algorithm().object().to_string(),
                str::to_string,
            )
        },
        sha256: colon_hex(&cert.digest(MessageDigest::sha256())?),
        self_signed,
        chain: Vec::new(),
    })
}

fn public_key_info(key: &PKeyRef<Public>) -> PublicKeyInfo {
    let (kind, curve) = match key.id() {
        Id::EC => (
            "EC",
            key.ec_key()
                .ok()
                .and_then(|ec| ec.group().curve_name())
                .map(curve_name),
        ),
        Id::RSA => ("RSA", None),
        Id::ED25519 => ("Ed25519", None),
        Id::ED448 => ("Ed448", None),
        Id::DSA => ("DSA", None),
        _ => ("other", None),
    };
    PublicKeyInfo {
        kind: kind.to_string(),
        curve,
        bits: key.bits(),
    }
}

fn name_text(name: &X509NameRef) -> String {
    name.entries()
        .map(|e| {
            let key = e.object().nid().short_name().unwrap_or("?");
            let value = e
                .data()
                .to_string()
                .unwrap_or_else(|_| String::from_utf8_lossy(e.data().as_slice()).into_owned());
            format!("{key}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn subject_alt_names(cert: &X509Ref) -> Vec<String> {
    let Some(names) = cert.subject_alt_names() else {
        return Vec::new();
    };
    names
        .iter()
        .map(|n| {
            if let Some(d) = n.dnsname() {
                format!("DNS:{d}")
            } else if let Some(ip) = n.ipaddress() {
                match ip.len() {
                    4 => format!("IP:{}", std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])),
                    16 => {
                        let mut b = [0u8; 16];
                        b.copy_from_slice(ip);
                        format!("IP:{}", std::net::Ipv6Addr::from(b))
                    }
                    _ => format!("IP:{}", colon_hex(ip)),
                }
            } else if let Some(e) = n.email() {
                format!("email:{e}")
            } else if let Some(u) = n.uri() {
                format!("URI:{u}")
            } else {
                "other".to_string()
            }
        })
        .collect()
}

/// Seconds since the Unix epoch of an ASN.1 time (openssl has no direct getter).
fn unix_seconds(t: &Asn1TimeRef) -> Result<i64, ErrorStack> {
    let epoch = Asn1Time::from_unix(0)?;
    let d = epoch.diff(t)?;
    Ok(i64::from(d.days) * 86_400 + i64::from(d.secs))
}

/// RFC 3339 in UTC (`2026-02-27T10:00:00Z`).
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("@{unix}"))
}

/// `AB:CD:…` uppercase, as browsers print fingerprints and serials.
pub fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Registers `GET /api/tls`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/tls")
            .route(web::get().to(tls))
            .default_service(method_not_allowed("GET")),
    );
}

async fn tls(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let body = match req.conn_data::<ConnTls>() {
        Some(conn) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            let described = conn.describe(now).map_err(|err| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "tls_description_failed",
                    format!("could not read the certificate: {err}"),
                )
            })?;
            to_json(&described, "the TLS description")?
        }
        // A TLS listener whose connections were not captured: a wiring mistake in the server,
        // not plain HTTP — say so rather than tell the page it is unencrypted.
        None if req.app_config().secure() => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "tls_not_captured",
                "this HTTPS listener does not record its connections' TLS (tls_info::capture \
                 is not called from the listener's on_connect_ext)",
            ))
        }
        None => r#"{"tls":false}"#.to_string(),
    };
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tls_1_2_suite_is_spelled_out_from_openssls_description() {
        let p = cipher_parts(
            "ECDHE-ECDSA-AES128-GCM-SHA256  TLSv1.2 Kx=ECDH     Au=ECDSA Enc=AESGCM(128)            Mac=AEAD\n",
            Some("SHA256"),
            Some("X25519"),
            Some("ECDSA"),
        );
        assert_eq!(p.key_exchange, "ECDHE");
        assert_eq!(p.authentication, "ECDSA");
        assert_eq!(p.bulk_cipher, "AES-128-GCM");
        assert!(p.aead);
        assert_eq!(p.mac, "AEAD");
        assert_eq!(p.hash.as_deref(), Some("SHA-256"));
        assert_eq!(p.openssl, "Kx=ECDH Au=ECDSA Enc=AESGCM(128) Mac=AEAD");
    }

    #[test]
    fn a_tls_1_3_suite_takes_key_exchange_and_authentication_from_group_and_certificate() {
        let p = cipher_parts(
            "TLS_CHACHA20_POLY1305_SHA256   TLSv1.3 Kx=any      Au=any   Enc=CHACHA20/POLY1305(256) Mac=AEAD",
            Some("SHA256"),
            Some("P-384"),
            Some("RSA"),
        );
        assert_eq!(p.key_exchange, "ECDHE");
        assert_eq!(p.authentication, "RSA");
        assert_eq!(p.bulk_cipher, "ChaCha20-Poly1305");
        let none = cipher_parts("X Kx=any Au=any Enc=AESGCM(256) Mac=AEAD", None, None, None);
        assert_eq!(none.key_exchange, "(EC)DHE");
        assert_eq!(none.authentication, "certificate");
        assert_eq!(none.bulk_cipher, "AES-256-GCM");
    }

    #[test]
    fn the_slides_rsa_key_transport_and_a_cbc_suite_are_named_for_what_they_are() {
        let p = cipher_parts(
            "AES128-SHA SSLv3 Kx=RSA Au=RSA Enc=AES(128) Mac=SHA1",
            Some("SHA256"),
            None,
            None,
        );
        assert_eq!(p.key_exchange, "RSA key transport");
        assert_eq!(p.bulk_cipher, "AES-128-CBC");
        assert!(!p.aead);
        assert_eq!(p.mac, "HMAC-SHA-1");
        let garbage = cipher_parts("", None, None, None);
        assert_eq!(garbage.key_exchange, "unknown");
        assert_eq!(garbage.bulk_cipher, "unknown");
    }

    #[test]
    fn the_generated_certificate_is_described_with_nist_curve_rfc3339_dates_and_fingerprint() {
        let (cert, _) = crate::tls::generate_self_signed().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let d = describe_certificate(&cert, &[], now).unwrap();
        assert_eq!(d.subject, "CN=localhost, O=clickgame (self-signed)");
        assert_eq!(d.issuer, d.subject);
        assert!(d.self_signed);
        assert_eq!(d.public_key.kind, "EC");
        assert_eq!(d.public_key.curve.as_deref(), Some("P-256"));
        assert_eq!(d.public_key.bits, 256);
        assert_eq!(d.signature_algorithm, "ecdsa-with-SHA256");
        assert_eq!(d.san, vec!["DNS:localhost", "IP:127.0.0.1", "IP:::1"]);
        assert_eq!(d.sha256, crate::tls::fingerprint(&cert).unwrap());
        assert!(
            d.not_before.ends_with('Z') && d.not_before.contains('T'),
            "{}",
            d.not_before
        );
        assert!((88..=90).contains(&d.days_left), "{}", d.days_left);
        assert!(d.chain.is_empty());
        assert!(d.serial.split(':').all(|b| b.len() == 2), "{}", d.serial);
    }

    #[test]
    fn dates_and_groups_have_their_standard_spellings() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_772_150_400), "2026-02-27T00:00:00Z");
        assert_eq!(curve_name(Nid::X9_62_PRIME256V1), "P-256");
        assert_eq!(curve_name(Nid::from_raw(1034)), "X25519");
        assert_eq!(group_by_tls_id(0x001d), "X25519");
        assert_eq!(group_by_tls_id(0x1234), "group 0x1234");
        assert_eq!(colon_hex(&[0xab, 0x01]), "AB:01");
    }
}
