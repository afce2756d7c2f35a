//! The browser flow: `GET /oauth/auth` (RFC 6749 section 4.1.1), the sign-in form,
//! the consent decision, and the user's own consents page. The core checks every
//! authorization request; this file holds sessions, CSRF, throttling and the
//! redirects. A request whose client or redirect URI cannot be trusted gets an error
//! page and never a redirect.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jwtgrant_core::grants::authorization_code::{
    AuthorizationRequest, AuthorizeError, CODE_LIFETIME_SECS, NextStep, SignedIn,
    ValidAuthorization, next_step, validate_request,
};
use jwtgrant_core::model::Integration;
use jwtgrant_store::{AuthorizationCodeRecord, StoreError, UserLogin};

use crate::audit::{self, Endpoint, Refusal};
use crate::client_addr::ClientAddr;
use crate::client_documents::ClientDocuments;
use crate::clock;
use crate::credentials::{self, random_token, token_hash};
use crate::pages::{
    ConsentPage, ConsentRow, ConsentsPage, LoginPage, describe_scope, error_page, render,
};
use crate::routes::token::audited;
use crate::session::{
    self, MAX_FAILURES_PER_ACCOUNT, MAX_FAILURES_PER_ADDRESS, Session, password_tag,
};
use crate::state::{AppState, ClientLookupError};

/// Where the consents page lives.
const CONSENTS_PATH: &str = "/account/consents";

/// The query parameter that carries, through the sign-in page, the mark that this
/// request demanded a fresh sign-in (see [`crate::session::SessionKeys::login_demand`]).
const LOGIN_DEMAND_PARAM: &str = "jwtgrant_login_demand";

/// A submitted form's fields (the last of a repeated name wins; pages never repeat).
struct Fields(Vec<(String, String)>);

impl Fields {
    fn parse(body: &[u8]) -> Fields {
        Fields(form_urlencoded::parse(body).into_owned().collect())
    }

    fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_default()
    }
}

/// The authorization endpoint. A code issued, a refusal and a denial are each an
/// audit event; showing a sign-in or consent page is not.
pub async fn authorize(
    State(state): State<Arc<AppState>>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    query: RawQuery,
) -> Response {
    let (response, facts) = audit::gathering(authorization_page(&state, &headers, query)).await;
    audited_decision(&state, &headers, client, facts, response)
}

/// Records the decision a page noted, if it made one.
fn audited_decision(
    state: &AppState,
    headers: &HeaderMap,
    client: Option<std::net::IpAddr>,
    mut facts: audit::Facts,
    response: Response,
) -> Response {
    match facts.decision.take() {
        Some(decision) => audited(
            state,
            Endpoint::Authorize,
            headers,
            client,
            facts,
            decision.err(),
            response,
        ),
        None => response,
    }
}

