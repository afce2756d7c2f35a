//! The core's one error type: every reason a grant is refused, each mapped to its
//! OAuth code in one place ([`GrantError::code`]) and described in words a developer
//! can act on. Descriptions start with DocuSign's short code where it has one.

use jwtgrant_proto::ErrorCode;

/// Why the core refused an assertion or a grant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrantError {
    /// Rule 1: the assertion is larger than the server accepts.
    #[error("assertion_too_large: assertion is {len} bytes; at most {max} are accepted")]
    AssertionTooLarge {
        /// Bytes received.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// Rule 1: five parts, a JWE, which is not accepted.
    #[error(
        "assertion_encrypted: assertion is a JWE (five parts); a signed JWT (JWS, three parts) is required"
    )]
    EncryptedAssertion,
    /// Rule 1: not three dot-separated parts.
    #[error(
        "assertion_malformed: assertion must be a compact JWS of three base64url parts separated by '.', found {0} parts"
    )]
    NotCompactJws(usize),
    /// Rule 1: a part is not base64url.
    #[error("assertion_malformed: assertion {0} is not valid base64url")]
    BadBase64(&'static str),
    /// Rule 1: the header or payload is not a JSON object.
    #[error("assertion_malformed: assertion {0} is not a JSON object")]
    NotJsonObject(&'static str),
    /// Rule 1: no `alg` in the header.
    #[error("alg_missing: assertion header has no 'alg'")]
    AlgorithmMissing,
    /// Rule 1: `alg: none`.
    #[error("alg_none: alg 'none' is refused: assertions must be signed")]
    AlgorithmNone,
    /// Rule 1: an HMAC algorithm, which would use a public key as a shared secret.
    #[error("alg_hmac: alg '{0}' is refused: HMAC algorithms are not accepted for assertions")]
    AlgorithmHmac(String),
    /// Rule 1: an algorithm jwtgrant does not know.
    #[error("alg_unsupported: alg '{0}' is not supported")]
    AlgorithmUnknown(String),
    /// Rule 1: `crit` header present.
    #[error(
        "crit_unsupported: assertion header carries 'crit'; no critical extensions are supported"
    )]
    CriticalHeader,
    /// Rule 1: the `alg` does not suit the integration's key (or keys).
    #[error(
        "no_valid_keys_or_signatures: alg '{0}' does not match the type of any active key of this integration"
    )]
    AlgorithmKeyMismatch(String),
    /// Rule 1: `kid` names no active key of the integration.
    #[error("no_valid_keys_or_signatures: no active key of this integration has kid '{0}'")]
    UnknownKeyId(String),
    /// Rule 1: no key verified the signature.
    #[error(
        "no_valid_keys_or_signatures: the signature does not verify with any active key of this integration"
    )]
    NoValidKeysOrSignatures,
    /// A claim or header member has the wrong JSON type.
    #[error("claim_wrong_type: '{name}' must be {expected}")]
    WrongType {
        /// The claim or header member.
        name: &'static str,
        /// What it must be.
        expected: &'static str,
    },
    /// A required claim is absent.
    #[error("claim_missing: assertion has no '{0}' claim")]
    MissingClaim(&'static str),
    /// Rule 2: `iss` names no integration.
    #[error("issuer_not_found: no integration or trusted issuer is named by 'iss'")]
    IssuerNotFound,
    /// Rule 2: the integration is disabled.
    #[error("issuer_not_found: the integration named by 'iss' is disabled")]
    IntegrationDisabled,
    /// A trusted issuer that an operator disabled.
    #[error("issuer_not_found: the trusted issuer named by 'iss' is disabled")]
    TrustedIssuerDisabled,
    /// A trusted issuer past its `--expires-at`.
    #[error("issuer_not_found: the trust in the issuer named by 'iss' has expired")]
    TrustedIssuerExpired,
    /// A trusted issuer's keys could not be fetched (and no good keys are cached).
    #[error("issuer_keys_unavailable: {0}")]
    IssuerKeysUnavailable(String),
    /// The header's `typ` is not one the trusted issuer's policy accepts.
    #[error("typ_not_allowed: the trusted issuer does not accept tokens of typ '{0}'")]
    TypNotAllowed(String),
    /// The `alg` is not one the trusted issuer's policy accepts.
    #[error("no_valid_keys_or_signatures: alg '{0}' is not allowed for this issuer")]
    AlgorithmNotAllowed(String),
    /// The trusted issuer's condition is false (or failed) for this token.
    #[error("condition_not_met: the token does not meet the trusted issuer's condition")]
    ConditionNotMet,
    /// The token does not name a subject the issuer's mapping can use.
    #[error("subject_not_mapped: {0}")]
    SubjectNotMapped(&'static str),
    /// Rule 3: no accepted audience in `aud`.
    #[error(
        "audience_mismatch: 'aud' must contain this server's audience (its OAuth host, issuer URL or token endpoint URL)"
    )]
    AudienceMismatch,
    /// Rule 4: `exp` is past.
    #[error("assertion_expired: assertion expired: 'exp' is in the past")]
    Expired,
    /// Rule 4: `nbf` is in the future.
    #[error("assertion_not_yet_valid: assertion not yet valid: 'nbf' is in the future")]
    NotYetValid,
    /// Rule 4: `iat` is in the future.
    #[error("iat_in_future: 'iat' is in the future; check the client's clock")]
    IssuedInFuture,
    /// Rule 4: `exp` too far from `iat` (or now).
    #[error(
        "assertion_lifetime_too_long: assertion lifetime too long: 'exp' may be at most {max_secs} seconds after 'iat'"
    )]
    LifetimeTooLong {
        /// The server's maximum assertion lifetime.
        max_secs: i64,
    },
    /// Rule 5: the integration requires `jti`.
    #[error("jti_required: this integration requires a 'jti' claim in every assertion")]
    JtiRequired,
    /// Rule 5: `jti` already used.
    #[error("jti_replayed: 'jti' has already been used: each assertion may be exchanged once")]
    JtiReplayed,
    /// The request authenticated (or named) a client other than the integration the
    /// assertion is for.
    #[error(
        "presenting_client_mismatch: the assertion was issued for another client: its integration is not the client that authenticated this request"
    )]
    PresentingClientMismatch,
    /// Rule 6: `sub` names no user.
    #[error("user_not_found: no active user has this id")]
    UserNotFound,
    /// Rule 6: the user is disabled.
    #[error("user_not_found: the user named by 'sub' is disabled")]
    UserDisabled,
    /// Rule 6: a user token without `impersonation`.
    #[error(
        "consent_required: acting as a user needs the '{impersonation}' scope; ask for '{defaults}' and {marker}{consent_url}",
        impersonation = crate::grants::jwt_bearer::IMPERSONATION_SCOPE,
        defaults = jwtgrant_proto::DEFAULT_SCOPES.join(" "),
        marker = jwtgrant_proto::CONSENT_URL_MARKER
    )]
    ImpersonationScopeMissing {
        /// Where the user grants consent (to the scopes asked for plus `impersonation`).
        consent_url: String,
    },
    /// Rule 6: no consent covering the integration and scopes.
    #[error(
        "consent_required: the user has not consented to this integration for scope '{scope}'; {marker}{consent_url}",
        marker = jwtgrant_proto::CONSENT_URL_MARKER
    )]
    ConsentRequired {
        /// The scopes that need consent, space separated.
        scope: String,
        /// Where the user grants consent.
        consent_url: String,
    },
    /// Rule 6: an application token for an integration not allowed them.
    #[error(
        "application_tokens_not_allowed: assertion has no 'sub' and this integration may not request application tokens"
    )]
    ApplicationTokensNotAllowed,
    /// Client credentials grant: only a confidential client may use it (RFC 6749
    /// section 4.4).
    #[error(
        "confidential_client_required: the client_credentials grant needs a confidential client: authenticate with the client secret"
    )]
    ClientCredentialsNeedConfidentialClient,
    /// Client credentials grant: the integration may not obtain application tokens.
    #[error(
        "application_tokens_not_allowed: this integration may not request application tokens, so it may not use the client_credentials grant"
    )]
    ClientCredentialsNotAllowed,
    /// Rule 7: a scope the integration may not request.
    #[error("scope_not_allowed: scope '{0}' is not allowed for this integration")]
    ScopeNotAllowed(String),
    /// Authorization code: no code with this value exists.
    #[error(
        "code_invalid: the authorization code is not valid: it was never issued, or has been cleaned up"
    )]
    CodeInvalid,
    /// Authorization code: redeemed before; what it issued is now revoked.
    #[error(
        "code_reused: the authorization code was already used; the tokens issued for it are revoked"
    )]
    CodeReused,
    /// Authorization code: older than ten minutes.
    #[error("code_expired: the authorization code has expired; codes are valid for 10 minutes")]
    CodeExpired,
    /// Authorization code: issued to another client.
    #[error("code_client_mismatch: the authorization code was issued to another client")]
    CodeClientMismatch,
    /// Authorization code: `redirect_uri` differs from the authorization request's.
    #[error(
        "redirect_uri_mismatch: 'redirect_uri' does not match the one the authorization code was sent to"
    )]
    RedirectUriMismatch,
    /// PKCE: the code has a challenge but no `code_verifier` was sent.
    #[error(
        "pkce_verifier_missing: 'code_verifier' is required: the authorization request carried a code_challenge"
    )]
    PkceVerifierMissing,
    /// PKCE: the verifier does not hash to the challenge.
    #[error(
        "pkce_mismatch: PKCE verification failed: 'code_verifier' does not match the code_challenge (S256)"
    )]
    PkceMismatch,
    /// PKCE: a verifier for a code issued without a challenge.
    #[error(
        "pkce_verifier_unexpected: 'code_verifier' was sent but the authorization request carried no code_challenge"
    )]
    PkceVerifierUnexpected,
    /// Refresh token: unknown.
    #[error("refresh_token_invalid: the refresh token is not valid")]
    RefreshTokenInvalid,
    /// Refresh token: its chain was revoked.
    #[error("refresh_token_revoked: the refresh token has been revoked")]
    RefreshTokenRevoked,
    /// Refresh token: used before; the whole chain is now revoked.
    #[error(
        "refresh_token_reused: the refresh token was already used; every token of its chain is now revoked"
    )]
    RefreshTokenReused,
    /// Refresh token: issued to another client.
    #[error("refresh_token_client_mismatch: the refresh token was issued to another client")]
    RefreshTokenClientMismatch,
    /// Refresh token: past its lifetime.
    #[error(
        "refresh_token_expired: the refresh token has expired; send the user through the authorization page again"
    )]
    RefreshTokenExpired,
    /// Refresh token: the user withdrew consent for a scope of the grant.
    #[error(
        "consent_withdrawn: the user has withdrawn consent for this application; send the user through the authorization page again"
    )]
    ConsentWithdrawn,
    /// Refresh: `scope` asks for more than the original grant.
    #[error(
        "scope_beyond_grant: the 'scope' parameter may only narrow the original grant; '{0}' is not in it"
    )]
    ScopeBeyondGrant(String),
    /// ID-JAG: presented without client authentication, or by a public client.
    #[error(
        "client_authentication_required: an ID-JAG is accepted only from an authenticated confidential client"
    )]
    IdJagClientAuthenticationRequired,
    /// ID-JAG: its `client_id` is not the client that presented it.
    #[error(
        "id_jag_client_mismatch: the ID-JAG's 'client_id' is not the authenticated client, or not the client its issuer is bound to"
    )]
    IdJagClientMismatch,
    /// ID-JAG: `aud` is not exactly this server's issuer, as its one value.
    #[error("id_jag_audience: an ID-JAG's 'aud' must be exactly this server's issuer, alone")]
    IdJagAudience,
    /// ID-JAG: none of the requested scopes is in the ID-JAG.
    #[error("scope_not_in_id_jag: none of the requested scopes is granted by the ID-JAG")]
    IdJagNoScope,
    /// RFC 8707: a `resource` that is not an absolute URI, or has a fragment.
    #[error(
        "resource_malformed: 'resource' must be an absolute URI without a fragment (RFC 8707); '{0}' is not"
    )]
    ResourceMalformed(String),
    /// RFC 8707: a `resource` the integration may not ask tokens for.
    #[error("resource_not_allowed: resource '{0}' is not one this client may ask tokens for")]
    ResourceNotAllowed(String),
    /// RFC 8707: a redemption asks for a resource its grant did not name.
    #[error(
        "resource_beyond_grant: 'resource' may only narrow the resources of the original grant; '{0}' is not among them"
    )]
    ResourceBeyondGrant(String),
    /// Token exchange: the subject token is no ID token this server issued, or no
    /// longer sound.
    #[error("subject_token_invalid: the subject_token is not an ID token of this server: {0}")]
    SubjectTokenInvalid(&'static str),
    /// Token exchange: the ID token has expired.
    #[error(
        "subject_token_expired: the ID token has expired; sign the user in again for a fresh one"
    )]
    SubjectTokenExpired,
    /// Token exchange: the ID token was issued to another client.
    #[error("subject_token_client_mismatch: the ID token was issued to another client")]
    SubjectTokenClientMismatch,
    /// Token exchange: a malformed or unsupported request (the text leads with the
    /// rule).
    #[error("{rule}: {reason}")]
    TokenExchangeMalformed {
        /// The rule the request breaks.
        rule: &'static str,
        /// What is wrong, in words.
        reason: String,
    },
    /// Token exchange: asked without client authentication, or by a public client.
    #[error(
        "client_authentication_required: token exchange is offered only to an authenticated confidential client"
    )]
    TokenExchangeClientAuthenticationRequired,
    /// Token exchange: none of the requested scopes is in the trust target.
    #[error(
        "scope_not_in_trust_target: none of '{0}' may be carried in an ID-JAG for this audience"
    )]
    ScopeNotInTrustTarget(String),
    /// Token exchange: no trust target of this client names the audience.
    #[error(
        "audience_not_trusted: this client may not get ID-JAGs for '{0}' (see `jwtgrant trust-target add`)"
    )]
    AudienceNotTrusted(String),
    /// Rule 7: the form's scope asks for more than the assertion's.
    #[error(
        "scope_beyond_assertion: the 'scope' parameter may only narrow the assertion's 'scope' claim; '{0}' is not in it"
    )]
    ScopeBeyondAssertion(String),
}

