//! Every option of `jwtgrant serve`, each defined once. An option's name is its
//! config file key; its flag (`--name-with-dashes`) and its variable
//! (`JWTGRANT_NAME`) are spelt from it, and its default, its help and where it may
//! be given stand beside it. The CLI builds its flags from [`OPTIONS`] and reads the
//! environment and the config file by it; [`RawConfig::with_defaults`] fills the
//! defaults in from it; a test checks the README's table of options against it.

use std::path::PathBuf;

use jwtgrant_core::JwsAlgorithm;

use crate::fetch;

use super::{
    DEFAULT_DATA_DIR, DEFAULT_LISTEN, DEFAULT_RATE_LIMIT_PER_CLIENT,
    DEFAULT_RATE_LIMIT_PER_INTEGRATION, DEFAULT_REDIS_KEY_PREFIX, LogFormat,
};

/// One option: what it is called, takes, defaults to and does.
pub struct Opt {
    /// The config file key, in snake case; the flag and the variable follow from it.
    pub name: &'static str,
    /// One line for `--help` and the README.
    pub help: &'static str,
    /// The placeholder of its value in `--help` (`ADDR`, `SECS`, ...).
    pub value_name: &'static str,
    /// Its value when it is given nowhere.
    pub default: DefaultValue,
    /// Whether it is a flag and a file key as well as a variable.
    pub reach: Reach,
    /// Which commands take its flag.
    pub scope: Scope,
    /// How much of its value `jwtgrant config` may show.
    pub secrecy: Secrecy,
    /// The values it takes, when it is one of a few (empty: any).
    pub choices: fn() -> Vec<&'static str>,
    /// The smallest and the largest number it takes.
    pub range: Option<(u64, u64)>,
    /// Old names still read, each with a warning.
    pub aliases: &'static [Alias],
    /// The [`RawConfig`] field it fills.
    field: fn(&mut RawConfig) -> Field<'_>,
}

/// An option's value when none is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultValue {
    /// This text (or path, or choice).
    Text(&'static str),
    /// This number.
    Number(u64),
    /// This switch position.
    Switch(bool),
    /// Worked out from other settings or the machine, as described.
    Derived(&'static str),
    /// None: what the option turns on stays off.
    None,
}

/// Where an option may be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// A flag, a `JWTGRANT_*` variable and a config file key.
    Everywhere,
    /// A flag and a variable: the config file cannot name itself.
    NotInFile,
    /// Only a variable, for a secret: on the command line it would show in `ps` and
    /// in shell history, and config files are shared and checked in.
    VariableOnly,
}

/// Which commands take an option's flag. Every command that reads the
/// configuration reads every option's variable and key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every command, before or after its name: where the store and the file are,
    /// and what several commands must read alike (whether issuer URLs may be
    /// insecure).
    Global,
    /// `serve` (and `config`, which prints what `serve` would use).
    Serve,
}

/// How much of a value may be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrecy {
    /// All of it.
    Public,
    /// A URL whose password is hidden.
    UrlPassword,
    /// Nothing but that it is set.
    Secret,
}

/// An old name of an option, still read with a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alias {
    /// A variable, read when the option's own variable is unset.
    Variable(&'static str),
    /// A config file key that means the opposite switch.
    NegatedKey(&'static str),
}

/// What kind of value an option takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string.
    Text,
    /// A file or directory.
    Path,
    /// A whole number.
    Number,
    /// On or off; the flag alone turns it on.
    Switch,
    /// Several strings: the flag repeated, the variable comma-separated, an array in
    /// the file.
    List,
}

/// A value as given, before it is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string or a path.
    Text(String),
    /// A whole number.
    Number(u64),
    /// On or off.
    Switch(bool),
    /// Several strings.
    List(Vec<String>),
}

