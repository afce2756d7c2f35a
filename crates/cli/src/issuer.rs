//! The trusted-issuer commands (`jwtgrant issuer ...`, `jwtgrant user link`): they
//! check an issuer's URLs and compile its expressions here, so a bad one is refused
//! when it is added; the server fetches the keys.

use anyhow::{Context, Result, bail};
use jwtgrant_core::JwsAlgorithm;
use jwtgrant_core::trusted_issuer::{
    IssuerPolicy, KeySource, ReplayPolicy, SubjectKind, TrustedIssuer, UserClaim,
};
use jwtgrant_server::clock;
use jwtgrant_server::fetch::{FetchError, check_url};
use jwtgrant_store::{ExternalIdentityRecord, Store, TrustedIssuerRecord};
use serde_json::{Value, json};

use crate::args::{IssuerAddArgs, IssuerCommand, ReplayArg, SubjectArg, UserClaimArg};
use crate::output::emit;

/// Checks the form of a URL the server will fetch, by the fetcher's own rule:
/// https (http only when insecure URLs are allowed), a host, no user info, and no
/// IP literal of a private, loopback or link-local address.
fn check_fetch_url(what: &str, url: &str, allow_insecure: bool) -> Result<()> {
    check_url(url, allow_insecure).map(drop).map_err(|error| match error {
        FetchError::NotHttps => anyhow::anyhow!(
            "{what} '{url}' must be https (http:// only with --allow-insecure-issuer-urls, for development and tests)"
        ),
        other => anyhow::anyhow!("{what} '{url}' cannot be fetched from: {other}"),
    })
}

fn policy_from(args: &IssuerAddArgs, allow_insecure: bool) -> Result<IssuerPolicy> {
    let keys = match (&args.jwks_uri, args.discovery, &args.jwks_file) {
        (Some(uri), false, None) => {
            check_fetch_url("--jwks-uri", uri, allow_insecure)?;
            KeySource::JwksUri(uri.clone())
        }
        (None, true, None) => {
            check_fetch_url("--issuer (for --discovery)", &args.issuer, allow_insecure)?;
            KeySource::Discovery
        }
        (None, false, Some(path)) => {
            let body = std::fs::read(path)
                .with_context(|| format!("cannot read --jwks-file {}", path.display()))?;
            let algorithms = parse_algorithms(&args.algorithms)?;
            let set = jwtgrant_core::jwks::parse_jwks(&body, &algorithms)
                .with_context(|| format!("--jwks-file {}", path.display()))?;
            if set.keys.is_empty() {
                bail!(
                    "--jwks-file {} has no key this issuer may use",
                    path.display()
                );
            }
            KeySource::Jwks(serde_json::from_slice(&body)?)
        }
        _ => bail!("give exactly one of --jwks-uri, --discovery and --jwks-file"),
    };
    let expires_at = args
        .expires_at
        .as_deref()
        .map(|text| {
            clock::parse_rfc3339(text)
                .with_context(|| format!("--expires-at '{text}' is not an RFC 3339 date-time"))
        })
        .transpose()?;
    if args.subject == SubjectArg::User && args.subject_expr.is_some() {
        bail!("--subject-expr is for --subject workload; --subject user maps by --user-claim");
    }
    let policy = IssuerPolicy {
        keys,
        audiences: args.audiences.clone(),
        algorithms: parse_algorithms(&args.algorithms)?,
        typs: if args.id_jag && args.typs.is_empty() {
            vec![jwtgrant_proto::ID_JAG_TYP.to_owned()]
        } else {
            args.typs.clone()
        },
        max_lifetime_secs: args.max_lifetime_secs,
        clock_skew_secs: args.clock_skew_secs,
        replay: match args.replay {
            None if args.id_jag => ReplayPolicy::UntilExp,
            None | Some(ReplayArg::SingleUse) => ReplayPolicy::SingleUse,
            Some(ReplayArg::UntilExp) => ReplayPolicy::UntilExp,
            Some(ReplayArg::None) => ReplayPolicy::None,
        },
        subject: match args.subject {
            SubjectArg::User => SubjectKind::User,
            SubjectArg::Workload => SubjectKind::Workload,
        },
        user_claim: match args.user_claim {
            UserClaimArg::Sub => UserClaim::Sub,
            UserClaimArg::Email => UserClaim::Email,
        },
        subject_expr: args.subject_expr.clone(),
        condition: args.condition.clone(),
        scopes: args.scopes.clone(),
        expires_at,
        client_authentication: args.client_authentication,
        id_jag: args.id_jag,
    };
    if policy.id_jag {
        jwtgrant_core::id_jag::check_policy(&policy)?;
    }
    Ok(policy)
}

fn parse_algorithms(names: &[String]) -> Result<Vec<JwsAlgorithm>> {
    names
        .iter()
        .map(|name| {
            JwsAlgorithm::from_name(name)
                .with_context(|| format!("--alg '{name}' is not supported"))
        })
        .collect()
}

fn issuer_json(record: &TrustedIssuerRecord, links: Option<&[ExternalIdentityRecord]>) -> Value {
    let policy = serde_json::from_str::<Value>(&record.policy).unwrap_or(Value::Null);
    let mut value = serde_json::Map::new();
    value.insert("issuer_id".into(), json!(record.issuer_id));
    value.insert("issuer".into(), json!(record.issuer));
    value.insert("integration_key".into(), json!(record.integration_key));
    value.insert("active".into(), json!(record.active));
    value.insert("created".into(), json!(clock::rfc3339(record.created_at)));
    if let Some(expires_at) = IssuerPolicy::from_json(&record.policy)
        .ok()
        .and_then(|p| p.expires_at)
    {
        value.insert("expires".into(), json!(clock::rfc3339(expires_at)));
    }
    value.insert("policy".into(), policy);
    if let Some(links) = links {
        let links: Vec<Value> = links
            .iter()
            .map(|l| json!({"subject": l.subject, "user_id": l.user_id, "created": clock::rfc3339(l.created_at)}))
            .collect();
        value.insert("linked_subjects".into(), Value::Array(links));
    }
    Value::Object(value)
}

