//! Consent given and taken back through the pages, seen by the JWT bearer grant:
//! Allow on the consent page lets the user's assertions through, and the revoke
//! button on /account/consents removes the consent.

use serde_json::json;

use crate::support::{Harness, INTEGRATION_NAME, PASSWORD, SCOPES, admin, param};
use crate::webdriver::Viewport;

#[tokio::test]
async fn consent_on_the_page_lets_the_jwt_grant_through() {
    let Some(h) = Harness::start("jwt-after-consent", Viewport::Desktop).await else {
        return;
    };
    let (status, body) = h.jwt_grant().await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("consent_required")),
        "before consent: {body}"
    );
    println!("jwt-after-consent: before consent the assertion gets 400 consent_required");

    h.reach_consent("s5-consent").await;
    let allow = h.browser.wait_for("#allow").await;
    h.browser.click_and_wait(&allow).await;
    let params = h.listener.callback(0).await;
    assert!(param(&params, "code").is_some(), "{params:?}");

    let ((status, body), attempts) = h.jwt_grant_until(200).await;
    assert_eq!(status, 200, "after Allow: {body}");
    assert!(body["access_token"].as_str().is_some(), "{body}");
    println!(
        "jwt-after-consent: after Allow the assertion gets 200 (attempt {attempts}, a fresh \
         assertion each)"
    );
}

#[tokio::test]
async fn account_page_lists_and_revokes_the_consent() {
    let Some(h) = Harness::start("account-consents", Viewport::Desktop).await else {
        return;
    };
    let mut grant = vec![
        "consent",
        "grant",
        "--user",
        &h.fixture.user_id,
        "--integration",
        &h.fixture.integration_key,
        "--scope",
    ];
    grant.extend(SCOPES);
    admin(&h.data_dir(), &grant);
    let (status, body) = h.jwt_grant_until(200).await.0;
    assert_eq!(status, 200, "with the consent granted: {body}");

    let b = &h.browser;
    let page = format!("{}/account/consents", h.server.url);
    b.goto(&page).await;
    b.wait_for("form#login").await;
    println!("account-consents: not signed in, /account/consents shows the login page");
    h.sign_in(PASSWORD).await;
    if b.find("form.revoke").await.is_none() {
        println!(
            "note: account-consents: signing in from /account/consents landed on {}, not back \
             on the page",
            b.current_url().await
        );
        b.goto(&page).await;
    }
    let selector = format!(
        "form.revoke[method=post][action='/account/consents/revoke']:has(input[name=integration_key][value='{}'])",
        h.fixture.integration_key
    );
    let form = b.wait_for(&selector).await;
    assert_eq!(b.find_all("form.revoke").await.len(), 1);
    let text = b.page_text().await;
    assert!(
        text.contains(INTEGRATION_NAME),
        "the consent should be listed by the integration's name:\n{text}"
    );
    assert_eq!(
        b.find_all_in(&form, "input[type=hidden][name=csrf]")
            .await
            .len(),
        1
    );
    b.screenshot("account-consents").await;
    println!("account-consents: lists {INTEGRATION_NAME:?} with a revoke form");

    let buttons = b.find_all_in(&form, ".revoke-button").await;
    let button = buttons.first().expect("a .revoke-button in the form");
    b.click_and_wait(button).await;
    assert!(
        b.find(&selector).await.is_none(),
        "still listed after revoke, on {}:\n{}",
        b.current_url().await,
        b.page_text().await
    );
    b.screenshot("account-consents-empty").await;
    let listed = admin(
        &h.data_dir(),
        &["consent", "list", "--user", &h.fixture.user_id],
    );
    assert_eq!(listed["consents"], json!([]), "revoke removes it: {listed}");
    let ((status, body), attempts) = h.jwt_grant_until(400).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("consent_required")),
        "after revoke: {body}"
    );
    println!(
        "account-consents: revoked: gone from the page and the store, the assertion gets \
         consent_required (attempt {attempts})"
    );
}
