//! Client authentication at the token, introspection and revocation endpoints
//! (RFC 6749 section 2.3): which credentials a request presents (HTTP Basic, the
//! secret in the form, or only a `client_id` for a public client), and whether they
//! authenticate an integration. The adapter supplies the secret check (an argon2id
//! verification it may cache); everything else is decided here.

use crate::assertion::{AssertionPolicy, ClaimRules, UnverifiedAssertion, VerifiedAssertion};
use crate::b64;
use crate::error::GrantError;
use crate::explain::Explanation;
use crate::grants::jwt_bearer::ReplayGuard;
use crate::model::Integration;

/// What a request presented to say which client it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCredentials {
    /// A client id and secret, by HTTP Basic or in the form.
    Secret {
        /// The integration key.
        client_id: String,
        /// The secret as sent.
        secret: String,
    },
    /// A signed client assertion (RFC 7523 section 2.2, `private_key_jwt`).
    Assertion {
        /// The integration key: the assertion's `iss`.
        client_id: String,
        /// The compact JWS as sent.
        assertion: String,
    },
    /// A trusted issuer's token as the client assertion of the integration the
    /// form's `client_id` names (federated client authentication: `iss` is the
    /// issuer, an absolute URL, not the client).
    FederatedAssertion {
        /// The integration key, from the form.
        client_id: String,
        /// The token's `iss`: the trusted issuer.
        issuer: String,
        /// The compact JWS as sent.
        assertion: String,
    },
    /// Only a `client_id` in the form: a public client (PKCE binds its codes).
    Public {
        /// The integration key.
        client_id: String,
    },
    /// Nothing.
    None,
}

/// Why client credentials were not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientAuthError {
    /// The `Authorization` header is not a well-formed Basic credential.
    #[error(
        "client_auth_malformed: the Authorization header must be 'Basic base64(client_id:client_secret)'"
    )]
    MalformedBasic,
    /// Two ways of authenticating in one request (RFC 6749 section 2.3).
    #[error(
        "client_auth_several_methods: use exactly one client authentication method: HTTP Basic, client_secret in the form, or a client assertion"
    )]
    SeveralMethods,
    /// The form's `client_id` differs from the Basic credential's.
    #[error(
        "client_id_mismatch: 'client_id' in the form differs from the client in the Authorization header"
    )]
    ClientIdMismatch,
    /// No credentials at all.
    #[error(
        "client_authentication_required: client authentication required: HTTP Basic with the client secret, or client_id for a public client"
    )]
    Missing,
    /// The client id names no active integration, or the secret is wrong.
    #[error(
        "client_authentication_failed: client authentication failed: unknown client or wrong secret"
    )]
    Failed,
    /// `client_assertion_type` is not the JWT bearer one, or one of the pair is missing.
    #[error(
        "client_assertion_type: client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer, sent with client_assertion"
    )]
    ClientAssertionType,
    /// The client assertion breaks one of the assertion rules (signature, key and
    /// `alg`, audience, times).
    #[error("{}: client assertion refused: {}", .0.rule(), .0.reason())]
    ClientAssertion(GrantError),
    /// The form's `client_id` is not the client assertion's `iss`.
    #[error(
        "client_assertion_client_id: client assertion refused: 'client_id' in the form must equal its 'iss'"
    )]
    ClientAssertionClientId,
    /// The client assertion's `iss` names no active integration.
    #[error(
        "client_authentication_failed: client assertion refused: client authentication failed: unknown or disabled client"
    )]
    ClientAssertionUnknownClient,
    /// The client assertion's `sub` is not its `iss`.
    #[error(
        "client_assertion_subject: client assertion refused: 'sub' must equal 'iss', the client_id"
    )]
    ClientAssertionSubject,
    /// The client assertion has no `jti`.
    #[error("jti_required: client assertion refused: 'jti' is required")]
    ClientAssertionJtiRequired,
    /// The client assertion's `typ` is neither `client-authentication+jwt` nor `JWT`.
    #[error(
        "client_assertion_typ: client assertion refused: 'typ' must be client-authentication+jwt or JWT, not '{0}'"
    )]
    ClientAssertionTyp(String),
    /// The client assertion's `jti` was used before.
    #[error("jti_replayed: client assertion refused: its 'jti' has already been used")]
    ClientAssertionReplayed,
    /// A confidential client (one with a secret) sent only its id.
    #[error(
        "client_secret_required: this client has a secret: authenticate with HTTP Basic (client_id:client_secret)"
    )]
    SecretRequired,
    /// The endpoint answers confidential clients only, and this one named itself
    /// without proving anything.
    #[error(
        "client_authentication_required: this endpoint needs client authentication: a client secret (HTTP Basic or client_secret) or a client assertion (private_key_jwt)"
    )]
    ConfidentialClientRequired,
}

