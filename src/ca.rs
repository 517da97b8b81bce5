//! # A local CA, the way mkcert works — with name constraints
//!
//! A self-signed certificate makes every browser warn, and a warning the lecturer clicks away
//! on the projector teaches the class to click warnings away. mkcert's answer: create a small
//! certificate authority on the laptop, install its certificate once in that machine's trust
//! store, and sign the server's certificate with it — from then on `https://localhost:8443`
//! and `https://<LAN address>:8443` are trusted *on that machine*.
//!
//! The danger of that answer: whoever holds the CA's private key can sign a certificate for
//! *any* site (`bank.example`), and every machine that installed the CA would trust it. So our
//! CA carries **name constraints** (RFC 5280 §4.2.1.10), marked critical: it may only vouch for
//! `localhost`, this machine's host names, the loopback networks and the networks of the LAN
//! addresses it was made for. A certificate it signs for any other name fails verification,
//! in OpenSSL and in the browsers that enforce constraints on roots (a test holds OpenSSL to
//! it). It also says `CA:TRUE, pathlen:0` (it cannot create sub-CAs) and `serverAuth` only.
//!
//! Students should still *not* install a stranger's CA on their phones (see
//! `docs/classroom.md`): constraints are checked per name type, not every client enforces them,
//! and a phone's trust store is theirs to keep clean. They compare the fingerprint instead.
//!
//! The CA is `ca.pem` (certificate) and `ca-key.pem` (key, mode 0600) in the data directory,
//! made by `clickgame --init-ca` (`make ca`) and used by every later start to sign the leaf.

use std::fs;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectKeyIdentifier,
};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::{X509Extension, X509NameBuilder, X509StoreContext, X509};

use crate::lan::{Host, LanNames};

pub const CA_FILE: &str = "ca.pem";
pub const CA_KEY_FILE: &str = "ca-key.pem";
/// A semester and then some. Short on purpose: the key lies on a laptop's disk.
pub const CA_VALID_DAYS: u32 = 365;

/// The local CA, loaded or made.
pub struct LocalCa {
    pub cert: X509,
    pub key: PKey<Private>,
    pub cert_path: PathBuf,
    pub sha256: String,
}

/// What the CA may vouch for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// DNS names; each also covers the names below it (`localhost` covers `a.localhost`).
    pub dns: Vec<String>,
    /// IP networks as (network address, prefix length).
    pub networks: Vec<(IpAddr, u8)>,
}

impl Scope {
    /// Loopback (`localhost`, 127.0.0.0/8, ::1) and the LAN names and networks of `lan`.
    pub fn for_names(lan: &LanNames) -> Scope {
        let mut scope = Scope {
            dns: vec!["localhost".into()],
            networks: vec![
                (IpAddr::from([127, 0, 0, 0]), 8),
                (IpAddr::from(std::net::Ipv6Addr::LOCALHOST), 128),
            ],
        };
        for host in &lan.hosts {
            if let Host::Dns(name) = host {
                if !scope.dns.contains(name) {
                    scope.dns.push(name.clone());
                }
            }
        }
        for net in &lan.networks {
            if !scope.networks.contains(net) {
                scope.networks.push(*net);
            }
        }
        scope
    }

    /// The `nameConstraints` extension in OpenSSL's configuration syntax (`man
    /// x509v3_config`): critical, one `permitted` subtree per name and network.
    ///
    /// Only names [`Host::parse`] accepted and addresses Rust formatted end up here, so no
    /// value can smuggle in a `,` or an `@section` reference of that syntax.
    pub fn name_constraints(&self) -> String {
        let mut parts = vec!["critical".to_string()];
        for name in &self.dns {
            parts.push(format!("permitted;DNS:{name}"));
        }
        for (ip, prefix) in &self.networks {
            parts.push(format!("permitted;IP:{ip}/{}", netmask(*ip, *prefix)));
        }
        parts.join(",")
    }
}

/// The netmask of a prefix, in the address family of `ip` (`255.255.255.0` for a v4 /24).
fn netmask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(_) => {
            let bits = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            IpAddr::from(std::net::Ipv4Addr::from(bits))
        }
        IpAddr::V6(_) => {
            let bits = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            IpAddr::from(std::net::Ipv6Addr::from(bits))
        }
    }
}

