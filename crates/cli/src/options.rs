//! The serve options as flags, `JWTGRANT_*` variables and config file keys, all
//! spelt from the one definition of each in [`jwtgrant_server::config::options`];
//! their resolution (flags, then variables, then the file, then defaults), and
//! `jwtgrant config`, which prints where each value came from.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches};
use jwtgrant_server::config::options::{
    Alias, CONFIG, Kind, OPTIONS, Opt, Reach, Scope, Secrecy, Value,
};
use jwtgrant_server::{ConfigError, RawConfig, ServerConfig};
use serde_json::json;

/// The flags of the global options (the store and the config file), which every
/// command takes before or after its name.
#[derive(Debug, Default)]
pub struct GlobalOptions(Flags);

/// The flags of `serve`'s own options.
#[derive(Debug, Default)]
pub struct ServeOptions(Flags);

/// Options given as flags, as typed.
#[derive(Debug, Default)]
struct Flags(Vec<(&'static Opt, Typed)>);

/// A flag's value as typed: one, or the repeated values of a list.
#[derive(Debug)]
enum Typed {
    One(String),
    Many(Vec<String>),
}

impl Flags {
    /// Adds a flag for every option of `scope` that has one.
    fn augment(mut command: clap::Command, scope: Scope) -> clap::Command {
        for (order, opt) in OPTIONS.into_iter().enumerate() {
            let Some(long) = opt.long().filter(|_| opt.scope == scope) else {
                continue;
            };
            let arg = Arg::new(opt.name)
                .long(long)
                // A command's own flags first, then the global ones.
                .display_order(order + if scope == Scope::Global { 1000 } else { 0 })
                .help(short_help(opt))
                .long_help(long_help(opt))
                .global(scope == Scope::Global);
            command = command.arg(match opt.kind() {
                Kind::Switch => arg.action(ArgAction::SetTrue),
                Kind::List => arg
                    .action(ArgAction::Append)
                    .value_delimiter(',')
                    .value_name(opt.value_name),
                Kind::Text | Kind::Path | Kind::Number => {
                    arg.action(ArgAction::Set).value_name(opt.value_name)
                }
            });
        }
        command
    }

    /// The flags of `scope` given on the command line.
    fn from_matches(matches: &ArgMatches, scope: Scope) -> Flags {
        let given = OPTIONS
            .into_iter()
            .filter(|opt| opt.scope == scope && opt.long().is_some())
            .filter(|opt| matches.value_source(opt.name) == Some(ValueSource::CommandLine))
            .filter_map(|opt| {
                let typed = match opt.kind() {
                    Kind::Switch => Typed::One("true".to_owned()),
                    Kind::List => {
                        Typed::Many(matches.get_many::<String>(opt.name)?.cloned().collect())
                    }
                    Kind::Text | Kind::Path | Kind::Number => {
                        Typed::One(matches.get_one::<String>(opt.name)?.clone())
                    }
                };
                Some((opt, typed))
            })
            .collect();
        Flags(given)
    }

    fn get(&self, opt: &Opt) -> Option<&Typed> {
        self.0
            .iter()
            .find(|(given, _)| given.name == opt.name)
            .map(|(_, typed)| typed)
    }
}

fn short_help(opt: &Opt) -> String {
    match opt.default_text().filter(|_| opt.kind() != Kind::Switch) {
        Some(default) => format!("{} [default: {default}]", opt.description()),
        None => opt.description(),
    }
}

fn long_help(opt: &Opt) -> String {
    let mut help = format!("{}\n[env: {}]", short_help(opt), opt.variable());
    if let Some(key) = opt.key() {
        help.push_str(&format!(" [config file: {key}]"));
    }
    help
}

macro_rules! options_args {
    ($type:ident, $scope:expr) => {
        impl clap::FromArgMatches for $type {
            fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
                Ok($type(Flags::from_matches(matches, $scope)))
            }

            fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
                *self = Self::from_arg_matches(matches)?;
                Ok(())
            }
        }

        impl clap::Args for $type {
            fn augment_args(command: clap::Command) -> clap::Command {
                Flags::augment(command, $scope)
            }

            fn augment_args_for_update(command: clap::Command) -> clap::Command {
                Flags::augment(command, $scope)
            }
        }
    };
}

options_args!(GlobalOptions, Scope::Global);
options_args!(ServeOptions, Scope::Serve);

/// Where an option's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    /// This flag.
    Flag(String),
    /// This variable.
    Variable(String),
    /// The config file.
    File(PathBuf),
    /// The option's default.
    Default,
    /// Nowhere: the option is off (or worked out at start).
    Unset,
}

