//! `Verifier` against the real server's JWKS: tokens the server issued pass; tokens
//! forged with its own signing key but a wrong claim or header fail with the reason;
//! a rotated signing key is picked up by a refetch.

use std::time::Duration;

use jwtgrant_client::{Jwtgrant, TokenSource, Verifier, VerifyError};
use jwtgrant_core::access_token::TokenError;
use jwtgrant_core::jws::sign_compact;
use jwtgrant_core::{JwsAlgorithm, SigningKey};
use serde_json::{Value, json};

use crate::support::*;

/// Moves tokio's clock, which the SDK's cache reads, `by` forward at once and lets
/// it run on from there: what sleeping `by` would do, without the wait. (The server
/// in this process reads the system clock, which does not move.)
async fn jump(by: Duration) {
    tokio::time::pause();
    tokio::time::advance(by).await;
    tokio::time::resume();
}

struct Setup {
    f: Fixture,
    verifier: Verifier,
    token: String,
    claims: Value,
}

async fn setup() -> Setup {
    let f = Fixture::new().await;
    let token = TokenSource::builder(&f.integration_key, f.key.clone())
        .server(&f.server.url)
        .subject(&f.user_id)
        .scopes(["signature", "impersonation"])
        .build()
        .unwrap()
        .access_token()
        .await
        .unwrap();
    let verifier = Jwtgrant::new(&f.server.url)
        .unwrap()
        .verifier()
        .leeway(Duration::from_secs(5))
        .build()
        .unwrap();
    let claims = serde_json::to_value(verifier.verify(&token).await.unwrap()).unwrap();
    Setup {
        f,
        verifier,
        token,
        claims,
    }
}

impl Setup {
    /// A token signed by the server's own current key, with `claims`.
    fn forge(&self, typ: &str, claims: &Value) -> String {
        let keyring = self.f.server.state.registry.keyring();
        let entry = keyring.signing_key(JwsAlgorithm::Es256, now()).unwrap();
        sign_compact(&entry.key, entry.alg, Some(typ), Some(&entry.kid), claims).unwrap()
    }

    fn claims_with(&self, overrides: Value) -> Value {
        let mut claims = self.claims.clone();
        if let (Value::Object(base), Value::Object(over)) = (&mut claims, overrides) {
            base.extend(over);
        }
        claims
    }

