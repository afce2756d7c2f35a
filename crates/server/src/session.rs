//! Browser sessions of the login and consent pages: a cookie signed with a key all
//! instances share (kept in the store, sealed like the signing keys), carrying the
//! session id, the signed-in user, its expiry and a tag of the user's password hash
//! (a password change ends every session). CSRF tokens are derived from the session
//! id. Failed logins are throttled per account and per client address.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_lc_rs::hmac;
use jwtgrant_core::b64;
use jwtgrant_store::Store;

use crate::credentials::{random_token, token_hash};
use crate::sealing::KeySealer;
use crate::signing::SigningKeyError;

/// The cookie's name.
pub const COOKIE_NAME: &str = "jwtgrant_session";

/// How long a session lasts, signed in or not.
pub const SESSION_LIFETIME_SECS: i64 = 3600;

/// What the store calls the session key.
const SESSION_KEY_NAME: &str = "session-hmac-key";

/// A session read from (or about to be written to) the cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Random id; CSRF tokens derive from it.
    pub sid: String,
    /// The signed-in user, if any.
    pub user_id: Option<String>,
    /// Unix seconds.
    pub expires_at: i64,
    /// When the user signed in (Unix seconds; 0 when nobody is signed in): the ID
    /// token's `auth_time`.
    pub auth_time: i64,
    /// A tag of the user's password hash when they signed in.
    pub password_tag: String,
}

/// Signs and checks session cookies and CSRF tokens.
pub struct SessionKeys {
    key: hmac::Key,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys")
    }
}

impl SessionKeys {
    /// The key every instance shares: created (sealed) by the first instance to ask.
    pub async fn load(
        store: &dyn Store,
        sealer: &KeySealer,
        now: i64,
    ) -> Result<Self, SigningKeyError> {
        let mut fresh = [0u8; 32];
        aws_lc_rs::rand::fill(&mut fresh).map_err(|_| {
            jwtgrant_store::StoreError::Unavailable("no randomness for the session key".into())
        })?;
        let candidate = sealer.seal(SESSION_KEY_NAME, &fresh)?;
        let stored = store
            .server_secret(SESSION_KEY_NAME, &candidate, now)
            .await?;
        let key = sealer.open(SESSION_KEY_NAME, &stored)?;
        Ok(SessionKeys {
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
        })
    }

    /// A key for tests.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        SessionKeys {
            key: hmac::Key::new(hmac::HMAC_SHA256, bytes),
        }
    }

    fn mac(&self, message: &str) -> String {
        b64::encode(hmac::sign(&self.key, message.as_bytes()))
    }

    /// A new anonymous session.
    pub fn anonymous(&self, now: i64) -> Session {
        Session {
            sid: random_token(),
            user_id: None,
            expires_at: now + SESSION_LIFETIME_SECS,
            auth_time: 0,
            password_tag: "-".into(),
        }
    }

    /// A new session for a user who just signed in (a new id: no fixation).
    pub fn signed_in(&self, user_id: &str, password_hash: &str, now: i64) -> Session {
        Session {
            sid: random_token(),
            user_id: Some(user_id.to_owned()),
            expires_at: now + SESSION_LIFETIME_SECS,
            auth_time: now,
            password_tag: password_tag(password_hash),
        }
    }

    /// The cookie value for `session`.
    pub fn encode(&self, session: &Session) -> String {
        let body = format!(
            "{}.{}.{}.{}.{}",
            session.sid,
            session.user_id.as_deref().unwrap_or("-"),
            session.expires_at,
            session.auth_time,
            session.password_tag
        );
        let mac = self.mac(&body);
        format!("{body}.{mac}")
    }

    /// The session in a cookie value, if its signature holds and it has not expired.
    pub fn decode(&self, value: &str, now: i64) -> Option<Session> {
        let (body, mac) = value.rsplit_once('.')?;
        let expected = self.mac(body);
        aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), mac.as_bytes())
            .ok()?;
        let mut parts = body.split('.');
        let sid = parts.next()?.to_owned();
        let user = parts.next()?;
        let expires_at: i64 = parts.next()?.parse().ok()?;
        let auth_time: i64 = parts.next()?.parse().ok()?;
        let password_tag = parts.next()?.to_owned();
        if parts.next().is_some() || now >= expires_at {
            return None;
        }
        Some(Session {
            sid,
            user_id: (user != "-").then(|| user.to_owned()),
            expires_at,
            auth_time,
            password_tag,
        })
    }

    /// A mark that an authorization request for `client_id` demanded a fresh
    /// sign-in at `now`, carried through the sign-in page in its `return_to`.
    pub fn login_demand(&self, client_id: &str, now: i64) -> String {
        format!(
            "{now}.{}",
            self.mac(&format!("login-demand:{now}:{client_id}"))
        )
    }

    /// When a mark from [`SessionKeys::login_demand`] for `client_id` was made, if
    /// this server made it less than a session's lifetime ago; a sign-in at or after
    /// that time answers the demand.
    pub fn login_demanded_at(&self, mark: &str, client_id: &str, now: i64) -> Option<i64> {
        let (at, mac) = mark.split_once('.')?;
        let at: i64 = at.parse().ok()?;
        let expected = self.mac(&format!("login-demand:{at}:{client_id}"));
        aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), mac.as_bytes())
            .ok()?;
        (at <= now && now - at < SESSION_LIFETIME_SECS).then_some(at)
    }

    /// The CSRF token of a session.
    pub fn csrf_token(&self, session: &Session) -> String {
        self.mac(&format!("csrf:{}", session.sid))
    }

    /// Whether `token` is the CSRF token of `session`.
    pub fn csrf_ok(&self, session: &Session, token: &str) -> bool {
        aws_lc_rs::constant_time::verify_slices_are_equal(
            self.csrf_token(session).as_bytes(),
            token.as_bytes(),
        )
        .is_ok()
    }
}

