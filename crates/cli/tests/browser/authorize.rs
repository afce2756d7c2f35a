//! The authorization code grant through the pages: sign in, the consent page, Allow
//! (the code comes back with the state and trades for tokens), Deny, and the same
//! pages at phone width.

use serde_json::{Value, json};

use crate::support::{Harness, INTEGRATION_NAME, PASSWORD, SCOPES, USER_EMAIL, param};
use crate::webdriver::Viewport;

/// What the consent page shows: the integration's name, one `li.scope` (in words
/// for people) per requested scope, the request's scope carried in a hidden field,
/// and the two decision buttons.
async fn check_consent_page(h: &Harness) -> Vec<String> {
    let b = &h.browser;
    let name = b.wait_for("#integration-name").await;
    assert_eq!(b.text(&name).await.trim(), INTEGRATION_NAME);
    let items = b.find_all("li.scope").await;
    assert_eq!(
        items.len(),
        SCOPES.len(),
        "one li.scope per requested scope; page:\n{}",
        b.page_text().await
    );
    let mut shown = Vec::new();
    for item in &items {
        let text = b.text(item).await;
        assert!(!text.trim().is_empty(), "an empty li.scope");
        shown.push(text.replace('\n', " / "));
    }
    let scope = b
        .wait_for("form#consent input[type=hidden][name=scope]")
        .await;
    let carried = b.attribute(&scope, "value").await.unwrap_or_default();
    let mut carried: Vec<&str> = carried.split(' ').collect();
    carried.sort_unstable();
    let mut wanted = SCOPES.to_vec();
    wanted.sort_unstable();
    assert_eq!(carried, wanted, "the scope the form carries");
    b.wait_for("form#consent input[type=hidden][name=csrf]")
        .await;
    for id in ["#allow", "#deny"] {
        b.wait_for(&format!("form#consent {id}[name=decision]"))
            .await;
    }
    shown
}

#[tokio::test]
async fn allow_returns_a_code_that_trades_for_tokens() {
    let Some(h) = Harness::start("allow", Viewport::Desktop).await else {
        return;
    };
    let b = &h.browser;
    let state = "s1-Zq8xT0";

    b.goto(&h.authorize_url(state)).await;
    b.wait_for("form#login[method=post][action='/login']").await;
    let password = b.wait_for("#password").await;
    assert_eq!(
        b.attribute(&password, "type").await.as_deref(),
        Some("password")
    );
    for hidden in ["csrf", "return_to"] {
        b.wait_for(&format!("form#login input[type=hidden][name={hidden}]"))
            .await;
    }
    let cookie = b
        .cookie("jwtgrant_session")
        .await
        .expect("the login page sets jwtgrant_session");
    assert_eq!(cookie["httpOnly"], json!(true), "{cookie}");
    assert_eq!(cookie["sameSite"], json!("Lax"), "{cookie}");
    assert_eq!(cookie["path"], json!("/"), "{cookie}");
    b.screenshot("login").await;
    println!("allow: login page ok (form, hidden csrf/return_to, cookie HttpOnly SameSite=Lax)");

    h.sign_in(PASSWORD).await;
    b.wait_for("form#consent[method=post][action='/oauth/auth/decision']")
        .await;
    let shown = check_consent_page(&h).await;
    b.screenshot("consent").await;
    println!("allow: consent page shows {INTEGRATION_NAME:?} and the scopes as {shown:?}");

    let allow = b.wait_for("#allow").await;
    b.click_and_wait(&allow).await;
    let params = h.listener.callback(0).await;
    assert_eq!(param(&params, "state"), Some(state), "{params:?}");
    assert_eq!(param(&params, "error"), None, "{params:?}");
    let code = param(&params, "code")
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| panic!("no code in the redirect: {params:?}"))
        .to_owned();
    assert!(
        b.current_url()
            .await
            .starts_with(&format!("{}?", h.listener.redirect_uri)),
        "the browser ended on {}",
        b.current_url().await
    );
    println!("allow: redirect carries a code and state {state:?}");

    let redirect_uri = h.listener.redirect_uri.clone();
    let exchange = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
    ];
    let (status, body) = h.token_request(&exchange, true).await;
    assert_eq!(status, 200, "code exchange: {body}");
    let access_token = body["access_token"].as_str().expect("access_token");
    assert!(
        body["refresh_token"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{body}"
    );
    assert!(
        body["token_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer")),
        "{body}"
    );
    assert_eq!(body["expires_in"], json!(3600), "{body}");
    let scope = body["scope"].as_str().unwrap_or_default();
    for wanted in SCOPES {
        assert!(scope.split(' ').any(|s| s == wanted), "scope: {body}");
    }
    println!("allow: code traded for access and refresh tokens (scope {scope:?})");

    let userinfo = h
        .http
        .get(format!("{}/oauth/userinfo", h.server.url))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("userinfo");
    assert_eq!(userinfo.status().as_u16(), 200);
    let me: Value = userinfo.json().await.expect("userinfo JSON");
    assert_eq!(me["sub"], json!(h.fixture.user_id), "{me}");
    assert_eq!(me["email"], json!(USER_EMAIL), "{me}");
    println!("allow: the access token is the user's at /oauth/userinfo");

    let (status, body) = h.token_request(&exchange, true).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "a code trades once: {body}"
    );
    println!("allow: the same code again gets invalid_grant");

    // Consent given: the next authorization redirects at once, no page to click.
    b.goto(&h.authorize_url("s1-again")).await;
    let params = h.listener.callback(1).await;
    assert_eq!(param(&params, "state"), Some("s1-again"), "{params:?}");
    assert!(
        param(&params, "code").is_some_and(|c| !c.is_empty() && c != code),
        "{params:?}"
    );
    println!("allow: with consent given, /oauth/auth redirects straight back with a new code");
}

