//! RFC 6750 on the wire: reading `Authorization: Bearer <token>` and writing the
//! `WWW-Authenticate: Bearer ...` challenge (and RFC 9728's `resource_metadata` in
//! it). Shared by the server's userinfo endpoint and the SDK's resource-server
//! layer so both read and answer alike.

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
    BearerChallenge {
        error,
        error_description,
        scope,
        resource_metadata: None,
    }
    .to_string()
}

/// The parameters of a `WWW-Authenticate: Bearer` challenge, written (by
/// `Display`) in this order, each quoted and made header-safe as
/// [`bearer_challenge`] says; with none it is [`BARE_BEARER_CHALLENGE`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BearerChallenge<'a> {
    /// The RFC 6750 error code (`invalid_token`, `insufficient_scope`), absent
    /// when no token was sent.
    pub error: Option<&'a str>,
    /// Why, for a developer.
    pub error_description: Option<&'a str>,
    /// The scopes the resource needs, space separated.
    pub scope: Option<&'a str>,
    /// The URL of the resource's protected resource metadata (RFC 9728 section
    /// 5.1), so a client can find which authorization server to ask.
    pub resource_metadata: Option<&'a str>,
}

impl std::fmt::Display for BearerChallenge<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(BARE_BEARER_CHALLENGE)?;
        let params = [
            ("error", self.error),
            ("error_description", self.error_description),
            ("scope", self.scope),
            ("resource_metadata", self.resource_metadata),
        ];
        let mut separator = " ";
        for (name, value) in params {
            let Some(value) = value else { continue };
            write!(f, "{separator}{name}=\"")?;
            for c in value.chars() {
                write!(f, "{}", quoted_char(c))?;
            }
            f.write_str("\"")?;
            separator = ", ";
        }
        Ok(())
    }
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

    #[test]
    fn challenges_name_the_resource_metadata_last() {
        let metadata = "https://api.example.com/.well-known/oauth-protected-resource/mcp";
        let bare = BearerChallenge {
            resource_metadata: Some(metadata),
            ..BearerChallenge::default()
        };
        assert_eq!(
            bare.to_string(),
            format!("Bearer resource_metadata=\"{metadata}\"")
        );
        let scoped = BearerChallenge {
            error: Some("insufficient_scope"),
            scope: Some("mcp:tools"),
            ..bare
        };
        assert_eq!(
            scoped.to_string(),
            format!(
                "Bearer error=\"insufficient_scope\", scope=\"mcp:tools\", resource_metadata=\"{metadata}\""
            )
        );
        assert_eq!(
            BearerChallenge::default().to_string(),
            BARE_BEARER_CHALLENGE
        );
    }
}