/// A [`RawConfig`] field, borrowed to be read or filled.
enum Field<'a> {
    Text(&'a mut Option<String>),
    Path(&'a mut Option<PathBuf>),
    Number(&'a mut Option<u64>),
    Switch(&'a mut Option<bool>),
    List(&'a mut Option<Vec<String>>),
}

impl Opt {
    /// What the definitions below leave unsaid.
    const BASE: Opt = Opt {
        name: "",
        help: "",
        value_name: "",
        default: DefaultValue::None,
        reach: Reach::Everywhere,
        scope: Scope::Serve,
        secrecy: Secrecy::Public,
        choices: Vec::new,
        range: None,
        aliases: &[],
        field: |raw| Field::Text(&mut raw.listen),
    };

    /// The flag without its dashes (`clock-leeway-secs`); `None` for a variable only.
    pub fn long(&self) -> Option<String> {
        (self.reach != Reach::VariableOnly).then(|| self.name.replace('_', "-"))
    }

    /// The environment variable: `JWTGRANT_` and the name in upper case.
    pub fn variable(&self) -> String {
        format!("JWTGRANT_{}", self.name.to_ascii_uppercase())
    }

    /// The config file key; `None` when the file may not set it.
    pub fn key(&self) -> Option<&'static str> {
        (self.reach == Reach::Everywhere).then_some(self.name)
    }

    /// The kind of value it takes.
    pub fn kind(&self) -> Kind {
        match (self.field)(&mut RawConfig::default()) {
            Field::Text(_) => Kind::Text,
            Field::Path(_) => Kind::Path,
            Field::Number(_) => Kind::Number,
            Field::Switch(_) => Kind::Switch,
            Field::List(_) => Kind::List,
        }
    }

    /// The help with the choices or the range: what `--help` and the README say.
    pub fn description(&self) -> String {
        let mut text = self.help.to_owned();
        let choices = (self.choices)();
        if !choices.is_empty() {
            text.push_str(&format!(": {}", choices.join(", ")));
        }
        if let Some((min, max)) = self.range {
            text.push_str(&format!(" ({min} to {max})"));
        }
        text
    }

    /// The default as the README and `--help` show it; `None` when there is none.
    pub fn default_text(&self) -> Option<String> {
        match self.default {
            DefaultValue::Text(text) | DefaultValue::Derived(text) => Some(text.to_owned()),
            DefaultValue::Number(n) => Some(n.to_string()),
            DefaultValue::Switch(on) => Some(on.to_string()),
            DefaultValue::None => None,
        }
    }

    /// Reads a value as typed on the command line or in a variable.
    pub fn parse(&self, text: &str) -> Result<Value, String> {
        Ok(match self.kind() {
            Kind::Text | Kind::Path => Value::Text(text.to_owned()),
            Kind::Number => Value::Number(
                text.trim()
                    .parse()
                    .map_err(|_| format!("'{text}' is not a whole number"))?,
            ),
            Kind::Switch => Value::Switch(match text.trim().to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => true,
                "false" | "no" | "off" | "0" => false,
                _ => return Err(format!("'{text}' is not true or false")),
            }),
            Kind::List => Value::List(text.split(',').map(str::to_owned).collect()),
        })
    }

    /// Sets its field of `raw`; a value of the wrong kind is refused.
    pub fn set(&self, raw: &mut RawConfig, value: Value) -> Result<(), String> {
        match ((self.field)(raw), value) {
            (Field::Text(field), Value::Text(text)) => *field = Some(text),
            (Field::Path(field), Value::Text(text)) => *field = Some(PathBuf::from(text)),
            (Field::Number(field), Value::Number(n)) => *field = Some(n),
            (Field::Switch(field), Value::Switch(on)) => *field = Some(on),
            (Field::List(field), Value::List(items)) => *field = Some(items),
            _ => return Err(format!("expects {}", self.kind().describe())),
        }
        Ok(())
    }

    /// Whether `value` is of the kind this option takes.
    pub fn accepts(&self, value: &Value) -> Result<(), String> {
        match (self.kind(), value) {
            (Kind::Text | Kind::Path, Value::Text(_))
            | (Kind::Number, Value::Number(_))
            | (Kind::Switch, Value::Switch(_))
            | (Kind::List, Value::List(_)) => Ok(()),
            (kind, _) => Err(format!("expects {}", kind.describe())),
        }
    }

    /// Its value in `raw`, if set.
    pub fn get(&self, raw: &RawConfig) -> Option<Value> {
        match (self.field)(&mut raw.clone()) {
            Field::Text(field) => field.take().map(Value::Text),
            Field::Path(field) => field
                .take()
                .map(|path| Value::Text(path.display().to_string())),
            Field::Number(field) => field.take().map(Value::Number),
            Field::Switch(field) => field.take().map(Value::Switch),
            Field::List(field) => field.take().map(Value::List),
        }
    }

    /// The value [`RawConfig::with_defaults`] gives it when it is unset.
    pub fn default_value(&self) -> Option<Value> {
        match self.default {
            DefaultValue::Text(text) => Some(Value::Text(text.to_owned())),
            DefaultValue::Number(n) => Some(Value::Number(n)),
            DefaultValue::Switch(on) => Some(Value::Switch(on)),
            DefaultValue::Derived(_) | DefaultValue::None => None,
        }
    }
}

impl std::fmt::Debug for Opt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Opt({})", self.name)
    }
}

