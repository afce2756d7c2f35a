//! The token response's JSON body (RFC 6749 section 5.1), written directly: the
//! same bytes serde_json writes for [`JwtGrantResponse`], with one check of each
//! string ([`jwtgrant_proto::json`]) instead of serde_json's byte by byte over a
//! token that never needs an escape, and one allocation of the right size.

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use jwtgrant_proto::JwtGrantResponse;
use jwtgrant_proto::json::{push_member, push_present_members, push_str};

/// The answer for an issued token: `200`, `application/json`, the body below.
pub fn response(issued: &JwtGrantResponse) -> Response {
    let mut response = Response::new(Body::from(body(issued)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The JSON object, members in the struct's order, absent options left out.
pub fn body(issued: &JwtGrantResponse) -> Vec<u8> {
    let optional = [
        ("scope", &issued.scope),
        ("refresh_token", &issued.refresh_token),
        ("id_token", &issued.id_token),
    ];
    let len = 64
        + issued.access_token.len()
        + issued.token_type.len()
        + optional
            .iter()
            .map(|(name, value)| value.as_ref().map_or(0, |v| name.len() + v.len() + 6))
            .sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(b"{\"access_token\":");
    push_str(&mut out, &issued.access_token);
    push_member(&mut out, "token_type", &issued.token_type);
    out.extend_from_slice(b",\"expires_in\":");
    out.extend_from_slice(itoa::Buffer::new().format(issued.expires_in).as_bytes());
    push_present_members(
        &mut out,
        optional.map(|(name, value)| (name, value.as_deref())),
    );
    out.push(b'}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response_with(
        access_token: &str,
        scope: Option<&str>,
        refresh_token: Option<&str>,
        id_token: Option<&str>,
    ) -> JwtGrantResponse {
        JwtGrantResponse {
            access_token: access_token.to_owned(),
            token_type: "Bearer".to_owned(),
            expires_in: 3600,
            scope: scope.map(str::to_owned),
            refresh_token: refresh_token.map(str::to_owned),
            id_token: id_token.map(str::to_owned),
        }
    }

    #[test]
    fn writes_what_serde_json_writes() {
        let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJlLV8";
        let cases = [
            response_with(jwt, None, None, None),
            response_with(jwt, Some("signature impersonation"), None, None),
            response_with(jwt, Some("openid"), Some("rt-1"), Some(jwt)),
            response_with(jwt, None, Some("rt"), None),
            response_with("", Some(""), None, Some("")),
            // Strings that need escapes: quotes, backslash, controls, and UTF-8.
            response_with("a\"b\\c", Some("x\ny\tz\u{1}"), Some("é ü \u{7f}"), None),
            response_with("\u{1f}", None, None, Some("</script>")),
        ];
        for case in cases {
            let expected = serde_json::to_vec(&case).unwrap_or_default();
            assert_eq!(
                String::from_utf8_lossy(&body(&case)),
                String::from_utf8_lossy(&expected),
                "{case:?}"
            );
        }
        let mut large = response_with(jwt, None, None, None);
        large.expires_in = u64::MAX;
        assert_eq!(body(&large), serde_json::to_vec(&large).unwrap_or_default());
    }

    #[test]
    fn answers_json() {
        let answer = response(&response_with("t", None, None, None));
        assert_eq!(answer.status(), 200);
        assert_eq!(
            answer.headers().get(header::CONTENT_TYPE),
            Some(&HeaderValue::from_static("application/json"))
        );
    }
}
