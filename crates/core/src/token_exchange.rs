//! Token exchange (RFC 8693) as the enterprise identity provider of cross-app access
//! runs it: an authenticated confidential client trades an ID token this server
//! issued to it for an ID-JAG (draft-ietf-oauth-identity-assertion-authz-grant) for
//! another server, as far as the operator's trust target for that server and client
//! allows. This module checks the request and decides the ID-JAG's claims; the
//! adapter verifies the ID token ([`crate::id_token::verify_subject_token`]), finds
//! the trust target and the user, and signs.

use serde::{Deserialize, Serialize};

use crate::access_token::Audience;
use crate::client_auth::AuthenticatedClient;
use crate::error::GrantError;
use crate::id_token::IdTokenClaims;
use crate::jws::{sign_compact, truncate};
use crate::keyring::KeyringEntry;
use crate::keys::KeyError;
use crate::model::{User, split_scopes};
use jwtgrant_proto::{ID_JAG_LIFETIME_SECS, ID_JAG_TOKEN_TYPE, ID_JAG_TYP, ID_TOKEN_TYPE};

/// The parameters of a token exchange request (RFC 8693 section 2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenExchangeRequest<'a> {
    /// `subject_token`: the ID token.
    pub subject_token: &'a str,
    /// `subject_token_type`.
    pub subject_token_type: &'a str,
    /// `requested_token_type`.
    pub requested_token_type: Option<&'a str>,
    /// `audience` values: the other server's issuer, exactly one.
    pub audiences: &'a [&'a str],
    /// `resource` values: what the ID-JAG is for at the other server.
    pub resources: &'a [&'a str],
    /// `scope`.
    pub scope: Option<&'a str>,
    /// Whether an `actor_token` was sent (delegation is not offered).
    pub actor_token: bool,
}

/// The operator's permission for one client to get ID-JAGs for one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustTarget {
    /// The other server's issuer.
    pub audience: String,
    /// The client (integration key) here.
    pub integration_key: String,
    /// The client's id at the other server.
    pub remote_client_id: String,
    /// The resources an ID-JAG may name.
    pub resources: Vec<String>,
    /// The scopes it may carry; empty: the request's pass unnarrowed.
    pub scopes: Vec<String>,
}

/// The claims of an ID-JAG this server mints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdJagClaims {
    /// This server's issuer.
    pub iss: String,
    /// The user, as this server knows them.
    pub sub: String,
    /// The other server's issuer.
    pub aud: String,
    /// The client's id at the other server.
    pub client_id: String,
    /// Unique id.
    pub jti: String,
    /// Issued at.
    pub iat: i64,
    /// Expires at: [`ID_JAG_LIFETIME_SECS`] after `iat`.
    pub exp: i64,
    /// The scopes, space separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The resources at the other server (a string for one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<Audience>,
    /// When the user signed in, from the ID token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
}

/// Checks what the request asks for before any token is looked at: an ID-JAG, from
/// an ID token, for one audience, without an actor.
pub fn check_request(request: &TokenExchangeRequest<'_>) -> Result<(), GrantError> {
    let malformed = |rule: &'static str, reason: String| {
        Err(GrantError::TokenExchangeMalformed { rule, reason })
    };
    match request.requested_token_type {
        Some(ID_JAG_TOKEN_TYPE) => {}
        None => {
            return malformed(
                "requested_token_type_unsupported",
                format!(
                    "'requested_token_type' must be {ID_JAG_TOKEN_TYPE}, the only token this server exchanges for"
                ),
            );
        }
        Some(other) => {
            return malformed(
                "requested_token_type_unsupported",
                format!(
                    "'{}' is not issued here; only {ID_JAG_TOKEN_TYPE}",
                    truncate(other)
                ),
            );
        }
    }
    if request.subject_token_type != ID_TOKEN_TYPE {
        return malformed(
            "subject_token_type_unsupported",
            format!(
                "'{}' is not accepted; the subject token must be an ID token this server issued ({ID_TOKEN_TYPE})",
                truncate(request.subject_token_type)
            ),
        );
    }
    if request.actor_token {
        return malformed(
            "actor_token_unsupported",
            "delegation (an 'actor_token') is not offered".to_owned(),
        );
    }
    match request.audiences {
        [_] => Ok(()),
        [] => malformed(
            "audience_required",
            "name the other server's issuer in 'audience'".to_owned(),
        ),
        _ => malformed(
            "audience_not_single",
            "an ID-JAG is for one server; send one 'audience'".to_owned(),
        ),
    }
}

