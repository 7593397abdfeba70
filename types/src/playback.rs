//! Signed playback tokens: the one definition of their format, used by the
//! API (which issues them) and the edge module (which checks them).
//!
//! A token grants playback of one stream until an expiry, optionally only
//! from one viewer address. It travels in the path,
//! `/t/<token>/<stream>/index.m3u8`, so that the relative segment, part and
//! rendition URLs of the playlists carry it without any rewriting.
//!
//! ```text
//! unbound:  <exp>.<sig>          bound to an address:  <exp>.a.<sig>
//! exp = Unix seconds, decimal, no leading zero
//! sig = base64url, no padding, of HMAC-SHA256(secret, "<stream>\n<exp>\n<address>")
//!       (<address> is empty for an unbound token; for a bound one it is the
//!       viewer's address as the edge sees it: 192.0.2.7, 2001:db8::7)
//! ```
//!
//! An operator's own site can sign without calling the API, e.g.
//! `printf '%s\n%s\n%s' "$stream" "$exp" "" | openssl dgst -sha256 -hmac "$secret" -binary | basenc --base64url | tr -d =`.
//! Tokens have no character a stream or rendition folder name may not
//! hold except `.`, which no such name has: `/t/<token>/` never shadows a
//! stream called `t`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Length of the signature part (32 bytes, base64url without padding).
pub const SIG_LEN: usize = 43;
/// Longest token: 12 digits of expiry, `.a.`, the signature.
pub const MAX_TOKEN_LEN: usize = 12 + 3 + SIG_LEN;
/// Shortest secret accepted (bytes).
pub const MIN_SECRET_LEN: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// Why a token does not grant playback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not of the token's shape.
    Malformed,
    /// Its expiry has passed.
    Expired,
    /// The signature does not match: tampered, signed for another stream or
    /// with another secret, or bound to another address.
    BadSignature,
}

impl Refused {
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::Malformed => "malformed",
            Refused::Expired => "expired",
            Refused::BadSignature => "bad signature",
        }
    }
}

/// The parts of a token, not yet checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parsed<'a> {
    pub expires: u64,
    pub bound: bool,
    pub sig: &'a [u8],
}

fn message(mac: &mut HmacSha256, stream: &[u8], expires: u64, address: &[u8]) {
    mac.update(stream);
    mac.update(b"\n");
    mac.update(itoa::Buffer::new().format(expires).as_bytes());
    mac.update(b"\n");
    mac.update(address);
}

fn mac(secret: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length.
    HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC accepts any key"))
}

/// Signs playback of `stream` until `expires` (Unix seconds), from any
/// address or, with `address`, only from that one.
pub fn sign(secret: &[u8], stream: &str, expires: u64, address: Option<&str>) -> String {
    use base64::Engine;
    let mut m = mac(secret);
    message(
        &mut m,
        stream.as_bytes(),
        expires,
        address.unwrap_or("").as_bytes(),
    );
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(m.finalize().into_bytes());
    match address {
        Some(_) => format!("{expires}.a.{sig}"),
        None => format!("{expires}.{sig}"),
    }
}

/// Splits a token into its parts, without checking the signature.
pub fn parse(token: &[u8]) -> Result<Parsed<'_>, Refused> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(Refused::Malformed);
    }
    let mut parts = token.split(|&b| b == b'.');
    let exp = parts.next().ok_or(Refused::Malformed)?;
    let (bound, sig) = match (parts.next(), parts.next(), parts.next()) {
        (Some(sig), None, None) => (false, sig),
        (Some(b"a"), Some(sig), None) => (true, sig),
        _ => return Err(Refused::Malformed),
    };
    if exp.is_empty()
        || exp.len() > 12
        || (exp.len() > 1 && exp[0] == b'0')
        || !exp.iter().all(u8::is_ascii_digit)
        || sig.len() != SIG_LEN
        || !sig
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Refused::Malformed);
    }
    let expires = exp.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
    Ok(Parsed {
        expires,
        bound,
        sig,
    })
}

