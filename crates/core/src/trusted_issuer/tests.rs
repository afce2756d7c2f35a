//! One test per rule of a trusted issuer (PROTOCOL.md part two, "Trusted issuers"),
//! with a fixed `now`: the trust, the header, the keys, the claims under the
//! issuer's policy, the condition, the subject, the scopes, replay, federated
//! client authentication, and the policy itself. Each fails when its rule is
//! removed from `trusted_issuer.rs` (or from the shared verifier it calls).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::OnceLock;

use serde_json::json;

use super::*;
use crate::grants::jwt_bearer::decide;
use crate::jws::sign_compact;
use crate::keys::SigningKey;
use crate::model::{Consent, IntegrationKey, User};
use JwsAlgorithm::{Ps256, Rs256};

const NOW: i64 = 1_800_000_000;
/// GitHub Actions' issuer: one issuer for every repository on GitHub.
const ISSUER: &str = "https://token.actions.githubusercontent.com";
const ISSUER_ID: &str = "7b1e4c2a-9f3d-4a6e-8c5b-2d0f1e3a4b5c";
const KID: &str = "gh-1";
/// The integration the issuer is bound to.
const INTEGRATION: &str = "2c9e5b1a-7d3f-4e8a-b6c0-5a1f9d2e7c34";
/// The local user a `--subject user` token maps to (found by the adapter).
const USER: &str = "8a4c3f1e-2b7d-4c9a-8e5f-0d1c2b3a4f5e";
/// The server's own audience (part one's accepted audiences).
const SERVER_AUD: &str = "https://auth.example.test";
/// GitHub's default audience: the repository owner's URL.
const GITHUB_AUD: &str = "https://github.com/octo-org";
const WORKFLOW_SUB: &str = "repo:octo-org/octo-repo:ref:refs/heads/main";
const LEEWAY: i64 = 60;
const GITHUB_CONDITION: &str =
    r#"assertion.repository_owner == "octo-org" && assertion.ref == "refs/heads/main""#;

fn rsa() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| {
        SigningKey::from_pem(include_str!("../../testdata/keys/integration-rsa.pem")).unwrap()
    })
}

fn stranger() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| {
        SigningKey::from_pem(include_str!("../../testdata/keys/stranger-rsa.pem")).unwrap()
    })
}

/// The issuer's JWKS (its RSA key as `KID`, with `alg` when given) as the adapter
/// hands it over: parsed under `allowed`.
fn jwks(alg: Option<JwsAlgorithm>, allowed: &[JwsAlgorithm]) -> IssuerKeySet {
    let document = json!({ "keys": [rsa().public_key().to_jwk(Some(KID), alg)] });
    parse_jwks(&serde_json::to_vec(&document).unwrap(), allowed).unwrap()
}

/// Its key published without `alg`: every RSA algorithm.
fn keys() -> IssuerKeySet {
    jwks(None, &[])
}

/// The policy `issuer add --subject workload` gives, with nothing else set.
fn policy() -> IssuerPolicy {
    IssuerPolicy {
        keys: KeySource::JwksUri(format!("{ISSUER}/.well-known/jwks")),
        audiences: vec![],
        algorithms: vec![],
        typs: vec![],
        max_lifetime_secs: DEFAULT_MAX_LIFETIME_SECS,
        clock_skew_secs: None,
        replay: ReplayPolicy::SingleUse,
        subject: SubjectKind::Workload,
        user_claim: UserClaim::Sub,
        subject_expr: None,
        condition: None,
        scopes: vec![],
        expires_at: None,
        client_authentication: false,
        id_jag: false,
    }
}

fn new_issuer(policy: IssuerPolicy) -> Result<TrustedIssuer, IssuerPolicyError> {
    TrustedIssuer::new(
        ISSUER_ID.into(),
        ISSUER.into(),
        INTEGRATION.into(),
        true,
        policy,
    )
}

fn issuer(policy: IssuerPolicy) -> TrustedIssuer {
    new_issuer(policy).unwrap()
}

/// The issuer with `change` made to the default policy.
fn with_policy(change: impl FnOnce(&mut IssuerPolicy)) -> TrustedIssuer {
    let mut policy = policy();
    change(&mut policy);
    issuer(policy)
}

/// The server's policy (part one), whose audiences and leeway apply where the
/// issuer sets none.
fn server_policy() -> AssertionPolicy {
    AssertionPolicy {
        accepted_audiences: vec![SERVER_AUD.into(), format!("{SERVER_AUD}/oauth/token")],
        leeway_secs: LEEWAY,
        max_lifetime_secs: 3600,
    }
}

/// A GitHub Actions ID token's claims, for this server.
fn claims() -> Value {
    json!({
        "iss": ISSUER, "sub": WORKFLOW_SUB, "aud": SERVER_AUD,
        "iat": NOW, "nbf": NOW, "exp": NOW + 300, "jti": "gh-jti-1",
        "ref": "refs/heads/main", "ref_type": "branch", "sha": "example-sha",
        "repository": "octo-org/octo-repo", "repository_owner": "octo-org",
        "repository_owner_id": "65", "workflow": "deploy", "event_name": "push",
        "runner_environment": "github-hosted",
    })
}

/// `claims()` with the members of `over` set, or removed where they are
/// `"__remove__"`.
fn with(over: Value) -> Value {
    let mut base = claims();
    for (name, value) in over.as_object().unwrap() {
        if value == "__remove__" {
            base.as_object_mut().unwrap().remove(name);
        } else {
            base[name] = value.clone();
        }
    }
    base
}

