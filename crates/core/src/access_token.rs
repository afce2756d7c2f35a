//! RFC 9068 access tokens: issue one for a grant decision, and verify one (for
//! userinfo here, for resource servers in the SDK).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::alg::JwsAlgorithm;
use crate::grants::jwt_bearer::GrantDecision;
use crate::jws::{CompactJws, sign_compact_json};
use crate::keyring::KeyringEntry;
use crate::keys::{KeyError, PublicKey};
use jwtgrant_proto::ACCESS_TOKEN_TYP;

/// The claims of an access token (RFC 9068 section 2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    /// The issuer URL.
    pub iss: String,
    /// The user id, or the integration key for an application token.
    pub sub: String,
    /// The resource audience (one, as jwtgrant issues; other servers may send several).
    pub aud: Audience,
    /// The integration key.
    pub client_id: String,
    /// Granted scopes, space separated.
    #[serde(default)]
    pub scope: String,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
    /// Not valid before, Unix seconds (optional in RFC 9068; honoured when present).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Unique id of this token.
    pub jti: String,
}

/// An `aud` claim: one audience (sent as a string) or several (an array).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience(Vec<String>);

impl Audience {
    /// A single audience.
    pub fn one(audience: String) -> Self {
        Audience(vec![audience])
    }

    /// Several audiences (one is sent as a string, as [`Audience::one`]).
    pub fn many(audiences: Vec<String>) -> Self {
        Audience(audiences)
    }

    /// Whether `audience` is among them.
    pub fn contains(&self, audience: &str) -> bool {
        self.0.iter().any(|a| a == audience)
    }

    /// Every audience.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

impl Serialize for Audience {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => serializer.serialize_str(one),
            many => many.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        Ok(match OneOrMany::deserialize(deserializer)? {
            OneOrMany::One(one) => Audience(vec![one]),
            OneOrMany::Many(many) => Audience(many),
        })
    }
}

/// What every access token the server issues carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenSettings {
    /// The `iss` claim: the server's issuer URL.
    pub issuer: String,
    /// The `aud` claim: the resource the token is for.
    pub audience: String,
    /// Lifetime in seconds.
    pub lifetime_secs: i64,
}

/// A freshly signed access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedAccessToken {
    /// The compact JWT.
    pub token: String,
    /// Its claims.
    pub claims: AccessTokenClaims,
}

/// Signs the access token for `decision` with the keyring's current key.
pub fn issue(
    decision: &GrantDecision,
    settings: &AccessTokenSettings,
    key: &KeyringEntry,
    jti: String,
    now: i64,
) -> Result<IssuedAccessToken, KeyError> {
    let claims = AccessTokenClaims {
        iss: settings.issuer.clone(),
        sub: decision.subject_claim().to_owned(),
        // RFC 8707: the resources asked for, else the configured audience.
        aud: match decision.resources() {
            [] => Audience::one(settings.audience.clone()),
            resources => Audience::many(resources.to_vec()),
        },
        client_id: decision.client_id().to_owned(),
        scope: decision.scopes().join(" "),
        iat: now,
        exp: now.saturating_add(settings.lifetime_secs),
        nbf: None,
        jti,
    };
    let token = sign_compact_json(
        &key.key,
        key.alg,
        Some(ACCESS_TOKEN_TYP),
        Some(&key.kid),
        &claims.to_json(),
    )?;
    Ok(IssuedAccessToken { token, claims })
}

impl AccessTokenClaims {
    /// The claims as JSON: the bytes serde_json writes for them, members in the
    /// struct's order, written without serde on the token endpoint's path.
    pub fn to_json(&self) -> Vec<u8> {
        use jwtgrant_proto::json::{push_member, push_str};
        let mut out = Vec::with_capacity(
            160 + self.iss.len()
                + self.sub.len()
                + self.client_id.len()
                + self.scope.len()
                + self.jti.len()
                + self.aud.0.iter().map(|a| a.len() + 3).sum::<usize>(),
        );
        let mut number = itoa::Buffer::new();
        out.extend_from_slice(b"{\"iss\":");
        push_str(&mut out, &self.iss);
        push_member(&mut out, "sub", &self.sub);
        out.extend_from_slice(b",\"aud\":");
        match self.aud.0.as_slice() {
            [one] => push_str(&mut out, one),
            many => {
                out.push(b'[');
                for (i, audience) in many.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    push_str(&mut out, audience);
                }
                out.push(b']');
            }
        }
        push_member(&mut out, "client_id", &self.client_id);
        push_member(&mut out, "scope", &self.scope);
        out.extend_from_slice(b",\"iat\":");
        out.extend_from_slice(number.format(self.iat).as_bytes());
        out.extend_from_slice(b",\"exp\":");
        out.extend_from_slice(number.format(self.exp).as_bytes());
        if let Some(nbf) = self.nbf {
            out.extend_from_slice(b",\"nbf\":");
            out.extend_from_slice(number.format(nbf).as_bytes());
        }
        push_member(&mut out, "jti", &self.jti);
        out.push(b'}');
        out
    }
}

/// Why an access token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a compact JWS with a sound header.
    #[error("the access token is malformed")]
    Malformed,
    /// `typ` is not `at+jwt`.
    #[error("the token is not an access token (typ must be at+jwt)")]
    WrongTyp,
    /// No key with the token's `kid`.
    #[error("the access token was signed by an unknown key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the access token signature is invalid")]
    BadSignature,
    /// A claim is missing or of the wrong type.
    #[error("the access token's claims are malformed")]
    BadClaims,
    /// `iss` is not the expected issuer.
    #[error("the access token was issued by another server")]
    WrongIssuer,
    /// `aud` is not the expected audience.
    #[error("the access token is for another audience")]
    WrongAudience,
    /// `exp` has passed.
    #[error("the access token has expired")]
    Expired,
    /// `iat` or `nbf` in the future.
    #[error("the access token is not valid yet")]
    NotYetValid,
}

