//! What every request handler shares: the validated config and what derives from it
//! (issuer, accepted audiences), the store, the registry cache and the metrics.

use std::net::SocketAddr;
use std::sync::Arc;

use jwtgrant_core::access_token::AccessTokenSettings;
use jwtgrant_core::{AssertionPolicy, Integration};
use jwtgrant_store::Store;

use crate::audit::AuditTrail;
use crate::client_documents::{ClientDocumentError, ClientDocuments};
use crate::clock::Clock;
use crate::config::ServerConfig;
use crate::credentials::VerifiedSecrets;
use crate::error::TokenEndpointError;
use crate::fetch::SafeFetcher;
use crate::issuer_keys::IssuerKeys;
use crate::metrics::Metrics;
use crate::ratelimit::Decision;
use crate::ratelimit::{LocalRateLimiter, RateLimiter, RedisRateLimiter};
use crate::registry::Registry;
use crate::replay::{JournalReplay, RedisReplay, ReplayCache, StoreReplay, redis_connection};
use crate::sealing::KeySealer;
use crate::session::{LoginThrottle, SessionKeys};
use crate::signing::{SigningKeyError, ensure_signing_key};

/// Shared state of one server instance.
pub struct AppState {
    /// The validated configuration.
    pub config: ServerConfig,
    /// The issuer URL (no trailing slash).
    pub issuer: String,
    /// Accepted assertion audiences and time limits.
    pub policy: AssertionPolicy,
    /// Accepted client assertion (`private_key_jwt`) audiences and time limits.
    pub client_policy: AssertionPolicy,
    /// What every access token carries.
    pub token_settings: AccessTokenSettings,
    /// The store.
    pub store: Arc<dyn Store>,
    /// The registry cache.
    pub registry: Registry,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// Where used `jti`s are recorded.
    pub replay: Arc<dyn ReplayCache>,
    /// Request counting per client address and per integration.
    pub rate_limiter: Arc<dyn RateLimiter>,
    /// Seals the signing keys this instance generates.
    pub sealer: Arc<KeySealer>,
    /// Signs the browser session cookies (shared by every instance).
    pub session_keys: SessionKeys,
    /// Failed sign-ins per account and per address.
    pub login_throttle: LoginThrottle,
    /// Client secrets verified before.
    pub verified_secrets: VerifiedSecrets,
    /// Where every request and background task reads `now`: the system clock,
    /// which tests move forward instead of sleeping.
    pub clock: Clock,
    /// Trusted issuers' keys fetched by URL, cached per issuer.
    pub issuer_keys: IssuerKeys,
    /// With `--client-metadata-documents`: clients known by their document.
    pub client_documents: Option<ClientDocuments>,
    /// Where every decision is recorded.
    pub audit: Arc<AuditTrail>,
}

