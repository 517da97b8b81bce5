//! # Secrets: random, written as hex, compared in constant time
//!
//! Session tokens (`<player id>.<32 hex>`, `hub.rs`), one-time tickets (`t<player id>.<32 hex>`,
//! `tickets.rs`) and the server's epoch are random bytes from openssl's CSPRNG, written as
//! lower-case hex. The id in front says *whose* secret to compare with, so a lookup never scans
//! every secret, and the comparison takes the same time however many bytes match.

/// `N` bytes from the system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // openssl's CSPRNG; if it ever failed we would rather stop than hand out guessable tokens.
    #[allow(clippy::expect_used)]
    openssl::rand::rand_bytes(&mut buf).expect("the system CSPRNG is available");
    buf
}

/// Lower-case hex, two digits a byte.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Exactly `2 * N` hex digits (either case) back into bytes; anything else is `None`.
pub fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    // Hex digits only: `from_str_radix` alone would also take a sign (`+0`).
    if s.len() != 2 * N || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Equal, in a time that does not depend on where the first difference is.
pub fn same<const N: usize>(a: &[u8; N], b: &[u8; N]) -> bool {
    openssl::memcmp::eq(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_every_other_length_or_digit() {
        let bytes = [0x00, 0x7f, 0xab, 0xff];
        assert_eq!(hex(&bytes), "007fabff");
        assert_eq!(unhex::<4>("007fabff"), Some(bytes));
        assert_eq!(unhex::<4>("007FABFF"), Some(bytes));
        for bad in [
            "",
            "007fab",
            "007fabff00",
            "007fabfg",
            "+07fabff",
            "00é7fab",
        ] {
            assert_eq!(unhex::<4>(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn two_random_secrets_differ() {
        assert!(!same(&random_bytes::<16>(), &random_bytes::<16>()));
    }
}
