//! Client assertions (RFC 7523 section 2.2, `private_key_jwt`; PROTOCOL.md "Client
//! authentication"): the fuzzer picks the header (`alg`, `kid`, `typ`) and the claims
//! of a client assertion, the request's other client-authentication fields (the
//! `Authorization` header, the form's `client_id` and `client_secret`,
//! `client_assertion_type`, whether `client_assertion` is sent), the integration's
//! flags and the client policy (strict audience or not, the lifetime cap, the
//! leeway). The assertion is signed for real with the fixture keys, then read by
//! `client_auth::read_client_credentials` and checked by `authenticate_assertion`
//! against the integration its client id names, as the server does.
//!
//! A small reference model of the contract's rules, which shares no code with the
//! core, lists every rule the request breaks, each judged on its own:
//! - the core accepts exactly when the model finds no broken rule, and then
//!   authenticates the fixture integration as a confidential client with the replay
//!   guard the model predicts (`client-assertion:` + `iss`, the `jti`, `exp +
//!   leeway`);
//! - when the core refuses, its error names one of the broken rules (so the
//!   description says which rule failed), and its text stays bounded.
//!
//! The model lists the broken rules instead of predicting the one refusal so that it
//! need not copy the core's order of checks. One precedence is part of the contract
//! and modelled: a `client_secret` beside an assertion is two methods, even without
//! its `client_id`.
#![no_main]

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use arbitrary::{Arbitrary, Unstructured};
use jwtgrant_core::client_auth::{
    ClientAuthError, ClientCredentials, authenticate_assertion, read_client_credentials,
};
use jwtgrant_core::jws::MAX_ASSERTION_BYTES;
use jwtgrant_core::{AssertionPolicy, GrantError, Integration, JwsAlgorithm, SigningKey, b64};
use jwtgrant_fuzz::reference::numeric_date;
use jwtgrant_fuzz::{
    Fixtures, ISS, ISSUER, KID_EC, KID_RETIRED, KID_RSA, NOW, OTHER_ISS, TOKEN_ENDPOINT, USER,
    fixtures,
};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Number, Value};

// The contract's values, written out here rather than taken from the core.
const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const TYP_CLIENT_AUTH: &str = "client-authentication+jwt";
const KNOWN_ALGS: [&str; 9] = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
];

// ---------------------------------------------------------------------------------
// What the fuzzer chooses.
// ---------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Signer {
    Rsa(JwsAlgorithm),
    Ec,
    /// The integration's disabled key.
    Retired,
    /// A key the integration never registered.
    Stranger,
}

/// Weighted towards the integration's active keys.
impl<'a> Arbitrary<'a> for Signer {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        const RSA: [JwsAlgorithm; 6] = [
            JwsAlgorithm::Rs256,
            JwsAlgorithm::Rs384,
            JwsAlgorithm::Rs512,
            JwsAlgorithm::Ps256,
            JwsAlgorithm::Ps384,
            JwsAlgorithm::Ps512,
        ];
        Ok(match u.int_in_range(0u8..=11)? {
            i @ 0..=5 => Signer::Rsa(RSA[usize::from(i)]),
            6..=9 => Signer::Ec,
            10 => Signer::Retired,
            _ => Signer::Stranger,
        })
    }
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

/// The header's `alg`.
#[derive(Debug)]
enum HeaderAlg {
    /// The algorithm the signature was made with.
    Signed,
    /// Another known algorithm's name (or the same, by chance).
    Known(u8),
    /// `none`, in some case.
    None(u8),
    /// `HS256`, `hs384`, ...
    Hmac(u8),
    Raw(String),
    Leaf(Leaf),
    Absent,
}

impl<'a> Arbitrary<'a> for HeaderAlg {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u.int_in_range(0u8..=17)? {
            0..=11 => HeaderAlg::Signed,
            12 => HeaderAlg::Known(u.arbitrary()?),
            13 => HeaderAlg::None(u.arbitrary()?),
            14 => HeaderAlg::Hmac(u.arbitrary()?),
            15 => HeaderAlg::Raw(u.arbitrary()?),
            16 => HeaderAlg::Leaf(u.arbitrary()?),
            _ => HeaderAlg::Absent,
        })
    }
}

/// The header's `kid`.
#[derive(Debug)]
enum Kid {
    /// The kid of the signing key (when it has one; the stranger's is made up).
    Signer,
    Absent,
    Rsa,
    Ec,
    Retired,
    Other(String),
    Leaf(Leaf),
}

