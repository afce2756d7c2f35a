//! The HTTP endpoints, one file per concern.

pub mod authorize;
pub mod discovery;
pub mod introspect;
pub mod ops;
pub mod token;
pub mod token_json;
pub mod userinfo;

use axum::http::{HeaderValue, header};
use axum::response::Response;

/// Marks an answer that carries tokens or token state as not to be cached
/// (RFC 6749 section 5.1).
fn no_store(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
