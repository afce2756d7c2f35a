//! Outbound fetches that are safe to point at the internet: trusted issuers' JWKS
//! and metadata (and, later, client metadata documents).
//!
//! [`SafeFetcher::get`] fetches one URL under a [`FetchPolicy`]:
//! - https only, and never to a loopback, link-local, private or otherwise
//!   non-public address ([`is_forbidden_address`]). An IP-literal URL is checked
//!   before anything is sent; a name is checked by the resolver the client
//!   connects through, which resolves it, refuses it if any address is forbidden,
//!   and hands over exactly the addresses it checked, so DNS rebinding between a
//!   check and the connection cannot happen. `allow_insecure` lifts both rules,
//!   for development and tests.
//! - Redirects are followed only within the same origin (scheme, host and port),
//!   at most [`MAX_REDIRECTS`] times; a redirect anywhere else is an error. The
//!   host being the same, its addresses are checked as for the first request.
//! - One timeout covers the whole fetch: resolution, connection, headers and body.
//! - The body is read in chunks and refused once it passes `max_bytes`; a
//!   `Content-Length` over it is refused before the body is read.
//! - No proxy from the environment, no cookies, no decompression; `Accept:
//!   application/json`; a status other than 2xx is an error.
//!
//! [`SafeFetcher::discover_jwks_uri`] reads an issuer's OIDC or RFC 8414 metadata
//! for its `jwks_uri`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{ACCEPT, AGE, CACHE_CONTROL, HeaderMap};
use reqwest::redirect;

/// The default timeout of one fetch.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default largest body of one fetch, in bytes.
pub const DEFAULT_MAX_BYTES: usize = 256 * 1024;
/// The most same-origin redirects one fetch follows.
pub const MAX_REDIRECTS: usize = 3;

/// How outbound fetches are bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchPolicy {
    /// Allow http URLs and every address, loopback and private ones included: for
    /// development and tests against servers on this machine, never in production.
    pub allow_insecure: bool,
    /// The longest one fetch may take, from resolving the name to the body's end.
    pub timeout: Duration,
    /// The largest body accepted, in bytes.
    pub max_bytes: usize,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        FetchPolicy {
            allow_insecure: false,
            timeout: DEFAULT_TIMEOUT,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// A fetched body, and how long it may be cached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The body, at most the policy's `max_bytes`.
    pub body: Vec<u8>,
    /// Seconds the response may be cached: `Cache-Control: max-age` less `Age`;
    /// `Some(0)` for `no-cache` or `no-store`; `None` when the response says
    /// nothing.
    pub max_age: Option<u64>,
}