/// Checks `token` for playback of `stream` at `now` (Unix seconds) by a
/// viewer at `address` (used only when the token is bound). The signature
/// is compared in constant time.
pub fn verify(
    secret: &[u8],
    token: &[u8],
    stream: &[u8],
    now: u64,
    address: &[u8],
) -> Result<(), Refused> {
    use base64::Engine;
    let p = parse(token)?;
    let mut raw = [0u8; 33];
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode_slice(p.sig, &mut raw)
        .map_err(|_| Refused::Malformed)?;
    if n != 32 {
        return Err(Refused::Malformed);
    }
    let mut m = mac(secret);
    message(
        &mut m,
        stream,
        p.expires,
        if p.bound { address } else { b"" },
    );
    m.verify_slice(&raw[..32])
        .map_err(|_| Refused::BadSignature)?;
    if now > p.expires {
        return Err(Refused::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_token_grants_its_stream_until_it_expires() {
        let t = sign(SECRET, "golive", 1_000, None);
        assert!(t.starts_with("1000.") && t.len() == 5 + SIG_LEN, "{t}");
        assert_eq!(
            verify(SECRET, t.as_bytes(), b"golive", 999, b"10.0.0.1"),
            Ok(())
        );
        assert_eq!(verify(SECRET, t.as_bytes(), b"golive", 1_000, b"x"), Ok(()));
        assert_eq!(
            verify(SECRET, t.as_bytes(), b"golive", 1_001, b"x"),
            Err(Refused::Expired)
        );
        assert_eq!(
            verify(SECRET, t.as_bytes(), b"other", 999, b"x"),
            Err(Refused::BadSignature)
        );
        assert_eq!(
            verify(b"another secret!!", t.as_bytes(), b"golive", 999, b"x"),
            Err(Refused::BadSignature)
        );
    }

    #[test]
    fn a_bound_token_only_from_its_address() {
        let t = sign(SECRET, "golive", 1_000, Some("192.0.2.7"));
        assert!(t.starts_with("1000.a."), "{t}");
        assert_eq!(
            verify(SECRET, t.as_bytes(), b"golive", 5, b"192.0.2.7"),
            Ok(())
        );
        assert_eq!(
            verify(SECRET, t.as_bytes(), b"golive", 5, b"192.0.2.8"),
            Err(Refused::BadSignature)
        );
        // The binding cannot be dropped: the unbound form of the same
        // signature is another message.
        let unbound = t.replacen(".a.", ".", 1);
        assert_eq!(
            verify(SECRET, unbound.as_bytes(), b"golive", 5, b"192.0.2.7"),
            Err(Refused::BadSignature)
        );
    }

    #[test]
    fn tampering_is_refused() {
        let t = sign(SECRET, "golive", 1_000, None);
        // a later expiry with the old signature
        let later = t.replacen("1000.", "9000.", 1);
        assert_eq!(
            verify(SECRET, later.as_bytes(), b"golive", 5, b""),
            Err(Refused::BadSignature)
        );
        // one character of the signature changed
        let mut b = t.clone().into_bytes();
        let last = b.len() - 2;
        b[last] = if b[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            verify(SECRET, &b, b"golive", 5, b""),
            Err(Refused::BadSignature)
        );
    }

    #[test]
    fn malformed_tokens() {
        let sig = "A".repeat(SIG_LEN);
        for bad in [
            String::new(),
            "1000".into(),
            format!(".{sig}"),
            format!("01000.{sig}"),
            format!("1e3.{sig}"),
            format!("1000.b.{sig}"),
            format!("1000.a.a.{sig}"),
            format!("1000.{}", &sig[1..]),
            format!("1000.{sig}A"),
            format!("1000.{}=", &sig[1..]),
            format!("1234567890123.{sig}"),
        ] {
            assert_eq!(
                verify(SECRET, bad.as_bytes(), b"golive", 5, b""),
                Err(Refused::Malformed),
                "{bad}"
            );
        }
        // base64 of 32 bytes ends in a character whose last two bits are
        // zero; another ending is malformed, never a second spelling of the
        // same signature.
        let t = sign(SECRET, "golive", 1_000, None);
        let alias = format!("{}1", &t[..t.len() - 1]);
        assert!(t.ends_with('0'), "{t}");
        assert_eq!(
            verify(SECRET, alias.as_bytes(), b"golive", 5, b""),
            Err(Refused::Malformed)
        );
    }

    #[test]
    fn formula_matches_the_documented_one() {
        // printf 'golive\n1000\n' | openssl dgst -sha256 -hmac 0123456789abcdef0123456789abcdef -binary | basenc --base64url | tr -d =
        let t = sign(SECRET, "golive", 1_000, None);
        assert_eq!(t, format!("1000.{}", KNOWN));
    }
    const KNOWN: &str = "Dt5TODL6MJUbnHTZShet_uEjPld76KZm5fjPmkCAl60";
}
