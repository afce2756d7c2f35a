//! Keys: the public keys integrations register (PEM or JWK in, parsed once, verifying
//! many times) and the private keys that sign (access tokens here, assertions in the SDK).

use aws_lc_rs::encoding::{AsBigEndian, AsDer, Pkcs8V1Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, EcdsaSigningAlgorithm, Ed25519KeyPair, KeyPair as _, ParsedPublicKey,
    RsaEncoding, RsaKeyPair,
};
use jwtgrant_proto::Jwk;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::alg::{JwsAlgorithm, KeyType};
use crate::{b64, der};

/// The smallest RSA modulus accepted, in bits (RFC 7518 section 3.3).
pub const MIN_RSA_BITS: usize = 2048;

const OID_RSA_ENCRYPTION: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// Why a key was refused. The text never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Neither PEM nor a JSON JWK.
    #[error("not a PEM block or a JSON Web Key")]
    UnknownFormat,
    /// A PEM block of a kind we do not take here.
    #[error("PEM block '{0}' is not accepted here")]
    UnsupportedPemLabel(String),
    /// The DER or the key's numbers are malformed.
    #[error("malformed {0} key")]
    Malformed(&'static str),
    /// A key type or curve jwtgrant does not support.
    #[error("unsupported key type: {0}")]
    Unsupported(String),
    /// RSA below 2048 bits.
    #[error("RSA key of {0} bits is too small: at least 2048 bits are required")]
    RsaTooSmall(usize),
    /// A JWK carrying private parameters where a public key is wanted.
    #[error("this JWK holds a private key; register its public half only")]
    PrivateJwk,
    /// A JWK without the private parameters where a private key is wanted.
    #[error("this JWK holds no private key ('d' is missing)")]
    PublicJwk,
    /// An algorithm that cannot be used with this key.
    #[error("algorithm {alg} cannot be used with a {key_type} key")]
    AlgorithmMismatch {
        /// The algorithm asked for.
        alg: JwsAlgorithm,
        /// The key's type.
        key_type: KeyType,
    },
    /// The crypto library refused the operation.
    #[error("cryptographic operation failed")]
    Crypto,
}

/// The public numbers of a key, enough to rebuild SPKI, a JWK and its thumbprint.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Material {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ec {
        key_type: KeyType,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    Ed25519 {
        x: Vec<u8>,
    },
}

/// A public key parsed once, ready to verify signatures for every algorithm its type allows.
#[derive(Clone)]
pub struct PublicKey {
    material: Material,
    verifiers: Vec<(JwsAlgorithm, ParsedPublicKey)>,
    thumbprint: String,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey({}, {})", self.key_type(), self.thumbprint)
    }
}

