//! The few HTTP requests the tests make of a server they did not start in their
//! own process: a token request and a status.

use std::time::Duration;

use serde_json::{Value, json};

use crate::JWT_BEARER;

/// An HTTP client whose requests give up after 20 seconds.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("HTTP client")
}

/// Trades an assertion at `base`'s `/oauth/token`: the status and the JSON body
/// (`null` when it is not JSON); status 0, with the error as the body's
/// `error_description`, when the request itself failed.
pub async fn token_request(http: &reqwest::Client, base: &str, assertion: &str) -> (u16, Value) {
    match http
        .post(format!("{base}/oauth/token"))
        .form(&[("grant_type", JWT_BEARER), ("assertion", assertion)])
        .send()
        .await
    {
        Ok(response) => {
            let status = response.status().as_u16();
            (status, response.json().await.unwrap_or(Value::Null))
        }
        Err(error) => (
            0,
            json!({"error": "transport", "error_description": error.to_string()}),
        ),
    }
}

/// The status of a GET, 0 when the request failed.
pub async fn get_status(http: &reqwest::Client, url: &str) -> u16 {
    http.get(url)
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}
