//! The core's validation path and the crypto under it:
//!
//!     cargo bench -p jwtgrant-core
//!
//! `grant/*` is what the token endpoint spends in the core per request;
//! `crypto/*` compares aws-lc-rs (used) with ring on the same operations;
//! `condition/*` is a trusted issuer's CEL: compiling, evaluating over realistic
//! claims, and the worst expressions that compile over the worst claims that fit
//! in an assertion; `trusted/*` compares, in one run, a registered integration's
//! grant (its usual token, and one carrying GitHub's claims) with a trusted
//! issuer's (GitHub Actions, keys cached), with and without its condition:
//!
//!     cargo bench -p jwtgrant-core --bench validation -- trusted
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
use jwtgrant_core::condition::{Expression, MAX_ITERATIONS};
use jwtgrant_core::grants::jwt_bearer::{SubjectRecords, decide};
use jwtgrant_core::jwks::parse_jwks;
use jwtgrant_core::jws::sign_compact;
use jwtgrant_core::keyring::KeyringEntry;
use jwtgrant_core::model::{Consent, Integration, IntegrationKey, User};
use jwtgrant_core::trusted_issuer::{
    DEFAULT_MAX_LIFETIME_SECS, IssuerPolicy, KeySource, ReplayPolicy, SubjectKind, TrustedIssuer,
    UserClaim, decide_for_issuer,
};
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
        resources: Vec::new(),
        default_scopes: Vec::new(),
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

/// The claims of a GitHub Actions ID token, as GitHub shapes them.
fn github_claims() -> serde_json::Map<String, serde_json::Value> {
    let serde_json::Value::Object(claims) = json!({
        "jti": "example-id",
        "sub": "repo:octo-org/octo-repo:ref:refs/heads/main",
        "aud": "https://github.com/octo-org",
        "ref": "refs/heads/main",
        "sha": "example-sha",
        "repository": "octo-org/octo-repo",
        "repository_owner": "octo-org",
        "actor_id": "12",
        "repository_visibility": "private",
        "repository_id": "74",
        "repository_owner_id": "65",
        "run_id": "example-run-id",
        "run_number": "10",
        "run_attempt": "2",
        "runner_environment": "github-hosted",
        "actor": "octocat",
        "workflow": "example-workflow",
        "head_ref": "",
        "base_ref": "",
        "event_name": "workflow_dispatch",
        "ref_type": "branch",
        "job_workflow_ref": "octo-org/octo-automation/.github/workflows/oidc.yml@refs/heads/main",
        "iss": "https://token.actions.githubusercontent.com",
        "nbf": 1632492967,
        "exp": 1632493867,
        "iat": 1632493567
    }) else {
        unreachable!()
    };
    claims
}

/// The claims of `value`, checked to fit in an assertion (16 KiB of base64url,
/// header and signature included: about 11 KiB of JSON).
fn fitting(value: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    let json = serde_json::to_vec(&value).unwrap();
    assert!(json.len() <= 11 * 1024, "{} bytes of claims", json.len());
    let serde_json::Value::Object(claims) = value else {
        unreachable!()
    };
    claims
}

/// The longest of `make(1)`, `make(2)`, ... that compiles.
fn longest(make: impl Fn(usize) -> String) -> Expression {
    let n = (1..64)
        .take_while(|&n| Expression::compile(&make(n)).is_ok())
        .last()
        .unwrap();
    eprintln!("longest: n = {n}: {}", make(n));
    Expression::compile(&make(n)).unwrap()
}

