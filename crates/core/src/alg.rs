//! JWS algorithms (RFC 7518) and which key type each one needs.

use aws_lc_rs::signature::{self, VerificationAlgorithm};

/// The signature algorithms jwtgrant verifies and signs with.
///
/// `none` and every `HS*` are deliberately absent: an assertion naming them is refused
/// before any key is touched (RFC 8725 section 3.1, 3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JwsAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    Rs512,
    /// RSASSA-PSS with SHA-256.
    Ps256,
    /// RSASSA-PSS with SHA-384.
    Ps384,
    /// RSASSA-PSS with SHA-512.
    Ps512,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// ECDSA on P-384 with SHA-384.
    Es384,
    /// Ed25519.
    EdDsa,
}

impl serde::Serialize for JwsAlgorithm {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for JwsAlgorithm {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        JwsAlgorithm::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("alg '{name}' is not supported")))
    }
}

/// The key families of RFC 7518 section 6.1 (`kty`), with the EC curve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// `RSA`.
    Rsa,
    /// `EC` on P-256.
    EcP256,
    /// `EC` on P-384.
    EcP384,
    /// `OKP` Ed25519.
    Ed25519,
}

impl JwsAlgorithm {
    /// Every algorithm, for listing in metadata.
    pub const ALL: [JwsAlgorithm; 9] = [
        JwsAlgorithm::Rs256,
        JwsAlgorithm::Rs384,
        JwsAlgorithm::Rs512,
        JwsAlgorithm::Ps256,
        JwsAlgorithm::Ps384,
        JwsAlgorithm::Ps512,
        JwsAlgorithm::Es256,
        JwsAlgorithm::Es384,
        JwsAlgorithm::EdDsa,
    ];

    /// The algorithms the server signs access tokens with, one per key type: what
    /// `serve --access-token-alg` and `keys rotate --alg` accept, and the keys
    /// `keygen` and `integration generate-key` make.
    pub const ACCESS_TOKEN: [JwsAlgorithm; 3] = [
        JwsAlgorithm::Es256,
        JwsAlgorithm::Rs256,
        JwsAlgorithm::EdDsa,
    ];

    /// The `alg` header value.
    pub const fn as_str(self) -> &'static str {
        match self {
            JwsAlgorithm::Rs256 => "RS256",
            JwsAlgorithm::Rs384 => "RS384",
            JwsAlgorithm::Rs512 => "RS512",
            JwsAlgorithm::Ps256 => "PS256",
            JwsAlgorithm::Ps384 => "PS384",
            JwsAlgorithm::Ps512 => "PS512",
            JwsAlgorithm::Es256 => "ES256",
            JwsAlgorithm::Es384 => "ES384",
            JwsAlgorithm::EdDsa => "EdDSA",
        }
    }

    /// Parses an `alg` header value; `None` for anything not in [`JwsAlgorithm::ALL`].
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|alg| alg.as_str() == name)
    }

    /// The key type this algorithm needs: the key decides, never the header alone.
    pub fn key_type_allowed(self, key_type: KeyType) -> bool {
        match self {
            JwsAlgorithm::Rs256
            | JwsAlgorithm::Rs384
            | JwsAlgorithm::Rs512
            | JwsAlgorithm::Ps256
            | JwsAlgorithm::Ps384
            | JwsAlgorithm::Ps512 => key_type == KeyType::Rsa,
            JwsAlgorithm::Es256 => key_type == KeyType::EcP256,
            JwsAlgorithm::Es384 => key_type == KeyType::EcP384,
            JwsAlgorithm::EdDsa => key_type == KeyType::Ed25519,
        }
    }

    /// The aws-lc-rs verification algorithm. RSA accepts 2048 to 8192-bit moduli;
    /// smaller keys are refused when they are registered.
    pub(crate) fn verification(self) -> &'static dyn VerificationAlgorithm {
        match self {
            JwsAlgorithm::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            JwsAlgorithm::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            JwsAlgorithm::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
            JwsAlgorithm::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
            JwsAlgorithm::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
            JwsAlgorithm::Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
            JwsAlgorithm::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
            JwsAlgorithm::Es384 => &signature::ECDSA_P384_SHA384_FIXED,
            JwsAlgorithm::EdDsa => &signature::ED25519,
        }
    }
}

impl std::fmt::Display for JwsAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl KeyType {
    /// The algorithms a key of this type may be used with.
    pub fn algorithms(self) -> impl Iterator<Item = JwsAlgorithm> {
        JwsAlgorithm::ALL
            .into_iter()
            .filter(move |alg| alg.key_type_allowed(self))
    }

    /// The JWK `kty`.
    pub fn kty(self) -> &'static str {
        match self {
            KeyType::Rsa => "RSA",
            KeyType::EcP256 | KeyType::EcP384 => "EC",
            KeyType::Ed25519 => "OKP",
        }
    }
}

impl std::fmt::Display for KeyType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            KeyType::Rsa => "RSA",
            KeyType::EcP256 => "EC P-256",
            KeyType::EcP384 => "EC P-384",
            KeyType::Ed25519 => "Ed25519",
        })
    }
}