/// Why a fetch failed. The text is short, names no URL or address, and never
/// holds any of the response body: it may reach a client's `error_description`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// Not an absolute http(s) URL with a host, or one with a user or password.
    #[error("not a usable URL")]
    InvalidUrl,
    /// An http (or other) URL where https is required.
    #[error("URL is not https")]
    NotHttps,
    /// The host is, or resolves to, an address that is not fetched from.
    #[error("address not allowed (loopback, link-local, private or reserved)")]
    ForbiddenAddress(IpAddr),
    /// A redirect to another origin, or too many.
    #[error("redirect refused")]
    Redirect,
    /// The fetch took longer than the policy's timeout.
    #[error("timed out")]
    Timeout,
    /// The body is longer than the policy's `max_bytes`.
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    /// A status other than 2xx.
    #[error("HTTP status {0}")]
    Status(u16),
    /// Resolution, connection, TLS or HTTP failed.
    #[error("connection failed")]
    Transport(#[source] reqwest::Error),
    /// The HTTP client could not be built.
    #[error("HTTP client unavailable")]
    Client(#[source] reqwest::Error),
    /// The metadata document is not JSON or lacks what is needed.
    #[error("metadata {0}")]
    BadMetadata(&'static str),
    /// The metadata's `issuer` is not exactly the configured issuer.
    #[error("metadata issuer does not match")]
    IssuerMismatch,
}

/// A resolver error: the name resolves to a forbidden address.
#[derive(Debug, thiserror::Error)]
#[error("address {0} is not allowed")]
struct AddressRefused(IpAddr);

/// A redirect policy error: the redirect leaves the origin, or there are too many.
#[derive(Debug, thiserror::Error)]
#[error("redirect refused")]
struct RedirectRefused;

/// Fetches URLs under a [`FetchPolicy`]; cheap to share, one connection pool.
#[derive(Debug, Clone)]
pub struct SafeFetcher {
    client: reqwest::Client,
    policy: FetchPolicy,
}

impl SafeFetcher {
    /// A fetcher bounded by `policy`.
    pub fn new(policy: FetchPolicy) -> Result<Self, FetchError> {
        Self::following(policy, redirect::Policy::custom(same_origin_redirects))
    }

    /// A fetcher bounded by `policy` that follows no redirect at all: a 3xx is a
    /// refusal (client ID metadata documents, whose URL is the client's identity).
    pub fn without_redirects(policy: FetchPolicy) -> Result<Self, FetchError> {
        Self::following(policy, redirect::Policy::none())
    }

    fn following(policy: FetchPolicy, redirects: redirect::Policy) -> Result<Self, FetchError> {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .redirect(redirects)
            .https_only(!policy.allow_insecure)
            .timeout(policy.timeout)
            .connect_timeout(policy.timeout)
            .user_agent(concat!("jwtgrant/", env!("CARGO_PKG_VERSION")));
        if !policy.allow_insecure {
            builder = builder.dns_resolver(CheckedResolver);
        }
        let client = builder.build().map_err(FetchError::Client)?;
        Ok(SafeFetcher { client, policy })
    }

    /// The policy it fetches under.
    pub fn policy(&self) -> &FetchPolicy {
        &self.policy
    }

    /// Fetches `url`: its body and how long it may be cached.
    pub async fn get(&self, url: &str) -> Result<Fetched, FetchError> {
        let url = check_url(url, self.policy.allow_insecure)?;
        tokio::time::timeout(self.policy.timeout, self.get_checked(url))
            .await
            .unwrap_or(Err(FetchError::Timeout))
    }

    async fn get_checked(&self, url: Url) -> Result<Fetched, FetchError> {
        let mut response = self
            .client
            .get(url)
            .header(ACCEPT, "application/json")
            .send()
            .await
            .map_err(classify)?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status(status.as_u16()));
        }
        let max = self.policy.max_bytes;
        if response
            .content_length()
            .is_some_and(|length| length > max as u64)
        {
            return Err(FetchError::TooLarge(max));
        }
        let max_age = max_age(response.headers());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if body.len() + chunk.len() > max {
                return Err(FetchError::TooLarge(max));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Fetched { body, max_age })
    }

    /// The `jwks_uri` of `issuer` from its metadata: first OpenID Connect Discovery
    /// (`{issuer}/.well-known/openid-configuration`), then RFC 8414
    /// (`/.well-known/oauth-authorization-server` before the issuer's path). The
    /// document's `issuer` must be exactly `issuer` (not differing by a trailing
    /// slash or case), and its `jwks_uri` a URL this fetcher would fetch. The second
    /// document is tried only when the first is missing (a status other than 2xx) or
    /// unusable; each fetch has the policy's timeout.
    pub async fn discover_jwks_uri(&self, issuer: &str) -> Result<String, FetchError> {
        let base = check_url(issuer, self.policy.allow_insecure)?;
        if base.query().is_some() || base.fragment().is_some() {
            return Err(FetchError::InvalidUrl);
        }
        let mut last = FetchError::BadMetadata("not found");
        for url in metadata_urls(issuer, &base) {
            let found = self.get(&url).await.and_then(|fetched| {
                jwks_uri_from(&fetched.body, issuer, self.policy.allow_insecure)
            });
            match found {
                Ok(jwks_uri) => return Ok(jwks_uri),
                Err(error @ (FetchError::Status(_) | FetchError::BadMetadata(_))) => last = error,
                Err(error) => return Err(error),
            }
        }
        Err(last)
    }
}

/// Where `issuer`'s metadata may be: the OIDC location, then the RFC 8414 one.
fn metadata_urls(issuer: &str, base: &Url) -> [String; 2] {
    let oidc = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let path = base.path().trim_end_matches('/');
    let mut origin = base.clone();
    origin.set_path("");
    let rfc8414 = format!(
        "{}.well-known/oauth-authorization-server{path}",
        origin.as_str()
    );
    [oidc, rfc8414]
}

/// The `jwks_uri` of a metadata document that must be `issuer`'s.
fn jwks_uri_from(body: &[u8], issuer: &str, allow_insecure: bool) -> Result<String, FetchError> {
    let document: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| FetchError::BadMetadata("is not JSON"))?;
    let claimed = document
        .get("issuer")
        .and_then(serde_json::Value::as_str)
        .ok_or(FetchError::BadMetadata("has no issuer"))?;
    if claimed != issuer {
        return Err(FetchError::IssuerMismatch);
    }
    let jwks_uri = document
        .get("jwks_uri")
        .and_then(serde_json::Value::as_str)
        .ok_or(FetchError::BadMetadata("has no jwks_uri"))?;
    check_url(jwks_uri, allow_insecure)?;
    Ok(jwks_uri.to_owned())
}