/// A short tag of a password hash: sessions signed in under another password are over.
pub fn password_tag(password_hash: &str) -> String {
    token_hash(password_hash).chars().take(16).collect()
}

/// The `Set-Cookie` value for `encoded` (or, with `None`, one that removes it).
pub fn set_cookie(encoded: Option<&str>, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match encoded {
        Some(value) => format!(
            "{COOKIE_NAME}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={SESSION_LIFETIME_SECS}{secure}"
        ),
        None => format!("{COOKIE_NAME}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"),
    }
}

/// The session cookie's value in a `Cookie` header, if present.
pub fn cookie_value(header: &str) -> Option<&str> {
    header.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == COOKIE_NAME).then_some(value)
    })
}

/// Failed sign-ins allowed per account in one window.
pub const MAX_FAILURES_PER_ACCOUNT: u32 = 5;
/// Failed sign-ins allowed per client address in one window.
pub const MAX_FAILURES_PER_ADDRESS: u32 = 20;
/// The window, in seconds.
pub const FAILURE_WINDOW_SECS: i64 = 900;

/// Counts failed sign-ins per key (an account's email, a client address) in fixed
/// windows; past the limit, sign-in is refused until the window ends. In this
/// process, or shared by every instance through Redis when one is configured.
pub enum LoginThrottle {
    /// This instance's counts.
    Local(Mutex<HashMap<String, (i64, u32)>>),
    /// Counts in Redis (`INCR` with an expiry of one window).
    Redis {
        /// The shared connection.
        connection: redis::aio::ConnectionManager,
        /// The start of every key (`redis_key_prefix`).
        prefix: String,
    },
}

impl std::fmt::Debug for LoginThrottle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LoginThrottle::Local(_) => "LoginThrottle::Local",
            LoginThrottle::Redis { .. } => "LoginThrottle::Redis",
        })
    }
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle::Local(Mutex::new(HashMap::new()))
    }
}

fn redis_key(prefix: &str, key: &str) -> String {
    format!("{prefix}login-failures:{key}")
}

fn redis_error(error: redis::RedisError) -> jwtgrant_store::StoreError {
    jwtgrant_store::StoreError::Unavailable(format!("redis: {error}"))
}

impl LoginThrottle {
    /// Seconds until `key` may try again, if it is locked out. With Redis down the
    /// answer is an error: sign-in fails closed.
    pub async fn locked(
        &self,
        key: &str,
        limit: u32,
        now: i64,
    ) -> Result<Option<i64>, jwtgrant_store::StoreError> {
        match self {
            LoginThrottle::Local(failures) => Ok(failures.lock().ok().and_then(|failures| {
                let (start, count) = failures.get(key)?;
                let ends = start + FAILURE_WINDOW_SECS;
                (now < ends && *count >= limit).then_some(ends - now)
            })),
            LoginThrottle::Redis { connection, prefix } => {
                let (count, ttl): (Option<u32>, i64) = redis::pipe()
                    .get(redis_key(prefix, key))
                    .ttl(redis_key(prefix, key))
                    .query_async(&mut connection.clone())
                    .await
                    .map_err(redis_error)?;
                Ok((count.unwrap_or(0) >= limit).then_some(ttl.max(1)))
            }
        }
    }