impl PublicKey {
    /// Reads a public key from PEM (`PUBLIC KEY` or `RSA PUBLIC KEY`) or a JSON JWK.
    pub fn from_text(text: &str) -> Result<Self, KeyError> {
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') {
            let jwk: Jwk = serde_json::from_str(trimmed).map_err(|_| KeyError::Malformed("JWK"))?;
            return Self::from_jwk(&jwk);
        }
        let (label, der) = pem_decode(text)?;
        match label.as_str() {
            "PUBLIC KEY" => Self::from_spki_der(&der),
            "RSA PUBLIC KEY" => Self::from_pkcs1_der(&der),
            _ => Err(KeyError::UnsupportedPemLabel(label)),
        }
    }

    /// Reads a DER SubjectPublicKeyInfo (RFC 5280).
    pub fn from_spki_der(spki: &[u8]) -> Result<Self, KeyError> {
        let bad = KeyError::Malformed("SubjectPublicKeyInfo");
        let mut outer = der::Reader::new(spki);
        let body = outer.expect(der::SEQUENCE).ok_or(bad.clone())?;
        if !outer.is_empty() {
            return Err(bad);
        }
        let mut body = der::Reader::new(body);
        let algorithm = body.expect(der::SEQUENCE).ok_or(bad.clone())?;
        let bits = body.expect(der::BIT_STRING).ok_or(bad.clone())?;
        let key_bytes = match bits.split_first() {
            Some((0, rest)) => rest,
            _ => return Err(bad),
        };
        let mut algorithm = der::Reader::new(algorithm);
        let oid = algorithm.expect(der::OID).ok_or(bad.clone())?;
        match oid {
            OID_RSA_ENCRYPTION => Self::from_pkcs1_der(key_bytes),
            OID_EC_PUBLIC_KEY => {
                let curve = algorithm.expect(der::OID).ok_or(bad)?;
                let key_type = match curve {
                    OID_P256 => KeyType::EcP256,
                    OID_P384 => KeyType::EcP384,
                    _ => return Err(KeyError::Unsupported("EC curve".into())),
                };
                let size = ec_coordinate_len(key_type);
                match key_bytes.split_first() {
                    Some((4, xy)) if xy.len() == 2 * size => {
                        let (x, y) = xy.split_at(size);
                        Self::from_material(Material::Ec {
                            key_type,
                            x: x.to_vec(),
                            y: y.to_vec(),
                        })
                    }
                    _ => Err(KeyError::Malformed("EC")),
                }
            }
            OID_ED25519 if key_bytes.len() == 32 => Self::from_material(Material::Ed25519 {
                x: key_bytes.to_vec(),
            }),
            _ => Err(KeyError::Unsupported("public key algorithm".into())),
        }
    }

    /// Reads a DER PKCS#1 RSAPublicKey.
    pub fn from_pkcs1_der(pkcs1: &[u8]) -> Result<Self, KeyError> {
        let bad = KeyError::Malformed("RSA");
        let mut outer = der::Reader::new(pkcs1);
        let body = outer.expect(der::SEQUENCE).ok_or(bad.clone())?;
        let mut body = der::Reader::new(body);
        let n = body.positive_integer().ok_or(bad.clone())?;
        let e = body.positive_integer().ok_or(bad.clone())?;
        if !outer.is_empty() || !body.is_empty() {
            return Err(bad);
        }
        Self::from_material(Material::Rsa {
            n: n.to_vec(),
            e: e.to_vec(),
        })
    }

    /// Reads a public JWK (RFC 7517); a JWK with private parameters is refused.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, KeyError> {
        if jwk.d.is_some() {
            return Err(KeyError::PrivateJwk);
        }
        let field = |value: &Option<String>, what: &'static str| {
            value
                .as_deref()
                .and_then(b64::decode)
                .ok_or(KeyError::Malformed(what))
        };
        let material = match (jwk.kty.as_str(), jwk.crv.as_deref()) {
            ("RSA", _) => Material::Rsa {
                n: strip_leading_zeros(field(&jwk.n, "RSA JWK")?),
                e: strip_leading_zeros(field(&jwk.e, "RSA JWK")?),
            },
            ("EC", Some(crv @ ("P-256" | "P-384"))) => {
                let key_type = if crv == "P-256" {
                    KeyType::EcP256
                } else {
                    KeyType::EcP384
                };
                let size = ec_coordinate_len(key_type);
                Material::Ec {
                    key_type,
                    x: left_pad(field(&jwk.x, "EC JWK")?, size)?,
                    y: left_pad(field(&jwk.y, "EC JWK")?, size)?,
                }
            }
            ("OKP", Some("Ed25519")) => Material::Ed25519 {
                x: field(&jwk.x, "Ed25519 JWK")?,
            },
            (kty, crv) => {
                return Err(KeyError::Unsupported(match crv {
                    Some(crv) => format!("{kty} {crv}"),
                    None => kty.to_owned(),
                }));
            }
        };
        Self::from_material(material)
    }

    fn from_material(material: Material) -> Result<Self, KeyError> {
        let (key_type, bytes) = match &material {
            Material::Rsa { n, e } => {
                let bits = bit_length(n);
                if bits < MIN_RSA_BITS {
                    return Err(KeyError::RsaTooSmall(bits));
                }
                if e.is_empty() || n.is_empty() {
                    return Err(KeyError::Malformed("RSA"));
                }
                (KeyType::Rsa, pkcs1_der(n, e))
            }
            Material::Ec { key_type, x, y } => {
                let mut point = Vec::with_capacity(1 + x.len() + y.len());
                point.push(4);
                point.extend_from_slice(x);
                point.extend_from_slice(y);
                (*key_type, point)
            }
            Material::Ed25519 { x } => (KeyType::Ed25519, x.clone()),
        };
        let verifiers = key_type
            .algorithms()
            .map(|alg| {
                ParsedPublicKey::new(alg.verification(), &bytes)
                    .map(|parsed| (alg, parsed))
                    .map_err(|_| KeyError::Malformed("public"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let thumbprint = b64::encode(aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            thumbprint_input(&material).as_bytes(),
        ));
        Ok(PublicKey {
            material,
            verifiers,
            thumbprint,
        })
    }

    /// The key's type, which decides the algorithms it may verify.
    pub fn key_type(&self) -> KeyType {
        match &self.material {
            Material::Rsa { .. } => KeyType::Rsa,
            Material::Ec { key_type, .. } => *key_type,
            Material::Ed25519 { .. } => KeyType::Ed25519,
        }
    }

    /// The RFC 7638 JWK thumbprint (SHA-256, base64url): the default `kid`.
    pub fn thumbprint(&self) -> &str {
        &self.thumbprint
    }

    /// Verifies `signature` over `message` with `alg`; false when the key's type does
    /// not allow `alg` or the signature does not verify.
    pub fn verify(&self, alg: JwsAlgorithm, message: &[u8], signature: &[u8]) -> bool {
        self.verifiers
            .iter()
            .find(|(candidate, _)| *candidate == alg)
            .is_some_and(|(_, key)| key.verify_sig(message, signature).is_ok())
    }

    /// The public JWK, with `kid`, `use` and `alg` when given.
    pub fn to_jwk(&self, kid: Option<&str>, alg: Option<JwsAlgorithm>) -> Jwk {
        let mut jwk = Jwk {
            kty: self.key_type().kty().to_owned(),
            kid: kid.map(str::to_owned),
            use_: Some("sig".to_owned()),
            alg: alg.map(|alg| alg.as_str().to_owned()),
            n: None,
            e: None,
            crv: None,
            x: None,
            y: None,
            d: None,
        };
        match &self.material {
            Material::Rsa { n, e } => {
                jwk.n = Some(b64::encode(n));
                jwk.e = Some(b64::encode(e));
            }
            Material::Ec { key_type, x, y } => {
                jwk.crv = Some(curve_name(*key_type).to_owned());
                jwk.x = Some(b64::encode(x));
                jwk.y = Some(b64::encode(y));
            }
            Material::Ed25519 { x } => {
                jwk.crv = Some("Ed25519".to_owned());
                jwk.x = Some(b64::encode(x));
            }
        }
        jwk
    }

    /// The DER SubjectPublicKeyInfo.
    pub fn to_spki_der(&self) -> Vec<u8> {
        let (algorithm, key_bytes) = match &self.material {
            Material::Rsa { n, e } => (
                [
                    der::write(der::OID, OID_RSA_ENCRYPTION),
                    der::write(der::NULL, &[]),
                ]
                .concat(),
                pkcs1_der(n, e),
            ),
            Material::Ec { key_type, x, y } => {
                let curve = if *key_type == KeyType::EcP256 {
                    OID_P256
                } else {
                    OID_P384
                };
                (
                    [
                        der::write(der::OID, OID_EC_PUBLIC_KEY),
                        der::write(der::OID, curve),
                    ]
                    .concat(),
                    [&[4u8][..], x, y].concat(),
                )
            }
            Material::Ed25519 { x } => (der::write(der::OID, OID_ED25519), x.clone()),
        };
        let bits = [&[0u8][..], &key_bytes].concat();
        der::write(
            der::SEQUENCE,
            &[
                der::write(der::SEQUENCE, &algorithm),
                der::write(der::BIT_STRING, &bits),
            ]
            .concat(),
        )
    }

    /// The key as a `PUBLIC KEY` PEM block.
    pub fn to_pem(&self) -> String {
        pem_encode("PUBLIC KEY", &self.to_spki_der())
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.material == other.material
    }
}

/// A private JSON Web Key (RFC 7518 section 6): the members of a public [`Jwk`] plus
/// the private ones. `jwk.d` is the RSA private exponent, the EC private scalar or
/// the Ed25519 seed; `p`..`qi` are the RSA CRT parameters. `Debug` shows no key
/// material, and the private members are zeroized when dropped.
#[derive(Clone, Serialize, Deserialize)]
pub struct PrivateJwk {
    /// The public members, with `d`.
    #[serde(flatten)]
    pub jwk: Jwk,
    /// RSA first prime factor, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p: Option<String>,
    /// RSA second prime factor, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// RSA first factor CRT exponent, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dp: Option<String>,
    /// RSA second factor CRT exponent, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dq: Option<String>,
    /// RSA first CRT coefficient, base64url.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qi: Option<String>,
}

impl PrivateJwk {
    /// The public half: the same JWK without any private member.
    pub fn public_jwk(&self) -> Jwk {
        Jwk {
            d: None,
            ..self.jwk.clone()
        }
    }
}

impl std::fmt::Debug for PrivateJwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateJwk")
            .field("kty", &self.jwk.kty)
            .field("kid", &self.jwk.kid)
            .field("crv", &self.jwk.crv)
            .finish_non_exhaustive()
    }
}

