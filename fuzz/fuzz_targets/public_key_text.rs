//! Arbitrary input to the public-key readers an integration's registration goes
//! through: `PublicKey::from_text` (PEM `PUBLIC KEY` / `RSA PUBLIC KEY`, or a JSON
//! JWK) on the input as text, and the DER readers `from_spki_der` and
//! `from_pkcs1_der` on the raw bytes.
//!
//! Checks:
//! - nothing panics;
//! - a key that was accepted round-trips: its PEM, its JWK and its DER SPKI read back
//!   as the same key with the same RFC 7638 thumbprint, and of the same type;
//! - it refuses a garbage signature for every algorithm (and does not panic).
#![no_main]

use jwtgrant_core::keys::pem_decode;
use jwtgrant_core::{JwsAlgorithm, PublicKey};
use libfuzzer_sys::fuzz_target;

fn round_trip(key: &PublicKey, source: &str) {
    let thumbprint = key.thumbprint();
    assert_eq!(
        thumbprint.len(),
        43,
        "{source}: thumbprint is a base64url SHA-256"
    );

    let pem = key.to_pem();
    let from_pem = PublicKey::from_text(&pem)
        .unwrap_or_else(|e| panic!("{source}: accepted key's own PEM refused: {e}\n{pem}"));
    assert_eq!(&from_pem, key, "{source}: PEM round trip changed the key");
    assert_eq!(
        from_pem.thumbprint(),
        thumbprint,
        "{source}: PEM thumbprint"
    );

    let jwk = serde_json::to_string(&key.to_jwk(Some("k"), None)).expect("JWK serialises");
    let from_jwk = PublicKey::from_text(&jwk)
        .unwrap_or_else(|e| panic!("{source}: accepted key's own JWK refused: {e}\n{jwk}"));
    assert_eq!(&from_jwk, key, "{source}: JWK round trip changed the key");
    assert_eq!(
        from_jwk.thumbprint(),
        thumbprint,
        "{source}: JWK thumbprint"
    );

    let der = key.to_spki_der();
    let from_der = PublicKey::from_spki_der(&der)
        .unwrap_or_else(|e| panic!("{source}: accepted key's own SPKI DER refused: {e}"));
    assert_eq!(&from_der, key, "{source}: SPKI round trip changed the key");
    assert_eq!(from_der.key_type(), key.key_type());

    for alg in JwsAlgorithm::ALL {
        assert!(
            !key.verify(alg, b"header.payload", b"not a signature"),
            "{source}: garbage signature verified with {alg}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(key) = PublicKey::from_text(text) {
            round_trip(&key, "from_text");
        }
        if let Ok((label, der)) = pem_decode(text) {
            assert!(
                !label.contains("-----"),
                "PEM label spans a boundary: {label:?}"
            );
            let _ = PublicKey::from_spki_der(&der);
        }
    }
    if let Ok(key) = PublicKey::from_spki_der(data) {
        round_trip(&key, "from_spki_der");
    }
    if let Ok(key) = PublicKey::from_pkcs1_der(data) {
        round_trip(&key, "from_pkcs1_der");
    }
});
