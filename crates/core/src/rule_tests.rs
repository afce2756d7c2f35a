//! One test per validation rule of PROTOCOL.md, with a fixed `now`. Each fails when
//! its rule is removed from the verifier or the decision.

use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::alg::JwsAlgorithm;
use crate::assertion::{AssertionPolicy, UnverifiedAssertion};
use crate::b64;
use crate::error::GrantError;
use crate::grants::jwt_bearer::{SubjectRecords, TokenSubject, decide};
use crate::jws::sign_compact;
use crate::keys::SigningKey;
use crate::model::{Consent, Integration, IntegrationKey, User};

const NOW: i64 = 1_800_000_000;
const ISS: &str = "5e9b0c6a-1a64-4b0a-9a1b-6f3f3c2f0a11";
const USER: &str = "8a4c3f1e-2b7d-4c9a-8e5f-0d1c2b3a4f5e";
const AUD: &str = "account-d.docusign.com";

fn rsa_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| {
        SigningKey::generate(JwsAlgorithm::Rs256, 2048).unwrap_or_else(|e| unreachable!("{e}"))
    })
}

fn other_rsa_key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| {
        SigningKey::generate(JwsAlgorithm::Rs256, 2048).unwrap_or_else(|e| unreachable!("{e}"))
    })
}

fn integration() -> Integration {
    Integration {
        key: ISS.into(),
        name: "Test".into(),
        active: true,
        allow_application_tokens: false,
        require_jti: false,
        scopes: vec!["signature".into(), "impersonation".into()],
        redirect_uris: vec![],
        resources: Vec::new(),
        default_scopes: Vec::new(),
        client_secret_hash: None,
        keys: vec![IntegrationKey {
            kid: "k1".into(),
            public_key: rsa_key().public_key().clone(),
            active: true,
        }],
    }
}

fn policy() -> AssertionPolicy {
    AssertionPolicy {
        accepted_audiences: vec![AUD.into(), "http://127.0.0.1:8080".into()],
        leeway_secs: 60,
        max_lifetime_secs: 3600,
    }
}

fn claims() -> Value {
    json!({"iss": ISS, "sub": USER, "aud": AUD, "iat": NOW, "exp": NOW + 3600,
           "scope": "signature impersonation", "jti": "j-1"})
}

fn with(overrides: Value) -> Value {
    let mut base = claims();
    if let (Value::Object(base), Value::Object(over)) = (&mut base, overrides) {
        for (k, v) in over {
            if v == json!("__remove__") {
                base.remove(&k);
            } else {
                base.insert(k, v);
            }
        }
    }
    base
}

fn sign(claims: &Value) -> String {
    sign_with(rsa_key(), JwsAlgorithm::Rs256, None, claims)
}

fn sign_with(key: &SigningKey, alg: JwsAlgorithm, kid: Option<&str>, claims: &Value) -> String {
    sign_compact(key, alg, Some("JWT"), kid, claims).unwrap_or_else(|e| unreachable!("{e}"))
}

fn verify(token: &str, integration: &Integration) -> Result<crate::VerifiedAssertion, GrantError> {
    UnverifiedAssertion::parse(token)?.verify(integration, &policy(), NOW)
}

fn check(claims: &Value) -> Result<crate::VerifiedAssertion, GrantError> {
    verify(&sign(claims), &integration())
}

fn user(active: bool) -> User {
    User {
        id: USER.into(),
        active,
    }
}

fn consent(scopes: &[&str]) -> Consent {
    Consent {
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
    }
}

fn grant(
    claims: &Value,
    integration: &Integration,
    user: Option<&User>,
    consent: Option<&Consent>,
) -> Result<crate::GrantDecision, GrantError> {
    let verified = verify(&sign(claims), integration)?;
    decide(
        &verified,
        None,
        integration,
        SubjectRecords { user, consent },
        60,
        |s| format!("consent?{}", s.join("+")),
    )
}

