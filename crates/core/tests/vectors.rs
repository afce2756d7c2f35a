//! Runs every vector of `testdata/assertions.json` through the core (parse, verify,
//! decide), every one of `testdata/client_assertions.json` through client
//! authentication (`read_client_credentials`, `authenticate_assertion`), and every
//! one of `testdata/issuer_assertions.json` through a trusted issuer's grant or
//! federated client authentication. Each must get exactly its recorded verdict.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use jwtgrant_core::client_auth::{
    ClientAuthError, ClientCredentials, authenticate_assertion, explain_assertion,
    read_client_credentials,
};
use jwtgrant_core::explain::Explanation;
use jwtgrant_core::grants::jwt_bearer::{SubjectRecords, TokenSubject, decide, explain_decision};
use jwtgrant_core::jwks::parse_jwks;
use jwtgrant_core::model::{Consent, Integration, IntegrationKey, User};
use jwtgrant_core::trusted_issuer::{
    IssuerPolicy, TrustedIssuer, UserLookup, authenticate_federated_client, decide_for_issuer,
};
use jwtgrant_core::{AssertionPolicy, GrantError, PublicKey, UnverifiedAssertion};
use jwtgrant_proto::Jwk;
use serde_json::Value;

fn policy(policy: &Value) -> AssertionPolicy {
    AssertionPolicy {
        accepted_audiences: serde_json::from_value(policy["accepted_audiences"].clone()).unwrap(),
        leeway_secs: policy["leeway_secs"].as_i64().unwrap(),
        max_lifetime_secs: policy["max_lifetime_secs"].as_i64().unwrap(),
    }
}

fn integration_key(jwk: &Value, active: bool) -> IntegrationKey {
    let jwk: Jwk = serde_json::from_value(jwk.clone()).unwrap();
    IntegrationKey {
        kid: jwk.kid.clone().unwrap(),
        public_key: PublicKey::from_jwk(&jwk).unwrap(),
        active,
    }
}

fn read(path: &str) -> Value {
    let path = format!("{}/testdata/{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The registry of the assertion vectors: its one integration, user and consent,
/// the policy and `now`.
fn vector_registry(doc: &Value) -> (Integration, User, Consent, AssertionPolicy, i64) {
    let policy = policy(&doc["policy"]);
    let i = &doc["integration"];
    let integration = Integration {
        key: i["key"].as_str().unwrap().into(),
        name: "vectors".into(),
        active: true,
        allow_application_tokens: i["allow_application_tokens"].as_bool().unwrap(),
        require_jti: i["require_jti"].as_bool().unwrap(),
        scopes: serde_json::from_value(i["scopes"].clone()).unwrap(),
        redirect_uris: vec![],
        resources: Vec::new(),
        default_scopes: Vec::new(),
        client_secret_hash: None,
        keys: i["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| integration_key(k, true))
            .collect(),
    };
    let user = User {
        id: doc["user"]["id"].as_str().unwrap().into(),
        active: true,
    };
    let consent = Consent {
        scopes: serde_json::from_value(doc["consent"].clone()).unwrap(),
    };
    let now = doc["now"].as_i64().unwrap();
    (integration, user, consent, policy, now)
}

/// The records the adapter finds for the assertion's `sub`.
fn vector_records<'a>(
    sub: Option<&str>,
    user: &'a User,
    consent: &'a Consent,
) -> SubjectRecords<'a> {
    match sub {
        Some(sub) if sub == user.id => SubjectRecords {
            user: Some(user),
            consent: Some(consent),
        },
        _ => SubjectRecords {
            user: None,
            consent: None,
        },
    }
}

fn verdict(doc: &Value, assertion: &str, form_scope: Option<&str>) -> Result<(), GrantError> {
    let (integration, user, consent, policy, now) = vector_registry(doc);
    // The registry holds the one integration of the vector; the core's `verify`
    // refuses an assertion whose `iss` is not that integration (rule 2).
    let unverified = UnverifiedAssertion::parse(assertion)?;
    let verified = unverified.verify(&integration, &policy, now)?;
    let records = vector_records(verified.subject(), &user, &consent);
    decide(
        &verified,
        form_scope,
        &integration,
        records,
        policy.leeway_secs,
        |_| "https://consent".into(),
    )
    .map(|_| ())
}

/// A refusal's description leads with its rule code and a colon, then says what went
/// wrong; the vectors record how those words start (with or without the code).
fn described_as(rule: &str, description: &str, prefix: &str) -> bool {
    let Some(reason) = description.strip_prefix(&format!("{rule}: ")) else {
        return false;
    };
    description.starts_with(prefix) || reason.starts_with(prefix)
}

#[test]
fn every_vector_gets_its_verdict() {
    let doc = read("assertions.json");
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 30);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let result = verdict(
            &doc,
            case["assertion"].as_str().unwrap(),
            case["form_scope"].as_str(),
        );
        match (case["verdict"].as_str().unwrap(), result) {
            ("accept", Ok(())) => {}
            ("accept", Err(error)) => panic!("{name}: refused with {error}"),
            (code, Ok(())) => panic!("{name}: accepted, expected {code}"),
            (code, Err(error)) => {
                assert_eq!(error.code().as_str(), code, "{name}: {error}");
                let prefix = case["description_starts_with"].as_str().unwrap();
                assert!(
                    described_as(error.rule(), &error.to_string(), prefix),
                    "{name}: '{error}' does not start with '{prefix}'"
                );
            }
        }
    }
}

