//! Every serve option, walked from its one definition (`config::options::OPTIONS`),
//! is taken from its flag, from its `JWTGRANT_*` variable and from its config file
//! key: the real binary's `jwtgrant config --json` says what each value is and where
//! it came from. The old variable and key names still work, with a warning; the
//! master key is a variable only and never shown; the README's table of options is
//! the definition's.

use std::path::Path;

use jwtgrant_server::config::options::{Alias, DefaultValue, Kind, OPTIONS, Opt, Reach, Scope};
use serde_json::{Value, json};

use crate::support::{jwtgrant, run, serve_until_ready};

/// A valid master key: base64 of 32 bytes.
const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// A valid value for `opt` other than its default, as typed after its flag: one
/// item, or several for a list.
fn sample(opt: &Opt, dir: &Path) -> Vec<String> {
    let path = |name: &str| dir.join(name).display().to_string();
    let choices = (opt.choices)();
    let one = match (opt.name, opt.kind()) {
        ("accept_audience", _) => return vec!["a.example".into(), "b.example".into()],
        ("trusted_proxy", _) => return vec!["10.0.0.0/8".into(), "192.0.2.7".into()],
        ("data_dir", _) => path("data"),
        ("database", _) => "postgres://jg:s3cret@127.0.0.1:1/jg".into(),
        ("config", _) => path("empty.toml"),
        ("listen", _) => "127.0.0.1:0".into(),
        ("public_url", _) => "https://auth.example".into(),
        ("tls_cert", _) => path("cert.pem"),
        ("tls_key", _) => path("key.pem"),
        ("access_token_audience", _) => "https://api.example".into(),
        ("redis", _) => "redis://:s3cret@127.0.0.1:1/0".into(),
        ("redis_key_prefix", _) => "options-test:".into(),
        ("master_key_file", _) => path("master.key"),
        ("master_key", _) => MASTER_KEY.into(),
        ("client_metadata_template", _) => "mcp-clients".into(),
        ("otlp_endpoint", _) => "http://otel:s3cret@127.0.0.1:1/v1/traces".into(),
        (_, Kind::Text) if !choices.is_empty() => {
            let other = choices
                .iter()
                .rev()
                .find(|c| opt.default_value() != text(c));
            (*other.expect("a choice other than the default")).to_owned()
        }
        (_, Kind::Number) => opt.range.map_or(3, |(min, _)| min + 1).to_string(),
        (_, Kind::Switch) => "true".into(),
        (name, kind) => panic!("no sample value for the new {kind:?} option {name}: add one"),
    };
    vec![one]
}

fn text(value: &str) -> Option<jwtgrant_server::config::options::Value> {
    Some(jwtgrant_server::config::options::Value::Text(
        value.to_owned(),
    ))
}

/// What `jwtgrant config --json` shows for the sample.
fn shown(opt: &Opt, sample: &[String]) -> Value {
    match (opt.name, opt.kind()) {
        ("master_key", _) => json!("(hidden)"),
        ("database" | "redis" | "otlp_endpoint", _) => {
            json!(sample[0].replace(":s3cret@", ":***@"))
        }
        (_, Kind::List) => json!(sample),
        (_, Kind::Number) => json!(sample[0].parse::<u64>().unwrap()),
        (_, Kind::Switch) => json!(true),
        _ => json!(sample[0]),
    }
}

/// A directory with the files the samples name.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.toml"), "").unwrap();
    std::fs::write(dir.path().join("master.key"), MASTER_KEY).unwrap();
    dir
}

/// `jwtgrant config --json` with these arguments and variables: its options, and
/// its stderr.
fn config(
    dir: &Path,
    args: &[String],
    vars: &[(String, String)],
) -> (serde_json::Map<String, Value>, String) {
    let mut command = jwtgrant(dir);
    command.arg("config").arg("--json").args(args);
    command.envs(vars.iter().map(|(k, v)| (k, v)));
    let output = run(command);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "jwtgrant config {args:?}: {stderr}"
    );
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let options = printed["options"].as_object().unwrap().clone();
    (options, stderr)
}