/// Checks a URL's form as [`SafeFetcher::get`] would before fetching it: absolute,
/// https (or http when `allow_insecure`), a host, no user or password, and, for an
/// IP literal, an address that may be fetched from (unless `allow_insecure`). A
/// name's addresses are checked when it is resolved, at the fetch.
pub fn check_url(url: &str, allow_insecure: bool) -> Result<Url, FetchError> {
    let parsed = Url::parse(url).map_err(|_| FetchError::InvalidUrl)?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_insecure => {}
        "http" => return Err(FetchError::NotHttps),
        _ => return Err(FetchError::InvalidUrl),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(FetchError::InvalidUrl);
    }
    let host = parsed
        .host_str()
        .filter(|host| !host.is_empty())
        .ok_or(FetchError::InvalidUrl)?;
    // The URL parser has written any IPv4 form (`0x7f.1`, `2130706433`) as a dotted
    // quad and an IPv6 literal in brackets; anything else is a name.
    let ip = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => Some(IpAddr::V6(v6.parse().map_err(|_| FetchError::InvalidUrl)?)),
        None => host.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
    };
    if let Some(ip) = ip.filter(|ip| !allow_insecure && is_forbidden_address(*ip)) {
        return Err(FetchError::ForbiddenAddress(ip));
    }
    Ok(parsed)
}

/// Follows a redirect only within the first URL's origin, [`MAX_REDIRECTS`] times.
fn same_origin_redirects(attempt: redirect::Attempt<'_>) -> redirect::Action {
    let same_origin = attempt
        .previous()
        .first()
        .is_some_and(|first| first.origin() == attempt.url().origin());
    if same_origin && attempt.previous().len() <= MAX_REDIRECTS {
        attempt.follow()
    } else {
        attempt.error(RedirectRefused)
    }
}

/// A client error as a [`FetchError`]: the resolver's and the redirect policy's
/// refusals are found in its chain of sources.
fn classify(error: reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(current) = source {
        if let Some(AddressRefused(ip)) = current.downcast_ref::<AddressRefused>() {
            return FetchError::ForbiddenAddress(*ip);
        }
        if current.downcast_ref::<RedirectRefused>().is_some() {
            return FetchError::Redirect;
        }
        source = current.source();
    }
    if error.is_timeout() {
        FetchError::Timeout
    } else if error.is_redirect() {
        FetchError::Redirect
    } else {
        FetchError::Transport(error)
    }
}

/// Resolves a name and refuses it if any of its addresses is forbidden; the
/// addresses it returns, all checked, are the ones connected to.
struct CheckedResolver;

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let checked = only_allowed(addrs)?;
            Ok(Box::new(checked.into_iter()) as Addrs)
        })
    }
}

/// A name's addresses, all of them allowed, or the first that is not: one
/// forbidden address refuses the name, since which address is connected to is not
/// ours to choose.
fn only_allowed(addrs: Vec<SocketAddr>) -> Result<Vec<SocketAddr>, AddressRefused> {
    match addrs.iter().find(|addr| is_forbidden_address(addr.ip())) {
        Some(refused) => Err(AddressRefused(refused.ip())),
        None => Ok(addrs),
    }
}

/// How long a response may be cached: `Cache-Control: max-age` (the last one
/// given) less `Age`; `Some(0)` when it says `no-cache` or `no-store`.
fn max_age(headers: &HeaderMap) -> Option<u64> {
    let mut max_age = None;
    let directives = headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','));
    for directive in directives {
        let (name, argument) = match directive.split_once('=') {
            Some((name, argument)) => (name.trim(), Some(argument.trim().trim_matches('"'))),
            None => (directive.trim(), None),
        };
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Some(0);
        }
        if name.eq_ignore_ascii_case("max-age")
            && let Some(seconds) = argument.and_then(delta_seconds)
        {
            max_age = Some(seconds);
        }
    }
    let age = headers
        .get(AGE)
        .and_then(|value| value.to_str().ok())
        .and_then(delta_seconds)
        .unwrap_or(0);
    max_age.map(|max_age| max_age.saturating_sub(age))
}

/// RFC 9111 delta-seconds: digits, a value too large for a `u64` its largest.
fn delta_seconds(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse().unwrap_or(u64::MAX))
}

