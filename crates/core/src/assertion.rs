//! The assertion verifier: rules 1 to 5 of PROTOCOL.md (RFC 7523 section 3, RFC 8725).
//! Its output, [`VerifiedAssertion`], can only be built here, and the grant decision
//! takes nothing else.

use serde_json::{Map, Value};

use crate::error::GrantError;
use crate::explain::{Explanation, Refusal};
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
    pub fn algorithm(&self) -> crate::JwsAlgorithm {
        self.jws.header().alg
    }

    /// Rule 1's key and signature, in three steps the server runs in a row.
    fn verify_signature(&self, keys: &[IntegrationKey]) -> Result<String, GrantError> {
        let named = self.keys_named(keys)?;
        let suitable = self.keys_for_algorithm(named)?;
        self.key_that_verifies(&suitable)
    }

    /// The active keys the `kid` names (all active keys when it names none).
    fn keys_named<'k>(
        &self,
        keys: &'k [IntegrationKey],
    ) -> Result<Vec<&'k IntegrationKey>, GrantError> {
        let active = keys.iter().filter(|key| key.active);
        match &self.jws.header().kid {
            Some(kid) => {
                let named: Vec<_> = active.filter(|key| &key.kid == kid).collect();
                if named.is_empty() {
                    return Err(GrantError::UnknownKeyId(truncate(kid)));
                }
                Ok(named)
            }
            None => Ok(active.collect()),
        }
    }

    /// Of `candidates`, the keys whose type suits the header's `alg`.
    fn keys_for_algorithm<'k>(
        &self,
        candidates: Vec<&'k IntegrationKey>,
    ) -> Result<Vec<&'k IntegrationKey>, GrantError> {
        let alg = self.jws.header().alg;
        let suitable: Vec<_> = candidates
            .into_iter()
            .filter(|key| alg.key_type_allowed(key.public_key.key_type()))
            .collect();
        if suitable.is_empty() {
            return Err(GrantError::AlgorithmKeyMismatch(alg.as_str().to_owned()));
        }
        Ok(suitable)
    }

    /// The id of the first of `suitable` that verifies the signature.
    fn key_that_verifies(&self, suitable: &[&IntegrationKey]) -> Result<String, GrantError> {
        let alg = self.jws.header().alg;
        suitable
            .iter()
            .find(|key| {
                key.public_key
                    .verify(alg, self.jws.signing_input(), self.jws.signature())
            })
            .map(|key| key.kid.clone())
            .ok_or(GrantError::NoValidKeysOrSignatures)
    }

    /// Runs rules 1 (key and signature) to 5 (`jti` present) on the assertion as
    /// [`Self::verify_with_keys`] does, recording each in `explanation` instead of
    /// stopping at the first that fails. The claim rules run even when the signature
    /// fails, to show everything that is wrong; the result is the verified assertion
    /// and its claims only when every rule held.
    pub(crate) fn explain_with_keys<E: Refusal>(
        &self,
        keys: &[IntegrationKey],
        rules: &ClaimRules<'_>,
        now: i64,
        explanation: &mut Explanation,
        refusal: impl Fn(GrantError) -> E,
    ) -> Option<(VerifiedAssertion, Map<String, Value>)> {
        let start = explanation.checks().len();
        let alg = self.jws.header().alg.as_str();
        let kid =
            match explanation.check("key_id", self.keys_named(keys).map_err(&refusal), |named| {
                match &self.jws.header().kid {
                    Some(kid) => format!("kid '{}' names an active key", truncate(kid)),
                    None => format!("no kid: each of the {} active keys is tried", named.len()),
                }
            }) {
                None => {
                    explanation.skip("key_type", "no key is named");
                    explanation.skip("signature", "no key is named");
                    None
                }
                Some(named) => {
                    match explanation.check(
                        "key_type",
                        self.keys_for_algorithm(named).map_err(&refusal),
                        |suitable| format!("alg '{alg}' suits {} of them", suitable.len()),
                    ) {
                        None => {
                            explanation.skip("signature", "no key suits the alg");
                            None
                        }
                        Some(suitable) => explanation.check(
                            "signature",
                            self.key_that_verifies(&suitable).map_err(&refusal),
                            |kid| format!("verified with key '{kid}' ({alg})"),
                        ),
                    }
                }
            };

        let claims = self.jws.payload();
        let values =
            explanation.check("claim_types", read_claims(claims).map_err(&refusal), |_| {
                "sub, exp, nbf, iat, jti and scope are of their types; exp is present".into()
            });
        explanation.check(
            "audience",
            check_audience(claims, rules.accepted_audiences).map_err(&refusal),
            |aud| format!("aud '{}' is accepted here", truncate(aud)),
        );
        let Some(values) = values else {
            for name in [
                "expiry",
                "not_before",
                "issued_at",
                "lifetime",
                "jti_present",
            ] {
                explanation.skip(name, "the claims could not be read");
            }
            return None;
        };
        explanation.check(
            "expiry",
            check_expiry(&values, rules, now).map_err(&refusal),
            |()| {
                format!(
                    "exp {} is {}s from now",
                    values.expires_at,
                    values.expires_at - now
                )
            },
        );
        explanation.check(
            "not_before",
            check_not_before(&values, rules, now).map_err(&refusal),
            |()| match values.not_before {
                Some(nbf) => format!("nbf {nbf} has passed"),
                None => "no nbf".into(),
            },
        );
        explanation.check(
            "issued_at",
            check_issued_at(&values, rules, now).map_err(&refusal),
            |()| match values.issued_at {
                Some(iat) => format!("iat {iat} is not in the future"),
                None => "no iat".into(),
            },
        );
        explanation.check(
            "lifetime",
            check_lifetime(&values, rules, now).map_err(&refusal),
            |()| {
                format!(
                    "lives {}s, at most {}s",
                    values.expires_at - values.issued_at.unwrap_or(now),
                    rules.max_lifetime_secs
                )
            },
        );
        explanation.check(
            "jti_present",
            check_jti_present(&values, rules).map_err(&refusal),
            |()| match &values.jti {
                Some(_) => "has a jti".into(),
                None => "no jti, and none is required".into(),
            },
        );
        let kid = kid?;
        if !explanation.passed_since(start) {
            return None;
        }
        Some((values.verified(self.issuer.clone(), kid), claims.clone()))
    }

    /// Explains [`Self::verify`]: the integration's state (rule 2), then the
    /// assertion's rules under the server's policy and the integration's `jti`
    /// requirement.
    pub fn explain(
        &self,
        integration: &Integration,
        policy: &AssertionPolicy,
        now: i64,
        explanation: &mut Explanation,
    ) -> Option<VerifiedAssertion> {
        let found = if integration.key != self.issuer {
            Err(GrantError::IssuerNotFound)
        } else if !integration.active {
            Err(GrantError::IntegrationDisabled)
        } else {
            Ok(())
        };
        let active = explanation.check("issuer", found, |()| {
            format!(
                "integration '{}' ({}) is active",
                integration.key, integration.name
            )
        });
        let rules = ClaimRules {
            accepted_audiences: &policy.accepted_audiences,
            leeway_secs: policy.leeway_secs,
            max_lifetime_secs: policy.max_lifetime_secs,
            require_jti: integration.require_jti,
        };
        let verified = self.explain_with_keys(&integration.keys, &rules, now, explanation, |e| e);
        active.and(verified).map(|(verified, _)| verified)
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

/// Rules 3 to 5 on the claims, in the order the explanation shows them.
fn check_claims(
    claims: &Map<String, Value>,
    issuer: String,
    kid: String,
    rules: &ClaimRules<'_>,
    now: i64,
) -> Result<VerifiedAssertion, GrantError> {
    let values = read_claims(claims)?;
    check_audience(claims, rules.accepted_audiences)?;
    check_expiry(&values, rules, now)?;
    check_not_before(&values, rules, now)?;
    check_issued_at(&values, rules, now)?;
    check_lifetime(&values, rules, now)?;
    check_jti_present(&values, rules)?;
    Ok(values.verified(issuer, kid))
}

/// The claims the rules read, each of its JSON type.
struct ClaimValues {
    subject: Option<String>,
    expires_at: i64,
    not_before: Option<i64>,
    issued_at: Option<i64>,
    jti: Option<String>,
    scopes: Option<Vec<String>>,
}

impl ClaimValues {
    fn verified(self, issuer: String, kid: String) -> VerifiedAssertion {
        VerifiedAssertion {
            issuer,
            subject: self.subject,
            scopes: self.scopes,
            jti: self.jti,
            expires_at: self.expires_at,
            kid,
        }
    }
}

/// Reads `sub`, `exp` (required), `nbf`, `iat`, `jti` and `scope`, refusing a claim
/// of the wrong type.
fn read_claims(claims: &Map<String, Value>) -> Result<ClaimValues, GrantError> {
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
    Ok(ClaimValues {
        subject,
        expires_at,
        not_before,
        issued_at,
        jti,
        scopes,
    })
}

/// Rule 3: `aud` (a string or an array of strings) names an accepted audience;
/// returns the first that does.
fn check_audience<'c>(
    claims: &'c Map<String, Value>,
    accepted: &[String],
) -> Result<&'c str, GrantError> {
    let accepts = |aud: &str| accepted.iter().any(|a| a == aud);
    match claims.get("aud") {
        None | Some(Value::Null) => Err(GrantError::MissingClaim("aud")),
        Some(Value::String(aud)) if accepts(aud) => Ok(aud),
        Some(Value::String(_)) => Err(GrantError::AudienceMismatch),
        Some(Value::Array(auds)) => {
            let mut found = None;
            for aud in auds {
                let Value::String(aud) = aud else {
                    return Err(wrong_type("aud", "a string or an array of strings"));
                };
                if found.is_none() && accepts(aud) {
                    found = Some(aud.as_str());
                }
            }
            found.ok_or(GrantError::AudienceMismatch)
        }
        Some(_) => Err(wrong_type("aud", "a string or an array of strings")),
    }
}