impl Drop for PrivateJwk {
    fn drop(&mut self) {
        self.jwk.d.zeroize();
        self.p.zeroize();
        self.q.zeroize();
        self.dp.zeroize();
        self.dq.zeroize();
        self.qi.zeroize();
    }
}

/// A private key that signs JWS: RSA (RS*/PS*), EC P-256/P-384 (ES256/ES384) or Ed25519.
pub struct SigningKey {
    inner: Inner,
    public: PublicKey,
}

enum Inner {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({:?})", self.public)
    }
}

impl SigningKey {
    /// Generates a fresh key for `alg`; `rsa_bits` applies to RS*/PS* (2048, 3072, 4096).
    pub fn generate(alg: JwsAlgorithm, rsa_bits: usize) -> Result<Self, KeyError> {
        let inner = match alg {
            JwsAlgorithm::Rs256
            | JwsAlgorithm::Rs384
            | JwsAlgorithm::Rs512
            | JwsAlgorithm::Ps256
            | JwsAlgorithm::Ps384
            | JwsAlgorithm::Ps512 => {
                let size = match rsa_bits {
                    2048 => KeySize::Rsa2048,
                    3072 => KeySize::Rsa3072,
                    4096 => KeySize::Rsa4096,
                    8192 => KeySize::Rsa8192,
                    bits if bits < MIN_RSA_BITS => return Err(KeyError::RsaTooSmall(bits)),
                    bits => return Err(KeyError::Unsupported(format!("RSA size {bits}"))),
                };
                Inner::Rsa(RsaKeyPair::generate(size).map_err(|_| KeyError::Crypto)?)
            }
            JwsAlgorithm::Es256 | JwsAlgorithm::Es384 => {
                Inner::Ec(EcdsaKeyPair::generate(ecdsa_signing(alg)).map_err(|_| KeyError::Crypto)?)
            }
            JwsAlgorithm::EdDsa => {
                Inner::Ed25519(Ed25519KeyPair::generate().map_err(|_| KeyError::Crypto)?)
            }
        };
        Self::from_inner(inner)
    }

