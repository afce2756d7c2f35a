//! `jwtgrant assertion`: mints a DocuSign-shaped JWT bearer assertion with a local
//! private key, through the SDK's [`AssertionBuilder`].

use std::time::Duration;

use anyhow::{Context, Result, bail};
use jwtgrant_client::assertion::MAX_LIFETIME;
use jwtgrant_client::{AssertionBuilder, JwsAlgorithm, PrivateKey};
use jwtgrant_proto::DEFAULT_SCOPES;

use crate::args::AssertionArgs;

/// Prints a signed assertion.
pub fn run(args: AssertionArgs) -> Result<()> {
    let key =
        PrivateKey::from_file(&args.key).with_context(|| format!("{}", args.key.display()))?;
    if args.lifetime == 0 || args.lifetime > MAX_LIFETIME.as_secs() {
        bail!(
            "--lifetime must be between 1 and {} seconds",
            MAX_LIFETIME.as_secs()
        );
    }
    let scopes = if args.scopes.is_empty() {
        DEFAULT_SCOPES.map(str::to_owned).to_vec()
    } else {
        args.scopes
    };
    let mut builder = AssertionBuilder::new(args.integration_key)
        .audiences(args.audiences)
        .scopes(scopes)
        .lifetime(Duration::from_secs(args.lifetime))
        .jti(!args.no_jti);
    if let Some(user) = args.user_id {
        builder = builder.subject(user);
    }
    if let Some(kid) = args.kid {
        builder = builder.kid(kid);
    }
    if let Some(name) = &args.alg {
        builder = builder.algorithm(
            JwsAlgorithm::from_name(name).with_context(|| format!("unknown alg {name}"))?,
        );
    }
    println!("{}", builder.sign(&key)?);
    Ok(())
}
