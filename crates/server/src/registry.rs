//! Each instance's cache of the registry: integrations with their keys parsed once,
//! users, consents and the signing keyring. A poll of the store's registry version
//! drops everything when anything changed, so an admin command takes effect within
//! the poll interval; a generation number keeps a load that raced a drop from
//! putting stale data back.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use jwtgrant_core::access_token::AccessTokenClaims;
use jwtgrant_core::keyring::Keyring;
use jwtgrant_core::model::{Consent, Integration, IntegrationKey};
use jwtgrant_core::trusted_issuer::{IssuerPolicy, TrustedIssuer};
use jwtgrant_core::{PublicKey, User};
use jwtgrant_proto::DEFAULT_SCOPES;
use jwtgrant_store::{AccountRecord, IntegrationRecord, Store, StoreResult, UserRecord};

use crate::clock::Clock;
use crate::sealing::KeySealer;
use crate::signing::{SigningKeyError, load_keyring};
use crate::telemetry::TARGET;
use tracing::Instrument as _;

/// Entries kept per map before the map is simply cleared (bounds memory under a
/// flood of unknown issuers).
const MAX_ENTRIES: usize = 100_000;

/// A user as the token endpoint and userinfo need it.
#[derive(Debug, Clone)]
pub struct CachedUser {
    /// The core's view.
    pub user: User,
    /// The full record, for userinfo.
    pub record: UserRecord,
}

#[derive(Default)]
struct Maps {
    generation: u64,
    integrations: HashMap<String, Option<Arc<Integration>>>,
    users: HashMap<String, Option<Arc<CachedUser>>>,
    consents: HashMap<(String, String), Option<Arc<Consent>>>,
    accounts: HashMap<String, Arc<Vec<AccountRecord>>>,
    /// Access tokens whose signature, issuer and audience were verified, keyed by
    /// the whole token; expiry is still checked on every use.
    verified_tokens: HashMap<Arc<str>, Arc<AccessTokenClaims>>,
    /// The metadata's `scopes_supported`, once listed.
    known_scopes: Option<Arc<Vec<String>>>,
    /// Every trusted issuer by its `iss`, once listed (the table is small).
    trusted_issuers: Option<Arc<HashMap<String, Arc<TrustedIssuer>>>>,
    /// The user an issuer's subject is linked to, by (issuer id, subject).
    linked_users: HashMap<(String, String), Option<String>>,
    /// The user id of an email address, for issuers that map by email.
    users_by_email: HashMap<String, Option<String>>,
}

/// The cache.
pub struct Registry {
    store: Arc<dyn Store>,
    sealer: Arc<KeySealer>,
    maps: RwLock<Maps>,
    keyring: RwLock<Arc<Keyring>>,
    version: RwLock<i64>,
    /// Revoked access tokens (`jti` -> expiry), read from the store by sequence.
    revoked: RwLock<HashMap<String, i64>>,
    /// The newest revocation read.
    revoked_seq: tokio::sync::Mutex<i64>,
    /// False from a failed poll until a successful one: while the store does not
    /// answer, no grant is issued from cached data alone.
    store_reachable: std::sync::atomic::AtomicBool,
    /// The server's clock: revocations of expired tokens are forgotten by it.
    clock: Clock,
}

impl Registry {
    /// Loads the keyring and the current version.
    pub async fn load(
        store: Arc<dyn Store>,
        sealer: Arc<KeySealer>,
        clock: Clock,
    ) -> Result<Self, SigningKeyError> {
        let version = store.registry_version().await?;
        let keyring = load_keyring(store.as_ref(), &sealer).await?;
        let registry = Registry {
            store,
            sealer,
            maps: RwLock::new(Maps::default()),
            keyring: RwLock::new(Arc::new(keyring)),
            version: RwLock::new(version),
            revoked: RwLock::new(HashMap::new()),
            revoked_seq: tokio::sync::Mutex::new(0),
            store_reachable: std::sync::atomic::AtomicBool::new(true),
            clock,
        };
        registry.poll_revocations().await?;
        Ok(registry)
    }