    /// Reads a private key from PEM: PKCS#8 (`PRIVATE KEY`: RSA, EC, Ed25519), PKCS#1
    /// (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`).
    pub fn from_pem(text: &str) -> Result<Self, KeyError> {
        let (label, der) = pem_decode(text)?;
        let der = Zeroizing::new(der);
        match label.as_str() {
            "PRIVATE KEY" => Self::from_pkcs8_der(&der),
            "RSA PRIVATE KEY" => match RsaKeyPair::from_der(&der) {
                Ok(pair) => Self::from_inner(Inner::Rsa(pair)),
                Err(_) => Err(rsa_refusal(&der, "PKCS#1 RSA")),
            },
            "EC PRIVATE KEY" => [JwsAlgorithm::Es256, JwsAlgorithm::Es384]
                .into_iter()
                .find_map(|alg| EcdsaKeyPair::from_private_key_der(ecdsa_signing(alg), &der).ok())
                .ok_or(KeyError::Malformed("SEC1 EC"))
                .and_then(|pair| Self::from_inner(Inner::Ec(pair))),
            _ => Err(KeyError::UnsupportedPemLabel(label)),
        }
    }

    /// Reads a DER PKCS#8 private key of any supported type.
    pub fn from_pkcs8_der(pkcs8: &[u8]) -> Result<Self, KeyError> {
        if let Ok(pair) = RsaKeyPair::from_pkcs8(pkcs8) {
            return Self::from_inner(Inner::Rsa(pair));
        }
        if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8) {
            return Self::from_inner(Inner::Ed25519(pair));
        }
        if let Some(pkcs1) = pkcs8_rsa_private_key(pkcs8) {
            return Err(rsa_refusal(pkcs1, "PKCS#8 RSA"));
        }
        [JwsAlgorithm::Es256, JwsAlgorithm::Es384]
            .into_iter()
            .find_map(|alg| EcdsaKeyPair::from_pkcs8(ecdsa_signing(alg), pkcs8).ok())
            .ok_or(KeyError::Malformed("PKCS#8"))
            .and_then(|pair| Self::from_inner(Inner::Ec(pair)))
    }

    /// Reads a private JWK: RSA (`n`, `e`, `d`, `p`, `q`, `dp`, `dq`, `qi`; at least
    /// 2048 bits), EC P-256/P-384 (`x`, `y`, `d`) or Ed25519 (`x`, `d`). The private
    /// and public members must belong together.
    pub fn from_jwk(jwk: &PrivateJwk) -> Result<Self, KeyError> {
        let public = PublicKey::from_jwk(&jwk.public_jwk())?;
        let private = |value: &Option<String>, what: &'static str| {
            value
                .as_deref()
                .and_then(b64::decode)
                .map(Zeroizing::new)
                .ok_or(KeyError::Malformed(what))
        };
        if jwk.jwk.d.is_none() {
            return Err(KeyError::PublicJwk);
        }
        let inner = match &public.material {
            Material::Rsa { n, e } => {
                if [&jwk.p, &jwk.q, &jwk.dp, &jwk.dq, &jwk.qi]
                    .iter()
                    .any(|member| member.is_none())
                {
                    return Err(KeyError::Unsupported(
                        "RSA private JWK without its CRT parameters (p, q, dp, dq, qi)".into(),
                    ));
                }
                let bad = "RSA private JWK";
                let der = rsa_private_key_der(&[
                    n,
                    e,
                    &private(&jwk.jwk.d, bad)?,
                    &private(&jwk.p, bad)?,
                    &private(&jwk.q, bad)?,
                    &private(&jwk.dp, bad)?,
                    &private(&jwk.dq, bad)?,
                    &private(&jwk.qi, bad)?,
                ]);
                Inner::Rsa(RsaKeyPair::from_der(&der).map_err(|_| KeyError::Malformed(bad))?)
            }
            Material::Ec { key_type, x, y } => {
                let bad = "EC private JWK";
                let scalar = private(&jwk.jwk.d, bad)?;
                let size = ec_coordinate_len(*key_type);
                if scalar.len() > size {
                    return Err(KeyError::Malformed(bad));
                }
                let mut padded = Zeroizing::new(Vec::with_capacity(size));
                padded.resize(size - scalar.len(), 0);
                padded.extend_from_slice(&scalar);
                let point = [&[4u8][..], x, y].concat();
                let alg = if *key_type == KeyType::EcP384 {
                    JwsAlgorithm::Es384
                } else {
                    JwsAlgorithm::Es256
                };
                Inner::Ec(
                    EcdsaKeyPair::from_private_key_and_public_key(
                        ecdsa_signing(alg),
                        &padded,
                        &point,
                    )
                    .map_err(|_| KeyError::Malformed(bad))?,
                )
            }
            Material::Ed25519 { x } => {
                let bad = "Ed25519 private JWK";
                let seed = private(&jwk.jwk.d, bad)?;
                Inner::Ed25519(
                    Ed25519KeyPair::from_seed_and_public_key(&seed, x)
                        .map_err(|_| KeyError::Malformed(bad))?,
                )
            }
        };
        let key = Self::from_inner(inner)?;
        if key.public != public {
            return Err(KeyError::Malformed("private JWK"));
        }
        Ok(key)
    }

    /// The private key as a JWK, with `kid` and `alg` when given. Keep it secret.
    pub fn to_private_jwk(
        &self,
        kid: Option<&str>,
        alg: Option<JwsAlgorithm>,
    ) -> Result<PrivateJwk, KeyError> {
        let mut private = PrivateJwk {
            jwk: self.public.to_jwk(kid, alg),
            p: None,
            q: None,
            dp: None,
            dq: None,
            qi: None,
        };
        match &self.inner {
            Inner::Rsa(_) => {
                let pkcs8 = self.to_pkcs8_der()?;
                let [d, p, q, dp, dq, qi] =
                    rsa_private_components(&pkcs8).ok_or(KeyError::Crypto)?;
                private.jwk.d = Some(b64::encode(d));
                private.p = Some(b64::encode(p));
                private.q = Some(b64::encode(q));
                private.dp = Some(b64::encode(dp));
                private.dq = Some(b64::encode(dq));
                private.qi = Some(b64::encode(qi));
            }
            Inner::Ec(pair) => {
                let scalar = pair
                    .private_key()
                    .as_be_bytes()
                    .map_err(|_| KeyError::Crypto)?;
                private.jwk.d = Some(b64::encode(scalar.as_ref()));
            }
            Inner::Ed25519(pair) => {
                let seed = pair
                    .seed()
                    .and_then(|seed| seed.as_be_bytes())
                    .map_err(|_| KeyError::Crypto)?;
                private.jwk.d = Some(b64::encode(seed.as_ref()));
            }
        }
        Ok(private)
    }

    fn from_inner(inner: Inner) -> Result<Self, KeyError> {
        let public = match &inner {
            Inner::Rsa(pair) => PublicKey::from_pkcs1_der(pair.public_key().as_ref())?,
            Inner::Ec(pair) => {
                let point = pair.public_key().as_ref();
                let key_type = if std::ptr::eq(pair.algorithm(), ecdsa_signing(JwsAlgorithm::Es256))
                {
                    KeyType::EcP256
                } else {
                    KeyType::EcP384
                };
                let size = ec_coordinate_len(key_type);
                let (x, y) = point
                    .get(1..)
                    .filter(|xy| xy.len() == 2 * size)
                    .map(|xy| xy.split_at(size))
                    .ok_or(KeyError::Malformed("EC"))?;
                PublicKey::from_material(Material::Ec {
                    key_type,
                    x: x.to_vec(),
                    y: y.to_vec(),
                })?
            }
            Inner::Ed25519(pair) => PublicKey::from_material(Material::Ed25519 {
                x: pair.public_key().as_ref().to_vec(),
            })?,
        };
        Ok(SigningKey { inner, public })
    }

    /// The public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// The key's type.
    pub fn key_type(&self) -> KeyType {
        self.public.key_type()
    }

    /// The algorithm this key signs with unless told otherwise.
    pub fn default_algorithm(&self) -> JwsAlgorithm {
        match self.key_type() {
            KeyType::Rsa => JwsAlgorithm::Rs256,
            KeyType::EcP256 => JwsAlgorithm::Es256,
            KeyType::EcP384 => JwsAlgorithm::Es384,
            KeyType::Ed25519 => JwsAlgorithm::EdDsa,
        }
    }

    /// Signs `message` with `alg` (which must suit the key), giving the JWS signature bytes.
    pub fn sign(&self, alg: JwsAlgorithm, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        if !alg.key_type_allowed(self.key_type()) {
            return Err(KeyError::AlgorithmMismatch {
                alg,
                key_type: self.key_type(),
            });
        }
        let rng = SystemRandom::new();
        match &self.inner {
            Inner::Rsa(pair) => {
                let mut out = vec![0u8; pair.public_modulus_len()];
                pair.sign(rsa_padding(alg), &rng, message, &mut out)
                    .map_err(|_| KeyError::Crypto)?;
                Ok(out)
            }
            Inner::Ec(pair) => pair
                .sign(&rng, message)
                .map(|sig| sig.as_ref().to_vec())
                .map_err(|_| KeyError::Crypto),
            Inner::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
        }
    }

    /// The private key as DER PKCS#8 v1, zeroized when dropped.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let der = match &self.inner {
            Inner::Rsa(pair) => AsDer::<Pkcs8V1Der>::as_der(pair)
                .map(|d| d.as_ref().to_vec())
                .map_err(|_| KeyError::Crypto)?,
            Inner::Ec(pair) => pair
                .to_pkcs8v1()
                .map(|d| d.as_ref().to_vec())
                .map_err(|_| KeyError::Crypto)?,
            Inner::Ed25519(pair) => pair
                .to_pkcs8v1()
                .map(|d| d.as_ref().to_vec())
                .map_err(|_| KeyError::Crypto)?,
        };
        Ok(Zeroizing::new(der))
    }

    /// The private key as a PKCS#8 `PRIVATE KEY` PEM block, zeroized when dropped.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, KeyError> {
        Ok(Zeroizing::new(pem_encode(
            "PRIVATE KEY",
            &self.to_pkcs8_der()?,
        )))
    }
}