#[test]
fn happy_path_user_token() {
    let decision = grant(
        &claims(),
        &integration(),
        Some(&user(true)),
        Some(&consent(&["signature", "impersonation"])),
    );
    let decision = decision.unwrap_or_else(|e| unreachable!("{e}"));
    assert_eq!(decision.subject(), &TokenSubject::User(USER.into()));
    assert_eq!(decision.scopes(), ["signature", "impersonation"]);
    assert_eq!(
        decision.replay_guard().map(|g| g.remember_until),
        Some(NOW + 3600 + 60)
    );
}

// Rule 1: the algorithm is pinned to the key, signatures are checked, kid picks the key.
#[test]
fn rule1_signature_must_verify_with_an_active_key_of_the_issuer() {
    let token = sign(&claims());
    // Change one character well inside the signature (the last one also carries
    // padding bits, which base64 may refuse before any key is tried).
    let mut tampered = token.clone().into_bytes();
    let at = tampered.len() - 10;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap_or_default();
    assert_eq!(
        verify(&tampered, &integration()).err(),
        Some(GrantError::NoValidKeysOrSignatures)
    );

    let foreign = sign_with(other_rsa_key(), JwsAlgorithm::Rs256, None, &claims());
    assert_eq!(
        verify(&foreign, &integration()).err(),
        Some(GrantError::NoValidKeysOrSignatures)
    );

    let mut disabled = integration();
    if let Some(key) = disabled.keys.first_mut() {
        key.active = false;
    }
    assert_eq!(
        verify(&token, &disabled).err(),
        Some(GrantError::AlgorithmKeyMismatch("RS256".into()))
    );
}

#[test]
fn rule1_alg_must_match_key_type() {
    let ec = SigningKey::generate(JwsAlgorithm::Es256, 0).unwrap_or_else(|e| unreachable!("{e}"));
    let token = sign_with(&ec, JwsAlgorithm::Es256, None, &claims());
    assert_eq!(
        verify(&token, &integration()).err(),
        Some(GrantError::AlgorithmKeyMismatch("ES256".into()))
    );
    // PS256 with the registered RSA key is fine: the key type allows it.
    let ps = sign_with(rsa_key(), JwsAlgorithm::Ps256, None, &claims());
    assert!(verify(&ps, &integration()).is_ok());
}

#[test]
fn rule1_hmac_with_the_public_key_as_secret_is_refused() {
    // The classic confusion attack: HS256 keyed with the RSA public key's PEM.
    let header = b64::encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = b64::encode(serde_json::to_vec(&claims()).unwrap_or_default());
    let input = format!("{header}.{payload}");
    let secret = rsa_key().public_key().to_pem();
    let mac = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes()),
        input.as_bytes(),
    );
    let token = format!("{input}.{}", b64::encode(mac.as_ref()));
    assert_eq!(
        verify(&token, &integration()).err(),
        Some(GrantError::AlgorithmHmac("HS256".into()))
    );
}

#[test]
fn rule1_kid_picks_the_key() {
    let token = sign_with(rsa_key(), JwsAlgorithm::Rs256, Some("k1"), &claims());
    assert!(verify(&token, &integration()).is_ok());
    let token = sign_with(rsa_key(), JwsAlgorithm::Rs256, Some("nope"), &claims());
    assert_eq!(
        verify(&token, &integration()).err(),
        Some(GrantError::UnknownKeyId("nope".into()))
    );
}

