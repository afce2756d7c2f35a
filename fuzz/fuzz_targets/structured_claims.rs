//! Structured claims: the fuzzer picks every claim (`iss`, `sub`, `aud`, `exp`, `nbf`,
//! `iat`, `jti`, `scope`: absent, or any JSON type, or a plausible value near the
//! edges), extra claims, the signing key, the `kid` header, the integration's flags,
//! the form's `scope` and the user records. The payload is signed for real with
//! `jws::sign_compact`, then parsed, verified and decided.
//!
//! The result is compared with a small reference model of the rules, which shares no
//! code with the core. Two details the rules leave open follow the core's own choice:
//! the 256 limit on `jti` counts bytes, and a `null` `exp`/`nbf`/`iat` counts as absent.
//!
//! - verify succeeds exactly when the signature is by an active key the header's
//!   `kid` (if any) names, `iss` is the integration key, the integration is active,
//!   `aud` holds an accepted audience, `exp + leeway > now`, `nbf` and `iat` are not
//!   after `now + leeway`, `exp - (iat or now) <= max lifetime + leeway`, the claim
//!   types are right, and `jti` is present when the integration requires it;
//! - when it succeeds, every accessor returns what the claims said;
//! - `decide` succeeds exactly when rules 5 to 7 allow it, with the scopes, subject
//!   and replay guard the model predicts.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use jwtgrant_core::grants::jwt_bearer::decide;
use jwtgrant_core::jws::{MAX_ASSERTION_BYTES, sign_compact};
use jwtgrant_core::{
    AssertionPolicy, Consent, Integration, JwsAlgorithm, SigningKey, SubjectRecords, TokenSubject,
    UnverifiedAssertion, User,
};
use jwtgrant_fuzz::reference::numeric_date;
use jwtgrant_fuzz::{
    AUDIENCES, Fixtures, ISS, KID_EC, KID_RETIRED, KID_RSA, NOW, OTHER_ISS, OTHER_USER, USER,
    fixtures,
};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Number, Value};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

// ---------------------------------------------------------------------------------
// What the fuzzer chooses.
// ---------------------------------------------------------------------------------

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Signer {
    Rsa(RsaAlg),
    Ec,
    /// The integration's disabled key.
    Retired,
    /// A key the integration never registered.
    Stranger,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum RsaAlg {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
}

#[derive(Arbitrary, Debug)]
enum Kid {
    Absent,
    Rsa,
    Ec,
    Retired,
    Other(String),
}

/// A JSON scalar.
#[derive(Arbitrary, Debug)]
enum Leaf {
    Null,
    Bool(bool),
    Int(i64),
    Uint(u64),
    Float(f64),
    Str(String),
}

/// One claim's value.
#[derive(Debug)]
enum Claim {
    Absent,
    Leaf(Leaf),
    Array(Vec<Leaf>),
    Object(Vec<(String, Leaf)>),
    /// A value of the claim's own kind, near the interesting edges.
    Plausible(Plausible),
}

/// Weighted so that most inputs carry plausible claims: with eight claims, a uniform
/// choice would make an assertion that passes every rule (and so reaches the
/// accept-side checks and `decide`) very rare.
impl<'a> Arbitrary<'a> for Claim {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u.int_in_range(0u8..=19)? {
            0..=12 => Claim::Plausible(u.arbitrary()?),
            13..=15 => Claim::Absent,
            16 | 17 => Claim::Leaf(u.arbitrary()?),
            18 => Claim::Array(u.arbitrary()?),
            _ => Claim::Object(u.arbitrary()?),
        })
    }
}

#[derive(Arbitrary, Debug)]
struct Plausible {
    pick: u8,
    offset: i32,
    fraction: u8,
    list: Vec<u8>,
    len: u16,
}

#[derive(Arbitrary, Debug)]
enum FormScope {
    Absent,
    Plausible(Vec<u8>, u8),
    Raw(String),
}