/// Decides the ID-JAG for `client`, whose verified ID token is `subject`, under the
/// operator's `target` for the requested audience (`None`: there is none), for
/// `user` (the ID token's subject, as the directory has it now). `issuer` is this
/// server's; `jti` a fresh id.
#[allow(clippy::too_many_arguments)]
pub fn decide(
    request: &TokenExchangeRequest<'_>,
    subject: &IdTokenClaims,
    client: &AuthenticatedClient,
    target: Option<&TrustTarget>,
    user: Option<&User>,
    issuer: &str,
    jti: String,
    now: i64,
) -> Result<IdJagClaims, GrantError> {
    if !client.confidential {
        return Err(GrantError::TokenExchangeClientAuthenticationRequired);
    }
    check_request(request)?;
    let audience = request.audiences.first().copied().unwrap_or_default();
    let target = target
        .filter(|t| t.audience == audience && t.integration_key == client.client_id)
        .ok_or_else(|| GrantError::AudienceNotTrusted(truncate(audience)))?;
    if let Some(resource) = request
        .resources
        .iter()
        .find(|r| !target.resources.iter().any(|allowed| allowed == *r))
    {
        return Err(GrantError::ResourceNotAllowed(truncate(resource)));
    }
    let requested = request.scope.map(split_scopes).unwrap_or_default();
    let scopes: Vec<String> = match (target.scopes.is_empty(), requested.is_empty()) {
        (true, _) => requested,
        (false, true) => target.scopes.clone(),
        (false, false) => {
            let narrowed: Vec<String> = requested
                .iter()
                .filter(|s| target.scopes.contains(s))
                .cloned()
                .collect();
            if narrowed.is_empty() {
                return Err(GrantError::ScopeNotInTrustTarget(truncate(
                    &requested.join(" "),
                )));
            }
            narrowed
        }
    };
    let user = user
        .filter(|u| u.id == subject.sub)
        .ok_or(GrantError::UserNotFound)?;
    if !user.active {
        return Err(GrantError::UserDisabled);
    }
    let resource = match request.resources {
        [] => None,
        [one] => Some(Audience::one((*one).to_owned())),
        many => Some(Audience::many(
            many.iter().map(|r| (*r).to_owned()).collect(),
        )),
    };
    Ok(IdJagClaims {
        iss: issuer.to_owned(),
        sub: user.id.clone(),
        aud: audience.to_owned(),
        client_id: target.remote_client_id.clone(),
        jti,
        iat: now,
        exp: now.saturating_add(ID_JAG_LIFETIME_SECS),
        scope: (!scopes.is_empty()).then(|| scopes.join(" ")),
        resource,
        auth_time: subject.auth_time,
    })
}

