//! `POST /oauth/token`: reads the form strictly, dispatches on `grant_type`, and
//! for each grant reads its typed request (authenticating the client first where
//! the grant has one) and hands it to the grant's own file.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use jwtgrant_core::grants::GrantType;
use jwtgrant_proto::{JwtGrantResponse, TokenExchangeResponse};

use crate::audit::{self, Endpoint, Refusal, RequestMeta};
use crate::client_addr::ClientAddr;
use crate::client_auth::{authenticate_client, code_flow_client, presenting_client};
use crate::error::{RequestError, TokenEndpointError};
use crate::form::Form;
use crate::grants;
use crate::routes::{no_store, token_json};
use crate::state::AppState;
use crate::telemetry;
use crate::token_request::{
    AuthorizationCodeRequest, ClientCredentialsRequest, JwtBearerRequest, RefreshTokenRequest,
    TokenExchangeRequest, grant_type,
};

/// What the token endpoint answers: an access token (RFC 6749 section 5.1), or the
/// token a token exchange issued (RFC 8693 section 2.2.1).
#[derive(Debug)]
enum Issued {
    Access(JwtGrantResponse),
    Exchanged(TokenExchangeResponse),
}

/// The token endpoint. Each answer is one audit event, with the facts the grant
/// noted on its way and, on a refusal, its rule code.
pub async fn token(
    State(state): State<Arc<AppState>>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    // Boxed: the grants' futures are several kilobytes, and this one is moved into
    // axum's and tower's boxes before it first runs; a pointer moves cheaper.
    let (result, facts) = audit::gathering(Box::pin(handle(&state, client, &headers, body))).await;
    state.metrics.observe_latency(started.elapsed());
    let (response, refusal) = match result {
        Ok((grant, issued)) => {
            state.metrics.grant_issued(grant);
            let answer = match issued {
                Issued::Access(access) => token_json::response(&access),
                Issued::Exchanged(exchanged) => axum::Json(exchanged).into_response(),
            };
            (no_store(answer), None)
        }
        Err(error) => {
            state.metrics.grant_refused(error.code(), error.rule());
            refused(error)
        }
    };
    audited(
        &state,
        Endpoint::Token,
        &headers,
        client,
        facts,
        refusal,
        response,
    )
}

/// The answer to a refused request, and the refusal as its audit event names it.
pub(crate) fn refused(error: TokenEndpointError) -> (Response, Option<Refusal>) {
    let refusal = Refusal {
        rule: error.rule(),
        error: error.code().as_str(),
    };
    (error.into_response(), Some(refusal))
}

/// Records the decision `response` answers and gives the answer the request's id.
pub(crate) fn audited(
    state: &AppState,
    endpoint: Endpoint,
    headers: &HeaderMap,
    client: Option<IpAddr>,
    facts: audit::Facts,
    refusal: Option<Refusal>,
    mut response: Response,
) -> Response {
    if let Some(refusal) = &refusal {
        telemetry::record_refusal(refusal.rule, refusal.error);
    }
    if !state.audit.enabled() {
        return response;
    }
    let meta = RequestMeta::new(headers, client);
    if let Ok(value) = axum::http::HeaderValue::from_str(&meta.request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    state
        .audit
        .decided(endpoint, meta, facts, refusal, state.clock.now_ms());
    response
}

async fn handle(
    state: &AppState,
    client: Option<IpAddr>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(GrantType, Issued), TokenEndpointError> {
    if let Some(ip) = client {
        state
            .rate_limit("client", ip, state.config.rate_limit_per_client)
            .await?;
    }
    let body = body.map_err(|rejection| match rejection {
        BytesRejection::FailedToBufferBody(inner)
            if inner.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
        {
            RequestError::TooLarge(state.config.body_limit_bytes)
        }
        _ => RequestError::Body,
    })?;
    let form = Form::parse(headers, &body)?;
    let grant = grant_type(&form)?;
    telemetry::record_grant_type(grant.as_str());
    audit::note(|facts| facts.grant_type = Some(grant.as_str()));
    let now = state.clock.now();
    // The grants that take a client authenticate it before reading their own
    // parameters; the JWT bearer grant's assertion is its credential, and a client
    // it names or authenticates besides must be the assertion's integration.
    let issued = match grant {
        GrantType::JwtBearer => {
            let client = presenting_client(state, &form.client_credentials(headers)?).await?;
            let request = JwtBearerRequest::from_form(&form)?;
            grants::jwt_bearer::grant(state, now, &request, client.as_ref())
                .await
                .map(Issued::Access)
        }
        GrantType::AuthorizationCode => {
            let client = code_flow_client(state, &form.client_credentials(headers)?).await?;
            let request = AuthorizationCodeRequest::from_form(&form)?;
            grants::authorization_code::grant(state, now, &request, &client)
                .await
                .map(Issued::Access)
        }
        GrantType::RefreshToken => {
            let client = code_flow_client(state, &form.client_credentials(headers)?).await?;
            let request = RefreshTokenRequest::from_form(&form)?;
            grants::refresh_token::grant(state, now, &request, &client)
                .await
                .map(Issued::Access)
        }
        GrantType::ClientCredentials => {
            let client = authenticate_client(state, &form.client_credentials(headers)?).await?;
            let request = ClientCredentialsRequest::from_form(&form);
            grants::client_credentials::grant(state, now, &request, &client)
                .await
                .map(Issued::Access)
        }
        GrantType::TokenExchange => {
            let client = exchanging_client(state, &form.client_credentials(headers)?).await?;
            let request = TokenExchangeRequest::from_form(&form)?;
            grants::token_exchange::grant(state, now, &request, &client)
                .await
                .map(Issued::Exchanged)
        }
    }?;
    Ok((grant, issued))
}

/// The client of a token exchange: it must authenticate, and a request that names
/// no client, or only names one, is told so in the exchange's own words.
async fn exchanging_client(
    state: &AppState,
    credentials: &jwtgrant_core::client_auth::ClientCredentials,
) -> Result<jwtgrant_core::client_auth::AuthenticatedClient, TokenEndpointError> {
    use jwtgrant_core::client_auth::ClientCredentials;
    match credentials {
        ClientCredentials::None | ClientCredentials::Public { .. } => {
            Err(jwtgrant_core::GrantError::TokenExchangeClientAuthenticationRequired.into())
        }
        _ => authenticate_client(state, credentials).await,
    }
}
