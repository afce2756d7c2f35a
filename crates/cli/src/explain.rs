//! `jwtgrant explain`: the token endpoint's rules run on one assertion against the
//! store and `serve`'s configuration, printed one per line (or as JSON); it exits
//! with an error when the server would refuse the request.

use std::io::Read as _;

use anyhow::{Context, Result, bail};
use jwtgrant_core::explain::{Explanation, Verdict};
use jwtgrant_server::ServerConfig;
use jwtgrant_server::explain::{ExplainRequest, Explainer};
use jwtgrant_store::OpenOptions;
use serde_json::json;

use crate::args::ExplainArgs;
use crate::output::emit;

/// Runs `jwtgrant explain`.
pub async fn run(config: ServerConfig, args: ExplainArgs) -> Result<()> {
    let assertion = if args.assertion == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the assertion from standard input")?;
        text.trim().to_owned()
    } else {
        args.assertion.trim().to_owned()
    };
    // A shared database is read as it is, not migrated: explain changes nothing.
    let store = jwtgrant_store::open(&config.store, &OpenOptions::migrate(false))
        .await
        .context("cannot open the store")?;
    let explainer = Explainer::new(&config, store)
        .await
        .context("cannot read the registry")?;
    let resources: Vec<&str> = args.resources.iter().map(String::as_str).collect();
    let request = ExplainRequest {
        assertion: &assertion,
        client_assertion: args.client_assertion.as_deref().map(str::trim),
        scope: args.scope.as_deref(),
        resources: &resources,
    };
    let explanation = explainer
        .explain(request, jwtgrant_server::clock::now())
        .await
        .context("the store did not answer")?;
    emit(
        args.json,
        as_json(explainer.issuer(), &explanation),
        as_text(explainer.issuer(), &explanation),
    )?;
    match explanation.first_failure() {
        Some(failure) => bail!(
            "the server would refuse this request: {} ({} {})",
            failure.rule.unwrap_or("refused"),
            failure.part,
            failure.name
        ),
        None => Ok(()),
    }
}

fn as_json(issuer: &str, explanation: &Explanation) -> serde_json::Value {
    let checks: Vec<_> = explanation
        .checks()
        .iter()
        .map(|check| {
            json!({
                "part": check.part,
                "name": check.name,
                "verdict": check.verdict.as_str(),
                "rule": check.rule,
                "reason": check.reason,
            })
        })
        .collect();
    let failure = explanation.first_failure();
    json!({
        "issuer": issuer,
        "outcome": if failure.is_some() { "refused" } else { "issued" },
        "rule": failure.and_then(|f| f.rule),
        "checks": checks,
    })
}

fn as_text(issuer: &str, explanation: &Explanation) -> String {
    let width = explanation
        .checks()
        .iter()
        .map(|c| c.part.len() + c.name.len() + 1)
        .max()
        .unwrap_or(0);
    let mut text = format!("the token endpoint of {issuer} (--public-url, or --listen):\n");
    for check in explanation.checks() {
        let name = format!("{}.{}", check.part, check.name);
        let verdict = match check.verdict {
            Verdict::Pass => "pass",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "skip",
        };
        text.push_str(&format!("{verdict}  {name:width$}  {}\n", check.reason));
    }
    text.push_str(&match explanation.first_failure() {
        Some(failure) => format!(
            "refused: {} (the first rule that fails, as the token endpoint answers)\n",
            failure.rule.unwrap_or("refused")
        ),
        None => "would be issued: every rule holds\n".to_owned(),
    });
    text
}
