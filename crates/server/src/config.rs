//! Server configuration in two steps: [`RawConfig`] as read from flags, `JWTGRANT_*`
//! variables and a TOML file (unknown keys refused), then [`ServerConfig::from_raw`]
//! validates it into typed settings whose errors name the bad field.

use std::net::SocketAddr;
use std::path::PathBuf;

use jwtgrant_core::JwsAlgorithm;
use jwtgrant_store::StoreLocation;
use serde::Deserialize;

use crate::sealing::KeySealer;

/// Configuration as written by the operator; every field optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Address to listen on.
    pub listen: Option<String>,
    /// The public URL clients use; the issuer.
    pub public_url: Option<String>,
    /// Directory of the embedded store.
    pub data_dir: Option<PathBuf>,
    /// Database URL (`sqlite://...` or `postgres://...`), instead of the data directory.
    pub database: Option<String>,
    /// Extra audiences an assertion's `aud` may name.
    pub accept_audience: Option<Vec<String>>,
    /// PEM certificate chain for native TLS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for native TLS.
    pub tls_key: Option<PathBuf>,
    /// Clock leeway in seconds.
    pub clock_leeway_secs: Option<u64>,
    /// Longest accepted assertion lifetime in seconds.
    pub max_assertion_lifetime_secs: Option<u64>,
    /// Access token lifetime in seconds.
    pub access_token_lifetime_secs: Option<u64>,
    /// Refresh token lifetime in seconds.
    pub refresh_token_lifetime_secs: Option<u64>,
    /// Access token algorithm: ES256, RS256 or EdDSA.
    pub access_token_alg: Option<String>,
    /// The `aud` of issued access tokens.
    pub access_token_audience: Option<String>,
    /// Largest request body in bytes.
    pub body_limit_bytes: Option<usize>,
    /// Seconds between a key rotation and the new key signing.
    pub key_rotation_delay_secs: Option<u64>,
    /// How often the registry version is polled, in milliseconds.
    pub registry_poll_ms: Option<u64>,
    /// Run pending PostgreSQL migrations at start (default true; `jwtgrant migrate`
    /// runs them by hand).
    pub migrate_on_start: Option<bool>,
    /// Redis URL for the replay cache and shared rate limits.
    pub redis: Option<String>,
    /// What every Redis key starts with, so deployments can share one Redis.
    pub redis_key_prefix: Option<String>,
    /// File holding the master key (base64 of 32 bytes) that encrypts the signing
    /// keys at rest.
    pub master_key_file: Option<PathBuf>,
    /// The master key itself; only from `JWTGRANT_MASTER_KEY`, never from the file.
    #[serde(skip)]
    pub master_key: Option<String>,
    /// Token requests per second from one client address (0: no limit).
    pub rate_limit_per_client: Option<u32>,
    /// Token requests per second for one integration (0: no limit).
    pub rate_limit_per_integration: Option<u32>,
}

impl RawConfig {
    /// Fills every field unset here from `fallback` (flags and env over the file).
    pub fn or(self, fallback: RawConfig) -> RawConfig {
        RawConfig {
            listen: self.listen.or(fallback.listen),
            public_url: self.public_url.or(fallback.public_url),
            data_dir: self.data_dir.or(fallback.data_dir),
            database: self.database.or(fallback.database),
            accept_audience: self.accept_audience.or(fallback.accept_audience),
            tls_cert: self.tls_cert.or(fallback.tls_cert),
            tls_key: self.tls_key.or(fallback.tls_key),
            clock_leeway_secs: self.clock_leeway_secs.or(fallback.clock_leeway_secs),
            max_assertion_lifetime_secs: self
                .max_assertion_lifetime_secs
                .or(fallback.max_assertion_lifetime_secs),
            access_token_lifetime_secs: self
                .access_token_lifetime_secs
                .or(fallback.access_token_lifetime_secs),
            refresh_token_lifetime_secs: self
                .refresh_token_lifetime_secs
                .or(fallback.refresh_token_lifetime_secs),
            access_token_alg: self.access_token_alg.or(fallback.access_token_alg),
            access_token_audience: self
                .access_token_audience
                .or(fallback.access_token_audience),
            body_limit_bytes: self.body_limit_bytes.or(fallback.body_limit_bytes),
            key_rotation_delay_secs: self
                .key_rotation_delay_secs
                .or(fallback.key_rotation_delay_secs),
            registry_poll_ms: self.registry_poll_ms.or(fallback.registry_poll_ms),
            migrate_on_start: self.migrate_on_start.or(fallback.migrate_on_start),
            redis: self.redis.or(fallback.redis),
            redis_key_prefix: self.redis_key_prefix.or(fallback.redis_key_prefix),
            master_key_file: self.master_key_file.or(fallback.master_key_file),
            master_key: self.master_key.or(fallback.master_key),
            rate_limit_per_client: self
                .rate_limit_per_client
                .or(fallback.rate_limit_per_client),
            rate_limit_per_integration: self
                .rate_limit_per_integration
                .or(fallback.rate_limit_per_integration),
        }
    }
}

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