/// Why the client a `client_id` names could not be found.
#[derive(Debug, thiserror::Error)]
pub enum ClientLookupError {
    /// The store did not answer.
    #[error(transparent)]
    Store(#[from] jwtgrant_store::StoreError),
    /// Its client metadata document cannot be used.
    #[error(transparent)]
    Document(#[from] ClientDocumentError),
}

impl AppState {
    /// Prepares the state for a server bound to `bound`: derives the issuer, makes
    /// sure a signing key exists and loads the registry.
    pub async fn new(
        config: ServerConfig,
        store: Arc<dyn Store>,
        bound: SocketAddr,
    ) -> Result<Arc<Self>, SigningKeyError> {
        let issuer = issuer_url(&config, bound);
        let (policy, client_policy) = assertion_policies(&config, &issuer);
        let token_settings = AccessTokenSettings {
            issuer: issuer.clone(),
            audience: config
                .access_token_audience
                .clone()
                .unwrap_or_else(|| issuer.clone()),
            lifetime_secs: config.access_token_lifetime_secs,
        };
        let sealer = Arc::new(config.key_sealer());
        if config.master_key.is_none() && store.is_shared() {
            tracing::warn!(
                "the signing keys' private halves are stored unencrypted in the shared \
                 database: set JWTGRANT_MASTER_KEY (or master_key_file) on every instance"
            );
        }
        let fetcher = SafeFetcher::new(config.fetch_policy())
            .map_err(|e| SigningKeyError::Startup(format!("the issuer key fetcher: {e}")))?;
        let issuer_keys = IssuerKeys::new(fetcher);
        let client_documents = match &config.client_metadata_template {
            Some(_) => Some(ClientDocuments::new(config.fetch_policy()).map_err(|e| {
                SigningKeyError::Startup(format!("the client metadata document fetcher: {e}"))
            })?),
            None => None,
        };
        let clock = Clock::system();
        ensure_signing_key(
            store.as_ref(),
            &sealer,
            config.access_token_alg,
            clock.now(),
        )
        .await?;
        let registry =
            Registry::load(Arc::clone(&store), Arc::clone(&sealer), clock.clone()).await?;
        let session_keys = SessionKeys::load(store.as_ref(), &sealer, clock.now()).await?;
        let (replay, rate_limiter, login_throttle): (
            Arc<dyn ReplayCache>,
            Arc<dyn RateLimiter>,
            LoginThrottle,
        ) = match &config.redis {
            Some(url) => {
                let connection = redis_connection(url).await?;
                let prefix = &config.redis_key_prefix;
                (
                    Arc::new(RedisReplay::new(connection.clone(), prefix)),
                    Arc::new(RedisRateLimiter::new(connection.clone(), prefix)),
                    LoginThrottle::Redis {
                        connection,
                        prefix: prefix.clone(),
                    },
                )
            }
            None => {
                let replay: Arc<dyn ReplayCache> = match store.replay_journal_dir() {
                    // One instance on a store of its own: the in-memory set and its
                    // journal, carrying over what the store remembered.
                    Some(dir) => {
                        let now = clock.now();
                        // Rows an older version wrote: the expired ones go, the live
                        // ones are carried over into a new journal.
                        store.sweep_jtis(now).await?;
                        let kept = store.live_jtis(now).await?;
                        let dir = dir.to_path_buf();
                        Arc::new(
                            tokio::task::spawn_blocking(move || {
                                JournalReplay::open(&dir, &kept, now)
                            })
                            .await
                            .map_err(|e| {
                                jwtgrant_store::StoreError::Unavailable(e.to_string())
                            })??,
                        )
                    }
                    None => Arc::new(StoreReplay::spawn(Arc::clone(&store))),
                };
                (
                    replay,
                    Arc::new(LocalRateLimiter::default()),
                    LoginThrottle::default(),
                )
            }
        };
        let audit = Arc::new(AuditTrail::new(
            config.audit,
            config.audit_buffer_events,
            config.audit_retention_days,
            config.log_format == crate::config::LogFormat::Json,
        ));
        Ok(Arc::new(AppState {
            audit,
            config,
            issuer,
            policy,
            client_policy,
            token_settings,
            registry,
            metrics: Metrics::default(),
            replay,
            rate_limiter,
            sealer,
            store,
            session_keys,
            login_throttle,
            verified_secrets: VerifiedSecrets::default(),
            clock,
            issuer_keys,
            client_documents,
        }))
    }

    /// The client `client_id` names: a registered integration, or, with
    /// `--client-metadata-documents`, a public client known by the metadata document
    /// at that URL, under the template integration (which must exist and be active).
    pub async fn client(
        &self,
        client_id: &str,
    ) -> Result<Option<Arc<Integration>>, ClientLookupError> {
        if let Some(integration) = self.registry.integration(client_id).await? {
            return Ok(Some(integration));
        }
        let (Some(documents), Some(template_key)) = (
            &self.client_documents,
            &self.config.client_metadata_template,
        ) else {
            return Ok(None);
        };
        if !ClientDocuments::names_a_document(client_id) {
            return Ok(None);
        }
        let Some(template) = self
            .registry
            .integration(template_key)
            .await?
            .filter(|t| t.active)
        else {
            tracing::warn!(template = %template_key, "client_metadata_template names no active integration");
            return Ok(None);
        };
        let client = documents
            .client(client_id, &template, self.clock.now())
            .await?;
        Ok(Some(client))
    }

    /// Counts one request for the key `{kind}:{id}`; refuses with 429 past
    /// `per_second`. A limit of 0 is none, and builds no key.
    pub async fn rate_limit(
        &self,
        kind: &str,
        id: impl std::fmt::Display,
        per_second: u32,
    ) -> Result<(), TokenEndpointError> {
        if per_second == 0 {
            return Ok(());
        }
        let key = format!("{kind}:{id}");
        match self.rate_limiter.check(&key, per_second).await? {
            Decision::Allowed => Ok(()),
            Decision::Limited { retry_after_secs } => {
                Err(TokenEndpointError::RateLimited { retry_after_secs })
            }
        }
    }

    /// The token endpoint URL.
    pub fn token_endpoint(&self) -> String {
        format!("{}/oauth/token", self.issuer)
    }

    /// How long after being superseded a signing key stays published: the longest
    /// a token it signed can live, plus leeway.
    pub fn key_retirement_secs(&self) -> i64 {
        self.config.access_token_lifetime_secs + self.config.clock_leeway_secs
    }

    /// The URL that sends a user to consent to `integration_key` for `scopes`.
    pub fn consent_url(
        &self,
        integration_key: &str,
        redirect_uri: Option<&str>,
        scopes: &[String],
    ) -> String {
        jwtgrant_proto::consent_url(&self.issuer, integration_key, scopes, redirect_uri)
    }
}

/// The issuer URL of a server bound to `bound`: `public_url`, or the bound address
/// (loopback when it is unspecified).
pub fn issuer_url(config: &ServerConfig, bound: SocketAddr) -> String {
    config.public_url.clone().unwrap_or_else(|| {
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let host = if bound.ip().is_unspecified() {
            SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), bound.port())
        } else {
            bound
        };
        format!("{scheme}://{host}")
    })
}

/// The policies of assertions (the JWT bearer grant's) and of client assertions
/// (`private_key_jwt`) at `issuer`, from the configuration.
pub fn assertion_policies(
    config: &ServerConfig,
    issuer: &str,
) -> (AssertionPolicy, AssertionPolicy) {
    let mut accepted_audiences = vec![
        issuer.to_owned(),
        format!("{issuer}/"),
        format!("{issuer}/oauth/token"),
    ];
    // The bare host as the SDK's presets spell it (default port dropped).
    accepted_audiences.extend(jwtgrant_proto::bare_host(issuer));
    accepted_audiences.extend(config.accept_audiences.iter().cloned());
    let policy = AssertionPolicy {
        accepted_audiences,
        leeway_secs: config.clock_leeway_secs,
        max_lifetime_secs: config.max_assertion_lifetime_secs,
    };
    // A client assertion names the issuer; the token endpoint URL too unless strict
    // (rfc7523bis, and the audience-injection advisories of 2025).
    let mut client_audiences = vec![issuer.to_owned()];
    if !config.strict_client_assertion_audience {
        client_audiences.push(format!("{issuer}/oauth/token"));
    }
    let client_policy = AssertionPolicy {
        accepted_audiences: client_audiences,
        leeway_secs: config.clock_leeway_secs,
        max_lifetime_secs: config.max_client_assertion_lifetime_secs,
    };
    (policy, client_policy)
}
