//! Enough of a browser for the authorization code flow over plain HTTP: one
//! session cookie, redirects not followed, the sign-in and consent forms filled in
//! from their hidden fields (CSRF token included).

/// A cookie jar of one cookie and an HTTP client that follows no redirects.
pub struct Browser {
    http: reqwest::Client,
    cookie: Option<String>,
}

/// A page as the browser got it.
pub struct Page {
    /// The HTTP status.
    pub status: u16,
    /// The response headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body as text.
    pub body: String,
}

impl Page {
    /// The `Location` header, empty when there is none.
    pub fn location(&self) -> String {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    /// The value of a hidden input, HTML entities decoded.
    pub fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .map(|i| i + marker.len())
            .unwrap_or_else(|| panic!("no field {name} in {}", self.body));
        let value = &self.body[start..];
        let value = &value[..value.find('"').unwrap()];
        value
            .replace("&#38;", "&")
            .replace("&amp;", "&")
            .replace("&#34;", "\"")
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
    }

    /// Every hidden input, in page order.
    pub fn hidden_fields(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for piece in self.body.split("<input type=\"hidden\" name=\"").skip(1) {
            let name = &piece[..piece.find('"').unwrap()];
            out.push((name.to_owned(), self.field(name)));
        }
        out
    }
}

impl Default for Browser {
    fn default() -> Self {
        Browser::new()
    }
}

impl Browser {
    /// A browser with no cookie.
    pub fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let request = match &self.cookie {
            Some(cookie) => request.header("cookie", cookie),
            None => request,
        };
        let response = request.send().await.unwrap();
        if let Some(set) = response
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
        {
            let pair = set.split(';').next().unwrap().to_owned();
            self.cookie = (!pair.ends_with('=')).then_some(pair);
        }
        Page {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.text().await.unwrap(),
        }
    }

    /// GETs `url` with the cookie.
    pub async fn get(&mut self, url: &str) -> Page {
        let request = self.http.get(url);
        self.send(request).await
    }

    /// POSTs `form` to `url` with the cookie.
    pub async fn post(&mut self, url: &str, form: &[(String, String)]) -> Page {
        let request = self.http.post(url).form(form);
        self.send(request).await
    }

    /// Submits the sign-in page `login` of the server at `base`.
    pub async fn sign_in(&mut self, base: &str, login: &Page, email: &str, password: &str) -> Page {
        let form = vec![
            ("csrf".to_owned(), login.field("csrf")),
            ("return_to".to_owned(), login.field("return_to")),
            ("email".to_owned(), email.to_owned()),
            ("password".to_owned(), password.to_owned()),
        ];
        self.post(&format!("{base}/login"), &form).await
    }

    /// Answers the consent page `consent` with `decision` (`allow` or `deny`).
    pub async fn decide(&mut self, base: &str, consent: &Page, decision: &str) -> Page {
        let mut form = consent.hidden_fields();
        form.push(("decision".into(), decision.into()));
        self.post(&format!("{base}/oauth/auth/decision"), &form)
            .await
    }

    /// Opens the authorization URL `url` of the server at `base`, signs in as
    /// `email` if asked, and allows on the consent page unless consent was given
    /// before: the `Location` the user is sent back to.
    pub async fn approve(&mut self, base: &str, url: &str, email: &str, password: &str) -> String {
        let page = self.get(url).await;
        if page.status == 303 {
            return page.location(); // signed in and consented before
        }
        assert_eq!(page.status, 200, "{}", page.body);
        // Signed in, the browser follows the redirect back to the request (which
        // then carries the mark that a sign-in was asked for).
        let back = if page.body.contains("id=\"login\"") {
            let signed_in = self.sign_in(base, &page, email, password).await;
            assert_eq!(signed_in.status, 303, "{}", signed_in.body);
            format!("{base}{}", signed_in.location())
        } else {
            url.to_owned()
        };
        let consent = self.get(&back).await;
        if consent.status == 303 {
            return consent.location();
        }
        assert!(consent.body.contains("id=\"consent\""), "{}", consent.body);
        let decided = self.decide(base, &consent, "allow").await;
        assert_eq!(decided.status, 303, "{}", decided.body);
        decided.location()
    }
}

/// The query parameter `name` of the URL `location`.
pub fn query_param(location: &str, name: &str) -> Option<String> {
    reqwest::Url::parse(location)
        .ok()?
        .query_pairs()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}
