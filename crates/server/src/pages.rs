//! The server-rendered pages of the browser flow (askama templates in `templates/`,
//! escaped at compile time): sign-in, consent, error and the user's consents, and the
//! plain words each scope is shown with.

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// The sign-in page.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    /// The application asking, when the sign-in is for an authorization request.
    pub client_name: Option<String>,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// The email to prefill.
    pub email: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// Where to go after signing in (a local path).
    pub return_to: String,
}

/// One scope as the consent page shows it.
pub struct ScopeView {
    /// Short title.
    pub title: String,
    /// What it lets the application do.
    pub description: String,
}

/// The consent page.
#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage {
    /// The integration's name.
    pub client_name: String,
    /// Who is signed in.
    pub user_email: String,
    /// The requested scopes.
    pub scopes: Vec<ScopeView>,
    /// The host the user will be sent back to.
    pub redirect_host: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// The authorization request, carried through the form.
    pub fields: Vec<(String, String)>,
}

/// An error page: the request cannot be trusted enough to redirect.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// Heading.
    pub title: String,
    /// What went wrong.
    pub message: String,
}

/// One consent on the consents page.
pub struct ConsentRow {
    /// The integration key.
    pub integration_key: String,
    /// Its name.
    pub name: String,
    /// The scopes, in words.
    pub scopes: String,
    /// When, RFC 3339.
    pub granted: String,
}

/// The signed-in user's consents.
#[derive(Template)]
#[template(path = "consents.html")]
pub struct ConsentsPage {
    /// Who is signed in.
    pub user_email: String,
    /// Their consents.
    pub consents: Vec<ConsentRow>,
    /// The session's CSRF token.
    pub csrf: String,
}

/// Renders a page with `status`, never cached, never framed.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    let html = match page.render() {
        Ok(html) => html,
        Err(error) => {
            tracing::error!(%error, "page did not render");
            return (StatusCode::INTERNAL_SERVER_ERROR, "page did not render").into_response();
        }
    };
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// An error page with `status`.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    render(
        status,
        &ErrorPage {
            title: title.to_owned(),
            message: message.to_owned(),
        },
    )
}

/// A scope in plain words: DocuSign's scopes by their meaning, others by name.
pub fn describe_scope(scope: &str) -> ScopeView {
    let (title, description) = match scope {
        "signature" => (
            "Send and sign documents",
            "Create, send and sign envelopes and read their status in your accounts.",
        ),
        "impersonation" => (
            "Act for you without asking again",
            "Get access tokens for you later, without you being present (JWT grant).",
        ),
        "extended" => (
            "Stay connected",
            "Keep access without asking you to sign in again for a longer time.",
        ),
        "openid" => ("Know who you are", "Read your user id."),
        "profile" => ("Read your profile", "Read your name."),
        "email" => (
            "Read your email address",
            "Read the email address of your account.",
        ),
        "user_read" => ("Read users", "Read user information in your accounts."),
        "user_write" => ("Manage users", "Add and change users in your accounts."),
        "organization_read" => (
            "Read your organization",
            "Read your organization's settings and members.",
        ),
        "spring_read" | "spring_write" => (
            "Use your agreements",
            "Read and work with agreements in your accounts.",
        ),
        "click.manage" | "click.send" => (
            "Manage clickwraps",
            "Create and send clickwrap agreements in your accounts.",
        ),
        _ => {
            return ScopeView {
                title: format!("Use the “{scope}” permission"),
                description:
                    "A permission this application registered; ask its developers what it covers."
                        .to_owned(),
            };
        }
    };
    ScopeView {
        title: title.to_owned(),
        description: description.to_owned(),
    }
}