    /// Reads the revocations recorded since the last read (by any instance) and
    /// forgets those whose tokens have expired anyway.
    pub async fn poll_revocations(&self) -> StoreResult<()> {
        let mut seq = self.revoked_seq.lock().await;
        loop {
            let batch = self.store.revoked_tokens_since(*seq).await?;
            let Some(last) = batch.last() else { break };
            *seq = last.seq;
            let full = batch.len() >= 10_000;
            if let Ok(mut revoked) = self.revoked.write() {
                for token in batch {
                    revoked.insert(token.jti, token.expires_at);
                }
            }
            if !full {
                break;
            }
        }
        let now = self.clock.now();
        if let Ok(mut revoked) = self.revoked.write() {
            revoked.retain(|_, expires_at| *expires_at + 3600 > now);
        }
        Ok(())
    }

    /// Whether the access token with this `jti` was revoked.
    pub fn is_revoked(&self, jti: &str) -> bool {
        self.revoked
            .read()
            .map(|r| r.contains_key(jti))
            .unwrap_or(true)
    }

    /// Drops one cached consent (this instance just changed it).
    pub fn forget_consent(&self, user_id: &str, integration_key: &str) {
        if let Ok(mut maps) = self.maps.write() {
            maps.consents
                .remove(&(user_id.to_owned(), integration_key.to_owned()));
        }
    }

    /// Whether the last poll reached the store.
    pub fn store_reachable(&self) -> bool {
        self.store_reachable
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The signing keyring.
    pub fn keyring(&self) -> Arc<Keyring> {
        self.keyring
            .read()
            .map(|k| Arc::clone(&k))
            .unwrap_or_default()
    }

    /// Polls the store's version and, when it moved, drops the caches and reloads
    /// the keyring. Returns whether anything changed.
    pub async fn refresh(&self) -> Result<bool, SigningKeyError> {
        let polled = self.store.registry_version().await;
        self.store_reachable
            .store(polled.is_ok(), std::sync::atomic::Ordering::Relaxed);
        let version = polled?;
        self.poll_revocations().await?;
        let known = self.version.read().map(|v| *v).unwrap_or(i64::MIN);
        if version == known {
            return Ok(false);
        }
        let keyring = load_keyring(self.store.as_ref(), &self.sealer).await?;
        if let Ok(mut maps) = self.maps.write() {
            let generation = maps.generation + 1;
            *maps = Maps {
                generation,
                ..Maps::default()
            };
        }
        if let Ok(mut slot) = self.keyring.write() {
            *slot = Arc::new(keyring);
        }
        if let Ok(mut slot) = self.version.write() {
            *slot = version;
        }
        Ok(true)
    }

    fn generation(&self) -> u64 {
        self.maps.read().map(|m| m.generation).unwrap_or(0)
    }

    fn insert(&self, generation: u64, update: impl FnOnce(&mut Maps)) {
        if let Ok(mut maps) = self.maps.write()
            && maps.generation == generation
        {
            update(&mut maps);
        }
    }

    /// The integration with `key`, its keys parsed.
    pub async fn integration(&self, key: &str) -> StoreResult<Option<Arc<Integration>>> {
        let lookup =
            tracing::trace_span!(target: TARGET, "key_lookup", jwtgrant.lookup = "integration");
        async {
            if let Some(hit) = self
                .maps
                .read()
                .ok()
                .and_then(|m| m.integrations.get(key).cloned())
            {
                return Ok(hit);
            }
            let generation = self.generation();
            let loaded = self
                .store
                .integration(key)
                .instrument(store_span("integration"))
                .await?
                .map(|r| Arc::new(to_integration(r)));
            self.insert(generation, |maps| {
                if maps.integrations.len() >= MAX_ENTRIES {
                    maps.integrations.clear();
                }
                maps.integrations.insert(key.to_owned(), loaded.clone());
            });
            Ok(loaded)
        }
        .instrument(lookup)
        .await
    }

    /// The user with `id`.
    pub async fn user(&self, id: &str) -> StoreResult<Option<Arc<CachedUser>>> {
        let lookup = tracing::trace_span!(target: TARGET, "key_lookup", jwtgrant.lookup = "user");
        async {
            if let Some(hit) = self.maps.read().ok().and_then(|m| m.users.get(id).cloned()) {
                return Ok(hit);
            }
            let generation = self.generation();
            let loaded = self
                .store
                .user(id)
                .instrument(store_span("user"))
                .await?
                .map(|record| {
                    Arc::new(CachedUser {
                        user: User {
                            id: record.user_id.clone(),
                            active: record.active,
                        },
                        record,
                    })
                });
            self.insert(generation, |maps| {
                if maps.users.len() >= MAX_ENTRIES {
                    maps.users.clear();
                }
                maps.users.insert(id.to_owned(), loaded.clone());
            });
            Ok(loaded)
        }
        .instrument(lookup)
        .await
    }

    /// The consent of `user_id` for `integration_key`.
    pub async fn consent(
        &self,
        user_id: &str,
        integration_key: &str,
    ) -> StoreResult<Option<Arc<Consent>>> {
        let lookup =
            tracing::trace_span!(target: TARGET, "key_lookup", jwtgrant.lookup = "consent");
        async {
            let cache_key = (user_id.to_owned(), integration_key.to_owned());
            if let Some(hit) = self
                .maps
                .read()
                .ok()
                .and_then(|m| m.consents.get(&cache_key).cloned())
            {
                return Ok(hit);
            }
            let generation = self.generation();
            let loaded = self
                .store
                .consent(user_id, integration_key)
                .instrument(store_span("consent"))
                .await?
                .map(|record| {
                    Arc::new(Consent {
                        scopes: record.scopes,
                    })
                });
            self.insert(generation, |maps| {
                if maps.consents.len() >= MAX_ENTRIES {
                    maps.consents.clear();
                }
                maps.consents.insert(cache_key, loaded.clone());
            });
            Ok(loaded)
        }
        .instrument(lookup)
        .await
    }
}

impl Registry {
    /// A user's accounts, default first.
    pub async fn accounts(&self, user_id: &str) -> StoreResult<Arc<Vec<AccountRecord>>> {
        if let Some(hit) = self
            .maps
            .read()
            .ok()
            .and_then(|m| m.accounts.get(user_id).cloned())
        {
            return Ok(hit);
        }
        let generation = self.generation();
        let loaded = Arc::new(self.store.accounts(user_id).await?);
        self.insert(generation, |maps| {
            if maps.accounts.len() >= MAX_ENTRIES {
                maps.accounts.clear();
            }
            maps.accounts
                .insert(user_id.to_owned(), Arc::clone(&loaded));
        });
        Ok(loaded)
    }

