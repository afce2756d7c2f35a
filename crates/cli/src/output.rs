//! How commands print: one JSON object with `--json`, plain text otherwise; and how
//! private key files are written (mode 0600).

use std::io::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

/// Prints `value` as one line of JSON, or `text` as is.
pub fn emit(json: bool, value: Value, text: String) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    if json {
        serde_json::to_writer(&mut stdout, &value)?;
        writeln!(stdout)?;
    } else {
        stdout.write_all(text.as_bytes())?;
    }
    Ok(())
}

/// Writes a secret to a new file readable only by its owner.
pub fn write_private_file(path: &Path, contents: &[u8]) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(contents)?;
    Ok(())
}

/// Sets a member of a JSON object (no-op on other values).
pub fn set(object: &mut Value, name: &str, value: Value) {
    if let Some(map) = object.as_object_mut() {
        map.insert(name.to_owned(), value);
    }
}