#[derive(Debug)]
enum UserRecord {
    Absent,
    Known { active: bool },
    Other,
}

/// Weighted towards the known, active user, so that user tokens get granted often.
impl<'a> Arbitrary<'a> for UserRecord {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u.int_in_range(0u8..=7)? {
            0..=4 => UserRecord::Known { active: true },
            5 => UserRecord::Known { active: false },
            6 => UserRecord::Absent,
            _ => UserRecord::Other,
        })
    }
}

#[derive(Arbitrary, Debug)]
enum ConsentRecord {
    /// Consent to every scope word.
    All,
    /// Bit i set: consent to `CONSENT_WORDS[i]`.
    Some(u8),
    Absent,
}

#[derive(Arbitrary, Debug)]
struct Input {
    signer: Signer,
    kid: Kid,
    flags: u8,
    extra: Vec<(String, Leaf)>,
    iss: Claim,
    sub: Claim,
    aud: Claim,
    exp: Claim,
    nbf: Claim,
    iat: Claim,
    jti: Claim,
    scope: Claim,
    form_scope: FormScope,
    user: UserRecord,
    consent: ConsentRecord,
}

/// Scope words, weighted: the integration's three (`impersonation` most), one it may
/// not request, and an empty word.
const SCOPE_WORDS: [&str; 8] = [
    "signature",
    "impersonation",
    "extended",
    "impersonation",
    "signature",
    "impersonation",
    "admin",
    "",
];
/// The distinct words a consent may cover.
const CONSENT_WORDS: [&str; 4] = ["signature", "impersonation", "extended", "admin"];
const SEPARATORS: [&str; 4] = [" ", "  ", "\t", "\u{a0}"];

// ---------------------------------------------------------------------------------
// Building the payload.
// ---------------------------------------------------------------------------------

fn leaf(leaf: &Leaf) -> Value {
    match leaf {
        Leaf::Null => Value::Null,
        Leaf::Bool(b) => Value::Bool(*b),
        Leaf::Int(i) => Value::from(*i),
        Leaf::Uint(u) => Value::from(*u),
        // Non-finite floats have no JSON form.
        Leaf::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Leaf::Str(s) => Value::String(s.clone()),
    }
}

fn scope_string(list: &[u8], separator: u8) -> String {
    let separator = SEPARATORS[usize::from(separator) % SEPARATORS.len()];
    list.iter()
        .map(|b| SCOPE_WORDS[usize::from(*b) % SCOPE_WORDS.len()])
        .collect::<Vec<_>>()
        .join(separator)
}

fn time(p: &Plausible) -> Value {
    // Mostly within a few hours of `now`, sometimes anywhere in i32 range, sometimes
    // at the i64 edges; sometimes as a float with a fraction.
    let offset = match p.pick % 8 {
        0..=4 => i64::from(p.offset % 10_000),
        5 | 6 => i64::from(p.offset),
        _ => return Value::from(if p.offset < 0 { i64::MIN } else { i64::MAX }),
    };
    let seconds = NOW + offset;
    if p.pick & 0x80 != 0 {
        let fraction = f64::from(p.fraction) / 256.0;
        let value = if p.pick & 0x40 != 0 {
            seconds as f64 + fraction
        } else {
            seconds as f64 - fraction
        };
        Number::from_f64(value).map_or(Value::Null, Value::Number)
    } else {
        Value::from(seconds)
    }
}