impl GrantError {
    /// The stable rule code this refusal's description leads with: the name the
    /// client, the audit trail and the metrics give it (DocuSign's short code where
    /// it has one).
    pub fn rule(&self) -> &'static str {
        match self {
            GrantError::AssertionTooLarge { .. } => "assertion_too_large",
            GrantError::EncryptedAssertion => "assertion_encrypted",
            GrantError::NotCompactJws(_)
            | GrantError::BadBase64(_)
            | GrantError::NotJsonObject(_) => "assertion_malformed",
            GrantError::AlgorithmMissing => "alg_missing",
            GrantError::AlgorithmNone => "alg_none",
            GrantError::AlgorithmHmac(_) => "alg_hmac",
            GrantError::AlgorithmUnknown(_) => "alg_unsupported",
            GrantError::CriticalHeader => "crit_unsupported",
            GrantError::AlgorithmKeyMismatch(_)
            | GrantError::UnknownKeyId(_)
            | GrantError::NoValidKeysOrSignatures
            | GrantError::AlgorithmNotAllowed(_) => "no_valid_keys_or_signatures",
            GrantError::WrongType { .. } => "claim_wrong_type",
            GrantError::MissingClaim(_) => "claim_missing",
            GrantError::IssuerNotFound
            | GrantError::IntegrationDisabled
            | GrantError::TrustedIssuerDisabled
            | GrantError::TrustedIssuerExpired => "issuer_not_found",
            GrantError::IssuerKeysUnavailable(_) => "issuer_keys_unavailable",
            GrantError::TypNotAllowed(_) => "typ_not_allowed",
            GrantError::ConditionNotMet => "condition_not_met",
            GrantError::SubjectNotMapped(_) => "subject_not_mapped",
            GrantError::AudienceMismatch => "audience_mismatch",
            GrantError::Expired => "assertion_expired",
            GrantError::NotYetValid => "assertion_not_yet_valid",
            GrantError::IssuedInFuture => "iat_in_future",
            GrantError::LifetimeTooLong { .. } => "assertion_lifetime_too_long",
            GrantError::JtiRequired => "jti_required",
            GrantError::JtiReplayed => "jti_replayed",
            GrantError::PresentingClientMismatch => "presenting_client_mismatch",
            GrantError::UserNotFound | GrantError::UserDisabled => "user_not_found",
            GrantError::ImpersonationScopeMissing { .. } | GrantError::ConsentRequired { .. } => {
                "consent_required"
            }
            GrantError::ApplicationTokensNotAllowed | GrantError::ClientCredentialsNotAllowed => {
                "application_tokens_not_allowed"
            }
            GrantError::ClientCredentialsNeedConfidentialClient => "confidential_client_required",
            GrantError::ScopeNotAllowed(_) => "scope_not_allowed",
            GrantError::CodeInvalid => "code_invalid",
            GrantError::CodeReused => "code_reused",
            GrantError::CodeExpired => "code_expired",
            GrantError::CodeClientMismatch => "code_client_mismatch",
            GrantError::RedirectUriMismatch => "redirect_uri_mismatch",
            GrantError::PkceVerifierMissing => "pkce_verifier_missing",
            GrantError::PkceMismatch => "pkce_mismatch",
            GrantError::PkceVerifierUnexpected => "pkce_verifier_unexpected",
            GrantError::RefreshTokenInvalid => "refresh_token_invalid",
            GrantError::RefreshTokenRevoked => "refresh_token_revoked",
            GrantError::RefreshTokenReused => "refresh_token_reused",
            GrantError::RefreshTokenClientMismatch => "refresh_token_client_mismatch",
            GrantError::RefreshTokenExpired => "refresh_token_expired",
            GrantError::ConsentWithdrawn => "consent_withdrawn",
            GrantError::ScopeBeyondGrant(_) => "scope_beyond_grant",
            GrantError::IdJagClientAuthenticationRequired
            | GrantError::TokenExchangeClientAuthenticationRequired => {
                "client_authentication_required"
            }
            GrantError::IdJagClientMismatch => "id_jag_client_mismatch",
            GrantError::IdJagAudience => "id_jag_audience",
            GrantError::IdJagNoScope => "scope_not_in_id_jag",
            GrantError::ResourceMalformed(_) => "resource_malformed",
            GrantError::ResourceNotAllowed(_) => "resource_not_allowed",
            GrantError::ResourceBeyondGrant(_) => "resource_beyond_grant",
            GrantError::SubjectTokenInvalid(_) => "subject_token_invalid",
            GrantError::SubjectTokenExpired => "subject_token_expired",
            GrantError::SubjectTokenClientMismatch => "subject_token_client_mismatch",
            GrantError::ScopeNotInTrustTarget(_) => "scope_not_in_trust_target",
            GrantError::AudienceNotTrusted(_) => "audience_not_trusted",
            GrantError::ScopeBeyondAssertion(_) => "scope_beyond_assertion",
            GrantError::TokenExchangeMalformed { rule, .. } => rule,
        }
    }

    /// The OAuth error code this refusal is answered with.
    pub fn code(&self) -> ErrorCode {
        match self {
            GrantError::ScopeNotAllowed(_)
            | GrantError::ScopeBeyondAssertion(_)
            | GrantError::ScopeBeyondGrant(_) => ErrorCode::InvalidScope,
            GrantError::IdJagClientAuthenticationRequired
            | GrantError::TokenExchangeClientAuthenticationRequired => ErrorCode::InvalidClient,
            GrantError::TokenExchangeMalformed { .. } => ErrorCode::InvalidRequest,
            GrantError::AudienceNotTrusted(_) => ErrorCode::InvalidTarget,
            GrantError::IdJagNoScope | GrantError::ScopeNotInTrustTarget(_) => {
                ErrorCode::InvalidScope
            }
            GrantError::ResourceMalformed(_)
            | GrantError::ResourceNotAllowed(_)
            | GrantError::ResourceBeyondGrant(_) => ErrorCode::InvalidTarget,
            GrantError::ImpersonationScopeMissing { .. } | GrantError::ConsentRequired { .. } => {
                ErrorCode::ConsentRequired
            }
            GrantError::ClientCredentialsNeedConfidentialClient
            | GrantError::ClientCredentialsNotAllowed => ErrorCode::UnauthorizedClient,
            // Listed one by one: a new refusal must choose its code here.
            GrantError::AssertionTooLarge { .. }
            | GrantError::EncryptedAssertion
            | GrantError::NotCompactJws(_)
            | GrantError::BadBase64(_)
            | GrantError::NotJsonObject(_)
            | GrantError::AlgorithmMissing
            | GrantError::AlgorithmNone
            | GrantError::AlgorithmHmac(_)
            | GrantError::AlgorithmUnknown(_)
            | GrantError::CriticalHeader
            | GrantError::AlgorithmKeyMismatch(_)
            | GrantError::UnknownKeyId(_)
            | GrantError::NoValidKeysOrSignatures
            | GrantError::WrongType { .. }
            | GrantError::MissingClaim(_)
            | GrantError::IssuerNotFound
            | GrantError::IntegrationDisabled
            | GrantError::TrustedIssuerDisabled
            | GrantError::TrustedIssuerExpired
            | GrantError::IssuerKeysUnavailable(_)
            | GrantError::TypNotAllowed(_)
            | GrantError::AlgorithmNotAllowed(_)
            | GrantError::ConditionNotMet
            | GrantError::SubjectNotMapped(_)
            | GrantError::AudienceMismatch
            | GrantError::Expired
            | GrantError::NotYetValid
            | GrantError::IssuedInFuture
            | GrantError::LifetimeTooLong { .. }
            | GrantError::JtiRequired
            | GrantError::JtiReplayed
            | GrantError::PresentingClientMismatch
            | GrantError::IdJagClientMismatch
            | GrantError::IdJagAudience
            | GrantError::UserNotFound
            | GrantError::UserDisabled
            | GrantError::ApplicationTokensNotAllowed
            | GrantError::CodeInvalid
            | GrantError::CodeReused
            | GrantError::CodeExpired
            | GrantError::CodeClientMismatch
            | GrantError::RedirectUriMismatch
            | GrantError::PkceVerifierMissing
            | GrantError::PkceMismatch
            | GrantError::PkceVerifierUnexpected
            | GrantError::RefreshTokenInvalid
            | GrantError::RefreshTokenRevoked
            | GrantError::RefreshTokenReused
            | GrantError::RefreshTokenClientMismatch
            | GrantError::RefreshTokenExpired
            | GrantError::ConsentWithdrawn
            | GrantError::SubjectTokenInvalid(_)
            | GrantError::SubjectTokenExpired
            | GrantError::SubjectTokenClientMismatch => ErrorCode::InvalidGrant,
        }
    }

    /// The description without its leading rule code: what went wrong, in words.
    pub fn reason(&self) -> String {
        let text = self.to_string();
        match text
            .strip_prefix(self.rule())
            .and_then(|rest| rest.strip_prefix(": "))
        {
            Some(reason) => reason.to_owned(),
            None => text,
        }
    }

    /// The consent URL to show the user, for `consent_required`.
    pub fn consent_url(&self) -> Option<&str> {
        match self {
            GrantError::ImpersonationScopeMissing { consent_url }
            | GrantError::ConsentRequired { consent_url, .. } => Some(consent_url),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::GrantError;
    use jwtgrant_proto::ErrorCode;

    /// One of every refusal: each description leads with its rule code and a colon,
    /// so the client, the audit trail and the metrics name a refusal alike.
    pub(crate) fn one_of_each() -> Vec<GrantError> {
        let s = || "x".to_owned();
        vec![
            GrantError::AssertionTooLarge { len: 9, max: 8 },
            GrantError::EncryptedAssertion,
            GrantError::NotCompactJws(2),
            GrantError::BadBase64("header"),
            GrantError::NotJsonObject("payload"),
            GrantError::AlgorithmMissing,
            GrantError::AlgorithmNone,
            GrantError::AlgorithmHmac(s()),
            GrantError::AlgorithmUnknown(s()),
            GrantError::CriticalHeader,
            GrantError::AlgorithmKeyMismatch(s()),
            GrantError::UnknownKeyId(s()),
            GrantError::NoValidKeysOrSignatures,
            GrantError::WrongType {
                name: "exp",
                expected: "a number",
            },
            GrantError::MissingClaim("exp"),
            GrantError::IssuerNotFound,
            GrantError::IntegrationDisabled,
            GrantError::TrustedIssuerDisabled,
            GrantError::TrustedIssuerExpired,
            GrantError::IssuerKeysUnavailable(s()),
            GrantError::TypNotAllowed(s()),
            GrantError::AlgorithmNotAllowed(s()),
            GrantError::ConditionNotMet,
            GrantError::SubjectNotMapped("no sub"),
            GrantError::AudienceMismatch,
            GrantError::Expired,
            GrantError::NotYetValid,
            GrantError::IssuedInFuture,
            GrantError::LifetimeTooLong { max_secs: 3600 },
            GrantError::JtiRequired,
            GrantError::JtiReplayed,
            GrantError::PresentingClientMismatch,
            GrantError::UserNotFound,
            GrantError::UserDisabled,
            GrantError::ImpersonationScopeMissing { consent_url: s() },
            GrantError::ConsentRequired {
                scope: s(),
                consent_url: s(),
            },
            GrantError::ApplicationTokensNotAllowed,
            GrantError::ClientCredentialsNeedConfidentialClient,
            GrantError::ClientCredentialsNotAllowed,
            GrantError::ScopeNotAllowed(s()),
            GrantError::CodeInvalid,
            GrantError::CodeReused,
            GrantError::CodeExpired,
            GrantError::CodeClientMismatch,
            GrantError::RedirectUriMismatch,
            GrantError::PkceVerifierMissing,
            GrantError::PkceMismatch,
            GrantError::PkceVerifierUnexpected,
            GrantError::RefreshTokenInvalid,
            GrantError::RefreshTokenRevoked,
            GrantError::RefreshTokenReused,
            GrantError::RefreshTokenClientMismatch,
            GrantError::RefreshTokenExpired,
            GrantError::ConsentWithdrawn,
            GrantError::ScopeBeyondGrant(s()),
            GrantError::IdJagClientAuthenticationRequired,
            GrantError::IdJagClientMismatch,
            GrantError::IdJagAudience,
            GrantError::IdJagNoScope,
            GrantError::ResourceMalformed(s()),
            GrantError::ResourceNotAllowed(s()),
            GrantError::ResourceBeyondGrant(s()),
            GrantError::SubjectTokenInvalid("x"),
            GrantError::SubjectTokenExpired,
            GrantError::SubjectTokenClientMismatch,
            GrantError::TokenExchangeMalformed {
                rule: "audience_required",
                reason: s(),
            },
            GrantError::TokenExchangeClientAuthenticationRequired,
            GrantError::ScopeNotInTrustTarget(s()),
            GrantError::AudienceNotTrusted(s()),
            GrantError::ScopeBeyondAssertion(s()),
        ]
    }

    #[test]
    fn every_description_leads_with_its_rule_code() {
        for error in one_of_each() {
            let rule = error.rule();
            assert!(
                rule.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{rule} is not snake_case"
            );
            let text = error.to_string();
            assert!(
                text.starts_with(&format!("{rule}: ")),
                "{text:?} does not lead with {rule}"
            );
            assert!(!error.reason().starts_with(rule), "{text:?}");
        }
    }

    #[test]
    fn the_impersonation_refusal_names_the_default_scopes() {
        let error = GrantError::ImpersonationScopeMissing {
            consent_url: "https://as.example/oauth/auth".into(),
        };
        assert_eq!(
            error.to_string(),
            "consent_required: acting as a user needs the 'impersonation' scope; ask for \
             'signature impersonation' and send the user to https://as.example/oauth/auth"
        );
        assert_eq!(error.code(), ErrorCode::ConsentRequired);
        assert_eq!(error.consent_url(), Some("https://as.example/oauth/auth"));
    }
}
