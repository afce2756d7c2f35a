//! A trusted issuer's JWKS document (RFC 7517) read into the keys that issuer may
//! sign with under its policy, and the keys left out, each with why.
//!
//! A key is used only when everything about it fits: a public asymmetric key
//! ([`PublicKey::from_jwk`] refuses RSA under 2048 bits and unknown curves), meant
//! for signatures (`use` absent or `sig`, `key_ops` absent or with `verify`), and
//! at least one algorithm that both its type and the issuer's policy allow (narrowed
//! to its own `alg` when it names one). Anything else is skipped, never an error of
//! the whole document, so one odd key does not cut an issuer off; but a document
//! with no usable key at all is an error, so a fetch that yields one is a failed
//! fetch and the last good keys stay in use (see [`crate::jwks_cache`]).

use jwtgrant_proto::Jwk;
use serde_json::{Map, Value};

use crate::alg::JwsAlgorithm;
use crate::keys::{KeyError, PublicKey};
use crate::model::IntegrationKey;

/// The most keys taken from one document. Real issuers publish a handful; an
/// assertion without `kid` is tried against every key, so the count bounds the work
/// one assertion can cause.
pub const MAX_KEYS: usize = 64;

/// JWK members that hold private or secret key material (RFC 7518 section 6).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// The usable keys of an issuer, as the verifier takes them, and what was skipped.
#[derive(Debug, Clone)]
pub struct IssuerKeySet {
    /// The usable keys, in the document's order: `kid` the JWK's own or its RFC 7638
    /// thumbprint, all active.
    pub keys: Vec<IntegrationKey>,
    /// For each of [`IssuerKeySet::keys`], at the same index, the algorithms it may
    /// verify: its type's, within the policy, narrowed to its own `alg`.
    algorithms: Vec<Vec<JwsAlgorithm>>,
    /// The keys left out, for logs and `issuer show`.
    pub skipped: Vec<SkippedKey>,
}

/// A key of the document that is not used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedKey {
    /// Its `kid`, when it has one.
    pub kid: Option<String>,
    /// Why it is not used.
    pub reason: SkipReason,
}

/// Why a key of a JWKS is not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SkipReason {
    /// The entry is not a JSON object, or a member has the wrong type.
    #[error("not a well-formed JWK")]
    Malformed,
    /// `kty: oct`: a shared secret, never a trusted issuer's key (RFC 8725 section 3.2).
    #[error("symmetric key (kty oct)")]
    Symmetric,
    /// It carries private members (`d`, `p`, ..., `k`): a leaked private key is
    /// not a key to trust.
    #[error("holds private key members")]
    PrivateMembers,
    /// `use` is not `sig`.
    #[error("use '{0}' is not sig")]
    NotForSignatures(String),
    /// `key_ops` is given without `verify`.
    #[error("key_ops without verify")]
    NoVerifyOp,
    /// The key itself is refused: an RSA key under 2048 bits, an unsupported type or
    /// curve, malformed numbers.
    #[error("{0}")]
    Key(KeyError),
    /// Its `alg` is not one the issuer's policy allows (or not one we verify).
    #[error("alg '{0}' is not allowed")]
    AlgorithmNotAllowed(String),
    /// Its `alg` cannot be used with its key type.
    #[error("alg '{0}' does not fit the key type")]
    AlgorithmKeyMismatch(String),
    /// No algorithm the policy allows fits the key type.
    #[error("no allowed algorithm fits the key type")]
    NoAllowedAlgorithm,
    /// An earlier usable key of the same type has the same `kid`.
    #[error("duplicate kid")]
    DuplicateKid,
    /// [`MAX_KEYS`] usable keys were taken already.
    #[error("more than {MAX_KEYS} keys")]
    TooManyKeys,
}

/// Why a JWKS document gives no keys at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwksError {
    /// The body is not JSON.
    #[error("JWKS is not JSON")]
    NotJson,
    /// The JSON is not an object with a `keys` array.
    #[error("JWKS has no keys array")]
    NoKeysArray,
    /// `keys` is empty.
    #[error("JWKS has no keys")]
    Empty,
    /// Every key was skipped. The text gives the count only, never what the
    /// document says: each key's reason is in the variant, for logs.
    #[error("JWKS has no usable key ({} skipped)", .0.len())]
    NoUsableKeys(Vec<SkippedKey>),
}

