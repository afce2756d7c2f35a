//! The server's own signing keys over time: which one signs now, which are published
//! in the JWKS, which verify. A new key is published at once and signs only from its
//! activation time; an old key stays published until its last token has expired.

use std::sync::Arc;

use jwtgrant_proto::JwkSet;

use crate::alg::JwsAlgorithm;
use crate::keys::{PublicKey, SigningKey};

/// One signing key with its schedule.
#[derive(Debug, Clone)]
pub struct KeyringEntry {
    /// The key id in token headers and the JWKS.
    pub kid: String,
    /// The algorithm it signs with.
    pub alg: JwsAlgorithm,
    /// The private key.
    pub key: Arc<SigningKey>,
    /// Unix seconds from which it may sign.
    pub activates_at: i64,
}

/// The server's signing keys, sorted by activation time.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    entries: Vec<KeyringEntry>,
}

impl Keyring {
    /// Builds a keyring from entries in any order.
    pub fn new(mut entries: Vec<KeyringEntry>) -> Self {
        entries.sort_by(|a, b| a.activates_at.cmp(&b.activates_at).then(a.kid.cmp(&b.kid)));
        Keyring { entries }
    }

    /// The key that signs at `now`: the most recently activated key of `preferred`
    /// algorithm, else the most recently activated key of any algorithm.
    pub fn signing_key(&self, preferred: JwsAlgorithm, now: i64) -> Option<&KeyringEntry> {
        let activated = || {
            self.entries
                .iter()
                .rev()
                .filter(move |e| e.activates_at <= now)
        };
        activated()
            .find(|e| e.alg == preferred)
            .or_else(|| activated().next())
    }

    /// Whether a key of `alg` has been activated or is scheduled.
    pub fn has_algorithm(&self, alg: JwsAlgorithm) -> bool {
        self.entries.iter().any(|e| e.alg == alg)
    }

    /// The keys still published at `now`: all but those superseded more than
    /// `retire_after_secs` ago (the longest a token they signed can live).
    pub fn published(
        &self,
        now: i64,
        retire_after_secs: i64,
    ) -> impl Iterator<Item = &KeyringEntry> {
        let newest_activated = self
            .entries
            .iter()
            .rev()
            .find(|e| e.activates_at <= now)
            .map(|e| e.activates_at);
        self.entries
            .iter()
            .enumerate()
            .filter(move |(i, entry)| {
                let superseded_at = self
                    .entries
                    .iter()
                    .skip(i + 1)
                    .map(|later| later.activates_at)
                    .find(|at| *at <= now && *at > entry.activates_at);
                match (superseded_at, newest_activated) {
                    (Some(at), _) => now - at <= retire_after_secs,
                    _ => true,
                }
            })
            .map(|(_, entry)| entry)
    }

    /// The published key with `kid`, for verifying our own tokens.
    pub fn verification_key(
        &self,
        kid: &str,
        now: i64,
        retire_after_secs: i64,
    ) -> Option<(&PublicKey, Option<JwsAlgorithm>)> {
        self.published(now, retire_after_secs)
            .find(|e| e.kid == kid)
            .map(|e| (e.key.public_key(), Some(e.alg)))
    }

    /// The JWKS document.
    pub fn jwks(&self, now: i64, retire_after_secs: i64) -> JwkSet {
        JwkSet {
            keys: self
                .published(now, retire_after_secs)
                .map(|e| e.key.public_key().to_jwk(Some(&e.kid), Some(e.alg)))
                .collect(),
        }
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> &[KeyringEntry] {
        &self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kid: &str, alg: JwsAlgorithm, activates_at: i64) -> KeyringEntry {
        KeyringEntry {
            kid: kid.into(),
            alg,
            key: Arc::new(SigningKey::generate(alg, 2048).unwrap_or_else(|e| unreachable!("{e}"))),
            activates_at,
        }
    }

    #[test]
    fn new_key_is_published_before_it_signs_and_old_key_retires_after_its_tokens() {
        let ring = Keyring::new(vec![
            entry("old", JwsAlgorithm::Es256, 0),
            entry("new", JwsAlgorithm::Es256, 1000),
        ]);
        let kids = |now| {
            ring.published(now, 3600)
                .map(|e| e.kid.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ring.signing_key(JwsAlgorithm::Es256, 500)
                .map(|e| e.kid.as_str()),
            Some("old")
        );
        assert_eq!(kids(500), ["old", "new"]);
        assert_eq!(
            ring.signing_key(JwsAlgorithm::Es256, 1000)
                .map(|e| e.kid.as_str()),
            Some("new")
        );
        assert_eq!(kids(4600), ["old", "new"]);
        assert_eq!(kids(4601), ["new"]);
    }

    #[test]
    fn preferred_algorithm_wins_else_newest() {
        let ring = Keyring::new(vec![
            entry("ec", JwsAlgorithm::Es256, 0),
            entry("ed", JwsAlgorithm::EdDsa, 10),
        ]);
        assert_eq!(
            ring.signing_key(JwsAlgorithm::Es256, 20)
                .map(|e| e.kid.as_str()),
            Some("ec")
        );
        assert_eq!(
            ring.signing_key(JwsAlgorithm::Rs256, 20)
                .map(|e| e.kid.as_str()),
            Some("ed")
        );
        assert!(ring.signing_key(JwsAlgorithm::Es256, -1).is_none());
    }
}