/// Signs an ID-JAG with the server's key.
pub fn sign(claims: &IdJagClaims, key: &KeyringEntry) -> Result<String, KeyError> {
    sign_compact(&key.key, key.alg, Some(ID_JAG_TYP), Some(&key.kid), claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;
    const B: &str = "https://b.example";

    fn subject() -> IdTokenClaims {
        IdTokenClaims {
            iss: "https://a.example".into(),
            sub: "user-1".into(),
            aud: Audience::one("agent".into()),
            exp: NOW + 600,
            iat: NOW - 60,
            auth_time: Some(NOW - 90),
            nonce: None,
            at_hash: None,
            azp: None,
        }
    }

    fn target() -> TrustTarget {
        TrustTarget {
            audience: B.into(),
            integration_key: "agent".into(),
            remote_client_id: "agent-at-b".into(),
            resources: vec!["https://b.example/mcp".into()],
            scopes: vec!["files.read".into(), "files.write".into()],
        }
    }

    fn client(confidential: bool) -> AuthenticatedClient {
        AuthenticatedClient {
            client_id: "agent".into(),
            confidential,
        }
    }

    fn user(active: bool) -> User {
        User {
            id: "user-1".into(),
            active,
        }
    }

    fn request<'a>(
        audiences: &'a [&'a str],
        resources: &'a [&'a str],
        scope: Option<&'a str>,
    ) -> TokenExchangeRequest<'a> {
        TokenExchangeRequest {
            subject_token: "id.token.here",
            subject_token_type: ID_TOKEN_TYPE,
            requested_token_type: Some(ID_JAG_TOKEN_TYPE),
            audiences,
            resources,
            scope,
            actor_token: false,
        }
    }

    fn run(
        request: &TokenExchangeRequest<'_>,
        target: Option<&TrustTarget>,
    ) -> Result<IdJagClaims, GrantError> {
        decide(
            request,
            &subject(),
            &client(true),
            target,
            Some(&user(true)),
            "https://a.example",
            "j-1".into(),
            NOW,
        )
    }

    #[test]
    fn an_id_jag_carries_the_trust_targets_names_and_the_narrowed_scopes() {
        let t = target();
        let claims = run(
            &request(&[B], &["https://b.example/mcp"], Some("files.read admin")),
            Some(&t),
        )
        .unwrap();
        assert_eq!(claims.aud, B);
        assert_eq!(claims.client_id, "agent-at-b");
        assert_eq!(claims.sub, "user-1");
        assert_eq!(claims.scope.as_deref(), Some("files.read"));
        assert_eq!(
            claims.resource,
            Some(Audience::one("https://b.example/mcp".into()))
        );
        assert_eq!(claims.exp - claims.iat, 300);
        assert_eq!(claims.auth_time, Some(NOW - 90));
        let all = run(&request(&[B], &[], None), Some(&t)).unwrap();
        assert_eq!(all.scope.as_deref(), Some("files.read files.write"));
        assert_eq!(all.resource, None);
        let open = TrustTarget {
            scopes: Vec::new(),
            ..target()
        };
        let passed = run(&request(&[B], &[], Some("anything")), Some(&open)).unwrap();
        assert_eq!(passed.scope.as_deref(), Some("anything"));
    }

    #[test]
    fn every_exchange_rule_refuses() {
        let t = target();
        let code = |r: Result<IdJagClaims, GrantError>| r.unwrap_err().code();
        use jwtgrant_proto::ErrorCode::*;
        assert_eq!(code(run(&request(&[B], &[], None), None)), InvalidTarget);
        assert_eq!(
            code(run(&request(&["https://c.example"], &[], None), Some(&t))),
            InvalidTarget
        );
        assert_eq!(
            code(run(
                &request(&[B], &["https://b.example/other"], None),
                Some(&t)
            )),
            InvalidTarget
        );
        assert_eq!(
            code(run(&request(&[B], &[], Some("admin")), Some(&t))),
            InvalidScope
        );
        assert_eq!(
            code(run(&request(&[], &[], None), Some(&t))),
            InvalidRequest
        );
        assert_eq!(
            code(run(
                &request(&[B, "https://c.example"], &[], None),
                Some(&t)
            )),
            InvalidRequest
        );
        let mut wrong = request(&[B], &[], None);
        wrong.subject_token_type = "urn:ietf:params:oauth:token-type:access_token";
        assert!(matches!(
            run(&wrong, Some(&t)),
            Err(GrantError::TokenExchangeMalformed {
                rule: "subject_token_type_unsupported",
                ..
            })
        ));
        let mut wrong = request(&[B], &[], None);
        wrong.requested_token_type = None;
        assert_eq!(code(run(&wrong, Some(&t))), InvalidRequest);
        let mut wrong = request(&[B], &[], None);
        wrong.requested_token_type = Some("urn:ietf:params:oauth:token-type:access_token");
        assert_eq!(code(run(&wrong, Some(&t))), InvalidRequest);
        let mut wrong = request(&[B], &[], None);
        wrong.actor_token = true;
        assert_eq!(code(run(&wrong, Some(&t))), InvalidRequest);
        // Another client's trust target is not this client's.
        let theirs = TrustTarget {
            integration_key: "other".into(),
            ..target()
        };
        assert_eq!(
            code(run(&request(&[B], &[], None), Some(&theirs))),
            InvalidTarget
        );
        let base = request(&[B], &[], None);
        let with = |client: AuthenticatedClient, user: Option<&User>| {
            decide(
                &base,
                &subject(),
                &client,
                Some(&t),
                user,
                "https://a.example",
                "j".into(),
                NOW,
            )
            .unwrap_err()
        };
        assert_eq!(
            with(client(false), Some(&user(true))),
            GrantError::TokenExchangeClientAuthenticationRequired
        );
        assert_eq!(with(client(true), None), GrantError::UserNotFound);
        assert_eq!(
            with(client(true), Some(&user(false))),
            GrantError::UserDisabled
        );
    }
}