/// Reads a JWKS document into the keys an issuer whose policy allows
/// `allowed_algs` may use; empty `allowed_algs` allows whatever each key's type
/// allows. An empty usable set is an error ([`JwksError::NoUsableKeys`]), so that a
/// document swapped for one of unusable keys never replaces good ones.
pub fn parse_jwks(body: &[u8], allowed_algs: &[JwsAlgorithm]) -> Result<IssuerKeySet, JwksError> {
    let document: Value = serde_json::from_slice(body).map_err(|_| JwksError::NotJson)?;
    let entries = document
        .get("keys")
        .and_then(Value::as_array)
        .ok_or(JwksError::NoKeysArray)?;
    if entries.is_empty() {
        return Err(JwksError::Empty);
    }
    let mut set = IssuerKeySet {
        keys: Vec::new(),
        algorithms: Vec::new(),
        skipped: Vec::new(),
    };
    for entry in entries {
        let kid = entry.get("kid").and_then(Value::as_str).map(str::to_owned);
        let outcome = if set.keys.len() >= MAX_KEYS {
            Err(SkipReason::TooManyKeys)
        } else {
            usable_key(entry, allowed_algs)
        };
        let refused = outcome.and_then(|(key, algorithms)| {
            let duplicate = set.keys.iter().any(|known| {
                known.kid == key.kid && known.public_key.key_type() == key.public_key.key_type()
            });
            if duplicate {
                Err(SkipReason::DuplicateKid)
            } else {
                set.keys.push(key);
                set.algorithms.push(algorithms);
                Ok(())
            }
        });
        if let Err(reason) = refused {
            set.skipped.push(SkippedKey { kid, reason });
        }
    }
    if set.keys.is_empty() {
        return Err(JwksError::NoUsableKeys(set.skipped));
    }
    Ok(set)
}

/// One entry of `keys` as a usable key and its algorithms, or why not.
fn usable_key(
    entry: &Value,
    allowed_algs: &[JwsAlgorithm],
) -> Result<(IntegrationKey, Vec<JwsAlgorithm>), SkipReason> {
    let object = entry.as_object().ok_or(SkipReason::Malformed)?;
    let kty = text_member(object, "kty")?.ok_or(SkipReason::Malformed)?;
    if kty == "oct" {
        return Err(SkipReason::Symmetric);
    }
    if PRIVATE_MEMBERS
        .iter()
        .any(|member| object.contains_key(*member))
    {
        return Err(SkipReason::PrivateMembers);
    }
    if let Some(use_) = text_member(object, "use")?
        && use_ != "sig"
    {
        return Err(SkipReason::NotForSignatures(truncate(use_)));
    }
    if let Some(ops) = object.get("key_ops") {
        let ops = ops.as_array().ok_or(SkipReason::Malformed)?;
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return Err(SkipReason::NoVerifyOp);
        }
    }
    let declared_alg = text_member(object, "alg")?;
    let jwk: Jwk = serde_json::from_value(entry.clone()).map_err(|_| SkipReason::Malformed)?;
    let public_key = PublicKey::from_jwk(&jwk).map_err(SkipReason::Key)?;
    let key_type = public_key.key_type();

    let allowed = |alg: &JwsAlgorithm| allowed_algs.is_empty() || allowed_algs.contains(alg);
    let algorithms: Vec<JwsAlgorithm> = match declared_alg {
        Some(name) => {
            let alg = JwsAlgorithm::from_name(name)
                .ok_or_else(|| SkipReason::AlgorithmNotAllowed(truncate(name)))?;
            if !alg.key_type_allowed(key_type) {
                return Err(SkipReason::AlgorithmKeyMismatch(truncate(name)));
            }
            if !allowed(&alg) {
                return Err(SkipReason::AlgorithmNotAllowed(truncate(name)));
            }
            vec![alg]
        }
        None => key_type.algorithms().filter(allowed).collect(),
    };
    if algorithms.is_empty() {
        return Err(SkipReason::NoAllowedAlgorithm);
    }
    let kid = match jwk.kid {
        Some(kid) if !kid.is_empty() => kid,
        _ => public_key.thumbprint().to_owned(),
    };
    Ok((
        IntegrationKey {
            kid,
            public_key,
            active: true,
        },
        algorithms,
    ))
}

/// A member that, when present, must be a string.
fn text_member<'a>(
    object: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, SkipReason> {
    match object.get(name) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(SkipReason::Malformed),
    }
}

/// A value from the document, cut short for a message.
fn truncate(text: &str) -> String {
    text.chars().take(32).collect()
}