/// The configuration a command runs with, and where each value came from.
pub struct Settings {
    /// The validated configuration.
    pub config: ServerConfig,
    /// Every option's value, defaults filled in.
    raw: RawConfig,
    /// Where each option's value came from, in the order of [`OPTIONS`].
    origins: Vec<Origin>,
    /// Deprecated names that were used.
    pub warnings: Vec<String>,
}

impl Settings {
    /// Flags first, then `JWTGRANT_*` variables, then the config file, then defaults;
    /// `serve` is `None` for the commands that take only the global flags.
    pub fn resolve(global: &GlobalOptions, serve: Option<&ServeOptions>) -> Result<Settings> {
        let mut warnings = Vec::new();
        // What the command line, else the environment, says of each option.
        let mut given = Vec::new();
        for opt in OPTIONS {
            given.push(match global.0.get(opt).or_else(|| serve?.0.get(opt)) {
                Some(typed) => Some(flag_value(opt, typed)?),
                None => variable(opt, &mut warnings)?,
            });
        }
        // The config file is named there.
        let file = OPTIONS.into_iter().zip(&given).find_map(|(opt, given)| {
            match (opt.name == CONFIG.name, given) {
                (true, Some((Value::Text(path), _))) => Some(PathBuf::from(path)),
                _ => None,
            }
        });
        let in_file = match &file {
            Some(path) => read_file(path, &mut warnings)?,
            None => Vec::new(),
        };

        let mut raw = RawConfig::default();
        let mut origins = Vec::new();
        for (opt, given) in OPTIONS.into_iter().zip(given) {
            let from_file = || {
                let (_, value) = in_file.iter().find(|(named, _)| named.name == opt.name)?;
                Some((value.clone(), Origin::File(file.clone()?)))
            };
            let from_default = || Some((opt.default_value()?, Origin::Default));
            match given.or_else(from_file).or_else(from_default) {
                Some((value, origin)) => {
                    opt.set(&mut raw, value)
                        .map_err(|reason| invalid(opt, reason, &origin))?;
                    origins.push(origin);
                }
                None => origins.push(Origin::Unset),
            }
        }
        let config = ServerConfig::from_raw(raw.clone())?;
        Ok(Settings {
            config,
            raw,
            origins,
            warnings,
        })
    }

    /// `jwtgrant config`: every option, its value (secrets hidden) and its origin.
    pub fn print(&self, json: bool) -> Result<()> {
        let rows: Vec<_> = OPTIONS
            .into_iter()
            .zip(&self.origins)
            .map(|(opt, origin)| (opt, opt.get(&self.raw).map(|v| shown(opt, v)), origin))
            .collect();
        let value = json!({
            "options": rows
                .iter()
                .map(|(opt, value, origin)| {
                    let (source, from) = match origin {
                        Origin::Flag(flag) => ("flag", Some(flag.clone())),
                        Origin::Variable(name) => ("env", Some(name.clone())),
                        Origin::File(path) => ("file", Some(path.display().to_string())),
                        Origin::Default => ("default", None),
                        Origin::Unset => ("unset", None),
                    };
                    let value = value.as_ref().map(json_value);
                    (opt.name.to_owned(), json!({"value": value, "source": source, "from": from}))
                })
                .collect::<serde_json::Map<_, _>>(),
        });
        let lines: Vec<[String; 3]> = rows
            .iter()
            .map(|(opt, value, origin)| {
                let value = match value {
                    Some(value) => text_value(value),
                    None => match opt.default_text() {
                        Some(derived) => format!("({derived})"),
                        None => "-".to_owned(),
                    },
                };
                let origin = match origin {
                    Origin::Flag(name) | Origin::Variable(name) => name.clone(),
                    Origin::File(path) => path.display().to_string(),
                    Origin::Default => "default".to_owned(),
                    Origin::Unset => String::new(),
                };
                [opt.name.to_owned(), value, origin]
            })
            .collect();
        let width = |column: usize| {
            lines
                .iter()
                .filter_map(|line| line.get(column))
                .map(String::len)
                .max()
                .unwrap_or(0)
        };
        let (names, values) = (width(0), width(1));
        let text: String = lines
            .iter()
            .map(|[name, value, origin]| {
                let line = format!("{name:names$}  {value:values$}  {origin}");
                format!("{}\n", line.trim_end())
            })
            .collect();
        crate::output::emit(json, value, text)
    }
}

/// The error for a value `opt` cannot take, naming the option and where it was given.
fn invalid(opt: &Opt, reason: String, origin: &Origin) -> ConfigError {
    let place = match origin {
        Origin::Flag(name) | Origin::Variable(name) => name.clone(),
        Origin::File(path) => path.display().to_string(),
        Origin::Default | Origin::Unset => "default".to_owned(),
    };
    ConfigError {
        field: opt.name,
        reason: format!("{reason} (from {place})"),
    }
}

