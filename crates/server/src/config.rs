//! Server configuration in two steps: [`RawConfig`] as read from flags, `JWTGRANT_*`
//! variables and a TOML file (each option defined once, in [`options`]), then
//! [`ServerConfig::from_raw`] validates it into typed settings whose errors name the
//! bad field.

pub mod options;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use jwtgrant_core::JwsAlgorithm;
use jwtgrant_store::StoreLocation;

use crate::client_addr::TrustedProxies;
use crate::sealing::KeySealer;
use options::Opt;
pub use options::RawConfig;

/// A configuration value that cannot be used, naming its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {field}: {reason}")]
pub struct ConfigError {
    /// The field, as spelt in the config file.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        field,
        reason: reason.into(),
    }
}

/// Native TLS files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// Validated server settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Address to listen on (port 0 picks one).
    pub listen: SocketAddr,
    /// The issuer URL without a trailing slash; `None` derives it from the bound address.
    pub public_url: Option<String>,
    /// Where the store lives.
    pub store: StoreLocation,
    /// Extra accepted assertion audiences.
    pub accept_audiences: Vec<String>,
    /// Native TLS, when configured.
    pub tls: Option<TlsFiles>,
    /// Clock leeway in seconds.
    pub clock_leeway_secs: i64,
    /// Longest accepted assertion lifetime in seconds.
    pub max_assertion_lifetime_secs: i64,
    /// Longest accepted client assertion lifetime in seconds.
    pub max_client_assertion_lifetime_secs: i64,
    /// Whether a client assertion's audience must be the issuer alone.
    pub strict_client_assertion_audience: bool,
    /// Access token lifetime in seconds.
    pub access_token_lifetime_secs: i64,
    /// Refresh token lifetime in seconds.
    pub refresh_token_lifetime_secs: i64,
    /// Access token algorithm.
    pub access_token_alg: JwsAlgorithm,
    /// The `aud` of access tokens; `None` means the issuer URL.
    pub access_token_audience: Option<String>,
    /// Largest request body in bytes.
    pub body_limit_bytes: usize,
    /// Seconds between a key rotation and the new key signing.
    pub key_rotation_delay_secs: i64,
    /// How often the registry version is polled.
    pub registry_poll: std::time::Duration,
    /// Run pending migrations when the store opens.
    pub migrate_on_start: bool,
    /// Redis for the replay cache and shared rate limits, when configured.
    pub redis: Option<String>,
    /// What every Redis key starts with (default `jwtgrant:`): deployments, or
    /// tests, sharing one Redis keep apart by it.
    pub redis_key_prefix: String,
    /// The master key that encrypts signing keys at rest, when configured.
    pub master_key: Option<MasterKey>,
    /// Token requests per second from one client address (0: no limit).
    pub rate_limit_per_client: u32,
    /// Token requests per second for one integration (0: no limit).
    pub rate_limit_per_integration: u32,
    /// Whether trusted issuers' URLs may be http and reach loopback, link-local and
    /// private addresses (development and tests).
    pub allow_insecure_issuer_urls: bool,
    /// With `--client-metadata-documents`: the template integration of clients known
    /// by their metadata document; `None`, such `client_id`s are unknown clients.
    pub client_metadata_template: Option<String>,
    /// The timeout of one fetch of a trusted issuer's keys or metadata.
    pub issuer_fetch_timeout: std::time::Duration,
    /// The largest body of such a fetch, in bytes.
    pub issuer_fetch_max_bytes: usize,
    /// Whether decisions are recorded in the audit trail.
    pub audit: bool,
    /// How long audit events are kept, in days.
    pub audit_retention_days: u64,
    /// How many audit events may wait to be written.
    pub audit_buffer_events: usize,
    /// Runtime worker threads; `None`, one per core. Read by the binary before the
    /// runtime starts.
    pub worker_threads: Option<usize>,
    /// How the binary writes its log lines.
    pub log_format: LogFormat,
    /// How long each phase of a connection may take, and how many may be open.
    pub connections: ConnectionLimits,
    /// How long a shutdown lets requests in flight finish.
    pub shutdown_grace: Duration,
    /// The peers whose `X-Forwarded-For` and `Forwarded` headers name the client.
    pub trusted_proxies: TrustedProxies,
    /// Where traces are posted (a collector's `.../v1/traces`), when they are
    /// exported at all: `None` builds no exporter and adds no request span.
    pub otlp_endpoint: Option<String>,
}

