//! The client's address, the one every per-client decision uses (rate limits,
//! sign-in throttling): the TCP peer, unless the peer is a proxy the operator named
//! with `--trusted-proxy`; only then are `X-Forwarded-For` and `Forwarded` read.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

use crate::state::AppState;

/// The peers whose forwarding headers are believed: address ranges, each a CIDR
/// (`10.0.0.0/8`, `2001:db8::/32`) or one address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Reads `--trusted-proxy` values; the error names the one that is not a range.
    pub fn parse(ranges: &[String]) -> Result<TrustedProxies, String> {
        ranges
            .iter()
            .map(|range| {
                let range = range.trim();
                range
                    .parse::<IpNet>()
                    .or_else(|_| range.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| {
                        format!("'{range}' is not an address range like 10.0.0.0/8 or an address")
                    })
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    /// Whether no proxy is trusted (then the peer is always the client).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `addr` is in one of the ranges.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        self.0.iter().any(|net| net.contains(&addr))
    }

    /// The client of a request from `peer` with these headers. From an untrusted
    /// peer, the peer. From a trusted one, the hops its headers list are walked from
    /// the nearest: the first that is not a trusted proxy is the client (what lies
    /// beyond it is the client's own say, and may be forged); a hop that does not
    /// parse (`unknown`, an obfuscated name) ends the walk at the hop before it.
    /// `X-Forwarded-For` is read when present, else `Forwarded` (RFC 7239): a
    /// proxy that writes `Forwarded` must not pass a client's `X-Forwarded-For` on.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        let hops = forwarded_hops(headers);
        let mut client = peer;
        for hop in hops.iter().rev() {
            match hop {
                Some(addr) => {
                    client = addr.to_canonical();
                    if !self.contains(client) {
                        break;
                    }
                }
                None => break,
            }
        }
        client
    }
}

/// The hops a request's forwarding headers list, farthest first; `None` for one
/// that names no address.
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let x_forwarded_for = headers.get_all("x-forwarded-for");
    if x_forwarded_for.iter().next().is_some() {
        return x_forwarded_for
            .iter()
            .flat_map(|value| value.to_str().unwrap_or("unknown").split(','))
            .map(node_address)
            .collect();
    }
    headers
        .get_all("forwarded")
        .iter()
        .flat_map(|value| value.to_str().unwrap_or("for=unknown").split(','))
        .map(|element| {
            element
                .split(';')
                .find_map(|pair| {
                    let (name, value) = pair.split_once('=')?;
                    name.trim()
                        .eq_ignore_ascii_case("for")
                        .then(|| node_address(value))
                })
                .flatten()
        })
        .collect()
}

/// The address of one hop: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]:4711`, each perhaps quoted; `None` for anything else.
fn node_address(node: &str) -> Option<IpAddr> {
    let node = node.trim().trim_matches('"');
    if let Ok(addr) = node.parse::<IpAddr>() {
        return Some(addr);
    }
    if let Ok(addr) = node.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    node.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse().ok())
}

/// The client's address, as [`TrustedProxies::client`] decides; `None` when the
/// request came over no socket (a test driving the router directly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub Option<IpAddr>);

impl FromRequestParts<Arc<AppState>> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| {
                    state
                        .config
                        .trusted_proxies
                        .client(peer.ip(), &parts.headers)
                }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(ranges: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&ranges.iter().map(|r| r.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ranges_and_single_addresses_parse_and_others_are_named() {
        let trusted = proxies(&["10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "10.1.2.3/8"]);
        assert!(trusted.contains(ip("10.200.0.1")));
        assert!(trusted.contains(ip("192.0.2.7")));
        assert!(!trusted.contains(ip("192.0.2.8")));
        assert!(trusted.contains(ip("2001:db8::5")));
        // An IPv4 peer seen on a dual-stack socket.
        assert!(trusted.contains(ip("::ffff:10.0.0.1")));
        let error = TrustedProxies::parse(&["10.0.0.0/33".into()]).unwrap_err();
        assert!(error.contains("'10.0.0.0/33'"), "{error}");
        assert!(TrustedProxies::parse(&["proxy.internal".into()]).is_err());
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let spoof = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
        ]);
        assert_eq!(
            TrustedProxies::default().client(ip("198.51.100.4"), &spoof),
            ip("198.51.100.4")
        );
        assert_eq!(
            proxies(&["10.0.0.0/8"]).client(ip("198.51.100.4"), &spoof),
            ip("198.51.100.4")
        );
    }

    #[test]
    fn through_trusted_proxies_the_nearest_untrusted_hop_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8"]);
        // The client forged the first entry; the proxy appended the real peer.
        let forged = headers(&[("x-forwarded-for", "192.0.2.1, 198.51.100.4")]);
        assert_eq!(trusted.client(ip("10.0.0.2"), &forged), ip("198.51.100.4"));
        // Two proxies of ours, each appending.
        let chain = headers(&[
            ("x-forwarded-for", "198.51.100.4"),
            ("x-forwarded-for", "10.0.0.9"),
        ]);
        assert_eq!(trusted.client(ip("10.0.0.2"), &chain), ip("198.51.100.4"));
        // Nothing forwarded: the proxy itself.
        assert_eq!(
            trusted.client(ip("10.0.0.2"), &HeaderMap::new()),
            ip("10.0.0.2")
        );
        // An unknown hop ends the walk at the hop before it.
        let unknown = headers(&[("x-forwarded-for", "198.51.100.4, unknown, 10.0.0.9")]);
        assert_eq!(trusted.client(ip("10.0.0.2"), &unknown), ip("10.0.0.9"));
    }

    #[test]
    fn forwarded_is_read_when_there_is_no_x_forwarded_for() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let forwarded = headers(&[(
            "forwarded",
            "for=192.0.2.60;proto=http, For=\"[2001:db8:cafe::17]:4711\";by=10.0.0.1",
        )]);
        assert_eq!(
            trusted.client(ip("10.0.0.2"), &forwarded),
            ip("2001:db8:cafe::17")
        );
        let with_port = headers(&[("forwarded", "for=\"198.51.100.4:5000\"")]);
        assert_eq!(
            trusted.client(ip("10.0.0.2"), &with_port),
            ip("198.51.100.4")
        );
        let hidden = headers(&[("forwarded", "for=_hidden")]);
        assert_eq!(trusted.client(ip("10.0.0.2"), &hidden), ip("10.0.0.2"));
        // Both: X-Forwarded-For wins.
        let both = headers(&[
            ("forwarded", "for=192.0.2.60"),
            ("x-forwarded-for", "198.51.100.4"),
        ]);
        assert_eq!(trusted.client(ip("10.0.0.2"), &both), ip("198.51.100.4"));
    }
}