/// The explanation of one assertion vector, as `jwtgrant explain` builds it.
fn explained(doc: &Value, assertion: &str, form_scope: Option<&str>) -> Explanation {
    let (integration, user, consent, policy, now) = vector_registry(doc);
    let mut explanation = Explanation::new("assertion");
    let Some(unverified) =
        explanation.check("parse", UnverifiedAssertion::parse(assertion), |_| {
            String::new()
        })
    else {
        return explanation;
    };
    let Some(verified) = unverified.explain(&integration, &policy, now, &mut explanation) else {
        return explanation;
    };
    explanation.part("decision");
    explain_decision(
        &verified,
        form_scope,
        &integration,
        vector_records(verified.subject(), &user, &consent),
        policy.leeway_secs,
        |_| "https://consent".into(),
        &mut explanation,
    );
    explanation
}

/// `jwtgrant explain` runs the server's rules: on every vector its first failure is
/// the server's refusal (same rule code, same description), and it fails nothing the
/// server accepts.
#[test]
fn explain_agrees_with_the_server_on_every_vector() {
    let doc = read("assertions.json");
    for case in doc["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let assertion = case["assertion"].as_str().unwrap();
        let form_scope = case["form_scope"].as_str();
        let explanation = explained(&doc, assertion, form_scope);
        match verdict(&doc, assertion, form_scope) {
            Ok(()) => assert!(
                explanation.passed() && explanation.checks().len() >= 12,
                "{name}: {explanation:?}"
            ),
            Err(error) => {
                let first = explanation
                    .first_failure()
                    .unwrap_or_else(|| panic!("{name}: explain passes what the server refuses"));
                assert_eq!(first.rule, Some(error.rule()), "{name}");
                assert_eq!(first.reason, error.to_string(), "{name}");
            }
        }
    }
}

/// The name of a refusal as the client vectors record it: the `ClientAuthError`
/// variant, and for `ClientAssertion` the `GrantError` variant inside.
fn kind(error: &ClientAuthError) -> String {
    let variant = |debug: String| -> String {
        debug
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect()
    };
    match error {
        ClientAuthError::ClientAssertion(inner) => {
            format!("ClientAssertion({})", variant(format!("{inner:?}")))
        }
        other => variant(format!("{other:?}")),
    }
}

/// The integrations of the client vectors.
fn client_integrations(doc: &Value) -> Vec<Integration> {
    doc["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| Integration {
            key: i["key"].as_str().unwrap().into(),
            name: "client vectors".into(),
            active: i["active"].as_bool().unwrap(),
            allow_application_tokens: true,
            require_jti: i["require_jti"].as_bool().unwrap(),
            scopes: vec![],
            redirect_uris: vec![],
            resources: Vec::new(),
            default_scopes: Vec::new(),
            client_secret_hash: None,
            keys: i["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| integration_key(&k["jwk"], k["active"].as_bool().unwrap()))
                .collect(),
        })
        .collect()
}