impl<'a> Arbitrary<'a> for Kid {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u.int_in_range(0u8..=11)? {
            0..=4 => Kid::Signer,
            5..=6 => Kid::Absent,
            7 => Kid::Rsa,
            8 => Kid::Ec,
            9 => Kid::Retired,
            10 => Kid::Other(u.arbitrary()?),
            _ => Kid::Leaf(u.arbitrary()?),
        })
    }
}

/// The header's `typ`.
#[derive(Debug)]
enum Typ {
    Absent,
    /// `client-authentication+jwt` with the letters whose bit is set upper-cased.
    ClientAuth(u8),
    /// `jwt` likewise.
    Jwt(u8),
    /// One of [`OTHER_TYPS`].
    Other(u8),
    Raw(String),
    Leaf(Leaf),
}

const OTHER_TYPS: [&str; 8] = [
    "at+jwt",
    "oauth-id-jag+jwt",
    "application/client-authentication+jwt",
    "JOSE",
    "",
    "client-authentication+jwt ",
    "client-authentication",
    "secevent+jwt",
];

impl<'a> Arbitrary<'a> for Typ {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u.int_in_range(0u8..=15)? {
            0..=3 => Typ::Absent,
            4..=8 => Typ::ClientAuth(u.arbitrary()?),
            9..=11 => Typ::Jwt(u.arbitrary()?),
            12 | 13 => Typ::Other(u.arbitrary()?),
            14 => Typ::Raw(u.arbitrary()?),
            _ => Typ::Leaf(u.arbitrary()?),
        })
    }
}

/// One claim's value.
#[derive(Debug)]
enum Claim {
    /// The value a well-made client assertion has.
    Good,
    /// A value of the claim's own kind, near the interesting edges.
    Plausible(Plausible),
    Absent,
    Leaf(Leaf),
    Array(Vec<Leaf>),
    Object(Vec<(String, Leaf)>),
}

/// Weighted towards good values: with eight claims and a header, uniform choices
/// would almost never make an assertion that passes every rule.
impl<'a> Arbitrary<'a> for Claim {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u.int_in_range(0u8..=23)? {
            0..=15 => Claim::Good,
            16..=19 => Claim::Plausible(u.arbitrary()?),
            20 => Claim::Absent,
            21 => Claim::Leaf(u.arbitrary()?),
            22 => Claim::Array(u.arbitrary()?),
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

/// The `Authorization` header.
#[derive(Debug)]
enum Authorization {
    Absent,
    /// `Basic base64(id:secret)`: a second method.
    Basic(FormClientId),
    /// Another scheme, which is not client authentication.
    Bearer,
    /// A Basic credential that does not decode (one of [`MALFORMED_BASIC`]).
    Malformed(u8),
}

impl<'a> Arbitrary<'a> for Authorization {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u.int_in_range(0u8..=15)? {
            0..=11 => Authorization::Absent,
            12 | 13 => Authorization::Basic(u.arbitrary()?),
            14 => Authorization::Bearer,
            _ => Authorization::Malformed(u.arbitrary()?),
        })
    }
}

/// `Basic` credentials that are not `base64(id:secret)`: bad base64, no colon, not
/// UTF-8, bad base64 under a lower-case scheme.
const MALFORMED_BASIC: [&str; 4] = ["Basic !!!", "Basic bm8tY29sb24=", "Basic /w==", "basic %%%"];

/// A client id in the form (or in Basic).
#[derive(Debug)]
enum FormClientId {
    Absent,
    /// The assertion's `iss`, when it is a string.
    Iss,
    /// The fixture integration.
    Client,
    /// An integration key nobody has.
    Other,
    Raw(String),
}

impl<'a> Arbitrary<'a> for FormClientId {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u.int_in_range(0u8..=11)? {
            0..=6 => FormClientId::Absent,
            7 | 8 => FormClientId::Iss,
            9 => FormClientId::Client,
            10 => FormClientId::Other,
            _ => FormClientId::Raw(u.arbitrary()?),
        })
    }
}

/// `client_assertion_type`.
#[derive(Debug)]
enum AssertionType {
    JwtBearer,
    Absent,
    /// One of [`OTHER_TYPES`].
    Other(u8),
    Raw(String),
}

const OTHER_TYPES: [&str; 4] = [
    "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
    "urn:ietf:params:oauth:grant-type:jwt-bearer",
    "URN:IETF:PARAMS:OAUTH:CLIENT-ASSERTION-TYPE:JWT-BEARER",
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer ",
];

impl<'a> Arbitrary<'a> for AssertionType {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(match u.int_in_range(0u8..=15)? {
            0..=12 => AssertionType::JwtBearer,
            13 => AssertionType::Absent,
            14 => AssertionType::Other(u.arbitrary()?),
            _ => AssertionType::Raw(u.arbitrary()?),
        })
    }
}

