//! One test per rule of an ID-JAG at the resource authorization server, with a fixed
//! `now`: the policy an `--id-jag` issuer must have, the `typ`, the presenting
//! client, the exact audience, the times, the scopes, the resources, the user and
//! reuse until `exp`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::OnceLock;

use serde_json::{Value, json};

use super::*;
use crate::assertion::{AssertionPolicy, UnverifiedAssertion};
use crate::jwks::{IssuerKeySet, parse_jwks};
use crate::jws::sign_compact;
use crate::keys::SigningKey;
use crate::trusted_issuer::{DEFAULT_MAX_LIFETIME_SECS, KeySource, UserClaim};
use crate::{JwsAlgorithm, User};

const NOW: i64 = 1_800_000_000;
/// The enterprise IdP (Okta-shaped).
const IDP: &str = "https://acme.okta.example";
const KID: &str = "idp-1";
/// This server: the resource authorization server of an MCP server.
const SERVER: &str = "https://auth.mcp.example";
/// The MCP client's integration key, and the ID-JAG's `client_id`.
const CLIENT: &str = "f53f3a8e-6a3c-4f0e-9d53-2b8c4d1e7a90";
const USER: &str = "5d2b7c1e-8f4a-4e3b-9c6d-1a0e2f3b4c5d";
const MCP: &str = "https://mcp.example/mcp";

fn idp_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| {
        SigningKey::from_pem(include_str!("../../testdata/keys/integration-rsa.pem")).unwrap()
    })
}

fn keys() -> IssuerKeySet {
    let document = json!({ "keys": [idp_key().public_key().to_jwk(Some(KID), None)] });
    parse_jwks(&serde_json::to_vec(&document).unwrap(), &[]).unwrap()
}

/// The policy `issuer add --id-jag --subject user` gives.
fn policy() -> IssuerPolicy {
    IssuerPolicy {
        keys: KeySource::JwksUri(format!("{IDP}/oauth2/v1/keys")),
        audiences: vec![],
        algorithms: vec![],
        typs: vec![ID_JAG_TYP.into()],
        max_lifetime_secs: DEFAULT_MAX_LIFETIME_SECS,
        clock_skew_secs: Some(0),
        replay: ReplayPolicy::UntilExp,
        subject: SubjectKind::User,
        user_claim: UserClaim::Sub,
        subject_expr: None,
        condition: None,
        scopes: vec![],
        expires_at: None,
        client_authentication: false,
        id_jag: true,
    }
}

fn issuer() -> TrustedIssuer {
    TrustedIssuer::new("id".into(), IDP.into(), CLIENT.into(), true, policy()).unwrap()
}

fn integration() -> Integration {
    Integration {
        key: CLIENT.into(),
        name: "Agent".into(),
        active: true,
        allow_application_tokens: false,
        require_jti: false,
        scopes: vec!["files:read".into(), "files:write".into(), "mcp".into()],
        default_scopes: vec![],
        redirect_uris: vec![],
        resources: vec![MCP.into(), "https://files.example".into()],
        client_secret_hash: Some("$argon2id$...".into()),
        keys: vec![],
    }
}

fn server_policy() -> AssertionPolicy {
    AssertionPolicy {
        accepted_audiences: vec![SERVER.into(), format!("{SERVER}/oauth/token")],
        leeway_secs: 0,
        max_lifetime_secs: 3600,
    }
}

/// An ID-JAG's claims as the draft shapes them.
fn claims() -> Value {
    json!({
        "iss": IDP, "sub": "00u1abcd", "aud": SERVER, "client_id": CLIENT,
        "jti": "9e43f81b64a33f20116179", "iat": NOW, "exp": NOW + 300,
        "scope": "files:read mcp", "resource": MCP, "auth_time": NOW - 60,
    })
}

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

fn sign(typ: Option<&str>, claims: &Value) -> String {
    sign_compact(idp_key(), JwsAlgorithm::Rs256, typ, Some(KID), claims).unwrap()
}

fn confidential() -> AuthenticatedClient {
    AuthenticatedClient {
        client_id: CLIENT.into(),
        confidential: true,
    }
}

fn user() -> User {
    User {
        id: USER.into(),
        active: true,
    }
}

