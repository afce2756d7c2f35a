//! `jwtgrant keygen`: a key pair for an integration, as the files clients and the
//! server want: the private key (PKCS#8 PEM, mode 0600), the public key (PEM) and
//! the public JWK with its RFC 7638 thumbprint as `kid`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use jwtgrant_core::{JwsAlgorithm, SigningKey};
use serde_json::json;

use crate::args::KeygenArgs;
use crate::output::{emit, write_private_file};

/// Writes the three files and prints their names and the `kid`.
pub fn run(args: KeygenArgs) -> Result<()> {
    let alg =
        JwsAlgorithm::from_name(&args.alg).with_context(|| format!("unknown alg {}", args.alg))?;
    let key = SigningKey::generate(alg, args.bits)?;
    let with_suffix = |suffix: &str| {
        let mut name = args.out.clone().into_os_string();
        name.push(suffix);
        PathBuf::from(name)
    };
    let (private, public, jwk_path) = (
        with_suffix(".pem"),
        with_suffix(".pub.pem"),
        with_suffix(".jwk.json"),
    );
    for path in [&private, &public, &jwk_path] {
        if path.exists() {
            bail!(
                "{} exists; choose another --out or remove it",
                path.display()
            );
        }
    }
    let kid = key.public_key().thumbprint().to_owned();
    write_private_file(&private, key.to_pkcs8_pem()?.as_bytes())?;
    std::fs::write(&public, key.public_key().to_pem())
        .with_context(|| format!("cannot write {}", public.display()))?;
    let jwk = key.public_key().to_jwk(Some(&kid), Some(alg));
    std::fs::write(&jwk_path, serde_json::to_string_pretty(&jwk)? + "\n")
        .with_context(|| format!("cannot write {}", jwk_path.display()))?;
    emit(
        args.json,
        json!({
            "kid": kid,
            "alg": alg.as_str(),
            "private_key_file": private.display().to_string(),
            "public_key_file": public.display().to_string(),
            "jwk_file": jwk_path.display().to_string(),
        }),
        format!(
            "kid {kid}\nprivate key {} (keep it secret)\npublic key  {}\npublic JWK  {}\n",
            private.display(),
            public.display(),
            jwk_path.display()
        ),
    )
}
