//! The strict form of the token, introspection and revocation endpoints: the
//! content type checked, UTF-8 also after percent-decoding, each parameter at most
//! once; and the client credentials such a request carries.

use axum::http::{HeaderMap, header};
use jwtgrant_core::client_auth::{ClientAuthError, ClientCredentials, read_client_credentials};

use crate::error::RequestError;

/// A request's form parameters, each present at most once.
#[derive(Debug, Default)]
pub struct Form {
    params: Vec<(String, String)>,
}

impl Form {
    /// Parses a form body after checking its content type.
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, RequestError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let media_type = content_type.split(';').next().unwrap_or_default().trim();
        if !media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(RequestError::WrongContentType);
        }
        if std::str::from_utf8(body).is_err() {
            return Err(RequestError::NotUtf8);
        }
        let mut params: Vec<(String, String)> = Vec::new();
        for pair in body.split(|b| *b == b'&').filter(|pair| !pair.is_empty()) {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(at) => (pair.get(..at), pair.get(at + 1..)),
                None => (Some(pair), None),
            };
            let name = decode_component(name.unwrap_or_default())?;
            let value = decode_component(value.unwrap_or_default())?;
            if params.iter().any(|(known, _)| *known == name) {
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
        read_client_credentials(
            authorization,
            self.get("client_id"),
            self.get("client_secret"),
            self.get("client_assertion_type"),
            self.get("client_assertion"),
        )
    }
}

/// Decodes one `application/x-www-form-urlencoded` name or value strictly: `+` is a
/// space, and the percent-decoded bytes must be UTF-8 (a lossy decode would turn
/// `%FF` into U+FFFD and hide a malformed request behind a later rule).
fn decode_component(raw: &[u8]) -> Result<String, RequestError> {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|b| if *b == b'+' { b' ' } else { *b })
        .collect();
    let bytes: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
    String::from_utf8(bytes).map_err(|_| RequestError::NotUtf8)
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
        let empty = form("application/x-www-form-urlencoded", b"a=");
        assert_eq!(
            empty.ok().map(|f| f.require("a").err()),
            Some(Some(RequestError::Missing("a")))
        );
    }
}
