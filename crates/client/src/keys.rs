//! The integration's private key: loaded once from PEM (PKCS#1 or PKCS#8 RSA, SEC1
//! or PKCS#8 EC, PKCS#8 Ed25519) or a private JWK, shared by every assertion it signs.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use jwtgrant_core::keys::{KeyError, MIN_RSA_BITS, PrivateJwk};
use jwtgrant_core::{JwsAlgorithm, KeyType, PublicKey, SigningKey};
use zeroize::Zeroizing;

/// Why a private key could not be loaded. The text never contains key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyLoadError {
    /// The key file could not be read.
    #[error("cannot read key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// An RSA key below 2048 bits, which servers refuse (RFC 7518 section 3.3).
    #[error("RSA key of {bits} bits is too small: at least {MIN_RSA_BITS} bits are required")]
    RsaTooSmall {
        /// The modulus size found.
        bits: usize,
    },
    /// A JSON text that is not a private JWK.
    #[error("not a private JSON Web Key: {0}")]
    Json(String),
    /// The key itself was refused.
    #[error(transparent)]
    Key(KeyError),
}

impl From<KeyError> for KeyLoadError {
    fn from(error: KeyError) -> Self {
        match error {
            KeyError::RsaTooSmall(bits) => KeyLoadError::RsaTooSmall { bits },
            other => KeyLoadError::Key(other),
        }
    }
}

/// A private signing key with the `kid` it is registered under, if known. Cheap to
/// clone: clones share one key.
#[derive(Clone, Debug)]
pub struct PrivateKey {
    key: Arc<SigningKey>,
    kid: Option<String>,
}

impl PrivateKey {
    /// Wraps a key already in memory, e.g. one from [`SigningKey::generate`].
    pub fn new(key: SigningKey) -> Self {
        PrivateKey {
            key: Arc::new(key),
            kid: None,
        }
    }

    /// Reads a key from PEM or, when the text is a JSON object, a private JWK.
    pub fn from_text(text: &str) -> Result<Self, KeyLoadError> {
        if text.trim_start().starts_with('{') {
            Self::from_jwk_json(text)
        } else {
            Self::from_pem(text)
        }
    }

    /// Reads a key file: PEM or a private JWK.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, KeyLoadError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map(Zeroizing::new)
            .map_err(|source| KeyLoadError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Self::from_text(&text)
    }

    /// Reads a PEM private key: `PRIVATE KEY` (PKCS#8: RSA, EC, Ed25519),
    /// `RSA PRIVATE KEY` (PKCS#1) or `EC PRIVATE KEY` (SEC1).
    pub fn from_pem(text: &str) -> Result<Self, KeyLoadError> {
        Ok(Self::new(SigningKey::from_pem(text)?))
    }

    /// Reads a private JWK (RFC 7517) from its JSON text; its `kid` becomes this
    /// key's [`kid`](Self::kid).
    pub fn from_jwk_json(text: &str) -> Result<Self, KeyLoadError> {
        let jwk: PrivateJwk = serde_json::from_str(text).map_err(|e| {
            // serde's message names the field and position, never the value.
            KeyLoadError::Json(e.to_string())
        })?;
        Self::from_jwk(&jwk)
    }

    /// Reads a private JWK; its `kid` becomes this key's [`kid`](Self::kid).
    pub fn from_jwk(jwk: &PrivateJwk) -> Result<Self, KeyLoadError> {
        let key = SigningKey::from_jwk(jwk)?;
        Ok(PrivateKey {
            key: Arc::new(key),
            kid: jwk.jwk.kid.clone(),
        })
    }

    /// The same key registered under `kid`, which assertions then carry in their header.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The key id assertions carry by default, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The signing key.
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// The public half, to register with the server.
    pub fn public_key(&self) -> &PublicKey {
        self.key.public_key()
    }

    /// The key's type.
    pub fn key_type(&self) -> KeyType {
        self.key.key_type()
    }

    /// The algorithm assertions use unless told otherwise: RS256, ES256, ES384 or EdDSA.
    pub fn default_algorithm(&self) -> JwsAlgorithm {
        self.key.default_algorithm()
    }
}

impl From<SigningKey> for PrivateKey {
    fn from(key: SigningKey) -> Self {
        Self::new(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A 1024-bit RSA key (PKCS#1), generated with `openssl genrsa -traditional 1024`.
    const RSA_1024_PKCS1: &str = include_str!("../tests/data/rsa-1024.pem");
    // The same key as PKCS#8.
    const RSA_1024_PKCS8: &str = include_str!("../tests/data/rsa-1024-pkcs8.pem");

    #[test]
    fn refuses_small_rsa_with_its_size() {
        for pem in [RSA_1024_PKCS1, RSA_1024_PKCS8] {
            let error = PrivateKey::from_pem(pem).err();
            assert!(
                matches!(error, Some(KeyLoadError::RsaTooSmall { bits: 1024 })),
                "{error:?}"
            );
            assert!(
                error
                    .map(|e| e.to_string())
                    .unwrap_or_default()
                    .contains("at least 2048 bits")
            );
        }
    }

    // The same key as a private JWK (RFC 7517), with every CRT member.
    const RSA_1024_JWK: &str = include_str!("../tests/data/rsa-1024.jwk.json");

    #[test]
    fn refuses_a_small_rsa_private_jwk_with_its_size() {
        let error = PrivateKey::from_text(RSA_1024_JWK).err();
        assert!(
            matches!(error, Some(KeyLoadError::RsaTooSmall { bits: 1024 })),
            "{error:?}"
        );
    }

    #[test]
    fn loads_every_pem_and_jwk_form() {
        for alg in [
            JwsAlgorithm::Rs256,
            JwsAlgorithm::Es256,
            JwsAlgorithm::Es384,
            JwsAlgorithm::EdDsa,
        ] {
            let key = SigningKey::generate(alg, 2048).unwrap();
            let pem = key.to_pkcs8_pem().unwrap();
            let loaded = PrivateKey::from_text(&pem).unwrap();
            assert_eq!(loaded.public_key(), key.public_key());
            assert_eq!(loaded.default_algorithm(), alg);
            assert_eq!(loaded.kid(), None);

            let jwk = key.to_private_jwk(Some("kid-1"), None).unwrap();
            let json = serde_json::to_string(&jwk).unwrap();
            let loaded = PrivateKey::from_text(&json).unwrap();
            assert_eq!(loaded.public_key(), key.public_key());
            assert_eq!(loaded.kid(), Some("kid-1"));
        }
    }

    #[test]
    fn a_public_jwk_is_not_a_private_key() {
        let key = SigningKey::generate(JwsAlgorithm::EdDsa, 0).unwrap();
        let json = serde_json::to_string(&key.public_key().to_jwk(None, None)).unwrap();
        assert!(matches!(
            PrivateKey::from_text(&json),
            Err(KeyLoadError::Key(KeyError::PublicJwk))
        ));
        assert!(matches!(
            PrivateKey::from_text("{\"kty\":"),
            Err(KeyLoadError::Json(_))
        ));
    }
}