fn other(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// A new CA for `scope`: ECDSA P-256, valid [`CA_VALID_DAYS`], `CA:TRUE, pathlen:0`,
/// `keyCertSign`, `serverAuth`, and the name constraints of `scope`.
pub fn generate(scope: &Scope, label: &str) -> io::Result<(X509, PKey<Private>)> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(other)?;
    let key = PKey::from_ec_key(EcKey::generate(&group).map_err(other)?).map_err(other)?;
    let mut name = X509NameBuilder::new().map_err(other)?;
    name.append_entry_by_nid(Nid::COMMONNAME, &format!("clickgame local CA {label}"))
        .map_err(other)?;
    name.append_entry_by_nid(
        Nid::ORGANIZATIONNAME,
        "clickgame (local CA, name-constrained)",
    )
    .map_err(other)?;
    let name = name.build();
    let mut b = X509::builder().map_err(other)?;
    b.set_version(2).map_err(other)?;
    let mut serial = BigNum::new().map_err(other)?;
    serial
        .rand(127, MsbOption::MAYBE_ZERO, false)
        .map_err(other)?;
    let serial = Asn1Integer::from_bn(&serial).map_err(other)?;
    b.set_serial_number(&serial).map_err(other)?;
    b.set_subject_name(&name).map_err(other)?;
    b.set_issuer_name(&name).map_err(other)?;
    b.set_pubkey(&key).map_err(other)?;
    let not_before = Asn1Time::days_from_now(0).map_err(other)?;
    b.set_not_before(&not_before).map_err(other)?;
    let not_after = Asn1Time::days_from_now(CA_VALID_DAYS).map_err(other)?;
    b.set_not_after(&not_after).map_err(other)?;
    b.append_extension(
        BasicConstraints::new()
            .critical()
            .ca()
            .pathlen(0)
            .build()
            .map_err(other)?,
    )
    .map_err(other)?;
    b.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
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
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(None, None))
        .map_err(other)?;
    b.append_extension(ski).map_err(other)?;
    b.append_extension(name_constraints_extension(scope)?)
        .map_err(other)?;
    b.sign(&key, MessageDigest::sha256()).map_err(other)?;
    Ok((b.build(), key))
}

/// The openssl crate has no builder for `nameConstraints`; its configuration-string
/// constructor is deprecated because the string language can read files — which no value we
/// pass can ask for (see [`Scope::name_constraints`]). The road not taken: assembling the DER
/// by hand, which would hide the syntax `openssl.cnf` users know behind byte arithmetic.
#[allow(deprecated)]
fn name_constraints_extension(scope: &Scope) -> io::Result<X509Extension> {
    X509Extension::new_nid(None, None, Nid::NAME_CONSTRAINTS, &scope.name_constraints())
        .map_err(other)
}

/// Checks `leaf` against `ca` as the only trust anchor, as a browser that installed the CA
/// would: the signature, the dates, and the CA's name constraints. `Err` says why not.
pub fn verify(ca: &X509, leaf: &X509) -> Result<(), String> {
    let run = || -> Result<Result<(), String>, openssl::error::ErrorStack> {
        let mut store = X509StoreBuilder::new()?;
        store.add_cert(ca.clone())?;
        let store = store.build();
        let chain = Stack::new()?;
        let mut ctx = X509StoreContext::new()?;
        ctx.init(&store, leaf, &chain, |c| {
            Ok(if c.verify_cert()? {
                Ok(())
            } else {
                Err(c.error().error_string().to_string())
            })
        })
    };
    run().map_err(|e| e.to_string())?
}

/// The CA in `data_dir`, if there is one. A CA whose files cannot be read or parsed, or whose
/// key does not match, is an error: signing with it would make certificates nobody trusts.
pub fn load(data_dir: &Path) -> io::Result<Option<LocalCa>> {
    let cert_path = data_dir.join(CA_FILE);
    let key_path = data_dir.join(CA_KEY_FILE);
    if !cert_path.exists() {
        return Ok(None);
    }
    let read = || -> io::Result<LocalCa> {
        let cert = X509::from_pem(&fs::read(&cert_path)?).map_err(other)?;
        let key = PKey::private_key_from_pem(&fs::read(&key_path)?).map_err(other)?;
        if !cert.public_key().map_err(other)?.public_eq(&key) {
            return Err(other("the key does not belong to the certificate"));
        }
        Ok(LocalCa {
            sha256: crate::tls::fingerprint(&cert)?,
            cert,
            key,
            cert_path: cert_path.clone(),
        })
    };
    read().map(Some).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "the local CA {} / {}: {e}; delete both and run `make ca` again",
                cert_path.display(),
                key_path.display()
            ),
        )
    })
}