/// IPv4 ranges never fetched from, with what each is (IANA's special-purpose
/// registry, every entry that is not globally reachable).
pub const FORBIDDEN_V4: [(Ipv4Addr, u8, &str); 15] = [
    (
        Ipv4Addr::new(0, 0, 0, 0),
        8,
        "this network, with the unspecified address",
    ),
    (Ipv4Addr::new(10, 0, 0, 0), 8, "private (RFC 1918)"),
    (
        Ipv4Addr::new(100, 64, 0, 0),
        10,
        "shared address space, CGNAT (RFC 6598)",
    ),
    (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback"),
    (
        Ipv4Addr::new(169, 254, 0, 0),
        16,
        "link-local, with cloud metadata",
    ),
    (Ipv4Addr::new(172, 16, 0, 0), 12, "private (RFC 1918)"),
    (Ipv4Addr::new(192, 0, 0, 0), 24, "IETF protocol assignments"),
    (
        Ipv4Addr::new(192, 0, 2, 0),
        24,
        "documentation (TEST-NET-1)",
    ),
    (
        Ipv4Addr::new(192, 88, 99, 0),
        24,
        "6to4 relay anycast (deprecated)",
    ),
    (Ipv4Addr::new(192, 168, 0, 0), 16, "private (RFC 1918)"),
    (Ipv4Addr::new(198, 18, 0, 0), 15, "benchmarking"),
    (
        Ipv4Addr::new(198, 51, 100, 0),
        24,
        "documentation (TEST-NET-2)",
    ),
    (
        Ipv4Addr::new(203, 0, 113, 0),
        24,
        "documentation (TEST-NET-3)",
    ),
    (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast"),
    (
        Ipv4Addr::new(240, 0, 0, 0),
        4,
        "reserved, with the broadcast address",
    ),
];

/// The IPv6 global unicast space (`2000::/3`): any IPv6 address outside it is
/// forbidden (unspecified, loopback, IPv4-compatible, discard, ULA `fc00::/7`,
/// link-local, site-local, multicast, ...), except those that embed an IPv4
/// address, which are judged by it.
pub const GLOBAL_UNICAST_V6: (Ipv6Addr, u8) = (Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);

/// Ranges within `2000::/3` that are forbidden too.
pub const FORBIDDEN_GLOBAL_V6: [(Ipv6Addr, u8, &str); 4] = [
    (
        Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),
        23,
        "IETF protocol assignments, with Teredo and benchmarking",
    ),
    (
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
        32,
        "documentation",
    ),
    (
        Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0),
        16,
        "6to4, which reaches IPv4 addresses",
    ),
    (
        Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),
        20,
        "documentation (RFC 9637)",
    ),
];

/// The NAT64 well-known prefix (RFC 6052), whose addresses embed an IPv4 address.
const NAT64_V6: (Ipv6Addr, u8) = (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96);

/// Whether `ip` is never fetched from: loopback, link-local, private (RFC 1918,
/// ULA), unspecified, multicast, broadcast, CGNAT, documentation, benchmarking and
/// other reserved ranges, in both families; an IPv4-mapped or NAT64 IPv6 address is
/// judged by the IPv4 address it holds.
pub fn is_forbidden_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => FORBIDDEN_V4
            .iter()
            .any(|(network, prefix, _)| in_v4(ip, *network, *prefix)),
        IpAddr::V6(ip) => {
            if let Some(v4) = ip.to_ipv4_mapped() {
                return is_forbidden_address(IpAddr::V4(v4));
            }
            if in_v6(ip, NAT64_V6.0, NAT64_V6.1) {
                let [.., a, b, c, d] = ip.octets();
                return is_forbidden_address(IpAddr::V4(Ipv4Addr::new(a, b, c, d)));
            }
            !in_v6(ip, GLOBAL_UNICAST_V6.0, GLOBAL_UNICAST_V6.1)
                || FORBIDDEN_GLOBAL_V6
                    .iter()
                    .any(|(network, prefix, _)| in_v6(ip, *network, *prefix))
        }
    }
}

fn in_v4(ip: Ipv4Addr, network: Ipv4Addr, prefix: u8) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(network) & mask
}

