//! The server's signing keys in the store: generated on first start, rotated on
//! command, loaded into the core's [`Keyring`].

use std::sync::Arc;

use jwtgrant_core::keyring::{Keyring, KeyringEntry};
use jwtgrant_core::{JwsAlgorithm, SigningKey};
use jwtgrant_store::{SigningKeyRecord, Store, StoreError};

use crate::sealing::{KeySealer, SealError};

/// Why a signing key could not be made or loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigningKeyError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Sealing or opening with the master key failed.
    #[error(transparent)]
    Seal(#[from] SealError),
    /// Something else the server needs at start could not be built.
    #[error("cannot start: {0}")]
    Startup(String),
    /// Key generation or parsing failed.
    #[error("signing key {kid}: {reason}")]
    Key {
        /// The key id.
        kid: String,
        /// What failed.
        reason: String,
    },
}

/// Generates a key for `alg` that signs from `activates_at`, and stores it.
pub async fn add_signing_key(
    store: &dyn Store,
    sealer: &KeySealer,
    alg: JwsAlgorithm,
    activates_at: i64,
    now: i64,
) -> Result<String, SigningKeyError> {
    let pkcs8 = generate_pkcs8(alg)?;
    store_signing_key(store, sealer, alg, &pkcs8, activates_at, now).await
}

fn generate_pkcs8(alg: JwsAlgorithm) -> Result<zeroize::Zeroizing<Vec<u8>>, SigningKeyError> {
    let key = SigningKey::generate(alg, 2048).map_err(|e| SigningKeyError::Key {
        kid: String::new(),
        reason: e.to_string(),
    })?;
    key.to_pkcs8_der().map_err(|e| SigningKeyError::Key {
        kid: key.public_key().thumbprint().to_owned(),
        reason: e.to_string(),
    })
}

/// Stores a PKCS#8 key (sealed) under its thumbprint; returns the kid.
async fn store_signing_key(
    store: &dyn Store,
    sealer: &KeySealer,
    alg: JwsAlgorithm,
    pkcs8: &[u8],
    activates_at: i64,
    now: i64,
) -> Result<String, SigningKeyError> {
    let key = SigningKey::from_pkcs8_der(pkcs8).map_err(|e| SigningKeyError::Key {
        kid: String::new(),
        reason: e.to_string(),
    })?;
    let kid = key.public_key().thumbprint().to_owned();
    store
        .add_signing_key(SigningKeyRecord {
            kid: kid.clone(),
            alg: alg.as_str().to_owned(),
            private_key_pkcs8: sealer.seal(&kid, pkcs8)?,
            created_at: now,
            activates_at,
        })
        .await?;
    Ok(kid)
}

/// Makes sure a key of `alg` exists, generating one that signs at once if not.
/// Instances starting together on an empty database agree on one key: each offers
/// its candidate as a server secret, the first stored wins, and every instance
/// stores that one (a copy already stored is fine).
pub async fn ensure_signing_key(
    store: &dyn Store,
    sealer: &KeySealer,
    alg: JwsAlgorithm,
    now: i64,
) -> Result<(), SigningKeyError> {
    let existing = store.signing_keys().await?;
    if existing.iter().any(|k| k.alg == alg.as_str()) {
        return Ok(());
    }
    let name = format!("initial-signing-key:{}", alg.as_str());
    let candidate = sealer.seal(&name, &generate_pkcs8(alg)?)?;
    let agreed = store.server_secret(&name, &candidate, now).await?;
    let pkcs8 = sealer.open(&name, &agreed)?;
    match store_signing_key(store, sealer, alg, &pkcs8, now, now).await {
        Ok(kid) => {
            tracing::info!(%kid, alg = alg.as_str(), "generated the server's signing key");
            Ok(())
        }
        Err(SigningKeyError::Store(StoreError::Conflict(_))) => Ok(()),
        Err(error) => Err(error),
    }
}

/// Loads every stored signing key into a keyring.
pub async fn load_keyring(
    store: &dyn Store,
    sealer: &KeySealer,
) -> Result<Keyring, SigningKeyError> {
    let records = store.signing_keys().await?;
    let mut entries = Vec::with_capacity(records.len());
    for record in records {
        let fail = |reason: String| SigningKeyError::Key {
            kid: record.kid.clone(),
            reason,
        };
        let alg = JwsAlgorithm::from_name(&record.alg)
            .ok_or_else(|| fail(format!("unknown alg {}", record.alg)))?;
        let pkcs8 = sealer.open(&record.kid, &record.private_key_pkcs8)?;
        let key = SigningKey::from_pkcs8_der(&pkcs8).map_err(|e| fail(e.to_string()))?;
        if !alg.key_type_allowed(key.key_type()) {
            return Err(fail(format!(
                "alg {alg} does not suit a {} key",
                key.key_type()
            )));
        }
        entries.push(KeyringEntry {
            kid: record.kid,
            alg,
            key: Arc::new(key),
            activates_at: record.activates_at,
        });
    }
    Ok(Keyring::new(entries))
}