fn ecdsa_signing(alg: JwsAlgorithm) -> &'static EcdsaSigningAlgorithm {
    if alg == JwsAlgorithm::Es384 {
        &signature::ECDSA_P384_SHA384_FIXED_SIGNING
    } else {
        &signature::ECDSA_P256_SHA256_FIXED_SIGNING
    }
}

fn rsa_padding(alg: JwsAlgorithm) -> &'static dyn RsaEncoding {
    match alg {
        JwsAlgorithm::Rs384 => &signature::RSA_PKCS1_SHA384,
        JwsAlgorithm::Rs512 => &signature::RSA_PKCS1_SHA512,
        JwsAlgorithm::Ps256 => &signature::RSA_PSS_SHA256,
        JwsAlgorithm::Ps384 => &signature::RSA_PSS_SHA384,
        JwsAlgorithm::Ps512 => &signature::RSA_PSS_SHA512,
        _ => &signature::RSA_PKCS1_SHA256,
    }
}

fn ec_coordinate_len(key_type: KeyType) -> usize {
    if key_type == KeyType::EcP384 { 48 } else { 32 }
}

fn curve_name(key_type: KeyType) -> &'static str {
    if key_type == KeyType::EcP384 {
        "P-384"
    } else {
        "P-256"
    }
}