/// `jwtgrant explain --client-assertion` runs the server's client assertion rules:
/// on every vector that reaches them its first failure is the server's refusal.
#[test]
fn explain_agrees_with_the_server_on_every_client_vector() {
    let doc = read("client_assertions.json");
    let integrations = client_integrations(&doc);
    let mut explained = 0;
    for case in doc["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let request = &case["request"];
        let (Some(assertion), Value::Null) = (
            request["client_assertion"].as_str(),
            &request["authorization"],
        ) else {
            continue;
        };
        let Ok(ClientCredentials::Assertion { client_id, .. }) = read_client_credentials(
            None,
            request["client_id"].as_str(),
            request["client_secret"].as_str(),
            request["client_assertion_type"].as_str(),
            Some(assertion),
        ) else {
            continue;
        };
        let policy = policy(&doc["policies"][case["policy"].as_str().unwrap()]);
        let now = doc["now"].as_i64().unwrap();
        let integration = integrations.iter().find(|i| i.key == client_id);
        let mut explanation = Explanation::new("client_assertion");
        let outcome = explain_assertion(assertion, integration, &policy, now, &mut explanation);
        match authenticate_assertion(assertion, integration, &policy, now) {
            Ok(served) => assert_eq!(outcome, Some(served), "{name}: {explanation:?}"),
            Err(error) => {
                assert!(outcome.is_none(), "{name}");
                let first = explanation
                    .first_failure()
                    .unwrap_or_else(|| panic!("{name}: explain passes what the server refuses"));
                assert_eq!(first.rule, Some(error.rule()), "{name}");
                assert_eq!(first.reason, error.to_string(), "{name}");
            }
        }
        explained += 1;
    }
    assert!(explained >= 60, "{explained} client vectors explained");
}

/// One client-authentication request of the client vectors, through the core as
/// the server runs it: read the credentials, look up the integration their client
/// id names, authenticate the assertion.
fn client_verdict(doc: &Value, case: &Value) -> Result<Value, ClientAuthError> {
    let request = &case["request"];
    let field = |name: &str| request[name].as_str();
    let credentials = read_client_credentials(
        field("authorization"),
        field("client_id"),
        field("client_secret"),
        field("client_assertion_type"),
        field("client_assertion"),
    )?;
    let ClientCredentials::Assertion {
        client_id,
        assertion,
    } = credentials
    else {
        panic!(
            "{}: not read as a client assertion: {credentials:?}",
            case["name"]
        );
    };
    let integrations = client_integrations(doc);
    let integration = integrations.iter().find(|i| i.key == client_id);
    let policy = policy(&doc["policies"][case["policy"].as_str().unwrap()]);
    let (client, guard) = authenticate_assertion(
        &assertion,
        integration,
        &policy,
        doc["now"].as_i64().unwrap(),
    )?;
    assert!(client.confidential, "{}", case["name"]);
    Ok(serde_json::json!({
        "client_id": client.client_id,
        "replay_guard": {
            "issuer": guard.issuer,
            "jti": guard.jti,
            "remember_until": guard.remember_until,
        },
    }))
}