impl ClientAuthError {
    /// The stable rule code this refusal's description leads with (see
    /// [`GrantError::rule`]); a refused client assertion is named by the rule it broke.
    pub fn rule(&self) -> &'static str {
        match self {
            ClientAuthError::ClientAssertion(error) => error.rule(),
            ClientAuthError::MalformedBasic => "client_auth_malformed",
            ClientAuthError::SeveralMethods => "client_auth_several_methods",
            ClientAuthError::ClientIdMismatch => "client_id_mismatch",
            ClientAuthError::Missing | ClientAuthError::ConfidentialClientRequired => {
                "client_authentication_required"
            }
            ClientAuthError::Failed | ClientAuthError::ClientAssertionUnknownClient => {
                "client_authentication_failed"
            }
            ClientAuthError::ClientAssertionType => "client_assertion_type",
            ClientAuthError::ClientAssertionClientId => "client_assertion_client_id",
            ClientAuthError::ClientAssertionSubject => "client_assertion_subject",
            ClientAuthError::ClientAssertionJtiRequired => "jti_required",
            ClientAuthError::ClientAssertionTyp(_) => "client_assertion_typ",
            ClientAuthError::ClientAssertionReplayed => "jti_replayed",
            ClientAuthError::SecretRequired => "client_secret_required",
        }
    }
}

/// Reads the credentials of a request from its `Authorization` header value (if
/// any) and its form's `client_id` and `client_secret`. The Basic user and password
/// are form-urlencoded before base64 (RFC 6749 section 2.3.1) and decoded here.
pub fn read_credentials(
    authorization: Option<&str>,
    form_client_id: Option<&str>,
    form_client_secret: Option<&str>,
) -> Result<ClientCredentials, ClientAuthError> {
    // Another scheme is not client authentication: DocuSign's SDK sends its own
    // `Authorization: Bearer` on token requests, which is ignored here.
    let basic_value = authorization.filter(|value| {
        value
            .trim_start()
            .get(..6)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case("basic "))
    });
    let basic = match basic_value {
        Some(value) => {
            let (_, encoded) = value
                .trim()
                .split_once(' ')
                .ok_or(ClientAuthError::MalformedBasic)?;
            let decoded = b64::decode_standard(encoded.trim())
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or(ClientAuthError::MalformedBasic)?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or(ClientAuthError::MalformedBasic)?;
            Some((form_urlencoded_decode(id), form_urlencoded_decode(secret)))
        }
        None => None,
    };
    match (basic, form_client_id, form_client_secret) {
        (Some(_), _, Some(_)) => Err(ClientAuthError::SeveralMethods),
        (Some((id, _)), Some(form_id), None) if form_id != id => {
            Err(ClientAuthError::ClientIdMismatch)
        }
        (Some((client_id, secret)), _, None) => Ok(ClientCredentials::Secret { client_id, secret }),
        (None, Some(client_id), Some(secret)) => Ok(ClientCredentials::Secret {
            client_id: client_id.to_owned(),
            secret: secret.to_owned(),
        }),
        (None, Some(client_id), None) => Ok(ClientCredentials::Public {
            client_id: client_id.to_owned(),
        }),
        (None, None, Some(_)) => Err(ClientAuthError::Missing),
        (None, None, None) => Ok(ClientCredentials::None),
    }
}

