//! # TLS: certificates and the openssl acceptor
//!
//! HTTPS and WSS are the same transports with TLS underneath: TLS protects the *channel*
//! (nobody on the path can read or change the bytes, and the browser knows it talks to the
//! holder of the certificate's key) — not the *data*: a cheating client still sends whatever
//! clicks it likes, which is why the server stays the authority (see `docs/security.md`).
//!
//! With no `--cert`/`--key`, the server makes its own certificate on first start: ECDSA P-256,
//! SAN `localhost`, `127.0.0.1`, `::1` (with `--lan`, also the room's addresses and host names,
//! `lan.rs`), extended key usage serverAuth, valid for [`CERT_VALID_DAYS`]. It is stored with
//! its key (mode 0600) in the data directory, reused on later starts, and made anew when it
//! expires (or is about to), when the names it should carry change, or when the local CA
//! (`ca.rs`, `make ca`) appears: then the CA signs it instead of its own key. Each of these is
//! said in the log.
//!
//! The acceptor follows Mozilla's "intermediate" profile: TLS 1.2 and 1.3 only, the six ECDHE
//! AEAD suites for TLS 1.2, groups X25519/P-256/P-384. actix adds ALPN (`h2`, `http/1.1`).
//! Two teaching knobs narrow or open it up ([`TlsOptions`]): `--tls-min`/`--tls-max` pin the
//! version (to show a TLS 1.2 handshake, certificate in clear, next to a 1.3 one), and
//! `--tls-keylog FILE` hands every session's secrets to Wireshark — which is exactly what an
//! attacker would want, so it is off unless asked for and announced loudly when on.

use std::fs;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::ex_data::Index;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::ssl::{SslAcceptor, SslAcceptorBuilder, SslContext, SslMethod, SslVersion};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509NameBuilder, X509};

/// Lifetime of a generated certificate (browsers and Apple cap server certificates far lower
/// than the old two years; 90 days is what ACME CAs issue).
pub const CERT_VALID_DAYS: u32 = 90;
/// A stored certificate that expires within this many days is replaced at start-up.
pub const RENEW_BEFORE_DAYS: u32 = 1;
/// TLS 1.2 suites of Mozilla's intermediate profile (TLS 1.3 suites are all AEAD already).
pub const TLS12_CIPHERS: &str = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:\
ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
pub const TLS_GROUPS: &str = "X25519:P-256:P-384";

pub const CERT_FILE: &str = "cert.pem";
pub const KEY_FILE: &str = "key.pem";

/// Where the certificate and key came from, for the start-up log.
#[derive(Debug, Clone)]
pub struct CertInfo {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub sha256: String,
    pub generated: bool,
    pub not_after: String,
    /// The names the certificate is valid for (SAN DNS names and IP addresses, or the subject's
    /// common name when it has no SAN): the only hosts `--redirect-http` sends browsers to.
    pub names: Vec<String>,
    /// Intermediate CA certificates that followed the leaf in `--cert` (or the local CA's, when
    /// it signed the generated leaf): sent after the leaf so browsers can build the path to a
    /// root they trust.
    pub chain: Vec<X509>,
    /// The local CA that signed the generated leaf (`make ca`), if one did.
    pub ca: Option<CaRef>,
}

/// Which local CA signed the leaf: its file and fingerprint, for the log and the docs' advice
/// to install it on the projector laptop only.
#[derive(Debug, Clone)]
pub struct CaRef {
    pub path: PathBuf,
    pub sha256: String,
}

/// A TLS protocol version a flag can name. Only the two the Mozilla profile allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum TlsVersion {
    #[value(name = "1.2")]
    Tls12,
    #[value(name = "1.3")]
    Tls13,
}

impl TlsVersion {
    fn openssl(self) -> SslVersion {
        match self {
            TlsVersion::Tls12 => SslVersion::TLS1_2,
            TlsVersion::Tls13 => SslVersion::TLS1_3,
        }
    }
}

impl std::fmt::Display for TlsVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TlsVersion::Tls12 => "TLS 1.2",
            TlsVersion::Tls13 => "TLS 1.3",
        })
    }
}

/// The acceptor's teaching knobs (`--tls-min`, `--tls-max`, `--tls-keylog`).
#[derive(Debug, Clone)]
pub struct TlsOptions {
    pub min: TlsVersion,
    pub max: TlsVersion,
    /// Append NSS key-log lines here (file mode 0600). Anyone holding this file can decrypt
    /// every recorded connection: for a lecture demonstration with Wireshark, never otherwise.
    pub keylog: Option<PathBuf>,
}

