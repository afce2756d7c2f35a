//! The trusted-issuer vectors (PROTOCOL.md part two): tokens shaped as GitHub
//! Actions, a Kubernetes cluster, SPIRE (SPIFFE JWT-SVIDs) and OIDC providers issue
//! them, each with the issuer's policy as the store keeps it and the verdict;
//! written to `testdata/issuer_assertions.json`.

use std::path::Path;

use jwtgrant_core::b64;
use jwtgrant_core::jws::sign_compact;
use jwtgrant_core::{JwsAlgorithm, SigningKey};
use serde_json::{Value, json};

use super::{ISSUER, LEEWAY, MAX_LIFETIME, NOW, TOKEN_ENDPOINT, key, overridden, raw};

/// The integration every issuer of the vectors is bound to.
const FEDERATED: &str = "5a7d2e9c-3b1f-4c8e-9d6a-0f2b4e6c8a1d";
/// An integration that may not have application tokens.
const NO_APP: &str = "c1e3a5b7-9d2f-4e6a-8b0c-2d4f6a8c0e1b";
/// A disabled integration.
const DISABLED_FEDERATED: &str = "e8f0a2c4-6b8d-4f1a-9c3e-5a7b9d1f3c5e";
/// Ada: linked at the Okta issuer, and known by her verified email.
const ADA: &str = "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b";
/// Grace: linked at the Okta issuer, with consent to `impersonation` only.
const GRACE: &str = "a3c5e7f9-1b2d-4e6f-8a0c-9e7d5c3b1a2f";
const SERVER_AUD: &str = ISSUER;

const GITHUB: &str = "https://token.actions.githubusercontent.com";
const GITHUB_ID: &str = "1e5a9c3d-github-actions";
const KUBERNETES: &str = "https://kubernetes.default.svc.cluster.local";
const KUBERNETES_ID: &str = "2f6b0d4e-kubernetes";
const SPIRE: &str = "https://oidc-discovery.example.org";
const SPIRE_ID: &str = "3a7c1e5f-spire";
const OKTA: &str = "https://example.okta.com/oauth2/default";
const OKTA_ID: &str = "4b8d2f6a-okta";
const OKTA_CLIENT: &str = "0oa1b2c3d4E5f6G7h8i9";
const GOOGLE: &str = "https://accounts.google.com";
const GOOGLE_ID: &str = "5c9e3a7b-google";
const GOOGLE_CLIENT: &str = "1234567890-abc123def456.apps.googleusercontent.com";

/// The tokens a vector file already holds, by signing input. ECDSA and PSS
/// signatures differ at each run; a token whose header and claims did not change is
/// kept (when its signature still verifies with the key), so regenerating the file
/// changes only what changed.
struct Previous(std::collections::HashMap<String, String>);

impl Previous {
    fn load(path: &Path) -> Self {
        fn collect(value: &Value, out: &mut std::collections::HashMap<String, String>) {
            match value {
                Value::String(token) if token.matches('.').count() == 2 => {
                    if let Some((input, _)) = token.rsplit_once('.') {
                        out.insert(input.to_owned(), token.clone());
                    }
                }
                Value::Array(values) => values.iter().for_each(|v| collect(v, out)),
                Value::Object(map) => map.values().for_each(|v| collect(v, out)),
                _ => {}
            }
        }
        let mut tokens = std::collections::HashMap::new();
        if let Some(doc) = std::fs::read_to_string(path)
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        {
            collect(&doc, &mut tokens);
        }
        Previous(tokens)
    }

    /// `fresh`, or the token with its signing input that `key` signed before.
    fn keep(&self, fresh: String, key: &SigningKey, alg: JwsAlgorithm) -> String {
        let Some((input, _)) = fresh.rsplit_once('.') else {
            return fresh;
        };
        let old = self.0.get(input).and_then(|old| {
            let signature = b64::decode(old.rsplit_once('.')?.1)?;
            key.public_key()
                .verify(alg, input.as_bytes(), &signature)
                .then(|| old.clone())
        });
        old.unwrap_or(fresh)
    }
}