async fn authorization_page(
    state: &Arc<AppState>,
    headers: &HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let now = state.clock.now();
    let query = query.unwrap_or_default();
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let request =
        match AuthorizationRequest::from_pairs(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())))
        {
            Ok(request) => request,
            Err(error) => return refusal(error),
        };
    let (valid, integration) = match check(state, &request).await {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    let (session, user) = match visitor(state, headers, now).await {
        Ok(visitor) => visitor,
        Err(response) => return response,
    };
    let demanded_at = pairs
        .iter()
        .find(|(name, _)| name == LOGIN_DEMAND_PARAM)
        .and_then(|(_, mark)| {
            state
                .session_keys
                .login_demanded_at(mark, &valid.client_id, now)
        });
    let signed_in = match (&session, &user) {
        (Some(session), Some(_)) => Some(SignedIn {
            auth_time: session.auth_time,
            fresh: demanded_at.is_some_and(|at| session.auth_time >= at),
        }),
        _ => None,
    };
    // A client known by its metadata document has no consent on record: it is
    // asked every time.
    let consent_covers = match &user {
        Some(user) if !ClientDocuments::names_a_document(&valid.client_id) => {
            match state
                .store
                .consent(&user.user.user_id, &valid.client_id)
                .await
            {
                Ok(consent) => {
                    consent.is_some_and(|c| valid.scopes.iter().all(|s| c.scopes.contains(s)))
                }
                Err(error) => return unavailable(&error),
            }
        }
        _ => false,
    };
    let step = match next_step(&valid, signed_in, consent_covers, now) {
        Ok(step) => step,
        Err(error) => return refusal(error),
    };
    let (Some(session), Some(user), NextStep::Consent | NextStep::IssueCode) =
        (session.clone(), user, step)
    else {
        // Back here after signing in, with a mark that this request asked for a
        // sign-in from now on: `prompt=login` and `max_age` are then answered.
        let mut return_to = form_urlencoded::Serializer::new(String::from("/oauth/auth?"));
        for (name, value) in pairs.iter().filter(|(n, _)| n != LOGIN_DEMAND_PARAM) {
            return_to.append_pair(name, value);
        }
        return_to.append_pair(
            LOGIN_DEMAND_PARAM,
            &state.session_keys.login_demand(&valid.client_id, now),
        );
        return login_page(
            state,
            session,
            Some(integration.name.clone()),
            None,
            String::new(),
            return_to.finish(),
            StatusCode::OK,
            now,
        );
    };
    if step == NextStep::IssueCode {
        return issue_code(state, &valid, &user.user.user_id, session.auth_time, now).await;
    }
    render(
        StatusCode::OK,
        &ConsentPage {
            client_name: integration.name.clone(),
            user_email: user.user.email.clone(),
            scopes: valid.scopes.iter().map(|s| describe_scope(s)).collect(),
            redirect_host: redirect_host(&valid.redirect_uri),
            csrf: state.session_keys.csrf_token(&session),
            fields: request
                .to_pairs()
                .into_iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect(),
        },
    )
}

/// `POST /login`: the sign-in form.
pub async fn login(
    State(state): State<Arc<AppState>>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = state.clock.now();
    let fields = Fields::parse(&body);
    let return_to = safe_return_to(fields.get("return_to"));
    let email = fields.get("email").trim().to_owned();
    let client_name = client_name_for(&state, &return_to).await;
    let session = current_session(&state, &headers, now);
    let Some(session) = session.filter(|s| state.session_keys.csrf_ok(s, fields.get("csrf")))
    else {
        return login_page(
            &state,
            None,
            client_name,
            Some("This sign-in form had expired. Please sign in again.".into()),
            email,
            return_to,
            StatusCode::BAD_REQUEST,
            now,
        );
    };
    let account_key = format!("account:{}", email.to_lowercase());
    let address_key = match client {
        Some(addr) => format!("address:{addr}"),
        None => "address:unknown".to_owned(),
    };
    let throttle = &state.login_throttle;
    let locked = match (
        throttle
            .locked(&account_key, MAX_FAILURES_PER_ACCOUNT, now)
            .await,
        throttle
            .locked(&address_key, MAX_FAILURES_PER_ADDRESS, now)
            .await,
    ) {
        (Ok(account), Ok(address)) => account.or(address),
        (Err(error), _) | (_, Err(error)) => return unavailable(&error),
    };
    if let Some(wait) = locked {
        let minutes = (wait + 59) / 60;
        let mut response = login_page(
            &state,
            Some(session),
            client_name,
            Some(format!(
                "Too many failed sign-ins. Try again in {minutes} minute{}.",
                if minutes == 1 { "" } else { "s" }
            )),
            email,
            return_to,
            StatusCode::TOO_MANY_REQUESTS,
            now,
        );
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait.max(1)));
        return response;
    }
    let login = match state.store.user_login_by_email(&email).await {
        Ok(login) => login,
        Err(error) => return unavailable(&error),
    };
    let password = fields.get("password").to_owned();
    let accepted = match login.as_ref() {
        Some(UserLogin {
            user,
            password_hash: Some(hash),
        }) if user.active => credentials::verify_secret_blocking(hash.clone(), password).await,
        _ => {
            // The same work as a real check, so a wrong email is not faster.
            let _ =
                credentials::verify_secret_blocking(credentials::dummy_hash().to_owned(), password)
                    .await;
            false
        }
    };
    let (
        true,
        Some(UserLogin {
            user,
            password_hash: Some(hash),
        }),
    ) = (accepted, login)
    else {
        throttle.fail(&account_key, now).await;
        throttle.fail(&address_key, now).await;
        return login_page(
            &state,
            Some(session),
            client_name,
            Some("That email and password do not match an account.".into()),
            email,
            return_to,
            StatusCode::UNAUTHORIZED,
            now,
        );
    };
    throttle.clear(&account_key).await;
    let signed_in = state.session_keys.signed_in(&user.user_id, &hash, now);
    with_session(&state, see_other(&return_to), &signed_in)
}

