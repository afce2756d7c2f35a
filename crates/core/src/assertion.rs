//! The assertion verifier: rules 1 to 5 of PROTOCOL.md (RFC 7523 section 3, RFC 8725).
//! Its output, [`VerifiedAssertion`], can only be built here, and the grant decision
//! takes nothing else.

use serde_json::{Map, Value};

use crate::error::GrantError;
use crate::jws::{CompactJws, truncate};
use crate::model::{Integration, IntegrationKey, split_scopes};

/// What the server accepts, fixed by its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionPolicy {
    /// Audiences an assertion's `aud` may name (rule 3): the issuer URL, the token
    /// endpoint URL, the bare `host[:port]` and configured extras.
    pub accepted_audiences: Vec<String>,
    /// Clock leeway in seconds (rule 4).
    pub leeway_secs: i64,
    /// The longest an assertion may live, from `iat` (or now) to `exp` (rule 4).
    pub max_lifetime_secs: i64,
}

/// An assertion whose structure and header are sound but whose signature and claims
/// have not been checked. Its `iss` tells the adapter which integration to load.
#[derive(Debug, Clone)]
pub struct UnverifiedAssertion<'a> {
    jws: CompactJws<'a>,
    issuer: String,
}

/// Proof that an assertion passed rules 1 to 4 and the `jti` requirement of rule 5.
/// Only [`UnverifiedAssertion::verify`] makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    issuer: String,
    subject: Option<String>,
    scopes: Option<Vec<String>>,
    jti: Option<String>,
    expires_at: i64,
    kid: String,
}

impl VerifiedAssertion {
    /// The integration key that signed it.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The user it asks to act as; `None` for an application token.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// The scopes of its `scope` claim, when it has one.
    pub fn scopes(&self) -> Option<&[String]> {
        self.scopes.as_deref()
    }

    /// Its `jti`, when it has one.
    pub fn jti(&self) -> Option<&str> {
        self.jti.as_deref()
    }

    /// Its `exp`.
    pub fn expires_at(&self) -> i64 {
        self.expires_at
    }

    /// The id of the key that verified it.
    pub fn kid(&self) -> &str {
        &self.kid
    }
}

impl<'a> UnverifiedAssertion<'a> {
    /// Parses a compact JWS assertion and reads its `iss` (rule 1, and the lookup key
    /// for rule 2).
    pub fn parse(assertion: &'a str) -> Result<Self, GrantError> {
        let jws = CompactJws::parse(assertion)?;
        let issuer = match jws.payload().get("iss") {
            Some(Value::String(iss)) if !iss.is_empty() => iss.clone(),
            None | Some(Value::Null) => return Err(GrantError::MissingClaim("iss")),
            Some(_) => return Err(wrong_type("iss", "a non-empty string")),
        };
        Ok(UnverifiedAssertion { jws, issuer })
    }

    /// The `iss` claim: the integration key to look up.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The `typ` header, when present.
    pub fn typ(&self) -> Option<&str> {
        self.jws.header().typ.as_deref()
    }

    /// The `kid` header, when present.
    pub fn kid(&self) -> Option<&str> {
        self.jws.header().kid.as_deref()
    }

    /// Checks the signature against `integration`'s keys and the claims against
    /// `policy` at time `now` (Unix seconds).
    pub fn verify(
        self,
        integration: &Integration,
        policy: &AssertionPolicy,
        now: i64,
    ) -> Result<VerifiedAssertion, GrantError> {
        if integration.key != self.issuer {
            return Err(GrantError::IssuerNotFound);
        }
        if !integration.active {
            return Err(GrantError::IntegrationDisabled);
        }
        let rules = ClaimRules {
            accepted_audiences: &policy.accepted_audiences,
            leeway_secs: policy.leeway_secs,
            max_lifetime_secs: policy.max_lifetime_secs,
            require_jti: integration.require_jti,
        };
        self.verify_with_keys(&integration.keys, &rules, now)
            .map(|(verified, _)| verified)
    }

    /// Checks the signature against `keys` (only the active ones; `kid` picks among
    /// them, the `alg` must suit the key type) and the claims against `rules` at
    /// `now`: the rules every issuer's assertions share. Returns the claims too, for
    /// the rules an issuer's policy adds.
    pub(crate) fn verify_with_keys(
        self,
        keys: &[IntegrationKey],
        rules: &ClaimRules<'_>,
        now: i64,
    ) -> Result<(VerifiedAssertion, Map<String, Value>), GrantError> {
        let kid = self.verify_signature(keys)?;
        let claims = self.jws.into_payload();
        let verified = check_claims(&claims, self.issuer, kid, rules, now)?;
        Ok((verified, claims))
    }

    /// The header's `alg`.
    pub(crate) fn algorithm(&self) -> crate::JwsAlgorithm {
        self.jws.header().alg
    }

