//! Retrying a request that failed transiently: exponential backoff with jitter,
//! `Retry-After` honoured, all within one deadline.

use std::future::Future;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// How a failed token request is retried. Connection errors, 5xx and 429 are
/// retried; an OAuth error (4xx) never is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// No attempt starts later than this after the first one; the call then fails
    /// with the last error. Default 30 s.
    pub deadline: Duration,
    /// The wait before the first retry, doubled for each further one (before
    /// jitter). Default 250 ms.
    pub initial_backoff: Duration,
    /// The longest wait between attempts, unless the server's `Retry-After` asks
    /// for more. Default 8 s.
    pub max_backoff: Duration,
    /// How long one attempt may take, capped by what is left of the deadline.
    /// Default 10 s.
    pub request_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            deadline: Duration::from_secs(30),
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// A policy that makes a single attempt.
    pub fn no_retries() -> Self {
        RetryPolicy {
            deadline: Duration::ZERO,
            ..Self::default()
        }
    }

    /// The same policy with another deadline.
    pub fn with_deadline(self, deadline: Duration) -> Self {
        RetryPolicy { deadline, ..self }
    }

    /// The wait after failed attempt number `attempt` (1-based): "equal jitter",
    /// a random point between half and all of `initial * 2^(attempt-1)`, capped.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempt.saturating_sub(1).min(20))
            .unwrap_or(u32::MAX);
        let full = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        let half = full / 2;
        half + half.mul_f64(random_unit())
    }
}

/// Whether and when a failed attempt may be tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Trying again cannot help (an OAuth error, a bad response).
    Permanent,
    /// Try again, after the server's `Retry-After` when it gave one.
    Transient {
        /// The server's `Retry-After`.
        retry_after: Option<Duration>,
    },
}

/// Sorts an error into [`Verdict`]s.
pub(crate) trait Classify {
    /// Whether trying again may help.
    fn verdict(&self) -> Verdict;
}

/// The last error after the attempts stopped, and how many were made.
#[derive(Debug)]
pub(crate) struct Failed<E> {
    /// The last attempt's error.
    pub error: E,
    /// Attempts made.
    pub attempts: u32,
    /// Whether the error was transient, i.e. the deadline ended the retries.
    pub transient: bool,
}

/// Runs `attempt` (given its timeout) until it succeeds, fails permanently, or the
/// next try would start after the deadline.
pub(crate) async fn run<T, E, F, Fut>(policy: &RetryPolicy, mut attempt: F) -> Result<T, Failed<E>>
where
    E: Classify,
    F: FnMut(Duration) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    let deadline = started + policy.deadline;
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout = policy.request_timeout.min(left.max(Duration::from_secs(1)));
        let error = match attempt(timeout).await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let wait = match error.verdict() {
            Verdict::Permanent => {
                return Err(Failed {
                    error,
                    attempts,
                    transient: false,
                });
            }
            Verdict::Transient { retry_after } => {
                retry_after.unwrap_or_else(|| policy.backoff(attempts))
            }
        };
        if Instant::now() + wait > deadline {
            return Err(Failed {
                error,
                attempts,
                transient: true,
            });
        }
        tracing::debug!(
            attempts,
            ?wait,
            "token request failed transiently; retrying"
        );
        tokio::time::sleep(wait).await;
    }
}

/// Reads `Retry-After` (RFC 9110 section 10.2.3): delta-seconds, or an HTTP-date
/// counted from now (a date already past means at once). Anything else is ignored
/// and the backoff applies.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(
        date.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// A uniform random number in [0, 1) from the system RNG; 0.5 if it fails.
fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    match aws_lc_rs::rand::fill(&mut bytes) {
        Ok(()) => (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let policy = RetryPolicy::default();
        for _ in 0..50 {
            let first = policy.backoff(1);
            assert!(first >= Duration::from_millis(125) && first <= Duration::from_millis(250));
            let third = policy.backoff(3);
            assert!(third >= Duration::from_millis(500) && third <= Duration::from_secs(1));
            let late = policy.backoff(40);
            assert!(late >= Duration::from_secs(4) && late <= Duration::from_secs(8));
        }
    }

    #[test]
    fn backoff_is_jittered() {
        // Equal jitter draws from a range 125 ms wide (of attempt 1) and 4 s wide
        // (late attempts): without jitter every draw would be the same.
        let policy = RetryPolicy::default();
        for attempt in [1, 3, 40] {
            let draws: Vec<Duration> = (0..20).map(|_| policy.backoff(attempt)).collect();
            assert!(
                draws.iter().any(|d| *d != draws[0]),
                "attempt {attempt}: {draws:?}"
            );
        }
    }

    #[test]
    fn reads_retry_after_seconds_and_http_dates() {
        let mut headers = reqwest::header::HeaderMap::new();
        let mut set = |value: &str| {
            headers.insert(reqwest::header::RETRY_AFTER, value.parse().unwrap());
            retry_after(&headers)
        };
        assert_eq!(set("3"), Some(Duration::from_secs(3)));
        assert_eq!(set(" 0 "), Some(Duration::ZERO));
        // An HTTP-date (IMF-fixdate) ten seconds ahead: about ten seconds, the date
        // having whole-second precision.
        let ahead = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(10));
        let wait = set(&ahead).unwrap();
        assert!(
            wait > Duration::from_secs(8) && wait <= Duration::from_secs(10),
            "{wait:?}"
        );
        // The obsolete RFC 850 form too; a date in the past means at once.
        assert_eq!(set("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(
            set("Wednesday, 21-Oct-15 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(set("soon"), None);
        assert_eq!(set("-1"), None);
        headers.remove(reqwest::header::RETRY_AFTER);
        assert_eq!(retry_after(&headers), None);
    }

    #[derive(Debug, PartialEq)]
    struct E(Verdict);
    impl Classify for E {
        fn verdict(&self) -> Verdict {
            self.0
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_transient_errors_until_success() {
        let calls = Cell::new(0);
        let policy = RetryPolicy::default();
        let result = run(&policy, |_| {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 3 {
                    Err(E(Verdict::Transient { retry_after: None }))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(result.ok(), Some(3));
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_stop_at_once_and_the_deadline_ends_retries() {
        let policy = RetryPolicy::default().with_deadline(Duration::from_secs(10));
        let failed = run(&policy, |_| async { Err::<(), _>(E(Verdict::Permanent)) })
            .await
            .unwrap_err();
        assert_eq!((failed.attempts, failed.transient), (1, false));

        let started = Instant::now();
        let failed = run(&policy, |_| async {
            Err::<(), _>(E(Verdict::Transient {
                retry_after: Some(Duration::from_secs(4)),
            }))
        })
        .await
        .unwrap_err();
        // Attempts at 0 s, 4 s and 8 s; a fourth at 12 s would pass the deadline.
        assert_eq!((failed.attempts, failed.transient), (3, true));
        assert_eq!(started.elapsed(), Duration::from_secs(8));
    }
}