/// `POST /oauth/auth/decision`: Allow or Deny on the consent page; each is an
/// audit event.
pub async fn decision(
    State(state): State<Arc<AppState>>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (response, facts) = audit::gathering(consent_decision(&state, &headers, body)).await;
    audited_decision(&state, &headers, client, facts, response)
}

async fn consent_decision(state: &Arc<AppState>, headers: &HeaderMap, body: Bytes) -> Response {
    let now = state.clock.now();
    let fields = Fields::parse(&body);
    let request = match AuthorizationRequest::from_pairs(
        fields
            .0
            .iter()
            .filter(|(n, _)| n != "csrf" && n != "decision")
            .map(|(n, v)| (n.as_str(), v.as_str())),
    ) {
        Ok(request) => request,
        Err(error) => return refusal(error),
    };
    let (session, user) = match visitor(state, headers, now).await {
        Ok(visitor) => visitor,
        Err(response) => return response,
    };
    let (Some(session), Some(user)) = (session, user) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Your session has ended",
            "You were signed out before answering. Go back to the application and start again.",
        );
    };
    if !state.session_keys.csrf_ok(&session, fields.get("csrf")) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "This form has expired",
            "The consent form did not come from this session. Go back to the application and start again.",
        );
    }
    let (valid, _) = match check(state, &request).await {
        Ok(checked) => checked,
        Err(response) => return response,
    };
    match fields.get("decision") {
        // A client known by its metadata document is asked every time: its consent
        // is the code's, and then its refresh chain's, not a record.
        "allow" if ClientDocuments::names_a_document(&valid.client_id) => {
            issue_code(state, &valid, &user.user.user_id, session.auth_time, now).await
        }
        "allow" => {
            if let Err(error) = state
                .store
                .grant_consent(&user.user.user_id, &valid.client_id, &valid.scopes, now)
                .await
            {
                return unavailable(&error);
            }
            // This instance's caches see the new consent at once; others at their
            // next poll.
            state
                .registry
                .forget_consent(&user.user.user_id, &valid.client_id);
            issue_code(state, &valid, &user.user.user_id, session.auth_time, now).await
        }
        "deny" => {
            audit::note(|facts| {
                facts.decision = Some(Err(Refusal {
                    rule: "access_denied",
                    error: "access_denied",
                }))
            });
            see_other(&redirect_with(
                &valid.redirect_uri,
                &[
                    ("error", "access_denied"),
                    ("error_description", "the user denied access"),
                ],
                valid.state.as_deref(),
            ))
        }
        _ => error_page(
            StatusCode::BAD_REQUEST,
            "No answer was given",
            "Choose Allow or Deny.",
        ),
    }
}