fn thumbprint_input(material: &Material) -> String {
    match material {
        Material::Rsa { n, e } => format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            b64::encode(e),
            b64::encode(n)
        ),
        Material::Ec { key_type, x, y } => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            curve_name(*key_type),
            b64::encode(x),
            b64::encode(y)
        ),
        Material::Ed25519 { x } => {
            format!(
                r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                b64::encode(x)
            )
        }
    }
}

fn pkcs1_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    der::write(
        der::SEQUENCE,
        &[
            der::write_positive_integer(n),
            der::write_positive_integer(e),
        ]
        .concat(),
    )
}

fn bit_length(magnitude: &[u8]) -> usize {
    match magnitude.iter().position(|b| *b != 0) {
        Some(start) => {
            let leading = magnitude
                .get(start)
                .map_or(0, |b| b.leading_zeros() as usize);
            (magnitude.len() - start) * 8 - leading
        }
        None => 0,
    }
}

fn strip_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros);
    bytes
}

fn left_pad(bytes: Vec<u8>, size: usize) -> Result<Vec<u8>, KeyError> {
    if bytes.len() > size {
        return Err(KeyError::Malformed("EC JWK"));
    }
    let mut out = vec![0u8; size - bytes.len()];
    out.extend_from_slice(&bytes);
    Ok(out)
}

const OCTET_STRING: u8 = 0x04;

/// A DER PKCS#1 RSAPrivateKey (RFC 8017 appendix A.1.2) from its eight numbers
/// `n, e, d, p, q, dp, dq, qi`, built in a buffer that is zeroized when dropped.
fn rsa_private_key_der(numbers: &[&[u8]; 8]) -> Zeroizing<Vec<u8>> {
    let capacity = 3 + numbers.iter().map(|n| n.len() + 6).sum::<usize>();
    let mut body = Zeroizing::new(Vec::with_capacity(capacity));
    body.extend_from_slice(&der::write(der::INTEGER, &[0]));
    for number in numbers {
        body.extend_from_slice(&Zeroizing::new(der::write_positive_integer(number)));
    }
    Zeroizing::new(der::write(der::SEQUENCE, &body))
}

/// The PKCS#1 RSAPrivateKey inside a DER PKCS#8 key whose algorithm is
/// rsaEncryption; `None` for any other key or shape.
fn pkcs8_rsa_private_key(pkcs8: &[u8]) -> Option<&[u8]> {
    let mut outer = der::Reader::new(pkcs8);
    let mut info = der::Reader::new(outer.expect(der::SEQUENCE)?);
    info.expect(der::INTEGER)?;
    let mut algorithm = der::Reader::new(info.expect(der::SEQUENCE)?);
    (algorithm.expect(der::OID)? == OID_RSA_ENCRYPTION).then_some(())?;
    info.expect(OCTET_STRING)
}

/// Why the crypto library refused an RSA private key (DER PKCS#1): too small a
/// modulus, said with its size, else `Malformed(what)`.
fn rsa_refusal(pkcs1: &[u8], what: &'static str) -> KeyError {
    let mut outer = der::Reader::new(pkcs1);
    let modulus = outer.expect(der::SEQUENCE).and_then(|body| {
        let mut numbers = der::Reader::new(body);
        numbers.expect(der::INTEGER)?;
        numbers.positive_integer()
    });
    match modulus.map(bit_length) {
        Some(bits) if bits < MIN_RSA_BITS => KeyError::RsaTooSmall(bits),
        _ => KeyError::Malformed(what),
    }
}

