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

/// An RFC 3339 date-time (`YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)`) as Unix
/// milliseconds.
fn rfc3339_ms(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() < 20 || !matches!(bytes.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if text.get(4..5) != Some("-")
        || text.get(7..8) != Some("-")
        || text.get(13..14) != Some(":")
        || text.get(16..17) != Some(":")
        || !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = text.get(19..)?;
    let mut millis = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<3}", fraction.get(..digits.min(3))?);
        millis = padded.parse::<i64>().ok()?;
        rest = fraction.get(digits..)?;
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.get(..1)? {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.get(3..4) != Some(":") {
                return None;
            }
            let hours: i64 = rest.get(1..3)?.parse().ok()?;
            let minutes: i64 = rest.get(4..6)?.parse().ok()?;
            sign * (hours * 3600 + minutes * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    Some(secs * 1000 + millis)
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
    let secs = at_ms.div_euclid(1000);
    let millis = at_ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let of_day = secs.rem_euclid(86_400);
    // The civil date of a day count (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        of_day / 3600,
        of_day % 3600 / 60,
        of_day % 60
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
            1_796_119_200_250
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