    /// Counts a failure for `key`.
    pub async fn fail(&self, key: &str, now: i64) {
        match self {
            LoginThrottle::Local(failures) => {
                if let Ok(mut failures) = failures.lock() {
                    if failures.len() > 100_000 {
                        failures.retain(|_, (start, _)| now < *start + FAILURE_WINDOW_SECS);
                    }
                    let entry = failures.entry(key.to_owned()).or_insert((now, 0));
                    if now >= entry.0 + FAILURE_WINDOW_SECS {
                        *entry = (now, 0);
                    }
                    entry.1 = entry.1.saturating_add(1);
                }
            }
            LoginThrottle::Redis { connection, prefix } => {
                // The window starts with the first failure (NX keeps its expiry).
                let counted: Result<(), _> = redis::pipe()
                    .atomic()
                    .incr(redis_key(prefix, key), 1)
                    .ignore()
                    .cmd("EXPIRE")
                    .arg(redis_key(prefix, key))
                    .arg(FAILURE_WINDOW_SECS)
                    .arg("NX")
                    .ignore()
                    .query_async(&mut connection.clone())
                    .await;
                if let Err(error) = counted {
                    tracing::warn!(%error, "failed sign-in not counted in Redis");
                }
            }
        }
    }

    /// Forgets `key`'s failures (a successful sign-in).
    pub async fn clear(&self, key: &str) {
        match self {
            LoginThrottle::Local(failures) => {
                if let Ok(mut failures) = failures.lock() {
                    failures.remove(key);
                }
            }
            LoginThrottle::Redis { connection, prefix } => {
                let cleared: Result<(), _> = redis::cmd("DEL")
                    .arg(redis_key(prefix, key))
                    .query_async(&mut connection.clone())
                    .await;
                if let Err(error) = cleared {
                    tracing::warn!(%error, "sign-in failures not cleared in Redis");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_round_trip_and_refuse_tampering_and_age() {
        let keys = SessionKeys::from_bytes(b"k");
        let session = keys.signed_in("user-1", "$argon2id$h", 100);
        let value = keys.encode(&session);
        assert_eq!(keys.decode(&value, 101), Some(session.clone()));
        assert_eq!(keys.decode(&value, session.expires_at), None);
        let forged = value.replacen("user-1", "user-2", 1);
        assert_eq!(keys.decode(&forged, 101), None);
        assert_eq!(SessionKeys::from_bytes(b"other").decode(&value, 101), None);
        assert_eq!(keys.decode("garbage", 101), None);
    }

    #[test]
    fn a_login_demand_is_this_servers_for_this_client_and_recent() {
        let keys = SessionKeys::from_bytes(b"k");
        let mark = keys.login_demand("client-a", 1_000);
        assert_eq!(
            keys.login_demanded_at(&mark, "client-a", 1_010),
            Some(1_000)
        );
        assert_eq!(keys.login_demanded_at(&mark, "client-b", 1_010), None);
        assert_eq!(
            keys.login_demanded_at(&mark, "client-a", 1_000 + SESSION_LIFETIME_SECS),
            None
        );
        let earlier = mark.replacen("1000", "10", 1);
        assert_eq!(keys.login_demanded_at(&earlier, "client-a", 1_010), None);
        assert_eq!(
            SessionKeys::from_bytes(b"other").login_demanded_at(&mark, "client-a", 1_010),
            None
        );
        let session = keys.signed_in("user-1", "$argon2id$h", 1_005);
        assert_eq!(session.auth_time, 1_005);
        assert_eq!(keys.decode(&keys.encode(&session), 1_006), Some(session));
    }

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        let keys = SessionKeys::from_bytes(b"k");
        let (a, b) = (keys.anonymous(1), keys.anonymous(1));
        assert!(keys.csrf_ok(&a, &keys.csrf_token(&a)));
        assert!(!keys.csrf_ok(&b, &keys.csrf_token(&a)));
        assert!(!keys.csrf_ok(&a, ""));
    }

    #[test]
    fn the_cookie_header_is_read_and_written() {
        assert_eq!(cookie_value("a=1; jwtgrant_session=v.1; b=2"), Some("v.1"));
        assert_eq!(cookie_value("a=1"), None);
        let set = set_cookie(Some("v"), true);
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Lax") && set.ends_with("Secure")
        );
        assert!(!set_cookie(Some("v"), false).contains("Secure"));
    }

    #[tokio::test]
    async fn failures_lock_out_until_the_window_ends() {
        let throttle = LoginThrottle::default();
        let limit = MAX_FAILURES_PER_ACCOUNT;
        for _ in 0..limit {
            assert_eq!(throttle.locked("a", limit, 10).await.ok(), Some(None));
            throttle.fail("a", 10).await;
        }
        assert_eq!(
            throttle.locked("a", limit, 10).await.ok(),
            Some(Some(FAILURE_WINDOW_SECS))
        );
        assert_eq!(
            throttle
                .locked("a", limit, 10 + FAILURE_WINDOW_SECS)
                .await
                .ok(),
            Some(None)
        );
        throttle.clear("a").await;
        assert_eq!(throttle.locked("a", limit, 11).await.ok(), Some(None));
    }
}
