//! base64url as JOSE uses it: encode without padding, decode with or without `=`.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Decodes base64url with or without trailing `=` padding (some real clients pad).
const URL_SAFE_ANY_PADDING: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Encodes `bytes` as base64url without padding.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_ANY_PADDING.encode(bytes)
}

/// Decodes base64url, accepting segments with or without trailing `=` padding.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_ANY_PADDING.decode(text.trim_end_matches('=')).ok()
}

/// Decodes standard base64 (PEM bodies), ignoring whitespace.
pub(crate) fn decode_standard(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()
}

/// Encodes standard base64 wrapped at 64 columns, as PEM wants.
pub(crate) fn encode_pem_body(bytes: &[u8]) -> String {
    let flat = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::with_capacity(flat.len() + flat.len() / 64 + 1);
    for line in flat.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_with_and_without_padding() {
        assert_eq!(decode("YQ").as_deref(), Some(&b"a"[..]));
        assert_eq!(decode("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(decode("YQ=").as_deref(), Some(&b"a"[..]));
        assert_eq!(encode(b"a"), "YQ");
    }

    #[test]
    fn refuses_standard_alphabet_and_garbage() {
        assert_eq!(decode("+/8"), None);
        assert_eq!(decode("a"), None);
        assert_eq!(decode("YQ=x"), None);
        assert_eq!(decode("Y=Q"), None);
    }
}
