//! Secrets the server checks but never keeps in the clear: user passwords and client
//! secrets (argon2id, PHC strings), and the opaque values it hands out (authorization
//! codes, refresh tokens), stored only as their SHA-256. Argon2 runs on the blocking
//! pool; a client secret verified once is remembered by its SHA-256, so a busy
//! confidential client does not pay argon2 on every request.

use std::collections::HashMap;
use std::sync::RwLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use aws_lc_rs::digest;
use jwtgrant_core::b64;

/// A new random value of 32 bytes, base64url: authorization codes, refresh tokens,
/// client secrets, session ids.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // aws-lc-rs's system random source; on failure fall back to a v4 UUID pair,
    // still 244 random bits.
    if aws_lc_rs::rand::fill(&mut bytes).is_err() {
        return format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
    }
    b64::encode(bytes)
}

/// SHA-256 of an opaque value, base64url: what the store keeps of codes and
/// refresh tokens.
pub fn token_hash(value: &str) -> String {
    b64::encode(digest::digest(&digest::SHA256, value.as_bytes()))
}

fn argon2() -> Argon2<'static> {
    // OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password or secret with argon2id and a random salt (PHC string).
pub fn hash_secret(secret: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| "no randomness for the salt".to_owned())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2()
        .hash_password(secret.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `secret` matches the PHC string `hash` (constant time inside argon2).
pub fn verify_secret(hash: &str, secret: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| argon2().verify_password(secret.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

/// Argon2 verifications running at once. Each takes 19 MiB and tens of
/// milliseconds of a core; a burst (64 clients at once with a cold cache, or a
/// flood of wrong passwords) queues here instead of taking a gigabyte.
static ARGON2_PERMITS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// [`verify_secret`] on the blocking pool, at most two at a time.
pub async fn verify_secret_blocking(hash: String, secret: String) -> bool {
    let Ok(_permit) = ARGON2_PERMITS.acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || verify_secret(&hash, &secret))
        .await
        .unwrap_or(false)
}

/// A dummy hash verified when a login names no user, so that unknown and known
/// emails take the same time.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_secret("not a password of anyone").unwrap_or_default())
}

/// Client secrets verified before: (stored hash, SHA-256 of the presented secret).
/// A changed secret has a new hash, so its old entry never matches again.
#[derive(Debug, Default)]
pub struct VerifiedSecrets {
    entries: RwLock<HashMap<String, String>>,
}

/// Entries kept before the cache is simply cleared.
const MAX_VERIFIED_SECRETS: usize = 10_000;

impl VerifiedSecrets {
    /// Whether `secret` matches `hash`, from the cache or by argon2 on the blocking
    /// pool (then remembered).
    pub async fn verify(&self, hash: &str, secret: &str) -> bool {
        let digest = token_hash(secret);
        if self.known(hash, &digest) {
            return true;
        }
        let Ok(_permit) = ARGON2_PERMITS.acquire().await else {
            return false;
        };
        // Many requests with one cold secret: the first verifies, the rest find it.
        if self.known(hash, &digest) {
            return true;
        }
        let (owned_hash, owned_secret) = (hash.to_owned(), secret.to_owned());
        let ok = tokio::task::spawn_blocking(move || verify_secret(&owned_hash, &owned_secret))
            .await
            .unwrap_or(false);
        if ok && let Ok(mut entries) = self.entries.write() {
            if entries.len() >= MAX_VERIFIED_SECRETS {
                entries.clear();
            }
            entries.insert(hash.to_owned(), digest);
        }
        ok
    }

    fn known(&self, hash: &str, digest: &str) -> bool {
        self.entries
            .read()
            .ok()
            .and_then(|m| m.get(hash).cloned())
            .is_some_and(|d| {
                aws_lc_rs::constant_time::verify_slices_are_equal(d.as_bytes(), digest.as_bytes())
                    .is_ok()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_their_secret_only() {
        let hash = hash_secret("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_secret(&hash, "correct horse"));
        assert!(!verify_secret(&hash, "correct horsE"));
        assert!(!verify_secret("not a phc string", "x"));
        assert_ne!(hash_secret("correct horse").unwrap(), hash, "salted");
    }

    #[tokio::test]
    async fn the_cache_remembers_only_right_secrets() {
        let cache = VerifiedSecrets::default();
        let hash = hash_secret("s3cret").unwrap();
        assert!(!cache.verify(&hash, "wrong").await);
        assert!(cache.verify(&hash, "s3cret").await);
        assert!(cache.verify(&hash, "s3cret").await);
        assert!(!cache.verify(&hash, "wrong").await);
    }

    #[test]
    fn random_tokens_are_long_and_distinct() {
        let (a, b) = (random_token(), random_token());
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_eq!(token_hash("x"), token_hash("x"));
    }
}