/// `GET /account/consents`.
pub async fn consents(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let now = state.clock.now();
    let (session, user) = match visitor(&state, &headers, now).await {
        Ok(visitor) => visitor,
        Err(response) => return response,
    };
    let (Some(session), Some(user)) = (session.clone(), user) else {
        return login_page(
            &state,
            session,
            None,
            None,
            String::new(),
            CONSENTS_PATH.to_owned(),
            StatusCode::OK,
            now,
        );
    };
    let records = match state
        .store
        .list_consents(Some(&user.user.user_id), None)
        .await
    {
        Ok(records) => records,
        Err(error) => return unavailable(&error),
    };
    let mut rows = Vec::with_capacity(records.len());
    for record in records {
        let name = match state.registry.integration(&record.integration_key).await {
            Ok(Some(integration)) => integration.name.clone(),
            Ok(None) => record.integration_key.clone(),
            Err(error) => return unavailable(&error),
        };
        rows.push(ConsentRow {
            integration_key: record.integration_key,
            name,
            scopes: record
                .scopes
                .iter()
                .map(|s| describe_scope(s).title)
                .collect::<Vec<_>>()
                .join(", "),
            granted: clock::rfc3339(record.granted_at)
                .split('T')
                .next()
                .unwrap_or_default()
                .to_owned(),
        });
    }
    render(
        StatusCode::OK,
        &ConsentsPage {
            user_email: user.user.email,
            consents: rows,
            csrf: state.session_keys.csrf_token(&session),
        },
    )
}

/// `POST /account/consents/revoke`: withdraws a consent and ends every token chain
/// built on it.
pub async fn revoke_consent(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = state.clock.now();
    let fields = Fields::parse(&body);
    let (session, user) = match visitor(&state, &headers, now).await {
        Ok(visitor) => visitor,
        Err(response) => return response,
    };
    let (Some(session), Some(user)) = (session, user) else {
        return see_other(CONSENTS_PATH);
    };
    if !state.session_keys.csrf_ok(&session, fields.get("csrf")) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "This form has expired",
            "Reload your consents page and try again.",
        );
    }
    let integration_key = fields.get("integration_key");
    let user_id = &user.user.user_id;
    match state.store.revoke_consent(user_id, integration_key).await {
        Ok(()) | Err(StoreError::NotFound(_)) => {}
        Err(error) => return unavailable(&error),
    }
    if let Err(error) = state
        .store
        .revoke_grants(user_id, integration_key, now)
        .await
    {
        return unavailable(&error);
    }
    state.registry.forget_consent(user_id, integration_key);
    if let Err(error) = state.registry.poll_revocations().await {
        tracing::warn!(%error, "revocations not read back at once");
    }
    see_other(CONSENTS_PATH)
}

