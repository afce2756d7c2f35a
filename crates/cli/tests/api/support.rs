//! Test support: the kit's server in this process (port 0, a real SQLite file, or
//! PostgreSQL with `JWTGRANT_TEST_BACKEND=postgres`) and fixtures, and the real
//! binary, whose path only this crate knows, on the store of a test's directory.

use std::path::Path;

use serde_json::Value;

pub use jwtgrant_testkit::*;

/// The `jwtgrant` binary built for these tests.
pub fn binary() -> Jwtgrant {
    Jwtgrant::at(env!("CARGO_BIN_EXE_jwtgrant"))
}

/// The store arguments for the binary: `--data-dir DIR`, or `--database URL`.
pub fn store_args(dir: &Path) -> Vec<std::ffi::OsString> {
    let dir_owned = dir.to_path_buf();
    let url = std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(postgres_url_for(&dir_owned))
    })
    .join()
    .expect("thread");
    match url {
        Some(url) => vec!["--database".into(), url.into()],
        None => vec!["--data-dir".into(), dir.as_os_str().to_owned()],
    }
}

/// Runs an admin command on the store of `dir` with `--json`; returns its JSON output.
pub fn admin(dir: &Path, args: &[&str]) -> Value {
    Admin::new(&binary(), store_args(dir)).json(args)
}

/// The binary (no `JWTGRANT_*` variable from outside) run in `cwd`, so that a
/// wrongly chosen default data directory would land there, not in the checkout.
pub fn jwtgrant(cwd: &Path) -> std::process::Command {
    let mut command = binary().command();
    command.current_dir(cwd);
    command
}

pub fn run(mut command: std::process::Command) -> std::process::Output {
    command.output().expect("run jwtgrant")
}

/// `jwtgrant serve FLAGS...` on the store of `dir`, ready.
pub async fn serve_store(dir: &Path, flags: &[&str]) -> Serving {
    serve_store_with_env(dir, flags, &[]).await
}

/// [`serve_store`] with these `JWTGRANT_*` variables.
pub async fn serve_store_with_env(dir: &Path, flags: &[&str], env: &[(&str, &str)]) -> Serving {
    let mut command = jwtgrant(dir);
    command.args(store_args(dir)).envs(env.iter().copied());
    serve_until_ready(command, dir, flags).await
}

/// `jwtgrant assertion` run in `dir`, signed with the key file `key`.
pub fn mint(
    dir: &Path,
    integration_key: &str,
    user_id: Option<&str>,
    key: &Path,
    aud: &str,
) -> String {
    mint_with(dir, integration_key, user_id, key, aud, &[])
}

/// [`mint`] with more `jwtgrant assertion` flags (`--lifetime`, `--no-jti`, ...).
pub fn mint_with(
    dir: &Path,
    integration_key: &str,
    user_id: Option<&str>,
    key: &Path,
    aud: &str,
    flags: &[&str],
) -> String {
    binary().mint(dir, integration_key, user_id, key, aud, flags)
}

/// An integration allowed application tokens (plus `flags` for `integration create`)
/// with a generated key: the created integration, its key and the private key's path.
pub fn app_integration(dir: &Path, flags: &[&str]) -> (Value, String, std::path::PathBuf) {
    let mut args = vec![
        "integration",
        "create",
        "--name",
        "App",
        "--allow-application-tokens",
    ];
    args.extend_from_slice(flags);
    let created = admin(dir, &args);
    let ik = created["integration_key"].as_str().unwrap().to_owned();
    let key = dir.join(format!("{ik}.pem"));
    Admin::new(&binary(), store_args(dir)).generate_key(&ik, None, &key);
    (created, ik, key)
}