fn plausible(name: &str, p: &Plausible) -> Value {
    match name {
        "iss" => Value::from(match p.pick % 4 {
            0 | 1 => ISS,
            2 => OTHER_ISS,
            _ => "",
        }),
        "sub" => Value::from(match p.pick % 4 {
            0 | 1 => USER,
            2 => OTHER_USER,
            _ => "",
        }),
        "aud" => {
            let audience = |b: u8| match b % 5 {
                i @ 0..=2 => Value::from(AUDIENCES[usize::from(i)]),
                3 => Value::from("https://auth.example.test/"),
                _ => Value::from("https://evil.example.test"),
            };
            if p.pick.is_multiple_of(2) {
                audience(p.pick / 2)
            } else {
                Value::Array(p.list.iter().map(|b| audience(*b)).collect())
            }
        }
        "exp" | "nbf" | "iat" => time(p),
        "jti" => {
            // 1 to 300 characters, around the 256-byte limit, in 1- or 2-byte
            // characters (the empty string comes from `Leaf::Str`).
            let len = 1 + usize::from(p.len % 300);
            let unit = if p.pick.is_multiple_of(2) { "j" } else { "é" };
            Value::from(unit.repeat(len))
        }
        "scope" => Value::from(scope_string(&p.list, p.pick)),
        _ => Value::Null,
    }
}

fn claim(name: &str, claim: &Claim) -> Option<Value> {
    Some(match claim {
        Claim::Absent => return None,
        Claim::Leaf(l) => leaf(l),
        Claim::Array(items) => Value::Array(items.iter().map(leaf).collect()),
        Claim::Object(members) => {
            Value::Object(members.iter().map(|(k, v)| (k.clone(), leaf(v))).collect())
        }
        Claim::Plausible(p) => plausible(name, p),
    })
}

fn signing(fx: &Fixtures, signer: Signer) -> (&SigningKey, JwsAlgorithm) {
    match signer {
        Signer::Rsa(alg) => (
            &fx.rsa,
            match alg {
                RsaAlg::Rs256 => JwsAlgorithm::Rs256,
                RsaAlg::Rs384 => JwsAlgorithm::Rs384,
                RsaAlg::Rs512 => JwsAlgorithm::Rs512,
                RsaAlg::Ps256 => JwsAlgorithm::Ps256,
                RsaAlg::Ps384 => JwsAlgorithm::Ps384,
                RsaAlg::Ps512 => JwsAlgorithm::Ps512,
            },
        ),
        Signer::Ec => (&fx.ec, JwsAlgorithm::Es256),
        Signer::Retired => (&fx.retired, JwsAlgorithm::Es256),
        Signer::Stranger => (&fx.stranger, JwsAlgorithm::Es256),
    }
}

// ---------------------------------------------------------------------------------
// The reference model.
// ---------------------------------------------------------------------------------

/// What a successful verification must report.
#[derive(Debug, PartialEq, Eq)]
struct ExpectedAssertion {
    subject: Option<String>,
    scopes: Option<Vec<String>>,
    jti: Option<String>,
    expires_at: i64,
    kid: String,
}

/// A space-separated scope string as a list, duplicates dropped (RFC 6749 3.3 uses
/// single spaces; any ASCII whitespace separates here).
fn scopes_of(scope: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in scope.split_ascii_whitespace() {
        if !out.iter().any(|w| w == word) {
            out.push(word.to_owned());
        }
    }
    out
}

