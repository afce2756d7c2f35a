//! PKCE (RFC 7636): the shape of a `code_challenge` and `code_verifier`, and the S256
//! check that binds an authorization code to the client that asked for it. Only S256
//! is accepted; `plain` would let whoever sees the authorization request redeem the code.

use aws_lc_rs::digest;

use crate::b64;

/// The only `code_challenge_method` accepted.
pub const S256: &str = "S256";

/// Whether `value` is 43 to 128 characters of the unreserved set
/// `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"` (RFC 7636 sections 4.1 and 4.2):
/// the shape of both a verifier and an S256 challenge.
pub fn well_formed(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// The S256 challenge for `verifier`: `BASE64URL(SHA256(verifier))` without padding.
pub fn s256_challenge(verifier: &str) -> String {
    b64::encode(digest::digest(&digest::SHA256, verifier.as_bytes()).as_ref())
}

/// Whether `verifier` is well formed and hashes to `challenge`, compared in
/// constant time.
pub fn verify_s256(verifier: &str, challenge: &str) -> bool {
    well_formed(verifier)
        && aws_lc_rs::constant_time::verify_slices_are_equal(
            s256_challenge(verifier).as_bytes(),
            challenge.as_bytes(),
        )
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 appendix B.
    const RFC_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const RFC_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc_7636_appendix_b_vector() {
        assert_eq!(s256_challenge(RFC_VERIFIER), RFC_CHALLENGE);
        assert!(verify_s256(RFC_VERIFIER, RFC_CHALLENGE));
    }

    #[test]
    fn wrong_or_malformed_verifiers_fail() {
        assert!(!verify_s256(&RFC_VERIFIER.replace('d', "e"), RFC_CHALLENGE));
        // The challenge itself is not a verifier of itself (the `plain` method).
        assert!(!verify_s256(RFC_CHALLENGE, RFC_CHALLENGE));
        assert!(!well_formed("short"));
        assert!(!well_formed(&"a".repeat(129)));
        assert!(!well_formed(&format!("{}+", "a".repeat(43))));
        assert!(well_formed(&"a~._-".repeat(9)));
    }
}
