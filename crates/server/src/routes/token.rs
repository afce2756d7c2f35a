//! `POST /oauth/token`: reads the form strictly (content type, UTF-8, no repeated
//! parameters) and dispatches on `grant_type` to the grant's own file.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use std::net::{IpAddr, SocketAddr};

use axum::extract::ConnectInfo;
use axum::extract::rejection::{BytesRejection, ExtensionRejection};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use jwtgrant_core::grants::GrantType;
use jwtgrant_proto::JwtGrantResponse;

use crate::error::{RequestError, TokenEndpointError};
use crate::grants;
use crate::state::AppState;

/// A token request's form parameters, each present at most once.
#[derive(Debug, Default)]
pub struct TokenForm {
    params: Vec<(String, String)>,
}

impl TokenForm {
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
        Ok(TokenForm { params })
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

/// The token endpoint.
pub async fn token(
    State(state): State<Arc<AppState>>,
    client: Result<ConnectInfo<SocketAddr>, ExtensionRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let client = client.ok().map(|ConnectInfo(addr)| addr.ip());
    let result = handle(&state, client, &headers, body).await;
    state.metrics.observe_latency(started.elapsed());
    match result {
        Ok((grant, issued)) => {
            state.metrics.grant_issued(grant);
            let mut response = axum::Json(issued).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            response
        }
        Err(error) => {
            state.metrics.grant_refused(error.code());
            error.into_response()
        }
    }
}

async fn handle(
    state: &AppState,
    client: Option<IpAddr>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(GrantType, JwtGrantResponse), TokenEndpointError> {
    if let Some(ip) = client {
        state
            .rate_limit(&format!("client:{ip}"), state.config.rate_limit_per_client)
            .await?;
    }
    let body = body.map_err(|rejection| match rejection {
        BytesRejection::FailedToBufferBody(inner)
            if inner.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
        {
            RequestError::TooLarge(state.config.body_limit_bytes)
        }
        _ => RequestError::Body,
    })?;
    let form = TokenForm::parse(headers, &body)?;
    let grant_type = form.require("grant_type")?;
    let grant = GrantType::from_form(grant_type).ok_or_else(|| {
        TokenEndpointError::UnsupportedGrantType(grant_type.chars().take(64).collect())
    })?;
    let issued = match grant {
        GrantType::JwtBearer => grants::jwt_bearer::grant(state, &form).await,
        GrantType::AuthorizationCode => {
            grants::authorization_code::grant(state, headers, &form).await
        }
        GrantType::RefreshToken => grants::refresh_token::grant(state, headers, &form).await,
    }?;
    Ok((grant, issued))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(content_type: &str, body: &[u8]) -> Result<TokenForm, RequestError> {
        let mut headers = HeaderMap::new();
        if let Ok(value) = HeaderValue::from_str(content_type) {
            headers.insert(header::CONTENT_TYPE, value);
        }
        TokenForm::parse(&headers, body)
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
