//! The master key from a file: `master_key_file` in the config file seals the
//! signing keys the server and the admin commands store, and a store so sealed is
//! refused without the right key. (`JWTGRANT_MASTER_KEY` is covered by the
//! endpoints tests and the scale-out cluster.)

use jwtgrant_server::{RawConfig, ServerConfig};

use crate::support::*;

const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const OTHER_KEY: &str = "AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// The private halves as stored, read through the store itself.
async fn stored_keys(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let config = ServerConfig::from_raw(RawConfig {
        data_dir: Some(dir.to_path_buf()),
        database: postgres_url_for(dir).await,
        ..Default::default()
    })
    .unwrap();
    let store = jwtgrant_store::open(&config.store, &Default::default())
        .await
        .unwrap();
    store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.kid, k.private_key_pkcs8))
        .collect()
}

#[tokio::test]
async fn master_key_file_seals_the_signing_keys() {
    let home = tempfile::tempdir().unwrap();
    // The store's own directory (on PostgreSQL, its database is named after it).
    let data_dir = tempfile::tempdir().unwrap();
    let data = data_dir.path().to_path_buf();
    let key_file = home.path().join("master.key");
    std::fs::write(&key_file, format!("{MASTER_KEY}\n")).unwrap();
    let config = home.path().join("jwtgrant.toml");
    std::fs::write(
        &config,
        format!("master_key_file = {:?}\n", key_file.display().to_string()),
    )
    .unwrap();
    let with_config = || {
        let mut command = jwtgrant(home.path());
        command.args(store_args(&data)).arg("--config").arg(&config);
        command
    };

    // The server's first key, and one `keys rotate` adds: both sealed.
    drop(serve_until_ready(with_config(), home.path(), &[]).await);
    let mut rotate = with_config();
    rotate.args(["keys", "rotate", "--json"]);
    let rotated = run(rotate);
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    let stored = stored_keys(&data).await;
    assert_eq!(stored.len(), 2);
    for (kid, private_key) in &stored {
        assert!(private_key.starts_with(b"JGK1"), "{kid} stored unsealed");
    }
    let mut list = with_config();
    list.args(["keys", "list", "--json"]);
    assert!(run(list).status.success(), "keys list with the key file");

    // Without the key, or with another one, the server does not start.
    let serve = |extra: &[&std::ffi::OsStr]| {
        let mut command = jwtgrant(home.path());
        command
            .args(store_args(&data))
            .args(extra)
            .args(["serve", "--listen", "127.0.0.1:0"]);
        run(command)
    };
    let refused = serve(&[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "served without the master key");
    assert!(stderr.contains("master_key_file"), "{stderr}");
    std::fs::write(&key_file, OTHER_KEY).unwrap();
    let refused = serve(&[std::ffi::OsStr::new("--config"), config.as_os_str()]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success(),
        "served with the wrong master key"
    );
    assert!(stderr.contains("does not decrypt"), "{stderr}");

    // A key file that cannot be read is named.
    std::fs::remove_file(&key_file).unwrap();
    let refused = serve(&[std::ffi::OsStr::new("--config"), config.as_os_str()]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(stderr.contains("master_key_file"), "{stderr}");
}