    /// The scopes this server knows, sorted: the default ones and those some active
    /// integration may request (the metadata's `scopes_supported`).
    pub async fn known_scopes(&self) -> StoreResult<Arc<Vec<String>>> {
        if let Some(hit) = self.maps.read().ok().and_then(|m| m.known_scopes.clone()) {
            return Ok(hit);
        }
        let generation = self.generation();
        let mut scopes: BTreeSet<String> = DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect();
        for integration in self.store.list_integrations().await? {
            if integration.active {
                scopes.extend(integration.scopes);
            }
        }
        let loaded = Arc::new(scopes.into_iter().collect::<Vec<_>>());
        self.insert(generation, |maps| {
            maps.known_scopes = Some(Arc::clone(&loaded));
        });
        Ok(loaded)
    }

    /// The claims of an access token verified before, if it was.
    pub fn verified_token(&self, token: &str) -> Option<Arc<AccessTokenClaims>> {
        self.maps
            .read()
            .ok()
            .and_then(|m| m.verified_tokens.get(token).cloned())
    }

    /// Remembers a verified access token until the next registry change.
    pub fn remember_verified_token(&self, token: &str, claims: Arc<AccessTokenClaims>) {
        let generation = self.generation();
        self.insert(generation, |maps| {
            if maps.verified_tokens.len() >= MAX_ENTRIES {
                maps.verified_tokens.clear();
            }
            maps.verified_tokens.insert(Arc::from(token), claims);
        });
    }
}

impl Registry {
    /// The trusted issuer whose identifier is exactly `iss`, if one is registered
    /// (active or not: the core refuses a disabled or expired one by name).
    pub async fn trusted_issuer(&self, iss: &str) -> StoreResult<Option<Arc<TrustedIssuer>>> {
        let lookup =
            tracing::trace_span!(target: TARGET, "key_lookup", jwtgrant.lookup = "trusted_issuer");
        async { Ok(self.trusted_issuers().await?.get(iss).cloned()) }
            .instrument(lookup)
            .await
    }

