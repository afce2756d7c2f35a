//! The core's validation path and the crypto under it:
//!
//!     cargo bench -p jwtgrant-core
//!
//! `grant/*` is what the token endpoint spends in the core per request;
//! `crypto/*` compares aws-lc-rs (used) with ring on the same operations.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::hint::black_box;

use aws_lc_rs::signature::KeyPair as _;
use criterion::{Criterion, criterion_group, criterion_main};
use jwtgrant_core::access_token::{self, AccessTokenSettings};
use jwtgrant_core::grants::jwt_bearer::{SubjectRecords, decide};
use jwtgrant_core::jws::sign_compact;
use jwtgrant_core::keyring::KeyringEntry;
use jwtgrant_core::model::{Consent, Integration, IntegrationKey, User};
use jwtgrant_core::{AssertionPolicy, JwsAlgorithm, SigningKey, UnverifiedAssertion};
use serde_json::json;

const NOW: i64 = 1_800_000_000;

fn grant_path(c: &mut Criterion) {
    let key = SigningKey::generate(JwsAlgorithm::Rs256, 2048).unwrap();
    let integration = Integration {
        key: "0b5c4f7e-8d2a-4e61-9a53-2f7c1d9e6b40".into(),
        name: "bench".into(),
        active: true,
        allow_application_tokens: false,
        require_jti: true,
        scopes: vec!["signature".into(), "impersonation".into()],
        redirect_uris: vec![],
        client_secret_hash: None,
        keys: vec![IntegrationKey {
            kid: "k".into(),
            public_key: key.public_key().clone(),
            active: true,
        }],
    };
    let user = User {
        id: "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b".into(),
        active: true,
    };
    let consent = Consent {
        scopes: vec!["signature".into(), "impersonation".into()],
    };
    let policy = AssertionPolicy {
        accepted_audiences: vec!["http://127.0.0.1:8080".into(), "127.0.0.1:8080".into()],
        leeway_secs: 60,
        max_lifetime_secs: 3600,
    };
    let claims = json!({"iss": integration.key, "sub": user.id, "aud": "127.0.0.1:8080", "iat": NOW,
                        "exp": NOW + 3600, "scope": "signature impersonation", "jti": "7d0c3f0e-1111-4222-8333-944455556666"});
    let assertion = sign_compact(&key, JwsAlgorithm::Rs256, Some("JWT"), None, &claims).unwrap();
    let signer = KeyringEntry {
        kid: "s".into(),
        alg: JwsAlgorithm::Es256,
        key: std::sync::Arc::new(SigningKey::generate(JwsAlgorithm::Es256, 0).unwrap()),
        activates_at: 0,
    };
    let settings = AccessTokenSettings {
        issuer: "http://127.0.0.1:8080".into(),
        audience: "http://127.0.0.1:8080".into(),
        lifetime_secs: 3600,
    };
    let records = SubjectRecords {
        user: Some(&user),
        consent: Some(&consent),
    };

    c.bench_function("grant/parse", |b| {
        b.iter(|| UnverifiedAssertion::parse(black_box(&assertion)).unwrap())
    });
    c.bench_function("grant/parse_verify_decide_rs256", |b| {
        b.iter(|| {
            let verified = UnverifiedAssertion::parse(black_box(&assertion))
                .unwrap()
                .verify(&integration, &policy, NOW)
                .unwrap();
            decide(&verified, None, &integration, records, 60, |_| {
                String::new()
            })
            .unwrap()
        })
    });
    let verified = UnverifiedAssertion::parse(&assertion)
        .unwrap()
        .verify(&integration, &policy, NOW)
        .unwrap();
    let decision = decide(&verified, None, &integration, records, 60, |_| {
        String::new()
    })
    .unwrap();
    c.bench_function("grant/issue_access_token_es256", |b| {
        b.iter(|| {
            access_token::issue(black_box(&decision), &settings, &signer, "jti".into(), NOW)
                .unwrap()
        })
    });
    c.bench_function("grant/whole_core_path", |b| {
        b.iter(|| {
            let verified = UnverifiedAssertion::parse(black_box(&assertion))
                .unwrap()
                .verify(&integration, &policy, NOW)
                .unwrap();
            let decision = decide(&verified, None, &integration, records, 60, |_| {
                String::new()
            })
            .unwrap();
            access_token::issue(&decision, &settings, &signer, "jti".into(), NOW).unwrap()
        })
    });
}

fn crypto(c: &mut Criterion) {
    let message = b"eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJiZW5jaCJ9";

    // RSA-2048 PKCS#1 v1.5 SHA-256 verify.
    let rsa = aws_lc_rs::signature::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let mut sig = vec![0; rsa.public_modulus_len()];
    rsa.sign(
        &aws_lc_rs::signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        message,
        &mut sig,
    )
    .unwrap();
    let pkcs1 = rsa.public_key().as_ref().to_vec();
    let aws_parsed = aws_lc_rs::signature::ParsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
        &pkcs1,
    )
    .unwrap();
    c.bench_function("crypto/rsa2048_verify/aws-lc-rs", |b| {
        b.iter(|| aws_parsed.verify_sig(black_box(message), &sig).unwrap())
    });
    let ring_key = ring::signature::UnparsedPublicKey::new(
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
        &pkcs1,
    );
    c.bench_function("crypto/rsa2048_verify/ring", |b| {
        b.iter(|| ring_key.verify(black_box(message), &sig).unwrap())
    });

    // ECDSA P-256 SHA-256 sign (fixed-size signature, as JWS uses).
    let aws_ec = aws_lc_rs::signature::EcdsaKeyPair::generate(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
    )
    .unwrap();
    let rng = aws_lc_rs::rand::SystemRandom::new();
    c.bench_function("crypto/p256_sign/aws-lc-rs", |b| {
        b.iter(|| aws_ec.sign(&rng, black_box(message)).unwrap())
    });
    let ring_rng = ring::rand::SystemRandom::new();
    let pkcs8 = ring::signature::EcdsaKeyPair::generate_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &ring_rng,
    )
    .unwrap();
    let ring_ec = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        pkcs8.as_ref(),
        &ring_rng,
    )
    .unwrap();
    c.bench_function("crypto/p256_sign/ring", |b| {
        b.iter(|| ring_ec.sign(&ring_rng, black_box(message)).unwrap())
    });

    // ECDSA P-256 verify (what userinfo pays for a token it has not seen).
    let ec_sig = aws_ec.sign(&rng, message).unwrap();
    let ec_public = aws_lc_rs::signature::ParsedPublicKey::new(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED,
        aws_ec.public_key().as_ref(),
    )
    .unwrap();
    c.bench_function("crypto/p256_verify/aws-lc-rs", |b| {
        b.iter(|| {
            ec_public
                .verify_sig(black_box(message), ec_sig.as_ref())
                .unwrap()
        })
    });
}

criterion_group!(benches, grant_path, crypto);
criterion_main!(benches);