/// The whole grant: verify under the issuer's policy, then decide.
fn grant_as(
    typ: Option<&str>,
    claims: &Value,
    client: Option<&AuthenticatedClient>,
    scope: Option<&str>,
    resources: &[&str],
    user: Option<&User>,
) -> Result<GrantDecision, GrantError> {
    let issuer = issuer();
    let token = sign(typ, claims);
    let assertion = UnverifiedAssertion::parse(&token)?.verify_from_issuer(
        &issuer,
        &keys(),
        &server_policy(),
        NOW,
    )?;
    let request = IdJagRequest {
        client,
        scope,
        resources,
    };
    decide_id_jag(&assertion, &issuer, &integration(), SERVER, request, user)
}

fn grant(claims: &Value) -> Result<GrantDecision, GrantError> {
    grant_as(
        Some(ID_JAG_TYP),
        claims,
        Some(&confidential()),
        None,
        &[],
        Some(&user()),
    )
}

#[test]
fn an_id_jag_from_the_client_it_names_is_granted_for_its_user_scopes_and_resource() {
    let decision = grant(&claims()).unwrap();
    assert_eq!(decision.client_id(), CLIENT);
    assert_eq!(decision.subject(), &TokenSubject::User(USER.into()));
    assert_eq!(decision.scopes(), ["files:read", "mcp"]);
    assert_eq!(decision.resources(), [MCP]);
    // No consent record and no `impersonation`: the IdP's policy stands for them.
    // Reuse until `exp`: nothing to record.
    assert!(decision.replay_guard().is_none());
    assert!(grant(&claims()).is_ok(), "the same ID-JAG again");
}

#[test]
fn the_typ_must_be_the_id_jags() {
    for typ in [None, Some("JWT"), Some("at+jwt"), Some("oauth-id-jag")] {
        assert!(
            matches!(
                grant_as(
                    typ,
                    &claims(),
                    Some(&confidential()),
                    None,
                    &[],
                    Some(&user())
                ),
                Err(GrantError::TypNotAllowed(_))
            ),
            "{typ:?}"
        );
    }
    // `typ` compares without case (RFC 7515 section 4.1.9).
    assert!(
        grant_as(
            Some("OAUTH-ID-JAG+JWT"),
            &claims(),
            Some(&confidential()),
            None,
            &[],
            Some(&user())
        )
        .is_ok()
    );
}

#[test]
fn only_an_authenticated_confidential_client_named_by_the_id_jag_may_present_it() {
    let public = AuthenticatedClient {
        client_id: CLIENT.into(),
        confidential: false,
    };
    for client in [None, Some(&public)] {
        let refused = grant_as(
            Some(ID_JAG_TYP),
            &claims(),
            client,
            None,
            &[],
            Some(&user()),
        );
        assert_eq!(
            refused.err(),
            Some(GrantError::IdJagClientAuthenticationRequired)
        );
    }
    assert_eq!(
        GrantError::IdJagClientAuthenticationRequired.code(),
        jwtgrant_proto::ErrorCode::InvalidClient
    );
    let other = AuthenticatedClient {
        client_id: "another-client".into(),
        confidential: true,
    };
    assert_eq!(
        grant_as(
            Some(ID_JAG_TYP),
            &claims(),
            Some(&other),
            None,
            &[],
            Some(&user())
        )
        .err(),
        Some(GrantError::IdJagClientMismatch)
    );
    for client_id in [
        json!("another-client"),
        json!("__remove__"),
        json!([CLIENT]),
    ] {
        assert_eq!(
            grant(&with(json!({ "client_id": client_id }))).err(),
            Some(GrantError::IdJagClientMismatch),
            "{client_id}"
        );
    }
}

#[test]
fn the_audience_is_this_server_exactly_and_alone() {
    assert!(grant(&with(json!({ "aud": [SERVER] }))).is_ok());
    // The token endpoint is an accepted audience of part one, but not of an ID-JAG.
    for aud in [
        json!(format!("{SERVER}/oauth/token")),
        json!([SERVER, "https://other.example"]),
        json!([SERVER, format!("{SERVER}/oauth/token")]),
    ] {
        assert_eq!(
            grant(&with(json!({ "aud": aud }))).err(),
            Some(GrantError::IdJagAudience),
            "{aud}"
        );
    }
    assert_eq!(
        grant(&with(json!({ "aud": "https://other.example" }))).err(),
        Some(GrantError::AudienceMismatch)
    );
}

#[test]
fn an_expired_or_not_yet_valid_id_jag_is_refused() {
    assert_eq!(
        grant(&with(json!({ "iat": NOW - 400, "exp": NOW - 100 }))).err(),
        Some(GrantError::Expired)
    );
    assert_eq!(
        grant(&with(json!({ "nbf": NOW + 60 }))).err(),
        Some(GrantError::NotYetValid)
    );
    assert_eq!(
        grant(&with(json!({ "iat": NOW + 60, "exp": NOW + 360 }))).err(),
        Some(GrantError::IssuedInFuture)
    );
}

