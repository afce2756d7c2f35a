//! RFC 6750 on the wire: reading `Authorization: Bearer <token>` and writing the
//! `WWW-Authenticate: Bearer ...` challenge. Shared by the server's userinfo endpoint
//! and the SDK's resource-server layer so both read and answer alike.

/// The token of an `Authorization` header value `Bearer <token>` (scheme
/// case-insensitive, surrounding spaces trimmed); `None` for another scheme or an
/// empty token.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The challenge to a request that sent no token: `Bearer`, no error (RFC 6750
/// section 3.1). What [`bearer_challenge`] writes without an error.
pub const BARE_BEARER_CHALLENGE: &str = "Bearer";

/// A `WWW-Authenticate` challenge (RFC 6750 section 3): `Bearer` alone when there
/// is no error (no token was sent), else `Bearer error="..."` with the description
/// and scope when given. Quoted values are made safe for a header: `"` and `\`
/// become `'`, anything but printable ASCII and space becomes `?`, so the result
/// is always a valid header value.
pub fn bearer_challenge(
    error: Option<&str>,
    error_description: Option<&str>,
    scope: Option<&str>,
) -> String {
    let mut challenge = String::from(BARE_BEARER_CHALLENGE);
    let params = [
        ("error", error),
        ("error_description", error_description),
        ("scope", scope),
    ];
    let mut first = true;
    for (name, value) in params {
        let Some(value) = value else { continue };
        challenge.push_str(if first { " " } else { ", " });
        first = false;
        challenge.push_str(name);
        challenge.push_str("=\"");
        challenge.extend(value.chars().map(quoted_char));
        challenge.push('"');
    }
    challenge
}

/// One character as it may appear inside a quoted-string of the challenge.
fn quoted_char(c: char) -> char {
    match c {
        '"' | '\\' => '\'',
        c if c.is_ascii_graphic() || c == ' ' => c,
        _ => '?',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bearer_tokens_only() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("BEARER abc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearer"), None);
    }

    #[test]
    fn challenges_follow_rfc_6750_and_are_header_safe() {
        assert_eq!(bearer_challenge(None, None, None), "Bearer");
        assert_eq!(
            bearer_challenge(Some("insufficient_scope"), None, Some("a b")),
            "Bearer error=\"insufficient_scope\", scope=\"a b\""
        );
        assert_eq!(
            bearer_challenge(Some("invalid_token"), Some("bad \"kid\" \\ é\nnext"), None),
            "Bearer error=\"invalid_token\", error_description=\"bad 'kid' ' ??next\""
        );
    }
}
