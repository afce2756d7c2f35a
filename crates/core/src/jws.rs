//! Compact JWS (RFC 7515 section 7.1): split, decode and check the header of an
//! assertion; sign a compact JWS. The signature is checked over the two first
//! segments exactly as received, padding included.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::alg::JwsAlgorithm;
use crate::b64;
use crate::error::GrantError;
use crate::keys::{KeyError, SigningKey};

/// The largest assertion accepted, in bytes (before any decoding).
pub const MAX_ASSERTION_BYTES: usize = 16 * 1024;

/// The protected header members jwtgrant reads. `jku`, `x5u`, `jwk` and `x5c` are
/// never read: keys come from the registry only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoseHeader {
    /// The signature algorithm.
    pub alg: JwsAlgorithm,
    /// The key id, when given.
    pub kid: Option<String>,
    /// The media type, when given.
    pub typ: Option<String>,
}

/// A compact JWS whose header has been checked but whose signature has not.
#[derive(Debug, Clone)]
pub struct CompactJws<'a> {
    signing_input: &'a str,
    header: JoseHeader,
    payload: Map<String, Value>,
    signature: Vec<u8>,
}

impl<'a> CompactJws<'a> {
    /// Splits and decodes `token`, refusing what rule 1 of PROTOCOL.md refuses.
    pub fn parse(token: &'a str) -> Result<Self, GrantError> {
        if token.len() > MAX_ASSERTION_BYTES {
            return Err(GrantError::AssertionTooLarge {
                len: token.len(),
                max: MAX_ASSERTION_BYTES,
            });
        }
        let parts = token.split('.').count();
        let (signing_input, signature_b64) = match (parts, token.rsplit_once('.')) {
            (3, Some(split)) => split,
            (5, _) => return Err(GrantError::EncryptedAssertion),
            _ => return Err(GrantError::NotCompactJws(parts)),
        };
        let (header_b64, payload_b64) = signing_input
            .split_once('.')
            .ok_or(GrantError::NotCompactJws(parts))?;
        let header = decode_object(header_b64, "header")?;
        let header = check_header(&header)?;
        let payload = decode_object(payload_b64, "payload")?;
        let signature = b64::decode(signature_b64).ok_or(GrantError::BadBase64("signature"))?;
        Ok(CompactJws {
            signing_input,
            header,
            payload,
            signature,
        })
    }

    /// The checked header.
    pub fn header(&self) -> &JoseHeader {
        &self.header
    }

    /// The payload's members, not yet trusted.
    pub fn payload(&self) -> &Map<String, Value> {
        &self.payload
    }

    /// The bytes the signature covers: `header.payload` exactly as received.
    pub fn signing_input(&self) -> &[u8] {
        self.signing_input.as_bytes()
    }

    /// The decoded signature.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }

    /// Consumes the JWS, returning its payload.
    pub fn into_payload(self) -> Map<String, Value> {
        self.payload
    }
}

fn decode_object(segment: &str, what: &'static str) -> Result<Map<String, Value>, GrantError> {
    let bytes = b64::decode(segment).ok_or(GrantError::BadBase64(what))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(GrantError::NotJsonObject(what)),
    }
}

fn check_header(header: &Map<String, Value>) -> Result<JoseHeader, GrantError> {
    if header.contains_key("crit") {
        return Err(GrantError::CriticalHeader);
    }
    let alg = match header.get("alg") {
        None => return Err(GrantError::AlgorithmMissing),
        Some(Value::String(alg)) => alg,
        Some(_) => {
            return Err(GrantError::WrongType {
                name: "alg",
                expected: "a string",
            });
        }
    };
    let alg = match JwsAlgorithm::from_name(alg) {
        Some(alg) => alg,
        None if alg.eq_ignore_ascii_case("none") => return Err(GrantError::AlgorithmNone),
        None if alg.to_ascii_uppercase().starts_with("HS") => {
            return Err(GrantError::AlgorithmHmac(truncate(alg)));
        }
        None => return Err(GrantError::AlgorithmUnknown(truncate(alg))),
    };
    Ok(JoseHeader {
        alg,
        kid: optional_string(header, "kid")?,
        typ: optional_string(header, "typ")?,
    })
}

fn optional_string(
    map: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, GrantError> {
    match map.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.clone())),
        Some(_) => Err(GrantError::WrongType {
            name,
            expected: "a string",
        }),
    }
}

/// Shortens attacker-chosen text before it goes into an error description.
pub(crate) fn truncate(text: &str) -> String {
    text.chars().take(64).collect()
}

/// Signs `claims` as a compact JWS with `alg`, `typ` (when given) and `kid` (when given).
pub fn sign_compact(
    key: &SigningKey,
    alg: JwsAlgorithm,
    typ: Option<&str>,
    kid: Option<&str>,
    claims: &impl Serialize,
) -> Result<String, KeyError> {
    let payload = serde_json::to_vec(claims).map_err(|_| KeyError::Crypto)?;
    sign_compact_json(key, alg, typ, kid, &payload)
}