fn sign_as(alg: JwsAlgorithm, typ: Option<&str>, claims: &Value) -> String {
    sign_compact(rsa(), alg, typ, Some(KID), claims).unwrap()
}

fn sign(claims: &Value) -> String {
    sign_as(Rs256, Some("JWT"), claims)
}

fn verify_with(
    token: &str,
    issuer: &TrustedIssuer,
    keys: &IssuerKeySet,
) -> Result<IssuerAssertion, GrantError> {
    UnverifiedAssertion::parse(token)?.verify_from_issuer(issuer, keys, &server_policy(), NOW)
}

fn verify(token: &str, issuer: &TrustedIssuer) -> Result<IssuerAssertion, GrantError> {
    verify_with(token, issuer, &keys())
}

fn check(claims: &Value, issuer: &TrustedIssuer) -> Result<IssuerAssertion, GrantError> {
    verify(&sign(claims), issuer)
}

fn verified(claims: &Value, issuer: &TrustedIssuer) -> IssuerAssertion {
    check(claims, issuer).unwrap()
}

fn integration() -> Integration {
    Integration {
        key: INTEGRATION.into(),
        name: "Deploys".into(),
        active: true,
        allow_application_tokens: true,
        require_jti: false,
        scopes: vec![
            "signature".into(),
            "impersonation".into(),
            "extended".into(),
        ],
        redirect_uris: vec![],
        resources: Vec::new(),
        default_scopes: Vec::new(),
        client_secret_hash: None,
        keys: vec![],
    }
}

fn no_records() -> SubjectRecords<'static> {
    SubjectRecords {
        user: None,
        consent: None,
    }
}

fn consent_url(scopes: &[String]) -> String {
    format!("consent?{}", scopes.join("+"))
}

fn decide_with(
    assertion: &IssuerAssertion,
    issuer: &TrustedIssuer,
    integration: &Integration,
    form_scope: Option<&str>,
    records: SubjectRecords<'_>,
) -> Result<GrantDecision, GrantError> {
    decide_for_issuer(
        assertion,
        issuer,
        integration,
        form_scope,
        records,
        LEEWAY,
        consent_url,
    )
}

/// The whole grant of a workload's token: verify, then decide.
fn grant(
    claims: &Value,
    issuer: &TrustedIssuer,
    form_scope: Option<&str>,
) -> Result<GrantDecision, GrantError> {
    let assertion = check(claims, issuer)?;
    decide_with(&assertion, issuer, &integration(), form_scope, no_records())
}

#[test]
fn a_token_of_the_issuer_under_its_policy_is_granted() {
    let decision = grant(&claims(), &issuer(policy()), Some("signature")).unwrap();
    assert_eq!(decision.client_id(), INTEGRATION);
    assert_eq!(
        decision.subject(),
        &TokenSubject::Workload(WORKFLOW_SUB.into())
    );
    assert_eq!(decision.subject_claim(), WORKFLOW_SUB);
    assert_eq!(decision.scopes(), ["signature"]);
    assert_eq!(
        decision.replay_guard(),
        Some(&ReplayGuard {
            issuer: format!("issuer:{ISSUER}"),
            jti: "gh-jti-1".into(),
            remember_until: NOW + 300 + LEEWAY,
        })
    );
}

// The trust: exact `iss`, active, not expired.

#[test]
fn iss_must_be_the_issuer_exactly() {
    let issuer = issuer(policy());
    assert!(check(&claims(), &issuer).is_ok());
    for iss in [
        format!("{ISSUER}/"),
        ISSUER.to_uppercase(),
        "https://Token.Actions.GitHubUserContent.com".into(),
        format!("{ISSUER}.evil.example"),
        "http://token.actions.githubusercontent.com".into(),
        format!(" {ISSUER}"),
    ] {
        assert_eq!(
            check(&with(json!({ "iss": iss })), &issuer).err(),
            Some(GrantError::IssuerNotFound),
            "{iss}"
        );
    }
    // And an issuer registered with a trailing slash does not take tokens without.
    let slashed = TrustedIssuer::new(
        ISSUER_ID.into(),
        format!("{ISSUER}/"),
        INTEGRATION.into(),
        true,
        policy(),
    )
    .unwrap();
    assert_eq!(
        check(&claims(), &slashed).err(),
        Some(GrantError::IssuerNotFound)
    );
}

#[test]
fn a_disabled_issuer_is_refused() {
    let mut disabled = issuer(policy());
    disabled.active = false;
    assert_eq!(
        disabled.check_trust(NOW),
        Err(GrantError::TrustedIssuerDisabled)
    );
    assert_eq!(
        check(&claims(), &disabled).err(),
        Some(GrantError::TrustedIssuerDisabled)
    );
}

#[test]
fn the_trust_ends_at_expires_at() {
    let until = |at: i64| with_policy(|p| p.expires_at = Some(at));
    assert_eq!(until(NOW + 1).check_trust(NOW), Ok(()));
    assert!(check(&claims(), &until(NOW + 1)).is_ok());
    for at in [NOW, NOW - 1] {
        assert_eq!(
            until(at).check_trust(NOW),
            Err(GrantError::TrustedIssuerExpired),
            "{at}"
        );
        assert_eq!(
            check(&claims(), &until(at)).err(),
            Some(GrantError::TrustedIssuerExpired),
            "{at}"
        );
    }
    // No leeway on the trust: the clock skew is for the token's times.
    let skewed = with_policy(|p| {
        p.expires_at = Some(NOW);
        p.clock_skew_secs = Some(600);
    });
    assert_eq!(
        check(&claims(), &skewed).err(),
        Some(GrantError::TrustedIssuerExpired)
    );
}

