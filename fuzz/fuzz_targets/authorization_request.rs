//! Arbitrary input to the authorization endpoint's checks and to client
//! authentication: the bytes are read as a query string (`&`-separated `name=value`,
//! percent-decoded), checked by `AuthorizationRequest::from_pairs` and
//! `validate_request` against a confidential and a public integration; the same
//! bytes are read as an `Authorization` header and form credentials.
//!
//! Checks:
//! - nothing panics;
//! - the security invariant of RFC 6749 section 4.1.2.1: whatever the request, a
//!   redirect (with a code or an error) only ever goes to a registered redirect URI;
//! - an accepted request has a non-empty scope list within the integration's scopes,
//!   a well-formed S256 challenge when it has one, and a public client always has one;
//! - only the true PKCE verifier matches its challenge.
#![no_main]

use jwtgrant_core::client_auth::{ClientCredentials, read_credentials};
use jwtgrant_core::grants::authorization_code::{
    AuthorizationRequest, AuthorizeError, validate_request,
};
use jwtgrant_core::model::Integration;
use jwtgrant_core::pkce;
use libfuzzer_sys::fuzz_target;

const REGISTERED: [&str; 2] = ["https://app.example/cb", "http://127.0.0.1:9/callback"];
const SCOPES: [&str; 3] = ["signature", "impersonation", "extended"];

fn integration(secret: bool) -> Integration {
    Integration {
        key: "client".into(),
        name: "App".into(),
        active: true,
        allow_application_tokens: false,
        require_jti: false,
        scopes: SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        redirect_uris: REGISTERED.iter().map(|s| (*s).to_owned()).collect(),
        resources: Vec::new(),
        default_scopes: Vec::new(),
        client_secret_hash: secret.then(|| "hash".to_owned()),
        keys: vec![],
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%'
            && let Some(byte) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(if b == b'+' { b' ' } else { b });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn check(request: &AuthorizationRequest, secret: bool) {
    let integration = integration(secret);
    match validate_request(request, Some(&integration)) {
        Ok(valid) => {
            assert!(REGISTERED.contains(&valid.redirect_uri.as_str()), "{valid:?}");
            assert!(!valid.scopes.is_empty());
            assert!(valid.scopes.iter().all(|s| SCOPES.contains(&s.as_str())));
            if let Some(challenge) = &valid.code_challenge {
                assert!(pkce::well_formed(challenge));
            } else {
                assert!(secret, "a public client was accepted without PKCE");
            }
            assert_eq!(valid.state, request.state);
        }
        Err(AuthorizeError::Redirect { redirect_uri, .. }) => {
            assert!(
                REGISTERED.contains(&redirect_uri.as_str()),
                "redirect to an unregistered URI: {redirect_uri}"
            );
        }
        Err(AuthorizeError::Page(_)) => {}
    }
    // No integration at all: never a redirect.
    assert!(matches!(
        validate_request(request, None),
        Err(AuthorizeError::Page(_))
    ));
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let pairs: Vec<(String, String)> = text
        .split('&')
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(name), percent_decode(value))
        })
        .collect();
    if let Ok(request) =
        AuthorizationRequest::from_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())))
    {
        check(&request, true);
        check(&request, false);
        // Carried through the forms and read back, it is the same request.
        let round = AuthorizationRequest::from_pairs(request.to_pairs()).expect("own pairs");
        assert_eq!(round, request);
    }

    // The same bytes as client credentials.
    let header = text.lines().next().unwrap_or_default();
    let form_id = pairs.first().map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
    if let Ok(ClientCredentials::Secret { client_id, .. } | ClientCredentials::Public { client_id }) =
        read_credentials(Some(header), form_id, None)
    {
        if let Some(form_id) = form_id {
            assert_eq!(client_id, form_id, "the form's client_id was overridden");
        }
    }

    // PKCE: only the verifier itself matches its challenge.
    let verifier = text.trim();
    if pkce::well_formed(verifier) {
        let challenge = pkce::s256_challenge(verifier);
        assert!(pkce::verify_s256(verifier, &challenge));
        assert!(!pkce::verify_s256(verifier, &challenge.replacen(|_: char| true, "~", 1)));
    }
});
