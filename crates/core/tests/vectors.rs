//! Runs every vector of `testdata/assertions.json` through the core: parse, verify,
//! decide. Each must get exactly its recorded verdict.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use jwtgrant_core::grants::jwt_bearer::{SubjectRecords, decide};
use jwtgrant_core::model::{Consent, Integration, IntegrationKey, User};
use jwtgrant_core::{AssertionPolicy, GrantError, PublicKey, UnverifiedAssertion};
use jwtgrant_proto::Jwk;
use serde_json::Value;

fn verdict(doc: &Value, assertion: &str, form_scope: Option<&str>) -> Result<(), GrantError> {
    let policy = AssertionPolicy {
        accepted_audiences: serde_json::from_value(doc["policy"]["accepted_audiences"].clone())
            .unwrap(),
        leeway_secs: doc["policy"]["leeway_secs"].as_i64().unwrap(),
        max_lifetime_secs: doc["policy"]["max_lifetime_secs"].as_i64().unwrap(),
    };
    let i = &doc["integration"];
    let integration = Integration {
        key: i["key"].as_str().unwrap().into(),
        name: "vectors".into(),
        active: true,
        allow_application_tokens: i["allow_application_tokens"].as_bool().unwrap(),
        require_jti: i["require_jti"].as_bool().unwrap(),
        scopes: serde_json::from_value(i["scopes"].clone()).unwrap(),
        redirect_uris: vec![],
        client_secret_hash: None,
        keys: i["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| {
                let jwk: Jwk = serde_json::from_value(k.clone()).unwrap();
                IntegrationKey {
                    kid: jwk.kid.clone().unwrap(),
                    public_key: PublicKey::from_jwk(&jwk).unwrap(),
                    active: true,
                }
            })
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

    // The registry holds the one integration of the vector; the core's `verify`
    // refuses an assertion whose `iss` is not that integration (rule 2).
    let unverified = UnverifiedAssertion::parse(assertion)?;
    let verified = unverified.verify(&integration, &policy, now)?;
    let records = match verified.subject() {
        Some(sub) if sub == user.id => SubjectRecords {
            user: Some(&user),
            consent: Some(&consent),
        },
        _ => SubjectRecords {
            user: None,
            consent: None,
        },
    };
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

#[test]
fn every_vector_gets_its_verdict() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/assertions.json"
    ))
    .unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
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
                    error.to_string().starts_with(prefix),
                    "{name}: '{error}' does not start with '{prefix}'"
                );
            }
        }
    }
}