#[test]
fn scopes_are_the_intersection_of_the_id_jag_and_the_request() {
    let run = |scope| {
        grant_as(
            Some(ID_JAG_TYP),
            &claims(),
            Some(&confidential()),
            scope,
            &[],
            Some(&user()),
        )
    };
    assert_eq!(run(Some("mcp")).unwrap().scopes(), ["mcp"]);
    // A requested scope the ID-JAG lacks is dropped, not an error.
    assert_eq!(run(Some("mcp files:write")).unwrap().scopes(), ["mcp"]);
    assert_eq!(
        run(Some("files:write")).err(),
        Some(GrantError::IdJagNoScope)
    );
    // A scope of the ID-JAG the integration may not have is not granted.
    let decision = grant(&with(json!({ "scope": "mcp admin" }))).unwrap();
    assert_eq!(decision.scopes(), ["mcp"]);
}

#[test]
fn the_resource_of_the_id_jag_is_the_audience_and_must_be_the_clients() {
    let run = |claims: &Value, resources: &[&str]| {
        grant_as(
            Some(ID_JAG_TYP),
            claims,
            Some(&confidential()),
            None,
            resources,
            Some(&user()),
        )
    };
    assert_eq!(run(&claims(), &[MCP]).unwrap().resources(), [MCP]);
    assert_eq!(
        run(&claims(), &["https://files.example"]).err(),
        Some(GrantError::ResourceBeyondGrant(
            "https://files.example".into()
        ))
    );
    assert_eq!(
        run(&with(json!({ "resource": "https://evil.example" })), &[]).err(),
        Some(GrantError::ResourceNotAllowed(
            "https://evil.example".into()
        ))
    );
    assert_eq!(
        run(
            &with(json!({ "resource": [MCP, "https://files.example"] })),
            &[]
        )
        .unwrap()
        .resources(),
        [MCP, "https://files.example"]
    );
    let without = with(json!({ "resource": "__remove__" }));
    assert!(run(&without, &[]).unwrap().resources().is_empty());
    assert_eq!(
        run(&without, &["https://files.example"])
            .unwrap()
            .resources(),
        ["https://files.example"]
    );
    assert!(matches!(
        run(&with(json!({ "resource": 7 })), &[]),
        Err(GrantError::WrongType {
            name: "resource",
            ..
        })
    ));
}

#[test]
fn the_user_must_exist_and_be_active() {
    let disabled = User {
        active: false,
        ..user()
    };
    let run = |user| {
        grant_as(
            Some(ID_JAG_TYP),
            &claims(),
            Some(&confidential()),
            None,
            &[],
            user,
        )
    };
    assert_eq!(run(None).err(), Some(GrantError::UserNotFound));
    assert_eq!(run(Some(&disabled)).err(), Some(GrantError::UserDisabled));
}

#[test]
fn an_id_jag_issuer_has_an_id_jags_policy() {
    let refused = |change: fn(&mut IssuerPolicy)| {
        let mut policy = policy();
        change(&mut policy);
        TrustedIssuer::new("id".into(), IDP.into(), CLIENT.into(), true, policy).is_err()
    };
    assert!(refused(|p| p.subject = SubjectKind::Workload));
    assert!(refused(|p| p.replay = ReplayPolicy::SingleUse));
    assert!(refused(|p| p.typs = vec![]));
    assert!(refused(|p| p.typs = vec!["JWT".into()]));
    assert!(refused(|p| p.typs.push("JWT".into())));
    assert!(refused(|p| p.client_authentication = true));
    // And an ID-JAG issuer's token is no ordinary trusted issuer's assertion.
    let issuer = issuer();
    let token = sign(Some(ID_JAG_TYP), &claims());
    let assertion = UnverifiedAssertion::parse(&token)
        .unwrap()
        .verify_from_issuer(&issuer, &keys(), &server_policy(), NOW)
        .unwrap();
    let ordinary = crate::trusted_issuer::decide_for_issuer(
        &assertion,
        &issuer,
        &integration(),
        None,
        crate::SubjectRecords {
            user: Some(&user()),
            consent: None,
        },
        0,
        |_| String::new(),
    );
    assert_eq!(ordinary.err(), Some(GrantError::IssuerNotFound));
}