/// Bounds on every connection, plain and TLS alike, so that slow or stalled
/// clients cannot hold descriptors and memory for ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From a request's first byte (or the TCP accept, for a TLS handshake) until
    /// its headers are in.
    pub header_timeout: Duration,
    /// From the headers until the whole body is in.
    pub body_timeout: Duration,
    /// With no request on the connection.
    pub idle_timeout: Duration,
    /// From the headers until the answer.
    pub request_timeout: Duration,
    /// Connections open at once; more are answered 503 and closed.
    pub max_connections: usize,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// Every format, for [`options::LOG_FORMAT`].
    pub const ALL: [LogFormat; 2] = [LogFormat::Text, LogFormat::Json];

    /// The name operators write.
    pub const fn as_str(self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

/// Default token requests per second per client address: generous, so that only
/// floods are refused.
pub const DEFAULT_RATE_LIMIT_PER_CLIENT: u32 = 20_000;
/// Default token requests per second per integration.
pub const DEFAULT_RATE_LIMIT_PER_INTEGRATION: u32 = 20_000;

/// The default start of every Redis key.
pub const DEFAULT_REDIS_KEY_PREFIX: &str = "jwtgrant:";

/// The default data directory.
pub const DEFAULT_DATA_DIR: &str = "./jwtgrant-data";
/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

impl ServerConfig {
    /// Validates raw settings, applying the defaults of [`options::OPTIONS`].
    pub fn from_raw(raw: RawConfig) -> Result<Self, ConfigError> {
        use options::*;
        let raw = raw.with_defaults()?;

        let listen = raw.listen.unwrap_or_default();
        let listen: SocketAddr = listen.parse().map_err(|_| {
            invalid(
                LISTEN.name,
                format!("'{listen}' is not an address like 127.0.0.1:8080"),
            )
        })?;

        let public_url = raw
            .public_url
            .map(|url| validate_url(PUBLIC_URL.name, &url))
            .transpose()?;

        let accept_audiences = raw.accept_audience.unwrap_or_default();
        if accept_audiences.iter().any(|a| a.trim().is_empty()) {
            return Err(invalid(ACCEPT_AUDIENCE.name, "must not be empty"));
        }

        let tls = match (raw.tls_cert, raw.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            (Some(_), None) => return Err(invalid(TLS_KEY.name, "is required with tls_cert")),
            (None, Some(_)) => return Err(invalid(TLS_CERT.name, "is required with tls_key")),
        };

        let access_token_audience = match raw.access_token_audience {
            Some(aud) if aud.trim().is_empty() => {
                return Err(invalid(ACCESS_TOKEN_AUDIENCE.name, "must not be empty"));
            }
            other => other,
        };

        let client_metadata_template = match (
            raw.client_metadata_documents.unwrap_or_default(),
            raw.client_metadata_template,
        ) {
            (true, Some(key)) if !key.trim().is_empty() => Some(key),
            (true, _) => {
                return Err(invalid(
                    CLIENT_METADATA_TEMPLATE.name,
                    "is required with client_metadata_documents",
                ));
            }
            (false, _) => None,
        };

        let redis = match raw.redis {
            Some(url) if !(url.starts_with("redis://") || url.starts_with("rediss://")) => {
                return Err(invalid(REDIS.name, "must be a redis:// or rediss:// URL"));
            }
            other => other,
        };

        let redis_key_prefix = raw.redis_key_prefix.unwrap_or_default();
        if redis_key_prefix.is_empty() || redis_key_prefix.contains(char::is_whitespace) {
            return Err(invalid(
                REDIS_KEY_PREFIX.name,
                "must be non-empty, without whitespace",
            ));
        }

        Ok(ServerConfig {
            listen,
            public_url,
            store: store_location(raw.database, raw.data_dir)?,
            accept_audiences,
            tls,
            clock_leeway_secs: seconds(&CLOCK_LEEWAY_SECS, raw.clock_leeway_secs)?,
            max_assertion_lifetime_secs: seconds(
                &MAX_ASSERTION_LIFETIME_SECS,
                raw.max_assertion_lifetime_secs,
            )?,
            max_client_assertion_lifetime_secs: seconds(
                &MAX_CLIENT_ASSERTION_LIFETIME_SECS,
                raw.max_client_assertion_lifetime_secs,
            )?,
            strict_client_assertion_audience: raw
                .strict_client_assertion_audience
                .unwrap_or_default(),
            access_token_lifetime_secs: seconds(
                &ACCESS_TOKEN_LIFETIME_SECS,
                raw.access_token_lifetime_secs,
            )?,
            refresh_token_lifetime_secs: seconds(
                &REFRESH_TOKEN_LIFETIME_SECS,
                raw.refresh_token_lifetime_secs,
            )?,
            access_token_alg: one_of(
                &ACCESS_TOKEN_ALG,
                raw.access_token_alg,
                &JwsAlgorithm::ACCESS_TOKEN,
                JwsAlgorithm::as_str,
            )?,
            access_token_audience,
            body_limit_bytes: number(&BODY_LIMIT_BYTES, raw.body_limit_bytes)?,
            key_rotation_delay_secs: seconds(
                &KEY_ROTATION_DELAY_SECS,
                raw.key_rotation_delay_secs,
            )?,
            registry_poll: std::time::Duration::from_millis(number(
                &REGISTRY_POLL_MS,
                raw.registry_poll_ms,
            )?),
            migrate_on_start: !raw.no_migrate.unwrap_or_default(),
            redis,
            redis_key_prefix,
            master_key: master_key(raw.master_key, raw.master_key_file)?,
            rate_limit_per_client: number(&RATE_LIMIT_PER_CLIENT, raw.rate_limit_per_client)?,
            rate_limit_per_integration: number(
                &RATE_LIMIT_PER_INTEGRATION,
                raw.rate_limit_per_integration,
            )?,
            allow_insecure_issuer_urls: raw.allow_insecure_issuer_urls.unwrap_or_default(),
            client_metadata_template,
            issuer_fetch_timeout: std::time::Duration::from_secs(number(
                &ISSUER_FETCH_TIMEOUT_SECS,
                raw.issuer_fetch_timeout_secs,
            )?),
            issuer_fetch_max_bytes: number(&ISSUER_FETCH_MAX_BYTES, raw.issuer_fetch_max_bytes)?,
            audit: !raw.no_audit.unwrap_or_default(),
            audit_retention_days: number(&AUDIT_RETENTION_DAYS, raw.audit_retention_days)?,
            audit_buffer_events: number(&AUDIT_BUFFER_EVENTS, raw.audit_buffer_events)?,
            worker_threads: raw
                .worker_threads
                .map(|n| {
                    usize::try_from(n).map_err(|_| invalid(WORKER_THREADS.name, "is too large"))
                })
                .transpose()?,
            log_format: one_of(
                &LOG_FORMAT,
                raw.log_format,
                &LogFormat::ALL,
                LogFormat::as_str,
            )?,
            connections: ConnectionLimits {
                header_timeout: duration(&HEADER_TIMEOUT_SECS, raw.header_timeout_secs)?,
                body_timeout: duration(&BODY_TIMEOUT_SECS, raw.body_timeout_secs)?,
                idle_timeout: duration(&IDLE_TIMEOUT_SECS, raw.idle_timeout_secs)?,
                request_timeout: duration(&REQUEST_TIMEOUT_SECS, raw.request_timeout_secs)?,
                max_connections: number(&MAX_CONNECTIONS, raw.max_connections)?,
            },
            shutdown_grace: duration(&SHUTDOWN_GRACE_SECS, raw.shutdown_grace_secs)?,
            trusted_proxies: TrustedProxies::parse(&raw.trusted_proxy.unwrap_or_default())
                .map_err(|reason| invalid(TRUSTED_PROXY.name, reason))?,
            otlp_endpoint: raw
                .otlp_endpoint
                .map(|url| validate_url(OTLP_ENDPOINT.name, &url))
                .transpose()?
                .map(|url| crate::telemetry::traces_url(&url)),
        })
    }
}

/// Where the store is: the database URL if one is given, else the data directory.
fn store_location(
    database: Option<String>,
    data_dir: Option<PathBuf>,
) -> Result<StoreLocation, ConfigError> {
    Ok(match database {
        Some(url) => StoreLocation::from_url(url)
            .map_err(|e| invalid(options::DATABASE.name, e.to_string()))?,
        None => StoreLocation::DataDir(data_dir.unwrap_or_else(|| DEFAULT_DATA_DIR.into())),
    })
}

/// The master key, kept as given (base64) and checked once here.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterKey(zeroize::Zeroizing<String>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// The sealer this key makes.
    pub fn sealer(&self) -> Result<KeySealer, crate::sealing::SealError> {
        KeySealer::from_base64(&self.0)
    }
}