#[test]
fn rule1_padded_segments_verify_over_bytes_as_received() {
    // A client that pads: sign over the padded header and payload.
    let header = format!("{}=", b64::encode(br#"{"alg":"RS256"}"#));
    let payload_raw = serde_json::to_vec(&claims()).unwrap_or_default();
    let mut payload = b64::encode(&payload_raw);
    while !payload.len().is_multiple_of(4) {
        payload.push('=');
    }
    let input = format!("{header}.{payload}");
    let sig = rsa_key()
        .sign(JwsAlgorithm::Rs256, input.as_bytes())
        .unwrap_or_default();
    let token = format!("{input}.{}", b64::encode(&sig));
    assert!(verify(&token, &integration()).is_ok());
    // The same signature over the unpadded form does not verify the padded one.
    let unpadded_sig = rsa_key()
        .sign(JwsAlgorithm::Rs256, input.replace('=', "").as_bytes())
        .unwrap_or_default();
    let token = format!("{input}.{}", b64::encode(&unpadded_sig));
    assert_eq!(
        verify(&token, &integration()).err(),
        Some(GrantError::NoValidKeysOrSignatures)
    );
}

// Rule 2: iss names an active integration.
#[test]
fn rule2_issuer_must_be_the_active_integration() {
    assert_eq!(
        check(&with(json!({"iss": "__remove__"}))).err(),
        Some(GrantError::MissingClaim("iss"))
    );
    let mut other = integration();
    other.key = "another".into();
    assert_eq!(
        verify(&sign(&claims()), &other).err(),
        Some(GrantError::IssuerNotFound)
    );
    let mut disabled = integration();
    disabled.active = false;
    assert_eq!(
        verify(&sign(&claims()), &disabled).err(),
        Some(GrantError::IntegrationDisabled)
    );
    assert_eq!(
        check(&with(json!({"iss": 5}))).err().map(|e| e.code()),
        Some(jwtgrant_proto::ErrorCode::InvalidGrant)
    );
}

// Rule 3: aud is a string or array containing an accepted audience.
#[test]
fn rule3_audience() {
    assert!(check(&with(json!({"aud": ["x", AUD]}))).is_ok());
    assert!(check(&with(json!({"aud": "http://127.0.0.1:8080"}))).is_ok());
    assert_eq!(
        check(&with(json!({"aud": "account.docusign.com"}))).err(),
        Some(GrantError::AudienceMismatch)
    );
    assert_eq!(
        check(&with(json!({"aud": ["x"]}))).err(),
        Some(GrantError::AudienceMismatch)
    );
    assert_eq!(
        check(&with(json!({"aud": "__remove__"}))).err(),
        Some(GrantError::MissingClaim("aud"))
    );
    assert!(matches!(
        check(&with(json!({"aud": 7}))),
        Err(GrantError::WrongType { name: "aud", .. })
    ));
    assert!(matches!(
        check(&with(json!({"aud": [7]}))),
        Err(GrantError::WrongType { name: "aud", .. })
    ));
}

// Rule 4: exp present and not past, nbf and iat not in the future, bounded lifetime.
#[test]
fn rule4_times() {
    assert_eq!(
        check(&with(json!({"exp": "__remove__"}))).err(),
        Some(GrantError::MissingClaim("exp"))
    );
    assert!(matches!(
        check(&with(json!({"exp": "1800003600"}))),
        Err(GrantError::WrongType { name: "exp", .. })
    ));
    assert!(
        check(&with(json!({"iat": NOW - 100, "exp": NOW - 59}))).is_ok(),
        "within leeway"
    );
    assert_eq!(
        check(&with(json!({"iat": NOW - 100, "exp": NOW - 60}))).err(),
        Some(GrantError::Expired)
    );
    assert!(check(&with(json!({"nbf": NOW + 60}))).is_ok());
    assert_eq!(
        check(&with(json!({"nbf": NOW + 61}))).err(),
        Some(GrantError::NotYetValid)
    );
    assert_eq!(
        check(&with(json!({"iat": NOW + 61, "exp": NOW + 600}))).err(),
        Some(GrantError::IssuedInFuture)
    );
    assert!(check(&with(json!({"exp": NOW + 3660}))).is_ok());
    assert_eq!(
        check(&with(json!({"exp": NOW + 3661}))).err(),
        Some(GrantError::LifetimeTooLong { max_secs: 3600 })
    );
    assert_eq!(
        check(&with(json!({"iat": "__remove__", "exp": NOW + 7200}))).err(),
        Some(GrantError::LifetimeTooLong { max_secs: 3600 })
    );
    assert!(
        check(&with(json!({"exp": (NOW + 100) as f64 + 0.5}))).is_ok(),
        "fractional NumericDate"
    );
    assert_eq!(
        check(&with(json!({"exp": null}))).err(),
        Some(GrantError::MissingClaim("exp"))
    );
    assert!(
        check(&with(json!({"nbf": null, "iat": null}))).is_ok(),
        "null optional dates are absent"
    );
}

// Rule 5: jti required when flagged; its guard carries exp plus leeway.
#[test]
fn rule5_jti() {
    let mut strict = integration();
    strict.require_jti = true;
    let no_jti = with(json!({"jti": "__remove__"}));
    assert_eq!(
        verify(&sign(&no_jti), &strict).err(),
        Some(GrantError::JtiRequired)
    );
    assert!(verify(&sign(&no_jti), &integration()).is_ok());
    assert!(matches!(
        check(&with(json!({"jti": 12}))),
        Err(GrantError::WrongType { name: "jti", .. })
    ));
    let decision = grant(
        &claims(),
        &integration(),
        Some(&user(true)),
        Some(&consent(&["signature", "impersonation"])),
    );
    let guard = decision.ok().and_then(|d| d.replay_guard().cloned());
    assert_eq!(
        guard.map(|g| (g.issuer, g.jti)),
        Some((ISS.to_string(), "j-1".to_string()))
    );
}

// Rule 6: user tokens need an active user, impersonation and consent; application
// tokens need the flag.
#[test]
fn rule6_subject() {
    let both = consent(&["signature", "impersonation"]);
    assert_eq!(
        grant(&claims(), &integration(), None, Some(&both)).err(),
        Some(GrantError::UserNotFound)
    );
    assert_eq!(
        grant(&claims(), &integration(), Some(&user(false)), Some(&both)).err(),
        Some(GrantError::UserDisabled)
    );
    let no_imp = with(json!({"scope": "signature"}));
    let err = grant(&no_imp, &integration(), Some(&user(true)), Some(&both)).err();
    assert_eq!(
        err,
        Some(GrantError::ImpersonationScopeMissing {
            consent_url: "consent?signature+impersonation".into()
        })
    );
    // Both consent_required descriptions name the URL the way clients read it back.
    let description = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        description.ends_with(&format!(
            "{}consent?signature+impersonation",
            jwtgrant_proto::CONSENT_URL_MARKER
        )),
        "{description}"
    );
    let partial = consent(&["impersonation"]);
    let err = grant(&claims(), &integration(), Some(&user(true)), Some(&partial)).err();
    assert_eq!(
        err,
        Some(GrantError::ConsentRequired {
            scope: "signature".into(),
            consent_url: "consent?signature+impersonation".into()
        })
    );
    assert!(matches!(
        grant(&claims(), &integration(), Some(&user(true)), None),
        Err(GrantError::ConsentRequired { .. })
    ));

    let app = with(json!({"sub": null}));
    assert_eq!(
        grant(&app, &integration(), None, None).err(),
        Some(GrantError::ApplicationTokensNotAllowed)
    );
    let mut allowed = integration();
    allowed.allow_application_tokens = true;
    let decision = grant(&app, &allowed, None, None).unwrap_or_else(|e| unreachable!("{e}"));
    assert_eq!(decision.subject(), &TokenSubject::Application);
    assert_eq!(decision.subject_claim(), ISS);
    assert!(matches!(
        check(&with(json!({"sub": 3}))),
        Err(GrantError::WrongType { name: "sub", .. })
    ));
}

// Rule 7: scopes must be allowed; the form may narrow the claim.
#[test]
fn rule7_scopes() {
    let both = consent(&["signature", "impersonation", "extended"]);
    let extra = with(json!({"scope": "signature impersonation extended"}));
    assert_eq!(
        grant(&extra, &integration(), Some(&user(true)), Some(&both)).err(),
        Some(GrantError::ScopeNotAllowed("extended".into()))
    );

    let verified = check(&claims()).unwrap_or_else(|e| unreachable!("{e}"));
    let records = SubjectRecords {
        user: Some(&user(true)),
        consent: Some(&both),
    };
    let narrowed = decide(
        &verified,
        Some("impersonation"),
        &integration(),
        records,
        60,
        |_| String::new(),
    );
    assert_eq!(
        narrowed.map(|d| d.scopes().to_vec()).ok(),
        Some(vec!["impersonation".to_string()])
    );
    let widened = decide(
        &verified,
        Some("impersonation extended"),
        &integration(),
        records,
        60,
        |_| String::new(),
    );
    assert_eq!(
        widened.err(),
        Some(GrantError::ScopeBeyondAssertion("extended".into()))
    );

    let form_only =
        check(&with(json!({"scope": "__remove__"}))).unwrap_or_else(|e| unreachable!("{e}"));
    let decision = decide(
        &form_only,
        Some("signature impersonation"),
        &integration(),
        records,
        60,
        |_| String::new(),
    );
    assert_eq!(decision.map(|d| d.scopes().len()).ok(), Some(2));
    assert!(matches!(
        check(&with(json!({"scope": ["signature"]}))),
        Err(GrantError::WrongType { name: "scope", .. })
    ));
}

#[test]
fn a_client_that_presents_the_assertion_must_be_its_integration() {
    use crate::client_auth::AuthenticatedClient;
    use crate::grants::jwt_bearer::check_presenting_client;
    let integration = integration();
    let client = |id: &str, confidential| AuthenticatedClient {
        client_id: id.to_owned(),
        confidential,
    };
    assert_eq!(check_presenting_client(None, &integration), Ok(()));
    assert_eq!(
        check_presenting_client(Some(&client(&integration.key, true)), &integration),
        Ok(())
    );
    assert_eq!(
        check_presenting_client(Some(&client(&integration.key, false)), &integration),
        Ok(())
    );
    for confidential in [true, false] {
        assert_eq!(
            check_presenting_client(
                Some(&client("another-integration", confidential)),
                &integration
            ),
            Err(GrantError::PresentingClientMismatch)
        );
    }
}

// JWT client authentication (RFC 7523 section 2.2): the rules a client assertion
// adds to the assertion rules above, which it shares.
mod client_assertion {
    use super::*;
    use crate::client_auth::{
        ClientAuthError, ClientCredentials, authenticate_assertion, read_client_credentials,
    };
    use jwtgrant_proto::CLIENT_ASSERTION_TYPE;

    fn client_claims() -> Value {
        json!({"iss": ISS, "sub": ISS, "aud": AUD, "iat": NOW, "exp": NOW + 300, "jti": "c-1"})
    }

    fn signed(claims: &Value, typ: Option<&str>) -> String {
        sign_compact(rsa_key(), JwsAlgorithm::Rs256, typ, Some("k1"), claims)
            .unwrap_or_else(|e| unreachable!("{e}"))
    }

    fn check(assertion: &str) -> Result<String, ClientAuthError> {
        authenticate_assertion(assertion, Some(&integration()), &policy(), NOW).map(
            |(client, guard)| {
                assert!(client.confidential);
                assert_eq!(guard.issuer, format!("client-assertion:{ISS}"));
                client.client_id
            },
        )
    }

    #[test]
    fn a_well_formed_client_assertion_authenticates_its_issuer() {
        assert_eq!(
            check(&signed(&client_claims(), None)).ok().as_deref(),
            Some(ISS)
        );
        for typ in ["client-authentication+jwt", "JWT", "jwt"] {
            assert!(check(&signed(&client_claims(), Some(typ))).is_ok(), "{typ}");
        }
    }

    #[test]
    fn sub_must_equal_iss() {
        let mut claims = client_claims();
        claims["sub"] = json!(USER);
        assert_eq!(
            check(&signed(&claims, None)),
            Err(ClientAuthError::ClientAssertionSubject)
        );
    }

    #[test]
    fn jti_is_required_even_when_the_integration_does_not_require_it() {
        let mut claims = client_claims();
        if let Value::Object(map) = &mut claims {
            map.remove("jti");
        }
        assert_eq!(
            check(&signed(&claims, None)),
            Err(ClientAuthError::ClientAssertionJtiRequired)
        );
    }

    #[test]
    fn typ_when_present_names_a_client_assertion() {
        assert_eq!(
            check(&signed(&client_claims(), Some("at+jwt"))),
            Err(ClientAuthError::ClientAssertionTyp("at+jwt".into()))
        );
    }

    #[test]
    fn the_shared_rules_apply_signature_audience_and_lifetime() {
        let forged = sign_compact(
            other_rsa_key(),
            JwsAlgorithm::Rs256,
            None,
            Some("k1"),
            &client_claims(),
        )
        .unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            check(&forged),
            Err(ClientAuthError::ClientAssertion(
                GrantError::NoValidKeysOrSignatures
            ))
        );
        let mut claims = client_claims();
        claims["aud"] = json!("https://elsewhere.example");
        assert_eq!(
            check(&signed(&claims, None)),
            Err(ClientAuthError::ClientAssertion(
                GrantError::AudienceMismatch
            ))
        );
        let mut claims = client_claims();
        claims["exp"] = json!(NOW + 7200);
        assert!(matches!(
            check(&signed(&claims, None)),
            Err(ClientAuthError::ClientAssertion(
                GrantError::LifetimeTooLong { .. }
            ))
        ));
    }

    #[test]
    fn another_or_a_disabled_integration_does_not_authenticate() {
        let assertion = signed(&client_claims(), None);
        let mut disabled = integration();
        disabled.active = false;
        assert_eq!(
            authenticate_assertion(&assertion, Some(&disabled), &policy(), NOW).err(),
            Some(ClientAuthError::ClientAssertionUnknownClient)
        );
        assert_eq!(
            authenticate_assertion(&assertion, None, &policy(), NOW).err(),
            Some(ClientAuthError::ClientAssertionUnknownClient)
        );
    }

    #[test]
    fn reading_takes_exactly_one_method() {
        let assertion = signed(&client_claims(), None);
        let read = |id, secret, kind, value| read_client_credentials(None, id, secret, kind, value);
        assert_eq!(
            read(
                None,
                None,
                Some(CLIENT_ASSERTION_TYPE),
                Some(assertion.as_str())
            ),
            Ok(ClientCredentials::Assertion {
                client_id: ISS.into(),
                assertion: assertion.clone()
            })
        );
        assert_eq!(
            read(
                Some(ISS),
                Some("s"),
                Some(CLIENT_ASSERTION_TYPE),
                Some(assertion.as_str())
            ),
            Err(ClientAuthError::SeveralMethods)
        );
        // A secret without its client_id is a second method too, not "no credentials".
        assert_eq!(
            read(
                None,
                Some("s"),
                Some(CLIENT_ASSERTION_TYPE),
                Some(assertion.as_str())
            ),
            Err(ClientAuthError::SeveralMethods)
        );
        assert_eq!(
            read(
                Some("other"),
                None,
                Some(CLIENT_ASSERTION_TYPE),
                Some(assertion.as_str())
            ),
            Err(ClientAuthError::ClientAssertionClientId)
        );
        assert_eq!(
            read(None, None, Some("urn:other"), Some(assertion.as_str())),
            Err(ClientAuthError::ClientAssertionType)
        );
        assert_eq!(
            read(None, None, Some(CLIENT_ASSERTION_TYPE), None),
            Err(ClientAuthError::ClientAssertionType)
        );
    }

    #[test]
    fn a_trusted_issuers_token_is_federated_only_for_a_url_iss_and_another_client_id() {
        let issuer = "https://kubernetes.default.svc.cluster.local";
        let mut claims = client_claims();
        claims["iss"] = json!(issuer);
        claims["sub"] = json!("system:serviceaccount:ci:deployer");
        let token = signed(&claims, None);
        let read = |client_id| {
            read_client_credentials(
                None,
                client_id,
                None,
                Some(CLIENT_ASSERTION_TYPE),
                Some(token.as_str()),
            )
        };
        assert_eq!(
            read(Some(ISS)),
            Ok(ClientCredentials::FederatedAssertion {
                client_id: ISS.into(),
                issuer: issuer.into(),
                assertion: token.clone()
            })
        );
        // The URL named as the client too, or no client_id: a client assertion of
        // the client the URL names (none: integration keys are never URLs).
        for client_id in [Some(issuer), None] {
            assert_eq!(
                read(client_id),
                Ok(ClientCredentials::Assertion {
                    client_id: issuer.into(),
                    assertion: token.clone()
                }),
                "{client_id:?}"
            );
        }
        // An iss that is not a URL naming another client is a mismatch, not a
        // trusted issuer.
        let own = signed(&client_claims(), None);
        assert_eq!(
            read_client_credentials(
                None,
                Some("another-client"),
                None,
                Some(CLIENT_ASSERTION_TYPE),
                Some(own.as_str())
            ),
            Err(ClientAuthError::ClientAssertionClientId)
        );
    }
}