/// Rule 4: `exp` has not passed, give or take the leeway.
fn check_expiry(values: &ClaimValues, rules: &ClaimRules<'_>, now: i64) -> Result<(), GrantError> {
    if now >= values.expires_at.saturating_add(rules.leeway_secs) {
        return Err(GrantError::Expired);
    }
    Ok(())
}

/// Rule 4: `nbf`, when present, has come.
fn check_not_before(
    values: &ClaimValues,
    rules: &ClaimRules<'_>,
    now: i64,
) -> Result<(), GrantError> {
    if values
        .not_before
        .is_some_and(|nbf| nbf > now.saturating_add(rules.leeway_secs))
    {
        return Err(GrantError::NotYetValid);
    }
    Ok(())
}

/// Rule 4: `iat`, when present, is not in the future.
fn check_issued_at(
    values: &ClaimValues,
    rules: &ClaimRules<'_>,
    now: i64,
) -> Result<(), GrantError> {
    if values
        .issued_at
        .is_some_and(|iat| iat > now.saturating_add(rules.leeway_secs))
    {
        return Err(GrantError::IssuedInFuture);
    }
    Ok(())
}

/// Rule 4: from `iat` (or now, without one) to `exp` is at most the longest
/// lifetime, give or take the leeway.
fn check_lifetime(
    values: &ClaimValues,
    rules: &ClaimRules<'_>,
    now: i64,
) -> Result<(), GrantError> {
    let start = values.issued_at.unwrap_or(now);
    if values.expires_at.saturating_sub(start)
        > rules.max_lifetime_secs.saturating_add(rules.leeway_secs)
    {
        return Err(GrantError::LifetimeTooLong {
            max_secs: rules.max_lifetime_secs,
        });
    }
    Ok(())
}

/// Rule 5, the part that needs no store: a `jti` where one is required.
fn check_jti_present(values: &ClaimValues, rules: &ClaimRules<'_>) -> Result<(), GrantError> {
    if rules.require_jti && values.jti.is_none() {
        return Err(GrantError::JtiRequired);
    }
    Ok(())
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