/// `POST /logout`.
pub async fn logout(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = state.clock.now();
    let fields = Fields::parse(&body);
    let valid = current_session(&state, &headers, now)
        .is_some_and(|s| state.session_keys.csrf_ok(&s, fields.get("csrf")));
    let mut response = see_other(CONSENTS_PATH);
    if valid && let Ok(value) = HeaderValue::from_str(&session::set_cookie(None, secure(&state))) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// Looks up the integration and runs the core's checks.
async fn check(
    state: &AppState,
    request: &AuthorizationRequest,
) -> Result<(ValidAuthorization, Arc<Integration>), Response> {
    if let Some(id) = request.client_id.as_deref() {
        audit::note(|facts| facts.client_id = Some(audit::bounded(id)));
    }
    let integration = match request.client_id.as_deref() {
        Some(id) => match state.client(id).await {
            Ok(integration) => integration,
            Err(ClientLookupError::Store(error)) => return Err(unavailable(&error)),
            // Its redirect URIs are unknown: shown here, never a redirect.
            Err(ClientLookupError::Document(error)) => {
                tracing::info!(client_id = id, %error, "client metadata document refused");
                return Err(error_page(
                    StatusCode::BAD_REQUEST,
                    "This application cannot be used",
                    &format!("{error}."),
                ));
            }
        },
        None => None,
    };
    let valid = validate_request(request, integration.as_deref()).map_err(refusal)?;
    let integration = integration.ok_or_else(|| {
        audit::note(|facts| {
            facts.decision = Some(Err(Refusal {
                rule: "client_unknown",
                error: "invalid_client",
            }))
        });
        error_page(
            StatusCode::BAD_REQUEST,
            "Unknown application",
            "No application is registered with this client_id.",
        )
    })?;
    Ok((valid, integration))
}

/// Stores a fresh code (with the `nonce` and the user's sign-in time for its ID
/// token) and sends the user back with it.
async fn issue_code(
    state: &AppState,
    valid: &ValidAuthorization,
    user_id: &str,
    auth_time: i64,
    now: i64,
) -> Response {
    let code = random_token();
    let record = AuthorizationCodeRecord {
        code_hash: token_hash(&code),
        integration_key: valid.client_id.clone(),
        user_id: user_id.to_owned(),
        redirect_uri: valid.redirect_uri.clone(),
        scopes: valid.scopes.clone(),
        resources: valid.resources.clone(),
        code_challenge: valid.code_challenge.clone(),
        nonce: valid.nonce.clone(),
        auth_time: Some(auth_time),
        family_id: uuid::Uuid::new_v4().to_string(),
        created_at: now,
        expires_at: now + CODE_LIFETIME_SECS,
        used_at: None,
    };
    if let Err(error) = state.store.create_authorization_code(&record).await {
        return unavailable(&error);
    }
    audit::note(|facts| {
        facts.client_id = Some(valid.client_id.clone());
        facts.subject = Some(user_id.to_owned());
        facts.scopes = (!valid.scopes.is_empty()).then(|| valid.scopes.join(" "));
        facts.decision = Some(Ok(()));
    });
    see_other(&redirect_with(
        &valid.redirect_uri,
        &[("code", &code)],
        valid.state.as_deref(),
    ))
}

/// The core's refusal as a response: an error page, or a redirect with the error.
fn refusal(error: AuthorizeError) -> Response {
    let refusal = match &error {
        AuthorizeError::Page { rule, .. } => Refusal {
            rule,
            error: if *rule == "client_unknown" {
                "invalid_client"
            } else {
                "invalid_request"
            },
        },
        AuthorizeError::Redirect { error, .. } => Refusal {
            rule: error.as_str(),
            error: error.as_str(),
        },
    };
    audit::note(|facts| facts.decision = Some(Err(refusal)));
    match error {
        AuthorizeError::Page { message, .. } => error_page(
            StatusCode::BAD_REQUEST,
            "This request cannot be completed",
            &message,
        ),
        AuthorizeError::Redirect {
            redirect_uri,
            error,
            description,
            state,
        } => see_other(&redirect_with(
            &redirect_uri,
            &[
                ("error", error.as_str()),
                ("error_description", &description),
            ],
            state.as_deref(),
        )),
    }
}

fn unavailable(error: &StoreError) -> Response {
    tracing::warn!(%error, "page refused: store unavailable");
    let mut response = error_page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        "The service cannot reach its database right now. Please try again in a moment.",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// The session in the request's cookie, if valid.
fn current_session(state: &AppState, headers: &HeaderMap, now: i64) -> Option<Session> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(session::cookie_value)
        .and_then(|value| state.session_keys.decode(value, now))
}

/// The request's session (if valid) and its signed-in user (if any).
async fn visitor(
    state: &AppState,
    headers: &HeaderMap,
    now: i64,
) -> Result<(Option<Session>, Option<UserLogin>), Response> {
    let session = current_session(state, headers, now);
    let user = signed_in_user(state, session.as_ref())
        .await
        .map_err(|e| unavailable(&e))?;
    Ok((session, user))
}

/// The signed-in user of a session: active, and the password unchanged since.
async fn signed_in_user(
    state: &AppState,
    session: Option<&Session>,
) -> Result<Option<UserLogin>, StoreError> {
    let Some(user_id) = session.and_then(|s| s.user_id.as_deref()) else {
        return Ok(None);
    };
    let login = state.store.user_login(user_id).await?;
    Ok(login.filter(|l| {
        l.user.active
            && l.password_hash
                .as_deref()
                .is_some_and(|h| session.is_some_and(|s| s.password_tag == password_tag(h)))
    }))
}

/// The sign-in page, keeping (or starting) an anonymous session for its CSRF token.
#[allow(clippy::too_many_arguments)]
fn login_page(
    state: &AppState,
    session: Option<Session>,
    client_name: Option<String>,
    error: Option<String>,
    email: String,
    return_to: String,
    status: StatusCode,
    now: i64,
) -> Response {
    // A signed-in user asked to sign in again (`prompt=login`, `max_age`) keeps
    // their session until the new sign-in replaces it.
    let session = session.unwrap_or_else(|| state.session_keys.anonymous(now));
    let page = LoginPage {
        client_name,
        error,
        email,
        csrf: state.session_keys.csrf_token(&session),
        return_to,
    };
    with_session(state, render(status, &page), &session)
}

fn with_session(state: &AppState, mut response: Response, session: &Session) -> Response {
    let cookie = session::set_cookie(Some(&state.session_keys.encode(session)), secure(state));
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

fn secure(state: &AppState) -> bool {
    state.config.tls.is_some() || state.issuer.starts_with("https://")
}

/// Only local paths of this flow: no open redirect through `return_to`.
fn safe_return_to(value: &str) -> String {
    if value.starts_with("/oauth/auth?") || value == CONSENTS_PATH {
        value.to_owned()
    } else {
        CONSENTS_PATH.to_owned()
    }
}

/// The name of the application a `return_to` authorization request is for.
async fn client_name_for(state: &AppState, return_to: &str) -> Option<String> {
    let query = return_to.strip_prefix("/oauth/auth?")?;
    let client_id = form_urlencoded::parse(query.as_bytes())
        .find(|(n, _)| n == "client_id")
        .map(|(_, v)| v.into_owned())?;
    let integration = state.client(&client_id).await.ok()??;
    Some(integration.name.clone())
}

/// A 303 to `location`, never cached.
fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `uri` with `params` (and `state`) added to its query.
fn redirect_with(uri: &str, params: &[(&str, &str)], state: Option<&str>) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        query.append_pair(name, value);
    }
    if let Some(state) = state {
        query.append_pair("state", state);
    }
    let separator = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{separator}{}", query.finish())
}

/// The host (and port) of a URI, to tell the user where they will be sent.
fn redirect_host(uri: &str) -> String {
    let rest = uri.split_once("://").map(|(_, r)| r).unwrap_or(uri);
    rest.split(['/', '?', '#'])
        .next()
        .unwrap_or(rest)
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_keep_existing_queries_and_encode() {
        assert_eq!(
            redirect_with("https://a.example/cb", &[("code", "x y")], Some("s&1")),
            "https://a.example/cb?code=x+y&state=s%261"
        );
        assert_eq!(
            redirect_with("https://a.example/cb?v=1", &[("code", "c")], None),
            "https://a.example/cb?v=1&code=c"
        );
        assert_eq!(redirect_host("http://127.0.0.1:9/cb?x"), "127.0.0.1:9");
    }

    #[test]
    fn return_to_stays_local() {
        assert_eq!(safe_return_to("https://evil.example/"), CONSENTS_PATH);
        assert_eq!(safe_return_to("//evil.example/oauth/auth?"), CONSENTS_PATH);
        assert_eq!(
            safe_return_to("/oauth/auth?client_id=x"),
            "/oauth/auth?client_id=x"
        );
    }
}
