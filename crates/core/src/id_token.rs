//! OpenID Connect ID tokens (OpenID Connect Core 1.0 section 2): issuing one for a
//! user's grant on the authorization code flow (and its refreshes), with `nonce`,
//! `auth_time` and `at_hash`; and verifying one this server issued, when a client
//! presents it back as a token exchange's `subject_token`.

use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::access_token::Audience;
use crate::alg::JwsAlgorithm;
use crate::b64;
use crate::error::GrantError;
use crate::jws::{CompactJws, sign_compact};
use crate::keyring::KeyringEntry;
use crate::keys::{KeyError, PublicKey};

/// The scope that asks for an ID token.
pub const OPENID_SCOPE: &str = "openid";

/// The `typ` of the ID tokens this server signs (OpenID Connect sets none; `JWT` is
/// what its libraries expect, and it is not `at+jwt`, so an ID token is never taken
/// for an access token).
pub const ID_TOKEN_TYP: &str = "JWT";

/// The claims of an ID token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaims {
    /// The server's issuer URL.
    pub iss: String,
    /// The user's id, the same for every client (`public` subject type).
    pub sub: String,
    /// The client it was issued to.
    pub aud: Audience,
    /// Expires at, Unix seconds.
    pub exp: i64,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// When the user signed in, Unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    /// The authorization request's `nonce`, bound to its code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// The left half of the hash of the access token issued with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    /// The authorized party: the client, as the only audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
}

/// What an ID token says about the grant it comes with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenGrant<'a> {
    /// The user.
    pub subject: &'a str,
    /// The client.
    pub client_id: &'a str,
    /// When the user signed in.
    pub auth_time: Option<i64>,
    /// The authorization request's `nonce` (none on a refresh).
    pub nonce: Option<&'a str>,
    /// The access token issued beside it.
    pub access_token: &'a str,
}

/// Whether a grant's scopes ask for an ID token.
pub fn requested(scopes: &[String]) -> bool {
    scopes.iter().any(|s| s == OPENID_SCOPE)
}

/// `at_hash` (OpenID Connect Core section 3.1.3.6): the base64url of the left half
/// of the access token's hash, by the hash of the ID token's `alg` (SHA-512 for
/// Ed25519).
pub fn at_hash(access_token: &str, alg: JwsAlgorithm) -> String {
    let algorithm = match alg {
        JwsAlgorithm::Rs256 | JwsAlgorithm::Ps256 | JwsAlgorithm::Es256 => &digest::SHA256,
        JwsAlgorithm::Rs384 | JwsAlgorithm::Ps384 | JwsAlgorithm::Es384 => &digest::SHA384,
        JwsAlgorithm::Rs512 | JwsAlgorithm::Ps512 | JwsAlgorithm::EdDsa => &digest::SHA512,
    };
    let hash = digest::digest(algorithm, access_token.as_bytes());
    let bytes = hash.as_ref();
    let (left, _) = bytes.split_at(bytes.len() / 2);
    b64::encode(left)
}

/// Signs the ID token of `grant` with `key`, issued by `issuer` at `now`, living
/// `lifetime_secs`.
pub fn issue(
    grant: &IdTokenGrant<'_>,
    issuer: &str,
    key: &KeyringEntry,
    lifetime_secs: i64,
    now: i64,
) -> Result<(String, IdTokenClaims), KeyError> {
    let claims = IdTokenClaims {
        iss: issuer.to_owned(),
        sub: grant.subject.to_owned(),
        aud: Audience::one(grant.client_id.to_owned()),
        exp: now.saturating_add(lifetime_secs),
        iat: now,
        auth_time: grant.auth_time,
        nonce: grant.nonce.map(str::to_owned),
        at_hash: Some(at_hash(grant.access_token, key.alg)),
        azp: Some(grant.client_id.to_owned()),
    };
    let token = sign_compact(
        &key.key,
        key.alg,
        Some(ID_TOKEN_TYP),
        Some(&key.kid),
        &claims,
    )?;
    Ok((token, claims))
}

