//! Regenerates `testdata/assertions.json`: signed assertions and the verdict each
//! must get, made with the test keys in `testdata/keys/` (created on first run).
//!
//!     cargo run -p jwtgrant-core --example make_vectors
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use std::path::Path;

use jwtgrant_core::b64;
use jwtgrant_core::jws::sign_compact;
use jwtgrant_core::{JwsAlgorithm, SigningKey};
use serde_json::{Value, json};

const NOW: i64 = 1_800_000_000;
const ISS: &str = "0b5c4f7e-8d2a-4e61-9a53-2f7c1d9e6b40";
const USER: &str = "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b";
const AUD: &str = "account-d.docusign.com";

fn key(dir: &Path, name: &str, alg: JwsAlgorithm) -> SigningKey {
    let path = dir.join(format!("{name}.pem"));
    if let Ok(pem) = std::fs::read_to_string(&path) {
        return SigningKey::from_pem(&pem).unwrap();
    }
    let key = SigningKey::generate(alg, 2048).unwrap();
    std::fs::write(&path, key.to_pkcs8_pem().unwrap().as_bytes()).unwrap();
    key
}

fn claims(over: Value) -> Value {
    let mut base = json!({"iss": ISS, "sub": USER, "aud": AUD, "iat": NOW - 10, "exp": NOW + 3000,
                          "scope": "signature impersonation", "jti": "vector-jti"});
    for (k, v) in over.as_object().unwrap() {
        if v == "__absent__" {
            base.as_object_mut().unwrap().remove(k);
        } else {
            base[k] = v.clone();
        }
    }
    base
}