impl Default for TlsOptions {
    fn default() -> TlsOptions {
        TlsOptions {
            min: TlsVersion::Tls12,
            max: TlsVersion::Tls13,
            keylog: None,
        }
    }
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// A fresh self-signed ECDSA P-256 certificate for the loopback names.
pub fn generate_self_signed() -> io::Result<(X509, PKey<Private>)> {
    generate_leaf(&[], None)
}

/// The loopback names followed by `extra`, each once.
fn leaf_names(extra: &[String]) -> Vec<String> {
    let mut names: Vec<String> = crate::lan::LOOPBACK_NAMES
        .iter()
        .map(|s| s.to_string())
        .collect();
    for name in extra {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// A fresh ECDSA P-256 server certificate for the loopback names and `extra` (IP addresses or
/// DNS names, as in a SAN), signed by `ca` when given (and valid no longer than it), by its
/// own key otherwise.
pub fn generate_leaf(
    extra: &[String],
    ca: Option<&crate::ca::LocalCa>,
) -> io::Result<(X509, PKey<Private>)> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(other)?;
    let key = PKey::from_ec_key(EcKey::generate(&group).map_err(other)?).map_err(other)?;
    let mut name = X509NameBuilder::new().map_err(other)?;
    name.append_entry_by_nid(Nid::COMMONNAME, "localhost")
        .map_err(other)?;
    let org = if ca.is_some() {
        "clickgame (local CA)"
    } else {
        "clickgame (self-signed)"
    };
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, org)
        .map_err(other)?;
    let name = name.build();

    let mut b = X509::builder().map_err(other)?;
    b.set_version(2).map_err(other)?;
    let mut serial = BigNum::new().map_err(other)?;
    serial
        .rand(127, openssl::bn::MsbOption::MAYBE_ZERO, false)
        .map_err(other)?;
    let serial = Asn1Integer::from_bn(&serial).map_err(other)?;
    b.set_serial_number(&serial).map_err(other)?;
    b.set_subject_name(&name).map_err(other)?;
    match ca {
        Some(ca) => b.set_issuer_name(ca.cert.subject_name()).map_err(other)?,
        None => b.set_issuer_name(&name).map_err(other)?,
    }
    b.set_pubkey(&key).map_err(other)?;
    let not_before = Asn1Time::days_from_now(0).map_err(other)?;
    b.set_not_before(&not_before).map_err(other)?;
    let not_after = Asn1Time::days_from_now(CERT_VALID_DAYS).map_err(other)?;
    match ca.map(|ca| ca.cert.not_after()) {
        // Never valid longer than the CA that vouches for it.
        Some(ca_end) if ca_end.compare(&not_after).is_ok_and(|o| o.is_lt()) => {
            b.set_not_after(ca_end).map_err(other)?
        }
        _ => b.set_not_after(&not_after).map_err(other)?,
    }
    // A leaf: not a CA, signs nothing else.
    b.append_extension(BasicConstraints::new().critical().build().map_err(other)?)
        .map_err(other)?;
    b.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .build()
            .map_err(other)?,
    )
    .map_err(other)?;
    b.append_extension(
        ExtendedKeyUsage::new()
            .server_auth()
            .build()
            .map_err(other)?,
    )
    .map_err(other)?;
    let mut san = SubjectAlternativeName::new();
    for name in leaf_names(extra) {
        match name.parse::<IpAddr>() {
            Ok(ip) => san.ip(&ip.to_string()),
            Err(_) => san.dns(&name),
        };
    }
    let san = san
        .build(&b.x509v3_context(ca.map(|ca| ca.cert.as_ref()), None))
        .map_err(other)?;
    b.append_extension(san).map_err(other)?;
    if let Some(ca) = ca {
        let aki = AuthorityKeyIdentifier::new()
            .keyid(false)
            .build(&b.x509v3_context(Some(&ca.cert), None))
            .map_err(other)?;
        b.append_extension(aki).map_err(other)?;
        b.sign(&ca.key, MessageDigest::sha256()).map_err(other)?;
    } else {
        b.sign(&key, MessageDigest::sha256()).map_err(other)?;
    }
    Ok((b.build(), key))
}