impl ServerConfig {
    /// The sealer for the signing keys: the master key's, or plain storage.
    pub fn key_sealer(&self) -> KeySealer {
        self.master_key
            .as_ref()
            .and_then(|key| key.sealer().ok())
            .unwrap_or_else(KeySealer::plain)
    }
}

impl ServerConfig {
    /// How trusted issuers' keys and metadata are fetched.
    pub fn fetch_policy(&self) -> crate::fetch::FetchPolicy {
        crate::fetch::FetchPolicy {
            allow_insecure: self.allow_insecure_issuer_urls,
            timeout: self.issuer_fetch_timeout,
            max_bytes: self.issuer_fetch_max_bytes,
        }
    }
}

fn master_key(
    inline: Option<String>,
    file: Option<PathBuf>,
) -> Result<Option<MasterKey>, ConfigError> {
    let text = match (inline, file) {
        (Some(key), _) => zeroize::Zeroizing::new(key),
        (None, Some(path)) => {
            zeroize::Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| {
                invalid(
                    options::MASTER_KEY_FILE.name,
                    format!("cannot read {}: {e}", path.display()),
                )
            })?)
        }
        (None, None) => return Ok(None),
    };
    let key = MasterKey(zeroize::Zeroizing::new(text.trim().to_owned()));
    key.sealer()
        .map_err(|e| invalid(options::MASTER_KEY.name, e.to_string()))?;
    Ok(Some(key))
}