fn raw(header: &str, payload: &Value, key: &SigningKey, alg: JwsAlgorithm) -> String {
    let input = format!(
        "{}.{}",
        b64::encode(header),
        b64::encode(payload.to_string())
    );
    let sig = key.sign(alg, input.as_bytes()).unwrap();
    format!("{input}.{}", b64::encode(sig))
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let keys = root.join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let rsa = key(&keys, "integration-rsa", JwsAlgorithm::Rs256);
    let ec = key(&keys, "integration-p256", JwsAlgorithm::Es256);
    let ed = key(&keys, "integration-ed25519", JwsAlgorithm::EdDsa);
    let stranger = key(&keys, "stranger-rsa", JwsAlgorithm::Rs256);

    let s = |c: Value| sign_compact(&rsa, JwsAlgorithm::Rs256, Some("JWT"), None, &c).unwrap();
    let hmac_input = format!(
        "{}.{}",
        b64::encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        b64::encode(claims(json!({})).to_string())
    );
    let mac = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            rsa.public_key().to_pem().as_bytes(),
        ),
        hmac_input.as_bytes(),
    );

    let cases: Vec<(&str, String, Option<&str>, &str, &str)> = vec![
        ("rs256 user token", s(claims(json!({}))), None, "accept", ""),
        (
            "ps256 user token",
            sign_compact(&rsa, JwsAlgorithm::Ps256, None, None, &claims(json!({}))).unwrap(),
            None,
            "accept",
            "",
        ),
        (
            "es256 user token with kid",
            sign_compact(
                &ec,
                JwsAlgorithm::Es256,
                None,
                Some("ec-1"),
                &claims(json!({})),
            )
            .unwrap(),
            None,
            "accept",
            "",
        ),
        (
            "eddsa user token",
            sign_compact(&ed, JwsAlgorithm::EdDsa, None, None, &claims(json!({}))).unwrap(),
            None,
            "accept",
            "",
        ),
        (
            "aud array",
            s(claims(json!({"aud": ["x", AUD]}))),
            None,
            "accept",
            "",
        ),
        (
            "form scope narrows",
            s(claims(json!({}))),
            Some("impersonation"),
            "accept",
            "",
        ),
        (
            "rule1 jwe",
            "a.b.c.d.e".into(),
            None,
            "invalid_grant",
            "assertion is a JWE",
        ),
        (
            "rule1 two parts",
            "a.b".into(),
            None,
            "invalid_grant",
            "assertion must be a compact JWS",
        ),
        (
            "rule1 bad base64",
            "a*b.c.d".into(),
            None,
            "invalid_grant",
            "assertion header is not valid base64url",
        ),
        (
            "rule1 alg none",
            format!(
                "{}.{}.",
                b64::encode(r#"{"alg":"none"}"#),
                b64::encode(claims(json!({})).to_string())
            ),
            None,
            "invalid_grant",
            "alg 'none' is refused",
        ),
        (
            "rule1 hs256 with public key as secret",
            format!("{hmac_input}.{}", b64::encode(mac.as_ref())),
            None,
            "invalid_grant",
            "alg 'HS256' is refused",
        ),
        (
            "rule1 crit",
            raw(
                r#"{"alg":"RS256","crit":["exp"],"exp":1}"#,
                &claims(json!({})),
                &rsa,
                JwsAlgorithm::Rs256,
            ),
            None,
            "invalid_grant",
            "assertion header carries 'crit'",
        ),
        (
            "rule1 jwk header not trusted",
            raw(
                &format!(
                    r#"{{"alg":"RS256","jwk":{}}}"#,
                    serde_json::to_string(&stranger.public_key().to_jwk(None, None)).unwrap()
                ),
                &claims(json!({})),
                &stranger,
                JwsAlgorithm::Rs256,
            ),
            None,
            "invalid_grant",
            "no_valid_keys_or_signatures",
        ),
        (
            "rule1 stranger key",
            sign_compact(
                &stranger,
                JwsAlgorithm::Rs256,
                None,
                None,
                &claims(json!({})),
            )
            .unwrap(),
            None,
            "invalid_grant",
            "no_valid_keys_or_signatures",
        ),
        (
            "rule1 es384 not allowed for p256 key",
            raw(
                r#"{"alg":"ES384"}"#,
                &claims(json!({})),
                &rsa,
                JwsAlgorithm::Rs256,
            ),
            None,
            "invalid_grant",
            "no_valid_keys_or_signatures: alg 'ES384'",
        ),
        (
            "rule1 unknown kid",
            sign_compact(
                &rsa,
                JwsAlgorithm::Rs256,
                None,
                Some("nope"),
                &claims(json!({})),
            )
            .unwrap(),
            None,
            "invalid_grant",
            "no_valid_keys_or_signatures: no active key",
        ),
        (
            "rule2 unknown issuer",
            s(claims(json!({"iss": "someone-else"}))),
            None,
            "invalid_grant",
            "issuer_not_found",
        ),
        (
            "rule3 wrong aud",
            s(claims(json!({"aud": "account.docusign.com"}))),
            None,
            "invalid_grant",
            "'aud' must contain",
        ),
        (
            "rule3 aud number",
            s(claims(json!({"aud": 5}))),
            None,
            "invalid_grant",
            "'aud' must be",
        ),
        (
            "rule4 no exp",
            s(claims(json!({"exp": "__absent__"}))),
            None,
            "invalid_grant",
            "assertion has no 'exp'",
        ),
        (
            "rule4 exp string",
            s(claims(json!({"exp": "1800003000"}))),
            None,
            "invalid_grant",
            "'exp' must be",
        ),
        (
            "rule4 expired",
            s(claims(json!({"iat": NOW - 4000, "exp": NOW - 61}))),
            None,
            "invalid_grant",
            "assertion expired",
        ),
        (
            "rule4 too long",
            s(claims(json!({"exp": NOW + 7200}))),
            None,
            "invalid_grant",
            "assertion lifetime too long",
        ),
        (
            "rule4 nbf future",
            s(claims(json!({"nbf": NOW + 120}))),
            None,
            "invalid_grant",
            "assertion not yet valid",
        ),
        (
            "rule4 iat future",
            s(claims(json!({"iat": NOW + 120}))),
            None,
            "invalid_grant",
            "'iat' is in the future",
        ),
        (
            "rule5 jti wrong type",
            s(claims(json!({"jti": 7}))),
            None,
            "invalid_grant",
            "'jti' must be",
        ),
        (
            "rule6 unknown user",
            s(claims(json!({"sub": "someone"}))),
            None,
            "invalid_grant",
            "user_not_found",
        ),
        (
            "rule6 no impersonation",
            s(claims(json!({"scope": "signature"}))),
            None,
            "consent_required",
            "consent_required",
        ),
        (
            "rule6 application token not allowed",
            s(claims(json!({"sub": null}))),
            None,
            "invalid_grant",
            "assertion has no 'sub'",
        ),
        (
            "rule7 scope not allowed",
            s(claims(json!({"scope": "signature impersonation admin"}))),
            None,
            "invalid_scope",
            "scope 'admin' is not allowed",
        ),
        (
            "rule7 form widens",
            s(claims(json!({"scope": "impersonation"}))),
            Some("signature"),
            "invalid_scope",
            "the 'scope' parameter may only narrow",
        ),
    ];

    let jwk = |key: &SigningKey, kid: &str| key.public_key().to_jwk(Some(kid), None);
    let doc = json!({
        "about": "Assertions and the verdict each must get. Regenerate with: cargo run -p jwtgrant-core --example make_vectors",
        "now": NOW,
        "policy": {"accepted_audiences": [AUD, "http://127.0.0.1:8080"], "leeway_secs": 60, "max_lifetime_secs": 3600},
        "integration": {
            "key": ISS, "allow_application_tokens": false, "require_jti": false,
            "scopes": ["signature", "impersonation", "extended"],
            "keys": [jwk(&rsa, "rsa-1"), jwk(&ec, "ec-1"), jwk(&ed, "ed-1")],
        },
        "user": {"id": USER, "active": true},
        "consent": ["signature", "impersonation", "extended"],
        "cases": cases.into_iter().map(|(name, assertion, form_scope, verdict, prefix)| json!({
            "name": name, "assertion": assertion, "form_scope": form_scope, "verdict": verdict, "description_starts_with": prefix,
        })).collect::<Vec<_>>(),
    });
    std::fs::write(
        root.join("assertions.json"),
        serde_json::to_string_pretty(&doc).unwrap() + "\n",
    )
    .unwrap();
    println!("wrote {}", root.join("assertions.json").display());
}