/// [`sign_compact`] over a payload already written as JSON (an access token's
/// claims, written without serde on the token endpoint's path).
pub fn sign_compact_json(
    key: &SigningKey,
    alg: JwsAlgorithm,
    typ: Option<&str>,
    kid: Option<&str>,
    payload: &[u8],
) -> Result<String, KeyError> {
    let header = header_json(alg, typ, kid);
    let mut token = b64::encode(header);
    token.push('.');
    token.push_str(&b64::encode(payload));
    let signature = key.sign(alg, token.as_bytes())?;
    token.push('.');
    token.push_str(&b64::encode(signature));
    Ok(token)
}

/// The protected header `{"alg":..,"typ":..,"kid":..}`, absent members left out.
fn header_json(alg: JwsAlgorithm, typ: Option<&str>, kid: Option<&str>) -> Vec<u8> {
    use jwtgrant_proto::json::{push_present_members, push_str};
    let mut out = Vec::with_capacity(96);
    out.extend_from_slice(b"{\"alg\":");
    push_str(&mut out, alg.as_str());
    push_present_members(&mut out, [("typ", typ), ("kid", kid)]);
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(json: &str) -> String {
        b64::encode(json)
    }

    fn token(header: &str, payload: &str) -> String {
        format!("{}.{}.c2ln", segment(header), segment(payload))
    }

    #[test]
    fn header_json_is_what_serde_json_writes() {
        for (typ, kid) in [
            (None, None),
            (Some("at+jwt"), None),
            (None, Some("k-1")),
            (Some("JWT"), Some("a\"b\\c\u{7}")),
        ] {
            let expected =
                serde_json::to_vec(&serde_json::json!({"alg": "ES256"})).unwrap_or_default();
            let mut expected = String::from_utf8(expected).unwrap_or_default();
            expected.pop();
            for (name, value) in [("typ", typ), ("kid", kid)] {
                if let Some(value) = value {
                    let value = serde_json::to_string(value).unwrap_or_default();
                    expected.push_str(&format!(",\"{name}\":{value}"));
                }
            }
            expected.push('}');
            let written = header_json(JwsAlgorithm::Es256, typ, kid);
            assert_eq!(String::from_utf8_lossy(&written), expected);
        }
    }

    #[test]
    fn parses_and_keeps_signing_input_as_received() {
        let padded = format!("{}==.{}.c2ln", segment(r#"{"alg":"RS256"}"#), segment("{}"));
        let jws = CompactJws::parse(&padded).unwrap_or_else(|e| unreachable!("{e}"));
        assert!(jws.signing_input().ends_with(b"==.e30"));
        assert_eq!(jws.header().alg, JwsAlgorithm::Rs256);
        assert_eq!(jws.signature(), b"sig");
    }

    #[test]
    fn refuses_structural_faults() {
        let cases: Vec<(String, GrantError)> = vec![
            ("a.b".into(), GrantError::NotCompactJws(2)),
            ("a.b.c.d.e".into(), GrantError::EncryptedAssertion),
            ("a.b.c.d".into(), GrantError::NotCompactJws(4)),
            ("!!.e30.c2ln".into(), GrantError::BadBase64("header")),
            (
                format!("{}.e30.c2ln", segment("[1]")),
                GrantError::NotJsonObject("header"),
            ),
            (
                format!("{}.{}.c2ln", segment(r#"{"alg":"RS256"}"#), segment("3")),
                GrantError::NotJsonObject("payload"),
            ),
            (
                format!("{}.e30.!!", segment(r#"{"alg":"RS256"}"#)),
                GrantError::BadBase64("signature"),
            ),
            (
                "a".repeat(MAX_ASSERTION_BYTES + 1),
                GrantError::AssertionTooLarge {
                    len: MAX_ASSERTION_BYTES + 1,
                    max: MAX_ASSERTION_BYTES,
                },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(CompactJws::parse(&input).err(), Some(expected));
        }
    }

    #[test]
    fn refuses_dangerous_headers() {
        let cases = [
            (r#"{}"#, GrantError::AlgorithmMissing),
            (r#"{"alg":"none"}"#, GrantError::AlgorithmNone),
            (
                r#"{"alg":"HS256"}"#,
                GrantError::AlgorithmHmac("HS256".into()),
            ),
            (
                r#"{"alg":"XX999"}"#,
                GrantError::AlgorithmUnknown("XX999".into()),
            ),
            (
                r#"{"alg":"RS256","crit":["exp"]}"#,
                GrantError::CriticalHeader,
            ),
            (
                r#"{"alg":7}"#,
                GrantError::WrongType {
                    name: "alg",
                    expected: "a string",
                },
            ),
            (
                r#"{"alg":"RS256","kid":1}"#,
                GrantError::WrongType {
                    name: "kid",
                    expected: "a string",
                },
            ),
        ];
        for (header, expected) in cases {
            assert_eq!(
                CompactJws::parse(&token(header, "{}")).err(),
                Some(expected),
                "{header}"
            );
        }
    }
}