impl Kind {
    fn describe(self) -> &'static str {
        match self {
            Kind::Text => "a string",
            Kind::Path => "a path (a string)",
            Kind::Number => "a whole number",
            Kind::Switch => "true or false",
            Kind::List => "a list of strings",
        }
    }
}

/// The names of `all`, for [`Opt::choices`].
fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> Vec<&'static str> {
    all.iter().map(|item| name(*item)).collect()
}

/// Defines every option once: from each entry come its constant, its place in
/// [`OPTIONS`] and its [`RawConfig`] field (of the type its kind reads into).
macro_rules! options {
    ($($(#[$doc:meta])* $konst:ident $field:ident: $kind:ident = $help:literal { $($spec:tt)* })*) => {
        /// Configuration as written by the operator, every field optional: each is
        /// filled by the option of its name in [`OPTIONS`].
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct RawConfig {
            $(#[doc = $help] pub $field: Option<field_type!($kind)>,)*
        }

        $(#[doc = $help] $(#[$doc])* pub const $konst: Opt = Opt {
            name: stringify!($field),
            help: $help,
            field: |raw| Field::$kind(&mut raw.$field),
            $($spec)*
            ..Opt::BASE
        };)*

        /// Every option, in the order `--help` and the README list them.
        pub const OPTIONS: [&Opt; [$(stringify!($field)),*].len()] = [$(&$konst),*];
    };
}

/// The type of a [`RawConfig`] field whose option is of this kind.
macro_rules! field_type {
    (Text) => { String };
    (Path) => { PathBuf };
    (Number) => { u64 };
    (Switch) => { bool };
    (List) => { Vec<String> };
}

// The options, each once, in the order `--help` and the README list them: the
// constant, the `RawConfig` field (also the file key, the flag and the variable),
// the kind of value, the help, and what differs from `Opt::BASE`.
options! {
    DATA_DIR data_dir: Path = "Data directory of the embedded SQLite store" {
        value_name: "DIR",
        default: DefaultValue::Text(DEFAULT_DATA_DIR),
        scope: Scope::Global,
    }
    DATABASE database: Text = "Database URL (sqlite://... or postgres://...), instead of the data directory" {
        value_name: "URL",
        scope: Scope::Global,
        secrecy: Secrecy::UrlPassword,
        aliases: &[Alias::Variable("JWTGRANT_DATABASE_URL")],
    }
    /// The TOML file of these options.
    CONFIG config: Path = "TOML file with these options as keys (flags and variables win over it)" {
        value_name: "FILE",
        reach: Reach::NotInFile,
        scope: Scope::Global,
    }
    LISTEN listen: Text = "Address to listen on (port 0 picks one)" {
        value_name: "ADDR",
        default: DefaultValue::Text(DEFAULT_LISTEN),
    }
    PUBLIC_URL public_url: Text = "Public base URL: the issuer" {
        value_name: "URL",
        default: DefaultValue::Derived("from the listen address"),
    }
    ACCEPT_AUDIENCE accept_audience: List = "An extra audience assertions may name (repeatable)" {
        value_name: "AUD",
    }
    TLS_CERT tls_cert: Path = "PEM certificate chain: serve HTTPS (with tls_key)" {
        value_name: "PEM",
    }
    TLS_KEY tls_key: Path = "PEM private key of tls_cert" {
        value_name: "PEM",
    }
    CLOCK_LEEWAY_SECS clock_leeway_secs: Number = "Clock leeway in seconds" {
        value_name: "SECS",
        default: DefaultValue::Number(60),
        range: Some((0, 600)),
    }
    MAX_ASSERTION_LIFETIME_SECS max_assertion_lifetime_secs: Number = "Longest accepted assertion lifetime in seconds" {
        value_name: "SECS",
        default: DefaultValue::Number(3600),
        range: Some((1, 86_400)),
    }
    MAX_CLIENT_ASSERTION_LIFETIME_SECS max_client_assertion_lifetime_secs: Number = "Longest accepted client assertion (private_key_jwt) lifetime in seconds" {
        value_name: "SECS",
        default: DefaultValue::Number(3600),
        range: Some((1, 86_400)),
    }
    STRICT_CLIENT_ASSERTION_AUDIENCE strict_client_assertion_audience: Switch = "Accept only the issuer as a client assertion's audience, not the token endpoint URL (draft-ietf-oauth-rfc7523bis)" {
        default: DefaultValue::Switch(false),
    }
    ACCESS_TOKEN_LIFETIME_SECS access_token_lifetime_secs: Number = "Access token lifetime in seconds" {
        value_name: "SECS",
        default: DefaultValue::Number(3600),
        range: Some((1, 86_400)),
    }
    REFRESH_TOKEN_LIFETIME_SECS refresh_token_lifetime_secs: Number = "Refresh token lifetime in seconds" {
        value_name: "SECS",
        default: DefaultValue::Number(30 * 86_400),
        range: Some((60, 365 * 86_400)),
    }
    ACCESS_TOKEN_ALG access_token_alg: Text = "Access token signing algorithm" {
        value_name: "ALG",
        default: DefaultValue::Text(JwsAlgorithm::Es256.as_str()),
        choices: || names(&JwsAlgorithm::ACCESS_TOKEN, JwsAlgorithm::as_str),
    }
    ACCESS_TOKEN_AUDIENCE access_token_audience: Text = "The `aud` of access tokens" {
        value_name: "AUD",
        default: DefaultValue::Derived("the issuer URL"),
    }
    BODY_LIMIT_BYTES body_limit_bytes: Number = "Largest request body in bytes" {
        value_name: "BYTES",
        default: DefaultValue::Number(64 * 1024),
        range: Some((1024, 16 * 1024 * 1024)),
    }
    // Connections: every phase bounded in time, their number capped, the drain at
    // shutdown bounded, and forwarded client addresses read only from proxies named.
    HEADER_TIMEOUT_SECS header_timeout_secs: Number = "Seconds a client has to send a request's headers (or finish a TLS handshake), from their first byte; then the connection is closed" {
        value_name: "SECS",
        default: DefaultValue::Number(10),
        range: Some((1, 300)),
    }
    BODY_TIMEOUT_SECS body_timeout_secs: Number = "Seconds a client has to send a request's body once its headers are in; then 408 and the connection is closed" {
        value_name: "SECS",
        default: DefaultValue::Number(30),
        range: Some((1, 600)),
    }
    IDLE_TIMEOUT_SECS idle_timeout_secs: Number = "Seconds a connection may stay open with no request on it; then it is closed" {
        value_name: "SECS",
        default: DefaultValue::Number(60),
        range: Some((1, 3600)),
    }
    REQUEST_TIMEOUT_SECS request_timeout_secs: Number = "Seconds one request may take from its headers to its answer; then 503 and the connection is closed" {
        value_name: "SECS",
        default: DefaultValue::Number(60),
        range: Some((1, 3600)),
    }
    MAX_CONNECTIONS max_connections: Number = "Most client connections open at once (at most the open-file limit allows); past it a new one gets 503 and is closed" {
        value_name: "N",
        default: DefaultValue::Number(10_000),
        range: Some((1, 1_000_000)),
    }
    SHUTDOWN_GRACE_SECS shutdown_grace_secs: Number = "Seconds SIGTERM or Ctrl-C lets requests in flight finish before the connections left are closed" {
        value_name: "SECS",
        default: DefaultValue::Number(30),
        range: Some((0, 3600)),
    }
    TRUSTED_PROXY trusted_proxy: List = "A proxy's address or range (CIDR) whose X-Forwarded-For and Forwarded headers name the client (repeatable); from any other peer they are ignored" {
        value_name: "CIDR",
    }
    KEY_ROTATION_DELAY_SECS key_rotation_delay_secs: Number = "Seconds from `keys rotate` until the new key signs: its --activate-after default" {
        value_name: "SECS",
        default: DefaultValue::Number(300),
        range: Some((0, 30 * 86_400)),
    }
    REGISTRY_POLL_MS registry_poll_ms: Number = "How often to poll for registry changes, in milliseconds" {
        value_name: "MS",
        default: DefaultValue::Number(1000),
        range: Some((50, 5000)),
    }
    NO_MIGRATE no_migrate: Switch = "Do not run pending PostgreSQL migrations when the store opens (run `jwtgrant migrate`)" {
        default: DefaultValue::Switch(false),
        aliases: &[Alias::NegatedKey("migrate_on_start")],
    }
    REDIS redis: Text = "Redis URL: the replay cache (and rate limits) shared by every instance" {
        value_name: "URL",
        secrecy: Secrecy::UrlPassword,
        aliases: &[Alias::Variable("JWTGRANT_REDIS_URL")],
    }
    REDIS_KEY_PREFIX redis_key_prefix: Text = "What every Redis key starts with, to share one Redis" {
        value_name: "PREFIX",
        default: DefaultValue::Text(DEFAULT_REDIS_KEY_PREFIX),
    }
    MASTER_KEY_FILE master_key_file: Path = "File holding the master key (base64 of 32 bytes) that encrypts the signing keys at rest" {
        value_name: "FILE",
    }
    // A secret, so a variable only, never a flag (it would show in `ps`) or a file key
    // (config files are shared and checked in): see `Reach::VariableOnly`.
    MASTER_KEY master_key: Text = "The master key itself (base64 of 32 bytes), instead of master_key_file; never a flag or a file key" {
        value_name: "BASE64",
        reach: Reach::VariableOnly,
        secrecy: Secrecy::Secret,
    }
    RATE_LIMIT_PER_CLIENT rate_limit_per_client: Number = "Token requests per second from one client address; 0 for none" {
        value_name: "N",
        default: DefaultValue::Number(DEFAULT_RATE_LIMIT_PER_CLIENT as u64),
    }
    RATE_LIMIT_PER_INTEGRATION rate_limit_per_integration: Number = "Token requests per second for one integration; 0 for none" {
        value_name: "N",
        default: DefaultValue::Number(DEFAULT_RATE_LIMIT_PER_INTEGRATION as u64),
    }
    // Global: `issuer add` checks issuer URLs' form by it, and `serve` and `explain`
    // fetch by it; a flag of every command, so each takes it the same way.
    ALLOW_INSECURE_ISSUER_URLS allow_insecure_issuer_urls: Switch = "Let trusted issuers' URLs be http and reach loopback, link-local and private addresses: for development and tests only" {
        default: DefaultValue::Switch(false),
        scope: Scope::Global,
    }
    CLIENT_METADATA_DOCUMENTS client_metadata_documents: Switch = "Take a client_id that is an https URL as a client ID metadata document (MCP clients): fetched safely, a public client with the scopes, default scopes and resources of --client-metadata-template" {
        default: DefaultValue::Switch(false),
    }
    CLIENT_METADATA_TEMPLATE client_metadata_template: Text = "The integration whose scopes, default scopes and resources clients known by a metadata document get" {
        value_name: "KEY",
        default: DefaultValue::Derived("none; required with --client-metadata-documents"),
    }
    ISSUER_FETCH_TIMEOUT_SECS issuer_fetch_timeout_secs: Number = "Timeout of one fetch of a trusted issuer's keys or metadata, in seconds" {
        value_name: "SECS",
        default: DefaultValue::Number(fetch::DEFAULT_TIMEOUT.as_secs()),
        range: Some((1, 60)),
    }
    ISSUER_FETCH_MAX_BYTES issuer_fetch_max_bytes: Number = "Largest body of a trusted issuer's keys or metadata, in bytes" {
        value_name: "BYTES",
        default: DefaultValue::Number(fetch::DEFAULT_MAX_BYTES as u64),
        range: Some((1024, 16 * 1024 * 1024)),
    }
    NO_AUDIT no_audit: Switch = "Record no audit events (the audit trail is on by default)" {
        default: DefaultValue::Switch(false),
    }
    AUDIT_RETENTION_DAYS audit_retention_days: Number = "How long audit events are kept, in days" {
        value_name: "DAYS",
        default: DefaultValue::Number(30),
        range: Some((1, 36_500)),
    }
    AUDIT_BUFFER_EVENTS audit_buffer_events: Number = "Audit events waiting to be written, at most; past it the oldest is dropped and counted (jwtgrant_audit_dropped_total)" {
        value_name: "N",
        default: DefaultValue::Number(10_000),
        range: Some((1, 1_000_000)),
    }
    WORKER_THREADS worker_threads: Number = "Runtime worker threads" {
        value_name: "N",
        default: DefaultValue::Derived("one per core"),
    }
    LOG_FORMAT log_format: Text = "Log format" {
        value_name: "FORMAT",
        default: DefaultValue::Text(LogFormat::Text.as_str()),
        choices: || names(&LogFormat::ALL, LogFormat::as_str),
    }
    OTLP_ENDPOINT otlp_endpoint: Text = "Export OpenTelemetry traces of each request over OTLP/HTTP (protobuf) to this collector: its base URL (/v1/traces is appended) or a full URL ending in /v1/traces" {
        value_name: "URL",
        secrecy: Secrecy::UrlPassword,
    }
}

impl RawConfig {
    /// Fills every unset option that has a default with it.
    pub fn with_defaults(mut self) -> Result<RawConfig, super::ConfigError> {
        for opt in OPTIONS {
            if let (None, Some(value)) = (opt.get(&self), opt.default_value()) {
                opt.set(&mut self, value)
                    .map_err(|reason| super::invalid(opt.name, format!("default {reason}")))?;
            }
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_set_by_its_own_option_only() {
        // Each option, set alone, is the only one that reads as set: no two options
        // share a field, and no definition points at another's.
        for opt in OPTIONS {
            let value = match opt.kind() {
                Kind::Text | Kind::Path => Value::Text("x".into()),
                Kind::Number => Value::Number(7),
                Kind::Switch => Value::Switch(true),
                Kind::List => Value::List(vec!["x".into()]),
            };
            let mut raw = RawConfig::default();
            opt.set(&mut raw, value.clone()).unwrap();
            assert_eq!(opt.get(&raw), Some(value), "{}", opt.name);
            for other in OPTIONS.iter().filter(|other| other.name != opt.name) {
                assert_eq!(other.get(&raw), None, "{} sets {}", opt.name, other.name);
            }
        }
    }

    #[test]
    fn defaults_are_of_their_options_kind_and_in_range() {
        let raw = RawConfig::default().with_defaults().unwrap();
        for opt in OPTIONS {
            assert_eq!(opt.get(&raw), opt.default_value(), "{}", opt.name);
            if let (Some((min, max)), Some(Value::Number(n))) = (opt.range, opt.get(&raw)) {
                assert!((min..=max).contains(&n), "{}", opt.name);
            }
            let choices = (opt.choices)();
            if let (false, Some(Value::Text(text))) = (choices.is_empty(), opt.get(&raw)) {
                assert!(choices.contains(&text.as_str()), "{}", opt.name);
            }
        }
    }

    #[test]
    fn the_master_key_is_a_variable_only() {
        assert_eq!((MASTER_KEY.long(), MASTER_KEY.key()), (None, None));
        assert_eq!(MASTER_KEY.variable(), "JWTGRANT_MASTER_KEY");
        assert_eq!(MASTER_KEY.secrecy, Secrecy::Secret);
    }

    #[test]
    fn values_are_parsed_by_kind() {
        assert_eq!(CLOCK_LEEWAY_SECS.parse("5"), Ok(Value::Number(5)));
        assert!(CLOCK_LEEWAY_SECS.parse("five").is_err());
        assert_eq!(NO_MIGRATE.parse("true"), Ok(Value::Switch(true)));
        assert_eq!(NO_MIGRATE.parse("0"), Ok(Value::Switch(false)));
        assert!(NO_MIGRATE.parse("maybe").is_err());
        assert_eq!(
            ACCEPT_AUDIENCE.parse("a,b"),
            Ok(Value::List(vec!["a".into(), "b".into()]))
        );
        let mut raw = RawConfig::default();
        assert!(LISTEN.set(&mut raw, Value::Number(1)).is_err());
    }
}