fn condition(c: &mut Criterion) {
    let github = github_claims();
    let source =
        r#"assertion.repository_owner == "octo-org" && assertion.ref == "refs/heads/main""#;
    c.bench_function("condition/compile_github", |b| {
        b.iter(|| Expression::compile(black_box(source)).unwrap())
    });
    let expression = Expression::compile(source).unwrap();
    c.bench_function("condition/evaluate_github", |b| {
        b.iter(|| assert!(expression.evaluate_condition(black_box(&github)).unwrap()))
    });
    let subject = Expression::compile(r#""repo:" + assertion.repository"#).unwrap();
    c.bench_function("condition/evaluate_subject", |b| {
        b.iter(|| subject.evaluate_subject(black_box(&github)).unwrap())
    });
    let matches =
        Expression::compile(r#"assertion.ref.matches("^refs/(heads/main|tags/v[0-9]+)$")"#)
            .unwrap();
    c.bench_function("condition/evaluate_matches", |b| {
        b.iter(|| assert!(matches.evaluate_condition(black_box(&github)).unwrap()))
    });
    let mut with_groups = github.clone();
    with_groups.insert(
        "groups".into(),
        json!((0..50).map(|i| format!("group-{i}")).collect::<Vec<_>>()),
    );
    let groups = Expression::compile(r#"assertion.groups.exists(g, g == "group-49")"#).unwrap();
    c.bench_function("condition/evaluate_exists_50_groups", |b| {
        b.iter(|| assert!(groups.evaluate_condition(black_box(&with_groups)).unwrap()))
    });

    let member = Expression::compile(r#""group-49" in assertion.groups"#).unwrap();
    c.bench_function("condition/evaluate_in_50_groups", |b| {
        b.iter(|| assert!(member.evaluate_condition(black_box(&with_groups)).unwrap()))
    });

    // The worst that compiles, over the worst claims that fit.
    // Copies: a list literal of the whole claims, made of the most values 11 KiB
    // holds.
    let many_values = fitting(json!({"pad": vec![json!([]); 3500]}));
    let copies =
        Expression::compile(&format!("[{}].size() == 8", ["assertion"; 8].join(", "))).unwrap();
    c.bench_function("condition/worst_case_copies", |b| {
        b.iter(|| assert!(copies.evaluate_condition(black_box(&many_values)).unwrap()))
    });
    // Mentions: the most comparisons of the largest claim with itself.
    let mentions = longest(|n| vec!["assertion.pad == assertion.pad"; n].join(" && "));
    c.bench_function("condition/worst_case_mentions", |b| {
        b.iter(|| {
            assert!(
                mentions
                    .evaluate_condition(black_box(&many_values))
                    .unwrap()
            )
        })
    });
    // Loops: the longest body over the longest range, each element a long string.
    let long_range = fitting(json!({"groups": vec!["g".repeat(38); MAX_ITERATIONS]}));
    let loops = longest(|n| {
        let body: Vec<_> = (0..n).map(|i| format!(r#"g.contains("x{i}")"#)).collect();
        format!("assertion.groups.exists(g, {})", body.join(" || "))
    });
    c.bench_function("condition/worst_case_loop", |b| {
        b.iter(|| assert!(!loops.evaluate_condition(black_box(&long_range)).unwrap()))
    });
    // Strings: the longest chain of concatenations of the longest claim.
    let long_string = fitting(json!({"s": "s".repeat(11_000)}));
    let concat = longest(|n| format!("size({}) > 0", vec!["assertion.s"; n].join(r#" + "" + "#)));
    c.bench_function("condition/worst_case_concat", |b| {
        b.iter(|| assert!(concat.evaluate_condition(black_box(&long_string)).unwrap()))
    });
}

/// The JWT bearer grant in the core, registered integration against trusted issuer,
/// in one run: parse, verify (RS256, 2048 bits), decide. The issuer's keys are
/// parsed once, as the adapter's cache holds them.
fn trusted(c: &mut Criterion) {
    const GITHUB: &str = "https://token.actions.githubusercontent.com";
    let key = SigningKey::generate(JwsAlgorithm::Rs256, 2048).unwrap();
    let policy = AssertionPolicy {
        accepted_audiences: vec!["http://127.0.0.1:8080".into(), "127.0.0.1:8080".into()],
        leeway_secs: 60,
        max_lifetime_secs: 3600,
    };

    // A registered integration's user token, as `grant/parse_verify_decide_rs256`.
    let integration = Integration {
        key: "0b5c4f7e-8d2a-4e61-9a53-2f7c1d9e6b40".into(),
        name: "bench".into(),
        active: true,
        allow_application_tokens: true,
        require_jti: true,
        scopes: vec!["signature".into(), "impersonation".into()],
        redirect_uris: vec![],
        resources: Vec::new(),
        default_scopes: Vec::new(),
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
    let records = SubjectRecords {
        user: Some(&user),
        consent: Some(&consent),
    };
    let claims = json!({"iss": integration.key, "sub": user.id, "aud": "127.0.0.1:8080", "iat": NOW,
                        "exp": NOW + 3600, "scope": "signature impersonation", "jti": "7d0c3f0e-1111-4222-8333-944455556666"});
    let registered = sign_compact(&key, JwsAlgorithm::Rs256, Some("JWT"), None, &claims).unwrap();

    // GitHub Actions' ID token for this server, its JWKS with a second key (GitHub
    // publishes a few), and the issuer as `issuer add` makes it.
    let mut github = github_claims();
    github.insert("aud".into(), json!("http://127.0.0.1:8080"));
    github.insert("iat".into(), json!(NOW));
    github.insert("nbf".into(), json!(NOW - 600));
    github.insert("exp".into(), json!(NOW + 300));
    let token = sign_compact(
        &key,
        JwsAlgorithm::Rs256,
        Some("JWT"),
        Some("gh-1"),
        &github,
    )
    .unwrap();
    let other = SigningKey::generate(JwsAlgorithm::Rs256, 2048).unwrap();
    let jwks = json!({"keys": [
        other.public_key().to_jwk(Some("gh-0"), Some(JwsAlgorithm::Rs256)),
        key.public_key().to_jwk(Some("gh-1"), Some(JwsAlgorithm::Rs256)),
    ]});
    let keys = parse_jwks(&serde_json::to_vec(&jwks).unwrap(), &[]).unwrap();
    let issuer = |condition: Option<&str>, subject_expr: Option<&str>| {
        let policy = IssuerPolicy {
            keys: KeySource::JwksUri(format!("{GITHUB}/.well-known/jwks")),
            audiences: vec![],
            algorithms: vec![JwsAlgorithm::Rs256],
            typs: vec![],
            max_lifetime_secs: DEFAULT_MAX_LIFETIME_SECS,
            clock_skew_secs: None,
            replay: ReplayPolicy::SingleUse,
            subject: SubjectKind::Workload,
            user_claim: UserClaim::Sub,
            subject_expr: subject_expr.map(str::to_owned),
            condition: condition.map(str::to_owned),
            scopes: vec!["signature".into()],
            expires_at: None,
            client_authentication: false,
            id_jag: false,
        };
        TrustedIssuer::new(
            "1e5a9c3d".into(),
            GITHUB.into(),
            integration.key.clone(),
            true,
            policy,
        )
        .unwrap()
    };
    let gated = issuer(
        Some(r#"assertion.repository_owner == "octo-org" && assertion.ref == "refs/heads/main""#),
        Some(r#""repo:" + assertion.repository"#),
    );
    let plain = issuer(None, None);
    let no_records = SubjectRecords {
        user: None,
        consent: None,
    };
    // The registered integration's application token carrying the same claims as
    // GitHub's: what the trusted path adds, apart from the larger token.
    let mut same_claims = github.clone();
    same_claims.insert("iss".into(), json!(integration.key));
    same_claims.remove("sub");
    let registered_same =
        sign_compact(&key, JwsAlgorithm::Rs256, Some("JWT"), None, &same_claims).unwrap();

    let mut group = c.benchmark_group("trusted");
    group.bench_function("registered_rs256", |b| {
        b.iter(|| {
            let verified = UnverifiedAssertion::parse(black_box(&registered))
                .unwrap()
                .verify(&integration, &policy, NOW)
                .unwrap();
            decide(&verified, None, &integration, records, 60, |_| {
                String::new()
            })
            .unwrap()
        })
    });
    group.bench_function("registered_rs256_github_claims", |b| {
        b.iter(|| {
            let verified = UnverifiedAssertion::parse(black_box(&registered_same))
                .unwrap()
                .verify(&integration, &policy, NOW)
                .unwrap();
            decide(&verified, None, &integration, no_records, 60, |_| {
                String::new()
            })
            .unwrap()
        })
    });
    for (name, issuer) in [
        ("issuer_rs256_condition_subject_expr", &gated),
        ("issuer_rs256_no_condition", &plain),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let assertion = UnverifiedAssertion::parse(black_box(&token))
                    .unwrap()
                    .verify_from_issuer(issuer, &keys, &policy, NOW)
                    .unwrap();
                decide_for_issuer(
                    &assertion,
                    issuer,
                    &integration,
                    None,
                    no_records,
                    60,
                    |_| String::new(),
                )
                .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, grant_path, crypto, condition, trusted);
criterion_main!(benches);