fn in_v6(ip: Ipv6Addr, network: Ipv6Addr, prefix: u8) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    u128::from(ip) & mask == u128::from(network) & mask
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use axum::Router;
    use axum::http::{HeaderMap as Headers, StatusCode, header};
    use axum::response::IntoResponse;
    use axum::routing::get;
    use serde_json::json;

    use super::*;
    use crate::test_servers::{Hits, Then, head, raw, serve};

    fn v4(text: &str) -> IpAddr {
        IpAddr::V4(text.parse().unwrap())
    }

    fn v6(text: &str) -> IpAddr {
        IpAddr::V6(text.parse().unwrap())
    }

    fn last_v4(network: Ipv4Addr, prefix: u8) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(network) | (u32::MAX >> prefix))
    }

    fn last_v6(network: Ipv6Addr, prefix: u8) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(network) | (u128::MAX >> prefix))
    }

    fn mapped(ip: Ipv4Addr) -> IpAddr {
        IpAddr::V6(ip.to_ipv6_mapped())
    }

    fn nat64(ip: Ipv4Addr) -> IpAddr {
        IpAddr::V6(Ipv6Addr::from(
            u128::from(NAT64_V6.0) | u128::from(u32::from(ip)),
        ))
    }

    #[test]
    fn every_forbidden_ipv4_range_is_refused_at_both_ends_and_in_ipv6_forms() {
        for (network, prefix, what) in FORBIDDEN_V4 {
            for ip in [network, last_v4(network, prefix)] {
                assert!(is_forbidden_address(IpAddr::V4(ip)), "{ip} ({what})");
                assert!(is_forbidden_address(mapped(ip)), "mapped {ip} ({what})");
                assert!(is_forbidden_address(nat64(ip)), "NAT64 {ip} ({what})");
            }
        }
        // The ones the brief names, one by one.
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.2.10",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
        ] {
            assert!(is_forbidden_address(v4(ip)), "{ip}");
        }
    }

    #[test]
    fn public_ipv4_addresses_are_allowed_up_to_the_ranges_edges() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "169.255.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.255",
            "192.0.3.0",
            "192.88.98.255",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "198.51.99.255",
            "203.0.112.255",
            "203.0.114.0",
            "223.255.255.255",
        ] {
            assert!(!is_forbidden_address(v4(ip)), "{ip}");
            let IpAddr::V4(ip) = v4(ip) else {
                unreachable!()
            };
            assert!(!is_forbidden_address(mapped(ip)), "mapped {ip}");
            assert!(!is_forbidden_address(nat64(ip)), "NAT64 {ip}");
        }
    }

    #[test]
    fn ipv6_outside_global_unicast_and_its_reserved_ranges_are_refused() {
        for (network, prefix, what) in FORBIDDEN_GLOBAL_V6 {
            for ip in [network, last_v6(network, prefix)] {
                assert!(is_forbidden_address(IpAddr::V6(ip)), "{ip} ({what})");
            }
        }
        for ip in [
            "::",
            "::1",
            "::7f00:1",
            "::a00:1",
            "100::1",
            "64:ff9b:1::1",
            "fc00::1",
            "fd12:3456::1",
            "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "fe80::1",
            "febf:ffff::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
            "5f00::1",
            "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "4000::1",
            "2001::1",
            "2001:2::1",
            "2001:db8::1",
            "2002:7f00:1::1",
            "3fff::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(is_forbidden_address(v6(ip)), "{ip}");
        }
        for ip in [
            "2000::1",
            "2001:200::1",
            "2001:4860:4860::8888",
            "2606:4700:4700::1111",
            "2a00:1450:4001::200e",
            "3ffe::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(!is_forbidden_address(v6(ip)), "{ip}");
        }
    }

    #[test]
    fn the_resolver_passes_on_exactly_the_addresses_it_checked() {
        let socket = |ip: &str| SocketAddr::new(ip.parse().unwrap(), 0);
        let public = vec![
            socket("93.184.215.14"),
            socket("2606:2800:21f:cb07:6820:80da:af6b:8b2c"),
        ];
        assert_eq!(only_allowed(public.clone()).unwrap(), public);
        // One forbidden address among public ones refuses the name (rebinding).
        let mixed = vec![socket("93.184.215.14"), socket("10.0.0.5")];
        assert_eq!(only_allowed(mixed).unwrap_err().0, v4("10.0.0.5"));
        let mapped = vec![socket("::ffff:169.254.169.254")];
        assert!(only_allowed(mapped).is_err());
    }

    #[test]
    fn urls_are_checked_before_anything_is_sent() {
        let refused = |url: &str| check_url(url, false).err();
        assert!(matches!(
            refused("http://example.com/jwks"),
            Some(FetchError::NotHttps)
        ));
        for url in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "jwks",
            "",
            "https://",
        ] {
            assert!(
                matches!(refused(url), Some(FetchError::InvalidUrl)),
                "{url}"
            );
        }
        assert!(matches!(
            refused("https://user:pw@example.com/"),
            Some(FetchError::InvalidUrl)
        ));
        // IP literals in every spelling the URL parser knows.
        for (url, ip) in [
            ("https://127.0.0.1/jwks", "127.0.0.1"),
            ("https://2130706433/", "127.0.0.1"),
            ("https://0x7f.1/", "127.0.0.1"),
            (
                "https://169.254.169.254/latest/meta-data",
                "169.254.169.254",
            ),
            ("https://10.1.2.3:8443/", "10.1.2.3"),
            ("https://0.0.0.0/", "0.0.0.0"),
        ] {
            match refused(url) {
                Some(FetchError::ForbiddenAddress(refused)) => assert_eq!(refused, v4(ip), "{url}"),
                other => panic!("{url}: {other:?}"),
            }
        }
        for url in [
            "https://[::1]/",
            "https://[::ffff:127.0.0.1]/",
            "https://[fe80::1]/",
            "https://[fd00::1]/",
        ] {
            assert!(
                matches!(refused(url), Some(FetchError::ForbiddenAddress(_))),
                "{url}"
            );
        }
        // A name is checked when it resolves; a public literal passes.
        assert!(check_url("https://idp.example/jwks", false).is_ok());
        assert!(check_url("https://8.8.8.8/", false).is_ok());
        assert!(check_url("https://[2606:4700:4700::1111]/", false).is_ok());
        // allow_insecure lifts the https rule and the address check, nothing else.
        assert!(check_url("http://127.0.0.1:9/", true).is_ok());
        assert!(check_url("https://[::1]/", true).is_ok());
        assert!(matches!(
            check_url("ftp://127.0.0.1/", true),
            Err(FetchError::InvalidUrl)
        ));
    }

    #[test]
    fn max_age_is_read_from_cache_control_less_age() {
        let headers = |pairs: &[(&str, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.append(
                    reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    value.parse().unwrap(),
                );
            }
            max_age(&map)
        };
        assert_eq!(headers(&[]), None);
        assert_eq!(
            headers(&[("cache-control", "public, max-age=600")]),
            Some(600)
        );
        assert_eq!(headers(&[("cache-control", "Max-Age=\"90\"")]), Some(90));
        assert_eq!(
            headers(&[("cache-control", "max-age=600"), ("age", "100")]),
            Some(500)
        );
        assert_eq!(
            headers(&[("cache-control", "max-age=60"), ("age", "100")]),
            Some(0)
        );
        assert_eq!(
            headers(&[("cache-control", "public"), ("cache-control", "max-age=7")]),
            Some(7)
        );
        assert_eq!(
            headers(&[("cache-control", "max-age=600, no-cache")]),
            Some(0)
        );
        assert_eq!(headers(&[("cache-control", "no-store")]), Some(0));
        assert_eq!(headers(&[("cache-control", "max-age=soon")]), None);
        assert_eq!(headers(&[("cache-control", "max-age=-5")]), None);
        assert_eq!(
            headers(&[("cache-control", "max-age=99999999999999999999999")]),
            Some(u64::MAX)
        );
        assert_eq!(headers(&[("age", "5")]), None);
    }

    #[test]
    fn metadata_is_looked_for_where_oidc_and_rfc_8414_say() {
        let urls = |issuer: &str| metadata_urls(issuer, &check_url(issuer, false).unwrap());
        assert_eq!(
            urls("https://idp.example"),
            [
                "https://idp.example/.well-known/openid-configuration",
                "https://idp.example/.well-known/oauth-authorization-server",
            ]
        );
        assert_eq!(
            urls("https://idp.example:8443/tenant/a/"),
            [
                "https://idp.example:8443/tenant/a/.well-known/openid-configuration",
                "https://idp.example:8443/.well-known/oauth-authorization-server/tenant/a",
            ]
        );
    }

    #[test]
    fn the_metadata_must_be_the_issuers_and_its_jwks_uri_acceptable() {
        let doc = |issuer: &str, jwks_uri: &str| {
            serde_json::to_vec(&json!({ "issuer": issuer, "jwks_uri": jwks_uri })).unwrap()
        };
        let issuer = "https://idp.example/t";
        assert_eq!(
            jwks_uri_from(&doc(issuer, "https://keys.example/jwks"), issuer, false).unwrap(),
            "https://keys.example/jwks"
        );
        for claimed in [
            "https://idp.example/t/",
            "https://IDP.example/t",
            "https://idp.example/T",
            "https://other.example/t",
        ] {
            assert!(
                matches!(
                    jwks_uri_from(&doc(claimed, "https://idp.example/jwks"), issuer, false),
                    Err(FetchError::IssuerMismatch)
                ),
                "{claimed}"
            );
        }
        assert!(matches!(
            jwks_uri_from(&doc(issuer, "http://idp.example/jwks"), issuer, false),
            Err(FetchError::NotHttps)
        ));
        assert!(matches!(
            jwks_uri_from(&doc(issuer, "https://169.254.169.254/jwks"), issuer, false),
            Err(FetchError::ForbiddenAddress(_))
        ));
        assert!(matches!(
            jwks_uri_from(&doc(issuer, "file:///etc/passwd"), issuer, true),
            Err(FetchError::InvalidUrl)
        ));
        assert!(matches!(
            jwks_uri_from(br#"{"issuer":"https://idp.example/t"}"#, issuer, false),
            Err(FetchError::BadMetadata("has no jwks_uri"))
        ));
        assert!(matches!(
            jwks_uri_from(b"<html>", issuer, false),
            Err(FetchError::BadMetadata("is not JSON"))
        ));
    }

    fn fetcher(allow_insecure: bool, timeout: Duration) -> SafeFetcher {
        SafeFetcher::new(FetchPolicy {
            allow_insecure,
            timeout,
            max_bytes: DEFAULT_MAX_BYTES,
        })
        .unwrap()
    }

    fn insecure() -> SafeFetcher {
        fetcher(true, Duration::from_secs(5))
    }

    #[tokio::test]
    async fn loopback_is_refused_without_allow_insecure_and_nothing_is_sent() {
        let (port, connections) = raw(
            head("Content-Length: 2\r\n")
                .into_iter()
                .chain(*b"{}")
                .collect(),
            Then::Close,
        )
        .await;
        let safe = fetcher(false, Duration::from_secs(5));
        assert!(matches!(
            safe.get(&format!("http://127.0.0.1:{port}/jwks")).await,
            Err(FetchError::NotHttps)
        ));
        assert!(matches!(
            safe.get(&format!("https://127.0.0.1:{port}/jwks")).await,
            Err(FetchError::ForbiddenAddress(ip)) if ip == v4("127.0.0.1")
        ));
        assert!(matches!(
            safe.get(&format!("https://[::ffff:127.0.0.1]:{port}/jwks"))
                .await,
            Err(FetchError::ForbiddenAddress(_))
        ));
        // A name that resolves to loopback is refused by the resolver.
        let by_name = safe.get(&format!("https://localhost:{port}/jwks")).await;
        assert!(
            matches!(by_name, Err(FetchError::ForbiddenAddress(ip)) if ip.is_loopback()),
            "{by_name:?}"
        );
        assert!(matches!(
            safe.discover_jwks_uri(&format!("https://localhost:{port}"))
                .await,
            Err(FetchError::ForbiddenAddress(_))
        ));
        assert_eq!(connections.get(), 0, "no connection was made");
        // The same server, allowed.
        let fetched = insecure()
            .get(&format!("http://localhost:{port}/jwks"))
            .await
            .unwrap();
        assert_eq!(fetched.body, b"{}");
        assert_eq!(connections.get(), 1);
    }

    #[tokio::test]
    async fn a_good_response_is_read_with_its_max_age_and_json_is_asked_for() {
        let accept = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let seen = accept.clone();
        let app = Router::new().route(
            "/jwks",
            get(move |headers: Headers| {
                let seen = seen.clone();
                async move {
                    *seen.lock().unwrap() = headers
                        .get(header::ACCEPT)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    (
                        [(header::CACHE_CONTROL, "public, max-age=900")],
                        r#"{"keys":[]}"#,
                    )
                }
            }),
        );
        let port = serve(app).await;
        let fetched = insecure()
            .get(&format!("http://127.0.0.1:{port}/jwks"))
            .await
            .unwrap();
        assert_eq!(fetched.body, br#"{"keys":[]}"#);
        assert_eq!(fetched.max_age, Some(900));
        assert_eq!(accept.lock().unwrap().as_str(), "application/json");
    }

    #[tokio::test]
    async fn statuses_other_than_2xx_are_errors() {
        let app = Router::new()
            .route("/gone", get(|| async { StatusCode::NOT_FOUND }))
            .route(
                "/down",
                get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "try later").into_response() }),
            );
        let port = serve(app).await;
        let fetcher = insecure();
        for (path, status) in [("gone", 404), ("down", 503)] {
            let result = fetcher
                .get(&format!("http://127.0.0.1:{port}/{path}"))
                .await;
            assert!(
                matches!(result, Err(FetchError::Status(s)) if s == status),
                "{result:?}"
            );
        }
        let error = fetcher
            .get(&format!("http://127.0.0.1:{port}/down"))
            .await
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "HTTP status 503",
            "the body is never in the error"
        );
    }

    #[tokio::test]
    async fn a_body_over_the_cap_is_refused_with_or_without_content_length() {
        let fetcher = insecure();
        // A Content-Length over the cap is refused at once: the body never comes,
        // and the fetch does not wait for it.
        let (port, _) = raw(
            head(&format!("Content-Length: {}\r\n", DEFAULT_MAX_BYTES + 1)),
            Then::Stall,
        )
        .await;
        let started = Instant::now();
        let result = fetcher.get(&format!("http://127.0.0.1:{port}/")).await;
        assert!(
            matches!(result, Err(FetchError::TooLarge(DEFAULT_MAX_BYTES))),
            "{result:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));

        // A chunked body is cut once it passes the cap, though it never ends.
        let mut chunked = head("Transfer-Encoding: chunked\r\n");
        for _ in 0..(DEFAULT_MAX_BYTES / 16_384 + 2) {
            chunked.extend_from_slice(b"4000\r\n");
            chunked.extend_from_slice(&[b' '; 16_384]);
            chunked.extend_from_slice(b"\r\n");
        }
        let (port, _) = raw(chunked, Then::Stall).await;
        let started = Instant::now();
        let result = fetcher.get(&format!("http://127.0.0.1:{port}/")).await;
        assert!(matches!(result, Err(FetchError::TooLarge(_))), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(2));

        // A body read to its end (no length, closed) over the cap, and one just at it.
        let big = vec![b' '; DEFAULT_MAX_BYTES + 1];
        let (port, _) = raw(
            head("Connection: close\r\n")
                .into_iter()
                .chain(big)
                .collect(),
            Then::Close,
        )
        .await;
        let result = fetcher.get(&format!("http://127.0.0.1:{port}/")).await;
        assert!(matches!(result, Err(FetchError::TooLarge(_))), "{result:?}");
        let exact = vec![b' '; DEFAULT_MAX_BYTES];
        let (port, _) = raw(
            head("Connection: close\r\n")
                .into_iter()
                .chain(exact)
                .collect(),
            Then::Close,
        )
        .await;
        let fetched = fetcher
            .get(&format!("http://127.0.0.1:{port}/"))
            .await
            .unwrap();
        assert_eq!(fetched.body.len(), DEFAULT_MAX_BYTES);
    }

    #[tokio::test]
    async fn a_hanging_server_or_a_slow_body_times_out() {
        let timeout = Duration::from_millis(800);
        let fetcher = fetcher(true, timeout);
        let (silent, _) = raw(Vec::new(), Then::Stall).await;
        let mut half = head("Content-Length: 100\r\n");
        half.extend_from_slice(b"{\"keys\":");
        let (slow, _) = raw(half, Then::Stall).await;
        for port in [silent, slow] {
            let started = Instant::now();
            let result = fetcher.get(&format!("http://127.0.0.1:{port}/")).await;
            let elapsed = started.elapsed();
            assert!(matches!(result, Err(FetchError::Timeout)), "{result:?}");
            assert!(elapsed >= timeout && elapsed < timeout * 4, "{elapsed:?}");
        }
    }

    #[tokio::test]
    async fn redirects_stay_on_their_origin() {
        let (elsewhere, elsewhere_connections) = raw(
            head("Content-Length: 2\r\n")
                .into_iter()
                .chain(*b"{}")
                .collect(),
            Then::Close,
        )
        .await;
        let app = Router::new()
            .route("/jwks", get(|| async { r#"{"keys":"here"}"# }))
            .route(
                "/moved",
                get(|| async { axum::response::Redirect::temporary("/jwks") }),
            )
            .route(
                "/loop",
                get(|| async { axum::response::Redirect::temporary("/loop") }),
            )
            .route(
                "/to-localhost",
                get(move || async move {
                    axum::response::Redirect::temporary(&format!(
                        "http://localhost:{elsewhere}/jwks"
                    ))
                }),
            )
            .route(
                "/to-other-port",
                get(move || async move {
                    axum::response::Redirect::temporary(&format!(
                        "http://127.0.0.1:{elsewhere}/jwks"
                    ))
                }),
            );
        let port = serve(app).await;
        let fetcher = insecure();
        let url = |path: &str| format!("http://127.0.0.1:{port}/{path}");
        let fetched = fetcher.get(&url("moved")).await.unwrap();
        assert_eq!(fetched.body, br#"{"keys":"here"}"#);
        for path in ["to-localhost", "to-other-port", "loop"] {
            let result = fetcher.get(&url(path)).await;
            assert!(
                matches!(result, Err(FetchError::Redirect)),
                "{path}: {result:?}"
            );
        }
        assert_eq!(
            elsewhere_connections.get(),
            0,
            "another host is never reached"
        );
    }

    /// A metadata server: `path` answers `{"issuer": issuer, "jwks_uri": ...}` where
    /// `issuer` is the base URL and `suffix`; every other path is a 404. Counts hits
    /// of either well-known path.
    async fn metadata_server(path: &'static str, suffix: &'static str) -> (String, Hits) {
        let hits = Hits::default();
        let counter = hits.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let issuer = format!("{base}{suffix}");
        let document = json!({ "issuer": issuer, "jwks_uri": format!("{base}/keys") });
        let app = Router::new()
            .route(path, get(move || async move { axum::Json(document) }))
            .fallback(|| async { StatusCode::NOT_FOUND })
            .layer(axum::middleware::from_fn(
                move |request: axum::extract::Request, next: axum::middleware::Next| {
                    let counter = counter.clone();
                    async move {
                        if request.uri().path().contains("/.well-known/") {
                            counter.hit();
                        }
                        next.run(request).await
                    }
                },
            ));
        tokio::spawn(async move { axum::serve(listener, app).await });
        (base, hits)
    }

    #[tokio::test]
    async fn discovery_reads_oidc_metadata_then_rfc_8414() {
        let (base, hits) = metadata_server("/.well-known/openid-configuration", "").await;
        let jwks_uri = insecure().discover_jwks_uri(&base).await.unwrap();
        assert_eq!(jwks_uri, format!("{base}/keys"));
        assert_eq!(hits.get(), 1);

        let (base, hits) =
            metadata_server("/.well-known/oauth-authorization-server/tenant", "/tenant").await;
        let jwks_uri = insecure()
            .discover_jwks_uri(&format!("{base}/tenant"))
            .await
            .unwrap();
        assert_eq!(jwks_uri, format!("{base}/keys"));
        assert_eq!(hits.get(), 2, "OIDC first, then RFC 8414");

        let (base, _) = metadata_server("/nowhere", "").await;
        let result = insecure().discover_jwks_uri(&base).await;
        assert!(matches!(result, Err(FetchError::Status(404))), "{result:?}");
    }

    #[tokio::test]
    async fn discovery_refuses_a_document_for_another_issuer() {
        // The document says the issuer with a trailing slash: not the same issuer,
        // and not a reason to look elsewhere.
        let (base, hits) = metadata_server("/.well-known/openid-configuration", "/").await;
        let result = insecure().discover_jwks_uri(&base).await;
        assert!(
            matches!(result, Err(FetchError::IssuerMismatch)),
            "{result:?}"
        );
        assert_eq!(hits.get(), 1);
        assert!(matches!(
            insecure()
                .discover_jwks_uri(&format!("{base}?tenant=a"))
                .await,
            Err(FetchError::InvalidUrl)
        ));
    }
}