/// Each option's value and source in `printed` are the sample's, from `source`.
fn assert_all_from(
    printed: &serde_json::Map<String, Value>,
    dir: &Path,
    expect: impl Fn(&Opt) -> (&'static str, Value),
) {
    assert_eq!(printed.len(), OPTIONS.len(), "{printed:?}");
    for opt in OPTIONS {
        let sample = sample(opt, dir);
        let entry = &printed[opt.name];
        let (source, from) = expect(opt);
        assert_eq!(entry["value"], shown(opt, &sample), "{}: {entry}", opt.name);
        assert_eq!(
            (entry["source"].as_str(), &entry["from"]),
            (Some(source), &from),
            "{}: {entry}",
            opt.name
        );
    }
}

#[test]
fn every_option_is_taken_from_its_flag() {
    let dir = workspace();
    let mut args = Vec::new();
    let mut vars = Vec::new();
    for opt in OPTIONS {
        let sample = sample(opt, dir.path());
        match opt.long() {
            None => vars.push((opt.variable(), sample.join(","))),
            Some(long) if opt.kind() == Kind::Switch => args.push(format!("--{long}")),
            Some(long) => {
                for item in sample {
                    args.extend([format!("--{long}"), item]);
                }
            }
        }
    }
    let (printed, _) = config(dir.path(), &args, &vars);
    assert_all_from(&printed, dir.path(), |opt| match opt.long() {
        Some(long) => ("flag", json!(format!("--{long}"))),
        None => ("env", json!(opt.variable())),
    });
}

#[test]
fn every_option_is_taken_from_its_variable() {
    let dir = workspace();
    let vars: Vec<_> = OPTIONS
        .iter()
        .map(|opt| (opt.variable(), sample(opt, dir.path()).join(",")))
        .collect();
    let (printed, stderr) = config(dir.path(), &[], &vars);
    assert_all_from(&printed, dir.path(), |opt| ("env", json!(opt.variable())));
    assert!(!stderr.contains("warning"), "{stderr}");
}

#[test]
fn every_option_is_taken_from_its_config_file_key() {
    let dir = workspace();
    let file = dir.path().join("jwtgrant.toml");
    let mut table = toml::Table::new();
    for opt in OPTIONS {
        let Some(key) = opt.key() else { continue };
        let sample = sample(opt, dir.path());
        let value = match opt.kind() {
            Kind::List => toml::Value::Array(sample.into_iter().map(toml::Value::from).collect()),
            Kind::Number => toml::Value::Integer(sample[0].parse().unwrap()),
            Kind::Switch => toml::Value::Boolean(true),
            Kind::Text | Kind::Path => toml::Value::String(sample[0].clone()),
        };
        table.insert(key.to_owned(), value);
    }
    std::fs::write(&file, toml::to_string(&table).unwrap()).unwrap();
    // What the file cannot hold comes from elsewhere: itself from its flag, the
    // master key from its variable; the sample config file is this one.
    let config_flag = format!(
        "--{}",
        jwtgrant_server::config::options::CONFIG.long().unwrap()
    );
    let args = [config_flag.clone(), file.display().to_string()];
    let vars = [("JWTGRANT_MASTER_KEY".to_owned(), MASTER_KEY.to_owned())];
    let (printed, _) = config(dir.path(), &args, &vars);
    for opt in OPTIONS {
        let entry = &printed[opt.name];
        let expected = match opt.reach {
            Reach::Everywhere => ("file", json!(file.display().to_string())),
            Reach::NotInFile => ("flag", json!(config_flag)),
            Reach::VariableOnly => ("env", json!(opt.variable())),
        };
        assert_eq!(
            (entry["source"].as_str(), &entry["from"]),
            (Some(expected.0), &expected.1),
            "{}: {entry}",
            opt.name
        );
        if opt.reach == Reach::Everywhere {
            let sample = sample(opt, dir.path());
            assert_eq!(entry["value"], shown(opt, &sample), "{}: {entry}", opt.name);
        }
    }
}

#[test]
fn nothing_given_means_every_default() {
    let dir = workspace();
    let (printed, _) = config(dir.path(), &[], &[]);
    for opt in OPTIONS {
        let entry = &printed[opt.name];
        let expected = match opt.default {
            DefaultValue::Text(text) => ("default", json!(text)),
            DefaultValue::Number(n) => ("default", json!(n)),
            DefaultValue::Switch(on) => ("default", json!(on)),
            DefaultValue::Derived(_) | DefaultValue::None => ("unset", Value::Null),
        };
        assert_eq!(
            (entry["source"].as_str(), &entry["value"]),
            (Some(expected.0), &expected.1),
            "{}: {entry}",
            opt.name
        );
    }
}

#[test]
fn flags_beat_variables_which_beat_the_file() {
    let dir = workspace();
    let file = dir.path().join("jwtgrant.toml");
    std::fs::write(&file, "clock_leeway_secs = 3\nregistry_poll_ms = 300\n").unwrap();
    let args = [
        "--config".to_owned(),
        file.display().to_string(),
        "--clock-leeway-secs".to_owned(),
        "1".to_owned(),
    ];
    let vars = [
        ("JWTGRANT_CLOCK_LEEWAY_SECS".to_owned(), "2".to_owned()),
        ("JWTGRANT_REGISTRY_POLL_MS".to_owned(), "200".to_owned()),
    ];
    let (printed, _) = config(dir.path(), &args, &vars);
    assert_eq!(printed["clock_leeway_secs"]["value"], 1);
    assert_eq!(printed["registry_poll_ms"]["value"], 200);
    let (printed, _) = config(dir.path(), &args[..2], &[]);
    assert_eq!(printed["registry_poll_ms"]["value"], 300);
}

#[test]
fn the_old_names_still_work_with_a_warning() {
    let dir = workspace();
    for opt in OPTIONS {
        for alias in opt.aliases {
            let (printed, stderr) = match alias {
                Alias::Variable(old) => {
                    let value = sample(opt, dir.path()).join(",");
                    let (printed, stderr) = config(dir.path(), &[], &[((*old).to_owned(), value)]);
                    assert_eq!(printed[opt.name]["from"], *old, "{old}");
                    (printed, stderr)
                }
                Alias::NegatedKey(old) => {
                    assert_eq!(opt.kind(), Kind::Switch);
                    let file = dir.path().join("old.toml");
                    std::fs::write(&file, format!("{old} = false\n")).unwrap();
                    let args = ["--config".to_owned(), file.display().to_string()];
                    let (printed, stderr) = config(dir.path(), &args, &[]);
                    assert_eq!(printed[opt.name]["value"], true, "{old} = false");
                    (printed, stderr)
                }
            };
            assert_eq!(
                printed[opt.name]["value"],
                shown(opt, &sample(opt, dir.path()))
            );
            assert!(stderr.contains("deprecated"), "{stderr}");
        }
    }
    // The new name wins over the old.
    let (printed, _) = config(
        dir.path(),
        &[],
        &[
            ("JWTGRANT_DATABASE".into(), "sqlite://new.db".into()),
            ("JWTGRANT_DATABASE_URL".into(), "sqlite://old.db".into()),
        ],
    );
    assert_eq!(printed["database"]["value"], "sqlite://new.db");
}

#[test]
fn the_master_key_is_a_variable_only_and_never_shown() {
    let dir = workspace();
    let mut command = jwtgrant(dir.path());
    command.args(["config", "--master-key", MASTER_KEY]);
    assert!(!run(command).status.success(), "--master-key was taken");
    let file = dir.path().join("jwtgrant.toml");
    std::fs::write(&file, format!("master_key = \"{MASTER_KEY}\"\n")).unwrap();
    let mut command = jwtgrant(dir.path());
    command.arg("--config").arg(&file).arg("config");
    let refused = run(command);
    assert!(
        !refused.status.success(),
        "master_key was taken from the file"
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("JWTGRANT_MASTER_KEY"));

    let mut command = jwtgrant(dir.path());
    command.arg("config").env("JWTGRANT_MASTER_KEY", MASTER_KEY);
    let output = run(command);
    assert!(output.status.success());
    assert!(!String::from_utf8_lossy(&output.stdout).contains(MASTER_KEY));
}

#[test]
fn bad_values_name_the_option_and_where_it_was_given() {
    let dir = workspace();
    for (args, vars, expected) in [
        (
            vec!["--clock-leeway-secs", "soon"],
            vec![],
            "--clock-leeway-secs",
        ),
        (
            vec![],
            vec![("JWTGRANT_NO_MIGRATE", "perhaps")],
            "JWTGRANT_NO_MIGRATE",
        ),
        (vec![], vec![("JWTGRANT_LOG_FORMAT", "xml")], "log_format"),
    ] {
        let mut command = jwtgrant(dir.path());
        command.arg("config").args(&args).envs(vars.iter().copied());
        let output = run(command);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} {vars:?}");
        assert!(stderr.contains(expected), "{expected}: {stderr}");
    }
}