/// Reads the credentials of a request as [`read_credentials`] does, and a client
/// assertion: `client_assertion_type` and `client_assertion` together, alone or with
/// a `client_id` that names the assertion's issuer. With Basic or a secret too, it is
/// two methods in one request.
pub fn read_client_credentials(
    authorization: Option<&str>,
    form_client_id: Option<&str>,
    form_client_secret: Option<&str>,
    assertion_type: Option<&str>,
    assertion: Option<&str>,
) -> Result<ClientCredentials, ClientAuthError> {
    let others = match read_credentials(authorization, form_client_id, form_client_secret) {
        // A `client_secret` without its `client_id` is still a second method beside
        // an assertion, not a request without credentials.
        Err(ClientAuthError::Missing) if assertion.is_some() => {
            return Err(ClientAuthError::SeveralMethods);
        }
        others => others?,
    };
    let assertion = match (assertion_type, assertion) {
        (None, None) => return Ok(others),
        (Some(kind), Some(assertion)) if kind == jwtgrant_proto::CLIENT_ASSERTION_TYPE => assertion,
        _ => return Err(ClientAuthError::ClientAssertionType),
    };
    if matches!(others, ClientCredentials::Secret { .. }) {
        return Err(ClientAuthError::SeveralMethods);
    }
    let client_id = UnverifiedAssertion::parse(assertion)
        .map_err(ClientAuthError::ClientAssertion)?
        .issuer()
        .to_owned();
    match form_client_id {
        // An issuer URL naming another client: a trusted issuer's token, which the
        // adapter checks against that issuer (integration keys are never URLs).
        Some(id) if id != client_id && client_id.contains("://") => {
            Ok(ClientCredentials::FederatedAssertion {
                client_id: id.to_owned(),
                issuer: client_id,
                assertion: assertion.to_owned(),
            })
        }
        Some(id) if id != client_id => Err(ClientAuthError::ClientAssertionClientId),
        _ => Ok(ClientCredentials::Assertion {
            client_id,
            assertion: assertion.to_owned(),
        }),
    }
}

/// Checks a client assertion (RFC 7523 sections 2.2 and 3) against `integration`
/// (its issuer's; `None` when there is none): the assertion rules of the JWT bearer
/// grant under `policy` (key and `alg`, signature, audience, times and lifetime),
/// then `sub` equal to `iss`, a `jti`, and `typ` when present. The replay guard must
/// be recorded by the caller before the client counts as authenticated.
pub fn authenticate_assertion(
    assertion: &str,
    integration: Option<&Integration>,
    policy: &AssertionPolicy,
    now: i64,
) -> Result<(AuthenticatedClient, ReplayGuard), ClientAuthError> {
    let unverified =
        UnverifiedAssertion::parse(assertion).map_err(ClientAuthError::ClientAssertion)?;
    check_client_assertion_typ(&unverified)?;
    let integration = integration
        .filter(|i| i.key == unverified.issuer())
        .ok_or(ClientAuthError::ClientAssertionUnknownClient)?;
    let verified = unverified
        .verify(integration, policy, now)
        .map_err(|error| match error {
            GrantError::IssuerNotFound | GrantError::IntegrationDisabled => {
                ClientAuthError::ClientAssertionUnknownClient
            }
            other => ClientAuthError::ClientAssertion(other),
        })?;
    check_client_assertion_subject(&verified)?;
    let guard = client_assertion_guard(&verified, policy)?;
    Ok((
        AuthenticatedClient {
            client_id: integration.key.clone(),
            confidential: true,
        },
        guard,
    ))
}

/// A client assertion's `typ`, when present, is `client-authentication+jwt` or `JWT`.
fn check_client_assertion_typ(unverified: &UnverifiedAssertion<'_>) -> Result<(), ClientAuthError> {
    match unverified.typ() {
        Some(typ)
            if !typ.eq_ignore_ascii_case(jwtgrant_proto::CLIENT_ASSERTION_TYP)
                && !typ.eq_ignore_ascii_case("JWT") =>
        {
            Err(ClientAuthError::ClientAssertionTyp(crate::jws::truncate(
                typ,
            )))
        }
        _ => Ok(()),
    }
}

/// A client assertion's `sub` is its `iss`, the client.
fn check_client_assertion_subject(verified: &VerifiedAssertion) -> Result<(), ClientAuthError> {
    if verified.subject() != Some(verified.issuer()) {
        return Err(ClientAuthError::ClientAssertionSubject);
    }
    Ok(())
}

/// The client assertion's `jti`, which it must have, to record before the client
/// counts as authenticated.
fn client_assertion_guard(
    verified: &VerifiedAssertion,
    policy: &AssertionPolicy,
) -> Result<ReplayGuard, ClientAuthError> {
    let jti = verified
        .jti()
        .ok_or(ClientAuthError::ClientAssertionJtiRequired)?;
    Ok(ReplayGuard {
        // Kept apart from the same integration's grant assertions.
        issuer: format!("client-assertion:{}", verified.issuer()),
        jti: jti.to_owned(),
        remember_until: verified.expires_at().saturating_add(policy.leeway_secs),
    })
}