fn issuer_line(record: &TrustedIssuerRecord) -> String {
    let policy = IssuerPolicy::from_json(&record.policy).ok();
    let state = if !record.active {
        "DISABLED".to_owned()
    } else if let Some(at) = policy.as_ref().and_then(|p| p.expires_at) {
        if at <= clock::now() {
            format!("EXPIRED {}", clock::rfc3339(at))
        } else {
            format!("active until {}", clock::rfc3339(at))
        }
    } else {
        "active".to_owned()
    };
    let subject = match policy.as_ref().map(|p| p.subject) {
        Some(SubjectKind::User) => "users",
        Some(SubjectKind::Workload) => "workloads",
        None => "unreadable policy",
    };
    format!(
        "{}  {}  -> {}  {}  {}\n",
        record.issuer_id, record.issuer, record.integration_key, subject, state
    )
}

async fn find(store: &dyn Store, issuer_id: &str) -> Result<TrustedIssuerRecord> {
    store
        .trusted_issuers()
        .await?
        .into_iter()
        .find(|r| r.issuer_id == issuer_id)
        .with_context(|| format!("no trusted issuer has id '{issuer_id}'"))
}

/// Runs `jwtgrant issuer ...`. `allow_insecure` is `--allow-insecure-issuer-urls`
/// (a global option: the flag, the config file or the environment).
pub async fn issuer(store: &dyn Store, command: IssuerCommand, allow_insecure: bool) -> Result<()> {
    match command {
        IssuerCommand::Add(args) => {
            let policy = policy_from(&args, allow_insecure)?;
            let integration = store
                .integration(&args.integration)
                .await?
                .with_context(|| format!("no integration has key '{}'", args.integration))?;
            if store.integration(&args.issuer).await?.is_some() {
                bail!("--issuer '{}' is an integration key", args.issuer);
            }
            if policy.subject == SubjectKind::Workload && !integration.allow_application_tokens {
                bail!(
                    "--subject workload gives application tokens, which integration '{}' may not request (integration create --allow-application-tokens)",
                    integration.integration_key
                );
            }
            if let Some(scope) = policy
                .scopes
                .iter()
                .find(|s| !integration.scopes.contains(s))
            {
                bail!(
                    "--scope '{scope}' is not among integration '{}''s scopes",
                    integration.integration_key
                );
            }
            let issuer_id = uuid::Uuid::new_v4().to_string();
            // Compiles the expressions and checks the ranges, as the server will.
            TrustedIssuer::new(
                issuer_id.clone(),
                args.issuer.clone(),
                integration.integration_key.clone(),
                true,
                policy.clone(),
            )?;
            let record = TrustedIssuerRecord {
                issuer_id: issuer_id.clone(),
                issuer: args.issuer.clone(),
                integration_key: integration.integration_key,
                active: true,
                policy: policy.to_json(),
                created_at: clock::now(),
            };
            store.create_trusted_issuer(&record).await?;
            emit(
                args.json,
                json!({"issuer_id": issuer_id}),
                format!("{issuer_id}\n"),
            )
        }
        IssuerCommand::List { json } => {
            let issuers = store.trusted_issuers().await?;
            let text: String = issuers.iter().map(issuer_line).collect();
            emit(
                json,
                json!({"issuers": issuers.iter().map(|r| issuer_json(r, None)).collect::<Vec<_>>()}),
                text,
            )
        }
        IssuerCommand::Show(r) => {
            let record = find(store, &r.issuer_id).await?;
            let links = store.external_identities(&record.issuer_id).await?;
            let value = issuer_json(&record, Some(&links));
            let text = issuer_line(&record) + &serde_json::to_string_pretty(&value)? + "\n";
            emit(r.json, value, text)
        }
        IssuerCommand::Disable(r) => set_active(store, r.issuer_id, false, r.json).await,
        IssuerCommand::Enable(r) => set_active(store, r.issuer_id, true, r.json).await,
        IssuerCommand::Remove(r) => {
            store.remove_trusted_issuer(&r.issuer_id).await?;
            emit(
                r.json,
                json!({"issuer_id": r.issuer_id, "removed": true}),
                format!("removed {}\n", r.issuer_id),
            )
        }
    }
}

async fn set_active(store: &dyn Store, issuer_id: String, active: bool, json: bool) -> Result<()> {
    store.set_trusted_issuer_active(&issuer_id, active).await?;
    let state = if active { "enabled" } else { "disabled" };
    emit(
        json,
        json!({"issuer_id": issuer_id, "active": active}),
        format!("{state} {issuer_id}\n"),
    )
}

/// Runs `jwtgrant user link`.
pub async fn link_user(
    store: &dyn Store,
    user_id: String,
    issuer_id: String,
    subject: String,
    json: bool,
) -> Result<()> {
    if subject.is_empty() {
        bail!("--subject must not be empty");
    }
    let record = find(store, &issuer_id).await?;
    store
        .user(&user_id)
        .await?
        .with_context(|| format!("no user has id '{user_id}'"))?;
    store
        .link_external_identity(&ExternalIdentityRecord {
            issuer_id: record.issuer_id.clone(),
            subject: subject.clone(),
            user_id: user_id.clone(),
            created_at: clock::now(),
        })
        .await?;
    emit(
        json,
        json!({"user_id": user_id, "issuer_id": record.issuer_id, "subject": subject}),
        format!("linked {subject} of {} to {user_id}\n", record.issuer),
    )
}
