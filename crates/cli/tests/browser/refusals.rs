//! What the pages refuse: a wrong password (the form again with an error, no
//! redirect), an authorization request the server must not redirect for (an
//! unregistered redirect URI, an unknown client), and the implicit grant.

use crate::support::{Harness, PASSWORD, param};
use crate::webdriver::Viewport;

#[tokio::test]
async fn wrong_password_shows_an_error_and_no_redirect() {
    let Some(h) = Harness::start("wrong-password", Viewport::Desktop).await else {
        return;
    };
    let b = &h.browser;
    b.goto(&h.authorize_url("s3-wrong")).await;
    h.sign_in("not the password").await;
    let error = b.wait_for("#error").await;
    let message = b.text(&error).await;
    let lower = message.to_lowercase();
    assert!(
        lower.contains("password") || lower.contains("email"),
        "the error should say the email or password is wrong: {message:?}"
    );
    b.wait_for("form#login #password").await;
    assert!(b.find("form#consent").await.is_none());
    assert!(
        b.current_url().await.starts_with(&h.server.url),
        "left the server: {}",
        b.current_url().await
    );
    b.screenshot("login-wrong-password").await;
    assert_eq!(h.listener.requests(), Vec::<String>::new());
    println!("wrong-password: #error reads {message:?}; the form is shown again; no redirect");

    // The form shown again still carries the authorization request.
    h.sign_in(PASSWORD).await;
    b.wait_for("form#consent").await;
    assert_eq!(h.listener.requests(), Vec::<String>::new());
    println!("wrong-password: the right password on the form shown again leads to consent");
}

#[tokio::test]
async fn bad_authorization_requests_get_an_error_page() {
    let Some(h) = Harness::start("bad-request", Viewport::Desktop).await else {
        return;
    };
    let b = &h.browser;
    // Same listener, unregistered path: a redirect there would be recorded.
    let unregistered = format!("{}/elsewhere", h.listener.origin);
    let url = h.authorize_url_to(&h.fixture.integration_key, &unregistered, "s4-bad");
    b.goto(&url).await;
    if b.find("#error").await.is_none() && b.find("form#login").await.is_some() {
        println!(
            "note: bad-request: the server shows the login page before it checks redirect_uri"
        );
        h.sign_in(PASSWORD).await;
    }
    let error = b.wait_for("#error").await;
    let message = b.text(&error).await;
    assert!(!message.trim().is_empty(), "#error is empty");
    assert!(b.find("form#consent").await.is_none());
    assert!(
        b.current_url().await.starts_with(&h.server.url),
        "left the server: {}",
        b.current_url().await
    );
    b.screenshot("error").await;
    assert_eq!(h.listener.requests(), Vec::<String>::new());
    let response = h.http.get(&url).send().await.expect("GET /oauth/auth");
    assert_eq!(response.status().as_u16(), 400);
    assert!(response.headers().get("location").is_none());
    println!("bad-request: unregistered redirect_uri: 400, #error reads {message:?}; no redirect");

    let url = h.authorize_url_to(
        "no-such-integration",
        &h.listener.redirect_uri,
        "s4-unknown",
    );
    b.goto(&url).await;
    if b.find("#error").await.is_none() && b.find("form#login").await.is_some() {
        println!("note: bad-request: the server shows the login page for an unknown client_id");
        h.sign_in(PASSWORD).await;
    }
    let error = b.wait_for("#error").await;
    let message = b.text(&error).await;
    assert!(b.find("form#consent").await.is_none());
    assert_eq!(h.listener.requests(), Vec::<String>::new());
    println!("bad-request: unknown client_id: #error reads {message:?}; no redirect");

    // A valid client and redirect URI asking for the implicit grant: refused, and
    // told so at its redirect URI.
    let mut url = reqwest::Url::parse(&h.authorize_url("s4-token")).expect("URL");
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "response_type" {
                "token".to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    b.goto(url.as_str()).await;
    let params = h.listener.callback(0).await;
    assert_eq!(
        param(&params, "error"),
        Some("unsupported_response_type"),
        "{params:?}"
    );
    assert_eq!(param(&params, "state"), Some("s4-token"), "{params:?}");
    assert_eq!(param(&params, "access_token"), None, "{params:?}");
    println!("bad-request: response_type=token: redirect with error=unsupported_response_type");
}
