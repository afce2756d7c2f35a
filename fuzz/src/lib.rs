//! Fixtures shared by the fuzz targets: keys generated once per process, the
//! integration that owns them, the server's assertion policy and a fixed `now`;
//! and, in [`reference`], what the targets' reference models share.
//!
//! Everything is built lazily behind a [`OnceLock`], so the (slow) RSA key
//! generation happens once per fuzzing process, not once per input.

use std::sync::OnceLock;

use jwtgrant_core::{AssertionPolicy, Integration, IntegrationKey, JwsAlgorithm, SigningKey};

/// The fixed clock every verification runs at (Unix seconds, 2027-01-15).
pub const NOW: i64 = 1_800_000_000;

/// The integration key: the `iss` an assertion must carry.
pub const ISS: &str = "5e9b0c6a-1a64-4b0a-9a1b-6f3f3c2f0a11";

/// An integration key no integration has.
pub const OTHER_ISS: &str = "00000000-0000-4000-8000-000000000000";

/// The user the records know.
pub const USER: &str = "8a4c3f1e-2b7d-4c9a-8e5f-0d1c2b3a4f5e";

/// A user id the records do not know.
pub const OTHER_USER: &str = "11111111-2222-4333-8444-555555555555";

/// Key ids of the integration's keys.
pub const KID_RSA: &str = "rsa-1";
/// The active EC P-256 key.
pub const KID_EC: &str = "ec-1";
/// An EC P-256 key registered but disabled: it must verify nothing.
pub const KID_RETIRED: &str = "ec-retired";

/// The audiences the policy accepts.
pub const AUDIENCES: [&str; 3] = [
    "https://auth.example.test",
    "https://auth.example.test/oauth/token",
    "auth.example.test",
];

/// The server's issuer identifier: the audience of a client assertion.
pub const ISSUER: &str = "https://auth.example.test";

/// The token endpoint URL: a client assertion's audience too, unless the client
/// policy is strict.
pub const TOKEN_ENDPOINT: &str = "https://auth.example.test/oauth/token";

/// The scopes the integration may request.
pub const INTEGRATION_SCOPES: [&str; 3] = ["signature", "impersonation", "extended"];

/// Clock leeway of the policy, seconds.
pub const LEEWAY_SECS: i64 = 60;

/// Longest assertion lifetime of the policy, seconds.
pub const MAX_LIFETIME_SECS: i64 = 3600;

/// The process-wide fixtures.
pub struct Fixtures {
    /// RSA 2048, registered active as [`KID_RSA`].
    pub rsa: SigningKey,
    /// EC P-256, registered active as [`KID_EC`].
    pub ec: SigningKey,
    /// EC P-256, registered but inactive as [`KID_RETIRED`].
    pub retired: SigningKey,
    /// EC P-256, never registered.
    pub stranger: SigningKey,
    /// The server's policy.
    pub policy: AssertionPolicy,
    /// The integration in each of its 8 flag combinations, indexed by
    /// `allow_application_tokens as usize | (require_jti as usize) << 1 | (!active as usize) << 2`.
    integrations: Vec<Integration>,
}

impl Fixtures {
    /// The integration with the given flags; same key, name, scopes and keys in all.
    pub fn integration(
        &self,
        active: bool,
        allow_application_tokens: bool,
        require_jti: bool,
    ) -> &Integration {
        let index = usize::from(allow_application_tokens)
            | usize::from(require_jti) << 1
            | usize::from(!active) << 2;
        &self.integrations[index]
    }

    /// The default integration: active, application tokens allowed, `jti` optional.
    pub fn default_integration(&self) -> &Integration {
        self.integration(true, true, false)
    }
}

fn generate(alg: JwsAlgorithm, bits: usize) -> SigningKey {
    SigningKey::generate(alg, bits).expect("fixture key generation")
}

/// The fixtures, built on first use.
pub fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let rsa = generate(JwsAlgorithm::Rs256, 2048);
        let ec = generate(JwsAlgorithm::Es256, 0);
        let retired = generate(JwsAlgorithm::Es256, 0);
        let stranger = generate(JwsAlgorithm::Es256, 0);
        let keys = vec![
            IntegrationKey {
                kid: KID_RSA.into(),
                public_key: rsa.public_key().clone(),
                active: true,
            },
            IntegrationKey {
                kid: KID_EC.into(),
                public_key: ec.public_key().clone(),
                active: true,
            },
            IntegrationKey {
                kid: KID_RETIRED.into(),
                public_key: retired.public_key().clone(),
                active: false,
            },
        ];
        let integrations = (0..8usize)
            .map(|index| Integration {
                key: ISS.into(),
                name: "Fuzz integration".into(),
                active: index & 4 == 0,
                allow_application_tokens: index & 1 != 0,
                require_jti: index & 2 != 0,
                scopes: INTEGRATION_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
                redirect_uris: vec!["https://app.example.test/callback".into()],
                resources: Vec::new(),
                default_scopes: Vec::new(),
                client_secret_hash: None,
                keys: keys.clone(),
            })
            .collect();
        Fixtures {
            rsa,
            ec,
            retired,
            stranger,
            policy: AssertionPolicy {
                accepted_audiences: AUDIENCES.iter().map(|s| (*s).to_owned()).collect(),
                leeway_secs: LEEWAY_SECS,
                max_lifetime_secs: MAX_LIFETIME_SECS,
            },
            integrations,
        }
    })
}

/// Pieces of the reference models that more than one target uses. They share no code
/// with the core.
pub mod reference {
    use serde_json::{Map, Value};

    /// RFC 7519 NumericDate: a JSON number of seconds; a fraction is truncated toward
    /// zero and values beyond i64 saturate; `null` counts as absent. `Err` for any
    /// other JSON type.
    pub fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>, String> {
        match claims.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => {
                if let Some(i) = n.as_i64() {
                    Ok(Some(i))
                } else if n.is_u64() {
                    Ok(Some(i64::MAX))
                } else {
                    let f = n.as_f64().ok_or_else(|| format!("{name}: not a number"))?;
                    Ok(Some(if f >= 9_223_372_036_854_775_807.0 {
                        i64::MAX
                    } else if f <= -9_223_372_036_854_775_808.0 {
                        i64::MIN
                    } else {
                        f.trunc() as i64
                    }))
                }
            }
            Some(_) => Err(format!("{name}: not a number")),
        }
    }
}