/// What an access token must match to be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenExpectations {
    /// The expected `iss`.
    pub issuer: String,
    /// The expected `aud`, when the verifier cares.
    pub audience: Option<String>,
    /// Clock leeway in seconds.
    pub leeway_secs: i64,
}

/// Verifies an access token: `typ`, a signature by the key `find_key` returns for its
/// `kid` (the key's algorithm must match the header's), `iss`, `aud`, `exp`, `iat`.
pub fn verify<'k>(
    token: &str,
    find_key: impl Fn(&str) -> Option<(&'k PublicKey, Option<JwsAlgorithm>)>,
    expect: &AccessTokenExpectations,
    now: i64,
) -> Result<AccessTokenClaims, TokenError> {
    let jws = CompactJws::parse(token).map_err(|_| TokenError::Malformed)?;
    let header = jws.header();
    if !header.typ.as_deref().is_some_and(|typ| {
        typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP) || typ.eq_ignore_ascii_case("application/at+jwt")
    }) {
        return Err(TokenError::WrongTyp);
    }
    let kid = header.kid.as_deref().ok_or(TokenError::UnknownKey)?;
    let (key, key_alg) = find_key(kid).ok_or(TokenError::UnknownKey)?;
    if key_alg.is_some_and(|alg| alg != header.alg)
        || !key.verify(header.alg, jws.signing_input(), jws.signature())
    {
        return Err(TokenError::BadSignature);
    }
    let claims: AccessTokenClaims = serde_json::from_value(Value::Object(jws.into_payload()))
        .map_err(|_| TokenError::BadClaims)?;
    if claims.iss != expect.issuer {
        return Err(TokenError::WrongIssuer);
    }
    if expect
        .audience
        .as_ref()
        .is_some_and(|aud| !claims.aud.contains(aud))
    {
        return Err(TokenError::WrongAudience);
    }
    if now >= claims.exp.saturating_add(expect.leeway_secs) {
        return Err(TokenError::Expired);
    }
    let not_before = claims.nbf.map_or(claims.iat, |nbf| nbf.max(claims.iat));
    if not_before > now.saturating_add(expect.leeway_secs) {
        return Err(TokenError::NotYetValid);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jws::sign_compact;
    use crate::keys::SigningKey;
    use serde_json::json;

    fn token(key: &SigningKey, claims: serde_json::Value) -> String {
        sign_compact(
            key,
            JwsAlgorithm::Es256,
            Some(ACCESS_TOKEN_TYP),
            Some("k"),
            &claims,
        )
        .unwrap()
    }

    /// `to_json` writes the bytes serde_json writes: one audience as a string,
    /// several as an array, `nbf` only when present, strings that need escapes.
    #[test]
    fn claims_json_is_what_serde_json_writes() {
        let claims = |aud: Audience, nbf: Option<i64>, sub: &str| AccessTokenClaims {
            iss: "https://account-d.docusign.com".into(),
            sub: sub.into(),
            aud,
            client_id: "ik-1".into(),
            scope: "signature impersonation".into(),
            iat: 1_700_000_000,
            exp: -1,
            nbf,
            jti: "8f14e45f-ceea-467f-a0e6-6d0b4d8b0c11".into(),
        };
        let cases = [
            claims(Audience::one("api".into()), None, "user"),
            claims(
                Audience::many(vec!["a".into(), "b\"c".into()]),
                Some(5),
                "u",
            ),
            claims(
                Audience::many(vec![]),
                Some(i64::MIN),
                "line\nbreak \\ \u{1}",
            ),
            claims(Audience::one(String::new()), None, "é </script>"),
        ];
        for case in cases {
            let expected = serde_json::to_vec(&case).unwrap_or_default();
            assert_eq!(
                String::from_utf8_lossy(&case.to_json()),
                String::from_utf8_lossy(&expected)
            );
        }
    }

    #[test]
    fn audience_is_a_string_when_one_and_may_be_an_array() {
        assert_eq!(
            serde_json::to_value(Audience::one("a".into())).unwrap(),
            json!("a")
        );
        let many: Audience = serde_json::from_value(json!(["a", "b"])).unwrap();
        assert!(many.contains("b") && !many.contains("c"));
        assert!(serde_json::from_value::<Audience>(json!(5)).is_err());
    }

    #[test]
    fn verify_checks_audience_in_arrays_and_nbf() {
        let key = SigningKey::generate(JwsAlgorithm::Es256, 0).unwrap();
        let expect = AccessTokenExpectations {
            issuer: "https://as".into(),
            audience: Some("api".into()),
            leeway_secs: 0,
        };
        let find = |_: &str| Some((key.public_key(), Some(JwsAlgorithm::Es256)));
        let base = json!({"iss": "https://as", "sub": "u", "client_id": "c", "iat": 100, "exp": 200, "jti": "j"});
        let with = |extra: serde_json::Value| {
            let mut claims = base.clone();
            claims
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            token(&key, claims)
        };
        assert!(verify(&with(json!({"aud": ["x", "api"]})), find, &expect, 150).is_ok());
        assert_eq!(
            verify(&with(json!({"aud": ["x"]})), find, &expect, 150).err(),
            Some(TokenError::WrongAudience)
        );
        assert_eq!(
            verify(&with(json!({"aud": "api", "nbf": 160})), find, &expect, 150).err(),
            Some(TokenError::NotYetValid)
        );
        assert!(verify(&with(json!({"aud": "api", "nbf": 140})), find, &expect, 150).is_ok());
    }
}
