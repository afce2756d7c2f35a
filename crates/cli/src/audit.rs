//! `jwtgrant audit list`: the audit trail read from the store, which every
//! instance writes to, filtered as the operator asks, as lines or as JSON.

use anyhow::{Result, bail};
use jwtgrant_store::{AuditEvent, AuditQuery, Store};
use serde_json::json;

use crate::args::{AuditCommand, AuditListArgs};
use crate::output::emit;

/// Runs a `jwtgrant audit` command.
pub async fn audit(store: &dyn Store, command: AuditCommand) -> Result<()> {
    match command {
        AuditCommand::List(args) => list(store, args).await,
    }
}

async fn list(store: &dyn Store, args: AuditListArgs) -> Result<()> {
    let now_ms = jwtgrant_server::clock::now().saturating_mul(1000);
    let since_ms = args
        .since
        .as_deref()
        .map(|since| since_ms(since, now_ms))
        .transpose()?;
    let query = AuditQuery {
        since_ms,
        client_id: args.client,
        issuer: args.issuer,
        subject: args.subject,
        decision: args.decision,
        rule: args.rule,
        key_id: args.key,
        limit: args.limit,
    };
    let events = store.audit_events(&query).await?;
    let text = if events.is_empty() {
        "no audit events match\n".to_owned()
    } else {
        events.iter().map(line).collect()
    };
    emit(args.json, json!({ "events": events }), text)
}

/// `--since`: a duration back from now, or an RFC 3339 time, in Unix milliseconds.
fn since_ms(since: &str, now_ms: i64) -> Result<i64> {
    if let Some(at) = rfc3339_ms(since) {
        return Ok(at);
    }
    let split = since
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(since.len());
    let (number, unit) = since.split_at(split);
    let unit_ms: i64 = match unit {
        "ms" => 1,
        "s" | "" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => bail!(
            "--since '{since}': give a duration (90s, 15m, 2h, 7d) or an RFC 3339 time (2026-12-01T10:00:00Z)"
        ),
    };
    let Ok(number) = number.parse::<i64>() else {
        bail!("--since '{since}': the duration must start with a whole number");
    };
    Ok(now_ms.saturating_sub(number.saturating_mul(unit_ms)))
}

/// An RFC 3339 date-time as Unix milliseconds (to the second).
fn rfc3339_ms(text: &str) -> Option<i64> {
    jwtgrant_server::clock::parse_rfc3339(text).map(|secs| secs.saturating_mul(1000))
}

/// One event as a line: time, decision (and rule), endpoint, who and what.
fn line(event: &AuditEvent) -> String {
    let mut out = format!(
        "{} {} {}",
        rfc3339(event.at_ms),
        event.endpoint,
        match &event.rule {
            Some(rule) => format!("refused {rule}"),
            None => event.decision.clone(),
        }
    );
    for (name, value) in [
        ("grant_type", &event.grant_type),
        ("client", &event.client_id),
        ("issuer", &event.issuer),
        ("subject", &event.subject),
        ("scope", &event.scopes),
        ("kid", &event.key_id),
        ("token", &event.token_id),
        ("jti", &event.assertion_jti),
        ("from", &event.client_addr),
    ] {
        if let Some(value) = value {
            out.push_str(&format!(" {name}={value}"));
        }
    }
    out.push_str(&format!(
        " request={} instance={}\n",
        event.request_id, event.instance
    ));
    out
}

/// Unix milliseconds as an RFC 3339 UTC time with milliseconds.
fn rfc3339(at_ms: i64) -> String {
    let seconds = jwtgrant_server::clock::rfc3339(at_ms.div_euclid(1000));
    format!(
        "{}.{:03}Z",
        seconds.trim_end_matches('Z'),
        at_ms.rem_euclid(1000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_rfc3339_times() {
        let now = 1_800_000_000_000;
        assert_eq!(since_ms("90s", now).unwrap(), now - 90_000);
        assert_eq!(since_ms("15m", now).unwrap(), now - 900_000);
        assert_eq!(since_ms("2h", now).unwrap(), now - 7_200_000);
        assert_eq!(since_ms("7d", now).unwrap(), now - 604_800_000);
        assert_eq!(
            since_ms("2026-12-01T10:00:00Z", now).unwrap(),
            1_796_119_200_000
        );
        assert_eq!(
            since_ms("2026-12-01T11:00:00.25+01:00", now).unwrap(),
            1_796_119_200_000
        );
        for bad in ["soon", "5w", "2026-13-01T10:00:00Z", "2026-12-01T10:00:00"] {
            assert!(since_ms(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn times_print_as_rfc3339() {
        assert_eq!(rfc3339(1_796_119_200_250), "2026-12-01T10:00:00.250Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(&rfc3339(951_782_400_000)), Some(951_782_400_000));
    }
}