#[test]
fn every_client_vector_gets_its_verdict() {
    let doc = read("client_assertions.json");
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 75, "{} cases", cases.len());
    let mut kinds = std::collections::BTreeSet::new();
    // Every case is run and every wrong verdict reported, not only the first.
    let mut wrong = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        match (
            case["verdict"].as_str().unwrap(),
            client_verdict(&doc, case),
        ) {
            ("accept", Ok(got)) => {
                if got["client_id"] != case["client_id"]
                    || got["replay_guard"] != case["replay_guard"]
                {
                    wrong.push(format!("{name}: accepted as {got}"));
                }
                kinds.insert("accept".to_owned());
            }
            ("accept", Err(error)) => wrong.push(format!("{name}: refused with {error}")),
            (_, Ok(got)) => wrong.push(format!(
                "{name}: accepted ({got}), expected {}",
                case["error"]
            )),
            (_, Err(error)) => {
                let prefix = case["description_starts_with"].as_str().unwrap();
                if kind(&error) != case["error"].as_str().unwrap()
                    || !described_as(error.rule(), &error.to_string(), prefix)
                {
                    wrong.push(format!(
                        "{name}: refused as {} '{error}', expected {} '{prefix}...'",
                        kind(&error),
                        case["error"]
                    ));
                }
                kinds.insert(kind(&error));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Every rule of the contract keeps at least one vector.
    for kind in [
        "accept",
        "ClientAssertion(NoValidKeysOrSignatures)",
        "ClientAssertion(UnknownKeyId)",
        "ClientAssertion(AlgorithmKeyMismatch)",
        "ClientAssertion(AlgorithmNone)",
        "ClientAssertion(AlgorithmHmac)",
        "ClientAssertion(MissingClaim)",
        "ClientAssertion(WrongType)",
        "ClientAssertion(AudienceMismatch)",
        "ClientAssertion(Expired)",
        "ClientAssertion(NotYetValid)",
        "ClientAssertion(IssuedInFuture)",
        "ClientAssertion(LifetimeTooLong)",
        "ClientAssertionSubject",
        "ClientAssertionClientId",
        "ClientAssertionUnknownClient",
        "ClientAssertionJtiRequired",
        "ClientAssertionTyp",
        "ClientAssertionType",
        "SeveralMethods",
    ] {
        assert!(kinds.contains(kind), "no vector gets {kind}");
    }
}

/// The name of a `GrantError` variant, as the issuer vectors record it.
fn grant_error_kind(error: &GrantError) -> String {
    format!("{error:?}")
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect()
}

/// The trusted issuer a case names, built from its record as the registry builds
/// it (the stored policy compiled by `TrustedIssuer::new`), with its usable keys.
fn trusted_issuer(doc: &Value, id: &str) -> (TrustedIssuer, jwtgrant_core::jwks::IssuerKeySet) {
    let record = &doc["issuers"][id];
    assert!(record.is_object(), "no issuer {id}");
    let policy = IssuerPolicy::from_json(&record["policy"].to_string()).unwrap();
    let issuer = TrustedIssuer::new(
        record["id"].as_str().unwrap().into(),
        record["issuer"].as_str().unwrap().into(),
        record["integration"].as_str().unwrap().into(),
        record["active"].as_bool().unwrap(),
        policy,
    )
    .unwrap();
    let keys = match issuer.static_keys() {
        Some(keys) => (**keys).clone(),
        None => parse_jwks(
            &serde_json::to_vec(&record["jwks"]).unwrap(),
            issuer.allowed_algorithms(),
        )
        .unwrap(),
    };
    (issuer, keys)
}

fn issuer_integration(doc: &Value, key: &str) -> Option<Integration> {
    doc["integrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["key"] == key)
        .map(|i| Integration {
            key: key.into(),
            name: "issuer vectors".into(),
            active: i["active"].as_bool().unwrap(),
            allow_application_tokens: i["allow_application_tokens"].as_bool().unwrap(),
            require_jti: false,
            scopes: serde_json::from_value(i["scopes"].clone()).unwrap(),
            redirect_uris: vec![],
            resources: Vec::new(),
            default_scopes: Vec::new(),
            client_secret_hash: None,
            keys: vec![],
        })
}

/// The first entry of `doc[list]` whose members equal `matching`'s, if any.
fn find<'a>(doc: &'a Value, list: &str, matching: &[(&str, &str)]) -> Option<&'a Value> {
    doc[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| matching.iter().all(|(name, value)| entry[*name] == *value))
}