/// Explains [`authenticate_assertion`]: each rule of the client assertion recorded
/// in `explanation`. `integration` is the one its `iss` names, if any. Returns the
/// client and the `jti` to record when every rule held.
pub fn explain_assertion(
    assertion: &str,
    integration: Option<&Integration>,
    policy: &AssertionPolicy,
    now: i64,
    explanation: &mut Explanation,
) -> Option<(AuthenticatedClient, ReplayGuard)> {
    let start = explanation.checks().len();
    let parsed = UnverifiedAssertion::parse(assertion).map_err(ClientAuthError::ClientAssertion);
    let unverified = explanation.check("parse", parsed, |unverified| {
        format!(
            "a signed JWT from '{}'",
            crate::jws::truncate(unverified.issuer())
        )
    })?;
    explanation.check(
        "typ",
        check_client_assertion_typ(&unverified),
        |()| match unverified.typ() {
            Some(typ) => format!("typ '{}'", crate::jws::truncate(typ)),
            None => "no typ".into(),
        },
    );
    let found = integration
        .filter(|i| i.key == unverified.issuer() && i.active)
        .ok_or(ClientAuthError::ClientAssertionUnknownClient);
    let Some(integration) = explanation.check("client", found, |i| {
        format!("integration '{}' ({}) is active", i.key, i.name)
    }) else {
        explanation.skip("signature", "no client to verify it with");
        return None;
    };
    let rules = ClaimRules {
        accepted_audiences: &policy.accepted_audiences,
        leeway_secs: policy.leeway_secs,
        max_lifetime_secs: policy.max_lifetime_secs,
        require_jti: integration.require_jti,
    };
    let (verified, _) = unverified.explain_with_keys(
        &integration.keys,
        &rules,
        now,
        explanation,
        ClientAuthError::ClientAssertion,
    )?;
    explanation.check("subject", check_client_assertion_subject(&verified), |()| {
        "sub is iss, the client".into()
    });
    let guard = explanation.check(
        "jti_required",
        client_assertion_guard(&verified, policy),
        |_| "has a jti".into(),
    )?;
    explanation.passed_since(start).then(|| {
        (
            AuthenticatedClient {
                client_id: integration.key.clone(),
                confidential: true,
            },
            guard,
        )
    })
}

/// `application/x-www-form-urlencoded` decoding of one component: `+` is a space,
/// `%XX` a byte; invalid escapes are kept as they are.
fn form_urlencoded_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                if let Some(byte) = hex {
                    out.push(byte);
                    i += 3;
                    continue;
                }
                out.push(b);
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A client whose credentials were accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedClient {
    /// The integration key.
    pub client_id: String,
    /// Whether it proved a secret (a confidential client) or only named itself.
    pub confidential: bool,
}

/// Decides whether `credentials` authenticate `integration` (looked up by the
/// credentials' client id; `None` when there is no such integration).
/// `secret_matches(hash, secret)` checks a presented secret against the
/// integration's stored secret hash.
pub fn authenticate(
    credentials: &ClientCredentials,
    integration: Option<&Integration>,
    secret_matches: impl FnOnce(&str, &str) -> bool,
) -> Result<AuthenticatedClient, ClientAuthError> {
    let integration = match credentials {
        ClientCredentials::None => return Err(ClientAuthError::Missing),
        _ => integration
            .filter(|i| i.active)
            .ok_or(ClientAuthError::Failed)?,
    };
    match (credentials, integration.client_secret_hash.as_deref()) {
        (ClientCredentials::Secret { client_id, secret }, Some(hash))
            if *client_id == integration.key && secret_matches(hash, secret) =>
        {
            Ok(AuthenticatedClient {
                client_id: integration.key.clone(),
                confidential: true,
            })
        }
        (ClientCredentials::Secret { .. }, _) => Err(ClientAuthError::Failed),
        // Verified by `authenticate_assertion` (or, for a trusted issuer's token,
        // `trusted_issuer::authenticate_federated_client`), which need the policy,
        // the keys and `now`.
        (ClientCredentials::Assertion { .. } | ClientCredentials::FederatedAssertion { .. }, _) => {
            Err(ClientAuthError::Failed)
        }
        (ClientCredentials::Public { .. }, Some(_)) => Err(ClientAuthError::SecretRequired),
        (ClientCredentials::Public { client_id }, None) if *client_id == integration.key => {
            Ok(AuthenticatedClient {
                client_id: integration.key.clone(),
                confidential: false,
            })
        }
        _ => Err(ClientAuthError::Failed),
    }
}

