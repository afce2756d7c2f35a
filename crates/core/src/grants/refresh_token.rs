//! The refresh token grant (RFC 6749 section 6): deciding a refresh against the
//! stored token. Refresh tokens come only with the authorization code grant, are
//! rotated on every use, and an old one presented again (reuse) revokes its whole
//! chain, since either the client or a thief holds a copy (RFC 9700 section 4.14).

use crate::error::GrantError;
use crate::grants::jwt_bearer::{GrantDecision, TokenSubject};
use crate::model::{Consent, User, split_scopes};
use crate::resource::Resources;

/// A refresh token as the store keeps it (under the hash of the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshToken {
    /// The integration it was issued to.
    pub client_id: String,
    /// The user it acts for.
    pub user_id: String,
    /// The scopes of the grant.
    pub scopes: Vec<String>,
    /// The resources of the grant, which a refresh may only narrow.
    pub resources: Vec<String>,
    /// Unix seconds after which it is refused.
    pub expires_at: i64,
    /// Whether it was exchanged already (and replaced by a newer one).
    pub rotated: bool,
    /// Whether its chain was revoked.
    pub revoked: bool,
}

/// Decides a refresh by the authenticated client `client_id`. `requested_scope` is
/// the form's `scope` and `requested_resources` its `resource` values, which may only
/// narrow the grant. The user's consent must still
/// cover the scopes: withdrawing consent ends the refresh chain.
///
/// A rotated token is refused with [`GrantError::RefreshTokenReused`], whereupon the
/// adapter revokes the chain.
pub fn decide(
    token: Option<&RefreshToken>,
    requested_scope: Option<&str>,
    requested_resources: &[&str],
    client_id: &str,
    user: Option<&User>,
    consent: Option<&Consent>,
    now: i64,
) -> Result<GrantDecision, GrantError> {
    let token = token.ok_or(GrantError::RefreshTokenInvalid)?;
    if token.revoked {
        return Err(GrantError::RefreshTokenRevoked);
    }
    if token.rotated {
        return Err(GrantError::RefreshTokenReused);
    }
    if token.client_id != client_id {
        return Err(GrantError::RefreshTokenClientMismatch);
    }
    if now >= token.expires_at {
        return Err(GrantError::RefreshTokenExpired);
    }
    let user = user
        .filter(|u| u.id == token.user_id)
        .ok_or(GrantError::UserNotFound)?;
    if !user.active {
        return Err(GrantError::UserDisabled);
    }
    let scopes = match requested_scope.map(split_scopes) {
        Some(requested) => {
            if let Some(extra) = requested.iter().find(|s| !token.scopes.contains(s)) {
                return Err(GrantError::ScopeBeyondGrant(crate::jws::truncate(extra)));
            }
            requested
        }
        None => token.scopes.clone(),
    };
    if scopes
        .iter()
        .any(|s| !consent.is_some_and(|c| c.scopes.contains(s)))
    {
        return Err(GrantError::ConsentWithdrawn);
    }
    let resources = Resources::narrowing(requested_resources, &token.resources)?;
    Ok(GrantDecision::new(
        client_id.to_owned(),
        TokenSubject::User(user.id.clone()),
        scopes,
    )
    .for_resources(resources))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn token() -> RefreshToken {
        RefreshToken {
            client_id: "client".into(),
            user_id: "user".into(),
            scopes: vec!["signature".into(), "extended".into()],
            resources: vec!["https://api.example.com".into()],
            expires_at: NOW + 60,
            rotated: false,
            revoked: false,
        }
    }

    fn user(active: bool) -> User {
        User {
            id: "user".into(),
            active,
        }
    }

    fn consent() -> Consent {
        Consent {
            scopes: vec!["signature".into(), "extended".into()],
        }
    }

    #[test]
    fn a_refresh_keeps_or_narrows_the_scopes() {
        let (u, c) = (user(true), consent());
        let same = decide(Some(&token()), None, &[], "client", Some(&u), Some(&c), NOW).unwrap();
        assert_eq!(same.scopes(), ["signature", "extended"]);
        let narrowed = decide(
            Some(&token()),
            Some("signature"),
            &[],
            "client",
            Some(&u),
            Some(&c),
            NOW,
        )
        .unwrap();
        assert_eq!(narrowed.scopes(), ["signature"]);
        assert_eq!(narrowed.subject_claim(), "user");
    }

    #[test]
    fn every_refresh_rule_refuses() {
        let (u, c) = (user(true), consent());
        let run = |t: &RefreshToken, scope: Option<&str>, client: &str, now: i64| {
            decide(Some(t), scope, &[], client, Some(&u), Some(&c), now).unwrap_err()
        };
        assert_eq!(
            decide(None, None, &[], "client", Some(&u), Some(&c), NOW).unwrap_err(),
            GrantError::RefreshTokenInvalid
        );
        let revoked = RefreshToken {
            revoked: true,
            ..token()
        };
        assert_eq!(
            run(&revoked, None, "client", NOW),
            GrantError::RefreshTokenRevoked
        );
        let rotated = RefreshToken {
            rotated: true,
            ..token()
        };
        assert_eq!(
            run(&rotated, None, "client", NOW),
            GrantError::RefreshTokenReused
        );
        assert_eq!(
            run(&token(), None, "other", NOW),
            GrantError::RefreshTokenClientMismatch
        );
        assert_eq!(
            run(&token(), None, "client", NOW + 60),
            GrantError::RefreshTokenExpired
        );
        assert_eq!(
            run(&token(), Some("signature impersonation"), "client", NOW),
            GrantError::ScopeBeyondGrant("impersonation".into())
        );
        let narrower = Consent {
            scopes: vec!["signature".into()],
        };
        assert_eq!(
            decide(
                Some(&token()),
                None,
                &[],
                "client",
                Some(&u),
                Some(&narrower),
                NOW
            )
            .unwrap_err(),
            GrantError::ConsentWithdrawn
        );
        assert_eq!(
            decide(Some(&token()), None, &[], "client", Some(&u), None, NOW).unwrap_err(),
            GrantError::ConsentWithdrawn
        );
        assert_eq!(
            decide(
                Some(&token()),
                None,
                &[],
                "client",
                Some(&user(false)),
                Some(&c),
                NOW
            )
            .unwrap_err(),
            GrantError::UserDisabled
        );
    }

    #[test]
    fn a_refresh_keeps_or_narrows_the_resources_never_widens() {
        let (u, c) = (user(true), consent());
        let same = decide(Some(&token()), None, &[], "client", Some(&u), Some(&c), NOW);
        assert_eq!(
            same.map(|d| d.resources().to_vec()),
            Ok(vec!["https://api.example.com".to_owned()])
        );
        let named = decide(
            Some(&token()),
            None,
            &["https://api.example.com"],
            "client",
            Some(&u),
            Some(&c),
            NOW,
        );
        assert!(named.is_ok());
        assert_eq!(
            decide(
                Some(&token()),
                None,
                &["https://other.example.com"],
                "client",
                Some(&u),
                Some(&c),
                NOW,
            )
            .err(),
            Some(GrantError::ResourceBeyondGrant(
                "https://other.example.com".into()
            ))
        );
    }
}