/// One case of the issuer vectors, through the core as the server runs it.
fn issuer_verdict(doc: &Value, case: &Value) -> Result<Value, GrantError> {
    let name = case["name"].as_str().unwrap();
    let now = doc["now"].as_i64().unwrap();
    let (issuer, keys) = trusted_issuer(doc, case["issuer"].as_str().unwrap());
    let leeway = doc["policies"]["grant"]["leeway_secs"].as_i64().unwrap();
    match case["flow"].as_str().unwrap() {
        "grant" => {
            let integration = issuer_integration(doc, &issuer.integration_key).unwrap();
            let assertion = UnverifiedAssertion::parse(case["assertion"].as_str().unwrap())?
                .verify_from_issuer(&issuer, &keys, &policy(&doc["policies"]["grant"]), now)?;
            let user_id = match issuer.user_lookup(&assertion)? {
                Some(UserLookup::Linked(subject)) => find(
                    doc,
                    "links",
                    &[
                        ("issuer", issuer.id.as_str()),
                        ("subject", subject.as_str()),
                    ],
                ),
                Some(UserLookup::Email(email)) => find(doc, "emails", &[("email", email.as_str())]),
                None => None,
            }
            .map(|entry| entry["user"].as_str().unwrap());
            let user = user_id
                .and_then(|id| find(doc, "users", &[("id", id)]))
                .map(|u| User {
                    id: u["id"].as_str().unwrap().into(),
                    active: u["active"].as_bool().unwrap(),
                });
            let consent = user_id
                .and_then(|id| {
                    find(
                        doc,
                        "consents",
                        &[("user", id), ("integration", integration.key.as_str())],
                    )
                })
                .map(|c| Consent {
                    scopes: serde_json::from_value(c["scopes"].clone()).unwrap(),
                });
            let records = SubjectRecords {
                user: user.as_ref(),
                consent: consent.as_ref(),
            };
            let decision = decide_for_issuer(
                &assertion,
                &issuer,
                &integration,
                case["form_scope"].as_str(),
                records,
                leeway,
                |_| "https://consent".into(),
            )?;
            assert_eq!(decision.client_id(), integration.key, "{name}");
            let subject = match decision.subject() {
                TokenSubject::User(id) => serde_json::json!({ "user": id }),
                TokenSubject::Workload(sub) => serde_json::json!({ "workload": sub }),
                TokenSubject::Application => panic!("{name}: an application token"),
            };
            Ok(serde_json::json!({
                "subject": subject,
                "scopes": decision.scopes(),
                "replay_guard": decision.replay_guard().map(guard_json),
            }))
        }
        "client_authentication" => {
            let request = &case["request"];
            let field = |name: &str| request[name].as_str();
            let credentials = read_client_credentials(
                None,
                field("client_id"),
                None,
                field("client_assertion_type"),
                field("client_assertion"),
            )
            .unwrap();
            let ClientCredentials::FederatedAssertion {
                client_id,
                issuer: iss,
                assertion,
            } = credentials
            else {
                panic!("{name}: not read as a federated assertion: {credentials:?}");
            };
            assert_eq!(iss, issuer.issuer, "{name}");
            let integration = issuer_integration(doc, &client_id).unwrap();
            let assertion = UnverifiedAssertion::parse(&assertion)?.verify_from_issuer(
                &issuer,
                &keys,
                &policy(&doc["policies"]["client_authentication"]),
                now,
            )?;
            let (client, guard) =
                authenticate_federated_client(&assertion, &issuer, &integration, leeway)?;
            assert!(client.confidential, "{name}");
            Ok(serde_json::json!({
                "client_id": client.client_id,
                "replay_guard": guard.as_ref().map(guard_json),
            }))
        }
        flow => panic!("{name}: unknown flow {flow}"),
    }
}