/// The host names `cert` is valid for: its SAN DNS names and IP addresses in order, or its
/// subject's common name when it has no SAN.
pub fn cert_names(cert: &X509) -> Vec<String> {
    let san: Vec<String> = cert
        .subject_alt_names()
        .map(|names| {
            names
                .iter()
                .filter_map(|n| match (n.dnsname(), n.ipaddress()) {
                    (Some(dns), _) => Some(dns.to_string()),
                    (_, Some(ip)) => match ip.len() {
                        4 => <[u8; 4]>::try_from(ip)
                            .ok()
                            .map(|b| Ipv4Addr::from(b).to_string()),
                        16 => <[u8; 16]>::try_from(ip)
                            .ok()
                            .map(|b| Ipv6Addr::from(b).to_string()),
                        _ => None,
                    },
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if !san.is_empty() {
        return san;
    }
    cert.subject_name()
        .entries_by_nid(Nid::COMMONNAME)
        .filter_map(|e| e.data().to_string().ok())
        .collect()
}

/// SHA-256 fingerprint as colon-separated hex, as browsers show it.
pub fn fingerprint(cert: &X509) -> io::Result<String> {
    let digest = cert.digest(MessageDigest::sha256()).map_err(other)?;
    Ok(digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":"))
}

fn expires_soon(cert: &X509) -> bool {
    Asn1Time::days_from_now(RENEW_BEFORE_DAYS)
        .ok()
        .and_then(|soon| cert.not_after().compare(&soon).ok())
        .is_none_or(|ord| ord.is_le())
}

/// Writes `bytes` to `path` through a temporary file created mode 0600, then renames it.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}

/// Loads the certificate and key from `cert`/`key` if given, otherwise from `data_dir`,
/// generating (or renewing) them there when missing or expiring. Loopback names only; see
/// [`load_or_create_for`].
pub fn load_or_create(
    cert: Option<&Path>,
    key: Option<&Path>,
    data_dir: &Path,
) -> io::Result<(X509, PKey<Private>, CertInfo)> {
    load_or_create_for(cert, key, data_dir, &[])
}

/// A generated certificate as it was stored: the leaf, what followed it, its key.
type Stored = (X509, Vec<X509>, PKey<Private>);

/// Like [`load_or_create`], for a generated certificate that must carry the loopback names
/// and `extra` (the LAN names of `--lan`). The stored one is used while it is valid for more
/// than a day, names exactly these, and is issued the way it should be (by the local CA in
/// `data_dir` when there is one that may vouch for all the names, by itself otherwise);
/// otherwise a new one is made, and the log says why. `--cert`/`--key` are used as they are.
pub fn load_or_create_for(
    cert: Option<&Path>,
    key: Option<&Path>,
    data_dir: &Path,
    extra: &[String],
) -> io::Result<(X509, PKey<Private>, CertInfo)> {
    let explicit = cert.is_some() || key.is_some();
    let (cert_path, key_path) = match (cert, key) {
        (Some(c), Some(k)) => (c.to_path_buf(), k.to_path_buf()),
        (None, None) => (data_dir.join(CERT_FILE), data_dir.join(KEY_FILE)),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "--cert and --key go together",
            ))
        }
    };
    let stored = (|| -> io::Result<Stored> {
        // The leaf first, then any intermediates (a `fullchain.pem` as ACME clients write it).
        let mut certs = X509::stack_from_pem(&fs::read(&cert_path)?).map_err(other)?;
        if certs.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "no certificate"));
        }
        let c = certs.remove(0);
        let k = PKey::private_key_from_pem(&fs::read(&key_path)?).map_err(other)?;
        Ok((c, certs, k))
    })();
    if explicit {
        let (cert, chain, key) = stored.map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "reading {} / {}: {e}",
                    cert_path.display(),
                    key_path.display()
                ),
            )
        })?;
        let info = cert_info(&cert, chain, None, cert_path, key_path, false)?;
        return Ok((cert, key, info));
    }
    let ca = crate::ca::load(data_dir).unwrap_or_else(|err| {
        tracing::warn!(%err, "the local CA cannot be used; the certificate is self-signed");
        None
    });
    let wanted = leaf_names(extra);
    let (cert, chain, key, signed_by_ca, why_new) = match decide(stored, &wanted, ca.as_ref())? {
        Decision::Keep((c, chain, k), by_ca) => (c, chain, k, by_ca, None),
        Decision::Use((c, k), by_ca, why) => {
            let chain = match (&ca, by_ca) {
                (Some(ca), true) => vec![ca.cert.clone()],
                _ => Vec::new(),
            };
            (c, chain, k, by_ca, Some(why))
        }
        Decision::Make(why) => {
            let (c, k, by_ca) = make_leaf(extra, ca.as_ref())?;
            let chain = match (&ca, by_ca) {
                (Some(ca), true) => vec![ca.cert.clone()],
                _ => Vec::new(),
            };
            (c, chain, k, by_ca, Some(why))
        }
    };
    if let Some(why) = &why_new {
        fs::create_dir_all(data_dir)?;
        write_private(&key_path, &key.private_key_to_pem_pkcs8().map_err(other)?)?;
        let mut pem = cert.to_pem().map_err(other)?;
        for c in &chain {
            pem.extend(c.to_pem().map_err(other)?);
        }
        write_private(&cert_path, &pem)?;
        tracing::info!(
            cert = %cert_path.display(),
            names = %wanted.join(", "),
            issuer = if signed_by_ca { "the local CA" } else { "itself (self-signed)" },
            "new TLS certificate: {why}"
        );
    }
    let ca_ref = ca.filter(|_| signed_by_ca).map(|ca| CaRef {
        path: ca.cert_path,
        sha256: ca.sha256,
    });
    let info = cert_info(&cert, chain, ca_ref, cert_path, key_path, why_new.is_some())?;
    Ok((cert, key, info))
}