    fn verify_signature(&self, keys: &[IntegrationKey]) -> Result<String, GrantError> {
        let header = self.jws.header();
        let active = keys.iter().filter(|key| key.active);
        let candidates: Vec<_> = match &header.kid {
            Some(kid) => {
                let named: Vec<_> = active.filter(|key| &key.kid == kid).collect();
                if named.is_empty() {
                    return Err(GrantError::UnknownKeyId(truncate(kid)));
                }
                named
            }
            None => active.collect(),
        };
        let suitable: Vec<_> = candidates
            .into_iter()
            .filter(|key| header.alg.key_type_allowed(key.public_key.key_type()))
            .collect();
        if suitable.is_empty() {
            return Err(GrantError::AlgorithmKeyMismatch(
                header.alg.as_str().to_owned(),
            ));
        }
        suitable
            .into_iter()
            .find(|key| {
                key.public_key
                    .verify(header.alg, self.jws.signing_input(), self.jws.signature())
            })
            .map(|key| key.kid.clone())
            .ok_or(GrantError::NoValidKeysOrSignatures)
    }
}

/// The claim rules of one issuer: the server's policy for integrations, a trusted
/// issuer's own where it sets them.
pub(crate) struct ClaimRules<'a> {
    pub(crate) accepted_audiences: &'a [String],
    pub(crate) leeway_secs: i64,
    pub(crate) max_lifetime_secs: i64,
    pub(crate) require_jti: bool,
}

fn check_claims(
    claims: &Map<String, Value>,
    issuer: String,
    kid: String,
    policy: &ClaimRules<'_>,
    now: i64,
) -> Result<VerifiedAssertion, GrantError> {
    let subject = match claims.get("sub") {
        None | Some(Value::Null) => None,
        Some(Value::String(sub)) if !sub.is_empty() => Some(sub.clone()),
        Some(_) => return Err(wrong_type("sub", "a non-empty string or null")),
    };
    let expires_at = numeric_date(claims, "exp")?.ok_or(GrantError::MissingClaim("exp"))?;
    let not_before = numeric_date(claims, "nbf")?;
    let issued_at = numeric_date(claims, "iat")?;
    let jti = match claims.get("jti") {
        None | Some(Value::Null) => None,
        Some(Value::String(jti)) if !jti.is_empty() && jti.len() <= 256 => Some(jti.clone()),
        Some(_) => return Err(wrong_type("jti", "a string of 1 to 256 bytes")),
    };
    let scopes = match claims.get("scope") {
        None | Some(Value::Null) => None,
        Some(Value::String(scope)) => Some(split_scopes(scope)),
        Some(_) => return Err(wrong_type("scope", "a space-separated string")),
    };

    // Rule 3: the audience.
    let audience_ok = match claims.get("aud") {
        None | Some(Value::Null) => return Err(GrantError::MissingClaim("aud")),
        Some(Value::String(aud)) => policy.accepted_audiences.iter().any(|a| a == aud),
        Some(Value::Array(auds)) => {
            let mut any = false;
            for aud in auds {
                let Value::String(aud) = aud else {
                    return Err(wrong_type("aud", "a string or an array of strings"));
                };
                any |= policy.accepted_audiences.iter().any(|a| a == aud);
            }
            any
        }
        Some(_) => return Err(wrong_type("aud", "a string or an array of strings")),
    };
    if !audience_ok {
        return Err(GrantError::AudienceMismatch);
    }

    // Rule 4: the times.
    let leeway = policy.leeway_secs;
    if now >= expires_at.saturating_add(leeway) {
        return Err(GrantError::Expired);
    }
    if not_before.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
        return Err(GrantError::NotYetValid);
    }
    if issued_at.is_some_and(|iat| iat > now.saturating_add(leeway)) {
        return Err(GrantError::IssuedInFuture);
    }
    let lifetime_start = issued_at.unwrap_or(now);
    if expires_at.saturating_sub(lifetime_start) > policy.max_lifetime_secs.saturating_add(leeway) {
        return Err(GrantError::LifetimeTooLong {
            max_secs: policy.max_lifetime_secs,
        });
    }

    // Rule 5, the part that needs no store.
    if policy.require_jti && jti.is_none() {
        return Err(GrantError::JtiRequired);
    }

    Ok(VerifiedAssertion {
        issuer,
        subject,
        scopes,
        jti,
        expires_at,
        kid,
    })
}

/// Reads a NumericDate (RFC 7519 section 2): a JSON number of seconds, fractions
/// allowed and truncated; `null` counts as absent, like the other optional claims.
/// Anything else is a type error.
fn numeric_date(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<i64>, GrantError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(number)) => number
            .as_i64()
            .or_else(|| number.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| wrong_type(name, "a number of seconds since the epoch")),
        Some(_) => Err(wrong_type(name, "a number of seconds since the epoch")),
    }
}

fn wrong_type(name: &'static str, expected: &'static str) -> GrantError {
    GrantError::WrongType { name, expected }
}
