//! Browser tests: the login, consent and account pages in real headless Chromium,
//! driven over W3C WebDriver from a `chromedriver` of the test's own, against the
//! real `jwtgrant serve` on a loopback port. Skipped (with a line saying so) when
//! there is no `chromedriver`, unless `JWTGRANT_TEST_BROWSER=1`; screenshots of each
//! page go to `$JWTGRANT_SCREENSHOTS_DIR` when it is set. One test at a time.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

mod authorize;
mod consents;
mod refusals;
mod support;
mod webdriver;