#[tokio::test]
async fn serve_warns_of_variables_no_option_reads() {
    let dir = workspace();
    let mut command = jwtgrant(dir.path());
    command
        .env("JWTGRANT_LISTEN_PORT", "1")
        .env("JWTGRANT_LOG_FORMAT", "text")
        .env("JWTGRANT_BENCH_CLIENT_SECRET", "x")
        .env("JWTGRANT_REDIS_KEY_PREFIX", "p:");
    let serving = serve_until_ready(command, dir.path(), &[]).await;
    drop(serving);
    let log: String = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "log"))
        .map(|path| std::fs::read_to_string(path).unwrap())
        .collect();
    let unknown: Vec<_> = log
        .lines()
        .filter(|line| line.contains("unknown JWTGRANT_"))
        .collect();
    assert_eq!(unknown.len(), 1, "{log}");
    assert!(unknown[0].contains("JWTGRANT_LISTEN_PORT"), "{log}");
}

/// The README's table of options, as the definitions give it.
fn options_table() -> String {
    let mut table = String::from(
        "| flag | variable | config file key | default | what |\n| --- | --- | --- | --- | --- |\n",
    );
    for opt in OPTIONS {
        let flag = match (opt.long(), opt.kind()) {
            (None, _) => "none".to_owned(),
            (Some(long), Kind::Switch) => format!("`--{long}`"),
            (Some(long), _) => format!("`--{long} {}`", opt.value_name),
        };
        let flag = match opt.scope {
            Scope::Global => format!("{flag} (any command)"),
            Scope::Serve => flag,
        };
        let mut variable = format!("`{}`", opt.variable());
        let mut key = opt
            .key()
            .map_or("none".to_owned(), |key| format!("`{key}`"));
        for alias in opt.aliases {
            match alias {
                Alias::Variable(old) => variable.push_str(&format!(" (or `{old}`, deprecated)")),
                Alias::NegatedKey(old) => key.push_str(&format!(
                    " (or `{old}` with the opposite value, deprecated)"
                )),
            }
        }
        let default = match opt.default {
            DefaultValue::Text(text) => format!("`{text}`"),
            DefaultValue::Number(n) => format!("`{n}`"),
            DefaultValue::Switch(on) => format!("`{on}`"),
            DefaultValue::Derived(how) => how.to_owned(),
            DefaultValue::None => "none".to_owned(),
        };
        let what = opt.description();
        table.push_str(&format!(
            "| {flag} | {variable} | {key} | {default} | {what} |\n"
        ));
    }
    table
}

#[test]
fn the_readme_lists_every_option_as_defined() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = "<!-- options: from crates/server/src/config/options.rs -->\n";
    let end = "<!-- options end -->";
    let section = readme
        .split_once(start)
        .and_then(|(_, rest)| rest.split_once(end))
        .map(|(section, _)| section);
    let expected = options_table();
    assert_eq!(
        section,
        Some(expected.as_str()),
        "the README's options section (between {start:?} and {end:?}) should read:\n{expected}"
    );
}