// The header: `typ` and `alg` under the issuer's policy.

#[test]
fn typ_must_be_one_of_the_issuers_without_regard_to_case() {
    let typed = with_policy(|p| p.typs = vec!["JWT".into(), "application/jwt".into()]);
    for typ in ["JWT", "jwt", "Application/JWT"] {
        assert!(
            verify(&sign_as(Rs256, Some(typ), &claims()), &typed).is_ok(),
            "{typ}"
        );
    }
    assert_eq!(
        verify(&sign_as(Rs256, Some("at+jwt"), &claims()), &typed).err(),
        Some(GrantError::TypNotAllowed("at+jwt".into()))
    );
    // A list is set: a token without `typ` is refused.
    assert_eq!(
        verify(&sign_as(Rs256, None, &claims()), &typed).err(),
        Some(GrantError::TypNotAllowed(String::new()))
    );
    // No list: any `typ`, or none.
    let untyped = issuer(policy());
    for typ in [None, Some("at+jwt"), Some("JWT")] {
        assert!(
            verify(&sign_as(Rs256, typ, &claims()), &untyped).is_ok(),
            "{typ:?}"
        );
    }
}

#[test]
fn alg_must_be_one_of_the_issuers() {
    let pss_only = with_policy(|p| p.algorithms = vec![Ps256]);
    // Keys that would verify RS256: the policy refuses it itself, whatever keys
    // the adapter hands over.
    assert!(verify(&sign_as(Ps256, Some("JWT"), &claims()), &pss_only).is_ok());
    assert_eq!(
        verify(&sign(&claims()), &pss_only).err(),
        Some(GrantError::AlgorithmNotAllowed("RS256".into()))
    );
    // No list: what the key type allows.
    assert!(verify(&sign(&claims()), &issuer(policy())).is_ok());
}

#[test]
fn a_key_published_for_rs256_does_not_verify_ps256() {
    let issuer = issuer(policy());
    let rs256_only = jwks(Some(Rs256), &[]);
    assert!(verify_with(&sign(&claims()), &issuer, &rs256_only).is_ok());
    let pss = sign_as(Ps256, Some("JWT"), &claims());
    assert_eq!(
        verify_with(&pss, &issuer, &rs256_only).err(),
        Some(GrantError::AlgorithmNotAllowed("PS256".into()))
    );
    // Without `kid` too: the key that verified is the one whose `alg` counts.
    let no_kid = sign_compact(rsa(), Ps256, Some("JWT"), None, &claims()).unwrap();
    assert_eq!(
        verify_with(&no_kid, &issuer, &rs256_only).err(),
        Some(GrantError::AlgorithmNotAllowed("PS256".into()))
    );
    // The same key published without `alg` verifies PS256.
    assert!(verify_with(&pss, &issuer, &keys()).is_ok());
}

#[test]
fn the_signature_must_verify_with_the_issuers_keys() {
    let issuer = issuer(policy());
    let forged = sign_compact(stranger(), Rs256, Some("JWT"), Some(KID), &claims()).unwrap();
    assert_eq!(
        verify(&forged, &issuer).err(),
        Some(GrantError::NoValidKeysOrSignatures)
    );
    let unknown = sign_compact(rsa(), Rs256, Some("JWT"), Some("gh-2"), &claims()).unwrap();
    assert_eq!(
        verify(&unknown, &issuer).err(),
        Some(GrantError::UnknownKeyId("gh-2".into()))
    );
}

// The claims under the issuer's policy.

#[test]
fn the_issuers_audiences_replace_the_servers() {
    let own = with_policy(|p| p.audiences = vec![GITHUB_AUD.into()]);
    assert!(check(&with(json!({ "aud": GITHUB_AUD })), &own).is_ok());
    assert!(
        check(
            &with(json!({ "aud": ["sts.amazonaws.com", GITHUB_AUD] })),
            &own
        )
        .is_ok()
    );
    assert_eq!(
        check(&claims(), &own).err(),
        Some(GrantError::AudienceMismatch),
        "the server's audience no longer counts"
    );
    // None set: the server's apply.
    let default = issuer(policy());
    assert!(check(&claims(), &default).is_ok());
    assert!(
        check(
            &with(json!({ "aud": format!("{SERVER_AUD}/oauth/token") })),
            &default
        )
        .is_ok()
    );
    assert_eq!(
        check(&with(json!({ "aud": GITHUB_AUD })), &default).err(),
        Some(GrantError::AudienceMismatch)
    );
}