/// The CA for `scope` in `data_dir`: the existing one if it may vouch for every name of
/// `scope` (tried by signing a throw-away leaf for them), otherwise a new one, written with
/// its key (mode 0600). The flag says whether it is new (and must be installed again).
pub fn load_or_create(
    data_dir: &Path,
    scope: &Scope,
    names: &[String],
) -> io::Result<(LocalCa, bool)> {
    if let Some(ca) = load(data_dir)? {
        let (leaf, _) = crate::tls::generate_leaf(names, Some(&ca))?;
        match verify(&ca.cert, &leaf) {
            Ok(()) => return Ok((ca, false)),
            Err(why) => tracing::warn!(
                ca = %ca.cert_path.display(),
                %why,
                "the local CA does not cover these names; making a new one (install it again)"
            ),
        }
    }
    fs::create_dir_all(data_dir)?;
    let label = format!(
        "{} {}",
        crate::lan::system_host_name().unwrap_or_else(|| "laptop".into()),
        time::OffsetDateTime::now_utc().date()
    );
    let (cert, key) = generate(scope, &label)?;
    let cert_path = data_dir.join(CA_FILE);
    crate::tls::write_private(
        &data_dir.join(CA_KEY_FILE),
        &key.private_key_to_pem_pkcs8().map_err(other)?,
    )?;
    crate::tls::write_private(&cert_path, &cert.to_pem().map_err(other)?)?;
    Ok((
        LocalCa {
            sha256: crate::tls::fingerprint(&cert)?,
            cert,
            key,
            cert_path,
        },
        true,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::generate_leaf;

    fn lan() -> LanNames {
        LanNames::given(&[
            Host::parse("192.0.2.10").unwrap(),
            Host::parse("2001:db8::10").unwrap(),
            Host::parse("lecture.local").unwrap(),
        ])
    }

    fn ca_for(lan: &LanNames) -> LocalCa {
        let (cert, key) = generate(&Scope::for_names(lan), "test").unwrap();
        LocalCa {
            sha256: crate::tls::fingerprint(&cert).unwrap(),
            cert,
            key,
            cert_path: PathBuf::from("ca.pem"),
        }
    }

    #[test]
    fn the_constraints_permit_loopback_and_the_lan_names_and_nothing_else() {
        assert_eq!(
            Scope::for_names(&lan()).name_constraints(),
            "critical,permitted;DNS:localhost,permitted;DNS:lecture.local,\
             permitted;IP:127.0.0.0/255.0.0.0,\
             permitted;IP:::1/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff,\
             permitted;IP:192.0.2.10/255.255.255.255,\
             permitted;IP:2001:db8::10/ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        );
        let ca = ca_for(&lan());
        let text = String::from_utf8(ca.cert.to_text().unwrap()).unwrap();
        assert!(text.contains("X509v3 Name Constraints: critical"), "{text}");
        assert!(text.contains("CA:TRUE, pathlen:0"), "{text}");
    }

    #[test]
    fn openssl_verifies_a_leaf_for_the_lan_names_against_the_ca() {
        let lan = lan();
        let ca = ca_for(&lan);
        let (leaf, _) = generate_leaf(&lan.san_names(), Some(&ca)).unwrap();
        assert_eq!(verify(&ca.cert, &leaf), Ok(()));
        // An address of a detected interface's network is covered too.
        let found = [crate::lan::InterfaceAddr {
            interface: "wlp2s0".into(),
            ip: "192.168.1.23".parse().unwrap(),
            prefix: 24,
            point_to_point: false,
        }];
        let detected = LanNames::select(&found, Vec::new());
        let ca = ca_for(&detected);
        let (leaf, _) = generate_leaf(&["192.168.1.77".into()], Some(&ca)).unwrap();
        assert_eq!(verify(&ca.cert, &leaf), Ok(()));
    }

    #[test]
    fn a_leaf_for_a_name_outside_the_constraints_fails_verification() {
        let lan = lan();
        let ca = ca_for(&lan);
        for outside in ["bank.example", "192.0.2.11", "2001:db8::11", "local"] {
            let (leaf, _) = generate_leaf(&[outside.to_string()], Some(&ca)).unwrap();
            let err = verify(&ca.cert, &leaf).unwrap_err();
            assert!(
                err.contains("permitted subtree violation"),
                "{outside}: {err}"
            );
        }
        // A leaf the CA did not sign is not trusted through it either.
        let (stranger, _) = generate_leaf(&[], None).unwrap();
        assert!(verify(&ca.cert, &stranger).is_err());
    }

    #[test]
    fn an_existing_ca_is_kept_while_it_covers_the_names_and_replaced_when_not() {
        let dir = tempfile::tempdir().unwrap();
        let lan = lan();
        let (first, new) =
            load_or_create(dir.path(), &Scope::for_names(&lan), &lan.san_names()).unwrap();
        assert!(new);
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir.path().join(CA_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (again, new) =
            load_or_create(dir.path(), &Scope::for_names(&lan), &lan.san_names()).unwrap();
        assert!(!new);
        assert_eq!(again.sha256, first.sha256);
        let moved = LanNames::given(&[Host::parse("198.51.100.7").unwrap()]);
        let (other, new) =
            load_or_create(dir.path(), &Scope::for_names(&moved), &moved.san_names()).unwrap();
        assert!(new);
        assert_ne!(other.sha256, first.sha256);
    }
}