/// The option's value from its flag.
fn flag_value(opt: &Opt, typed: &Typed) -> Result<(Value, Origin), ConfigError> {
    let origin = Origin::Flag(format!("--{}", opt.long().unwrap_or_default()));
    let value = match typed {
        Typed::Many(items) => Value::List(items.clone()),
        Typed::One(text) => opt
            .parse(text)
            .map_err(|reason| invalid(opt, reason, &origin))?,
    };
    Ok((value, origin))
}

/// The option's value from its variable, or from a deprecated one (with a warning).
/// An empty variable counts as unset.
fn variable(opt: &Opt, warnings: &mut Vec<String>) -> Result<Option<(Value, Origin)>> {
    let own = opt.variable();
    let old = opt.aliases.iter().filter_map(|alias| match alias {
        Alias::Variable(name) => Some(*name),
        Alias::NegatedKey(_) => None,
    });
    let mut found = None;
    for name in std::iter::once(own.as_str()).chain(old) {
        let text = match std::env::var(name) {
            Ok(text) if !text.is_empty() => text,
            Ok(_) | Err(std::env::VarError::NotPresent) => continue,
            Err(std::env::VarError::NotUnicode(_)) => bail!("{name} is not UTF-8"),
        };
        if name != own {
            warnings.push(format!("{name} is deprecated: name it {own}"));
        }
        if found.is_none() {
            let origin = Origin::Variable(name.to_owned());
            let value = opt
                .parse(&text)
                .map_err(|reason| invalid(opt, reason, &origin))?;
            found = Some((value, origin));
        }
    }
    Ok(found)
}

/// The options a TOML config file sets. A key that is no option's is refused, as is
/// one for an option the file may not set.
fn read_file(path: &Path, warnings: &mut Vec<String>) -> Result<Vec<(&'static Opt, Value)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let table: toml::Table =
        toml::from_str(&text).with_context(|| format!("config file {}", path.display()))?;
    let mut set = Vec::new();
    for (key, value) in table {
        let origin = Origin::File(path.to_owned());
        let names = |opt: &Opt| opt.key() == Some(&key) || negated_by(opt, &key);
        if let Some((opt, _)) = set.iter().find(|(opt, _): &&(&Opt, Value)| names(opt)) {
            bail!(
                "config file {}: {key} sets {} a second time",
                path.display(),
                opt.name
            );
        }
        if let Some(opt) = OPTIONS.into_iter().find(|opt| opt.key() == Some(&key)) {
            let value = toml_value(value)
                .and_then(|value| opt.accepts(&value).map(|()| value))
                .map_err(|reason| invalid(opt, reason, &origin))?;
            set.push((opt, value));
        } else if let Some(opt) = OPTIONS.into_iter().find(|opt| negated_by(opt, &key)) {
            warnings.push(format!(
                "config file {}: {key} is deprecated: write {} with the opposite value",
                path.display(),
                opt.name
            ));
            match toml_value(value) {
                Ok(Value::Switch(on)) => set.push((opt, Value::Switch(!on))),
                _ => bail!(invalid(
                    opt,
                    format!("{key} expects true or false"),
                    &origin
                )),
            }
        } else if let Some(opt) = OPTIONS.into_iter().find(|opt| opt.name == key) {
            let reason = match opt.reach {
                Reach::VariableOnly => format!("is a secret: set {} instead", opt.variable()),
                Reach::NotInFile | Reach::Everywhere => "cannot be set in the file".to_owned(),
            };
            bail!(invalid(opt, reason, &origin));
        } else {
            bail!("config file {}: unknown key `{key}`", path.display());
        }
    }
    Ok(set)
}

/// Whether `key` is an old file key of `opt` that means the opposite.
fn negated_by(opt: &Opt, key: &str) -> bool {
    opt.aliases
        .iter()
        .any(|alias| matches!(alias, Alias::NegatedKey(old) if *old == key))
}

fn toml_value(value: toml::Value) -> Result<Value, String> {
    Ok(match value {
        toml::Value::String(text) => Value::Text(text),
        toml::Value::Integer(n) => {
            Value::Number(u64::try_from(n).map_err(|_| format!("{n} is negative"))?)
        }
        toml::Value::Boolean(on) => Value::Switch(on),
        toml::Value::Array(items) => Value::List(
            items
                .into_iter()
                .map(|item| match item {
                    toml::Value::String(text) => Ok(text),
                    other => Err(format!("{other} is not a string")),
                })
                .collect::<Result<_, _>>()?,
        ),
        other => {
            return Err(format!(
                "{} is not a string, number, boolean or list",
                other.type_str()
            ));
        }
    })
}

