//! Regenerates `testdata/assertions.json` (JWT bearer grant assertions),
//! `testdata/client_assertions.json` (client assertions, RFC 7523 section 2.2) and
//! `testdata/issuer_assertions.json` (trusted issuers' tokens, PROTOCOL.md part
//! two): signed tokens and the verdict each must get, made with the test keys in
//! `testdata/keys/` (created on first run).
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

#[path = "make_vectors/issuers.rs"]
mod issuers;

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
    overridden(
        json!({"iss": ISS, "sub": USER, "aud": AUD, "iat": NOW - 10, "exp": NOW + 3000,
               "scope": "signature impersonation", "jti": "vector-jti"}),
        over,
    )
}

/// `base` with the members of `over` set, or removed where they are `"__absent__"`.
fn overridden(mut base: Value, over: Value) -> Value {
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
    let retired = key(&keys, "retired-p256", JwsAlgorithm::Es256);

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

    let count = client_vectors(&root, &rsa, &ec, &stranger, &retired);
    println!(
        "wrote {} ({count} cases)",
        root.join("client_assertions.json").display()
    );

    let count = issuers::issuer_vectors(&root, &keys, &rsa, &ec, &stranger);
    println!(
        "wrote {} ({count} cases)",
        root.join("issuer_assertions.json").display()
    );
}

// ---------------------------------------------------------------------------------
// Client assertions (RFC 7523 section 2.2, private_key_jwt): PROTOCOL.md, "Client
// authentication". Each case is a request's client-authentication fields, the
// policy it is checked under, and its verdict.
// ---------------------------------------------------------------------------------

/// The client of the client-assertion vectors: an active integration.
const CLIENT: &str = "3d6f9a2b-7c41-4e8d-b5a0-91c2e4f7a6d3";
/// A registered integration with the same keys, disabled.
const DISABLED_CLIENT: &str = "9e2a7c15-4b38-4f06-8d9e-1a5b7c3e2f40";
/// An integration key nobody registered.
const UNKNOWN_CLIENT: &str = "00000000-0000-4000-8000-000000000000";
/// The server's issuer identifier: the audience of a client assertion.
const ISSUER: &str = "https://auth.example.test";
/// Its token endpoint, accepted as the audience unless the policy is strict.
const TOKEN_ENDPOINT: &str = "https://auth.example.test/oauth/token";
const LEEWAY: i64 = 60;
/// `--max-client-assertion-lifetime-secs`' default, and a short setting.
const MAX_LIFETIME: i64 = 3600;
const SHORT_LIFETIME: i64 = 300;

fn client_claims(over: Value) -> Value {
    overridden(
        json!({"iss": CLIENT, "sub": CLIENT, "aud": ISSUER, "iat": NOW - 10, "exp": NOW + 50,
               "jti": "client-vector-jti"}),
        over,
    )
}

/// The form of a request that authenticates with `assertion` alone.
fn client_form(assertion: &str) -> Value {
    json!({
        "authorization": null, "client_id": null, "client_secret": null,
        "client_assertion_type": jwtgrant_proto::CLIENT_ASSERTION_TYPE,
        "client_assertion": assertion,
    })
}

/// The verdict of an accepted assertion with these claims: the client it
/// authenticates and the replay guard the caller must record.
fn accepted(claims: &Value) -> Value {
    let client = claims["iss"].as_str().unwrap();
    json!({
        "verdict": "accept",
        "client_id": client,
        "replay_guard": {
            "issuer": format!("client-assertion:{client}"),
            "jti": claims["jti"],
            "remember_until": claims["exp"].as_i64().unwrap() + LEEWAY,
        },
    })
}

/// The verdict of a refusal: the `ClientAuthError` variant (with the `GrantError`
/// one inside `ClientAssertion`) and how its description starts.
fn refused(error: &str, prefix: &str) -> Value {
    json!({"verdict": "refuse", "error": error, "description_starts_with": prefix})
}

fn basic(client: &str, secret: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{client}:{secret}"))
    )
}