#[tokio::test]
async fn deny_returns_access_denied_and_the_state() {
    let Some(h) = Harness::start("deny", Viewport::Desktop).await else {
        return;
    };
    // A state with characters that need escaping must come back unchanged.
    let state = "s2 a/b+c=d&e?f";
    h.reach_consent(state).await;
    check_consent_page(&h).await;
    let deny = h.browser.wait_for("#deny").await;
    h.browser.click_and_wait(&deny).await;
    let params = h.listener.callback(0).await;
    assert_eq!(param(&params, "error"), Some("access_denied"), "{params:?}");
    assert_eq!(param(&params, "state"), Some(state), "{params:?}");
    assert_eq!(param(&params, "code"), None, "{params:?}");
    println!("deny: redirect carries error=access_denied and the state, no code");

    let listed = crate::support::admin(
        &h.data_dir(),
        &["consent", "list", "--user", &h.fixture.user_id],
    );
    assert_eq!(listed["consents"], json!([]), "Deny records no consent");
    println!("deny: no consent recorded");
}

#[tokio::test]
async fn pages_fit_a_phone() {
    let Some(h) = Harness::start("phone", Viewport::Phone).await else {
        return;
    };
    let b = &h.browser;
    b.goto(&h.authorize_url("s7-phone")).await;
    b.wait_for("form#login").await;
    report_width(&h, "login").await;
    b.screenshot("login-phone").await;
    h.sign_in(PASSWORD).await;
    b.wait_for("form#consent").await;
    check_consent_page(&h).await;
    report_width(&h, "consent").await;
    b.screenshot("consent-phone").await;
    let allow = b.wait_for("#allow").await;
    b.click_and_wait(&allow).await;
    let params = h.listener.callback(0).await;
    assert_eq!(param(&params, "state"), Some("s7-phone"), "{params:?}");
    assert!(param(&params, "code").is_some(), "{params:?}");
    println!("phone: sign-in and Allow work at 390x844");
}

/// Prints the layout width at phone size and fails when the page scrolls
/// sideways; a page without `<meta name="viewport">` lays out 980 px wide and is
/// shrunk to fit, which the note makes visible.
async fn report_width(h: &Harness, page: &str) {
    let widths = h
        .browser
        .execute(
            "return [window.innerWidth, document.documentElement.scrollWidth];",
            json!([]),
        )
        .await
        .expect("measure");
    let inner = widths[0].as_i64().unwrap_or_default();
    let scroll = widths[1].as_i64().unwrap_or_default();
    println!("phone: {page} page: layout width {inner} CSS px, content width {scroll}");
    if inner != 390 {
        println!(
            "note: phone: the {page} page has no working <meta name=\"viewport\"> \
             (layout {inner} px wide on a 390 px screen)"
        );
    }
    assert!(
        scroll <= inner,
        "the {page} page scrolls sideways on a phone: content {scroll} px in {inner} px"
    );
}