/// The private numbers `d, p, q, dp, dq, qi` of a DER PKCS#8 RSA private key.
fn rsa_private_components(pkcs8: &[u8]) -> Option<[Zeroizing<Vec<u8>>; 6]> {
    let mut key = der::Reader::new(pkcs8_rsa_private_key(pkcs8)?);
    let mut numbers = der::Reader::new(key.expect(der::SEQUENCE)?);
    numbers.expect(der::INTEGER)?;
    numbers.positive_integer()?;
    numbers.positive_integer()?;
    let mut next = || {
        numbers
            .positive_integer()
            .map(|n| Zeroizing::new(n.to_vec()))
    };
    Some([next()?, next()?, next()?, next()?, next()?, next()?])
}

/// Decodes the first PEM block of `text`, returning its label and DER bytes.
pub fn pem_decode(text: &str) -> Result<(String, Vec<u8>), KeyError> {
    let begin = text.find("-----BEGIN ").ok_or(KeyError::UnknownFormat)?;
    let after_begin = text.get(begin + 11..).ok_or(KeyError::UnknownFormat)?;
    let label_end = after_begin.find("-----").ok_or(KeyError::UnknownFormat)?;
    let label = after_begin
        .get(..label_end)
        .ok_or(KeyError::UnknownFormat)?;
    let body_start = label_end + 5;
    let end_marker = format!("-----END {label}-----");
    let rest = after_begin
        .get(body_start..)
        .ok_or(KeyError::UnknownFormat)?;
    let body_end = rest.find(&end_marker).ok_or(KeyError::Malformed("PEM"))?;
    let body = rest.get(..body_end).ok_or(KeyError::Malformed("PEM"))?;
    if body.contains(':') {
        return Err(KeyError::Unsupported("encrypted PEM".into()));
    }
    let der = b64::decode_standard(body).ok_or(KeyError::Malformed("PEM"))?;
    Ok((label.to_owned(), der))
}