fn cert_info(
    cert: &X509,
    chain: Vec<X509>,
    ca: Option<CaRef>,
    cert_path: PathBuf,
    key_path: PathBuf,
    generated: bool,
) -> io::Result<CertInfo> {
    Ok(CertInfo {
        sha256: fingerprint(cert)?,
        not_after: cert.not_after().to_string(),
        names: cert_names(cert),
        cert_path,
        key_path,
        generated,
        chain,
        ca,
    })
}

/// What to do about the stored generated certificate.
enum Decision {
    /// Use it as it is (`true`: the local CA signed it).
    Keep(Stored, bool),
    /// Use this freshly made leaf instead (`true`: the local CA signed it), for the reason given.
    Use((X509, PKey<Private>), bool, String),
    /// Make a new one, for the reason given.
    Make(String),
}

fn decide(
    stored: io::Result<Stored>,
    wanted: &[String],
    ca: Option<&crate::ca::LocalCa>,
) -> io::Result<Decision> {
    let (c, chain, k) = match stored {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Decision::Make("there was none yet".into()))
        }
        Err(e) => {
            return Ok(Decision::Make(format!(
                "the stored one could not be read ({e})"
            )))
        }
    };
    if expires_soon(&c) {
        return Ok(Decision::Make(format!(
            "the stored one expires within {RENEW_BEFORE_DAYS} day(s)"
        )));
    }
    let have = cert_names(&c);
    let added: Vec<&String> = wanted.iter().filter(|n| !have.contains(n)).collect();
    let removed: Vec<&String> = have.iter().filter(|n| !wanted.contains(n)).collect();
    if !added.is_empty() || !removed.is_empty() {
        let list = |v: &[&String]| {
            if v.is_empty() {
                "none".to_string()
            } else {
                v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            }
        };
        return Ok(Decision::Make(format!(
            "the names changed (added: {}; removed: {})",
            list(&added),
            list(&removed)
        )));
    }
    // Issuer = subject and signed by its own key. (Not `X509::issued`: it also wants the issuer
    // to have keyCertSign, which a leaf does not.)
    let self_signed = c
        .issuer_name()
        .try_cmp(c.subject_name())
        .is_ok_and(|o| o.is_eq())
        && c.public_key().and_then(|p| c.verify(&p)).unwrap_or(false);
    let Some(ca) = ca else {
        return Ok(if self_signed && chain.is_empty() {
            Decision::Keep((c, chain, k), false)
        } else {
            Decision::Make("the local CA that signed the stored one is gone".into())
        });
    };
    let ca_der = ca.cert.to_der().map_err(other)?;
    let by_this_ca = chain.len() == 1
        && chain[0].to_der().map_err(other)? == ca_der
        && crate::ca::verify(&ca.cert, &c).is_ok();
    if by_this_ca {
        return Ok(Decision::Keep((c, chain, k), true));
    }
    // The CA is new, or another one: sign with it if it may vouch for every name. If it may
    // not, a stored self-signed leaf is still right (and keeps its fingerprint).
    Ok(match make_leaf(wanted, Some(ca))? {
        (leaf, key, true) => Decision::Use(
            (leaf, key),
            true,
            format!("the local CA {} signs it now", ca.cert_path.display()),
        ),
        _ if self_signed && chain.is_empty() => Decision::Keep((c, chain, k), false),
        (leaf, key, false) => Decision::Use(
            (leaf, key),
            false,
            "the CA that signed the stored one is not the local CA".into(),
        ),
    })
}