/// Writes `testdata/issuer_assertions.json`; returns how many cases it holds.
pub(super) fn issuer_vectors(
    root: &Path,
    keys: &Path,
    github_key: &SigningKey,
    spire_key: &SigningKey,
    cluster_key: &SigningKey,
) -> usize {
    use JwsAlgorithm::{Es256, Ps256, Rs256};

    let path = root.join("issuer_assertions.json");
    let previous = Previous::load(&path);
    let okta_key = key(keys, "issuer-okta-rsa", Rs256);
    let google_key = key(keys, "issuer-google-rsa", Rs256);
    let sign = |key: &SigningKey, alg, typ: Option<&str>, kid: Option<&str>, c: &Value| {
        previous.keep(sign_compact(key, alg, typ, kid, c).unwrap(), key, alg)
    };
    let raw_signed = |header: &str, c: &Value, key: &SigningKey, alg| {
        previous.keep(raw(header, c, key, alg), key, alg)
    };
    let cluster_kid = cluster_key.public_key().thumbprint().to_owned();

    // The claims as each issuer shapes them.
    let github = |over: Value| {
        overridden(
            json!({
                "jti": "6b1f8e2a-4c3d-4e5f-9a0b-1c2d3e4f5a6b",
                "sub": "repo:octo-org/octo-repo:ref:refs/heads/main",
                "aud": "https://github.com/octo-org",
                "ref": "refs/heads/main", "sha": "4f8e2a1c9b3d7e6f5a0b1c2d3e4f5a6b7c8d9e0f",
                "repository": "octo-org/octo-repo", "repository_owner": "octo-org",
                "actor_id": "12", "repository_visibility": "private", "repository_id": "74",
                "repository_owner_id": "65", "run_id": "5520146327", "run_number": "10",
                "run_attempt": "1", "runner_environment": "github-hosted", "actor": "octocat",
                "workflow": "deploy", "head_ref": "", "base_ref": "", "event_name": "push",
                "ref_type": "branch",
                "job_workflow_ref": "octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main",
                "iss": GITHUB, "nbf": NOW - 610, "exp": NOW + 290, "iat": NOW - 10,
            }),
            over,
        )
    };
    let kubernetes = |over: Value| {
        overridden(
            json!({
                "aud": [SERVER_AUD], "exp": NOW - 60 + 3607, "iat": NOW - 60, "nbf": NOW - 60,
                "iss": KUBERNETES, "jti": "8c2e4a6b-0d1f-4a3c-b5e7-9f1a3c5e7b9d",
                "kubernetes.io": {
                    "namespace": "ci",
                    "node": {"name": "node-a1", "uid": "0d2f4b6a-8c1e-4a3b-9d5f-7b9d1f3a5c7e"},
                    "pod": {"name": "deployer-7d9f8b6c5-x2k4q", "uid": "1e3a5c7b-9d2f-4b4c-8e6a-0c2e4a6b8d0f"},
                    "serviceaccount": {"name": "deployer", "uid": "2f4b6d8c-0e3a-4c5d-9f7b-1d3f5b7d9e1a"},
                },
                "sub": "system:serviceaccount:ci:deployer",
            }),
            over,
        )
    };
    let spiffe = |over: Value| {
        overridden(
            json!({
                "aud": [SERVER_AUD], "exp": NOW + 290, "iat": NOW - 10, "iss": SPIRE,
                "sub": "spiffe://example.org/ns/ci/sa/deployer",
            }),
            over,
        )
    };
    let okta = |over: Value| {
        overridden(
            json!({
                "sub": "00u1a2b3c4D5e6F7g8h9", "name": "Ada Lovelace", "email": "ada@example.com",
                "ver": 1, "iss": OKTA, "aud": OKTA_CLIENT, "iat": NOW - 10, "exp": NOW + 3590,
                "jti": "ID.4kV9Qm2xT7bN1pR8sW3yZ6cF0hJ5lA", "amr": ["pwd", "mfa"],
                "idp": "00o1a2b3c4D5e6F7g8h9", "auth_time": NOW - 30,
                "at_hash": "mqTbGzK0bRvlQZt2rR6hVA",
            }),
            over,
        )
    };
    let google = |over: Value| {
        overridden(
            json!({
                "iss": GOOGLE, "azp": GOOGLE_CLIENT, "aud": GOOGLE_CLIENT,
                "sub": "110169484474386276334", "email": "ada@example.com",
                "email_verified": true, "at_hash": "HK6E_P6Dh8Y93mRNtsDB1Q", "name": "Ada Lovelace",
                "given_name": "Ada", "family_name": "Lovelace", "iat": NOW - 10, "exp": NOW + 3590,
            }),
            over,
        )
    };
    let gh = |c: &Value| sign(github_key, Rs256, Some("JWT"), Some("gh-1"), c);
    let k8s = |c: &Value| sign(cluster_key, Rs256, None, Some(&cluster_kid), c);
    let svid = |c: &Value| sign(spire_key, Es256, Some("JWT"), Some("spire-1"), c);
    let ok_ta = |c: &Value| sign(&okta_key, Rs256, None, Some("okta-1"), c);
    let goog = |c: &Value| sign(&google_key, Rs256, Some("JWT"), Some("google-1"), c);

    let guard = |namespace: &str, c: &Value, skew: i64| {
        json!({
            "issuer": format!("issuer:{namespace}"), "jti": c["jti"],
            "remember_until": c["exp"].as_i64().unwrap() + skew,
        })
    };
    let workload = |subject: &str, scopes: &[&str], guard: Value| json!({"verdict": "accept", "subject": {"workload": subject}, "scopes": scopes, "replay_guard": guard});
    let user = |id: &str, scopes: &[&str], guard: Value| json!({"verdict": "accept", "subject": {"user": id}, "scopes": scopes, "replay_guard": guard});
    let client = |client_id: &str, guard: Value| json!({"verdict": "accept", "client_id": client_id, "replay_guard": guard});
    let refused = |error: &str, code: &str, prefix: &str| json!({"verdict": "refuse", "error": error, "code": code, "description_starts_with": prefix});
    let grant = |issuer: &str, assertion: String, scope: Option<&str>| json!({"flow": "grant", "issuer": issuer, "assertion": assertion, "form_scope": scope});
    let federated = |issuer: &str, client_id: &str, assertion: String| {
        json!({"flow": "client_authentication", "issuer": issuer, "request": {
            "client_id": client_id,
            "client_assertion_type": jwtgrant_proto::CLIENT_ASSERTION_TYPE,
            "client_assertion": assertion,
        }})
    };
    let repo = "github:octo-org/octo-repo";
    let sa = "system:serviceaccount:ci:deployer";
    let spiffe_id = "spiffe://example.org/ns/ci/sa/deployer";
    let invalid = "invalid_grant";

    let cases: Vec<(&str, Value, Value)> = vec![
        // GitHub Actions: one issuer for all of GitHub, so the condition names the
        // owner; a workload whose subject is the repository.
        (
            "github: a push to main of octo-org's repository",
            grant(GITHUB_ID, gh(&github(json!({}))), None),
            workload(
                repo,
                &["signature"],
                guard(GITHUB, &github(json!({})), LEEWAY),
            ),
        ),
        (
            "github: the scope asked for in the form, within the cap",
            grant(GITHUB_ID, gh(&github(json!({}))), Some("signature")),
            workload(
                repo,
                &["signature"],
                guard(GITHUB, &github(json!({})), LEEWAY),
            ),
        ),
        (
            "github: a token without kid: the keys are tried",
            grant(
                GITHUB_ID,
                sign(github_key, Rs256, Some("JWT"), None, &github(json!({}))),
                None,
            ),
            workload(
                repo,
                &["signature"],
                guard(GITHUB, &github(json!({})), LEEWAY),
            ),
        ),
        (
            "github: another owner's repository (GitHub's issuer is shared)",
            grant(
                GITHUB_ID,
                gh(&github(
                    json!({"repository_owner": "evil-org", "repository": "evil-org/octo-repo"}),
                )),
                None,
            ),
            refused("ConditionNotMet", invalid, "condition_not_met: "),
        ),
        (
            "github: a branch other than main",
            grant(
                GITHUB_ID,
                gh(&github(json!({"ref": "refs/heads/feature"}))),
                None,
            ),
            refused("ConditionNotMet", invalid, "condition_not_met: "),
        ),
        (
            "github: a pull request's merge ref",
            grant(
                GITHUB_ID,
                gh(&github(
                    json!({"ref": "refs/pull/42/merge", "event_name": "pull_request"}),
                )),
                None,
            ),
            refused("ConditionNotMet", invalid, "condition_not_met: "),
        ),
        (
            "github: no ref claim: the condition fails, which refuses",
            grant(GITHUB_ID, gh(&github(json!({"ref": "__absent__"}))), None),
            refused("ConditionNotMet", invalid, "condition_not_met: "),
        ),
        (
            "github: aud this server, not the audience the issuer's policy names",
            grant(GITHUB_ID, gh(&github(json!({"aud": SERVER_AUD}))), None),
            refused("AudienceMismatch", invalid, "'aud' must contain"),
        ),
        (
            "github: iss with a trailing slash",
            grant(
                GITHUB_ID,
                gh(&github(json!({"iss": format!("{GITHUB}/")}))),
                None,
            ),
            refused("IssuerNotFound", invalid, "issuer_not_found: "),
        ),
        (
            "github: iss in capitals",
            grant(
                GITHUB_ID,
                gh(&github(json!({"iss": GITHUB.to_uppercase()}))),
                None,
            ),
            refused("IssuerNotFound", invalid, "issuer_not_found: "),
        ),
        (
            "github: PS256 with the key GitHub publishes for RS256",
            grant(
                GITHUB_ID,
                sign(
                    github_key,
                    Ps256,
                    Some("JWT"),
                    Some("gh-1"),
                    &github(json!({})),
                ),
                None,
            ),
            refused(
                "AlgorithmNotAllowed",
                invalid,
                "no_valid_keys_or_signatures: alg 'PS256' is not allowed",
            ),
        ),
        (
            "github: signed by another key under GitHub's kid",
            grant(
                GITHUB_ID,
                sign(
                    &okta_key,
                    Rs256,
                    Some("JWT"),
                    Some("gh-1"),
                    &github(json!({})),
                ),
                None,
            ),
            refused(
                "NoValidKeysOrSignatures",
                invalid,
                "no_valid_keys_or_signatures: ",
            ),
        ),
        (
            "github: a kid GitHub does not publish",
            grant(
                GITHUB_ID,
                sign(
                    github_key,
                    Rs256,
                    Some("JWT"),
                    Some("gh-9"),
                    &github(json!({})),
                ),
                None,
            ),
            refused(
                "UnknownKeyId",
                invalid,
                "no_valid_keys_or_signatures: no active key",
            ),
        ),
        (
            "github: a jku header naming the signer's own keys is not followed",
            grant(
                GITHUB_ID,
                raw_signed(
                    r#"{"alg":"RS256","typ":"JWT","kid":"gh-1","jku":"https://attacker.example/jwks"}"#,
                    &github(json!({})),
                    &okta_key,
                    Rs256,
                ),
                None,
            ),
            refused(
                "NoValidKeysOrSignatures",
                invalid,
                "no_valid_keys_or_signatures: ",
            ),
        ),
        (
            "github: no jti under single use",
            grant(GITHUB_ID, gh(&github(json!({"jti": "__absent__"}))), None),
            refused("JtiRequired", invalid, "this integration requires a 'jti'"),
        ),
        (
            "github: lifetime past the issuer's 600 s plus leeway",
            grant(
                GITHUB_ID,
                gh(&github(json!({"exp": NOW - 10 + 600 + LEEWAY + 1}))),
                None,
            ),
            refused(
                "LifetimeTooLong",
                invalid,
                "assertion lifetime too long: 'exp' may be at most 600 seconds",
            ),
        ),
        (
            "github: expired the leeway ago",
            grant(
                GITHUB_ID,
                gh(&github(
                    json!({"iat": NOW - 400, "nbf": NOW - 1000, "exp": NOW - LEEWAY}),
                )),
                None,
            ),
            refused("Expired", invalid, "assertion expired"),
        ),
        (
            "github: a scope outside the issuer's cap",
            grant(GITHUB_ID, gh(&github(json!({}))), Some("extended")),
            refused(
                "ScopeNotAllowed",
                "invalid_scope",
                "scope 'extended' is not allowed",
            ),
        ),
        (
            "github, disabled by the operator",
            grant("github-disabled", gh(&github(json!({}))), None),
            refused(
                "TrustedIssuerDisabled",
                invalid,
                "issuer_not_found: the trusted issuer named by 'iss' is disabled",
            ),
        ),
        (
            "github, its trust expired at now",
            grant("github-expired", gh(&github(json!({}))), None),
            refused(
                "TrustedIssuerExpired",
                invalid,
                "issuer_not_found: the trust in the issuer named by 'iss' has expired",
            ),
        ),
        (
            "github, bound to an integration without application tokens",
            grant("github-no-app", gh(&github(json!({}))), None),
            refused(
                "ApplicationTokensNotAllowed",
                invalid,
                "assertion has no 'sub' and this integration may not request application tokens",
            ),
        ),
        // Kubernetes: projected service-account tokens, keys from a JWKS file,
        // the same token presented until it expires.
        (
            "kubernetes: a service account of namespace ci",
            grant(
                KUBERNETES_ID,
                k8s(&kubernetes(json!({}))),
                Some("signature extended"),
            ),
            workload(sa, &["signature", "extended"], Value::Null),
        ),
        {
            let c = kubernetes(json!({"iat": NOW - 60, "exp": NOW - 60 + 7200}));
            (
                "kubernetes: two hours, within the issuer's max but past the server's",
                grant(KUBERNETES_ID, k8s(&c), Some("signature")),
                workload(sa, &["signature"], Value::Null),
            )
        },
        (
            "kubernetes: a service account of another namespace",
            grant(
                KUBERNETES_ID,
                k8s(&kubernetes(
                    json!({"sub": "system:serviceaccount:default:deployer", "kubernetes.io": {"namespace": "default"}}),
                )),
                None,
            ),
            refused("ConditionNotMet", invalid, "condition_not_met: "),
        ),
        (
            "kubernetes: a legacy secret-based token, without kubernetes.io",
            grant(
                KUBERNETES_ID,
                k8s(&kubernetes(
                    json!({"kubernetes.io": "__absent__", "kubernetes.io/serviceaccount/namespace": "ci"}),
                )),
                None,
            ),
            refused("ConditionNotMet", invalid, "condition_not_met: "),
        ),
        (
            "kubernetes: PS256, which the issuer's policy does not allow",
            grant(
                KUBERNETES_ID,
                sign(
                    cluster_key,
                    Ps256,
                    None,
                    Some(&cluster_kid),
                    &kubernetes(json!({})),
                ),
                None,
            ),
            refused(
                "AlgorithmNotAllowed",
                invalid,
                "no_valid_keys_or_signatures: alg 'PS256' is not allowed",
            ),
        ),
        (
            "kubernetes: the token as the client assertion of its integration",
            federated(KUBERNETES_ID, FEDERATED, k8s(&kubernetes(json!({})))),
            client(FEDERATED, Value::Null),
        ),
        (
            "kubernetes: as the client assertion of a disabled integration",
            federated(
                KUBERNETES_ID,
                DISABLED_FEDERATED,
                k8s(&kubernetes(json!({}))),
            ),
            refused(
                "IntegrationDisabled",
                invalid,
                "issuer_not_found: the integration named by 'iss' is disabled",
            ),
        ),
        (
            "kubernetes: as a client assertion, from another namespace",
            federated(
                KUBERNETES_ID,
                FEDERATED,
                k8s(&kubernetes(
                    json!({"kubernetes.io": {"namespace": "default"}}),
                )),
            ),
            refused("ConditionNotMet", invalid, "condition_not_met: "),
        ),
        (
            "kubernetes: as a client assertion, aud another server",
            federated(
                KUBERNETES_ID,
                FEDERATED,
                k8s(&kubernetes(
                    json!({"aud": ["https://kubernetes.default.svc"]}),
                )),
            ),
            refused("AudienceMismatch", invalid, "'aud' must contain"),
        ),
        // SPIFFE: JWT-SVIDs from SPIRE, no jti (replay none), typ JWT.
        (
            "spiffe: a JWT-SVID of the ci namespace",
            grant(SPIRE_ID, svid(&spiffe(json!({}))), None),
            workload(spiffe_id, &["signature"], Value::Null),
        ),
        (
            "spiffe: the JWT-SVID as the client assertion of its integration",
            federated(SPIRE_ID, FEDERATED, svid(&spiffe(json!({})))),
            client(FEDERATED, Value::Null),
        ),
        (
            "spiffe: another trust domain",
            grant(
                SPIRE_ID,
                svid(&spiffe(
                    json!({"sub": "spiffe://evil.example/ns/ci/sa/deployer"}),
                )),
                None,
            ),
            refused("ConditionNotMet", invalid, "condition_not_met: "),
        ),
        (
            "spiffe: typ at+jwt",
            grant(
                SPIRE_ID,
                sign(
                    spire_key,
                    Es256,
                    Some("at+jwt"),
                    Some("spire-1"),
                    &spiffe(json!({})),
                ),
                None,
            ),
            refused(
                "TypNotAllowed",
                invalid,
                "the trusted issuer does not accept tokens of typ 'at+jwt'",
            ),
        ),
        (
            "spiffe: no typ",
            grant(
                SPIRE_ID,
                sign(spire_key, Es256, None, Some("spire-1"), &spiffe(json!({}))),
                None,
            ),
            refused(
                "TypNotAllowed",
                invalid,
                "the trusted issuer does not accept tokens of typ ''",
            ),
        ),
        (
            "spiffe: RS256, which the issuer's policy does not allow",
            grant(
                SPIRE_ID,
                sign(
                    github_key,
                    Rs256,
                    Some("JWT"),
                    Some("spire-1"),
                    &spiffe(json!({})),
                ),
                None,
            ),
            refused(
                "AlgorithmNotAllowed",
                invalid,
                "no_valid_keys_or_signatures: alg 'RS256' is not allowed",
            ),
        ),
        (
            "spiffe: lifetime past the issuer's 900 s plus leeway",
            grant(
                SPIRE_ID,
                svid(&spiffe(json!({"exp": NOW - 10 + 900 + LEEWAY + 1}))),
                None,
            ),
            refused(
                "LifetimeTooLong",
                invalid,
                "assertion lifetime too long: 'exp' may be at most 900 seconds",
            ),
        ),
        // OIDC users: Okta by the linked sub, Google by the verified email; consent
        // as for integrations.
        {
            let c = okta(json!({}));
            (
                "okta: Ada, linked, asks for signature and impersonation",
                grant(OKTA_ID, ok_ta(&c), Some("signature impersonation")),
                user(
                    ADA,
                    &["signature", "impersonation"],
                    guard(OKTA, &c, LEEWAY),
                ),
            )
        },
        {
            let c = okta(json!({}));
            (
                "okta: no scope asked: the issuer's cap",
                grant(OKTA_ID, ok_ta(&c), None),
                user(
                    ADA,
                    &["signature", "impersonation"],
                    guard(OKTA, &c, LEEWAY),
                ),
            )
        },
        (
            "okta: without impersonation",
            grant(OKTA_ID, ok_ta(&okta(json!({}))), Some("signature")),
            refused(
                "ImpersonationScopeMissing",
                "consent_required",
                "consent_required: acting as a user needs the 'impersonation' scope",
            ),
        ),
        (
            "okta: Grace, who consented to impersonation only",
            grant(
                OKTA_ID,
                ok_ta(&okta(
                    json!({"sub": "00u9z8y7x6W5v4U3t2s1", "name": "Grace Hopper", "email": "grace@example.com"}),
                )),
                Some("signature impersonation"),
            ),
            refused(
                "ConsentRequired",
                "consent_required",
                "consent_required: the user has not consented to this integration for scope 'signature'",
            ),
        ),
        (
            "okta: a subject linked to no user",
            grant(
                OKTA_ID,
                ok_ta(&okta(json!({"sub": "00u0000000NotLinked0"}))),
                Some("signature impersonation"),
            ),
            refused("UserNotFound", invalid, "user_not_found: "),
        ),
        (
            "okta: no sub",
            grant(
                OKTA_ID,
                ok_ta(&okta(json!({"sub": "__absent__"}))),
                Some("signature impersonation"),
            ),
            refused(
                "SubjectNotMapped",
                invalid,
                "subject_not_mapped: the token has no 'sub'",
            ),
        ),
        (
            "okta: aud another client of the IdP",
            grant(
                OKTA_ID,
                ok_ta(&okta(json!({"aud": "0oaOtherClient000000"}))),
                Some("signature impersonation"),
            ),
            refused("AudienceMismatch", invalid, "'aud' must contain"),
        ),
        (
            "okta: the same issuer's token is no client assertion (no --client-authentication)",
            federated(OKTA_ID, FEDERATED, ok_ta(&okta(json!({})))),
            refused("IssuerNotFound", invalid, "issuer_not_found: "),
        ),
        (
            "google: Ada by her verified email (no jti: until-exp)",
            grant(
                GOOGLE_ID,
                goog(&google(json!({}))),
                Some("signature impersonation"),
            ),
            user(ADA, &["signature", "impersonation"], Value::Null),
        ),
        (
            "google: email_verified the string \"true\"",
            grant(
                GOOGLE_ID,
                goog(&google(json!({"email_verified": "true"}))),
                Some("signature impersonation"),
            ),
            refused(
                "SubjectNotMapped",
                invalid,
                "subject_not_mapped: the token's email is not verified",
            ),
        ),
        (
            "google: email_verified false",
            grant(
                GOOGLE_ID,
                goog(&google(json!({"email_verified": false}))),
                Some("signature impersonation"),
            ),
            refused(
                "SubjectNotMapped",
                invalid,
                "subject_not_mapped: the token's email is not verified",
            ),
        ),
        (
            "google: a verified email no user has",
            grant(
                GOOGLE_ID,
                goog(&google(json!({"email": "mallory@example.com"}))),
                Some("signature impersonation"),
            ),
            refused("UserNotFound", invalid, "user_not_found: "),
        ),
        (
            "google: Okta's token under Google's iss",
            grant(
                GOOGLE_ID,
                ok_ta(&google(json!({}))),
                Some("signature impersonation"),
            ),
            refused(
                "UnknownKeyId",
                invalid,
                "no_valid_keys_or_signatures: no active key",
            ),
        ),
    ];

    let jwks = |key: &SigningKey, kid: &str, alg: Option<JwsAlgorithm>| json!({"keys": [key.public_key().to_jwk(Some(kid), alg)]});
    let github_policy = json!({
        "keys": {"jwks_uri": format!("{GITHUB}/.well-known/jwks")},
        "audiences": ["https://github.com/octo-org"],
        "max_lifetime_secs": 600,
        "replay": "single-use",
        "subject": "workload",
        "subject_expr": r#""github:" + assertion.repository"#,
        "condition": r#"assertion.repository_owner == "octo-org" && assertion.ref == "refs/heads/main""#,
        "scopes": ["signature"],
    });
    let record =
        |id: &str, issuer: &str, integration: &str, active: bool, policy: Value, served: Value| {
            (
                id.to_owned(),
                json!({
                    "id": id, "issuer": issuer, "integration": integration, "active": active,
                    "policy": policy, "jwks": served,
                }),
            )
        };
    let issuers: serde_json::Map<String, Value> = [
        record(
            GITHUB_ID,
            GITHUB,
            FEDERATED,
            true,
            github_policy.clone(),
            jwks(github_key, "gh-1", Some(Rs256)),
        ),
        record(
            "github-disabled",
            GITHUB,
            FEDERATED,
            false,
            github_policy.clone(),
            jwks(github_key, "gh-1", Some(Rs256)),
        ),
        record(
            "github-expired",
            GITHUB,
            FEDERATED,
            true,
            overridden(github_policy.clone(), json!({"expires_at": NOW})),
            jwks(github_key, "gh-1", Some(Rs256)),
        ),
        record(
            "github-no-app",
            GITHUB,
            NO_APP,
            true,
            github_policy,
            jwks(github_key, "gh-1", Some(Rs256)),
        ),
        record(
            KUBERNETES_ID,
            KUBERNETES,
            FEDERATED,
            true,
            json!({
                "keys": {"jwks": jwks(cluster_key, &cluster_kid, None)},
                "audiences": [SERVER_AUD],
                "algorithms": ["RS256"],
                "max_lifetime_secs": 7200,
                "replay": "until-exp",
                "subject": "workload",
                "condition": r#"assertion["kubernetes.io"].namespace == "ci""#,
                "scopes": ["signature", "extended"],
                "client_authentication": true,
            }),
            Value::Null,
        ),
        record(
            SPIRE_ID,
            SPIRE,
            FEDERATED,
            true,
            json!({
                "keys": {"jwks_uri": format!("{SPIRE}/keys")},
                "algorithms": ["ES256"],
                "typs": ["JWT"],
                "max_lifetime_secs": 900,
                "clock_skew_secs": LEEWAY,
                "replay": "none",
                "subject": "workload",
                "condition": r#"assertion.sub.startsWith("spiffe://example.org/ns/ci/")"#,
                "scopes": ["signature"],
                "client_authentication": true,
            }),
            jwks(spire_key, "spire-1", Some(Es256)),
        ),
        record(
            OKTA_ID,
            OKTA,
            FEDERATED,
            true,
            json!({
                "keys": "discovery",
                "audiences": [OKTA_CLIENT],
                "algorithms": ["RS256"],
                "max_lifetime_secs": 3600,
                "subject": "user",
                "user_claim": "sub",
                "scopes": ["signature", "impersonation"],
            }),
            jwks(&okta_key, "okta-1", Some(Rs256)),
        ),
        record(
            GOOGLE_ID,
            GOOGLE,
            FEDERATED,
            true,
            json!({
                "keys": "discovery",
                "audiences": [GOOGLE_CLIENT],
                "algorithms": ["RS256"],
                "max_lifetime_secs": 3600,
                "replay": "until-exp",
                "subject": "user",
                "user_claim": "email",
                "scopes": ["signature", "impersonation"],
            }),
            jwks(&google_key, "google-1", Some(Rs256)),
        ),
    ]
    .into_iter()
    .collect();

    let count = cases.len();
    let doc = json!({
        "about": "Trusted issuers' tokens (PROTOCOL.md part two) and the verdict each must get. A case names the issuer record the registry finds for it (by its iss; for the exactness cases, the one a lookup that folded case or a trailing slash would find) and its flow: 'grant' runs verify_from_issuer under the grant policy, the user lookup (links and emails below; one that finds nobody leaves no user record), decide_for_issuer; 'client_authentication' runs read_client_credentials (a FederatedAssertion), verify_from_issuer under the client policy, authenticate_federated_client for the integration the client_id names. Keys: the issuer's static JWKS (policy keys.jwks) or else what its JWKS URL serves (jwks), parsed under the policy's algorithms. Accepted: the subject, scopes and replay guard, or the client and its guard; refused: the GrantError variant, its OAuth code and how its description starts. Regenerate with: cargo run -p jwtgrant-core --example make_vectors",
        "now": NOW,
        "policies": {
            "grant": {"accepted_audiences": [SERVER_AUD, TOKEN_ENDPOINT, "auth.example.test"], "leeway_secs": LEEWAY, "max_lifetime_secs": MAX_LIFETIME},
            "client_authentication": {"accepted_audiences": [SERVER_AUD, TOKEN_ENDPOINT], "leeway_secs": LEEWAY, "max_lifetime_secs": MAX_LIFETIME},
        },
        "integrations": [
            {"key": FEDERATED, "active": true, "allow_application_tokens": true, "scopes": ["signature", "impersonation", "extended"]},
            {"key": NO_APP, "active": true, "allow_application_tokens": false, "scopes": ["signature", "impersonation", "extended"]},
            {"key": DISABLED_FEDERATED, "active": false, "allow_application_tokens": true, "scopes": ["signature", "impersonation", "extended"]},
        ],
        "issuers": issuers,
        "users": [{"id": ADA, "active": true}, {"id": GRACE, "active": true}],
        "links": [
            {"issuer": OKTA_ID, "subject": "00u1a2b3c4D5e6F7g8h9", "user": ADA},
            {"issuer": OKTA_ID, "subject": "00u9z8y7x6W5v4U3t2s1", "user": GRACE},
        ],
        "emails": [{"email": "ada@example.com", "user": ADA}],
        "consents": [
            {"user": ADA, "integration": FEDERATED, "scopes": ["signature", "impersonation"]},
            {"user": GRACE, "integration": FEDERATED, "scopes": ["impersonation"]},
        ],
        "cases": cases.into_iter().map(|(name, request, verdict)| {
            let mut case = overridden(request, verdict);
            case["name"] = json!(name);
            case
        }).collect::<Vec<_>>(),
    });
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap() + "\n").unwrap();
    count
}