/// Encodes DER as a PEM block with `label`.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    format!(
        "-----BEGIN {label}-----\n{}-----END {label}-----\n",
        b64::encode_pem_body(der)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(alg: JwsAlgorithm) {
        let key = SigningKey::generate(alg, 2048).unwrap_or_else(|e| unreachable!("{e}"));
        let message = b"header.payload";
        let signature = key.sign(alg, message).unwrap_or_default();
        let public = key.public_key();
        assert!(public.verify(alg, message, &signature), "{alg} verifies");
        assert!(!public.verify(alg, b"header.payloaD", &signature));

        let from_pem =
            PublicKey::from_text(&public.to_pem()).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(&from_pem, public);
        let jwk = serde_json::to_string(&public.to_jwk(None, None)).unwrap_or_default();
        let from_jwk = PublicKey::from_text(&jwk).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(from_jwk.thumbprint(), public.thumbprint());

        let pem = key.to_pkcs8_pem().unwrap_or_default();
        let again = SigningKey::from_pem(&pem).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(again.public_key(), public);
    }

    #[test]
    fn every_algorithm_round_trips() {
        for alg in JwsAlgorithm::ALL {
            round_trip(alg);
        }
    }

    #[test]
    fn algorithm_is_pinned_to_key_type() {
        let key =
            SigningKey::generate(JwsAlgorithm::Es256, 0).unwrap_or_else(|e| unreachable!("{e}"));
        assert!(key.sign(JwsAlgorithm::Rs256, b"x").is_err());
        let sig = key.sign(JwsAlgorithm::Es256, b"x").unwrap_or_default();
        assert!(!key.public_key().verify(JwsAlgorithm::Es384, b"x", &sig));
    }

    #[test]
    fn rfc7638_thumbprint_vector() {
        // RFC 7638 section 3.1.
        let jwk = r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#;
        let key = PublicKey::from_text(jwk).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            key.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    fn private_jwk_of(key: &SigningKey) -> PrivateJwk {
        key.to_private_jwk(Some("k1"), None)
            .unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn private_jwk_round_trips_for_every_key_type() {
        for alg in [
            JwsAlgorithm::Rs256,
            JwsAlgorithm::Es256,
            JwsAlgorithm::Es384,
            JwsAlgorithm::EdDsa,
        ] {
            let key = SigningKey::generate(alg, 2048).unwrap_or_else(|e| unreachable!("{e}"));
            let text = serde_json::to_string(&private_jwk_of(&key)).unwrap_or_default();
            let parsed: PrivateJwk =
                serde_json::from_str(&text).unwrap_or_else(|e| unreachable!("{e}"));
            assert_eq!(parsed.jwk.kid.as_deref(), Some("k1"));
            let again = SigningKey::from_jwk(&parsed).unwrap_or_else(|e| unreachable!("{e}"));
            assert_eq!(again.public_key(), key.public_key(), "{alg}");
            let signature = again.sign(alg, b"m").unwrap_or_default();
            assert!(key.public_key().verify(alg, b"m", &signature), "{alg}");
            // The public half is a registrable public JWK.
            let public = PublicKey::from_jwk(&parsed.public_jwk());
            assert_eq!(public.ok().as_ref(), Some(key.public_key()));
        }
    }

    #[test]
    fn private_jwk_debug_shows_no_key_material() {
        let key =
            SigningKey::generate(JwsAlgorithm::EdDsa, 0).unwrap_or_else(|e| unreachable!("{e}"));
        let jwk = private_jwk_of(&key);
        let d = jwk.jwk.d.clone().unwrap_or_default();
        assert!(!format!("{jwk:?}").contains(&d));
    }

    #[test]
    fn small_rsa_private_keys_are_refused_with_their_size() {
        // A 1024-bit key made with openssl, as PKCS#1 and as PKCS#8.
        for pem in [
            include_str!("../testdata/keys/rsa-1024-pkcs1.pem"),
            include_str!("../testdata/keys/rsa-1024-pkcs8.pem"),
        ] {
            assert_eq!(
                SigningKey::from_pem(pem).err(),
                Some(KeyError::RsaTooSmall(1024))
            );
        }
        // A 2048-bit modulus with nonsense private numbers is malformed, not small.
        let n = [0xc3u8; 256];
        let der = rsa_private_key_der(&[&n, &[1, 0, 1], &[3], &[5], &[7], &[1], &[1], &[1]]);
        let pem = pem_encode("RSA PRIVATE KEY", &der);
        assert!(matches!(
            SigningKey::from_pem(&pem),
            Err(KeyError::Malformed(_))
        ));
    }

    #[test]
    fn private_jwk_refuses_public_mismatched_and_incomplete_keys() {
        let ed =
            SigningKey::generate(JwsAlgorithm::EdDsa, 0).unwrap_or_else(|e| unreachable!("{e}"));
        let other =
            SigningKey::generate(JwsAlgorithm::EdDsa, 0).unwrap_or_else(|e| unreachable!("{e}"));
        let public_only = PrivateJwk {
            jwk: ed.public_key().to_jwk(None, None),
            p: None,
            q: None,
            dp: None,
            dq: None,
            qi: None,
        };
        assert_eq!(
            SigningKey::from_jwk(&public_only).err(),
            Some(KeyError::PublicJwk)
        );

        // Another key's private part with this key's public part.
        let mut mixed = private_jwk_of(&ed);
        mixed.jwk.d = private_jwk_of(&other).jwk.d.clone();
        assert!(matches!(
            SigningKey::from_jwk(&mixed),
            Err(KeyError::Malformed(_))
        ));

        let ec =
            SigningKey::generate(JwsAlgorithm::Es256, 0).unwrap_or_else(|e| unreachable!("{e}"));
        let ec_other =
            SigningKey::generate(JwsAlgorithm::Es256, 0).unwrap_or_else(|e| unreachable!("{e}"));
        let mut mixed = private_jwk_of(&ec);
        mixed.jwk.d = private_jwk_of(&ec_other).jwk.d.clone();
        assert!(matches!(
            SigningKey::from_jwk(&mixed),
            Err(KeyError::Malformed(_))
        ));

        let rsa =
            SigningKey::generate(JwsAlgorithm::Rs256, 2048).unwrap_or_else(|e| unreachable!("{e}"));
        let mut no_crt = private_jwk_of(&rsa);
        no_crt.p = None;
        assert!(matches!(
            SigningKey::from_jwk(&no_crt),
            Err(KeyError::Unsupported(_))
        ));
        let mut wrong_d = private_jwk_of(&rsa);
        wrong_d.jwk.d = Some(b64::encode([7u8; 256]));
        assert!(matches!(
            SigningKey::from_jwk(&wrong_d),
            Err(KeyError::Malformed(_))
        ));
    }

    #[test]
    fn private_jwk_refuses_small_rsa() {
        // A tiny modulus is refused by size, before any private number is read.
        let small = r#"{"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB","p":"AQ","q":"AQ","dp":"AQ","dq":"AQ","qi":"AQ"}"#;
        let jwk: PrivateJwk = serde_json::from_str(small).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(
            SigningKey::from_jwk(&jwk).err(),
            Some(KeyError::RsaTooSmall(17))
        );
    }

    #[test]
    fn refuses_small_rsa_private_jwk_and_garbage() {
        let small = r#"{"kty":"RSA","n":"AQAB","e":"AQAB"}"#;
        assert!(matches!(
            PublicKey::from_text(small),
            Err(KeyError::RsaTooSmall(17))
        ));
        let private = r#"{"kty":"OKP","crv":"Ed25519","x":"AA","d":"AA"}"#;
        assert_eq!(
            PublicKey::from_text(private).err(),
            Some(KeyError::PrivateJwk)
        );
        assert_eq!(
            PublicKey::from_text("hello").err(),
            Some(KeyError::UnknownFormat)
        );
        assert!(SigningKey::generate(JwsAlgorithm::Rs256, 1024).is_err());
    }
}