/// The request's client-authentication fields other than the assertion itself.
#[derive(Debug)]
struct Form {
    authorization: Authorization,
    client_id: FormClientId,
    client_secret: bool,
    assertion_type: AssertionType,
    assertion_sent: bool,
}

impl<'a> Arbitrary<'a> for Form {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Form {
            authorization: u.arbitrary()?,
            client_id: u.arbitrary()?,
            // `int_in_range` gives its lower bound once the input runs out, so the
            // common choice is the one at 0: no secret, the assertion sent.
            client_secret: u.int_in_range(0u8..=11)? == 11,
            assertion_type: u.arbitrary()?,
            assertion_sent: u.int_in_range(0u8..=15)? != 15,
        })
    }
}

/// The client policy and the integration's flags.
#[derive(Arbitrary, Debug)]
struct Setting {
    strict_audience: bool,
    /// Index into [`LIFETIMES`].
    lifetime: u8,
    /// Index into [`LEEWAYS`].
    leeway: u8,
    /// 15 of 16: the integration is disabled.
    disabled: u8,
    require_jti: bool,
}

const LIFETIMES: [i64; 4] = [3600, 300, 60, 86_400];
const LEEWAYS: [i64; 3] = [60, 0, 300];

#[derive(Arbitrary, Debug)]
struct Input {
    signer: Signer,
    alg: HeaderAlg,
    kid: Kid,
    typ: Typ,
    extra: Vec<(String, Leaf)>,
    iss: Claim,
    sub: Claim,
    aud: Claim,
    exp: Claim,
    nbf: Claim,
    iat: Claim,
    jti: Claim,
    scope: Claim,
    form: Form,
    setting: Setting,
}

// ---------------------------------------------------------------------------------
// Building the request.
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