/// Writes `testdata/client_assertions.json`; returns how many cases it holds.
fn client_vectors(
    root: &Path,
    rsa: &SigningKey,
    ec: &SigningKey,
    stranger: &SigningKey,
    retired: &SigningKey,
) -> usize {
    use JwsAlgorithm::{Es256, Ps256, Rs256};
    use jwtgrant_proto::CLIENT_ASSERTION_TYP as TYP;

    let sign = |key: &SigningKey, alg, typ: Option<&str>, kid: Option<&str>, c: &Value| {
        sign_compact(key, alg, typ, kid, c).unwrap()
    };
    // The usual shapes: the registered RSA or P-256 key, its kid, the rfc7523bis typ.
    let rs = |c: &Value| sign(rsa, Rs256, Some(TYP), Some("rsa-1"), c);
    let es = |c: &Value| sign(ec, Es256, Some(TYP), Some("ec-1"), c);
    let c = client_claims;
    let base = c(json!({}));
    let form = |assertion: String| client_form(&assertion);
    let with = |assertion: String, over: Value| overridden(client_form(&assertion), over);
    let refused_by = |kind: &str, prefix: &str| {
        refused(
            &format!("ClientAssertion({kind})"),
            // A refused client assertion's description leads with the rule it broke.
            &match prefix.split_once(": ") {
                Some((rule, rest)) if rule.chars().all(|c| c.is_ascii_lowercase() || c == '_') => {
                    format!("{rule}: client assertion refused: {rest}")
                }
                _ => format!("client assertion refused: {prefix}"),
            },
        )
    };
    let hmac_input = format!(
        "{}.{}",
        b64::encode(format!(r#"{{"alg":"HS256","typ":"{TYP}"}}"#)),
        b64::encode(base.to_string())
    );
    let mac = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            rsa.public_key().to_pem().as_bytes(),
        ),
        hmac_input.as_bytes(),
    );
    let jti = |len: usize| c(json!({"jti": "j".repeat(len)}));
    let ok = |claims: &Value| accepted(claims);

    let cases: Vec<(&str, &str, Value, Value)> = vec![
        // Accepted: signed by an active registered key, kid and alg matching it.
        (
            "rs256 by the registered rsa key, its kid, typ client-authentication+jwt",
            "default",
            form(rs(&base)),
            ok(&base),
        ),
        (
            "rs256 without kid: the active keys are tried",
            "default",
            form(sign(rsa, Rs256, Some(TYP), None, &base)),
            ok(&base),
        ),
        (
            "ps256 by the rsa key",
            "default",
            form(sign(rsa, Ps256, Some(TYP), Some("rsa-1"), &base)),
            ok(&base),
        ),
        (
            "es256 by the registered p256 key",
            "default",
            form(es(&base)),
            ok(&base),
        ),
        (
            "es256 without kid or typ",
            "default",
            form(sign(ec, Es256, None, None, &base)),
            ok(&base),
        ),
        (
            "typ JWT",
            "default",
            form(sign(rsa, Rs256, Some("JWT"), Some("rsa-1"), &base)),
            ok(&base),
        ),
        (
            "typ compared without regard to case",
            "default",
            form(sign(
                rsa,
                Rs256,
                Some("Client-Authentication+JWT"),
                Some("rsa-1"),
                &base,
            )),
            ok(&base),
        ),
        (
            "form client_id equal to iss",
            "default",
            with(rs(&base), json!({"client_id": CLIENT})),
            ok(&base),
        ),
        (
            "an Authorization header of another scheme is not a second method",
            "default",
            with(rs(&base), json!({"authorization": "Bearer abc"})),
            ok(&base),
        ),
        {
            let c = c(json!({"aud": TOKEN_ENDPOINT}));
            (
                "aud the token endpoint, when not strict",
                "default",
                form(rs(&c)),
                ok(&c),
            )
        },
        {
            let c = c(json!({"aud": ["https://other.example", ISSUER]}));
            (
                "aud an array holding the issuer",
                "default",
                form(rs(&c)),
                ok(&c),
            )
        },
        (
            "strict: aud the issuer",
            "strict",
            form(rs(&base)),
            ok(&base),
        ),
        {
            let c = c(json!({"aud": [TOKEN_ENDPOINT, ISSUER]}));
            (
                "strict: aud an array holding the token endpoint and the issuer",
                "strict",
                form(rs(&c)),
                ok(&c),
            )
        },
        {
            let c = c(json!({"iat": NOW, "exp": NOW + 3600}));
            (
                "an hour-long assertion (Authlib's iat + 3600) under the default cap",
                "default",
                form(rs(&c)),
                ok(&c),
            )
        },
        {
            let c = c(json!({"iat": NOW - 10, "exp": NOW - 10 + MAX_LIFETIME + LEEWAY}));
            (
                "lifetime at the cap plus leeway",
                "default",
                form(rs(&c)),
                ok(&c),
            )
        },
        {
            let c = c(json!({"iat": "__absent__", "exp": NOW + MAX_LIFETIME + LEEWAY}));
            (
                "no iat: lifetime counted from now, at the cap plus leeway",
                "default",
                form(rs(&c)),
                ok(&c),
            )
        },
        {
            let c = c(json!({"iat": NOW - 10, "exp": NOW - 10 + SHORT_LIFETIME + LEEWAY}));
            (
                "short cap: lifetime at the cap plus leeway",
                "short",
                form(rs(&c)),
                ok(&c),
            )
        },
        {
            let c = c(json!({"iat": NOW - 100, "exp": NOW - LEEWAY + 1}));
            (
                "expired less than the leeway ago",
                "default",
                form(rs(&c)),
                ok(&c),
            )
        },
        {
            let c = c(json!({"nbf": NOW + LEEWAY}));
            ("nbf at now plus leeway", "default", form(rs(&c)), ok(&c))
        },
        {
            let c = c(json!({"iat": NOW + LEEWAY, "exp": NOW + 100}));
            ("iat at now plus leeway", "default", form(rs(&c)), ok(&c))
        },
        (
            "jti of 256 bytes",
            "default",
            form(rs(&jti(256))),
            ok(&jti(256)),
        ),
        // Refused: the signature, key and alg.
        (
            "signed by an unregistered key, no kid",
            "default",
            form(sign(stranger, Rs256, Some(TYP), None, &base)),
            refused_by(
                "NoValidKeysOrSignatures",
                "no_valid_keys_or_signatures: the signature does not verify",
            ),
        ),
        (
            "signed by an unregistered key claiming the rsa key's kid",
            "default",
            form(sign(stranger, Rs256, Some(TYP), Some("rsa-1"), &base)),
            refused_by(
                "NoValidKeysOrSignatures",
                "no_valid_keys_or_signatures: the signature does not verify",
            ),
        ),
        (
            "kid naming no registered key",
            "default",
            form(sign(rsa, Rs256, Some(TYP), Some("rsa-2"), &base)),
            refused_by(
                "UnknownKeyId",
                "no_valid_keys_or_signatures: no active key of this integration has kid 'rsa-2'",
            ),
        ),
        (
            "kid pinning: rs256 under the p256 key's kid",
            "default",
            form(sign(rsa, Rs256, Some(TYP), Some("ec-1"), &base)),
            refused_by(
                "AlgorithmKeyMismatch",
                "no_valid_keys_or_signatures: alg 'RS256' does not match",
            ),
        ),
        (
            "kid pinning: es256 under the rsa key's kid",
            "default",
            form(sign(ec, Es256, Some(TYP), Some("rsa-1"), &base)),
            refused_by(
                "AlgorithmKeyMismatch",
                "no_valid_keys_or_signatures: alg 'ES256' does not match",
            ),
        ),
        (
            "kid pinning: the p256 key's kid over another p256 key's signature",
            "default",
            form(sign(retired, Es256, Some(TYP), Some("ec-1"), &base)),
            refused_by(
                "NoValidKeysOrSignatures",
                "no_valid_keys_or_signatures: the signature does not verify",
            ),
        ),
        (
            "alg pinning: an ES384 header over the p256 key's signature",
            "default",
            form(raw(
                &format!(r#"{{"alg":"ES384","kid":"ec-1","typ":"{TYP}"}}"#),
                &base,
                ec,
                Es256,
            )),
            refused_by(
                "AlgorithmKeyMismatch",
                "no_valid_keys_or_signatures: alg 'ES384' does not match",
            ),
        ),
        (
            "alg pinning: a PS256 header over an RS256 signature",
            "default",
            form(raw(
                &format!(r#"{{"alg":"PS256","kid":"rsa-1","typ":"{TYP}"}}"#),
                &base,
                rsa,
                Rs256,
            )),
            refused_by(
                "NoValidKeysOrSignatures",
                "no_valid_keys_or_signatures: the signature does not verify",
            ),
        ),
        (
            "retired key under its own kid",
            "default",
            form(sign(retired, Es256, Some(TYP), Some("ec-retired"), &base)),
            refused_by(
                "UnknownKeyId",
                "no_valid_keys_or_signatures: no active key of this integration has kid 'ec-retired'",
            ),
        ),
        (
            "retired key without kid",
            "default",
            form(sign(retired, Es256, Some(TYP), None, &base)),
            refused_by(
                "NoValidKeysOrSignatures",
                "no_valid_keys_or_signatures: the signature does not verify",
            ),
        ),
        (
            "alg none",
            "default",
            form(format!(
                "{}.{}.",
                b64::encode(format!(r#"{{"alg":"none","typ":"{TYP}"}}"#)),
                b64::encode(base.to_string())
            )),
            refused_by("AlgorithmNone", "alg 'none' is refused"),
        ),
        (
            "hs256 keyed with the rsa public key",
            "default",
            form(format!("{hmac_input}.{}", b64::encode(mac.as_ref()))),
            refused_by("AlgorithmHmac", "alg 'HS256' is refused"),
        ),
        (
            "not a compact jws",
            "default",
            form("a.b".into()),
            refused_by("NotCompactJws", "assertion must be a compact JWS"),
        ),
        (
            "a jwe",
            "default",
            form("a.b.c.d.e".into()),
            refused_by("EncryptedAssertion", "assertion is a JWE"),
        ),
        // iss, sub and the form's client_id.
        (
            "iss missing",
            "default",
            form(rs(&c(json!({"iss": "__absent__"})))),
            refused_by("MissingClaim", "assertion has no 'iss' claim"),
        ),
        (
            "iss not a string",
            "default",
            form(rs(&c(json!({"iss": 7})))),
            refused_by("WrongType", "'iss' must be a non-empty string"),
        ),
        (
            "sub another client",
            "default",
            form(rs(&c(json!({"sub": DISABLED_CLIENT})))),
            refused(
                "ClientAssertionSubject",
                "client assertion refused: 'sub' must equal 'iss'",
            ),
        ),
        (
            "sub a user",
            "default",
            form(rs(&c(json!({"sub": USER})))),
            refused(
                "ClientAssertionSubject",
                "client assertion refused: 'sub' must equal 'iss'",
            ),
        ),
        (
            "sub missing",
            "default",
            form(rs(&c(json!({"sub": "__absent__"})))),
            refused(
                "ClientAssertionSubject",
                "client assertion refused: 'sub' must equal 'iss'",
            ),
        ),
        (
            "sub null",
            "default",
            form(rs(&c(json!({"sub": null})))),
            refused(
                "ClientAssertionSubject",
                "client assertion refused: 'sub' must equal 'iss'",
            ),
        ),
        (
            "iss and sub an unknown client",
            "default",
            form(rs(&c(
                json!({"iss": UNKNOWN_CLIENT, "sub": UNKNOWN_CLIENT}),
            ))),
            refused(
                "ClientAssertionUnknownClient",
                "client assertion refused: client authentication failed: unknown or disabled client",
            ),
        ),
        (
            "iss and sub a disabled integration, signed by its registered key",
            "default",
            form(rs(&c(
                json!({"iss": DISABLED_CLIENT, "sub": DISABLED_CLIENT}),
            ))),
            refused(
                "ClientAssertionUnknownClient",
                "client assertion refused: client authentication failed: unknown or disabled client",
            ),
        ),
        (
            "form client_id another client",
            "default",
            with(rs(&base), json!({"client_id": DISABLED_CLIENT})),
            refused(
                "ClientAssertionClientId",
                "client assertion refused: 'client_id' in the form must equal its 'iss'",
            ),
        ),
        (
            "form client_id the client, iss and sub another",
            "default",
            with(
                rs(&c(json!({"iss": UNKNOWN_CLIENT, "sub": UNKNOWN_CLIENT}))),
                json!({"client_id": CLIENT}),
            ),
            refused(
                "ClientAssertionClientId",
                "client assertion refused: 'client_id' in the form must equal its 'iss'",
            ),
        ),
        // aud.
        (
            "aud another server",
            "default",
            form(rs(&c(json!({"aud": "https://other.example"})))),
            refused_by("AudienceMismatch", "'aud' must contain"),
        ),
        (
            "aud missing",
            "default",
            form(rs(&c(json!({"aud": "__absent__"})))),
            refused_by("MissingClaim", "assertion has no 'aud' claim"),
        ),
        (
            "aud the bare host, accepted for grant assertions only",
            "default",
            form(rs(&c(json!({"aud": "auth.example.test"})))),
            refused_by("AudienceMismatch", "'aud' must contain"),
        ),
        (
            "aud the issuer with a trailing slash",
            "default",
            form(rs(&c(json!({"aud": format!("{ISSUER}/")})))),
            refused_by("AudienceMismatch", "'aud' must contain"),
        ),
        (
            "aud a number",
            "default",
            form(rs(&c(json!({"aud": 5})))),
            refused_by("WrongType", "'aud' must be"),
        ),
        (
            "strict: aud the token endpoint",
            "strict",
            form(rs(&c(json!({"aud": TOKEN_ENDPOINT})))),
            refused_by("AudienceMismatch", "'aud' must contain"),
        ),
        (
            "strict: aud an array of the token endpoint only",
            "strict",
            form(rs(&c(json!({"aud": [TOKEN_ENDPOINT]})))),
            refused_by("AudienceMismatch", "'aud' must contain"),
        ),
        // exp, the lifetime cap and the leeway.
        (
            "exp missing",
            "default",
            form(rs(&c(json!({"exp": "__absent__"})))),
            refused_by("MissingClaim", "assertion has no 'exp' claim"),
        ),
        (
            "exp a string",
            "default",
            form(rs(&c(json!({"exp": (NOW + 50).to_string()})))),
            refused_by("WrongType", "'exp' must be a number"),
        ),
        (
            "expired the leeway ago",
            "default",
            form(rs(&c(json!({"iat": NOW - 100, "exp": NOW - LEEWAY})))),
            refused_by("Expired", "assertion expired"),
        ),
        (
            "lifetime one second over the cap plus leeway",
            "default",
            form(rs(&c(
                json!({"iat": NOW - 10, "exp": NOW - 10 + MAX_LIFETIME + LEEWAY + 1}),
            ))),
            refused_by(
                "LifetimeTooLong",
                "assertion lifetime too long: 'exp' may be at most 3600 seconds",
            ),
        ),
        (
            "no iat: lifetime from now one second over the cap plus leeway",
            "default",
            form(rs(&c(
                json!({"iat": "__absent__", "exp": NOW + MAX_LIFETIME + LEEWAY + 1}),
            ))),
            refused_by(
                "LifetimeTooLong",
                "assertion lifetime too long: 'exp' may be at most 3600 seconds",
            ),
        ),
        (
            "short cap: lifetime one second over the cap plus leeway",
            "short",
            form(rs(&c(
                json!({"iat": NOW - 10, "exp": NOW - 10 + SHORT_LIFETIME + LEEWAY + 1}),
            ))),
            refused_by(
                "LifetimeTooLong",
                "assertion lifetime too long: 'exp' may be at most 300 seconds",
            ),
        ),
        (
            "short cap: an hour-long assertion",
            "short",
            form(rs(&c(json!({"iat": NOW, "exp": NOW + 3600})))),
            refused_by(
                "LifetimeTooLong",
                "assertion lifetime too long: 'exp' may be at most 300 seconds",
            ),
        ),
        (
            "nbf one second past now plus leeway",
            "default",
            form(rs(&c(json!({"nbf": NOW + LEEWAY + 1})))),
            refused_by("NotYetValid", "assertion not yet valid"),
        ),
        (
            "iat one second past now plus leeway",
            "default",
            form(rs(&c(json!({"iat": NOW + LEEWAY + 1, "exp": NOW + 100})))),
            refused_by("IssuedInFuture", "'iat' is in the future"),
        ),
        // jti.
        (
            "jti missing",
            "default",
            form(rs(&c(json!({"jti": "__absent__"})))),
            refused(
                "ClientAssertionJtiRequired",
                "client assertion refused: 'jti' is required",
            ),
        ),
        (
            "jti null",
            "default",
            form(rs(&c(json!({"jti": null})))),
            refused(
                "ClientAssertionJtiRequired",
                "client assertion refused: 'jti' is required",
            ),
        ),
        (
            "jti empty",
            "default",
            form(rs(&c(json!({"jti": ""})))),
            refused_by("WrongType", "'jti' must be a string of 1 to 256 bytes"),
        ),
        (
            "jti of 257 bytes",
            "default",
            form(rs(&jti(257))),
            refused_by("WrongType", "'jti' must be a string of 1 to 256 bytes"),
        ),
        // typ.
        (
            "typ at+jwt",
            "default",
            form(sign(rsa, Rs256, Some("at+jwt"), Some("rsa-1"), &base)),
            refused(
                "ClientAssertionTyp",
                "client assertion refused: 'typ' must be client-authentication+jwt or JWT, not 'at+jwt'",
            ),
        ),
        (
            "typ oauth-id-jag+jwt",
            "default",
            form(sign(
                rsa,
                Rs256,
                Some("oauth-id-jag+jwt"),
                Some("rsa-1"),
                &base,
            )),
            refused(
                "ClientAssertionTyp",
                "client assertion refused: 'typ' must be client-authentication+jwt or JWT, not 'oauth-id-jag+jwt'",
            ),
        ),
        (
            "typ JOSE",
            "default",
            form(sign(rsa, Rs256, Some("JOSE"), Some("rsa-1"), &base)),
            refused(
                "ClientAssertionTyp",
                "client assertion refused: 'typ' must be client-authentication+jwt or JWT, not 'JOSE'",
            ),
        ),
        (
            "typ with the application/ prefix",
            "default",
            form(sign(
                rsa,
                Rs256,
                Some("application/client-authentication+jwt"),
                Some("rsa-1"),
                &base,
            )),
            refused(
                "ClientAssertionTyp",
                "client assertion refused: 'typ' must be client-authentication+jwt or JWT, not 'application/",
            ),
        ),
        (
            "typ empty",
            "default",
            form(sign(rsa, Rs256, Some(""), Some("rsa-1"), &base)),
            refused(
                "ClientAssertionTyp",
                "client assertion refused: 'typ' must be client-authentication+jwt or JWT, not ''",
            ),
        ),
        (
            "typ not a string",
            "default",
            form(raw(
                r#"{"alg":"RS256","kid":"rsa-1","typ":5}"#,
                &base,
                rsa,
                Rs256,
            )),
            refused_by("WrongType", "'typ' must be a string"),
        ),
        // client_assertion_type and client_assertion.
        (
            "client_assertion_type the saml2 bearer one",
            "default",
            with(
                rs(&base),
                json!({"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"}),
            ),
            refused("ClientAssertionType", "client_assertion_type must be"),
        ),
        (
            "client_assertion_type the jwt bearer grant type",
            "default",
            with(
                rs(&base),
                json!({"client_assertion_type": "urn:ietf:params:oauth:grant-type:jwt-bearer"}),
            ),
            refused("ClientAssertionType", "client_assertion_type must be"),
        ),
        (
            "client_assertion_type missing",
            "default",
            with(rs(&base), json!({"client_assertion_type": null})),
            refused("ClientAssertionType", "client_assertion_type must be"),
        ),
        (
            "client_assertion missing",
            "default",
            with(rs(&base), json!({"client_assertion": null})),
            refused("ClientAssertionType", "client_assertion_type must be"),
        ),
        // Two methods in one request.
        (
            "Basic and an assertion",
            "default",
            with(rs(&base), json!({"authorization": basic(CLIENT, "secret")})),
            refused(
                "SeveralMethods",
                "use exactly one client authentication method",
            ),
        ),
        (
            "Basic, its client_id in the form, and an assertion",
            "default",
            with(
                rs(&base),
                json!({"authorization": basic(CLIENT, "secret"), "client_id": CLIENT}),
            ),
            refused(
                "SeveralMethods",
                "use exactly one client authentication method",
            ),
        ),
        (
            "client_id and client_secret in the form, and an assertion",
            "default",
            with(
                rs(&base),
                json!({"client_id": CLIENT, "client_secret": "secret"}),
            ),
            refused(
                "SeveralMethods",
                "use exactly one client authentication method",
            ),
        ),
        (
            "client_secret without client_id, and an assertion",
            "default",
            with(rs(&base), json!({"client_secret": "secret"})),
            refused(
                "SeveralMethods",
                "use exactly one client authentication method",
            ),
        ),
    ];

    let jwk = |key: &SigningKey, kid: &str| key.public_key().to_jwk(Some(kid), None);
    let registered = json!([
        {"jwk": jwk(rsa, "rsa-1"), "active": true},
        {"jwk": jwk(ec, "ec-1"), "active": true},
        {"jwk": jwk(retired, "ec-retired"), "active": false},
    ]);
    let policy = |audiences: &[&str], max: i64| json!({"accepted_audiences": audiences, "leeway_secs": LEEWAY, "max_lifetime_secs": max});
    let count = cases.len();
    let doc = json!({
        "about": "Client assertions (RFC 7523 section 2.2, private_key_jwt) in the client-authentication fields of a request, and the verdict each must get through read_client_credentials then authenticate_assertion: accept, with the client and the replay guard, or refuse, with the ClientAuthError (and the GrantError inside ClientAssertion) and how its description starts. The integration looked up is the one whose key is the credentials' client_id. Regenerate with: cargo run -p jwtgrant-core --example make_vectors",
        "now": NOW,
        "issuer": ISSUER,
        "policies": {
            "default": policy(&[ISSUER, TOKEN_ENDPOINT], MAX_LIFETIME),
            "strict": policy(&[ISSUER], MAX_LIFETIME),
            "short": policy(&[ISSUER, TOKEN_ENDPOINT], SHORT_LIFETIME),
        },
        "integrations": [
            {"key": CLIENT, "active": true, "require_jti": false, "keys": registered},
            {"key": DISABLED_CLIENT, "active": false, "require_jti": false, "keys": registered},
        ],
        "cases": cases.into_iter().map(|(name, policy, request, verdict)| {
            overridden(json!({"name": name, "policy": policy, "request": request}), verdict)
        }).collect::<Vec<_>>(),
    });
    std::fs::write(
        root.join("client_assertions.json"),
        serde_json::to_string_pretty(&doc).unwrap() + "\n",
    )
    .unwrap();
    count
}