/// A number option's value, within its range, as the type the server keeps.
fn number<T: TryFrom<u64>>(opt: &Opt, value: Option<u64>) -> Result<T, ConfigError> {
    let value = value.ok_or_else(|| invalid(opt.name, "has no value"))?;
    if let Some((min, max)) = opt.range
        && !(min..=max).contains(&value)
    {
        return Err(invalid(
            opt.name,
            format!("{value} is outside {min}..={max}"),
        ));
    }
    T::try_from(value).map_err(|_| invalid(opt.name, format!("{value} is too large")))
}

/// A number of seconds, as the clock counts them.
fn seconds(opt: &Opt, value: Option<u64>) -> Result<i64, ConfigError> {
    number(opt, value)
}

/// A number of seconds, as timers count them.
fn duration(opt: &Opt, value: Option<u64>) -> Result<Duration, ConfigError> {
    number(opt, value).map(Duration::from_secs)
}

/// The one of `all` whose name is `value`.
fn one_of<T: Copy>(
    opt: &Opt,
    value: Option<String>,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<T, ConfigError> {
    let value = value.unwrap_or_default();
    all.iter()
        .copied()
        .find(|item| name(*item) == value)
        .ok_or_else(|| {
            let names: Vec<_> = all.iter().map(|item| name(*item)).collect();
            invalid(
                opt.name,
                format!("'{value}' is not one of {}", names.join(", ")),
            )
        })
}

fn validate_url(field: &'static str, url: &str) -> Result<String, ConfigError> {
    let trimmed = url.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"))
        .ok_or_else(|| {
            invalid(
                field,
                format!("'{url}' must start with http:// or https://"),
            )
        })?;
    if rest.is_empty() || rest.contains(['?', '#', ' ']) {
        return Err(invalid(field, format!("'{url}' is not a base URL")));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let config = ServerConfig::from_raw(RawConfig::default());
        assert_eq!(
            config.map(|c| c.listen.to_string()).ok().as_deref(),
            Some("127.0.0.1:8080")
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        let field = |raw: RawConfig| ServerConfig::from_raw(raw).err().map(|e| e.field);
        assert_eq!(
            field(RawConfig {
                listen: Some("nope".into()),
                ..Default::default()
            }),
            Some("listen")
        );
        assert_eq!(
            field(RawConfig {
                access_token_alg: Some("HS256".into()),
                ..Default::default()
            }),
            Some("access_token_alg")
        );
        assert_eq!(
            field(RawConfig {
                clock_leeway_secs: Some(100_000),
                ..Default::default()
            }),
            Some("clock_leeway_secs")
        );
        assert_eq!(
            field(RawConfig {
                tls_cert: Some("c.pem".into()),
                ..Default::default()
            }),
            Some("tls_key")
        );
        assert_eq!(
            field(RawConfig {
                public_url: Some("ftp://x".into()),
                ..Default::default()
            }),
            Some("public_url")
        );
        assert_eq!(
            field(RawConfig {
                body_limit_bytes: Some(10),
                ..Default::default()
            }),
            Some("body_limit_bytes")
        );
    }

    #[test]
    fn defaults_need_no_second_copy() {
        let config = ServerConfig::from_raw(RawConfig::default()).unwrap();
        assert_eq!(
            config.store,
            StoreLocation::DataDir(DEFAULT_DATA_DIR.into())
        );
        assert_eq!(config.access_token_alg, JwsAlgorithm::Es256);
        assert_eq!(config.clock_leeway_secs, 60);
        assert_eq!(config.refresh_token_lifetime_secs, 30 * 86_400);
        assert_eq!(config.body_limit_bytes, 64 * 1024);
        assert_eq!(config.registry_poll, std::time::Duration::from_secs(1));
        assert!(config.migrate_on_start);
        assert_eq!(config.redis_key_prefix, DEFAULT_REDIS_KEY_PREFIX);
        assert_eq!(config.rate_limit_per_client, DEFAULT_RATE_LIMIT_PER_CLIENT);
        assert_eq!(
            (config.worker_threads, config.log_format),
            (None, LogFormat::Text)
        );
        assert_eq!(config.fetch_policy(), crate::fetch::FetchPolicy::default());
    }

    #[test]
    fn the_fetch_policy_follows_its_options() {
        let config = ServerConfig::from_raw(RawConfig {
            allow_insecure_issuer_urls: Some(true),
            issuer_fetch_timeout_secs: Some(2),
            issuer_fetch_max_bytes: Some(4096),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            config.fetch_policy(),
            crate::fetch::FetchPolicy {
                allow_insecure: true,
                timeout: std::time::Duration::from_secs(2),
                max_bytes: 4096,
            }
        );
        let field = |raw: RawConfig| ServerConfig::from_raw(raw).err().map(|e| e.field);
        assert_eq!(
            field(RawConfig {
                issuer_fetch_timeout_secs: Some(0),
                ..Default::default()
            }),
            Some("issuer_fetch_timeout_secs")
        );
        assert_eq!(
            field(RawConfig {
                issuer_fetch_max_bytes: Some(100),
                ..Default::default()
            }),
            Some("issuer_fetch_max_bytes")
        );
    }

    #[test]
    fn more_bad_values_name_their_field() {
        let field = |raw: RawConfig| ServerConfig::from_raw(raw).err().map(|e| e.field);
        assert_eq!(
            field(RawConfig {
                log_format: Some("xml".into()),
                ..Default::default()
            }),
            Some("log_format")
        );
        assert_eq!(
            field(RawConfig {
                database: Some("mysql://x".into()),
                ..Default::default()
            }),
            Some("database")
        );
        assert_eq!(
            field(RawConfig {
                rate_limit_per_client: Some(u64::from(u32::MAX) + 1),
                ..Default::default()
            }),
            Some("rate_limit_per_client")
        );
        assert_eq!(
            field(RawConfig {
                redis_key_prefix: Some("a b".into()),
                ..Default::default()
            }),
            Some("redis_key_prefix")
        );
        let error = ServerConfig::from_raw(RawConfig {
            access_token_alg: Some("HS256".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert_eq!(error.reason, "'HS256' is not one of ES256, RS256, EdDSA");
    }
}