/// Rules 1 to 5 (the part without a store), as the model sees them.
fn model_verify(
    token_len: usize,
    claims: &Map<String, Value>,
    signer_public: &SigningKey,
    header_kid: Option<&str>,
    integration: &Integration,
    policy: &AssertionPolicy,
) -> Result<ExpectedAssertion, String> {
    if token_len > MAX_ASSERTION_BYTES {
        return Err("too large".into());
    }
    // Rule 2: iss names this integration, which is active.
    match claims.get("iss") {
        Some(Value::String(iss)) if iss == &integration.key => {}
        _ => return Err("iss is not the integration key".into()),
    }
    if !integration.active {
        return Err("integration disabled".into());
    }
    // Rule 1: an active key of the integration made the signature, and the kid
    // header, when present, names that key.
    let kid = integration
        .keys
        .iter()
        .find(|k| {
            k.active
                && &k.public_key == signer_public.public_key()
                && header_kid.is_none_or(|kid| kid == k.kid)
        })
        .map(|k| k.kid.clone())
        .ok_or("no active key named by the header made the signature")?;

    let subject = match claims.get("sub") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(_) => return Err("sub has the wrong type".into()),
    };
    let jti = match claims.get("jti") {
        None | Some(Value::Null) => None,
        // The core counts the 256 in bytes.
        Some(Value::String(s)) if (1..=256).contains(&s.len()) => Some(s.clone()),
        Some(_) => return Err("jti has the wrong type or length".into()),
    };
    let scopes = match claims.get("scope") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(scopes_of(s)),
        Some(_) => return Err("scope has the wrong type".into()),
    };
    // Rule 3.
    let accepted = |aud: &str| policy.accepted_audiences.iter().any(|a| a == aud);
    match claims.get("aud") {
        Some(Value::String(aud)) if accepted(aud) => {}
        Some(Value::Array(auds))
            if auds.iter().all(Value::is_string)
                && auds.iter().filter_map(Value::as_str).any(accepted) => {}
        _ => return Err("aud has no accepted audience".into()),
    }
    // Rule 4, in exact (i128) arithmetic.
    let exp = numeric_date(claims, "exp")?.ok_or("exp missing")?;
    let nbf = numeric_date(claims, "nbf")?;
    let iat = numeric_date(claims, "iat")?;
    let now = i128::from(NOW);
    let leeway = i128::from(policy.leeway_secs);
    if i128::from(exp) + leeway <= now {
        return Err("expired".into());
    }
    if nbf.is_some_and(|nbf| i128::from(nbf) > now + leeway) {
        return Err("not yet valid".into());
    }
    if iat.is_some_and(|iat| i128::from(iat) > now + leeway) {
        return Err("issued in the future".into());
    }
    let start = iat.map_or(now, i128::from);
    if i128::from(exp) - start > i128::from(policy.max_lifetime_secs) + leeway {
        return Err("lifetime too long".into());
    }
    // Rule 5 without the store.
    if integration.require_jti && jti.is_none() {
        return Err("jti required".into());
    }
    Ok(ExpectedAssertion {
        subject,
        scopes,
        jti,
        expires_at: exp,
        kid,
    })
}

/// What a successful decision must hold.
#[derive(Debug, PartialEq, Eq)]
struct ExpectedDecision {
    subject: TokenSubject,
    scopes: Vec<String>,
    replay: Option<(String, i64)>,
}

/// Rules 5 to 7, as the model sees them.
fn model_decide(
    assertion: &ExpectedAssertion,
    form_scope: Option<&str>,
    integration: &Integration,
    user: Option<&User>,
    consent: Option<&Consent>,
    leeway: i64,
) -> Result<ExpectedDecision, String> {
    // Rule 7: the form's scope may only narrow the claim's.
    let form = form_scope.map(scopes_of);
    let scopes = match (&assertion.scopes, form) {
        (Some(claim), Some(form)) => {
            if !form.iter().all(|s| claim.contains(s)) {
                return Err("form scope beyond the assertion's".into());
            }
            form
        }
        (Some(claim), None) => claim.clone(),
        (None, Some(form)) => form,
        (None, None) => Vec::new(),
    };
    if !scopes.iter().all(|s| integration.scopes.contains(s)) {
        return Err("scope not allowed for the integration".into());
    }
    // Rule 6.
    let subject = match &assertion.subject {
        Some(sub) => {
            let user = user.filter(|u| &u.id == sub).ok_or("user not found")?;
            if !user.active {
                return Err("user disabled".into());
            }
            if !scopes.iter().any(|s| s == "impersonation") {
                return Err("impersonation missing".into());
            }
            if !scopes
                .iter()
                .all(|s| consent.is_some_and(|c| c.scopes.contains(s)))
            {
                return Err("consent missing".into());
            }
            TokenSubject::User(sub.clone())
        }
        None if integration.allow_application_tokens => TokenSubject::Application,
        None => return Err("application tokens not allowed".into()),
    };
    let remember_until =
        (i128::from(assertion.expires_at) + i128::from(leeway)).min(i128::from(i64::MAX)) as i64;
    Ok(ExpectedDecision {
        subject,
        scopes,
        replay: assertion.jti.clone().map(|jti| (jti, remember_until)),
    })
}