    /// Every trusted issuer by `iss`. A stored policy that no longer compiles is
    /// left out (and logged): it can accept nothing.
    pub async fn trusted_issuers(&self) -> StoreResult<Arc<HashMap<String, Arc<TrustedIssuer>>>> {
        if let Some(hit) = self
            .maps
            .read()
            .ok()
            .and_then(|m| m.trusted_issuers.clone())
        {
            return Ok(hit);
        }
        let generation = self.generation();
        let mut issuers = HashMap::new();
        for record in self
            .store
            .trusted_issuers()
            .instrument(store_span("trusted_issuers"))
            .await?
        {
            let issuer = IssuerPolicy::from_json(&record.policy).and_then(|policy| {
                TrustedIssuer::new(
                    record.issuer_id.clone(),
                    record.issuer.clone(),
                    record.integration_key.clone(),
                    record.active,
                    policy,
                )
            });
            match issuer {
                Ok(issuer) => {
                    issuers.insert(record.issuer.clone(), Arc::new(issuer));
                }
                Err(error) => {
                    tracing::warn!(issuer_id = %record.issuer_id, %error, "stored trusted issuer does not load; ignored");
                }
            }
        }
        let loaded = Arc::new(issuers);
        self.insert(generation, |maps| {
            maps.trusted_issuers = Some(Arc::clone(&loaded));
        });
        Ok(loaded)
    }

    /// The user linked to `subject` of the issuer `issuer_id`.
    pub async fn linked_user(&self, issuer_id: &str, subject: &str) -> StoreResult<Option<String>> {
        let lookup =
            tracing::trace_span!(target: TARGET, "key_lookup", jwtgrant.lookup = "linked_user");
        async {
            let cache_key = (issuer_id.to_owned(), subject.to_owned());
            if let Some(hit) = self
                .maps
                .read()
                .ok()
                .and_then(|m| m.linked_users.get(&cache_key).cloned())
            {
                return Ok(hit);
            }
            let generation = self.generation();
            let loaded = self
                .store
                .linked_user(issuer_id, subject)
                .instrument(store_span("linked_user"))
                .await?;
            self.insert(generation, |maps| {
                if maps.linked_users.len() >= MAX_ENTRIES {
                    maps.linked_users.clear();
                }
                maps.linked_users.insert(cache_key, loaded.clone());
            });
            Ok(loaded)
        }
        .instrument(lookup)
        .await
    }

    /// The id of the user with this email address (without case).
    pub async fn user_id_by_email(&self, email: &str) -> StoreResult<Option<String>> {
        let lookup =
            tracing::trace_span!(target: TARGET, "key_lookup", jwtgrant.lookup = "user_by_email");
        async {
            let cache_key = email.to_lowercase();
            if let Some(hit) = self
                .maps
                .read()
                .ok()
                .and_then(|m| m.users_by_email.get(&cache_key).cloned())
            {
                return Ok(hit);
            }
            let generation = self.generation();
            let loaded = self
                .store
                .user_by_email(email)
                .instrument(store_span("user_by_email"))
                .await?
                .map(|u| u.user_id);
            self.insert(generation, |maps| {
                if maps.users_by_email.len() >= MAX_ENTRIES {
                    maps.users_by_email.clear();
                }
                maps.users_by_email.insert(cache_key, loaded.clone());
            });
            Ok(loaded)
        }
        .instrument(lookup)
        .await
    }
}

/// The span of a read from the store on a cache miss.
fn store_span(operation: &'static str) -> tracing::Span {
    tracing::trace_span!(target: TARGET, "store", jwtgrant.store = "registry", db.operation.name = operation)
}

/// Builds the core's integration from its record, parsing each key once. A key
/// that does not parse is left out (and logged): it can verify nothing.
fn to_integration(record: IntegrationRecord) -> Integration {
    let keys = record
        .keys
        .into_iter()
        .filter_map(|key| match PublicKey::from_text(&key.public_jwk) {
            Ok(public_key) => Some(IntegrationKey {
                kid: key.kid,
                public_key,
                active: key.active,
            }),
            Err(error) => {
                tracing::warn!(integration = %record.integration_key, kid = %key.kid, %error, "stored key does not parse; ignored");
                None
            }
        })
        .collect();
    Integration {
        key: record.integration_key,
        name: record.name,
        active: record.active,
        allow_application_tokens: record.allow_application_tokens,
        require_jti: record.require_jti,
        scopes: record.scopes,
        default_scopes: record.default_scopes,
        redirect_uris: record.redirect_uris,
        resources: record.resources,
        client_secret_hash: record.client_secret_hash,
        keys,
    }
}