impl ClientCredentials {
    /// The client id the credentials name, if any.
    pub fn client_id(&self) -> Option<&str> {
        match self {
            ClientCredentials::Secret { client_id, .. }
            | ClientCredentials::Assertion { client_id, .. }
            | ClientCredentials::FederatedAssertion { client_id, .. }
            | ClientCredentials::Public { client_id } => Some(client_id),
            ClientCredentials::None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn every_refusal_leads_with_its_rule_code() {
        let errors = [
            ClientAuthError::MalformedBasic,
            ClientAuthError::SeveralMethods,
            ClientAuthError::ClientIdMismatch,
            ClientAuthError::Missing,
            ClientAuthError::Failed,
            ClientAuthError::ClientAssertionType,
            ClientAuthError::ClientAssertion(GrantError::Expired),
            ClientAuthError::ClientAssertionClientId,
            ClientAuthError::ClientAssertionUnknownClient,
            ClientAuthError::ClientAssertionSubject,
            ClientAuthError::ClientAssertionJtiRequired,
            ClientAuthError::ClientAssertionTyp("x".into()),
            ClientAuthError::ClientAssertionReplayed,
            ClientAuthError::SecretRequired,
            ClientAuthError::ConfidentialClientRequired,
        ];
        for error in errors {
            let text = error.to_string();
            assert!(text.starts_with(&format!("{}: ", error.rule())), "{text:?}");
        }
        assert_eq!(
            ClientAuthError::ClientAssertion(GrantError::Expired).to_string(),
            "assertion_expired: client assertion refused: assertion expired: 'exp' is in the past"
        );
    }

    fn basic(id: &str, secret: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    }

    fn integration(key: &str, active: bool) -> Integration {
        integration_with(key, active, None)
    }

    fn integration_with(key: &str, active: bool, hash: Option<&str>) -> Integration {
        Integration {
            key: key.into(),
            name: "Test".into(),
            active,
            allow_application_tokens: false,
            require_jti: false,
            scopes: vec![],
            redirect_uris: vec![],
            resources: Vec::new(),
            default_scopes: Vec::new(),
            client_secret_hash: hash.map(str::to_owned),
            keys: vec![],
        }
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let creds = read_credentials(Some(&basic("id%3A1", "s+e%2Bc")), None, None);
        assert_eq!(
            creds,
            Ok(ClientCredentials::Secret {
                client_id: "id:1".into(),
                secret: "s e+c".into()
            })
        );
    }

    #[test]
    fn methods_are_exclusive_and_consistent() {
        assert_eq!(
            read_credentials(Some(&basic("a", "s")), None, Some("s")),
            Err(ClientAuthError::SeveralMethods)
        );
        assert_eq!(
            read_credentials(Some(&basic("a", "s")), Some("b"), None),
            Err(ClientAuthError::ClientIdMismatch)
        );
        assert_eq!(
            read_credentials(Some("Bearer x"), Some("a"), None),
            Ok(ClientCredentials::Public {
                client_id: "a".into()
            })
        );
        assert_eq!(
            read_credentials(Some("Basic !!!"), None, None),
            Err(ClientAuthError::MalformedBasic)
        );
        assert_eq!(
            read_credentials(None, Some("a"), None),
            Ok(ClientCredentials::Public {
                client_id: "a".into()
            })
        );
        assert_eq!(
            read_credentials(None, None, None),
            Ok(ClientCredentials::None)
        );
    }

    #[test]
    fn confidential_clients_need_their_secret() {
        let i = integration_with("k", true, Some("hash"));
        let secret = ClientCredentials::Secret {
            client_id: "k".into(),
            secret: "right".into(),
        };
        let ok = authenticate(&secret, Some(&i), |_, s| s == "right");
        assert_eq!(ok.map(|c| c.confidential), Ok(true));
        let wrong = authenticate(&secret, Some(&i), |_, _| false);
        assert_eq!(wrong, Err(ClientAuthError::Failed));
        let public = ClientCredentials::Public {
            client_id: "k".into(),
        };
        assert_eq!(
            authenticate(&public, Some(&i), |_, _| true),
            Err(ClientAuthError::SecretRequired)
        );
        // A secret sent for a client that has none is not accepted.
        assert_eq!(
            authenticate(&secret, Some(&integration("k", true)), |_, _| true),
            Err(ClientAuthError::Failed)
        );
    }

    #[test]
    fn public_clients_and_disabled_or_unknown_ones() {
        let public = ClientCredentials::Public {
            client_id: "k".into(),
        };
        let i = integration("k", true);
        assert_eq!(
            authenticate(&public, Some(&i), |_, _| false).map(|c| c.confidential),
            Ok(false)
        );
        let disabled = integration("k", false);
        assert_eq!(
            authenticate(&public, Some(&disabled), |_, _| true),
            Err(ClientAuthError::Failed)
        );
        assert_eq!(
            authenticate(&public, None, |_, _| true),
            Err(ClientAuthError::Failed)
        );
    }
}