// ---------------------------------------------------------------------------------
// Outcome counts, printed to stderr every 65536 inputs when JWTGRANT_FUZZ_STATS is
// set: how many inputs reach a verified assertion and a granted decision.
// ---------------------------------------------------------------------------------

static RUNS: AtomicU64 = AtomicU64::new(0);
static VERIFIED: AtomicU64 = AtomicU64::new(0);
static GRANTED: AtomicU64 = AtomicU64::new(0);

fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

fn report_stats() {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    let runs = RUNS.fetch_add(1, Ordering::Relaxed) + 1;
    if runs.is_multiple_of(65_536)
        && *ENABLED.get_or_init(|| std::env::var_os("JWTGRANT_FUZZ_STATS").is_some())
    {
        eprintln!(
            "structured_claims: {runs} inputs, {} verified, {} granted",
            VERIFIED.load(Ordering::Relaxed),
            GRANTED.load(Ordering::Relaxed)
        );
    }
}

// ---------------------------------------------------------------------------------
// The target.
// ---------------------------------------------------------------------------------

fuzz_target!(|input: Input| {
    report_stats();
    let fx = fixtures();
    let integration = fx.integration(
        input.flags % 16 != 15,
        input.flags & 1 != 0,
        input.flags & 2 != 0,
    );
    let policy = &fx.policy;

    let mut claims = Map::new();
    for (name, value) in &input.extra {
        claims.insert(name.clone(), leaf(value));
    }
    for (name, c) in [
        ("iss", &input.iss),
        ("sub", &input.sub),
        ("aud", &input.aud),
        ("exp", &input.exp),
        ("nbf", &input.nbf),
        ("iat", &input.iat),
        ("jti", &input.jti),
        ("scope", &input.scope),
    ] {
        match claim(name, c) {
            Some(value) => claims.insert(name.to_owned(), value),
            None => claims.remove(name),
        };
    }
    let header_kid: Option<String> = match &input.kid {
        Kid::Absent => None,
        Kid::Rsa => Some(KID_RSA.into()),
        Kid::Ec => Some(KID_EC.into()),
        Kid::Retired => Some(KID_RETIRED.into()),
        Kid::Other(kid) => Some(kid.clone()),
    };
    let (key, alg) = signing(fx, input.signer);
    let token = sign_compact(key, alg, Some("JWT"), header_kid.as_deref(), &claims)
        .expect("signing with a key of the algorithm's type");

    // The model reads the claims as the server will: after a JSON round trip.
    let reparsed: Map<String, Value> =
        serde_json::from_slice(&serde_json::to_vec(&claims).expect("serialise claims"))
            .expect("reparse claims");
    let expected = model_verify(
        token.len(),
        &reparsed,
        key,
        header_kid.as_deref(),
        integration,
        policy,
    );
    let actual = UnverifiedAssertion::parse(&token).and_then(|u| {
        assert_eq!(u.kid(), header_kid.as_deref(), "kid header read back");
        u.verify(integration, policy, NOW)
    });

    let (expected, verified) = match (expected, actual) {
        (Err(_), Err(_)) => return,
        (Err(why), Ok(verified)) => panic!(
            "verify ACCEPTED an assertion the rules refuse ({why}): {verified:?}\nclaims: {}\nkid: {header_kid:?}, signer: {:?}",
            Value::Object(reparsed),
            input.signer
        ),
        (Ok(expected), Err(error)) => panic!(
            "verify refused an assertion the rules accept: {error}\nexpected: {expected:?}\nclaims: {}\nkid: {header_kid:?}, signer: {:?}",
            Value::Object(reparsed),
            input.signer
        ),
        (Ok(expected), Ok(verified)) => (expected, verified),
    };
    let got = ExpectedAssertion {
        subject: verified.subject().map(str::to_owned),
        scopes: verified.scopes().map(<[String]>::to_vec),
        jti: verified.jti().map(str::to_owned),
        expires_at: verified.expires_at(),
        kid: verified.kid().to_owned(),
    };
    assert_eq!(verified.issuer(), ISS);
    count(&VERIFIED);
    assert_eq!(got, expected, "verified assertion differs from the claims");

    // Rules 5 to 7.
    let form_scope = match &input.form_scope {
        FormScope::Absent => None,
        FormScope::Plausible(list, separator) => Some(scope_string(list, *separator)),
        FormScope::Raw(raw) => Some(raw.clone()),
    };
    let user = match input.user {
        UserRecord::Absent => None,
        UserRecord::Known { active } => Some(User {
            id: USER.into(),
            active,
        }),
        UserRecord::Other => Some(User {
            id: OTHER_USER.into(),
            active: true,
        }),
    };
    let consent = match input.consent {
        ConsentRecord::Absent => None,
        ConsentRecord::All => Some(Consent {
            scopes: CONSENT_WORDS.iter().map(|s| (*s).to_owned()).collect(),
        }),
        ConsentRecord::Some(bits) => Some(Consent {
            scopes: CONSENT_WORDS
                .iter()
                .enumerate()
                .filter(|(i, _)| bits & (1 << i) != 0)
                .map(|(_, s)| (*s).to_owned())
                .collect(),
        }),
    };
    let records = SubjectRecords {
        user: user.as_ref(),
        consent: consent.as_ref(),
    };
    let decision = decide(
        &verified,
        form_scope.as_deref(),
        integration,
        records,
        policy.leeway_secs,
        |scopes| {
            format!(
                "https://auth.example.test/consent?scope={}",
                scopes.join("+")
            )
        },
    );
    let expected_decision = model_decide(
        &expected,
        form_scope.as_deref(),
        integration,
        user.as_ref(),
        consent.as_ref(),
        policy.leeway_secs,
    );
    match (expected_decision, decision) {
        (Err(_), Err(error)) => {
            let _ = error.to_string();
            let _ = error.code();
        }
        (Err(why), Ok(decision)) => {
            panic!(
                "decide GRANTED what the rules refuse ({why}): {decision:?}\nassertion: {expected:?}, form scope: {form_scope:?}, user: {user:?}, consent: {consent:?}"
            )
        }
        (Ok(want), Err(error)) => {
            panic!(
                "decide refused what the rules grant: {error}\nexpected: {want:?}\nassertion: {expected:?}, form scope: {form_scope:?}, user: {user:?}, consent: {consent:?}"
            )
        }
        (Ok(want), Ok(decision)) => {
            count(&GRANTED);
            assert_eq!(decision.client_id(), ISS);
            assert_eq!(decision.subject(), &want.subject);
            assert_eq!(decision.scopes(), want.scopes.as_slice());
            assert!(
                decision
                    .scopes()
                    .iter()
                    .all(|s| integration.scopes.contains(s)),
                "granted a scope the integration may not have"
            );
            let subject_claim = match &want.subject {
                // An integration's own assertion never names a workload.
                TokenSubject::User(id) | TokenSubject::Workload(id) => id.as_str(),
                TokenSubject::Application => ISS,
            };
            assert_eq!(decision.subject_claim(), subject_claim);
            let replay = decision.replay_guard().map(|g| {
                assert_eq!(g.issuer, ISS);
                (g.jti.clone(), g.remember_until)
            });
            assert_eq!(replay, want.replay, "replay guard");
        }
    }
});
