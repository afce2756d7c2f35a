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
use jwtgrant_proto::JwtGrantResponse;

use crate::client_addr::ClientAddr;
use crate::client_auth::{authenticate_client, code_flow_client, presenting_client};
use crate::error::{RequestError, TokenEndpointError};
use crate::form::Form;
use crate::grants;
use crate::routes::no_store;
use crate::state::AppState;
use crate::token_request::{
    AuthorizationCodeRequest, ClientCredentialsRequest, JwtBearerRequest, RefreshTokenRequest,
    grant_type,
};

/// The token endpoint.
pub async fn token(
    State(state): State<Arc<AppState>>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let result = handle(&state, client, &headers, body).await;
    state.metrics.observe_latency(started.elapsed());
    match result {
        Ok((grant, issued)) => {
            state.metrics.grant_issued(grant);
            no_store(axum::Json(issued).into_response())
        }
        Err(error) => {
            state.metrics.grant_refused(error.code());
            error.into_response()
        }
    }
}

async fn handle(
    state: &AppState,
    client: Option<IpAddr>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(GrantType, JwtGrantResponse), TokenEndpointError> {
    if let Some(ip) = client {
        state
            .rate_limit(&format!("client:{ip}"), state.config.rate_limit_per_client)
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
    let now = state.clock.now();
    // The grants that take a client authenticate it before reading their own
    // parameters; the JWT bearer grant's assertion is its credential, and a client
    // it names or authenticates besides must be the assertion's integration.
    let issued = match grant {
        GrantType::JwtBearer => {
            let client = presenting_client(state, &form.client_credentials(headers)?).await?;
            let request = JwtBearerRequest::from_form(&form)?;
            grants::jwt_bearer::grant(state, now, &request, client.as_ref()).await
        }
        GrantType::AuthorizationCode => {
            let client = code_flow_client(state, &form.client_credentials(headers)?).await?;
            let request = AuthorizationCodeRequest::from_form(&form)?;
            grants::authorization_code::grant(state, now, &request, &client).await
        }
        GrantType::RefreshToken => {
            let client = code_flow_client(state, &form.client_credentials(headers)?).await?;
            let request = RefreshTokenRequest::from_form(&form)?;
            grants::refresh_token::grant(state, now, &request, &client).await
        }
        GrantType::ClientCredentials => {
            let client = authenticate_client(state, &form.client_credentials(headers)?).await?;
            let request = ClientCredentialsRequest::from_form(&form);
            grants::client_credentials::grant(state, now, &request, &client).await
        }
    }?;
    Ok((grant, issued))
}
