//! `jwtgrant assertion`: mints a DocuSign-shaped JWT bearer assertion with a local
//! private key.

use anyhow::{Context, Result, bail};
use jwtgrant_core::jws::sign_compact;
use jwtgrant_core::{JwsAlgorithm, SigningKey};
use jwtgrant_server::clock;
use serde_json::{Value, json};

use crate::args::AssertionArgs;
use crate::output::set;

/// Prints a signed assertion.
pub fn run(args: AssertionArgs) -> Result<()> {
    let pem = std::fs::read_to_string(&args.key)
        .with_context(|| format!("cannot read {}", args.key.display()))?;
    let key = SigningKey::from_pem(&pem).with_context(|| format!("{}", args.key.display()))?;
    let alg = match &args.alg {
        Some(name) => {
            JwsAlgorithm::from_name(name).with_context(|| format!("unknown alg {name}"))?
        }
        None => key.default_algorithm(),
    };
    if args.lifetime == 0 || args.lifetime > 86_400 {
        bail!("--lifetime must be between 1 and 86400 seconds");
    }
    let now = clock::now();
    let scopes = if args.scopes.is_empty() {
        "signature impersonation".to_owned()
    } else {
        args.scopes.join(" ")
    };
    let mut claims = json!({
        "iss": args.integration_key,
        "aud": match args.audiences.as_slice() {
            [one] => Value::String(one.clone()),
            many => json!(many),
        },
        "iat": now,
        "exp": now + args.lifetime as i64,
        "scope": scopes,
    });
    if let Some(user) = args.user_id {
        set(&mut claims, "sub", json!(user));
    }
    if !args.no_jti {
        set(&mut claims, "jti", json!(uuid::Uuid::new_v4().to_string()));
    }
    let token = sign_compact(&key, alg, Some("JWT"), args.kid.as_deref(), &claims)?;
    println!("{token}");
    Ok(())
}
