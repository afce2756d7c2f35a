//! The adapters' clock: the [`Clock`] every server path reads `now` from (held in
//! the app state, so tests can move it), and RFC 3339 for display.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch by the system clock, for code that runs without a
/// server (the admin commands). Server paths read [`Clock::now`] instead.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Where a server reads the time, in Unix seconds. Cloning shares it: the app
/// state, the registry and the background tasks read the same clock.
///
/// It is the system clock plus an offset that only tests move ([`Clock::advance`],
/// [`Clock::set`]): time jumps, then runs on. Nothing in the server moves it.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    offset: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock::default()
    }

    /// Now, in seconds since the Unix epoch.
    pub fn now(&self) -> i64 {
        now().saturating_add(self.offset.load(Ordering::Relaxed))
    }

    /// Now, in milliseconds since the Unix epoch (moved as [`Clock::now`] is).
    pub fn now_ms(&self) -> i64 {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        ms.saturating_add(self.offset.load(Ordering::Relaxed).saturating_mul(1000))
    }

    /// Moves the clock `secs` forward (backward when negative).
    pub fn advance(&self, secs: i64) {
        self.offset.fetch_add(secs, Ordering::Relaxed);
    }

    /// Moves the clock so that it reads `unix` now.
    pub fn set(&self, unix: i64) {
        self.offset
            .store(unix.saturating_sub(now()), Ordering::Relaxed);
    }
}

/// Formats Unix seconds as RFC 3339 UTC, e.g. `2026-11-25T18:01:16Z`.
pub fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Reads an RFC 3339 date-time (`2026-11-25T18:01:16Z`, fractions and a numeric
/// offset allowed) as Unix seconds; `None` when it is not one.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = text.get(range)?;
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    if bytes.len() < 20
        || bytes.get(4) != Some(&b'-')
        || bytes.get(7) != Some(&b'-')
        || !matches!(bytes.get(10), Some(b'T' | b't' | b' '))
        || bytes.get(13) != Some(&b':')
        || bytes.get(16) != Some(&b':')
    {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let mut rest = text.get(19..)?;
    if let Some(fraction) = rest.strip_prefix('.') {
        let end = fraction
            .find(|c: char| !c.is_ascii_digit())
            .filter(|&end| end > 0)?;
        rest = fraction.get(end..)?;
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes().get(3) != Some(&b':') {
                return None;
            }
            let hours: i64 = rest.get(1..3)?.parse().ok()?;
            let minutes: i64 = rest.get(4..6)?.parse().ok()?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            sign * (hours * 3600 + minutes * 60)
        }
    };
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=days_in_month).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    // Days-from-civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

#[cfg(test)]
mod tests {
    use super::Clock;

    #[test]
    fn parses_what_it_formats_and_offsets() {
        for unix in [0, 951_782_400, 1_795_629_676, -86_400] {
            assert_eq!(super::parse_rfc3339(&super::rfc3339(unix)), Some(unix));
        }
        assert_eq!(
            super::parse_rfc3339("2026-11-25T19:01:16.25+01:00"),
            Some(1_795_629_676)
        );
        for bad in [
            "",
            "2026-11-25",
            "2026-11-25T18:01:16",
            "2026-02-30T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-11-25T24:00:00Z",
            "2026-11-25T18:01:16.Z",
            "2026-11-25T18:01:16+0100",
            "+026-11-25T18:01:16Z",
        ] {
            assert_eq!(super::parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(super::rfc3339(1_795_629_676), "2026-11-25T18:01:16Z");
    }

    #[test]
    fn follows_the_system_until_moved() {
        let clock = Clock::system();
        let before = super::now();
        let read = clock.now();
        assert!(read >= before && read <= super::now());

        let shared = clock.clone();
        shared.advance(3600);
        let read = clock.now();
        assert!(read >= before + 3600 && read <= super::now() + 3600);
    }

    #[test]
    fn a_set_clock_runs_on_from_there() {
        let clock = Clock::system();
        clock.set(1_000);
        let read = clock.now();
        assert!((1_000..=1_001).contains(&read), "{read}");
        clock.advance(-10);
        assert!((990..=992).contains(&clock.now()));
    }
}
