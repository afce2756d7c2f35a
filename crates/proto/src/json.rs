//! JSON strings on the hot paths (token responses, audit batches), written with one
//! check over the whole string instead of serde_json's escape table consulted byte
//! by byte: tokens and identifiers never need an escape. A string that does is
//! written by serde_json, so the bytes are the same either way.

/// Whether no byte of `bytes` needs an escape in a JSON string (RFC 8259 section 7:
/// the controls, `"` and `\`). Without an early exit, so that the compiler checks
/// many bytes at a time.
pub fn is_plain(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |plain, &b| {
        plain & (b >= 0x20) & (b != b'"') & (b != b'\\')
    })
}

/// Appends `value` as a JSON string, quotes included.
pub fn push_str(out: &mut Vec<u8>, value: &str) {
    if is_plain(value.as_bytes()) {
        out.push(b'"');
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    } else {
        // serde_json writes a `str` to a Vec without fail.
        let _ = serde_json::to_writer(&mut *out, value);
    }
}

/// Appends the member `,"name":value` of an object (after its first), `value` as a
/// JSON string; `name` is one of the writer's own, which needs no escape.
pub fn push_member(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\":");
    push_str(out, value);
}

/// Appends each member whose value is present, as [`push_member`] does.
pub fn push_present_members<'a>(
    out: &mut Vec<u8>,
    members: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) {
    for (name, value) in members {
        if let Some(value) = value {
            push_member(out, name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_is_exactly_the_bytes_without_escapes() {
        for b in 0..=255u8 {
            let needs_escape = b < 0x20 || b == b'"' || b == b'\\';
            assert_eq!(is_plain(&[b'a', b, b'z']), !needs_escape, "byte {b}");
        }
        assert!(is_plain(b""));
        let long: Vec<u8> = [b'a'; 100].iter().chain(b"\\").copied().collect();
        assert!(!is_plain(&long));
    }

    #[test]
    fn writes_what_serde_json_writes() {
        for text in [
            "",
            "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln",
            "a\"b\\c",
            "x\ny\tz\u{1}\u{1f}",
            "é ü \u{7f} </script>",
        ] {
            let mut out = Vec::new();
            push_str(&mut out, text);
            assert_eq!(
                out,
                serde_json::to_vec(text).unwrap_or_default(),
                "{text:?}"
            );
        }
        let mut out = b"{\"a\":1".to_vec();
        push_member(&mut out, "b", "x\"y");
        out.push(b'}');
        assert_eq!(out, br#"{"a":1,"b":"x\"y"}"#);
    }
}
