//! The request-signing scheme of DESIGN.md §4, as pure functions.
//!
//! `X-API-SIGN` = lowercase hex HMAC-SHA256(secret, canonical) where canonical is
//! `timestamp "\n" METHOD "\n" path_with_query "\n" hex(sha256(body))`, plus `"\n" nonce` when the
//! client sends the optional `X-API-NONCE` header (so two identical requests in one second differ).
//! The HMAC key is the UTF-8 bytes of the secret string exactly as it was shown at creation.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Longest accepted `X-API-NONCE`.
pub const MAX_NONCE_LEN: usize = 64;

/// Lowercase hex SHA-256 of a request body (of the empty string for bodiless requests).
pub fn body_digest(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// The string that is signed.
pub fn canonical_string(
    timestamp: &str,
    method: &str,
    path_with_query: &str,
    body_digest_hex: &str,
    nonce: Option<&str>,
) -> String {
    let mut s = String::with_capacity(
        timestamp.len() + method.len() + path_with_query.len() + 64 + 4 + nonce.map_or(0, str::len),
    );
    s.push_str(timestamp);
    s.push('\n');
    s.push_str(method);
    s.push('\n');
    s.push_str(path_with_query);
    s.push('\n');
    s.push_str(body_digest_hex);
    if let Some(n) = nonce {
        s.push('\n');
        s.push_str(n);
    }
    s
}

/// Lowercase hex HMAC-SHA256 of `canonical` under `secret`, as a client computes it.
pub fn sign(secret: &[u8], canonical: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(canonical.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `signature_hex` is the signature of `canonical` under `secret`, compared in constant
/// time. Upper-case hex is refused: the scheme says lowercase, and one spelling keeps replay
/// detection exact.
pub fn verify(secret: &[u8], canonical: &str, signature_hex: &str) -> bool {
    if signature_hex.len() != 64
        || !signature_hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return false;
    }
    let mut given = [0u8; 32];
    if hex::decode_to_slice(signature_hex, &mut given).is_err() {
        return false;
    }
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(canonical.as_bytes());
    let expected = mac.finalize().into_bytes();
    expected.as_slice().ct_eq(&given).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        // Computed independently: printf '1700000000\nGET\n/v1/ping\n<sha256("")>' | openssl dgst -sha256 -hmac sk_test
        let c = canonical_string("1700000000", "GET", "/v1/ping", &body_digest(b""), None);
        assert_eq!(
            c,
            "1700000000\nGET\n/v1/ping\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let sig = sign(b"sk_test", &c);
        assert_eq!(
            sig,
            "a83accaabb33fc852dd8153d28639f0b210452c08a526c8880383f1cacc7d5bc"
        );
        assert!(verify(b"sk_test", &c, &sig));
    }

    #[test]
    fn any_change_breaks_the_signature() {
        let c = canonical_string("1", "POST", "/v1/x?a=1", &body_digest(b"{}"), None);
        let sig = sign(b"secret", &c);
        assert!(!verify(b"secret2", &c, &sig));
        let c2 = canonical_string("1", "POST", "/v1/x?a=2", &body_digest(b"{}"), None);
        assert!(!verify(b"secret", &c2, &sig));
        let c3 = canonical_string("1", "POST", "/v1/x?a=1", &body_digest(b"{ }"), None);
        assert!(!verify(b"secret", &c3, &sig));
        let c4 = canonical_string("1", "POST", "/v1/x?a=1", &body_digest(b"{}"), Some("n"));
        assert!(!verify(b"secret", &c4, &sig));
        assert!(!verify(b"secret", &c, &sig.to_uppercase()));
        assert!(!verify(b"secret", &c, &sig[..63]));
        assert!(!verify(b"secret", &c, "zz"));
    }
}