impl Default for ServerConfig {
    fn default() -> Self {
        // The defaults are valid by construction; from_raw only fails on bad input.
        ServerConfig::from_raw(RawConfig::default()).unwrap_or_else(|_| ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            store: StoreLocation::DataDir(PathBuf::from(DEFAULT_DATA_DIR)),
            accept_audiences: Vec::new(),
            tls: None,
            clock_leeway_secs: 60,
            max_assertion_lifetime_secs: 3600,
            access_token_lifetime_secs: 3600,
            refresh_token_lifetime_secs: 30 * 86_400,
            access_token_alg: JwsAlgorithm::Es256,
            access_token_audience: None,
            body_limit_bytes: 64 * 1024,
            key_rotation_delay_secs: 300,
            registry_poll: std::time::Duration::from_secs(1),
            migrate_on_start: true,
            redis: None,
            redis_key_prefix: DEFAULT_REDIS_KEY_PREFIX.to_owned(),
            master_key: None,
            rate_limit_per_client: DEFAULT_RATE_LIMIT_PER_CLIENT,
            rate_limit_per_integration: DEFAULT_RATE_LIMIT_PER_INTEGRATION,
        })
    }
}

impl ServerConfig {
    /// Validates raw settings, applying defaults.
    pub fn from_raw(raw: RawConfig) -> Result<Self, ConfigError> {
        let listen = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen: SocketAddr = listen.parse().map_err(|_| {
            invalid(
                "listen",
                format!("'{listen}' is not an address like 127.0.0.1:8080"),
            )
        })?;

        let public_url = raw
            .public_url
            .map(|url| validate_url("public_url", &url))
            .transpose()?;

        let store = match (raw.database, raw.data_dir) {
            (Some(url), _) => {
                StoreLocation::from_url(url).map_err(|e| invalid("database", e.to_string()))?
            }
            (None, Some(dir)) => StoreLocation::DataDir(dir),
            (None, None) => StoreLocation::DataDir(PathBuf::from(DEFAULT_DATA_DIR)),
        };

        let accept_audiences = raw.accept_audience.unwrap_or_default();
        if accept_audiences.iter().any(|a| a.trim().is_empty()) {
            return Err(invalid("accept_audience", "must not be empty"));
        }

        let tls = match (raw.tls_cert, raw.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            (Some(_), None) => return Err(invalid("tls_key", "is required with tls_cert")),
            (None, Some(_)) => return Err(invalid("tls_cert", "is required with tls_key")),
        };

        let clock_leeway_secs = bounded("clock_leeway_secs", raw.clock_leeway_secs, 60, 0, 600)?;
        let max_assertion_lifetime_secs = bounded(
            "max_assertion_lifetime_secs",
            raw.max_assertion_lifetime_secs,
            3600,
            1,
            86_400,
        )?;
        let access_token_lifetime_secs = bounded(
            "access_token_lifetime_secs",
            raw.access_token_lifetime_secs,
            3600,
            1,
            86_400,
        )?;
        let refresh_token_lifetime_secs = bounded(
            "refresh_token_lifetime_secs",
            raw.refresh_token_lifetime_secs,
            30 * 86_400,
            60,
            365 * 86_400,
        )?;
        let key_rotation_delay_secs = bounded(
            "key_rotation_delay_secs",
            raw.key_rotation_delay_secs,
            300,
            0,
            30 * 86_400,
        )?;
        let registry_poll_ms = bounded("registry_poll_ms", raw.registry_poll_ms, 1000, 50, 5000)?;

        let access_token_alg = match raw.access_token_alg.as_deref() {
            None => JwsAlgorithm::Es256,
            Some(name) => match JwsAlgorithm::from_name(name) {
                Some(alg @ (JwsAlgorithm::Es256 | JwsAlgorithm::Rs256 | JwsAlgorithm::EdDsa)) => {
                    alg
                }
                _ => {
                    return Err(invalid(
                        "access_token_alg",
                        format!("'{name}' is not one of ES256, RS256, EdDSA"),
                    ));
                }
            },
        };

        let body_limit_bytes = raw.body_limit_bytes.unwrap_or(64 * 1024);
        if !(1024..=16 * 1024 * 1024).contains(&body_limit_bytes) {
            return Err(invalid(
                "body_limit_bytes",
                "must be between 1024 and 16777216",
            ));
        }

        let access_token_audience = match raw.access_token_audience {
            Some(aud) if aud.trim().is_empty() => {
                return Err(invalid("access_token_audience", "must not be empty"));
            }
            other => other,
        };

        Ok(ServerConfig {
            listen,
            public_url,
            store,
            accept_audiences,
            tls,
            clock_leeway_secs,
            max_assertion_lifetime_secs,
            access_token_lifetime_secs,
            refresh_token_lifetime_secs,
            access_token_alg,
            access_token_audience,
            body_limit_bytes,
            key_rotation_delay_secs,
            registry_poll: std::time::Duration::from_millis(registry_poll_ms as u64),
            migrate_on_start: raw.migrate_on_start.unwrap_or(true),
            redis: match raw.redis {
                Some(url) if !(url.starts_with("redis://") || url.starts_with("rediss://")) => {
                    return Err(invalid("redis", "must be a redis:// or rediss:// URL"));
                }
                other => other,
            },
            redis_key_prefix: match raw.redis_key_prefix {
                Some(prefix) if prefix.is_empty() || prefix.contains(char::is_whitespace) => {
                    return Err(invalid(
                        "redis_key_prefix",
                        "must be non-empty, without whitespace",
                    ));
                }
                Some(prefix) => prefix,
                None => DEFAULT_REDIS_KEY_PREFIX.to_owned(),
            },
            master_key: master_key(raw.master_key, raw.master_key_file)?,
            rate_limit_per_client: raw
                .rate_limit_per_client
                .unwrap_or(DEFAULT_RATE_LIMIT_PER_CLIENT),
            rate_limit_per_integration: raw
                .rate_limit_per_integration
                .unwrap_or(DEFAULT_RATE_LIMIT_PER_INTEGRATION),
        })
    }
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

fn master_key(
    inline: Option<String>,
    file: Option<PathBuf>,
) -> Result<Option<MasterKey>, ConfigError> {
    let text = match (inline, file) {
        (Some(key), _) => zeroize::Zeroizing::new(key),
        (None, Some(path)) => {
            zeroize::Zeroizing::new(std::fs::read_to_string(&path).map_err(|e| {
                invalid(
                    "master_key_file",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?)
        }
        (None, None) => return Ok(None),
    };
    let key = MasterKey(zeroize::Zeroizing::new(text.trim().to_owned()));
    key.sealer()
        .map_err(|e| invalid("master_key", e.to_string()))?;
    Ok(Some(key))
}

fn bounded(
    field: &'static str,
    value: Option<u64>,
    default: u64,
    min: u64,
    max: u64,
) -> Result<i64, ConfigError> {
    let value = value.unwrap_or(default);
    if value < min || value > max {
        return Err(invalid(field, format!("{value} is outside {min}..={max}")));
    }
    Ok(value as i64)
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
    fn unknown_keys_in_a_file_are_refused() {
        let parsed: Result<RawConfig, _> =
            toml::from_str("listen = \"127.0.0.1:1\"\nlisten_port = 3\n");
        assert!(
            parsed
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
                .contains("listen_port")
        );
    }
}
