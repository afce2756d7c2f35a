//! The consent URL: where a user grants an integration consent, how the server
//! builds it, and how a `consent_required` description names it so a client can
//! read it back.

/// The path of the authorization endpoint, where users sign in and consent.
pub const AUTHORIZATION_PATH: &str = "/oauth/auth";

/// The words that come just before the consent URL in a `consent_required`
/// description: `...; send the user to https://...`. Written by the server's error
/// descriptions and read by [`consent_url_in`].
pub const CONSENT_URL_MARKER: &str = "send the user to ";

/// The consent URL of `issuer`'s authorization endpoint for `client_id` and
/// `scopes`: `{issuer}/oauth/auth?response_type=code&scope=...&client_id=...`
/// (and `&redirect_uri=...` when given), form-encoded as DocuSign spells it.
pub fn consent_url<S: AsRef<str>>(
    issuer: &str,
    client_id: &str,
    scopes: &[S],
    redirect_uri: Option<&str>,
) -> String {
    let scope = scopes
        .iter()
        .map(AsRef::as_ref)
        .collect::<Vec<&str>>()
        .join(" ");
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("response_type", "code");
    query.append_pair("scope", &scope);
    query.append_pair("client_id", client_id);
    if let Some(uri) = redirect_uri {
        query.append_pair("redirect_uri", uri);
    }
    format!(
        "{}{AUTHORIZATION_PATH}?{}",
        issuer.trim_end_matches('/'),
        query.finish()
    )
}

/// The consent URL a description names after [`CONSENT_URL_MARKER`], if any: the
/// http(s) URL up to the next space, without trailing punctuation.
pub fn consent_url_in(description: &str) -> Option<&str> {
    let (_, rest) = description.split_once(CONSENT_URL_MARKER)?;
    let url = rest.split_whitespace().next()?;
    let url = url.trim_end_matches(['.', ',', ';', ')']);
    (url.starts_with("https://") || url.starts_with("http://")).then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_the_docusign_shaped_url() {
        assert_eq!(
            consent_url(
                "https://account-d.docusign.com/",
                "ik",
                &["signature", "impersonation"],
                Some("https://localhost:3000/callback")
            ),
            "https://account-d.docusign.com/oauth/auth?response_type=code&scope=signature+impersonation&client_id=ik&redirect_uri=https%3A%2F%2Flocalhost%3A3000%2Fcallback"
        );
        assert_eq!(
            consent_url("http://127.0.0.1:8080", "ik", &[String::from("a")], None),
            "http://127.0.0.1:8080/oauth/auth?response_type=code&scope=a&client_id=ik"
        );
    }

    #[test]
    fn reads_back_what_a_description_names() {
        let url = consent_url("http://127.0.0.1:8080", "ik", &["signature"], None);
        let description = format!("consent_required: no consent; {CONSENT_URL_MARKER}{url}.");
        assert_eq!(consent_url_in(&description), Some(url.as_str()));
        assert_eq!(consent_url_in("consent_required"), None);
        assert_eq!(
            consent_url_in(&format!("{CONSENT_URL_MARKER}the consent page")),
            None
        );
    }
}