/// `text` with the ASCII letters whose position's bit in `mask` is set upper-cased.
fn recase(text: &str, mask: u8) -> String {
    text.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask & (1 << (i % 8)) != 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

fn time(p: &Plausible) -> Value {
    // Mostly within a few hours of `now` (the lifetime caps are 1 min to 1 day),
    // sometimes anywhere in i32 range, sometimes at the i64 edges; sometimes as a
    // float with a fraction.
    let offset = match p.pick % 8 {
        0..=4 => i64::from(p.offset % 5_000),
        5 => i64::from(p.offset % 100_000),
        6 => i64::from(p.offset),
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

fn audience(b: u8) -> Value {
    Value::from(match b % 8 {
        0..=2 => ISSUER.to_owned(),
        3 | 4 => TOKEN_ENDPOINT.to_owned(),
        // Accepted in grant assertions, never in client assertions.
        5 => "auth.example.test".to_owned(),
        6 => format!("{ISSUER}/"),
        _ => "https://evil.example.test".to_owned(),
    })
}

/// A claim's value; `None` leaves it out. `iss` is the value already chosen for the
/// `iss` claim, which a good `sub` copies.
fn claim(name: &str, claim: &Claim, iss: Option<&Value>) -> Option<Value> {
    Some(match claim {
        Claim::Absent => return None,
        Claim::Leaf(l) => leaf(l),
        Claim::Array(items) => Value::Array(items.iter().map(leaf).collect()),
        Claim::Object(members) => {
            Value::Object(members.iter().map(|(k, v)| (k.clone(), leaf(v))).collect())
        }
        Claim::Good => match name {
            "iss" => Value::from(ISS),
            "sub" => iss.cloned().unwrap_or_else(|| Value::from(ISS)),
            "aud" => Value::from(ISSUER),
            "exp" => Value::from(NOW + 55),
            "nbf" | "iat" => Value::from(NOW - 5),
            "jti" => Value::from("8f1d2c3b-client-assertion"),
            // Client assertions carry no scope.
            _ => return None,
        },
        Claim::Plausible(p) => match name {
            "iss" => Value::from(match p.pick % 4 {
                0 | 1 => ISS.to_owned(),
                2 => OTHER_ISS.to_owned(),
                _ => ISS.to_ascii_uppercase(),
            }),
            "sub" => match p.pick % 4 {
                0 => Value::from(ISS),
                1 => Value::from(OTHER_ISS),
                2 => Value::from(USER),
                _ => Value::from(""),
            },
            "aud" => {
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
            _ => Value::from("signature"),
        },
    })
}

fn key_of(fx: &Fixtures, signer: Signer) -> (&SigningKey, JwsAlgorithm) {
    match signer {
        Signer::Rsa(alg) => (&fx.rsa, alg),
        Signer::Ec => (&fx.ec, JwsAlgorithm::Es256),
        Signer::Retired => (&fx.retired, JwsAlgorithm::Es256),
        Signer::Stranger => (&fx.stranger, JwsAlgorithm::Es256),
    }
}

fn header_alg(alg: &HeaderAlg, signed: JwsAlgorithm) -> Option<Value> {
    Some(match alg {
        HeaderAlg::Signed => Value::from(signed.as_str()),
        HeaderAlg::Known(i) => Value::from(KNOWN_ALGS[usize::from(*i) % KNOWN_ALGS.len()]),
        HeaderAlg::None(mask) => Value::from(recase("none", *mask)),
        HeaderAlg::Hmac(i) => Value::from(recase(
            ["hs256", "hs384", "hs512"][usize::from(*i % 3)],
            *i / 3,
        )),
        HeaderAlg::Raw(s) => Value::from(s.clone()),
        HeaderAlg::Leaf(l) => leaf(l),
        HeaderAlg::Absent => return None,
    })
}

fn header_kid(kid: &Kid, signer: Signer) -> Option<Value> {
    Some(match kid {
        Kid::Absent => return None,
        Kid::Signer => Value::from(match signer {
            Signer::Rsa(_) => KID_RSA,
            Signer::Ec => KID_EC,
            Signer::Retired => KID_RETIRED,
            Signer::Stranger => "stranger-1",
        }),
        Kid::Rsa => Value::from(KID_RSA),
        Kid::Ec => Value::from(KID_EC),
        Kid::Retired => Value::from(KID_RETIRED),
        Kid::Other(s) => Value::from(s.clone()),
        Kid::Leaf(l) => leaf(l),
    })
}

fn header_typ(typ: &Typ) -> Option<Value> {
    Some(match typ {
        Typ::Absent => return None,
        Typ::ClientAuth(mask) => Value::from(recase(TYP_CLIENT_AUTH, *mask)),
        Typ::Jwt(mask) => Value::from(recase("jwt", *mask)),
        Typ::Other(i) => Value::from(OTHER_TYPS[usize::from(*i) % OTHER_TYPS.len()]),
        Typ::Raw(s) => Value::from(s.clone()),
        Typ::Leaf(l) => leaf(l),
    })
}

fn form_client_id(choice: &FormClientId, iss: Option<&str>) -> Option<String> {
    match choice {
        FormClientId::Absent => None,
        FormClientId::Iss => Some(iss.unwrap_or(ISS).to_owned()),
        FormClientId::Client => Some(ISS.to_owned()),
        FormClientId::Other => Some(OTHER_ISS.to_owned()),
        FormClientId::Raw(s) => Some(s.clone()),
    }
}

/// Standard base64 with padding, for a Basic credential.
fn base64_standard(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A Basic user id as RFC 6749 2.3.1 wants it: form-urlencoded (only what matters
/// for the ids the fuzzer makes: `%`, `+`, `:` and non-ASCII are escaped).
fn form_urlencode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------
// The reference model.
// ---------------------------------------------------------------------------------

/// The rules of PROTOCOL.md's client authentication, as the model judges them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rule {
    /// `Authorization: Basic` that does not decode.
    MalformedBasic,
    /// Basic and a form `client_id` naming another client.
    BasicClientId,
    /// A form `client_secret` without `client_id` or Basic, and no assertion.
    SecretWithoutId,
    /// More than one of: Basic, a form `client_secret`, a client assertion.
    TwoMethods,
    /// `client_assertion_type` is not the JWT bearer one, or one of the pair is missing.
    AssertionType,
    /// Over the size cap.
    Size,
    /// The header's `alg` is missing, not a string, `none`, HMAC or unknown.
    Alg,
    /// The header's `kid` is not a string.
    KidType,
    /// The header's `typ`, when present, is not `client-authentication+jwt` or `JWT`.
    Typ,
    /// `iss` is missing or not a non-empty string.
    Iss,
    /// The form's `client_id` is not `iss`.
    FormClientId,
    /// `iss` names no active integration.
    UnknownClient,
    /// Not signed, under the header's `alg`, by an active key of the integration that
    /// the header's `kid` (when present) names.
    Signature,
    /// `sub` is not `iss`.
    Sub,
    /// `jti` is missing, or not a string of 1 to 256 bytes.
    Jti,
    /// `aud` holds no accepted audience (the issuer; the token endpoint unless strict).
    Aud,
    /// `exp` is missing, not a number, or past (with the leeway).
    Exp,
    /// `nbf` is not a number or in the future (with the leeway).
    Nbf,
    /// `iat` is not a number or in the future (with the leeway).
    Iat,
    /// `exp` is more than the cap plus the leeway after `iat` (or now).
    Lifetime,
    /// A detail of the shared verifier: `scope`, when present, must be a string.
    ScopeType,
}

/// What the model knows of the request.
struct Model<'a> {
    authorization: &'a Authorization,
    basic_id: Option<String>,
    form_client_id: Option<&'a str>,
    client_secret: bool,
    assertion_type: Option<&'a str>,
    /// The assertion, when sent: its length, header and claims.
    assertion: Option<(usize, &'a Map<String, Value>, &'a Map<String, Value>)>,
    signer: Signer,
    integration: &'a Integration,
    policy: &'a AssertionPolicy,
}

fn optional_member<'v>(map: &'v Map<String, Value>, name: &str) -> Option<&'v Value> {
    map.get(name).filter(|v| !v.is_null())
}

impl Model<'_> {
    /// Every rule the request breaks.
    fn broken(&self) -> BTreeSet<Rule> {
        let mut broken = BTreeSet::new();
        let mut rule = |rule: Rule, is_broken: bool| {
            if is_broken {
                broken.insert(rule);
            }
        };
        let basic = matches!(self.authorization, Authorization::Basic(_));
        rule(
            Rule::MalformedBasic,
            matches!(self.authorization, Authorization::Malformed(_)),
        );
        rule(
            Rule::BasicClientId,
            self.basic_id
                .as_deref()
                .is_some_and(|id| self.form_client_id.is_some_and(|f| f != id)),
        );
        rule(
            Rule::SecretWithoutId,
            self.client_secret
                && !basic
                && self.form_client_id.is_none()
                && self.assertion.is_none(),
        );
        let methods = usize::from(basic)
            + usize::from(self.client_secret)
            + usize::from(self.assertion.is_some());
        rule(Rule::TwoMethods, methods > 1);
        if self.assertion_type.is_none() && self.assertion.is_none() {
            // No client assertion at all: the other methods' business.
            return broken;
        }
        rule(
            Rule::AssertionType,
            self.assertion_type != Some(ASSERTION_TYPE) || self.assertion.is_none(),
        );
        let Some((len, header, claims)) = self.assertion else {
            return broken;
        };
        rule(Rule::Size, len > MAX_ASSERTION_BYTES);

        // The header.
        let alg = match header.get("alg") {
            Some(Value::String(alg)) if KNOWN_ALGS.contains(&alg.as_str()) => Some(alg.as_str()),
            _ => None,
        };
        rule(Rule::Alg, alg.is_none());
        let kid = optional_member(header, "kid");
        rule(Rule::KidType, kid.is_some_and(|kid| !kid.is_string()));
        rule(
            Rule::Typ,
            optional_member(header, "typ").is_some_and(|typ| match typ {
                Value::String(typ) => {
                    let typ = typ.to_ascii_lowercase();
                    typ != TYP_CLIENT_AUTH && typ != "jwt"
                }
                _ => true,
            }),
        );

        // iss, the form's client_id and the integration.
        let iss = match claims.get("iss") {
            Some(Value::String(iss)) if !iss.is_empty() => Some(iss.as_str()),
            _ => None,
        };
        rule(Rule::Iss, iss.is_none());
        rule(
            Rule::FormClientId,
            self.form_client_id.is_some_and(|id| Some(id) != iss),
        );
        rule(
            Rule::UnknownClient,
            iss.is_some_and(|iss| iss != self.integration.key || !self.integration.active),
        );

        // The signature: which registered active key made it, and does the header
        // name that key and its algorithm?
        let (signing_key, signed_alg) = key_of(fixtures(), self.signer);
        let signed_by = self
            .integration
            .keys
            .iter()
            .find(|k| k.active && &k.public_key == signing_key.public_key());
        let signature_ok = signed_by.is_some_and(|key| {
            alg == Some(signed_alg.as_str())
                && kid.is_none_or(|kid| kid.as_str() == Some(key.kid.as_str()))
        });
        rule(Rule::Signature, !signature_ok);

        // The claims.
        rule(
            Rule::Sub,
            !matches!((claims.get("sub"), iss), (Some(Value::String(sub)), Some(iss)) if sub == iss),
        );
        rule(
            Rule::Jti,
            !matches!(claims.get("jti"), Some(Value::String(jti)) if (1..=256).contains(&jti.len())),
        );
        let accepted = |aud: &str| self.policy.accepted_audiences.iter().any(|a| a == aud);
        rule(
            Rule::Aud,
            !match claims.get("aud") {
                Some(Value::String(aud)) => accepted(aud),
                Some(Value::Array(auds)) => {
                    auds.iter().all(Value::is_string)
                        && auds.iter().filter_map(Value::as_str).any(accepted)
                }
                _ => false,
            },
        );
        let now = i128::from(NOW);
        let leeway = i128::from(self.policy.leeway_secs);
        let exp = numeric_date(claims, "exp");
        let nbf = numeric_date(claims, "nbf");
        let iat = numeric_date(claims, "iat");
        rule(
            Rule::Exp,
            !matches!(exp, Ok(Some(exp)) if i128::from(exp) + leeway > now),
        );
        rule(
            Rule::Nbf,
            !matches!(nbf, Ok(nbf) if nbf.is_none_or(|nbf| i128::from(nbf) <= now + leeway)),
        );
        rule(
            Rule::Iat,
            !matches!(iat, Ok(iat) if iat.is_none_or(|iat| i128::from(iat) <= now + leeway)),
        );
        if let (Ok(Some(exp)), Ok(iat)) = (exp, iat) {
            let start = iat.map_or(now, i128::from);
            rule(
                Rule::Lifetime,
                i128::from(exp) - start > i128::from(self.policy.max_lifetime_secs) + leeway,
            );
        }
        rule(
            Rule::ScopeType,
            optional_member(claims, "scope").is_some_and(|scope| !scope.is_string()),
        );
        broken
    }
}

/// The rule a refusal names; `None` for an error these functions must never return.
fn rule_of(error: &ClientAuthError) -> Option<Rule> {
    use ClientAuthError as C;
    use GrantError as G;
    Some(match error {
        C::MalformedBasic => Rule::MalformedBasic,
        C::SeveralMethods => Rule::TwoMethods,
        C::ClientIdMismatch => Rule::BasicClientId,
        C::Missing => Rule::SecretWithoutId,
        C::ClientAssertionType => Rule::AssertionType,
        C::ClientAssertionClientId => Rule::FormClientId,
        C::ClientAssertionUnknownClient => Rule::UnknownClient,
        C::ClientAssertionSubject => Rule::Sub,
        C::ClientAssertionJtiRequired => Rule::Jti,
        C::ClientAssertionTyp(_) => Rule::Typ,
        C::ClientAssertion(grant) => match grant {
            G::AssertionTooLarge { .. } => Rule::Size,
            G::AlgorithmMissing
            | G::AlgorithmNone
            | G::AlgorithmHmac(_)
            | G::AlgorithmUnknown(_) => Rule::Alg,
            G::AlgorithmKeyMismatch(_) | G::UnknownKeyId(_) | G::NoValidKeysOrSignatures => {
                Rule::Signature
            }
            G::MissingClaim("iss") => Rule::Iss,
            G::MissingClaim("aud") | G::AudienceMismatch => Rule::Aud,
            G::MissingClaim("exp") | G::Expired => Rule::Exp,
            G::NotYetValid => Rule::Nbf,
            G::IssuedInFuture => Rule::Iat,
            G::LifetimeTooLong { .. } => Rule::Lifetime,
            G::JtiRequired => Rule::Jti,
            G::WrongType { name, .. } => match *name {
                "alg" => Rule::Alg,
                "kid" => Rule::KidType,
                "typ" => Rule::Typ,
                "iss" => Rule::Iss,
                "sub" => Rule::Sub,
                "jti" => Rule::Jti,
                "aud" => Rule::Aud,
                "exp" => Rule::Exp,
                "nbf" => Rule::Nbf,
                "iat" => Rule::Iat,
                "scope" => Rule::ScopeType,
                _ => return None,
            },
            _ => return None,
        },
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------
// Outcome counts, printed to stderr every 65536 inputs when JWTGRANT_FUZZ_STATS is
// set: how many inputs were accepted, and which rule refused the others.
// ---------------------------------------------------------------------------------

static RUNS: AtomicU64 = AtomicU64::new(0);
static ACCEPTED: AtomicU64 = AtomicU64::new(0);
static NOT_ASSERTION: AtomicU64 = AtomicU64::new(0);
static REFUSED: [AtomicU64; RULES.len()] = [const { AtomicU64::new(0) }; RULES.len()];

/// Every rule, in the order of [`Rule`]'s discriminants.
const RULES: [Rule; 21] = [
    Rule::MalformedBasic,
    Rule::BasicClientId,
    Rule::SecretWithoutId,
    Rule::TwoMethods,
    Rule::AssertionType,
    Rule::Size,
    Rule::Alg,
    Rule::KidType,
    Rule::Typ,
    Rule::Iss,
    Rule::FormClientId,
    Rule::UnknownClient,
    Rule::Signature,
    Rule::Sub,
    Rule::Jti,
    Rule::Aud,
    Rule::Exp,
    Rule::Nbf,
    Rule::Iat,
    Rule::Lifetime,
    Rule::ScopeType,
];

fn report_stats() {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    let runs = RUNS.fetch_add(1, Ordering::Relaxed) + 1;
    if runs.is_multiple_of(65_536)
        && *ENABLED.get_or_init(|| std::env::var_os("JWTGRANT_FUZZ_STATS").is_some())
    {
        let refused: Vec<String> = RULES
            .iter()
            .zip(&REFUSED)
            .map(|(rule, n)| format!("{rule:?} {}", n.load(Ordering::Relaxed)))
            .collect();
        eprintln!(
            "client_assertion: {runs} inputs, {} accepted, {} without an assertion, refused by: {}",
            ACCEPTED.load(Ordering::Relaxed),
            NOT_ASSERTION.load(Ordering::Relaxed),
            refused.join(", ")
        );
    }
}

// ---------------------------------------------------------------------------------
// The target.
// ---------------------------------------------------------------------------------

fuzz_target!(|input: Input| {
    report_stats();
    let fx = fixtures();
    let setting = &input.setting;
    let integration = fx.integration(setting.disabled % 16 != 15, true, setting.require_jti);
    let mut accepted_audiences = vec![ISSUER.to_owned()];
    if !setting.strict_audience {
        accepted_audiences.push(TOKEN_ENDPOINT.to_owned());
    }
    let policy = AssertionPolicy {
        accepted_audiences,
        leeway_secs: LEEWAYS[usize::from(setting.leeway) % LEEWAYS.len()],
        max_lifetime_secs: LIFETIMES[usize::from(setting.lifetime) % LIFETIMES.len()],
    };

    // The assertion.
    let mut claims = Map::new();
    for (name, value) in &input.extra {
        claims.insert(name.clone(), leaf(value));
    }
    let iss = claim("iss", &input.iss, None);
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
        match claim(name, c, iss.as_ref()) {
            Some(value) => claims.insert(name.to_owned(), value),
            None => claims.remove(name),
        };
    }
    let (key, signed_alg) = key_of(fx, input.signer);
    let mut header = Map::new();
    for (name, value) in [
        ("alg", header_alg(&input.alg, signed_alg)),
        ("kid", header_kid(&input.kid, input.signer)),
        ("typ", header_typ(&input.typ)),
    ] {
        if let Some(value) = value {
            header.insert(name.to_owned(), value);
        }
    }
    let header_json = serde_json::to_vec(&header).expect("serialise header");
    let claims_json = serde_json::to_vec(&claims).expect("serialise claims");
    let signing_input = format!(
        "{}.{}",
        b64::encode(&header_json),
        b64::encode(&claims_json)
    );
    let signature = key
        .sign(signed_alg, signing_input.as_bytes())
        .expect("signing with a key of the algorithm's type");
    let token = format!("{signing_input}.{}", b64::encode(signature));

    // The rest of the request.
    let form = &input.form;
    let iss_text = iss.as_ref().and_then(Value::as_str);
    let basic_id = match &form.authorization {
        Authorization::Basic(id) => {
            Some(form_client_id(id, iss_text).unwrap_or_else(|| ISS.to_owned()))
        }
        _ => None,
    };
    let authorization = match &form.authorization {
        Authorization::Absent => None,
        Authorization::Basic(_) => {
            let id = basic_id.as_deref().unwrap_or(ISS);
            let credential = format!("{}:secret", form_urlencode(id));
            Some(format!("Basic {}", base64_standard(credential.as_bytes())))
        }
        Authorization::Bearer => Some("Bearer abc.def.ghi".to_owned()),
        Authorization::Malformed(i) => {
            Some(MALFORMED_BASIC[usize::from(*i) % MALFORMED_BASIC.len()].to_owned())
        }
    };
    let client_id = form_client_id(&form.client_id, iss_text);
    let client_secret = form.client_secret.then_some("secret");
    let assertion_type = match &form.assertion_type {
        AssertionType::JwtBearer => Some(ASSERTION_TYPE.to_owned()),
        AssertionType::Absent => None,
        AssertionType::Other(i) => {
            Some(OTHER_TYPES[usize::from(*i) % OTHER_TYPES.len()].to_owned())
        }
        AssertionType::Raw(s) => Some(s.clone()),
    };
    let assertion = form.assertion_sent.then_some(token.as_str());

    // The model reads header and claims as the server will: after a JSON round trip.
    let header_read: Map<String, Value> = serde_json::from_slice(&header_json).expect("reparse");
    let claims_read: Map<String, Value> = serde_json::from_slice(&claims_json).expect("reparse");
    let model = Model {
        authorization: &form.authorization,
        basic_id: basic_id.clone(),
        form_client_id: client_id.as_deref(),
        client_secret: form.client_secret,
        assertion_type: assertion_type.as_deref(),
        assertion: assertion.map(|token| (token.len(), &header_read, &claims_read)),
        signer: input.signer,
        integration,
        policy: &policy,
    };
    let broken = model.broken();

    // The core, as the server runs it.
    let read = read_client_credentials(
        authorization.as_deref(),
        client_id.as_deref(),
        client_secret,
        assertion_type.as_deref(),
        assertion,
    );
    let outcome = match read {
        Ok(ClientCredentials::Assertion {
            client_id: read_id,
            assertion: read_assertion,
        }) => {
            assert_eq!(
                Some(read_assertion.as_str()),
                assertion,
                "assertion read back"
            );
            assert_eq!(
                Some(read_id.as_str()),
                iss_text,
                "the client id is the assertion's iss"
            );
            let found = (read_id == integration.key).then_some(integration);
            authenticate_assertion(&read_assertion, found, &policy, NOW)
        }
        Ok(other) => {
            // No client assertion: the other methods (fuzzed by authorization_request).
            assert!(
                assertion.is_none() && assertion_type.is_none(),
                "a client assertion was sent but read as {other:?}"
            );
            assert!(
                broken.is_empty(),
                "read as {other:?} though the model finds {broken:?}"
            );
            NOT_ASSERTION.fetch_add(1, Ordering::Relaxed);
            return;
        }
        Err(error) => Err(error),
    };
    let context = || {
        format!(
            "header: {}\nclaims: {}\nsigner: {:?}\nauthorization: {authorization:?}, client_id: {client_id:?}, \
             client_secret: {client_secret:?}, client_assertion_type: {assertion_type:?}, assertion sent: {}\n\
             integration active: {}, require_jti: {}, policy: {policy:?}",
            Value::Object(header_read.clone()),
            Value::Object(claims_read.clone()),
            input.signer,
            assertion.is_some(),
            integration.active,
            integration.require_jti,
        )
    };
    match outcome {
        Ok((client, guard)) => {
            assert!(
                broken.is_empty(),
                "ACCEPTED a client assertion that breaks {broken:?}\n{}",
                context()
            );
            ACCEPTED.fetch_add(1, Ordering::Relaxed);
            assert_eq!(client.client_id, ISS);
            assert!(client.confidential);
            assert_eq!(guard.issuer, format!("client-assertion:{ISS}"));
            assert_eq!(
                Some(&Value::from(guard.jti.clone())),
                claims_read.get("jti")
            );
            let exp = numeric_date(&claims_read, "exp")
                .ok()
                .flatten()
                .expect("an accepted assertion has exp");
            let remember_until =
                (i128::from(exp) + i128::from(policy.leeway_secs)).min(i128::from(i64::MAX)) as i64;
            assert_eq!(
                guard.remember_until, remember_until,
                "replay guard lifetime"
            );
        }
        Err(error) => {
            let description = error.to_string();
            assert!(
                description.chars().count() < 400,
                "description not bounded: {description}"
            );
            let rule = rule_of(&error);
            assert!(
                rule.is_some_and(|rule| broken.contains(&rule)),
                "refused with {error:?} ('{description}', rule {rule:?}) but the model finds {}\n{}",
                if broken.is_empty() {
                    "no broken rule".to_owned()
                } else {
                    format!("only {broken:?}")
                },
                context()
            );
            if let Some(rule) = rule {
                debug_assert_eq!(RULES[rule as usize], rule);
                REFUSED[rule as usize].fetch_add(1, Ordering::Relaxed);
            }
            // Details the refusal states must be true.
            match &error {
                ClientAuthError::ClientAssertion(GrantError::UnknownKeyId(kid)) => assert!(
                    !integration.keys.iter().any(|k| k.active && &k.kid == kid),
                    "UnknownKeyId for an active kid {kid}"
                ),
                ClientAuthError::ClientAssertion(GrantError::LifetimeTooLong { max_secs }) => {
                    assert_eq!(*max_secs, policy.max_lifetime_secs)
                }
                _ => {}
            }
        }
    }
});