    async fn refusal(&self, token: &str) -> TokenError {
        match self.verifier.verify(token).await {
            Err(VerifyError::Invalid(reason)) => reason,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn accepts_issued_tokens_and_checks_scopes() {
    let s = setup().await;
    let claims = s
        .verifier
        .verify_with_scopes(&s.token, &["signature", "impersonation"])
        .await
        .unwrap();
    assert_eq!(claims.sub, s.f.user_id);
    assert!(claims.aud.contains(&s.f.server.url));

    match s
        .verifier
        .verify_with_scopes(&s.token, &["signature", "admin"])
        .await
    {
        Err(VerifyError::InsufficientScope { required, missing }) => {
            assert_eq!(required, ["signature", "admin"]);
            assert_eq!(missing, "admin");
        }
        other => panic!("{other:?}"),
    }

    // A forged token with the very same claims passes: the forgery helper is sound.
    let same = s.forge("at+jwt", &s.claims);
    assert!(s.verifier.verify(&same).await.is_ok());
}

#[tokio::test]
async fn refuses_wrong_issuer_audience_typ_and_times() {
    let s = setup().await;
    let now = now();
    let cases = [
        (
            "at+jwt",
            s.claims_with(json!({"iss": "https://evil.example.com"})),
            TokenError::WrongIssuer,
        ),
        (
            "at+jwt",
            s.claims_with(json!({"aud": "https://other-api.example.com"})),
            TokenError::WrongAudience,
        ),
        (
            "at+jwt",
            s.claims_with(json!({"iat": now - 7200, "exp": now - 60})),
            TokenError::Expired,
        ),
        (
            "at+jwt",
            s.claims_with(json!({"iat": now + 600, "exp": now + 4200})),
            TokenError::NotYetValid,
        ),
        (
            "at+jwt",
            s.claims_with(json!({"nbf": now + 600})),
            TokenError::NotYetValid,
        ),
        ("JWT", s.claims.clone(), TokenError::WrongTyp),
    ];
    for (typ, claims, expected) in cases {
        let token = s.forge(typ, &claims);
        assert_eq!(s.refusal(&token).await, expected, "{claims}");
    }
    // Within the leeway (5 s here), a just-expired token still passes.
    let token = s.forge("at+jwt", &s.claims_with(json!({"exp": now - 2})));
    assert!(s.verifier.verify(&token).await.is_ok());
}

#[tokio::test]
async fn refuses_wrong_signature_and_unknown_kid() {
    let s = setup().await;
    let keyring = s.f.server.state.registry.keyring();
    let published = keyring.signing_key(JwsAlgorithm::Es256, now()).unwrap();
    let impostor = SigningKey::generate(JwsAlgorithm::Es256, 0).unwrap();

    // Another key under the published kid.
    let token = sign_compact(
        &impostor,
        JwsAlgorithm::Es256,
        Some("at+jwt"),
        Some(&published.kid),
        &s.claims,
    )
    .unwrap();
    assert_eq!(s.refusal(&token).await, TokenError::BadSignature);

    // A token whose payload was altered after signing.
    let mut parts: Vec<String> = s.token.split('.').map(str::to_owned).collect();
    parts[1] = jwtgrant_core::b64::encode(
        serde_json::to_vec(&s.claims_with(json!({"scope": "signature impersonation admin"})))
            .unwrap(),
    );
    assert_eq!(s.refusal(&parts.join(".")).await, TokenError::BadSignature);

    // A kid the server never published: refused after a refetch of the JWKS.
    let verifier = Jwtgrant::new(&s.f.server.url)
        .unwrap()
        .verifier()
        .refetch_interval(Duration::ZERO)
        .build()
        .unwrap();
    let token = sign_compact(
        &impostor,
        JwsAlgorithm::Es256,
        Some("at+jwt"),
        Some("not-published"),
        &s.claims,
    )
    .unwrap();
    assert!(matches!(
        verifier.verify(&token).await,
        Err(VerifyError::Invalid(TokenError::UnknownKey))
    ));
    assert!(matches!(
        verifier.verify("not.a.token").await,
        Err(VerifyError::Invalid(TokenError::Malformed))
    ));
}

#[tokio::test]
async fn unknown_kids_refetch_the_jwks_at_most_once_per_interval() {
    let s = setup().await;
    let proxy = Proxy::start(&s.f.server.url, Vec::new()).await;
    let verifier = Verifier::builder(&s.f.server.url, format!("{}/oauth/jwks", proxy.url))
        .refetch_interval(Duration::from_millis(300))
        .build()
        .unwrap();
    verifier.verify(&s.token).await.unwrap();
    assert_eq!(proxy.jwks_requests(), 1);

    let impostor = SigningKey::generate(JwsAlgorithm::Es256, 0).unwrap();
    let unknown = |kid: &str| {
        sign_compact(
            &impostor,
            JwsAlgorithm::Es256,
            Some("at+jwt"),
            Some(kid),
            &s.claims,
        )
        .unwrap()
    };
    // Right after a fetch: refused without asking the server again.
    for i in 0..10 {
        assert!(matches!(
            verifier.verify(&unknown(&format!("k{i}"))).await,
            Err(VerifyError::Invalid(TokenError::UnknownKey))
        ));
    }
    assert_eq!(proxy.jwks_requests(), 1);

    // After the interval, one refetch for the next unknown kid, then none again.
    jump(Duration::from_millis(350)).await;
    for i in 0..10 {
        assert!(verifier.verify(&unknown(&format!("j{i}"))).await.is_err());
    }
    assert_eq!(proxy.jwks_requests(), 2);
    // Known keys never cause a fetch.
    verifier.verify(&s.token).await.unwrap();
    assert_eq!(proxy.jwks_requests(), 2);
}

#[tokio::test]
async fn accepts_a_rotated_key_after_refetching() {
    let s = setup().await;
    let verifier = Jwtgrant::new(&s.f.server.url)
        .unwrap()
        .verifier()
        .refetch_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    verifier.verify(&s.token).await.unwrap();

    // Rotate: a new key that signs from the next second on (so it is strictly the
    // most recent key), published at once.
    let store = s.f.server.store.as_ref();
    let newest = store
        .signing_keys()
        .await
        .unwrap()
        .iter()
        .map(|k| k.activates_at)
        .max()
        .unwrap();
    let activates_at = newest.max(now()) + 1;
    let kid = jwtgrant_server::signing::add_signing_key(
        store,
        &s.f.server.state.sealer,
        JwsAlgorithm::Es256,
        activates_at,
        now(),
    )
    .await
    .unwrap();
    s.f.server.state.registry.refresh().await.unwrap();
    // The server's clock reaches the new key's activation, and the verifier's
    // refetch interval passes.
    s.f.server.state.clock.advance(activates_at - now());
    jump(Duration::from_millis(150)).await;

    let rotated = TokenSource::builder(&s.f.integration_key, s.f.key.clone())
        .server(&s.f.server.url)
        .subject(&s.f.user_id)
        .scopes(["signature", "impersonation"])
        .build()
        .unwrap()
        .access_token()
        .await
        .unwrap();
    let header: Value = serde_json::from_slice(
        &jwtgrant_core::b64::decode(rotated.split('.').next().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(header["kid"], kid, "the new key signs");

    let claims = verifier.verify(&rotated).await.unwrap();
    assert_eq!(claims.sub, s.f.user_id);
    // The old key is still published: its tokens still verify.
    verifier.verify(&s.token).await.unwrap();
}

#[tokio::test]
async fn unreachable_jwks_is_not_an_invalid_token() {
    let url = closed_port_url().await;
    let verifier = Verifier::builder(&url, format!("{url}/oauth/jwks"))
        .build()
        .unwrap();
    assert!(matches!(
        verifier.verify("a.b.c").await,
        Err(VerifyError::KeysUnavailable(_))
    ));
}
