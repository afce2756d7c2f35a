//! The bare `host[:port]` of a URL: the audience DocuSign's SDKs put in an
//! assertion. One function, so the audience a client sends is the one the server
//! accepts.

/// The bare `host[:port]` of an http(s) URL, lower-cased, without a default port
/// (`:443` for https, `:80` for http), path, query or user info:
/// `https://Auth.example.com:443/base` -> `auth.example.com`. `None` when `url` is
/// not http(s) or has no host.
pub fn bare_host(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => return None,
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let authority = authority.rsplit('@').next().unwrap_or(authority);
    let authority = authority.strip_suffix(default_port).unwrap_or(authority);
    let host = authority.strip_suffix(':').unwrap_or(authority);
    if host.is_empty() || host.starts_with(':') || host.contains(char::is_whitespace) {
        return None;
    }
    Some(host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_hosts() {
        let cases = [
            (
                "https://account-d.docusign.com/oauth/token",
                Some("account-d.docusign.com"),
            ),
            (
                "https://account-d.docusign.com",
                Some("account-d.docusign.com"),
            ),
            ("http://127.0.0.1:8080", Some("127.0.0.1:8080")),
            ("http://127.0.0.1:8080/base", Some("127.0.0.1:8080")),
            ("https://auth.example.com:443", Some("auth.example.com")),
            ("https://auth.example.com:443/", Some("auth.example.com")),
            ("http://auth.example.com:80", Some("auth.example.com")),
            ("https://auth.example.com:80", Some("auth.example.com:80")),
            ("http://auth.example.com:443", Some("auth.example.com:443")),
            (
                "HTTPS://Auth.Example.com:8443?x",
                Some("auth.example.com:8443"),
            ),
            ("https://[::1]:443/", Some("[::1]")),
            ("https://user@host.example", Some("host.example")),
            ("ftp://x", None),
            ("nope", None),
            ("https://", None),
            ("https://:443", None),
        ];
        for (url, expected) in cases {
            assert_eq!(bare_host(url).as_deref(), expected, "{url}");
        }
    }
}
