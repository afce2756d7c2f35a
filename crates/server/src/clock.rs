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

#[cfg(test)]
mod tests {
    use super::Clock;

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