/// A leaf for `extra` signed by `ca` if it may vouch for every name (checked as a browser
/// would, [`crate::ca::verify`]); otherwise self-signed, with a warning that says how to fix
/// it. The flag is true when the CA signed it.
fn make_leaf(
    extra: &[String],
    ca: Option<&crate::ca::LocalCa>,
) -> io::Result<(X509, PKey<Private>, bool)> {
    if let Some(ca) = ca {
        let (leaf, key) = generate_leaf(extra, Some(ca))?;
        match crate::ca::verify(&ca.cert, &leaf) {
            Ok(()) => return Ok((leaf, key, true)),
            Err(why) => tracing::warn!(
                ca = %ca.cert_path.display(),
                %why,
                names = %leaf_names(extra).join(", "),
                "the local CA may not vouch for these names (it was made for another network); \
                 the certificate is self-signed instead. Run `make ca` again on this network \
                 and install the new ca.pem"
            ),
        }
    }
    let (leaf, key) = generate_leaf(extra, None)?;
    Ok((leaf, key, false))
}

/// The acceptor builder (actix adds ALPN when it binds): Mozilla intermediate, narrowed to
/// `options.min..=options.max`, with the chain after the leaf and, if asked, the key log.
pub fn acceptor(
    cert: &X509,
    chain: &[X509],
    key: &PKey<Private>,
    options: &TlsOptions,
) -> io::Result<SslAcceptorBuilder> {
    if options.min > options.max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "--tls-min {} is above --tls-max {}: no version is left",
                options.min, options.max
            ),
        ));
    }
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).map_err(other)?;
    b.set_min_proto_version(Some(options.min.openssl()))
        .map_err(other)?;
    b.set_max_proto_version(Some(options.max.openssl()))
        .map_err(other)?;
    b.set_cipher_list(TLS12_CIPHERS).map_err(other)?;
    b.set_groups_list(TLS_GROUPS).map_err(other)?;
    b.set_certificate(cert).map_err(other)?;
    for c in chain {
        b.add_extra_chain_cert(c.clone()).map_err(other)?;
    }
    // Also kept where `tls_info` can read it per connection: the openssl crate's getter for
    // the extra chain panics when there is none, so we do not ask OpenSSL for it.
    b.set_ex_data(chain_index()?, chain.to_vec());
    b.set_private_key(key).map_err(other)?;
    b.check_private_key().map_err(other)?;
    if let Some(path) = &options.keylog {
        let file = open_keylog(path)?;
        // OpenSSL hands us one finished NSS line per secret (CLIENT_RANDOM for TLS 1.2;
        // CLIENT_HANDSHAKE_TRAFFIC_SECRET, SERVER_TRAFFIC_SECRET_0, … for TLS 1.3). One
        // `write` per line on an O_APPEND file keeps lines from different workers whole.
        b.set_keylog_callback(move |_, line| {
            let mut record = Vec::with_capacity(line.len() + 1);
            record.extend_from_slice(line.as_bytes());
            record.push(b'\n');
            if let Err(err) = (&file).write_all(&record) {
                tracing::error!(%err, "could not append to the TLS key log");
            }
        });
    }
    Ok(b)
}

/// Where an acceptor's context keeps the chain it sends after the leaf (see [`acceptor`]).
pub fn chain_index() -> io::Result<Index<SslContext, Vec<X509>>> {
    static INDEX: OnceLock<Option<Index<SslContext, Vec<X509>>>> = OnceLock::new();
    INDEX
        .get_or_init(|| SslContext::new_ex_index().ok())
        .ok_or_else(|| io::Error::other("OpenSSL could not allocate an ex_data index"))
}

/// Opens (creating, mode 0600) the key-log file for appending. An existing file that others
/// may read is narrowed to 0600 first: the secrets must not leak further than the flag says.
fn open_keylog(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("--tls-keylog {}: {e}", path.display())))?;
    let mode = file.metadata()?.permissions().mode();
    if mode & 0o077 != 0 {
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        tracing::warn!(file = %path.display(), was = format!("{:o}", mode & 0o777), "TLS key log narrowed to mode 0600");
    }
    Ok(file)
}

/// The start-up warning for `--tls-keylog`, once per TLS listener it affects.
pub fn warn_keylog(path: &Path, listener: &str) {
    tracing::warn!(
        file = %path.display(),
        listener,
        "TLS KEY LOG ON (--tls-keylog): every session secret of {listener} is appended to {}. \
         Anyone who can read that file can decrypt every recorded connection, past and future, \
         cookies and session tokens included. Use it for a Wireshark demonstration only, then \
         delete the file",
        path.display()
    );
}