#[test]
fn the_issuers_clock_skew_replaces_the_leeway() {
    let default = issuer(policy());
    let none = with_policy(|p| p.clock_skew_secs = Some(0));
    let wide = with_policy(|p| p.clock_skew_secs = Some(120));

    let expired_30s_ago = with(json!({ "iat": NOW - 300, "nbf": NOW - 300, "exp": NOW - 30 }));
    assert!(
        check(&expired_30s_ago, &default).is_ok(),
        "the server's 60 s"
    );
    assert_eq!(
        check(&expired_30s_ago, &none).err(),
        Some(GrantError::Expired)
    );
    assert_eq!(
        check(&with(json!({ "exp": NOW })), &none).err(),
        Some(GrantError::Expired)
    );
    let expired_100s_ago = with(json!({ "iat": NOW - 400, "nbf": NOW - 400, "exp": NOW - 100 }));
    assert_eq!(
        check(&expired_100s_ago, &default).err(),
        Some(GrantError::Expired)
    );
    assert!(check(&expired_100s_ago, &wide).is_ok());

    let early = with(json!({ "nbf": NOW + 30 }));
    assert!(check(&early, &default).is_ok());
    assert_eq!(check(&early, &none).err(), Some(GrantError::NotYetValid));
    let ahead = with(json!({ "iat": NOW + 30, "nbf": "__remove__" }));
    assert!(check(&ahead, &default).is_ok());
    assert_eq!(check(&ahead, &none).err(), Some(GrantError::IssuedInFuture));

    // The `jti` is remembered for `exp` plus the skew, not the leeway.
    let decision = grant(&claims(), &wide, None).unwrap();
    assert_eq!(
        decision.replay_guard().map(|g| g.remember_until),
        Some(NOW + 300 + 120)
    );
}

#[test]
fn the_issuers_max_lifetime_bounds_exp() {
    let short = with_policy(|p| p.max_lifetime_secs = 600);
    assert!(check(&with(json!({ "exp": NOW + 600 + LEEWAY })), &short).is_ok());
    assert_eq!(
        check(&with(json!({ "exp": NOW + 600 + LEEWAY + 1 })), &short).err(),
        Some(GrantError::LifetimeTooLong { max_secs: 600 })
    );
    // Without `iat`, from now.
    assert_eq!(
        check(
            &with(json!({ "iat": "__remove__", "exp": NOW + 700 })),
            &short
        )
        .err(),
        Some(GrantError::LifetimeTooLong { max_secs: 600 })
    );
    // Longer than the server's 3600 s when the issuer says so (a Kubernetes
    // token of two hours).
    let two_hours = with(json!({ "exp": NOW + 7200 }));
    assert!(check(&two_hours, &with_policy(|p| p.max_lifetime_secs = 7200)).is_ok());
    assert_eq!(
        check(&two_hours, &issuer(policy())).err(),
        Some(GrantError::LifetimeTooLong { max_secs: 3600 })
    );
}

// Replay.

#[test]
fn single_use_requires_a_jti_and_guards_it_under_the_issuer() {
    let single = issuer(policy());
    assert_eq!(
        check(&with(json!({ "jti": "__remove__" })), &single).err(),
        Some(GrantError::JtiRequired)
    );
    let guard = grant(&claims(), &single, None)
        .unwrap()
        .replay_guard()
        .cloned()
        .unwrap();
    assert_eq!(guard.issuer, format!("issuer:{ISSUER}"));
    assert_eq!(guard.issuer, single.replay_namespace());
    assert_eq!(guard.jti, "gh-jti-1");
    assert_eq!(guard.remember_until, NOW + 300 + LEEWAY);

    // Verified under a policy that needs no `jti`, it is still required when the
    // decision is made under single use.
    let lax = with_policy(|p| p.replay = ReplayPolicy::None);
    let no_jti = verified(&with(json!({ "jti": "__remove__" })), &lax);
    assert_eq!(
        decide_with(&no_jti, &single, &integration(), None, no_records()).err(),
        Some(GrantError::JtiRequired)
    );
}

#[test]
fn until_exp_and_none_need_no_jti_and_record_nothing() {
    for replay in [ReplayPolicy::UntilExp, ReplayPolicy::None] {
        let issuer = with_policy(|p| p.replay = replay);
        for claims in [claims(), with(json!({ "jti": "__remove__" }))] {
            let decision = grant(&claims, &issuer, None).unwrap();
            assert_eq!(decision.replay_guard(), None, "{}", replay.as_str());
        }
    }
}

// The condition.

