//! Encryption at rest of the server's private signing keys: AES-256-GCM under a
//! master key given by `JWTGRANT_MASTER_KEY` (base64 of 32 bytes) or a key file, the
//! key id bound in as associated data. Without a master key, keys are stored as
//! plain PKCS#8 (fine for a single machine's data directory, not for a shared
//! database).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use zeroize::Zeroizing;

/// Marks a sealed record: magic, then nonce, then ciphertext and tag.
const MAGIC: &[u8; 4] = b"JGK1";

/// Why a key could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The master key is not 32 bytes of base64.
    #[error("the master key must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)")]
    BadMasterKey,
    /// A sealed key was found but no master key is configured.
    #[error("signing key {0} is encrypted: set JWTGRANT_MASTER_KEY (or master_key_file)")]
    MasterKeyRequired(String),
    /// The master key does not open this record (wrong key or tampered record).
    #[error("signing key {0} does not decrypt with this master key")]
    WrongMasterKey(String),
    /// The system random source failed.
    #[error("no randomness for a nonce")]
    Random,
}

/// Seals and opens private keys; a no-op without a master key.
pub struct KeySealer {
    key: Option<LessSafeKey>,
}

impl std::fmt::Debug for KeySealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "KeySealer({})",
            if self.key.is_some() {
                "master key set"
            } else {
                "plain"
            }
        )
    }
}

impl KeySealer {
    /// Stores keys as plain PKCS#8.
    pub fn plain() -> Self {
        KeySealer { key: None }
    }

    /// Seals with the master key given as base64 of 32 bytes (whitespace ignored).
    pub fn from_base64(text: &str) -> Result<Self, SealError> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let bytes = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map_err(|_| SealError::BadMasterKey)?,
        );
        if bytes.len() != 32 {
            return Err(SealError::BadMasterKey);
        }
        let key = UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| SealError::BadMasterKey)?;
        Ok(KeySealer {
            key: Some(LessSafeKey::new(key)),
        })
    }

    /// Whether a master key is configured.
    pub fn is_sealing(&self) -> bool {
        self.key.is_some()
    }

    /// Seals a PKCS#8 key for storage under `kid`.
    pub fn seal(&self, kid: &str, pkcs8: &[u8]) -> Result<Vec<u8>, SealError> {
        let Some(key) = &self.key else {
            return Ok(pkcs8.to_vec());
        };
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SealError::Random)?;
        let mut in_out = pkcs8.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(kid.as_bytes()),
            &mut in_out,
        )
        .map_err(|_| SealError::Random)?;
        Ok([&MAGIC[..], &nonce, &in_out].concat())
    }

    /// Opens a stored key: sealed records need the master key; plain ones (written
    /// before a master key was set) are read as they are.
    pub fn open(&self, kid: &str, stored: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let Some(sealed) = stored.strip_prefix(&MAGIC[..]) else {
            return Ok(Zeroizing::new(stored.to_vec()));
        };
        let key = self
            .key
            .as_ref()
            .ok_or_else(|| SealError::MasterKeyRequired(kid.to_owned()))?;
        let (nonce, ciphertext) = sealed
            .split_at_checked(NONCE_LEN)
            .ok_or_else(|| SealError::WrongMasterKey(kid.to_owned()))?;
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| SealError::WrongMasterKey(kid.to_owned()))?;
        let mut in_out = Zeroizing::new(ciphertext.to_vec());
        let plain_len = key
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut in_out)
            .map_err(|_| SealError::WrongMasterKey(kid.to_owned()))?
            .len();
        in_out.truncate(plain_len);
        Ok(in_out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn seals_and_opens_bound_to_the_kid() {
        let sealer = KeySealer::from_base64(MASTER).unwrap();
        let sealed = sealer.seal("k1", b"pkcs8 bytes").unwrap();
        assert!(sealed.starts_with(MAGIC) && !sealed.windows(5).any(|w| w == b"pkcs8"));
        assert_eq!(
            sealer.open("k1", &sealed).unwrap().as_slice(),
            b"pkcs8 bytes"
        );
        assert_eq!(
            sealer.open("k2", &sealed).err(),
            Some(SealError::WrongMasterKey("k2".into()))
        );
        let other = KeySealer::from_base64("AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
        assert!(other.open("k1", &sealed).is_err());
        assert_eq!(
            KeySealer::plain().open("k1", &sealed).err(),
            Some(SealError::MasterKeyRequired("k1".into()))
        );
    }

    #[test]
    fn plain_records_stay_readable_and_bad_master_keys_are_refused() {
        let sealer = KeySealer::from_base64(MASTER).unwrap();
        assert_eq!(
            sealer.open("k", b"\x30\x01plain").unwrap().as_slice(),
            b"\x30\x01plain"
        );
        assert_eq!(KeySealer::plain().seal("k", b"x").unwrap(), b"x");
        assert_eq!(
            KeySealer::from_base64("c2hvcnQ=").err(),
            Some(SealError::BadMasterKey)
        );
        assert_eq!(
            KeySealer::from_base64("!!").err(),
            Some(SealError::BadMasterKey)
        );
    }
}
