//! The strict form of the token, introspection and revocation endpoints: the
//! content type checked, UTF-8 also after percent-decoding, each parameter at most
//! once (but `resource`, RFC 8707); and the client credentials such a request
//! carries.

use axum::http::{HeaderMap, header};
use jwtgrant_core::client_auth::{ClientAuthError, ClientCredentials, read_client_credentials};

use crate::error::RequestError;

/// The parameters a request may repeat: RFC 8707's `resource` and RFC 8693's
/// `audience`.
const REPEATABLE: [&str; 2] = ["resource", "audience"];

/// A request's form parameters, each present at most once but those [`REPEATABLE`].
#[derive(Debug, Default)]
pub struct Form {
    params: Vec<(String, String)>,
}

impl Form {
    /// Parses a form body after checking its content type.
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, RequestError> {
        let _span = tracing::trace_span!(target: crate::telemetry::TARGET, "parse_form").entered();
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let media_type = content_type.split(';').next().unwrap_or_default().trim();
        if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(RequestError::WrongContentType);
        }
        let body = std::str::from_utf8(body).map_err(|_| RequestError::NotUtf8)?;
        let mut params: Vec<(String, String)> = Vec::new();
        for pair in body.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode_component(name)?;
            let value = decode_component(value)?;
            if !REPEATABLE.contains(&name.as_str())
                && params.iter().any(|(known, _)| *known == name)
            {
                return Err(RequestError::Repeated(name.chars().take(64).collect()));
            }
            params.push((name, value));
        }
        Ok(Form { params })
    }

    /// A parameter's value; empty values count as absent (RFC 6749 section 3.1).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(known, value)| known == name && !value.is_empty())
            .map(|(_, value)| value.as_str())
    }

    /// Every value of a repeatable parameter, in order; empty values are absent.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.params
            .iter()
            .filter(|(known, value)| known == name && !value.is_empty())
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// A parameter that must be present.
    pub fn require(&self, name: &'static str) -> Result<&str, RequestError> {
        self.get(name).ok_or(RequestError::Missing(name))
    }

    /// The client credentials of the request: HTTP Basic, `client_secret` in the
    /// form, or a public client's `client_id`.
    pub fn client_credentials(
        &self,
        headers: &HeaderMap,
    ) -> Result<ClientCredentials, ClientAuthError> {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap_or("\u{0}"));
        let credentials = read_client_credentials(
            authorization,
            self.get("client_id"),
            self.get("client_secret"),
            self.get("client_assertion_type"),
            self.get("client_assertion"),
        )?;
        // The client the request names, for its audit event until one authenticates.
        if let Some(client_id) = credentials.client_id() {
            crate::audit::note(|facts| facts.client_id = Some(crate::audit::bounded(client_id)));
        }
        Ok(credentials)
    }
}

/// Decodes one `application/x-www-form-urlencoded` name or value strictly: `+` is a
/// space, and the percent-decoded bytes must be UTF-8 (a lossy decode would turn
/// `%FF` into U+FFFD and hide a malformed request behind a later rule).
fn decode_component(raw: &str) -> Result<String, RequestError> {
    // Most values (assertions, tokens, ids) hold neither: one scan and one copy.
    if memchr::memchr2(b'%', b'+', raw.as_bytes()).is_none() {
        return Ok(raw.to_owned());
    }
    let mut bytes = Vec::with_capacity(raw.len());
    let mut rest = raw.as_bytes();
    while let Some((&first, tail)) = rest.split_first() {
        rest = tail;
        match first {
            b'+' => bytes.push(b' '),
            b'%' => match percent_escape(rest) {
                Some(decoded) => {
                    bytes.push(decoded);
                    rest = rest.get(2..).unwrap_or_default();
                }
                // Not an escape: the `%` stands for itself, as browsers read it.
                None => bytes.push(b'%'),
            },
            other => bytes.push(other),
        }
    }
    String::from_utf8(bytes).map_err(|_| RequestError::NotUtf8)
}

/// The byte of a `%XX` escape whose two hex digits start `rest`.
fn percent_escape(rest: &[u8]) -> Option<u8> {
    let hex = |b: u8| char::from(b).to_digit(16);
    match rest {
        [high, low, ..] => Some((hex(*high)? * 16 + hex(*low)?) as u8),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn form(content_type: &str, body: &[u8]) -> Result<Form, RequestError> {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(content_type) {
            headers.insert(header::CONTENT_TYPE, value);
        }
        Form::parse(&headers, body)
    }

    #[test]
    fn content_type_may_carry_a_charset() {
        let parsed = form(
            "application/x-www-form-urlencoded;charset=UTF-8",
            b"a=1&b=x%20y&c=x+y%2B",
        );
        let parsed = parsed.ok();
        let get = |name| parsed.as_ref().and_then(|f| f.get(name).map(str::to_owned));
        assert_eq!(get("b").as_deref(), Some("x y"));
        assert_eq!(get("c").as_deref(), Some("x y+"));
    }

    #[test]
    fn decodes_escapes_pluses_and_stray_percents() {
        for (raw, decoded) in [
            (
                "eyJhbGciOiJSUzI1NiJ9.e30.c2ln-_",
                "eyJhbGciOiJSUzI1NiJ9.e30.c2ln-_",
            ),
            ("a+b%2Bc", "a b+c"),
            ("%41%62%e2%82%AC", "Ab\u{20ac}"),
            ("100%", "100%"),
            ("%4", "%4"),
            ("%zz%4g", "%zz%4g"),
            ("%%41", "%A"),
            ("", ""),
        ] {
            assert_eq!(
                decode_component(raw).ok().as_deref(),
                Some(decoded),
                "{raw}"
            );
        }
        assert_eq!(decode_component("%C3%28"), Err(RequestError::NotUtf8));
    }

    #[test]
    fn refuses_wrong_type_non_utf8_and_repeats() {
        assert_eq!(
            form("application/json", b"{}").err(),
            Some(RequestError::WrongContentType)
        );
        assert_eq!(
            form("application/x-www-form-urlencoded", b"a=\xff").err(),
            Some(RequestError::NotUtf8)
        );
        assert_eq!(
            form("application/x-www-form-urlencoded", b"a=%FF%FE").err(),
            Some(RequestError::NotUtf8)
        );
        assert_eq!(
            form("application/x-www-form-urlencoded", b"%C3=1").err(),
            Some(RequestError::NotUtf8)
        );
        assert_eq!(
            form("application/x-www-form-urlencoded", b"a=1&a=2").err(),
            Some(RequestError::Repeated("a".into()))
        );
        let resources = form(
            "application/x-www-form-urlencoded",
            b"resource=https%3A%2F%2Fa.example&resource=&resource=urn:b",
        );
        assert_eq!(
            resources.ok().map(|f| f.get_all("resource").join(" ")),
            Some("https://a.example urn:b".to_owned())
        );
        let empty = form("application/x-www-form-urlencoded", b"a=");
        assert_eq!(
            empty.ok().map(|f| f.require("a").err()),
            Some(Some(RequestError::Missing("a")))
        );
    }
}