#[test]
fn the_condition_must_be_true() {
    let gated = with_policy(|p| p.condition = Some(GITHUB_CONDITION.into()));
    let token = verified(&claims(), &gated);
    assert_eq!(gated.check_condition(&token), Ok(()));
    assert!(grant(&claims(), &gated, None).is_ok());
    for (why, claims) in [
        (
            "another owner",
            with(json!({ "repository_owner": "evil-org" })),
        ),
        ("another branch", with(json!({ "ref": "refs/heads/dev" }))),
        (
            "a missing claim: an error",
            with(json!({ "ref": "__remove__" })),
        ),
        (
            "a claim of another type",
            with(json!({ "repository_owner": 65 })),
        ),
    ] {
        // The token itself verifies; the condition refuses it.
        let token = verified(&claims, &gated);
        assert_eq!(
            gated.check_condition(&token),
            Err(GrantError::ConditionNotMet),
            "{why}"
        );
        assert_eq!(
            grant(&claims, &gated, None).err(),
            Some(GrantError::ConditionNotMet),
            "{why}"
        );
    }
    // An error is not false: negating it does not let the token through.
    let negated =
        with_policy(|p| p.condition = Some(r#"!(assertion.environment == "prod")"#.into()));
    assert_eq!(
        grant(&claims(), &negated, None).err(),
        Some(GrantError::ConditionNotMet)
    );
    // Nor does a condition that yields something other than a bool.
    let not_bool = with_policy(|p| p.condition = Some("assertion.ref".into()));
    assert_eq!(
        grant(&claims(), &not_bool, None).err(),
        Some(GrantError::ConditionNotMet)
    );
    // The refusal names the rule, not the claims.
    let description = GrantError::ConditionNotMet.to_string();
    assert!(
        description.starts_with("condition_not_met: "),
        "{description}"
    );
}

// The subject.

fn user_issuer(claim: UserClaim) -> TrustedIssuer {
    with_policy(|p| {
        p.subject = SubjectKind::User;
        p.user_claim = claim;
    })
}

#[test]
fn a_user_is_looked_up_by_the_linked_sub() {
    let by_sub = user_issuer(UserClaim::Sub);
    let token = verified(&with(json!({ "sub": "00u1a2b3c4" })), &by_sub);
    assert_eq!(
        by_sub.user_lookup(&token),
        Ok(Some(UserLookup::Linked("00u1a2b3c4".into())))
    );
    let no_sub = verified(&with(json!({ "sub": "__remove__" })), &by_sub);
    assert!(matches!(
        by_sub.user_lookup(&no_sub),
        Err(GrantError::SubjectNotMapped(_))
    ));
    // A workload issuer maps no user.
    assert_eq!(issuer(policy()).user_lookup(&token), Ok(None));
}

#[test]
fn a_user_is_looked_up_by_email_only_when_email_verified_is_true() {
    let by_email = user_issuer(UserClaim::Email);
    let oidc = |verified_claim: Value, email: Value| {
        with(json!({ "sub": "00u1a2b3c4", "email": email, "email_verified": verified_claim }))
    };
    let token = verified(&oidc(json!(true), json!("ada@example.com")), &by_email);
    assert_eq!(
        by_email.user_lookup(&token),
        Ok(Some(UserLookup::Email("ada@example.com".into())))
    );
    for not_true in [
        json!("true"),
        json!(false),
        json!(1),
        json!(null),
        json!("__remove__"),
    ] {
        let token = verified(&oidc(not_true.clone(), json!("ada@example.com")), &by_email);
        assert!(
            matches!(
                by_email.user_lookup(&token),
                Err(GrantError::SubjectNotMapped(_))
            ),
            "email_verified {not_true}"
        );
    }
    for no_email in [
        json!("__remove__"),
        json!(""),
        json!(5),
        json!(["ada@example.com"]),
    ] {
        let token = verified(&oidc(json!(true), no_email.clone()), &by_email);
        assert!(
            matches!(
                by_email.user_lookup(&token),
                Err(GrantError::SubjectNotMapped(_))
            ),
            "email {no_email}"
        );
    }
}

#[test]
fn a_workloads_subject_is_subject_expr_or_else_sub() {
    let mapped = with_policy(|p| p.subject_expr = Some(r#""repo:" + assertion.repository"#.into()));
    let decision = grant(&claims(), &mapped, None).unwrap();
    assert_eq!(
        decision.subject(),
        &TokenSubject::Workload("repo:octo-org/octo-repo".into())
    );
    assert_eq!(decision.subject_claim(), "repo:octo-org/octo-repo");
    // The expression need not read `sub`.
    assert!(grant(&with(json!({ "sub": "__remove__" })), &mapped, None).is_ok());
    // It fails (a missing claim) or yields no string: no subject.
    for claims in [
        with(json!({ "repository": "__remove__" })),
        with(json!({ "repository": 74 })),
    ] {
        assert!(matches!(
            grant(&claims, &mapped, None),
            Err(GrantError::SubjectNotMapped(_))
        ));
    }
    // Without an expression, the token's `sub`; without a `sub`, no subject.
    let default = issuer(policy());
    assert_eq!(
        grant(&claims(), &default, None).unwrap().subject(),
        &TokenSubject::Workload(WORKFLOW_SUB.into())
    );
    assert!(matches!(
        grant(&with(json!({ "sub": "__remove__" })), &default, None),
        Err(GrantError::SubjectNotMapped(_))
    ));
}

#[test]
fn a_workload_needs_an_integration_that_allows_application_tokens() {
    let issuer = issuer(policy());
    let token = verified(&claims(), &issuer);
    let mut integration = integration();
    integration.allow_application_tokens = false;
    assert_eq!(
        decide_with(&token, &issuer, &integration, None, no_records()).err(),
        Some(GrantError::ApplicationTokensNotAllowed)
    );
}

#[test]
fn a_users_token_goes_through_consent_exactly_as_an_integrations() {
    let user_issuer = user_issuer(UserClaim::Sub);
    // The same request through part one: a registered integration's assertion
    // for the same user and scopes.
    let mut registered = integration();
    registered.keys = vec![IntegrationKey {
        kid: KID.into(),
        public_key: rsa().public_key().clone(),
        active: true,
    }];
    let active = User {
        id: USER.into(),
        active: true,
    };
    let disabled = User {
        id: USER.into(),
        active: false,
    };
    let full = Consent {
        scopes: vec!["signature".into(), "impersonation".into()],
    };
    let partial = Consent {
        scopes: vec!["impersonation".into()],
    };
    let records = |user, consent| SubjectRecords { user, consent };
    let cases = [
        (
            "signature impersonation",
            records(Some(&active), Some(&full)),
            Ok(TokenSubject::User(USER.into())),
        ),
        (
            "signature impersonation",
            records(None, Some(&full)),
            Err(GrantError::UserNotFound),
        ),
        (
            "signature impersonation",
            records(Some(&disabled), Some(&full)),
            Err(GrantError::UserDisabled),
        ),
        (
            "signature",
            records(Some(&active), Some(&full)),
            Err(GrantError::ImpersonationScopeMissing {
                consent_url: "consent?signature+impersonation".into(),
            }),
        ),
        (
            "signature impersonation",
            records(Some(&active), Some(&partial)),
            Err(GrantError::ConsentRequired {
                scope: "signature".into(),
                consent_url: "consent?signature+impersonation".into(),
            }),
        ),
        (
            "signature impersonation",
            records(Some(&active), None),
            Err(GrantError::ConsentRequired {
                scope: "signature impersonation".into(),
                consent_url: "consent?signature+impersonation".into(),
            }),
        ),
    ];
    for (scope, records, expected) in cases {
        let token = verified(
            &with(json!({ "sub": "00u1a2b3c4", "scope": scope })),
            &user_issuer,
        );
        let from_issuer = decide_with(&token, &user_issuer, &integration(), None, records)
            .map(|d| d.subject().clone());
        let assertion = sign(&with(
            json!({ "iss": INTEGRATION, "sub": USER, "scope": scope }),
        ));
        let part_one = UnverifiedAssertion::parse(&assertion)
            .unwrap()
            .verify(&registered, &server_policy(), NOW)
            .unwrap();
        let from_integration = decide(&part_one, None, &registered, records, LEEWAY, consent_url)
            .map(|d| d.subject().clone());
        assert_eq!(from_issuer, expected, "{scope} {records:?}");
        assert_eq!(from_issuer, from_integration, "{scope} {records:?}");
    }
}

// Scopes.

#[test]
fn scopes_are_the_forms_else_the_claims_else_the_issuers_cap() {
    let capped = with_policy(|p| p.scopes = vec!["signature".into(), "extended".into()]);
    let scopes = |claims: &Value, form: Option<&str>| {
        grant(claims, &capped, form).map(|d| d.scopes().to_vec())
    };
    assert_eq!(
        scopes(&claims(), None),
        Ok(vec!["signature".into(), "extended".into()]),
        "neither: the cap"
    );
    assert_eq!(
        scopes(&with(json!({ "scope": "extended" })), None),
        Ok(vec!["extended".into()]),
        "the claim"
    );
    assert_eq!(
        scopes(&claims(), Some("signature")),
        Ok(vec!["signature".into()]),
        "the form"
    );
    assert_eq!(
        scopes(
            &with(json!({ "scope": "signature extended" })),
            Some("extended")
        ),
        Ok(vec!["extended".into()]),
        "the form narrows the claim"
    );
    assert_eq!(
        scopes(&with(json!({ "scope": "signature" })), Some("extended")),
        Err(GrantError::ScopeBeyondAssertion("extended".into())),
        "and never widens it"
    );
    // No cap: nothing asked, nothing granted (as for an integration).
    assert_eq!(
        grant(&claims(), &issuer(policy()), None).map(|d| d.scopes().len()),
        Ok(0)
    );
}

#[test]
fn scopes_stay_within_the_issuers_cap_and_the_integrations() {
    let capped = with_policy(|p| p.scopes = vec!["signature".into()]);
    assert_eq!(
        grant(&claims(), &capped, Some("extended")).err(),
        Some(GrantError::ScopeNotAllowed("extended".into())),
        "the integration has it, the issuer's cap does not"
    );
    assert_eq!(
        grant(
            &with(json!({ "scope": "signature extended" })),
            &capped,
            None
        )
        .err(),
        Some(GrantError::ScopeNotAllowed("extended".into()))
    );
    assert_eq!(
        grant(&claims(), &issuer(policy()), Some("admin")).err(),
        Some(GrantError::ScopeNotAllowed("admin".into())),
        "no cap: the integration's scopes"
    );
    let beyond = with_policy(|p| p.scopes = vec!["signature".into(), "admin".into()]);
    assert_eq!(
        grant(&claims(), &beyond, None).err(),
        Some(GrantError::ScopeNotAllowed("admin".into())),
        "a cap does not widen the integration"
    );
}

#[test]
fn the_decision_is_for_the_issuers_active_integration_only() {
    let issuer = issuer(policy());
    let token = verified(&claims(), &issuer);
    let mut other = integration();
    other.key = "4d1f0a9b-3c2e-4b8d-9e7f-6a5b4c3d2e1f".into();
    let mut disabled = integration();
    disabled.active = false;
    for integration in [other, disabled] {
        assert_eq!(
            decide_with(&token, &issuer, &integration, None, no_records()).err(),
            Some(GrantError::IntegrationDisabled)
        );
    }
}

// Federated client authentication.

#[test]
fn federated_client_authentication_needs_client_authentication() {
    let issuer = issuer(policy());
    let token = verified(&claims(), &issuer);
    assert_eq!(
        authenticate_federated_client(&token, &issuer, &integration(), LEEWAY).err(),
        Some(GrantError::IssuerNotFound)
    );
}

#[test]
fn a_federated_client_is_the_issuers_active_integration_guarded_apart() {
    let federated = with_policy(|p| p.client_authentication = true);
    let token = verified(&claims(), &federated);
    let (client, guard) =
        authenticate_federated_client(&token, &federated, &integration(), LEEWAY).unwrap();
    assert_eq!(
        client,
        AuthenticatedClient {
            client_id: INTEGRATION.into(),
            confidential: true,
        }
    );
    assert_eq!(
        guard,
        Some(ReplayGuard {
            issuer: format!("client-assertion:issuer:{ISSUER}"),
            jti: "gh-jti-1".into(),
            remember_until: NOW + 300 + LEEWAY,
        })
    );
    // Apart from the same token's use as a grant assertion.
    let grant_guard = grant(&claims(), &federated, None)
        .unwrap()
        .replay_guard()
        .cloned();
    assert_ne!(grant_guard.map(|g| g.issuer), guard.map(|g| g.issuer));

    let mut other = integration();
    other.key = "4d1f0a9b-3c2e-4b8d-9e7f-6a5b4c3d2e1f".into();
    let mut disabled = integration();
    disabled.active = false;
    for integration in [other, disabled] {
        assert_eq!(
            authenticate_federated_client(&token, &federated, &integration, LEEWAY).err(),
            Some(GrantError::IntegrationDisabled)
        );
    }
}

#[test]
fn federated_client_authentication_applies_the_condition_and_the_replay_policy() {
    let gated = with_policy(|p| {
        p.client_authentication = true;
        p.condition = Some(GITHUB_CONDITION.into());
    });
    let elsewhere = verified(&with(json!({ "repository_owner": "evil-org" })), &gated);
    assert_eq!(
        authenticate_federated_client(&elsewhere, &gated, &integration(), LEEWAY).err(),
        Some(GrantError::ConditionNotMet)
    );
    // `none` (a SPIFFE JWT-SVID): no `jti`, nothing recorded.
    let spiffe = with_policy(|p| {
        p.client_authentication = true;
        p.replay = ReplayPolicy::None;
    });
    let no_jti = verified(&with(json!({ "jti": "__remove__" })), &spiffe);
    let (_, guard) =
        authenticate_federated_client(&no_jti, &spiffe, &integration(), LEEWAY).unwrap();
    assert_eq!(guard, None);
    // Under single use a token without `jti` does not authenticate.
    let single = with_policy(|p| p.client_authentication = true);
    assert_eq!(
        authenticate_federated_client(&no_jti, &single, &integration(), LEEWAY).err(),
        Some(GrantError::JtiRequired)
    );
    // The guard lasts `exp` plus the issuer's skew.
    let skewed = with_policy(|p| {
        p.client_authentication = true;
        p.clock_skew_secs = Some(5);
    });
    let token = verified(&claims(), &skewed);
    let (_, guard) =
        authenticate_federated_client(&token, &skewed, &integration(), LEEWAY).unwrap();
    assert_eq!(guard.map(|g| g.remember_until), Some(NOW + 300 + 5));
}

// The policy: refused when it cannot be used, kept as JSON.

fn refused(change: impl FnOnce(&mut IssuerPolicy)) -> IssuerPolicyError {
    let mut policy = policy();
    change(&mut policy);
    new_issuer(policy).unwrap_err()
}

#[test]
fn new_refuses_values_out_of_range() {
    for max in [0, -1, 86_401, i64::MAX] {
        assert!(
            matches!(
                refused(|p| p.max_lifetime_secs = max),
                IssuerPolicyError::Invalid(m) if m.contains("--max-lifetime-secs")
            ),
            "{max}"
        );
    }
    for max in [1, 86_400] {
        assert!(
            new_issuer(IssuerPolicy {
                max_lifetime_secs: max,
                ..policy()
            })
            .is_ok()
        );
    }
    for skew in [-1, 601] {
        assert!(
            matches!(
                refused(|p| p.clock_skew_secs = Some(skew)),
                IssuerPolicyError::Invalid(m) if m.contains("--clock-skew-secs")
            ),
            "{skew}"
        );
    }
    for skew in [0, 600] {
        assert!(
            new_issuer(IssuerPolicy {
                clock_skew_secs: Some(skew),
                ..policy()
            })
            .is_ok()
        );
    }
}

#[test]
fn new_refuses_a_subject_expr_for_user_subjects() {
    let error = refused(|p| {
        p.subject = SubjectKind::User;
        p.subject_expr = Some("assertion.sub".into());
    });
    assert!(
        matches!(&error, IssuerPolicyError::Invalid(m) if m.contains("--subject-expr")),
        "{error}"
    );
    // For a workload it is the point.
    assert!(
        new_issuer(IssuerPolicy {
            subject_expr: Some("assertion.sub".into()),
            ..policy()
        })
        .is_ok()
    );
}

#[test]
fn new_refuses_an_expression_that_does_not_compile_and_says_where() {
    let error = refused(|p| {
        p.condition = Some("assertion.sub == \"a\" &&\n  assertion.sub.startswith(\"b\")".into())
    });
    let IssuerPolicyError::Condition(inner) = &error else {
        panic!("{error:?}");
    };
    assert_eq!((inner.line, inner.column), (2, 27));
    assert!(
        error
            .to_string()
            .starts_with("--condition: line 2, column 27: "),
        "{error}"
    );
    let error = refused(|p| p.subject_expr = Some("\"repo:\" + repository".into()));
    assert!(
        matches!(&error, IssuerPolicyError::SubjectExpr(e) if e.line == 1),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("--subject-expr: line 1, column ")
    );
}

#[test]
fn new_refuses_a_static_jwks_without_a_usable_key() {
    let oct = json!({ "keys": [{ "kty": "oct", "kid": "h", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ" }] });
    let rsa_jwk = serde_json::to_value(rsa().public_key().to_jwk(Some(KID), None)).unwrap();
    for (why, document, algorithms, expected) in [
        (
            "a shared secret",
            oct,
            vec![],
            "JWKS has no usable key (1 skipped)",
        ),
        ("no keys", json!({ "keys": [] }), vec![], "JWKS has no keys"),
        (
            "not a JWKS",
            json!([rsa_jwk.clone()]),
            vec![],
            "JWKS has no keys array",
        ),
        (
            "an RSA key for an issuer of ES256",
            json!({ "keys": [rsa_jwk.clone()] }),
            vec![JwsAlgorithm::Es256],
            "JWKS has no usable key (1 skipped)",
        ),
    ] {
        let error = refused(|p| {
            p.keys = KeySource::Jwks(document);
            p.algorithms = algorithms;
        });
        assert!(matches!(error, IssuerPolicyError::Jwks(_)), "{why}");
        assert_eq!(
            error.to_string(),
            format!("--jwks-file: {expected}"),
            "{why}"
        );
    }
    // A usable one is parsed once, under the policy's algorithms.
    let static_keys = with_policy(|p| {
        p.keys = KeySource::Jwks(json!({ "keys": [rsa_jwk] }));
        p.algorithms = vec![Ps256];
    });
    let keys = static_keys.static_keys().unwrap();
    assert!(keys.permits(KID, Ps256) && !keys.permits(KID, Rs256));
    assert!(issuer(policy()).static_keys().is_none());
    let discovery = with_policy(|p| p.keys = KeySource::Discovery);
    assert!(discovery.static_keys().is_none());
}

#[test]
fn the_policy_round_trips_through_json() {
    let full = IssuerPolicy {
        keys: KeySource::Jwks(json!({ "keys": [rsa().public_key().to_jwk(Some(KID), None)] })),
        audiences: vec![GITHUB_AUD.into()],
        algorithms: vec![Rs256, Ps256],
        typs: vec!["JWT".into()],
        max_lifetime_secs: 600,
        clock_skew_secs: Some(30),
        replay: ReplayPolicy::UntilExp,
        subject: SubjectKind::User,
        user_claim: UserClaim::Email,
        subject_expr: None,
        condition: Some(GITHUB_CONDITION.into()),
        scopes: vec!["signature".into()],
        expires_at: Some(NOW + 86_400),
        client_authentication: true,
        id_jag: false,
    };
    assert_eq!(IssuerPolicy::from_json(&full.to_json()), Ok(full.clone()));
    for keys in [
        KeySource::JwksUri(format!("{ISSUER}/.well-known/jwks")),
        KeySource::Discovery,
    ] {
        for replay in [ReplayPolicy::SingleUse, ReplayPolicy::None] {
            let policy = IssuerPolicy {
                keys: keys.clone(),
                replay,
                subject: SubjectKind::Workload,
                subject_expr: Some("assertion.sub".into()),
                ..full.clone()
            };
            assert_eq!(IssuerPolicy::from_json(&policy.to_json()), Ok(policy));
        }
    }
    // As the store keeps it: the CLI's spellings.
    let stored: Value = serde_json::from_str(&full.to_json()).unwrap();
    assert_eq!(stored["replay"], "until-exp");
    assert_eq!(stored["subject"], "user");
    assert_eq!(stored["user_claim"], "email");
    assert_eq!(stored["algorithms"], json!(["RS256", "PS256"]));
    let uri: Value = serde_json::from_str(&policy().to_json()).unwrap();
    assert_eq!(
        uri["keys"],
        json!({ "jwks_uri": format!("{ISSUER}/.well-known/jwks") })
    );
    assert_eq!(uri["replay"], "single-use");
    // What may be left out takes its default.
    let minimal = IssuerPolicy::from_json(
        r#"{"keys": "discovery", "max_lifetime_secs": 3600, "subject": "workload"}"#,
    )
    .unwrap();
    assert_eq!(
        minimal,
        IssuerPolicy {
            keys: KeySource::Discovery,
            ..policy()
        }
    );
}

#[test]
fn the_policy_refuses_unknown_fields_and_values() {
    let base = json!({ "keys": "discovery", "max_lifetime_secs": 3600, "subject": "workload" });
    let read = |over: Value| {
        let mut document = base.clone();
        for (name, value) in over.as_object().unwrap() {
            if value == "__remove__" {
                document.as_object_mut().unwrap().remove(name);
            } else {
                document[name] = value.clone();
            }
        }
        IssuerPolicy::from_json(&document.to_string())
    };
    assert!(read(json!({})).is_ok());
    for (why, over, says) in [
        (
            "a misspelt field",
            json!({ "audience": [GITHUB_AUD] }),
            "unknown field `audience`",
        ),
        (
            "a field of another version",
            json!({ "id_jag_profile": true }),
            "unknown field `id_jag_profile`",
        ),
        (
            "a replay policy",
            json!({ "replay": "once" }),
            "unknown variant `once`",
        ),
        (
            "an HMAC alg",
            json!({ "algorithms": ["HS256"] }),
            "alg 'HS256' is not supported",
        ),
        (
            "no subject",
            json!({ "subject": "__remove__" }),
            "missing field `subject`",
        ),
        (
            "no max lifetime",
            json!({ "max_lifetime_secs": "__remove__" }),
            "missing field `max_lifetime_secs`",
        ),
    ] {
        match read(over) {
            Err(IssuerPolicyError::Malformed(message)) => {
                assert!(message.contains(says), "{why}: {message}")
            }
            other => panic!("{why}: {other:?}"),
        }
    }
}