/// `value` with what `opt`'s secrecy hides hidden.
fn shown(opt: &Opt, value: Value) -> Value {
    match (opt.secrecy, value) {
        (Secrecy::Public, value) => value,
        (Secrecy::Secret, _) => Value::Text("(hidden)".to_owned()),
        (Secrecy::UrlPassword, Value::Text(url)) => Value::Text(hide_password(&url)),
        (Secrecy::UrlPassword, _) => Value::Text("(hidden)".to_owned()),
    }
}

/// A URL with the password of its user info, and any `password=` parameter, hidden.
fn hide_password(url: &str) -> String {
    let (url, query) = match url.split_once('?') {
        Some((url, query)) => (url, Some(query)),
        None => (url, None),
    };
    let mut shown = match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let authority = match authority.rsplit_once('@') {
                Some((user_info, host)) => match user_info.split_once(':') {
                    Some((user, _)) => format!("{user}:***@{host}"),
                    None => authority.to_owned(),
                },
                None => authority.to_owned(),
            };
            format!("{scheme}://{authority}{path}")
        }
        None => url.to_owned(),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((name, _)) if name.eq_ignore_ascii_case("password") => format!("{name}=***"),
                _ => param.to_owned(),
            })
            .collect();
        shown.push('?');
        shown.push_str(&params.join("&"));
    }
    shown
}

fn json_value(value: &Value) -> serde_json::Value {
    match value {
        Value::Text(text) => json!(text),
        Value::Number(n) => json!(n),
        Value::Switch(on) => json!(on),
        Value::List(items) => json!(items),
    }
}

fn text_value(value: &Value) -> String {
    match value {
        Value::Text(text) => text.clone(),
        Value::Number(n) => n.to_string(),
        Value::Switch(on) => on.to_string(),
        Value::List(items) => items.join(","),
    }
}

/// `JWTGRANT_*` variables in the environment that nothing reads (a typo would
/// otherwise go unnoticed): neither an option's, nor an old name of one, nor a
/// variable of another command's flag. The tests' own `JWTGRANT_TEST_*` are left
/// alone.
pub fn unknown_variables(command: &clap::Command) -> Vec<String> {
    fn flag_variables(command: &clap::Command, known: &mut Vec<String>) {
        known.extend(
            command
                .get_arguments()
                .filter_map(|arg| arg.get_env())
                .map(|name| name.to_string_lossy().into_owned()),
        );
        for sub in command.get_subcommands() {
            flag_variables(sub, known);
        }
    }
    let mut known: Vec<String> = OPTIONS.iter().map(|opt| opt.variable()).collect();
    known.extend(OPTIONS.iter().flat_map(|opt| {
        opt.aliases.iter().filter_map(|alias| match alias {
            Alias::Variable(name) => Some((*name).to_owned()),
            Alias::NegatedKey(_) => None,
        })
    }));
    flag_variables(command, &mut known);
    std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .filter(|name| name.starts_with("JWTGRANT_") && !name.starts_with("JWTGRANT_TEST_"))
        .filter(|name| !known.contains(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> Result<Vec<(&'static Opt, Value)>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("jwtgrant.toml");
        std::fs::write(&path, text)?;
        read_file(&path, &mut Vec::new())
    }

    #[test]
    fn unknown_keys_in_a_file_are_refused() {
        let error = file("listen = \"127.0.0.1:1\"\nlisten_port = 3\n").unwrap_err();
        assert!(error.to_string().contains("listen_port"), "{error}");
    }

    #[test]
    fn the_master_key_is_never_a_file_key() {
        let error = file("master_key = \"x\"\n").unwrap_err();
        assert!(error.to_string().contains("JWTGRANT_MASTER_KEY"), "{error}");
        let error = file("config = \"other.toml\"\n").unwrap_err();
        assert!(error.to_string().contains("config"), "{error}");
    }

    #[test]
    fn file_values_must_be_of_the_options_kind() {
        let error = file("clock_leeway_secs = \"60\"\n").unwrap_err();
        assert!(error.to_string().contains("clock_leeway_secs"), "{error}");
        let set = file("clock_leeway_secs = 5\naccept_audience = [\"a\", \"b\"]\n").unwrap();
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn the_old_migrate_key_means_the_opposite() {
        let set = file("migrate_on_start = false\n").unwrap();
        let names: Vec<_> = set
            .iter()
            .map(|(opt, value)| (opt.name, value.clone()))
            .collect();
        assert_eq!(names, [("no_migrate", Value::Switch(true))]);
    }

    #[test]
    fn passwords_in_urls_are_hidden() {
        assert_eq!(
            hide_password("postgres://jg:s3cret@db:5432/jg?sslmode=require&password=x"),
            "postgres://jg:***@db:5432/jg?sslmode=require&password=***"
        );
        assert_eq!(
            hide_password("redis://cache:6379/0"),
            "redis://cache:6379/0"
        );
        assert_eq!(hide_password("redis://:pw@cache"), "redis://:***@cache");
    }
}
