//! The trust-target commands (`jwtgrant trust-target add|list|remove`): the
//! operator's list of the servers each client may get ID-JAGs for, as the
//! enterprise identity provider of cross-app access. The token exchange reads it
//! from the store on every request, so a change holds on every instance at once.

use anyhow::{Result, bail};
use jwtgrant_core::resource::check_form;
use jwtgrant_server::clock;
use jwtgrant_store::{Store, TrustTargetRecord};
use serde_json::{Value, json};

use crate::args::{TrustTargetAddArgs, TrustTargetCommand};
use crate::output::emit;

/// Runs a `jwtgrant trust-target` command.
pub async fn trust_target(store: &dyn Store, command: TrustTargetCommand) -> Result<()> {
    match command {
        TrustTargetCommand::Add(args) => add(store, args).await,
        TrustTargetCommand::List { integration, json } => {
            let targets = store.trust_targets(integration.as_deref()).await?;
            let text: String = targets.iter().map(line).collect();
            emit(
                json,
                json!({"trust_targets": targets.iter().map(to_json).collect::<Vec<_>>()}),
                text,
            )
        }
        TrustTargetCommand::Remove {
            audience,
            integration,
            json,
        } => {
            store.remove_trust_target(&audience, &integration).await?;
            emit(
                json,
                json!({"audience": audience, "integration_key": integration, "removed": true}),
                format!("removed the trust target {audience} of {integration}\n"),
            )
        }
    }
}

async fn add(store: &dyn Store, args: TrustTargetAddArgs) -> Result<()> {
    if check_form(&args.audience).is_err() || !args.audience.contains("://") {
        bail!(
            "--audience '{}' must be the other server's issuer identifier, an absolute URL",
            args.audience
        );
    }
    for resource in &args.resources {
        if let Err(error) = check_form(resource) {
            bail!("--resource: {error}");
        }
    }
    if let Some(scope) = args
        .scopes
        .iter()
        .find(|s| s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        bail!("--scope '{scope}' must be one scope, without spaces");
    }
    let Some(integration) = store.integration(&args.integration).await? else {
        bail!("no integration '{}'", args.integration);
    };
    let confidential =
        integration.client_secret_hash.is_some() || integration.keys.iter().any(|k| k.active);
    if !confidential {
        bail!(
            "integration '{}' has no client secret and no active key: token exchange is only for confidential clients",
            args.integration
        );
    }
    let record = TrustTargetRecord {
        audience: args.audience,
        remote_client_id: args
            .remote_client_id
            .unwrap_or_else(|| args.integration.clone()),
        integration_key: args.integration,
        resources: args.resources,
        scopes: args.scopes,
        created_at: clock::now(),
    };
    store.add_trust_target(&record).await?;
    emit(args.json, to_json(&record), line(&record))
}

fn to_json(record: &TrustTargetRecord) -> Value {
    json!({
        "audience": record.audience,
        "integration_key": record.integration_key,
        "remote_client_id": record.remote_client_id,
        "resources": record.resources,
        "scopes": record.scopes,
        "created_at": clock::rfc3339(record.created_at),
    })
}

fn line(record: &TrustTargetRecord) -> String {
    let list = |items: &[String]| {
        if items.is_empty() {
            "-".to_owned()
        } else {
            items.join(",")
        }
    };
    format!(
        "{}\t{}\tas {}\tresources {}\tscopes {}\n",
        record.audience,
        record.integration_key,
        record.remote_client_id,
        list(&record.resources),
        list(&record.scopes)
    )
}