/// Verifies an ID token presented as a `subject_token` by `client_id`: signed by a
/// key of this server (`find_key` by `kid`, the key's algorithm matching the
/// header's), not an access token or an ID-JAG, issued by `issuer`, to that client,
/// and not expired (`leeway_secs` allowed). Every refusal is `invalid_grant`.
pub fn verify_subject_token<'k>(
    token: &str,
    find_key: impl Fn(&str) -> Option<(&'k PublicKey, Option<JwsAlgorithm>)>,
    issuer: &str,
    client_id: &str,
    leeway_secs: i64,
    now: i64,
) -> Result<IdTokenClaims, GrantError> {
    let invalid = GrantError::SubjectTokenInvalid;
    let jws = CompactJws::parse(token).map_err(|_| invalid("it is not a signed JWT"))?;
    let header = jws.header();
    if header
        .typ
        .as_deref()
        .is_some_and(|typ| !typ.eq_ignore_ascii_case(ID_TOKEN_TYP))
    {
        return Err(invalid(
            "its 'typ' is not that of an ID token (an access token or an ID-JAG is not one)",
        ));
    }
    let (key, key_alg) = header
        .kid
        .as_deref()
        .and_then(&find_key)
        .ok_or(invalid("it was not signed by a key of this server"))?;
    if key_alg.is_some_and(|alg| alg != header.alg)
        || !key.verify(header.alg, jws.signing_input(), jws.signature())
    {
        return Err(invalid("its signature does not verify"));
    }
    let claims: IdTokenClaims = serde_json::from_value(Value::Object(jws.into_payload()))
        .map_err(|_| invalid("its claims are not those of an ID token"))?;
    if claims.iss != issuer {
        return Err(invalid("it was issued by another server"));
    }
    if now >= claims.exp.saturating_add(leeway_secs) {
        return Err(GrantError::SubjectTokenExpired);
    }
    if !claims.aud.contains(client_id) || claims.aud.as_slice().len() != 1 {
        return Err(GrantError::SubjectTokenClientMismatch);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::keys::SigningKey;
    use jwtgrant_proto::{ACCESS_TOKEN_TYP, ID_JAG_TYP};
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn entry() -> KeyringEntry {
        KeyringEntry {
            kid: "k1".into(),
            alg: JwsAlgorithm::Es256,
            key: Arc::new(SigningKey::generate(JwsAlgorithm::Es256, 0).unwrap()),
            activates_at: 0,
        }
    }

    fn grant<'a>(nonce: Option<&'a str>) -> IdTokenGrant<'a> {
        IdTokenGrant {
            subject: "user-1",
            client_id: "client-a",
            auth_time: Some(NOW - 30),
            nonce,
            access_token: "eyJhbGciOiJFUzI1NiJ9.e30.sig",
        }
    }

    #[test]
    fn at_hash_is_the_left_half_of_the_hash() {
        // OpenID Connect Core, appendix A.3: the access token and at_hash of its
        // RS256 example.
        assert_eq!(
            at_hash(
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y",
                JwsAlgorithm::Rs256
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        assert_eq!(at_hash("x", JwsAlgorithm::Es384).len(), 32);
        assert_eq!(at_hash("x", JwsAlgorithm::EdDsa).len(), 43);
    }

    #[test]
    fn an_issued_id_token_carries_the_grant_and_verifies_for_its_client() {
        let key = entry();
        let (token, claims) =
            issue(&grant(Some("n-0S6")), "https://a.example", &key, 300, NOW).unwrap();
        assert_eq!(claims.nonce.as_deref(), Some("n-0S6"));
        assert_eq!(claims.auth_time, Some(NOW - 30));
        assert_eq!(claims.exp, NOW + 300);
        let jws = CompactJws::parse(&token).unwrap();
        assert_eq!(jws.header().typ.as_deref(), Some(ID_TOKEN_TYP));
        assert_eq!(jws.payload()["aud"], json!("client-a"));
        assert_eq!(
            jws.payload()["at_hash"],
            json!(at_hash("eyJhbGciOiJFUzI1NiJ9.e30.sig", JwsAlgorithm::Es256))
        );
        let find = |kid: &str| (kid == "k1").then(|| (key.key.public_key(), Some(key.alg)));
        let verified =
            verify_subject_token(&token, find, "https://a.example", "client-a", 0, NOW).unwrap();
        assert_eq!(verified, claims);
        let (no_nonce, _) = issue(&grant(None), "https://a.example", &key, 300, NOW).unwrap();
        assert!(
            CompactJws::parse(&no_nonce)
                .unwrap()
                .payload()
                .get("nonce")
                .is_none()
        );
    }

    #[test]
    fn every_subject_token_rule_refuses() {
        let key = entry();
        let other = entry();
        let find = |kid: &str| (kid == "k1").then(|| (key.key.public_key(), Some(key.alg)));
        let (token, _) = issue(&grant(None), "https://a.example", &key, 300, NOW).unwrap();
        let verify = |token: &str, client: &str, now: i64| {
            verify_subject_token(token, find, "https://a.example", client, 0, now).unwrap_err()
        };
        assert_eq!(
            verify(&token, "client-b", NOW),
            GrantError::SubjectTokenClientMismatch
        );
        assert_eq!(
            verify(&token, "client-a", NOW + 300),
            GrantError::SubjectTokenExpired
        );
        assert!(matches!(
            verify("not.a.jwt", "client-a", NOW),
            GrantError::SubjectTokenInvalid(_)
        ));
        // Another server's ID token, with a kid of ours.
        let (foreign, _) = issue(&grant(None), "https://a.example", &other, 300, NOW).unwrap();
        assert!(matches!(
            verify(&foreign, "client-a", NOW),
            GrantError::SubjectTokenInvalid(reason) if reason.contains("signature")
        ));
        let claims = json!({"iss": "https://elsewhere.example", "sub": "user-1", "aud": "client-a", "iat": NOW, "exp": NOW + 60});
        let sign = |typ: Option<&str>, claims: &Value| {
            sign_compact(&key.key, key.alg, typ, Some("k1"), claims).unwrap()
        };
        assert!(matches!(
            verify(&sign(Some(ID_TOKEN_TYP), &claims), "client-a", NOW),
            GrantError::SubjectTokenInvalid(reason) if reason.contains("another server")
        ));
        let ours = json!({"iss": "https://a.example", "sub": "user-1", "aud": "client-a", "client_id": "client-a", "scope": "", "jti": "j", "iat": NOW, "exp": NOW + 60});
        for typ in [ACCESS_TOKEN_TYP, ID_JAG_TYP] {
            assert!(matches!(
                verify(&sign(Some(typ), &ours), "client-a", NOW),
                GrantError::SubjectTokenInvalid(reason) if reason.contains("typ")
            ));
        }
        // Several audiences: not an ID token issued to this client alone.
        let shared = json!({"iss": "https://a.example", "sub": "user-1", "aud": ["client-a", "client-b"], "iat": NOW, "exp": NOW + 60});
        assert_eq!(
            verify(&sign(None, &shared), "client-a", NOW),
            GrantError::SubjectTokenClientMismatch
        );
        let no_sub =
            json!({"iss": "https://a.example", "aud": "client-a", "iat": NOW, "exp": NOW + 60});
        assert!(matches!(
            verify(&sign(None, &no_sub), "client-a", NOW),
            GrantError::SubjectTokenInvalid(_)
        ));
    }
}
