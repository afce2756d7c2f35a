//! Arbitrary bytes as an assertion: `UnverifiedAssertion::parse`, then `verify`
//! against the fixed integration, policy and `now`.
//!
//! Checks:
//! - nothing panics (parse, verify, error formatting);
//! - a parsed assertion has a non-empty `iss`;
//! - verify NEVER succeeds: the fuzzer does not hold the integration's private keys
//!   (they are generated in-process and only `structured_claims` signs with them), so
//!   an `Ok` here would mean a forged signature was accepted.
#![no_main]

use jwtgrant_core::{GrantError, UnverifiedAssertion};
use jwtgrant_fuzz::{NOW, fixtures};
use libfuzzer_sys::fuzz_target;

fn exercise_error(error: &GrantError) {
    // Formatting and the OAuth code mapping must not panic on attacker text.
    let description = error.to_string();
    let _ = error.code();
    let _ = error.consent_url();
    // Attacker-controlled fragments are truncated to 64 characters; the longest
    // fixed description is well under 200 characters.
    assert!(
        description.chars().count() < 400,
        "error description not bounded: {} chars",
        description.chars().count()
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let fx = fixtures();
    let unverified = match UnverifiedAssertion::parse(text) {
        Ok(unverified) => unverified,
        Err(error) => {
            exercise_error(&error);
            return;
        }
    };
    assert!(!unverified.issuer().is_empty(), "parsed with an empty iss");
    let _ = unverified.kid();

    for integration in [fx.default_integration(), fx.integration(true, false, true)] {
        match unverified.clone().verify(integration, &fx.policy, NOW) {
            Ok(verified) => {
                panic!("an assertion the fuzzer could not have signed was verified: {verified:?}")
            }
            Err(error) => exercise_error(&error),
        }
    }
});