/// `jwtgrant explain` runs a trusted issuer's rules: on every grant vector its
/// first failure is the server's refusal from `verify_from_issuer`, and it passes
/// what that accepts.
#[test]
fn explain_agrees_with_the_server_on_every_issuer_vector() {
    let doc = read("issuer_assertions.json");
    let now = doc["now"].as_i64().unwrap();
    let policy = policy(&doc["policies"]["grant"]);
    let mut explained = 0;
    let mut conditions_failed = 0;
    for case in doc["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        if case["flow"] != "grant" {
            continue;
        }
        let (issuer, keys) = trusted_issuer(&doc, case["issuer"].as_str().unwrap());
        let Ok(unverified) = UnverifiedAssertion::parse(case["assertion"].as_str().unwrap()) else {
            continue;
        };
        let mut explanation = Explanation::new("assertion");
        let outcome =
            unverified.explain_from_issuer(&issuer, &keys, &policy, now, &mut explanation);
        match unverified.verify_from_issuer(&issuer, &keys, &policy, now) {
            Ok(served) => {
                let outcome = outcome.unwrap_or_else(|| panic!("{name}: {explanation:?}"));
                assert_eq!(outcome.verified(), served.verified(), "{name}");
                // The condition, which the server checks in its decision.
                let mut condition = Explanation::new("decision");
                issuer.explain_condition(&outcome, &mut condition);
                match issuer.check_condition(&served) {
                    Ok(()) => assert!(condition.passed(), "{name}: {condition:?}"),
                    Err(error) => {
                        let first = condition.first_failure().unwrap();
                        assert_eq!(first.rule, Some(error.rule()), "{name}");
                        assert!(first.reason.starts_with(&error.to_string()), "{name}");
                        conditions_failed += 1;
                    }
                }
            }
            Err(error) => {
                assert!(outcome.is_none(), "{name}");
                let first = explanation
                    .first_failure()
                    .unwrap_or_else(|| panic!("{name}: explain passes what the server refuses"));
                assert_eq!(first.rule, Some(error.rule()), "{name}");
                assert_eq!(first.reason, error.to_string(), "{name}");
            }
        }
        explained += 1;
    }
    assert!(explained >= 25, "{explained} issuer vectors explained");
    assert!(
        conditions_failed >= 1,
        "no vector fails its issuer's condition"
    );
}

fn guard_json(guard: &jwtgrant_core::ReplayGuard) -> Value {
    serde_json::json!({
        "issuer": guard.issuer,
        "jti": guard.jti,
        "remember_until": guard.remember_until,
    })
}

#[test]
fn every_issuer_vector_gets_its_verdict() {
    let doc = read("issuer_assertions.json");
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 45, "{} cases", cases.len());
    let mut kinds = std::collections::BTreeSet::new();
    let mut wrong = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let result = issuer_verdict(&doc, case);
        match (case["verdict"].as_str().unwrap(), result) {
            ("accept", Ok(got)) => {
                let expected: serde_json::Map<_, _> = case
                    .as_object()
                    .unwrap()
                    .iter()
                    .filter(|(member, _)| got.get(member.as_str()).is_some())
                    .map(|(member, value)| (member.clone(), value.clone()))
                    .collect();
                if Value::Object(expected) != got {
                    wrong.push(format!("{name}: accepted as {got}"));
                }
                kinds.insert(format!("accept {}", case["flow"].as_str().unwrap()));
            }
            ("accept", Err(error)) => wrong.push(format!("{name}: refused with {error}")),
            (_, Ok(got)) => wrong.push(format!(
                "{name}: accepted ({got}), expected {}",
                case["error"]
            )),
            (_, Err(error)) => {
                let prefix = case["description_starts_with"].as_str().unwrap();
                if grant_error_kind(&error) != case["error"].as_str().unwrap()
                    || error.code().as_str() != case["code"].as_str().unwrap()
                    || !described_as(error.rule(), &error.to_string(), prefix)
                {
                    wrong.push(format!(
                        "{name}: refused as {} ({}) '{error}', expected {} ({}) '{prefix}...'",
                        grant_error_kind(&error),
                        error.code().as_str(),
                        case["error"],
                        case["code"],
                    ));
                }
                kinds.insert(grant_error_kind(&error));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Every rule of a trusted issuer keeps at least one vector.
    for kind in [
        "accept grant",
        "accept client_authentication",
        "IssuerNotFound",
        "TrustedIssuerDisabled",
        "TrustedIssuerExpired",
        "TypNotAllowed",
        "AlgorithmNotAllowed",
        "NoValidKeysOrSignatures",
        "UnknownKeyId",
        "AudienceMismatch",
        "Expired",
        "LifetimeTooLong",
        "JtiRequired",
        "ConditionNotMet",
        "SubjectNotMapped",
        "UserNotFound",
        "ImpersonationScopeMissing",
        "ConsentRequired",
        "ScopeNotAllowed",
        "ApplicationTokensNotAllowed",
        "IntegrationDisabled",
    ] {
        assert!(kinds.contains(kind), "no vector gets {kind}");
    }
}