impl IssuerKeySet {
    /// A set of keys known in advance (tests, a key added by hand), each allowed
    /// every algorithm of its type.
    pub fn from_keys(keys: Vec<IntegrationKey>) -> Self {
        let algorithms = keys
            .iter()
            .map(|key| key.public_key.key_type().algorithms().collect())
            .collect();
        IssuerKeySet {
            keys,
            algorithms,
            skipped: Vec::new(),
        }
    }

    /// Whether a usable key has this `kid`.
    pub fn contains_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|key| key.kid == kid)
    }

    /// The algorithms the key at `index` of [`IssuerKeySet::keys`] may verify.
    pub fn algorithms(&self, index: usize) -> &[JwsAlgorithm] {
        self.algorithms.get(index).map_or(&[], Vec::as_slice)
    }

    /// Whether the key named `kid` whose type fits `alg` may verify `alg`: the
    /// check, after the signature, that a key published for RS256 alone does not
    /// verify PS256.
    pub fn permits(&self, kid: &str, alg: JwsAlgorithm) -> bool {
        self.keys
            .iter()
            .zip(&self.algorithms)
            .any(|(key, algorithms)| key.kid == kid && algorithms.contains(&alg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SigningKey;
    use serde_json::json;

    fn generate(alg: JwsAlgorithm) -> SigningKey {
        SigningKey::generate(alg, 2048).unwrap()
    }

    /// The public JWK of a fresh key, as a JSON object to be edited.
    fn jwk(alg: JwsAlgorithm, kid: Option<&str>) -> Value {
        serde_json::to_value(generate(alg).public_key().to_jwk(kid, Some(alg))).unwrap()
    }

    fn document(keys: &[Value]) -> Vec<u8> {
        serde_json::to_vec(&json!({ "keys": keys })).unwrap()
    }

    /// The one good key, and every other entry skipped for `reason`.
    fn skipped_beside_a_good_key(bad: Value, allowed: &[JwsAlgorithm]) -> SkipReason {
        let good = jwk(JwsAlgorithm::Es256, Some("good"));
        let set = parse_jwks(&document(&[bad, good]), allowed).unwrap();
        assert_eq!(set.keys.len(), 1);
        assert_eq!(set.keys[0].kid, "good");
        assert_eq!(set.skipped.len(), 1);
        set.skipped[0].reason.clone()
    }

    #[test]
    fn keys_of_every_type_are_read_with_their_kid_or_thumbprint() {
        let rsa = generate(JwsAlgorithm::Rs256);
        let ec = generate(JwsAlgorithm::Es384);
        let ed = generate(JwsAlgorithm::EdDsa);
        let mut no_kid = serde_json::to_value(ed.public_key().to_jwk(None, None)).unwrap();
        no_kid.as_object_mut().unwrap().remove("use");
        let body = document(&[
            serde_json::to_value(rsa.public_key().to_jwk(Some("r1"), None)).unwrap(),
            serde_json::to_value(
                ec.public_key()
                    .to_jwk(Some("e1"), Some(JwsAlgorithm::Es384)),
            )
            .unwrap(),
            no_kid,
        ]);
        let set = parse_jwks(&body, &[]).unwrap();
        let kids: Vec<_> = set.keys.iter().map(|key| key.kid.as_str()).collect();
        assert_eq!(kids, ["r1", "e1", ed.public_key().thumbprint()]);
        assert!(set.keys.iter().all(|key| key.active));
        assert_eq!(&set.keys[0].public_key, rsa.public_key());
        assert!(set.skipped.is_empty());
        // Without `alg` an RSA key may verify every RSA algorithm; with one, that one.
        assert_eq!(set.algorithms(0).len(), 6);
        assert_eq!(set.algorithms(1), [JwsAlgorithm::Es384]);
        assert!(set.permits("r1", JwsAlgorithm::Ps256));
        assert!(!set.permits("e1", JwsAlgorithm::Es256));
        assert!(set.contains_kid("e1") && !set.contains_kid("nope"));
        // The keys verify what their private halves sign.
        let signature = ec.sign(JwsAlgorithm::Es384, b"m").unwrap();
        assert!(
            set.keys[1]
                .public_key
                .verify(JwsAlgorithm::Es384, b"m", &signature)
        );
    }

    #[test]
    fn symmetric_keys_are_never_used() {
        let oct = json!({ "kty": "oct", "kid": "hmac", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ", "alg": "HS256" });
        assert_eq!(skipped_beside_a_good_key(oct, &[]), SkipReason::Symmetric);
    }

    #[test]
    fn rsa_under_2048_bits_is_never_used() {
        // The public half of a real 1024-bit key (testdata/keys/rsa-1024-pkcs1.pem).
        let weak: Value =
            serde_json::from_str(include_str!("../testdata/keys/rsa-1024-public.jwk.json"))
                .unwrap();
        assert_eq!(
            skipped_beside_a_good_key(weak, &[]),
            SkipReason::Key(KeyError::RsaTooSmall(1024))
        );
    }

    #[test]
    fn an_alg_the_policy_does_not_allow_is_never_used() {
        let policy = [JwsAlgorithm::Es256, JwsAlgorithm::Ps256];
        let rs256 = jwk(JwsAlgorithm::Rs256, Some("rs"));
        assert_eq!(
            skipped_beside_a_good_key(rs256, &policy),
            SkipReason::AlgorithmNotAllowed("RS256".into())
        );
        // An RSA key without `alg` is kept for the policy's RSA algorithms only.
        let mut any_rsa = jwk(JwsAlgorithm::Rs256, Some("rsa"));
        any_rsa.as_object_mut().unwrap().remove("alg");
        let good = jwk(JwsAlgorithm::Es256, Some("good"));
        let set = parse_jwks(&document(&[any_rsa.clone(), good]), &policy).unwrap();
        assert_eq!(set.algorithms(0), [JwsAlgorithm::Ps256]);
        assert!(!set.permits("rsa", JwsAlgorithm::Rs256));
        // ... and skipped when the policy allows no RSA algorithm at all.
        assert_eq!(
            skipped_beside_a_good_key(any_rsa, &[JwsAlgorithm::Es256]),
            SkipReason::NoAllowedAlgorithm
        );
        // `none`, `HS256` and encryption algorithms are not ours to verify.
        for name in ["none", "HS256", "RSA-OAEP"] {
            let mut odd = jwk(JwsAlgorithm::Rs256, Some("odd"));
            odd["alg"] = json!(name);
            assert_eq!(
                skipped_beside_a_good_key(odd, &[]),
                SkipReason::AlgorithmNotAllowed(name.into())
            );
        }
    }

    #[test]
    fn an_alg_that_does_not_fit_the_key_is_never_used() {
        let mut mismatched = jwk(JwsAlgorithm::Rs256, Some("rs"));
        mismatched["alg"] = json!("ES256");
        assert_eq!(
            skipped_beside_a_good_key(mismatched, &[]),
            SkipReason::AlgorithmKeyMismatch("ES256".into())
        );
    }

    #[test]
    fn a_key_not_for_signatures_is_never_used() {
        let mut enc = jwk(JwsAlgorithm::Rs256, Some("enc"));
        enc["use"] = json!("enc");
        assert_eq!(
            skipped_beside_a_good_key(enc, &[]),
            SkipReason::NotForSignatures("enc".into())
        );
        let mut ops = jwk(JwsAlgorithm::Es256, Some("ops"));
        ops["key_ops"] = json!(["encrypt"]);
        assert_eq!(skipped_beside_a_good_key(ops, &[]), SkipReason::NoVerifyOp);
        let mut verify = jwk(JwsAlgorithm::Es256, Some("ops"));
        verify["key_ops"] = json!(["verify"]);
        let set = parse_jwks(&document(&[verify]), &[]).unwrap();
        assert_eq!(set.keys.len(), 1);
    }

    #[test]
    fn a_key_with_private_members_is_never_used() {
        for alg in [
            JwsAlgorithm::Rs256,
            JwsAlgorithm::Es256,
            JwsAlgorithm::EdDsa,
        ] {
            let key = generate(alg);
            let private = key.to_private_jwk(Some("leaked"), Some(alg)).unwrap();
            let leaked = serde_json::to_value(&private).unwrap();
            assert!(leaked.get("d").is_some());
            assert_eq!(
                skipped_beside_a_good_key(leaked, &[]),
                SkipReason::PrivateMembers,
                "{alg}"
            );
        }
        // Any private member alone is enough.
        let mut p_only = jwk(JwsAlgorithm::Rs256, Some("p"));
        p_only["p"] = json!("AQAB");
        assert_eq!(
            skipped_beside_a_good_key(p_only, &[]),
            SkipReason::PrivateMembers
        );
    }

    #[test]
    fn unsupported_curves_and_types_are_never_used() {
        let p256 = jwk(JwsAlgorithm::Es256, Some("curve"));
        let mut secp256k1 = p256.clone();
        secp256k1["crv"] = json!("secp256k1");
        secp256k1.as_object_mut().unwrap().remove("alg");
        assert!(matches!(
            skipped_beside_a_good_key(secp256k1, &[]),
            SkipReason::Key(KeyError::Unsupported(_))
        ));
        let x448 = json!({ "kty": "OKP", "crv": "X448", "x": "AAAA", "kid": "x448" });
        assert!(matches!(
            skipped_beside_a_good_key(x448, &[]),
            SkipReason::Key(KeyError::Unsupported(_))
        ));
        let mut bad_point = p256;
        bad_point["x"] = json!("AAAA");
        assert!(matches!(
            skipped_beside_a_good_key(bad_point, &[]),
            SkipReason::Key(_)
        ));
    }

    #[test]
    fn malformed_entries_are_skipped_not_fatal() {
        for bad in [
            json!("a string"),
            json!({ "kid": "no-kty" }),
            json!({ "kty": 7 }),
            json!({ "kty": "RSA", "n": 12, "e": "AQAB" }),
        ] {
            assert_eq!(
                skipped_beside_a_good_key(bad.clone(), &[]),
                SkipReason::Malformed,
                "{bad}"
            );
        }
    }

    #[test]
    fn duplicate_kids_of_one_type_keep_the_first() {
        let first = jwk(JwsAlgorithm::Es256, Some("same"));
        let second = jwk(JwsAlgorithm::Es256, Some("same"));
        let rsa = jwk(JwsAlgorithm::Rs256, Some("same"));
        let set = parse_jwks(&document(&[first.clone(), second, rsa]), &[]).unwrap();
        assert_eq!(
            set.keys.len(),
            2,
            "an RSA key may share the kid of an EC key"
        );
        assert_eq!(set.skipped[0].reason, SkipReason::DuplicateKid);
        assert_eq!(
            serde_json::to_value(
                set.keys[0]
                    .public_key
                    .to_jwk(Some("same"), Some(JwsAlgorithm::Es256))
            )
            .unwrap(),
            first
        );
    }

    #[test]
    fn at_most_max_keys_are_taken() {
        let key = jwk(JwsAlgorithm::EdDsa, None);
        let entries: Vec<Value> = (0..MAX_KEYS + 2)
            .map(|i| {
                let mut entry = key.clone();
                entry["kid"] = json!(format!("k{i}"));
                entry
            })
            .collect();
        let set = parse_jwks(&document(&entries), &[]).unwrap();
        assert_eq!(set.keys.len(), MAX_KEYS);
        assert_eq!(set.skipped.len(), 2);
        assert_eq!(set.skipped[0].reason, SkipReason::TooManyKeys);
    }

    #[test]
    fn documents_without_usable_keys_are_errors() {
        assert_eq!(parse_jwks(b"<html>", &[]).err(), Some(JwksError::NotJson));
        assert_eq!(parse_jwks(b"", &[]).err(), Some(JwksError::NotJson));
        for no_keys in [&b"{}"[..], b"[]", b"{\"keys\":{}}", b"{\"keys\":null}"] {
            assert_eq!(parse_jwks(no_keys, &[]).err(), Some(JwksError::NoKeysArray));
        }
        assert_eq!(
            parse_jwks(b"{\"keys\":[]}", &[]).err(),
            Some(JwksError::Empty)
        );
        let oct = json!({ "kty": "oct", "k": "c2VjcmV0" });
        let weak: Value =
            serde_json::from_str(include_str!("../testdata/keys/rsa-1024-public.jwk.json"))
                .unwrap();
        let error = parse_jwks(&document(&[oct, weak]), &[]).unwrap_err();
        let JwksError::NoUsableKeys(skipped) = &error else {
            panic!("{error:?}");
        };
        assert_eq!(skipped.len(), 2);
        assert_eq!(skipped[1].kid.as_deref(), Some("weak-1024"));
        assert_eq!(skipped[0].reason, SkipReason::Symmetric);
        assert_eq!(error.to_string(), "JWKS has no usable key (2 skipped)");
    }

    #[test]
    fn from_keys_allows_each_keys_type() {
        let key = generate(JwsAlgorithm::Es256);
        let set = IssuerKeySet::from_keys(vec![IntegrationKey {
            kid: "k".into(),
            public_key: key.public_key().clone(),
            active: true,
        }]);
        assert!(set.permits("k", JwsAlgorithm::Es256));
        assert!(!set.permits("k", JwsAlgorithm::Es384));
        assert!(set.algorithms(5).is_empty());
    }
}
